"""BusinessCalendar against the SPEC 2.1 cases and a slow, obviously-correct day-by-day reference."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

import holidays as holidays_pkg
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core import business_calendar as bc
from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.errors import InvalidInputError, PolicyError

UTC = dt.UTC
CT = "America/Chicago"
US = 1_000_000
H = 3600 * US
ONE_US = dt.timedelta(microseconds=1)
XMAS = dt.date(2026, 12, 25)


def ct(text: str) -> pd.Timestamp:
    """Central wall-clock time (must exist and be unambiguous)."""
    return pd.Timestamp(text).tz_localize(CT, ambiguous="raise", nonexistent="raise")


CAL = BusinessCalendar(CT, holidays=[XMAS])
CAL_US = BusinessCalendar(CT, holiday_country="US")


# --------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class Spec:
    """A calendar's rules, for the reference implementation."""

    tz: str
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    open_time: dt.time = dt.time(9)
    close_time: dt.time = dt.time(17)
    holidays: frozenset[dt.date] = frozenset()

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            self.tz,
            holidays=self.holidays,
            weekdays=self.weekdays,
            open_time=self.open_time,
            close_time=self.close_time,
        )


def ref_window(spec: Spec, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
    """The business window of one local date, in UTC, or None on a closed day."""
    if day.weekday() not in spec.weekdays or day in spec.holidays:
        return None
    zone = ZoneInfo(spec.tz)
    start = dt.datetime.combine(day, spec.open_time, tzinfo=zone).astimezone(UTC)
    end = dt.datetime.combine(day, spec.close_time, tzinfo=zone).astimezone(UTC)
    return start, end


def ref_us(spec: Spec, a: dt.datetime, b: dt.datetime) -> int:
    """Business µs in [a, b), signed: sum of the overlaps with each local day's window."""
    a, b = a.astimezone(UTC), b.astimezone(UTC)  # UTC datetimes: plain subtraction is exact
    if b < a:
        return -ref_us(spec, b, a)
    zone = ZoneInfo(spec.tz)
    day = a.astimezone(zone).date() - dt.timedelta(days=1)
    last = b.astimezone(zone).date() + dt.timedelta(days=1)
    total = dt.timedelta(0)
    while day <= last:
        window = ref_window(spec, day)
        if window is not None:
            lo, hi = max(window[0], a), min(window[1], b)
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total // ONE_US


def ref_is_open(spec: Spec, t: dt.datetime) -> bool:
    local = t.astimezone(ZoneInfo(spec.tz))
    return (
        local.weekday() in spec.weekdays
        and local.date() not in spec.holidays
        and spec.open_time <= local.time() < spec.close_time
    )


def as_list(values: np.ndarray) -> list[float]:
    return [float(v) for v in values]


def utc(us: int) -> dt.datetime:
    return bc._EPOCH + dt.timedelta(microseconds=us)


# --------------------------------------------------------------------------- calendars under test

_rng = random.Random(20260308)
_RANDOM_HOLIDAYS = frozenset(
    dt.date(1990, 1, 1) + dt.timedelta(days=_rng.randrange(71 * 366)) for _ in range(400)
) | {dt.date(2026, 3, 9), dt.date(2026, 11, 2), dt.date(2026, 3, 6), XMAS}

SPECS = [
    Spec(CT, holidays=_RANDOM_HOLIDAYS),
    Spec(
        "Europe/London",
        open_time=dt.time(8, 30),
        close_time=dt.time(17, 15, 0, 1),
        holidays=_RANDOM_HOLIDAYS,
    ),
    Spec("Australia/Lord_Howe", weekdays=(0, 2, 4, 5)),
    Spec(
        CT, weekdays=(6, 0, 1, 2, 3), open_time=dt.time(3), close_time=dt.time(23, 59, 59, 999999)
    ),
    Spec("Asia/Kolkata", weekdays=(0, 1, 2, 3, 4, 5), open_time=dt.time(10)),
]


@cache
def calendar_of(i: int) -> BusinessCalendar:
    return SPECS[i].calendar()


@cache
def transition_dates(tz: str) -> tuple[dt.date, ...]:
    """Local dates on which the zone's UTC offset changes, 1990-2060."""
    zone = ZoneInfo(tz)
    out = []
    day = dt.date(1990, 1, 1)
    prev = dt.datetime.combine(day, dt.time(12), tzinfo=zone).utcoffset()
    while day < dt.date(2061, 1, 1):
        day += dt.timedelta(days=1)
        off = dt.datetime.combine(day, dt.time(12), tzinfo=zone).utcoffset()
        if off != prev:
            out.append(day)
        prev = off
    return tuple(out) or (dt.date(2026, 3, 8),)


LO_US = (dt.datetime(1990, 1, 1, tzinfo=UTC) - bc._EPOCH) // ONE_US
HI_US = (dt.datetime(2060, 12, 31, tzinfo=UTC) - bc._EPOCH) // ONE_US


@st.composite
def instants(draw: st.DrawFn, spec: Spec) -> int:
    """UTC µs in 1990-2060, biased toward DST-change days and the window edges."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.integers(LO_US, HI_US))
    if draw(st.booleans()):
        day = draw(st.sampled_from(transition_dates(spec.tz)))
        day += dt.timedelta(days=draw(st.sampled_from([0, 0, 0, -2, -1, 1, 2])))
    else:
        day = draw(st.dates(dt.date(1990, 1, 2), dt.date(2060, 12, 30)))
    clock = draw(
        st.sampled_from(
            [spec.open_time, spec.close_time, dt.time(0), dt.time(1), dt.time(2), dt.time(3)]
        )
    )
    offset = draw(
        st.one_of(st.integers(-2, 2), st.integers(-3 * H, 3 * H), st.sampled_from([-H, H // 2]))
    )
    local = dt.datetime.combine(day, clock).replace(
        tzinfo=ZoneInfo(spec.tz), fold=draw(st.integers(0, 1))
    )
    return (local.astimezone(UTC) - bc._EPOCH) // ONE_US + offset


DAY_US = 24 * H
durations = st.one_of(
    st.integers(-3 * DAY_US, 3 * DAY_US),
    st.integers(-90 * DAY_US, 90 * DAY_US),
    st.integers(-5 * 366 * DAY_US, 5 * 366 * DAY_US),
    st.sampled_from([0, 1, -1, 8 * H, -8 * H]),
)
spec_index = st.integers(0, len(SPECS) - 1)
ZONES = ["UTC", CT, "Asia/Tokyo", "America/Los_Angeles", "Europe/London"]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_stamp(us: int, zone: str) -> pd.Timestamp:
    return pd.Timestamp(us, unit="us", tz="UTC").tz_convert(zone)


# --------------------------------------------------------------------------- table cases: elapsed

ELAPSED = [
    ("fri-18-to-mon-18", "2026-03-13 18:00", "2026-03-16 18:00", 8 * H),
    ("fri-1630-to-mon-0930", "2026-03-13 16:30", "2026-03-16 09:30", 1 * H),
    ("reversed-is-negative", "2026-03-16 09:30", "2026-03-13 16:30", -1 * H),
    ("same-instant", "2026-03-16 10:00", "2026-03-16 10:00", 0),
    ("one-microsecond-before-close", "2026-03-16 16:59:59.999999", "2026-03-16 17:00", 1),
    ("open-first-microsecond", "2026-03-16 09:00", "2026-03-16 09:00:00.000001", 1),
    ("close-is-outside", "2026-03-16 17:00", "2026-03-16 23:00", 0),
    ("microseconds", "2026-03-16 10:00:00.000001", "2026-03-16 17:30", 7 * H - 1),
    ("night-only", "2026-03-16 17:00", "2026-03-17 09:00", 0),
    ("weekend-only", "2026-03-14 00:00", "2026-03-16 09:00", 0),
    ("dst-spring-sunday", "2026-03-08 00:00", "2026-03-09 00:00", 0),
    ("dst-spring-fri-to-mon", "2026-03-06 16:00", "2026-03-09 10:00", 2 * H),
    ("dst-spring-monday-is-8h", "2026-03-09 00:00", "2026-03-10 00:00", 8 * H),
    ("dst-spring-friday-is-8h", "2026-03-06 00:00", "2026-03-07 00:00", 8 * H),
    ("dst-fall-sunday", "2026-10-31 12:00", "2026-11-02 09:00", 0),
    ("dst-fall-fri-to-mon", "2026-10-30 16:00", "2026-11-02 10:00", 2 * H),
    ("dst-fall-monday-is-8h", "2026-11-02 00:00", "2026-11-03 00:00", 8 * H),
    ("two-weeks-across-dst", "2026-03-02 00:00", "2026-03-16 00:00", 80 * H),
    ("holiday-2026-12-25", "2026-12-24 12:00", "2026-12-28 12:00", 8 * H),
    ("holiday-alone", "2026-12-25 00:00", "2026-12-26 00:00", 0),
    ("year", "2026-01-01 00:00", "2027-01-01 00:00", (261 - 1) * 8 * H),
]


@pytest.mark.parametrize(
    ("start", "end", "expected"), [c[1:] for c in ELAPSED], ids=[c[0] for c in ELAPSED]
)
def test_elapsed_table(start: str, end: str, expected: int) -> None:
    a, b = ct(start), ct(end)
    assert CAL.business_microseconds(a, b) == expected
    assert CAL.business_hours(a, b) == expected / 3.6e9
    assert CAL.business_microseconds(b, a) == -expected
    spec = Spec(CT, holidays=frozenset({XMAS}))
    assert ref_us(spec, a, b) == expected  # the reference agrees with the hand-worked value


US_HOLIDAY = [
    ("july-3-observed-closed", "2026-07-03 00:00", "2026-07-04 00:00", 0, 8 * H),
    ("around-july-4", "2026-07-02 12:00", "2026-07-06 12:00", 8 * H, 16 * H),
    ("thanksgiving", "2026-11-26 00:00", "2026-11-27 00:00", 0, 8 * H),
    ("christmas-from-country", "2026-12-25 00:00", "2026-12-26 00:00", 0, 8 * H),
]


@pytest.mark.parametrize(
    ("start", "end", "with_us", "without"),
    [c[1:] for c in US_HOLIDAY],
    ids=[c[0] for c in US_HOLIDAY],
)
def test_holiday_country_us(start: str, end: str, with_us: int, without: int) -> None:
    assert CAL_US.business_microseconds(ct(start), ct(end)) == with_us
    assert BusinessCalendar(CT).business_microseconds(ct(start), ct(end)) == without


def test_holiday_country_years_are_generated_lazily() -> None:
    cal = BusinessCalendar(CT, holiday_country="US")
    assert cal.business_hours(ct("2026-07-03 00:00"), ct("2026-07-04 00:00")) == 0
    # a much later year, built after the first table: July 4 2037 is a Saturday too
    assert cal.business_hours(ct("2037-07-03 00:00"), ct("2037-07-04 00:00")) == 0
    assert cal.business_hours(ct("1998-07-03 00:00"), ct("1998-07-04 00:00")) == 0  # Friday
    assert cal.business_hours(ct("1998-07-02 00:00"), ct("1998-07-03 00:00")) == 8


IS_OPEN = [
    ("0900-inside", "2026-03-16 09:00", True),
    ("0859-outside", "2026-03-16 08:59:59.999999", False),
    ("1659-inside", "2026-03-16 16:59:59.999999", True),
    ("1700-outside", "2026-03-16 17:00", False),
    ("saturday", "2026-03-14 12:00", False),
    ("dst-sunday", "2026-03-08 12:00", False),
    ("dst-monday", "2026-03-09 09:00", True),
    ("holiday", "2026-12-25 12:00", False),
]


@pytest.mark.parametrize(
    ("when", "expected"), [c[1:] for c in IS_OPEN], ids=[c[0] for c in IS_OPEN]
)
def test_is_open_table(when: str, expected: bool) -> None:
    assert CAL.is_open(ct(when)) is expected


ADD = [
    ("1600-plus-1-is-1700-same-day", "2026-03-16 16:00", 1, "2026-03-16 17:00"),
    ("1700-plus-1-is-next-1000", "2026-03-16 17:00", 1, "2026-03-17 10:00"),
    ("fri-1600-plus-2-is-mon-1000", "2026-03-13 16:00", 2, "2026-03-16 10:00"),
    ("saturday-plus-1", "2026-03-14 12:00", 1, "2026-03-16 10:00"),
    ("saturday-minus-1", "2026-03-14 12:00", -1, "2026-03-13 16:00"),
    ("1000-minus-1-is-0900-same-day", "2026-03-17 10:00", -1, "2026-03-17 09:00"),
    ("mon-0900-minus-1-is-fri-1600", "2026-03-16 09:00", -1, "2026-03-13 16:00"),
    ("mon-0930-minus-1-is-fri-1630", "2026-03-16 09:30", -1, "2026-03-13 16:30"),
    ("zero-keeps-t", "2026-03-14 12:00", 0, "2026-03-14 12:00"),
    ("full-day", "2026-03-16 09:00", 8, "2026-03-16 17:00"),
    ("full-week", "2026-03-16 09:00", 40, "2026-03-20 17:00"),
    ("before-open", "2026-03-16 07:00", 0.5, "2026-03-16 09:30"),
    ("across-dst-spring", "2026-03-06 16:00", 2, "2026-03-09 10:00"),
    ("across-dst-fall", "2026-10-30 16:00", 2, "2026-11-02 10:00"),
    ("back-across-dst-fall", "2026-11-02 10:00", -2, "2026-10-30 16:00"),
    ("across-holiday", "2026-12-24 16:00", 2, "2026-12-28 10:00"),
    ("microsecond", "2026-03-16 16:59:59.999999", 1 / 3.6e9, "2026-03-16 17:00"),
]


@pytest.mark.parametrize(
    ("start", "hours", "expected"), [c[1:] for c in ADD], ids=[c[0] for c in ADD]
)
def test_add_business_hours_table(start: str, hours: float, expected: str) -> None:
    got = CAL.add_business_hours(ct(start), hours)
    assert isinstance(got, pd.Timestamp)
    assert got == ct(expected)
    assert str(got.tz) == CT


def test_add_business_hours_table_vectorised() -> None:
    starts = pd.Series([ct(c[1]) for c in ADD], index=[c[0] for c in ADD])
    hours = pd.Series([c[2] for c in ADD], index=starts.index)
    got = CAL.add_business_hours(starts.dt.tz_convert("UTC"), hours)
    assert got.dtype == "datetime64[us, UTC]"
    assert got.index.equals(starts.index)
    assert got.tolist() == [ct(c[3]) for c in ADD]
    for h in (1, -1, 2.5, -2.5):  # one sign for the whole vector
        one = CAL.add_business_hours(starts, h)
        assert one.tolist() == [CAL.add_business_hours(t, h) for t in starts]


def test_add_business_hours_with_us_holidays_and_timedelta() -> None:
    assert CAL_US.add_business_hours(ct("2026-07-02 16:00"), 2) == ct("2026-07-06 10:00")
    got = CAL.add_business_hours(ct("2026-03-16 09:00"), dt.timedelta(microseconds=1))
    assert got == ct("2026-03-16 09:00:00.000001")


def test_add_business_hours_far_ahead_grows_the_table() -> None:
    cal = BusinessCalendar(CT, holidays=[XMAS])
    start = ct("2026-03-16 09:00")
    got = cal.add_business_hours(start, 20_000)  # about ten years of business hours
    assert cal.business_microseconds(start, got) == 20_000 * H
    assert ref_us(Spec(CT, holidays=frozenset({XMAS})), start, got) == 20_000 * H
    back = cal.add_business_hours(got, -20_000)
    assert back == start


NEXT_OPEN = [
    ("inside-is-itself", "2026-03-16 12:00", "2026-03-16 12:00"),
    ("open-is-itself", "2026-03-16 09:00", "2026-03-16 09:00"),
    ("last-microsecond-is-itself", "2026-03-16 16:59:59.999999", "2026-03-16 16:59:59.999999"),
    ("before-open", "2026-03-16 08:00", "2026-03-16 09:00"),
    ("at-close", "2026-03-16 17:00", "2026-03-17 09:00"),
    ("friday-evening", "2026-03-13 17:00", "2026-03-16 09:00"),
    ("saturday", "2026-03-14 03:00", "2026-03-16 09:00"),
    ("dst-sunday", "2026-03-08 01:30", "2026-03-09 09:00"),
    ("holiday-eve", "2026-12-24 17:00", "2026-12-28 09:00"),
]


@pytest.mark.parametrize(
    ("when", "expected"), [c[1:] for c in NEXT_OPEN], ids=[c[0] for c in NEXT_OPEN]
)
def test_next_open_table(when: str, expected: str) -> None:
    got = CAL.next_open(ct(when))
    assert got == ct(expected)
    assert str(got.tz) == CT


# --------------------------------------------------------------------------- zones and input kinds


def test_inputs_in_other_zones() -> None:
    start = pd.Timestamp("2026-03-13 21:30", tz="UTC")  # Fri 16:30 CDT
    end = pd.Timestamp("2026-03-16 22:30", tz="Asia/Tokyo")  # Mon 08:30 CDT
    assert CAL.business_hours(start, end) == 0.5
    plain = dt.datetime(2026, 3, 16, 15, 0, tzinfo=ZoneInfo("Europe/London"))  # 10:00 CDT
    assert CAL.business_hours(start, plain) == 1.5
    fixed = dt.datetime(2026, 3, 16, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert CAL.business_hours(plain, fixed) == 0
    got = CAL.add_business_hours(start, 1)
    assert str(got.tz) == "UTC"
    assert got == pd.Timestamp("2026-03-16 14:30", tz="UTC")  # Mon 09:30 CDT


def test_nanoseconds_are_floored_and_seconds_scaled() -> None:
    almost = pd.Timestamp("2026-03-16 16:59:59.999999999").tz_localize(CT)
    assert almost.unit == "ns"
    assert CAL.business_microseconds(almost, ct("2026-03-16 17:00")) == 1
    before_1970 = pd.Timestamp("1969-12-31 12:00:00.000000999").tz_localize(CT)  # a Wednesday
    assert CAL.business_microseconds(before_1970, pd.Timestamp("1969-12-31 12:00", tz=CT)) == 0
    vector = pd.Series([almost, before_1970, pd.NaT], dtype="datetime64[ns, America/Chicago]")
    got = CAL.business_microseconds(vector, vector.dt.floor("us") + pd.Timedelta(microseconds=1))
    assert got.tolist() == [1, 1, pd.NA]
    assert CAL.next_open(vector).iloc[0] == ct("2026-03-16 16:59:59.999999")
    secs = pd.Series(pd.to_datetime(["2026-03-16 10:00", "2026-03-16 11:00"]).tz_localize(CT))
    secs = secs.astype("datetime64[s, America/Chicago]")
    assert list(CAL.business_hours(secs, ct("2026-03-16 12:00"))) == [2.0, 1.0]
    ms = secs.astype("datetime64[ms, America/Chicago]")
    assert list(CAL.business_hours(ms, secs)) == [0.0, 0.0]


def test_series_in_series_out_keeps_index() -> None:
    idx = pd.Index([10, 20, 30], name="ticket")
    start = pd.Series(
        [ct("2026-03-13 16:30"), ct("2026-03-14 12:00"), ct("2026-03-16 09:00")],
        index=idx,
        name="received_at",
    )
    end = ct("2026-03-16 09:30")
    hours = CAL.business_hours(start, end)
    assert isinstance(hours, pd.Series)
    assert hours.index.equals(idx)
    assert hours.dtype == np.float64
    assert list(hours) == [1.0, 0.5, 0.5]
    us = CAL.business_microseconds(start, end)
    assert us.dtype == "Int64"
    assert list(us) == [H, H // 2, H // 2]
    # scalar start, Series end
    assert list(CAL.business_hours(end, start)) == [-1.0, -0.5, -0.5]

    added = CAL.add_business_hours(start, 1)
    assert isinstance(added, pd.Series)
    assert added.index.equals(idx)
    assert added.name == "received_at"
    assert added.dtype == "datetime64[us, America/Chicago]"
    assert list(added) == [ct("2026-03-16 09:30"), ct("2026-03-16 10:00"), ct("2026-03-16 10:00")]

    per_row = CAL.add_business_hours(start, pd.Series([1.0, -1.0, 0.0], index=idx))
    assert list(per_row) == [ct("2026-03-16 09:30"), ct("2026-03-13 16:00"), start.iloc[2]]
    assert CAL.add_business_hours(start, np.array([1, -1, 0])).equals(per_row)

    opened = CAL.next_open(start)
    assert opened.index.equals(idx)
    assert list(opened) == [start.iloc[0], ct("2026-03-16 09:00"), start.iloc[2]]
    flags = CAL.is_open(start)
    assert flags.index.equals(idx)
    assert list(flags) == [True, False, True]


def test_index_and_list_inputs() -> None:
    dti = pd.DatetimeIndex([ct("2026-03-13 16:30"), ct("2026-03-16 10:00")]).tz_convert("UTC")
    hours = CAL.business_hours(dti, ct("2026-03-16 12:00"))
    assert isinstance(hours, np.ndarray)
    assert list(hours) == [3.5, 2.0]
    moved = CAL.next_open(dti)
    assert isinstance(moved, pd.DatetimeIndex)
    assert moved.dtype == "datetime64[us, UTC]"
    mixed = [
        dt.datetime(2026, 3, 16, 10, tzinfo=ZoneInfo(CT)),
        pd.Timestamp("2026-03-16 16:00", tz="UTC"),  # 11:00 CDT
        None,
    ]
    got = CAL.business_hours(mixed, ct("2026-03-16 12:00"))
    assert got[:2].tolist() == [2.0, 1.0]
    assert np.isnan(got[2])
    objects = pd.Series(mixed, index=[7, 8, 9], dtype=object)
    got = CAL.business_hours(objects, ct("2026-03-16 12:00"))
    assert got.index.tolist() == [7, 8, 9] and got.iloc[:2].tolist() == [2.0, 1.0]
    moved = CAL.next_open(pd.Index(mixed, dtype=object, name="at"))
    assert isinstance(moved, pd.DatetimeIndex) and moved.name == "at"
    assert str(moved.tz) == "UTC"  # mixed zones come back in UTC


def test_pyarrow_and_nullable_inputs() -> None:
    pa = pytest.importorskip("pyarrow")
    start = pd.Series([ct("2026-03-16 16:00"), pd.NaT], dtype="datetime64[us, America/Chicago]")
    arrow = start.astype(pd.ArrowDtype(pa.timestamp("us", tz=CT)))
    hours = pd.Series([1.0, None], dtype="Float64")
    got = CAL.add_business_hours(arrow, hours)
    assert isinstance(got, pd.Series)
    assert got.iloc[0] == ct("2026-03-16 17:00") and pd.isna(got.iloc[1])
    assert CAL.add_business_hours(start, pd.Series([2, None], dtype="Int64")).iloc[0] == ct(
        "2026-03-17 10:00"
    )
    with pytest.raises(InvalidInputError, match="naive"):
        CAL.is_open(arrow.astype(pd.ArrowDtype(pa.timestamp("us"))))


def test_nat_propagates() -> None:
    start = pd.Series([ct("2026-03-16 10:00"), pd.NaT, ct("2026-03-16 11:00")])
    end = pd.Series([pd.NaT, ct("2026-03-16 12:00"), ct("2026-03-16 12:00")])
    hours = CAL.business_hours(start, end)
    assert np.isnan(hours.iloc[0]) and np.isnan(hours.iloc[1]) and hours.iloc[2] == 1.0
    us = CAL.business_microseconds(start, end)
    assert us.isna().tolist() == [True, True, False]
    assert CAL.is_open(start).isna().tolist() == [False, True, False]
    added = CAL.add_business_hours(start, 1)
    assert added.isna().tolist() == [False, True, False]
    nan_hours = CAL.add_business_hours(start, [1.0, 1.0, np.nan])
    assert nan_hours.isna().tolist() == [False, True, True]
    assert CAL.next_open(start).isna().tolist() == [False, True, False]
    all_nat = pd.Series([pd.NaT, pd.NaT], dtype="datetime64[us, America/Chicago]")
    assert CAL.business_hours(all_nat, end.iloc[:2]).isna().all()
    assert CAL.next_open(all_nat).isna().all()
    # scalars
    assert np.isnan(CAL.business_hours(pd.NaT, ct("2026-03-16 12:00")))
    assert CAL.business_microseconds(ct("2026-03-16 12:00"), pd.NaT) is pd.NA
    assert CAL.add_business_hours(pd.NaT, 1) is pd.NaT
    assert CAL.add_business_hours(ct("2026-03-16 12:00"), float("nan")) is pd.NaT
    assert CAL.next_open(pd.NaT) is pd.NaT
    assert CAL.is_open(pd.NaT) is pd.NA
    assert CAL.business_hours(pd.NaT, start).isna().all()


NAIVE = [
    ("datetime", dt.datetime(2026, 3, 16, 10)),
    ("timestamp", pd.Timestamp("2026-03-16 10:00")),
    ("numpy-scalar", np.datetime64("2026-03-16T10:00")),
    ("series", pd.Series(pd.to_datetime(["2026-03-16 10:00"]))),
    ("numpy-array", np.array(["2026-03-16T10:00"], dtype="datetime64[us]")),
    ("index", pd.DatetimeIndex(["2026-03-16 10:00"])),
    ("list", [dt.datetime(2026, 3, 16, 10)]),
]


@pytest.mark.parametrize("value", [c[1] for c in NAIVE], ids=[c[0] for c in NAIVE])
def test_naive_inputs_are_rejected(value: object) -> None:
    with pytest.raises(InvalidInputError, match=r"naive.*localise"):
        CAL.business_hours(value, ct("2026-03-16 12:00"))
    with pytest.raises(InvalidInputError, match="localise"):
        CAL.add_business_hours(value, 1)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(InvalidInputError, match="aware timestamp"):
        CAL.is_open("2026-03-16 10:00")
    a = pd.Series([ct("2026-03-16 10:00")] * 2)
    with pytest.raises(InvalidInputError, match="must match"):
        CAL.business_hours(a, a.iloc[:1])
    with pytest.raises(InvalidInputError, match="different indexes"):
        CAL.business_hours(a, a.set_axis([5, 6]))
    with pytest.raises(InvalidInputError, match="numeric"):
        CAL.add_business_hours(a, ["1", "2"])
    with pytest.raises(InvalidInputError, match="out of range"):
        CAL.add_business_hours(a, 1e12)
    with pytest.raises(InvalidInputError, match="years"):
        CAL.next_open(pd.Timestamp("9999-12-31 12:00", tz="UTC"))


POLICY_ERRORS = [
    ("unknown-tz", {"tz": "Mars/Olympus"}, "time zone"),
    ("tz-not-str", {"tz": ZoneInfo(CT)}, "time zone"),
    ("open-after-close", {"open_time": dt.time(17), "close_time": dt.time(9)}, "before"),
    ("open-equals-close", {"open_time": dt.time(9), "close_time": dt.time(9)}, "before"),
    ("weekday-7", {"weekdays": (0, 7)}, "weekday"),
    ("weekday-negative", {"weekdays": (-1,)}, "weekday"),
    ("weekday-bool", {"weekdays": (True,)}, "weekday"),
    ("weekday-str", {"weekdays": ("1",)}, "weekday"),
    ("no-weekdays", {"weekdays": ()}, "at least one"),
    ("holiday-datetime", {"holidays": [dt.datetime(2026, 1, 1)]}, "holiday"),
    ("holiday-str", {"holidays": ["2026-01-01"]}, "holiday"),
    ("holidays-one-date", {"holidays": dt.date(2026, 1, 1)}, "iterable"),
    ("country", {"holiday_country": "XX"}, "holiday_country"),
    ("open-aware", {"open_time": dt.time(9, tzinfo=UTC)}, "naive"),
]


@pytest.mark.parametrize(
    ("kwargs", "match"), [c[1:] for c in POLICY_ERRORS], ids=[c[0] for c in POLICY_ERRORS]
)
def test_invalid_calendar_raises_policy_error(kwargs: dict, match: str) -> None:
    kwargs = {"tz": CT} | kwargs
    with pytest.raises(PolicyError, match=match):
        BusinessCalendar(**kwargs)


def test_properties_and_repr() -> None:
    cal = BusinessCalendar(CT, holidays=[XMAS], weekdays=[4, 0, 0], holiday_country="US")
    assert cal.tz == CT and cal.weekdays == (0, 4) and cal.holidays == {XMAS}
    assert cal.holiday_country == "US" and cal.open_time == dt.time(9)
    assert "America/Chicago" in repr(cal)


# --------------------------------------------------------------------------- odd zones


def test_skipped_day_pacific_apia() -> None:
    # Samoa skipped Friday 2011-12-30 entirely; Thursday has its 8 hours, Saturday none.
    apia = "Pacific/Apia"
    cal = BusinessCalendar(apia)
    thu = pd.Timestamp("2011-12-29 08:00").tz_localize(apia)
    sat = pd.Timestamp("2011-12-31 12:00").tz_localize(apia)
    assert cal.business_hours(thu, sat) == 8
    assert cal.next_open(thu + pd.Timedelta(hours=9)) == pd.Timestamp(
        "2012-01-02 09:00"
    ).tz_localize(apia)
    assert cal.add_business_hours(sat, -1) == pd.Timestamp("2011-12-29 16:00").tz_localize(apia)
    # every day a business day: Saturday 31st works again, on both sides of the missing day
    daily = BusinessCalendar(apia, weekdays=range(7))
    thu0 = pd.Timestamp("2011-12-29 00:00").tz_localize(apia)
    hours = pd.date_range("2011-12-31 00:00", periods=24 * 4, freq="15min", tz=apia)
    want = [8 + min(max(t.hour + t.minute / 60 - 9, 0), 8) for t in hours]
    assert as_list(daily.business_hours(thu0, hours)) == want
    assert daily.is_open(hours).tolist() == [9 <= t.hour < 17 for t in hours]


def test_window_edges_inside_dst_gap_and_overlap() -> None:
    every_day = (0, 1, 2, 3, 4, 5, 6)
    # 02:30 does not exist on 2026-03-08: the window opens when the gap ends, 03:00 CDT.
    gap = BusinessCalendar(CT, weekdays=every_day, open_time=dt.time(2, 30), close_time=dt.time(10))
    assert gap.next_open(ct("2026-03-08 00:00")) == ct("2026-03-08 03:00")
    assert gap.business_hours(ct("2026-03-08 00:00"), ct("2026-03-09 00:00")) == 7
    assert gap.business_hours(ct("2026-03-09 00:00"), ct("2026-03-10 00:00")) == 7.5
    # 01:30 happens twice on 2026-11-01: the window closes at the earlier one (CDT).
    overlap = BusinessCalendar(
        CT, weekdays=every_day, open_time=dt.time(0), close_time=dt.time(1, 30)
    )
    assert overlap.business_hours(ct("2026-11-01 00:00"), ct("2026-11-02 00:00")) == 1.5
    late = pd.Timestamp("2026-11-01 01:15").tz_localize(CT, ambiguous=False)  # the CST one
    assert not overlap.is_open(late)


def test_long_vectors_cross_chunk_boundaries() -> None:
    rng = np.random.default_rng(7)
    n = 2 * bc._CHUNK + 1234
    lo = (dt.datetime(2025, 1, 1, tzinfo=UTC) - bc._EPOCH) // ONE_US
    a_us = rng.integers(lo, lo + 3 * 366 * DAY_US, n)
    b_us = a_us + rng.integers(-30 * DAY_US, 30 * DAY_US, n)
    a = pd.Series(pd.DatetimeIndex(a_us.view("M8[us]")).tz_localize("UTC").tz_convert(CT))
    b = pd.Series(pd.DatetimeIndex(b_us.view("M8[us]")).tz_localize("UTC"))
    a.iloc[[5, bc._CHUNK + 3, n - 1]] = pd.NaT
    whole = CAL.business_microseconds(a, b)
    step = bc._CHUNK // 3
    pieces = pd.concat(
        [
            CAL.business_microseconds(a.iloc[s : s + step], b.iloc[s : s + step])
            for s in range(0, n, step)
        ]
    )
    assert whole.equals(pieces)
    spec = Spec(CT, holidays=frozenset({XMAS}))
    for i in rng.choice(n, 40, replace=False):
        if pd.isna(a.iloc[i]):
            assert pd.isna(whole.iloc[i])
        else:
            assert whole.iloc[i] == ref_us(spec, a.iloc[i], b.iloc[i])
    hours = CAL.business_hours(a, b)
    assert np.array_equal(
        hours.to_numpy(), whole.to_numpy(dtype=float, na_value=np.nan) / 3.6e9, equal_nan=True
    )
    moved = CAL.add_business_hours(a, 3.25)
    back = CAL.business_microseconds(a, moved)
    assert (back.dropna() == int(3.25 * H)).all()
    assert back.isna().sum() == 3


# --------------------------------------------------------------------------- properties vs reference


@FAST
@given(data=st.data(), i=spec_index)
def test_elapsed_matches_reference(data: st.DataObject, i: int) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    a = data.draw(instants(spec))
    b = min(max(a + data.draw(durations), LO_US), HI_US)
    za, zb = data.draw(st.sampled_from(ZONES)), data.draw(st.sampled_from(ZONES))
    got = cal.business_microseconds(as_stamp(a, za), as_stamp(b, zb))
    assert got == ref_us(spec, utc(a), utc(b))


@FAST
@given(data=st.data(), i=spec_index)
def test_vector_matches_reference_antisymmetric_and_additive(data: st.DataObject, i: int) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    a = data.draw(st.lists(instants(spec), min_size=1, max_size=6))
    b = [min(max(x + data.draw(durations), LO_US), HI_US) for x in a]
    c = [min(max(x + data.draw(durations), LO_US), HI_US) for x in b]
    zone = data.draw(st.sampled_from(ZONES))
    sa, sb, sc = (
        pd.Series(pd.DatetimeIndex(np.array(v, dtype="M8[us]")).tz_localize("UTC").tz_convert(zone))
        for v in (a, b, c)
    )
    ab = cal.business_microseconds(sa, sb)
    bc_ = cal.business_microseconds(sb, sc)
    ac = cal.business_microseconds(sa, sc)
    assert ab.tolist() == [ref_us(spec, utc(x), utc(y)) for x, y in zip(a, b, strict=True)]
    assert (cal.business_microseconds(sb, sa) == -ab).all()
    assert (ab + bc_ == ac).all()
    assert cal.is_open(sa).tolist() == [ref_is_open(spec, utc(x)) for x in a]


@FAST
@given(data=st.data(), i=spec_index)
def test_is_open_matches_reference(data: st.DataObject, i: int) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    t = data.draw(instants(spec))
    assert cal.is_open(as_stamp(t, data.draw(st.sampled_from(ZONES)))) is ref_is_open(spec, utc(t))


hours_strategy = st.one_of(
    st.integers(-60, 60),
    st.floats(-400, 400, allow_nan=False).map(lambda h: round(h, 6)),
    st.integers(-3 * H, 3 * H).map(lambda us: us / H),
)


@FAST
@given(data=st.data(), i=spec_index, hours=hours_strategy)
def test_add_business_hours_matches_definition(data: st.DataObject, i: int, hours: float) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    t_us = data.draw(instants(spec))
    zone = data.draw(st.sampled_from(ZONES))
    t = as_stamp(t_us, zone)
    n = round(hours * H)
    u = cal.add_business_hours(t, hours)
    assert str(u.tz) == zone
    assert u.unit == "us"
    t_dt, u_dt = utc(t_us), u.to_pydatetime().astimezone(UTC)
    if n == 0:
        assert u_dt == t_dt
    elif n > 0:
        assert u_dt >= t_dt
        assert ref_us(spec, t_dt, u_dt) == n
        assert ref_us(spec, t_dt, u_dt - ONE_US) < n  # earliest such instant
    else:
        assert u_dt <= t_dt
        assert ref_us(spec, u_dt, t_dt) == -n
        assert ref_us(spec, u_dt + ONE_US, t_dt) < -n  # latest such instant


@FAST
@given(data=st.data(), i=spec_index)
def test_next_open_matches_definition(data: st.DataObject, i: int) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    t_us = data.draw(instants(spec))
    u = cal.next_open(as_stamp(t_us, CT))
    t_dt, u_dt = utc(t_us), u.to_pydatetime().astimezone(UTC)
    assert u_dt >= t_dt
    assert ref_is_open(spec, u_dt)
    assert ref_us(spec, t_dt, u_dt) == 0  # nothing open in [t, u)
    assert (u_dt == t_dt) is ref_is_open(spec, t_dt)


@settings(max_examples=40, deadline=None)
@given(
    holidays=st.sets(st.dates(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), max_size=60),
    weekdays=st.sets(st.integers(0, 6), min_size=1),
    a=st.integers(0, 364 * DAY_US),
    length=st.integers(-40 * DAY_US, 40 * DAY_US),
    hours=st.floats(-100, 100).map(lambda h: round(h, 4)),
)
def test_random_holidays_and_weekdays(
    holidays: set[dt.date], weekdays: set[int], a: int, length: int, hours: float
) -> None:
    spec = Spec("Europe/London", weekdays=tuple(sorted(weekdays)), holidays=frozenset(holidays))
    cal = spec.calendar()
    start = (dt.datetime(2026, 1, 1, tzinfo=UTC) - bc._EPOCH) // ONE_US + a
    end = start + length
    assert cal.business_microseconds(as_stamp(start, CT), as_stamp(end, "UTC")) == ref_us(
        spec, utc(start), utc(end)
    )
    u = cal.add_business_hours(as_stamp(start, "UTC"), hours)
    n = round(hours * H)
    u_dt = u.to_pydatetime()
    if n > 0:
        assert ref_us(spec, utc(start), u_dt) == n
        assert ref_us(spec, utc(start), u_dt - ONE_US) < n
    elif n < 0:
        assert ref_us(spec, u_dt, utc(start)) == -n
        assert ref_us(spec, u_dt + ONE_US, utc(start)) < -n


def test_from_policy_uses_the_policy_rules(tmp_path):
    from ipchange_core import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(
        "versions:\n  - version: h\n    effective_from: 2014-08-05\n"
        "    holidays: {country: US, dates: [2026-12-24]}\n"
        "    business_hours: {open: '08:00', close: '12:00'}\n"
    )
    cal = BusinessCalendar.from_policy(load_policy(path))
    start = pd.Timestamp("2026-12-23 07:00", tz="America/Chicago")
    end = pd.Timestamp("2026-12-28 09:00", tz="America/Chicago")
    # Wed 23rd 08–12 (4 h); 24th explicit holiday; 25th US holiday; Mon 28th 08–09 (1 h)
    assert cal.business_hours(start, end) == 5.0
    assert BusinessCalendar.from_policy(load_policy()).business_hours(start, end) == 24.0


# --------------------------------------------------------------------------- business days


@cache
def country_holidays(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays_pkg.country_holidays(country, years=year))


def ref_is_business_day(spec: Spec, day: dt.date, country: str | None = None) -> bool:
    """A listed weekday that is neither an explicit holiday nor one of ``country``'s."""
    closed = day in spec.holidays
    if country is not None:
        closed = closed or day in country_holidays(country, day.year)
    return day.weekday() in spec.weekdays and not closed


def ref_business_day_offset(
    spec: Spec, day: dt.date, n: int, roll: str, country: str | None = None
) -> dt.date:
    """Roll to a business day, then step day by day until ``n`` business days are passed."""
    step = dt.timedelta(days=1 if roll == "forward" else -1)
    while not ref_is_business_day(spec, day, country):
        day += step
    one = dt.timedelta(days=1 if n > 0 else -1)
    for _ in range(abs(n)):
        day += one
        while not ref_is_business_day(spec, day, country):
            day += one
    return day


def d64(text: str) -> np.datetime64:
    return np.datetime64(text, "D")


NEXT_BUSINESS_DAY = [
    ("friday-over-dst-spring-sunday", CAL, "2026-03-06", "2026-03-09"),
    ("dst-spring-sunday-itself", CAL, "2026-03-08", "2026-03-09"),
    ("saturday-before-dst-fall", CAL, "2026-10-31", "2026-11-02"),
    ("monday-to-tuesday", CAL, "2026-03-16", "2026-03-17"),
    ("christmas-eve-over-holiday-and-weekend", CAL, "2026-12-24", "2026-12-28"),
    ("us-observed-independence-day", CAL_US, "2026-07-02", "2026-07-06"),
    ("us-thanksgiving", CAL_US, "2026-11-25", "2026-11-27"),
    ("us-new-year-across-the-year-end", CAL_US, "2026-12-31", "2027-01-04"),
]


@pytest.mark.parametrize(
    ("cal", "day", "expected"),
    [c[1:] for c in NEXT_BUSINESS_DAY],
    ids=[c[0] for c in NEXT_BUSINESS_DAY],
)
def test_next_business_day_table(cal: BusinessCalendar, day: str, expected: str) -> None:
    assert cal.next_business_day(d64(day)) == d64(expected)
    assert cal.next_business_day(dt.date.fromisoformat(day)) == d64(expected)


BUSINESS_DAY_OFFSET = [
    ("holiday-rolls-forward", CAL, "2026-12-25", 0, "forward", "2026-12-28"),
    ("holiday-rolls-backward", CAL, "2026-12-25", 0, "backward", "2026-12-24"),
    ("business-day-is-itself", CAL, "2026-12-24", 0, "forward", "2026-12-24"),
    ("one-over-dst-spring", CAL, "2026-03-06", 1, "forward", "2026-03-09"),
    ("minus-one-over-dst-spring", CAL, "2026-03-09", -1, "forward", "2026-03-06"),
    ("one-over-dst-fall", CAL, "2026-10-30", 1, "forward", "2026-11-02"),
    ("two-weeks", CAL, "2026-03-02", 10, "forward", "2026-03-16"),
    ("us-new-year-rolls", CAL_US, "2026-01-01", 0, "forward", "2026-01-02"),
    ("us-over-christmas", CAL_US, "2026-12-24", 1, "forward", "2026-12-28"),
    ("us-back-over-observed-july-4", CAL_US, "2026-07-06", -1, "forward", "2026-07-02"),
]


@pytest.mark.parametrize(
    ("cal", "day", "n", "roll", "expected"),
    [c[1:] for c in BUSINESS_DAY_OFFSET],
    ids=[c[0] for c in BUSINESS_DAY_OFFSET],
)
def test_business_day_offset_table(
    cal: BusinessCalendar, day: str, n: int, roll: str, expected: str
) -> None:
    assert cal.business_day_offset(d64(day), n, roll=roll) == d64(expected)


def test_business_days_vectorised() -> None:
    days = np.array(["2026-12-24", "2026-12-25", "2026-12-26", "2026-03-09"], dtype="M8[D]")
    assert CAL.is_business_day(days).tolist() == [True, False, False, True]
    got = CAL.business_day_offset(days, np.array([1, 0, 0, -5]))
    assert got.dtype == np.dtype("M8[D]")
    assert got.tolist() == [
        dt.date(2026, 12, 28),
        dt.date(2026, 12, 28),
        dt.date(2026, 12, 28),
        dt.date(2026, 3, 2),
    ]
    assert CAL.next_business_day(np.array([], dtype="M8[D]")).shape == (0,)
    with pytest.raises(InvalidInputError, match="roll"):
        CAL.business_day_offset(days, 1, roll="following")
    with pytest.raises(InvalidInputError, match="years 1-9998"):
        CAL.business_day_offset(dt.date(9998, 12, 1), 100)


def test_business_day_offset_far_ahead_lists_later_years_holidays() -> None:
    start = dt.date(2026, 1, 2)
    got = CAL_US.business_day_offset(start, 1500)
    spec = Spec(CT)
    assert got == np.datetime64(ref_business_day_offset(spec, start, 1500, "forward", "US"))
    assert got.astype(dt.date).year == 2032  # about 250 business days a year


@FAST
@given(
    data=st.data(),
    i=spec_index,
    day=st.dates(dt.date(1990, 1, 1), dt.date(2060, 12, 31)),
    n=st.integers(-40, 40),
    roll=st.sampled_from(["forward", "backward"]),
)
def test_business_days_match_reference(
    data: st.DataObject, i: int, day: dt.date, n: int, roll: str
) -> None:
    spec, cal = SPECS[i], calendar_of(i)
    if data.draw(st.booleans()):  # near a DST change
        day = data.draw(st.sampled_from(transition_dates(spec.tz))) + dt.timedelta(
            days=data.draw(st.integers(-3, 3))
        )
    assert bool(cal.is_business_day(day)) is ref_is_business_day(spec, day)
    assert cal.business_day_offset(day, n, roll=roll) == np.datetime64(
        ref_business_day_offset(spec, day, n, roll)
    )
    assert cal.next_business_day(day) == np.datetime64(
        ref_business_day_offset(spec, day + dt.timedelta(days=1), 0, "forward")
    )
    # The same days have business hours in the calendar's tables.
    midnight = pd.Timestamp(day).tz_localize(spec.tz, nonexistent="shift_forward", ambiguous=True)
    following = pd.Timestamp(day + dt.timedelta(days=1)).tz_localize(
        spec.tz, nonexistent="shift_forward", ambiguous=True
    )
    assert (cal.business_microseconds(midnight, following) > 0) is ref_is_business_day(spec, day)


@FAST
@given(
    day=st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31)),
    n=st.integers(-300, 300),
    roll=st.sampled_from(["forward", "backward"]),
)
def test_business_days_with_holiday_country_match_reference(
    day: dt.date, n: int, roll: str
) -> None:
    spec = Spec(CT)
    assert bool(CAL_US.is_business_day(day)) is ref_is_business_day(spec, day, "US")
    assert CAL_US.business_day_offset(day, n, roll=roll) == np.datetime64(
        ref_business_day_offset(spec, day, n, roll, "US")
    )
