"""Reporting periods: ISO weeks, months and inclusive date ranges as half-open UTC intervals."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pandas as pd

from ipchange_core.errors import IpchangeError


class PeriodError(IpchangeError):
    """A period argument (week, month or dates) is malformed or inconsistent."""


@dataclass(frozen=True)
class Period:
    """A reporting period: local dates ``[first, last]`` in ``tz``, i.e. ``[start, end)`` in UTC.

    Attributes:
        label: ``2026-W47``, ``2026-11`` or ``2026-11-02_2026-11-15``; used in report paths.
        first: First local date (inclusive).
        last: Last local date (inclusive).
        tz: IANA time zone of the dates.
    """

    label: str
    first: dt.date
    last: dt.date
    tz: str

    @property
    def start(self) -> pd.Timestamp:
        """Local midnight starting ``first``, as a UTC instant (inclusive)."""
        return _midnight(self.first, self.tz)

    @property
    def end(self) -> pd.Timestamp:
        """Local midnight after ``last``, as a UTC instant (exclusive)."""
        return _midnight(self.last + dt.timedelta(days=1), self.tz)

    def previous(self) -> Period:
        """The period of the same kind just before this one."""
        if re.fullmatch(r"\d{4}-W\d{2}", self.label):
            return week(self.first - dt.timedelta(days=7), self.tz)
        if re.fullmatch(r"\d{4}-\d{2}", self.label):
            return month(self.first - dt.timedelta(days=1), self.tz)
        days = (self.last - self.first).days + 1
        return dates(
            self.first - dt.timedelta(days=days), self.first - dt.timedelta(days=1), self.tz
        )


def _midnight(day: dt.date, tz: str) -> pd.Timestamp:
    local = pd.Timestamp(day).tz_localize(tz, nonexistent="shift_forward", ambiguous=True)
    return local.tz_convert("UTC").as_unit("us")


def week(day: dt.date, tz: str) -> Period:
    """The ISO week (Monday–Sunday) containing a local date."""
    year, number, weekday = day.isocalendar()
    first = day - dt.timedelta(days=weekday - 1)
    return Period(f"{year}-W{number:02d}", first, first + dt.timedelta(days=6), tz)


def month(day: dt.date, tz: str) -> Period:
    """The calendar month containing a local date."""
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return Period(f"{first:%Y-%m}", first, following - dt.timedelta(days=1), tz)


def dates(first: dt.date, last: dt.date, tz: str) -> Period:
    """An inclusive range of local dates."""
    if last < first:
        raise PeriodError(f"--end {last} is before --start {first}")
    return Period(f"{first}_{last}", first, last, tz)


def parse_period(
    tz: str,
    *,
    week_label: str | None = None,
    month_label: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Period:
    """Parse exactly one of ``--week 2026-W47``, ``--month 2026-11`` or ``--start D --end D``.

    Raises:
        PeriodError: none or several are given, or a value is malformed.
    """
    given = [x is not None for x in (week_label, month_label)] + [
        start is not None or end is not None
    ]
    if sum(given) != 1:
        raise PeriodError(
            "give exactly one of --week YYYY-Www, --month YYYY-MM, or --start D --end D"
        )
    if week_label is not None:
        m = re.fullmatch(r"(\d{4})-W(\d{2})", week_label)
        try:
            day = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1) if m else None
        except ValueError:
            day = None
        if day is None:
            raise PeriodError(f"--week {week_label!r}: expected an ISO week like 2026-W47")
        return week(day, tz)
    if month_label is not None:
        try:
            day = dt.datetime.strptime(month_label, "%Y-%m").date()
        except ValueError:
            raise PeriodError(f"--month {month_label!r}: expected a month like 2026-11") from None
        return month(day, tz)
    if start is None or end is None:
        raise PeriodError("--start and --end go together (inclusive local dates, YYYY-MM-DD)")
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError as exc:
        raise PeriodError(f"--start/--end: expected dates like 2026-11-02 ({exc})") from None
    return dates(first, last, tz)
