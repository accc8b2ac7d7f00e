"""Tests of ipchange_core.store.connection and ipchange_core.config: connecting, database URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipchange_core import config, store
from ipchange_core.errors import IpchangeError


def test_connected_closes_its_connections_when_the_block_raises(sqlite_url: str) -> None:
    wal = Path(sqlite_url.removeprefix("sqlite:///") + "-wal")
    with pytest.raises(RuntimeError), store.connected(sqlite_url) as engine:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar_one() == 0
        assert wal.exists() and engine.pool.checkedin() == 1  # pooled, the database open
        raise RuntimeError("the block failed")
    assert engine.pool.checkedin() == 0
    assert not wal.exists()  # the last connection closed: SQLite removed its log


# --- database URLs ------------------------------------------------------------------------------


def test_default_database_is_the_sqlite_file_in_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DB_URL_ENV, raising=False)
    assert config.DEFAULT_DB_PATH == config.PROJECT_ROOT / "data" / "ipchange.db"
    assert config.DEFAULT_DB_PATH.is_absolute()
    assert (config.PROJECT_ROOT / "pyproject.toml").is_file()  # running from the checkout
    assert config.database_url(None) == f"sqlite:///{config.DEFAULT_DB_PATH.as_posix()}"
    assert config.database_url("") == config.database_url(None)


def test_relative_sqlite_paths_become_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.DB_URL_ENV, "sqlite:///from-env.db")
    assert config.database_url(None) == f"sqlite:///{(tmp_path / 'from-env.db').as_posix()}"
    # --db wins over the environment; a bare path means a SQLite file.
    assert config.database_url("sub/../x.db") == f"sqlite:///{(tmp_path / 'x.db').as_posix()}"
    assert config.database_url("sqlite:////abs/y.db") == "sqlite:////abs/y.db"
    assert config.database_url("sqlite://") == "sqlite://"
    pg = "postgresql+psycopg://user:secret@db.example:5432/ipchange"
    assert config.database_url(pg) == pg
    assert config.display_url(pg) == "postgresql+psycopg://user:***@db.example:5432/ipchange"
    with pytest.raises(IpchangeError, match="not a valid database URL"):
        config.database_url("not a scheme://x")


def test_connect_resolves_relative_paths_and_never_guesses_a_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = store.connect("sqlite:///here.db")
    assert engine.url.database == (tmp_path / "here.db").as_posix()
    engine.dispose()
    assert (tmp_path / "here.db").is_file()
    with pytest.raises(IpchangeError, match="no folder"):
        store.connect("sqlite:///missing/there.db")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(IpchangeError, match="unsupported database"):
        store.connect("mysql://localhost/x")


def test_postgresql_urls(pg_schema_url: str) -> None:
    plain = store.connect(pg_schema_url.replace("postgresql+psycopg://", "postgresql://", 1))
    assert plain.dialect.driver == "psycopg"
    plain.dispose()
    with pytest.raises(
        IpchangeError, match=r"cannot open the database postgresql\+psycopg://u:\*\*\*@"
    ):
        store.connect("postgresql+psycopg://u:secret@127.0.0.1:1/nothing")


@pytest.mark.xdist_group("postgres")
def test_a_database_an_earlier_version_made_gains_the_new_columns(engine) -> None:
    """Columns added since a database was created are added when it is opened, with defaults."""
    import sqlalchemy as sa

    from ipchange_core.pipeline import load_file
    from ipchange_core.policy import load_policy

    sample = Path(__file__).resolve().parents[2] / "data" / "sample"
    load_file(engine, sample / "tickets.csv", load_policy())
    with engine.begin() as conn:  # the rejects table as it was before it had ticket_id
        conn.execute(sa.text("ALTER TABLE rejects DROP COLUMN ticket_id"))
    assert "ticket_id" not in {c["name"] for c in sa.inspect(engine).get_columns("rejects")}
    reopened = store.connect(engine.url.render_as_string(hide_password=False), create=False)
    try:
        columns = {c["name"] for c in sa.inspect(reopened).get_columns("rejects")}
        assert "ticket_id" in columns
        assert "ticket_id" in store.rejects(reopened).columns
    finally:
        reopened.dispose()
