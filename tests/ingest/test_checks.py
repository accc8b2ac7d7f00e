"""Value checks of canonical text: every kind of column, repeated keys, the pandera contract."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core.digest import file_sha256
from ipchange_core.ingest import (
    checks,
    read_file,
    strftime_regex,
    tabular,
)
from ipchange_core.schema import FRAME_MODELS, SOURCE_LINE, TABLES, typed_dtypes
from tests.domain import assert_reconciles, header, only_reject, row, write

# --- every other value check ----------------------------------------------------------------


HOSTILE = [
    # (id, table, bad values, column, reason)
    ("ip-out-of-range", "intake", {"current_ip": "300.1.2.3"}, "current_ip",
     "'300.1.2.3' is not a valid IP address"),
    ("ip-leading-zero", "intake", {"new_ip": "10.0.0.01"}, "new_ip", "is not a valid IP address"),
    ("ip-junk", "intake", {"new_ip": "10.0.0"}, "new_ip", "is not a valid IP address"),
    ("ipv6-junk", "intake", {"new_ip": "2001:db8:::1"}, "new_ip", "is not a valid IP address"),
    ("enum", "intake", {"channel": "fax"}, "channel",
     "'fax' is not one of: phone, customer_ticket, email, chat"),
    ("enum-optional", "intake", {"reason": "whim"}, "reason", "'whim' is not one of"),
    ("bool-true", "intake", {"ticket_number_given": "true"}, "ticket_number_given",
     "'true' is not yes or no"),
    ("bool-y", "changes", {"fee_waived": "y"}, "fee_waived", "'y' is not yes or no"),
    ("requested-junk", "intake", {"requested_change_at": "soon"}, "requested_change_at",
     "'soon' is not an ISO-8601 date and time"),
    ("required-blank", "intake", {"received_at": ""}, "received_at",
     "is blank, but a value is required"),
    ("required-space", "tickets", {"department": "   "}, "department",
     "is blank, but a value is required"),
    ("creator", "tickets", {"creator": "bot"}, "creator", "'bot' is not one of: staff, user"),
    ("event-field", "ticket_events", {"field": "priority"}, "field",
     "'priority' is not one of: department, status, owner"),
    ("end-before-start", "changes",
     {"scheduled_start": "2026-11-24 15:00", "scheduled_end": "2026-11-24 14:00"},
     "scheduled_end", "'2026-11-24 14:00' is before scheduled_start '2026-11-24 15:00'"),
    ("updated-before-created", "tickets",
     {"created_at": "2026-11-23T10:00:00Z", "updated_at": "2026-11-23T09:59:59Z"},
     "updated_at", "is before created_at '2026-11-23T10:00:00Z'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "values", "column", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_hostile_value_is_rejected_naming_line_and_column(
    tmp_path: Path, table: str, values: dict[str, str], column: str, reason: str
) -> None:
    name = {"ticket_events": "ticket_events.csv"}.get(table, f"{table}.csv")
    lines = [header(table), row(table, ticket_id="OK-1"), row(table, ticket_id="BAD-1", **values)]
    parsed = read_file(write(tmp_path, name, "\n".join(lines) + "\n"))
    reject = only_reject(parsed)
    assert (reject["file"], reject["line"], reject["column"]) == (name, 3, column)
    assert reason in reject["reason"]
    assert parsed.frame["ticket_id"].tolist() == ["OK-1"]
    message = parsed.reject_messages()[0]
    assert message.startswith(f"{name} line 3, column {column}: ")


def test_a_row_with_several_problems_has_one_reject_each(tmp_path: Path) -> None:
    bad = row("intake", channel="fax", current_ip="1.2.3", ticket_number_given="maybe")
    parsed = read_file(write(tmp_path, "intake.csv", f"{header('intake')}\n{bad}\n"))
    assert_reconciles(parsed)
    assert parsed.rejects["column"].tolist() == ["channel", "current_ip", "ticket_number_given"]
    assert (parsed.rows_read, len(parsed.frame), parsed.rows_rejected) == (1, 0, 1)


def test_values_that_look_special_survive_as_text(tmp_path: Path) -> None:
    values = {"ticket_id": "00123", "account": "NA", "site": "null", "contact_phone": "0042"}
    parsed = read_file(
        write(tmp_path, "intake.csv", f"{header('intake')}\n{row('intake', **values)}\n")
    )
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, list(values)].tolist() == list(values.values())


def test_letter_case_of_yes_no_asap_and_enums_is_free(tmp_path: Path) -> None:
    values = {
        "channel": "Customer_Ticket",
        "ticket_number_given": "YES",
        "requested_change_at": "asap",
    }
    parsed = read_file(
        write(tmp_path, "intake.csv", f"{header('intake')}\n{row('intake', **values)}\n")
    )
    assert_reconciles(parsed)
    got = parsed.frame.iloc[0]
    assert (got["channel"], got["ticket_number_given"], got["requested_asap"]) == (
        "customer_ticket",
        True,
        True,
    )


# --- duplicates -------------------------------------------------------------------------------


def test_duplicate_keys_reject_every_copy_naming_the_others(tmp_path: Path) -> None:
    lines = [
        header("intake"),
        row("intake", ticket_id="T-1"),
        row("intake", ticket_id="T-2"),
        row("intake", ticket_id="T-1", channel="email"),
        row("intake", ticket_id="T-1", channel="chat"),
    ]
    parsed = read_file(write(tmp_path, "intake.csv", "\n".join(lines) + "\n"))
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["T-2"]
    reasons = dict(zip(parsed.rejects["line"], parsed.rejects["reason"], strict=True))
    assert set(reasons) == {2, 4, 5}
    assert "also on line(s) 4, 5" in reasons[2]
    assert "also on line(s) 2, 5" in reasons[4]
    assert "also on line(s) 2, 4" in reasons[5]
    assert (parsed.rejects["column"] == "ticket_id").all()


def test_duplicate_events_compare_instants_not_text(tmp_path: Path) -> None:
    lines = [
        header("ticket_events"),
        row("ticket_events", at="2026-11-23T09:00:00-06:00"),
        row("ticket_events", at="2026-11-23T15:00:00Z"),  # the same instant
        row("ticket_events", at="2026-11-23T15:00:01Z"),
        row("ticket_events", at="2026-11-23T15:00:00Z", new_value="Closed"),
    ]
    parsed = read_file(write(tmp_path, "ticket_events.csv", "\n".join(lines) + "\n"))
    assert_reconciles(parsed)
    assert sorted(parsed.rejects["line"]) == [2, 3]
    assert parsed.frame[SOURCE_LINE].tolist() == [4, 5]
    assert "duplicate event" in parsed.rejects["reason"].iloc[0]


def test_a_key_rejected_for_itself_is_not_also_a_duplicate(tmp_path: Path) -> None:
    lines = [header("tickets"), row("tickets", ticket_id=""), row("tickets", ticket_id="")]
    parsed = read_file(write(tmp_path, "tickets.csv", "\n".join(lines) + "\n"))
    assert_reconciles(parsed)
    assert parsed.rejects["reason"].str.contains("blank").all()


@given(st.lists(st.sampled_from(["T-1", "T-2", "T-3", "T-4", " ", "T-2 "]), max_size=12))
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_duplicates_are_found_whatever_the_key_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ids: list[str]
) -> None:
    """Keys whose hashes repeat are compared as texts: if every hash collided, the same rows
    would still be rejected as duplicates (and only those)."""
    lines = [header("intake"), *(row("intake", ticket_id=t) for t in ids)]
    path = write(tmp_path, "intake.csv", "\n".join(lines) + "\n")
    honest = read_file(path)
    with monkeypatch.context() as m:
        m.setattr(checks, "text_hashes", lambda values: np.zeros(len(values), dtype=np.int64))
        colliding = read_file(path)
    assert_reconciles(colliding)
    shown = ["line", "column", "reason"]
    assert colliding.rejects[shown].to_numpy().tolist() == honest.rejects[shown].to_numpy().tolist()
    pd.testing.assert_frame_equal(colliding.frame, honest.frame)
    stripped = [t.strip() for t in ids]
    repeated = {line for line, t in enumerate(stripped, start=2) if t and stripped.count(t) > 1}
    assert set(honest.rejects.loc[honest.rejects["reason"].str.contains("duplicate"), "line"]) == (
        repeated
    )


EVENT_TIMES = [
    "2026-11-23T09:00:00-06:00",
    "2026-11-23T15:00:00Z",  # the same instant as the first
    "2026-11-23 09:15",
    "2026-03-08 02:30",  # does not exist in America/Chicago
    "2026-11-01 01:30",  # happens twice there
    "2026-02-30T10:00:00Z",
    "2026-11-23T09:00:00.1234567Z",
    "31/02/2026 9am",
    "",
]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["T-1", "T-2", "T-3", ""]),
            st.sampled_from(EVENT_TIMES),
            st.sampled_from(["status", "Owner", "colour"]),
        ),
        min_size=1,
        max_size=14,
    ),
    st.integers(min_value=1, max_value=4),
)
@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_times_and_keys_checked_in_blocks_give_the_whole_file_result(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[str, str, str]],
    block: int,
) -> None:
    """Times are parsed and natural keys hashed a block of rows at a time: any block size gives
    the result of one block for the whole file (rows, rejects, record and key hashes)."""
    lines = [
        header("ticket_events"),
        *(row("ticket_events", ticket_id=t, at=at, field=f) for t, at, f in events),
    ]
    path = write(tmp_path, "ticket_events.csv", "\n".join(lines) + "\n")
    whole = read_file(path)
    with monkeypatch.context() as m:
        m.setattr(checks, "TIME_BLOCK", block)
        m.setattr(checks, "KEY_BLOCK", block)
        blocks = read_file(path)
    assert_reconciles(blocks)
    pd.testing.assert_frame_equal(blocks.frame, whole.frame)
    pd.testing.assert_frame_equal(blocks.rejects, whole.rejects)
    assert whole.records is not None and blocks.records is not None
    assert blocks.records.hashes.tolist() == whole.records.hashes.tolist()
    assert blocks.records.keys.tolist() == whole.records.keys.tolist()


def test_a_given_sha256_is_the_files_and_is_not_computed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "intake.csv", header("intake") + "\n" + row("intake") + "\n")
    digest = file_sha256(path)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_file(path).sha256 == digest
    with monkeypatch.context() as m:
        m.setattr(tabular, "hashlib", None)  # any hashing while reading would fail
        assert read_file(path, sha256=digest).sha256 == digest


# --- contract ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", list(TABLES))
def test_frame_models_declare_exactly_the_typed_columns(table: str) -> None:
    model = FRAME_MODELS[table].to_schema()
    assert set(model.columns) == {*typed_dtypes(table), SOURCE_LINE}
    assert model.strict is True


def test_strftime_regex_refuses_unusable_formats() -> None:
    assert strftime_regex("%d %B %Y %I:%M %p").startswith("^")
    for bad in ("%d/%m/%Y", "%d %B %Y %I:%M", "%Y-%m-%d %H:%M %Z", "%Y %Y-%m-%d %H:%M"):
        with pytest.raises(ValueError, match=r"directive|needs"):
            strftime_regex(bad)
