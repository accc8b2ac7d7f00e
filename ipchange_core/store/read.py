"""Reading a period: the rows of the requests received in [start, end), in one snapshot.

The ticket_ids to read are computed once (:meth:`~.backend.Backend.selection`, each backend
its own way), then each canonical table is read as typed columns
(:meth:`~.backend.Backend.read_columns`) and sorted by natural key if need be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    and_,
    exists,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy import Table as SATable

from ipchange_core import schema
from ipchange_core.errors import IpchangeError
from ipchange_core.policy import PolicySet
from ipchange_core.requests import (
    filter_prefilter,
)
from ipchange_core.store.backend import Backend, Condition, backend_of
from ipchange_core.store.batch import NA_FLAG, NAT
from ipchange_core.store.connection import gc_paused, reading
from ipchange_core.store.models import Base, Change, Intake, LoadManifest, Ticket


def utc(value: pd.Timestamp | datetime | None, name: str) -> datetime | None:
    """``value`` as an aware UTC ``datetime`` rounded up to whole µs (``None`` stays ``None``).

    Raises:
        ValueError: ``value`` (called ``name`` in the message) is naive.
    """
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{name} must be a timezone-aware instant, got {value!r}")
    # Stored instants are whole µs: x >= t and x < t hold exactly when they do for t rounded up.
    return stamp.tz_convert("UTC").ceil("us").to_pydatetime()


def window(column: Any, start: datetime | None, end: datetime | None) -> ColumnElement[bool]:
    """``column`` in the half-open ``[start, end)`` (a missing bound is no bound)."""
    conditions = []
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return and_(true(), *conditions)


def period_parts(
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

    With ``recognised`` (a condition on ``tickets``: the request filter, which needs to hold only
    for the tickets without intake and change rows, see
    :func:`ipchange_core.store.sqlite.recognised`), only the requests: tickets that have an intake
    or change row or that the condition holds for, and intake rows without a ticket. Without it,
    every ticket and intake row of the period. ``walk`` names the tables (``changes``, ``intake``)
    in which the period's tickets with a change row, or an intake row after the period, are found by
    walking the table's rows and looking each ticket up, instead of probing the table for every
    ticket of the period (SQLite plans the latter whatever the number of tickets: pick the smaller
    walk).
    """
    tickets, intake, changes = Ticket.__table__, Intake.__table__, Change.__table__
    in_window = window(tickets.c.created_at, start, end)

    by_intake = select(intake.c.ticket_id).where(window(intake.c.received_at, start, end))
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


def candidates(backend: Backend, policy: PolicySet) -> ColumnElement[bool] | None:
    """A plain-SQL superset of every version's request filter (None: any ticket may match).

    Built from :func:`ipchange_core.requests.filter_prefilter`: a ticket type of the filter, or
    tags or a subject containing one set of the filter's literals (the backend's
    :meth:`~.backend.Backend.contains`, with its :meth:`~.backend.Backend.case_twin_terms`).
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
            terms.append(_containing(backend, column, needs))
    terms.extend(backend.case_twin_terms([tickets.c.tags, tickets.c.subject]))
    return or_(false(), *terms)


def index_requests(engine: Engine, policy: PolicySet) -> bool:
    """Keep the index of the request candidates of ``policy`` that reading a period uses.

    On SQLite one partial index on ``tickets`` holds the :func:`candidates` (plain SQL: type,
    tags and subject) of ``policy``, about one ticket in ten on a help desk; reading a period's
    requests (:func:`read_frames` with a policy) looks those up in it instead of testing the
    text of every ticket of the period (figures: bench/RESULTS.md). The index of another policy
    (whose filter changed) is dropped. PostgreSQL, which finds the requests in one join, gets
    none (:mod:`ipchange_core.store.postgres`).

    Args:
        engine: From :func:`~ipchange_core.store.connect`.
        policy: The policy whose request filter (all its versions) the index serves.

    Returns:
        Whether an index was created or dropped.
    """
    return backend_of(engine).index_requests(engine, policy)


def _containing(backend: Backend, column: Any, needs: frozenset[frozenset[str]]) -> Any:
    """``column`` contains all the texts of one of ``needs``, a text they share tested once.

    ``ip AND (change OR new)``, not ``ip AND change OR ip AND new``: most rows fail at the first
    test. Alternatives of one text each are one test where the backend can
    (:meth:`~.backend.Backend.contains_any`).
    """
    if not needs:
        return false()
    if frozenset() in needs:
        return true()
    if all(len(need) == 1 for need in needs):
        alternation = backend.contains_any(column, sorted(text for need in needs for text in need))
        if alternation is not None:
            return alternation
    counts: dict[str, int] = {}
    for need in needs:
        for text in need:
            counts[text] = counts.get(text, 0) + 1
    text = min(counts, key=lambda t: (-counts[t], t))  # the text most alternatives need
    having = frozenset(need - {text} for need in needs if text in need)
    others = frozenset(need for need in needs if text not in need)
    first = and_(backend.contains(column, text), _containing(backend, column, having))
    return or_(first, _containing(backend, column, others)) if others else first


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
    open_at: datetime | None = None,
) -> Iterator[tuple[Condition | None, dict[str, pd.DataFrame]]]:
    """Compute the ticket_ids to read once; yield a condition on a ticket_id column (or None).

    The backend computes them (:meth:`~.backend.Backend.selection`), without those closed at
    ``open_at`` (:func:`closed_by`) when given, and may read some tables on the way: yielded
    beside the condition, ``{table: frame}``. A bound that no ticket or intake row lies beyond
    is dropped first (two index look-ups): the same ids, fewer checks.
    """
    if start is not None and not _any_time(conn, lambda at: at < start):
        start = None
    if end is not None and not _any_time(conn, lambda at: at >= end):
        end = None
    if policy is None and start is None and end is None:  # every row, or every open one
        closed = None if open_at is None else closed_by(open_at)
        yield (None if closed is None else lambda column: column.not_in(closed)), {}
        return
    with backend_of(conn).selection(conn, start, end, policy, columns, open_at) as selected:
        yield selected


def closed_by(at: datetime) -> Select[Any]:
    """The ticket_ids whose change row is done or cancelled at ``at`` (an instant equal counts)."""
    changes = Change.__table__
    done = or_(changes.c.completed_at <= at, changes.c.cancelled_at <= at)
    return select(changes.c.ticket_id).where(done)


def storage_select(
    backend: Backend,
    table: SATable,
    where: ColumnElement[bool] | None,
    names: Sequence[str] | None = None,
) -> Select[Any]:
    """SELECT of a canonical table's columns (``names``, default all) in a raw, cheap form."""
    query = select(*storage_columns(backend, table, names))
    if where is not None:
        query = query.where(where)
    return query  # sorted afterwards: on SQLite, walking an index is far slower than a scan


def storage_columns(
    backend: Backend, table: SATable, names: Sequence[str] | None = None, *, prefix: str = ""
) -> list[Any]:
    """A canonical table's columns (``names``, default all) in a raw, cheap form.

    Each is labelled ``prefix`` + its name: instants as µs since the epoch
    (:meth:`~.backend.Backend.instant_column`), nullable booleans as the backend reads them
    (:meth:`~.backend.Backend.flag_column`), the rest as stored.
    """
    dtypes = schema.typed_dtypes(table.name)
    exprs = []
    for name in names or dtypes:
        column, dtype = table.c[name], dtypes[name]
        if dtype == schema.TIMESTAMP_DTYPE:
            expr = backend.instant_column(column)
        elif dtype == "boolean":
            expr = backend.flag_column(column)
        else:
            expr = column
        exprs.append(expr.label(prefix + name))
    return exprs


def typed_frame(table: str, columns: dict[str, Any], n: int) -> pd.DataFrame:
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
                values = pc.fill_null(values, NAT).to_numpy()
            ints = np.asarray(values, dtype=np.int64)
            series = pd.Series(ints.view("datetime64[us]")).dt.tz_localize("UTC")
        elif dtype == "boolean":
            if isinstance(values, pa.ChunkedArray | pa.Array):
                series = pd.Series(pd.BooleanDtype().__from_arrow__(values))
            else:
                codes = np.asarray(values, dtype=np.int8)
                series = pd.Series(pd.arrays.BooleanArray(codes == 1, codes == NA_FLAG))
        else:
            if isinstance(values, pa.ChunkedArray | pa.Array):
                values = values.to_numpy(zero_copy_only=False)
            series = pd.Series(np.asarray(values, dtype=bool))
        out[name] = series.astype(dtype)
    frame = pd.DataFrame(out)
    if len(frame) != n:  # pragma: no cover - defensive
        raise IpchangeError(f"read {len(frame)} rows of {table}, expected {n}")
    return frame


def read_table(
    conn: Connection,
    table: str,
    where: ColumnElement[bool] | None,
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The typed columns ``names`` (default all) of a canonical table's rows where ``where``."""
    sa_table = Base.metadata.tables[table]
    dtypes = schema.typed_dtypes(table)
    names = list(names or dtypes)
    backend = backend_of(conn)
    query = storage_select(backend, sa_table, where, names)
    columns, n = backend.read_columns(conn, query, {name: dtypes[name] for name in names})
    return typed_frame(table, columns, n)


def read_frames(
    engine: Engine,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    policy: PolicySet | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
    open_at: pd.Timestamp | None = None,
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
            :func:`ipchange_core.evaluation.evaluate` judges, so other help-desk tickets are never
            read. ``None`` reads every ticket of the period.
        columns: Read only these columns of the tables it names (in this order; each must hold
            the table's natural key), the others whole. Fewer columns read faster: the events'
            key columns alone come from their unique index, not from the table.
        open_at: Leave out every request done or cancelled at this instant (timezone-aware): the
            ticket_ids whose change row has a ``completed_at`` or ``cancelled_at`` at or before
            it, in all four tables. The morning check judges only the others; on a help desk
            they are a few in a hundred, so it reads that much (figures: bench/RESULTS.md).

    Returns:
        ``{"tickets", "ticket_events", "intake", "changes"}`` → frames with exactly the columns
        and dtypes of :func:`ipchange_core.schema.typed_dtypes` (or those of ``columns``) and a
        fresh RangeIndex, sorted by natural key (``ticket_id``; events by ticket_id, at, field,
        old_value, new_value).

    Raises:
        ValueError: ``start``, ``end`` or ``open_at`` is naive, or ``end`` precedes ``start``;
            ``columns`` names an unknown table or column or one twice, or leaves out a key
            column.
    """
    lo, hi = utc(start, "start"), utc(end, "end")
    # x <= t holds exactly when it does for t rounded down (stored instants are whole µs)
    opened = None if open_at is None else utc(pd.Timestamp(open_at).floor("us"), "open_at")
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"end {end} precedes start {start}")
    columns = dict(columns or {})
    for table, names in columns.items():
        if table not in schema.TABLES:
            raise ValueError(f"columns: {table!r} is not a canonical table")
        unknown = sorted(set(names) - set(schema.typed_dtypes(table)))
        missing = [key for key in schema.NATURAL_KEYS[table] if key not in names]
        twice = sorted({name for name in names if list(names).count(name) > 1})
        if unknown or missing or twice:
            raise ValueError(
                f"columns of {table}: unknown {unknown}, key columns missing {missing}, "
                f"named twice {twice}"
            )
    frames = {}
    with gc_paused(), reading(engine) as conn:
        backend_of(conn).prepare_read(conn, mapped=True)
        with _selected(conn, lo, hi, policy, columns, opened) as (selected, read):
            rest = [table for table in schema.TABLES if table not in read]
            read = {**read, **_read_tables(engine, conn, rest, selected, columns)}
        for table in schema.TABLES:
            frame, keys = read[table], list(schema.NATURAL_KEYS[table])
            if not in_order(frame, keys):
                frame = frame.sort_values(keys, ignore_index=True)
            frames[table] = frame
    return frames


def _read_tables(
    engine: Engine,
    conn: Connection,
    tables: Sequence[str],
    selected: Condition | None,
    columns: Mapping[str, Sequence[str]],
) -> dict[str, pd.DataFrame]:
    """The rows of ``tables`` whose ticket_id ``selected`` holds for, in ``conn``'s snapshot.

    Each table comes typed and unsorted, in the columns of ``columns`` (default all). Where the
    backend allows it (:meth:`~.backend.Backend.second_reader`: SQLite runs a query without
    holding Python's lock), a second reading connection, in a worker thread, reads every other
    table meanwhile. It reads only if it sees the same snapshot as ``conn``: a load commits its
    rows with a new ``load_manifests`` row, so the same latest manifest means that no load
    committed in between. Otherwise ``conn`` reads every table. The second connection reads
    pages unmapped: a second mapping of the file would count its pages twice in the process's
    resident memory.
    """

    def read(using: Connection, table: str) -> pd.DataFrame:
        column = Base.metadata.tables[table].c.ticket_id
        where = None if selected is None else selected(column)
        return read_table(using, table, where, columns.get(table))

    backend = backend_of(conn)
    if len(tables) > 1 and backend.second_reader(conn):
        with reading(engine) as other:
            if _latest_load(other) == _latest_load(conn):
                backend.prepare_read(other, mapped=False)  # (a pooled one may have mapped)
                with ThreadPoolExecutor(1) as worker:  # every other table, from the second on
                    theirs = worker.submit(
                        lambda: {table: read(other, table) for table in tables[1::2]}
                    )
                    frames = {table: read(conn, table) for table in tables[::2]}
                    return {**frames, **theirs.result()}
    return {table: read(conn, table) for table in tables}


def _latest_load(conn: Connection) -> int | None:
    """The id of the newest ``load_manifests`` row that ``conn`` sees (``None``: no load yet)."""
    return conn.execute(select(func.max(LoadManifest.__table__.c.id))).scalar_one()


def in_order(frame: pd.DataFrame, keys: Sequence[str]) -> bool:
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


def kayako_ticket_ids(engine: Engine | Connection) -> dict[str, str]:
    """Kayako's internal ticket id → mask id of every stored ticket that has one.

    The audit log's ``ticketid`` names tickets by that internal id (FORMATS.md 4), and so do
    posts. Given a connection, as its transaction sees them (a pull's tickets just loaded).
    """
    query = select(Ticket.kayako_id, Ticket.ticket_id).where(Ticket.kayako_id != "")
    with reading(engine) as conn:
        return {kayako_id: ticket_id for kayako_id, ticket_id in conn.execute(query)}


POST_SOURCE_PREFIX = "post "
"""How an intake record read from a cloud-info macro names its source (``post <id>``)."""


def intake_provenance(engine: Engine | Connection, *, from_posts: bool) -> pd.DataFrame:
    """The stored intake records a load of the other kind would replace, or that replaced one.

    Args:
        engine: From :func:`connect`; or the transaction of the load about to be made.
        from_posts: The load about to be made reads cloud-info posts (else an intake file).

    Returns:
        ``ticket_id``, ``source`` and ``overrides`` (text) of the stored records whose source is
        of the other kind (a file's for a posts load, a post's for a file load; a blank source,
        from before sources were kept, is a file's) or that replaced one (``overrides`` not
        blank); no others, so a table of one kind is one quick query.
    """
    post = Intake.source.startswith(POST_SOURCE_PREFIX, autoescape=True)
    other = ~post if from_posts else post
    query = select(Intake.ticket_id, Intake.source, Intake.overrides).where(
        or_(other, Intake.overrides != "")
    )
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(
        {
            name: pd.Series([r[i] for r in rows], dtype="str")
            for i, name in enumerate(("ticket_id", "source", "overrides"))
        }
    )
