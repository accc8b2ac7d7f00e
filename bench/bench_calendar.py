"""Benchmark: business time between two instants, ipchange vs businesstimedelta vs pandas.

Run as ``.venv/bin/python bench/bench_calendar.py``. Prints a table; ``main()`` returns its rows
(a list of dicts) for ``bench/run.py``. Timings are wall-clock on whatever machine runs it; nothing
here asserts on them.

Calendar everywhere: America/Chicago, Mon-Fri 09:00-17:00, no holidays.
"""

from __future__ import annotations

import datetime as dt
import gc
import sys
import time
import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipchange_core.business_calendar import BusinessCalendar

TZ = "America/Chicago"
ZONE = ZoneInfo(TZ)
UTC = dt.UTC
ONE_US = dt.timedelta(microseconds=1)
US_PER_HOUR = 3_600_000_000
DAY_US = 86_400_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
LO = (dt.datetime(2024, 1, 1, tzinfo=ZONE) - EPOCH) // ONE_US
HI = (dt.datetime(2028, 1, 1, tzinfo=ZONE) - EPOCH) // ONE_US
OPEN, CLOSE = dt.time(9), dt.time(17)


def random_intervals(n: int, seed: int = 2026) -> tuple[np.ndarray, np.ndarray]:
    """UTC µs pairs: starts anywhere in 2024-2027 Central, lengths up to 60 days, 20 % reversed."""
    rng = np.random.default_rng(seed)
    start = rng.integers(LO, HI, n)
    scale = rng.choice(np.array([DAY_US // 4, 3 * DAY_US, 60 * DAY_US]), n)
    length = (rng.random(n) * scale).astype(np.int64)
    reverse = rng.random(n) < 0.2
    end = np.where(reverse, start - length, start + length)
    return start, end


def as_series(us: np.ndarray) -> pd.Series:
    return pd.Series(pd.DatetimeIndex(us.view("M8[us]")).tz_localize("UTC").tz_convert(TZ))


def reference_us(a: dt.datetime, b: dt.datetime) -> int:
    """Slow, obviously correct: overlap of [a, b) with each local day's window, in UTC µs."""
    if b < a:
        return -reference_us(b, a)
    day = a.astimezone(ZONE).date() - dt.timedelta(days=1)
    last = b.astimezone(ZONE).date() + dt.timedelta(days=1)
    total = dt.timedelta(0)
    while day <= last:
        if day.weekday() < 5:
            lo = max(dt.datetime.combine(day, OPEN, tzinfo=ZONE).astimezone(UTC), a)
            hi = min(dt.datetime.combine(day, CLOSE, tzinfo=ZONE).astimezone(UTC), b)
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total // ONE_US


def to_datetimes(us: np.ndarray) -> list[dt.datetime]:
    return [EPOCH + dt.timedelta(microseconds=int(v)) for v in us]


def businesstimedelta_us(a: list[dt.datetime], b: list[dt.datetime]) -> np.ndarray:
    """businesstimedelta as its README shows: WorkDayRule with a pytz zone, wrapped in Rules."""
    import businesstimedelta
    import pytz

    workday = businesstimedelta.WorkDayRule(
        start_time=OPEN, end_time=CLOSE, working_days=[0, 1, 2, 3, 4], tz=pytz.timezone(TZ)
    )
    rules = businesstimedelta.Rules([workday])
    out = np.empty(len(a), dtype=np.int64)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        out[i] = rules.difference(x, y).timedelta // ONE_US
    return out


def pandas_cbh_us(a: pd.Series, b: pd.Series) -> np.ndarray:
    """Per interval with CustomBusinessHour: F(t) = 8 h x business days before + time into day.

    Works on local wall-clock times, which is exact here because Central DST changes happen at
    02:00, outside 09:00-17:00.
    """
    cbh = pd.offsets.CustomBusinessHour(start="09:00", end="17:00", weekmask="Mon Tue Wed Thu Fri")
    cbd = pd.offsets.CustomBusinessDay(weekmask="Mon Tue Wed Thu Fri")
    day_us = 8 * US_PER_HOUR
    nine = pd.Timedelta(hours=9)
    out = np.empty(len(a), dtype=np.int64)
    la = a.dt.tz_localize(None)  # Central wall clock
    lb = b.dt.tz_localize(None)
    for i, (x, y) in enumerate(zip(la, lb, strict=True)):
        sign = 1
        if y < x:
            x, y, sign = y, x, -1
        rx, ry = cbh.rollforward(x), cbh.rollforward(y)
        if ry <= rx:
            out[i] = 0
            continue
        days = len(pd.date_range(rx.normalize(), ry.normalize(), freq=cbd)) - 1
        into_x = (rx - rx.normalize() - nine) // pd.Timedelta(microseconds=1)
        into_y = (ry - ry.normalize() - nine) // pd.Timedelta(microseconds=1)
        out[i] = sign * (days * day_us + into_y - into_x)
    return out


def _best_of(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` back-to-back calls (warm caches, as in a loop of calls)."""
    gc.collect()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _peak_mb(fn) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return (peak - base) / 1e6


def main(*, peers_n: int = 10_000, sizes: tuple[int, ...] = (1_000_000, 10_000_000)) -> list[dict]:
    """Run the benchmark and return its rows (one dict per measurement)."""
    cal = BusinessCalendar(TZ)
    rows: list[dict] = []

    a_us, b_us = random_intervals(peers_n)
    a, b = as_series(a_us), as_series(b_us)
    a_dt, b_dt = to_datetimes(a_us), to_datetimes(b_us)
    expected = np.array([reference_us(x, y) for x, y in zip(a_dt, b_dt, strict=True)])
    reversed_n = int((b_us < a_us).sum())

    cal.business_microseconds(a, b)  # builds the table
    got = cal.business_microseconds(a, b).to_numpy(dtype=np.int64)
    seconds = _best_of(lambda: cal.business_hours(a, b), 20)
    rows.append(
        {
            "library": "ipchange",
            "intervals": peers_n,
            "ns_per_interval": seconds / peers_n * 1e9,
            "mismatches": int((got != expected).sum()),
            "peak_mb": None,
            "note": "exact int64 µs; signed",
        }
    )

    t0 = time.perf_counter()
    got = businesstimedelta_us(a_dt, b_dt)
    seconds = time.perf_counter() - t0
    forward = b_us >= a_us
    rows.append(
        {
            "library": "businesstimedelta",
            "intervals": peers_n,
            "ns_per_interval": seconds / peers_n * 1e9,
            "mismatches": int((got != expected).sum()),
            "peak_mb": None,
            "note": (
                f"{int((got[forward] != expected[forward]).sum())} on forward intervals "
                f"(drops µs); {reversed_n} reversed come back positive"
            ),
        }
    )

    t0 = time.perf_counter()
    got = pandas_cbh_us(a, b)
    seconds = time.perf_counter() - t0
    rows.append(
        {
            "library": "pandas CustomBusinessHour",
            "intervals": peers_n,
            "ns_per_interval": seconds / peers_n * 1e9,
            "mismatches": int((got != expected).sum()),
            "peak_mb": None,
            "note": "per-interval rollforward + CustomBusinessDay date_range",
        }
    )

    for n in sizes:
        starts, ends = (as_series(us) for us in random_intervals(n, seed=n))
        cal.business_hours(starts.iloc[:1000], ends.iloc[:1000])  # table for this range
        seconds = _best_of(lambda s=starts, e=ends: cal.business_hours(s, e), 3)
        peak = _peak_mb(lambda s=starts, e=ends: cal.business_hours(s, e))
        rows.append(
            {
                "library": "ipchange",
                "intervals": n,
                "ns_per_interval": seconds / n * 1e9,
                "mismatches": None,
                "peak_mb": peak,
                "note": f"best of 3; peak above inputs incl. the {n * 8 / 1e6:.0f} MB result",
            }
        )
        del starts, ends
    return rows


def format_table(rows: list[dict]) -> str:
    head = (
        f"{'library':<27}{'intervals':>11}{'ns/interval':>13}{'mismatch':>10}{'peak MB':>9}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        mism = "" if r["mismatches"] is None else str(r["mismatches"])
        peak = "" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        lines.append(
            f"{r['library']:<27}{r['intervals']:>11,}{r['ns_per_interval']:>13,.0f}"
            f"{mism:>10}{peak:>9}  {r['note']}"
        )
    ours = {r["intervals"]: r["ns_per_interval"] for r in rows if r["library"] == "ipchange"}
    small = min(ours)
    lines.append("")
    for r in rows:
        if r["library"] != "ipchange":
            lines.append(
                f"ipchange is {r['ns_per_interval'] / ours[small]:,.0f}x faster than "
                f"{r['library']} on the same {small:,} intervals "
                f"({r['ns_per_interval'] / ours[max(ours)]:,.0f}x vs ipchange's per-interval cost "
                f"at {max(ours):,})"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_table(main()))
