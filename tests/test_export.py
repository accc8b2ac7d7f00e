"""export: the requests export's text, vectorised, equals the value-by-value definition."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core import evaluate
from ipchange_core.cli import main
from ipchange_core.export import (
    MISSED_BY,
    REQUEST_COLUMNS,
    REQUEST_DICTIONARY,
    dictionary_markdown,
    hours_column_text,
    iso_local,
    requests_table,
)
from ipchange_core.policy import load_policy
from ipchange_core.sla import METRICS, compliance
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
    assert hours_column_text(pd.Series([hours])).tolist() == [text]


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
    got = hours_column_text(series)
    assert got.dtype == "str"
    assert got.tolist() == expected


def test_hours_text_of_nothing_known() -> None:
    assert hours_column_text(pd.Series([np.nan, np.nan])).tolist() == ["", ""]
    assert hours_column_text(pd.Series([], dtype="float64")).dtype == "str"


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


# --------------------------------------------------------------------------------------------
# The requests export's columns, their data dictionary and the SLA states (issue 26)

SPEC_COLUMNS = [  # SPEC 6: today's columns keep their names, meaning and order
    "ticket_id", "account", "channel", "received_at", "requested_change_at", "notice_hours",
    "short_notice", "fee_status", "fee_cents", "routing_business_hours", "routing_met",
    "confirmation_business_hours", "confirmation_met", "in_hours", "on_time", "due_at",
    "policy_version", "flags",
]  # fmt: skip
AS_OF = at("2026-12-31 12:00")
TAKEN = [
    {"at": "2026-11-16 11:00", "field": "owner", "old_value": "", "new_value": "Eve", "actor": "E"}
]
CS = {"creator": "user", "department": "Customer Service", "status": "New"}


def _window(start: str = "2026-11-20 10:00") -> dict:
    """A change scheduled and done in the hour from ``start`` (Central)."""
    end = (pd.Timestamp(start) + pd.Timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    return {"scheduled_start": start, "scheduled_end": end, "completed_at": end}


def _exported(*requests, as_of=AS_OF):
    evaluated = evaluate(frames(*requests), as_of=as_of)
    return evaluated, requests_table(evaluated, TZ)


def test_export_columns_are_the_dictionary_in_order_and_start_with_the_spec_columns():
    _, table = _exported(request(events=TAKEN))
    assert list(table.columns) == [c.name for c in REQUEST_DICTIONARY] == list(REQUEST_COLUMNS)
    assert list(table.columns[: len(SPEC_COLUMNS)]) == SPEC_COLUMNS
    for metric in METRICS:
        assert f"{metric}_state" in table.columns
    for name in ("agent", "engineer", "reseller", "reason", "requester_type", "subject"):
        assert name in table.columns
    assert (table.dtypes == "str").all()


def test_the_dictionary_says_type_unit_and_zone_for_every_column():
    names = [c.name for c in REQUEST_DICTIONARY]
    assert len(names) == len(set(names))
    for c in REQUEST_DICTIONARY:
        assert c.type in ("text", "enum", "timestamp", "decimal", "integer", "boolean"), c
        assert c.meaning.strip(), c
        assert bool(c.zone) == (c.type == "timestamp"), c  # a time zone for every timestamp
        assert bool(c.unit) == (c.type in ("decimal", "integer")), c  # a unit for every number


def test_docs_page_is_the_dictionary_as_generated():
    """docs/export-requests.md is regenerated by `ipchange export requests --describe > …`."""
    page = Path(__file__).resolve().parents[1] / "docs" / "export-requests.md"
    assert page.read_text(encoding="utf-8") == dictionary_markdown(), (
        "docs/export-requests.md is out of date: "
        "run `ipchange export requests --describe > docs/export-requests.md`"
    )
    for c in REQUEST_DICTIONARY:
        assert f"| `{c.name}` | {c.type} |" in page.read_text(encoding="utf-8")


def test_describe_prints_the_dictionary_without_a_period_or_a_database(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IPCHANGE_DB_URL", f"sqlite:///{tmp_path / 'none.db'}")
    result = CliRunner().invoke(main, ["export", "requests", "--describe"])
    assert result.exit_code == 0, result.output
    assert result.output == dictionary_markdown()
    assert not list(tmp_path.iterdir())  # no database, no file


STATE_CASES = [
    # (case, request kwargs, as_of, expected export states by metric)
    (
        "all-met",
        dict(events=TAKEN, change={"confirmed_at": "2026-11-16 11:00", **_window()}),
        AS_OF,
        dict(routing="met", confirmation="met", correct_intake="met", in_hours="met",
             on_time="met", fee_compliance="not_applicable"),
    ),
    (
        "no-history-is-open-not-breached",
        dict(change={"confirmed_at": "2026-11-16 11:00", **_window()}),
        AS_OF,
        dict(correct_intake="open"),
    ),
    (
        "approved-after-hours-is-met-though-not-in-hours",
        dict(events=TAKEN, change={"confirmed_at": "2026-11-16 11:00",
                                   **_window("2026-11-20 18:00"),
                                   "after_hours_approved_by": "Ops Lead"}),
        AS_OF,
        dict(in_hours="met"),
    ),
    (
        "unapproved-after-hours-is-breached",
        dict(events=TAKEN, change={"confirmed_at": "2026-11-16 11:00",
                                   **_window("2026-11-20 18:00")}),
        AS_OF,
        dict(in_hours="breached"),
    ),
    (
        "clock-running-is-open",
        dict(events=TAKEN),
        at("2026-11-16 10:30"),
        dict(confirmation="open", on_time="open", in_hours="open"),
    ),
    (
        "unconfirmed-past-target-is-breached",
        dict(events=TAKEN),
        AS_OF,
        dict(confirmation="breached", on_time="breached"),
    ),
    (
        "customer-ticket-intake-not-applicable",
        dict(ticket=CS, intake={"channel": "customer_ticket"}),
        AS_OF,
        dict(correct_intake="not_applicable"),
    ),
    (
        "cancelled-is-not-applicable",
        dict(events=TAKEN, change={"cancelled_at": "2026-11-16 10:30"}),
        AS_OF,
        dict(confirmation="not_applicable", in_hours="not_applicable",
             on_time="not_applicable"),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "kwargs", "as_of", "expected"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_export_states(case, kwargs, as_of, expected):
    evaluated, table = _exported(request(**kwargs), as_of=as_of)
    row = table.iloc[0]
    for metric, state in expected.items():
        assert row[f"{metric}_state"] == state, metric
    for metric in METRICS:  # the state the SLA report counts, n/a spelled out
        judged = str(evaluated.iloc[0][f"{metric}_state"])
        assert row[f"{metric}_state"] == judged.replace("n/a", "not_applicable")
    for metric, column in (("routing", "routing_met"), ("confirmation", "confirmation_met"),
                           ("on_time", "on_time")):  # fmt: skip
        said = {"met": "true", "breached": "false"}.get(row[f"{metric}_state"], "")
        assert row[column] == said, column
    for metric in MISSED_BY:
        missed = row[f"{metric}_missed_by_hours"]
        assert (missed != "") == (row[f"{metric}_state"] == "breached"), metric


def test_approved_after_hours_change_says_why_in_hours_is_false_but_met():
    """Issue 26: the export could not tell an approved after-hours change from a breach."""
    change = {"confirmed_at": "2026-11-16 11:00", **_window("2026-11-20 18:00")}
    _, table = _exported(
        request("KXP-1", events=TAKEN, change={**change, "after_hours_approved_by": "Ops Lead"}),
        request("KXP-2", events=TAKEN, change=change),
    )
    rows = table.set_index("ticket_id")
    assert list(rows["in_hours"]) == ["false", "false"]
    assert list(rows["in_hours_state"]) == ["met", "breached"]
    assert list(rows["in_hours_missed_by_hours"]) == ["", "1"]


def test_counts_of_the_state_columns_are_the_compliance_counts():
    requests = [
        request("KXP-1", events=TAKEN, change={"confirmed_at": "2026-11-16 11:00", **_window()}),
        request("KXP-2", change={"confirmed_at": "2026-11-18 11:00"}),
        request("KXP-3", events=TAKEN, intake={"person_of_record": ""}),
        request("KXP-4", ticket=CS, intake={"channel": "customer_ticket"}),
        request("KXP-5", events=TAKEN, change={"cancelled_at": "2026-11-16 10:30"}),
        request("KXP-6", has_ticket=False, received="2026-12-31 11:00"),
    ]
    evaluated, table = _exported(*requests)
    counts = compliance(evaluated, load_policy().latest).set_index("metric")
    for metric in METRICS:
        states = table[f"{metric}_state"].value_counts()
        for state in ("met", "breached", "open", "not_applicable"):
            assert states.get(state, 0) == counts.loc[metric, state], (metric, state)


def test_slicing_columns_are_formula_safe_text():
    _, table = _exported(
        request(
            ticket={"subject": '=HYPERLINK("http://x")'},
            intake={"agent": "+Ann", "reseller": "@Res", "reason": "other"},
            change={"engineer": "-Eve"},
            events=TAKEN,
        )
    )
    row = table.iloc[0]
    assert row["subject"] == '\'=HYPERLINK("http://x")'
    assert (row["agent"], row["reseller"], row["engineer"]) == ("'+Ann", "'@Res", "'-Eve")
    assert (row["reason"], row["requester_type"]) == ("other", "site")


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
