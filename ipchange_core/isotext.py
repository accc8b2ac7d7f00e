"""ISO-8601 text of many instants at once, built from digit pairs (no per-value formatting)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_NAT = np.iinfo(np.int64).min
"""int64 of NaT: numpy's and pandas' missing instant."""
_TENS = np.array([48 + i // 10 for i in range(100)], dtype=np.uint8)
_UNITS = np.array([48 + i % 10 for i in range(100)], dtype=np.uint8)
"""ASCII digits of 00..99: tens and units."""


def iso_text(
    micros: np.ndarray, offset_minutes: np.ndarray | None = None, *, fraction: bool = True
) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff]`` then ``Z`` or the offset ``±HH:MM``; NaT → null.

    Several times faster than numpy's or Arrow's timestamp formatting, which otherwise
    dominates a PostgreSQL load (COPY text) and the requests export. Years 0001-9999.

    Args:
        micros: int64 µs since 1970-01-01T00:00:00Z (UTC instants); ``int64 min`` is NaT.
        offset_minutes: int64 UTC offset of each instant in minutes (local = UTC + offset),
            shown as ``±HH:MM`` after the local wall time; ``None`` shows UTC with ``Z``.
            Ignored where ``micros`` is NaT.
        fraction: Show the six digits of microseconds (``.ffffff``); ``False`` shows whole
            seconds and drops any fraction (truncates toward the earlier second).

    Returns:
        A string array aligned with ``micros``.
    """
    micros = np.asarray(micros, dtype=np.int64)
    missing = micros == _NAT
    wall = np.where(missing, 0, micros)
    if offset_minutes is not None:
        offset_minutes = np.where(missing, 0, np.asarray(offset_minutes, dtype=np.int64))
        wall = wall + offset_minutes * 60_000_000
    stamps = wall.astype("datetime64[us]")
    days = stamps.astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    years = months.astype("datetime64[Y]")
    year = years.astype(np.int64) + 1970
    in_day = (stamps - days).astype(np.int64)
    seconds, micro = np.divmod(in_day, 1_000_000)
    pairs = [
        (0, year // 100),
        (2, year % 100),
        (5, (months - years).astype(np.int64) + 1),
        (8, (days - months).astype(np.int64) + 1),
        (11, seconds // 3600),
        (14, seconds // 60 % 60),
        (17, seconds % 60),
    ]
    separators = list(zip((4, 7, 10, 13, 16), "--T::", strict=True))
    width = 19
    if fraction:
        pairs += [(20, micro // 10_000), (22, micro // 100 % 100), (24, micro % 100)]
        separators.append((19, "."))
        width = 26
    if offset_minutes is None:
        separators.append((width, "Z"))
        width += 1
    else:
        hours, minutes = np.divmod(np.abs(offset_minutes), 60)
        pairs += [(width + 1, hours), (width + 4, minutes)]
        separators.append((width + 3, ":"))
        width += 6
    text = np.empty((width, len(micros)), dtype=np.uint8)  # one row per character: fast to fill
    for at, separator in separators:
        text[at] = ord(separator)
    for at, pair in pairs:
        text[at] = _TENS[pair]
        text[at + 1] = _UNITS[pair]
    if offset_minutes is not None:
        text[width - 6] = np.where(offset_minutes < 0, ord("-"), ord("+"))
    text = np.ascontiguousarray(text.T)
    return pa.array(text.view(f"S{width}").ravel(), pa.binary(), mask=missing).cast(pa.string())
