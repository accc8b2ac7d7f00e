"""The 48-hour notice rule and fee status (SPEC 2.1), table-style."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ipchange_core import evaluate, load_policy
from ipchange_core.fees import signed_by_person_of_record
from ipchange_core.textops import normalise_name
from tests.domain import at, expedite, frames, request

AS_OF = at("2026-12-31 12:00")
FEE = 25000


def judge(*requests, policy=None, **extra):
    return evaluate(frames(*requests, **extra), policy=policy, as_of=AS_OF).set_index("ticket_id")


# id, request(...) keyword arguments, fee_status, short_notice, notice_hours, fee_cents, flags
CASES = [
    ("standard-96h", dict(requested="2026-11-20 10:00"), "not_applicable", False, 96.0, 0, ""),
    (
        "exactly-48h-not-short",
        dict(requested="2026-11-18 10:00", change=expedite()),
        "not_applicable",
        False,
        48.0,
        0,
        "",
    ),
    (
        "47h59m-short-billable",
        dict(requested="2026-11-18 09:59", change=expedite()),
        "billable",
        True,
        47 + 59 / 60,
        FEE,
        "",
    ),
    (
        "48h-minus-1us-short",
        dict(requested="2026-11-18 09:59:59.999999", change=expedite()),
        "billable",
        True,
        48 - 1e-6 / 3600,
        FEE,
        "",
    ),
    # 2026-03-08: clocks spring forward. Wall clock says 48 h, real time is 47 h: short notice.
    (
        "dst-spring-wall-48h-is-47h",
        dict(
            received="2026-03-06 10:00",
            requested="2026-03-08 10:00",
            change=expedite(start="2026-03-06 14:00"),
        ),
        "billable",
        True,
        47.0,
        FEE,
        "",
    ),
    # 2026-11-01: clocks fall back. Wall clock says 48 h, real time is 49 h: not short.
    (
        "dst-fall-wall-48h-is-49h",
        dict(
            received="2026-10-30 10:00",
            requested="2026-11-01 10:00",
            change=expedite(start="2026-10-30 14:00"),
        ),
        "not_applicable",
        False,
        49.0,
        0,
        "",
    ),
    # Wall clock says 47 h across the fall-back, real time is exactly 48.0 h: not short.
    (
        "dst-fall-wall-47h-is-48h",
        dict(
            received="2026-10-30 11:00",
            requested="2026-11-01 10:00",
            change=expedite(start="2026-10-30 14:00"),
        ),
        "not_applicable",
        False,
        48.0,
        0,
        "",
    ),
    ("asap-billable", dict(requested="ASAP", change=expedite()), "billable", True, 0.0, FEE, ""),
    (
        "blank-needs-review",
        dict(requested=None, change=expedite()),
        "needs_review",
        None,
        None,
        None,
        "",
    ),
    (
        "requested-before-received",
        dict(requested="2026-11-15 08:00", change=expedite()),
        "billable",
        True,
        0.0,
        FEE,
        "requested_before_received",
    ),
    (
        "signed-by-other-done",
        dict(requested="ASAP", change=expedite(signed="Bob Smith")),
        "pending_sign_off",
        True,
        0.0,
        None,
        "sign_off_by_other;expedited_without_sign_off",
    ),
    (
        "signed-by-other-not-done",
        dict(requested="ASAP", change=expedite(signed="Bob Smith", done=False)),
        "pending_sign_off",
        True,
        0.0,
        None,
        "sign_off_by_other",
    ),
    (
        "name-case-and-spaces",
        dict(requested="ASAP", change=expedite(signed="  jane   ROE ")),
        "billable",
        True,
        0.0,
        FEE,
        "",
    ),
    ("unsigned-no-change-record", dict(requested="ASAP"), "pending_sign_off", True, 0.0, None, ""),
    (
        "cancelled",
        dict(
            requested="ASAP",
            change=expedite(signed=None, done=False, cancelled_at="2026-11-16 12:00"),
        ),
        "not_applicable",
        True,
        0.0,
        0,
        "",
    ),
    (
        "cancelled-after-completion-still-billable",
        dict(requested="ASAP", change=expedite(cancelled_at="2026-11-18 12:00")),
        "billable",
        True,
        0.0,
        FEE,
        "",
    ),
    (
        "waived",
        dict(
            requested="ASAP",
            change=expedite(
                signed=None,
                fee_waived=True,
                fee_waiver_reason="ISP outage",
                fee_waived_by="Manager Mo",
            ),
        ),
        "waived",
        True,
        0.0,
        0,
        "",
    ),
    (
        "waiver-without-approver",
        dict(
            requested="ASAP",
            change=expedite(signed=None, fee_waived=True, fee_waiver_reason="ISP outage"),
        ),
        "pending_sign_off",
        True,
        0.0,
        None,
        "incomplete_waiver;expedited_without_sign_off",
    ),
    (
        "standard-slot-taken",
        dict(requested="ASAP", change=expedite(signed=None, start="2026-11-18 14:00")),
        "not_applicable",
        True,
        0.0,
        0,
        "",
    ),
    (
        "starts-exactly-at-deadline",
        dict(requested="ASAP", change=expedite(signed=None, start="2026-11-18 10:00")),
        "not_applicable",
        True,
        0.0,
        0,
        "",
    ),
    (
        "starts-1us-before-deadline",
        dict(requested="ASAP", change=expedite(start="2026-11-18 09:59:59.999999")),
        "billable",
        True,
        0.0,
        FEE,
        "",
    ),
    (
        "accepted-not-done",
        dict(requested="ASAP", change=expedite(done=False)),
        "awaiting_change",
        True,
        0.0,
        None,
        "",
    ),
    (
        "no-person-of-record",
        dict(requested="ASAP", intake={"person_of_record": ""}, change=expedite()),
        "needs_review",
        True,
        0.0,
        None,
        "person_of_record_missing",
    ),
]


@pytest.mark.parametrize(
    ("case", "kwargs", "status", "short", "notice", "cents", "flags"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_fee_rules(case, kwargs, status, short, notice, cents, flags):
    row = judge(request(**kwargs)).iloc[0]
    assert row["fee_status"] == status
    if short is None:
        assert pd.isna(row["short_notice"])
    else:
        assert bool(row["short_notice"]) is short
    if notice is None:
        assert math.isnan(row["notice_hours"])
    else:
        assert row["notice_hours"] == pytest.approx(notice, abs=1e-9)
    if cents is None:
        assert pd.isna(row["fee_cents"])
    else:
        assert row["fee_cents"] == cents
    for flag in filter(None, flags.split(";")):
        assert flag in row["flags"].split(";")
    assert row["policy_version"] == "2014-08-05"


def test_customer_ticket_without_intake_needs_review():
    out = judge(
        request(has_intake=False, ticket={"creator": "user", "department": "Customer Service"})
    )
    row = out.iloc[0]
    assert row["fee_status"] == "needs_review"
    assert "no_intake_record" in row["flags"]


def test_received_at_is_earliest_of_intake_and_ticket():
    out = judge(
        request(
            received="2026-11-16 10:00", created="2026-11-13 16:30", requested="2026-11-16 12:00"
        )
    )
    row = out.iloc[0]
    assert row["received_at"] == at("2026-11-13 16:30")
    # notice counts from when the company first learned of it: Fri 16:30 → Mon 12:00 = 67.5 h
    assert row["notice_hours"] == pytest.approx(67.5)


@pytest.fixture
def two_versions(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "versions:\n"
        "  - version: '2026-11-18'\n"
        "    effective_from: 2026-11-18\n"
        "    notice: {threshold_hours: 24}\n"
        "    fee: {amount_cents: 30000}\n"
    )
    return load_policy(path)


def test_policy_version_change_between_two_requests(two_versions):
    old = request(
        "KXP-1",
        received="2026-11-17 10:00",
        requested="2026-11-18 16:00",
        change=expedite(start="2026-11-18 15:00"),
    )
    new = request(
        "KXP-2",
        received="2026-11-18 10:00",
        requested="2026-11-19 16:00",
        change=expedite(start="2026-11-19 15:00"),
    )
    out = judge(old, new, policy=two_versions)
    # 30 h of notice: short under the 48 h version, not under the 24 h one
    assert out.loc["KXP-1", "policy_version"] == "2014-08-05"
    assert out.loc["KXP-1", "fee_status"] == "billable"
    assert out.loc["KXP-1", "fee_cents"] == FEE
    assert out.loc["KXP-2", "policy_version"] == "2026-11-18"
    assert out.loc["KXP-2", "fee_status"] == "not_applicable"


def test_new_fee_applies_from_effective_date(two_versions):
    out = judge(
        request(
            "KXP-3",
            received="2026-11-18 00:00",
            requested="ASAP",
            change=expedite(start="2026-11-18 10:00"),
        ),
        policy=two_versions,
    )
    assert out.loc["KXP-3", "fee_cents"] == 30000
    out = judge(
        request(
            "KXP-4",
            received="2026-11-17 23:59:59.999999",
            requested="ASAP",
            change=expedite(start="2026-11-18 10:00"),
        ),
        policy=two_versions,
    )
    assert out.loc["KXP-4", "fee_cents"] == FEE


def test_business_hour_notice_policy(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "versions:\n  - version: biz\n    effective_from: 2014-08-05\n    notice: {measure: business, threshold_hours: 16}\n"
    )
    policy = load_policy(path)
    # Fri 16:00 → Mon 17:00 is 73 calendar hours but 9 business hours: short under this policy
    out = judge(
        request(
            received="2026-11-13 16:00",
            requested="2026-11-16 17:00",
            change=expedite(start="2026-11-16 10:00"),
        ),
        policy=policy,
    )
    row = out.iloc[0]
    assert row["notice_hours"] == pytest.approx(9.0)
    assert row["fee_status"] == "billable"
    # the expedite deadline is 16 business hours after receipt: Tue 16:00
    assert row["expedite_deadline"] == at("2026-11-17 16:00")


@pytest.mark.parametrize(
    ("signer", "person", "match"),
    [
        ("Jane Roe", "Jane Roe", True),
        (" jane  roe", "JANE ROE ", True),
        ("Jane\tRoe", "Jane Roe", True),
        ("Jane Roe", "Jane Rowe", False),
        ("", "", False),
        ("Jane Roe", "", False),
        ("JaneRoe", "Jane Roe", False),
    ],
)
def test_person_of_record_match(signer, person, match):
    result = signed_by_person_of_record(
        pd.Series([signer], dtype="str"), pd.Series([person], dtype="str")
    )
    assert bool(result.iloc[0]) is match


def test_normalise_name_keeps_unicode():
    assert normalise_name(pd.Series(["  ÉLODIE   Dupré "], dtype="str")).iloc[0] == "élodie dupré"
