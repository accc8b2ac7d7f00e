"""store.read_frames(policy=…): only the IP change requests of a period are read (issue 5)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import threading
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core import schema, store
from ipchange_core.evaluation import evaluate
from ipchange_core.policy import PolicySet, RequestFilter, load_policy
from ipchange_core.requests import (
    ASSEMBLED_COLUMNS,
    assemble,
    filter_matcher,
    recognised_tickets,
)
from ipchange_core.store import read as store_read
from ipchange_core.store import sqlite as store_sqlite
from ipchange_core.store.connection import reading
from tests.store.helpers import assert_typed, parsed, ticket, typed

BASE = pd.Timestamp("2026-11-01", tz="UTC").as_unit("us")
POLICY = load_policy()
# A second version from 2026-11-10 (Central) that recognises other tickets: each ticket is
# judged by the version in force at its created_at.
LATER = dataclasses.replace(
    POLICY.latest,
    version="later",
    effective_from=dt.date(2026, 11, 10),
    request_filter=RequestFilter(("Incident",), ("billing",), r"(?i)\bprinter\b"),
)
TWO_VERSIONS = PolicySet(versions=(POLICY.latest, LATER), sources=POLICY.sources)


def hours(n: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(hours=n)


def load(engine: sa.Engine, data: dict[str, pd.DataFrame]) -> None:
    with engine.begin() as conn:
        for table in schema.TABLES:
            conn.execute(store.Base.metadata.tables[table].delete())
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")


def requests_of(frames: dict[str, pd.DataFrame], policy: PolicySet) -> dict[str, pd.DataFrame]:
    """The old all-tickets result filtered to the requests evaluate() judges."""
    ids = set(assemble(*(frames[t] for t in schema.TABLES), policy)["ticket_id"])
    return {t: f[f["ticket_id"].isin(ids)].reset_index(drop=True) for t, f in frames.items()}


def assert_same(fast: dict[str, pd.DataFrame], slow: dict[str, pd.DataFrame]) -> None:
    for table in schema.TABLES:
        pd.testing.assert_frame_equal(fast[table], slow[table], obj=table)


# --- table: what is read and what is not -------------------------------------------------------

START, END = hours(24), hours(48)
INSIDE, BEFORE, AFTER = hours(30), hours(10), hours(60)
CASES = {  # ticket_id: (ticket fields or None, intake received_at or None, change row?, read?)
    "unrelated": ({"subject": "Printer jam"}, None, False, False),
    "by-subject": ({"subject": "Please change the static IP"}, None, False, True),
    "by-tag": ({"subject": "Router", "tags": "voip, IP_Change"}, None, False, True),
    "by-type": ({"subject": "Router", "ticket_type": "IP Change"}, None, False, True),
    "with-intake": ({"subject": "Router"}, INSIDE, False, True),
    "intake-later": ({"subject": "Router"}, AFTER, False, True),  # received = created_at
    "intake-earlier": ({"subject": "Router"}, BEFORE, False, False),  # received before START
    "with-change": ({"subject": "Router"}, None, True, True),
    "intake-only": (None, INSIDE, False, True),
    "unrelated-later": ({"subject": "Printer jam", "created_at": AFTER}, None, False, False),
    "request-later": ({"created_at": AFTER}, None, False, False),
    "ticket-earlier": ({"subject": "Router", "created_at": BEFORE}, INSIDE, False, False),
    "ticket-later": ({"subject": "Router", "created_at": AFTER}, INSIDE, False, True),
}


def case_data() -> dict[str, pd.DataFrame]:
    tickets, intake, changes, events = [], [], [], []
    for name, (fields, received, change, _) in CASES.items():
        if fields is not None:
            tickets.append(ticket(name, **{"created_at": INSIDE, **fields}))
        if received is not None:
            intake.append({"ticket_id": name, "received_at": received, "channel": "phone"})
        if change:
            changes.append({"ticket_id": name, "completed_at": AFTER})
        events.append({"ticket_id": name, "at": AFTER, "field": "status", "new_value": "Open"})
    return {
        "tickets": typed("tickets", tickets),
        "ticket_events": typed("ticket_events", events),
        "intake": typed("intake", intake),
        "changes": typed("changes", changes),
    }


def test_only_the_requests_of_the_period_are_read(engine: sa.Engine) -> None:
    load(engine, case_data())
    fast = store.read_frames(engine, START, END, policy=POLICY)
    assert_typed(fast)
    wanted = sorted(name for name, case in CASES.items() if case[3])
    read = set().union(*(set(frame["ticket_id"]) for frame in fast.values()))
    assert sorted(read) == wanted
    assert sorted(fast["ticket_events"]["ticket_id"]) == wanted  # every row of each request
    everything = store.read_frames(engine, START, END)
    assert "unrelated" in set(everything["tickets"]["ticket_id"])  # ... which policy=None reads
    assert_same(fast, requests_of(everything, POLICY))
    now = pd.Timestamp("2026-12-01", tz="UTC")
    pd.testing.assert_frame_equal(
        evaluate(fast, policy=POLICY, as_of=now), evaluate(everything, policy=POLICY, as_of=now)
    )


def test_sqlite_walks_the_smaller_side_and_uses_the_period_indexes(sqlite_url: str) -> None:
    sqlite = store.connect(sqlite_url)
    load(sqlite, case_data())
    lo, hi = store_read.utc(START, "start"), store_read.utc(END, "end")
    with reading(sqlite) as conn:
        recognised = store_sqlite.recognised(conn, POLICY)
        for walk in (False, True):
            tables = frozenset({"changes", "intake"} if walk else ())
            query = sa.union(*store_read.period_parts(lo, hi, recognised, walk=tables))
            sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
            assert any("USING INDEX ix_tickets_created_at" in p for p in plan), plan
            assert any("USING INDEX ix_intake_received_at" in p for p in plan), plan
            walks = any(p.startswith("SCAN changes") for p in plan)
            assert walks == walk, plan
            got = sorted(conn.execute(query).scalars())
            assert got == sorted(name for name, case in CASES.items() if case[3])
    sqlite.dispose()


def test_sqlite_keeps_one_index_of_the_policys_candidates(sqlite_url: str) -> None:
    sqlite = store.connect(sqlite_url)
    load(sqlite, case_data())
    assert requests_indexes(sqlite) == []
    assert store.index_requests(sqlite, POLICY)  # built
    assert not store.index_requests(sqlite, POLICY)  # already there
    [first] = requests_indexes(sqlite)
    assert store.index_requests(sqlite, TWO_VERSIONS)  # another filter: replaced
    [second] = requests_indexes(sqlite)
    assert second != first
    anything = dataclasses.replace(POLICY.latest, request_filter=RequestFilter((), (), r"."))
    assert store.index_requests(sqlite, PolicySet(versions=(anything,), sources=POLICY.sources))
    assert requests_indexes(sqlite) == []  # any ticket may be a request: no index helps
    sqlite.dispose()


def test_sqlite_builds_the_index_in_a_small_cache(sqlite_url: str) -> None:
    """Its memory must not grow with the table (figures: bench/RESULTS.md)."""
    sqlite = store.connect(sqlite_url)
    load(sqlite, case_data())
    statements: list[str] = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    sa.event.listen(sqlite, "before_cursor_execute", listen)
    store.index_requests(sqlite, POLICY)
    sa.event.remove(sqlite, "before_cursor_execute", listen)
    create = next(i for i, sql in enumerate(statements) if sql.startswith("CREATE INDEX"))
    cuts = [sql for sql in statements[:create] if sql.startswith("PRAGMA cache_size =")]
    assert cuts == [f"PRAGMA cache_size = -{store_sqlite.BULK_CACHE_KIB}"]
    with sqlite.connect() as conn:  # the pooled connection has its cache back
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == -131072
    sqlite.dispose()


@pytest.mark.parametrize("indexed", [False, True])
def test_sqlite_finds_the_candidates_through_their_index(sqlite_url: str, indexed: bool) -> None:
    sqlite = store.connect(sqlite_url)
    load(sqlite, case_data())
    if indexed:
        store.index_requests(sqlite, POLICY)
    [name] = requests_indexes(sqlite) if indexed else [None]
    lo = store_read.utc(START, "start")
    with reading(sqlite) as conn:
        parts = store_read.period_parts(
            lo, None, store_sqlite.recognised(conn, POLICY), walk=frozenset()
        )
        by_ticket = parts[1]
        sql = str(by_ticket.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        assert plan[0].startswith("SEARCH tickets USING INDEX"), plan
        assert (f"USING INDEX {name} " in plan[0]) == indexed, plan
        assert set(conn.execute(by_ticket).scalars()) == {
            "by-subject",
            "by-tag",
            "by-type",
            "request-later",
        }
    sqlite.dispose()


def test_sqlite_runs_the_filter_only_for_tickets_without_intake_or_change_rows(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Linked tickets are requests whatever their subject: found by their row, never judged."""
    judged: list[str] = []

    def spying(request_filter: RequestFilter) -> Any:
        matcher = filter_matcher(request_filter)

        def match(ticket_type: str, tags: str, subject: str) -> bool:
            judged.append(subject)
            return matcher(ticket_type, tags, subject)

        return match

    monkeypatch.setattr(store_sqlite, "filter_matcher", spying)
    subjects = {  # ticket_id: (subject, intake?, change?), each a candidate of the prefilter
        "with-intake": ("IP change A", True, False),
        "with-change": ("IP change B", False, True),
        "with-both": ("IP change C", True, True),
        "unlinked": ("IP change D", False, False),
        "unlinked-other": ("Shipping update", False, False),
    }
    data = case_data()
    data["tickets"] = typed(
        "tickets", [ticket(t, subject=s, created_at=INSIDE) for t, (s, _, _) in subjects.items()]
    )
    data["intake"] = typed(
        "intake",
        [{"ticket_id": t, "received_at": INSIDE} for t, (_, i, _) in subjects.items() if i],
    )
    data["changes"] = typed(
        "changes",
        [{"ticket_id": t, "completed_at": AFTER} for t, (_, _, c) in subjects.items() if c],
    )
    sqlite = store.connect(sqlite_url)
    load(sqlite, data)
    read = store.read_frames(sqlite, START, END, policy=POLICY)
    sqlite.dispose()
    assert sorted(judged) == ["IP change D", "Shipping update"]
    expected = ["unlinked", "with-both", "with-change", "with-intake"]
    assert read["tickets"]["ticket_id"].tolist() == expected


@pytest.mark.xdist_group("postgres")
@pytest.mark.parametrize("elsewhere", [False, True])
def test_postgresql_reads_intake_and_changes_with_their_tickets(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch, elsewhere: bool
) -> None:
    """The selection pass joins each ticket's intake and change row: they are not read again.

    Only the intake rows of the period whose ticket that pass did not find (without a ticket,
    or with one created outside the period) have their rows looked up: their tickets, and the
    intake and change rows of those that are requests of the period.
    """
    reads: list[str] = []
    read_table = store_read.read_table

    def spying(conn: Any, table: str, *args: Any) -> pd.DataFrame:
        reads.append(table)
        return read_table(conn, table, *args)

    monkeypatch.setattr(store_read, "read_table", spying)
    data = case_data()
    away = () if elsewhere else ("intake-only", "ticket-later", "ticket-earlier")
    data = {t: f[~f["ticket_id"].isin(away)].reset_index(drop=True) for t, f in data.items()}
    engine = store.connect(pg_schema_url)
    load(engine, data)
    for columns in (None, ASSEMBLED_COLUMNS):
        reads.clear()
        fast = store.read_frames(engine, START, END, policy=POLICY, columns=columns)
        if elsewhere:
            assert sorted(reads) == ["changes", "intake", "ticket_events", "tickets"]
        else:
            assert reads == ["ticket_events"]
        wanted = [n for n, case in CASES.items() if case[3] and case[1] and n not in away]
        assert sorted(fast["intake"]["ticket_id"]) == sorted(wanted)
        assert fast["changes"]["ticket_id"].tolist() == ["with-change"]
    engine.dispose()


# --- property: the same rows as the all-tickets read, filtered to requests ---------------------

SUBJECTS = ["IP change for site 12", "Printer jam", "New static IP", "Invoice", "printer offline"]
TAGS = ["", "ip-change", "billing", "VoIP, IP_Change", "voip"]
TYPES = ["", "IP Change", "Incident"]


@st.composite
def help_desks(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    tickets, intake, changes, events = [], [], [], []
    for n in range(draw(st.integers(0, 14))):
        name = f"T-{n:02d}"
        created = hours(draw(st.integers(0, 480)))
        has_ticket = draw(st.booleans()) or n % 5 != 0
        if has_ticket:
            tickets.append(
                ticket(
                    name,
                    created_at=created,
                    subject=draw(st.sampled_from(SUBJECTS)),
                    tags=draw(st.sampled_from(TAGS)),
                    ticket_type=draw(st.sampled_from(TYPES)),
                )
            )
        if draw(st.booleans()) or not has_ticket:
            received = created + pd.Timedelta(hours=draw(st.integers(-100, 100)))
            intake.append({"ticket_id": name, "received_at": received, "channel": "phone"})
        if draw(st.booleans()):
            changes.append({"ticket_id": name, "completed_at": created + pd.Timedelta(hours=9)})
        for k in range(draw(st.integers(0, 2))):
            at = created + pd.Timedelta(hours=k + 1)
            events.append({"ticket_id": name, "at": at, "field": "department", "new_value": "X"})
    return {
        "tickets": typed("tickets", tickets),
        "ticket_events": typed("ticket_events", events),
        "intake": typed("intake", intake),
        "changes": typed("changes", changes),
    }


bounds = st.one_of(st.none(), st.integers(-20, 500).map(hours))


def requests_indexes(engine: sa.Engine) -> list[str]:
    """The names of the SQLite request-candidate indexes (store.index_requests)."""
    find = "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_tickets_req%'"
    with engine.begin() as conn:
        return sorted(conn.exec_driver_sql(find).scalars())


def drop_requests_indexes(engine: sa.Engine) -> None:
    names = requests_indexes(engine)
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=help_desks(),
    start=bounds,
    end=bounds,
    policy=st.sampled_from([POLICY, TWO_VERSIONS]),
    indexed=st.booleans(),
)
def test_requests_only_equals_all_tickets_filtered_to_requests(
    engine: sa.Engine,
    data: dict[str, pd.DataFrame],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    policy: PolicySet,
    indexed: bool,
) -> None:
    """With or without SQLite's index of the policy's candidates: the same rows."""
    if start is not None and end is not None and end < start:
        start, end = end, start
    load(engine, data)
    if engine.dialect.name == "sqlite":
        drop_requests_indexes(engine)
        if indexed:
            assert store.index_requests(engine, policy)
    fast = store.read_frames(engine, start, end, policy=policy)
    assert_typed(fast)
    assert_same(fast, requests_of(store.read_frames(engine, start, end), policy))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=help_desks(), start=bounds, end=bounds)
def test_a_period_reads_every_row_received_in_it(
    engine: sa.Engine,
    data: dict[str, pd.DataFrame],
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
) -> None:
    """Without a policy: the rows of the ids received in [start, end), by the unselected read."""
    if start is not None and end is not None and end < start:
        start, end = end, start
    load(engine, data)
    whole = store.read_frames(engine)  # no period and no policy: nothing is selected
    times = [
        whole["tickets"].set_index("ticket_id")["created_at"],
        whole["intake"].set_index("ticket_id")["received_at"],
    ]
    received = pd.concat(times).groupby(level=0).min()
    inside = pd.Series(True, index=received.index)
    if start is not None:
        inside &= received >= start
    if end is not None:
        inside &= received < end
    ids = set(received.index[inside])
    expected = {t: f[f["ticket_id"].isin(ids)].reset_index(drop=True) for t, f in whole.items()}
    assert_same(store.read_frames(engine, start, end), expected)


@st.composite
def closing_help_desks(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    """:func:`help_desks` whose change rows are done, cancelled, both or neither, on a grid."""
    data = draw(help_desks())
    instants = st.one_of(st.none(), st.integers(0, 500).map(hours))
    rows = [
        {**row, "completed_at": draw(instants), "cancelled_at": draw(instants)}
        for row in data["changes"][["ticket_id"]].to_dict("records")
    ]
    if draw(st.booleans()):  # a row of no ticket and no intake: no request, read only unselected
        rows.append({"ticket_id": "ORPHAN", "completed_at": hours(draw(st.integers(0, 500)))})
    return {**data, "changes": typed("changes", rows)}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=closing_help_desks(),
    end=bounds,
    open_at=st.builds(  # a nanosecond before an hour: not done at that hour
        lambda n, ns: hours(n) - pd.Timedelta(nanoseconds=ns),
        st.integers(-20, 520),
        st.sampled_from([0, 1]),
    ),
    policy=st.sampled_from([None, POLICY]),
)
def test_open_at_leaves_out_exactly_the_requests_closed_then(
    engine: sa.Engine,
    data: dict[str, pd.DataFrame],
    end: pd.Timestamp | None,
    open_at: pd.Timestamp,
    policy: PolicySet | None,
) -> None:
    """The rows of the same read without the ids done or cancelled at or before ``open_at``."""
    load(engine, data)
    whole = store.read_frames(engine, None, end, policy=policy)
    changes = whole["changes"]
    closed = changes.loc[
        (changes["completed_at"] <= open_at) | (changes["cancelled_at"] <= open_at), "ticket_id"
    ]
    expected = {
        t: f[~f["ticket_id"].isin(set(closed))].reset_index(drop=True) for t, f in whole.items()
    }
    fast = store.read_frames(engine, None, end, policy=policy, open_at=open_at)
    assert_typed(fast)
    assert_same(fast, expected)


def test_open_at_must_be_aware(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="open_at must be a timezone-aware instant"):
        store.read_frames(engine, open_at=pd.Timestamp("2026-11-02"))


# --- the filter: one definition, in pandas and in the database ---------------------------------


@pytest.mark.parametrize(
    ("ticket_type", "tags", "subject", "recognised"),
    [
        ("IP Change", "", "Router", True),  # type, exact
        ("ip change", "", "Router", False),
        ("", "billing, IP-Change ", "Router", True),  # a tag, any case, spaces ignored
        ("", "ip-changes", "Router", False),  # a whole tag only
        ("", "", "Need a new static IP", True),  # subject pattern
        ("", "", "Striped pattern", False),
        ("", "", "", False),
    ],
)
def test_filter_matcher_and_recognised_tickets_agree(
    ticket_type: str, tags: str, subject: str, recognised: bool
) -> None:
    assert filter_matcher(POLICY.latest.request_filter)(ticket_type, tags, subject) is recognised
    frame = typed("tickets", [ticket("T", ticket_type=ticket_type, tags=tags, subject=subject)])
    assert recognised_tickets(frame, POLICY).tolist() == [recognised]


# --- SQLite reads on two connections only when both see one snapshot ----------------------------


def with_other_values(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """``data`` with a value of every row changed (an event row's change is a new key)."""
    other = {table: frame.copy() for table, frame in data.items()}
    other["tickets"]["owner"] = "someone else"
    other["intake"]["site"] = "another site"
    other["changes"]["engineer"] = "another engineer"
    other["ticket_events"]["new_value"] = "Closed"
    return other


@pytest.mark.parametrize("load_between", [False, True], ids=["alone", "load-between"])
def test_sqlite_reads_on_two_connections_only_in_one_snapshot(
    sqlite_url: str, load_between: bool
) -> None:
    """A second connection reads tables beside the first, unless a load committed in between.

    The load lands after the first connection's snapshot and before the second's: a second
    connection that read then would return the new values of whichever tables it took.
    """
    engine = store.connect(sqlite_url)
    data = case_data()
    load(engine, data)
    before = store.read_frames(engine, START, END, policy=POLICY)
    begins: list[int] = []
    readers: set[str] = set()

    @sa.event.listens_for(engine, "begin")
    def load_after_the_first_snapshot(conn: sa.Connection) -> None:
        begins.append(1)
        if load_between and len(begins) == 2:  # the second reading connection's BEGIN
            for table, frame in with_other_values(data).items():
                store.load(engine, parsed(table, frame, name=f"{table}-2.csv"), policy_version="t")

    def trace(statement: str) -> None:
        if "group_concat" in statement:  # a table's read (the SQLite backend's read_columns)
            readers.add(threading.current_thread().name)

    @sa.event.listens_for(engine, "checkout")
    def traced(dbapi_connection: Any, *args: Any) -> None:
        dbapi_connection.set_trace_callback(trace)

    frames = store.read_frames(engine, START, END, policy=POLICY)
    sa.event.remove(engine, "begin", load_after_the_first_snapshot)
    sa.event.remove(engine, "checkout", traced)
    engine.dispose()  # (the pooled connections, traced)
    assert_same(frames, before)
    assert len(readers) == (1 if load_between else 2)
    after = store.read_frames(engine, START, END, policy=POLICY)
    if load_between:  # the load did commit: a read now sees its values
        assert set(after["tickets"]["owner"]) == {"someone else"}
        assert set(after["intake"]["site"]) == {"another site"}
        assert set(after["changes"]["engineer"]) == {"another engineer"}
        assert len(after["ticket_events"]) == 2 * len(before["ticket_events"])
    else:
        assert_same(after, before)
    engine.dispose()


# --- SQLite reads each column in one piece: every value comes back exactly ----------------------


def test_sqlite_columns_keep_nul_characters_and_empty_values(sqlite_url: str) -> None:
    """Text is cut by byte lengths, not by a separator: NUL, "" and commas are plain values."""
    sqlite = store.connect(sqlite_url)
    subjects = ["IP change a\x00b", "", "IP change ,,", "IP change \u0131\x00", "new IP ☕"]
    tickets = [ticket(f"T-{n}", subject=s, created_at=INSIDE) for n, s in enumerate(subjects)]
    intake = [{"ticket_id": "T-1", "received_at": INSIDE, "channel": "phone"}]
    data = {"tickets": typed("tickets", tickets), "intake": typed("intake", intake)}
    load(sqlite, data)
    frames = store.read_frames(sqlite, START, END, policy=POLICY)
    assert_typed(frames)
    pd.testing.assert_frame_equal(frames["tickets"], data["tickets"], check_exact=True)
    pd.testing.assert_frame_equal(frames["intake"], data["intake"], check_exact=True)
    sqlite.dispose()


# --- columns=: a narrower read is the full read restricted to those columns ----------------------


@st.composite
def column_choices(draw: st.DrawFn) -> dict[str, list[str]]:
    """Some tables, each with its key columns and some others, in any order."""
    chosen = {}
    for table in draw(st.lists(st.sampled_from(list(schema.TABLES)), unique=True)):
        keys = list(schema.NATURAL_KEYS[table])
        others = [name for name in schema.typed_dtypes(table) if name not in keys]
        chosen[table] = draw(
            st.permutations(keys + draw(st.lists(st.sampled_from(others), unique=True)))
        )
    return chosen


def restricted(frames: dict[str, pd.DataFrame], columns: dict[str, Any]) -> dict[str, Any]:
    return {t: f[list(columns.get(t, f.columns))] for t, f in frames.items()}


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=help_desks(), columns=column_choices(), policy=st.sampled_from([None, POLICY]))
def test_a_column_limited_read_is_the_full_read_restricted(
    engine: sa.Engine,
    data: dict[str, pd.DataFrame],
    columns: dict[str, list[str]],
    policy: PolicySet | None,
) -> None:
    load(engine, data)
    limited = store.read_frames(engine, START, END, policy=policy, columns=columns)
    assert_same(limited, restricted(store.read_frames(engine, START, END, policy=policy), columns))


def test_the_assembled_columns_evaluate_like_all_columns(engine: sa.Engine) -> None:
    """What `export requests` reads: the same evaluation, and on SQLite the events' index only."""
    data = case_data()
    events = [
        {"ticket_id": "with-intake", "at": INSIDE, "field": "department", "old_value": "TSC",
         "new_value": "Implementation", "actor": "ann"},
        {"ticket_id": "with-intake", "at": INSIDE, "field": "status", "old_value": "New",
         "new_value": "Open", "actor": "bob"},
        {"ticket_id": "by-tag", "at": BEFORE, "field": "owner", "old_value": "",
         "new_value": "cy", "actor": ""},
    ]  # fmt: skip
    data["ticket_events"] = pd.concat([data["ticket_events"], typed("ticket_events", events)])
    load(engine, data)
    limited = store.read_frames(engine, START, END, policy=POLICY, columns=ASSEMBLED_COLUMNS)
    full = store.read_frames(engine, START, END, policy=POLICY)
    assert_same(limited, restricted(full, ASSEMBLED_COLUMNS))
    now = pd.Timestamp("2026-12-01", tz="UTC")
    pd.testing.assert_frame_equal(
        evaluate(limited, policy=POLICY, as_of=now), evaluate(full, policy=POLICY, as_of=now)
    )
    if engine.dialect.name == "sqlite":  # the events' columns come from their unique index
        events = store.Base.metadata.tables["ticket_events"]
        where = events.c.ticket_id.in_(sa.select(store.Base.metadata.tables["tickets"].c.ticket_id))
        query = store_read.storage_select(
            store_sqlite.BACKEND, events, where, ASSEMBLED_COLUMNS["ticket_events"]
        )
        with engine.connect() as conn:
            sql = str(query.compile(dialect=conn.dialect))
            plan = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
        assert any("COVERING INDEX ux_ticket_events_key" in p for p in plan), plan


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"ticket": ["ticket_id"]}, "'ticket' is not a canonical table"),
        ({"tickets": ["ticket_id", "nope"]}, r"unknown \['nope'\], key columns missing \[\]"),
        ({"tickets": ["subject"]}, r"key columns missing \['ticket_id'\]"),
        ({"ticket_events": ["ticket_id", "at", "field"]}, r"missing \['old_value', 'new_value'\]"),
        ({"intake": ["ticket_id", "site", "site"]}, r"named twice \['site'\]"),
    ],
)
def test_columns_must_be_known_and_hold_the_key(
    sqlite_url: str, columns: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        store.read_frames(store.connect(sqlite_url), columns=columns)


def _keyed(rows: list[tuple[str, int]]) -> pd.DataFrame:
    """A frame of (text, instant in µs) key rows, typed as read_frames types them."""
    return pd.DataFrame(
        {
            "ticket_id": pd.Series([r[0] for r in rows], dtype="str"),
            "at": pd.to_datetime(
                pd.Series([r[1] for r in rows], dtype="int64"), unit="us", utc=True
            ),
        }
    )


@pytest.mark.parametrize(
    ("rows", "keys", "in_order"),
    [
        ([], ["ticket_id", "at"], True),
        ([("b", 5)], ["ticket_id", "at"], True),
        ([("a", 5), ("a", 5)], ["ticket_id", "at"], True),  # ties allowed
        ([("a", 9), ("b", 1)], ["ticket_id", "at"], True),  # a later key decides only on a tie
        ([("a", 9), ("a", 1)], ["ticket_id", "at"], False),
        ([("a", 9), ("a", 1)], ["ticket_id"], True),
        ([("b", 1), ("a", 1)], ["ticket_id", "at"], False),
        ([("Z", 1), ("a", 1), ("é", 1)], ["ticket_id"], True),  # code points: Z < a < é
        ([("é", 1), ("z", 1)], ["ticket_id"], False),
        ([("a", -5), ("a", 0)], ["ticket_id", "at"], True),  # instants before 1970
    ],
)
def test_in_order(rows: list[tuple[str, int]], keys: list[str], in_order: bool) -> None:
    assert store_read.in_order(_keyed(rows), keys) is in_order


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(alphabet="aAzé İı😀", max_size=3),
            st.integers(min_value=-(10**12), max_value=10**12),
        ),
        max_size=8,
    ),
    st.booleans(),
    st.sampled_from([["ticket_id"], ["at"], ["ticket_id", "at"], ["at", "ticket_id"]]),
)
def test_in_order_is_python_tuple_order(
    rows: list[tuple[str, int]], presort: bool, keys: list[str]
) -> None:
    """Same answer as comparing the key tuples of neighbouring rows in Python."""
    position = {"ticket_id": 0, "at": 1}
    key = lambda row: tuple(row[position[k]] for k in keys)  # noqa: E731
    if presort:
        rows = sorted(rows, key=key)
    expected = all(key(a) <= key(b) for a, b in itertools.pairwise(rows))
    assert store_read.in_order(_keyed(rows), keys) is expected
