"""SLA metrics of each request (SPEC 2.1/2.2) and their compliance over a period."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.policy import Policy
from ipchange_core.textops import join_labels

METRICS = ("routing", "confirmation", "correct_intake", "in_hours", "on_time", "fee_compliance")
"""The metrics of the weekly report, in the order the report shows them."""

STATES = ("met", "breached", "open", "n/a")
"""A request's state for one metric: ``open`` = clock running, target not yet passed (excluded
from compliance, as are ``n/a`` requests the metric does not apply to)."""

INTAKE_FIELDS = (
    "account",
    "person_of_record",
    "contact_name",
    "contact_phone",
    "reason",
    "current_ip",
)
"""The "cloud info" fields a complete intake record carries (besides a requested time or ASAP)."""

UNASSIGNED = ("", "unassigned", "-- unassigned --")

CREATION_UNKNOWN = "creation state unknown"
"""Why correct intake is open for a ticket whose history does not record its creation state."""


def _state(met: pd.Series, breached: pd.Series, applies: pd.Series) -> pd.Series:
    """Categorical met / breached / open / n/a, first that applies: n/a, met, breached, open."""
    codes = np.select(
        [~applies.to_numpy(bool), met.to_numpy(bool), breached.to_numpy(bool)],
        [STATES.index("n/a"), STATES.index("met"), STATES.index("breached")],
        STATES.index("open"),
    )
    return pd.Series(pd.Categorical.from_codes(codes, categories=STATES), index=met.index)


def _hours(calendar: BusinessCalendar, start: pd.Series, end: pd.Series) -> pd.Series:
    return pd.Series(
        np.asarray(calendar.business_hours(start, end), dtype=float), index=start.index
    )


def _clock(
    calendar: BusinessCalendar,
    start: pd.Series,
    end: pd.Series,
    target_hours: float,
    as_of: pd.Timestamp,
    applies: pd.Series,
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Business hours from start to end, its state against a target, and the hours missed by.

    A clock that has not ended is breached once more than ``target_hours`` business hours have
    passed at ``as_of`` (missed by at least the excess so far), else open.
    """
    elapsed = _hours(calendar, start, end)
    so_far = _hours(calendar, start, pd.Series(as_of, index=start.index))
    ended = end.notna()
    met = ended & (elapsed <= target_hours)
    breached = (ended & (elapsed > target_hours)) | (~ended & (so_far > target_hours))
    missed = (elapsed.where(ended, so_far) - target_hours).where(breached)
    return elapsed, _state(met, breached.fillna(False), applies & start.notna()), missed


def evaluate_sla(
    r: pd.DataFrame,
    policy: Policy,
    calendar: BusinessCalendar,
    as_of: pd.Timestamp,
) -> pd.DataFrame:
    """SLA metrics of each request under one policy version, as of a report time.

    Args:
        r: Requests (:func:`ipchange_core.requests.assemble`) with the columns of
            :func:`ipchange_core.fees.decide_fees` joined.
        policy: The version in force when these requests were received.
        calendar: Its business calendar.
        as_of: The report time (aware): clocks still running are judged against it.

    Returns:
        For each metric, ``<metric>_state`` (met|breached|open|n/a) and ``<metric>_missed_by``
        (hours past the target, NaN unless breached; business hours except ``on_time``, which is
        late by business hours after ``due_at``), plus ``routing_business_hours``,
        ``confirmation_business_hours``, ``in_hours`` (nullable boolean), ``due_at`` (UTC),
        ``started_at`` (UTC), ``correct_intake_issues`` (text) and the flags
        ``incomplete_intake``, ``creation_state_unknown`` (an agent's ticket whose history does
        not record its creation state: correct intake open), ``after_hours_unapproved``,
        ``not_routed``,
        ``routing_history_missing`` (a customer's ticket whose department history is not
        known: routing unknown, open).
    """
    t = policy.sla_targets
    out = pd.DataFrame(index=r.index)
    cancelled = r["cancelled_at"].notna() & ~(r["completed_at"] <= r["cancelled_at"]).fillna(False)
    live = ~cancelled

    # "Please expidite these to the implementation group as quickly as possible"
    clock_start = r["created_at"].where(r["has_ticket"], r["received_at"])
    out["routing_business_hours"], out["routing_state"], out["routing_missed_by"] = _clock(
        calendar,
        clock_start,
        r["routed_at"],
        t.routing_business_hours,
        as_of,
        live | r["routed_at"].notna(),
    )
    out["not_routed"] = r["routed_at"].isna()
    # SPEC 2.1: customer tickets start in Customer Service ("it should have generated as a
    # Customer Service in New status"), so without their department history a routing time
    # would be a guess: unknown, left out of the percentage like an open clock (``not_routed``
    # still says whether it is outside the routing department now).
    missing = (r["creator"] == "user") & ~r["department_history"]
    out["routing_history_missing"] = missing
    out["routing_business_hours"] = out["routing_business_hours"].mask(missing)
    out["routing_missed_by"] = out["routing_missed_by"].mask(missing)
    out["routing_state"] = out["routing_state"].mask(
        missing & (out["routing_state"] != "n/a"), "open"
    )

    # "must be put through the implementation group for scheduling and order confirmation"
    (
        out["confirmation_business_hours"],
        out["confirmation_state"],
        out["confirmation_missed_by"],
    ) = _clock(
        calendar,
        r["received_at"],
        r["confirmed_at"],
        t.confirmation_business_hours,
        as_of,
        live | r["confirmed_at"].notna(),
    )

    # Steps 1–3: Implementation / New / Unassigned, the "cloud info" macro, the ticket number.
    # A creation state no history records is unknown, not a breach (issue 26): the request is
    # open until its history shows how the ticket was created; a known problem still breaches.
    agent_made = (r["creator"] == "staff") | (
        ~r["has_ticket"] & (r["channel"] != "customer_ticket")
    )
    unknown = agent_made & r["has_ticket"] & ~r["creation_recorded"]
    out["creation_state_unknown"] = unknown
    out["incomplete_intake"], out["correct_intake_issues"], wrong = _intake_checks(
        r, policy, unknown
    )
    out["correct_intake_state"] = _state(~wrong & ~unknown, wrong, agent_made)
    out["correct_intake_missed_by"] = np.nan  # a wrong intake has no duration

    # "IP changes will only be performed during normal working hours, 9 to 5 CST Monday through
    # Friday" — the window [scheduled_start, scheduled_end), else the completion instant.
    has_window = r["scheduled_start"].notna() & r["scheduled_end"].notna()
    start = r["scheduled_start"].where(has_window, r["completed_at"])
    end = r["scheduled_end"].where(has_window, r["completed_at"])
    business_us = pd.Series(calendar.business_microseconds(start, end), index=r.index)
    inside = (business_us == (end - start) // pd.Timedelta(microseconds=1)).fillna(False)
    inside &= pd.Series(calendar.is_open(start), index=r.index).fillna(False).astype(bool)
    known = start.notna()
    out["in_hours"] = pd.Series(inside, dtype="boolean").mask(~known, pd.NA)
    approved = r["after_hours_approved_by"].str.strip() != ""
    outside = known & ~inside
    out["after_hours_unapproved"] = outside & ~approved
    out["in_hours_state"] = _state(known & (inside | approved), outside & ~approved, live | known)
    out_of_hours = (end - start).dt.total_seconds() / 3600 - _hours(calendar, start, end)
    out["in_hours_missed_by"] = out_of_hours.where(known & inside.eq(False) & ~approved)
    # a completion instant outside business hours has zero length: report it as missed by 0 h
    out.loc[out["after_hours_unapproved"] & ~has_window, "in_hours_missed_by"] = 0.0

    # due_at: the customer's requested time for a paid expedite, else no earlier than
    # received_at + threshold ("the user is going to expect he has 48 hours"), moved to the
    # first business-hours instant at or after it.
    billable = r["fee_status"] == "billable"
    standard = r["requested_change_at"].where(
        r["requested_change_at"] >= r["expedite_deadline"], r["expedite_deadline"]
    )
    wanted = r["requested_change_at"].where(billable, standard).fillna(r["expedite_deadline"])
    out["due_at"] = pd.Series(calendar.next_open(wanted), index=r.index).dt.tz_convert("UTC")
    started = r["scheduled_start"].fillna(r["completed_at"])
    out["started_at"] = started
    on_time = (started <= out["due_at"]).fillna(False)
    late = (started > out["due_at"]).fillna(False) | (started.isna() & (as_of > out["due_at"]))
    out["on_time_state"] = _state(on_time, late, live | started.notna())
    lateness = _hours(calendar, out["due_at"], started.fillna(as_of))
    out["on_time_missed_by"] = lateness.where(out["on_time_state"] == "breached")

    # "an acceptance of the fee signed off by the person of record for the account"
    fee = r["fee_status"]
    expedite = fee.isin(["billable", "awaiting_change", "waived", "pending_sign_off"])
    out["fee_compliance_state"] = _state(
        fee.isin(["billable", "awaiting_change", "waived"]),
        r["expedited_without_sign_off"],
        expedite,
    )
    out["fee_compliance_missed_by"] = np.nan
    return out


def _intake_checks(
    r: pd.DataFrame, policy: Policy, unknown: pd.Series
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Incomplete-intake flag, the intake problems as text, and whether a problem is known.

    The ticket's state at creation is judged only where its history records it
    (``creation_recorded``); where ``unknown`` the text adds :data:`CREATION_UNKNOWN`, which is
    not a problem.
    """
    want = policy.agent_ticket
    judged = r["has_ticket"] & r["creation_recorded"]
    problems: dict[str, pd.Series] = {
        "no ticket": ~r["has_ticket"],
        "no intake record": ~r["has_intake"],
        f"not created in {want['department']}": judged
        & (r["initial_department"].str.casefold() != want["department"].casefold()),
        f"not created as {want['status']}": judged
        & (r["initial_status"].str.casefold() != want["status"].casefold()),
        "created assigned": judged & ~r["initial_owner"].str.strip().str.casefold().isin(UNASSIGNED)
        if want["owner"] == ""
        else judged & (r["initial_owner"] != want["owner"]),
    }
    missing = pd.Series(False, index=r.index)
    for field in INTAKE_FIELDS:
        gap = r["has_intake"] & (r[field].str.strip() == "")
        problems[f"missing {field}"] = gap
        missing |= gap
    no_time = r["has_intake"] & r["requested_change_at"].isna() & ~r["requested_asap"]
    problems["missing requested time"] = no_time
    missing |= no_time
    problems["ticket number not given"] = r["has_intake"] & ~r["ticket_number_given"].fillna(False)
    wrong = pd.Series(False, index=r.index)
    for mask in problems.values():
        wrong |= mask
    problems[CREATION_UNKNOWN] = unknown
    return missing, join_labels(problems, r.index, sep="; "), wrong


def compliance(evaluated: pd.DataFrame, policy: Policy, *, by: str | None = None) -> pd.DataFrame:
    """Met / breached / open / n/a counts and compliance % per metric.

    Compliance % = met ÷ (met + breached), NaN when both are 0; open and n/a requests are
    excluded, as the leading help desks do.

    Args:
        evaluated: Output of :func:`ipchange_core.evaluation.evaluate`.
        policy: Gives the targets shown (the version in force for the period reported).
        by: Optional column to group by (e.g. a week label, ``agent``, ``engineer``).

    Returns:
        One row per (group,) metric with ``met``, ``breached``, ``open``, ``not_applicable``,
        ``compliance_pct``, ``target`` (text), ``target_pct`` (NaN for per-request hour targets)
        and ``target_met`` (nullable boolean).
    """
    t = policy.sla_targets
    targets = {
        "routing": (f"≤ {t.routing_business_hours:g} business h", 100.0),
        "confirmation": (f"≤ {t.confirmation_business_hours:g} business h", 100.0),
        "correct_intake": (f"{t.correct_intake_pct:g} %", t.correct_intake_pct),
        "in_hours": (f"{t.in_hours_pct:g} %", t.in_hours_pct),
        "on_time": (f"{t.on_time_pct:g} %", t.on_time_pct),
        "fee_compliance": (f"{t.fee_compliance_pct:g} %", t.fee_compliance_pct),
    }
    frames = []
    for metric in METRICS:
        state = evaluated[f"{metric}_state"]
        counts = pd.crosstab(evaluated[by], state) if by else pd.DataFrame([state.value_counts()])
        counts = counts.reindex(columns=list(STATES), fill_value=0).fillna(0).astype(int)
        counts = counts.rename(columns={"n/a": "not_applicable"})
        counts.columns.name = None
        counts.insert(0, "metric", metric)
        frames.append(counts)
    out = pd.concat(frames)
    out = out.reset_index(names=[by]) if by else out.reset_index(drop=True)
    decided = out["met"] + out["breached"]
    out["compliance_pct"] = (100 * out["met"] / decided.where(decided > 0)).astype(float)
    out["target"] = out["metric"].map(lambda m: targets[m][0])
    out["target_pct"] = out["metric"].map(lambda m: targets[m][1]).astype(float)
    out["target_met"] = pd.Series(out["compliance_pct"] >= out["target_pct"], dtype="boolean").mask(
        decided == 0, pd.NA
    )
    return out


def breaches(evaluated: pd.DataFrame) -> pd.DataFrame:
    """Every breach, one row per request and metric, worst first within each metric.

    Returns:
        Columns ``ticket_id``, ``metric``, ``missed_by_hours`` (business hours; 0 for a breach
        without a duration, e.g. an incorrect intake), ``detail`` (what went wrong) and the
        request's ``received_at``, ``account``, ``agent``, ``engineer``.
    """
    rows = []
    details = {
        "correct_intake": evaluated["correct_intake_issues"],
        "fee_compliance": pd.Series(
            "change done without the person of record's sign-off", index=evaluated.index
        ),
    }
    for metric in METRICS:
        hit = evaluated[f"{metric}_state"] == "breached"
        if not hit.any():
            continue
        part = evaluated.loc[hit, ["ticket_id", "received_at", "account", "agent", "engineer"]]
        part = part.assign(
            metric=metric,
            missed_by_hours=evaluated.loc[hit, f"{metric}_missed_by"].fillna(0.0),
            detail=details.get(metric, pd.Series("", index=evaluated.index))[hit],
        )
        rows.append(part)
    columns = [
        "ticket_id",
        "metric",
        "missed_by_hours",
        "detail",
        "received_at",
        "account",
        "agent",
        "engineer",
    ]
    if not rows:  # typed like a breach row: received_at stays an instant, missed_by a float
        return (
            evaluated.loc[[], ["ticket_id", "received_at", "account", "agent", "engineer"]]
            .assign(
                metric=pd.Series(dtype="str"),
                missed_by_hours=pd.Series(dtype="float64"),
                detail=pd.Series(dtype="str"),
            )[columns]
            .reset_index(drop=True)
        )
    out = pd.concat(rows, ignore_index=True)[columns]
    order = {m: i for i, m in enumerate(METRICS)}
    out = out.assign(_o=out["metric"].map(order))
    return out.sort_values(["_o", "missed_by_hours"], ascending=[True, False]).drop(columns="_o")
