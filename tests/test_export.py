"""export: the requests export's text, vectorised, equals the value-by-value definition."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core import evaluate
from ipchange_core.export import _hours_text, iso_local, requests_table
from tests.domain import at, frames, request

TZ = "America/Chicago"


def hours_one_by_one(h: float) -> str:
    """The definition: 4 decimals, trailing zeros and point dropped; NaN is empty."""
    return "" if math.isnan(h) else f"{round(h, 4):.4f}".rstrip("0").rstrip(".")


@pytest.mark.parametrize(
    ("hours", "text"),
    [
        (1.5, "1.5"),
        (2.0, "2"),
        (0.0, "0"),
        (-0.0, "-0"),
        (-0.00004, "-0"),  # rounds to -0.0: Python writes the sign
        (0.00005, "0"),  # half to even at the 4th place, as round() does
        (0.99995, "1"),
        (1e-9, "0"),
        (123456.78905, "123456.789"),
        (-3.25, "-3.25"),
        (float("nan"), ""),
    ],
)
def test_hours_text_cases(hours: float, text: str) -> None:
    assert _hours_text(pd.Series([hours])).tolist() == [text]


@given(
    st.lists(
        st.one_of(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.floats(-1e-3, 1e-3),
            st.integers(-(10**7), 10**7).map(lambda n: n / 20_000),  # exact halves of 1/10,000
            st.just(float("nan")),
        ),
        max_size=30,
    )
)
def test_hours_text_equals_the_value_by_value_definition(values: list[float]) -> None:
    series = pd.Series(values, dtype="float64")
    rounded = series.round(4)  # pandas rounds as numpy does; the definition rounds the same
    expected = [hours_one_by_one(h) for h in rounded]
    got = _hours_text(series)
    assert got.dtype == "str"
    assert got.tolist() == expected


def test_hours_text_of_nothing_known() -> None:
    assert _hours_text(pd.Series([np.nan, np.nan])).tolist() == ["", ""]
    assert _hours_text(pd.Series([], dtype="float64")).dtype == "str"


instants = st.one_of(
    st.none(),
    st.integers(
        int(pd.Timestamp("1990-01-01", tz="UTC").value // 1000),
        int(pd.Timestamp("2100-01-01", tz="UTC").value // 1000),
    ),
)


@given(st.lists(instants, max_size=20), st.booleans())
def test_iso_local_equals_the_value_by_value_definition(
    micros: list[int | None], whole_seconds: bool
) -> None:
    if whole_seconds:
        micros = [None if m is None else m // 1_000_000 * 1_000_000 for m in micros]
    series = pd.Series(
        [pd.NaT if m is None else pd.Timestamp(m, unit="us", tz="UTC") for m in micros],
        dtype="datetime64[us, UTC]",
    )
    fraction = any(m is not None and m % 1_000_000 for m in micros)
    spec = "auto" if fraction else "seconds"
    expected = [
        ""
        if pd.isna(t)
        else t.tz_convert(TZ).isoformat(timespec="microseconds" if fraction else spec)
        for t in series
    ]
    got = iso_local(series, TZ)
    assert got.dtype == "str"
    assert got.tolist() == expected


def test_iso_local_of_nothing_known() -> None:
    """A column with no instant at all (e.g. no change scheduled yet) is all empty."""
    series = pd.Series([pd.NaT, pd.NaT], dtype="datetime64[us, UTC]")
    assert iso_local(series, TZ).tolist() == ["", ""]


def test_routing_without_department_history_is_exported_empty() -> None:
    """A customer ticket with no recorded department history: routing unknown, flagged."""
    customer = {"creator": "user", "department": "Implementation", "status": "Open"}
    evaluated = evaluate(
        frames(request("K-1", ticket=customer), request("K-2")), as_of=at("2026-12-31 12:00")
    )
    table = requests_table(evaluated, TZ).set_index("ticket_id")
    assert table.loc["K-1", ["routing_business_hours", "routing_met"]].tolist() == ["", ""]
    assert "routing_history_missing" in table.loc["K-1", "flags"].split(";")
    assert table.loc["K-2", ["routing_business_hours", "routing_met"]].tolist() == ["0", "true"]
