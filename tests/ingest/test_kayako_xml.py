"""Kayako ticket XML exports through read_file, and TicketXml reading them in blocks."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import kayako_xml, read_file
from ipchange_core.ingest.kayako_values import DEFAULT_LOOKUPS
from ipchange_core.policy import KayakoLookups
from ipchange_core.schema import SOURCE_LINE
from tests.domain import FIXTURES, assert_reconciles, by_id, kayako_ticket, utc, write

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
    xml = f"<tickets>{kayako_ticket(1)}{kayako_ticket(2, **fields)}</tickets>"
    parsed = read_file(write(tmp_path, "export.xml", xml))
    assert_reconciles(parsed)
    assert len(parsed.rejects) == 1, parsed.reject_messages()
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"]) == (2, column)
    assert reason in reject["reason"]


def test_xml_duplicate_display_ids_reject_both(tmp_path: Path) -> None:
    xml = f"<tickets>{kayako_ticket(1)}{kayako_ticket(2, displayid='K-1')}{kayako_ticket(3)}</tickets>"
    parsed = read_file(write(tmp_path, "export.xml", xml))
    assert_reconciles(parsed)
    assert parsed.rejects["line"].tolist() == [1, 2]
    assert parsed.frame["ticket_id"].tolist() == ["K-3"]


def test_malformed_xml_reports_parser_line_and_column(tmp_path: Path) -> None:
    xml = f"<tickets>\n{kayako_ticket(1)}\n<ticket><displayid>x</ticket>\n</tickets>"
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
            f.write(kayako_ticket(n, tags="a b").replace("</ticket>", posts + "</ticket>"))
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
    tickets = [kayako_ticket(n, subject=f"  subject {n} ", tags=f"t{n} x") for n in range(1, 6)]
    tickets[3] = kayako_ticket(4, statusid="77")  # a reject in a later block keeps its line
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
    path.write_text("<tickets>" + "".join(kayako_ticket(n) for n in range(20_000)) + "</tickets>")
    peaks = {}
    for block in (1_000, 20_000):
        xml = kayako_xml.TicketXml(path, DEFAULT_LOOKUPS, file=path.name, block_tickets=block)
        tracemalloc.start()
        rows = sum(len(text.lines) for text in xml.blocks())
        peaks[block] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert rows == 20_000
    assert peaks[1_000] < peaks[20_000] / 4, peaks


def test_the_real_listall_sample_keeps_kayakos_internal_id() -> None:
    """``<ticket id="2">`` of the real sample is stored beside its mask id ``OLJ-171-16930``."""
    path = Path(__file__).resolve().parents[3] / "shared" / "kayako" / "samples"
    if not (path / "tickets-listall.xml").exists():
        pytest.skip(f"the real Kayako samples are not beside the repository ({path})")
    lookups = KayakoLookups(departments={2: "Sales"}, statuses={1: "Open"}, types={1: "Feedback"})
    parsed = read_file(path / "tickets-listall.xml", kayako=lookups)
    assert parsed.rejects.empty, parsed.reject_messages()
    assert parsed.frame[["ticket_id", "kayako_id"]].to_numpy().tolist() == [["OLJ-171-16930", "2"]]
