"""Which tickets are IP change requests, and one joined row per request from the four tables."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ipchange_core.policy import PolicySet
from ipchange_core.schema import TIMESTAMP_DTYPE

INTAKE_COLUMNS = (
    "channel",
    "requester_type",
    "site",
    "reseller",
    "contact_name",
    "contact_phone",
    "person_of_record",
    "reason",
    "current_ip",
    "new_ip",
    "requested_asap",
    "ticket_number_given",
    "transferred_to_queue",
    "agent",
)
CHANGE_COLUMNS = (
    "confirmed_at",
    "scheduled_start",
    "scheduled_end",
    "completed_at",
    "cancelled_at",
    "engineer",
    "fee_accepted_by",
    "fee_accepted_at",
    "fee_waived",
    "fee_waiver_reason",
    "fee_waived_by",
    "after_hours_approved_by",
)
TICKET_COLUMNS = ("subject", "department", "status", "owner", "creator", "tags", "created_at")


def recognised_tickets(tickets: pd.DataFrame, policy: PolicySet) -> pd.Series:
    """Whether each ticket is an IP change request by the request filter (SPEC 2.1).

    A ticket matches when its type is one of the filter's ticket types, one of its tags is one of
    the filter's tags (compared case-insensitively), or its subject matches the subject pattern.
    Each ticket is judged by the policy version in force at its ``created_at``.

    Returns:
        A boolean Series aligned with ``tickets``.
    """
    version = policy.version_index(tickets["created_at"])
    result = np.zeros(len(tickets), dtype=bool)
    for i, pol in enumerate(policy.versions):
        rows = version == i
        if not rows.any():
            continue
        f = pol.request_filter
        part = tickets[rows]
        any_tag = "|".join(re.escape(tag) for tag in f.tags) or "(?!)"
        by_type = part["ticket_type"].isin(f.ticket_types)
        by_tag = part["tags"].str.contains(rf"(?i)(?:^|,)\s*(?:{any_tag})\s*(?:,|$)", regex=True)
        by_subject = part["subject"].str.contains(f.subject_pattern, regex=True)
        result[rows] = (by_type | by_tag | by_subject).to_numpy(dtype=bool)
    return pd.Series(result, index=tickets.index)


def _first_events(events: pd.DataFrame) -> pd.DataFrame:
    """Per ticket: the value each field had at creation (old value of its first change)."""
    ordered = events.sort_values(["ticket_id", "at"], kind="stable")
    first = ordered.drop_duplicates(["ticket_id", "field"], keep="first")
    return first.pivot(index="ticket_id", columns="field", values="old_value")


def _routed_at(events: pd.DataFrame, department: str) -> pd.Series:
    """Per ticket: the first instant its department became ``department``."""
    moves = events[(events["field"] == "department") & _same_name(events["new_value"], department)]
    return moves.groupby("ticket_id")["at"].min()


def _same_name(values: pd.Series, name: str) -> pd.Series:
    return values.str.strip().str.casefold() == name.strip().casefold()


def assemble(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    intake: pd.DataFrame,
    changes: pd.DataFrame,
    policy: PolicySet,
) -> pd.DataFrame:
    """Join the four typed canonical frames into one row per IP change request.

    Requests are the tickets with an intake record, the tickets the request filter recognises,
    the tickets with a change record, and intake records whose ticket is missing (flagged, never
    dropped). Change records of unknown tickets without intake are not requests (data quality).

    Adds, in UTC: ``received_at`` (earliest of intake ``received_at`` and ticket ``created_at``),
    ``requested_change_at`` (``ASAP`` = received_at; earlier than received_at = received_at, with
    ``requested_before_received``), ``routed_at`` (created_at when created in the routing
    department, else the first department change into it; NaT while not routed), and the
    department/status/owner each ticket was created with (``initial_*``).

    Returns:
        One row per request, ordered by ``received_at`` then ``ticket_id``.
    """
    recognised = tickets["ticket_id"][recognised_tickets(tickets, policy)]
    with_ticket = tickets["ticket_id"].isin(intake["ticket_id"])
    with_ticket |= tickets["ticket_id"].isin(changes["ticket_id"])
    ids = pd.Index(pd.concat([recognised, tickets["ticket_id"][with_ticket], intake["ticket_id"]]))
    ids = ids.drop_duplicates()

    t = tickets.set_index("ticket_id").reindex(ids)
    i = intake.set_index("ticket_id").reindex(ids)
    c = changes.set_index("ticket_id").reindex(ids)
    out = pd.DataFrame(index=ids)
    out.index.name = "ticket_id"
    out["has_ticket"] = ids.isin(tickets["ticket_id"])
    out["has_intake"] = ids.isin(intake["ticket_id"])
    out["has_change"] = ids.isin(changes["ticket_id"])
    for col in TICKET_COLUMNS:
        out[col] = t[col]
    out["account"] = i["account"].where(out["has_intake"] & (i["account"] != ""), t["account"])
    for col in INTAKE_COLUMNS:
        out[col] = i[col]
    for col in CHANGE_COLUMNS:
        out[col] = c[col]
    text_cols = [
        col
        for col in (*TICKET_COLUMNS, "account", *INTAKE_COLUMNS, *CHANGE_COLUMNS)
        if out[col].dtype == "str"
    ]
    out[text_cols] = out[text_cols].fillna("")
    out["requested_asap"] = out["requested_asap"].fillna(False).astype(bool)

    out["intake_received_at"] = i["received_at"]
    received = pd.concat([i["received_at"], t["created_at"]], axis=1).min(axis=1)
    out["received_at"] = received.astype(TIMESTAMP_DTYPE)
    requested = i["requested_change_at"].mask(out["requested_asap"], out["received_at"])
    out["requested_before_received"] = (requested < out["received_at"]).fillna(False).astype(bool)
    out["requested_change_at"] = requested.mask(
        out["requested_before_received"], out["received_at"]
    )

    initial = _first_events(events).reindex(ids)
    for field in ("department", "status", "owner"):
        if field in initial:
            out[f"initial_{field}"] = initial[field].astype("str").fillna(out[field])
        else:
            out[f"initial_{field}"] = out[field]
    out = _with_routing(out, events, policy)
    return out.reset_index().sort_values(
        ["received_at", "ticket_id"], kind="stable", ignore_index=True
    )


def _with_routing(out: pd.DataFrame, events: pd.DataFrame, policy: PolicySet) -> pd.DataFrame:
    version = policy.version_index(out["received_at"])
    routed = pd.Series(pd.NaT, index=out.index, dtype=TIMESTAMP_DTYPE)
    for n, pol in enumerate(policy.versions):
        rows = version == n
        if not rows.any():
            continue
        dept = pol.routing_department
        created_there = _same_name(out["initial_department"], dept) & out["has_ticket"]
        moved = _routed_at(events, dept).reindex(out.index)
        value = moved.mask(created_there, out["created_at"])
        routed = routed.mask(rows, value)
    out["routed_at"] = routed
    return out
