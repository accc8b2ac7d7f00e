"""Tests of the backends (ipchange_core.store.sqlite, .postgres) and their registry.

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from ipchange_core import store
from ipchange_core.errors import IpchangeError
from ipchange_core.store import postgres, sqlite
from ipchange_core.store.backend import backend_for, backend_of
from tests.store.helpers import (
    expected,
    parsed,
    ticket,
    tickets_frame,
    typed,
)


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}
    engine.dispose()


def test_sqlite_writers_queue_and_readers_are_not_blocked(sqlite_url: str) -> None:
    first, second = store.connect(sqlite_url), store.connect(sqlite_url)
    store.load(first, parsed("tickets", typed("tickets", [ticket("A-1")])), policy_version="t")
    with first.begin() as conn:  # BEGIN IMMEDIATE: holds the write lock until the block ends
        conn.exec_driver_sql("UPDATE tickets SET status = 'Open'")
        # A read in another connection sees the last committed state, without waiting.
        assert store.read_frames(second)["tickets"]["status"].tolist() == ["New"]
        with second.connect() as other:
            # (on the driver connection: through SQLAlchemy, the PRAGMA would begin a write)
            other.connection.driver_connection.execute("PRAGMA busy_timeout = 100")
            with pytest.raises(sa.exc.OperationalError, match="locked"), other.begin():
                pass  # a second writer cannot even begin while the first one writes
    assert store.read_frames(second)["tickets"]["status"].tolist() == ["Open"]
    first.dispose()
    second.dispose()


@pytest.mark.parametrize("block", [1, 7, 50])
def test_rows_sent_in_several_copy_blocks_all_arrive(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """PostgreSQL takes the rows in COPY blocks written one ahead by a worker (SQLite: as is)."""
    monkeypatch.setattr(postgres, "COPY_ROWS", block)
    old = tickets_frame(50)
    first = store.load(engine, parsed("tickets", old), policy_version="t")  # into the empty table
    new = pd.concat([old, tickets_frame(9, prefix="NEW")], ignore_index=True)
    new.loc[[0, 13, 49], "status"] = "Closed (changed)"
    second = store.load(engine, parsed("tickets", new), policy_version="t")  # staged and merged
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (50, 9, 3, 47)
    pd.testing.assert_frame_equal(store.read_frames(engine)["tickets"], expected("tickets", new))


def test_each_engine_gets_the_backend_of_its_dialect(engine: sa.Engine) -> None:
    backend = backend_of(engine)
    assert backend.name == engine.dialect.name
    assert backend is {"sqlite": sqlite.BACKEND, "postgresql": postgres.BACKEND}[backend.name]


def test_a_dialect_without_a_backend_is_refused() -> None:
    with pytest.raises(IpchangeError, match="unsupported database 'mysql'"):
        backend_for("mysql")
    with pytest.raises(IpchangeError, match="unsupported database 'mysql"):
        store.connect("mysql://somewhere/db")
