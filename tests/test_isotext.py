"""iso_text against a value-by-value reference built on datetime.isoformat."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core.isotext import iso_text

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LOW = int((dt.datetime(1, 1, 2, tzinfo=dt.UTC) - EPOCH) / dt.timedelta(microseconds=1))
HIGH = int((dt.datetime(9999, 12, 30, tzinfo=dt.UTC) - EPOCH) / dt.timedelta(microseconds=1))
NAT = np.iinfo(np.int64).min


def reference(micros: int | None, offset: int | None, fraction: bool) -> str | None:
    """One value the slow, obvious way: datetime arithmetic and isoformat."""
    if micros is None:
        return None
    at = EPOCH + dt.timedelta(microseconds=micros)
    if not fraction:
        at = at.replace(microsecond=0)
    spec = "microseconds" if fraction else "seconds"
    if offset is None:
        return at.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
    zone = dt.timezone(dt.timedelta(minutes=offset))
    return at.astimezone(zone).isoformat(timespec=spec)


def run(micros: list[int | None], offsets: list[int] | None, fraction: bool) -> list[str | None]:
    values = np.array([NAT if m is None else m for m in micros], dtype=np.int64)
    offset_array = None if offsets is None else np.array(offsets, dtype=np.int64)
    return iso_text(values, offset_array, fraction=fraction).to_pylist()


# the wall time stays inside years 1..9999 for any offset of ±23:59
instants = st.one_of(st.none(), st.integers(LOW + 86_400_000_000, HIGH - 86_400_000_000))


@given(st.lists(st.tuples(instants, st.integers(-1439, 1439)), max_size=30), st.booleans())
def test_offsets_match_the_reference(pairs: list[tuple[int | None, int]], fraction: bool) -> None:
    micros = [m for m, _ in pairs]
    offsets = [o for _, o in pairs]
    expected = [reference(m, o, fraction) for m, o in pairs]
    assert run(micros, offsets, fraction) == expected


@given(st.lists(instants, max_size=30), st.booleans())
def test_utc_matches_the_reference(micros: list[int | None], fraction: bool) -> None:
    assert run(micros, None, fraction) == [reference(m, None, fraction) for m in micros]


@pytest.mark.parametrize(
    ("when", "offset", "fraction", "text"),
    [
        ("1970-01-01T00:00:00+00:00", None, True, "1970-01-01T00:00:00.000000Z"),
        ("1969-12-31T23:59:59.999999+00:00", None, True, "1969-12-31T23:59:59.999999Z"),
        ("1969-12-31T23:59:59.999999+00:00", None, False, "1969-12-31T23:59:59Z"),
        # the DST Sunday in Chicago: 07:59:59Z is 01:59:59 CST, 08:00Z is 03:00 CDT
        ("2026-03-08T07:59:59+00:00", -360, False, "2026-03-08T01:59:59-06:00"),
        ("2026-03-08T08:00:00+00:00", -300, False, "2026-03-08T03:00:00-05:00"),
        ("2026-11-23T15:00:00+00:00", 330, False, "2026-11-23T20:30:00+05:30"),
        ("2026-11-23T15:00:00+00:00", -210, True, "2026-11-23T11:30:00.000000-03:30"),
        ("2024-02-29T23:00:00+00:00", 60, False, "2024-03-01T00:00:00+01:00"),
        ("0001-01-01T00:00:00+00:00", None, False, "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999+00:00", None, True, "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_cases(when: str, offset: int | None, fraction: bool, text: str) -> None:
    micros = (dt.datetime.fromisoformat(when) - EPOCH) // dt.timedelta(microseconds=1)
    assert run([micros], None if offset is None else [offset], fraction) == [text]


def test_nat_is_null_whatever_its_offset() -> None:
    assert run([None, 0], [-300, 0], False) == [None, "1970-01-01T00:00:00+00:00"]
    assert run([], None, True) == []
