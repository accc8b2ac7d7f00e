"""The demo's instants on the policy's business calendar, as int64 epoch seconds.

The generator draws and shifts times as int64 seconds since the epoch (UTC), whole arrays at a
time. Business hours and business days come from the package's own
:class:`~ipchange_core.business_calendar.BusinessCalendar` (so the demo and the rules agree,
holidays included); wall-clock conversions come from the time-zone database through pandas.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.demo.reference import DAY, HOUR

__all__ = ["Timeline"]

_US_PER_S = 1_000_000


def _seconds_of_day(t: dt.time) -> int:
    return (t.hour * 60 + t.minute) * 60 + t.second


class Timeline:
    """UTC ⇄ wall-clock conversions and business-time moves over epoch seconds.

    Args:
        calendar: The business calendar (its zone is the wall clock's).
        lo: First instant the data set can use, epoch seconds (inclusive).
        hi: Last instant, epoch seconds (inclusive); transitions are listed for [lo, hi].
    """

    def __init__(self, calendar: BusinessCalendar, lo: int, hi: int) -> None:
        self.calendar = calendar
        self.zone = calendar.tz
        self.lo = lo
        self.hi = hi
        self.open = _seconds_of_day(calendar.open_time)  # local second of the day, inclusive
        self.close = _seconds_of_day(calendar.close_time)  # exclusive
        hours = np.arange(lo - lo % HOUR, hi + HOUR, HOUR, dtype=np.int64)
        offs = self.offset(hours)
        change = np.flatnonzero(np.diff(offs)) + 1
        self._changes = [(int(hours[i]), int(offs[i]) > int(offs[i - 1])) for i in change.tolist()]
        #: The UTC offsets (seconds) in force somewhere in [lo, hi], ascending.
        self.offsets = sorted({int(o) for o in offs.tolist()})

    # ---------------------------------------------------------------- wall clock

    def _utc_index(self, utc: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(np.asarray(utc, dtype=np.int64).astype("M8[s]")).tz_localize("UTC")

    def local(self, utc: np.ndarray) -> np.ndarray:
        """Wall-clock seconds ("local epoch") of UTC instants."""
        wall = self._utc_index(utc).tz_convert(self.zone).tz_localize(None)
        return wall.as_unit("s").asi8

    def offset(self, utc: np.ndarray) -> np.ndarray:
        """UTC offset in seconds in force at each instant."""
        return self.local(utc) - np.asarray(utc, dtype=np.int64)

    def utc(self, local: np.ndarray) -> np.ndarray:
        """UTC instants of wall-clock seconds.

        A time in a DST gap moves forward past the gap; a repeated time takes its first
        (daylight-saving) occurrence.
        """
        local = np.asarray(local, dtype=np.int64)
        wall = pd.DatetimeIndex(local.astype("M8[s]")).tz_localize(
            self.zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
        )
        return wall.tz_convert("UTC").as_unit("s").asi8

    def ambiguous(self, utc: np.ndarray) -> np.ndarray:
        """Whether the wall-clock time of each instant occurs twice (so cannot be written naive)."""
        wall = pd.DatetimeIndex(self.local(utc).astype("M8[s]"))
        return wall.tz_localize(self.zone, ambiguous="NaT", nonexistent="NaT").isna()

    def transitions(self, *, forward: bool) -> list[int]:
        """UTC instants in [lo, hi] at which the offset grows (spring forward) or shrinks."""
        return [t for t, grows in self._changes if grows == forward]

    def day_sod(self, utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local day number (days since 1970-01-01) and second of the local day."""
        local = self.local(utc)
        day = local // DAY
        return day, local - day * DAY

    def evening(self, utc: np.ndarray, half_hours: np.ndarray) -> np.ndarray:
        """First after-hours window start (18:00 + ``half_hours``·30 min local) at/after ``utc``."""
        day, sod = self.day_sod(utc)
        start = day * DAY + 18 * HOUR + half_hours * 1800
        start = np.where(start < day * DAY + sod, start + DAY, start)
        return self.utc(start)

    # ---------------------------------------------------------------- business time

    def add_business(self, utc: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Earliest instant u with business time [utc, u) equal to ``seconds`` (≥ 0)."""
        hours = np.asarray(seconds, dtype=np.int64) / 3600
        moved = self.calendar.add_business_hours(self._utc_index(utc), hours)
        return moved.as_unit("us").asi8 // _US_PER_S

    def is_business_day(self, day: np.ndarray) -> np.ndarray:
        """Whether each local day number is a business day."""
        return self.calendar.is_business_day(day.astype("M8[D]"))

    def business_day_offset(
        self, day: np.ndarray, n: np.ndarray | int, *, roll: str = "forward"
    ) -> np.ndarray:
        """Local day numbers ``n`` business days from each local day number.

        A day that is not a business day is rolled first, as in
        :meth:`BusinessCalendar.business_day_offset`.
        """
        out = self.calendar.business_day_offset(day.astype("M8[D]"), n, roll=roll)
        return out.astype(np.int64)

    def next_business_day(self, day: np.ndarray) -> np.ndarray:
        """The first business day strictly after each local day number."""
        return self.calendar.next_business_day(day.astype("M8[D]")).astype(np.int64)

    def slot(self, utc: np.ndarray, duration: np.ndarray) -> np.ndarray:
        """Start of the first half-hour-aligned in-hours window of ``duration`` at/after ``utc``."""
        local = -(-self.local(utc) // 1800) * 1800
        day = local // DAY
        sod = local - day * DAY
        bd = self.is_business_day(day)
        fits = bd & (sod >= self.open) & (sod + duration <= self.close)
        before = bd & (sod < self.open)
        start = np.where(
            fits,
            local,
            np.where(before, day * DAY + self.open, self.next_business_day(day) * DAY + self.open),
        )
        return self.utc(start)
