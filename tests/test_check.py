"""The morning check (SPEC 5.5): every problem of an open request, as of an instant."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core.check import (
    COLUMNS,
    PROBLEMS,
    CheckError,
    as_of,
    counts,
    find_problems,
    parse_at,
    run_check,
    without_closed,
)
from ipchange_core.evaluation import evaluate
from ipchange_core.policy import load_policy
from tests.domain import CT, at, expedite, frames, request

POLICY = load_policy()

CUSTOMER = {"department": "Customer Service", "creator": "user"}
STANDARD = {"received": "2026-11-16 10:00", "requested": "2026-11-18 10:00"}  # 48 h: not short
CONFIRMED = {"confirmed_at": "2026-11-16 10:30"}


def problems_of(req: dict, when: str) -> dict[str, float]:
    """{problem: business_hours_left} of one request checked at a Central time."""
    found = run_check(frames(req), POLICY, at(when))
    assert found["ticket_id"].is_unique or len(found) > 1
    return dict(zip(found["problem"], found["business_hours_left"], strict=True))


# (case, request, --at, expected {problem: hours left}); Monday 16 Nov 2026, Central time.
CASES = [
    # not_routed: routing target 1 business hour from created_at
    (
        "customer-ticket-half-an-hour-in",
        request(**STANDARD, ticket=CUSTOMER, change=CONFIRMED),
        "2026-11-16 10:30",
        {"not_routed": 0.5},
    ),
    (
        "customer-ticket-exactly-at-target",
        request(**STANDARD, ticket=CUSTOMER, change=CONFIRMED),
        "2026-11-16 11:00",
        {"not_routed": 0.0},
    ),
    (
        "customer-ticket-at-17-00-is-overdue-by-the-day",
        request(**STANDARD, ticket=CUSTOMER, change=CONFIRMED),
        "2026-11-16 17:00",
        {"not_routed": -6.0},
    ),
    (
        "customer-ticket-overnight-adds-nothing",
        request(**STANDARD, ticket=CUSTOMER, change=CONFIRMED),
        "2026-11-17 09:00",
        {"not_routed": -6.0},
    ),
    (
        "routed-ticket-has-no-problem",
        request(
            **STANDARD,
            ticket=CUSTOMER,
            change=CONFIRMED,
            events=[
                _ev := {
                    "at": "2026-11-16 10:20",
                    "field": "department",
                    "old_value": "Customer Service",
                    "new_value": "Implementation",
                }
            ],
        ),
        "2026-11-16 11:00",
        {},
    ),
    (
        "routing-after-at-is-ignored",
        request(
            **STANDARD,
            ticket={**CUSTOMER, "department": "Implementation"},
            change=CONFIRMED,
            events=[{**_ev, "at": "2026-11-16 12:00"}],
        ),
        "2026-11-16 11:00",
        {"not_routed": 0.0},
    ),
    # not_confirmed: confirmation target 8 business hours from received_at
    ("unconfirmed-at-17-00", request(**STANDARD), "2026-11-16 17:00", {"not_confirmed": 1.0}),
    ("unconfirmed-next-09-00", request(**STANDARD), "2026-11-17 09:00", {"not_confirmed": 1.0}),
    (
        "unconfirmed-exactly-at-target",
        request(**STANDARD),
        "2026-11-17 10:00",
        {"not_confirmed": 0.0, "due_unscheduled": 8.0},
    ),
    ("confirmed", request(**STANDARD, change=CONFIRMED), "2026-11-16 17:00", {}),
    (
        "confirmation-after-at-is-ignored",
        request(**STANDARD, change={"confirmed_at": "2026-11-17 12:00"}),
        "2026-11-17 10:00",
        {"not_confirmed": 0.0, "due_unscheduled": 8.0},
    ),
    # due_unscheduled: due_at (Wed 10:00) within the look-ahead of 8 business hours, or past
    ("due-just-beyond-look-ahead", request(**STANDARD, change=CONFIRMED), "2026-11-17 09:59", {}),
    (
        "due-exactly-at-look-ahead",
        request(**STANDARD, change=CONFIRMED),
        "2026-11-17 10:00",
        {"due_unscheduled": 8.0},
    ),
    (
        "due-passed",
        request(**STANDARD, change=CONFIRMED),
        "2026-11-18 11:30",
        {"due_unscheduled": -1.5},
    ),
    (
        "due-but-scheduled",
        request(
            **STANDARD,
            change={
                **CONFIRMED,
                "scheduled_start": "2026-11-18 13:00",
                "scheduled_end": "2026-11-18 14:00",
            },
        ),
        "2026-11-18 11:30",
        {},
    ),
    (
        "due-across-fall-back-dst",  # Fri 10:00 CDT to Mon 10:00 CST: 7 + 1 business hours
        request(
            received="2026-10-28 10:00",
            requested="2026-11-02 10:00",
            change={"confirmed_at": "2026-10-28 11:00"},
        ),
        "2026-10-30 10:00",
        {"due_unscheduled": 8.0},
    ),
    # sign_off_missing: short notice, expedited, no valid sign-off; hours to scheduled_start
    (
        "unsigned-expedite",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(signed=None, done=False, start="2026-11-17 10:00"),
        ),
        "2026-11-16 14:00",
        {"sign_off_missing": 4.0},
    ),
    (
        "signed-by-someone-else",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(signed="Pat Doe", done=False, start="2026-11-17 10:00"),
        ),
        "2026-11-16 14:00",
        {"sign_off_missing": 4.0},
    ),
    (
        "signed-by-person-of-record-spaces-and-case-ignored",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(signed="  jane   ROE ", done=False, start="2026-11-17 10:00"),
        ),
        "2026-11-16 14:00",
        {},
    ),
    (
        "sign-off-after-at-is-ignored",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(
                done=False, start="2026-11-17 10:00", fee_accepted_at="2026-11-16 15:00"
            ),
        ),
        "2026-11-16 14:00",
        {"sign_off_missing": 4.0},
    ),
    (
        "unsigned-unscheduled-has-no-hours",
        request(received="2026-11-16 10:00", requested="2026-11-16 15:00", change=CONFIRMED),
        "2026-11-16 14:00",
        {"sign_off_missing": float("nan")},  # due no earlier than received + 48 h
    ),
    (
        "waived",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(
                signed=None,
                done=False,
                start="2026-11-17 10:00",
                fee_waived=True,
                fee_waiver_reason="goodwill",
                fee_waived_by="Manager",
            ),
        ),
        "2026-11-16 14:00",
        {},
    ),
    # after_hours_unapproved: a window outside business hours without approval
    (
        "window-ends-after-17-00",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(done=False, start="2026-11-17 16:30"),
        ),
        "2026-11-16 14:00",
        {"after_hours_unapproved": 10.5},
    ),
    (
        "window-starting-at-17-00",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(done=False, start="2026-11-17 17:00"),
        ),
        "2026-11-16 14:00",
        {"after_hours_unapproved": 11.0},
    ),
    (
        "window-ending-at-17-00-is-inside",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(done=False, start="2026-11-17 16:00"),
        ),
        "2026-11-16 14:00",
        {},
    ),
    (
        "after-hours-approved",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(
                done=False, start="2026-11-17 17:00", after_hours_approved_by="Night Lead"
            ),
        ),
        "2026-11-16 14:00",
        {},
    ),
    # intake_incomplete: cloud-info fields missing; hours to due_at
    (
        "intake-missing-phone",
        request(**STANDARD, change=CONFIRMED, intake={"contact_phone": ""}),
        "2026-11-16 14:00",
        {"intake_incomplete": 12.0},
    ),
    # done or cancelled: none, whatever else is wrong
    (
        "done-has-none",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            ticket=CUSTOMER,
            intake={"contact_phone": ""},
            change=expedite(signed=None, done=True, start="2026-11-16 17:00"),
        ),
        "2026-11-16 19:00",
        {},
    ),
    (
        "cancelled-has-none",
        request(
            **STANDARD,
            ticket=CUSTOMER,
            intake={"contact_phone": ""},
            change={"cancelled_at": "2026-11-16 12:00"},
        ),
        "2026-11-18 12:00",
        {},
    ),
    (
        "completion-after-at-is-ignored",
        request(
            received="2026-11-16 10:00",
            requested="ASAP",
            change=expedite(signed=None, done=True, start="2026-11-17 10:00"),
        ),
        "2026-11-16 14:00",
        {"sign_off_missing": 4.0},
    ),
    (
        "cancellation-after-at-is-ignored",
        request(**STANDARD, change={**CONFIRMED, "cancelled_at": "2026-11-18 12:00"}),
        "2026-11-18 11:00",
        {"due_unscheduled": -1.0},
    ),
    ("received-after-at-does-not-exist-yet", request(**STANDARD), "2026-11-16 09:59", {}),
]


@pytest.mark.parametrize(("case", "req", "when", "expected"), CASES, ids=[c[0] for c in CASES])
def test_problems_and_hours_left(case, req, when, expected):
    got = problems_of(req, when)
    assert set(got) == set(expected), case
    for problem, hours in expected.items():
        if pd.isna(hours):
            assert pd.isna(got[problem]), (case, problem)
        else:
            assert got[problem] == pytest.approx(hours, abs=1e-9), (case, problem)


def test_every_problem_is_exercised_by_a_case():
    assert {p for *_, expected in CASES for p in expected} == set(PROBLEMS)


def test_one_row_per_ticket_and_problem_most_urgent_first():
    data = frames(
        request("T-LATE", **STANDARD, ticket=CUSTOMER, change=CONFIRMED),
        request(
            "T-SOON",
            received="2026-11-16 13:30",
            requested="2026-11-18 13:30",
            ticket=CUSTOMER,
            change={"confirmed_at": "2026-11-16 13:40"},
        ),
        request(
            "T-MANY",
            received="2026-11-16 10:00",
            requested="2026-11-16 15:00",
            ticket=CUSTOMER,
            intake={"contact_phone": ""},
        ),
    )
    found = run_check(data, POLICY, at("2026-11-16 14:00"))
    assert list(found.columns) == list(COLUMNS)
    assert not found.duplicated(["ticket_id", "problem"]).any()
    hours = found["business_hours_left"]
    known = hours.dropna()
    assert known.is_monotonic_increasing and hours.isna().sum() == 1 and pd.isna(hours.iloc[-1])
    assert list(found["ticket_id"].head(3)) == ["T-LATE", "T-MANY", "T-SOON"]
    assert set(found.loc[found["ticket_id"] == "T-MANY", "problem"]) == {
        "not_routed",
        "not_confirmed",
        "sign_off_missing",
        "intake_incomplete",
    }
    assert counts(found)["not_routed"] == 3 and sum(counts(found).values()) == len(found)
    many = found[found["ticket_id"] == "T-MANY"].set_index("problem")
    assert many.loc["intake_incomplete", "action"].endswith("missing contact_phone")
    assert many.loc["not_routed", "deadline"] == at("2026-11-16 11:00")


def test_closed_requests_are_left_out_before_judging_without_changing_the_result():
    data = frames(
        request("OPEN", **STANDARD, ticket=CUSTOMER),
        request("DONE", **STANDARD, change={"completed_at": "2026-11-16 12:00"}),
        request("LATER-DONE", **STANDARD, change={"completed_at": "2026-11-17 12:00"}),
        request("GONE", **STANDARD, change={"cancelled_at": "2026-11-16 12:00"}),
    )
    when = at("2026-11-16 14:00")
    then = as_of(data, when)
    assert set(without_closed(then)["tickets"]["ticket_id"]) == {"OPEN", "LATER-DONE"}
    whole = find_problems(evaluate(then, policy=POLICY, as_of=when), POLICY, when)
    assert run_check(data, POLICY, when).equals(whole)
    assert set(whole["ticket_id"]) == {"OPEN", "LATER-DONE"}


def test_as_of_rolls_the_ticket_back_and_drops_later_records():
    req = request(
        **STANDARD,
        ticket={**CUSTOMER, "department": "Implementation", "owner": "Sam Engineer"},
        events=[
            {"at": "2026-11-16 10:05", "field": "owner", "old_value": "", "new_value": "Ann"},
            {
                "at": "2026-11-16 12:00",
                "field": "owner",
                "old_value": "Ann",
                "new_value": "Sam Engineer",
            },
            {
                "at": "2026-11-16 12:00",
                "field": "department",
                "old_value": "Customer Service",
                "new_value": "Implementation",
            },
        ],
    )
    data = frames(req, request("LATER", received="2026-11-16 11:30"))
    then = as_of(data, at("2026-11-16 11:00"))
    assert list(then["tickets"]["ticket_id"]) == ["KXP-100-00001"]
    assert list(then["intake"]["ticket_id"]) == ["KXP-100-00001"]
    assert then["tickets"].loc[0, "owner"] == "Ann"
    assert then["tickets"].loc[0, "department"] == "Customer Service"
    assert len(then["ticket_events"]) == 1
    found = run_check(data, POLICY, at("2026-11-16 11:00"))
    assert set(found["ticket_id"]) == {"KXP-100-00001"}
    assert set(found.loc[found["problem"] == "not_routed", "owner"]) == {"Ann"}
    # the frames given are not changed
    assert data["tickets"].loc[0, "owner"] == "Sam Engineer"


def test_look_ahead_comes_from_the_policy_version(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "versions:\n  - version: wide\n    effective_from: 2026-01-01\n"
        "    check: {look_ahead_business_hours: 16}\n"
    )
    wide = load_policy(path)
    req = frames(request(**STANDARD, change=CONFIRMED))
    assert run_check(req, POLICY, at("2026-11-16 14:00")).empty
    found = run_check(req, wide, at("2026-11-16 14:00"))
    assert list(found["problem"]) == ["due_unscheduled"]
    assert found["business_hours_left"].iloc[0] == pytest.approx(12.0)
    assert list(found["policy_version"]) == ["wide"]


def test_no_requests_gives_an_empty_table_with_every_column():
    found = run_check(frames(), POLICY, at("2026-11-16 14:00"))
    assert found.empty and list(found.columns) == list(COLUMNS)
    assert counts(found) == dict.fromkeys(PROBLEMS, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T07:00-06:00", "2026-11-23 13:00"),
        ("2026-11-23 07:00", "2026-11-23 13:00"),
        ("2026-07-01 07:00", "2026-07-01 12:00"),
        ("2026-11-23", "2026-11-23 06:00"),
        ("2026-11-23T13:00Z", "2026-11-23 13:00"),
    ],
)
def test_at_takes_an_offset_or_policy_local_time(text, expected):
    assert parse_at(text, CT) == pd.Timestamp(expected, tz="UTC")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-11-01 01:30", "occurs twice"),
        ("2026-03-08 02:30", "does not exist"),
        ("monday", "expected ISO-8601"),
    ],
)
def test_at_refuses_what_names_no_instant(text, message):
    with pytest.raises(CheckError, match=message):
        parse_at(text, CT)


# --------------------------------------------------------------------------- property vs reference


def slow_business_hours(a: dt.datetime, b: dt.datetime) -> float:
    """Business hours in [a, b) (a <= b), Mon–Fri 09–17 Central, one local day at a time in UTC."""
    zone, total = ZoneInfo(CT), dt.timedelta(0)
    day = a.astimezone(zone).date()
    while day <= b.astimezone(zone).date():
        if day.weekday() < 5:
            opens = dt.datetime.combine(day, dt.time(9), zone).astimezone(dt.UTC)
            closes = dt.datetime.combine(day, dt.time(17), zone).astimezone(dt.UTC)
            lo, hi = max(opens, a), min(closes, b)
            if hi > lo:
                total += hi - lo
        day += dt.timedelta(days=1)
    return total / dt.timedelta(hours=1)


minutes = st.integers(min_value=0, max_value=60 * 24 * 21)  # three weeks spanning fall-back


@pytest.mark.fuzz
@given(received=minutes, later=minutes, requested=minutes)
def test_hours_left_match_a_slow_reference(received, later, requested):
    start = dt.datetime(2026, 10, 19, tzinfo=dt.UTC)  # a Monday; DST ends Sun 1 Nov
    got_at = start + dt.timedelta(minutes=received + later)
    rec = start + dt.timedelta(minutes=received)
    wanted = rec + dt.timedelta(minutes=requested)
    local = "%Y-%m-%d %H:%M%z"
    req = request(
        ticket={**CUSTOMER},
        received=rec.strftime(local),
        requested=wanted.strftime(local),
    )
    evaluated = evaluate(frames(req), policy=POLICY, as_of=pd.Timestamp(got_at))
    found = find_problems(evaluated, POLICY, pd.Timestamp(got_at)).set_index("problem")
    since = slow_business_hours(rec, got_at)
    assert found.loc["not_routed", "business_hours_left"] == pytest.approx(1 - since, abs=1e-9)
    assert found.loc["not_confirmed", "business_hours_left"] == pytest.approx(8 - since, abs=1e-9)
    due = evaluated["due_at"].iloc[0].to_pydatetime()
    to_due = (
        slow_business_hours(got_at, due) if due >= got_at else -slow_business_hours(due, got_at)
    )
    assert ("due_unscheduled" in found.index) == (to_due <= 8)
    if to_due <= 8:
        assert found.loc["due_unscheduled", "business_hours_left"] == pytest.approx(
            to_due, abs=1e-9
        )
