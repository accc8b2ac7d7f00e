"""Tests of ipchange_core.kayako through ingest.read_file: ticket XML, report CSV, audit CSV."""

from __future__ import annotations

import datetime as dt
import hashlib
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import ParsedFile, kayako_xml, read_file
from ipchange_core.ingest.kayako_report import load_mapping
from ipchange_core.ingest.kayako_values import DEFAULT_LOOKUPS
from ipchange_core.policy import KayakoLookups
from ipchange_core.schema import SOURCE_LINE
from tests.test_ingest import assert_reconciles, write

FIXTURES = Path(__file__).parent / "fixtures"


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=dt.UTC))


def by_id(parsed: ParsedFile) -> pd.DataFrame:
    return parsed.frame.set_index("ticket_id")


# --- ticket XML ----------------------------------------------------------------------------


def test_xml_fixture_maps_every_field() -> None:
    parsed = read_file(FIXTURES / "kayako-tickets.xml")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table, parsed.encoding) == ("kayako-xml", "tickets", "utf-8")
    assert (parsed.rows_read, len(parsed.frame)) == (3, 2)
    assert (
        parsed.sha256 == hashlib.sha256((FIXTURES / "kayako-tickets.xml").read_bytes()).hexdigest()
    )
    first = by_id(parsed).loc["ABC-123-45678"]
    assert first["department"] == "Implementation" and first["status"] == "New"
    assert first["ticket_type"] == "IP Change"
    assert first["owner"] == ""  # ownerstaffid 0 = unassigned
    assert first["creator"] == "staff"
    assert first["account"] == "Acme Corp"
    assert (first["requester_name"], first["requester_email"]) == ("Jane Roe", "jane@acme.example")
    assert first["subject"] == "IP change for site 12 & more"
    assert first["created_at"] == utc(2026, 11, 23, 15, 15)  # epoch seconds are UTC
    assert first["updated_at"] == utc(2026, 11, 23, 16, 15)
    assert first["tags"] == "ip-change,isp"
    assert first[SOURCE_LINE] == 1  # the ticket's ordinal
    second = by_id(parsed).loc["ABC-123-45679"]
    assert (second["owner"], second["creator"], second["ticket_type"]) == ("John Smith", "user", "")
    assert pd.isna(second["updated_at"])  # lastactivity 0 = none


def test_xml_unknown_department_id_is_rejected_naming_the_id() -> None:
    parsed = read_file(FIXTURES / "kayako-tickets.xml")
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"], reject["value"]) == (3, "departmentid", "9")
    assert "department id '9' is not in the department lookup" in reject["reason"]


def test_xml_lookups_come_from_the_argument() -> None:
    lookups = KayakoLookups(
        departments={**DEFAULT_LOOKUPS.departments, 9: "Porting"},
        statuses=DEFAULT_LOOKUPS.statuses,
        types=DEFAULT_LOOKUPS.types,
    )
    parsed = read_file(FIXTURES / "kayako-tickets.xml", kayako=lookups)
    assert_reconciles(parsed)
    assert by_id(parsed).loc["ABC-123-45681", "department"] == "Porting"


def _ticket(n: int, **fields: str) -> str:
    base = {
        "displayid": f"K-{n}",
        "departmentid": "3",
        "statusid": "1",
        "typeid": "3",
        "ownerstaffid": "0",
        "creator": "1",
        "creationtime": "1795446900",
        "subject": "Subject <b>&amp;</b>".replace("<b>", "").replace("</b>", ""),
    }
    base.update(fields)
    body = "".join(f"<{k}>{v}</{k}>" for k, v in base.items())
    return f'<ticket id="{n}" flagtype="0">{body}</ticket>'


XML_HOSTILE = [
    ("status-id", {"statusid": "77"}, "statusid", "status id '77' is not in the status lookup"),
    ("type-id", {"typeid": "12"}, "typeid", "ticket type id '12' is not in the ticket type lookup"),
    ("creator", {"creator": "3"}, "creator", "'3' is not one of: staff, user"),
    ("creation-0", {"creationtime": "0"}, "creationtime", "is blank, but a value is required"),
    ("creation-junk", {"creationtime": "yesterday"}, "creationtime",
     "'yesterday' is not a Unix time in whole seconds"),
    ("no-displayid", {"displayid": ""}, "displayid", "is blank, but a value is required"),
    ("activity-first", {"lastactivity": "1795446899"}, "lastactivity", "is before created_at"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "column", "reason"), [h[1:] for h in XML_HOSTILE], ids=[h[0] for h in XML_HOSTILE]
)
def test_xml_hostile_ticket_is_rejected(
    tmp_path: Path, fields: dict[str, str], column: str, reason: str
) -> None:
    xml = f"<tickets>{_ticket(1)}{_ticket(2, **fields)}</tickets>"
    parsed = read_file(write(tmp_path, "export.xml", xml))
    assert_reconciles(parsed)
    assert len(parsed.rejects) == 1, parsed.reject_messages()
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"]) == (2, column)
    assert reason in reject["reason"]


def test_xml_duplicate_display_ids_reject_both(tmp_path: Path) -> None:
    xml = f"<tickets>{_ticket(1)}{_ticket(2, displayid='K-1')}{_ticket(3)}</tickets>"
    parsed = read_file(write(tmp_path, "export.xml", xml))
    assert_reconciles(parsed)
    assert parsed.rejects["line"].tolist() == [1, 2]
    assert parsed.frame["ticket_id"].tolist() == ["K-3"]


def test_malformed_xml_reports_parser_line_and_column(tmp_path: Path) -> None:
    xml = f"<tickets>\n{_ticket(1)}\n<ticket><displayid>x</ticket>\n</tickets>"
    with pytest.raises(InvalidInputError, match=r"^bad\.xml: malformed XML at line 3, column \d+"):
        read_file(write(tmp_path, "bad.xml", xml))


def test_empty_ticket_list_has_no_rows(tmp_path: Path) -> None:
    parsed = read_file(write(tmp_path, "export.xml", "<?xml version='1.0'?><tickets/>"))
    assert_reconciles(parsed)
    assert parsed.rows_read == 0


def test_large_xml_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    posts = "<posts>" + ("<post><contents>" + "x" * 2000 + "</contents></post>") * 5 + "</posts>"
    with path.open("w") as f:
        f.write("<tickets>")
        for n in range(5_000):
            f.write(_ticket(n, tags="a b").replace("</ticket>", posts + "</ticket>"))
        f.write("</tickets>")
    assert path.stat().st_size > 40e6
    tracemalloc.start()
    parsed = read_file(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert_reconciles(parsed)
    assert len(parsed.frame) == 5_000
    assert peak < path.stat().st_size / 4  # the tree is never held whole


@pytest.mark.parametrize("block", [1, 2, 3, 50_000])
def test_xml_read_in_blocks_of_any_size_gives_the_same_rows(tmp_path: Path, block: int) -> None:
    tickets = [_ticket(n, subject=f"  subject {n} ", tags=f"t{n} x") for n in range(1, 6)]
    tickets[3] = _ticket(4, statusid="77")  # a reject in a later block keeps its line
    path = write(tmp_path, "export.xml", "<tickets>" + "".join(tickets) + "</tickets>")
    parsed = read_file(path, block_rows=block)
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["K-1", "K-2", "K-3", "K-5"]
    assert parsed.frame["subject"].tolist() == [f"subject {n}" for n in (1, 2, 3, 5)]
    assert parsed.frame["tags"].tolist() == [f"t{n},x" for n in (1, 2, 3, 5)]
    assert parsed.frame[SOURCE_LINE].tolist() == [1, 2, 3, 5]
    assert parsed.rejects[["line", "column"]].to_numpy().tolist() == [[4, "statusid"]]


def test_xml_holds_one_block_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "many.xml"
    path.write_text("<tickets>" + "".join(_ticket(n) for n in range(20_000)) + "</tickets>")
    peaks = {}
    for block in (1_000, 20_000):
        xml = kayako_xml.TicketXml(path, DEFAULT_LOOKUPS, file=path.name, block_tickets=block)
        tracemalloc.start()
        rows = sum(len(text.lines) for text in xml.blocks())
        peaks[block] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert rows == 20_000
    assert peaks[1_000] < peaks[20_000] / 4, peaks


# --- report CSV ---------------------------------------------------------------------------


def test_report_fixture_maps_labels_and_local_dates() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-csv", "tickets")
    frame = by_id(parsed)
    first = frame.loc["ABC-123-45678"]
    assert first["created_at"] == utc(2014, 8, 5, 13, 16)  # 08:16 AM CDT
    assert first["updated_at"] == utc(2014, 8, 5, 14, 0)
    assert (first["owner"], first["creator"], first["tags"]) == ("", "staff", "ip-change,isp")
    assert first["ticket_type"] == "IP Change"
    assert frame.loc["ABC-123-45679", "created_at"] == utc(2026, 11, 20, 20, 5)  # 02:05 PM CST
    assert any("Priority" in note for note in parsed.notes)


def test_report_dst_overlap_is_rejected_under_its_label() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"]) == (4, "Creation Date")
    assert "is ambiguous in America/Chicago" in reject["reason"]


REPORT = "Ticket Mask ID,Department,Status,Created\nR-1,General,Open,2026-11-23 09:15\n"


def test_report_without_creator_is_refused_unless_the_mapping_sets_a_default(
    tmp_path: Path,
) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%Y-%m-%d %H:%M'\n"
        "columns: {ticket_id: Ticket Mask ID, department: Department, status: Status,"
        " created_at: [Creation Date, Created]}\n",
    )
    report = write(tmp_path, "report.csv", REPORT)
    with pytest.raises(InvalidInputError, match=r"^report\.csv: report has no column for creator"):
        read_file(report, mapping=mapping)
    mapping.write_text(mapping.read_text() + "defaults: {creator: staff}\n")
    parsed = read_file(report, mapping=mapping)
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, ["creator", "created_at"]].tolist() == [
        "staff",
        utc(2026, 11, 23, 15, 15),
    ]


def test_report_value_translations(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%Y-%m-%d %H:%M'\n"
        "columns: {ticket_id: Ticket Mask ID, department: Department, status: Status,"
        " created_at: Created, creator: Source}\n"
        "values: {creator: {Staff CP: staff, Email: user}}\n",
    )
    text = "Ticket Mask ID,Department,Status,Created,Source\nR-1,General,Open,2026-11-23 09:15,Staff CP\nR-2,General,Open,2026-11-23 09:15,Email\nR-3,General,Open,2026-11-23 09:15,Fax\n"
    parsed = read_file(write(tmp_path, "report.csv", text), mapping=mapping)
    assert_reconciles(parsed)
    assert parsed.frame["creator"].tolist() == ["staff", "user"]
    assert parsed.rejects[["line", "column"]].to_numpy().tolist() == [[4, "Source"]]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("columns: [a, b]\n", "needs a 'columns' section"),
        ("columns: {ticket_number: X}\n", "unknown field(s) ticket_number"),
        ("columns: {ticket_id: X}\nextra: 1\n", "unknown key(s): extra"),
        ("columns: {ticket_id: X}\ndate_format: 5\n", "date_format must be"),
        ("columns: {ticket_id: [1, 2]}\n", "must be a column label or a list of labels"),
        ("columns: {ticket_id: X\n", "not valid YAML"),
    ],
    ids=["not-a-mapping", "unknown-field", "unknown-key", "bad-date-format", "bad-label", "yaml"],
)
def test_bad_mapping_is_refused_naming_it(tmp_path: Path, yaml_text: str, message: str) -> None:
    mapping = write(tmp_path, "mine.yaml", yaml_text)
    with pytest.raises(InvalidInputError) as caught:
        load_mapping(mapping)
    assert str(caught.value).startswith("mine.yaml: ") and message in str(caught.value)


def test_mapping_with_an_unusable_date_format_is_refused(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%d/%m/%y'\ncolumns: {ticket_id: Ticket Mask ID, department: Department,"
        " status: Status, created_at: Created}\ndefaults: {creator: user}\n",
    )
    with pytest.raises(InvalidInputError, match=r"^mine\.yaml: date_format '%d/%m/%y'"):
        read_file(write(tmp_path, "report.csv", REPORT), mapping=mapping)


def test_default_mapping_is_packaged() -> None:
    mapping = load_mapping()
    assert mapping.date_format == "%d %B %Y %I:%M %p"
    assert mapping.columns["ticket_id"] == ("Ticket Mask ID",)
    assert not mapping.defaults


# --- audit CSV ----------------------------------------------------------------------------


def test_audit_fixture_gives_routing_events_and_counts_the_rest() -> None:
    parsed = read_file(FIXTURES / "kayako-audit.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-audit", "ticket_events")
    assert (parsed.rows_read, len(parsed.frame), parsed.rows_rejected, parsed.rows_skipped) == (
        6,
        3,
        1,
        2,
    )
    frame = parsed.frame
    assert frame["field"].tolist() == ["department", "owner", "status"]
    assert frame.loc[0, ["old_value", "new_value", "actor"]].tolist() == [
        "Customer Service",
        "Implementation",
        "Jane Roe",
    ]
    assert frame.loc[0, "at"] == utc(2026, 11, 23, 15, 20)
    assert frame.loc[1, ["old_value", "new_value"]].tolist() == ["", "John Smith"]  # unassigned
    assert frame[SOURCE_LINE].tolist() == [2, 3, 5]
    assert parsed.rejects.iloc[0][["line", "column", "value"]].tolist() == [
        6,
        "dateline",
        "not-a-time",
    ]
    assert any("reply 1" in n and "newticket 1" in n for n in parsed.notes)


def test_audit_missing_column_is_refused(tmp_path: Path) -> None:
    text = "ticketmaskid,dateline,actionmsg\nA-1,1795447200,Status changed from New to Open\n"
    with pytest.raises(InvalidInputError, match="missing required audit column"):
        read_file(write(tmp_path, "audit.csv", text))
