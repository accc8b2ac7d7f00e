"""Tests of the demo's epoch-second view of the business calendar (demo/timeline.py)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.demo.timeline import Timeline

CT = "America/Chicago"
XMAS = dt.date(2026, 12, 25)
CAL = BusinessCalendar(CT, holidays=[XMAS])


def s(text: str) -> int:
    """Epoch seconds of an ISO instant with its offset."""
    return int(pd.Timestamp(text).timestamp())


def ct(text: str) -> int:
    """Epoch seconds of an unambiguous Central wall-clock time."""
    stamp = pd.Timestamp(text).tz_localize(CT, ambiguous="raise", nonexistent="raise")
    return int(stamp.timestamp())


def day(text: str) -> int:
    return int(np.datetime64(text, "D").astype(np.int64))


TL = Timeline(CAL, s("2026-01-01T00:00:00+00:00"), s("2027-01-01T00:00:00+00:00"))


def test_transitions_and_offsets_of_the_span() -> None:
    assert TL.transitions(forward=True) == [s("2026-03-08T08:00:00+00:00")]
    assert TL.transitions(forward=False) == [s("2026-11-01T07:00:00+00:00")]
    assert TL.offsets == [-6 * 3600, -5 * 3600]


@pytest.mark.parametrize(
    ("local", "utc"),
    [
        ("2026-01-15T12:00:00", "2026-01-15T18:00:00+00:00"),  # CST
        ("2026-07-15T12:00:00", "2026-07-15T17:00:00+00:00"),  # CDT
        ("2026-03-08T02:30:00", "2026-03-08T08:00:00+00:00"),  # gap: forward to 03:00 CDT
        ("2026-11-01T01:30:00", "2026-11-01T06:30:00+00:00"),  # repeated: the first (CDT)
    ],
)
def test_wall_clock_to_utc(local: str, utc: str) -> None:
    wall = int(np.datetime64(local, "s").astype(np.int64))
    assert TL.utc(np.array([wall])).tolist() == [s(utc)]


def test_local_day_and_ambiguous_wall_times() -> None:
    first, second = s("2026-11-01T06:30:00+00:00"), s("2026-11-01T07:30:00+00:00")
    other = s("2026-11-01T09:30:00+00:00")
    assert TL.ambiguous(np.array([first, second, other])).tolist() == [True, True, False]
    d, sod = TL.day_sod(np.array([first, second, other]))
    assert d.tolist() == [day("2026-11-01")] * 3
    assert sod.tolist() == [5400, 5400, 3 * 3600 + 1800]
    assert (TL.local(np.array([other])) - other).tolist() == [-6 * 3600]


@pytest.mark.parametrize(
    ("start", "seconds", "expected"),
    [
        ("2026-03-16 10:00", 3600, "2026-03-16 11:00"),
        ("2026-03-16 16:30", 1800, "2026-03-16 17:00"),  # ends at close, not next morning
        ("2026-03-06 16:30", 3600, "2026-03-09 09:30"),  # over the DST weekend
        ("2026-12-24 16:00", 7200, "2026-12-28 10:00"),  # over the holiday and weekend
        ("2026-03-14 11:00", 60, "2026-03-16 09:01"),  # from a Saturday
    ],
)
def test_add_business(start: str, seconds: int, expected: str) -> None:
    got = TL.add_business(np.array([ct(start)]), np.array([seconds]))
    assert got.tolist() == [ct(expected)]


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        ("2026-03-16 10:10", 3600, "2026-03-16 10:30"),  # next half hour
        ("2026-03-16 08:10", 3600, "2026-03-16 09:00"),  # before opening
        ("2026-03-16 16:10", 3600, "2026-03-17 09:00"),  # does not fit before close
        ("2026-03-06 16:40", 1800, "2026-03-09 09:00"),  # Friday late, over the DST weekend
        ("2026-12-24 16:31", 1800, "2026-12-28 09:00"),  # over the holiday
    ],
)
def test_slot(start: str, duration: int, expected: str) -> None:
    got = TL.slot(np.array([ct(start)]), np.array([duration]))
    assert got.tolist() == [ct(expected)]


def test_evening_window() -> None:
    got = TL.evening(np.array([ct("2026-03-16 12:00"), ct("2026-03-16 19:00")]), np.array([1, 0]))
    assert got.tolist() == [ct("2026-03-16 18:30"), ct("2026-03-17 18:00")]


def test_business_days_are_the_calendars() -> None:
    days = np.array([day("2026-12-24"), day("2026-12-25"), day("2026-03-07")])
    assert TL.is_business_day(days).tolist() == [True, False, False]
    assert TL.next_business_day(days).tolist() == [day("2026-12-28")] * 2 + [day("2026-03-09")]
    got = TL.business_day_offset(days, np.array([1, 0, 1]))
    assert got.tolist() == [day("2026-12-28"), day("2026-12-28"), day("2026-03-10")]
