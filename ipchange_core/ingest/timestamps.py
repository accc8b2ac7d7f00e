"""Vectorised parsing of time columns into UTC microseconds (SPEC 3.4).

:class:`TimeParser` reads a column of times written as ISO-8601 (with an offset, ``Z``, or naive
local time), as Unix seconds (UTC), or in a ``strftime`` format of local time (Kayako reports),
with one reason code per value. Local times are resolved in an IANA zone; a local time that does
not exist (the DST gap) or happens twice (the DST overlap) is refused, never guessed. Digits are
read straight from the Arrow string buffer, so no Python code runs per value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.errors import InvalidInputError, PolicyError
from ipchange_core.ingest.columns import NAT, bools, buffers, quote

_US_PER_S = 1_000_000


_ISO_SHAPE = (
    r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$"
)


_ISO_EXAMPLE = "2026-11-23T09:15:00-06:00, or 2026-11-23 09:15 for local time"


_ISO_PAIRS = (5, 8, 11, 14, 17)  # where month, day, hour, minute, second start in ISO-8601


OK, BAD_FORMAT, BAD_VALUE, BAD_YEAR, BAD_PRECISION, BAD_OFFSET, GAP, OVERLAP = range(8)


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


_NUMERIC_WIDTHS = {"d": (1, 2), "m": (1, 2), "Y": (4, 4), "H": (1, 2), "M": (2, 2), "S": (2, 2)}
"""Digits of the numeric directives the byte-level path reads (fewest, most)."""


def numeric_shape(fmt: str) -> tuple[str, list[tuple[str, str]]] | None:
    """The byte-level reading of a format of numbers and separators (``%m/%d/%Y %H:%M:%S``).

    A format qualifies when it holds only ``%d %m %Y %H %M %S``, each once, and some literal
    text that holds no digit between any two of them (so that a number of one or two digits
    ends where its separator starts).

    Returns:
        An anchored pattern of the values it reads (a space matches exactly one space) and the
        format as ``("%", directive)`` / ``("", literal text)`` tokens; ``None`` when the format
        does not qualify.
    """
    tokens: list[tuple[str, str]] = []
    for literal, directive in re.findall(r"([^%]*)(?:%(.))?", fmt):
        if literal:
            if any(ch.isdigit() for ch in literal):
                return None
            tokens.append(("", literal))
        if directive:
            if directive not in _NUMERIC_WIDTHS or ("%", directive) in tokens:
                return None
            if tokens and tokens[-1][0] == "%":
                return None
            tokens.append(("%", directive))
    pattern = "".join(
        r"\d{{{},{}}}".format(*_NUMERIC_WIDTHS[text]) if kind else re.escape(text)
        for kind, text in tokens
    )
    return f"^{pattern}$", tokens


def check_zone(tz: str) -> None:
    """Refuse a time zone name that is not a known IANA zone (:class:`PolicyError`)."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"unknown time zone {tz!r}") from None


class TimeParser:
    """Parses a column of times into UTC microseconds with a reason code per value.

    ``time_format`` ``None`` is ISO-8601 (offset, ``Z`` or naive local), ``"epoch"`` is Unix
    seconds (UTC), anything else a ``strftime`` format of local time (Kayako reports). Local
    times are resolved in ``tz``; one that does not exist or happens twice is refused.
    With ``also_iso``, a value that does not match a ``strftime`` format is read as ISO-8601
    (how a spreadsheet's date cells are read as text, see ``tabular``). ``setting`` names where
    the format comes from, in messages.

    A format made of numbers and separators only (``%m/%d/%Y %H:%M:%S``, Kayako's
    ``m/d/yyyy h:mm:ss``: :func:`numeric_shape`) is read from the bytes of the values, like
    ISO-8601; other formats, and values the byte-level path does not take (several spaces),
    go through a regular expression with groups.
    """

    def __init__(
        self,
        time_format: str | None,
        tz: str,
        *,
        file: str | None,
        also_iso: bool = False,
        setting: str = "the column mapping",
    ) -> None:
        self.format = time_format
        self.setting = setting
        self.tz = tz
        self.regex = None
        self.numeric = None
        self.also_iso = also_iso and time_format not in (None, "epoch")
        if time_format not in (None, "epoch"):
            try:
                self.regex = strftime_regex(time_format)
            except ValueError as err:
                raise InvalidInputError(
                    f"date_format {time_format!r} of the column mapping is unusable: {err}",
                    file=file,
                ) from None
            self.numeric = numeric_shape(time_format)

    def parse(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Return UTC microseconds and a code (``OK`` …) per value; values are non-blank."""
        if self.format == "epoch":
            return _parse_epoch(values)
        if self.regex is None:
            fields, codes = _iso_fields(values)
        elif self.numeric is None:
            fields, codes = _strftime_fields(values, self.regex)
        else:
            fields, codes = _numeric_fields(values, *self.numeric)
            _fill(fields, codes, values, lambda rest: _strftime_fields(rest, self.regex))
        if self.also_iso:
            _fill(fields, codes, values, _iso_fields)
        return _assemble(fields, codes, self.tz)

    def reason(self, code: int, value: str) -> str:
        """Explain why ``value`` was refused."""
        q = quote(value)
        if code == BAD_FORMAT:
            if self.format == "epoch":
                return f"{q} is not a Unix time in whole seconds"
            if self.regex is not None:
                also = " (nor ISO-8601)" if self.also_iso else ""
                return f"{q} does not match the date format {self.format!r} of {self.setting}{also}"
            return f"{q} is not an ISO-8601 date and time (e.g. {_ISO_EXAMPLE})"
        return {
            BAD_VALUE: f"{q} is not a real date and time (a month, day, hour, minute or second "
            "is out of range)",
            BAD_YEAR: f"{q} has a year outside {_YEARS[0]}–{_YEARS[1]}",
            BAD_PRECISION: f"{q} is more precise than a microsecond",
            BAD_OFFSET: f"{q} has an impossible UTC offset",
            GAP: f"{q} does not exist in {self.tz}: clocks skip that time when daylight saving "
            "time starts",
            OVERLAP: f"{q} is ambiguous in {self.tz}: that time happens twice when daylight "
            "saving time ends; write it with its UTC offset",
        }[code]


def _byte_matrix(values: pa.Array, at: np.ndarray, width: int) -> np.ndarray:
    """Return ``width`` bytes of the string buffer from each offset ``at``, as a matrix.

    Bytes past a string's end are whatever follows it in the buffer: callers only read
    positions inside each string. ``width`` is a multiple of 8: the bytes are gathered as
    unaligned 64-bit words, one gather per 8 columns.
    """
    _, data = buffers(values)
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
    shape = bools(pc.match_substring_regex(values, _ISO_SHAPE))
    codes = np.where(shape, OK, BAD_FORMAT).astype(np.int8)
    idx = np.flatnonzero(shape)
    offs, _ = buffers(values)
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
    offset = np.where(has_off, offset, np.where(zulu, 0, NAT))
    codes[idx[has_off & ((hours > 23) | (minutes > 59))]] = BAD_OFFSET
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
    fields["offset"] = _spread(n, idx, offset, NAT)  # minutes east of UTC; NAT = local time
    return fields, codes


def _strftime_fields(values: pa.Array, regex: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split times written in a ``strftime`` format into integer fields (local time)."""
    found = pc.extract_regex(values, regex)
    matched = bools(found.is_valid())
    codes = np.where(matched, OK, BAD_FORMAT).astype(np.int8)
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
        pm = bools(pc.equal(pc.utf8_lower(found.field("p")), "pm"))
        codes[matched & ((twelve < 1) | (twelve > 12))] = BAD_VALUE
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
        "offset": np.full(len(values), NAT, dtype=np.int64),
    }
    return fields, codes


def _numeric_fields(
    values: pa.Array, pattern: str, tokens: list[tuple[str, str]]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Split times written as numbers and separators into integer fields (local time).

    The values matching ``pattern`` (see :func:`numeric_shape`) are read from the string
    buffer: a cursor per value walks the format's tokens, a number of one or two digits taking
    its second digit when there is one. Values not matching are ``BAD_FORMAT`` here.
    """
    n = len(values)
    shape = bools(pc.match_substring_regex(values, pattern))
    codes = np.where(shape, OK, BAD_FORMAT).astype(np.int8)
    idx = np.flatnonzero(shape)
    offs, _ = buffers(values)
    start = offs[idx]
    length = offs[idx + 1] - start
    longest = sum(_NUMERIC_WIDTHS[t][1] if kind else len(t.encode()) for kind, t in tokens)
    width = -(-longest // 8) * 8
    matrix = _byte_matrix(values, start, width)
    rows = np.arange(len(idx))
    cursor = np.zeros(len(idx), dtype=np.int64)
    fields = dict.fromkeys(("Y", "m", "d", "H", "M", "S", "ns"), np.zeros(n, dtype=np.int64))
    for kind, text in tokens:
        if not kind:
            cursor += len(text.encode())
            continue
        fewest, most = _NUMERIC_WIDTHS[text]
        number = np.zeros(len(idx), dtype=np.int64)
        for k in range(most):
            digit = matrix[rows, np.minimum(cursor, width - 1)].astype(np.int64) - 48
            take = (cursor < length) & (digit >= 0) & (digit <= 9) if k >= fewest else True
            number = np.where(take, number * 10 + digit, number)
            cursor += take
        fields[text] = _spread(n, idx, number, 0)
    fields["offset"] = np.full(n, NAT, dtype=np.int64)
    return fields, codes


def _fill(
    fields: dict[str, np.ndarray],
    codes: np.ndarray,
    values: pa.Array,
    reader: Callable[[pa.Array], tuple[dict[str, np.ndarray], np.ndarray]],
) -> None:
    """Read the ``BAD_FORMAT`` values again with ``reader``; take the fields of those it reads."""
    again = np.flatnonzero(codes == BAD_FORMAT)
    if not len(again):
        return
    more, more_codes = reader(values.take(pa.array(again)))
    read = more_codes != BAD_FORMAT
    for name, column in fields.items():
        column = fields[name] = column.copy()
        column[again[read]] = more[name][read]
    codes[again[read]] = more_codes[read]


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
    ok = codes == OK
    codes[ok & ((y < _YEARS[0]) | (y > _YEARS[1]))] = BAD_YEAR
    ok = codes == OK
    month = np.clip(m, 1, 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DAYS_IN_MONTH[month - 1] + ((month == 2) & leap)
    out_of_range = (m < 1) | (m > 12) | (d < 1) | (d > dim) | (f["H"] > 23) | (f["M"] > 59)
    codes[ok & (out_of_range | (f["S"] > 59))] = BAD_VALUE
    ok = codes == OK
    codes[ok & (f["ns"] % 1000 != 0)] = BAD_PRECISION
    ok = codes == OK
    days = _days_from_civil(y, month, np.clip(d, 1, 31))
    wall = (((days * 24 + f["H"]) * 60 + f["M"]) * 60 + f["S"]) * _US_PER_S + f["ns"] // 1000
    offset = f["offset"]
    has_offset = offset != NAT
    utc = np.where(has_offset, wall - np.where(has_offset, offset, 0) * 60 * _US_PER_S, NAT)
    local = ok & ~has_offset
    if local.any():
        utc[local], local_codes = _localize(wall[local], tz)
        codes[np.flatnonzero(local)[local_codes != OK]] = local_codes[local_codes != OK]
    utc[codes != OK] = NAT
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
        codes[failed] = np.where(np.asarray(standard.isna()), GAP, OVERLAP)
        utc[failed] = NAT
    return utc, codes


def _parse_epoch(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds (UTC) as microseconds; at most 11 digits, year up to 2999."""
    shape = bools(pc.match_substring_regex(values, r"^\d{1,11}$"))
    codes = np.where(shape, OK, BAD_FORMAT).astype(np.int8)
    digits = pc.if_else(pa.array(shape), values, "0")
    seconds = np.asarray(pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False))
    limit = (_days_from_civil(np.array([_YEARS[1] + 1]), np.array([1]), np.array([1]))[0]) * 86400
    codes[shape & (seconds >= limit)] = BAD_YEAR
    us = np.where(codes == OK, seconds * _US_PER_S, NAT)
    return us, codes
