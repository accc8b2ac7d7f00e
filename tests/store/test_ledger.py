"""Tests of ipchange_core.store.ledger: the fee ledger is append-only once exported.

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ipchange_core import schema, store
from ipchange_core.errors import IpchangeError

# --- fee ledger ---------------------------------------------------------------------------------


def fees(*amounts: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(len(amounts))],
            "fee_status": ["billable"] * len(amounts),
            "amount_cents": list(amounts),
        }
    )


def test_an_exported_fee_is_never_updated_or_deleted(engine: sa.Engine) -> None:
    exported, pending = store.append_fees(engine, fees(25_000, 25_000), policy_version="2026.1")
    batch = store.record_export(engine, [exported], period="2026-11", format="csv", sha256="ab")
    statements = [
        f"UPDATE fee_ledger SET amount_cents = 0 WHERE id = {exported}",
        f"UPDATE fee_ledger SET export_batch_id = NULL WHERE id = {exported}",
        f"DELETE FROM fee_ledger WHERE id = {exported}",
        f"UPDATE export_batches SET total_cents = 0 WHERE id = {batch}",
        f"DELETE FROM export_batches WHERE id = {batch}",
    ]
    if engine.dialect.name == "postgresql":
        statements += ["TRUNCATE fee_ledger", "TRUNCATE export_batches CASCADE"]
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="never"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    # Rows not yet exported are not frozen.
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE fee_ledger SET amount_cents = 100 WHERE id = {pending}")
    # The ORM refuses too, with the package's own error.
    with Session(engine) as session:
        row = session.get(store.FeeLedger, exported)
        row.amount_cents = 1
        with pytest.raises(IpchangeError, match="never updated or deleted"):
            session.flush()
        session.rollback()
        session.delete(session.get(store.FeeLedger, exported))
        with pytest.raises(IpchangeError, match="never updated or deleted"):
            session.flush()
    ledger = store.fee_ledger(engine)
    assert ledger.set_index("id")["amount_cents"].to_dict() == {exported: 25_000, pending: 100}
    assert ledger["export_batch_id"].tolist() == [batch, pd.NA]


def test_a_fee_is_never_exported_twice(engine: sa.Engine) -> None:
    ids = store.append_fees(engine, fees(25_000, 25_000, 0), policy_version="2026.1")
    batch = store.record_export(engine, ids[:2], period="2026-11", format="xlsx", sha256="cd")
    with pytest.raises(IpchangeError, match="already exported in batch"):
        store.record_export(engine, ids, period="2026-11", format="xlsx", sha256="ef")
    with pytest.raises(IpchangeError, match="no fee_ledger rows"):
        store.record_export(engine, [9999], period="2026-11", format="xlsx", sha256="ef")
    with engine.connect() as conn:
        batches = conn.execute(sa.text("SELECT id, rows, total_cents FROM export_batches")).all()
    assert [tuple(b) for b in batches] == [(batch, 2, 50_000)]


def test_corrections_are_new_rows_that_net_out(engine: sa.Engine) -> None:
    (original,) = store.append_fees(engine, fees(25_000), policy_version="2026.1")
    store.record_export(engine, [original], period="2026-11", format="csv", sha256="ab")
    reversal, corrected = store.correct_fee(
        engine, original, amount_cents=0, fee_status="waived", policy_version="2026.2"
    )
    ledger = store.fee_ledger(engine).set_index("id")
    assert ledger.loc[original, "amount_cents"] == 25_000  # the exported row is untouched
    assert ledger.loc[reversal, ["amount_cents", "reverses_id"]].tolist() == [-25_000, original]
    assert ledger.loc[corrected, ["amount_cents", "fee_status"]].tolist() == [0, "waived"]
    assert ledger["amount_cents"].sum() == 0
    assert ledger.loc[[reversal, corrected], "export_batch_id"].isna().all()  # next export
    assert str(ledger["computed_at"].dtype) == schema.TIMESTAMP_DTYPE
    with pytest.raises(IpchangeError, match="already reversed"):
        store.correct_fee(engine, original, amount_cents=1, fee_status="x", policy_version="v")
    with pytest.raises(IpchangeError, match="is a reversal"):
        store.correct_fee(engine, reversal, amount_cents=1, fee_status="x", policy_version="v")


# --- waivers, credits and exports against a plain-integer reference ------------------------------

FEE = 25_000
TICKETS = 3


class Reference:
    """The obviously-correct bookkeeping of a few tickets, in plain integers."""

    def __init__(self, billable: list[bool]) -> None:
        self.billable = list(billable)
        self.waived = [False] * TICKETS
        self.credited = [0] * TICKETS  # every credit given
        self.pending_credit = [0] * TICKETS  # credits not yet exported
        self.exported = [0] * TICKETS  # sum of the lines billing received

    def net(self, t: int) -> int:
        """What billing should hold for ticket t once everything due went out."""
        if self.waived[t] or not self.billable[t]:
            return 0
        return max(FEE - self.credited[t], 0)

    def credit_cap(self, t: int) -> int:
        """The most a credit may give: what billing holds net after the pending credits."""
        return 0 if self.waived[t] else self.exported[t] - self.pending_credit[t]


def due_frame(ids: list[str], ref: Reference) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": ids,
            "fee_status": ["billable" if b else "not_applicable" for b in ref.billable],
            "fee_cents": [FEE] * TICKETS,
            "policy_version": ["2026.1"] * TICKETS,
            "why": [
                "fee billable again under policy 2026.1" if b else "fee now not_applicable"
                for b in ref.billable
            ],
        }
    )


operation = st.one_of(
    st.tuples(st.just("load"), st.integers(0, TICKETS - 1), st.booleans()),
    st.tuples(st.just("waive"), st.integers(0, TICKETS - 1), st.booleans()),
    st.tuples(
        st.just("credit"),
        st.integers(0, TICKETS - 1),
        st.none() | st.integers(-100, FEE + 100),
    ),
    st.tuples(st.just("export"), st.just(0), st.just(None)),
)


def run_operations(engine: sa.Engine, billable: list[bool], ops: list[tuple]) -> None:
    run = uuid.uuid4().hex[:8]  # examples share the database: each has its own tickets
    ids = [f"P-{run}-{t}" for t in range(TICKETS)]
    ref = Reference(billable)
    seen: set[int] = set()

    def export() -> None:
        batch = store.export_batch(
            engine, due_frame(ids, ref), period=run, format="csv", digest=lambda rows: "x"
        )
        assert seen.isdisjoint(batch.rows["id"]), "a ledger row was exported twice"
        seen.update(batch.rows["id"])
        for t, ticket in enumerate(ids):
            ref.exported[t] += int(
                batch.rows.loc[batch.rows["ticket_id"] == ticket, "amount_cents"].sum()
            )
            ref.pending_credit[t] = 0
        assert ref.exported == [ref.net(t) for t in range(TICKETS)]

    for op, t, arg in [*ops, ("export", 0, None)]:
        if op == "load":
            ref.billable[t] = arg
        elif op == "waive":
            fee_due = ref.billable[t] if arg else False
            allowed = not ref.waived[t] and (fee_due or ref.credit_cap(t) > 0)
            if allowed:
                store.waive(engine, ids[t], reason="outage on our side", by="Pat", fee_due=fee_due)
                ref.waived[t] = True
            else:
                with pytest.raises(IpchangeError, match="nothing to waive"):
                    store.waive(engine, ids[t], reason="r", by="Pat", fee_due=fee_due)
        elif op == "credit":
            cap = ref.credit_cap(t)
            amount = cap if arg is None else arg
            if 0 < amount <= cap:
                _, given = store.credit(
                    engine, ids[t], amount_cents=arg, reason="goodwill", by="Lee"
                )
                assert given == amount
                ref.credited[t] += amount
                ref.pending_credit[t] += amount
            else:
                with pytest.raises(IpchangeError, match="credit"):
                    store.credit(engine, ids[t], amount_cents=arg, reason="goodwill", by="Lee")
        else:
            export()
    # a second export with nothing new bills nothing
    again = store.export_batch(
        engine, due_frame(ids, ref), period=run, format="csv", digest=lambda rows: "x"
    )
    assert again.batch_id is None and again.rows.empty and not again.taken
    ledger = store.fee_ledger(engine)
    ledger = ledger[ledger["ticket_id"].isin(ids)]
    assert (ledger["reason"].str.strip() != "").all() and (
        ledger["by_name"].str.strip() != ""
    ).all()
    assert (ledger["os_user"] != "").all()
    for t, ticket in enumerate(ids):
        mine = ledger[ledger["ticket_id"] == ticket]
        billed = mine.loc[mine["export_batch_id"].notna(), "amount_cents"]
        assert int(billed.sum()) == ref.net(t) == ref.exported[t]
        credits = -int(mine.loc[mine["kind"] == "credit", "amount_cents"].sum())
        assert credits <= int(billed[billed > 0].sum())  # credits never exceed what was billed


OPS = st.lists(operation, max_size=12)
BILLABLE = st.lists(st.booleans(), min_size=TICKETS, max_size=TICKETS)
TABLE = [
    # billed, waived after export: the reversal goes out with the next batch
    ([True, False, False], [("export", 0, None), ("waive", 0, True)]),
    # partial credit, then the fee stops being billable, then comes back
    (
        [True, True, False],
        [
            ("export", 0, None),
            ("credit", 1, 10_000),
            ("load", 1, False),
            ("export", 0, None),
            ("load", 1, True),
        ],
    ),
    # credit above the net is refused; a full credit, a second credit refused
    (
        [True, False, False],
        [("export", 0, None), ("credit", 0, FEE + 1), ("credit", 0, None), ("credit", 0, 1)],
    ),
    # waiving a ticket with no fee, and twice
    ([False, True, False], [("waive", 0, False), ("waive", 1, True), ("waive", 1, True)]),
]


@pytest.mark.xdist_group("postgres")
@pytest.mark.parametrize(("billable", "ops"), TABLE)
def test_ledger_table_cases(engine: sa.Engine, billable, ops) -> None:
    run_operations(engine, billable, ops)


@pytest.mark.xdist_group("postgres")
@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(billable=BILLABLE, ops=OPS)
def test_exported_lines_net_to_the_current_fee(engine: sa.Engine, billable, ops) -> None:
    run_operations(engine, billable, ops)


@pytest.mark.fuzz
@pytest.mark.xdist_group("postgres")
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(billable=BILLABLE, ops=OPS)
def test_exported_lines_net_to_the_current_fee_long(engine: sa.Engine, billable, ops) -> None:
    run_operations(engine, billable, ops)


@pytest.mark.parametrize(("reason", "by"), [("", "Pat"), ("why", "  "), ("\t", "")])
def test_blank_reason_or_name_writes_nothing(engine: sa.Engine, reason, by) -> None:
    with pytest.raises(IpchangeError, match="needs"):
        store.waive(engine, "T-1", reason=reason, by=by, fee_due=True)
    with pytest.raises(IpchangeError, match="needs"):
        store.credit(engine, "T-1", amount_cents=None, reason=reason, by=by)
    assert store.fee_ledger(engine).empty
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # the database refuses too
        conn.execute(
            store.FeeLedger.__table__.insert().values(
                ticket_id="T-1",
                fee_status="fee",
                amount_cents=1,
                policy_version="v",
                computed_at=datetime.now(UTC),
                kind="fee",
                reason=reason,
                by_name=by,
            )
        )


@pytest.mark.xdist_group("postgres")
def test_two_exports_racing_bill_once(engine: sa.Engine) -> None:
    """Both exports see fees to bill; the one that gets the lock second finds them taken."""
    ids = ["R-1", "R-2"]
    ref = Reference([True, True, False])
    due = due_frame([*ids, "R-3"], ref)
    url = engine.url.render_as_string(hide_password=False)
    both_ready = threading.Barrier(2, timeout=60)
    results: list[store.Batch] = []

    def export() -> None:
        mine = store.connect(url)
        try:
            expected = store.pending(mine, due)
            both_ready.wait()  # both saw fees to bill before either exports
            results.append(
                store.export_batch(
                    mine,
                    due,
                    period="2026-11",
                    format="csv",
                    digest=lambda r: "x",
                    expected=expected,
                )
            )
        finally:
            mine.dispose()

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2
    winner, loser = sorted(results, key=lambda b: b.batch_id is None)
    assert winner.batch_id is not None and sorted(winner.rows["ticket_id"]) == ids
    assert loser.batch_id is None and loser.rows.empty and loser.taken
    ledger = store.fee_ledger(engine)
    assert ledger["amount_cents"].tolist() == [FEE, FEE]
    assert ledger["export_batch_id"].tolist() == [winner.batch_id] * 2
