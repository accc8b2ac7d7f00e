"""Tests of the hand-made sample in data/sample: the files agree and the fees are as documented."""

from __future__ import annotations

import pandas as pd

from ipchange_core.demo import reference as ref
from tests.demo.checks import COLUMNS, DATA, check_audit, check_consistency, check_xml, instants

SAMPLE_AS_OF = pd.Timestamp("2026-11-14T00:00:00-06:00").tz_convert("UTC")


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


def sample(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / "sample" / name, dtype=str, keep_default_na=False)


def test_sample_files_agree_with_each_other() -> None:
    for name, columns in COLUMNS.items():
        assert tuple(sample(name).columns) == columns, name
    t, e = sample(ref.TICKETS_CSV), sample(ref.EVENTS_CSV)
    i, c = sample(ref.INTAKE_CSV), sample(ref.CHANGES_CSV)
    for df in (t, i, c):
        assert df["ticket_id"].is_unique
    assert set(i["ticket_id"]) | set(c["ticket_id"]) <= set(t["ticket_id"])
    check_consistency(t, e, i, c, SAMPLE_AS_OF)
    check_xml(DATA / "sample" / ref.KAYAKO_XML, t)
    check_audit(sample(ref.KAYAKO_AUDIT_CSV), e, DATA / "sample" / ref.KAYAKO_XML)
    # The final state of each ticket is what its events lead to.
    e = e.assign(at=instants(e["at"])).sort_values("at", kind="stable")
    for field in ("department", "status", "owner"):
        last = e[e["field"] == field].groupby("ticket_id")["new_value"].last()
        assert (t.set_index("ticket_id").loc[last.index, field] == last).all(), field


def test_sample_notice_and_fee_status_are_as_documented() -> None:
    t = sample(ref.TICKETS_CSV).set_index("ticket_id")
    i = sample(ref.INTAKE_CSV).set_index("ticket_id")
    c = sample(ref.CHANGES_CSV).set_index("ticket_id")
    assert set(i.index) == set(SAMPLE_FEES)
    threshold = pd.Timedelta(hours=48)

    def norm(name: str) -> str:
        return " ".join(name.split()).lower()

    got = {}
    for tid, row in i.iterrows():
        ch = c.loc[tid]
        received = min(instants(pd.Series([row["received_at"], t.loc[tid, "created_at"]])))
        requested = (
            received
            if row["requested_change_at"] == "ASAP"
            else instants(pd.Series([row["requested_change_at"]]))[0]
        )
        if pd.notna(requested):
            requested = max(requested, received)  # requested before received → received
        notice = None if pd.isna(requested) else (requested - received) / pd.Timedelta(hours=1)
        start = instants(pd.Series([ch["scheduled_start"] or ch["completed_at"]]))[0]
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
