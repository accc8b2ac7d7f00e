"""``ipchange pull kayako``: fetch lookups, changed tickets and requests' posts; load as files.

A pull fetches everything first, into a temporary folder: the four lookup lists as received,
then ``ListAll`` over every department of the tickets module with every status id (``-1`` would
leave resolved tickets out, FORMATS.md 1), newest activity first, as one ``<tickets>`` document
(:mod:`.documents`), then the posts of the IP change requests among the new or changed tickets
as one ``<posts>`` document (:mod:`.posts`). Nothing is loaded until every answer has arrived
and is a Kayako document. Then the documents load through the ingest path
(``pipeline.load_documents``; the posts as intake from the cloud-info macro) in one transaction
that also moves the help desk's mark (:mod:`ipchange_core.store.pull_marks`): a pull killed at
any point leaves the database as it was, or fully loaded.

The first pull reads every ticket. A later one stops after a page whose tickets all have
``lastactivity`` before the mark minus :data:`SAFETY_OVERLAP_SECONDS`; ``--since`` reads back to
a date instead. The API has no audit log: the result says when the pulled period has tickets
but no audit rows.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, func, select

from ipchange_core import store
from ipchange_core.ingest import ParsedFile
from ipchange_core.ingest.kayako_lookups import LOOKUP_LISTS, read_lookups
from ipchange_core.kayako_api.client import KayakoClient, RetryPolicy, shown_url
from ipchange_core.kayako_api.credentials import Credentials
from ipchange_core.kayako_api.documents import page_tickets, write_tickets
from ipchange_core.kayako_api.paging import Paged, PageTicket, page_all
from ipchange_core.kayako_api.posts import PostsFetched, fetch_posts, fresh_tickets, requested
from ipchange_core.policy import PolicySet
from ipchange_core.store.connection import reading

SAFETY_OVERLAP_SECONDS = 3600
"""Seconds before the mark that a later pull still reads: tickets whose activity was recorded
with an earlier time than one already pulled (clocks, a pull that ran meanwhile) are not lost.
"""

LOOKUP_ENDPOINTS = {
    "departments": "/Base/Department",
    "ticketstatuses": "/Tickets/TicketStatus",
    "tickettypes": "/Tickets/TicketType",
    "ticketpriorities": "/Tickets/TicketPriority",
}
"""Root element of each lookup list → the endpoint that answers it (FORMATS.md 1, 3)."""


@dataclass(frozen=True)
class PullResult:
    """What a pull fetched and loaded.

    Attributes:
        url: The API URL as shown (no query, no user info); the mark's key.
        loads: Each document's load counts and parsed file: the four lookup lists, then the
            tickets, then the posts (when any were fetched).
        paged: The tickets fetched and how the paging went.
        posts: The posts asked for and fetched.
        requests: HTTP requests made (retries included).
        mark_before: The mark before the pull (Unix epoch seconds, UTC); ``None`` at the first.
        mark_after: The mark after it.
        stop_before: Paging stopped at a page wholly older than this (epoch seconds); ``None``
            when every ticket was read.
        first_activity: The earliest ``lastactivity`` of the tickets fetched (``None``: none).
        audit_rows: Audit rows (``ticket_events``) stored from ``first_activity`` to the mark.
    """

    url: str
    loads: list[tuple[store.LoadResult, ParsedFile]]
    paged: Paged
    posts: PostsFetched
    requests: int
    mark_before: int | None
    mark_after: int | None
    stop_before: int | None
    first_activity: int | None
    audit_rows: int

    @property
    def tickets(self) -> store.LoadResult:
        """The counts of the tickets document."""
        return next(result for result, _ in self.loads if result.table == "tickets")

    @property
    def intake(self) -> store.LoadResult | None:
        """The counts of the posts document (its records are intake); ``None``: none fetched."""
        return next((result for result, _ in self.loads if result.table == "intake"), None)

    @property
    def changed(self) -> bool:
        """Whether any row of any document was inserted or updated."""
        return any(result.inserted or result.updated for result, _ in self.loads)


def since_epoch(since: dt.date, tz: str) -> int:
    """Local midnight starting ``since`` in ``tz``, as Unix epoch seconds."""
    return int(dt.datetime.combine(since, dt.time(), ZoneInfo(tz)).timestamp())


def _document_name(url: str, root: str) -> str:
    """``kayako-<host>[-<port>]-<root>.xml``: the name a pulled document is loaded under."""
    parts = urlsplit(url)
    host = (parts.hostname or "helpdesk") + (f"-{parts.port}" if parts.port else "")
    return f"kayako-{host}-{root}.xml"


def pull_kayako(
    engine: Engine,
    url: str,
    credentials: Credentials,
    policy: PolicySet,
    *,
    page_size: int,
    since: dt.date | None = None,
    retry: RetryPolicy | None = None,
    on_page: Callable[[Paged, int], None] | None = None,
    on_posts: Callable[[int, int], None] | None = None,
) -> PullResult:
    """Pull a help desk's lookups, changed tickets and requests' posts; load them (module doc).

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        url: The API URL, ``https://helpdesk.example.com/api/index.php``.
        credentials: The API key and secret key.
        policy: Its latest version reads the documents (time zone, fallback lookups).
        page_size: Tickets per ``ListAll`` request (at least 2).
        since: Read back to local midnight of this date (policy zone) instead of the mark.
        retry: Timeouts and retries (:class:`RetryPolicy` defaults when ``None``).
        on_page: Called after each page (progress).
        on_posts: Called after each posts answer with the answers so far and those to come.

    Raises:
        KayakoApiError: A request failed for good, or an answer was not a Kayako document;
            nothing was loaded.
        InvalidInputError: A lookup list cannot be read (nothing was loaded).
        IpchangeError: The database refused the load (nothing was written).
    """
    from ipchange_core.pipeline import load_documents  # pipeline imports the readers

    key = shown_url(url)
    mark = store.pull_mark(engine, key)
    tz = policy.latest.timezone
    if since is not None:
        stop_before: int | None = since_epoch(since, tz)
    else:
        stop_before = None if mark is None else mark - SAFETY_OVERLAP_SECONDS
    with (
        tempfile.TemporaryDirectory(prefix="ipchange-pull-") as folder,
        KayakoClient(url, credentials, retry=retry) as client,
    ):
        fetched = _fetch(client, Path(folder), page_size, stop_before, on_page)
        paged = fetched.paged
        times = [t.lastactivity for t in paged.tickets.values() if t.lastactivity is not None]
        latest = max(times, default=None)
        every = mark is None or since is not None
        posts = _fetch_posts(engine, client, fetched, policy, every=every, on_answer=on_posts)

        def advance(conn: Connection, result: store.LoadResult) -> None:
            if latest is not None:
                store.advance_mark(conn, key, latest, manifest_id=result.manifest_id)

        loads = load_documents(
            engine, fetched.lookups, fetched.tickets, policy, posts=posts.path, within=advance
        )
        requests = client.requests
    first = min(times, default=None)
    mark_after = store.pull_mark(engine, key)
    return PullResult(
        url=key,
        loads=loads,
        paged=paged,
        posts=posts,
        requests=requests,
        mark_before=mark,
        mark_after=mark_after,
        stop_before=stop_before,
        first_activity=first,
        audit_rows=0 if first is None else _audit_rows(engine, first, latest),
    )


@dataclass(frozen=True)
class _Fetched:
    """A pull's documents in its folder: the lookup lists, the tickets, and how paging went."""

    lookups: list[Path]
    tickets: Path
    paged: Paged


def _fetch(
    client: KayakoClient,
    folder: Path,
    page_size: int,
    stop_before: int | None,
    on_page: Callable[[Paged, int], None] | None,
) -> _Fetched:
    """Fetch the lookup lists (written as received) and the tickets (one document) to ``folder``.

    Raises:
        KayakoApiError: A request failed for good, or an answer was not a Kayako document.
    """
    lookups: dict[str, Path] = {}
    roots: dict[str, ET.Element] = {}
    for root, endpoint in LOOKUP_ENDPOINTS.items():
        body, roots[root] = client.document(endpoint, root)
        lookups[root] = folder / _document_name(client.url, root)
        lookups[root].write_bytes(body)
    departments = _ids(roots["departments"], LOOKUP_LISTS["departments"], tickets_only=True)
    statuses = _ids(roots["ticketstatuses"], LOOKUP_LISTS["ticketstatuses"])

    def fetch(count: int, start: int) -> list[PageTicket]:
        endpoint = (
            f"/Tickets/Ticket/ListAll/{','.join(departments)}/{','.join(statuses)}"
            f"/-1/-1/{count}/{start}/lastactivity/DESC"
        )
        return page_tickets(client.document(endpoint, "tickets")[1])

    if departments and statuses:
        paged = page_all(fetch, page_size=page_size, stop_before=stop_before, on_page=on_page)
    else:  # no ticket department or no status: Kayako answers nothing
        paged = Paged()
    tickets = folder / _document_name(client.url, "tickets")
    write_tickets(tickets, paged.tickets.values())
    return _Fetched(list(lookups.values()), tickets, paged)


def _fetch_posts(
    engine: Engine,
    client: KayakoClient,
    fetched: _Fetched,
    policy: PolicySet,
    *,
    every: bool,
    on_answer: Callable[[int, int], None] | None,
) -> PostsFetched:
    """Fetch the posts of the IP change requests among the fetched tickets (:mod:`.posts`).

    Only of the tickets new or changed since stored, or of every one with ``every``; into one
    ``<posts>`` document beside the tickets.

    Raises:
        KayakoApiError: A request failed for good, or an answer was not a ``<posts>`` document.
    """
    fresh = fresh_tickets(engine, fetched.paged.tickets.values(), every=every)
    lists = {lookup.kind: lookup.rows for lookup in map(read_lookups, fetched.lookups)}
    names = store.named_lookups(lists, policy.latest.kayako)
    folder = fetched.tickets.parent
    posts = PostsFetched(considered=len(fresh), every=every)
    posts.requests = requested(engine, fresh, policy, names, folder)
    if posts.requests:
        path = folder / _document_name(client.url, "posts")
        posts.posts, posts.gone = fetch_posts(client, posts.requests, path, on_answer=on_answer)
        if len(posts.gone) < len(posts.requests):
            posts.path = path
    return posts


def _ids(root: ET.Element, item: str, *, tickets_only: bool = False) -> list[str]:
    """The ids of a lookup list's entries, in its order, once each.

    With ``tickets_only``, only departments of the tickets module (or of no module named).
    """
    ids: list[str] = []
    for entry in root.iter(item):
        text = (entry.findtext("id") or "").strip()
        module = (entry.findtext("module") or "").strip()
        wanted = not tickets_only or module in ("", "tickets")
        if wanted and text.isdigit() and text not in ids:
            ids.append(text)
    return ids


def _audit_rows(engine: Engine, first: int, last: int) -> int:
    """Stored audit rows (``ticket_events``) from epoch ``first`` to ``last`` (both included)."""
    events = store.TicketEvent.__table__
    start = dt.datetime.fromtimestamp(first, dt.UTC)
    end = dt.datetime.fromtimestamp(last, dt.UTC)
    with reading(engine) as conn:
        return conn.execute(
            select(func.count()).select_from(events).where(events.c.at.between(start, end))
        ).scalar_one()


def _local(epoch: int, tz: str) -> str:
    return dt.datetime.fromtimestamp(epoch, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M %Z")


def pull_summary(result: PullResult, tz: str) -> list[str]:
    """The lines that end a pull's output: what was read, whether anything changed, the audit.

    Times are local in ``tz``.
    """
    paged = result.paged
    if result.stop_before is None:
        window = "every ticket"
    elif result.mark_before is not None and result.stop_before < result.mark_before:
        window = f"back to {_local(result.stop_before, tz)} (the mark less the safety overlap)"
    else:
        window = f"back to {_local(result.stop_before, tz)}"
    back = f", {paged.steps_back} read again (the list shifted)" if paged.steps_back else ""
    lines = [
        f"pulled {len(paged.tickets)} ticket(s) in {paged.pages} page(s){back}, "
        f"{result.requests} request(s), {window}, from {result.url}"
    ]
    lines.append(posts_summary(result))
    if not result.changed:
        lines.append("nothing new: every row pulled is stored as it is; no row changed")
    if result.mark_after is not None:
        lines.append(f"mark: latest activity {_local(result.mark_after, tz)}")
    tickets = result.tickets.read - result.tickets.rejected
    if tickets and result.audit_rows == 0 and result.first_activity is not None:
        lines.append(
            f"no audit rows from {_local(result.first_activity, tz)} on: routing time stays "
            "unknown for these tickets until Kayako's audit log is loaded (the API has none; "
            "`ipchange ingest` its report or database export, see the README)"
        )
    return lines


def posts_summary(result: PullResult) -> str:
    """The summary line of the posts: asked, fetched, gone, intake records loaded and rejected."""
    posts = result.posts
    among = (
        f"{posts.considered} ticket(s) pulled"
        if posts.every
        else f"{posts.considered} new or changed ticket(s)"
    )
    if not posts.requests:
        return f"posts: none asked for: no IP change request among the {among}"
    line = (
        f"posts: {posts.posts} post(s) of {len(posts.requests)} IP change request(s) among the "
        f"{among}"
    )
    if posts.gone:
        line += (
            f"; {len(posts.gone)} ticket(s) gone meanwhile (404 Ticket not Found), their posts "
            "not read"
        )
    intake = result.intake
    if intake is not None:
        loaded = intake.inserted + intake.updated + intake.unchanged
        line += (
            f"; intake records: {loaded} loaded (inserted {intake.inserted} + updated "
            f"{intake.updated} + unchanged {intake.unchanged}), {intake.rejected} rejected"
        )
    return line
