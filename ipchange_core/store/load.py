"""Loading parsed files into the canonical tables: bulk upserts, manifests, rejects, reloads.

A load is one transaction: the file's accepted rows (upserted by natural key, unchanged rows
not sent), its rejects (once per file content, line and column) and a ``load_manifests`` row
whose counts reconcile. The backend (:mod:`.backend`) writes the rows its own fastest way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    func,
    select,
)
from sqlalchemy import Table as SATable
from sqlalchemy.exc import DBAPIError

from ipchange_core import schema
from ipchange_core.errors import IpchangeError, StaleRecords
from ipchange_core.records import RecordHashes
from ipchange_core.store.backend import backend_of
from ipchange_core.store.batch import (
    check_unique_keys,
    conform,
    typed_batch,
    unchanged_mask,
)
from ipchange_core.store.connection import db_error_reason, gc_paused, reading
from ipchange_core.store.models import MODELS, Base, LoadManifest, LoadRecords, Reject


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


def _count(conn: Connection, table: str) -> int:
    return conn.execute(select(func.count()).select_from(Base.metadata.tables[table])).scalar_one()


def _reject_rows(parsed: ParsedInput, file: str) -> pd.DataFrame:
    """The parser's rejects, one row per (line, column), reasons of a repeated pair joined.

    ``ticket_id`` (the row's key) is optional in ``parsed.rejects``: blank when absent.
    """
    frame = parsed.rejects
    columns = ["file", "line", "column", "value", "reason", "ticket_id"]
    if frame is None or len(frame) == 0:
        return pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "line" else "str") for c in columns}
        )
    missing = [c for c in columns[:-1] if c not in frame.columns]
    if missing:
        raise IpchangeError(f"{file}: the rejects frame lacks columns {missing}")
    key = frame["ticket_id"] if "ticket_id" in frame.columns else pd.Series("", index=frame.index)
    out = pd.DataFrame(
        {
            "file": frame["file"].astype("str").fillna(""),
            "line": pd.to_numeric(frame["line"]).astype("int64"),
            "column": frame["column"].astype("str").fillna(""),
            "value": frame["value"].astype("str").fillna(""),
            "reason": frame["reason"].astype("str").fillna(""),
            "ticket_id": key.astype("str").fillna(""),
        }
    )
    return out.groupby(["line", "column"], as_index=False, sort=True).agg(
        file=("file", "first"),
        value=("value", "first"),
        reason=("reason", "; ".join),
        ticket_id=("ticket_id", "first"),
    )[columns]


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

    backend = backend_of(engine)
    with reading(engine) as conn:
        if not same_content(_latest_manifest(conn, table), None):
            return None
    digest = sha256()
    try:
        with engine.begin() as conn:
            backend.lock_table(conn, table)
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
    with reading(engine) as conn:
        latest = _latest_manifest(conn, table)
        if latest is None or latest.format != format or latest.policy_version != policy_version:
            return None
        query = select(records.c.header_hash, records.c.record_hashes, records.c.key_hashes)
        query = query.where(records.c.manifest_id == latest.id)
        row = backend_of(conn).fetch_row(conn, query)
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
def _indexes_dropped(conn: Connection, table: str) -> Iterator[None]:
    """Drop the indexes of an (empty) table for a bulk insert; rebuild them afterwards.

    Building an index once over all rows is much faster than growing it row by row. On
    PostgreSQL this locks the table against readers until the load commits. After an error the
    rollback restores them (DDL is transactional on both backends). The work runs in the
    backend's :meth:`~.backend.Backend.bulk` settings meanwhile.
    """
    indexes = Base.metadata.tables[table].indexes
    with backend_of(conn).bulk(conn):
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
    backend = backend_of(conn)
    empty = before == 0
    whole: np.ndarray | None = None  # stored hashes of the whole table, read once if needed
    accepted = changed = 0
    dropped = False  # the indexes of the empty table, until the last block is in
    with ExitStack() as bulk:
        for frame in frames:
            typed = conform(frame, table, file)
            if "source_line" in frame.columns:
                lines = frame["source_line"].to_numpy(dtype=np.int64)
            else:
                lines = np.arange(accepted + 2, accepted + len(frame) + 2, dtype=np.int64)
            del frame
            batch = typed_batch(typed, table)
            trust = check_unique_keys(batch, lines, file)
            if empty:
                stored = np.empty((0, 2), dtype=np.int64)
            elif len(typed) * 20 < before:
                stored = backend.stored_hashes(conn, table, batch.ticket_ids())
            else:  # rows of earlier blocks are not in it, but no later block has their keys
                whole = backend.stored_hashes(conn, table, None) if whole is None else whole
                stored = whole
            send = np.flatnonzero(~unchanged_mask(batch, stored, trust))
            if len(send):
                if empty and not dropped:
                    bulk.enter_context(_indexes_dropped(conn, table))
                    dropped = True
                changed += backend.write(conn, batch, send, empty=empty)
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
            rejects (file, line, column, value, reason, and optionally ticket_id).
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
    file = str(parsed.path)
    try:
        with gc_paused(), engine.begin() as conn:
            return load_into(conn, parsed, policy_version=policy_version)
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:  # through SQLAlchemy or not
        raise IpchangeError(
            f"{file}: the database refused the load, nothing was written: {db_error_reason(exc)}"
        ) from exc


def load_into(conn: Connection, parsed: ParsedInput, *, policy_version: str) -> LoadResult:
    """:func:`load` within the caller's transaction ``conn`` (it commits or rolls back).

    A caller loads several files as one (``pipeline.load_documents``) this way; the database's
    errors reach it as they are raised.
    """
    table = parsed.table
    file = str(parsed.path)
    if table not in MODELS:
        raise IpchangeError(f"{file}: unknown table {table!r}; expected one of {list(MODELS)}")
    bad = _reject_rows(parsed, file)
    rejected = int(bad["line"].nunique())
    known = parsed.known
    blocks = getattr(parsed, "blocks", None)
    frames = blocks() if blocks is not None else iter([parsed.frame])
    backend = backend_of(conn)
    backend.lock_table(conn, table)
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
        insert = backend.insert(Reject.__table__)
        conn.execute(
            insert.on_conflict_do_nothing(index_elements=["sha256", "line", "column"]),
            [
                {"manifest_id": result.manifest_id, "sha256": parsed.sha256, **record}
                for record in bad.to_dict("records")
            ],
        )
    return result


def rows_frame(rows: Sequence[Any], dtypes: dict[str, str]) -> pd.DataFrame:
    """A frame of fetched ``rows``, its columns named and typed by ``dtypes`` (in order)."""
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
    "ticket_id": "str",
}


def manifests(engine: Engine) -> pd.DataFrame:
    """Return every load manifest, oldest first (columns as in ``load_manifests``)."""
    return table_frame(engine, LoadManifest.__table__, _MANIFEST_DTYPES)


def table_frame(engine: Engine, table: SATable, dtypes: dict[str, str]) -> pd.DataFrame:
    """Every row of ``table`` (it has an ``id``) in id order, in the columns of ``dtypes``."""
    with reading(engine) as conn:
        rows = conn.execute(select(*(table.c[name] for name in dtypes)).order_by(table.c.id)).all()
    return rows_frame(rows, dtypes)


def rejects(engine: Engine, manifest_id: int | None = None) -> pd.DataFrame:
    """Return stored rejects: all of them, or those of the file content loaded by a manifest.

    Rejects are stored once per file content (sha256), line and column; ``manifest_id`` in the
    result is the load that first recorded them, so asking for a reload's manifest returns the
    rejects of that same content.

    Args:
        engine: From :func:`connect`.
        manifest_id: A ``load_manifests.id``, or ``None`` for every reject.

    Returns:
        Columns manifest_id, file, line, column, value, reason, ticket_id; ordered by
        manifest, line, column.

    Raises:
        IpchangeError: No manifest has id ``manifest_id``.
    """
    table = Reject.__table__
    query = select(*(table.c[name] for name in _REJECT_DTYPES)).order_by(
        table.c.manifest_id, table.c.line, table.c.column
    )
    with reading(engine) as conn:
        if manifest_id is not None:
            sha = conn.execute(
                select(LoadManifest.sha256).where(LoadManifest.id == manifest_id)
            ).scalar_one_or_none()
            if sha is None:
                raise IpchangeError(f"no load manifest with id {manifest_id}")
            query = query.where(table.c.sha256 == sha)
        rows = conn.execute(query).all()
    return rows_frame(rows, _REJECT_DTYPES)
