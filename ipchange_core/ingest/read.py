"""Read an input file into a typed canonical frame and a rejects table (SPEC 3).

:func:`read_file` reads one file — a canonical CSV or XLSX (SPEC 3.4), a Kayako ticket XML
export, a Kayako report CSV or a Kayako audit log CSV (SPEC 3.1–3.3) — checks every value and
splits the rows into those it accepts, typed exactly as :func:`ipchange_core.schema.typed_dtypes`,
and one reject per problem naming the file, line, column and value with a reason in plain words.
The counts always reconcile: ``rows_read == len(frame) + rejected lines + rows_skipped``.

A file that cannot be read as a table at all (unknown format, missing required column, binary or
empty file, undecodable bytes, malformed XML) raises
:class:`~ipchange_core.errors.InvalidInputError` naming the file; bad input never ends in a
traceback.

Values are checked column by column with vectorised rules (no Python loop per row, except over
rows already known to be bad), then the typed frame is validated against its declared pandera
model (:data:`ipchange_core.schema.FRAME_MODELS`).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.canonical import canonical_text
from ipchange_core.ingest.checks import check_text, claims_known_key, import_contracts
from ipchange_core.ingest.columns import CanonicalText
from ipchange_core.ingest.detect import CANONICAL_FORMATS, FORMAT_TABLES, FORMATS, detect_format
from ipchange_core.ingest.kayako_audit import AuditContext, audit_variant, map_audit
from ipchange_core.ingest.kayako_lookups import LookupList, read_lookups
from ipchange_core.ingest.kayako_posts import macro_text, read_posts_xml
from ipchange_core.ingest.kayako_report import load_mapping, map_report
from ipchange_core.ingest.kayako_values import DEFAULT_LOOKUPS
from ipchange_core.ingest.kayako_xml import XML_BLOCK_TICKETS, TicketXml
from ipchange_core.ingest.spill import FileKeys, Spill, SpilledRows
from ipchange_core.ingest.tabular import RawTable, read_table
from ipchange_core.ingest.timestamps import TimeParser, check_zone
from ipchange_core.policy import AuditMessages, CloudInfo, KayakoLookups
from ipchange_core.records import (
    RecordHashes,
)
from ipchange_core.schema import SOURCE_LINE, typed_dtypes

ENGLISH_AUDIT = AuditMessages()
"""Kayako's English audit message templates, month-first report dates."""


PROCEDURE_MACRO = CloudInfo()
"""The procedure's "cloud info" macro (the default policy's ``cloud_info``)."""

REJECT_COLUMNS = ("file", "line", "column", "value", "reason", "ticket_id")
"""Columns of :attr:`ParsedFile.rejects`."""


KEY_COLUMN = "ticket_id"
"""The record key a reject carries (every canonical table's rows belong to a ticket)."""


@dataclass(frozen=True, eq=False)
class ParsedFile:
    """One input file, read and checked.

    Attributes:
        path: The file read.
        format: Its format, one of :data:`FORMATS`.
        table: The canonical table its rows belong to (``tickets``, ``ticket_events``,
            ``intake`` or ``changes``).
        frame: The accepted rows, typed exactly as ``schema.typed_dtypes(table)`` in that column
            order, plus ``source_line`` (int64): the row's line in the file, header = line 1
            (Kayako XML: the ticket's ordinal, first = 1; XLSX: the sheet row).
        rejects: One row per problem: ``file``, ``line`` (int), ``column``, ``value``,
            ``reason``, ``ticket_id`` (str: the row's ticket id as written, for a clerk to look
            up; blank when the row has none or is malformed). A line may have several
            problems; ``column`` is blank for a malformed row.
        rows_read: Data rows read (header excluded, blank lines not counted).
        sha256: SHA-256 of the file's bytes, hex.
        encoding: ``utf-8``, ``utf-8-sig`` (with a BOM), ``cp1252``, an XML file's declared
            encoding, or ``xlsx``; blank when the file was not decoded (a reload of the
            bytes already loaded, see ``pipeline.load_file``).
        rows_skipped: Rows that are not rows of the table at all (Kayako audit entries other
            than department/status/owner changes), explained in ``notes``.
        notes: Plain-words remarks on the whole file (ignored or absent columns, skipped rows).
        records: For a canonical CSV whose records take one line each, the hashes of each
            accepted row's record text and natural key, aligned with ``frame`` (see
            :mod:`ipchange_core.records`; ``manifest_id`` 0 until loaded); else ``None``.
        known: Records that were not parsed because the table's latest load accepted them
            byte for byte (see ``previous`` in :func:`read_file`); they are counted in
            ``rows_read`` but are not in ``frame``.
        spill: For a Kayako XML export read with ``spill=True``, the accepted rows, kept in a
            temporary file and read back by :meth:`blocks` (``frame`` is then empty); else
            ``None``. :meth:`close` (or leaving a ``with`` block) deletes the file.
    """

    path: Path
    format: str
    table: str
    frame: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    sha256: str
    encoding: str
    rows_skipped: int = 0
    notes: tuple[str, ...] = ()
    records: RecordHashes | None = None
    known: RecordHashes | None = None
    spill: SpilledRows | None = field(default=None, repr=False)

    def blocks(self) -> Iterator[pd.DataFrame]:
        """Yield the accepted rows block by block, typed as ``frame``.

        That is ``frame`` itself, or for a spilled read the blocks of its temporary file, one
        at a time (memory holds one block, whatever the size of the file).

        Raises:
            IpchangeError: The spilled rows were deleted (:meth:`close`).
        """
        if self.spill is None:
            yield self.frame
        else:
            yield from self.spill.frames()

    def close(self) -> None:
        """Delete the temporary file of a spilled read (nothing to do for other reads)."""
        if self.spill is not None:
            self.spill.close()

    def __enter__(self) -> ParsedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def rows_known(self) -> int:
        """Records counted in ``rows_read`` but not parsed (``known``)."""
        return 0 if self.known is None else len(self.known.hashes)

    @property
    def rows_rejected(self) -> int:
        """Distinct lines with at least one reject."""
        return int(self.rejects["line"].nunique())

    def reject_messages(self) -> list[str]:
        """Return each reject as one line, e.g. ``intake.csv line 14, column current_ip: ...``."""
        return [
            f"{r.file} line {r.line}"
            + (f", column {r.column}" if r.column else "")
            + f": {r.reason}"
            for r in self.rejects.itertuples(index=False)
        ]


def read_file(
    path: Path,
    *,
    format: str = "auto",
    mapping: Path | None = None,
    tz: str = "America/Chicago",
    kayako: KayakoLookups = DEFAULT_LOOKUPS,
    audit: AuditMessages = ENGLISH_AUDIT,
    ticket_ids: Mapping[str, str] | None = None,
    cloud_info: CloudInfo = PROCEDURE_MACRO,
    previous: RecordHashes | None = None,
    block_rows: int = XML_BLOCK_TICKETS,
    spill: bool = False,
    sha256: str | None = None,
) -> ParsedFile:
    """Read, check and type one input file.

    Args:
        path: The file (CSV, XLSX or Kayako XML).
        format: ``auto`` (see :func:`detect_format`) or one of :data:`FORMATS`.
        mapping: Column mapping for a Kayako report CSV (default: the packaged
            ``kayako_report_mapping.yaml``).
        tz: IANA time zone of naive (local) times, e.g. ``America/Chicago``.
        kayako: Kayako department/status/type id → name tables.
        audit: Kayako audit log only: the message templates and the report's date order.
        ticket_ids: Kayako audit log and posts only: Kayako's internal ticket id → mask id of
            the stored tickets (``store.kayako_ticket_ids``), for rows that name no mask id.
        cloud_info: Kayako posts only: the macro intake is read from (policy ``cloud_info``).
        previous: The records the table's latest load accepted (``store.previous_records``).
            When most records of a canonical CSV with the same header are among them, byte
            for byte, only the others are parsed and checked; the rest are ``known``.
        block_rows: Kayako XML only: tickets parsed, checked and typed at a time.
        spill: Kayako XML only: keep the accepted rows in a temporary file, block by block
            (``ParsedFile.spill``), instead of in ``frame``: memory then stays flat however
            large the file. Other formats are read whole either way.
        sha256: The SHA-256 (hex) of the file's bytes, when the caller has just computed it
            (``pipeline.load_file`` does, to recognise a repeated file) and the file has not
            changed since; else it is computed from the bytes read.

    Returns:
        The accepted rows, the rejects and the counts; see :class:`ParsedFile`.

    Raises:
        InvalidInputError: The file as a whole is unusable; the message names the file.
        PolicyError: ``tz`` is not a known time zone.
    """
    path = Path(path)
    name = path.name
    check_zone(tz)
    threading.Thread(target=import_contracts, args=(previous is not None,)).start()
    if format == "auto":
        fmt = detect_format(path, mapping=mapping)
    elif format in FORMAT_TABLES:
        fmt = format
    else:
        raise InvalidInputError(
            f"unknown format {format!r}; expected auto or one of {', '.join(FORMATS)}", file=name
        )
    table = FORMAT_TABLES[fmt]
    if fmt == "kayako-lookups":
        return parsed_lookups(read_lookups(path))
    if fmt == "kayako-xml":
        return _read_xml(path, kayako, tz, block_rows=block_rows, spill=spill, sha256=sha256)
    if fmt == "kayako-posts":
        return read_posts(path, tz=tz, cloud_info=cloud_info, ticket_ids=ticket_ids or {})
    canonical = fmt in CANONICAL_FORMATS
    raw = read_table(
        path, hashed=canonical, previous=previous if canonical else None, sha256=sha256
    )
    structural, sha256, encoding = raw.rejects, raw.sha256, raw.encoding
    texts, known = raw.texts, raw.known
    context = AuditContext(kayako, audit, audit.report_day_first, ticket_ids or {})
    text, parser = _tabular_text(fmt, raw, name, mapping, tz, context)
    del raw  # the columns the mapping did not take are freed before the checks
    ids, lines = text.columns[KEY_COLUMN], text.lines
    frame, rejects, keys = check_text(table, text, parser)
    if known is not None and claims_known_key(keys, known):
        # A record not parsed has the key of one parsed: only a full read rejects both.
        return read_file(path, format=fmt, mapping=mapping, tz=tz, kayako=kayako, audit=audit)
    parts = [_keyed(structural), _keyed(text.rejects, lines, ids), _keyed(rejects, lines, ids)]
    del ids
    all_rejects = _file_rejects(name, parts, text.source_names)
    rows_read = len(text.lines) + structural["line"].nunique() + text.rows_skipped
    records = None
    if fmt in CANONICAL_FORMATS and texts is not None:
        lines = frame[SOURCE_LINE].to_numpy()
        records = RecordHashes(
            manifest_id=0,
            header=texts.header,
            hashes=texts.hashes[np.searchsorted(texts.lines, lines)],
            keys=keys["hash"].to_numpy()[np.searchsorted(text.lines, lines)],
        )
        rows_read += 0 if known is None else len(known.hashes)
    return ParsedFile(
        path=path,
        format=fmt,
        table=table,
        frame=frame,
        rejects=all_rejects,
        rows_read=int(rows_read),
        sha256=sha256,
        encoding=encoding,
        rows_skipped=text.rows_skipped,
        notes=text.notes,
        records=records,
        known=known,
    )


def _tabular_text(
    fmt: str, raw: RawTable, name: str, mapping: Path | None, tz: str, audit: AuditContext
) -> tuple[CanonicalText, TimeParser]:
    """A tabular file's canonical text, by its format's reader, and the parser of its times.

    Each reader of a CSV/XLSX format family takes the file as text (:class:`RawTable`) and
    returns the canonical text; times stay text for :func:`check_text`, written as ``epoch``
    seconds (Kayako audit database export), in the mapping's ``date_format`` (Kayako report)
    or ISO-8601 (Kayako audit report, whose dates its reader rewrites).
    """
    if fmt == "kayako-csv":
        report = load_mapping(mapping)
        text = map_report(raw.header, raw.columns, raw.lines, report, file=name)
        spreadsheet = raw.encoding == "xlsx"  # date cells read as ISO-8601 text
        return text, TimeParser(report.date_format, tz, file=report.source, also_iso=spreadsheet)
    if fmt == "kayako-audit":
        text = map_audit(raw.header, raw.columns, raw.lines, audit, file=name)
        epoch = audit_variant(raw.header) == "database"
        return text, TimeParser("epoch" if epoch else None, tz, file=name)
    return canonical_text(raw, FORMAT_TABLES[fmt], name), TimeParser(None, tz, file=name)


def _keyed(
    rejects: pd.DataFrame, lines: np.ndarray | None = None, ids: pa.Array | None = None
) -> pd.DataFrame:
    """``rejects`` with the ticket id of each one's row (:data:`KEY_COLUMN`).

    Args:
        rejects: Problems of rows (``line``, ``column``, ``value``, ``reason``).
        lines: The line of each row read (ascending), ``None`` when the rows were not read
            (malformed rows): their key is blank, as is that of a problem on a line no row
            read holds.
        ids: The ticket id text of each row of ``lines``.
    """
    if lines is None or ids is None or not len(rejects):
        return rejects.assign(**{KEY_COLUMN: ""})
    wanted = rejects["line"].to_numpy(np.int64)
    keys = np.full(len(wanted), "", dtype=object)
    if len(lines):
        at = np.minimum(np.searchsorted(lines, wanted), len(lines) - 1)
        # a problem of a line that holds no row read (a malformed or cut-off line) has no key
        found = lines[at] == wanted
        keys[found] = np.asarray(ids.take(pa.array(at[found])).to_pylist(), dtype=object)
    return rejects.assign(**{KEY_COLUMN: keys.tolist()})


def _file_rejects(
    name: str, parts: list[pd.DataFrame], source_names: Mapping[str, str]
) -> pd.DataFrame:
    """A file's rejects: ``parts`` (keyed) joined, columns named as in the file, by line."""
    rejects = pd.concat(parts, ignore_index=True)
    rejects["column"] = rejects["column"].replace(dict(source_names))
    rejects.insert(0, "file", name)
    rejects = rejects.sort_values("line", kind="stable", ignore_index=True)
    return rejects.astype(
        {
            "file": "str",
            "line": "int64",
            "column": "str",
            "value": "str",
            "reason": "str",
            KEY_COLUMN: "str",
        }
    )[list(REJECT_COLUMNS)]


def parsed_lookups(lookup: LookupList) -> ParsedFile:
    """A Kayako lookup list as read (``read_file`` for ``kayako-lookups``).

    ``frame`` holds its rows (:class:`~.kayako_lookups.LookupList`); there are no rejects: a
    list that cannot be read is refused whole.
    """
    rejects = pd.DataFrame(
        {c: pd.Series(dtype="int64" if c == "line" else "str") for c in REJECT_COLUMNS}
    )
    notes: tuple[str, ...] = ()
    if lookup.repeated:
        notes = (f"{lookup.repeated} entr(ies) repeat an id with the same title: read once",)
    return ParsedFile(
        path=lookup.path,
        format="kayako-lookups",
        table=FORMAT_TABLES["kayako-lookups"],
        frame=lookup.rows,
        rejects=rejects,
        rows_read=lookup.entries,
        sha256=lookup.sha256,
        encoding=lookup.encoding,
        rows_skipped=lookup.repeated,
        notes=notes,
    )


def _read_xml(
    path: Path,
    kayako: KayakoLookups,
    tz: str,
    *,
    block_rows: int,
    spill: bool,
    sha256: str | None,
) -> ParsedFile:
    """Read a Kayako ticket XML export block by block (``read_file`` for ``kayako-xml``).

    Each block of tickets is checked and typed on its own, its rows kept (in memory, or spilled
    to a temporary file) and its keys noted; a key repeated anywhere in the file, within a block
    or across blocks, then rejects every copy, as for any other file.
    """
    name = path.name
    table = FORMAT_TABLES["kayako-xml"]
    xml = TicketXml(path, kayako, file=name, block_tickets=block_rows, sha256=sha256)
    parser = TimeParser("epoch", tz, file=name)
    folder = tempfile.TemporaryDirectory(prefix="ipchange-") if spill else None
    try:
        where = None if folder is None else Path(folder.name)
        spilled = Spill(where, "rows")
        keys = FileKeys(table, where)
        frames: list[pd.DataFrame] = []
        parts: list[pd.DataFrame] = []
        rows_read = 0
        for text in xml.blocks():
            ids, lines = text.columns[KEY_COLUMN], text.lines
            frame, rejects, block_keys = check_text(table, text, parser, duplicates=False)
            parts += [_keyed(text.rejects, lines, ids), _keyed(rejects, lines, ids)]
            del ids
            keys.add(block_keys, text.lines)
            rows_read += len(text.lines)
            if folder is None:
                frames.append(frame)
            else:
                spilled.append(pa.Table.from_pandas(frame, preserve_index=False))
            del text, frame
        duplicates = keys.rejects()
    except BaseException:
        if folder is not None:
            folder.cleanup()
        raise
    duplicates = duplicates.assign(**{KEY_COLUMN: duplicates["value"]})  # the repeated id
    rejects = _file_rejects(name, [*parts, duplicates], xml.source_names)
    drop = np.unique(duplicates["line"].to_numpy(dtype=np.int64))
    rows = SpilledRows(table, folder, spilled, drop) if folder is not None else None
    if rows is None:
        frame = pd.concat(frames, ignore_index=True)
        frame = frame[~np.isin(frame[SOURCE_LINE].to_numpy(), drop)].reset_index(drop=True)
    else:
        dtypes = {**typed_dtypes(table), SOURCE_LINE: "int64"}
        frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})
    return ParsedFile(
        path=path,
        format="kayako-xml",
        table=table,
        frame=frame,
        rejects=rejects,
        rows_read=rows_read,
        sha256=xml.sha256,
        encoding=xml.encoding,
        notes=xml.notes,
        spill=rows,
    )


def read_posts(
    source: Path | bytes,
    *,
    name: str = "",
    tz: str = "America/Chicago",
    cloud_info: CloudInfo = PROCEDURE_MACRO,
    ticket_ids: Mapping[str, str] | None = None,
) -> ParsedFile:
    """Read the intake records of a Kayako answer with posts (``read_file`` for ``kayako-posts``).

    A ``TicketPost/ListAll`` answer (root ``<posts>``) or a single-ticket answer (``<tickets>``
    with ``<posts>``), in either wire style, as a file or as the bytes a pull received: the
    staff posts holding the "cloud info" macro become one ``intake`` record per ticket
    (:mod:`.kayako_posts`), checked and typed like an ``intake.csv`` row. Each reject names the
    ticket (``ticket_id``), the post (its reason starts ``post <id>:``) and the field (its
    macro label, or the post's element).

    Args:
        source: The file, or the answer's bytes.
        name: The name of the answer in messages and manifests (default: the file's name;
            required for bytes).
        tz: IANA zone of the macro's local requested times.
        cloud_info: The macro (the policy's ``cloud_info``).
        ticket_ids: Kayako's internal ticket id → mask id of the stored tickets
            (``store.kayako_ticket_ids``), for posts outside a ``<ticket>``.

    Returns:
        A :class:`ParsedFile` of table ``intake``, format ``kayako-posts``: rows are posts
        (``rows_read`` = posts in the answer; ``source_line`` = the value-giving post's ordinal,
        first = 1), skipped posts counted in ``rows_skipped`` and explained in ``notes``.

    Raises:
        InvalidInputError: The answer is unreadable (malformed XML, another root); names it.
        PolicyError: ``tz`` is not a known time zone.
    """
    check_zone(tz)
    if isinstance(source, bytes):
        if not name:
            raise ValueError("read_posts: name the answer whose bytes are given")
        path, data = Path(name), source
    else:
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InvalidInputError(
                f"cannot read the file: {err.strerror or err}", file=name
            ) from None
    table = FORMAT_TABLES["kayako-posts"]
    answer = read_posts_xml(data, file=name)
    text = macro_text(answer.posts, cloud_info, ticket_ids or {})
    parser = TimeParser(
        cloud_info.requested_format,
        tz,
        file=name,
        also_iso=True,
        setting="the policy setting cloud_info.requested_format",
    )
    ids, lines = text.columns[KEY_COLUMN], text.lines
    frame, rejects, _ = check_text(table, text, parser)
    parts = [_keyed(text.rejects, lines, ids), _keyed(rejects, lines, ids)]
    del ids
    all_rejects = _file_rejects(name, parts, text.source_names)
    if len(all_rejects):  # name the post, and the ticket of a post that gave no record
        posts = {p.ordinal: p for p in answer.posts}
        at = all_rejects["line"].map(posts)
        all_rejects["reason"] = "post " + at.map(lambda p: p.post_id) + ": " + all_rejects["reason"]
        blank = all_rejects[KEY_COLUMN] == ""
        all_rejects.loc[blank, KEY_COLUMN] = at[blank].map(
            lambda p: p.mask or (ticket_ids or {}).get(p.fields["ticketid"], p.fields["ticketid"])
        )
    notes = text.notes
    if answer.nested:
        notes += (
            "a single-ticket answer: its posts are read as intake; its ticket is not loaded "
            "from it (load it with --format kayako-xml, or from a ListAll export)",
        )
    return ParsedFile(
        path=path,
        format="kayako-posts",
        table=table,
        frame=frame,
        rejects=all_rejects,
        rows_read=len(answer.posts),
        sha256=answer.sha256,
        encoding=answer.encoding,
        rows_skipped=text.rows_skipped,
        notes=notes,
    )
