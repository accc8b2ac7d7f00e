"""The PostgreSQL backend (``postgresql+psycopg://``), for teams.

Instants are ``timestamptz``. Rows are written with ``COPY`` (CSV written by Arrow) and merged
with one ``INSERT … SELECT … ON CONFLICT``; tables are read with ``COPY … TO STDOUT`` parsed by
Arrow. Reading a period's requests is one join of the period's tickets with their intake and
change rows; PostgreSQL cannot run Python, so the exact request filter runs here, on the
candidates without either row.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sqlalchemy import (
    DDL,
    JSON,
    URL,
    BigInteger,
    ColumnElement,
    Connection,
    DateTime,
    Engine,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    event,
    extract,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy import Table as SATable
from sqlalchemy import create_engine as sa_create_engine

from ipchange_core import schema
from ipchange_core.errors import IpchangeError
from ipchange_core.policy import PolicySet
from ipchange_core.requests import (
    char_variants,
    recognised_tickets,
)
from ipchange_core.store import read
from ipchange_core.store.backend import Backend, Condition, register
from ipchange_core.store.batch import Batch, quote, upsert_tail
from ipchange_core.store.models import (
    LEDGER_RULE,
    Base,
    Change,
    ExportBatch,
    FeeLedger,
    Intake,
    Ticket,
)
from ipchange_core.textops import in_set

COPY_ROWS = 100_000
"""Rows written as one CSV block to ``COPY``."""


# --- the ledger rule, enforced by PostgreSQL itself --------------------------------------------
for _ddl in (
    # "%%" is a literal "%" (DDL strings are %-formatted); plpgsql puts the row's ids there.
    f"""CREATE OR REPLACE FUNCTION ipchange_fee_ledger_guard() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.export_batch_id IS NOT NULL THEN
            RAISE EXCEPTION 'fee_ledger row %% (export batch %%): {LEDGER_RULE}',
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


def _stored_hashes(conn: Connection, table: str, ids: np.ndarray | None) -> np.ndarray:
    """(key_hash, row_hash) of the stored rows of a non-empty table: all, or those of ``ids``."""
    # PostgreSQL packs the pairs into one bytea (16 big-endian bytes a row) per range of ids:
    # a few large messages instead of a million small ones.
    table_sql = quote(conn, table)
    packed = (
        f"SELECT string_agg(int8send(key_hash) || int8send(row_hash), ''::bytea) FROM {table_sql}"
    )
    # (binary: bytea as its bytes, not as hex text to decode)
    with conn.connection.driver_connection.cursor(binary=True) as cursor:
        if ids is not None:
            of_ids = _any(ids.tolist())(Base.metadata.tables[table].c.ticket_id)
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


def _copy_out(conn: Connection, sql: str, params: Any = ()) -> bytes:
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


def _write(conn: Connection, batch: Batch, rows: np.ndarray, *, empty: bool) -> int:
    """Upsert the selected rows into a PostgreSQL table; return the rows inserted or updated.

    The rows are streamed with ``COPY`` (CSV written by Arrow) into a temporary table, then
    merged with one ``INSERT … SELECT … ON CONFLICT``. Into an empty table (``empty``: the
    caller dropped its indexes, see :func:`ipchange_core.store.load.load`) they are copied directly.
    A worker thread writes the CSV of the next :data:`COPY_ROWS` rows while the server
    takes in the previous ones (two blocks in memory at most).
    """
    table = batch.table
    columns = [*batch.columns, "key_hash", "row_hash"]
    q = lambda name: quote(conn, name)  # noqa: E731
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
            pa_csv.write_csv(batch.arrow(rows[start : start + COPY_ROWS]), sink, options)
            return sink.getbuffer()

        with (
            cursor.copy(f"COPY {target} ({collist}) FROM STDIN (FORMAT csv)") as copy,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            ahead: Future[memoryview] | None = None
            for start in range(0, len(rows), COPY_ROWS):
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
            + upsert_tail(conn, table, batch.columns)
        )
        changed = cursor.rowcount
        cursor.execute("DROP TABLE _ipchange_stage")
    return changed


def _regex(text: str) -> str:
    """A PostgreSQL regular expression of ``text``: each letter any of its variants."""
    classes = (f"[{v}]" if len(v := char_variants(c)) > 1 else c for c in text)
    return "".join(c if len(c) > 1 or c.isalnum() else f"\\{c}" for c in classes)


_FILTER_COLUMNS = ("created_at", "ticket_type", "tags", "subject")
"""The ticket columns :func:`ipchange_core.requests.recognised_tickets` reads."""


def _selection(
    conn: Connection,
    start: datetime | None,
    end: datetime | None,
    policy: PolicySet | None,
    columns: Mapping[str, Sequence[str]],
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tickets, intake and changes rows of the requests received in [start, end).

    The ids of :func:`~ipchange_core.store.read.period_parts` (with the filter), found in one pass
    over the period's tickets instead of part by part: the tickets created in the period, each
    joined (by hash) with its intake and change row, that have either row or are
    :func:`~ipchange_core.store.read.candidates` (plain SQL, a superset of the request filter) and
    whose intake is not before the start. The joined intake and change rows come with them
    (``ticket_id`` is unique in both tables), so neither table is read again. Only the candidates
    without intake and change rows are judged by the exact filter, in Python
    (:func:`ipchange_core.requests.recognised_tickets`). An intake row of the period whose ticket
    was not found so (missing, or created after the period) is looked up on its own, with its ticket
    and change rows. Without ``policy``, every ticket and intake row of the period.

    Args:
        conn: The reading connection (its snapshot).
        start: First instant of the period, or ``None``.
        end: First instant after the period, or ``None``.
        policy: The request filter's policy, or ``None`` for every ticket of the period.
        columns: Per table, the columns to return (default all), as
            :func:`~ipchange_core.store.read.read_frames`.

    Returns:
        ``{"tickets", "intake", "changes"}`` → typed frames (unsorted), and the selected
        ticket_ids, intake rows without a ticket included.
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    linked = {"intake": intake, "changes": changes}
    typed = {t: schema.typed_dtypes(t) for t in ("tickets", *linked)}
    names = {t: list(columns.get(t) or typed[t]) for t in typed}
    needed = _FILTER_COLUMNS if policy is not None else ("created_at",)
    wanted = [*names["tickets"], *(n for n in needed if n not in names["tickets"])]
    conditions = [read.window(tickets.c.created_at, start, end)]
    if start is not None:  # received = the earlier of created_at and the intake's received_at
        conditions.append(or_(intake.c.ticket_id.is_(None), intake.c.received_at >= start))
    found = {t: table.c.ticket_id.is_not(None) for t, table in linked.items()}
    if policy is not None:
        candidates = read.candidates(BACKEND, policy)
        if candidates is not None:  # in this order: most have an intake
            conditions.append(or_(*found.values(), candidates))
    exprs = read.storage_columns(BACKEND, tickets, wanted)
    dtypes = {name: typed["tickets"][name] for name in wanted}
    for t, table in linked.items():
        exprs.append(found[t].label(f"{t}?"))
        dtypes[f"{t}?"] = "boolean"
        exprs.extend(read.storage_columns(BACKEND, table, names[t], prefix=f"{t}."))
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
    arrays, n = _read_columns(conn, query, dtypes)
    has = {t: arrays.pop(f"{t}?").to_numpy() for t in linked}
    parts = {t: {name: arrays.pop(f"{t}.{name}") for name in names[t]} for t in linked}
    frame = read.typed_frame("tickets", arrays, n)
    keep = np.ones(n, dtype=bool)
    judge = ~(has["intake"] | has["changes"])
    if policy is not None and judge.any():
        keep[judge] = recognised_tickets(frame[judge], policy).to_numpy(bool)
    frames = {"tickets": frame[keep]}
    for t in linked:
        part = read.typed_frame(t, parts[t], n)
        frames[t] = part[has[t] & keep]  # (a judged ticket has neither row)
    received = select(func.array_agg(intake.c.ticket_id))  # one row: no Python object per row
    received = received.where(read.window(intake.c.received_at, start, end))
    ids = set(frames["tickets"]["ticket_id"])
    elsewhere = [i for i in conn.execute(received).scalar_one() or () if i not in ids]
    if elsewhere:
        late = read.read_table(conn, "tickets", _any(elsewhere)(tickets.c.ticket_id), wanted)
        early = np.zeros(len(late), dtype=bool)  # created, hence received, before the start
        if start is not None:
            early = (late["created_at"] < start).to_numpy(bool)
        frames["tickets"] = pd.concat([frames["tickets"], late[~early]], ignore_index=True)
        elsewhere = sorted(set(elsewhere) - set(late["ticket_id"][early]))
    if elsewhere:
        for t, table in linked.items():
            rows = read.read_table(conn, t, _any(elsewhere)(table.c.ticket_id), names[t])
            frames[t] = pd.concat([frames[t], rows], ignore_index=True)
    frames = {t: frame[names[t]].reset_index(drop=True) for t, frame in frames.items()}
    return frames, [*ids, *elsewhere]


def _any(ids: Sequence[str]) -> Condition:
    """A condition "a ticket_id column is one of ``ids``".

    The ids travel as one JSON text made an array when the statement runs: unlike a literal
    array (whose every element the planner weighs, and psycopg quotes one by one in Python),
    the planner then looks each id up in the table's ticket_id index, never scans the table.
    """
    text = bindparam("ids", json.dumps(list(ids)), type_=Text)
    array = func.array(select(func.json_array_elements_text(cast(text, JSON))).scalar_subquery())
    return lambda column: column == func.any(array)


def _read_columns(
    conn: Connection, query: Select[Any], dtypes: Mapping[str, str]
) -> tuple[dict[str, pa.ChunkedArray], int]:
    """The columns of a :func:`~ipchange_core.store.read.storage_select`-like query, and the rows.

    ``dtypes`` names the query's columns in order, each with its typed dtype (text, instant as
    µs since the epoch, boolean); read in one ``COPY … TO STDOUT`` parsed by Arrow.
    """
    compiled = query.compile(dialect=conn.dialect)
    data = _copy_out(conn, str(compiled), compiled.params)
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


def _create_engine(url: URL) -> Engine:
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    if url.drivername != "postgresql+psycopg":
        raise IpchangeError(
            f"unsupported PostgreSQL driver {url.drivername!r}; use postgresql+psycopg://"
        )
    try:
        return sa_create_engine(url)
    except ImportError as exc:
        raise IpchangeError(
            f"PostgreSQL needs the psycopg package (pip install 'psycopg[binary]'): {exc}"
        ) from None


@contextmanager
def _bulk(conn: Connection) -> Iterator[None]:
    conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    yield


class PostgresBackend(Backend):
    """PostgreSQL through psycopg 3."""

    name = "postgresql"
    differs = "IS DISTINCT FROM"

    create_engine = staticmethod(_create_engine)

    def before_create(self, conn: Connection) -> None:
        """Serialise concurrent first connections."""
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4711700301)")

    def read_only(self, conn: Connection) -> None:  # noqa: D102
        conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)

    def busy_reason(self, reason: BaseException) -> str | None:  # noqa: D102
        return None

    def instant_impl(self) -> Any:  # noqa: D102
        return DateTime(timezone=True)

    def bind_instant(self, value: datetime) -> Any:  # noqa: D102
        return value.astimezone(UTC)

    def result_instant(self, value: Any) -> datetime:  # noqa: D102
        return value.astimezone(UTC)

    def lock_table(self, conn: Connection, table: str) -> None:
        """Lock ``table`` against other writers (readers are not blocked)."""
        conn.exec_driver_sql(f"LOCK TABLE {quote(conn, table)} IN SHARE ROW EXCLUSIVE MODE")

    stored_hashes = staticmethod(_stored_hashes)

    write = staticmethod(_write)

    bulk = staticmethod(_bulk)

    def insert(self, table: SATable) -> Any:
        """``INSERT … ON CONFLICT`` (its dialect imported now, not with the package)."""
        from sqlalchemy.dialects.postgresql import insert

        return insert(table)

    def fetch_row(self, conn: Connection, query: Select[Any]) -> Any:
        """In binary: bytea as its bytes, not as hex text (figures: bench/RESULTS.md)."""
        compiled = query.compile(dialect=conn.dialect)
        with conn.connection.driver_connection.cursor(binary=True) as cursor:
            return cursor.execute(str(compiled), compiled.params).fetchone()

    def prepare_read(self, conn: Connection, *, mapped: bool) -> None:  # noqa: D102
        pass

    def contains(self, column: Any, text: str) -> ColumnElement[bool]:
        """A regular expression of :func:`ipchange_core.requests.char_variants`.

        (``ILIKE`` follows the locale, where ``I`` need not be the capital of ``i``.)
        """
        return column.op("~")(_regex(text))

    def contains_any(self, column: Any, texts: Sequence[str]) -> ColumnElement[bool] | None:
        """One regular expression, an alternation of the texts."""
        return column.op("~")("|".join(sorted(_regex(text) for text in texts)))

    def case_twin_terms(self, columns: Sequence[Any]) -> list[ColumnElement[bool]]:  # noqa: D102
        return []

    def index_requests(self, engine: Engine, policy: PolicySet) -> bool:
        """None: the requests are found in one join (:func:`_selection`)."""
        return False

    def selection(
        self,
        conn: Connection,
        start: datetime | None,
        end: datetime | None,
        policy: PolicySet | None,
        columns: Mapping[str, Sequence[str]],
        open_at: datetime | None = None,
    ) -> AbstractContextManager[tuple[Condition, dict[str, pd.DataFrame]]]:
        """The ids in one parameter (the reading transaction is read-only: no temporary table).

        Those closed at ``open_at`` leave the ids and the frames read on the way.
        """
        frames, ids = _selection(conn, start, end, policy, columns)
        if open_at is not None:
            closed = set(conn.execute(read.closed_by(open_at)).scalars())
            ids = [i for i in ids if i not in closed]
            gone = pd.Series(sorted(closed), dtype="str")
            frames = {
                t: f[~in_set(f["ticket_id"], gone)].reset_index(drop=True)
                for t, f in frames.items()
            }
        return nullcontext((_any(ids), frames))

    def instant_column(self, column: Any) -> Any:
        """Exact: ``EXTRACT(EPOCH …)`` is numeric from PostgreSQL 14 on."""
        return cast(extract("epoch", column) * literal_column("1000000"), BigInteger)

    def flag_column(self, column: Any) -> Any:  # noqa: D102
        return column

    read_columns = staticmethod(_read_columns)

    def second_reader(self, conn: Connection) -> bool:  # noqa: D102
        return False


BACKEND = register(PostgresBackend())
"""The PostgreSQL backend, registered under ``postgresql``."""
