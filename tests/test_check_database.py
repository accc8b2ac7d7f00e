"""The check of a database reads only the requests open at ``--at`` (issue 23's speed target).

:func:`ipchange_core.check.check_database` leaves the requests done or cancelled at ``--at`` out
of the read, in SQL. Its answer must be that of the slow, obvious route: every request read
whole, rolled back to ``--at`` (:func:`~ipchange_core.check.as_of`), judged, and the problems of
the open ones listed — row for row, and byte for byte in the CSV.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core import check, schema, store
from ipchange_core.check import as_of, check_database, find_problems
from ipchange_core.check_report import check_table
from ipchange_core.csvfile import csv_bytes
from ipchange_core.evaluation import evaluate
from ipchange_core.policy import load_policy
from tests.domain import CT, at, expedite, frames, request
from tests.store.helpers import parsed

POLICY = load_policy()
AT = "2026-11-18 10:00"  # a Wednesday, Central
CUSTOMER = {"department": "Customer Service", "creator": "user"}
STANDARD = {"received": "2026-11-16 10:00", "requested": "2026-11-18 10:00"}


def load(engine: sa.Engine, data: dict[str, pd.DataFrame], name: str = "") -> None:
    """Load the four frames (a later load of a ticket's row replaces it)."""
    for table in schema.TABLES:
        store.load(
            engine, parsed(table, data[table], name=f"{table}{name}.csv"), policy_version="t"
        )


def reference(engine: sa.Engine, when: pd.Timestamp) -> pd.DataFrame:
    """Every request read whole, as of ``when``, judged; the problems of the open ones."""
    then = as_of(store.read_frames(engine, policy=POLICY), when)
    return find_problems(evaluate(then, policy=POLICY, as_of=when), POLICY, when)


def assert_same_check(engine: sa.Engine, when: pd.Timestamp) -> pd.DataFrame:
    fast, slow = check_database(engine, POLICY, when), reference(engine, when)
    pd.testing.assert_frame_equal(fast, slow)
    assert csv_bytes(check_table(fast, CT)) == csv_bytes(check_table(slow, CT))
    return fast


def routed(when: str) -> dict[str, str]:
    return {
        "at": when,
        "field": "department",
        "old_value": "Customer Service",
        "new_value": "Implementation",
    }


# ticket_id: (request, problems expected at AT; None: no problem, and not read)
EDGES = {
    "DONE-AT": (dict(**STANDARD, change={"completed_at": AT}), None),
    "CANCELLED-AT": (dict(**STANDARD, change={"cancelled_at": AT}), None),
    "DONE-BEFORE": (
        dict(received="2026-11-16 10:00", requested="ASAP", change=expedite(signed=None)),
        None,
    ),
    "DONE-A-MICROSECOND-LATER": (
        dict(**STANDARD, change={"completed_at": "2026-11-18 10:00:00.000001"}),
        {"not_confirmed", "due_unscheduled"},
    ),
    "CANCELLED-LATER": (
        dict(**STANDARD, change={"confirmed_at": "2026-11-16 11:00", "cancelled_at": "2026-11-19"}),
        {"due_unscheduled"},
    ),
    "SIGNED-AND-DONE-LATER": (
        dict(
            received="2026-11-17 10:00",
            requested="ASAP",
            change=expedite(
                start="2026-11-18 15:00",
                fee_accepted_at="2026-11-18 11:00",
                completed_at="2026-11-18 16:00",
            ),
        ),
        {"sign_off_missing"},
    ),
    "ROUTED-LATER": (
        dict(
            **STANDARD,
            ticket={**CUSTOMER, "department": "Implementation"},
            change={"confirmed_at": "2026-11-16 11:00"},
            events=[routed("2026-11-18 12:00")],
        ),
        {"not_routed", "due_unscheduled"},
    ),
    "ROUTED-BEFORE": (
        dict(
            **STANDARD,
            ticket={**CUSTOMER, "department": "Implementation"},
            change={"confirmed_at": "2026-11-16 11:00", "scheduled_start": "2026-11-18 14:00"},
            events=[routed("2026-11-16 10:30")],
        ),
        set(),  # open and read, nothing wrong
    ),
    "INTAKE-ONLY": (
        dict(**STANDARD, has_ticket=False),
        {"not_routed", "not_confirmed", "due_unscheduled"},
    ),
    "TICKET-ONLY": (
        dict(**STANDARD, has_intake=False, ticket={"ticket_type": "IP Change"}),
        {"not_confirmed", "due_unscheduled"},  # due 48 h after it was received
    ),
    "TICKET-CREATED-LATER": (
        dict(**STANDARD, created="2026-11-18 11:00"),
        {"not_routed", "not_confirmed", "due_unscheduled"},  # intake without a ticket, then
    ),
    "RECEIVED-LATER": (dict(received="2026-11-18 10:01", requested="2026-11-23 10:00"), None),
}


def edge_data(reopened: bool) -> dict[str, pd.DataFrame]:
    reqs = [request(ticket_id, **spec) for ticket_id, (spec, _) in EDGES.items()]
    change = {"confirmed_at": "2026-11-16 11:00"}
    if not reopened:
        change["completed_at"] = "2026-11-17 12:00"
    return frames(*reqs, request("REOPENED", **STANDARD, change=change))


def test_the_check_of_a_database_is_that_of_every_request_read_whole(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    load(engine, edge_data(reopened=False))
    load(engine, edge_data(reopened=True), "-again")  # REOPENED: its completed_at is cleared
    when = at(AT)
    reads: list[dict[str, pd.DataFrame]] = []
    read_frames = store.read_frames

    def spying(*args: object, **kwargs: object) -> dict[str, pd.DataFrame]:
        frames = read_frames(*args, **kwargs)
        if kwargs.get("open_at") is not None:
            reads.append(frames)
        return frames

    monkeypatch.setattr(check.store, "read_frames", spying)
    found = assert_same_check(engine, when)
    expected = {t: p for t, (_, p) in EDGES.items() if p is not None}
    expected["REOPENED"] = {"due_unscheduled"}
    assert found.groupby("ticket_id")["problem"].agg(set).to_dict() == {
        t: p for t, p in expected.items() if p
    }
    [read] = reads  # the open requests only were read
    assert set(read["tickets"]["ticket_id"]) | set(read["intake"]["ticket_id"]) == set(expected)


# --------------------------------------------------------------------------- property vs reference

MONDAY = pd.Timestamp("2026-11-16 08:00")  # Central wall-clock; no DST change that week
grid = st.integers(0, 4 * 24 * 2).map(
    lambda n: f"{MONDAY + pd.Timedelta(minutes=30 * n):%Y-%m-%d %H:%M}"
)
maybe = st.one_of(st.none(), grid)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    """A few requests whose records fall before, at and after the instants of ``grid``."""
    reqs = []
    for n in range(draw(st.integers(0, 6))):
        change = None
        if draw(st.booleans()):
            keys = (
                "confirmed_at",
                "scheduled_start",
                "completed_at",
                "cancelled_at",
                "fee_accepted_at",
            )
            change = {key: draw(maybe) for key in keys}
            if change["scheduled_start"] is not None:
                end = pd.Timestamp(change["scheduled_start"]) + pd.Timedelta(hours=1)
                change["scheduled_end"] = f"{end:%Y-%m-%d %H:%M}"
            if change["fee_accepted_at"] is not None:
                change["fee_accepted_by"] = draw(st.sampled_from(["Jane Roe", "Pat Doe"]))
        has_ticket = draw(st.booleans()) or n % 3 != 0
        routing = draw(maybe)
        reqs.append(
            request(
                f"T-{n}",
                received=draw(grid),
                requested=draw(st.one_of(st.none(), st.just("ASAP"), grid)),
                created=draw(maybe) if has_ticket else None,
                ticket=draw(st.sampled_from([CUSTOMER, {}])),
                change=change,
                events=[] if routing is None or not has_ticket else [routed(routing)],
                has_ticket=has_ticket,
                has_intake=draw(st.booleans()) or not has_ticket,
            )
        )
    return frames(*reqs)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=requests(), when=grid)
def test_the_check_matches_every_request_read_whole(
    engine: sa.Engine, data: dict[str, pd.DataFrame], when: str
) -> None:
    with engine.begin() as conn:
        for table in schema.TABLES:
            conn.execute(store.Base.metadata.tables[table].delete())
    load(engine, data)
    assert_same_check(engine, at(when))
