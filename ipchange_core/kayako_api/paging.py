"""``ListAll`` page by page, newest activity first, losing no ticket when the list shifts.

Kayako pages by ``LIMIT``/``OFFSET`` (``$count$``/``$start$``). A ticket deleted, or one already
read that changes, between two requests shifts every later ticket up by one: a plain offset
then skips one. So consecutive pages overlap by :data:`PAGE_OVERLAP` tickets; a page that shares
no ticket with the pages read on from may have a gap before it, and paging steps back a page
and reads on from there once a page shares one (its tickets are kept either way: an untouched
ticket keeps its place behind those read before it, so a shared one proves there is no gap).
A ticket whose activity moves it to the top meanwhile is newer than what this pull read, and
the next pull reads it (its ``lastactivity`` is past the mark).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

DEFAULT_PAGE_SIZE = 250
"""Tickets per ``ListAll`` request unless ``--page-size`` says otherwise."""

PAGE_OVERLAP = 5
"""Tickets each page repeats of the one before (fewer for pages of at most this many)."""

MAX_STEPS_BACK = 100
"""Steps back one pull may take before it gives up on a list that keeps shifting."""


@dataclass(frozen=True)
class PageTicket:
    """One ticket of a page: Kayako's internal id, its ``lastactivity`` and its XML.

    Attributes:
        id: The ``id`` attribute as written (Kayako's internal ticket id).
        lastactivity: Unix epoch seconds, UTC; ``None`` when not a whole number (the reader
            then rejects the ticket; paging treats it as new).
        xml: The ``<ticket>`` element as written into the pull's document.
    """

    id: str
    lastactivity: int | None
    xml: str


@dataclass
class Paged:
    """The tickets of a paging run, by id (the latest copy of each), and how it went.

    Attributes:
        tickets: Id → the copy with the latest ``lastactivity`` (of equals, the last read).
        pages: Pages requested.
        steps_back: Pages read again because the next one shared no ticket with those read.
        stopped_early: Paging stopped at a page wholly older than ``stop_before``.
    """

    tickets: dict[str, PageTicket] = field(default_factory=dict)
    pages: int = 0
    steps_back: int = 0
    stopped_early: bool = False

    def keep(self, page: Sequence[PageTicket]) -> None:
        """Keep each ticket of ``page`` unless a copy with later activity was kept before.

        A ticket without an id is kept by its XML (the reader rejects it as a row).
        """
        for ticket in page:
            key = ticket.id or f"(no id) {ticket.xml}"
            before = self.tickets.get(key)
            if before is None or (ticket.lastactivity or 0) >= (before.lastactivity or 0):
                self.tickets[key] = ticket


def page_overlap(page_size: int) -> int:
    """Tickets consecutive pages of ``page_size`` share: :data:`PAGE_OVERLAP`, < page_size."""
    if page_size < 2:
        raise ValueError(f"a page holds at least 2 tickets, got {page_size}")
    return min(PAGE_OVERLAP, page_size - 1)


def page_all(
    fetch: Callable[[int, int], Sequence[PageTicket]],
    *,
    page_size: int,
    stop_before: int | None = None,
    on_page: Callable[[Paged, int], None] | None = None,
) -> Paged:
    """Read every page of a list sorted by ``lastactivity`` descending.

    Args:
        fetch: ``fetch(count, start)`` → the tickets at offsets ``start`` … ``start+count-1``.
        page_size: Tickets per request (at least 2).
        stop_before: Stop after a page whose tickets all have ``lastactivity`` before this
            (Unix epoch seconds, UTC); ``None`` reads to the end.
        on_page: Called after each page with the state so far and the page's size.

    Returns:
        The tickets read and the counts.

    Raises:
        RuntimeError: More than :data:`MAX_STEPS_BACK` steps back (the list keeps shifting).
    """
    step = page_size - page_overlap(page_size)
    paged = Paged()
    accepted: set[str] = set()  # tickets of the pages read on from (not those of a page left)
    start = 0
    while True:
        page = fetch(page_size, start)
        paged.pages += 1
        shares = any(ticket.id in accepted for ticket in page)
        paged.keep(page)
        if on_page is not None:
            on_page(paged, len(page))
        if start > 0 and not shares:  # tickets before it shifted away: a gap may lie behind
            paged.steps_back += 1
            if paged.steps_back > MAX_STEPS_BACK:
                raise RuntimeError(
                    f"the ticket list kept shifting: {MAX_STEPS_BACK} pages read again"
                )
            start = max(0, start - step)
            continue
        accepted.update(ticket.id for ticket in page)
        if len(page) < page_size:
            return paged
        if stop_before is not None and all(
            t.lastactivity is not None and t.lastactivity < stop_before for t in page
        ):
            paged.stopped_early = True
            return paged
        start += step
