"""Connecting to the store: open a database by URL, create its tables, read in one snapshot."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from ipchange_core import config
from ipchange_core.errors import IpchangeError
from ipchange_core.store.backend import backend_for, backend_of, backends
from ipchange_core.store.models import Base

ADDED_COLUMNS: dict[str, tuple[str, ...]] = {"tickets": ("kayako_id",)}
"""Columns added to a table after databases with that table existed: :func:`connect` adds them
(blank text, with their indexes) to an older database."""


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


def connect(url: str) -> Engine:
    """Open the database at ``url`` and create any missing table.

    SQLite files run in WAL mode with a 30 s busy timeout and foreign keys on, and every
    transaction starts with ``BEGIN IMMEDIATE`` (read-only work in this package uses a deferred
    BEGIN), so concurrent writers wait for each other instead of failing. PostgreSQL is used
    through psycopg 3 (``postgresql://`` is taken as ``postgresql+psycopg://``). The backend
    (:mod:`ipchange_core.store.backend`) is chosen here, by the URL.

    Args:
        url: A SQLAlchemy URL (a relative SQLite path is resolved against the current
            directory, see :func:`ipchange_core.config.database_url`).

    Returns:
        An engine with the package's tables present.

    Raises:
        IpchangeError: Unsupported backend, missing folder, or the database cannot be opened.
    """
    parsed = make_url(config.database_url(url))
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
            lacking = _lacking_columns(conn, present)
        if not present >= set(Base.metadata.tables) or lacking:
            with engine.begin() as conn:
                backend.before_create(conn)
                Base.metadata.create_all(conn)
                _add_columns(conn, _lacking_columns(conn, present))
    except DBAPIError as exc:
        engine.dispose()
        shown = config.display_url(engine.url.render_as_string(hide_password=False))
        raise IpchangeError(f"cannot open the database {shown}: {db_error_reason(exc)}") from exc
    return engine


def _lacking_columns(conn: Connection, present: set[str]) -> list[tuple[str, str]]:
    """The ``(table, column)`` of :data:`ADDED_COLUMNS` that an existing table lacks."""
    lacking = []
    for table, columns in ADDED_COLUMNS.items():
        if table in present:
            have = {c["name"] for c in inspect(conn).get_columns(table)}
            lacking += [(table, c) for c in columns if c not in have]
    return lacking


def _add_columns(conn: Connection, lacking: list[tuple[str, str]]) -> None:
    """Add text columns (``NOT NULL DEFAULT ''``) and the indexes that use them."""
    for table_name, column in lacking:
        table = Base.metadata.tables[table_name]
        kind = table.c[column].type.compile(conn.dialect)
        conn.execute(
            text(f"ALTER TABLE {table_name} ADD COLUMN {column} {kind} NOT NULL DEFAULT ''")
        )
        for index in table.indexes:
            if column in index.columns:
                index.create(conn, checkfirst=True)


@contextmanager
def connected(url: str) -> Iterator[Engine]:
    """:func:`connect` for the length of a ``with`` block, then dispose of the engine.

    Disposing closes every pooled connection (on SQLite, the last close also checkpoints the
    write-ahead log and releases the read mapping), whether the block ended or raised.
    """
    engine = connect(url)
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
def reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction seeing one snapshot of the database."""
    with engine.connect() as conn:
        backend_of(engine).read_only(conn)
        with conn.begin():
            yield conn
