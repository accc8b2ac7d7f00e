"""Connecting to the store: open a database by URL, create its tables, read in one snapshot."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateColumn

from ipchange_core import config
from ipchange_core.errors import IpchangeError
from ipchange_core.store.backend import backend_for, backend_of, backends
from ipchange_core.store.models import Base, LoadManifest


def db_error_reason(exc: BaseException) -> str:
    """Say why the database refused, in words a user can act on.

    SQLite's "database is locked" (SQLITE_BUSY) means another process kept the write lock for
    longer than the 30 s busy timeout: the work can simply be retried once that process is done.

    Args:
        exc: A SQLAlchemy ``DBAPIError`` or a driver exception.

    Returns:
        The driver's message, or for SQLITE_BUSY a "busy, retry" sentence that includes it.
    """
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    for backend in backends():
        busy = backend.busy_reason(reason)
        if busy is not None:
            return busy
    return str(reason)


def connect(url: str, *, create: bool = True) -> Engine:
    """Open the database at ``url`` and create any missing table.

    SQLite files run in WAL mode with a 30 s busy timeout and foreign keys on, and every
    transaction starts with ``BEGIN IMMEDIATE`` (read-only work in this package uses a deferred
    BEGIN), so concurrent writers wait for each other instead of failing. PostgreSQL is used
    through psycopg 3 (``postgresql://`` is taken as ``postgresql+psycopg://``). The backend
    (:mod:`ipchange_core.store.backend`) is chosen here, by the URL.

    Args:
        url: A SQLAlchemy URL (a relative SQLite path is resolved against the current
            directory, see :func:`ipchange_core.config.database_url`).
        create: Create the database and its tables when missing (loads only). A reader passes
            False: a database file that does not exist, or one without any load, is refused.

    Returns:
        An engine with the package's tables present.

    Raises:
        IpchangeError: Unsupported backend, missing folder, or the database cannot be opened.
        NoDatabaseError: ``create`` is False and the database does not exist or holds no load.
    """
    parsed = make_url(config.database_url(url))
    shown = parsed.render_as_string(hide_password=False)
    file = (parsed.database or "") if parsed.get_backend_name() == "sqlite" else ""
    on_disk = file not in ("", ":memory:") and not file.startswith("file:")
    if not create and on_disk and not Path(file).is_file():
        raise config.no_database(shown, f"no database file {file}")
    try:
        backend = backend_for(parsed.get_backend_name())
    except IpchangeError:
        raise IpchangeError(
            f"unsupported database {parsed.drivername!r}: use sqlite:// or postgresql+psycopg://"
        ) from None
    engine = backend.create_engine(parsed)
    try:
        # Only a database that lacks tables takes the write lock: a report must not wait for an
        # ingest that holds it (SQLite) just to learn that every table is there.
        with reading(engine) as conn:
            present = set(inspect(conn).get_table_names())
            missing = missing_columns(conn, present)
            loaded = (
                LoadManifest.__tablename__ in present
                and conn.execute(select(LoadManifest.id).limit(1)).first()
            )
        if not create and not loaded:
            engine.dispose()
            raise config.no_database(
                shown, f"nothing was ever loaded into {config.display_url(shown)}"
            )
        if not present >= set(Base.metadata.tables) or missing:
            with engine.begin() as conn:
                backend.before_create(conn)
                Base.metadata.create_all(conn)
                add_columns(conn, missing)
    except DBAPIError as exc:
        engine.dispose()
        shown = config.display_url(engine.url.render_as_string(hide_password=False))
        raise IpchangeError(f"cannot open the database {shown}: {db_error_reason(exc)}") from exc
    return engine


def missing_columns(conn: Connection, present: set[str]) -> list[Column]:
    """The model's columns missing from tables already in the database, in table order.

    A database an earlier version of ipchange created lacks the columns added since.
    """
    inspector = inspect(conn)
    missing = []
    for name, table in Base.metadata.tables.items():
        if name in present:
            have = {column["name"] for column in inspector.get_columns(name)}
            missing += [column for column in table.columns if column.name not in have]
    return missing


def add_columns(conn: Connection, columns: list[Column]) -> None:
    """Add ``columns`` to their tables with ``ALTER TABLE … ADD COLUMN``.

    A database an earlier version created then reads and loads like a new one; its existing
    rows take the column's default (blank text, false, or NULL), and the indexes that use a
    column are built.

    Raises:
        IpchangeError: A column has neither a default nor NULL to give the existing rows.
    """
    for column in columns:
        if not column.nullable and column.server_default is None:
            raise IpchangeError(
                f"the database lacks the column {column.table.name}.{column.name}, which has no "
                "default for its existing rows: load into a new database"
            )
        ddl = CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {column.table.name} ADD COLUMN {ddl}"))
    added = {(column.table.name, column.name) for column in columns}
    for table in {column.table for column in columns}:
        for index in table.indexes:
            if any((table.name, c.name) in added for c in index.columns):
                index.create(conn, checkfirst=True)


@contextmanager
def connected(url: str, *, create: bool = True) -> Iterator[Engine]:
    """:func:`connect` for the length of a ``with`` block, then dispose of the engine.

    Disposing closes every pooled connection (on SQLite, the last close also checkpoints the
    write-ahead log and releases the read mapping), whether the block ended or raised.
    """
    engine = connect(url, create=create)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of rows become Python objects.

    Those objects form no cycles, but each allocation burst triggers full collections that
    would otherwise cost more than the work itself (figures: bench/RESULTS.md).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def reading(engine: Engine | Connection) -> Iterator[Connection]:
    """A read-only transaction seeing one snapshot of the database.

    Given a connection instead (a caller's transaction, e.g. a load's), reads through it as it
    is: what that transaction wrote is seen, and it stays the caller's to commit.
    """
    if isinstance(engine, Connection):
        yield engine
        return
    with engine.connect() as conn:
        backend_of(engine).read_only(conn)
        with conn.begin():
            yield conn
