"""Evaluate requests by the policy in force at receipt: every computed field in one frame."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import pandas as pd

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.fees import decide_fees
from ipchange_core.policy import Policy, PolicySet, load_policy
from ipchange_core.requests import assemble
from ipchange_core.sla import evaluate_sla
from ipchange_core.textops import join_labels

FLAGS = (
    "requested_before_received",
    "no_intake_record",
    "intake_without_ticket",
    "incomplete_intake",
    "not_routed",
    "routing_history_missing",
    "sign_off_by_other",
    "person_of_record_missing",
    "incomplete_waiver",
    "expedited_without_sign_off",
    "after_hours_unapproved",
)
"""Flags a request can carry, joined with ``;`` in the ``flags`` column in this order."""


@lru_cache(maxsize=32)
def calendar_for(policy: Policy) -> BusinessCalendar:
    """The business calendar of one policy version (built once per version)."""
    return BusinessCalendar.from_policy(policy)


def evaluate(
    frames: Mapping[str, pd.DataFrame],
    *,
    policy: PolicySet | None = None,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Apply the notice, fee and SLA rules to every IP change request.

    Each request is judged by the policy version in force at its ``received_at`` and records that
    version in ``policy_version``.

    Args:
        frames: The typed canonical frames ``tickets``, ``ticket_events``, ``intake`` and
            ``changes`` (see :mod:`ipchange_core.schema`).
        policy: The policy; the default policy when None.
        as_of: Report time (aware) against which running clocks are judged; now when None.

    Returns:
        One row per request: the joined request fields, ``notice_hours`` (hours),
        ``short_notice``, ``fee_status``, ``fee_cents``, the SLA columns of
        :func:`ipchange_core.sla.evaluate_sla`, ``policy_version`` and ``flags``. Instants are
        UTC; hours are floats.
    """
    policy = policy or load_policy()
    as_of = pd.Timestamp.now(tz="UTC") if as_of is None else pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    requests = assemble(
        frames["tickets"], frames["ticket_events"], frames["intake"], frames["changes"], policy
    )
    version = policy.version_index(requests["received_at"])
    parts = []
    for n, pol in enumerate(policy.versions):
        rows = requests[version == n]
        if rows.empty:
            continue
        cal = calendar_for(pol)
        judged = rows.join(decide_fees(rows, pol, cal))
        judged = judged.join(evaluate_sla(judged, pol, cal, as_of))
        parts.append(judged.assign(policy_version=pol.version))
    if parts:
        out = pd.concat(parts).sort_index()
    else:
        empty = requests.join(decide_fees(requests, policy.latest, calendar_for(policy.latest)))
        out = empty.join(evaluate_sla(empty, policy.latest, calendar_for(policy.latest), as_of))
        out["policy_version"] = pd.Series(dtype="str")
    out["no_intake_record"] = ~out["has_intake"]
    out["intake_without_ticket"] = ~out["has_ticket"]
    out["flags"] = join_labels({flag: out[flag] for flag in FLAGS}, out.index)
    return out
