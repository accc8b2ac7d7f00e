"""Tests of ipchange_core.store.ledger: the fee ledger is append-only once exported.

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa
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
