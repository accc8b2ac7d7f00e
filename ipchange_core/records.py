"""Record hashes of a CSV file: which records a new export repeats, byte for byte, unparsed.

A help desk re-exports whole tables, of which a small part changed since the last export. The
hash of each record's text lets a reload parse only the records that are not, byte for byte,
records the table's latest load accepted (:func:`ipchange_core.store.load` keeps those hashes,
with the natural-key hash of the row each one became).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "RecordHashes",
    "RecordTexts",
    "bare_cr",
    "quoted_line_feeds",
    "record_texts",
    "repeats",
    "text_hashes",
]

_HASH_BLOCK = 1 << 16
"""Values hashed at a time by :func:`text_hashes`."""
_SCAN_BYTES = 1 << 24
"""Bytes compared at a time by :func:`_positions`."""


@dataclass(frozen=True, eq=False)
class RecordHashes:
    """Records of one load, identified by the hash of their text.

    Attributes:
        manifest_id: The ``load_manifests`` row of the load that accepted the records.
        header: Hash of that file's header line (records are only comparable under one header).
        hashes: int64 hash of each record's text, line end included.
        keys: int64 hash (:func:`text_hashes`) of the natural key of the row each record
            became, written as one text (times as µs since the epoch), aligned with ``hashes``.
    """

    manifest_id: int
    header: int
    hashes: np.ndarray
    keys: np.ndarray

    def to_bytes(self) -> tuple[bytes, bytes]:
        """``hashes`` and ``keys`` as little-endian int64 bytes, for storage."""
        return (
            self.hashes.astype("<i8", copy=False).tobytes(),
            self.keys.astype("<i8", copy=False).tobytes(),
        )

    @classmethod
    def from_bytes(cls, manifest_id: int, header: int, hashes: bytes, keys: bytes) -> RecordHashes:
        """The inverse of :meth:`to_bytes`."""
        return cls(
            manifest_id=manifest_id,
            header=header,
            hashes=np.frombuffer(hashes, dtype="<i8").astype(np.int64),
            keys=np.frombuffer(keys, dtype="<i8").astype(np.int64),
        )

    def take(self, at: np.ndarray) -> RecordHashes:
        """The records at positions ``at``."""
        return RecordHashes(self.manifest_id, self.header, self.hashes[at], self.keys[at])


@dataclass(frozen=True, eq=False)
class RecordTexts:
    """Where each record of a CSV text is, and the hash of its text.

    Attributes:
        header: Hash of the header line.
        head_end: Byte offset where the header line ends, its line end included (exclusive).
        lines: int64 line of each data record (header = line 1; blank lines hold no record).
        begins: int64 byte offset where each data record starts in the text.
        ends: int64 byte offset where it ends, its line end included (exclusive).
        hashes: int64 hash of each data record's bytes, line end included.
    """

    header: int
    head_end: int
    lines: np.ndarray
    begins: np.ndarray
    ends: np.ndarray
    hashes: np.ndarray

    def known(self, previous: RecordHashes) -> np.ndarray:
        """Where each record is among ``previous``'s records (-1: not there, or not comparable).

        Records are comparable only under the same header. A record that appears twice in this
        text is never known: both copies must be parsed for the duplicate-key rule to reject
        them.
        """
        index = pd.Index(previous.hashes)
        if previous.header != self.header or not index.is_unique:  # unique unless hashes collide
            return np.full(len(self.hashes), -1, dtype=np.int64)
        at = index.get_indexer(self.hashes)
        # Copies of one record find the same position (the hashes of ``previous`` are unique):
        # counting positions finds the repeated records among those found, without a second
        # hash table over this text's records.
        found = np.flatnonzero(at >= 0)
        twice = np.bincount(at[found], minlength=len(index)) > 1
        at[found[twice[at[found]]]] = -1
        return at

    def select(self, body: bytes, rows: np.ndarray) -> bytes:
        """The header line and the records at ``rows`` (sorted positions), as one CSV text.

        Blank lines before the header stay; those after it do not, so the text read holds the
        header, then exactly one line per chosen record.
        """
        view = memoryview(body)
        spans = zip(self.begins[rows], self.ends[rows], strict=True)
        return b"".join([view[: self.head_end], *(view[b:e] for b, e in spans)])


def _positions(arr: np.ndarray, byte: int) -> np.ndarray:
    """Offsets (int64) of ``byte`` in ``arr``, compared a block at a time.

    A mask of the whole text at once would take a byte per byte of the file.
    """
    parts = [
        np.flatnonzero(arr[at : at + _SCAN_BYTES] == byte) + at
        for at in range(0, len(arr), _SCAN_BYTES)
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def bare_cr(body: bytes) -> bool:
    """Whether some CR is not followed by LF (old Mac line ends, or a CR inside a value)."""
    if b"\r" not in body:
        return False
    arr = np.frombuffer(body, dtype=np.uint8)
    cr = np.flatnonzero(arr == 13)
    return bool(cr[-1] == len(arr) - 1 or (arr[cr + 1] != 10).any())


def quoted_line_feeds(body: bytes, newlines: np.ndarray) -> np.ndarray:
    """Mask of the line feeds at byte offsets ``newlines`` that are inside a quoted value.

    A line feed is inside a quoted value when an odd number of quote characters precede it
    (an escaped quote ``""`` counts twice).
    """
    if b'"' not in body:
        return np.zeros(len(newlines), dtype=bool)
    quotes = _positions(np.frombuffer(body, dtype=np.uint8), ord('"'))
    return np.searchsorted(quotes, newlines) % 2 == 1


def record_texts(body: bytes) -> RecordTexts | None:
    """Locate and hash every record of a CSV text whose every record takes exactly one line.

    Args:
        body: The file's text as UTF-8 bytes (no byte-order mark).

    Returns:
        The records, or ``None`` when some record does not take exactly one line (a quoted
        value holds a line break, or a carriage return is not followed by a line feed) or
        there is no header: only the CSV parser can tell such records apart.
    """
    arr = np.frombuffer(body, dtype=np.uint8)
    newlines = _positions(arr, ord("\n"))
    if not body or bare_cr(body) or quoted_line_feeds(body, newlines).any():
        return None
    begins = np.concatenate(([0], newlines + 1)).astype(np.int64)
    ends = np.append(begins[1:], len(arr)).astype(np.int64)
    last = len(arr) - 1  # a begin past it is the empty line after a final line feed
    at, after = arr[np.minimum(begins, last)], arr[np.minimum(begins + 1, last)]
    blank = (begins == ends) | (at == 10) | ((at == 13) & (after == 10))
    lines = np.flatnonzero(~blank).astype(np.int64) + 1
    begins, ends = begins[~blank], ends[~blank]
    if len(begins) == 0:
        return None
    if (begins[1:] == ends[:-1]).all():  # no blank line: the records tile the text, no copy
        offsets = np.append(begins, ends[-1])
        texts = pa.Array.from_buffers(
            pa.large_binary(), len(begins), [None, pa.py_buffer(offsets), pa.py_buffer(body)]
        )
    else:
        texts = pa.array([body[b:e] for b, e in zip(begins, ends, strict=True)], pa.large_binary())
    hashes = text_hashes(texts)
    return RecordTexts(
        header=int(hashes[0]),
        head_end=int(ends[0]),
        lines=lines[1:],
        begins=begins[1:],
        ends=ends[1:],
        hashes=hashes[1:],
    )


def text_hashes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The int64 hash of each text or bytes value; a null text hashes as an empty one.

    The values become Python objects to be hashed :data:`_HASH_BLOCK` at a time, so memory
    does not grow with the number of values (3M records would otherwise take ~0.4 GB).
    """
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = np.empty(len(values), dtype=np.int64)
    at = 0
    for chunk in chunks:
        for start in range(0, len(chunk), _HASH_BLOCK):
            part = chunk.slice(start, _HASH_BLOCK)
            if part.null_count:
                part = pc.fill_null(part, "")
            objects = part.to_numpy(zero_copy_only=False)
            out[at : at + len(part)] = pd.util.hash_array(objects, categorize=False).view(np.int64)
            at += len(part)
    return out


def repeats(hashes: np.ndarray) -> np.ndarray:
    """The int64 values that occur more than once in ``hashes``, sorted, each once.

    Sorting finds them several times faster than a hash table when there are millions.
    """
    ordered = np.sort(hashes)
    return np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
