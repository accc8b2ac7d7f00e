"""Storage of the canonical tables, load manifests, rejects and the fee ledger (SPEC 3, 4).

SQLAlchemy 2 models over SQLite (the default, an embedded file) and PostgreSQL
(``postgresql+psycopg://``). Each canonical table mirrors :data:`ipchange_core.schema.TABLES`
plus two bookkeeping columns: ``key_hash`` (of the natural key) and ``row_hash`` (of every
column). They let a reload tell unchanged rows apart without sending them to the database; the
database itself still decides what differs (``INSERT … ON CONFLICT DO UPDATE … WHERE <any
column differs>``), so the counts stay exact even if a hash ever changed between versions.

Storage conventions:

* text is ``NOT NULL DEFAULT ''`` (blank is the empty string, never NULL);
* instants are UTC: PostgreSQL ``timestamptz``; SQLite, which has no date type and would drop
  offsets, stores the integer number of microseconds since 1970-01-01T00:00:00Z (exact, sortable
  and about twice as fast to load as ISO text; ``datetime(col / 1e6, 'unixepoch')`` shows it);
* yes/no flags are nullable booleans (``NULL`` = not given);
* money is integer cents.

A fee row that belongs to an export batch is never updated or deleted: triggers on both backends
raise, the ORM refuses, and this module offers only appends (a correction is a reversal row plus
a new row).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import io
import itertools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    create_engine,
    event,
    exists,
    extract,
    false,
    func,
    inspect,
    literal,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy import Table as SATable
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from ipchange_core import config, schema
from ipchange_core.errors import InvalidInputError, IpchangeError
from ipchange_core.isotext import iso_text
from ipchange_core.policy import PolicySet
from ipchange_core.records import RecordHashes, repeats, text_hashes
from ipchange_core.requests import (
    char_variants,
    filter_matcher,
    filter_prefilter,
    recognised_tickets,
)

__all__ = [
    "Base",
    "Change",
    "ExportBatch",
    "FeeLedger",
    "Intake",
    "LoadManifest",
    "LoadRecords",
    "LoadResult",
    "ParsedInput",
    "Reject",
    "StaleRecords",
    "Ticket",
    "TicketEvent",
    "UTCDateTime",
    "append_fees",
    "connect",
    "connected",
    "correct_fee",
    "db_error_reason",
    "fee_ledger",
    "load",
    "manifests",
    "previous_records",
    "read_frames",
    "record_export",
    "rejects",
    "repeat_load",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_NAT = np.iinfo(np.int64).min  # numpy's NaT as int64; never a real instant
_NA_FLAG = 2  # a nullable boolean's "not given", while binding on SQLite
_SQLITE_BUSY_MS = 30_000
_SQLITE_BULK_CACHE_KIB = 8_192  # SQLite page cache while bulk-inserting into an empty table
_PG_COPY_ROWS = 100_000  # rows written as one CSV block to PostgreSQL's COPY


# --------------------------------------------------------------------------------------------
# Column types


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored as UTC and returned as an aware UTC ``datetime``.

    PostgreSQL stores ``timestamptz``. SQLite stores the integer count of microseconds since the
    Unix epoch (SQLite has no date type and would silently drop an offset). Naive datetimes are
    refused: their time zone is unknown.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:  # noqa: D102
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: D102
        if value is None or value is pd.NaT:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValueError(f"an instant must be a timezone-aware datetime, got {value!r}")
        if dialect.name == "sqlite":
            return (value - _EPOCH) // _MICROSECOND
        return value.astimezone(UTC)

    def process_literal_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: D102
        return self.process_bind_param(value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: D102
        if value is None:
            return None
        if dialect.name == "sqlite":
            return _EPOCH + timedelta(microseconds=int(value))
        return value.astimezone(UTC)


_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite: INTEGER PRIMARY KEY = the rowid

Str = Annotated[str, mapped_column(Text, server_default="")]
"""Text: NOT NULL, blank = ''."""
Instant = Annotated[datetime, mapped_column(UTCDateTime)]
"""A UTC instant (nullable when annotated ``Instant | None``)."""


# --------------------------------------------------------------------------------------------
# Models


class Base(DeclarativeBase):
    """Declarative base of every table of the package."""


class _Canonical:
    """Columns every canonical table has besides its schema columns."""

    id: Mapped[int] = mapped_column(_ID, primary_key=True, sort_order=-1)
    key_hash: Mapped[int] = mapped_column(BigInteger, sort_order=100)
    row_hash: Mapped[int] = mapped_column(BigInteger, sort_order=101)


class Ticket(_Canonical, Base):
    """A help-desk ticket (``tickets.csv``; natural key ``ticket_id``)."""

    __tablename__ = "tickets"
    __table_args__ = (
        # Unique *indexes* rather than table constraints: SQLite can drop and rebuild them
        # around the first bulk load of a table, which is several times faster.
        Index("ux_tickets_ticket_id", "ticket_id", unique=True),
        Index("ix_tickets_created_at", "created_at"),
    )

    ticket_id: Mapped[Str]
    subject: Mapped[Str]
    department: Mapped[Str]
    status: Mapped[Str]
    owner: Mapped[Str]
    creator: Mapped[Str]
    account: Mapped[Str]
    requester_name: Mapped[Str]
    requester_email: Mapped[Str]
    created_at: Mapped[Instant]
    updated_at: Mapped[Instant | None]
    tags: Mapped[Str]
    ticket_type: Mapped[Str]


class TicketEvent(_Canonical, Base):
    """A department/status/owner change of a ticket (``ticket_events.csv``)."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        # Its leading column makes this also the index on ticket_events.ticket_id.
        Index(
            "ux_ticket_events_key",
            "ticket_id",
            "at",
            "field",
            "old_value",
            "new_value",
            unique=True,
        ),
    )

    ticket_id: Mapped[Str]
    at: Mapped[Instant]
    field: Mapped[Str]
    old_value: Mapped[Str]
    new_value: Mapped[Str]
    actor: Mapped[Str]


class Intake(_Canonical, Base):
    """The TSC agent's intake ("cloud info") record of a request (``intake.csv``)."""

    __tablename__ = "intake"
    __table_args__ = (
        Index("ux_intake_ticket_id", "ticket_id", unique=True),
        Index("ix_intake_received_at", "received_at"),
    )

    ticket_id: Mapped[Str]
    received_at: Mapped[Instant]
    channel: Mapped[Str]
    requester_type: Mapped[Str]
    account: Mapped[Str]
    site: Mapped[Str]
    reseller: Mapped[Str]
    contact_name: Mapped[Str]
    contact_phone: Mapped[Str]
    person_of_record: Mapped[Str]
    reason: Mapped[Str]
    current_ip: Mapped[Str]
    new_ip: Mapped[Str]
    requested_change_at: Mapped[Instant | None]
    ticket_number_given: Mapped[bool | None]
    transferred_to_queue: Mapped[bool | None]
    agent: Mapped[Str]
    requested_asap: Mapped[bool] = mapped_column(server_default=false())


class Change(_Canonical, Base):
    """The Implementation group's record of a change (``changes.csv``)."""

    __tablename__ = "changes"
    __table_args__ = (Index("ux_changes_ticket_id", "ticket_id", unique=True),)

    ticket_id: Mapped[Str]
    confirmed_at: Mapped[Instant | None]
    scheduled_start: Mapped[Instant | None]
    scheduled_end: Mapped[Instant | None]
    completed_at: Mapped[Instant | None]
    cancelled_at: Mapped[Instant | None]
    engineer: Mapped[Str]
    fee_accepted_by: Mapped[Str]
    fee_accepted_at: Mapped[Instant | None]
    fee_waived: Mapped[bool | None]
    fee_waiver_reason: Mapped[Str]
    fee_waived_by: Mapped[Str]
    after_hours_approved_by: Mapped[Str]


class LoadManifest(Base):
    """One load of one input file: what it was and how its rows were counted."""

    __tablename__ = "load_manifests"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    file_name: Mapped[Str]
    sha256: Mapped[Str]
    format: Mapped[Str]
    table: Mapped[Str] = mapped_column("table")
    rows_read: Mapped[int]
    inserted: Mapped[int]
    updated: Mapped[int]
    unchanged: Mapped[int]
    rejected: Mapped[int]
    skipped: Mapped[int]
    loaded_at: Mapped[Instant]
    policy_version: Mapped[Str]


class LoadRecords(Base):
    """The record hashes of the latest CSV load of a table (:mod:`ipchange_core.records`).

    Only the newest load of each table keeps a row: a reload compares its records with those.
    """

    __tablename__ = "load_records"

    manifest_id: Mapped[int] = mapped_column(ForeignKey("load_manifests.id"), primary_key=True)
    header_hash: Mapped[int] = mapped_column(BigInteger)
    record_hashes: Mapped[bytes] = mapped_column(LargeBinary)  # int64 little-endian
    key_hashes: Mapped[bytes] = mapped_column(LargeBinary)  # aligned with record_hashes


class Reject(Base):
    """A rejected input value, stored once per file content (sha256), line and column."""

    __tablename__ = "rejects"
    __table_args__ = (
        Index("ux_rejects_sha256_line_column", "sha256", "line", "column", unique=True),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("load_manifests.id"), index=True)
    sha256: Mapped[Str]
    file: Mapped[Str]
    line: Mapped[int]
    column: Mapped[Str] = mapped_column("column")
    value: Mapped[Str]
    reason: Mapped[Str]


class ExportBatch(Base):
    """One export of fees to billing; never updated or deleted."""

    __tablename__ = "export_batches"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    period: Mapped[Str]
    created_at: Mapped[Instant]
    format: Mapped[Str]
    rows: Mapped[int]
    total_cents: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[Str]


class FeeLedger(Base):
    """An append-only fee entry; an exported entry is never updated or deleted.

    A correction is two new rows: a reversal (the negated amount, ``reverses_id`` = the
    original) and the corrected entry. ``reverses_id`` is unique, so an entry is reversed once.
    """

    __tablename__ = "fee_ledger"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[Str] = mapped_column(index=True)
    fee_status: Mapped[Str]
    amount_cents: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[Str]
    computed_at: Mapped[Instant]
    export_batch_id: Mapped[int | None] = mapped_column(ForeignKey("export_batches.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("fee_ledger.id"), unique=True)


_MODELS: dict[str, type[_Canonical]] = {
    "tickets": Ticket,
    "ticket_events": TicketEvent,
    "intake": Intake,
    "changes": Change,
}
_KEYS: dict[str, tuple[str, ...]] = {
    "tickets": ("ticket_id",),
    "ticket_events": ("ticket_id", "at", "field", "old_value", "new_value"),
    "intake": ("ticket_id",),
    "changes": ("ticket_id",),
}
_LEDGER_RULE = "an exported fee row is never updated or deleted; record a correction instead"

# --- the ledger rule, enforced by the database itself ------------------------------------------
for _op in ("UPDATE", "DELETE"):
    event.listen(
        FeeLedger.__table__,
        "after_create",
        DDL(
            f"CREATE TRIGGER fee_ledger_exported_no_{_op.lower()} BEFORE {_op} ON fee_ledger "
            "FOR EACH ROW WHEN OLD.export_batch_id IS NOT NULL "
            f"BEGIN SELECT RAISE(ABORT, 'fee_ledger: {_LEDGER_RULE}'); END"
        ).execute_if(dialect="sqlite"),
    )
    event.listen(
        ExportBatch.__table__,
        "after_create",
        DDL(
            f"CREATE TRIGGER export_batches_no_{_op.lower()} BEFORE {_op} ON export_batches "
            "FOR EACH ROW BEGIN SELECT RAISE(ABORT, "
            "'export_batches: an export batch is never updated or deleted'); END"
        ).execute_if(dialect="sqlite"),
    )
for _ddl in (
    # "%%" is a literal "%" (DDL strings are %-formatted); plpgsql puts the row's ids there.
    f"""CREATE OR REPLACE FUNCTION ipchange_fee_ledger_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.export_batch_id IS NOT NULL THEN
            RAISE EXCEPTION 'fee_ledger row %% (export batch %%): {_LEDGER_RULE}',
                OLD.id, OLD.export_batch_id USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER fee_ledger_exported_guard BEFORE UPDATE OR DELETE ON fee_ledger
    FOR EACH ROW EXECUTE FUNCTION ipchange_fee_ledger_guard()""",
    """CREATE OR REPLACE FUNCTION ipchange_append_only_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_TABLE_NAME = 'export_batches' OR EXISTS (
            SELECT 1 FROM fee_ledger WHERE export_batch_id IS NOT NULL
        ) THEN
            RAISE EXCEPTION '%%: exported fees and export batches are never deleted', TG_TABLE_NAME
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER fee_ledger_no_truncate BEFORE TRUNCATE ON fee_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ipchange_append_only_guard()""",
):
    event.listen(FeeLedger.__table__, "after_create", DDL(_ddl).execute_if(dialect="postgresql"))
for _ddl in (
    """CREATE OR REPLACE FUNCTION ipchange_export_batches_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'export_batches: an export batch is never updated or deleted'
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER export_batches_guard BEFORE UPDATE OR DELETE ON export_batches
    FOR EACH ROW EXECUTE FUNCTION ipchange_export_batches_guard()""",
    """CREATE TRIGGER export_batches_no_truncate BEFORE TRUNCATE ON export_batches
    FOR EACH STATEMENT EXECUTE FUNCTION ipchange_export_batches_guard()""",
):
    event.listen(ExportBatch.__table__, "after_create", DDL(_ddl).execute_if(dialect="postgresql"))


# --- ... and by the ORM -------------------------------------------------------------------------
@event.listens_for(FeeLedger, "before_update")
def _refuse_exported_update(mapper: Any, connection: Connection, target: FeeLedger) -> None:
    history = inspect(target).attrs.export_batch_id.history
    before = (history.deleted or history.unchanged or [None])[0]
    if before is not None:
        raise IpchangeError(f"fee_ledger row {target.id} (export batch {before}): {_LEDGER_RULE}")


@event.listens_for(FeeLedger, "before_delete")
def _refuse_exported_delete(mapper: Any, connection: Connection, target: FeeLedger) -> None:
    history = inspect(target).attrs.export_batch_id.history
    before = (history.deleted or history.unchanged or [None])[0]
    if before is not None:
        raise IpchangeError(f"fee_ledger row {target.id} (export batch {before}): {_LEDGER_RULE}")


# --------------------------------------------------------------------------------------------
# Connecting


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, connection_record: Any) -> None:
    # SQLAlchemy's documented recipe: stop sqlite3 from emitting BEGIN itself; the "begin"
    # listener below emits BEGIN IMMEDIATE so that two writers queue on the busy timeout
    # instead of one failing when it upgrades a read lock.
    dbapi_connection.isolation_level = None
    for pragma in (
        f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",  # with WAL: safe against a crash of the process
        "PRAGMA foreign_keys = ON",
        "PRAGMA cache_size = -131072",  # 128 MiB, allocated only as needed
        "PRAGMA journal_size_limit = 67108864",  # give the WAL back after a big load
    ):
        dbapi_connection.execute(pragma)


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("ipchange_sqlite_begin", "IMMEDIATE")
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


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
    code = getattr(reason, "sqlite_errorcode", None)
    if code is not None and code & 0xFF == sqlite3.SQLITE_BUSY:
        return (
            f"the database is busy: another process kept it locked for over "
            f"{_SQLITE_BUSY_MS // 1000} s ({reason}); retry when that process has finished"
        )
    return str(reason)


def connect(url: str, *, create: bool = True) -> Engine:
    """Open the database at ``url`` and create any missing table.

    SQLite files run in WAL mode with a 30 s busy timeout and foreign keys on, and every
    transaction starts with ``BEGIN IMMEDIATE`` (read-only work in this module uses a deferred
    BEGIN), so concurrent writers wait for each other instead of failing. PostgreSQL is used
    through psycopg 3 (``postgresql://`` is taken as ``postgresql+psycopg://``).

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
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.get_driver_name() not in ("pysqlite", ""):
            raise IpchangeError(f"unsupported SQLite driver {parsed.drivername!r}; use sqlite://")
        database = parsed.database or ""
        if database not in ("", ":memory:") and not database.startswith("file:"):
            if not create and not Path(database).is_file():
                raise config.no_database(shown, f"no database file {database}")
            folder = Path(database).parent
            if not folder.is_dir():
                if Path(database) != config.DEFAULT_DB_PATH:
                    raise IpchangeError(
                        f"cannot create the database {database}: no folder {folder}"
                    )
                folder.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": _SQLITE_BUSY_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    elif backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername != "postgresql+psycopg":
            raise IpchangeError(
                f"unsupported PostgreSQL driver {parsed.drivername!r}; use postgresql+psycopg://"
            )
        try:
            engine = create_engine(parsed)
        except ImportError as exc:
            raise IpchangeError(
                f"PostgreSQL needs the psycopg package (pip install 'psycopg[binary]'): {exc}"
            ) from None
    else:
        raise IpchangeError(
            f"unsupported database {parsed.drivername!r}: use sqlite:// or postgresql+psycopg://"
        )
    try:
        # Only a database that lacks tables takes the write lock: a report must not wait for an
        # ingest that holds it (SQLite) just to learn that every table is there.
        with _reading(engine) as conn:
            present = set(inspect(conn).get_table_names())
            loaded = (
                LoadManifest.__tablename__ in present
                and conn.execute(select(LoadManifest.id).limit(1)).first()
            )
        if not create and not loaded:
            engine.dispose()
            raise config.no_database(
                shown, f"nothing was ever loaded into {config.display_url(shown)}"
            )
        if not present >= set(Base.metadata.tables):
            with engine.begin() as conn:
                if backend == "postgresql":  # serialise concurrent first connections
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4711700301)")
                Base.metadata.create_all(conn)
    except DBAPIError as exc:
        engine.dispose()
        shown = config.display_url(shown)
        raise IpchangeError(f"cannot open the database {shown}: {db_error_reason(exc)}") from exc
    return engine


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
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of rows become Python objects.

    Those objects form no cycles, but each allocation burst triggers full collections that
    would otherwise cost more than the work itself (2-3x on a million-row read).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def _reading(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction seeing one snapshot of the database."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.execution_options(ipchange_sqlite_begin="DEFERRED")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


# --------------------------------------------------------------------------------------------
# Loading


class ParsedInput(Protocol):
    """What :func:`load` needs from a parsed file (``ipchange_core.ingest.ParsedFile``).

    A file read in blocks also has ``blocks()``, yielding its accepted rows block by block,
    each typed as ``frame`` would be (``ParsedFile.blocks``); :func:`load` then reads those
    instead of ``frame``.
    """

    @property
    def path(self) -> Path: ...  # noqa: D102
    @property
    def format(self) -> str: ...  # noqa: D102
    @property
    def table(self) -> str: ...  # noqa: D102
    @property
    def frame(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def rejects(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def rows_read(self) -> int: ...  # noqa: D102
    @property
    def rows_skipped(self) -> int: ...  # noqa: D102
    @property
    def sha256(self) -> str: ...  # noqa: D102
    @property
    def records(self) -> RecordHashes | None: ...  # noqa: D102
    @property
    def known(self) -> RecordHashes | None: ...  # noqa: D102


class StaleRecords(IpchangeError):
    """A file was read against records of a load that is no longer the table's latest."""


@dataclass(frozen=True)
class LoadResult:
    """How the rows of one loaded file were counted.

    ``read == inserted + updated + unchanged + rejected + skipped`` always holds.

    Attributes:
        file: The file's path as given.
        table: The canonical table loaded.
        read: Data rows read from the file.
        inserted: Rows new to the database.
        updated: Stored rows that this file changed.
        unchanged: Rows already stored as they are (or stale tickets, see :func:`load`).
        rejected: Rows rejected by validation (distinct lines of the rejects).
        skipped: Rows the parser skipped on purpose (e.g. blank lines).
        manifest_id: Id of the ``load_manifests`` row recording this load.
    """

    file: str
    table: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    skipped: int
    manifest_id: int

    def __post_init__(self) -> None:
        parts = self.inserted + self.updated + self.unchanged + self.rejected + self.skipped
        if self.read != parts:
            raise AssertionError(
                f"{self.file}: counts do not reconcile: read {self.read} != inserted "
                f"{self.inserted} + updated {self.updated} + unchanged {self.unchanged} "
                f"+ rejected {self.rejected} + skipped {self.skipped}"
            )


def _combine_hashes(hashes: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Combine per-column uint64 hashes into one per row (pandas' combine_hash_arrays)."""
    with np.errstate(over="ignore"):
        mult = np.uint64(1000003)
        out = np.full(n, 0x345678, dtype=np.uint64)
        count = len(hashes)
        for i, h in enumerate(hashes):
            out = (out ^ h) * mult
            mult += np.uint64(82520 + count + count - i)
        out += np.uint64(97531)
    return out.view(np.int64)


@dataclass
class _Batch:
    """A typed frame in the forms the database needs: hashes, and values ready to bind."""

    table: str
    frame: pd.DataFrame
    kinds: dict[str, str]  # column -> text | instant | flag | bool
    text: dict[str, tuple[np.ndarray, np.ndarray]]  # factorized text column -> (values, codes)
    numbers: dict[str, np.ndarray]  # column -> int64 (µs, NaT = min int) or int8 flags
    key_hash: np.ndarray
    row_hash: np.ndarray

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def sqlite_rows(self, rows: np.ndarray) -> np.ndarray:
        """Row-major object matrix of the selected rows: data columns, key_hash, row_hash."""
        matrix = np.empty((len(rows), len(self.kinds) + 2), dtype=object)
        for j, name in enumerate(self.kinds):
            if name in self.text:
                values, codes = self.text[name]
                matrix[:, j] = values[codes[rows]]
            elif self.kinds[name] == "text":  # (nearly) all distinct: Python text block by block
                matrix[:, j] = self.frame[name].array.take(rows).to_numpy(dtype=object)
            else:
                matrix[:, j] = self.numbers[name][rows].astype(object)
        matrix[:, -2] = self.key_hash[rows].astype(object)
        matrix[:, -1] = self.row_hash[rows].astype(object)
        return matrix

    def ticket_ids(self) -> np.ndarray:
        """The distinct ticket_id values of the batch (an object array)."""
        if "ticket_id" in self.text:
            return self.text["ticket_id"][0]
        return pd.unique(self.frame["ticket_id"].to_numpy(dtype=object))

    def arrow(self, rows: np.ndarray) -> pa.Table:
        """Arrow table of the selected rows: data columns, key_hash, row_hash."""
        part = self.frame.iloc[rows]
        arrays = {
            name: iso_text(self.numbers[name][rows]) if kind == "instant" else pa.array(part[name])
            for name, kind in self.kinds.items()
        }
        arrays["key_hash"] = pa.array(self.key_hash[rows])
        arrays["row_hash"] = pa.array(self.row_hash[rows])
        return pa.table(arrays)


def _conform(frame: pd.DataFrame, table: str, file: str) -> pd.DataFrame:
    """Return ``frame``'s canonical columns in schema order, with exactly the typed dtypes."""
    dtypes = schema.typed_dtypes(table)
    missing = [name for name in dtypes if name not in frame.columns]
    if missing:
        raise IpchangeError(f"{file}: the parsed {table} frame lacks columns {missing}")
    out = {}
    for name, dtype in dtypes.items():
        column = frame[name]
        if dtype == schema.TIMESTAMP_DTYPE and getattr(column.dtype, "tz", None) is None:
            raise IpchangeError(f"{file}: column {name!r} holds naive times, not UTC instants")
        if column.dtype != pd.api.types.pandas_dtype(dtype):
            try:
                column = column.astype(dtype)
            except (TypeError, ValueError) as exc:
                raise IpchangeError(f"{file}: column {name!r} is not {dtype}: {exc}") from None
        if dtype in ("str", "bool") and column.isna().any():
            raise IpchangeError(f"{file}: column {name!r} has missing values (blank is '')")
        out[name] = column
    return pd.DataFrame(out, index=frame.index)


def _batch(frame: pd.DataFrame, table: str) -> _Batch:
    kinds: dict[str, str] = {}
    text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    numbers: dict[str, np.ndarray] = {}
    hashes: dict[str, np.ndarray] = {}
    for name, dtype in schema.typed_dtypes(table).items():
        column = frame[name]
        if dtype == "str":
            kinds[name] = "text"
            # Hash (and later bind) each distinct value once, unless a sample shows the values
            # (nearly) all distinct, when factorizing them would cost more than it saves: then
            # they become Python text a block at a time, to be hashed and later to be bound
            # (a whole column of 3M took ~0.2 GB, and hashing it as many again).
            sample = column.iloc[:: max(1, len(column) // 2000)]
            if len(sample) >= 100 and sample.nunique() >= 0.99 * len(sample):
                hashes[name] = text_hashes(pa.array(column)).view(np.uint64)
            else:
                codes, uniques = pd.factorize(column)
                values = np.asarray(uniques, dtype=object)
                text[name] = (values, codes)
                hashes[name] = pd.util.hash_array(values, categorize=False)[codes]
            continue
        if dtype == schema.TIMESTAMP_DTYPE:
            kinds[name] = "instant"
            numbers[name] = column.dt.tz_convert(None).to_numpy().view(np.int64)
        elif dtype == "boolean":
            kinds[name] = "flag"
            numbers[name] = column.to_numpy(dtype=np.int8, na_value=_NA_FLAG)
        elif dtype == "bool":
            kinds[name] = "bool"
            numbers[name] = column.to_numpy(dtype=np.int8)
        else:  # pragma: no cover - schema and store disagree
            raise IpchangeError(f"no storage for dtype {dtype!r} of {table}.{name}")
        hashes[name] = pd.util.hash_array(numbers[name], categorize=False)
    n = len(frame)
    return _Batch(
        table=table,
        frame=frame,
        kinds=kinds,
        text=text,
        numbers=numbers,
        key_hash=_combine_hashes([hashes[k] for k in _KEYS[table]], n),
        row_hash=_combine_hashes(list(hashes.values()), n),
    )


def _check_unique_keys(batch: _Batch, lines: np.ndarray, file: str) -> bool:
    """Raise on two rows with one natural key; return False if only their hashes collide."""
    if not len(repeats(batch.key_hash)):
        return True
    dup = pd.Series(batch.key_hash).duplicated(keep=False).to_numpy()
    keys = list(_KEYS[batch.table])
    suspects = batch.frame.loc[dup, keys]
    exact = suspects.duplicated(keep=False).to_numpy()
    if exact.any():
        first = suspects[exact].iloc[0]
        same = (suspects == first).all(axis=1).to_numpy()
        where = lines[dup][same]
        shown = ", ".join(str(v) for v in first.to_list())
        raise InvalidInputError(
            f"duplicate key ({shown}) on lines {', '.join(map(str, where[:5]))}",
            file=file,
            row=int(where[1]),
        )
    return False  # a 64-bit collision between two different keys: compare every row in SQL


def _unchanged_mask(batch: _Batch, stored: np.ndarray, trust: bool) -> np.ndarray:
    """Rows whose (key_hash, row_hash) is already stored: identical rows, nothing to send."""
    n = len(batch.key_hash)
    if not trust or len(stored) == 0:
        return np.zeros(n, dtype=bool)
    index = pd.Index(stored[:, 0])
    if not index.is_unique:  # a hash collision among stored keys: let the database compare
        return np.zeros(n, dtype=bool)
    pos = index.get_indexer(batch.key_hash)
    found = pos >= 0
    same = np.zeros(n, dtype=bool)
    same[found] = stored[pos[found], 1] == batch.row_hash[found]
    return same


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _upsert_tail(conn: Connection, table: str, columns: list[str]) -> str:
    """``ON CONFLICT … DO UPDATE SET … WHERE <not stale> AND <any column differs>``."""
    q = lambda name: _quote(conn, name)  # noqa: E731
    tq = q(table)
    keys = _KEYS[table]
    others = [c for c in columns if c not in keys]
    differs = "IS NOT" if conn.dialect.name == "sqlite" else "IS DISTINCT FROM"
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in [*others, "row_hash"])
    changed = " OR ".join(f"{tq}.{q(c)} {differs} excluded.{q(c)}" for c in others)
    where = f"({changed})"
    if table == "tickets":  # an older export of a ticket never overwrites a newer one
        u = q("updated_at")
        where = (
            f"(excluded.{u} IS NULL OR {tq}.{u} IS NULL OR excluded.{u} >= {tq}.{u}) AND {where}"
        )
    conflict = ", ".join(q(k) for k in keys)
    return f" ON CONFLICT ({conflict}) DO UPDATE SET {sets} WHERE {where}"


def _count(conn: Connection, table: str) -> int:
    return conn.execute(select(func.count()).select_from(Base.metadata.tables[table])).scalar_one()


def _stored_hashes(conn: Connection, table: str, ids: np.ndarray | None) -> np.ndarray:
    """(key_hash, row_hash) of the stored rows of a non-empty table: all, or those of ``ids``."""
    if conn.dialect.name == "sqlite":
        sql = f"SELECT key_hash, row_hash FROM {_quote(conn, table)}"
        return _sqlite_stored_hashes(conn, sql, ids)
    # PostgreSQL packs the pairs into one bytea (16 big-endian bytes a row) per range of ids:
    # a few large messages instead of a million small ones.
    table_sql = _quote(conn, table)
    packed = (
        f"SELECT string_agg(int8send(key_hash) || int8send(row_hash), ''::bytea) FROM {table_sql}"
    )
    # (binary: bytea as its bytes, not as hex text to decode)
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        if ids is not None:
            of_ids = _pg_any(ids.tolist())(Base.metadata.tables[table].c.ticket_id)
            compiled = of_ids.compile(dialect=conn.dialect)
            cursor.execute(f"{packed} WHERE {compiled}", compiled.params)
            chunks = [cursor.fetchone()[0]]
        else:
            low, high = cursor.execute(f"SELECT min(id), max(id) FROM {table_sql}").fetchone()
            chunks = [
                cursor.execute(
                    packed + " WHERE id >= %s AND id < %s", (start, start + 1_000_000)
                ).fetchone()[0]
                for start in range(low, high + 1, 1_000_000)
            ]
    data = b"".join(bytes(chunk) for chunk in chunks if chunk is not None)
    return np.frombuffer(data, dtype=">i8").astype(np.int64).reshape(-1, 2)


def _sqlite_stored_hashes(conn: Connection, sql: str, ids: np.ndarray | None) -> np.ndarray:
    """Read (key_hash, row_hash) pairs from SQLite, of every row or of the given ticket_ids.

    A whole table is read as two ``group_concat`` strings per range of rowids, parsed by numpy:
    about twice as fast as fetching a million two-integer rows one by one.
    """
    cursor = conn.connection.driver_connection.cursor()
    try:
        if ids is not None:
            rows: list[tuple[int, int]] = []
            for start in range(0, len(ids), 10_000):
                chunk = ids[start : start + 10_000].tolist()
                where = f" WHERE ticket_id IN ({','.join('?' * len(chunk))})"
                rows.extend(cursor.execute(sql + where, chunk).fetchall())
            flat = np.fromiter(itertools.chain.from_iterable(rows), np.int64, count=2 * len(rows))
            return flat.reshape(-1, 2)
        table = sql.rsplit(" FROM ", 1)[1]
        low, high = cursor.execute(f"SELECT min(id), max(id) FROM {table}").fetchone()
        parts = []
        for start in range(low, high + 1, 1_000_000):
            keys, values = cursor.execute(
                f"SELECT group_concat(key_hash), group_concat(row_hash) FROM {table} "
                "WHERE id >= ? AND id < ?",
                (start, start + 1_000_000),
            ).fetchone()
            if keys is not None:
                pair = (
                    np.fromstring(keys, dtype=np.int64, sep=","),
                    np.fromstring(values, dtype=np.int64, sep=","),
                )
                if len(pair[0]) != len(pair[1]):  # pragma: no cover - defensive
                    raise IpchangeError(f"could not read the row hashes of {table}")
                parts.append(np.column_stack(pair))
        return np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64)
    finally:
        cursor.close()


def _pg_copy_out(conn: Connection, sql: str, params: Any = ()) -> bytes:
    """Run ``COPY (sql) TO STDOUT`` as CSV on the connection's transaction; return the bytes."""
    out = io.BytesIO()
    statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
    with (
        conn.connection.driver_connection.cursor() as cursor,
        cursor.copy(statement, params or None) as copy,
    ):
        for data in copy:
            out.write(data)
    return out.getvalue()


def _sqlite_write(conn: Connection, batch: _Batch, rows: np.ndarray, *, empty: bool) -> int:
    """Upsert the selected rows into a SQLite table; return the rows inserted or updated.

    Rows go in multi-row ``INSERT … VALUES`` statements (several hundred rows each). NULL
    instants and flags travel as sentinels turned into NULL by ``NULLIF`` (binding ``None`` is
    slow in the sqlite3 module). Into an empty table (``empty``: the caller dropped its indexes,
    see :func:`_indexes_dropped`) they go as plain inserts.
    """
    table = batch.table
    columns = [*batch.columns, "key_hash", "row_hash"]
    width = len(columns)
    q = lambda name: _quote(conn, name)  # noqa: E731
    marks = []
    for name in columns:
        kind = batch.kinds.get(name)
        if kind == "instant":
            marks.append(f"NULLIF(?, {_NAT})")
        elif kind == "flag":
            marks.append(f"NULLIF(?, {_NA_FLAG})")
        else:
            marks.append("?")
    one_row = "(" + ", ".join(marks) + ")"
    head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) VALUES "
    tail = "" if empty else _upsert_tail(conn, table, batch.columns)

    dbapi = conn.connection.driver_connection
    limit = dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(500, limit // width))
    full = head + ", ".join([one_row] * per_statement) + tail
    changed = 0
    cursor = dbapi.cursor()
    try:
        for start in range(0, len(rows), 50_000):
            flat = batch.sqlite_rows(rows[start : start + 50_000]).ravel()
            for offset in range(0, len(flat), per_statement * width):
                params = flat[offset : offset + per_statement * width].tolist()
                count = len(params) // width
                sql = full if count == per_statement else head + ", ".join([one_row] * count) + tail
                cursor.execute(sql, params)
                changed += cursor.rowcount
    finally:
        cursor.close()
    return changed


def _pg_write(conn: Connection, batch: _Batch, rows: np.ndarray, *, empty: bool) -> int:
    """Upsert the selected rows into a PostgreSQL table; return the rows inserted or updated.

    The rows are streamed with ``COPY`` (CSV written by Arrow) into a temporary table, then
    merged with one ``INSERT … SELECT … ON CONFLICT``. Into an empty table (``empty``: the
    caller dropped its indexes, see :func:`_indexes_dropped`) they are copied directly.
    A worker thread writes the CSV of the next :data:`_PG_COPY_ROWS` rows while the server
    takes in the previous ones (two blocks in memory at most).
    """
    table = batch.table
    columns = [*batch.columns, "key_hash", "row_hash"]
    q = lambda name: _quote(conn, name)  # noqa: E731
    collist = ", ".join(q(c) for c in columns)
    target = q(table) if empty else "_ipchange_stage"
    with conn.connection.driver_connection.cursor() as cursor:
        if not empty:
            cursor.execute(
                f"CREATE TEMPORARY TABLE _ipchange_stage ON COMMIT DROP AS "
                f"SELECT {collist} FROM {q(table)} WITH NO DATA"
            )
        options = pa_csv.WriteOptions(include_header=False)

        def csv_block(start: int) -> memoryview:
            sink = io.BytesIO()
            pa_csv.write_csv(batch.arrow(rows[start : start + _PG_COPY_ROWS]), sink, options)
            return sink.getbuffer()

        with (
            cursor.copy(f"COPY {target} ({collist}) FROM STDIN (FORMAT csv)") as copy,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            ahead: Future[memoryview] | None = None
            for start in range(0, len(rows), _PG_COPY_ROWS):
                following = pool.submit(csv_block, start)
                if ahead is not None:  # the server takes it in while the worker writes on
                    copy.write(ahead.result())
                ahead = following
            if ahead is not None:
                copy.write(ahead.result())
        if empty:
            return len(rows)
        cursor.execute(
            f"INSERT INTO {q(table)} ({collist}) SELECT {collist} FROM _ipchange_stage"
            + _upsert_tail(conn, table, batch.columns)
        )
        changed = cursor.rowcount
        cursor.execute("DROP TABLE _ipchange_stage")
    return changed


def _reject_rows(parsed: ParsedInput, file: str) -> pd.DataFrame:
    """The parser's rejects, one row per (line, column), reasons of a repeated pair joined."""
    frame = parsed.rejects
    columns = ["file", "line", "column", "value", "reason"]
    if frame is None or len(frame) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "line" else "str") for c in columns}
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise IpchangeError(f"{file}: the rejects frame lacks columns {missing}")
    out = pd.DataFrame(
        {
            "file": frame["file"].astype("str").fillna(""),
            "line": pd.to_numeric(frame["line"]).astype("int64"),
            "column": frame["column"].astype("str").fillna(""),
            "value": frame["value"].astype("str").fillna(""),
            "reason": frame["reason"].astype("str").fillna(""),
        }
    )
    return out.groupby(["line", "column"], as_index=False, sort=True).agg(
        file=("file", "first"), value=("value", "first"), reason=("reason", "; ".join)
    )[columns]


def _pg_insert() -> Any:
    """PostgreSQL's ``INSERT … ON CONFLICT`` (imported with its dialect, not before: 0.2 s)."""
    from sqlalchemy.dialects.postgresql import insert

    return insert


def _lock_table(conn: Connection, table: str) -> None:
    """Make other writers of ``table`` wait for this transaction (SQLite: BEGIN IMMEDIATE did)."""
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(f"LOCK TABLE {_quote(conn, table)} IN SHARE ROW EXCLUSIVE MODE")


def _record_manifest(
    conn: Connection, result: LoadResult, *, sha256: str, format: str, policy_version: str
) -> LoadResult:
    """Insert the ``load_manifests`` row of a load; return ``result`` with its id."""
    manifest_id = conn.execute(
        LoadManifest.__table__.insert()
        .values(
            file_name=Path(result.file).name,
            sha256=sha256,
            format=format,
            table=result.table,
            rows_read=result.read,
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            skipped=result.skipped,
            loaded_at=datetime.now(UTC),
            policy_version=policy_version,
        )
        .returning(LoadManifest.id)
    ).scalar_one()
    return replace(result, manifest_id=manifest_id)


def _latest_manifest(conn: Connection, table: str) -> Any:
    """The newest ``load_manifests`` row of ``table`` (``None`` before its first load)."""
    manifests = LoadManifest.__table__
    return conn.execute(
        select(manifests).where(manifests.c.table == table).order_by(manifests.c.id.desc()).limit(1)
    ).first()


def repeat_load(
    engine: Engine,
    path: Path,
    *,
    format: str,
    table: str,
    policy_version: str,
    sha256: Callable[[], str],
) -> LoadResult | None:
    """Record a reload of the bytes the table's latest load read, without parsing them again.

    When the newest manifest of ``table`` is a load of a file with the same SHA-256, in the same
    format, under the same policy version, nothing has been loaded into the table since, so
    loading those bytes again would change nothing. Then only a manifest is recorded: ``read``,
    ``rejected`` and ``skipped`` as that load counted them, ``unchanged`` = the rows it accepted,
    ``inserted`` = ``updated`` = 0. Its rejects are already stored under the file's SHA-256
    (:func:`rejects`). The check and the insert are one write transaction (on SQLite the
    database's write lock, on PostgreSQL the table lock :func:`load` takes), so a concurrent
    load of another file into the table comes either before it (and nothing is recorded here) or
    after it.

    Args:
        engine: From :func:`connect`.
        path: The file (its name goes into the manifest).
        format: The file's input format (``ingest.FORMATS``).
        table: The canonical table the format loads.
        policy_version: The policy version the file would be read under.
        sha256: Returns the SHA-256 (hex) of the file's bytes; called at most once, outside
            any transaction, and only when the latest manifest could match.

    Returns:
        The counts of the recorded reload, or ``None`` when the file must be read and loaded
        with :func:`load`.

    Raises:
        IpchangeError: The database refused the manifest (then nothing was written).
    """

    def same_content(row: Any, digest: str | None) -> bool:
        return (
            row is not None
            and row.format == format
            and row.policy_version == policy_version
            and (digest is None or row.sha256 == digest)
        )

    with _reading(engine) as conn:
        if not same_content(_latest_manifest(conn, table), None):
            return None
    digest = sha256()
    try:
        with engine.begin() as conn:
            _lock_table(conn, table)
            latest = _latest_manifest(conn, table)
            if not same_content(latest, digest):
                return None
            counts = LoadResult(
                file=str(path),
                table=table,
                read=latest.rows_read,
                inserted=0,
                updated=0,
                unchanged=latest.rows_read - latest.rejected - latest.skipped,
                rejected=latest.rejected,
                skipped=latest.skipped,
                manifest_id=0,
            )
            result = _record_manifest(
                conn, counts, sha256=digest, format=format, policy_version=policy_version
            )
            records = LoadRecords.__table__
            conn.execute(
                records.update()
                .where(records.c.manifest_id == latest.id)
                .values(manifest_id=result.manifest_id)
            )
            return result
    except DBAPIError as exc:
        raise IpchangeError(
            f"{path}: the database refused the load, nothing was written: {db_error_reason(exc)}"
        ) from exc


def previous_records(
    engine: Engine, table: str, *, format: str, policy_version: str
) -> RecordHashes | None:
    """The records the latest load of ``table`` accepted, if it read ``format`` under the policy.

    Args:
        engine: From :func:`connect`.
        table: A canonical table.
        format: The input format about to be read (``ingest.FORMATS``).
        policy_version: The policy version it would be read under.

    Returns:
        Their hashes (``ingest.read_file(previous=…)``), or ``None`` when that load was of
        another format or policy version, or kept no record hashes (not a one-record-per-line
        CSV).
    """
    records = LoadRecords.__table__
    with _reading(engine) as conn:
        latest = _latest_manifest(conn, table)
        if latest is None or latest.format != format or latest.policy_version != policy_version:
            return None
        query = select(records.c.header_hash, records.c.record_hashes, records.c.key_hashes)
        query = query.where(records.c.manifest_id == latest.id)
        if conn.dialect.name == "sqlite":
            row = conn.execute(query).first()
        else:  # in binary: bytea as its bytes (16 MB a million records), not as hex text
            compiled = query.compile(dialect=conn.dialect)
            with conn.connection.driver_connection.cursor(binary=True) as cursor:
                row = cursor.execute(str(compiled), compiled.params).fetchone()
    if row is None:
        return None
    header, hashes, keys = row
    return RecordHashes.from_bytes(latest.id, header, hashes, keys)


def _keep_records(conn: Connection, table: str, manifest_id: int, parsed: ParsedInput) -> None:
    """Make the record hashes of this load (if it has them) the only ones kept for ``table``."""
    records, manifests = LoadRecords.__table__, LoadManifest.__table__
    conn.execute(
        records.delete().where(
            records.c.manifest_id.in_(select(manifests.c.id).where(manifests.c.table == table))
        )
    )
    if parsed.records is None:
        return
    hashes, keys = parsed.records.hashes, parsed.records.keys
    if parsed.known is not None:
        hashes = np.concatenate((hashes, parsed.known.hashes))
        keys = np.concatenate((keys, parsed.known.keys))
    data, key_data = RecordHashes(manifest_id, parsed.records.header, hashes, keys).to_bytes()
    conn.execute(
        records.insert().values(
            manifest_id=manifest_id,
            header_hash=parsed.records.header,
            record_hashes=data,
            key_hashes=key_data,
        )
    )


@contextmanager
def _small_cache(conn: Connection) -> Iterator[None]:
    """SQLite: cut the connection's page cache to :data:`_SQLITE_BULK_CACHE_KIB` meanwhile.

    For work that passes every page of a table once (a bulk insert, an index built over a
    table): a larger cache saves nothing there, and it would hold every page the work touches
    up to its size (128 MiB, see :func:`connect`), so memory would grow with the table.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_BULK_CACHE_KIB}")
    try:
        yield
    finally:  # the setting belongs to the connection, which goes back to the pool
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")


@contextmanager
def _indexes_dropped(conn: Connection, table: str) -> Iterator[None]:
    """Drop the indexes of an (empty) table for a bulk insert; rebuild them afterwards.

    Building an index once over all rows is much faster than growing it row by row. On
    PostgreSQL this locks the table against readers until the load commits. After an error the
    rollback restores them (DDL is transactional on both backends). SQLite works in a
    :func:`_small_cache` meanwhile.
    """
    indexes = Base.metadata.tables[table].indexes
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    with _small_cache(conn):
        for index in indexes:
            index.drop(conn)
        yield
        for index in indexes:
            index.create(conn)


def _write_blocks(
    conn: Connection, frames: Iterator[pd.DataFrame], table: str, file: str, *, before: int
) -> tuple[int, int]:
    """Upsert the rows of each typed frame (a block of one file) into ``table``.

    Each block is conformed, hashed and compared with the stored rows on its own, so memory
    holds one block at a time. Blocks must not share a natural key (a file's parser rejects
    every copy of a repeated key). Into a table that was empty (``before`` = 0 rows) the rows
    go as plain inserts, its indexes rebuilt once after the last block.

    Returns:
        The rows accepted (of all blocks) and the rows inserted or updated.

    Raises:
        InvalidInputError: Two rows of a block share a natural key.
    """
    write = _sqlite_write if conn.dialect.name == "sqlite" else _pg_write
    empty = before == 0
    whole: np.ndarray | None = None  # stored hashes of the whole table, read once if needed
    accepted = changed = 0
    dropped = False  # the indexes of the empty table, until the last block is in
    with ExitStack() as bulk:
        for frame in frames:
            typed = _conform(frame, table, file)
            if "source_line" in frame.columns:
                lines = frame["source_line"].to_numpy(dtype=np.int64)
            else:
                lines = np.arange(accepted + 2, accepted + len(frame) + 2, dtype=np.int64)
            del frame
            batch = _batch(typed, table)
            trust = _check_unique_keys(batch, lines, file)
            if empty:
                stored = np.empty((0, 2), dtype=np.int64)
            elif len(typed) * 20 < before:
                stored = _stored_hashes(conn, table, batch.ticket_ids())
            else:  # rows of earlier blocks are not in it, but no later block has their keys
                whole = _stored_hashes(conn, table, None) if whole is None else whole
                stored = whole
            send = np.flatnonzero(~_unchanged_mask(batch, stored, trust))
            if len(send):
                if empty and not dropped:
                    bulk.enter_context(_indexes_dropped(conn, table))
                    dropped = True
                changed += write(conn, batch, send, empty=empty)
            accepted += len(typed)
    return accepted, changed


def load(engine: Engine, parsed: ParsedInput, *, policy_version: str) -> LoadResult:
    """Load one parsed file in one transaction: its accepted rows, its rejects and a manifest.

    Rows are upserted by natural key (tickets, intake, changes: ``ticket_id``; events:
    ``ticket_id, at, field, old_value, new_value``). A row identical to the stored one counts as
    unchanged and is not written, so reloading a file changes nothing; a newer export updates
    only the rows that differ. A ticket row whose ``updated_at`` is older than the stored row's
    does not overwrite it and counts as unchanged (a ticket without ``updated_at`` on either side
    is not known to be older and is written). Rejects are stored once per file content, line and
    column, so a reload does not repeat them. On any error nothing of the file is written.
    The rows of a file read in blocks (``parsed.blocks()``) are written block by block in the
    same one transaction, so memory holds one block at a time.
    The records of ``parsed.known`` (not parsed: the table's latest load accepted them byte for
    byte) count as unchanged; this load's record hashes replace the table's earlier ones
    (:func:`previous_records`).

    SQLite loads hold the write lock for the whole transaction (other writers wait);
    PostgreSQL loads lock the target table against other writers (readers are not blocked).

    Args:
        engine: From :func:`connect`.
        parsed: A parsed file (:class:`ParsedInput`): a frame typed exactly as
            :func:`ipchange_core.schema.typed_dtypes` with a ``source_line`` column, and the
            rejects (file, line, column, value, reason).
        policy_version: The policy version in force, recorded in the manifest.

    Returns:
        The counts of the load; ``read == inserted + updated + unchanged + rejected + skipped``.

    Raises:
        InvalidInputError: Two accepted rows (of one block) share a natural key.
        StaleRecords: ``parsed.known`` is not of the table's latest load (the file must be
            read again in full).
        IpchangeError: The counts of ``parsed`` do not reconcile, its frame is not typed as the
            schema says, or the database refused the load (then nothing was written).
    """
    table = parsed.table
    file = str(parsed.path)
    if table not in _MODELS:
        raise IpchangeError(f"{file}: unknown table {table!r}; expected one of {list(_MODELS)}")
    bad = _reject_rows(parsed, file)
    rejected = int(bad["line"].nunique())
    known = parsed.known
    blocks = getattr(parsed, "blocks", None)
    frames = blocks() if blocks is not None else iter([parsed.frame])
    sqlite = engine.dialect.name == "sqlite"
    try:
        with _gc_paused(), engine.begin() as conn:
            _lock_table(conn, table)
            if known is not None:
                latest = _latest_manifest(conn, table)
                if latest is None or latest.id != known.manifest_id:
                    raise StaleRecords(f"{file}: {table} was loaded again while it was read")
            before = _count(conn, table)
            accepted, changed = _write_blocks(conn, frames, table, file, before=before)
            accepted += 0 if known is None else len(known.hashes)
            if parsed.rows_read != accepted + rejected + parsed.rows_skipped:
                raise IpchangeError(
                    f"{file}: read {parsed.rows_read} rows but accepted {accepted} + rejected "
                    f"{rejected} + skipped {parsed.rows_skipped}; refusing to load"
                )
            inserted = _count(conn, table) - before
            updated = changed - inserted
            result = _record_manifest(
                conn,
                LoadResult(
                    file=file,
                    table=table,
                    read=parsed.rows_read,
                    inserted=inserted,
                    updated=updated,
                    unchanged=accepted - inserted - updated,
                    rejected=rejected,
                    skipped=parsed.rows_skipped,
                    manifest_id=0,
                ),
                sha256=parsed.sha256,
                format=parsed.format,
                policy_version=policy_version,
            )
            _keep_records(conn, table, result.manifest_id, parsed)
            if len(bad):
                insert = (sqlite_insert if sqlite else _pg_insert())(Reject.__table__)
                conn.execute(
                    insert.on_conflict_do_nothing(index_elements=["sha256", "line", "column"]),
                    [
                        {"manifest_id": result.manifest_id, "sha256": parsed.sha256, **record}
                        for record in bad.to_dict("records")
                    ],
                )
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:  # through SQLAlchemy or not
        raise IpchangeError(
            f"{file}: the database refused the load, nothing was written: {db_error_reason(exc)}"
        ) from exc
    return result


# --------------------------------------------------------------------------------------------
# Reading


def _utc(value: pd.Timestamp | datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware instant, got {value!r}")
    # Stored instants are whole µs: x >= t and x < t hold exactly when they do for t rounded up.
    return stamp.tz_convert("UTC").ceil("us").to_pydatetime()


def _window(column: Any, start: datetime | None, end: datetime | None) -> ColumnElement[bool]:
    """``column`` in the half-open ``[start, end)`` (a missing bound is no bound)."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(true(), *conditions)


def _period_parts(
    start: datetime | None,
    end: datetime | None,
    recognised: ColumnElement[bool] | None = None,
    *,
    walk: frozenset[str] = frozenset(),
) -> list[Select[Any]]:
    """Queries whose ticket_ids together are those received in [start, end) (with repeats).

    A request's received_at = min(intake.received_at, tickets.created_at) lies in the window
    iff one of the two does and neither lies before the start: each part finds ids by one of
    the two and checks only the other (the one it found by is not before the start). A ticket
    with an intake row is found through that row (in the window, or after it for a ticket
    created in it), so the part for change rows looks only at those without one.

    With ``recognised`` (a condition on ``tickets``: the request filter, which needs to hold
    only for the tickets without intake and change rows, see :func:`_recognised`), only the
    requests: tickets that have an intake or change row or that the condition holds for, and
    intake rows without a ticket. Without it, every ticket and intake row of the period.
    ``walk`` names the tables (``changes``, ``intake``) in which the period's tickets with a
    change row, or an intake row after the period, are found by walking the table's rows and
    looking each ticket up, instead of probing the table for every ticket of the period
    (SQLite plans the latter whatever the number of tickets: pick the smaller walk).
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    in_window = _window(tickets.c.created_at, start, end)

    by_intake = select(intake.c.ticket_id).where(_window(intake.c.received_at, start, end))
    if start is not None:
        earlier = exists().where(tickets.c.ticket_id == intake.c.ticket_id)
        by_intake = by_intake.where(~earlier.where(tickets.c.created_at < start))
    by_ticket = select(tickets.c.ticket_id).where(in_window)
    if recognised is not None:
        by_ticket = by_ticket.where(recognised)
    if start is not None:
        earlier = exists().where(intake.c.ticket_id == tickets.c.ticket_id)
        by_ticket = by_ticket.where(~earlier.where(intake.c.received_at < start))
    parts = [by_intake, by_ticket]
    if recognised is None:
        return parts
    # a change of a ticket with an intake row is found (or not) by that row: only the others
    others = [(changes, ~exists().where(intake.c.ticket_id == changes.c.ticket_id))]
    if end is not None:  # created in the period, intake received after it
        others.append((intake, intake.c.received_at >= end))
    for table, condition in others:
        query = select(table.c.ticket_id).where(condition)
        same_ticket = tickets.c.ticket_id == table.c.ticket_id
        if table.name in walk:
            query = query.where(exists().where(same_ticket, in_window))
        else:
            query = query.join_from(table, tickets, same_ticket).where(in_window)
        parts.append(query)
    return parts


_SQLITE_READ_MMAP = 1 << 30  # bytes of the database file a reading connection maps

_SELECTED = SATable(
    "ipchange_selected_ids", MetaData(), Column("ticket_id", Text, primary_key=True), schema="temp"
)
"""SQLite: the ticket_ids being read, computed once per read in the reading transaction."""


def _recognised(conn: Connection, policy: PolicySet) -> ColumnElement[bool]:
    """SQLite: the condition on ``tickets`` of :func:`_period_parts`'s ``recognised``.

    It holds for a ticket without intake and change rows that the request filter of the
    version in force at its created_at recognises, and for no other ticket: a ticket with such
    a row is a request whatever its text, found through that row by the other parts (most
    requests have one, so the filter is not run for them). Only the tickets of
    :func:`_candidates` (plain SQL) are looked up in intake and changes, and only those with
    neither row reach the exact filter, :func:`ipchange_core.requests.filter_matcher`, which
    SQLite evaluates itself (a function registered on this connection). PostgreSQL cannot run
    Python: see :func:`_pg_selection`.
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    candidates = _candidates(conn.dialect.name, policy)
    matchers = [filter_matcher(version.request_filter) for version in policy.versions]

    @functools.lru_cache(maxsize=1 << 17)  # help-desk subjects repeat: one C call per ticket
    def recognise(version: int, ticket_type: str, tags: str, subject: str) -> bool:
        return matchers[version](ticket_type, tags, subject)

    conn.connection.driver_connection.create_function(
        "ipchange_recognised", 4, recognise, deterministic=True
    )
    # the version index of PolicySet.version_index: the last version starting at or before
    version: Any = literal(0)
    if len(policy.versions) > 1:
        starts = [_utc(v.effective_from_utc, "effective_from") for v in policy.versions]
        version = case(
            *[(tickets.c.created_at >= s, i) for i, s in reversed(list(enumerate(starts))) if i],
            else_=0,
        )
    recognise = func.ipchange_recognised(
        version, tickets.c.ticket_type, tickets.c.tags, tickets.c.subject
    )
    linked = or_(
        exists().where(intake.c.ticket_id == tickets.c.ticket_id),
        exists().where(changes.c.ticket_id == tickets.c.ticket_id),
    )
    if candidates is None:
        return case((linked, 0), else_=recognise) == 1  # CASE: Python only for the unlinked
    index = _requests_index(policy)
    if index is None or not _has_index(conn, index[0]):  # every ticket's text is tested first
        return case((candidates, case((linked, 0), else_=recognise)), else_=0) == 1
    # The index's condition, word for word (values inline: SQLite matches a partial index only
    # to literal values), so that SQLite reads the candidates from the index. Each candidate's
    # links are looked up before its text is tested again: most have one.
    return and_(
        literal_column(f"({index[1]})"),
        case((linked, 0), (candidates, recognise), else_=0) == 1,
    )


_REQUESTS_INDEX = "ix_tickets_requests_"
"""Name prefix of the SQLite partial index of :func:`index_requests` (a digest follows)."""


def _requests_index(policy: PolicySet) -> tuple[str, str] | None:
    """SQLite: the name and ``WHERE`` text of the partial index of ``policy``'s candidates.

    ``None`` when any ticket may be a request (:func:`_candidates`). The name ends with a digest
    of the text, so a policy whose filter changed has an index of its own.
    """
    candidates = _candidates("sqlite", policy)
    if candidates is None:
        return None
    where = str(
        candidates.compile(dialect=sqlite_dialect(), compile_kwargs={"literal_binds": True})
    )
    return _REQUESTS_INDEX + hashlib.sha256(where.encode()).hexdigest()[:16], where


def _has_index(conn: Connection, name: str) -> bool:
    found = "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?"
    return conn.exec_driver_sql(found, (name,)).first() is not None


def index_requests(engine: Engine, policy: PolicySet) -> bool:
    """SQLite: keep one partial index on ``tickets``, of the request candidates of ``policy``.

    The index holds ``created_at`` of the tickets that :func:`_candidates` (plain SQL: type,
    tags and subject) says may be requests, about one ticket in ten on a help desk. Reading a
    period's requests (:func:`read_frames` with a policy) then looks those up in it instead of
    testing the text of every ticket of the period: for three years of a million tickets,
    0.39 s instead of 1.2-1.4 s (measured). SQLite keeps it up to date as rows are written;
    building it over a million tickets takes about 1.2 s (in a :func:`_small_cache`, so memory
    does not grow with the table). The index of another policy (whose filter changed) is
    dropped. PostgreSQL, which finds the requests in one join (:func:`_pg_selection`), gets
    none.

    Args:
        engine: From :func:`connect`.
        policy: The policy whose request filter (all its versions) the index serves.

    Returns:
        Whether an index was created or dropped.
    """
    if engine.dialect.name != "sqlite":
        return False
    index = _requests_index(policy)
    find = f"SELECT name FROM sqlite_master WHERE type = 'index' AND name GLOB '{_REQUESTS_INDEX}*'"
    with _reading(engine) as conn:
        present = set(conn.exec_driver_sql(find).scalars())
    wanted = {index[0]} if index is not None else set()
    if present == wanted:
        return False
    with engine.begin() as conn, _small_cache(conn):
        present = set(conn.exec_driver_sql(find).scalars())  # (as of the write lock)
        for name in sorted(present - wanted):
            conn.exec_driver_sql(f"DROP INDEX {_quote(conn, name)}")
        if index is not None and index[0] not in present:
            name, where = index
            conn.exec_driver_sql(
                f"CREATE INDEX {_quote(conn, name)} ON tickets (created_at) WHERE {where}"
            )
    return True


def _candidates(dialect: str, policy: PolicySet) -> ColumnElement[bool] | None:
    """A plain-SQL superset of every version's request filter (None: any ticket may match).

    Built from :func:`ipchange_core.requests.filter_prefilter`: a ticket type of the filter, or
    tags or a subject containing one set of the filter's literals (see :func:`_contains`).
    """
    tickets = Ticket.__table__
    prefilters = {filter_prefilter(version.request_filter) for version in policy.versions}
    if None in prefilters:
        return None
    terms: list[ColumnElement[bool]] = []
    for pre in sorted(prefilters, key=repr):  # type: ignore[arg-type]
        # = per type, not IN: an expanding IN needs compiling per execution (see _read_table)
        terms.extend(tickets.c.ticket_type == name for name in sorted(pre.ticket_types))
        for column, needs in ((tickets.c.tags, pre.tags), (tickets.c.subject, pre.subject)):
            terms.append(_containing(dialect, column, needs))
    if dialect == "sqlite":  # LIKE folds ASCII letters only, and a case twin is not ASCII
        for column in (tickets.c.tags, tickets.c.subject):
            terms.append(func.length(cast(column, LargeBinary)) != func.length(column))
    return or_(false(), *terms)


def _containing(dialect: str, column: Any, needs: frozenset[frozenset[str]]) -> Any:
    """``column`` contains all the texts of one of ``needs``, a text they share tested once.

    ``ip AND (change OR new)``, not ``ip AND change OR ip AND new``: most rows fail at the first
    test. PostgreSQL tests alternatives of one text each as one regular expression.
    """
    if not needs:
        return false()
    if frozenset() in needs:
        return true()
    if dialect != "sqlite" and all(len(need) == 1 for need in needs):  # one alternation
        return column.op("~")("|".join(sorted(_regex(text) for need in needs for text in need)))
    counts: dict[str, int] = {}
    for need in needs:
        for text in need:
            counts[text] = counts.get(text, 0) + 1
    text = min(counts, key=lambda t: (-counts[t], t))  # the text most alternatives need
    having = frozenset(need - {text} for need in needs if text in need)
    others = frozenset(need for need in needs if text not in need)
    first = and_(_contains(dialect, column, text), _containing(dialect, column, having))
    return or_(first, _containing(dialect, column, others)) if others else first


def _contains(dialect: str, column: Any, text: str) -> ColumnElement[bool]:
    """``column`` contains ``text`` (printable ASCII), each letter in any case.

    SQLite: ``LIKE`` (ASCII letters in any case; :func:`_candidates` adds every value that is
    not all ASCII, for the case twins).
    PostgreSQL: a regular expression of :func:`ipchange_core.requests.char_variants` (its
    ``ILIKE`` follows the locale, where ``I`` need not be the capital of ``i``).
    """
    if dialect == "sqlite":
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(f"%{escaped}%", escape="\\")
    return column.op("~")(_regex(text))


def _regex(text: str) -> str:
    """A PostgreSQL regular expression of ``text``: each letter any of its variants."""
    classes = (f"[{v}]" if len(v := char_variants(c)) > 1 else c for c in text)
    return "".join(c if len(c) > 1 or c.isalnum() else f"\\{c}" for c in classes)


def _any_time(conn: Connection, test: Callable[[Any], ColumnElement[bool]]) -> bool:
    """Whether a ticket's created_at or an intake's received_at passes ``test`` (indexed)."""
    tickets, intake = Ticket.__table__, Intake.__table__
    found = exists().where(test(tickets.c.created_at)) | exists().where(test(intake.c.received_at))
    return bool(conn.execute(select(found)).scalar_one())


@contextmanager
def _selected(
    conn: Connection,
    start: datetime | None,
    end: datetime | None,
    policy: PolicySet | None,
    columns: Mapping[str, Sequence[str]],
) -> Iterator[tuple[Callable[[Any], ColumnElement[bool]] | None, dict[str, pd.DataFrame]]]:
    """Compute the ticket_ids to read once; yield a condition on a ticket_id column (or None).

    SQLite gathers them in a temporary table of the connection (dropped before the yield) and
    reads them out as one JSON array (:func:`_sqlite_any`), PostgreSQL,
    whose reading transaction is read-only, in one parameter (:func:`_pg_selection`, which
    also reads the tickets, intake and changes, in the columns of ``columns`` (default all):
    yielded beside the condition, ``{table: frame}``; SQLite yields ``{}``). A bound that no
    ticket or intake row lies beyond is dropped first (two index look-ups): the same ids,
    fewer checks.
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    if start is not None and not _any_time(conn, lambda at: at < start):
        start = None
    if end is not None and not _any_time(conn, lambda at: at >= end):
        end = None
    if policy is None and start is None and end is None:
        yield None, {}
        return
    if conn.dialect.name != "sqlite":
        frames, ids = _pg_selection(conn, start, end, policy, columns)
        yield _pg_any(ids), frames
        return
    recognised, walk = None, frozenset()
    if policy is not None:
        recognised = _recognised(conn, policy)
        walks = {"changes": select(func.count()).select_from(changes)}
        if end is not None:
            walks["intake"] = select(func.count()).where(intake.c.received_at >= end)
        in_period = select(func.count()).where(_window(tickets.c.created_at, start, end))
        n = conn.execute(in_period).scalar_one()
        walk = frozenset(t for t, count in walks.items() if conn.execute(count).scalar_one() < n)
    _SELECTED.create(conn)
    try:  # one INSERT per part, repeats ignored: no UNION sorting the ids of every part
        for part in _period_parts(start, end, recognised, walk=walk):
            insert = _SELECTED.insert().prefix_with("OR IGNORE")
            conn.execute(insert.from_select(["ticket_id"], part))
        ids = conn.execute(select(func.json_group_array(_SELECTED.c.ticket_id))).scalar_one()
    finally:
        _SELECTED.drop(conn)
    yield _sqlite_any(ids), {}


_FILTER_COLUMNS = ("created_at", "ticket_type", "tags", "subject")
"""The ticket columns :func:`ipchange_core.requests.recognised_tickets` reads."""


def _pg_selection(
    conn: Connection,
    start: datetime | None,
    end: datetime | None,
    policy: PolicySet | None,
    columns: Mapping[str, Sequence[str]],
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """PostgreSQL: the tickets, intake and changes rows of the requests received in [start, end).

    The ids of :func:`_period_parts` (with the filter), found in one pass over the period's
    tickets instead of part by part: the tickets created in the period, each joined (by hash)
    with its intake and change row, that have either row or are :func:`_candidates` (plain
    SQL, a superset of the request filter) and whose intake is not before the start. The
    joined intake and change rows come with them (``ticket_id`` is unique in both tables), so
    neither table is read again. Only the candidates without intake and change rows are
    judged by the exact filter, in Python (:func:`ipchange_core.requests.recognised_tickets`).
    An intake row of the period whose ticket was not found so (missing, or created after the
    period) is looked up on its own, with its ticket and change rows. Without ``policy``,
    every ticket and intake row of the period.

    Args:
        conn: The reading connection (its snapshot).
        start: First instant of the period, or ``None``.
        end: First instant after the period, or ``None``.
        policy: The request filter's policy, or ``None`` for every ticket of the period.
        columns: Per table, the columns to return (default all), as :func:`read_frames`.

    Returns:
        ``{"tickets", "intake", "changes"}`` → typed frames (unsorted), and the selected
        ticket_ids, intake rows without a ticket included.
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    linked = {"intake": intake, "changes": changes}
    typed = {t: schema.typed_dtypes(t) for t in ("tickets", *linked)}
    names = {t: list(columns.get(t) or typed[t]) for t in typed}
    needed = _FILTER_COLUMNS if policy is not None else ("created_at",)
    read = [*names["tickets"], *(n for n in needed if n not in names["tickets"])]
    conditions = [_window(tickets.c.created_at, start, end)]
    if start is not None:  # received = the earlier of created_at and the intake's received_at
        conditions.append(or_(intake.c.ticket_id.is_(None), intake.c.received_at >= start))
    found = {t: table.c.ticket_id.is_not(None) for t, table in linked.items()}
    if policy is not None:
        candidates = _candidates(conn.dialect.name, policy)
        if candidates is not None:  # in this order: most have an intake
            conditions.append(or_(*found.values(), candidates))
    exprs = _storage_columns(conn.dialect.name, tickets, read)
    dtypes = {name: typed["tickets"][name] for name in read}
    for t, table in linked.items():
        exprs.append(found[t].label(f"{t}?"))
        dtypes[f"{t}?"] = "boolean"
        exprs.extend(_storage_columns(conn.dialect.name, table, names[t], prefix=f"{t}."))
        dtypes.update({f"{t}.{n}": typed[t][n] for n in names[t]})
    query = (
        select(*exprs)
        .select_from(
            tickets.outerjoin(intake, intake.c.ticket_id == tickets.c.ticket_id).outerjoin(
                changes, changes.c.ticket_id == tickets.c.ticket_id
            )
        )
        .where(and_(*conditions))
    )
    arrays, n = _pg_columns(conn, query, dtypes)
    has = {t: arrays.pop(f"{t}?").to_numpy() for t in linked}
    parts = {t: {name: arrays.pop(f"{t}.{name}") for name in names[t]} for t in linked}
    frame = _typed_frame("tickets", arrays, n)
    keep = np.ones(n, dtype=bool)
    judge = ~(has["intake"] | has["changes"])
    if policy is not None and judge.any():
        keep[judge] = recognised_tickets(frame[judge], policy).to_numpy(bool)
    frames = {"tickets": frame[keep]}
    for t in linked:
        part = _typed_frame(t, parts[t], n)
        frames[t] = part[has[t] & keep]  # (a judged ticket has neither row)
    received = select(func.array_agg(intake.c.ticket_id))  # one row: no Python object per row
    received = received.where(_window(intake.c.received_at, start, end))
    ids = set(frames["tickets"]["ticket_id"])
    elsewhere = [i for i in conn.execute(received).scalar_one() or () if i not in ids]
    if elsewhere:
        late = _read_table(conn, "tickets", _pg_any(elsewhere)(tickets.c.ticket_id), read)
        early = np.zeros(len(late), dtype=bool)  # created, hence received, before the start
        if start is not None:
            early = (late["created_at"] < start).to_numpy(bool)
        frames["tickets"] = pd.concat([frames["tickets"], late[~early]], ignore_index=True)
        elsewhere = sorted(set(elsewhere) - set(late["ticket_id"][early]))
    if elsewhere:
        for t, table in linked.items():
            rows = _read_table(conn, t, _pg_any(elsewhere)(table.c.ticket_id), names[t])
            frames[t] = pd.concat([frames[t], rows], ignore_index=True)
    frames = {t: frame[names[t]].reset_index(drop=True) for t, frame in frames.items()}
    return frames, [*ids, *elsewhere]


def _sqlite_any(ids: str) -> Callable[[Any], ColumnElement[bool]]:
    """SQLite: a condition "a ticket_id column is one of ``ids``" (a JSON array of texts).

    The ids travel in the statement, not in a temporary table, so that any connection can read
    with it (:func:`_read_tables`); SQLite looks each up in the table's ticket_id index.
    """
    each = func.json_each(bindparam("ids", ids, type_=Text)).table_valued("value")
    return lambda column: column.in_(select(each.c.value))


def _pg_any(ids: Sequence[str]) -> Callable[[Any], ColumnElement[bool]]:
    """PostgreSQL: a condition "a ticket_id column is one of ``ids``".

    The ids travel as one JSON text made an array when the statement runs: unlike a literal
    array (whose every element the planner weighs, and psycopg quotes one by one in Python),
    the planner then looks each id up in the table's ticket_id index, never scans the table.
    """
    text = bindparam("ids", json.dumps(list(ids)), type_=Text)
    array = func.array(select(func.json_array_elements_text(cast(text, JSON))).scalar_subquery())
    return lambda column: column == func.any(array)


def _storage_select(
    dialect: str,
    table: SATable,
    where: ColumnElement[bool] | None,
    names: Sequence[str] | None = None,
) -> Select[Any]:
    """SELECT of a canonical table's columns (``names``, default all) in a raw, cheap form."""
    query = select(*_storage_columns(dialect, table, names))
    if where is not None:
        query = query.where(where)
    return query  # sorted afterwards: on SQLite, walking an index is far slower than a scan


def _storage_columns(
    dialect: str, table: SATable, names: Sequence[str] | None = None, *, prefix: str = ""
) -> list[Any]:
    """A canonical table's columns (``names``, default all) in a raw, cheap form.

    Each is labelled ``prefix`` + its name: instants as µs since the epoch (SQLite: NULL as
    :data:`_NAT`), SQLite booleans as 0/1 (NULL as :data:`_NA_FLAG`), the rest as stored.
    """
    dtypes = schema.typed_dtypes(table.name)
    exprs = []
    for name in names or dtypes:
        column, dtype = table.c[name], dtypes[name]
        if dtype == schema.TIMESTAMP_DTYPE:
            if dialect == "sqlite":
                expr = func.coalesce(type_coerce(column, BigInteger), literal_column(str(_NAT)))
            else:  # exact: EXTRACT(EPOCH …) is numeric from PostgreSQL 14 on
                expr = cast(extract("epoch", column) * literal_column("1000000"), BigInteger)
        elif dtype == "boolean" and dialect == "sqlite":
            expr = func.coalesce(type_coerce(column, Integer), _NA_FLAG)
        else:
            expr = column
        exprs.append(expr.label(prefix + name))
    return exprs


def _typed_frame(table: str, columns: dict[str, Any], n: int) -> pd.DataFrame:
    """Build the typed frame of a canonical table's columns from raw values (lists or Arrow)."""
    out = {}
    dtypes = schema.typed_dtypes(table)
    for name, values in columns.items():
        dtype = dtypes[name]
        if dtype == "str":
            if not isinstance(values, pa.ChunkedArray | pa.Array):
                values = pa.array(values, type=pa.large_string())
            series = pd.Series(values, dtype="str")
        elif dtype == schema.TIMESTAMP_DTYPE:
            if isinstance(values, pa.ChunkedArray | pa.Array):
                values = pc.fill_null(values, _NAT).to_numpy()
            ints = np.asarray(values, dtype=np.int64)
            series = pd.Series(ints.view("datetime64[us]")).dt.tz_localize("UTC")
        elif dtype == "boolean":
            if isinstance(values, pa.ChunkedArray | pa.Array):
                series = pd.Series(pd.BooleanDtype().__from_arrow__(values))
            else:
                codes = np.asarray(values, dtype=np.int8)
                series = pd.Series(pd.arrays.BooleanArray(codes == 1, codes == _NA_FLAG))
        else:
            if isinstance(values, pa.ChunkedArray | pa.Array):
                values = values.to_numpy(zero_copy_only=False)
            series = pd.Series(np.asarray(values, dtype=bool))
        out[name] = series.astype(dtype)
    frame = pd.DataFrame(out)
    if len(frame) != n:  # pragma: no cover - defensive
        raise IpchangeError(f"read {len(frame)} rows of {table}, expected {n}")
    return frame


def _sqlite_columns(
    conn: Connection, query: Select[Any], names: Sequence[str], dtypes: dict[str, str]
) -> tuple[dict[str, Any], int]:
    """The columns of a :func:`_storage_select` on SQLite as arrays, and the number of rows.

    No Python object per value (that cost ~1 µs each, most of a read): one aggregate row holds
    each column concatenated by ``group_concat`` (the aggregates of one query see the rows in
    the same order), text as its UTF-8 bytes beside their byte lengths, instants and booleans
    as numbers. Text columns are NOT NULL, instants and booleans coalesced, so no value is
    skipped; each column's length is checked all the same.
    """
    rows = query.subquery("rows")
    exprs: list[Any] = [func.count()]
    for name in names:
        column = rows.c[name]
        if dtypes[name] == "str":
            exprs.append(cast(func.group_concat(column, ""), LargeBinary))
            exprs.append(func.group_concat(func.length(cast(column, LargeBinary)), ","))
        elif dtypes[name] == schema.TIMESTAMP_DTYPE:
            exprs.append(func.group_concat(column, ","))
        else:  # booleans: one digit each, 2 = NA
            exprs.append(cast(func.group_concat(column, ""), LargeBinary))
    aggregate = select(*exprs).select_from(rows)
    sql = str(aggregate.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()
    try:
        raw = list(cursor.execute(sql).fetchone())
    except sqlite3.DataError as exc:  # SQLITE_TOOBIG: a column of over 1 GB in one read
        raise IpchangeError(
            f"reading {query.get_final_froms()[0]}: {exc}; read a shorter period"
        ) from exc
    finally:
        cursor.close()
    n = int(raw.pop(0))
    columns: dict[str, Any] = {}
    for name in names:
        dtype = dtypes[name]
        if dtype == "str":
            data, lengths = raw.pop(0) or b"", np.fromstring(raw.pop(0) or "", np.int64, sep=",")
            offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            if offsets[-1] != len(data):
                raise IpchangeError(f"read {len(data)} bytes of {name}, expected {offsets[-1]}")
            values: Any = pa.LargeStringArray.from_buffers(
                len(lengths), pa.py_buffer(offsets), pa.py_buffer(data)
            )
        elif dtype == schema.TIMESTAMP_DTYPE:
            values = np.fromstring(raw.pop(0) or "", np.int64, sep=",")
        else:
            values = np.frombuffer(raw.pop(0) or b"", dtype=np.uint8).astype(np.int8) - ord("0")
        if len(values) != n:
            raise IpchangeError(f"read {len(values)} values of {name}, expected {n}")
        columns[name] = values
    return columns, n


def _read_table(
    conn: Connection,
    table: str,
    where: ColumnElement[bool] | None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The typed columns ``names`` (default all) of a canonical table's rows where ``where``."""
    sa_table = Base.metadata.tables[table]
    dtypes = schema.typed_dtypes(table)
    names = list(names or dtypes)
    query = _storage_select(conn.dialect.name, sa_table, where, names)
    if conn.dialect.name == "sqlite":
        columns, n = _sqlite_columns(conn, query, names, dtypes)
    else:
        columns, n = _pg_columns(conn, query, {name: dtypes[name] for name in names})
    return _typed_frame(table, columns, n)


def _pg_columns(
    conn: Connection, query: Select[Any], dtypes: Mapping[str, str]
) -> tuple[dict[str, pa.ChunkedArray], int]:
    """The columns of a :func:`_storage_select`-like query on PostgreSQL, and the row count.

    ``dtypes`` names the query's columns in order, each with its typed dtype (text, instant as
    µs since the epoch, boolean); read in one ``COPY … TO STDOUT`` parsed by Arrow.
    """
    compiled = query.compile(dialect=conn.dialect)
    data = _pg_copy_out(conn, str(compiled), compiled.params)
    names = list(dtypes)
    arrow_types = {
        name: pa.string()
        if dtype == "str"
        else pa.int64()
        if dtype == schema.TIMESTAMP_DTYPE
        else pa.bool_()
        for name, dtype in dtypes.items()
    }
    if not data:
        return {n: pa.chunked_array([], arrow_types[n]) for n in names}, 0
    parsed = pa_csv.read_csv(
        io.BytesIO(data),
        read_options=pa_csv.ReadOptions(column_names=names, block_size=1 << 24),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=arrow_types,
            null_values=[""],
            strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    )
    return {n: parsed[n] for n in names}, parsed.num_rows


def read_frames(
    engine: Engine,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    policy: PolicySet | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Read the four canonical tables for the requests received in the half-open ``[start, end)``.

    A request's ``received_at`` is the earliest of its intake's ``received_at`` and its ticket's
    ``created_at`` (SPEC 2.1); every ticket, intake, change and event row of the selected
    ``ticket_id`` values is returned, including tickets without intake and intake without a
    ticket. The selected ids are computed once, in SQL on indexed columns, and all four tables
    are read in one snapshot.

    Args:
        engine: From :func:`connect`.
        start: First instant of the period (timezone-aware), or ``None`` for no lower bound.
        end: First instant after the period (timezone-aware), or ``None`` for no upper bound.
        policy: Read only the IP change requests by this policy (SPEC 2.1): the tickets with an
            intake or change row or that the request filter of the version in force at their
            ``created_at`` recognises, and intake rows without a ticket — exactly the rows
            :func:`ipchange_core.evaluate.evaluate` judges, so other help-desk tickets are never
            read. ``None`` reads every ticket of the period.
        columns: Read only these columns of the tables it names (in this order; each must hold
            the table's natural key), the others whole. Fewer columns read faster: the events'
            key columns alone come from their unique index, not from the table.

    Returns:
        ``{"tickets", "ticket_events", "intake", "changes"}`` → frames with exactly the columns
        and dtypes of :func:`ipchange_core.schema.typed_dtypes` (or those of ``columns``) and a
        fresh RangeIndex, sorted by natural key (``ticket_id``; events by ticket_id, at, field,
        old_value, new_value).

    Raises:
        ValueError: ``start`` or ``end`` is naive, or ``end`` precedes ``start``; ``columns``
            names an unknown table or column or one twice, or leaves out a key column.
    """
    lo, hi = _utc(start, "start"), _utc(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"end {end} precedes start {start}")
    columns = dict(columns or {})
    for table, names in columns.items():
        if table not in schema.TABLES:
            raise ValueError(f"columns: {table!r} is not a canonical table")
        unknown = sorted(set(names) - set(schema.typed_dtypes(table)))
        missing = [key for key in _KEYS[table] if key not in names]
        twice = sorted({name for name in names if list(names).count(name) > 1})
        if unknown or missing or twice:
            raise ValueError(
                f"columns of {table}: unknown {unknown}, key columns missing {missing}, "
                f"named twice {twice}"
            )
    frames = {}
    with _gc_paused(), _reading(engine) as conn:
        if conn.dialect.name == "sqlite":  # pages by address, not copied in one read() each
            conn.exec_driver_sql(f"PRAGMA mmap_size = {_SQLITE_READ_MMAP}")
        with _selected(conn, lo, hi, policy, columns) as (selected, read):
            rest = [table for table in schema.TABLES if table not in read]
            read = {**read, **_read_tables(engine, conn, rest, selected, columns)}
        for table in schema.TABLES:
            frame, keys = read[table], list(_KEYS[table])
            if not _in_order(frame, keys):
                frame = frame.sort_values(keys, ignore_index=True)
            frames[table] = frame
    return frames


def _read_tables(
    engine: Engine,
    conn: Connection,
    tables: Sequence[str],
    selected: Callable[[Any], ColumnElement[bool]] | None,
    columns: Mapping[str, Sequence[str]],
) -> dict[str, pd.DataFrame]:
    """The rows of ``tables`` whose ticket_id ``selected`` holds for, in ``conn``'s snapshot.

    Each table comes typed and unsorted, in the columns of ``columns`` (default all). SQLite
    runs a query in the calling thread without holding Python's lock, so from a database file
    a second reading connection, in a worker thread, reads every other table meanwhile. It
    reads only if it sees the same snapshot as ``conn``: a load commits its rows with a new
    ``load_manifests`` row, so the same latest manifest means that no load committed in
    between. Otherwise ``conn`` reads every table. The second connection reads pages with
    ``read()``, not mapped: a second mapping of the file would count its pages twice in the
    process's resident memory.
    """

    def read(using: Connection, table: str) -> pd.DataFrame:
        column = Base.metadata.tables[table].c.ticket_id
        where = None if selected is None else selected(column)
        return _read_table(using, table, where, columns.get(table))

    if len(tables) > 1 and _sqlite_file(conn):
        with _reading(engine) as other:
            if _latest_load(other) == _latest_load(conn):
                other.exec_driver_sql("PRAGMA mmap_size = 0")  # (a pooled one may have mapped)
                with ThreadPoolExecutor(1) as worker:  # every other table, from the second on
                    theirs = worker.submit(
                        lambda: {table: read(other, table) for table in tables[1::2]}
                    )
                    frames = {table: read(conn, table) for table in tables[::2]}
                    return {**frames, **theirs.result()}
    return {table: read(conn, table) for table in tables}


def _sqlite_file(conn: Connection) -> bool:
    """Whether ``conn`` reads a SQLite database file (which other connections can open too)."""
    if conn.dialect.name != "sqlite":
        return False
    main = [row for row in conn.exec_driver_sql("PRAGMA database_list") if row[1] == "main"]
    return bool(main and main[0][2])


def _latest_load(conn: Connection) -> int | None:
    """The id of the newest ``load_manifests`` row that ``conn`` sees (``None``: no load yet)."""
    return conn.execute(select(func.max(LoadManifest.__table__.c.id))).scalar_one()


def _in_order(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
    """Whether ``frame``'s rows ascend by ``keys`` (compared in turn; ties allowed).

    Rows read through an index on the keys mostly arrive in order: checking that (one pass of
    vectorised comparisons) is several times quicker than sorting them again. The key columns
    hold no missing values.
    """
    if len(frame) < 2:
        return True
    before = np.zeros(len(frame) - 1, dtype=bool)  # ordered by the keys compared so far
    tied = np.ones(len(frame) - 1, dtype=bool)
    for key in keys:
        values = frame[key].array
        earlier, later = values[:-1], values[1:]
        before |= tied & np.asarray(earlier < later, dtype=bool)
        tied &= np.asarray(earlier == later, dtype=bool)
    return bool((before | tied).all())


def _frame(rows: Sequence[Any], dtypes: dict[str, str]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in dtypes]
    out = {}
    for (name, dtype), values in zip(dtypes.items(), columns, strict=True):
        if dtype == schema.TIMESTAMP_DTYPE:
            series = pd.Series(pd.to_datetime(list(values), utc=True), dtype=dtype)
        else:
            series = pd.Series(list(values), dtype=dtype)
        out[name] = series
    return pd.DataFrame(out)


_MANIFEST_DTYPES = {
    "id": "int64",
    "file_name": "str",
    "sha256": "str",
    "format": "str",
    "table": "str",
    "rows_read": "int64",
    "inserted": "int64",
    "updated": "int64",
    "unchanged": "int64",
    "rejected": "int64",
    "skipped": "int64",
    "loaded_at": schema.TIMESTAMP_DTYPE,
    "policy_version": "str",
}
_REJECT_DTYPES = {
    "manifest_id": "int64",
    "file": "str",
    "line": "int64",
    "column": "str",
    "value": "str",
    "reason": "str",
}
_LEDGER_DTYPES = {
    "id": "int64",
    "ticket_id": "str",
    "fee_status": "str",
    "amount_cents": "int64",
    "policy_version": "str",
    "computed_at": schema.TIMESTAMP_DTYPE,
    "export_batch_id": "Int64",
    "reverses_id": "Int64",
}


def manifests(engine: Engine) -> pd.DataFrame:
    """Return every load manifest, oldest first (columns as in ``load_manifests``)."""
    table = LoadManifest.__table__
    with _reading(engine) as conn:
        rows = conn.execute(
            select(*(table.c[name] for name in _MANIFEST_DTYPES)).order_by(table.c.id)
        ).all()
    return _frame(rows, _MANIFEST_DTYPES)


def rejects(engine: Engine, manifest_id: int | None = None) -> pd.DataFrame:
    """Return stored rejects: all of them, or those of the file content loaded by a manifest.

    Rejects are stored once per file content (sha256), line and column; ``manifest_id`` in the
    result is the load that first recorded them, so asking for a reload's manifest returns the
    rejects of that same content.

    Args:
        engine: From :func:`connect`.
        manifest_id: A ``load_manifests.id``, or ``None`` for every reject.

    Returns:
        Columns manifest_id, file, line, column, value, reason; ordered by manifest, line,
        column.

    Raises:
        IpchangeError: No manifest has id ``manifest_id``.
    """
    table = Reject.__table__
    query = select(*(table.c[name] for name in _REJECT_DTYPES)).order_by(
        table.c.manifest_id, table.c.line, table.c.column
    )
    with _reading(engine) as conn:
        if manifest_id is not None:
            sha = conn.execute(
                select(LoadManifest.sha256).where(LoadManifest.id == manifest_id)
            ).scalar_one_or_none()
            if sha is None:
                raise IpchangeError(f"no load manifest with id {manifest_id}")
            query = query.where(table.c.sha256 == sha)
        rows = conn.execute(query).all()
    return _frame(rows, _REJECT_DTYPES)


# --------------------------------------------------------------------------------------------
# Fee ledger


def append_fees(
    engine: Engine,
    fees: pd.DataFrame,
    *,
    policy_version: str,
    computed_at: datetime | None = None,
) -> list[int]:
    """Append fee entries to the ledger in one transaction.

    Args:
        engine: From :func:`connect`.
        fees: Columns ``ticket_id``, ``fee_status``, ``amount_cents`` (integer cents).
        policy_version: The policy version that computed them.
        computed_at: When they were computed (aware); now by default.

    Returns:
        The ids of the new entries, in the order of ``fees``.
    """
    when = computed_at or datetime.now(UTC)
    entries = [
        FeeLedger(
            ticket_id=str(row.ticket_id),
            fee_status=str(row.fee_status),
            amount_cents=int(row.amount_cents),
            policy_version=policy_version,
            computed_at=when,
        )
        for row in fees[["ticket_id", "fee_status", "amount_cents"]].itertuples(index=False)
    ]
    with Session(engine) as session, session.begin():
        session.add_all(entries)
        session.flush()
        return [entry.id for entry in entries]


def record_export(
    engine: Engine,
    fee_ids: Sequence[int],
    *,
    period: str,
    format: str,
    sha256: str,
    created_at: datetime | None = None,
) -> int:
    """Record an export batch and mark its fee entries as exported, in one transaction.

    Args:
        engine: From :func:`connect`.
        fee_ids: The ledger entries exported.
        period: The period exported (e.g. ``2026-11``).
        format: The file format (``csv`` or ``xlsx``).
        sha256: SHA-256 of the exported file.
        created_at: When the export was made (aware); now by default.

    Returns:
        The new ``export_batches.id``.

    Raises:
        IpchangeError: An entry does not exist or was already exported (never billed twice).
    """
    ids = sorted({int(i) for i in fee_ids})
    ledger = FeeLedger.__table__
    with engine.begin() as conn:
        found = conn.execute(
            select(ledger.c.id, ledger.c.export_batch_id, ledger.c.amount_cents).where(
                ledger.c.id.in_(ids)
            )
        ).all()
        missing = sorted(set(ids) - {row.id for row in found})
        if missing:
            raise IpchangeError(f"no fee_ledger rows with ids {missing[:10]}")
        done = [row for row in found if row.export_batch_id is not None]
        if done:
            raise IpchangeError(
                f"fee_ledger row {done[0].id} was already exported in batch "
                f"{done[0].export_batch_id}; a fee is never billed twice"
            )
        batch_id = conn.execute(
            ExportBatch.__table__.insert()
            .values(
                period=period,
                created_at=created_at or datetime.now(UTC),
                format=format,
                rows=len(ids),
                total_cents=sum(row.amount_cents for row in found),
                sha256=sha256,
            )
            .returning(ExportBatch.id)
        ).scalar_one()
        marked = conn.execute(
            ledger.update()
            .where(ledger.c.id.in_(ids), ledger.c.export_batch_id.is_(None))
            .values(export_batch_id=batch_id)
        ).rowcount
        if marked != len(ids):  # pragma: no cover - guarded by the checks above
            raise IpchangeError("fee rows changed during the export; nothing was recorded")
    return batch_id


def correct_fee(
    engine: Engine,
    fee_id: int,
    *,
    amount_cents: int,
    fee_status: str,
    policy_version: str,
) -> tuple[int, int]:
    """Correct a fee entry by appending a reversal and a new entry (the original stays).

    Args:
        engine: From :func:`connect`.
        fee_id: The entry to correct.
        amount_cents: The corrected amount.
        fee_status: The corrected fee status.
        policy_version: The policy version of the correction.

    Returns:
        ``(reversal_id, new_id)``; the original, its reversal and the new entry sum to
        ``amount_cents``.

    Raises:
        IpchangeError: No such entry, it is itself a reversal, or it was already reversed.
    """
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            original = session.get(FeeLedger, fee_id)
            if original is None:
                raise IpchangeError(f"no fee_ledger row with id {fee_id}")
            if original.reverses_id is not None:
                raise IpchangeError(f"fee_ledger row {fee_id} is a reversal; correct the original")
            earlier = session.scalar(select(FeeLedger.id).where(FeeLedger.reverses_id == fee_id))
            if earlier is not None:
                raise IpchangeError(
                    f"fee_ledger row {fee_id} was already reversed by row {earlier}; "
                    "correct the entry that replaced it"
                )
            reversal = FeeLedger(
                ticket_id=original.ticket_id,
                fee_status=original.fee_status,
                amount_cents=-original.amount_cents,
                policy_version=policy_version,
                computed_at=now,
                reverses_id=original.id,
            )
            corrected = FeeLedger(
                ticket_id=original.ticket_id,
                fee_status=fee_status,
                amount_cents=amount_cents,
                policy_version=policy_version,
                computed_at=now,
            )
            session.add_all([reversal, corrected])
            session.flush()
            return reversal.id, corrected.id
    except IntegrityError as exc:  # the unique reverses_id: reversed meanwhile by another writer
        raise IpchangeError(f"fee_ledger row {fee_id} was already reversed: {exc.orig}") from exc


def fee_ledger(engine: Engine) -> pd.DataFrame:
    """Return the whole fee ledger in id order (nullable ids as ``Int64``)."""
    table = FeeLedger.__table__
    with _reading(engine) as conn:
        rows = conn.execute(
            select(*(table.c[name] for name in _LEDGER_DTYPES)).order_by(table.c.id)
        ).all()
    return _frame(rows, _LEDGER_DTYPES)
