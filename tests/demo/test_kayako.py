"""Tests of the demo's Kayako files against FORMATS.md (demo/kayako.py).

Expectations are written from FORMATS.md and checked against the canonical CSVs the same
generator writes, through independent parsing (ElementTree, csv, strptime + zoneinfo).
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.demo import DemoDataSet
from ipchange_core.demo import reference as ref
from ipchange_core.demo.text import Formatter, render
from ipchange_core.demo.timeline import Timeline
from ipchange_core.policy import load_policy
from tests.demo.checks import ZONE, good, instants, read, read_lookup
from tests.kayako_server import TICKET_FIELDS

# FORMATS.md 2: the children of <ticket>, in Kayako's order (as the stand-in server writes them).
TICKET_CHILDREN = list(TICKET_FIELDS)
AUDIT_DB = (
    "ticketauditlogid,ticketid,ticketpostid,departmentid,departmenttitle,dateline,creatortype,"
    "creatorid,creatorfullname,actiontype,actionmsg,valuetype,oldvalueid,oldvaluestring,"
    "newvalueid,newvaluestring,actionhash,actionmsgparams"
)
# FORMATS.md 4: the English templates, and the action types of routing changes.
TEMPLATES = {
    "department": re.compile(r"Ticket department changed from: (.*) to: (.*)"),
    "status": re.compile(r"Ticket status changed from: (.*) to: (.*)"),
    "owner": re.compile(r"Ticket owner changed from: (.*) to: (.*)"),
}
ACTIONS = {"7": "department", "4": "status", "3": "owner"}
LABELS = {"7": "Updated Department", "4": "Updated Status", "3": "Updated Owner", "1": "New Ticket"}
US_DATE = re.compile(
    r"(?:[1-9]|1[0-2])/(?:[1-9]|[12]\d|3[01])/\d{4} (?:1?\d|2[0-3]):[0-5]\d:[0-5]\d"
)
ALL_QUOTED = r'"(?:[^"]|"")*"(?:{sep}"(?:[^"]|"")*")*'
LIVE_LINE = re.compile(
    r'<\?xml version="1\.0" encoding="UTF-8"\?>|</?\w+>|<ticket id="\d+" flagtype="0">'
    r"|<(\w+)><!\[CDATA\[(?:(?!\]\]>).)+\]\]></\1>|<\w+ />"
)
CENTRAL = ZoneInfo(ZONE)


def lookups(ds: DemoDataSet) -> dict[str, dict[int, str]]:
    names = {
        "department": ref.DEPARTMENTS_XML,
        "status": ref.STATUSES_XML,
        "type": ref.TYPES_XML,
        "priority": ref.PRIORITIES_XML,
    }
    return {k: read_lookup(ds.paths[v]) for k, v in names.items()}


def xml_tickets(ds: DemoDataSet) -> pd.DataFrame:
    root = ET.parse(ds.paths[ref.KAYAKO_XML]).getroot()
    rows = [{"id": x.get("id"), **{c.tag: c.text or "" for c in x}} for x in root]
    return pd.DataFrame(rows, dtype=str)


def all_quoted_lines(path: Path, sep: str, skip: int = 0) -> list[str]:
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    assert lines[-1] == ""
    pattern = re.compile(ALL_QUOTED.format(sep=sep))
    for line in lines[skip:-1]:
        assert pattern.fullmatch(line), line
    return lines[skip:-1]


def report_instant(text: str, canonical: pd.Timestamp) -> bool:
    """Whether a report's local ``m/d/yyyy h:mm:ss`` is the canonical instant (either fold)."""
    wall = dt.datetime.strptime(text, "%m/%d/%Y %H:%M:%S")
    return any(
        wall.replace(tzinfo=CENTRAL, fold=fold).timestamp() == canonical.timestamp()
        for fold in (0, 1)
    )


def no_leading_zeros(text: str) -> bool:
    return US_DATE.fullmatch(text) is not None


# --------------------------------------------------------------------------------- lookups


def test_lookup_lists_are_live_kayako_xml(ds: DemoDataSet) -> None:
    for name in ref.LOOKUP_XMLS:
        raw = ds.paths[name].read_text(encoding="utf-8")
        for line in raw.splitlines():
            assert not line.startswith((" ", "\t")), (name, line)
        assert "<id><![CDATA[" in raw and "<title><![CDATA[" in raw
    look = lookups(ds)
    assert set(look["department"].values()) >= {
        "Customer Service", "Implementation", "Technical Support", "Billing"
    }  # fmt: skip
    assert set(look["status"].values()) == {"New", "Open", "In Progress", "On Hold", "Closed"}
    assert set(look["type"].values()) == {"Issue", "Task", "IP Change"}
    # The demo help desk's ids are its own: the default policy's would name other things.
    assert look["department"] != dict(ref.KAYAKO_DEPARTMENTS)
    assert look["status"] != dict(ref.KAYAKO_STATUSES)
    statuses = ET.parse(ds.paths[ref.STATUSES_XML]).getroot()
    resolved = {s.findtext("title"): s.findtext("markasresolved") for s in statuses}
    assert resolved == {"New": "0", "Open": "0", "In Progress": "0", "On Hold": "0", "Closed": "1"}
    departments = ET.parse(ds.paths[ref.DEPARTMENTS_XML]).getroot()
    assert {d.findtext("module") for d in departments} == {"tickets", "livechat"}
    priorities = [p.findtext("id") for p in ET.parse(ds.paths[ref.PRIORITIES_XML]).getroot()]
    assert len(priorities) > len(set(priorities))  # an id listed twice, as in the samples


# ------------------------------------------------------------------------------ ticket XML


def test_ticket_xml_is_in_the_live_wire_style(ds: DemoDataSet) -> None:
    raw = ds.paths[ref.KAYAKO_XML].read_text(encoding="utf-8")
    lines = raw.split("\n")
    assert lines[:2] == ['<?xml version="1.0" encoding="UTF-8"?>', "<tickets>"]
    assert lines[-2:] == ["</tickets>", ""]
    for line in lines[:-1]:
        assert LIVE_LINE.fullmatch(line), line
    assert "<ownerstaffname />" in raw and "<tags />" in raw and "<ipaddress />" in raw
    root = ET.parse(ds.paths[ref.KAYAKO_XML]).getroot()
    for ticket in root:
        assert [c.tag for c in ticket] == TICKET_CHILDREN


def test_ticket_xml_values(clean: DemoDataSet) -> None:
    x = xml_tickets(clean)
    t = read(clean, ref.TICKETS_CSV)
    look = lookups(clean)
    assert x["displayid"].tolist() == t["ticket_id"].tolist()
    assert x["id"].str.fullmatch(r"\d+").all() and x["id"].is_unique
    assert not set(x["id"]) & set(x["displayid"])
    assert (x["departmentid"].astype(int).map(look["department"]) == t["department"]).all()
    assert (x["statusid"].astype(int).map(look["status"]) == t["status"]).all()
    assert x["typeid"].astype(int).map(look["type"]).notna().all()
    assert x["priorityid"].astype(int).map(look["priority"]).notna().all()
    assert (x["creator"].map({"1": "staff", "2": "user"}) == t["creator"]).all()
    assert ((x["ownerstaffid"] == "0") == (t["owner"] == "")).all()
    assert (x["ownerstaffname"] == t["owner"]).all()
    created = instants(t["created_at"]).astype("int64") // 10**6
    assert (x["creationtime"].astype("int64") == created).all()
    updated = instants(t["updated_at"]).astype("int64") // 10**6
    assert (x["lastactivity"].astype("int64") == updated).all()
    never = x["laststaffreply"] == "0"  # 0 = never
    assert never.any() and (~never).any()
    assert ((x["lastuserreply"] == "0") == (t["creator"] == "staff")).all()


# ------------------------------------------------------------------------------ audit log


@pytest.fixture(scope="module")
def audit(clean: DemoDataSet) -> pd.DataFrame:
    return read(clean, ref.AUDIT_DB_CSV)


def test_audit_db_export_columns_and_ids(clean: DemoDataSet, audit: pd.DataFrame) -> None:
    with clean.paths[ref.AUDIT_DB_CSV].open(encoding="utf-8") as fh:
        assert fh.readline() == AUDIT_DB + "\n"
    x = xml_tickets(clean)
    assert set(audit["ticketid"]) == set(x["id"])  # the internal id, never the mask
    assert audit["ticketauditlogid"].astype(int).tolist() == list(range(1, len(audit) + 1))
    new = audit[audit["actiontype"] == "1"]
    assert new["ticketid"].is_unique and len(new) == len(x)
    created = x.set_index("id")["creationtime"]
    assert (new["dateline"].to_numpy() == created.loc[new["ticketid"]].to_numpy()).all()
    assert {"2", "5"} <= set(audit["actiontype"])  # rows a routing reader must skip
    assert audit["actionhash"].str.fullmatch(r"[0-9a-f]{32}").all()


def test_audit_db_export_joined_with_mask_ids(clean: DemoDataSet, audit: pd.DataFrame) -> None:
    joined = read(clean, ref.AUDIT_DB_MASKS_CSV)
    assert tuple(joined.columns) == (*AUDIT_DB.split(","), "ticketmaskid")
    pd.testing.assert_frame_equal(joined.drop(columns="ticketmaskid"), audit)
    mask = xml_tickets(clean).set_index("id")["displayid"]
    assert (joined["ticketmaskid"].to_numpy() == mask.loc[joined["ticketid"]].to_numpy()).all()


def test_audit_routing_rows_are_ids_and_templated_messages(
    clean: DemoDataSet, audit: pd.DataFrame
) -> None:
    look = lookups(clean)
    staff = {str(i): name for i, name in enumerate(ref.STAFF, start=1)} | {"0": "-- Unassigned --"}
    names = {"department": look["department"], "status": look["status"]}
    changes = audit[audit["actiontype"].isin(ACTIONS)]
    assert set(changes["actiontype"]) == set(ACTIONS)
    assert (changes["valuetype"] == "8").all()
    assert (changes["oldvaluestring"] == "").all() and (changes["newvaluestring"] == "").all()
    for row in changes.itertuples():
        field = ACTIONS[row.actiontype]
        found = TEMPLATES[field].fullmatch(row.actionmsg)
        assert found, row.actionmsg
        by_id = staff if field == "owner" else {str(k): v for k, v in names[field].items()}
        assert (by_id[row.oldvalueid], by_id[row.newvalueid]) == found.groups(), row
        if field == "department":  # the department before the move
            assert (row.departmentid, row.departmenttitle) == (
                row.oldvalueid, found.group(1)
            )  # fmt: skip
        assert look["department"][int(row.departmentid)] == row.departmenttitle


def test_audit_routing_rows_are_the_canonical_events(
    clean: DemoDataSet, audit: pd.DataFrame
) -> None:
    """Read back by template, the audit rows give ticket_events.csv row for row."""
    mask = xml_tickets(clean).set_index("id")["displayid"]
    changes = audit[audit["actiontype"].isin(ACTIONS)].reset_index(drop=True)
    parsed = pd.DataFrame(
        {
            "ticket_id": mask.loc[changes["ticketid"]].to_numpy(),
            "at": changes["dateline"].astype("int64"),
            "field": changes["actiontype"].map(ACTIONS),
            "old_value": [
                TEMPLATES[ACTIONS[a]].fullmatch(m).group(1)
                for a, m in zip(changes["actiontype"], changes["actionmsg"], strict=True)
            ],
            "new_value": [
                TEMPLATES[ACTIONS[a]].fullmatch(m).group(2)
                for a, m in zip(changes["actiontype"], changes["actionmsg"], strict=True)
            ],
            "actor": changes["creatorfullname"],
        }
    ).replace({"old_value": {"-- Unassigned --": ""}, "new_value": {"-- Unassigned --": ""}})
    e = read(clean, ref.EVENTS_CSV)
    e = e.assign(at=instants(e["at"]).astype("int64") // 10**6)
    key = ["ticket_id", "at", "field", "old_value", "new_value", "actor"]
    got = parsed.sort_values(key).reset_index(drop=True)
    want = e[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_audit_report_export(clean: DemoDataSet, audit: pd.DataFrame) -> None:
    path = clean.paths[ref.AUDIT_REPORT_CSV]
    all_quoted_lines(path, ",")
    r = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(r.columns) == (
        "Ticket Audit Log ID", "Creation Date", "Creator", "Full Name", "Action", "Message",
        "Department", "Ticket Mask ID", "Ticket ID",
    )  # fmt: skip
    assert len(r) == len(audit)
    assert (r["Ticket Audit Log ID"] == audit["ticketauditlogid"]).all()
    assert (r["Ticket ID"] == audit["ticketid"]).all()
    mask = xml_tickets(clean).set_index("id")["displayid"]
    assert (r["Ticket Mask ID"].to_numpy() == mask.loc[audit["ticketid"]].to_numpy()).all()
    assert (r["Message"] == audit["actionmsg"]).all()
    assert (r["Department"] == audit["departmenttitle"]).all()
    assert (r["Full Name"] == audit["creatorfullname"]).all()
    creators = {"1": "Staff", "2": "User", "3": "System", "4": "Parser"}
    assert (r["Creator"] == audit["creatortype"].map(creators)).all()
    labelled = audit["actiontype"].isin(LABELS)
    assert (r["Action"][labelled] == audit["actiontype"][labelled].map(LABELS)).all()
    assert r["Creation Date"].map(no_leading_zeros).all()
    instants_utc = pd.to_datetime(audit["dateline"].astype("int64"), unit="s", utc=True)
    for text, at in zip(r["Creation Date"], instants_utc, strict=True):
        assert report_instant(text, at), (text, at)


# --------------------------------------------------------------------------- ticket reports


def test_ticket_report_matches_the_tickets(ds: DemoDataSet) -> None:
    path = ds.paths[ref.TICKET_REPORT_CSV]
    all_quoted_lines(path, ",")
    r = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert tuple(r.columns) == (
        "Ticket ID", "Ticket Mask ID", "Department", "Status", "Priority", "Owner", "Type",
        "Full Name", "Email", "Subject", "Creation Date", "Last Activity", "Creator",
    )  # fmt: skip
    assert "<script>alert(1)</script>" in set(r["Subject"])  # a bad row: escaped nowhere
    t = good(ds, ref.TICKETS_CSV).drop_duplicates("ticket_id", keep=False)
    r = r.set_index("Ticket Mask ID").loc[t["ticket_id"]]
    x = xml_tickets(ds).set_index("displayid").loc[t["ticket_id"]]
    look = lookups(ds)
    assert (r["Ticket ID"] == x["id"]).all()
    assert (r["Department"].to_numpy() == t["department"].to_numpy()).all()
    assert (r["Status"].to_numpy() == t["status"].to_numpy()).all()
    owner = t["owner"].replace({"": "-- Unassigned --"})
    assert (r["Owner"].to_numpy() == owner.to_numpy()).all()
    creator = t["creator"].map({"staff": "Staff", "user": "User"})
    assert (r["Creator"].to_numpy() == creator.to_numpy()).all()
    assert (r["Full Name"].to_numpy() == t["requester_name"].to_numpy()).all()
    assert (r["Subject"].to_numpy() == t["subject"].to_numpy()).all()
    assert (r["Type"] == x["typeid"].astype(int).map(look["type"])).all()
    assert (r["Priority"] == x["priorityid"].astype(int).map(look["priority"])).all()
    for label, column in (("Creation Date", "created_at"), ("Last Activity", "updated_at")):
        assert r[label].map(no_leading_zeros).all(), label
        for text, at in zip(r[label], instants(t[column]), strict=True):
            assert report_instant(text, at), (label, text, at)


def test_report_dates_have_one_and_two_digit_fields(clean: DemoDataSet) -> None:
    r = pd.read_csv(clean.paths[ref.TICKET_REPORT_CSV], dtype=str, keep_default_na=False)
    dates = pd.concat([r["Creation Date"], r["Last Activity"]])
    assert dates.str.match(r"\d/\d/").any() and dates.str.match(r"1[0-2]/\d\d/").any()
    assert dates.str.contains(r" \d:").any() and dates.str.contains(r" 1\d:").any()


def test_excel_compatible_report(ds: DemoDataSet) -> None:
    raw = ds.paths[ref.TICKET_REPORT_EXCEL_CSV].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfsep=;\n")
    all_quoted_lines(ds.paths[ref.TICKET_REPORT_EXCEL_CSV], ";", skip=1)
    text = raw.decode("utf-8-sig").split("\n", 1)[1]
    excel = list(csv.reader(text.splitlines(), delimiter=";"))
    plain = ds.paths[ref.TICKET_REPORT_CSV].read_text(encoding="utf-8").splitlines()
    assert excel == list(csv.reader(plain))
    assert len(excel) - 1 == ds.rows[ref.TICKET_REPORT_EXCEL_CSV] == ds.rows[ref.KAYAKO_XML]


@pytest.mark.parametrize(
    "around",
    [
        dt.datetime(2026, 3, 8, 8, tzinfo=dt.UTC),  # spring forward at 02:00 CST
        dt.datetime(2026, 11, 1, 7, tzinfo=dt.UTC),  # fall back at 02:00 CDT
        dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC),  # a year's last evening
    ],
)
def test_us_date_times_against_zoneinfo(around: dt.datetime) -> None:
    """The generator's report dates are zoneinfo's wall clock, written m/d/yyyy h:mm:ss."""
    lo = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp())
    fmt = Formatter(Timeline(BusinessCalendar.from_policy(load_policy()), lo, lo + 400 * 86_400))
    start = int(around.timestamp())
    instants_s = [start + k * 599 for k in range(-40, 40)]
    got = render(fmt.us_datetime(np.array([*instants_s, int(ref.NA)], dtype=np.int64)))
    want = []
    for t in instants_s:
        w = dt.datetime.fromtimestamp(t, CENTRAL)
        want.append(f"{w.month}/{w.day}/{w.year} {w.hour}:{w.minute:02d}:{w.second:02d}")
    assert got == [*want, ""]
