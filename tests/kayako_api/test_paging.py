"""Overlapping pages against a list that shifts between requests, and a reference that does not."""

from __future__ import annotations

import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ipchange_core.kayako_api.paging import PageTicket, page_all, page_overlap


class ShiftingList:
    """Kayako's ``ListAll`` sorted by lastactivity DESC (ties: id DESC), changed between pages.

    ``changes`` holds, per page already answered, the deletions (among the tickets answered so
    far: those shift the rest up), touches and additions that happen before the next request.
    """

    def __init__(self, activity: dict[int, int], changes: list[tuple]) -> None:
        self.activity = dict(activity)
        self.changes = list(changes)
        self.clock = max(activity.values(), default=0)
        self.touched: set[int] = set()
        self.deleted: set[int] = set()
        self.served = 0  # the end of the last page answered

    def order(self) -> list[int]:
        return sorted(self.activity, key=lambda i: (self.activity[i], i), reverse=True)

    def fetch(self, count: int, start: int) -> list[PageTicket]:
        page = [
            PageTicket(str(i), self.activity[i], f"<ticket id='{i}' a='{self.activity[i]}'/>")
            for i in self.order()[start : start + count]
        ]
        self.served = start + len(page)
        if self.changes:
            self.apply(*self.changes.pop(0))
        return page

    def apply(self, delete: list[int], touch: list[int], add: int) -> None:
        ids = self.order()
        for k in delete:  # tickets already read: the list shifts up under the reader
            if ids and self.served:
                gone = ids[k % min(len(ids), self.served)]
                self.activity.pop(gone, None)
                self.deleted.add(gone)
        for k in touch:
            if ids:
                moved = ids[k % len(ids)]
                if moved in self.activity:
                    self.clock += 1
                    self.activity[moved] = self.clock
                    self.touched.add(moved)
        for _ in range(add):
            self.clock += 1
            new = max([*self.activity, *self.deleted, 0]) + 1
            self.activity[new] = self.clock
            self.touched.add(new)


def reference(activity: dict[int, int]) -> dict[str, int]:
    """What a pull of a list that stands still reads: everything."""
    return {str(i): a for i, a in activity.items()}


changes = st.lists(
    st.tuples(
        st.integers(0, 12).flatmap(
            lambda n: st.lists(st.integers(0, 10_000), min_size=n, max_size=n)
        ),
        st.lists(st.integers(0, 10_000), max_size=4),
        st.integers(0, 3),
    ),
    max_size=30,
)


activities = st.lists(st.integers(0, 60), min_size=30, max_size=200).map(
    lambda times: {i: a for i, a in enumerate(times, start=1)}
)


@settings(max_examples=150)
@given(activities, st.integers(2, 40), changes)
@example({i: i for i in range(1, 101)}, 10, [(list(range(8)), [], 0)])  # 8 read ones deleted
def test_no_ticket_present_throughout_is_lost(activity, page_size, between_pages):
    helpdesk = ShiftingList(activity, between_pages)
    paged = page_all(helpdesk.fetch, page_size=page_size)
    read = {i: t.lastactivity for i, t in paged.tickets.items()}
    untouched = {
        str(i): a
        for i, a in activity.items()
        if i not in helpdesk.deleted and i not in helpdesk.touched
    }
    for ticket_id, last in untouched.items():
        assert read.get(ticket_id) == last, ticket_id
    # and the next pull (the list standing still), back to the mark less an overlap, completes
    # the picture
    helpdesk.changes.clear()
    mark = max((a for a in read.values() if a is not None), default=None)
    again = page_all(
        helpdesk.fetch, page_size=page_size, stop_before=None if mark is None else mark - 1
    )
    merged = {**read, **{i: t.lastactivity for i, t in again.tickets.items()}}
    for ticket_id, last in reference(helpdesk.activity).items():
        assert merged.get(ticket_id) == last, ticket_id


@settings(max_examples=60)
@given(st.dictionaries(st.integers(1, 300), st.integers(0, 30), max_size=120), st.integers(2, 50))
def test_a_list_that_stands_still_is_read_whole_once_per_page(activity, page_size):
    helpdesk = ShiftingList(activity, [])
    paged = page_all(helpdesk.fetch, page_size=page_size)
    assert {i: t.lastactivity for i, t in paged.tickets.items()} == reference(activity)
    assert paged.steps_back == 0
    step = page_size - page_overlap(page_size)
    # a full page may be the last: only the next, shorter one says so
    full = len(activity) >= page_size
    assert paged.pages == ((len(activity) - page_size) // step + 2 if full else 1)


def test_paging_stops_after_a_page_wholly_before_the_mark():
    activity = {i: i for i in range(1, 101)}  # ticket i was last active at i
    helpdesk = ShiftingList(activity, [])
    starts = []

    def fetch(count, start):
        starts.append(start)
        return helpdesk.fetch(count, start)

    paged = page_all(fetch, page_size=10, stop_before=80)
    # pages of 10 overlapping by 5: 100–91, 95–86, 90–81, 85–76 (76–79 before the mark but not
    # the whole page), 80–71, 75–66 (wholly before 80): stop
    assert starts == [0, 5, 10, 15, 20, 25]
    assert paged.stopped_early
    assert min(t.lastactivity for t in paged.tickets.values()) == 66


def test_the_latest_copy_of_a_ticket_is_kept():
    pages = iter(
        [
            [PageTicket("7", 50, "new"), PageTicket("6", 40, "a"), PageTicket("5", 35, "c")],
            [PageTicket("6", 40, "b"), PageTicket("7", 30, "old")],
        ]
    )
    paged = page_all(lambda count, start: next(pages), page_size=3)
    assert paged.tickets["7"].xml == "new"
    assert paged.tickets["6"].xml == "b"  # equal activity: the copy read last


def test_a_page_size_below_two_is_refused():
    with pytest.raises(ValueError, match="at least 2"):
        page_all(lambda count, start: [], page_size=1)


def test_a_list_that_keeps_shifting_ends_with_an_error():
    rng = random.Random(1)

    def fetch(count, start):  # every answer is new tickets: nothing is ever shared
        return [PageTicket(str(rng.random()), 1, "") for _ in range(count)]

    with pytest.raises(RuntimeError, match="kept shifting"):
        page_all(fetch, page_size=5)


def test_tickets_without_an_id_are_all_kept_for_the_reader_to_reject():
    page = [
        PageTicket("", 5, "<ticket a/>"),
        PageTicket("", 5, "<ticket b/>"),
        PageTicket("3", 1, ""),
    ]
    paged = page_all(lambda count, start: page, page_size=5)
    assert sorted(t.xml for t in paged.tickets.values()) == ["", "<ticket a/>", "<ticket b/>"]
