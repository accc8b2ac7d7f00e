"""Kayako's audit log through read_file: the database export and the KQL report (FORMATS.md 4)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core import evaluate
from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import read_file
from ipchange_core.ingest.kayako_audit import AuditContext, map_audit
from ipchange_core.ingest.kayako_values import DEFAULT_LOOKUPS
from ipchange_core.policy import ENGLISH_AUDIT_MESSAGES, AuditMessages
from ipchange_core.schema import SOURCE_LINE
from tests.domain import FIXTURES, assert_reconciles, at, frames, request, utc, write

DB_HEADER = (
    "ticketauditlogid,ticketid,ticketpostid,departmentid,departmenttitle,dateline,creatortype,"
    "creatorid,creatorfullname,actiontype,actionmsg,valuetype,oldvalueid,oldvaluestring,"
    "newvalueid,newvaluestring,actionhash,actionmsgparams"
)


def db_row(
    ticketid: str,
    dateline: str,
    actiontype: int,
    msg: str,
    old: str = "0",
    new: str = "0",
    *,
    dept: str = "2",
    title: str = "Customer Service",
    creator: str = "1",
    name: str = "Jane Roe",
) -> str:
    """One row of a ``ticketauditlogs`` export, its values as Kayako writes them."""
    values = [
        "1", ticketid, "0", dept, title, dateline, creator, "3", name, str(actiontype), msg,
        "8", old, "", new, "", "ab12", "",
    ]  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


REPORT_HEADER = [
    "Ticket Audit Log ID",
    "Creation Date",
    "Creator",
    "Full Name",
    "Action",
    "Message",
    "Department",
    "Ticket Mask ID",
    "Ticket ID",
]
REPORT_ROWS = [
    ["11", "3/6/2026 16:30:00", "User", "Pat Doe", "New Ticket", "New Ticket: IP change",
     "Customer Service", "RPT-100-00001", "2001"],
    ["12", "3/6/2026 16:31:00", "User", "Pat Doe", "New Post", "Post added",
     "Customer Service", "RPT-100-00001", "2001"],
    ["13", "3/9/2026 9:30:00", "Staff", "Jane Roe", "Updated Department",
     "Ticket department changed from: Customer Service to: Implementation",
     "Customer Service", "RPT-100-00001", "2001"],
    ["14", "3/9/2026 9:31:00", "Staff", "Jane Roe", "Updated Owner",
     "Ticket owner changed from: -- Unassigned -- to: John Smith",
     "Implementation", "RPT-100-00001", "2001"],
    ["15", "3/10/2026 17:00:00", "System", "", "Updated Status",
     "Ticket status changed from: Open to: Closed by auto close",
     "Implementation", "RPT-100-00001", "2001"],
    ["16", "3/10/2026 17:05:00", "Staff", "Jane Roe", "Updated Priority",
     "Ticket priority changed from: Low to: High", "Implementation", "RPT-100-00001", "2001"],
]  # fmt: skip


def quoted_csv(rows: list[list[str]], *, sep: str = ",") -> str:
    """Kayako's report CSV: every field quoted, embedded quotes doubled."""
    out = io.StringIO()
    csv.writer(out, delimiter=sep, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def excel_csv(rows: list[list[str]]) -> bytes:
    """The writer's Excel-compatible mode: UTF-8 BOM, ``sep=;`` line, semicolons."""
    return b"\xef\xbb\xbf" + ("sep=;\r\n" + quoted_csv(rows, sep=";")).encode("utf-8")


# --- database export ----------------------------------------------------------------------------


def test_database_export_with_mask_ids_gives_events_by_action_type() -> None:
    parsed = read_file(FIXTURES / "kayako-audit.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-audit", "ticket_events")
    assert (parsed.rows_read, len(parsed.frame), parsed.rows_rejected, parsed.rows_skipped) == (
        8,
        5,
        1,
        2,
    )
    f = parsed.frame
    assert f[SOURCE_LINE].tolist() == [2, 3, 4, 6, 8]
    assert f["field"].tolist() == ["department", "department", "owner", "status", "status"]
    # the New Ticket row: the creation department, to itself, at the creation time
    assert f.loc[0, ["old_value", "new_value", "at"]].tolist() == [
        "Customer Service",
        "Customer Service",
        utc(2026, 11, 23, 15, 0),
    ]
    # names from the ids through the lookups, not from the empty value strings
    assert f.loc[1, ["old_value", "new_value", "actor"]].tolist() == [
        "Customer Service",
        "Implementation",
        "Jane Roe",
    ]
    assert f.loc[2, ["old_value", "new_value"]].tolist() == ["", "John Smith"]  # unassigned
    assert f.loc[3, ["old_value", "new_value"]].tolist() == ["New", "Open"]
    assert f.loc[4, ["old_value", "new_value", "actor"]].tolist() == ["Open", "Closed", ""]
    assert parsed.rejects.iloc[0][["line", "column", "value"]].tolist() == [
        7,
        "dateline",
        "not-a-time",
    ]
    assert "skipped: 1 new post, 1 priority" in " ".join(parsed.notes)


def test_database_export_without_mask_ids_finds_tickets_by_internal_id(tmp_path: Path) -> None:
    text = (
        DB_HEADER
        + "\n"
        + db_row("1001", "1795446000", 1, "New Ticket: IP change")
        + db_row("0001001", "1795447200", 7, "Ticket department changed", "2", "3")
        + db_row("1077", "1795447300", 7, "Ticket department changed", "2", "3")
        + db_row("1077", "1795447400", 2, "New post")
    )
    parsed = read_file(
        write(tmp_path, "swticketauditlogs.csv", text), ticket_ids={"1001": "ABC-123-45678"}
    )
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["ABC-123-45678", "ABC-123-45678"]
    assert parsed.frame["new_value"].tolist() == ["Customer Service", "Implementation"]
    (reject,) = parsed.rejects.itertuples()
    assert (reject.line, reject.column, reject.value) == (4, "ticketid", "1077")
    assert "ticketid '1077' matches no stored ticket" in reject.reason
    assert parsed.rows_skipped == 1  # the new post of an unknown ticket is skipped, not rejected


@pytest.mark.parametrize(
    ("actiontype", "old", "new", "column", "value", "lookup"),
    [
        (7, "2", "9", "newvalueid", "9", "department lookup"),
        (7, "12", "3", "oldvalueid", "12", "department lookup"),
        (4, "1", "44", "newvalueid", "44", "status lookup"),
    ],
)
def test_an_id_missing_from_the_lookups_is_rejected_by_name(
    tmp_path: Path, actiontype: int, old: str, new: str, column: str, value: str, lookup: str
) -> None:
    text = DB_HEADER + ",ticketmaskid\n" + db_row("5", "1795447200", actiontype, "m", old, new)
    text = text.rstrip("\n") + ",K-5\n"
    parsed = read_file(write(tmp_path, "audit.csv", text))
    assert_reconciles(parsed)
    (reject,) = parsed.rejects.itertuples()
    assert (reject.line, reject.column, reject.value) == (2, column, value)
    assert f"id '{value}' is not in the {lookup}" in reject.reason


def test_owner_changes_of_a_database_export_are_named_by_the_message(tmp_path: Path) -> None:
    msg = "Ticket owner changed from: John Smith to: -- Unassigned --"
    text = DB_HEADER + ",ticketmaskid\n" + db_row("5", "1795447200", 3, msg, "7", "0")
    parsed = read_file(write(tmp_path, "audit.csv", text.rstrip("\n") + ",K-5\n"))
    assert parsed.frame[["old_value", "new_value"]].to_numpy().tolist() == [["John Smith", ""]]


def test_a_header_without_a_required_column_is_refused(tmp_path: Path) -> None:
    text = "ticketid,dateline,actiontype\n5,1795447200,7\n"
    with pytest.raises(InvalidInputError, match=r"missing required audit column.*actionmsg"):
        read_file(write(tmp_path, "audit.csv", text))


# --- KQL report ---------------------------------------------------------------------------------


def _report_events(parsed) -> list[list[object]]:
    cols = ["ticket_id", "at", "field", "old_value", "new_value", "actor"]
    return parsed.frame[cols].to_numpy().tolist()


EXPECTED_REPORT = [
    ["RPT-100-00001", at("2026-03-06 16:30"), "department", "Customer Service",
     "Customer Service", "Pat Doe"],
    ["RPT-100-00001", at("2026-03-09 09:30"), "department", "Customer Service",
     "Implementation", "Jane Roe"],
    ["RPT-100-00001", at("2026-03-09 09:31"), "owner", "", "John Smith", "Jane Roe"],
    ["RPT-100-00001", at("2026-03-10 17:00"), "status", "Open", "Closed", ""],
]  # fmt: skip


def _xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    for values in rows:
        sheet.append(values)
    book.save(path)
    return path


def _serial(local: str) -> float:
    """A local wall-clock time as spreadsheet serial days (1900 date system)."""
    delta = dt.datetime.fromisoformat(local) - dt.datetime(1899, 12, 30)
    return delta / dt.timedelta(days=1)


def test_report_csv_plain_excel_compatible_and_xlsx_give_the_same_events(tmp_path: Path) -> None:
    rows = [REPORT_HEADER, *REPORT_ROWS]
    plain = read_file(write(tmp_path, "audit-report.csv", quoted_csv(rows)))
    excel = read_file(write(tmp_path, "audit-excel.csv", excel_csv(rows)))
    dated = [[r[0], dt.datetime.strptime(r[1], "%m/%d/%Y %H:%M:%S"), *r[2:]] for r in REPORT_ROWS]
    serial = [[r[0], _serial(str(d[1])), *r[2:]] for r, d in zip(REPORT_ROWS, dated, strict=True)]
    xlsx_dates = read_file(_xlsx(tmp_path / "audit-dates.xlsx", [REPORT_HEADER, *dated]))
    xlsx_serial = read_file(_xlsx(tmp_path / "audit-serial.xlsx", [REPORT_HEADER, *serial]))
    for parsed in (plain, excel, xlsx_dates, xlsx_serial):
        assert_reconciles(parsed)
        assert parsed.format == "kayako-audit"
        assert _report_events(parsed) == EXPECTED_REPORT, parsed.path.name
        assert (parsed.rows_skipped, parsed.rows_rejected) == (2, 0)
        assert "skipped: 1 new post, 1 priority" in " ".join(parsed.notes)
    assert plain.frame[SOURCE_LINE].tolist() == [2, 4, 5, 6]
    assert excel.frame[SOURCE_LINE].tolist() == [3, 5, 6, 7]  # the sep= line is line 1
    assert excel.encoding == "utf-8-sig"


def test_report_dates_day_first_when_the_policy_says_so(tmp_path: Path) -> None:
    rows = [REPORT_HEADER, [*REPORT_ROWS[2][:1], "9/3/2026 9:30:00", *REPORT_ROWS[2][2:]]]
    path = write(tmp_path, "audit.csv", quoted_csv(rows))
    parsed = read_file(path, audit=AuditMessages(report_day_first=True))
    assert parsed.frame["at"].tolist() == [at("2026-03-09 09:30")]
    us = read_file(path)
    assert us.frame["at"].tolist() == [at("2026-09-03 09:30")]


def test_report_with_only_the_internal_id_finds_stored_tickets(tmp_path: Path) -> None:
    header = [h for h in REPORT_HEADER if h != "Ticket Mask ID"]
    rows = [[v for h, v in zip(REPORT_HEADER, r, strict=True) if h != "Ticket Mask ID"]
            for r in REPORT_ROWS[2:4]]  # fmt: skip
    rows[1][-1] = "2002"
    parsed = read_file(
        write(tmp_path, "audit.csv", quoted_csv([header, *rows])), ticket_ids={"2001": "T-1"}
    )
    assert parsed.frame["ticket_id"].tolist() == ["T-1"]
    (reject,) = parsed.rejects.itertuples()
    assert (reject.line, reject.column, reject.value) == (3, "Ticket ID", "2002")


GERMAN = AuditMessages(
    messages={
        **ENGLISH_AUDIT_MESSAGES,
        "department": ("Ticketabteilung geändert von: %s zu: %s",),
        "owner": ("Ticketbesitzer geändert von: %s zu: %s",),
    },
    unassigned="-- Nicht zugewiesen --",
)


def test_a_translated_template_reads_the_names(tmp_path: Path) -> None:
    rows = [
        REPORT_HEADER,
        [*REPORT_ROWS[2][:5], "Ticketabteilung geändert von: Kundendienst zu: Umsetzung",
         *REPORT_ROWS[2][6:]],
        [*REPORT_ROWS[3][:5], "Ticketbesitzer geändert von: -- Nicht zugewiesen -- zu: Jörg",
         *REPORT_ROWS[3][6:]],
    ]  # fmt: skip
    parsed = read_file(write(tmp_path, "audit.csv", quoted_csv(rows)), audit=GERMAN)
    assert_reconciles(parsed)
    assert parsed.frame[["old_value", "new_value"]].to_numpy().tolist() == [
        ["Kundendienst", "Umsetzung"],
        ["", "Jörg"],
    ]


def test_a_message_matching_no_template_is_a_reject_naming_the_setting(tmp_path: Path) -> None:
    rows = [
        REPORT_HEADER,
        [*REPORT_ROWS[2][:5], "Ticketabteilung geändert von: A zu: B", *REPORT_ROWS[2][6:]],
        REPORT_ROWS[3],
    ]
    parsed = read_file(write(tmp_path, "audit.csv", quoted_csv(rows)))
    assert_reconciles(parsed)
    assert parsed.frame[SOURCE_LINE].tolist() == [3]
    (reject,) = parsed.rejects.itertuples()
    assert (reject.line, reject.column) == (2, "Message")
    assert reject.value == "Ticketabteilung geändert von: A zu: B"
    assert "kayako_audit.messages.department" in reject.reason
    assert "Ticket department changed from: %s to: %s" in reject.reason


def test_skipped_actions_are_counted_by_kind(tmp_path: Path) -> None:
    kinds = [2, 2, 2, 5, 21, 99]
    text = (
        DB_HEADER
        + ",ticketmaskid\n"
        + "".join(
            db_row("5", str(1795447200 + i), k, "m").rstrip("\n") + ",K-5\n"
            for i, k in enumerate(kinds)
        )
    )
    parsed = read_file(write(tmp_path, "audit.csv", text))
    assert_reconciles(parsed)
    assert (len(parsed.frame), parsed.rows_skipped) == (0, 6)
    assert "skipped: 3 new post, 1 priority, 1 note added, 1 actiontype 99" in parsed.notes[0]


def test_routing_across_the_dst_weekend_is_exact(tmp_path: Path) -> None:
    """Created Friday 6 March 16:30 CST, moved Monday 9 March 09:30 CDT: 1.0 business hour."""
    rows = [REPORT_HEADER, REPORT_ROWS[0], REPORT_ROWS[2]]
    parsed = read_file(write(tmp_path, "audit.csv", quoted_csv(rows)))
    events = parsed.frame.drop(columns=SOURCE_LINE)
    assert events["at"].tolist()[1] - events["at"].tolist()[0] == pd.Timedelta(hours=64)
    req = request(
        "RPT-100-00001",
        received="2026-03-06 16:30",
        requested="2026-03-12 10:00",
        ticket={"creator": "user", "department": "Implementation", "status": "Open"},
    )
    data = frames(req)
    data["ticket_events"] = events
    row = evaluate(data, as_of=at("2026-03-31 12:00")).iloc[0]
    assert row["routing_business_hours"] == 1.0
    assert row["routing_state"] == "met"
    assert "routing_history_missing" not in row["flags"]


# --- templates: a property against a slow reference ---------------------------------------------


def _slow_parse(message: str, templates: tuple[str, ...]) -> tuple[str, str] | None:
    """Try the longest template first; split its middle text at its first occurrence."""
    for template in sorted(templates, key=len, reverse=True):
        head, middle, tail = template.split("%s")
        if not (message.startswith(head) and message.endswith(tail)):
            continue
        inner = message[len(head) : len(message) - len(tail)]
        if len(message) < len(head) + len(tail) or middle not in inner:
            continue
        old, new = inner.split(middle, 1)
        return old, new
    return None


NAMES = (
    st.text(
        st.characters(codec="utf-8", exclude_characters=":\r\n", exclude_categories=("Cs", "Cc")),
        min_size=1,
        max_size=12,
    )
    .map(str.strip)
    .filter(bool)
)


@given(
    field=st.sampled_from(["department", "status", "owner"]),
    old=NAMES | st.just("-- Unassigned --"),
    new=NAMES,
    auto_close=st.booleans(),
)
def test_message_templates_round_trip_like_the_slow_reference(
    field: str, old: str, new: str, auto_close: bool
) -> None:
    messages = AuditMessages()
    templates = messages.templates(field)
    template = templates[0] if auto_close else templates[-1]
    message = template.replace("%s", old, 1).replace("%s", new, 1)
    header = ["Creation Date", "Action", "Message", "Ticket Mask ID"]
    cells = ["3/9/2026 9:30:00", f"Updated {field.title()}", message, "K-1"]
    columns = [pa.array([c], pa.large_string()) for c in cells]
    context = AuditContext(DEFAULT_LOOKUPS, messages)
    text = map_audit(header, columns, np.array([2]), context, file="audit.csv")
    expected = _slow_parse(message, templates)
    assert expected is not None
    expected = tuple("" if v == messages.unassigned else v for v in expected)
    assert text.rejects.empty
    got = (text.columns["old_value"][0].as_py(), text.columns["new_value"][0].as_py())
    assert got == expected
    assert re.fullmatch(messages.patterns(field)[0 if auto_close else -1], message)
