"""The entry point: :func:`generate` writes a seeded, realistic demo data set into one folder.

The folder holds a help-desk export in which a share of the tickets are IP change requests
handled (well or badly) according to the procedure, plus a few deliberately bad rows for the
ingest and escaping tests:

- ``tickets.csv``, ``ticket_events.csv``, ``intake.csv``, ``changes.csv`` — the canonical CSVs of
  SPEC 3.4;
- the same help desk as Kayako Classic writes it (FORMATS.md, :mod:`ipchange_core.demo.kayako`):
  ``kayako-tickets.xml`` (a REST ``ListAll`` response, live wire style) with the lookup lists
  ``departments.xml``, ``ticketstatuses.xml``, ``tickettypes.xml``, ``ticketpriorities.xml``;
  the request tickets' posts (``kayako-posts.xml``, ``TicketPost/ListAll`` answers, live wire
  style) with the agents' "cloud info" macro (:mod:`ipchange_core.demo.posts`);
  the audit log as a database export of ``ticketauditlogs`` (``ticketauditlogs.csv``; joined
  with the tickets' ``ticketmaskid`` in ``ticketauditlogs-with-masks.csv``) and as a
  KQL report (``ticket-audit-logs-report.csv``); a KQL ticket report (``tickets-report.csv``,
  and ``tickets-report-excel.csv`` in the writer's Excel-compatible mode);
- ``kayako-audit.csv`` — legacy: the changes with names in the value strings, for the current
  audit reader's tests and benchmark only (Kayako does not write this).

Everything is vectorised with numpy and written chunk by chunk (no per-cell formatting: text comes
from pools of pre-formatted strings joined row by row, see :mod:`ipchange_core.demo.text`), so
memory stays bounded by the chunk size. The same arguments always give byte-identical files.

Times are int64 epoch seconds (UTC); business hours and days come from the default policy's
:class:`~ipchange_core.business_calendar.BusinessCalendar`, wall-clock time from the zone
database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.demo.bad_rows import BadRow, BadRows
from ipchange_core.demo.kayako import (
    AUDIT_DB_HEADER,
    AUDIT_REPORT_HEADER,
    TICKET_REPORT_EXCEL_HEADER,
    TICKET_REPORT_HEADER,
    write_lookups,
)
from ipchange_core.demo.lifecycle import World
from ipchange_core.demo.posts import POSTS_FOOTER, POSTS_HEADER
from ipchange_core.demo.reference import (
    AUDIT_DB_CSV,
    AUDIT_DB_MASKS_CSV,
    AUDIT_REPORT_CSV,
    CHANGES_COLUMNS,
    CHANGES_CSV,
    CHUNKED_FILES,
    EVENTS_CSV,
    FILES,
    INTAKE_COLUMNS,
    INTAKE_CSV,
    KAYAKO_AUDIT_COLUMNS,
    KAYAKO_AUDIT_CSV,
    KAYAKO_POSTS_XML,
    KAYAKO_XML,
    LOOKUP_XMLS,
    TICKET_EVENTS_COLUMNS,
    TICKET_REPORT_CSV,
    TICKET_REPORT_EXCEL_CSV,
    TICKETS_COLUMNS,
    TICKETS_CSV,
    ZONE,
)
from ipchange_core.demo.writers import MASK_SPACE, build_chunk, mask_ids
from ipchange_core.policy import load_policy

CHUNK_SIZE = 65_536  # tickets per chunk


@dataclass(frozen=True)
class DemoDataSet:
    """What :func:`generate` wrote.

    Attributes:
        out_dir: The folder written into.
        paths: File name → path, for every file (:data:`~ipchange_core.demo.reference.FILES`).
        rows: File name → data rows written (CSV rows without the header line(s); ``<ticket>``
            elements for the ticket XML, ``<post>`` elements for the posts XML, entries for a
            lookup XML). Includes the bad rows.
        bad_rows: File name → number of rows of that file listed in ``bad``.
        bad: Every deliberately bad row, in file order. Both rows of a duplicate-key pair are
            listed (ingest rejects every copy).
        start: First local date covered (inclusive).
        end: Local date the data end at (exclusive): the "as of" instant is its midnight,
            Central time; nothing after it has happened yet.
        seed: The seed used.
    """

    out_dir: Path
    paths: Mapping[str, Path]
    rows: Mapping[str, int]
    bad_rows: Mapping[str, int]
    bad: tuple[BadRow, ...]
    start: dt.date
    end: dt.date
    seed: int

    def rejected_rows(self, file: str) -> int:
        """Number of rows of ``file`` that ingest must reject.

        Args:
            file: A file name, e.g. ``"intake.csv"``.

        Returns:
            The count of bad rows of that file whose kind is rejected.
        """
        return sum(1 for b in self.bad if b.file == file and b.rejected)


def months_before(end: dt.date, months: int) -> dt.date:
    """The same day of the month ``months`` calendar months before ``end``.

    Args:
        end: A date.
        months: Whole calendar months to go back (≥ 0).

    Returns:
        That date, clamped to the last day of a shorter month (March 31 − 1 → February 28).
    """
    y, m = divmod(end.year * 12 + end.month - 1 - months, 12)
    m += 1
    last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(end.day, last))


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    *,
    requests: int = 600,
    other_tickets: int = 2400,
    months: int = 5,
    seed: int = 7,
    end: dt.date | None = None,
    bad_rows: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DemoDataSet:
    """Write a seeded, realistic demo data set into ``out_dir``.

    Tickets are created over the ``months`` calendar months before ``end``: the half-open
    interval [``end`` − ``months`` at 00:00, ``end`` at 00:00), Central time. Every record is
    as of ``end`` 00:00: later work has not happened yet, though changes may be scheduled after
    it. ``requests`` of the tickets are IP change requests; ``other_tickets`` are ordinary
    help-desk tickets. The same arguments give byte-identical files.

    Args:
        out_dir: Folder to write into; created if missing, the files of ``FILES`` overwritten.
        requests: Number of IP change request tickets.
        other_tickets: Number of ordinary help-desk tickets.
        months: Number of calendar months covered.
        seed: Seed of the random generators.
        end: Local date (America/Chicago) the data end at, exclusive; default today.
        bad_rows: Whether to add the deliberately bad rows of :data:`BAD_ROW_KINDS`.
        progress: Called after each chunk with the number of tickets just written; the calls
            add up to ``requests + other_tickets``.

    Returns:
        The paths written, the row count of each file, and where each bad row is.

    Raises:
        ValueError: If a count is negative or ``months`` is below 1.
    """
    if requests < 0 or other_tickets < 0:
        raise ValueError("requests and other_tickets must be >= 0")
    if months < 1:
        raise ValueError("months must be >= 1")
    if end is None:
        end = dt.datetime.now(ZoneInfo(ZONE)).date()
    start = months_before(end, months)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    n = requests + other_tickets
    bounds = [*range(0, n, CHUNK_SIZE), n]
    n_chunks = len(bounds) - 1
    seeds = np.random.SeedSequence(seed).spawn(2 + n_chunks)
    rng = np.random.default_rng(seeds[0])
    calendar = BusinessCalendar.from_policy(load_policy())
    w = World(rng, calendar, start, end, max(50, requests // 2, other_tickets // 40))
    created = w.arrivals(rng, n)
    is_req = np.zeros(n, dtype=bool)
    is_req[rng.choice(n, size=requests, replace=False)] = True
    mask_offset = int(rng.integers(0, MASK_SPACE))
    bad = None
    if bad_rows and n_chunks:
        orphans = mask_ids(np.arange(n, n + 10), mask_offset)
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
        bad = BadRows(w, np.random.default_rng(seeds[1]), sizes, orphans)

    paths = {name: out_dir / name for name in FILES}
    rows = dict.fromkeys(FILES, 0)
    headers = {
        TICKETS_CSV: ",".join(TICKETS_COLUMNS) + "\n",
        EVENTS_CSV: ",".join(TICKET_EVENTS_COLUMNS) + "\n",
        INTAKE_CSV: ",".join(INTAKE_COLUMNS) + "\n",
        CHANGES_CSV: ",".join(CHANGES_COLUMNS) + "\n",
        KAYAKO_XML: '<?xml version="1.0" encoding="UTF-8"?>\n<tickets>\n',
        KAYAKO_POSTS_XML: POSTS_HEADER,
        KAYAKO_AUDIT_CSV: ",".join(KAYAKO_AUDIT_COLUMNS) + "\n",
        AUDIT_DB_CSV: AUDIT_DB_HEADER,
        AUDIT_DB_MASKS_CSV: AUDIT_DB_HEADER.replace("\n", ",ticketmaskid\n"),
        AUDIT_REPORT_CSV: AUDIT_REPORT_HEADER,
        TICKET_REPORT_CSV: TICKET_REPORT_HEADER,
        TICKET_REPORT_EXCEL_CSV: TICKET_REPORT_EXCEL_HEADER,
    }
    rows.update(write_lookups({name: paths[name] for name in LOOKUP_XMLS}))
    with contextlib.ExitStack() as stack:
        out = {
            name: stack.enter_context(paths[name].open("w", encoding="utf-8", newline=""))
            for name in CHUNKED_FILES
        }
        for name, header in headers.items():
            out[name].write(header)
        for c in range(n_chunks):
            lo, hi = bounds[c], bounds[c + 1]
            chunk_rng = np.random.default_rng(seeds[2 + c])
            chunk = build_chunk(
                w,
                chunk_rng,
                np.arange(lo, hi),
                created[lo:hi],
                is_req[lo:hi],
                mask_offset,
                rows[AUDIT_DB_CSV] + 1,
            )
            if bad is not None:
                bad.apply(c, chunk, rows, last=c == n_chunks - 1)
            for name, chunk_rows in chunk.rows.items():
                out[name].write(chunk_rows.text())
                rows[name] += chunk_rows.n
            if progress is not None:
                progress(hi - lo)
        out[KAYAKO_XML].write("</tickets>\n")
        out[KAYAKO_POSTS_XML].write(POSTS_FOOTER)

    placed = tuple(sorted(bad.placed, key=lambda b: (FILES.index(b.file), b.row))) if bad else ()
    return DemoDataSet(
        out_dir=out_dir,
        paths=MappingProxyType(paths),
        rows=MappingProxyType(rows),
        bad_rows=MappingProxyType({f: sum(b.file == f for b in placed) for f in FILES}),
        bad=placed,
        start=start,
        end=end,
        seed=seed,
    )
