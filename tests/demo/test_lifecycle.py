"""Tests of the tickets' lives: notice, routing, arrivals, fees, ordering (demo/lifecycle.py)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from ipchange_core.demo import DemoDataSet
from ipchange_core.demo import reference as ref
from tests.demo.checks import END, ZONE, check_consistency, good, instants, read


def test_short_notice_share_and_requested_kinds(clean: DemoDataSet) -> None:
    i = read(clean, ref.INTAKE_CSV)
    t = read(clean, ref.TICKETS_CSV).set_index("ticket_id")
    received = pd.concat(
        [
            instants(i["received_at"]),
            instants(t.loc[i["ticket_id"], "created_at"]).set_axis(i.index),
        ],
        axis=1,
    ).min(axis=1)
    asap = i["requested_change_at"] == "ASAP"
    requested = instants(i["requested_change_at"]).where(~asap, received)
    notice = (requested - received).dt.total_seconds() / 3600
    short = (notice < 48).mean()
    assert 0.10 <= short <= 0.20
    assert asap.any()
    assert (notice < 0).any()  # the ISP already changed the address
    assert (i["requested_change_at"] == "").any()
    assert (notice == 48).any()  # exactly 48.0 h: not short notice


def test_creators_and_routing(clean: DemoDataSet) -> None:
    t = read(clean, ref.TICKETS_CSV).set_index("ticket_id")
    i = read(clean, ref.INTAKE_CSV)
    users = t.loc[i["ticket_id"], "creator"] == "user"
    assert 0.2 <= users.mean() <= 0.4
    assert (i.loc[users.to_numpy(), "channel"] == "customer_ticket").all()
    e = read(clean, ref.EVENTS_CSV)
    moves = e[(e["field"] == "department") & (e["new_value"] == "Implementation")]
    from_cs = moves[moves["old_value"] == "Customer Service"]
    assert len(from_cs) > 0.8 * users.sum()
    at = instants(from_cs["at"]).dt.tz_convert(ZONE)
    created = instants(t.loc[from_cs["ticket_id"], "created_at"]).dt.tz_convert(ZONE)
    waited = (at.to_numpy() - created.to_numpy()) / pd.Timedelta(hours=1)
    assert (waited <= 1).mean() > 0.3  # usually within the hour...
    assert (waited > 48).any()  # ...some left over a weekend
    # A few customer tickets never reach Implementation, and have no intake record.
    stuck = t[(t["creator"] == "user") & (t["department"] == "Customer Service")]
    assert stuck["subject"].str.contains("IP", case=False).any()


def test_arrivals_span_dst_and_favour_business_hours(clean: DemoDataSet) -> None:
    t = read(clean, ref.TICKETS_CSV)
    offsets = t["created_at"].str[-6:]
    assert set(offsets) == {"-05:00", "-06:00"}
    local = instants(t["created_at"]).dt.tz_convert(ZONE)
    assert local.min().date() >= dt.date(2026, 7, 10)
    assert local.max().date() < END
    weekday = local.dt.day_of_week
    hour = local.dt.hour
    in_hours = (weekday < 5) & (hour >= 9) & (hour < 17)
    assert 0.6 < in_hours.mean() < 0.95
    assert (weekday >= 5).any() and (hour >= 18).any()
    monday = (weekday == 0).mean()
    assert monday > (weekday == 3).mean()


def test_fee_cases_are_present(clean: DemoDataSet) -> None:
    i = read(clean, ref.INTAKE_CSV).set_index("ticket_id")
    c = read(clean, ref.CHANGES_CSV)
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


def test_timestamps_are_consistent_in_good_rows(ds: DemoDataSet) -> None:
    as_of = pd.Timestamp(END.isoformat(), tz=ZONE).tz_convert("UTC")
    check_consistency(
        good(ds, ref.TICKETS_CSV),
        good(ds, ref.EVENTS_CSV),
        good(ds, ref.INTAKE_CSV),
        good(ds, ref.CHANGES_CSV),
        as_of,
    )


def test_final_ticket_state_matches_the_events(clean: DemoDataSet) -> None:
    t = read(clean, ref.TICKETS_CSV).set_index("ticket_id")
    e = read(clean, ref.EVENTS_CSV)
    e = e.assign(at=instants(e["at"])).sort_values("at", kind="stable")
    for field, column in (("department", "department"), ("status", "status"), ("owner", "owner")):
        last = e[e["field"] == field].groupby("ticket_id")["new_value"].last()
        assert (t.loc[last.index, column] == last).all(), field
        first = e[e["field"] == field].groupby("ticket_id")["old_value"].first()
        assert (first != e[e["field"] == field].groupby("ticket_id")["new_value"].first()).all()
