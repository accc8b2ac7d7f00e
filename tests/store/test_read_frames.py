"""Tests of ipchange_core.store.read.read_frames on a week of requests (both backends).

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from ipchange_core import store
from ipchange_core.store import read as store_read
from tests.store.helpers import (
    assert_typed,
    expected,
    parsed,
    ticket,
    typed,
    utc,
)

# --- reading a period ---------------------------------------------------------------------------

START, END = utc("2026-11-16 06:00:00"), utc("2026-11-23 06:00:00")  # ISO week 47, Central


def period_data() -> dict[str, pd.DataFrame]:
    inside, before, after = "2026-11-18 12:00:00", "2026-11-10 12:00:00", "2026-11-25 12:00:00"
    cases = {  # ticket created_at, intake received_at (None = no such row)
        "both-inside": (inside, inside),
        "ticket-before": (before, inside),  # received = ticket's created_at: before the week
        "intake-before": (inside, before),
        "ticket-only": (inside, None),
        "intake-only": (None, inside),
        "at-start": ("2026-11-16 06:00:00", None),  # half-open: the start is in
        "at-end": ("2026-11-23 06:00:00", None),  # ... and the end is out
        "ticket-after": (after, inside),  # received = the intake, inside
        "both-after": (after, after),
        "intake-only-before": (None, before),
        "one-µs-before": ("2026-11-16 05:59:59.999999", "2026-11-17 00:00:00"),
    }
    tickets, intake, events, changes = [], [], [], []
    for name, (created, received) in cases.items():
        if created:
            tickets.append(ticket(name, created_at=created))
        if received:
            intake.append({"ticket_id": name, "received_at": received, "channel": "phone"})
        events.append({"ticket_id": name, "at": inside, "field": "status", "new_value": "Open"})
        changes.append({"ticket_id": name, "completed_at": after})
    return {
        "tickets": typed("tickets", tickets),
        "ticket_events": typed("ticket_events", events),
        "intake": typed("intake", intake),
        "changes": typed("changes", changes),
    }


def test_read_frames_selects_requests_by_their_earliest_time(engine: sa.Engine) -> None:
    data = period_data()
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")
    frames = store.read_frames(engine, START, END)
    assert_typed(frames)
    wanted = ["at-start", "both-inside", "intake-only", "ticket-after", "ticket-only"]
    for table, frame in frames.items():
        everything = data[table]
        pd.testing.assert_frame_equal(
            frame, expected(table, everything[everything["ticket_id"].isin(wanted)])
        )
    assert sorted(frames["changes"]["ticket_id"]) == wanted

    open_end = store.read_frames(engine, start=END)
    assert sorted(open_end["changes"]["ticket_id"]) == ["at-end", "both-after"]
    open_start = store.read_frames(engine, end=START)
    assert sorted(open_start["changes"]["ticket_id"]) == [
        "intake-before",
        "intake-only-before",
        "one-µs-before",
        "ticket-before",
    ]
    everything = store.read_frames(engine)
    assert len(everything["changes"]) == len(data["changes"])
    central = START.tz_convert("America/Chicago")  # any zone: it is the instant that counts
    assert sorted(store.read_frames(engine, central, END)["changes"]["ticket_id"]) == wanted
    # Nanosecond bounds: stored instants are whole µs, so 1 ns after START excludes START.
    later = store.read_frames(engine, START + pd.Timedelta(1, "ns"), END)
    assert "at-start" not in set(later["changes"]["ticket_id"])


def test_read_frames_of_an_empty_database_is_typed(engine: sa.Engine) -> None:
    frames = store.read_frames(engine, START, END)
    assert_typed(frames)
    assert all(frame.empty for frame in frames.values())


def test_read_frames_refuses_naive_or_reversed_periods(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.read_frames(engine, pd.Timestamp("2026-11-16"), END)
    with pytest.raises(ValueError, match="precedes"):
        store.read_frames(engine, END, START)


def test_read_frames_filters_in_sql(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    data = period_data()
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")
    store.read_frames(engine, START, END)
    with engine.connect() as conn:
        query = sa.union(
            *store_read.period_parts(store_read.utc(START, "start"), store_read.utc(END, "end"))
        )
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plans = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("USING INDEX ix_tickets_created_at" in p for p in plans), plans
    assert any("USING INDEX ix_intake_received_at" in p for p in plans), plans
    engine.dispose()
