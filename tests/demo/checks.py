"""Shared checks of demo data sets: reading the files, parsing timestamps, cross-file rules."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from ipchange_core.demo import DemoDataSet
from ipchange_core.demo import reference as ref

ZONE = "America/Chicago"
END = dt.date(2026, 12, 10)  # five months back reaches July: the 2026-11-01 fall-back is inside
REQUESTS = 400
OTHERS = 1200
CSV_FILES = (ref.TICKETS_CSV, ref.EVENTS_CSV, ref.INTAKE_CSV, ref.CHANGES_CSV, ref.KAYAKO_AUDIT_CSV)
TIMESTAMPS = {
    ref.TICKETS_CSV: ("created_at", "updated_at"),
    ref.EVENTS_CSV: ("at",),
    ref.INTAKE_CSV: ("received_at", "requested_change_at"),
    ref.CHANGES_CSV: (
        "confirmed_at",
        "scheduled_start",
        "scheduled_end",
        "completed_at",
        "cancelled_at",
        "fee_accepted_at",
    ),
}
OFFSET_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
NAIVE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
DATA = Path(__file__).resolve().parents[2] / "data"


COLUMNS = {
    ref.TICKETS_CSV: ref.TICKETS_COLUMNS,
    ref.EVENTS_CSV: ref.TICKET_EVENTS_COLUMNS,
    ref.INTAKE_CSV: ref.INTAKE_COLUMNS,
    ref.CHANGES_CSV: ref.CHANGES_COLUMNS,
}


def read(ds: DemoDataSet, name: str) -> pd.DataFrame:
    return pd.read_csv(ds.paths[name], dtype=str, keep_default_na=False)


def good(ds: DemoDataSet, name: str) -> pd.DataFrame:
    """Rows of a file that no deliberately bad row touches."""
    df = read(ds, name)
    bad = [b.row - 1 for b in ds.bad if b.file == name]
    return df.drop(index=bad)


def instants(values: pd.Series) -> pd.Series:
    """Parse canonical timestamps (with offset, or naive Central time) to UTC; others → NaT."""
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    aware = values.str.match(OFFSET_FORMAT.pattern)
    out[aware] = pd.to_datetime(values[aware], format="%Y-%m-%dT%H:%M:%S%z", utc=True)
    naive = values.str.match(NAIVE_FORMAT.pattern)
    local = pd.to_datetime(values[naive], format="%Y-%m-%d %H:%M:%S")
    out[naive] = local.dt.tz_localize(ZONE, ambiguous="raise", nonexistent="raise").dt.tz_convert(
        "UTC"
    )
    return out


def check_consistency(
    t: pd.DataFrame, e: pd.DataFrame, i: pd.DataFrame, c: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    """Timestamps of well-formed rows are ordered as a ticket's life is."""
    t = t.drop_duplicates("ticket_id").set_index("ticket_id")
    created, updated = instants(t["created_at"]), instants(t["updated_at"])
    assert created.notna().all() and updated.notna().all()
    assert (created <= updated).all() and (updated <= as_of).all()

    e = e[e["ticket_id"].isin(t.index)]
    at = instants(e["at"]).to_numpy()
    assert (created.loc[e["ticket_id"]].to_numpy() <= at).all()
    assert (at <= updated.loc[e["ticket_id"]].to_numpy()).all()

    received = instants(i["received_at"])
    assert received.notna().all() and (received <= as_of).all()

    ts = {col: instants(c[col]) for col in TIMESTAMPS[ref.CHANGES_CSV]}
    for col, values in ts.items():
        assert (values.notna() == (c[col] != "")).all(), col
    window = ts["scheduled_start"].notna()
    assert (ts["scheduled_end"][window] > ts["scheduled_start"][window]).all()
    assert (ts["confirmed_at"][window] < ts["scheduled_start"][window]).all()
    done = window & ts["completed_at"].notna()
    assert (ts["completed_at"][done] > ts["scheduled_start"][done]).all()
    signed = ts["fee_accepted_at"].notna() & window
    assert (ts["fee_accepted_at"][signed] <= ts["scheduled_start"][signed]).all()
    for col in ("confirmed_at", "completed_at", "cancelled_at", "fee_accepted_at"):
        assert (ts[col].dropna() <= as_of).all(), col
    assert not (ts["completed_at"].notna() & ts["cancelled_at"].notna()).any()


def check_xml(path: Path, t: pd.DataFrame) -> None:
    """The Kayako XML holds the same tickets, in the same order, as tickets.csv."""
    root = ET.parse(path).getroot()
    assert root.tag == "tickets"
    tickets = list(root)
    t = t.drop_duplicates("ticket_id")
    assert [x.findtext("displayid") for x in tickets] == t["ticket_id"].tolist()
    assert len({x.get("id") for x in tickets}) == len(tickets)
    assert {x.get("flagtype") for x in tickets} == {"0"}
    fields = {c.tag for c in tickets[0]}
    assert {"departmentid", "statusid", "priorityid", "typeid", "userorganization"} <= fields
    assert {"ownerstaffid", "ownerstaffname", "fullname", "email", "subject", "tags"} <= fields
    assert {"creationtime", "lastactivity", "laststaffreply", "lastuserreply"} <= fields
    assert {"nextreplydue", "resolutiondue", "creator"} <= fields
    xml = pd.DataFrame(
        {c: [x.findtext(c) or "" for x in tickets] for c in (
            "departmentid", "statusid", "typeid", "userorganization", "ownerstaffid",
            "ownerstaffname", "fullname", "email", "subject", "creationtime", "lastactivity",
            "creator", "tags",
        )}
    )  # fmt: skip
    t = t.reset_index(drop=True)
    assert (xml["departmentid"].astype(int).map(ref.KAYAKO_DEPARTMENTS) == t["department"]).all()
    assert (xml["statusid"].astype(int).map(ref.KAYAKO_STATUSES) == t["status"]).all()
    assert set(xml["typeid"].astype(int)) <= set(ref.KAYAKO_TYPES)
    assert (xml["userorganization"] == t["account"]).all()
    assert (xml["ownerstaffname"] == t["owner"]).all()
    assert ((xml["ownerstaffid"] == "0") == (t["owner"] == "")).all()
    assert (xml["fullname"] == t["requester_name"]).all()
    assert (xml["email"] == t["requester_email"]).all()
    assert (xml["subject"] == t["subject"]).all()  # the hostile subject round-trips escaped
    assert (xml["tags"] == t["tags"].str.replace(",", " ")).all()
    assert (xml["creator"].map({"1": "staff", "2": "user"}) == t["creator"]).all()
    created = instants(t["created_at"]).astype("int64") // 10**6
    assert (xml["creationtime"].astype("int64") == created).all()
    updated = instants(t["updated_at"]).astype("int64") // 10**6
    assert (xml["lastactivity"].astype("int64") == updated).all()


def check_audit(a: pd.DataFrame, e: pd.DataFrame, xml_path: Path) -> None:
    """The audit log records the same changes as ticket_events, row for row."""
    assert (a["ticketmaskid"] == e["ticket_id"]).all()
    assert (a["dateline"].astype("int64") == instants(e["at"]).astype("int64") // 10**6).all()
    unassigned = {"": ref.KAYAKO_UNASSIGNED}
    assert (a["oldvaluestring"] == e["old_value"].replace(unassigned)).all()
    assert (a["newvaluestring"] == e["new_value"].replace(unassigned)).all()
    assert (a["creatorfullname"] == e["actor"]).all()
    assert set(a["actiontype"]) == {"updated"}
    label = e["field"].map({"department": "Department", "status": "Status", "owner": "Owner"})
    expected = label + " changed from " + a["oldvaluestring"] + " to " + a["newvaluestring"]
    assert (a["actionmsg"] == expected).all()
    dept_moves = a[e["field"] == "department"]
    assert (dept_moves["departmenttitle"] == dept_moves["newvaluestring"]).all()
    xml = ET.parse(xml_path).getroot()
    numeric = {x.findtext("displayid"): x.get("id") for x in xml}
    assert (a["ticketid"] == a["ticketmaskid"].map(numeric)).all()
