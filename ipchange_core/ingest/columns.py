"""Rows of one input as text columns, and the Arrow string helpers every reader shares.

A reader turns its file into :class:`CanonicalText` (canonical column → stripped text, with
each row's line); :mod:`ipchange_core.ingest.checks` then checks and types it, whatever the
format. The helpers here work on Arrow string arrays without a Python loop per value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.schema import SOURCE_LINE, typed_dtypes


@dataclass(frozen=True)
class CanonicalText:
    """Rows of one input as text in canonical columns, ready for :mod:`ipchange_core.ingest.checks`.

    Attributes:
        columns: Canonical column → stripped text (``large_string``, no nulls, one per row),
            as an arrow array or chunked array.
        lines: Line in the source file of each row (header = line 1; XML: the ticket's ordinal).
        rejects: Problems found while mapping (columns ``line``, ``column``, ``value``,
            ``reason``); those lines are rejected whatever else they hold.
        source_names: Canonical column → its name in the source, used in reject messages.
        rows_skipped: Source rows that are not rows of the table at all (audit entries that are
            not department, status or owner changes).
        notes: Plain-words remarks on the file as a whole (ignored columns, skipped rows).
    """

    columns: dict[str, pa.Array | pa.ChunkedArray]
    lines: np.ndarray
    rejects: pd.DataFrame
    source_names: Mapping[str, str] = field(default_factory=dict)
    rows_skipped: int = 0
    notes: tuple[str, ...] = ()


def no_rejects() -> pd.DataFrame:
    """Return an empty frame of mapping problems (``line``, ``column``, ``value``, ``reason``)."""
    return pd.DataFrame(
        {
            "line": pd.Series(dtype="int64"),
            "column": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
            "reason": pd.Series(dtype="str"),
        }
    )


def text_array(values: object) -> pa.Array:
    """Return ``values`` (a list, a pandas Series or an arrow array) as a ``large_string`` array."""
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def blank_column(n: int) -> pa.Array:
    """Return ``n`` empty strings as a ``large_string`` array (a column the source lacks)."""
    return text_array(pa.repeat("", n))


NAT = np.iinfo(np.int64).min


_QUOTE_MAX = 60


def clip(value: str) -> str:
    """Shorten a long value for a message (at most :data:`_QUOTE_MAX` characters)."""
    return value if len(value) <= _QUOTE_MAX else value[: _QUOTE_MAX - 1] + "…"


def quote(value: str) -> str:
    """Quote a value for a message (long values shortened)."""
    return f"'{clip(value)}'"


def bools(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean array as a numpy ``bool`` array."""
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)


_WS_FIRST = np.zeros(256, dtype=bool)
_WS_FIRST[[9, 10, 11, 12, 13, 32]] = True
_WS_FIRST[0xC2:] = True  # lead byte of a non-ASCII character: maybe Unicode white space


_WS_LAST = np.zeros(256, dtype=bool)
_WS_LAST[[9, 10, 11, 12, 13, 32]] = True
_WS_LAST[0x80:] = True  # last byte of a non-ASCII character


def _chunks(values: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return values.chunks if isinstance(values, pa.ChunkedArray) else [values]


def contiguous(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Return the values as one array (chunks combined; a single chunk is not copied)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values


def _may_need_strip(chunk: pa.Array) -> bool:
    offs, data = buffers(chunk)
    if len(offs) < 2 or offs[-1] == offs[0]:
        return False
    start, end = offs[:-1], offs[1:]
    first = _WS_FIRST[data[np.minimum(start, len(data) - 1)]]
    last = _WS_LAST[data[np.maximum(end - 1, 0)]]
    return bool(((first | last) & (end > start)).any())


def strip(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Strip surrounding (Unicode) white space; skips the work when no value can have any."""
    if any(_may_need_strip(chunk) for chunk in _chunks(values)):
        return pc.utf8_trim_whitespace(values)
    return values


def blanks(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Which values are empty strings."""
    parts = [np.diff(buffers(chunk)[0]) == 0 for chunk in _chunks(values)]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


def buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Return the offsets (one more than values) and the UTF-8 bytes of a string array."""
    values = values.cast(pa.large_string())
    _, offsets, data = values.buffers()
    offs = np.frombuffer(offsets, dtype=np.int64)[values.offset : values.offset + len(values) + 1]
    raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
    return offs, raw


def typed_frame(table: str, arrow: pa.Table) -> pd.DataFrame:
    """The typed frame (``typed_dtypes`` and ``source_line``) of a table's Arrow columns."""
    frame = arrow.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get)
    dtypes = {**typed_dtypes(table), SOURCE_LINE: "int64"}
    return frame[list(dtypes)].astype(dtypes)
