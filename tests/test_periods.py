"""Reporting periods in the policy zone."""

from __future__ import annotations

import datetime as dt

import pytest

from ipchange_core.periods import PeriodError, parse_period
from tests.domain import CT, at


@pytest.mark.parametrize(
    ("kwargs", "label", "start", "end"),
    [
        (dict(week_label="2026-W47"), "2026-W47", "2026-11-16 00:00", "2026-11-23 00:00"),
        # the week of the fall-back change is 169 hours long
        (dict(week_label="2026-W44"), "2026-W44", "2026-10-26 00:00", "2026-11-02 00:00"),
        (dict(week_label="2026-W53"), "2026-W53", "2026-12-28 00:00", "2027-01-04 00:00"),
        (dict(month_label="2026-11"), "2026-11", "2026-11-01 00:00", "2026-12-01 00:00"),
        (dict(month_label="2026-12"), "2026-12", "2026-12-01 00:00", "2027-01-01 00:00"),
        (
            dict(start="2026-11-02", end="2026-11-02"),
            "2026-11-02_2026-11-02",
            "2026-11-02 00:00",
            "2026-11-03 00:00",
        ),
    ],
)
def test_periods_are_local_half_open(kwargs, label, start, end):
    p = parse_period(CT, **kwargs)
    assert p.label == label
    assert (p.start, p.end) == (at(start), at(end))


def test_fall_back_week_is_169_hours():
    p = parse_period(CT, week_label="2026-W44")
    assert (p.end - p.start).total_seconds() == 169 * 3600


def test_previous():
    assert parse_period(CT, week_label="2026-W01").previous().label == "2025-W52"
    assert parse_period(CT, month_label="2026-03").previous().label == "2026-02"
    prev = parse_period(CT, start="2026-11-10", end="2026-11-16").previous()
    assert (prev.first, prev.last) == (dt.date(2026, 11, 3), dt.date(2026, 11, 9))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(), "exactly one"),
        (dict(week_label="2026-W47", month_label="2026-11"), "exactly one"),
        (dict(week_label="2026-W54"), "ISO week"),
        (dict(week_label="2026-47"), "ISO week"),
        (dict(month_label="2026-13"), "month like"),
        (dict(start="2026-11-02"), "go together"),
        (dict(start="2026-11-09", end="2026-11-02"), "before --start"),
        (dict(start="02/11/2026", end="2026-11-09"), "expected dates"),
    ],
)
def test_bad_periods(kwargs, message):
    with pytest.raises(PeriodError, match=message):
        parse_period(CT, **kwargs)
