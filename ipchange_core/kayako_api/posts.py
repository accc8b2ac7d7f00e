"""The posts a pull fetches: those of the IP change requests among the new or changed tickets.

Kayako answers posts one ticket at a time (``/Tickets/TicketPost/ListAll/$ticketid$``) and has
no "posts since" list. It needs none: a post makes its time the ticket's ``lastactivity``, so
the tickets an incremental pull pages through already hold every ticket with a new post. Of
those, the pull asks for the posts of the IP change requests only (a help desk of a million
tickets costs a few thousand calls), by the product's own rule (:func:`requested`), and only
of the tickets that are new or changed (:func:`fresh_tickets`): a ticket stored with the same
``lastactivity`` had its posts read by the pull that stored it. The first pull, and a pull with
``--since``, read the posts of every request they page through.

The answers are written as one ``<posts>`` document in the live wire style (as Kayako writes
it, :mod:`.documents`) and loaded through the posts reader as intake, in the pull's
transaction. A ticket deleted after its page was read answers 404 "Ticket not Found": counted,
not fatal. Any other failure, or an answer that is not a ``<posts>`` document, stops the pull
before anything is loaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select, union

from ipchange_core import store
from ipchange_core.ingest import read_file
from ipchange_core.ingest.kayako_posts import POSTS_ROOT
from ipchange_core.kayako_api.client import KayakoClient, KayakoNotFound
from ipchange_core.kayako_api.documents import write_posts, write_tickets
from ipchange_core.kayako_api.paging import PageTicket
from ipchange_core.policy import KayakoLookups, PolicySet
from ipchange_core.requests import recognised_tickets
from ipchange_core.store.connection import reading

POSTS_ENDPOINT = "/Tickets/TicketPost/ListAll/"
"""The endpoint of one ticket's posts; the internal ticket id follows (FORMATS.md 1)."""

TICKET_NOT_FOUND = "ticket not found"
"""Kayako's 404 text for a ticket that is not there (compared ignoring case)."""

_IDS_PER_QUERY = 10_000
"""Ticket ids one ``IN (…)`` query looks up (SQLite allows 32,766 parameters)."""


@dataclass
class PostsFetched:
    """What a pull asked for posts, and what came back.

    Attributes:
        considered: Tickets whose posts may be new: those new or changed since stored (every
            ticket pulled when ``every``).
        every: The first pull, or ``--since``: every pulled ticket was considered.
        requests: Internal ids of the IP change requests among them, whose posts were asked.
        posts: Posts written into the document.
        gone: Internal ids answered 404 "Ticket not Found" (deleted after their page was read).
        path: The ``<posts>`` document, ``None`` when no answer came (nothing to load).
    """

    considered: int = 0
    every: bool = False
    requests: list[str] = field(default_factory=list)
    posts: int = 0
    gone: list[str] = field(default_factory=list)
    path: Path | None = None


def fresh_tickets(
    engine: Engine, tickets: Iterable[PageTicket], *, every: bool
) -> list[PageTicket]:
    """The pulled tickets not stored with the same ``lastactivity`` (all of them if ``every``).

    A stored ticket's ``updated_at`` is its ``lastactivity``; stored tickets are found by
    Kayako's internal id (indexed), a few thousand at a time.
    """
    tickets = list(tickets)
    if every:
        return tickets
    stored = store.Ticket.__table__
    query = select(stored.c.kayako_id, stored.c.updated_at)
    ids = [t.id for t in tickets if t.id]
    known: dict[str, int | None] = {}
    with reading(engine) as conn:
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            for kayako_id, at in conn.execute(query.where(stored.c.kayako_id.in_(chunk))):
                known[kayako_id] = None if at is None else int(at.timestamp())
    return [t for t in tickets if t.lastactivity is None or known.get(t.id) != t.lastactivity]


def requested(
    engine: Engine,
    tickets: Sequence[PageTicket],
    policy: PolicySet,
    lookups: KayakoLookups,
    folder: Path,
) -> list[str]:
    """The internal ids of the tickets that are IP change requests, ascending.

    The tickets are read as a ticket XML document is (``kayako-xml`` with ``lookups``: the
    lists this pull fetched), and judged as :func:`ipchange_core.requests.assemble` judges
    tickets: recognised by the request filter of the policy version in force at their creation
    (:func:`~ipchange_core.requests.recognised_tickets`), or holding a stored intake or change
    record. A ticket the reader rejects is not asked for (it is not loaded either).

    Args:
        engine: The pull's database.
        tickets: The tickets to judge.
        policy: The policy (its request filters and time zone).
        lookups: The help desk's id → name tables (its ticket types).
        folder: Where the tickets' document is written to be read (the pull's temporary one).
    """
    if not tickets:
        return []
    path = folder / "requests-candidates.xml"
    write_tickets(path, tickets)
    recorded = _recorded(engine)
    wanted: list[str] = []
    with read_file(
        path, format="kayako-xml", tz=policy.latest.timezone, kayako=lookups, spill=True
    ) as parsed:
        for frame in parsed.blocks():
            hits = recognised_tickets(frame, policy) | frame["ticket_id"].isin(recorded)
            wanted += frame["kayako_id"].to_numpy(dtype=object)[hits.to_numpy(bool)].tolist()
    path.unlink()
    return sorted((i for i in wanted if i.isdigit()), key=int)


def _recorded(engine: Engine) -> set[str]:
    """The ticket ids that have a stored intake or change record."""
    intake, changes = store.Intake.__table__, store.Change.__table__
    query = union(select(intake.c.ticket_id), select(changes.c.ticket_id))
    with reading(engine) as conn:
        return set(conn.execute(query).scalars())


def fetch_posts(
    client: KayakoClient,
    ids: Sequence[str],
    path: Path,
    *,
    on_answer: Callable[[int, int], None] | None = None,
) -> tuple[int, list[str]]:
    """Ask for the posts of tickets ``ids`` and write them as one ``<posts>`` document.

    Each answer's ``<post>`` elements are written as they arrive (memory holds one answer).

    Args:
        client: The pull's client.
        ids: Kayako's internal ticket ids.
        path: The document to write.
        on_answer: Called after each answer with the answers so far and ``len(ids)``.

    Returns:
        The posts written, and the ids answered 404 "Ticket not Found".

    Raises:
        KayakoApiError: A request failed for good (another 404 too: an unknown endpoint), or an
            answer is not a ``<posts>`` document.
    """
    gone: list[str] = []

    def answers() -> Iterable:
        for done, ticket in enumerate(ids, start=1):
            try:
                yield client.document(POSTS_ENDPOINT + ticket, POSTS_ROOT)[1]
            except KayakoNotFound as err:
                if err.reason.strip().lower() != TICKET_NOT_FOUND:
                    raise
                gone.append(ticket)
            if on_answer is not None:
                on_answer(done, len(ids))

    return write_posts(path, answers()), gone
