"""The morning check (SPEC 5.5): what needs action now, judged as of one instant.

Every open request (not done, not cancelled) is judged by the same rules as the reports
(:func:`ipchange_core.evaluation.evaluate`) at an instant ``at``, on the data as it stood then
(:func:`as_of`), and each problem it has becomes one row with the business hours left before it
goes wrong. The same rows feed the "At risk" section of the SLA report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ipchange_core import store
from ipchange_core.errors import IpchangeError
from ipchange_core.evaluation import calendar_for, evaluate
from ipchange_core.policy import Policy, PolicySet
from ipchange_core.requests import ASSEMBLED_COLUMNS
from ipchange_core.textops import in_set, money

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

PROBLEMS = (
    "not_routed",
    "not_confirmed",
    "due_unscheduled",
    "sign_off_missing",
    "after_hours_unapproved",
    "intake_incomplete",
)
"""The problems an open request can have, in the order ties are listed."""

PROBLEM_LABELS = {
    "not_routed": "Not routed to Implementation",
    "not_confirmed": "Order not confirmed",
    "due_unscheduled": "Due soon, not scheduled",
    "sign_off_missing": "Fee sign-off missing",
    "after_hours_unapproved": "After-hours window not approved",
    "intake_incomplete": "Intake incomplete",
}
"""Plain-words names of the problems for pages and mail."""

COLUMNS = (
    "ticket_id",
    "problem",
    "business_hours_left",
    "deadline",
    "due_at",
    "account",
    "owner",
    "engineer",
    "received_at",
    "scheduled_start",
    "fee_status",
    "policy_version",
    "action",
)
"""Columns of :func:`find_problems` (and of the check CSV), in order."""

_EVENT_TIMES = ("confirmed_at", "completed_at", "cancelled_at", "fee_accepted_at")
"""Change-record instants that record something that happened (a scheduled window is a plan)."""


class CheckError(IpchangeError):
    """The check cannot run as asked (e.g. an ``--at`` that names no instant)."""


def parse_at(text: str, tz: str) -> pd.Timestamp:
    """The instant of an ``--at`` value: ISO-8601 with an offset, or local wall-clock in ``tz``.

    Args:
        text: e.g. ``2026-11-23T07:00-06:00``, ``2026-11-23 07:00`` (local) or ``2026-11-23``
            (local midnight).
        tz: The policy time zone naive values are read in.

    Returns:
        The instant in UTC (microseconds).

    Raises:
        CheckError: Not ISO-8601, or a local time that does not exist or occurs twice (DST).
    """
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise CheckError(
            f"--at {text!r}: expected ISO-8601, e.g. 2026-11-23T07:00-06:00 or 2026-11-23 07:00"
        ) from None
    stamp = pd.Timestamp(parsed)
    if stamp.tzinfo is None:
        try:
            stamp = stamp.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except ValueError:
            raise CheckError(
                f"--at {text!r}: that local time does not exist or occurs twice in {tz} "
                "(a DST change); give it with its UTC offset"
            ) from None
    return stamp.tz_convert("UTC").as_unit("us")


def as_of(frames: Mapping[str, pd.DataFrame], at: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The canonical frames as they stood at ``at``: every record after ``at`` is ignored.

    Tickets created after ``at``, events after it and intake received after it are dropped; a
    ticket's department, status and owner go back to the old value of its first change after
    ``at``; a change record's ``confirmed_at``, ``completed_at``, ``cancelled_at`` and
    ``fee_accepted_at`` after ``at`` are blanked (and the fee's signer with its sign-off). A
    scheduled window is kept: it is a plan, and when it was booked is not recorded. An instant
    equal to ``at`` counts as known.

    Args:
        frames: Typed canonical frames (``tickets``, ``ticket_events``, ``intake``, ``changes``).
        at: The instant (aware).
    """
    at = pd.Timestamp(at)
    tickets = frames["tickets"]
    tickets = tickets[~(tickets["created_at"] > at)].reset_index(drop=True)
    events = frames["ticket_events"]
    late = events["at"] > at
    if late.any():
        first = events[late].sort_values("at", kind="stable")
        first = first.drop_duplicates(["ticket_id", "field"])
        for field in ("department", "status", "owner"):
            if field not in tickets:
                continue
            then = first[first["field"] == field].set_index("ticket_id")["old_value"]
            earlier = tickets["ticket_id"].map(then)
            tickets[field] = tickets[field].where(earlier.isna(), earlier).astype("str")
        events = events[~late].reset_index(drop=True)
    intake = frames["intake"]
    intake = intake[~(intake["received_at"] > at)].reset_index(drop=True)
    changes = frames["changes"].copy()
    for column in _EVENT_TIMES:
        if column in changes:
            changes[column] = changes[column].mask(changes[column] > at)
    if "fee_accepted_at" in changes and "fee_accepted_by" in changes:
        unsigned = (frames["changes"]["fee_accepted_at"] > at).to_numpy(bool)
        changes.loc[unsigned, "fee_accepted_by"] = ""
    return {"tickets": tickets, "ticket_events": events, "intake": intake, "changes": changes}


def without_closed(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The frames without the requests that are done or cancelled (they have no problem).

    The rules judge each request on its own rows, so the open ones are judged the same without
    the others, in a fraction of the time.
    """
    changes = frames["changes"]
    closed = changes.loc[
        changes["completed_at"].notna() | changes["cancelled_at"].notna(), "ticket_id"
    ]
    return {name: f[~in_set(f["ticket_id"], closed)] for name, f in frames.items()}


def run_check(
    frames: Mapping[str, pd.DataFrame], policy: PolicySet, at: pd.Timestamp
) -> pd.DataFrame:
    """Judge the requests of ``frames`` as of ``at``: :func:`as_of`, evaluate, find problems.

    Returns:
        See :func:`find_problems`.
    """
    at = pd.Timestamp(at)
    evaluated = evaluate(without_closed(as_of(frames, at)), policy=policy, as_of=at)
    return find_problems(evaluated, policy, at)


def _read_until(
    engine: Engine, policy: PolicySet, at: pd.Timestamp, *, open_only: bool = False
) -> dict[str, pd.DataFrame]:
    """The frames of every request received up to ``at`` (inclusive).

    With ``open_only``, only those not done or cancelled at ``at`` (``read_frames(open_at=…)``):
    the rows :func:`without_closed` keeps of :func:`as_of` of the whole read.
    """
    end = pd.Timestamp(at) + pd.Timedelta(microseconds=1)  # read_frames reads [start, end)
    return store.read_frames(
        engine,
        None,
        end,
        policy=policy,
        columns=ASSEMBLED_COLUMNS,
        open_at=at if open_only else None,
    )


def evaluated_as_of(engine: Engine, policy: PolicySet, at: pd.Timestamp) -> pd.DataFrame:
    """Every request received up to ``at`` (inclusive), read and judged on the data as of ``at``.

    Returns:
        See :func:`ipchange_core.evaluation.evaluate`.
    """
    return evaluate(as_of(_read_until(engine, policy, at), at), policy=policy, as_of=at)


def check_database(engine: Engine, policy: PolicySet, at: pd.Timestamp) -> pd.DataFrame:
    """The check of every request in the database as of ``at`` (:func:`run_check`).

    Only the requests still open at ``at`` are read: the others have no problem.

    Returns:
        See :func:`find_problems`.
    """
    return run_check(_read_until(engine, policy, at, open_only=True), policy, at)


def find_problems(evaluated: pd.DataFrame, policy: PolicySet, at: pd.Timestamp) -> pd.DataFrame:
    """Every problem of every open request, most urgent first (SPEC 5.5, issue 23's table).

    Each request is judged with the targets and look-ahead of the policy version it was
    evaluated under (its ``policy_version``). A request with a ``completed_at`` or a
    ``cancelled_at`` has no problem.

    Args:
        evaluated: Output of :func:`ipchange_core.evaluation.evaluate` judged at ``at`` (on data as
            of ``at``, see :func:`as_of`, when ``at`` is in the past).
        policy: The policy ``evaluated`` was judged by.
        at: The instant of the check (aware).

    Returns:
        One row per (request, problem) with :data:`COLUMNS`: ``business_hours_left`` is float
        business hours from ``at`` to ``deadline`` (negative when it has passed; NaN when there
        is no deadline: a missing sign-off on an unscheduled change); ``deadline`` is the
        instant it counts to (the routing or confirmation target, ``due_at`` or the
        ``scheduled_start``); instants are UTC. Sorted by hours left (NaN last), deadline,
        problem and ticket.
    """
    at = pd.Timestamp(at).tz_convert("UTC").as_unit("us")
    by_name = {p.version: p for p in policy.versions}
    live = evaluated[evaluated["completed_at"].isna() & evaluated["cancelled_at"].isna()]
    parts = [
        part
        for version, rows in live.groupby("policy_version", sort=False)
        for part in _problems(rows, by_name[version], at)
    ]
    if not parts:
        return _empty()
    out = pd.concat(parts, ignore_index=True)
    order = out["problem"].map({p: i for i, p in enumerate(PROBLEMS)})
    # sort on whole microseconds: two routes to the same hours may differ in the last float bit
    micros = (out["business_hours_left"] * 3.6e9).round()
    out = out.assign(_o=order, _n=micros.isna(), _us=micros)
    out = out.sort_values(["_n", "_us", "deadline", "_o", "ticket_id"], kind="stable")
    return out.drop(columns=["_o", "_n", "_us"]).reset_index(drop=True)[list(COLUMNS)]


def _empty() -> pd.DataFrame:
    instant = pd.Series(dtype="datetime64[us, UTC]")
    dtypes = {"business_hours_left": pd.Series(dtype=float)}
    dtypes |= {c: instant for c in ("deadline", "due_at", "received_at", "scheduled_start")}
    return pd.DataFrame({c: dtypes.get(c, pd.Series(dtype="str")) for c in COLUMNS})


def _problems(r: pd.DataFrame, pol: Policy, at: pd.Timestamp) -> list[pd.DataFrame]:
    """The problem rows of open requests judged under one policy version."""
    cal = calendar_for(pol)
    t = pol.sla_targets
    now = pd.Series(at, index=r.index)

    def left_to(deadline: pd.Series) -> pd.Series:
        return pd.Series(np.asarray(cal.business_hours(now, deadline), dtype=float), r.index)

    def utc(values: pd.Series) -> pd.Series:
        return pd.Series(values, index=r.index).dt.tz_convert("UTC").dt.as_unit("us")

    # the routing clock starts when the ticket was created (the received time without a ticket)
    start = r["created_at"].where(r["has_ticket"], r["received_at"])
    routed_by = utc(cal.add_business_hours(start, t.routing_business_hours))
    confirm_by = utc(cal.add_business_hours(r["received_at"], t.confirmation_business_hours))
    scheduled = r["scheduled_start"]
    due_left = left_to(r["due_at"])
    fee = money(pol.fee_cents, pol.currency)
    sign_off_detail = pd.Series("", index=r.index, dtype="str")
    sign_off_detail = sign_off_detail.mask(
        r["sign_off_by_other"], " (signed by someone else)"
    ).mask(r["person_of_record_missing"], " (no person of record on the intake)")
    missing = r["correct_intake_issues"].str.findall(r"missing ([a-z_ ]+)")
    dept = pol.routing_department
    found = {
        "not_routed": (
            r["routed_at"].isna() & start.notna(),
            t.routing_business_hours - pd.Series(cal.business_hours(start, now), r.index),
            routed_by,
            pd.Series(f"Move the ticket to {dept}", index=r.index, dtype="str").mask(
                ~r["has_ticket"], f"Create the ticket in {dept}: an intake record has none"
            ),
        ),
        "not_confirmed": (
            r["confirmed_at"].isna() & r["received_at"].notna(),
            t.confirmation_business_hours
            - pd.Series(cal.business_hours(r["received_at"], now), r.index),
            confirm_by,
            pd.Series(f"{dept}: confirm the order with the caller", index=r.index, dtype="str"),
        ),
        "due_unscheduled": (
            scheduled.isna() & (due_left <= pol.look_ahead_business_hours),
            due_left,
            r["due_at"],
            pd.Series("Schedule the change", index=r.index, dtype="str").mask(
                due_left < 0, "Overdue: schedule the change now"
            ),
        ),
        "sign_off_missing": (
            r["fee_status"] == "pending_sign_off",
            left_to(scheduled),
            scheduled,
            f"Get the {fee} fee signed off by the account's person of record"
            + sign_off_detail
            + pd.Series("", index=r.index, dtype="str").mask(
                scheduled.notna(), " before the change starts"
            ),
        ),
        "after_hours_unapproved": (
            r["after_hours_unapproved"] & scheduled.notna(),
            left_to(scheduled),
            scheduled,
            pd.Series(
                "Move the window into business hours, or record who approved after-hours work",
                index=r.index,
                dtype="str",
            ),
        ),
        "intake_incomplete": (
            r["incomplete_intake"],
            due_left,
            r["due_at"],
            "Complete the cloud-info record: missing " + missing.str.join(", ").astype("str"),
        ),
    }
    parts = []
    for problem, (hit, left, deadline, action) in found.items():
        hit = hit.fillna(False).astype(bool)
        if not hit.any():
            continue
        rows = r[hit]
        parts.append(
            pd.DataFrame(
                {
                    "ticket_id": rows["ticket_id"],
                    "problem": problem,
                    "business_hours_left": left[hit].astype(float),
                    "deadline": utc(deadline)[hit],
                    "due_at": rows["due_at"],
                    "account": rows["account"],
                    "owner": rows["owner"],
                    "engineer": rows["engineer"],
                    "received_at": rows["received_at"],
                    "scheduled_start": rows["scheduled_start"],
                    "fee_status": rows["fee_status"].astype("str"),
                    "policy_version": rows["policy_version"],
                    "action": pd.Series(action, index=r.index, dtype="str")[hit],
                }
            )
        )
    return parts


def counts(problems: pd.DataFrame) -> dict[str, int]:
    """Rows per problem, every problem listed (0 when none), in :data:`PROBLEMS` order."""
    found = problems["problem"].value_counts()
    return {p: int(found.get(p, 0)) for p in PROBLEMS}
