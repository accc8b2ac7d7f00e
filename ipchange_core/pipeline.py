"""The ingest job: load a file (or a pull's documents) in one transaction; report its rejects."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from ipchange_core import schema, store
from ipchange_core.atomic import atomic_write
from ipchange_core.csvfile import write_csv
from ipchange_core.digest import FileDigest
from ipchange_core.errors import IpchangeError
from ipchange_core.export import formula_safe
from ipchange_core.ingest import (
    CANONICAL_FORMATS,
    FORMAT_TABLES,
    REJECT_COLUMNS,
    ParsedFile,
    detect_format,
    read_file,
    read_posts,
)
from ipchange_core.ingest.kayako_lookups import read_lookups
from ipchange_core.ingest.read import parsed_lookups
from ipchange_core.policy import PolicySet
from ipchange_core.store.connection import gc_paused

_REJECT_VALUE_MAX = 1_000
"""Characters of a rejected value written to ``<file>.rejects.csv``; the rest is summarised."""


def load_file(
    engine: Engine,
    path: Path,
    policy: PolicySet,
    *,
    fmt: str = "auto",
    mapping: Path | None = None,
    digest: FileDigest | None = None,
) -> tuple[store.LoadResult, ParsedFile]:
    """Read, validate and load one file in one transaction, under the latest policy version.

    A canonical CSV that mostly repeats the records its table's latest load accepted has only
    its other records parsed (:func:`store.previous_records`). A file whose bytes are those of
    its table's latest load (same format and policy version,
    the default column mapping) is not parsed again: :func:`store.repeat_load` records the
    reload with the earlier counts, and the returned :class:`ParsedFile` has no rows, the
    stored rejects and a note saying so (its ``encoding`` is blank: the text was not decoded).
    A Kayako XML export is read and loaded in blocks (``read_file(spill=True)``): memory stays
    flat as the file grows, and the returned :class:`ParsedFile` has no rows in ``frame``.

    Args:
        engine: From :func:`store.connect`.
        path: The file.
        policy: The policy; its latest version reads the file and is recorded in the manifest.
        fmt: ``auto`` (:func:`ipchange_core.ingest.detect_format`) or an input format.
        mapping: Column mapping of a Kayako report CSV (``None``: the packaged one).
        digest: The file's SHA-256, if the caller started computing it early
            (:meth:`FileDigest.start_all`, on the same ``path``); else it is computed here
            when needed.

    After a load into ``tickets``, :func:`store.index_requests` keeps SQLite's index of the
    policy's request candidates (built once, in a transaction of its own).

    Raises:
        InvalidInputError: the file is refused whole (nothing is loaded).
    """
    result, parsed = _load(engine, path, policy, fmt=fmt, mapping=mapping, digest=digest)
    if result.table == "tickets":
        store.index_requests(engine, policy)
    return result, parsed


def _load(
    engine: Engine,
    path: Path,
    policy: PolicySet,
    *,
    fmt: str,
    mapping: Path | None,
    digest: FileDigest | None,
) -> tuple[store.LoadResult, ParsedFile]:
    """:func:`load_file` but the index."""
    latest = policy.latest
    path = Path(path)
    if digest is None:
        digest = FileDigest(path)
    elif digest.path != path:
        raise ValueError(f"the digest of {digest.path} given for {path}")
    if fmt == "auto":
        fmt = detect_format(path, mapping=mapping)
    if fmt == "kayako-lookups":  # a lookup list: a new version when it changed
        lookup = read_lookups(path)
        result = store.load_lookups(engine, lookup, policy_version=latest.version)
        return result, parsed_lookups(lookup)
    # (posts are read again: which records they give depends on the tickets stored since)
    if mapping is None and fmt in FORMAT_TABLES and fmt != "kayako-posts":
        repeat = store.repeat_load(
            engine,
            path,
            format=fmt,
            table=FORMAT_TABLES[fmt],
            policy_version=latest.version,
            sha256=digest,
        )
        if repeat is not None:
            return repeat, _repeated_file(engine, path, fmt, digest(), repeat)
    kayako = latest.kayako
    audit = {}
    if fmt in ("kayako-xml", "kayako-audit"):  # the help desk's own lookups, else the policy's
        kayako = store.kayako_lookups(engine, latest.kayako)
    if fmt == "kayako-audit":  # rows that name Kayako's internal id find their ticket
        audit = {"audit": latest.kayako_audit, "ticket_ids": store.kayako_ticket_ids(engine)}
    if fmt == "kayako-posts":  # posts name their ticket by Kayako's internal id
        audit = {"cloud_info": latest.cloud_info, "ticket_ids": store.kayako_ticket_ids(engine)}
    read = functools.partial(
        read_file,
        path,
        format=fmt,
        mapping=mapping,
        tz=latest.timezone,
        kayako=kayako,
        **audit,
    )
    if mapping is None and fmt in CANONICAL_FORMATS:
        previous = store.previous_records(
            engine, FORMAT_TABLES[fmt], format=fmt, policy_version=latest.version
        )
        parsed = _read_hashed(read, digest, previous=previous)
        if parsed.table == "intake":
            parsed = arbitrate_intake(engine, parsed, latest.cloud_info.wins)
        try:
            return store.load(engine, parsed, policy_version=latest.version), parsed
        except store.StaleRecords:
            pass  # another load came between the two: read the file in full
    # (a Kayako XML export's rows wait on disk, and go once they are loaded)
    with _read_hashed(read, digest, **({"spill": True} if fmt == "kayako-xml" else {})) as parsed:
        if parsed.table == "intake":
            parsed = arbitrate_intake(engine, parsed, latest.cloud_info.wins)
        return store.load(engine, parsed, policy_version=latest.version), parsed


def load_documents(
    engine: Engine,
    lookups: Sequence[Path],
    tickets: Path,
    policy: PolicySet,
    *,
    posts: Path | None = None,
    within: Callable[[Connection, store.LoadResult], None] | None = None,
) -> list[tuple[store.LoadResult, ParsedFile]]:
    """Load Kayako lookup lists, a ticket XML document and its posts as one, in one transaction.

    Each document is read and counted as :func:`load_file` reads and counts it (one manifest
    each, rejects stored with it); the tickets are read with the lookup lists just loaded, and
    the posts (a ``<posts>`` document, read as intake from the cloud-info macro) find their
    tickets' mask ids among the tickets just loaded. ``within(conn, result)`` runs in the same
    transaction after the tickets' load (``result``): what it writes commits with the documents
    or not at all. The tickets document is loaded in full (no repeat check): its unchanged rows
    count as unchanged and are not written.

    Returns:
        The load counts and parsed file of each lookup list (in the order given), then of the
        tickets (its ``frame`` empty: the rows were read in blocks), then of the posts if given.

    Raises:
        InvalidInputError: A document is refused whole (nothing is loaded).
        IpchangeError: The database refused the load (nothing was written).
    """
    latest = policy.latest
    lists = [read_lookups(path) for path in lookups]  # a bad list refuses all before any write
    loads: list[tuple[store.LoadResult, ParsedFile]] = []
    try:
        with gc_paused(), engine.begin() as conn:
            for lookup in lists:
                result = store.load_lookups_into(conn, lookup, policy_version=latest.version)
                loads.append((result, parsed_lookups(lookup)))
            kayako = store.lookups_in(conn, latest.kayako)
            with read_file(
                tickets, format="kayako-xml", tz=latest.timezone, kayako=kayako, spill=True
            ) as parsed:
                result = store.load_into(conn, parsed, policy_version=latest.version)
                if within is not None:
                    within(conn, result)
            loads.append((result, parsed))
            if posts is not None:
                intake = _posts_intake(conn, posts, "", policy)
                loads.append((store.load_into(conn, intake, policy_version=latest.version), intake))
    except (DBAPIError, engine.dialect.loaded_dbapi.Error) as exc:  # through SQLAlchemy or not
        raise IpchangeError(
            f"{tickets.name}: the database refused the load, nothing was written: "
            f"{store.db_error_reason(exc)}"
        ) from exc
    store.index_requests(engine, policy)
    return loads


def load_posts(
    engine: Engine, answer: bytes, name: str, policy: PolicySet
) -> tuple[store.LoadResult, ParsedFile]:
    """Load the intake of a Kayako answer with posts received as bytes (e.g. by a script).

    One transaction, exactly as :func:`load_file` loads a posts file (``kayako-posts``).
    ``ipchange pull kayako`` loads its posts with its tickets instead (:func:`load_documents`).

    Args:
        engine: From :func:`store.connect`.
        answer: The bytes of a ``TicketPost/ListAll`` or single-ticket answer.
        name: Its name in the manifest and in messages (e.g. ``posts-5001.xml``).
        policy: Its latest version's zone and ``cloud_info`` read the posts.

    Raises:
        InvalidInputError: The answer is refused whole (nothing is loaded).
    """
    parsed = _posts_intake(engine, answer, name, policy)
    return store.load(engine, parsed, policy_version=policy.latest.version), parsed


def _posts_intake(
    engine: Engine | Connection, answer: Path | bytes, name: str, policy: PolicySet
) -> ParsedFile:
    """An answer with posts read as intake and arbitrated against the stored intake.

    The posts find their tickets, and the stored intake is read, as ``engine`` sees them: given
    a load's transaction, with what it has loaded so far (a pull's tickets).
    """
    latest = policy.latest
    parsed = read_posts(
        answer,
        name=name,
        tz=latest.timezone,
        cloud_info=latest.cloud_info,
        ticket_ids=store.kayako_ticket_ids(engine),
    )
    return arbitrate_intake(engine, parsed, latest.cloud_info.wins)


def arbitrate_intake(engine: Engine | Connection, parsed: ParsedFile, wins: str) -> ParsedFile:
    """Decide, per ticket, between a stored intake record and one of the other kind.

    A ticket may have an intake file row and a cloud-info macro. Loading a record of one kind
    over a stored record of the other names the replaced record in ``overrides``; a record
    replacing one of its own kind keeps the ``overrides`` stored (so a reload changes
    nothing). ``wins`` (policy ``cloud_info.wins``) says which stands: ``later`` (the record
    being loaded), ``posts`` or ``file`` (a record of the other kind being loaded is then left
    out: counted as skipped, said in the notes). Given the engine, the stored records are read
    before the load's transaction (:func:`store.intake_provenance`): a load of the other kind
    committed between the two is not seen; given the load's transaction, none can come between.

    Args:
        engine: From :func:`store.connect`; or the transaction that will load ``parsed``
            (then its stored records are read as that transaction sees them).
        parsed: A parsed ``intake`` file (intake file, or ``kayako-posts``).
        wins: ``later``, ``posts`` or ``file``.

    Returns:
        ``parsed`` with ``overrides`` set, and without the records that do not win.
    """
    from_posts = parsed.format == "kayako-posts"
    stored = store.intake_provenance(engine, from_posts=from_posts)
    if stored.empty or parsed.frame.empty:
        return parsed
    frame = parsed.frame
    at = pd.Index(stored["ticket_id"]).get_indexer(frame["ticket_id"])
    found = at >= 0
    source = stored["source"].to_numpy(dtype=object)[at[found]]
    overrides = stored["overrides"].to_numpy(dtype=object)[at[found]]
    stored_post = pd.Series(source, dtype="str").str.startswith(store.POST_SOURCE_PREFIX)
    other = (stored_post != from_posts).to_numpy(bool)
    named = pd.Series(source, dtype="str").replace("", "an intake file (source not recorded)")
    replaced = np.where(other, named.to_numpy(dtype=object), overrides)
    frame = frame.copy()
    column = frame["overrides"].to_numpy(dtype=object)
    column[np.flatnonzero(found)] = replaced
    frame["overrides"] = pd.Series(column, index=frame.index, dtype="str")
    keep = np.ones(len(frame), dtype=bool)
    if wins != "later" and (wins == "posts") != from_posts:
        keep[np.flatnonzero(found)[other]] = False
    dropped = int((~keep).sum())
    if not dropped:
        return dataclasses.replace(parsed, frame=frame)
    records = parsed.records
    if records is not None:
        records = dataclasses.replace(records, hashes=records.hashes[keep], keys=records.keys[keep])
    note = (
        f"kept {dropped} stored intake record(s) of the {'file' if from_posts else 'macro'}: "
        f"the policy setting cloud_info.wins is {wins} (counted as skipped)"
    )
    return dataclasses.replace(
        parsed,
        frame=frame[keep].reset_index(drop=True),
        rows_skipped=parsed.rows_skipped + dropped,
        notes=(*parsed.notes, note),
        records=records,
    )


def _read_hashed(read: Callable[..., ParsedFile], digest: FileDigest, **kwargs: Any) -> ParsedFile:
    """``read(**kwargs)`` of a file, given its digest if one was computed already.

    The digest (of the repeat check, or started in the background) is taken only for bytes
    that did not change since; if the file changed during the read, it is read (and hashed)
    again, and the first read is closed.
    """
    sha256 = digest.unchanged()
    parsed = read(sha256=sha256, **kwargs)
    if sha256 is not None and digest.unchanged() is None:  # the file changed meanwhile
        parsed.close()
        parsed = read(**kwargs)
    return parsed


def _repeated_file(
    engine: Engine, path: Path, fmt: str, sha256: str, result: store.LoadResult
) -> ParsedFile:
    """What :func:`load_file` reports for a file it did not parse again (see there)."""
    rejects = store.rejects(engine, result.manifest_id)
    rejects = rejects.assign(file=path.name)[list(REJECT_COLUMNS)]
    return ParsedFile(
        path=path,
        format=fmt,
        table=result.table,
        frame=schema.empty_frame(result.table).assign(
            **{schema.SOURCE_LINE: pd.Series(dtype="int64")}
        ),
        rejects=rejects.reset_index(drop=True),
        rows_read=result.read,
        sha256=sha256,
        encoding="",
        rows_skipped=result.skipped,
        notes=(
            "same bytes as the latest load into "
            f"{result.table} (same format and policy version): not parsed again, nothing changed",
        ),
    )


def load_summary(result: store.LoadResult) -> str:
    """``read N = inserted + updated + unchanged + rejected (+ skipped)``, as one line."""
    line = (
        f"read {result.read} = inserted {result.inserted} + updated {result.updated} "
        f"+ unchanged {result.unchanged} + rejected {result.rejected}"
    )
    return line + (f" + skipped {result.skipped}" if result.skipped else "")


def write_load_report(folder: Path, parsed: ParsedFile, result: store.LoadResult) -> Path | None:
    """Write ``<file>.load.json`` and ``<file>.rejects.csv`` (one row per problem) in ``folder``.

    Both describe this load only: they replace the files of the file's previous load, and a
    load that rejected nothing leaves no rejects CSV (a stale one would be mailed as current).
    The rejects CSV has the columns of :data:`REJECT_COLUMNS` (``ticket_id`` last: the key a
    clerk looks the record up by).

    Returns:
        The path of the rejects CSV, ``None`` when nothing was rejected. Its text cells are
        formula-safe for spreadsheets.
    """
    target = folder / f"{parsed.path.name}.rejects.csv"
    _write_load_json(folder, parsed, result)
    if not len(parsed.rejects):
        target.unlink(missing_ok=True)
        return None
    text = ("file", "column", "value", "reason", "ticket_id")
    rejects = parsed.rejects.astype(dict.fromkeys(text, "str"))
    # a spreadsheet cell holds at most 32,767 characters, and a rejected value of megabytes
    # helps nobody: keep its start and say how much was left out (the database keeps it whole)
    long = rejects["value"].str.len() > _REJECT_VALUE_MAX
    if long.any():
        cut = rejects.loc[long, "value"]
        more = (cut.str.len() - _REJECT_VALUE_MAX).map("{:,}".format).astype("str")
        rejects.loc[long, "value"] = (
            cut.str.slice(0, _REJECT_VALUE_MAX) + "… (" + more + " more characters)"
        )
    for column in text:
        rejects[column] = formula_safe(rejects[column])
    write_csv(rejects[list(REJECT_COLUMNS)], target)
    return target


def _write_load_json(folder: Path, parsed: ParsedFile, result: store.LoadResult) -> None:
    """Write ``<file>.load.json``: the file, its format and the counts of the load."""
    report = {
        "file": str(parsed.path),
        "sha256": parsed.sha256,
        "format": parsed.format,
        "table": parsed.table,
        "encoding": parsed.encoding,
        "read": result.read,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "skipped": result.skipped,
        "manifest_id": result.manifest_id,
        "notes": list(parsed.notes),
    }
    atomic_write(
        folder / f"{parsed.path.name}.load.json", (json.dumps(report, indent=2) + "\n").encode()
    )
