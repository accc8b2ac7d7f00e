"""Tests of the files as written: CSV shape, values, Kayako XML and audit log (demo/writers.py)."""

from __future__ import annotations

import csv
import ipaddress

import pandas as pd
import pytest

from ipchange_core.demo import DemoDataSet
from ipchange_core.demo import reference as ref
from tests.demo.checks import (
    CSV_FILES,
    NAIVE_FORMAT,
    OFFSET_FORMAT,
    TIMESTAMPS,
    check_audit,
    check_xml,
    read,
)


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        (ref.TICKETS_CSV, "ticket_id,subject,department,status,owner,creator,account,"
         "requester_name,requester_email,created_at,updated_at,tags"),
        (ref.EVENTS_CSV, "ticket_id,at,field,old_value,new_value,actor"),
        (ref.INTAKE_CSV, "ticket_id,received_at,channel,requester_type,account,site,reseller,"
         "contact_name,contact_phone,person_of_record,reason,current_ip,new_ip,"
         "requested_change_at,ticket_number_given,transferred_to_queue,agent"),
        (ref.CHANGES_CSV, "ticket_id,confirmed_at,scheduled_start,scheduled_end,completed_at,"
         "cancelled_at,engineer,fee_accepted_by,fee_accepted_at,fee_waived,fee_waiver_reason,"
         "fee_waived_by,after_hours_approved_by"),
        (ref.KAYAKO_AUDIT_CSV, "ticketid,ticketmaskid,dateline,departmenttitle,actiontype,"
         "actionmsg,oldvaluestring,newvaluestring,creatorfullname"),
    ],
)  # fmt: skip
def test_headers_are_exact(ds: DemoDataSet, name: str, columns: str) -> None:
    with ds.paths[name].open(encoding="utf-8", newline="") as fh:
        assert fh.readline() == columns + "\n"


def test_csv_files_parse_the_same_with_csv_and_pandas(ds: DemoDataSet) -> None:
    for name in CSV_FILES:
        with ds.paths[name].open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        df = read(ds, name)
        assert len(rows) - 1 == len(df) == ds.rows[name], name
        assert all(len(r) == len(rows[0]) for r in rows), name
        assert rows[1:] == df.to_numpy().tolist(), name


def test_enumerations(clean: DemoDataSet) -> None:
    t = read(clean, ref.TICKETS_CSV)
    assert set(t["department"]) <= {
        "Implementation",
        "Customer Service",
        "Technical Support",
        "Billing",
    }
    assert set(t["status"]) <= {"New", "Open", "In Progress", "On Hold", "Closed"}
    assert set(t["creator"]) == {"staff", "user"}
    assert t["ticket_id"].str.fullmatch(r"[A-Z]{3}-\d{3}-\d{5}").all()
    e = read(clean, ref.EVENTS_CSV)
    assert set(e["field"]) == {"department", "status", "owner"}
    i = read(clean, ref.INTAKE_CSV)
    assert set(i["channel"]) == {"phone", "customer_ticket", "email", "chat"}
    assert set(i["requester_type"]) == {"site", "reseller"}
    assert set(i["reason"]) == {"isp_change", "equipment_change", "wan_lan", "other"}
    assert set(i["ticket_number_given"]) | set(i["transferred_to_queue"]) == {"yes", "no"}
    assert i["account"].str.fullmatch(r"ACCT-\d{5}").all()
    assert i["site"].str.fullmatch(r"(Site \d+ – [A-Za-z. ]+)?").all()
    c = read(clean, ref.CHANGES_CSV)
    assert set(c["fee_waived"]) == {"yes", "no"}


def test_addresses_are_valid(clean: DemoDataSet) -> None:
    i = read(clean, ref.INTAKE_CSV)
    ips = pd.concat([i["current_ip"], i["new_ip"]])
    ips = ips[ips != ""]
    parsed = [ipaddress.ip_address(x) for x in ips]
    assert sum(p.version == 6 for p in parsed) >= 1
    assert sum(p.version == 4 for p in parsed) > 0.9 * len(parsed)


def test_naive_local_timestamps_appear_only_in_intake_and_changes(clean: DemoDataSet) -> None:
    for name, columns in TIMESTAMPS.items():
        df = read(clean, name)
        cells = pd.concat([df[c] for c in columns])
        cells = cells[(cells != "") & (cells != "ASAP")]
        naive = cells.str.match(NAIVE_FORMAT.pattern)
        assert (naive | cells.str.match(OFFSET_FORMAT.pattern)).all(), name
        if name in (ref.INTAKE_CSV, ref.CHANGES_CSV):
            assert 0.01 < naive.mean() < 0.1, name
        else:
            assert not naive.any(), name


def test_xml_matches_tickets_csv(ds: DemoDataSet) -> None:
    check_xml(ds.paths[ref.KAYAKO_XML], read(ds, ref.TICKETS_CSV))
    raw = ds.paths[ref.KAYAKO_XML].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


def test_audit_log_mirrors_the_events(clean: DemoDataSet) -> None:
    check_audit(
        read(clean, ref.KAYAKO_AUDIT_CSV), read(clean, ref.EVENTS_CSV), clean.paths[ref.KAYAKO_XML]
    )
