"""Which tickets are IP change requests, and one joined row per request from the four tables."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.policy import PolicySet, RequestFilter
from ipchange_core.schema import TABLES, TIMESTAMP_DTYPE
from ipchange_core.textops import per_unique

try:  # private modules of CPython 3.11+ (sre_parse before): no public parser of patterns
    import re._constants as _sre
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover - an interpreter without them: no SQL prefilter
    _sre = _sre_parse = None  # type: ignore[assignment]

INTAKE_COLUMNS = (
    "channel",
    "requester_type",
    "site",
    "reseller",
    "contact_name",
    "contact_phone",
    "person_of_record",
    "reason",
    "current_ip",
    "new_ip",
    "requested_asap",
    "ticket_number_given",
    "transferred_to_queue",
    "agent",
    "source",
    "overrides",
)
CHANGE_COLUMNS = tuple(c.name for c in TABLES["changes"] if c.name != "ticket_id")
TICKET_COLUMNS = ("subject", "department", "status", "owner", "creator", "tags", "created_at")
ASSEMBLED_COLUMNS: dict[str, tuple[str, ...]] = {
    "tickets": ("ticket_id", *TICKET_COLUMNS, "account", "ticket_type"),
    "ticket_events": ("ticket_id", "at", "field", "old_value", "new_value"),
    "intake": ("ticket_id", "received_at", "requested_change_at", "account", *INTAKE_COLUMNS),
    "changes": ("ticket_id", *CHANGE_COLUMNS),
}
"""The columns of each typed canonical frame that :func:`assemble` reads (so
:func:`ipchange_core.evaluation.evaluate` needs no other): not the requester, ``updated_at``,
``actor``."""


def filter_matcher(request_filter: RequestFilter) -> Callable[[str, str, str], bool]:
    """The request filter as one predicate of a ticket's ``(ticket_type, tags, subject)``.

    True when the type is one of the filter's ticket types (exact), one of the comma-separated
    tags is one of the filter's tags (case-insensitive, surrounding spaces ignored), or the
    subject matches the subject pattern (Python ``re.search``). Each distinct tags and subject
    value is matched once. This is the one definition of the filter: :func:`recognised_tickets`
    applies it to frames, :func:`ipchange_core.store.read_frames` inside the database.
    """
    types, by_tags, by_subject = _tests(request_filter)

    def matches(ticket_type: str, tags: str, subject: str) -> bool:
        return ticket_type in types or by_tags(tags) or by_subject(subject)

    return matches


def _tag_pattern(f: RequestFilter) -> str:
    """One of the comma-separated tags is one of the filter's tags (any case, spaces ignored)."""
    any_tag = "|".join(re.escape(tag) for tag in f.tags) or "(?!)"
    return rf"(?i)(?:^|,)\s*(?:{any_tag})\s*(?:,|$)"


@functools.cache
def _tests(
    f: RequestFilter,
) -> tuple[frozenset[str], Callable[[str], bool], Callable[[str], bool]]:
    """The filter's ticket types, and cached tests of one tags value and of one subject."""
    tags = re.compile(_tag_pattern(f)).search
    subject = re.compile(f.subject_pattern).search
    return (
        frozenset(f.ticket_types),
        functools.lru_cache(maxsize=1 << 12)(lambda text: tags(text) is not None),
        functools.lru_cache(maxsize=1 << 16)(lambda text: subject(text) is not None),
    )


CASE_TWINS = {"i": "\u0130\u0131", "k": "\u212a", "s": "\u017f"}
"""Non-ASCII characters that a case-insensitive ``re`` pattern matches to an ASCII letter."""

_MAX_TERMS = 32  # alternatives a prefilter tracks before it gives up narrowing (stays a superset)
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT) if _sre else ()

Needs = frozenset[frozenset[str]]
"""Texts a value must contain, as alternatives: any one set of literals, all of that set."""
_ANYTHING: Needs = frozenset({frozenset()})


@dataclass(frozen=True)
class Prefilter:
    """A superset of a request filter that SQL can test without Python (never drops a request).

    A ticket can match the filter only if its ticket type is one of ``ticket_types`` (exact),
    or its tags contain, for one set of ``tags``, every literal of that set, or its subject
    likewise for ``subject``. "Contain" ignores the case of ASCII letters and also accepts the
    letters' :data:`CASE_TWINS` (see :func:`char_variants`); SQL may test more loosely still.
    """

    ticket_types: frozenset[str]
    tags: Needs
    subject: Needs


def char_variants(char: str) -> str:
    """The characters a case-insensitive pattern may match for ASCII ``char`` (``char`` first)."""
    lower = char.lower()
    return "".join(dict.fromkeys(char + lower + char.upper() + CASE_TWINS.get(lower, "")))


@functools.cache
def filter_prefilter(request_filter: RequestFilter) -> Prefilter | None:
    """The request filter's :class:`Prefilter`, or None when any ticket may match it.

    Literals are read from the tags test and from the subject pattern of :func:`filter_matcher`
    (parsed by Python's own ``re`` parser): what every ``re.search`` match must contain.
    """
    types, _, _ = _tests(request_filter)
    tags = _needs_of(_tag_pattern(request_filter)) if request_filter.tags else frozenset()
    subject = _needs_of(request_filter.subject_pattern)
    if _ANYTHING in (tags, subject):
        return None
    return Prefilter(types, tags, subject)


def _needs_of(pattern: str) -> Needs:
    """What every match of ``pattern`` must contain, read from CPython's private ``re`` parser.

    Without that parser (another interpreter, a future CPython) nothing is narrowed: every
    ticket goes to the exact filter, slower but the same result. tests/test_requests.py pins
    the parser's shape on every interpreter the suite runs on, and fails loudly where it changed.
    """
    if _sre_parse is None:
        return _ANYTHING
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:  # filter_matcher refuses it anyway: narrow nothing here
        return _ANYTHING
    return _needs(list(parsed))


def _needs(items: Sequence[tuple[object, object]]) -> Needs:
    """What a match of the sequence ``items`` must contain."""
    needs = []
    run = frozenset({""})  # exact texts of the latest stretch of fixed-text items
    for op, av in items:
        part = _exact(((op, av),))
        if part is not None:
            joined = frozenset(a + b for a in run for b in part)
            if len(joined) <= _MAX_TERMS:
                run = joined
                continue
            needs.append(_any_text(run))
            run = part
            continue
        needs.append(_any_text(run))
        run = frozenset({""})
        needs.append(_item_needs(op, av))
    needs.append(_any_text(run))
    return _all(needs)


def _item_needs(op: object, av: object) -> Needs:
    if op is _sre.SUBPATTERN:
        return _needs(av[-1])  # type: ignore[index]
    if op is _sre.ATOMIC_GROUP:
        return _needs(av)  # type: ignore[arg-type]
    if op is _sre.BRANCH:
        return _any([_needs(branch) for branch in av[1]])  # type: ignore[index]
    if op in _REPEATS and av[0] >= 1:  # type: ignore[index]
        return _needs(av[2])  # type: ignore[index]
    return _ANYTHING


def _exact(items: Sequence[tuple[object, object]]) -> frozenset[str] | None:
    """The few texts of printable ASCII that ``items`` match, or None (other or too many)."""
    out = frozenset({""})
    for op, av in items:
        part: frozenset[str] | None = None
        if op is _sre.LITERAL and 32 <= av < 127:  # type: ignore[operator]
            part = frozenset({chr(av)})  # type: ignore[arg-type]
        elif op is _sre.IN and av:
            chars = [_exact([x]) for x in av]  # type: ignore[attr-defined]
            part = None if None in chars else frozenset().union(*chars)  # type: ignore[arg-type]
        elif op is _sre.SUBPATTERN:
            part = _exact(av[-1])  # type: ignore[index]
        elif op is _sre.BRANCH:
            branches = [_exact(branch) for branch in av[1]]  # type: ignore[index]
            part = None if None in branches else frozenset().union(*branches)  # type: ignore[arg-type]
        elif op in _REPEATS and av[0] == 0 and av[1] == 1:  # type: ignore[index]
            body = _exact(av[2])  # type: ignore[index]
            part = None if body is None else body | {""}
        if part is None:
            return None
        out = frozenset(a + b for a in out for b in part)
        if len(out) > _MAX_TERMS:
            return None
    return out


def _any_text(texts: frozenset[str]) -> Needs:
    return _ANYTHING if "" in texts else frozenset(frozenset({t}) for t in texts)


def _any(alternatives: list[Needs]) -> Needs:
    union = frozenset().union(*alternatives)
    return _ANYTHING if frozenset() in union or len(union) > _MAX_TERMS else _simplest(union)


def _all(conjuncts: list[Needs]) -> Needs:
    """Every one of ``conjuncts``; one that would make too many alternatives is left out."""
    out = _ANYTHING
    for needs in conjuncts:
        joined = frozenset(a | b for a in out for b in needs)
        if len(joined) <= _MAX_TERMS:
            out = _simplest(joined)
    return out


def _simplest(needs: Needs) -> Needs:
    """Drop the alternatives that need more than another one (theirs implies it)."""
    return frozenset(a for a in needs if not any(b < a for b in needs))


def recognised_tickets(tickets: pd.DataFrame, policy: PolicySet) -> pd.Series:
    """Whether each ticket is an IP change request by the request filter (SPEC 2.1).

    Each ticket is judged by the filter (see :func:`filter_matcher`) of the policy version in
    force at its ``created_at``.

    Returns:
        A boolean Series aligned with ``tickets``.
    """
    version = policy.version_index(tickets["created_at"])
    result = np.zeros(len(tickets), dtype=bool)
    for i, pol in enumerate(policy.versions):
        rows = version == i
        if not rows.any():
            continue
        types, by_tags, by_subject = _tests(pol.request_filter)
        part = tickets[rows]
        matched = part["ticket_type"].isin(types).to_numpy(bool)
        for column, test in (("tags", by_tags), ("subject", by_subject)):
            found = per_unique(part[column], functools.partial(_each, test=test))
            matched = matched | found.to_numpy(bool)
        result[rows] = matched
    return pd.Series(result, index=tickets.index)


def _each(values: pd.Series, *, test: Callable[[str], bool]) -> pd.Series:
    return pd.Series([test(v) for v in values.tolist()], index=values.index, dtype=bool)


def _same_name(values: pd.Series, name: str) -> pd.Series:
    wanted = name.strip().casefold()
    same = per_unique(values, lambda u: u.str.strip().str.casefold() == wanted)
    return same.where(values.notna(), False).astype(bool)


def assemble(
    tickets: pd.DataFrame,
    events: pd.DataFrame,
    intake: pd.DataFrame,
    changes: pd.DataFrame,
    policy: PolicySet,
) -> pd.DataFrame:
    """Join the four typed canonical frames into one row per IP change request.

    Requests are the tickets with an intake record, the tickets the request filter recognises,
    the tickets with a change record, and intake records whose ticket is missing (flagged, never
    dropped). Change records of unknown tickets without intake are not requests (data quality).

    Adds, in UTC: ``received_at`` (earliest of intake ``received_at`` and ticket ``created_at``),
    ``requested_change_at`` (``ASAP`` = received_at; earlier than received_at = received_at, with
    ``requested_before_received``), ``routed_at`` (created_at when created in the routing
    department, else the first department change into it; NaT while not routed), and the
    department/status/owner each ticket was created with (``initial_*``), and
    ``creation_recorded``: whether the ticket's history records that state (it has events, and
    no first department or status change has a blank old value),
    and ``department_history`` (whether the ticket has any recorded department event: a change, or
    the audit row of its creation).

    Returns:
        One row per request, ordered by ``received_at`` (ties in the order found).
    """
    # One integer code per ticket id across the four tables: joins become numpy gathers.
    tables = (tickets, intake, changes, events)
    codes, uniques = pd.factorize(pd.concat([t["ticket_id"] for t in tables], ignore_index=True))
    code_t, code_i, code_c, code_e = np.split(codes, np.cumsum([len(t) for t in tables[:-1]]))
    n_ids = len(uniques)
    row_t, row_i, row_c = (_row_of(c, n_ids) for c in (code_t, code_i, code_c))

    wanted = recognised_tickets(tickets, policy).to_numpy(bool)
    wanted = wanted | (row_i[code_t] >= 0) | (row_c[code_t] >= 0)
    is_request = np.zeros(n_ids, dtype=bool)
    is_request[code_t[wanted]] = True
    is_request[code_i] = True
    req = np.flatnonzero(is_request)

    # order by received_at (stable: ties keep the id order) before gathering any column
    created = _take(tickets["created_at"], row_t[req]).array.asi8
    intake_received = _take(intake["received_at"], row_i[req]).array.asi8
    nat = np.iinfo(np.int64).min
    received = np.where(intake_received == nat, created, intake_received)
    received = np.where((created != nat) & (created < received), created, received)
    req = req[
        np.argsort(np.where(received == nat, np.iinfo(np.int64).max, received), kind="stable")
    ]
    at_t, at_i, at_c = row_t[req], row_i[req], row_c[req]

    cols: dict[str, object] = {
        "ticket_id": pd.array(uniques.take(req), dtype="str"),
        "has_ticket": at_t >= 0,
        "has_intake": at_i >= 0,
        "has_change": at_c >= 0,
    }
    for frame, at, names in (
        (tickets, at_t, TICKET_COLUMNS),
        (intake, at_i, (*INTAKE_COLUMNS, "account", "received_at", "requested_change_at")),
        (changes, at_c, CHANGE_COLUMNS),
    ):
        for name in names:
            key = "intake_account" if frame is intake and name == "account" else name
            cols[key] = _take(frame[name], at)
    cols["ticket_account"] = _take(tickets["account"], at_t)
    out = pd.DataFrame(cols)
    out["account"] = out["intake_account"].where(out["intake_account"] != "", out["ticket_account"])
    out = out.drop(columns=["intake_account", "ticket_account"])
    out["requested_asap"] = out["requested_asap"].fillna(False).astype(bool)

    out = out.rename(columns={"received_at": "intake_received_at"})
    out["received_at"] = (
        out["intake_received_at"]
        .where(out["intake_received_at"] <= out["created_at"], out["created_at"])
        .fillna(out["intake_received_at"])
    )
    requested = out["requested_change_at"].mask(out["requested_asap"], out["received_at"])
    out["requested_before_received"] = (requested < out["received_at"]).fillna(False).astype(bool)
    out["requested_change_at"] = requested.mask(
        out["requested_before_received"], out["received_at"]
    )

    # the value each field had at creation: the old value of its first change, else the current
    by_time = np.lexsort((events["at"].array.asi8, code_e))
    # Unknown is never a guess (issue 26): the creation state is recorded when the ticket has
    # events, and no first department or status change has a blank old value (which would not
    # say where the ticket started; a blank old owner is a record of "unassigned").
    recorded = np.zeros(n_ids, dtype=bool)
    recorded[code_e] = True
    recorded = recorded[req] & out["has_ticket"].to_numpy(bool)
    for field in ("department", "status", "owner"):
        of_field = by_time[(events["field"] == field).to_numpy(bool)[by_time]]
        first = np.full(n_ids, -1)
        first[code_e[of_field][::-1]] = of_field[::-1]  # earliest change of each ticket wins
        initial = _take(events["old_value"], first[req])
        out[f"initial_{field}"] = initial.mask(first[req] < 0, out[field])
        if field != "owner":
            recorded &= ~((first[req] >= 0) & (initial.str.strip() == "").to_numpy(bool))
        if field == "department":
            out["department_history"] = first[req] >= 0
    out["creation_recorded"] = recorded
    return _with_routing(out, events, code_e, req, policy)


def _row_of(codes: np.ndarray, n_ids: int) -> np.ndarray:
    """For each ticket code, the row holding it (-1 when none; keys are unique per table)."""
    rows = np.full(n_ids, -1)
    rows[codes] = np.arange(len(codes))
    return rows


def _take(column: pd.Series, positions: np.ndarray) -> pd.Series:
    """Values at integer positions (-1 = no row there: "" for text, NaT/NA otherwise)."""
    if column.dtype == "str":  # in Arrow: several times faster than pandas' take and fillna
        taken = pa.array(column.array).take(pa.array(positions, mask=positions < 0))
        return pd.Series(pc.fill_null(taken, ""), dtype="str")
    array = column.array
    if column.dtype == "bool":
        array = column.astype("boolean").array
    return pd.Series(array.take(positions, allow_fill=True))


def _with_routing(
    out: pd.DataFrame, events: pd.DataFrame, code_e: np.ndarray, req: np.ndarray, policy: PolicySet
) -> pd.DataFrame:
    """Add ``routed_at`` by the version in force at receipt.

    ``routed_at`` is ``created_at`` when the ticket was created in the routing department, else
    the first change of department into it, NaT while not routed. ``code_e`` are the ticket codes
    of ``events``; ``req`` the ticket codes of the rows of ``out``.
    """
    version = policy.version_index(out["received_at"])
    routed = pd.Series(pd.NaT, index=out.index, dtype=TIMESTAMP_DTYPE)
    department_change = (events["field"] == "department").to_numpy(bool)
    never = np.iinfo(np.int64).max
    for n, pol in enumerate(policy.versions):
        rows = version == n
        if not rows.any():
            continue
        dept = pol.routing_department
        moves = department_change & _same_name(events["new_value"], dept).to_numpy(bool)
        first = np.full(
            max(len(code_e) and int(code_e.max()) + 1, int(req.max(initial=-1)) + 1), never
        )
        np.minimum.at(first, code_e[moves], events["at"].array.asi8[moves])
        moved_us = first[req]
        moved_us = np.where(moved_us == never, np.iinfo(np.int64).min, moved_us)  # min = NaT
        moved = pd.Series(moved_us.view("datetime64[us]"), index=out.index).dt.tz_localize("UTC")
        created_there = _same_name(out["initial_department"], dept) & out["has_ticket"]
        routed = routed.mask(rows, moved.mask(created_there, out["created_at"]))
    out["routed_at"] = routed
    return out
