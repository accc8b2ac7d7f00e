"""The tables of the store: canonical tables, load manifests, rejects and the fee ledger.

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
  and quicker to load than ISO text; ``datetime(col / 1e6, 'unixepoch')`` shows it);
* yes/no flags are nullable booleans (``NULL`` = not given);
* money is integer cents.

A fee row that belongs to an export batch is never updated or deleted: triggers on both backends
raise (each backend module adds its own), the ORM refuses (here), and :mod:`.ledger` offers only
appends (a correction is a reversal row plus a new row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    event,
    false,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ipchange_core.errors import IpchangeError
from ipchange_core.store.backend import backend_for

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
        return dialect.type_descriptor(backend_for(dialect.name).instant_impl())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: D102
        if value is None or value is pd.NaT:
            return None
        if not isinstance(value, datetime) or value.utcoffset() is None:
            raise ValueError(f"an instant must be a timezone-aware datetime, got {value!r}")
        return backend_for(dialect.name).bind_instant(value)

    def process_literal_param(self, value: datetime | None, dialect: Dialect) -> Any:  # noqa: D102
        return self.process_bind_param(value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: D102
        if value is None:
            return None
        return backend_for(dialect.name).result_instant(value)


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
        # The audit log names tickets by Kayako's internal id (``ticketid``).
        Index("ix_tickets_kayako_id", "kayako_id"),
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
    kayako_id: Mapped[Str]


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
    """The TSC agent's intake ("cloud info") record of a request (``intake.csv`` or a macro)."""

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
    source: Mapped[Str]  # intake.csv, or post <id> (a cloud-info macro)
    overrides: Mapped[Str]  # the record of the other source it replaced; blank if none


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


class KayakoLookup(Base):
    """One entry of a help desk's Kayako lookup list (FORMATS.md 3), versioned by load.

    A load that changes a list stores the whole list again under its manifest: the list's
    current version is that of its newest manifest; older versions stay as they were.
    """

    __tablename__ = "kayako_lookups"
    __table_args__ = (
        Index("ux_kayako_lookups_version", "list", "manifest_id", "item_id", unique=True),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("load_manifests.id"))
    list: Mapped[Str]  # the XML root: departments, ticketstatuses, tickettypes, ticketpriorities
    item_id: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[Str]
    module: Mapped[Str]  # departments: tickets | livechat
    markasresolved: Mapped[Str]  # statuses: 0 | 1


class KayakoPullMark(Base):
    """How far ``ipchange pull kayako`` has read a help desk: the latest ``lastactivity`` seen.

    One row per Kayako API URL (scheme, host, port and path; never a query). It moves only in
    the transaction that loads the pull's tickets (:mod:`.pull_marks`).
    """

    __tablename__ = "kayako_pull_marks"

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    url: Mapped[Str] = mapped_column(unique=True)
    lastactivity: Mapped[int] = mapped_column(BigInteger)  # Unix epoch seconds (UTC)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("load_manifests.id"))
    pulled_at: Mapped[Instant]


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
    ticket_id: Mapped[Str]  # the rejected row's ticket id as written; blank if it has none


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

    A correction is new rows: a reversal (the negated amount, ``reverses_id`` = the original)
    and the corrected entry, or a ``correction``/``waiver``/``credit`` row carrying the
    difference. ``reverses_id`` is unique, so an entry is reversed once. Every row names its
    reason and who wrote it (a check constraint refuses blanks).
    """

    __tablename__ = "fee_ledger"
    __table_args__ = (
        CheckConstraint(
            "trim(reason) <> '' AND trim(by_name) <> ''", name="ck_fee_ledger_reason_by"
        ),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True)
    ticket_id: Mapped[Str] = mapped_column(index=True)
    fee_status: Mapped[Str]
    amount_cents: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[Str]
    computed_at: Mapped[Instant]
    export_batch_id: Mapped[int | None] = mapped_column(ForeignKey("export_batches.id"), index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("fee_ledger.id"), unique=True)
    kind: Mapped[Str]
    """``fee``, ``reversal``, ``correction``, ``waiver`` or ``credit`` (:mod:`.ledger`)."""
    reason: Mapped[Str]
    """Why the row was written (never blank)."""
    by_name: Mapped[Str]
    """Who wrote it: the ``--by`` name, or the OS user for automatic rows (never blank)."""
    os_user: Mapped[Str]
    """The operating-system user of the process that wrote it."""


MODELS: dict[str, type[_Canonical]] = {
    "tickets": Ticket,
    "ticket_events": TicketEvent,
    "intake": Intake,
    "changes": Change,
}
LEDGER_RULE = "an exported fee row is never updated or deleted; record a correction instead"


# --- the ledger rule, enforced by the ORM (each backend module adds its triggers) ----------------
@event.listens_for(FeeLedger, "before_update")
def _refuse_exported_update(mapper: Any, connection: Connection, target: FeeLedger) -> None:
    history = inspect(target).attrs.export_batch_id.history
    before = (history.deleted or history.unchanged or [None])[0]
    if before is not None:
        raise IpchangeError(f"fee_ledger row {target.id} (export batch {before}): {LEDGER_RULE}")


@event.listens_for(FeeLedger, "before_delete")
def _refuse_exported_delete(mapper: Any, connection: Connection, target: FeeLedger) -> None:
    history = inspect(target).attrs.export_batch_id.history
    before = (history.deleted or history.unchanged or [None])[0]
    if before is not None:
        raise IpchangeError(f"fee_ledger row {target.id} (export batch {before}): {LEDGER_RULE}")
