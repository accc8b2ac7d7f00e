"""The SQLite backend: an embedded file, the default.

SQLite has no date type and would drop offsets, so an instant is stored as the integer number
of microseconds since 1970-01-01T00:00:00Z (exact, sortable and quicker to load than ISO text;
``datetime(col / 1e6, 'unixepoch')`` shows it). Files run in WAL mode with a busy timeout, and
every write transaction starts with ``BEGIN IMMEDIATE``. Rows are written in multi-row
``INSERT … VALUES`` statements and read as one ``group_concat`` row per column, without a
Python object per value. Reading a period's requests runs the exact request filter inside
SQLite (a Python function registered on the connection), helped by a partial index of the
candidates (:func:`index_requests`).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    DDL,
    URL,
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    Text,
    and_,
    bindparam,
    case,
    cast,
    event,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    type_coerce,
)
from sqlalchemy import Table as SATable
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ipchange_core import config, schema
from ipchange_core.errors import IpchangeError
from ipchange_core.policy import PolicySet
from ipchange_core.requests import (
    filter_matcher,
)
from ipchange_core.store import read
from ipchange_core.store.backend import Backend, Condition, register
from ipchange_core.store.batch import NA_FLAG, NAT, Batch, quote, upsert_tail
from ipchange_core.store.connection import reading
from ipchange_core.store.models import LEDGER_RULE, Change, ExportBatch, FeeLedger, Intake, Ticket

BUSY_MS = 30_000
"""How long a writer waits for another's write lock, in milliseconds."""
BULK_CACHE_KIB = 8_192
"""The page cache, in KiB, while work passes every page of a table once (:func:`small_cache`)."""
READ_MMAP = 1 << 30
"""Bytes of the database file a reading connection maps."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# --- the ledger rule, enforced by SQLite itself ------------------------------------------------
for _op in ("UPDATE", "DELETE"):
    event.listen(
        FeeLedger.__table__,
        "after_create",
        DDL(
            f"CREATE TRIGGER fee_ledger_exported_no_{_op.lower()} BEFORE {_op} ON fee_ledger "
            "FOR EACH ROW WHEN OLD.export_batch_id IS NOT NULL "
            f"BEGIN SELECT RAISE(ABORT, 'fee_ledger: {LEDGER_RULE}'); END"
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


def _on_connect(dbapi_connection: sqlite3.Connection, connection_record: Any) -> None:
    # SQLAlchemy's documented recipe: stop sqlite3 from emitting BEGIN itself; the "begin"
    # listener below emits BEGIN IMMEDIATE so that two writers queue on the busy timeout
    # instead of one failing when it upgrades a read lock.
    dbapi_connection.isolation_level = None
    for pragma in (
        f"PRAGMA busy_timeout = {BUSY_MS}",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",  # with WAL: safe against a crash of the process
        "PRAGMA foreign_keys = ON",
        "PRAGMA cache_size = -131072",  # 128 MiB, allocated only as needed
        "PRAGMA journal_size_limit = 67108864",  # give the WAL back after a big load
    ):
        dbapi_connection.execute(pragma)


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("ipchange_sqlite_begin", "IMMEDIATE")
    if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
        raise ValueError(f"unknown SQLite BEGIN mode {mode!r}")
    conn.exec_driver_sql(f"BEGIN {mode}")


def _stored_hashes(conn: Connection, table: str, ids: np.ndarray | None) -> np.ndarray:
    """Read (key_hash, row_hash) pairs of a table, of every row or of the given ticket_ids.

    A whole table is read as two ``group_concat`` strings per range of rowids, parsed by numpy:
    faster than fetching a million two-integer rows one by one (figures: bench/RESULTS.md).
    """
    table = quote(conn, table)
    sql = f"SELECT key_hash, row_hash FROM {table}"
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


def _write(conn: Connection, batch: Batch, rows: np.ndarray, *, empty: bool) -> int:
    """Upsert the selected rows into a SQLite table; return the rows inserted or updated.

    Rows go in multi-row ``INSERT … VALUES`` statements (several hundred rows each). NULL
    instants and flags travel as sentinels turned into NULL by ``NULLIF`` (binding ``None`` is
    slow in the sqlite3 module). Into an empty table (``empty``: the caller dropped its indexes,
    see :func:`ipchange_core.store.load.load`) they go as plain inserts.
    """
    table = batch.table
    columns = [*batch.columns, "key_hash", "row_hash"]
    width = len(columns)
    q = lambda name: quote(conn, name)  # noqa: E731
    marks = []
    for name in columns:
        kind = batch.kinds.get(name)
        if kind == "instant":
            marks.append(f"NULLIF(?, {NAT})")
        elif kind == "flag":
            marks.append(f"NULLIF(?, {NA_FLAG})")
        else:
            marks.append("?")
    one_row = "(" + ", ".join(marks) + ")"
    head = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) VALUES "
    tail = "" if empty else upsert_tail(conn, table, batch.columns)

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


@contextmanager
def small_cache(conn: Connection) -> Iterator[None]:
    """Cut the connection's page cache to :data:`BULK_CACHE_KIB` meanwhile.

    For work that passes every page of a table once (a bulk insert, an index built over a
    table): a larger cache saves nothing there, and it would hold every page the work touches
    up to its size (128 MiB, see :func:`_on_connect`), so memory would grow with the table.
    """
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar_one()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:  # the setting belongs to the connection, which goes back to the pool
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache)}")


_SELECTED = SATable(
    "ipchange_selected_ids", MetaData(), Column("ticket_id", Text, primary_key=True), schema="temp"
)
"""SQLite: the ticket_ids being read, computed once per read in the reading transaction."""


def recognised(conn: Connection, policy: PolicySet) -> ColumnElement[bool]:
    """The ``recognised`` condition on ``tickets`` of :func:`.read.period_parts`.

    It holds for a ticket without intake and change rows that the request filter of the
    version in force at its created_at recognises, and for no other ticket: a ticket with such
    a row is a request whatever its text, found through that row by the other parts (most
    requests have one, so the filter is not run for them). Only the tickets of
    :func:`~ipchange_core.store.read.candidates` (plain SQL) are looked up in intake and changes,
    and only those with neither row reach the exact filter,
    :func:`ipchange_core.requests.filter_matcher`, which SQLite evaluates itself (a function
    registered on this connection).
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    candidates = read.candidates(BACKEND, policy)
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
        starts = [read.utc(v.effective_from_utc, "effective_from") for v in policy.versions]
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
    index = requests_index(policy)
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
"""Name prefix of the partial index of :func:`index_requests` (a digest follows)."""


def requests_index(policy: PolicySet) -> tuple[str, str] | None:
    """The name and ``WHERE`` text of the partial index of ``policy``'s candidates.

    ``None`` when any ticket may be a request (:func:`~ipchange_core.store.read.candidates`).
    The name ends with a digest of the text, so a policy whose filter changed has an index of
    its own.
    """
    candidates = read.candidates(BACKEND, policy)
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
    """Keep one partial index on ``tickets``, of the request candidates of ``policy``.

    The index holds ``created_at`` of the tickets that
    :func:`~ipchange_core.store.read.candidates` says may be requests. SQLite keeps it up to
    date as rows are written; it is built in a :func:`small_cache`, so memory does not grow with
    the table (figures: bench/RESULTS.md). See :func:`ipchange_core.store.read.index_requests`.

    Returns:
        Whether an index was created or dropped.
    """
    index = requests_index(policy)
    find = f"SELECT name FROM sqlite_master WHERE type = 'index' AND name GLOB '{_REQUESTS_INDEX}*'"
    with reading(engine) as conn:
        present = set(conn.exec_driver_sql(find).scalars())
    wanted = {index[0]} if index is not None else set()
    if present == wanted:
        return False
    with engine.begin() as conn, small_cache(conn):
        present = set(conn.exec_driver_sql(find).scalars())  # (as of the write lock)
        for name in sorted(present - wanted):
            conn.exec_driver_sql(f"DROP INDEX {quote(conn, name)}")
        if index is not None and index[0] not in present:
            name, where = index
            conn.exec_driver_sql(
                f"CREATE INDEX {quote(conn, name)} ON tickets (created_at) WHERE {where}"
            )
    return True


def _any(ids: str) -> Condition:
    """A condition "a ticket_id column is one of ``ids``" (a JSON array of texts).

    The ids travel in the statement, not in a temporary table, so that any connection can read
    with it (a second reader, :meth:`SQLiteBackend.second_reader`); SQLite looks each up in the
    table's ticket_id index.
    """
    each = func.json_each(bindparam("ids", ids, type_=Text)).table_valued("value")
    return lambda column: column.in_(select(each.c.value))


def _read_columns(
    conn: Connection, query: Select[Any], dtypes: Mapping[str, str]
) -> tuple[dict[str, Any], int]:
    """The columns of a :func:`~ipchange_core.store.read.storage_select` as arrays, and the rows.

    No Python object per value (that cost most of a read, see bench/RESULTS.md): one aggregate row
    holds each column concatenated by ``group_concat`` (the aggregates of one query see the rows in
    the same order), text as its UTF-8 bytes beside their byte lengths, instants and booleans as
    numbers. Text columns are NOT NULL, instants and booleans coalesced, so no value is skipped;
    each column's length is checked all the same.
    """
    names = list(dtypes)
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


def _create_engine(url: URL) -> Engine:
    if url.get_driver_name() not in ("pysqlite", ""):
        raise IpchangeError(f"unsupported SQLite driver {url.drivername!r}; use sqlite://")
    database = url.database or ""
    if database not in ("", ":memory:") and not database.startswith("file:"):
        folder = Path(database).parent
        if not folder.is_dir():
            if Path(database) != config.DEFAULT_DB_PATH:
                raise IpchangeError(f"cannot create the database {database}: no folder {folder}")
            folder.mkdir(parents=True, exist_ok=True)
    engine = sa_create_engine(url, connect_args={"timeout": BUSY_MS / 1000})
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


@contextmanager
def _selection(
    conn: Connection,
    start: datetime | None,
    end: datetime | None,
    policy: PolicySet | None,
    open_at: datetime | None,
) -> Iterator[tuple[Condition, dict[str, pd.DataFrame]]]:
    """Gather the ids in a temporary table of the connection, dropped before the yield.

    Those closed at ``open_at`` are deleted from it, so that every table is then looked up by
    the few open ids only: each read walks the JSON array of its ids (figures:
    bench/RESULTS.md). They are read out as one JSON array (:func:`_any`); no table is read on
    the way.
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    condition, walk = None, frozenset()
    if policy is not None:
        condition = recognised(conn, policy)
        walks = {"changes": select(func.count()).select_from(changes)}
        if end is not None:
            walks["intake"] = select(func.count()).where(intake.c.received_at >= end)
        in_period = select(func.count()).where(read.window(tickets.c.created_at, start, end))
        n = conn.execute(in_period).scalar_one()
        walk = frozenset(t for t, count in walks.items() if conn.execute(count).scalar_one() < n)
    _SELECTED.create(conn)
    try:  # one INSERT per part, repeats ignored: no UNION sorting the ids of every part
        for part in read.period_parts(start, end, condition, walk=walk):
            insert = _SELECTED.insert().prefix_with("OR IGNORE")
            conn.execute(insert.from_select(["ticket_id"], part))
        if open_at is not None:
            conn.execute(
                _SELECTED.delete().where(_SELECTED.c.ticket_id.in_(read.closed_by(open_at)))
            )
        ids = conn.execute(select(func.json_group_array(_SELECTED.c.ticket_id))).scalar_one()
    finally:
        _SELECTED.drop(conn)
    yield _any(ids), {}


class SQLiteBackend(Backend):
    """SQLite through the standard library's sqlite3 module."""

    name = "sqlite"
    differs = "IS NOT"

    create_engine = staticmethod(_create_engine)

    def before_create(self, conn: Connection) -> None:  # noqa: D102
        pass  # BEGIN IMMEDIATE already serialises writers

    def read_only(self, conn: Connection) -> None:  # noqa: D102
        conn.execution_options(ipchange_sqlite_begin="DEFERRED")

    def busy_reason(self, reason: BaseException) -> str | None:  # noqa: D102
        code = getattr(reason, "sqlite_errorcode", None)
        if code is None or code & 0xFF != sqlite3.SQLITE_BUSY:
            return None
        return (
            f"the database is busy: another process kept it locked for over "
            f"{BUSY_MS // 1000} s ({reason}); retry when that process has finished"
        )

    def instant_impl(self) -> Any:  # noqa: D102
        return BigInteger()

    def bind_instant(self, value: datetime) -> Any:  # noqa: D102
        return (value - _EPOCH) // _MICROSECOND

    def result_instant(self, value: Any) -> datetime:  # noqa: D102
        return _EPOCH + timedelta(microseconds=int(value))

    def lock_table(self, conn: Connection, table: str) -> None:  # noqa: D102
        pass  # BEGIN IMMEDIATE took the database's write lock

    stored_hashes = staticmethod(_stored_hashes)

    write = staticmethod(_write)

    bulk = staticmethod(small_cache)

    def insert(self, table: SATable) -> Any:  # noqa: D102
        return sqlite_insert(table)

    def fetch_row(self, conn: Connection, query: Select[Any]) -> Any:  # noqa: D102
        return conn.execute(query).first()

    def prepare_read(self, conn: Connection, *, mapped: bool) -> None:  # noqa: D102
        # mapped: pages by address, not copied in one read() each
        conn.exec_driver_sql(f"PRAGMA mmap_size = {READ_MMAP if mapped else 0}")

    def contains(self, column: Any, text: str) -> ColumnElement[bool]:
        """``LIKE``: ASCII letters in any case (see :meth:`case_twin_terms` for the others)."""
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(f"%{escaped}%", escape="\\")

    def contains_any(self, column: Any, texts: Sequence[str]) -> ColumnElement[bool] | None:  # noqa: D102
        return None

    def case_twin_terms(self, columns: Sequence[Any]) -> list[ColumnElement[bool]]:
        """Every value that is not all ASCII: LIKE folds ASCII letters only."""
        return [func.length(cast(column, LargeBinary)) != func.length(column) for column in columns]

    index_requests = staticmethod(index_requests)

    def selection(  # noqa: D102
        self,
        conn: Connection,
        start: datetime | None,
        end: datetime | None,
        policy: PolicySet | None,
        columns: Mapping[str, Sequence[str]],
        open_at: datetime | None = None,
    ) -> AbstractContextManager[tuple[Condition, dict[str, pd.DataFrame]]]:
        return _selection(conn, start, end, policy, open_at)

    def instant_column(self, column: Any) -> Any:  # noqa: D102
        return func.coalesce(type_coerce(column, BigInteger), literal_column(str(NAT)))

    def flag_column(self, column: Any) -> Any:
        """0/1, NULL as :data:`~ipchange_core.store.batch.NA_FLAG`."""
        return func.coalesce(type_coerce(column, Integer), NA_FLAG)

    read_columns = staticmethod(_read_columns)

    def second_reader(self, conn: Connection) -> bool:
        """Whether ``conn`` reads a database file (which other connections can open too)."""
        main = [row for row in conn.exec_driver_sql("PRAGMA database_list") if row[1] == "main"]
        return bool(main and main[0][2])


BACKEND = register(SQLiteBackend())
"""The SQLite backend, registered under ``sqlite``."""
