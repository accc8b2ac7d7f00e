"""Tests of ipchange_core.ingest: canonical CSV/XLSX reading, value checks and refusals."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core.digest import file_sha256
from ipchange_core.errors import InvalidInputError, PolicyError
from ipchange_core.ingest import (
    FORMAT_TABLES,
    REJECT_COLUMNS,
    ParsedFile,
    checks,
    detect_format,
    read_file,
    strftime_regex,
    tabular,
)
from ipchange_core.schema import FRAME_MODELS, SOURCE_LINE, TABLES, typed_dtypes

FIXTURES = Path(__file__).parent / "fixtures"
UTC = dt.UTC


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=UTC))


def header(table: str) -> str:
    return ",".join(col.name for col in TABLES[table])


def row(table: str, **values: str) -> str:
    """One CSV line of ``table`` with the given values and valid defaults elsewhere."""
    defaults = {
        "tickets": {
            "ticket_id": "T-1",
            "department": "Implementation",
            "status": "New",
            "creator": "staff",
            "created_at": "2026-11-23T09:00:00-06:00",
        },
        "ticket_events": {
            "ticket_id": "T-1",
            "at": "2026-11-23T09:00:00-06:00",
            "field": "status",
            "old_value": "New",
            "new_value": "Open",
        },
        "intake": {
            "ticket_id": "T-1",
            "received_at": "2026-11-23T09:00:00-06:00",
            "channel": "phone",
        },
        "changes": {"ticket_id": "T-1"},
    }[table]
    merged = {**defaults, **values}
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        [merged.get(col.name, "") for col in TABLES[table]]
    )
    return out.getvalue().removesuffix("\r\n")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def assert_reconciles(parsed: ParsedFile) -> None:
    """The invariants every parse must keep, whatever the input."""
    rejected = parsed.rejects["line"].nunique()
    assert parsed.rows_read == len(parsed.frame) + rejected + parsed.rows_skipped
    assert list(parsed.rejects.columns) == list(REJECT_COLUMNS)
    assert parsed.rejects["line"].dtype == "int64"
    assert (parsed.rejects["file"] == parsed.path.name).all()
    assert (parsed.rejects["reason"].str.len() > 0).all()
    expected = {**typed_dtypes(parsed.table), SOURCE_LINE: "int64"}
    assert {c: str(t) for c, t in parsed.frame.dtypes.items()} == expected
    assert list(parsed.frame.columns) == list(expected)
    assert not set(parsed.frame[SOURCE_LINE]) & set(parsed.rejects["line"])
    assert parsed.frame[SOURCE_LINE].is_unique
    FRAME_MODELS[parsed.table].validate(parsed.frame, lazy=True)


def only_reject(parsed: ParsedFile) -> pd.Series:
    assert_reconciles(parsed)
    assert len(parsed.rejects) == 1, parsed.reject_messages()
    return parsed.rejects.iloc[0]


# --- round trips of the canonical fixtures ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "rows"),
    [
        ("tickets.csv", "tickets", 3),
        ("ticket_events.csv", "events", 3),
        ("intake.csv", "intake", 3),
        ("changes.csv", "changes", 2),
    ],
    ids=["tickets", "events", "intake", "changes"],
)
def test_canonical_fixture_reads_clean(name: str, fmt: str, rows: int) -> None:
    parsed = read_file(FIXTURES / name)
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == (fmt, FORMAT_TABLES[fmt])
    assert (parsed.rows_read, len(parsed.frame), len(parsed.rejects)) == (rows, rows, 0)
    assert parsed.frame[SOURCE_LINE].tolist() == list(range(2, rows + 2))
    assert parsed.sha256 == hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
    assert parsed.encoding == "utf-8"


def test_intake_fixture_values() -> None:
    frame = read_file(FIXTURES / "intake.csv").frame.set_index("ticket_id")
    first = frame.loc["ABC-123-45678"]
    assert first["received_at"] == utc(2026, 11, 23, 15, 10)  # 09:10 CST = UTC-6
    assert first["requested_change_at"] == utc(2026, 11, 24, 20, 0)
    assert not first["requested_asap"]
    assert first["new_ip"] == "2001:db8::7"  # IPv6 in compressed canonical form
    assert first["ticket_number_given"] is np.True_
    asap = frame.loc["ABC-123-45680"]
    assert asap["requested_asap"] and pd.isna(asap["requested_change_at"])
    assert (asap["ticket_number_given"], asap["transferred_to_queue"]) == (False, False)
    blank = frame.loc["00123"]  # leading zeros and "NA" are text, never numbers or missing
    assert blank["account"] == "NA"
    assert pd.isna(blank["ticket_number_given"]) and blank["requester_type"] == ""


def test_tickets_fixture_values() -> None:
    frame = read_file(FIXTURES / "tickets.csv").frame.set_index("ticket_id")
    assert frame.loc["ABC-123-45678", "subject"] == "IP change, site 12"
    assert frame.loc["ABC-123-45678", "tags"] == "ip-change,isp"
    assert frame.loc["00123", "creator"] == "user"  # enum letter case normalised
    assert frame.loc["00123", "account"] == "NA"
    assert frame.loc["ABC-123-45679", "created_at"] == utc(2026, 11, 20, 20, 5)
    assert (frame["ticket_type"] == "").all()


def _to_canonical_csv(frame: pd.DataFrame, table: str) -> str:
    """Write a typed frame back as canonical CSV (times as ISO-8601 with offset)."""
    out = pd.DataFrame(index=frame.index)
    for col in TABLES[table]:
        values = frame[col.name]
        if col.kind in ("timestamp", "requested_time"):
            local = values.dt.tz_convert("America/Chicago")
            text = local.map(lambda t: t.isoformat() if pd.notna(t) else "")
            if col.kind == "requested_time":
                text = text.where(~frame["requested_asap"], "ASAP")
            out[col.name] = text
        elif col.kind == "bool":
            out[col.name] = values.map({True: "yes", False: "no"}).fillna("")
        else:
            out[col.name] = values
    return out.to_csv(index=False)


@pytest.mark.parametrize("name", ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"])
def test_round_trip_typed_frame_to_csv_and_back(tmp_path: Path, name: str) -> None:
    first = read_file(FIXTURES / name)
    path = write(tmp_path, name, _to_canonical_csv(first.frame, first.table))
    again = read_file(path)
    assert_reconciles(again)
    pd.testing.assert_frame_equal(again.frame, first.frame)


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T09:15:00-06:00", utc(2026, 11, 23, 15, 15)),
        ("2026-11-23T09:15:00Z", utc(2026, 11, 23, 9, 15)),
        ("2026-11-23T09:15:00.5+05:30", utc(2026, 11, 23, 3, 45, 0, 500000)),
        ("2026-11-23T09:15:00.123456-0600", utc(2026, 11, 23, 15, 15, 0, 123456)),
        ("2026-11-23T09:15:00.123456000Z", utc(2026, 11, 23, 9, 15, 0, 123456)),
        ("2026-11-23 09:15:00", utc(2026, 11, 23, 15, 15)),  # naive: Central standard time
        ("2026-11-23T09:15", utc(2026, 11, 23, 15, 15)),
        ("2026-07-01 09:15", utc(2026, 7, 1, 14, 15)),  # naive in summer: CDT = UTC-5
        ("2026-03-08 03:30", utc(2026, 3, 8, 8, 30)),  # just after the spring-forward gap
        ("2026-11-01T01:30:00-05:00", utc(2026, 11, 1, 6, 30)),  # the overlap, made explicit
        ("2026-11-01T01:30:00-06:00", utc(2026, 11, 1, 7, 30)),
        ("2024-02-29 12:00", utc(2024, 2, 29, 18, 0)),
        ("  2026-11-23 09:15  ", utc(2026, 11, 23, 15, 15)),  # surrounding spaces stripped
    ],
    ids=lambda v: str(v).strip(),
)
def test_timestamp_forms_give_the_right_utc(
    tmp_path: Path, text: str, expected: pd.Timestamp
) -> None:
    path = write(tmp_path, "intake.csv", f"{header('intake')}\n{row('intake', received_at=text)}\n")
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.rejects.empty, parsed.reject_messages()
    assert parsed.frame.loc[0, "received_at"] == expected


def test_naive_times_follow_the_zone_argument(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "intake.csv",
        f"{header('intake')}\n{row('intake', received_at='2026-11-23 09:15')}\n",
    )
    parsed = read_file(path, tz="Europe/Berlin")
    assert parsed.frame.loc[0, "received_at"] == utc(2026, 11, 23, 8, 15)


def test_unknown_zone_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="Mars/Olympus"):
        read_file(FIXTURES / "intake.csv", tz="Mars/Olympus")


BAD_TIMES = [
    ("2026-03-08 02:30", "does not exist in America/Chicago"),
    ("2026-03-08T02:00", "does not exist in America/Chicago"),
    ("2026-11-01 01:30", "is ambiguous in America/Chicago"),
    ("2026-11-01T01:00:00", "is ambiguous in America/Chicago"),
    ("23/11/2026 09:15", "is not an ISO-8601 date and time"),  # never guess day/month order
    ("11/23/2026 09:15", "is not an ISO-8601 date and time"),
    ("2026-11-23", "is not an ISO-8601 date and time"),  # a date is not an instant
    ("2026-11-23T9:15", "is not an ISO-8601 date and time"),
    ("2026-11-23T09:15:00 -06:00", "is not an ISO-8601 date and time"),
    ("tomorrow", "is not an ISO-8601 date and time"),
    ("2026-02-30 10:00", "is not a real date and time"),
    ("2025-02-29 10:00", "is not a real date and time"),
    ("2026-13-01 10:00", "is not a real date and time"),
    ("2026-11-23 24:00", "is not a real date and time"),
    ("2026-11-23 09:60", "is not a real date and time"),
    ("2026-11-23T09:15:60Z", "is not a real date and time"),
    ("2026-11-23T09:15:00+25:00", "has an impossible UTC offset"),
    ("2026-11-23T09:15:00-06:61", "has an impossible UTC offset"),
    ("2026-11-23T09:15:00.1234567Z", "is more precise than a microsecond"),
    ("0026-11-23T09:15:00Z", "has a year outside 1900–2999"),
]


@pytest.mark.parametrize(("text", "reason"), BAD_TIMES, ids=[t for t, _ in BAD_TIMES])
def test_bad_timestamps_are_rejected_with_their_reason(
    tmp_path: Path, text: str, reason: str
) -> None:
    lines = [header("intake"), row("intake", ticket_id="OK-1"), row("intake", received_at=text)]
    path = write(tmp_path, "intake.csv", "\n".join(lines) + "\n")
    parsed = read_file(path)
    reject = only_reject(parsed)
    assert (reject["line"], reject["column"], reject["value"]) == (3, "received_at", text)
    assert reason in reject["reason"] and f"'{text}'" in reject["reason"]
    assert parsed.frame["ticket_id"].tolist() == ["OK-1"]


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


# --- CSV structure ------------------------------------------------------------------------------


def test_lines_count_quoted_line_breaks_blank_lines_and_crlf(tmp_path: Path) -> None:
    text = (
        f"{header('tickets')}\r\n"
        + row("tickets", ticket_id="T-1", subject="two\r\nlines")
        + "\r\n\r\n"
        + row("tickets", ticket_id="T-2", creator="robot")
        + "\r\n"
    )
    parsed = read_file(write(tmp_path, "tickets.csv", text))
    assert_reconciles(parsed)
    assert parsed.frame[SOURCE_LINE].tolist() == [2]
    assert parsed.frame.loc[0, "subject"] == "two\r\nlines"
    assert parsed.rejects["line"].tolist() == [5]


def test_quoted_line_breaks_without_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    lines = [
        header("tickets"),
        row("tickets", ticket_id="T-1", subject="a\nb\nc"),
        row("tickets", ticket_id="T-2", creator="robot"),
    ]
    parsed = read_file(write(tmp_path, "tickets.csv", "\n".join(lines)))  # no final newline
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, "subject"] == "a\nb\nc"
    assert parsed.rejects["line"].tolist() == [5]


def test_rows_with_the_wrong_number_of_fields_are_rejected(tmp_path: Path) -> None:
    lines = [
        header("changes"),
        row("changes", ticket_id="T-1"),
        "T-2,2026-11-23 10:00",
        row("changes", ticket_id="T-3") + ",extra",
    ]
    parsed = read_file(write(tmp_path, "changes.csv", "\n".join(lines) + "\n"))
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["T-1"]
    assert parsed.rejects["line"].tolist() == [3, 4]
    assert parsed.rejects["column"].tolist() == ["", ""]
    assert "row has 2 field(s) but the header has 13" in parsed.rejects["reason"].iloc[0]
    assert parsed.reject_messages()[0].startswith("changes.csv line 3: row has 2 field(s)")


def test_columns_in_any_order_extra_ignored_optional_absent(tmp_path: Path) -> None:
    text = "channel,note,received_at,ticket_id\nphone,hello,2026-11-23 09:00,T-1\n"
    parsed = read_file(write(tmp_path, "intake.csv", text))
    assert_reconciles(parsed)
    assert parsed.format == "intake"
    assert parsed.frame.loc[0, "channel"] == "phone" and parsed.frame.loc[0, "agent"] == ""
    assert any("note" in n and "ignored" in n for n in parsed.notes)
    assert any("absent" in n and "current_ip" in n for n in parsed.notes)


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    parsed = read_file(write(tmp_path, "changes.csv", header("changes") + "\n"))
    assert_reconciles(parsed)
    assert (parsed.rows_read, len(parsed.frame)) == (0, 0)


# --- encodings --------------------------------------------------------------------------------


def test_utf8_bom_is_recognised_and_removed(tmp_path: Path) -> None:
    text = f"{header('tickets')}\n{row('tickets', subject='Café ☕')}\n"
    path = write(tmp_path, "tickets.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert detect_format(path) == "tickets"
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "utf-8-sig"
    assert parsed.frame.loc[0, ["ticket_id", "subject"]].tolist() == ["T-1", "Café ☕"]


def test_cp1252_is_detected_and_decoded(tmp_path: Path) -> None:
    text = f"{header('tickets')}\n{row('tickets', subject='Café – “quoted” €5', owner='Zoë')}\n"
    path = write(tmp_path, "tickets.csv", text.encode("cp1252"))
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "cp1252"
    assert parsed.frame.loc[0, "subject"] == "Café – “quoted” €5"
    assert parsed.frame.loc[0, "owner"] == "Zoë"
    assert parsed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


REFUSED = [
    ("missing-column", "intake.csv", "ticket_id,channel\nT-1,phone\n",
     "missing required column(s) received_at"),
    ("empty", "intake.csv", b"", "is empty"),
    ("blank", "intake.csv", b"  \n\n \t\r\n", "is empty"),
    ("bom-only", "intake.csv", b"\xef\xbb\xbf", "is empty"),
    ("binary", "intake.csv", bytes(range(256)) * 4, "NUL bytes"),
    ("png", "intake.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
    ("utf16", "intake.csv", "ticket_id,x\n".encode("utf-16"), "UTF-16"),
    ("neither-encoding", "intake.csv",
     header("intake").encode() + b"\nT-1,\x81\x8d,\xc3\n", "neither UTF-8"),
    ("bom-then-bad-utf8", "intake.csv", b"\xef\xbb\xbf" + header("intake").encode() + b"\n\xff\n",
     "byte-order mark"),
    ("one-column-junk", "data.csv", "junk\nfoo\nbar\n", "matches none of the formats"),
    ("ambiguous-header", "data.csv", "ticket_id,account\nT-1,Acme\n", "matches none of the formats"),
    ("duplicate-header", "intake.csv",
     header("intake") + ",channel\n", "column 'channel' appears twice"),
    ("malformed-xml", "k.xml", "<tickets><ticket><displayid>1</ticket></tickets>",
     "malformed XML at line 1, column 32"),
    ("other-xml", "k.xml", "<?xml version='1.0'?><users><user/></users>", "root element is <users>"),
    ("not-xlsx", "k.xlsx", b"PK\x03\x04 this is no zip", "not a readable XLSX workbook"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_unusable_file_is_refused_naming_it(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InvalidInputError) as caught:
        read_file(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(name)
    assert caught.value.file == name
    assert "\n" not in str(caught.value)


def test_explicit_format_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^intake\.csv: missing required column"):
        read_file(FIXTURES / "intake.csv", format="tickets")
    with pytest.raises(InvalidInputError, match="unknown format 'json'"):
        read_file(FIXTURES / "intake.csv", format="json")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^nope\.csv: cannot read the file"):
        read_file(tmp_path / "nope.csv")


# --- detect_format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("tickets.csv", "tickets"),
        ("ticket_events.csv", "events"),
        ("intake.csv", "intake"),
        ("changes.csv", "changes"),
        ("kayako-tickets.xml", "kayako-xml"),
        ("kayako-report.csv", "kayako-csv"),
        ("kayako-audit.csv", "kayako-audit"),
    ],
)
def test_detect_format_of_each_fixture(name: str, fmt: str) -> None:
    assert detect_format(FIXTURES / name) == fmt


def test_detect_format_ignores_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets.csv", (FIXTURES / "changes.csv").read_text())
    assert detect_format(path) == "changes"


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_first_sheet_is_read_as_shown(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([col.name for col in TABLES["intake"]])
    values = {
        "ticket_id": 123,
        "received_at": dt.datetime(2026, 11, 23, 9, 15),
        "channel": "phone",
        "account": "NA",
        "current_ip": "10.0.0.1",
        "ticket_number_given": "yes",
        "contact_phone": 5550100.0,
    }
    ws.append([values.get(col.name) for col in TABLES["intake"]])
    ws.cell(row=2, column=1).number_format = "00000"
    ws.append([])  # an empty row is not a row
    ws.append(["T-9", "2026-11-01 01:30", "phone"])
    ws.append(["T-10", "2026-11-23 09:00", "phone", *[""] * 14, "stray"])
    wb.create_sheet("ignored").append(["not", "read"])
    path = tmp_path / "intake.xlsx"
    wb.save(path)

    assert detect_format(path) == "intake"
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "xlsx"
    got = parsed.frame.iloc[0]
    assert (got["ticket_id"], got["account"], got["contact_phone"]) == ("00123", "NA", "5550100")
    assert got["received_at"] == utc(2026, 11, 23, 15, 15)
    assert got[SOURCE_LINE] == 2
    assert parsed.rejects["line"].tolist() == [4, 5]
    assert "ambiguous" in parsed.rejects["reason"].iloc[0]
    assert "right of the header" in parsed.rejects["reason"].iloc[1]


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


# --- property: any text ends accepted or rejected, counts reconcile ----------------------------

_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
) | st.sampled_from(
    ["", "ASAP", "yes", "NO", "phone", "1.2.3.4", "::1", "2026-11-23 09:15", "2026-11-01 01:30",
     "2026-11-23T09:15:00Z", "T-1", "T-1", "00123", "NA", " ", '"', "\n", "\r", ","]
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.lists(_cell, min_size=0, max_size=len(TABLES["intake"]) + 2), min_size=0, max_size=8
    )
)
def test_random_rows_are_accepted_or_rejected_and_counts_reconcile(
    tmp_path: Path, rows: list[list[str]]
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # quotes values holding CR or LF
    writer.writerow([col.name for col in TABLES["intake"]])
    writer.writerows(rows)
    path = write(tmp_path, "intake.csv", out.getvalue())
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.rows_read == sum(1 for r in rows if r)  # a row of nothing is a blank line


STRUCTURE = [
    # (id, raw text, rows read, accepted, rejected lines)
    ("bare-cr-line-ends", "ticket_id,received_at,channel\rT-1,2026-11-23 09:00,phone\rT-2,x,phone\r",
     2, 1, [3]),
    ("unterminated-quote", 'ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\n"T-2,x,phone\n',
     2, 1, [3]),
    ("leading-blank-lines", "\n\nticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\nT-2,x,phone\n",
     2, 1, [5]),
    ("trailing-blank-lines", "ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\n\n\n",
     1, 1, []),
    ("no-final-newline", "ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\nT-2,x,phone",
     2, 1, [3]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "read", "accepted", "rejected"),
    [s[1:] for s in STRUCTURE],
    ids=[s[0] for s in STRUCTURE],
)
def test_irregular_csv_structure_keeps_exact_lines(
    tmp_path: Path, text: str, read: int, accepted: int, rejected: list[int]
) -> None:
    parsed = read_file(write(tmp_path, "intake.csv", text))
    assert_reconciles(parsed)
    assert (parsed.rows_read, len(parsed.frame)) == (read, accepted)
    assert sorted(set(parsed.rejects["line"])) == rejected
