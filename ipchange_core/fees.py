"""The 48-hour notice rule and the $250 expedite fee: notice, short notice, fee status, cents."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.policy import Policy
from ipchange_core.textops import normalise_name

FEE_STATUSES = (
    "not_applicable",
    "billable",
    "pending_sign_off",
    "awaiting_change",
    "waived",
    "needs_review",
)
"""Every fee status of SPEC 2.1; a request has exactly one."""

HOUR = pd.Timedelta(hours=1)


def signed_by_person_of_record(
    fee_accepted_by: pd.Series, person_of_record: pd.Series
) -> pd.Series:
    """Whether the fee was accepted by the account's person of record (SPEC 2.1).

    "Part of the confirmation process for expedited request will require an acceptance of the fee
    signed off by the person of record for the account." Both names must be non-blank.

    Returns:
        A boolean Series (never NA).
    """
    signer = normalise_name(fee_accepted_by)
    person = normalise_name(person_of_record)
    return (signer == person) & (signer != "")


def notice_hours(
    received_at: pd.Series,
    requested_change_at: pd.Series,
    policy: Policy,
    calendar: BusinessCalendar,
) -> pd.Series:
    """Notice given for each request, in hours (float; NaN when the requested time is unknown).

    Calendar hours are real elapsed time between the two UTC instants (a wall clock that says
    48 h across a DST change is 47 h or 49 h); business hours are the overlap of
    ``[received_at, requested_change_at)`` with business hours, as the policy says.
    """
    if policy.notice_measure == "business":
        return pd.Series(
            np.asarray(calendar.business_hours(received_at, requested_change_at), dtype=float),
            index=received_at.index,
        )
    return (requested_change_at - received_at) / HOUR


def expedite_deadline(
    received_at: pd.Series, policy: Policy, calendar: BusinessCalendar
) -> pd.Series:
    """``received_at + threshold``: a change starting before it is an expedite (UTC instants).

    The threshold is added in calendar hours, or in business hours when the policy measures
    notice in business hours.
    """
    if policy.notice_measure == "business":
        return pd.Series(
            calendar.add_business_hours(received_at, policy.threshold_hours),
            index=received_at.index,
        ).dt.tz_convert("UTC")
    return received_at + pd.Timedelta(hours=policy.threshold_hours)


def decide_fees(requests: pd.DataFrame, policy: Policy, calendar: BusinessCalendar) -> pd.DataFrame:
    """Notice, short-notice flag and fee status of each request under one policy version.

    The status is the first that applies, in the order of SPEC 2.1: cancelled before the change →
    ``not_applicable``; notice unknown → ``needs_review``; not short notice, or the change started
    at or after ``received_at + threshold`` (a standard slot) → ``not_applicable``; a waiver with
    a reason and an approver → ``waived``; no person of record to check a sign-off against →
    ``needs_review``; accepted by the person of record → ``billable`` once completed, else
    ``awaiting_change``; otherwise ``pending_sign_off``.

    Args:
        requests: Rows of :func:`ipchange_core.requests.assemble` judged by ``policy``.
        policy: The version in force when these requests were received.
        calendar: The business calendar of ``policy``.

    Returns:
        Columns ``notice_hours`` (float), ``short_notice`` (nullable boolean), ``expedite_deadline``
        (UTC), ``fee_status`` (str), ``fee_cents`` (Int64: the fee for ``billable``, 0 for
        ``not_applicable`` and ``waived``, NA while undecided), ``policy_fee_cents`` (int) and
        the boolean flags ``sign_off_by_other``, ``incomplete_waiver``,
        ``person_of_record_missing`` and ``expedited_without_sign_off``.
    """
    r = requests
    notice = notice_hours(r["received_at"], r["requested_change_at"], policy, calendar)
    deadline = expedite_deadline(r["received_at"], policy, calendar)
    unknown = notice.isna()
    short = (notice < policy.threshold_hours) & ~unknown
    completed = r["completed_at"].notna()
    cancelled = r["cancelled_at"].notna() & ~(r["completed_at"] <= r["cancelled_at"]).fillna(False)
    started = r["scheduled_start"].fillna(r["completed_at"])
    standard_slot = (started >= deadline).fillna(False)
    waived_flag = r["fee_waived"].fillna(False).astype(bool)
    waiver = (
        waived_flag
        & (r["fee_waiver_reason"].str.strip() != "")
        & (r["fee_waived_by"].str.strip() != "")
    )
    signed = signed_by_person_of_record(r["fee_accepted_by"], r["person_of_record"])
    person_missing = r["person_of_record"].str.strip() == ""

    conditions = [
        cancelled,
        unknown,
        ~short | standard_slot,
        waiver,
        person_missing,
        signed & completed,
        signed,
    ]
    choices = [
        "not_applicable",
        "needs_review",
        "not_applicable",
        "waived",
        "needs_review",
        "billable",
        "awaiting_change",
    ]
    status = np.select([c.to_numpy(dtype=bool) for c in conditions], choices, "pending_sign_off")
    status = pd.Series(status, index=r.index, dtype="str")

    cents = pd.Series(pd.NA, index=r.index, dtype="Int64")
    cents = cents.mask(status == "billable", policy.fee_cents)
    cents = cents.mask(status.isin(["not_applicable", "waived"]), 0)
    pending = status == "pending_sign_off"
    return pd.DataFrame(
        {
            "notice_hours": notice,
            "short_notice": pd.Series(short, dtype="boolean").mask(unknown, pd.NA),
            "expedite_deadline": deadline,
            "fee_status": status,
            "fee_cents": cents,
            "policy_fee_cents": policy.fee_cents,
            "sign_off_by_other": pending & (r["fee_accepted_by"].str.strip() != ""),
            "incomplete_waiver": waived_flag & ~waiver,
            "person_of_record_missing": short & person_missing & ~cancelled,
            "expedited_without_sign_off": pending & completed,
        },
        index=r.index,
    )
