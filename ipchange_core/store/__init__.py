"""Storage of the canonical tables, load manifests, rejects and the fee ledger (SPEC 3, 4).

SQLAlchemy 2 over SQLite (the default, an embedded file) and PostgreSQL
(``postgresql+psycopg://``). The parts: :mod:`.models` (tables and the ledger rule),
:mod:`.connection` (connecting), :mod:`.load` (bulk loads, manifests, rejects, reloads),
:mod:`.read` (reading a period), :mod:`.lookups` (Kayako's lookup lists),
:mod:`.pull_marks` (how far a Kayako pull has read), :mod:`.ledger` (the fee ledger), and one
module per backend (:mod:`.sqlite`, :mod:`.postgres`) behind the interface of :mod:`.backend`,
chosen when connecting. This module re-exports the public names.
"""

from ipchange_core.errors import StaleRecords
from ipchange_core.store import postgres, sqlite
from ipchange_core.store.connection import connect, connected, db_error_reason
from ipchange_core.store.ledger import (
    Batch,
    TicketLedger,
    append_fees,
    correct_fee,
    credit,
    export_batch,
    fee_ledger,
    net_due,
    os_user,
    pending,
    record_export,
    ticket_ledger,
    ticket_state,
    waive,
)
from ipchange_core.store.load import (
    LoadResult,
    ParsedInput,
    load,
    load_into,
    manifests,
    previous_records,
    rejects,
    repeat_load,
)
from ipchange_core.store.lookups import kayako_lookups, load_lookups, load_lookups_into, lookups_in
from ipchange_core.store.models import (
    Base,
    Change,
    ExportBatch,
    FeeLedger,
    Intake,
    KayakoLookup,
    KayakoPullMark,
    LoadManifest,
    LoadRecords,
    Reject,
    Ticket,
    TicketEvent,
    UTCDateTime,
)
from ipchange_core.store.pull_marks import advance_mark, pull_mark
from ipchange_core.store.read import (
    POST_SOURCE_PREFIX,
    index_requests,
    intake_provenance,
    kayako_ticket_ids,
    read_frames,
)

__all__ = [
    "POST_SOURCE_PREFIX",
    "Base",
    "Batch",
    "Change",
    "ExportBatch",
    "FeeLedger",
    "Intake",
    "KayakoLookup",
    "KayakoPullMark",
    "LoadManifest",
    "LoadRecords",
    "LoadResult",
    "ParsedInput",
    "Reject",
    "StaleRecords",
    "Ticket",
    "TicketEvent",
    "TicketLedger",
    "UTCDateTime",
    "advance_mark",
    "append_fees",
    "connect",
    "connected",
    "correct_fee",
    "credit",
    "db_error_reason",
    "export_batch",
    "fee_ledger",
    "index_requests",
    "intake_provenance",
    "kayako_lookups",
    "kayako_ticket_ids",
    "load",
    "load_into",
    "load_lookups",
    "load_lookups_into",
    "lookups_in",
    "manifests",
    "net_due",
    "os_user",
    "pending",
    "postgres",
    "previous_records",
    "pull_mark",
    "read_frames",
    "record_export",
    "rejects",
    "repeat_load",
    "sqlite",
    "ticket_ledger",
    "ticket_state",
    "waive",
]
