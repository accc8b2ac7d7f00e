"""Read an input file into a typed canonical frame and a rejects table (SPEC 3).

:func:`read_file` reads one file — a canonical CSV or XLSX (SPEC 3.4), a Kayako ticket XML
export, a Kayako report CSV or a Kayako audit log CSV (SPEC 3.1–3.3) — checks every value and
splits the rows into those it accepts, typed exactly as :func:`ipchange_core.schema.typed_dtypes`,
and one reject per problem naming the file, line, column and value with a reason in plain words.
The counts always reconcile: ``rows_read == len(frame) + rejected lines + rows_skipped``.

A file that cannot be read as a table at all (unknown format, missing required column, binary or
empty file, undecodable bytes, malformed XML) raises
:class:`~ipchange_core.errors.InvalidInputError` naming the file; bad input never ends in a
traceback.

Values are checked column by column with vectorised rules (no Python loop per row, except over
rows already known to be bad), then the typed frame is validated against its declared pandera
model (:data:`ipchange_core.schema.FRAME_MODELS`).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import importlib
import io
import ipaddress
import re
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ipchange_core.errors import InvalidInputError, IpchangeError, PolicyError
from ipchange_core.kayako import (
    DEFAULT_LOOKUPS,
    XML_BLOCK_TICKETS,
    XML_ROOT,
    CanonicalText,
    KayakoLookups,
    TicketXml,
    load_mapping,
    map_audit,
    map_report,
    no_rejects,
    text_array,
    xml_root,
)
from ipchange_core.records import (
    RecordHashes,
    RecordTexts,
    bare_cr,
    quoted_line_feeds,
    record_texts,
    repeats,
    text_hashes,
)
from ipchange_core.schema import SOURCE_LINE, TABLES, Column, typed_dtypes

__all__ = [
    "FORMATS",
    "FORMAT_TABLES",
    "REJECT_COLUMNS",
    "KayakoLookups",
    "ParsedFile",
    "detect_format",
    "read_file",
    "strftime_regex",
]

FORMAT_TABLES: dict[str, str] = {
    "kayako-xml": "tickets",
    "kayako-csv": "tickets",
    "kayako-audit": "ticket_events",
    "tickets": "tickets",
    "events": "ticket_events",
    "intake": "intake",
    "changes": "changes",
}
"""Recognised input format → the canonical table it loads (SPEC 6 ``--format``)."""

FORMATS = tuple(FORMAT_TABLES)
"""Names accepted by ``format=`` besides ``auto``."""

CANONICAL_FORMATS = {
    fmt: table for fmt, table in FORMAT_TABLES.items() if not fmt.startswith("kayako-")
}
"""The formats of SPEC 3.4, recognised by their header."""

REJECT_COLUMNS = ("file", "line", "column", "value", "reason")
"""Columns of :attr:`ParsedFile.rejects`."""

KEYS: dict[str, tuple[str, ...]] = {
    "tickets": ("ticket_id",),
    "ticket_events": ("ticket_id", "at", "field", "old_value", "new_value"),
    "intake": ("ticket_id",),
    "changes": ("ticket_id",),
}
"""Columns that identify a row; a key seen twice in one file rejects every copy (SPEC 3)."""

ORDER_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "tickets": (("created_at", "updated_at"),),
    "changes": (("scheduled_start", "scheduled_end"),),
}
"""(start, end) columns where an end before its start rejects the row ("end before start")."""

OPTIONAL_EXTRAS: dict[str, tuple[str, ...]] = {"tickets": ("ticket_type",)}
"""Typed-frame columns a canonical file may also carry (blank when absent)."""

_NAT = np.iinfo(np.int64).min
_US_PER_S = 1_000_000
_HEAD_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"
_XLSX_MAGIC = b"PK\x03\x04"
_IPV4 = r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
_ISO_SHAPE = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$"
)
_ISO_EXAMPLE = "2026-11-23T09:15:00-06:00, or 2026-11-23 09:15 for local time"
_QUOTE_MAX = 60
_WORKERS = 2  # columns checked in parallel
_CSV_BLOCK_BYTES = 8 << 20  # pyarrow parses blocks in parallel; fewer, larger chunks are cheaper
_TIME_BLOCK = 1 << 18  # times parsed at a time (see _check_time)
_KEY_BLOCK = 1 << 18  # natural keys written out as text and hashed at a time (see _check)
_ISO_PAIRS = (5, 8, 11, 14, 17)  # where month, day, hour, minute, second start in ISO-8601
_BLANK_FILE = re.compile(rb"(?:\xef\xbb\xbf)?\s*\Z")


@dataclass(frozen=True, eq=False)
class ParsedFile:
    """One input file, read and checked.

    Attributes:
        path: The file read.
        format: Its format, one of :data:`FORMATS`.
        table: The canonical table its rows belong to (``tickets``, ``ticket_events``,
            ``intake`` or ``changes``).
        frame: The accepted rows, typed exactly as ``schema.typed_dtypes(table)`` in that column
            order, plus ``source_line`` (int64): the row's line in the file, header = line 1
            (Kayako XML: the ticket's ordinal, first = 1; XLSX: the sheet row).
        rejects: One row per problem: ``file``, ``line`` (int), ``column``, ``value``, ``reason``
            (str). A line may have several problems; ``column`` is blank for a malformed row.
        rows_read: Data rows read (header excluded, blank lines not counted).
        sha256: SHA-256 of the file's bytes, hex.
        encoding: ``utf-8``, ``utf-8-sig`` (with a BOM), ``cp1252``, an XML file's declared
            encoding, or ``xlsx``; blank when the file was not decoded (a reload of the
            bytes already loaded, see ``pipeline.load_file``).
        rows_skipped: Rows that are not rows of the table at all (Kayako audit entries other
            than department/status/owner changes), explained in ``notes``.
        notes: Plain-words remarks on the whole file (ignored or absent columns, skipped rows).
        records: For a canonical CSV whose records take one line each, the hashes of each
            accepted row's record text and natural key, aligned with ``frame`` (see
            :mod:`ipchange_core.records`; ``manifest_id`` 0 until loaded); else ``None``.
        known: Records that were not parsed because the table's latest load accepted them
            byte for byte (see ``previous`` in :func:`read_file`); they are counted in
            ``rows_read`` but are not in ``frame``.
        spill: For a Kayako XML export read with ``spill=True``, the accepted rows, kept in a
            temporary file and read back by :meth:`blocks` (``frame`` is then empty); else
            ``None``. :meth:`close` (or leaving a ``with`` block) deletes the file.
    """

    path: Path
    format: str
    table: str
    frame: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    sha256: str
    encoding: str
    rows_skipped: int = 0
    notes: tuple[str, ...] = ()
    records: RecordHashes | None = None
    known: RecordHashes | None = None
    spill: _SpilledRows | None = field(default=None, repr=False)

    def blocks(self) -> Iterator[pd.DataFrame]:
        """Yield the accepted rows block by block, typed as ``frame``.

        That is ``frame`` itself, or for a spilled read the blocks of its temporary file, one
        at a time (memory holds one block, whatever the size of the file).

        Raises:
            IpchangeError: The spilled rows were deleted (:meth:`close`).
        """
        if self.spill is None:
            yield self.frame
        else:
            yield from self.spill.frames()

    def close(self) -> None:
        """Delete the temporary file of a spilled read (nothing to do for other reads)."""
        if self.spill is not None:
            self.spill.close()

    def __enter__(self) -> ParsedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rows_known(self) -> int:
        """Records counted in ``rows_read`` but not parsed (``known``)."""
        return 0 if self.known is None else len(self.known.hashes)

    @property
    def rows_rejected(self) -> int:
        """Distinct lines with at least one reject."""
        return int(self.rejects["line"].nunique())

    def reject_messages(self) -> list[str]:
        """Return each reject as one line, e.g. ``intake.csv line 14, column current_ip: ...``."""
        return [
            f"{r.file} line {r.line}"
            + (f", column {r.column}" if r.column else "")
            + f": {r.reason}"
            for r in self.rejects.itertuples(index=False)
        ]


# --- format detection ----------------------------------------------------------------------------


def detect_format(path: Path, *, mapping: Path | None = None) -> str:
    """Recognise a file's format from its header row or XML root element.

    Kayako XML has the root ``<tickets>``; a Kayako audit CSV has ``actionmsg`` and ``dateline``
    columns; a Kayako report CSV has a column the mapping reads ``ticket_id`` from; a canonical
    CSV/XLSX is the table sharing the most (at least two) column names with the header.

    Args:
        path: The file.
        mapping: The report column mapping (default: the packaged one).

    Returns:
        One of :data:`FORMATS`.

    Raises:
        InvalidInputError: The file is unreadable, empty, binary, or matches no format.
    """
    path = Path(path)
    name = path.name
    head = _read_head(path)
    if head.startswith(_XLSX_MAGIC):
        header = _xlsx_header(path)
    else:
        start = head.removeprefix(_BOM).lstrip()
        if start.startswith(b"<"):
            root = xml_root(path, file=name)
            if root != XML_ROOT:
                raise InvalidInputError(
                    f"XML root element is <{root}>, not a Kayako <{XML_ROOT}> export", file=name
                )
            return "kayako-xml"
        _refuse_binary(head, name)
        text = head.removeprefix(_BOM).decode("utf-8", errors="replace")
        header = next((row for row in csv.reader(io.StringIO(text, newline="")) if row), [])
    return _format_from_header([h.strip() for h in header], mapping, name)


def _format_from_header(header: list[str], mapping: Path | None, name: str) -> str:
    cols = set(header) - {""}
    if not cols:
        raise InvalidInputError("has no header row", file=name)
    if {"actionmsg", "dateline"} <= cols:
        return "kayako-audit"
    if load_mapping(mapping).ticket_id_labels & cols:
        return "kayako-csv"
    scores = {
        fmt: len(cols & {c.name for c in TABLES[table]}) for fmt, table in CANONICAL_FORMATS.items()
    }
    best = max(scores.values())
    winners = [fmt for fmt, score in scores.items() if score == best]
    if best >= 2 and len(winners) == 1:
        return winners[0]
    shown = ", ".join(header[:8]) + (", …" if len(header) > 8 else "")
    raise InvalidInputError(
        f"not a recognised input: its header ({_clip(shown)}) matches none of the formats "
        f"{', '.join(FORMATS)}",
        file=name,
    )


# --- reading -------------------------------------------------------------------------------------


def read_file(
    path: Path,
    *,
    format: str = "auto",
    mapping: Path | None = None,
    tz: str = "America/Chicago",
    kayako: KayakoLookups = DEFAULT_LOOKUPS,
    previous: RecordHashes | None = None,
    block_rows: int = XML_BLOCK_TICKETS,
    spill: bool = False,
    sha256: str | None = None,
) -> ParsedFile:
    """Read, check and type one input file.

    Args:
        path: The file (CSV, XLSX or Kayako XML).
        format: ``auto`` (see :func:`detect_format`) or one of :data:`FORMATS`.
        mapping: Column mapping for a Kayako report CSV (default: the packaged
            ``kayako_report_mapping.yaml``).
        tz: IANA time zone of naive (local) times, e.g. ``America/Chicago``.
        kayako: Kayako department/status/type id → name tables.
        previous: The records the table's latest load accepted (``store.previous_records``).
            When most records of a canonical CSV with the same header are among them, byte
            for byte, only the others are parsed and checked; the rest are ``known``.
        block_rows: Kayako XML only: tickets parsed, checked and typed at a time.
        spill: Kayako XML only: keep the accepted rows in a temporary file, block by block
            (``ParsedFile.spill``), instead of in ``frame``: memory then stays flat however
            large the file. Other formats are read whole either way.
        sha256: The SHA-256 (hex) of the file's bytes, when the caller has just computed it
            (``pipeline.load_file`` does, to recognise a repeated file) and the file has not
            changed since; else it is computed from the bytes read.

    Returns:
        The accepted rows, the rejects and the counts; see :class:`ParsedFile`.

    Raises:
        InvalidInputError: The file as a whole is unusable; the message names the file.
        PolicyError: ``tz`` is not a known time zone.
    """
    path = Path(path)
    name = path.name
    _check_zone(tz)
    threading.Thread(target=_import_contracts, args=(previous is not None,)).start()
    if format == "auto":
        fmt = detect_format(path, mapping=mapping)
    elif format in FORMAT_TABLES:
        fmt = format
    else:
        raise InvalidInputError(
            f"unknown format {format!r}; expected auto or one of {', '.join(FORMATS)}", file=name
        )
    table = FORMAT_TABLES[fmt]
    structural = no_rejects()
    time_format: str | None = "epoch"
    if fmt == "kayako-xml":
        return _read_xml(path, kayako, tz, block_rows=block_rows, spill=spill, sha256=sha256)
    else:
        canonical = fmt in CANONICAL_FORMATS
        raw = _read_table(
            path, hashed=canonical, previous=previous if canonical else None, sha256=sha256
        )
        structural, sha256, encoding = raw.rejects, raw.sha256, raw.encoding
        texts, known = raw.texts, raw.known
        if fmt == "kayako-csv":
            report = load_mapping(mapping)
            time_format = report.date_format
            text = map_report(raw.header, raw.columns, raw.lines, report, file=name)
        elif fmt == "kayako-audit":
            text = map_audit(raw.header, raw.columns, raw.lines, file=name)
        else:
            time_format = None
            text = _canonical_text(raw, table, name)
        del raw  # the columns the mapping did not take are freed before the checks
    parser = _TimeParser(time_format, tz, file=report.source if fmt == "kayako-csv" else name)
    frame, rejects, keys = _check(table, text, parser)
    if known is not None and _claims_known_key(keys, known):
        # A record not parsed has the key of one parsed: only a full read rejects both.
        return read_file(path, format=fmt, mapping=mapping, tz=tz, kayako=kayako)
    all_rejects = _file_rejects(name, [structural, text.rejects, rejects], text.source_names)
    rows_read = len(text.lines) + structural["line"].nunique() + text.rows_skipped
    records = None
    if fmt in CANONICAL_FORMATS and texts is not None:
        lines = frame[SOURCE_LINE].to_numpy()
        records = RecordHashes(
            manifest_id=0,
            header=texts.header,
            hashes=texts.hashes[np.searchsorted(texts.lines, lines)],
            keys=keys["hash"].to_numpy()[np.searchsorted(text.lines, lines)],
        )
        rows_read += 0 if known is None else len(known.hashes)
    return ParsedFile(
        path=path,
        format=fmt,
        table=table,
        frame=frame,
        rejects=all_rejects,
        rows_read=int(rows_read),
        sha256=sha256,
        encoding=encoding,
        rows_skipped=text.rows_skipped,
        notes=text.notes,
        records=records,
        known=known,
    )


def _file_rejects(
    name: str, parts: list[pd.DataFrame], source_names: Mapping[str, str]
) -> pd.DataFrame:
    """A file's rejects: ``parts`` joined, columns named as in the file, ordered by line."""
    rejects = pd.concat(parts, ignore_index=True)
    rejects["column"] = rejects["column"].replace(dict(source_names))
    rejects.insert(0, "file", name)
    rejects = rejects.sort_values("line", kind="stable", ignore_index=True)
    return rejects.astype(
        {"file": "str", "line": "int64", "column": "str", "value": "str", "reason": "str"}
    )


def _read_xml(
    path: Path,
    kayako: KayakoLookups,
    tz: str,
    *,
    block_rows: int,
    spill: bool,
    sha256: str | None,
) -> ParsedFile:
    """Read a Kayako ticket XML export block by block (``read_file`` for ``kayako-xml``).

    Each block of tickets is checked and typed on its own, its rows kept (in memory, or spilled
    to a temporary file) and its keys noted; a key repeated anywhere in the file, within a block
    or across blocks, then rejects every copy, as for any other file.
    """
    name = path.name
    table = FORMAT_TABLES["kayako-xml"]
    xml = TicketXml(path, kayako, file=name, block_tickets=block_rows, sha256=sha256)
    parser = _TimeParser("epoch", tz, file=name)
    folder = tempfile.TemporaryDirectory(prefix="ipchange-") if spill else None
    try:
        where = None if folder is None else Path(folder.name)
        spilled = _Spill(where, "rows")
        keys = _FileKeys(table, where)
        frames: list[pd.DataFrame] = []
        parts: list[pd.DataFrame] = []
        rows_read = 0
        for text in xml.blocks():
            frame, rejects, block_keys = _check(table, text, parser, duplicates=False)
            parts += [text.rejects, rejects]
            keys.add(block_keys, text.lines)
            rows_read += len(text.lines)
            if folder is None:
                frames.append(frame)
            else:
                spilled.append(pa.Table.from_pandas(frame, preserve_index=False))
            del text, frame
        duplicates = keys.rejects()
    except BaseException:
        if folder is not None:
            folder.cleanup()
        raise
    rejects = _file_rejects(name, [*parts, duplicates], xml.source_names)
    drop = np.unique(duplicates["line"].to_numpy(dtype=np.int64))
    rows = _SpilledRows(table, folder, spilled, drop) if folder is not None else None
    if rows is None:
        frame = pd.concat(frames, ignore_index=True)
        frame = frame[~np.isin(frame[SOURCE_LINE].to_numpy(), drop)].reset_index(drop=True)
    else:
        dtypes = {**typed_dtypes(table), SOURCE_LINE: "int64"}
        frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})
    return ParsedFile(
        path=path,
        format="kayako-xml",
        table=table,
        frame=frame,
        rejects=rejects,
        rows_read=rows_read,
        sha256=xml.sha256,
        encoding=xml.encoding,
        notes=xml.notes,
        spill=rows,
    )


_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""Spilled blocks are LZ4-compressed: a third of the disk for little CPU."""


class _Spill:
    """Arrow tables appended block by block, read back in order, one block at a time.

    Kept in memory when ``folder`` is ``None``, else in an Arrow IPC file there.
    """

    def __init__(self, folder: Path | None, name: str) -> None:
        self._path = None if folder is None else folder / f"{name}.arrow"
        self._tables: list[pa.Table] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None

    def append(self, table: pa.Table) -> None:
        """Add a block (its schema must be that of the first block)."""
        if self._path is None:
            self._tables.append(table)
            return
        if self._schema is None:
            self._schema = table.schema
            self._writer = pa.ipc.new_file(str(self._path), self._schema, options=_SPILL_OPTIONS)
        if self._writer is None:
            raise RuntimeError(f"{self._path} was read already: no block can be added")
        self._writer.write_table(table.cast(self._schema))

    def __iter__(self) -> Iterator[pa.Table]:
        if self._path is None:
            yield from self._tables
            return
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._schema is None:
            return
        with pa.OSFile(str(self._path)) as source:  # read, not mapped: a block's memory goes
            reader = pa.ipc.open_file(source)  # with it
            for i in range(reader.num_record_batches):
                yield pa.Table.from_batches([reader.get_batch(i)])


@dataclass(frozen=True, eq=False)
class _SpilledRows:
    """The accepted rows of a spilled read (:attr:`ParsedFile.spill`)."""

    table: str
    folder: tempfile.TemporaryDirectory[str]
    blocks: _Spill
    drop: np.ndarray  # lines of rows rejected once the whole file was read (repeated keys)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Yield the typed rows block by block, without the rows of ``drop``."""
        if not Path(self.folder.name).is_dir():
            raise IpchangeError("the spilled rows of this file were deleted (ParsedFile.close)")
        for block in self.blocks:
            frame = _typed_frame(self.table, block)
            del block
            if len(self.drop):
                keep = ~np.isin(frame[SOURCE_LINE].to_numpy(), self.drop)
                frame = frame[keep].reset_index(drop=True)
            yield frame

    def close(self) -> None:
        """Delete the temporary file."""
        self.folder.cleanup()


class _FileKeys:
    """The natural keys of a file checked block by block, to reject every copy of a repeat.

    Memory holds a 64-bit hash of each valid key (8 bytes a row); the keys themselves, with
    their lines, go to a :class:`_Spill`, and only those whose hash repeats are read back and
    compared exactly (two different keys may share a hash).
    """

    def __init__(self, table: str, folder: Path | None) -> None:
        self._table = table
        self._hashes: list[np.ndarray] = []
        self._keys = _Spill(folder, "keys")

    def add(self, keys: pa.Table, lines: np.ndarray) -> None:
        """Note a block's keys (``valid``, ``hash``, ``key``, ``value`` of :func:`_check`)."""
        valid = keys["valid"]
        keys = keys.filter(valid).append_column("line", pa.array(lines[_np(valid)]))
        self._hashes.append(keys["hash"].to_numpy())
        self._keys.append(keys)

    def rejects(self) -> pd.DataFrame:
        """One reject per copy of every key seen more than once (``line``, ``column``, …)."""
        repeated = repeats(np.concatenate([np.empty(0, np.int64), *self._hashes]))
        if not len(repeated):
            return no_rejects()
        suspects = pa.concat_tables(
            block.filter(pa.array(np.isin(block["hash"].to_numpy(), repeated)))
            for block in self._keys
        )
        rej = _Rejects(suspects["line"].to_numpy())
        keys = suspects["key"]
        _reject_duplicates(
            self._table,
            lambda rows: keys.take(pa.array(rows)),
            _np(keys.is_valid()),
            suspects["value"],
            suspects["hash"].to_numpy(),
            rej,
        )
        return rej.frame()


_PANDERA_BACKENDS = (
    "pandera.backends.pandas.builtin_checks",
    "pandera.backends.pandas.builtin_hypotheses",
    "pandera.backends.pandas.container",
    "pandera.backends.pandas.components",
    "pandera.api.geopandas.container",
)
"""What pandera imports on the first validate to register its pandas backends (~0.4 s, most
of it hypothesis and pandera's strategies)."""


def _import_contracts(backends: bool) -> None:
    """Import pandera's models while the file is read (arrow releases the GIL).

    pandera takes ~0.8 s to import and only the checks at the end of a read need it. With
    ``backends`` (a reload, which parses only the records it does not know: little else to
    wait for), its pandas backends too; not on a first load, whose peak memory grew with them
    (3M events: 1.81 → 1.90 GB, measured) for a 0.4 s gain in a 30 s load. A failure here is
    left to the import in :func:`_validate_contract`, which reports it.
    """
    with suppress(Exception):
        for module in ("ipchange_core.contracts", *(_PANDERA_BACKENDS if backends else ())):
            importlib.import_module(module)


def _check_zone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"unknown time zone {tz!r}") from None


def _clip(value: str) -> str:
    return value if len(value) <= _QUOTE_MAX else value[: _QUOTE_MAX - 1] + "…"


def _q(value: str) -> str:
    """Quote a value for a message (long values shortened)."""
    return f"'{_clip(value)}'"


@dataclass(frozen=True)
class _RawTable:
    """A tabular file (CSV or XLSX) as stripped text, before any meaning is given to it."""

    header: list[str]
    columns: list[pa.Array]
    lines: np.ndarray
    rejects: pd.DataFrame
    sha256: str
    encoding: str
    texts: RecordTexts | None = None
    known: RecordHashes | None = None


def _row_table(
    header: list[str],
    columns: list[pa.Array],
    lines: list[int],
    bad: list[dict[str, object]],
    sha256: str,
    encoding: str,
) -> _RawTable:
    """A :class:`_RawTable` from a file read row by row, with its malformed-row rejects."""
    rejects = pd.concat([no_rejects(), pd.DataFrame(bad)], ignore_index=True) if bad else None
    return _RawTable(
        header=[h.strip() for h in header],
        columns=columns,
        lines=np.asarray(lines, dtype=np.int64),
        rejects=no_rejects() if rejects is None else rejects,
        sha256=sha256,
        encoding=encoding,
    )


def _read_head(path: Path) -> bytes:
    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as err:
        raise InvalidInputError(f"cannot read the file: {err.strerror or err}", file=name) from None
    if not head.removeprefix(_BOM).strip():
        raise InvalidInputError("is empty", file=name)
    return head


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise InvalidInputError(
            f"cannot read the file: {err.strerror or err}", file=path.name
        ) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _refuse_binary(data: bytes, name: str) -> None:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInputError("is UTF-16 text; save it as UTF-8 (or cp1252)", file=name)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InvalidInputError(
            f"holds NUL bytes (first on line {_line_of(data, nul)}): "
            "a binary file, not a text table",
            file=name,
        )


def _decode(data: bytes, name: str) -> tuple[bytes, str]:
    """Return the text as UTF-8 bytes without BOM, and the encoding it was found in.

    UTF-8 (with or without BOM) is taken as is; otherwise the bytes must be valid cp1252.
    """
    if _BLANK_FILE.match(data):
        raise InvalidInputError("is empty", file=name)
    _refuse_binary(data, name)
    if data.isascii():
        return data, "utf-8"
    if data.startswith(_BOM):
        body = data[len(_BOM) :]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidInputError(
                f"starts with a UTF-8 byte-order mark but byte 0x{body[err.start]:02x} on line "
                f"{_line_of(body, err.start)} is not UTF-8",
                file=name,
            ) from None
        return body, "utf-8-sig"
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError as utf8_err:
        try:
            return data.decode("cp1252").encode("utf-8"), "cp1252"
        except UnicodeDecodeError as cp_err:
            raise InvalidInputError(
                f"is neither UTF-8 (byte 0x{data[utf8_err.start]:02x} on line "
                f"{_line_of(data, utf8_err.start)} is invalid) nor cp1252 (byte "
                f"0x{data[cp_err.start]:02x} on line {_line_of(data, cp_err.start)} is undefined)",
                file=name,
            ) from None


def _read_table(
    path: Path,
    *,
    hashed: bool = False,
    previous: RecordHashes | None = None,
    sha256: str | None = None,
) -> _RawTable:
    """Read a CSV or XLSX file as stripped text columns with their line numbers.

    With ``hashed``, a CSV's records are also located and hashed (``texts``), unless some
    record spans lines; with ``previous`` as well, records found among those are not parsed
    when they are most of the file (``known``; lines and rejects keep the file's numbering).
    The file's SHA-256 is ``sha256`` when given (see :func:`read_file`), else that of the bytes
    read.
    """
    data = _read_bytes(path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        digest: Future[str] = Future()
        if sha256 is None:  # hashing releases the GIL: overlap it
            digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
        else:
            digest.set_result(sha256)
        if data.startswith(_XLSX_MAGIC):
            return replace(_read_xlsx(data, path.name, ""), sha256=digest.result())
        body, encoding = _decode(data, path.name)
        if not hashed:
            return replace(_read_csv(body, path.name, "", encoding), sha256=digest.result())
        if previous is None:
            located = pool.submit(record_texts, body)
            raw = _read_csv(body, path.name, "", encoding)
            return replace(raw, sha256=digest.result(), texts=located.result())
        texts = record_texts(body)
        at = None if texts is None else texts.known(previous)
        if at is None or 2 * np.count_nonzero(at >= 0) < len(at):  # mostly new: read it all
            raw = _read_csv(body, path.name, "", encoding)
            return replace(raw, sha256=digest.result(), texts=texts)
        rest = np.flatnonzero(at < 0)
        raw = _read_csv(texts.select(body, rest), path.name, "", encoding)
        # The text read holds the header, then one line per record of ``rest``.
        lines = texts.lines[rest]
        rejects = raw.rejects.assign(line=lines[raw.rejects["line"].to_numpy(np.int64) - 2])
        return replace(
            raw,
            lines=lines[raw.lines - 2],
            rejects=rejects,
            sha256=digest.result(),
            texts=texts,
            known=previous.take(at[at >= 0]),
        )


def _structural_reject(line: int, text: str, reason: str) -> dict[str, object]:
    return {"line": line, "column": "", "value": _clip(text), "reason": reason}


def _one_line_each(body: bytes, rows: int) -> bool:
    """Whether the header and each of ``rows`` records take exactly one line each.

    Then no quoted value holds a line break and no line is blank (pyarrow skips blank lines).
    """
    if b'"' not in body:
        return b"\n\n" not in body and b"\n\r\n" not in body
    return body.count(b"\n") + (not body.endswith(b"\n")) == rows + 1


def _record_starts(body: bytes) -> tuple[np.ndarray, bool]:
    """Find the line each CSV record starts on (header first), vectorised over the bytes.

    A line feed ends a record unless an odd number of quote characters precede it (it is inside
    a quoted value); empty lines hold no record.

    Returns:
        The 1-based start line of every record, and whether any quoted value holds a line break.
    """
    arr = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    inside = quoted_line_feeds(body, newlines)
    ends = np.flatnonzero(~inside)  # line feeds that end a line outside any quoted value
    starts = np.concatenate(([1], ends + 2)).astype(np.int64)
    first_byte = np.concatenate(([0], newlines[ends] + 1))
    padded = np.concatenate((arr, np.zeros(2, dtype=np.uint8)))
    at, after = padded[first_byte], padded[first_byte + 1]
    empty = (first_byte >= len(arr)) | (at == 10) | ((at == 13) & (after == 10))
    return starts[~empty], bool(inside.any())


def _read_csv(body: bytes, name: str, sha256: str, encoding: str) -> _RawTable:
    """Read a CSV with pyarrow; fall back to the standard library for irregular files.

    Each row carries the line it starts on: one line per row in the usual case; otherwise
    :func:`_record_starts` counts quoted line breaks and blank lines. The fallback reads files
    with rows of the wrong width (each rejected) and bare-CR line ends.
    """
    head = body[: 1 << 20].decode("utf-8", errors="ignore")
    reader = csv.reader(io.StringIO(head, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return _read_csv_slow(body, name, sha256, encoding)
    if reader.line_num != 1 or not header or bare_cr(body):
        return _read_csv_slow(body, name, sha256, encoding)
    table = _pyarrow_csv(body, len(header), multiline=False)
    if table is not None and _one_line_each(body, table.num_rows):  # the usual case
        lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    else:
        starts, multiline = _record_starts(body)
        if multiline:  # a quoted value holds a line break: parse again allowing for that
            table = _pyarrow_csv(body, len(header), multiline=True)
        if table is None or len(starts) != table.num_rows + 1:  # malformed rows
            return _read_csv_slow(body, name, sha256, encoding)
        lines = starts[1:]
    # One contiguous array per column, each block freed once copied. Arrow's allocator keeps
    # freed blocks for reuse, but a column's copy is too large to fit in them: handed back to
    # the system column by column, they do not add up (3M audit rows: 1.7 → 1.4 GB peak).
    columns = []
    pool = pa.default_memory_pool()
    while table.num_columns:
        columns.append(_contiguous(_strip(table.column(0))))
        table = table.remove_column(0)
        pool.release_unused()
    return _RawTable(
        header=[h.strip() for h in header],
        columns=columns,
        lines=lines,
        rejects=no_rejects(),
        sha256=sha256,
        encoding=encoding,
    )


def _pyarrow_csv(body: bytes, width: int, *, multiline: bool) -> pa.Table | None:
    """Parse with pyarrow, every value as text; ``None`` when some row is malformed."""
    names = [f"c{i}" for i in range(width)]
    invalid: list[object] = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=_CSV_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=multiline,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return None if invalid else table


def _read_csv_slow(body: bytes, name: str, sha256: str, encoding: str) -> _RawTable:
    """Read a CSV with the standard library, for files the fast reader cannot number exactly.

    Used when a file has blank lines, bare CR line ends or rows with the wrong number of fields;
    each row's line is where it starts.
    """
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[dict[str, object]] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            if header is None:
                header = record
            elif len(record) == len(header):
                rows.append(record)
                lines.append(start)
            else:
                reason = f"row has {len(record)} field(s) but the header has {len(header)}"
                bad.append(_structural_reject(start, ",".join(record), reason))
    except csv.Error as err:
        raise InvalidInputError(f"line {end + 1}: unreadable CSV ({err})", file=name) from None
    if header is None:
        raise InvalidInputError("is empty", file=name)
    columns = [
        _strip(text_array(list(col))) if rows else text_array([])
        for col in (zip(*rows, strict=True) if rows else [()] * len(header))
    ]
    return _row_table(header, columns, lines, bad, sha256, encoding)


_XLSX_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    OSError,
    ValueError,
    TypeError,
    SyntaxError,  # the sheet's XML (xml.etree and lxml parse errors derive from it)
)
"""What a damaged workbook raises, on opening or later while its sheet is read lazily."""


@contextmanager
def _first_sheet(data: bytes, name: str) -> Iterator[object]:
    """The first worksheet, read-only; damage found while it is read refuses the file by name.

    The workbook is read from its bytes whatever the file is called (given a path, openpyxl
    refuses names that do not end in ``.xlsx``).
    """
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            yield wb.worksheets[0]
        finally:
            wb.close()
    except _XLSX_DAMAGE as err:
        raise InvalidInputError(
            f"is not a readable XLSX workbook ({type(err).__name__}: {err})", file=name
        ) from None


def _xlsx_header(path: Path) -> list[str]:
    with _first_sheet(_read_bytes(path), path.name) as ws:
        first = next(ws.iter_rows(min_row=1, max_row=1), ())  # type: ignore[attr-defined]
        return [_cell_text(cell) for cell in first]


def _cell_text(cell: object) -> str:
    """Return a cell's text as the sheet shows it.

    Numbers print without a spurious ``.0`` and keep zero-padding formats such as ``00000``;
    dates and times print as ISO-8601 (``2026-11-23 09:15:00``), because the order Excel displays
    day and month in depends on the reader's locale.
    """
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        spec = "microseconds" if value.microsecond else "seconds"
        return value.isoformat(sep=" ", timespec=spec)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        number_format = str(getattr(cell, "number_format", "General"))
        if float(value).is_integer():
            text = str(int(value))
            if re.fullmatch(r"0+", number_format):
                text = text.zfill(len(number_format))
            return text
        return repr(float(value))
    return str(value)


def _read_xlsx(data: bytes, name: str, sha256: str) -> _RawTable:
    """Read the first sheet of a workbook: row 1 is the header, line = sheet row number."""
    with _first_sheet(data, name) as ws:
        rows = ws.iter_rows(min_row=1)  # type: ignore[attr-defined]
        header = [_cell_text(c) for c in next(rows, ())]
        while header and not header[-1].strip():
            header.pop()
        if not header:
            raise InvalidInputError("first sheet has no header in row 1", file=name)
        width = len(header)
        records: list[list[str]] = []
        lines: list[int] = []
        bad: list[dict[str, object]] = []
        for number, row in enumerate(rows, start=2):
            texts = [_cell_text(c) for c in row]
            if not any(t.strip() for t in texts):
                continue
            if any(t.strip() for t in texts[width:]):
                reason = f"row has values right of the header's last column ({width})"
                bad.append(_structural_reject(number, ",".join(texts), reason))
                continue
            records.append((texts + [""] * width)[:width])
            lines.append(number)
    columns = [_strip(text_array([r[i] for r in records])) for i in range(width)]
    return _row_table(header, columns, lines, bad, sha256, "xlsx")


def _canonical_text(raw: _RawTable, table: str, name: str) -> CanonicalText:
    """Pick a canonical table's columns out of a file by header name."""
    seen: set[str] = set()
    for label in raw.header:
        if label in seen and label:
            raise InvalidInputError(f"column {label!r} appears twice in the header", file=name)
        seen.add(label)
    columns = TABLES[table]
    wanted = [c.name for c in columns] + list(OPTIONAL_EXTRAS.get(table, ()))
    missing = [c.name for c in columns if c.required and c.name not in seen]
    if missing:
        raise InvalidInputError(
            f"missing required column(s) {', '.join(missing)} for {table}; "
            f"the header has: {_clip(', '.join(raw.header))}",
            file=name,
        )
    index = {label: i for i, label in enumerate(raw.header)}
    n = len(raw.lines)
    text = {
        col: raw.columns[index[col]] if col in index else text_array(pa.repeat("", n))
        for col in wanted
    }
    notes = []
    absent = [c.name for c in columns if c.name not in index]
    if absent:
        notes.append(f"column(s) absent, read as blank: {', '.join(absent)}")
    extra = [label for label in raw.header if label not in wanted]
    if extra:
        notes.append(f"ignored column(s) not in {table}: {_clip(', '.join(extra))}")
    return CanonicalText(columns=text, lines=raw.lines, rejects=no_rejects(), notes=tuple(notes))


# --- value checks --------------------------------------------------------------------------------


class _Rejects:
    """Collects problems row by row; ``bad`` marks every row with at least one."""

    def __init__(self, lines: np.ndarray) -> None:
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)
        self.parts: list[pd.DataFrame] = []

    def add(
        self,
        column: str,
        mask: np.ndarray,
        values: pa.Array | None,
        reason: str | Callable[[str], str] | list[str],
    ) -> None:
        """Reject the rows in ``mask``; ``reason`` is text, a function of the value, or a list."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        self.bad[idx] = True
        vals = values.take(pa.array(idx)).to_pylist() if values is not None else [""] * len(idx)
        if callable(reason):
            reasons = [reason(v) for v in vals]
        elif isinstance(reason, str):
            reasons = [reason] * len(idx)
        else:
            reasons = reason
        self.parts.append(
            pd.DataFrame(
                {"line": self.lines[idx], "column": column, "value": vals, "reason": reasons}
            )
        )

    def merge(self, other: _Rejects) -> None:
        """Take over the problems another collector found (same rows)."""
        self.bad |= other.bad
        self.parts.extend(other.parts)

    def frame(self) -> pd.DataFrame:
        return pd.concat([no_rejects(), *self.parts], ignore_index=True)


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class _Checked:
    """One column after its checks: typed values, which rows failed, and why."""

    typed: pa.Array | pa.ChunkedArray
    blank: np.ndarray
    bad: np.ndarray
    rejects: _Rejects
    us: np.ndarray | None = None  # UTC microseconds of a time column (_NAT = none)
    asap: np.ndarray | None = None  # rows of a requested time that say ASAP


def _check_column(
    col: Column, values: pa.Array | pa.ChunkedArray, parser: _TimeParser, lines: np.ndarray
) -> _Checked:
    """Check and type one canonical column on its own (columns are checked in parallel)."""
    rej = _Rejects(lines)
    blank = _blanks(values)
    if col.required:
        rej.add(col.name, blank, None, "is blank, but a value is required")
    if col.kind == "enum":
        typed, bad = _check_enum(values, blank, col, rej)
    elif col.kind == "bool":
        typed, bad = _check_bool(values, blank, col, rej)
    elif col.kind == "ip":
        typed, bad = _check_ip(values, blank, col, rej)
    elif col.kind in ("timestamp", "requested_time"):
        present = ~blank
        asap = None
        if col.kind == "requested_time":
            asap = _np(pc.match_like(values, "asap", ignore_case=True))
            present &= ~asap
        us, bad = _check_time(values, present, col, parser, rej)
        typed = pa.array(us, type=pa.int64(), mask=us == _NAT).cast(pa.timestamp("us", tz="UTC"))
        return _Checked(typed, blank, bad, rej, us, asap)
    else:
        typed, bad = values, np.zeros(len(lines), dtype=bool)
    return _Checked(typed, blank, bad, rej)


def _check(
    table: str, text: CanonicalText, parser: _TimeParser, *, duplicates: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, pa.Table]:
    """Check and type every canonical column.

    The columns of ``text`` are consumed: ``text.columns`` is emptied once they are checked,
    and each is freed as soon as its accepted rows are copied, so the text and its typed copy
    of a whole file are never in memory together.

    Args:
        table: The canonical table.
        text: Its rows as text.
        parser: Reads the time columns.
        duplicates: Reject every copy of a natural key repeated within ``text``; ``False``
            leaves that to the caller (a file read in blocks: :class:`_FileKeys`).

    Returns:
        The accepted typed frame, the rejects, and the keys of every row of ``text``: ``valid``
        (bool: the natural key is neither blank nor invalid) and ``hash`` (int64
        :func:`~ipchange_core.records.text_hashes` of the key as one text); with
        ``duplicates=False`` also ``key`` (that text, null where not valid) and ``value`` (the
        first key column), as :func:`_reject_duplicates` takes them.
    """
    n = len(text.lines)
    rej = _Rejects(text.lines)
    if len(text.rejects):
        rej.bad |= np.isin(text.lines, text.rejects["line"].to_numpy())
    columns = TABLES[table]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # arrow and numpy release the GIL
        checked = dict(
            zip(
                (col.name for col in columns),
                pool.map(
                    lambda col: _check_column(col, text.columns[col.name], parser, text.lines),
                    columns,
                ),
                strict=True,
            )
        )
    valid_key = np.ones(n, dtype=bool)
    for name, result in checked.items():
        rej.merge(result.rejects)
        if name in KEYS[table]:
            valid_key &= ~result.blank & ~result.bad
    typed = {name: result.typed for name, result in checked.items()}
    times = {name: r.us for name, r in checked.items() if r.us is not None}
    for start, end in ORDER_RULES.get(table, ()):
        _check_order(start, end, times, text.columns, rej)
    hashes = np.empty(n, dtype=np.int64)
    for start in range(0, n, _KEY_BLOCK):  # the key texts of a block at a time (3M: ~0.4 GB)
        rows = slice(start, start + _KEY_BLOCK)
        hashes[rows] = text_hashes(_key_text(table, typed, times, valid_key, rows))
    keys = pa.table({"valid": valid_key, "hash": hashes})
    value = typed[KEYS[table][0]]
    if duplicates:
        key_text = functools.partial(_key_text, table, typed, times, valid_key)
        _reject_duplicates(table, key_text, valid_key, value, hashes, rej)
        del key_text
    else:
        key = _key_text(table, typed, times, valid_key)
        keys = keys.append_column("key", key).append_column("value", value)
        del key
    del value

    for extra, dtype in typed_dtypes(table).items():
        if extra in typed:
            continue
        if dtype == "bool":  # requested_asap
            asap = checked["requested_change_at"].asap
            typed[extra] = pa.array(asap if asap is not None else np.zeros(n, dtype=bool))
        else:
            typed[extra] = text.columns.get(extra, text_array(pa.repeat("", n)))
    typed[SOURCE_LINE] = pa.array(text.lines, type=pa.int64())
    del checked
    text.columns.clear()
    keep = None if not rej.bad.any() else pa.array(~rej.bad)
    for name in list(typed):  # a filter copies the column: the text of each goes once copied
        column = typed.pop(name)
        typed[name] = column if keep is None else column.filter(keep)
        del column
    frame = _typed_frame(table, pa.table(typed))
    del typed
    frame, contract = _validate_contract(table, frame)
    rejects = rej.frame()
    if len(contract):
        rejects = pd.concat([rejects, contract], ignore_index=True)
    return frame, rejects, keys


def _claims_known_key(keys: pa.Table, known: RecordHashes) -> bool:
    """Whether a parsed row's natural key (``_check``'s ``keys``) is that of a known record."""
    valid = _np(keys["valid"])
    return bool(pd.Series(known.keys).isin(keys["hash"].to_numpy()[valid]).any())


def _typed_frame(table: str, arrow: pa.Table) -> pd.DataFrame:
    """The typed frame (``typed_dtypes`` and ``source_line``) of a table's Arrow columns."""
    frame = arrow.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    dtypes = {**typed_dtypes(table), SOURCE_LINE: "int64"}
    return frame[list(dtypes)].astype(dtypes)


def _check_order(
    start: str,
    end: str,
    times: dict[str, np.ndarray],
    columns: dict[str, pa.Array | pa.ChunkedArray],
    rej: _Rejects,
) -> None:
    """Reject rows whose ``end`` instant is strictly before their ``start`` (equal is fine)."""
    a, b = times[start], times[end]
    before = (a != _NAT) & (b != _NAT) & (b < a)
    if not before.any():
        return
    mask = pa.array(before)
    starts = columns[start].filter(mask).to_pylist()
    ends = columns[end].filter(mask).to_pylist()
    reasons = [f"{_q(e)} is before {start} {_q(s)}" for s, e in zip(starts, ends, strict=True)]
    rej.add(end, before, columns[end], reasons)


def _check_enum(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: _Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """Accept the column's values in any letter case; store them lower-case."""
    allowed = pa.array(col.values, pa.large_string())
    other = ~_np(pc.is_in(values, value_set=allowed)) & ~blank
    bad = np.zeros(len(values), dtype=bool)
    if other.any():
        mask = pa.array(other)
        lower = _contiguous(pc.utf8_lower(values.filter(mask)))
        bad[np.flatnonzero(other)] = ~_np(pc.is_in(lower, value_set=allowed))
        listed = ", ".join(col.values)
        rej.add(col.name, bad, values, lambda v: f"{_q(v)} is not one of: {listed}")
        values = pc.replace_with_mask(_contiguous(values), mask, lower)
    return values, bad


def _check_bool(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: _Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """``yes``/``no`` in any letter case; blank is unknown (NA)."""
    yes = _np(pc.match_like(values, "yes", ignore_case=True))
    no = _np(pc.match_like(values, "no", ignore_case=True))
    bad = ~(yes | no | blank)
    rej.add(col.name, bad, values, lambda v: f"{_q(v)} is not yes or no")
    return pa.array(yes, mask=~(yes | no)), bad


def _check_ip(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: _Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """An IPv4 or IPv6 address as :mod:`ipaddress` reads it; IPv6 is stored in compressed form.

    Dotted-quad IPv4 is checked by a vectorised pattern; only the other values (IPv6 or bad)
    go through :func:`ipaddress.ip_address`, once per distinct value.
    """
    other = ~_np(pc.match_substring_regex(values, _IPV4)) & ~blank
    bad = np.zeros(len(values), dtype=bool)
    if other.any():
        mask = pa.array(other)
        subset = values.filter(mask).to_pylist()
        canonical: dict[str, str | None] = {}
        for value in dict.fromkeys(subset):
            try:
                canonical[value] = str(ipaddress.ip_address(value))
            except ValueError:
                canonical[value] = None
        fixed = [canonical[v] for v in subset]
        bad[np.flatnonzero(other)] = [f is None for f in fixed]
        rej.add(col.name, bad, values, lambda v: f"{_q(v)} is not a valid IP address")
        replacement = [f if f is not None else v for f, v in zip(fixed, subset, strict=True)]
        replacement_array = pa.array(replacement, pa.large_string())
        values = pc.replace_with_mask(_contiguous(values), mask, replacement_array)
    return values, bad


def _check_time(
    values: pa.Array | pa.ChunkedArray,
    present: np.ndarray,
    col: Column,
    parser: _TimeParser,
    rej: _Rejects,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the non-blank times of a column; return UTC microseconds (``_NAT`` = none) and bad.

    The times are parsed :data:`_TIME_BLOCK` rows at a time: a parse makes a score of
    temporary integer arrays the length of its input, which for a whole 3M-row column took
    ~0.5 GB at once.
    """
    n = len(values)
    us = np.full(n, _NAT, dtype=np.int64)
    codes = np.full(n, _OK, dtype=np.int8)
    for start in range(0, n, _TIME_BLOCK):
        block = present[start : start + _TIME_BLOCK]
        idx = np.flatnonzero(block)
        if len(idx):
            subset = _contiguous(values.slice(start, len(block)).filter(pa.array(block)))
            us[start + idx], codes[start + idx] = parser.parse(subset)
    bad = codes != _OK
    if bad.any():
        raw = values.filter(pa.array(bad)).to_pylist()
        reasons = [parser.reason(int(c), v) for c, v in zip(codes[bad], raw, strict=True)]
        rej.add(col.name, bad, values, reasons)
    return us, bad


def _key_text(
    table: str,
    typed: dict[str, pa.Array],
    times: dict[str, np.ndarray],
    valid_key: np.ndarray,
    rows: slice | np.ndarray | None = None,
) -> pa.Array | pa.ChunkedArray:
    """The natural key of each row as one text; null where ``valid_key`` is False.

    Times compare as instants, so the same moment written with different offsets is one key.
    ``rows`` (a slice, or row numbers) selects the rows; ``None`` is every row.
    """
    rows = slice(None) if rows is None else rows

    def part(name: str) -> pa.Array | pa.ChunkedArray:
        if name in times:
            return pa.array(times[name][rows]).cast(pa.large_string())
        column = typed[name]
        return column[rows] if isinstance(rows, slice) else column.take(pa.array(rows))

    parts = [part(name) for name in KEYS[table]]
    key = (
        parts[0]
        if len(parts) == 1
        else pc.binary_join_element_wise(*parts, pa.scalar("\x1f", pa.large_string()))
    )
    return pc.if_else(pa.array(valid_key[rows]), key, pa.scalar(None, pa.large_string()))


def _reject_duplicates(
    table: str,
    key_text: Callable[[np.ndarray], pa.Array | pa.ChunkedArray],
    valid: np.ndarray,
    values: pa.Array | pa.ChunkedArray,
    hashes: np.ndarray,
    rej: _Rejects,
) -> None:
    """Reject every copy of a key seen more than once, naming the other lines.

    Rows not ``valid`` are left out: their key is blank or invalid, and they are rejected for
    that already. ``key_text`` gives the key texts (:func:`_key_text`) of the rows it is given;
    ``values`` (the first key column) is the value a reject shows. ``hashes`` (int64, of each
    row's key text) find the candidates: only the keys whose hash repeats are written out and
    compared as texts (sorting 3M hashes takes a tenth of the time of counting 3M texts).
    """
    keys = KEYS[table]
    repeated = repeats(hashes[valid])
    if not len(repeated):
        return
    suspects = np.flatnonzero(valid & np.isin(hashes, repeated))
    texts = key_text(suspects)
    counts = pc.value_counts(texts)
    dup_values = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(dup_values):
        return  # only hashes collide
    found = _np(pc.is_in(texts, value_set=dup_values))
    idx = suspects[found]
    dup = np.zeros(len(hashes), dtype=bool)
    dup[idx] = True
    dup_keys = texts.filter(pa.array(found)).to_pylist()
    by_key: dict[str, list[int]] = {}
    for k, line in zip(dup_keys, rej.lines[idx].tolist(), strict=True):
        by_key.setdefault(k, []).append(line)
    what = "ticket_id {}" if len(keys) == 1 else f"event ({', '.join(keys)})"
    reasons = []
    for k, line in zip(dup_keys, rej.lines[idx].tolist(), strict=True):
        others = [x for x in by_key[k] if x != line]
        shown = ", ".join(map(str, others[:10]))
        if len(others) > 10:
            shown += f" and {len(others) - 10} more"
        subject = what.format(_q(k)) if len(keys) == 1 else what
        reasons.append(f"duplicate {subject}: also on line(s) {shown}; every copy is rejected")
    rej.add(keys[0], dup, values, reasons)


def _validate_contract(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate the typed frame against its pandera model (lazy: every failing row collected).

    The checks above should leave nothing for the model to find; a row that still fails is
    rejected with the failed check, and a failure not tied to a row is a bug (``RuntimeError``).
    """
    from pandera.errors import SchemaErrors  # pandera loads in ~1 s: only when validating

    from ipchange_core.schema import FRAME_MODELS

    try:
        return FRAME_MODELS[table].validate(frame, lazy=True), no_rejects()
    except SchemaErrors as err:
        cases = err.failure_cases
    if cases["index"].isna().any():
        raise RuntimeError(f"typed {table} frame breaks its declared contract:\n{cases}")
    rows = cases["index"].astype("int64").to_numpy()
    rejects = pd.DataFrame(
        {
            "line": frame[SOURCE_LINE].to_numpy()[rows],
            "column": cases["column"].astype("str").to_numpy(),
            "value": cases["failure_case"].astype("str").to_numpy(),
            "reason": [f"fails the {table} contract check {c}" for c in cases["check"]],
        }
    )
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    return frame[keep].reset_index(drop=True), rejects


# --- times ---------------------------------------------------------------------------------------

_OK, _BAD_FORMAT, _BAD_VALUE, _BAD_YEAR, _BAD_PRECISION, _BAD_OFFSET, _GAP, _OVERLAP = range(8)
_YEARS = (1900, 2999)
_DAYS_IN_MONTH = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)
_MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_STRFTIME = {
    "d": r"(?P<d>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "Y": r"(?P<Y>\d{4})",
    "B": r"(?P<B>(?i:" + "|".join(_MONTHS) + "))",
    "b": r"(?P<b>(?i:" + "|".join(m[:3] for m in _MONTHS) + "))",
    "H": r"(?P<H>\d{1,2})",
    "I": r"(?P<I>\d{1,2})",
    "p": r"(?P<p>(?i:am|pm))",
    "M": r"(?P<M>\d{2})",
    "S": r"(?P<S>\d{2})",
    "f": r"(?P<f>\d{1,6})",
}


def strftime_regex(fmt: str) -> str:
    """Translate a ``strftime`` format into an anchored regular expression with named groups.

    Supported: ``%d %m %Y %B %b %H %I %p %M %S %f %%``; a space matches one or more spaces.

    Raises:
        ValueError: An unsupported or repeated directive, or year/month/day/hour/minute missing.
    """
    out, seen, i = ["^"], set(), 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            i += 2
            if d == "%":
                out.append("%")
                continue
            if d not in _STRFTIME or d in seen:
                raise ValueError(
                    f"directive %{d} is {'repeated' if d in seen else 'not supported'}"
                )
            seen.add(d)
            out.append(_STRFTIME[d])
            continue
        out.append(r"\s+" if ch.isspace() else re.escape(ch))
        i += 1
    needs = [("Y",), ("m", "B", "b"), ("d",), ("H", "I"), ("M",)]
    if not all(seen & set(group) for group in needs) or (("I" in seen) != ("p" in seen)):
        raise ValueError("it needs year, month, day, hour (%H, or %I with %p) and minute")
    return "".join(out) + "$"


class _TimeParser:
    """Parses a column of times into UTC microseconds with a reason code per value.

    ``time_format`` ``None`` is ISO-8601 (offset, ``Z`` or naive local), ``"epoch"`` is Unix
    seconds (UTC), anything else a ``strftime`` format of local time (Kayako reports). Local
    times are resolved in ``tz``; one that does not exist or happens twice is refused.
    """

    def __init__(self, time_format: str | None, tz: str, *, file: str | None) -> None:
        self.format = time_format
        self.tz = tz
        self.regex = None
        if time_format not in (None, "epoch"):
            try:
                self.regex = strftime_regex(time_format)
            except ValueError as err:
                raise InvalidInputError(
                    f"date_format {time_format!r} of the column mapping is unusable: {err}",
                    file=file,
                ) from None

    def parse(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Return UTC microseconds and a code (``_OK`` …) per value; values are non-blank."""
        if self.format == "epoch":
            return _parse_epoch(values)
        if self.regex is None:
            fields, codes = _iso_fields(values)
        else:
            fields, codes = _strftime_fields(values, self.regex)
        return _assemble(fields, codes, self.tz)

    def reason(self, code: int, value: str) -> str:
        """Explain why ``value`` was refused."""
        q = _q(value)
        if code == _BAD_FORMAT:
            if self.format == "epoch":
                return f"{q} is not a Unix time in whole seconds"
            if self.regex is not None:
                return f"{q} does not match the date format {self.format!r} of the column mapping"
            return f"{q} is not an ISO-8601 date and time (e.g. {_ISO_EXAMPLE})"
        return {
            _BAD_VALUE: f"{q} is not a real date and time (a month, day, hour, minute or second "
            "is out of range)",
            _BAD_YEAR: f"{q} has a year outside {_YEARS[0]}–{_YEARS[1]}",
            _BAD_PRECISION: f"{q} is more precise than a microsecond",
            _BAD_OFFSET: f"{q} has an impossible UTC offset",
            _GAP: f"{q} does not exist in {self.tz}: clocks skip that time when daylight saving "
            "time starts",
            _OVERLAP: f"{q} is ambiguous in {self.tz}: that time happens twice when daylight "
            "saving time ends; write it with its UTC offset",
        }[code]


_WS_FIRST = np.zeros(256, dtype=bool)
_WS_FIRST[[9, 10, 11, 12, 13, 32]] = True
_WS_FIRST[0xC2:] = True  # lead byte of a non-ASCII character: maybe Unicode white space
_WS_LAST = np.zeros(256, dtype=bool)
_WS_LAST[[9, 10, 11, 12, 13, 32]] = True
_WS_LAST[0x80:] = True  # last byte of a non-ASCII character


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


def _contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def _may_need_strip(chunk: pa.Array) -> bool:
    offs, data = _buffers(chunk)
    if len(offs) < 2 or offs[-1] == offs[0]:
        return False
    start, end = offs[:-1], offs[1:]
    first = _WS_FIRST[data[np.minimum(start, len(data) - 1)]]
    last = _WS_LAST[data[np.maximum(end - 1, 0)]]
    return bool(((first | last) & (end > start)).any())


def _strip(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Strip surrounding (Unicode) white space; skips the work when no value can have any."""
    if any(_may_need_strip(chunk) for chunk in _chunks(values)):
        return pc.utf8_trim_whitespace(values)
    return values


def _blanks(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which values are empty strings."""
    parts = [np.diff(_buffers(chunk)[0]) == 0 for chunk in _chunks(values)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def _buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets (one more than values) and the UTF-8 bytes of a string array."""
    values = values.cast(pa.large_string())
    _, offsets, data = values.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[values.offset : values.offset + len(values) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
    return offs, raw


def _byte_matrix(values: pa.Array, at: np.ndarray, width: int) -> np.ndarray:
    """Return ``width`` bytes of the string buffer from each offset ``at``, as a matrix.

    Bytes past a string's end are whatever follows it in the buffer: callers only read
    positions inside each string. ``width`` is a multiple of 8: the bytes are gathered as
    unaligned 64-bit words, one gather per 8 columns.
    """
    _, data = _buffers(values)
    steps = np.arange(0, width, 8)
    gathered = np.empty((len(at), len(steps)), dtype="<u8")
    inside = at <= len(data) - width  # the gather stays inside the buffer
    if len(data) >= 8:
        words = np.ndarray((len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
        gathered[inside] = words[at[inside][:, None] + steps]
    if not inside.all():  # strings near the end of the buffer: read them from a padded copy
        base = max(0, len(data) - width)
        tail = np.zeros(len(data) - base + width + 8, dtype=np.uint8)
        tail[: len(data) - base] = data[base:]
        tail_words = np.ndarray((len(tail) - 7,), dtype="<u8", buffer=tail, strides=(1,))
        gathered[~inside] = tail_words[(at[~inside] - base)[:, None] + steps]
    return np.ascontiguousarray(gathered).view(np.uint8).reshape(len(at), width)


def _spread(n: int, idx: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """Place ``values`` (one per ``idx``) into an array of ``n`` filled with ``fill``."""
    if len(idx) == n:
        return values
    out = np.full(n, fill, dtype=np.int64)
    out[idx] = values
    return out


def _iso_fields(values: pa.Array) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split ISO-8601 times into integer fields by character position.

    A strict pattern first decides which values have the shape ``YYYY-MM-DD[T ]HH:MM[:SS[.f]]``
    with an optional ``Z`` / ``±HH:MM`` / ``±HHMM``; the digits of those are then read straight
    from the string buffer: the first 40 bytes for the date, time and fraction, the last 8 for
    the offset.
    """
    n = len(values)
    shape = _np(pc.match_substring_regex(values, _ISO_SHAPE))
    codes = np.where(shape, _OK, _BAD_FORMAT).astype(np.int8)
    idx = np.flatnonzero(shape)
    offs, _ = _buffers(values)
    start, end = offs[idx], offs[idx + 1]
    head = _byte_matrix(values, start, 40)  # the longest ISO shape is 35 characters
    tail = _byte_matrix(values, end - 8, 8)  # every ISO shape is at least 16 characters

    def digit(matrix: np.ndarray, at: int) -> np.ndarray:
        return matrix[:, at].astype(np.int64) - 48

    # Date and time sit at fixed positions of YYYY-MM-DDTHH:MM:SS.
    year = head[:, 0].astype(np.int32) * 1000 + head[:, 1].astype(np.int32) * 100
    year += head[:, 2].astype(np.int32) * 10 + head[:, 3] - np.int32(48 * 1111)
    two = [head[:, at].astype(np.int16) * 10 + head[:, at + 1] - 48 * 11 for at in _ISO_PAIRS]
    last = tail[:, 7]
    zulu = (last == ord("Z")) | (last == ord("z"))
    long_off = ~zulu & ((tail[:, 2] == ord("+")) | (tail[:, 2] == ord("-")))  # ±HH:MM
    short_off = ~zulu & ~long_off & ((tail[:, 3] == ord("+")) | (tail[:, 3] == ord("-")))
    has_off = long_off | short_off
    hours = np.where(
        long_off, digit(tail, 3) * 10 + digit(tail, 4), digit(tail, 4) * 10 + digit(tail, 5)
    )
    minutes = digit(tail, 6) * 10 + digit(tail, 7)
    minus = np.where(long_off, tail[:, 2], tail[:, 3]) == ord("-")
    offset = np.where(minus, -1, 1) * (hours * 60 + minutes)
    offset = np.where(has_off, offset, np.where(zulu, 0, _NAT))
    codes[idx[has_off & ((hours > 23) | (minutes > 59))]] = _BAD_OFFSET
    core = (end - start) - np.where(long_off, 6, np.where(short_off, 5, zulu.astype(np.int64)))
    seconds = np.where(core >= 19, two[4], 0).astype(np.int64)
    frac_len = np.clip(core - 20, 0, 9)
    ns = np.zeros(len(idx), dtype=np.int64)
    for k in range(9):  # fraction digits, as nanoseconds
        has = frac_len > k
        if not has.any():
            break
        ns += np.where(has, head[:, 20 + k].astype(np.int64) - 48, 0) * 10 ** (8 - k)
    fields = {"Y": _spread(n, idx, year.astype(np.int64), 0)}
    for name, part in zip(("m", "d", "H", "M"), two, strict=False):
        fields[name] = _spread(n, idx, part.astype(np.int64), 0)
    fields["S"] = _spread(n, idx, seconds, 0)
    fields["ns"] = _spread(n, idx, ns, 0)
    fields["offset"] = _spread(n, idx, offset, _NAT)  # minutes east of UTC; _NAT = local time
    return fields, codes


def _strftime_fields(values: pa.Array, regex: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split times written in a ``strftime`` format into integer fields (local time)."""
    found = pc.extract_regex(values, regex)
    matched = _np(found.is_valid())
    codes = np.where(matched, _OK, _BAD_FORMAT).astype(np.int8)
    names = {found.type.field(i).name for i in range(found.type.num_fields)}

    def number(name: str) -> np.ndarray:
        if name not in names:
            return np.zeros(len(values), dtype=np.int64)
        text = pc.utf8_lpad(found.field(name), width=1, padding="0")
        return np.asarray(pc.cast(text, pa.int64()).to_numpy(zero_copy_only=False))

    def month_name(name: str, table: list[str]) -> np.ndarray:
        lower = pc.utf8_lower(found.field(name))
        index = pc.index_in(lower, value_set=pa.array(table, pa.large_string()))
        return np.asarray(pc.fill_null(index, -1).to_numpy(zero_copy_only=False)) + 1

    if "B" in names:
        month = month_name("B", _MONTHS)
    elif "b" in names:
        month = month_name("b", [m[:3] for m in _MONTHS])
    else:
        month = number("m")
    hour = number("H")
    if "I" in names:
        twelve = number("I")
        pm = _np(pc.equal(pc.utf8_lower(found.field("p")), "pm"))
        codes[matched & ((twelve < 1) | (twelve > 12))] = _BAD_VALUE
        hour = twelve % 12 + np.where(pm, 12, 0)
    fraction = pc.utf8_rpad(found.field("f"), width=9, padding="0") if "f" in names else None
    ns = (
        np.asarray(pc.cast(fraction, pa.int64()).to_numpy(zero_copy_only=False))
        if fraction is not None
        else np.zeros(len(values), dtype=np.int64)
    )
    fields = {
        "Y": number("Y"),
        "m": month,
        "d": number("d"),
        "H": hour,
        "M": number("M"),
        "S": number("S"),
        "ns": ns,
        "offset": np.full(len(values), _NAT, dtype=np.int64),
    }
    return fields, codes


def _days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), vectorised."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (m + np.where(m > 2, -3, 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _assemble(
    f: dict[str, np.ndarray], codes: np.ndarray, tz: str
) -> tuple[np.ndarray, np.ndarray]:
    """Range-check the fields and build UTC microseconds; naive times are local to ``tz``."""
    y, m, d = f["Y"], f["m"], f["d"]
    ok = codes == _OK
    codes[ok & ((y < _YEARS[0]) | (y > _YEARS[1]))] = _BAD_YEAR
    ok = codes == _OK
    month = np.clip(m, 1, 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DAYS_IN_MONTH[month - 1] + ((month == 2) & leap)
    out_of_range = (m < 1) | (m > 12) | (d < 1) | (d > dim) | (f["H"] > 23) | (f["M"] > 59)
    codes[ok & (out_of_range | (f["S"] > 59))] = _BAD_VALUE
    ok = codes == _OK
    codes[ok & (f["ns"] % 1000 != 0)] = _BAD_PRECISION
    ok = codes == _OK
    days = _days_from_civil(y, month, np.clip(d, 1, 31))
    wall = (((days * 24 + f["H"]) * 60 + f["M"]) * 60 + f["S"]) * _US_PER_S + f["ns"] // 1000
    offset = f["offset"]
    has_offset = offset != _NAT
    utc = np.where(has_offset, wall - np.where(has_offset, offset, 0) * 60 * _US_PER_S, _NAT)
    local = ok & ~has_offset
    if local.any():
        utc[local], local_codes = _localize(wall[local], tz)
        codes[np.flatnonzero(local)[local_codes != _OK]] = local_codes[local_codes != _OK]
    utc[codes != _OK] = _NAT
    return utc, codes


def _localize(wall: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Turn local wall-clock microseconds into UTC; DST gaps and overlaps are refused."""
    index = pd.DatetimeIndex(wall.view("M8[us]"))
    local = index.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    utc = local.as_unit("us").asi8.copy()
    codes = np.zeros(len(wall), dtype=np.int8)
    failed = np.asarray(local.isna())
    if failed.any():
        standard = index[failed].tz_localize(
            tz, ambiguous=np.zeros(int(failed.sum()), dtype=bool), nonexistent="NaT"
        )
        codes[failed] = np.where(np.asarray(standard.isna()), _GAP, _OVERLAP)
        utc[failed] = _NAT
    return utc, codes


def _parse_epoch(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds (UTC) as microseconds; at most 11 digits, year up to 2999."""
    shape = _np(pc.match_substring_regex(values, r"^\d{1,11}$"))
    codes = np.where(shape, _OK, _BAD_FORMAT).astype(np.int8)
    digits = pc.if_else(pa.array(shape), values, "0")
    seconds = np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False))
    limit = (_days_from_civil(np.array([_YEARS[1] + 1]), np.array([1]), np.array([1]))[0]) * 86400
    codes[shape & (seconds >= limit)] = _BAD_YEAR
    us = np.where(codes == _OK, seconds * _US_PER_S, _NAT)
    return us, codes
