"""Times through read_file (ISO-8601, offsets, naive local, DST) and the parser itself."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipchange_core.errors import PolicyError
from ipchange_core.ingest import (
    read_file,
    timestamps,
)
from ipchange_core.ingest.timestamps import TimeParser
from tests.domain import FIXTURES, assert_reconciles, header, only_reject, row, utc, write

# --- times through read_file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T09:15:00-06:00", utc(2026, 11, 23, 15, 15)),
        ("2026-11-23T09:15:00Z", utc(2026, 11, 23, 9, 15)),
        ("2026-11-23T09:15:00.5+05:30", utc(2026, 11, 23, 3, 45, 0, 500000)),
        ("2026-11-23T09:15:00.123456-0600", utc(2026, 11, 23, 15, 15, 0, 123456)),
        ("2026-11-23T09:15:00.123456000Z", utc(2026, 11, 23, 9, 15, 0, 123456)),
        ("2026-11-23 09:15:00", utc(2026, 11, 23, 15, 15)),  # naive: Central standard time
        ("2026-11-23T09:15", utc(2026, 11, 23, 15, 15)),
        ("2026-07-01 09:15", utc(2026, 7, 1, 14, 15)),  # naive in summer: CDT = UTC-5
        ("2026-03-08 03:30", utc(2026, 3, 8, 8, 30)),  # just after the spring-forward gap
        ("2026-11-01T01:30:00-05:00", utc(2026, 11, 1, 6, 30)),  # the overlap, made explicit
        ("2026-11-01T01:30:00-06:00", utc(2026, 11, 1, 7, 30)),
        ("2024-02-29 12:00", utc(2024, 2, 29, 18, 0)),
        ("  2026-11-23 09:15  ", utc(2026, 11, 23, 15, 15)),  # surrounding spaces stripped
    ],
    ids=lambda v: str(v).strip(),
)
def test_timestamp_forms_give_the_right_utc(
    tmp_path: Path, text: str, expected: pd.Timestamp
) -> None:
    path = write(tmp_path, "intake.csv", f"{header('intake')}\n{row('intake', received_at=text)}\n")
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.rejects.empty, parsed.reject_messages()
    assert parsed.frame.loc[0, "received_at"] == expected


def test_naive_times_follow_the_zone_argument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "intake.csv",
        f"{header('intake')}\n{row('intake', received_at='2026-11-23 09:15')}\n",
    )
    parsed = read_file(path, tz="Europe/Berlin")
    assert parsed.frame.loc[0, "received_at"] == utc(2026, 11, 23, 8, 15)


def test_unknown_zone_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="Mars/Olympus"):
        read_file(FIXTURES / "intake.csv", tz="Mars/Olympus")


BAD_TIMES = [
    ("2026-03-08 02:30", "does not exist in America/Chicago"),
    ("2026-03-08T02:00", "does not exist in America/Chicago"),
    ("2026-11-01 01:30", "is ambiguous in America/Chicago"),
    ("2026-11-01T01:00:00", "is ambiguous in America/Chicago"),
    ("23/11/2026 09:15", "is not an ISO-8601 date and time"),  # never guess day/month order
    ("11/23/2026 09:15", "is not an ISO-8601 date and time"),
    ("2026-11-23", "is not an ISO-8601 date and time"),  # a date is not an instant
    ("2026-11-23T9:15", "is not an ISO-8601 date and time"),
    ("2026-11-23T09:15:00 -06:00", "is not an ISO-8601 date and time"),
    ("tomorrow", "is not an ISO-8601 date and time"),
    ("2026-02-30 10:00", "is not a real date and time"),
    ("2025-02-29 10:00", "is not a real date and time"),
    ("2026-13-01 10:00", "is not a real date and time"),
    ("2026-11-23 24:00", "is not a real date and time"),
    ("2026-11-23 09:60", "is not a real date and time"),
    ("2026-11-23T09:15:60Z", "is not a real date and time"),
    ("2026-11-23T09:15:00+25:00", "has an impossible UTC offset"),
    ("2026-11-23T09:15:00-06:61", "has an impossible UTC offset"),
    ("2026-11-23T09:15:00.1234567Z", "is more precise than a microsecond"),
    ("0026-11-23T09:15:00Z", "has a year outside 1900–2999"),
]


@pytest.mark.parametrize(("text", "reason"), BAD_TIMES, ids=[t for t, _ in BAD_TIMES])
def test_bad_timestamps_are_rejected_with_their_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    lines = [header("intake"), row("intake", ticket_id="OK-1"), row("intake", received_at=text)]
    path = write(tmp_path, "intake.csv", "\n".join(lines) + "\n")
    parsed = read_file(path)
    reject = only_reject(parsed)
    assert (reject["line"], reject["column"], reject["value"]) == (3, "received_at", text)
    assert reason in reject["reason"] and f"'{text}'" in reject["reason"]
    assert parsed.frame["ticket_id"].tolist() == ["OK-1"]


# --- the parser itself --------------------------------------------------------------------------

CHICAGO = "America/Chicago"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse(texts: list[str], time_format: str | None = None, tz: str = CHICAGO) -> list[object]:
    """Each text parsed alone by TimeParser: UTC microseconds, or the name of its refusal code."""
    parser = TimeParser(time_format, tz, file="t.csv")
    us, codes = parser.parse(pa.array(texts, pa.large_string()))
    names = {getattr(timestamps, n): n for n in CODE_NAMES}
    return [int(u) if c == timestamps.OK else names[int(c)] for u, c in zip(us, codes, strict=True)]


CODE_NAMES = (
    "BAD_FORMAT", "BAD_VALUE", "BAD_YEAR", "BAD_PRECISION", "BAD_OFFSET", "GAP", "OVERLAP",
)  # fmt: skip


def micros(*args: int) -> int:
    """UTC microseconds since the epoch of a UTC date and time."""
    return (dt.datetime(*args, tzinfo=dt.UTC) - EPOCH) // dt.timedelta(microseconds=1)


PARSER_CASES = [
    # ISO-8601 with an offset or Z: the wall time minus the offset
    ("2026-11-23T09:15:00-06:00", None, micros(2026, 11, 23, 15, 15)),
    ("2026-11-23T09:15:00+0530", None, micros(2026, 11, 23, 3, 45)),
    ("2026-11-23 09:15:00z", None, micros(2026, 11, 23, 9, 15)),
    ("2026-11-23T09:15:00,25Z", None, micros(2026, 11, 23, 9, 15, 0, 250000)),
    ("2026-11-23T23:59:59.999999+14:00", None, micros(2026, 11, 23, 9, 59, 59, 999999)),
    ("2026-11-23T00:00-12:00", None, micros(2026, 11, 23, 12, 0)),
    # naive: local time in the zone, standard or daylight time
    ("2026-01-15 12:00", None, micros(2026, 1, 15, 18, 0)),
    ("2026-07-15 12:00", None, micros(2026, 7, 15, 17, 0)),
    ("2026-03-08 01:59:59", None, micros(2026, 3, 8, 7, 59, 59)),  # last second before the gap
    ("2026-03-08 03:00", None, micros(2026, 3, 8, 8, 0)),  # first minute after it
    ("2026-11-01 00:59:59", None, micros(2026, 11, 1, 5, 59, 59)),  # before the overlap
    ("2026-11-01 02:00", None, micros(2026, 11, 1, 8, 0)),  # after it
    # the DST gap and overlap in local time are refused, not guessed
    ("2026-03-08 02:00", None, "GAP"),
    ("2026-03-08 02:59:59", None, "GAP"),
    ("2026-11-01 01:00", None, "OVERLAP"),
    ("2026-11-01 01:59:59", None, "OVERLAP"),
    # values out of range
    ("2026-02-29 10:00", None, "BAD_VALUE"),
    ("2026-04-31T10:00Z", None, "BAD_VALUE"),
    ("2026-11-23T24:00Z", None, "BAD_VALUE"),
    ("2026-11-23T10:60Z", None, "BAD_VALUE"),
    ("2026-11-23T10:00:60Z", None, "BAD_VALUE"),
    ("2026-13-01T10:00Z", None, "BAD_VALUE"),
    ("1899-12-31T23:00Z", None, "BAD_YEAR"),
    ("2026-11-23T09:15:00.1234567Z", None, "BAD_PRECISION"),
    ("2026-11-23T09:15:00+24:00", None, "BAD_OFFSET"),
    ("2026-11-23T09:15:00+05:60", None, "BAD_OFFSET"),
    ("23/11/2026 09:15", None, "BAD_FORMAT"),
    ("2026-11-23", None, "BAD_FORMAT"),
    ("2026-11-23T09:15:00+5", None, "BAD_FORMAT"),
    # Unix seconds (UTC)
    ("0", "epoch", 0),
    ("1795446900", "epoch", micros(2026, 11, 23, 15, 15)),
    ("-1", "epoch", "BAD_FORMAT"),
    ("1795446900.5", "epoch", "BAD_FORMAT"),
    ("99999999999", "epoch", "BAD_YEAR"),
    # a strftime format of local time (Kayako reports)
    ("23 November 2026 09:15 AM", "%d %B %Y %I:%M %p", micros(2026, 11, 23, 15, 15)),
    ("1 nov 2026 12:30 pm", "%d %b %Y %I:%M %p", micros(2026, 11, 1, 18, 30)),
    ("01 November 2026 01:30 AM", "%d %B %Y %I:%M %p", "OVERLAP"),
    ("23 November 2026 13:15 PM", "%d %B %Y %I:%M %p", "BAD_VALUE"),
    ("2026-11-23 09:15", "%d %B %Y %I:%M %p", "BAD_FORMAT"),
]


@pytest.mark.parametrize(("text", "time_format", "expected"), PARSER_CASES, ids=str)
def test_parser_cases(text: str, time_format: str | None, expected: object) -> None:
    assert parse([text], time_format) == [expected]


def test_parser_takes_a_column_of_mixed_forms_value_by_value() -> None:
    texts = [text for text, fmt, _ in PARSER_CASES if fmt is None]
    assert parse(texts) == [expected for _, fmt, expected in PARSER_CASES if fmt is None]


def test_every_refusal_has_a_reason_naming_the_value() -> None:
    parser = TimeParser(None, CHICAGO, file="t.csv")
    for name in CODE_NAMES:
        reason = parser.reason(getattr(timestamps, name), "2026-03-08 02:30")
        assert "'2026-03-08 02:30'" in reason
    assert "does not exist in America/Chicago" in parser.reason(timestamps.GAP, "x")
    assert "ambiguous in America/Chicago" in parser.reason(timestamps.OVERLAP, "x")


ZONES = ["America/Chicago", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


def reference(text: str, tz: str) -> object:
    """The slow, obvious reading: ``datetime.fromisoformat`` and zoneinfo, one value at a time."""
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        zone = ZoneInfo(tz)
        early, late = when.replace(tzinfo=zone, fold=0), when.replace(tzinfo=zone, fold=1)
        back = early.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
        if back != when:
            return "GAP"
        if early.utcoffset() != late.utcoffset():
            return "OVERLAP"
        when = early
    return (when - EPOCH) // dt.timedelta(microseconds=1)


@st.composite
def iso_texts(draw: st.DrawFn) -> str:
    """An ISO-8601 time in one of the forms the parser takes: naive, Z, or an offset."""
    wall = draw(
        st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31))
    )
    if draw(st.booleans()):  # near a DST change of some zone: whole hours and half hours
        wall = wall.replace(minute=draw(st.sampled_from([0, 30])), second=0, microsecond=0)
    sep = draw(st.sampled_from(["T", " "]))
    digits = draw(st.sampled_from([0, 3, 6]))
    text = wall.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    if digits:
        text += "." + f"{wall.microsecond:06d}"[:digits]
    kind = draw(st.sampled_from(["naive", "naive", "Z", "offset"]))
    if kind == "Z":
        text += "Z"
    elif kind == "offset":
        minutes = draw(st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59))
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        text += f"{sign}{hours:02d}" + draw(st.sampled_from([":", ""])) + f"{rest:02d}"
    return text


@pytest.mark.fuzz
@given(st.lists(iso_texts(), min_size=1, max_size=20), st.sampled_from(ZONES))
@settings(max_examples=300)
def test_parser_agrees_with_fromisoformat_and_zoneinfo(texts: list[str], tz: str) -> None:
    assert parse(texts, tz=tz) == [reference(text, tz) for text in texts]
