"""Tests of the seeded demo data generator (ipchange_core/demo_data.py)."""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from ipchange_core import demo_data as dd

ZONE = "America/Chicago"
END = dt.date(2026, 12, 10)  # five months back reaches July: the 2026-11-01 fall-back is inside
REQUESTS = 400
OTHERS = 1200
CSV_FILES = (dd.TICKETS_CSV, dd.EVENTS_CSV, dd.INTAKE_CSV, dd.CHANGES_CSV, dd.KAYAKO_AUDIT_CSV)
TIMESTAMPS = {
    dd.TICKETS_CSV: ("created_at", "updated_at"),
    dd.EVENTS_CSV: ("at",),
    dd.INTAKE_CSV: ("received_at", "requested_change_at"),
    dd.CHANGES_CSV: (
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


def _read(ds: dd.DemoDataSet, name: str) -> pd.DataFrame:
    return pd.read_csv(ds.paths[name], dtype=str, keep_default_na=False)


def _good(ds: dd.DemoDataSet, name: str) -> pd.DataFrame:
    """Rows of a file that no deliberately bad row touches."""
    df = _read(ds, name)
    bad = [b.row - 1 for b in ds.bad if b.file == name]
    return df.drop(index=bad)


def _instants(values: pd.Series) -> pd.Series:
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


@pytest.fixture(scope="module")
def ds(tmp_path_factory: pytest.TempPathFactory) -> dd.DemoDataSet:
    return dd.generate(
        tmp_path_factory.mktemp("demo"), requests=REQUESTS, other_tickets=OTHERS, seed=11, end=END
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dd.DemoDataSet:
    return dd.generate(
        tmp_path_factory.mktemp("clean"),
        requests=REQUESTS,
        other_tickets=OTHERS,
        seed=11,
        end=END,
        bad_rows=False,
    )


# --- determinism ---------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes(ds: dd.DemoDataSet, tmp_path: Path) -> None:
    again = dd.generate(tmp_path, requests=REQUESTS, other_tickets=OTHERS, seed=11, end=END)
    for name in dd.FILES:
        assert again.paths[name].read_bytes() == ds.paths[name].read_bytes(), name
    assert again.bad == ds.bad


def test_another_seed_gives_other_data(ds: dd.DemoDataSet, tmp_path: Path) -> None:
    other = dd.generate(tmp_path, requests=REQUESTS, other_tickets=OTHERS, seed=12, end=END)
    for name in dd.FILES:
        assert other.paths[name].read_bytes() != ds.paths[name].read_bytes(), name


def test_several_chunks_are_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dd, "_CHUNK", 250)
    calls: list[int] = []
    kwargs = {"requests": 80, "other_tickets": 620, "end": END}
    a = dd.generate(tmp_path / "a", progress=calls.append, **kwargs)
    b = dd.generate(tmp_path / "b", **kwargs)
    assert calls == [250, 250, 200]
    for name in dd.FILES:
        assert a.paths[name].read_bytes() == b.paths[name].read_bytes(), name
    assert _read(a, dd.TICKETS_CSV)["ticket_id"].nunique() == 700
    assert {b.kind for b in a.bad} == set(dd.BAD_ROW_KINDS)


# --- shape ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        (dd.TICKETS_CSV, "ticket_id,subject,department,status,owner,creator,account,"
         "requester_name,requester_email,created_at,updated_at,tags"),
        (dd.EVENTS_CSV, "ticket_id,at,field,old_value,new_value,actor"),
        (dd.INTAKE_CSV, "ticket_id,received_at,channel,requester_type,account,site,reseller,"
         "contact_name,contact_phone,person_of_record,reason,current_ip,new_ip,"
         "requested_change_at,ticket_number_given,transferred_to_queue,agent"),
        (dd.CHANGES_CSV, "ticket_id,confirmed_at,scheduled_start,scheduled_end,completed_at,"
         "cancelled_at,engineer,fee_accepted_by,fee_accepted_at,fee_waived,fee_waiver_reason,"
         "fee_waived_by,after_hours_approved_by"),
        (dd.KAYAKO_AUDIT_CSV, "ticketid,ticketmaskid,dateline,departmenttitle,actiontype,"
         "actionmsg,oldvaluestring,newvaluestring,creatorfullname"),
    ],
)  # fmt: skip
def test_headers_are_exact(ds: dd.DemoDataSet, name: str, columns: str) -> None:
    with ds.paths[name].open(encoding="utf-8", newline="") as fh:
        assert fh.readline() == columns + "\n"


def test_csv_files_parse_the_same_with_csv_and_pandas(ds: dd.DemoDataSet) -> None:
    for name in CSV_FILES:
        with ds.paths[name].open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        df = _read(ds, name)
        assert len(rows) - 1 == len(df) == ds.rows[name], name
        assert all(len(r) == len(rows[0]) for r in rows), name
        assert rows[1:] == df.to_numpy().tolist(), name


def test_row_counts(ds: dd.DemoDataSet, clean: dd.DemoDataSet) -> None:
    tickets = _read(ds, dd.TICKETS_CSV)
    assert tickets["ticket_id"].nunique() == REQUESTS + OTHERS
    pairs = sum(b.kind == "duplicate_id" for b in ds.bad if b.file == dd.TICKETS_CSV) // 2
    assert pairs >= 1
    assert len(tickets) == REQUESTS + OTHERS + pairs
    assert ds.rows[dd.KAYAKO_XML] == REQUESTS + OTHERS
    assert len(_read(clean, dd.TICKETS_CSV)) == REQUESTS + OTHERS
    intake = _read(clean, dd.INTAKE_CSV)
    assert 0.9 * REQUESTS <= len(intake) <= REQUESTS  # never-routed tickets have none
    assert intake["ticket_id"].is_unique
    assert set(intake["ticket_id"]) <= set(tickets["ticket_id"])
    changes = _read(clean, dd.CHANGES_CSV)
    assert set(changes["ticket_id"]) <= set(tickets["ticket_id"])
    assert ds.rows[dd.EVENTS_CSV] == ds.rows[dd.KAYAKO_AUDIT_CSV]


def test_enumerations(clean: dd.DemoDataSet) -> None:
    t = _read(clean, dd.TICKETS_CSV)
    assert set(t["department"]) <= {
        "Implementation",
        "Customer Service",
        "Technical Support",
        "Billing",
    }
    assert set(t["status"]) <= {"New", "Open", "In Progress", "On Hold", "Closed"}
    assert set(t["creator"]) == {"staff", "user"}
    assert t["ticket_id"].str.fullmatch(r"[A-Z]{3}-\d{3}-\d{5}").all()
    e = _read(clean, dd.EVENTS_CSV)
    assert set(e["field"]) == {"department", "status", "owner"}
    i = _read(clean, dd.INTAKE_CSV)
    assert set(i["channel"]) == {"phone", "customer_ticket", "email", "chat"}
    assert set(i["requester_type"]) == {"site", "reseller"}
    assert set(i["reason"]) == {"isp_change", "equipment_change", "wan_lan", "other"}
    assert set(i["ticket_number_given"]) | set(i["transferred_to_queue"]) == {"yes", "no"}
    assert i["account"].str.fullmatch(r"ACCT-\d{5}").all()
    assert i["site"].str.fullmatch(r"(Site \d+ – [A-Za-z. ]+)?").all()
    c = _read(clean, dd.CHANGES_CSV)
    assert set(c["fee_waived"]) == {"yes", "no"}


def test_addresses_are_valid(clean: dd.DemoDataSet) -> None:
    i = _read(clean, dd.INTAKE_CSV)
    ips = pd.concat([i["current_ip"], i["new_ip"]])
    ips = ips[ips != ""]
    parsed = [ipaddress.ip_address(x) for x in ips]
    assert sum(p.version == 6 for p in parsed) >= 1
    assert sum(p.version == 4 for p in parsed) > 0.9 * len(parsed)


# --- realism ----------------------------------------------------------------------------------


def test_short_notice_share_and_requested_kinds(clean: dd.DemoDataSet) -> None:
    i = _read(clean, dd.INTAKE_CSV)
    t = _read(clean, dd.TICKETS_CSV).set_index("ticket_id")
    received = pd.concat(
        [
            _instants(i["received_at"]),
            _instants(t.loc[i["ticket_id"], "created_at"]).set_axis(i.index),
        ],
        axis=1,
    ).min(axis=1)
    asap = i["requested_change_at"] == "ASAP"
    requested = _instants(i["requested_change_at"]).where(~asap, received)
    notice = (requested - received).dt.total_seconds() / 3600
    short = (notice < 48).mean()
    assert 0.10 <= short <= 0.20
    assert asap.any()
    assert (notice < 0).any()  # the ISP already changed the address
    assert (i["requested_change_at"] == "").any()
    assert (notice == 48).any()  # exactly 48.0 h: not short notice


def test_creators_and_routing(clean: dd.DemoDataSet) -> None:
    t = _read(clean, dd.TICKETS_CSV).set_index("ticket_id")
    i = _read(clean, dd.INTAKE_CSV)
    users = t.loc[i["ticket_id"], "creator"] == "user"
    assert 0.2 <= users.mean() <= 0.4
    assert (i.loc[users.to_numpy(), "channel"] == "customer_ticket").all()
    e = _read(clean, dd.EVENTS_CSV)
    moves = e[(e["field"] == "department") & (e["new_value"] == "Implementation")]
    from_cs = moves[moves["old_value"] == "Customer Service"]
    assert len(from_cs) > 0.8 * users.sum()
    at = _instants(from_cs["at"]).dt.tz_convert(ZONE)
    created = _instants(t.loc[from_cs["ticket_id"], "created_at"]).dt.tz_convert(ZONE)
    waited = (at.to_numpy() - created.to_numpy()) / pd.Timedelta(hours=1)
    assert (waited <= 1).mean() > 0.3  # usually within the hour...
    assert (waited > 48).any()  # ...some left over a weekend
    # A few customer tickets never reach Implementation, and have no intake record.
    stuck = t[(t["creator"] == "user") & (t["department"] == "Customer Service")]
    assert stuck["subject"].str.contains("IP", case=False).any()


def test_arrivals_span_dst_and_favour_business_hours(clean: dd.DemoDataSet) -> None:
    t = _read(clean, dd.TICKETS_CSV)
    offsets = t["created_at"].str[-6:]
    assert set(offsets) == {"-05:00", "-06:00"}
    local = _instants(t["created_at"]).dt.tz_convert(ZONE)
    assert local.min().date() >= dt.date(2026, 7, 10)
    assert local.max().date() < END
    weekday = local.dt.day_of_week
    hour = local.dt.hour
    in_hours = (weekday < 5) & (hour >= 9) & (hour < 17)
    assert 0.6 < in_hours.mean() < 0.95
    assert (weekday >= 5).any() and (hour >= 18).any()
    monday = (weekday == 0).mean()
    assert monday > (weekday == 3).mean()


def test_fee_cases_are_present(clean: dd.DemoDataSet) -> None:
    i = _read(clean, dd.INTAKE_CSV).set_index("ticket_id")
    c = _read(clean, dd.CHANGES_CSV)
    c = c[c["ticket_id"].isin(i.index)]  # a few agent tickets have no intake record
    por = i.loc[c["ticket_id"], "person_of_record"].to_numpy()
    signed = c["fee_accepted_by"] != ""

    def norm(s: pd.Series) -> pd.Series:
        return s.str.strip().str.replace(r"\s+", " ", regex=True).str.lower()

    same = norm(c["fee_accepted_by"]) == norm(pd.Series(por, index=c.index))
    assert (signed & same).sum() > (signed & ~same).sum() > 0
    assert (signed & same & (c["fee_accepted_by"] != por)).any()  # other case or spacing
    waived = c["fee_waived"] == "yes"
    assert waived.any()
    assert (c.loc[waived, "fee_waiver_reason"] != "").all()
    assert (c["after_hours_approved_by"] != "").any()
    assert (c["cancelled_at"] != "").any()
    assert (c["completed_at"] != "").mean() > 0.8
    assert ((c["scheduled_start"] == "") & (c["completed_at"] != "")).any()


def test_naive_local_timestamps_appear_only_in_intake_and_changes(clean: dd.DemoDataSet) -> None:
    for name, columns in TIMESTAMPS.items():
        df = _read(clean, name)
        cells = pd.concat([df[c] for c in columns])
        cells = cells[(cells != "") & (cells != "ASAP")]
        naive = cells.str.match(NAIVE_FORMAT.pattern)
        assert (naive | cells.str.match(OFFSET_FORMAT.pattern)).all(), name
        if name in (dd.INTAKE_CSV, dd.CHANGES_CSV):
            assert 0.01 < naive.mean() < 0.1, name
        else:
            assert not naive.any(), name


# --- consistency ------------------------------------------------------------------------------


def _check_consistency(
    t: pd.DataFrame, e: pd.DataFrame, i: pd.DataFrame, c: pd.DataFrame, as_of: pd.Timestamp
) -> None:
    """Timestamps of well-formed rows are ordered as a ticket's life is."""
    t = t.drop_duplicates("ticket_id").set_index("ticket_id")
    created, updated = _instants(t["created_at"]), _instants(t["updated_at"])
    assert created.notna().all() and updated.notna().all()
    assert (created <= updated).all() and (updated <= as_of).all()

    e = e[e["ticket_id"].isin(t.index)]
    at = _instants(e["at"]).to_numpy()
    assert (created.loc[e["ticket_id"]].to_numpy() <= at).all()
    assert (at <= updated.loc[e["ticket_id"]].to_numpy()).all()

    received = _instants(i["received_at"])
    assert received.notna().all() and (received <= as_of).all()

    ts = {col: _instants(c[col]) for col in TIMESTAMPS[dd.CHANGES_CSV]}
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


def test_timestamps_are_consistent_in_good_rows(ds: dd.DemoDataSet) -> None:
    as_of = pd.Timestamp(END.isoformat(), tz=ZONE).tz_convert("UTC")
    _check_consistency(
        _good(ds, dd.TICKETS_CSV),
        _good(ds, dd.EVENTS_CSV),
        _good(ds, dd.INTAKE_CSV),
        _good(ds, dd.CHANGES_CSV),
        as_of,
    )


def test_final_ticket_state_matches_the_events(clean: dd.DemoDataSet) -> None:
    t = _read(clean, dd.TICKETS_CSV).set_index("ticket_id")
    e = _read(clean, dd.EVENTS_CSV)
    e = e.assign(at=_instants(e["at"])).sort_values("at", kind="stable")
    for field, column in (("department", "department"), ("status", "status"), ("owner", "owner")):
        last = e[e["field"] == field].groupby("ticket_id")["new_value"].last()
        assert (t.loc[last.index, column] == last).all(), field
        first = e[e["field"] == field].groupby("ticket_id")["old_value"].first()
        assert (first != e[e["field"] == field].groupby("ticket_id")["new_value"].first()).all()


# --- bad rows ---------------------------------------------------------------------------------


def test_every_bad_row_is_where_the_data_set_says(ds: dd.DemoDataSet) -> None:
    assert {b.kind for b in ds.bad} == set(dd.BAD_ROW_KINDS)
    assert {name: sum(b.file == name for b in ds.bad) for name in dd.FILES} == dict(ds.bad_rows)
    frames = {name: _read(ds, name) for name in CSV_FILES}
    tickets = frames[dd.TICKETS_CSV]
    for b in ds.bad:
        row = frames[b.file].iloc[b.row - 1]
        assert row[b.column] == b.value, b
        assert row.get("ticket_id") == b.ticket_id, b
        assert b.rejected == dd.BAD_ROW_KINDS[b.kind]
        ids = frames[b.file]["ticket_id"]
        if b.kind == "duplicate_id":  # both rows of the pair are listed
            rows = [x.row for x in ds.bad if x.file == b.file and x.ticket_id == b.ticket_id]
            assert sorted(rows) == [k + 1 for k in np.flatnonzero(ids == b.ticket_id)]
            assert len(rows) == 2
            assert frames[b.file].iloc[rows[0] - 1].equals(frames[b.file].iloc[rows[1] - 1])
        if b.kind == "orphan_intake":
            assert b.ticket_id not in set(tickets["ticket_id"])
    by_kind = {b.kind: b for b in ds.bad}
    assert by_kind["invalid_ip"].value == "300.1.2.3"
    assert by_kind["unknown_enum"].value == "fax"
    assert by_kind["unparseable_date"].value == "31/02/2026 9am"
    assert by_kind["dst_gap"].value == "2026-03-08 02:30:00"
    assert by_kind["dst_ambiguous"].value == "2026-11-01 01:30:00"
    assert by_kind["hostile_subject"].value == "<script>alert(1)</script>"
    assert by_kind["formula_account"].value == '=HYPERLINK("x")'
    with pytest.raises(ValueError, match="nonexistent"):
        pd.Timestamp(by_kind["dst_gap"].value).tz_localize(ZONE, nonexistent="raise")
    with pytest.raises(ValueError, match="ambiguous"):
        pd.Timestamp(by_kind["dst_ambiguous"].value).tz_localize(ZONE, ambiguous="raise")
    ends = [b for b in ds.bad if b.kind == "end_before_start"]
    changes = frames[dd.CHANGES_CSV]
    for b in ends:
        row = changes.iloc[b.row - 1]
        assert (
            _instants(pd.Series([row["scheduled_end"]]))[0]
            < _instants(pd.Series([row["scheduled_start"]]))[0]
        )
    formula = [b for b in ds.bad if b.kind == "formula_account"]
    assert {b.file for b in formula} == {dd.TICKETS_CSV, dd.INTAKE_CSV}
    assert ds.rejected_rows(dd.INTAKE_CSV) == sum(
        b.rejected for b in ds.bad if b.file == dd.INTAKE_CSV
    )


def test_no_bad_rows_when_not_asked(clean: dd.DemoDataSet) -> None:
    assert clean.bad == ()
    assert set(clean.bad_rows.values()) == {0}
    text = "".join(clean.paths[name].read_text(encoding="utf-8") for name in CSV_FILES)
    for marker in ("300.1.2.3", ",fax,", "31/02/", "<script>", "HYPERLINK"):
        assert marker not in text
    for name in (dd.TICKETS_CSV, dd.INTAKE_CSV, dd.CHANGES_CSV):
        assert _read(clean, name)["ticket_id"].is_unique, name


# --- Kayako exports ---------------------------------------------------------------------------


def _check_xml(path: Path, t: pd.DataFrame) -> None:
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
    assert (xml["departmentid"].astype(int).map(dd.KAYAKO_DEPARTMENTS) == t["department"]).all()
    assert (xml["statusid"].astype(int).map(dd.KAYAKO_STATUSES) == t["status"]).all()
    assert set(xml["typeid"].astype(int)) <= set(dd.KAYAKO_TYPES)
    assert (xml["userorganization"] == t["account"]).all()
    assert (xml["ownerstaffname"] == t["owner"]).all()
    assert ((xml["ownerstaffid"] == "0") == (t["owner"] == "")).all()
    assert (xml["fullname"] == t["requester_name"]).all()
    assert (xml["email"] == t["requester_email"]).all()
    assert (xml["subject"] == t["subject"]).all()  # the hostile subject round-trips escaped
    assert (xml["tags"] == t["tags"].str.replace(",", " ")).all()
    assert (xml["creator"].map({"1": "staff", "2": "user"}) == t["creator"]).all()
    created = _instants(t["created_at"]).astype("int64") // 10**6
    assert (xml["creationtime"].astype("int64") == created).all()
    updated = _instants(t["updated_at"]).astype("int64") // 10**6
    assert (xml["lastactivity"].astype("int64") == updated).all()


def test_xml_matches_tickets_csv(ds: dd.DemoDataSet) -> None:
    _check_xml(ds.paths[dd.KAYAKO_XML], _read(ds, dd.TICKETS_CSV))
    raw = ds.paths[dd.KAYAKO_XML].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


def _check_audit(a: pd.DataFrame, e: pd.DataFrame, xml_path: Path) -> None:
    """The audit log records the same changes as ticket_events, row for row."""
    assert (a["ticketmaskid"] == e["ticket_id"]).all()
    assert (a["dateline"].astype("int64") == _instants(e["at"]).astype("int64") // 10**6).all()
    unassigned = {"": dd.KAYAKO_UNASSIGNED}
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


def test_audit_log_mirrors_the_events(clean: dd.DemoDataSet) -> None:
    _check_audit(
        _read(clean, dd.KAYAKO_AUDIT_CSV), _read(clean, dd.EVENTS_CSV), clean.paths[dd.KAYAKO_XML]
    )


def test_kayako_lookups() -> None:
    assert dict(dd.KAYAKO_DEPARTMENTS) == {
        1: "General",
        2: "Customer Service",
        3: "Implementation",
        4: "Technical Support",
        5: "Billing",
    }
    assert dict(dd.KAYAKO_STATUSES) == {
        1: "New",
        2: "Open",
        3: "In Progress",
        4: "On Hold",
        5: "Closed",
    }
    assert dict(dd.KAYAKO_TYPES) == {1: "Issue", 2: "Task", 3: "IP Change"}


# --- arguments --------------------------------------------------------------------------------


def test_empty_and_invalid_arguments(tmp_path: Path) -> None:
    empty = dd.generate(tmp_path, requests=0, other_tickets=0, end=END)
    assert set(empty.rows.values()) == {0}
    assert ET.parse(empty.paths[dd.KAYAKO_XML]).getroot().tag == "tickets"
    with pytest.raises(ValueError, match="months"):
        dd.generate(tmp_path, months=0)
    with pytest.raises(ValueError, match=">= 0"):
        dd.generate(tmp_path, requests=-1)


def test_default_end_is_today_in_chicago(tmp_path: Path) -> None:
    before = dt.datetime.now(ZoneInfo(ZONE)).date()
    got = dd.generate(tmp_path, requests=5, other_tickets=5, months=1, bad_rows=False)
    assert got.end in {before, before + dt.timedelta(days=1)}
    assert got.start == dd._months_before(got.end, 1)


@pytest.mark.parametrize(
    ("end", "months", "start"),
    [
        (dt.date(2026, 12, 10), 5, dt.date(2026, 7, 10)),
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2026, 1, 15), 2, dt.date(2025, 11, 15)),
    ],
)
def test_months_before(end: dt.date, months: int, start: dt.date) -> None:
    assert dd._months_before(end, months) == start


# --- data/templates and data/sample -----------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLE_AS_OF = pd.Timestamp("2026-11-14T00:00:00-06:00").tz_convert("UTC")
COLUMNS = {
    dd.TICKETS_CSV: dd.TICKETS_COLUMNS,
    dd.EVENTS_CSV: dd.TICKET_EVENTS_COLUMNS,
    dd.INTAKE_CSV: dd.INTAKE_COLUMNS,
    dd.CHANGES_CSV: dd.CHANGES_COLUMNS,
}
# Ticket → (notice hours, fee status) as documented in data/README.md (SPEC 2.1 by hand).
SAMPLE_FEES = {
    "KXP-512-48213": (72.8, "not_applicable"),
    "ABQ-221-50118": (20.97, "billable"),
    "CHD-330-51207": (0.0, "billable"),
    "DKR-418-52110": (21.67, "pending_sign_off"),
    "ELM-509-53004": (5.92, "pending_sign_off"),
    "MNP-330-59120": (48.75, "not_applicable"),
    "FNT-611-53870": (5.2, "waived"),
    "GPW-702-54411": (42.5, "not_applicable"),
    "HQS-815-55002": (4.75, "not_applicable"),
    "JTC-907-56114": (64.5, "not_applicable"),
    "KVB-114-57230": (9.0, "billable"),
    "LXR-226-58019": (22.83, "billable"),
    "NRT-441-60002": (None, "needs_review"),
    "PQA-552-61234": (0.0, "awaiting_change"),
}


def _sample(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / "sample" / name, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_templates_are_the_header_only(name: str) -> None:
    text = (DATA / "templates" / name).read_text(encoding="utf-8")
    assert text == ",".join(COLUMNS[name]) + "\n"


def test_sample_files_agree_with_each_other() -> None:
    for name, columns in COLUMNS.items():
        assert tuple(_sample(name).columns) == columns, name
    t, e = _sample(dd.TICKETS_CSV), _sample(dd.EVENTS_CSV)
    i, c = _sample(dd.INTAKE_CSV), _sample(dd.CHANGES_CSV)
    for df in (t, i, c):
        assert df["ticket_id"].is_unique
    assert set(i["ticket_id"]) | set(c["ticket_id"]) <= set(t["ticket_id"])
    _check_consistency(t, e, i, c, SAMPLE_AS_OF)
    _check_xml(DATA / "sample" / dd.KAYAKO_XML, t)
    _check_audit(_sample(dd.KAYAKO_AUDIT_CSV), e, DATA / "sample" / dd.KAYAKO_XML)
    # The final state of each ticket is what its events lead to.
    e = e.assign(at=_instants(e["at"])).sort_values("at", kind="stable")
    for field in ("department", "status", "owner"):
        last = e[e["field"] == field].groupby("ticket_id")["new_value"].last()
        assert (t.set_index("ticket_id").loc[last.index, field] == last).all(), field


def test_sample_notice_and_fee_status_are_as_documented() -> None:
    t = _sample(dd.TICKETS_CSV).set_index("ticket_id")
    i = _sample(dd.INTAKE_CSV).set_index("ticket_id")
    c = _sample(dd.CHANGES_CSV).set_index("ticket_id")
    assert set(i.index) == set(SAMPLE_FEES)
    threshold = pd.Timedelta(hours=48)

    def norm(name: str) -> str:
        return " ".join(name.split()).lower()

    got = {}
    for tid, row in i.iterrows():
        ch = c.loc[tid]
        received = min(_instants(pd.Series([row["received_at"], t.loc[tid, "created_at"]])))
        requested = (
            received
            if row["requested_change_at"] == "ASAP"
            else _instants(pd.Series([row["requested_change_at"]]))[0]
        )
        if pd.notna(requested):
            requested = max(requested, received)  # requested before received → received
        notice = None if pd.isna(requested) else (requested - received) / pd.Timedelta(hours=1)
        start = _instants(pd.Series([ch["scheduled_start"] or ch["completed_at"]]))[0]
        signed = ch["fee_accepted_by"] != "" and norm(ch["fee_accepted_by"]) == norm(
            row["person_of_record"]
        )
        if ch["cancelled_at"]:
            status = "not_applicable"
        elif notice is None:
            status = "needs_review"
        elif notice >= 48 or start >= received + threshold:
            status = "not_applicable"
        elif ch["fee_waived"] == "yes" and ch["fee_waiver_reason"] and ch["fee_waived_by"]:
            status = "waived"
        elif signed:
            status = "billable" if ch["completed_at"] else "awaiting_change"
        else:
            status = "pending_sign_off"
        got[tid] = (None if notice is None else round(notice, 2), status)
    assert got == SAMPLE_FEES
    assert sum(s == "billable" for _, s in got.values()) * 250 == 1000
