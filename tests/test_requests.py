"""requests: the request filter's SQL prefilter never drops a ticket the exact filter matches."""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core import store
from ipchange_core.policy import PolicySet, RequestFilter, load_policy
from ipchange_core.requests import (
    CASE_TWINS,
    char_variants,
    filter_matcher,
    filter_prefilter,
)
from ipchange_core.store import read as store_read
from ipchange_core.store.backend import backend_of

POLICY = load_policy()


def policy_with(request_filter: RequestFilter) -> PolicySet:
    version = dataclasses.replace(POLICY.latest, request_filter=request_filter)
    return PolicySet(versions=(version,), sources=POLICY.sources)


def candidates(engine: sa.Engine, policy: PolicySet, rows: list[tuple[str, str, str]]) -> set[int]:
    """Positions of the ``(ticket_type, tags, subject)`` rows that the SQL prefilter keeps."""
    tickets = store.Ticket.__table__
    condition = store_read.candidates(backend_of(engine), policy)
    with engine.begin() as conn:
        conn.execute(tickets.delete())
        conn.execute(
            tickets.insert(),
            [
                {
                    "ticket_id": str(n),
                    "ticket_type": ticket_type,
                    "tags": tags,
                    "subject": subject,
                    "created_at": store_read.utc(POLICY.latest.effective_from_utc, "at"),
                    "key_hash": n,
                    "row_hash": n,
                }
                for n, (ticket_type, tags, subject) in enumerate(rows)
            ],
        )
        query = sa.select(tickets.c.ticket_id)
        if condition is not None:
            query = query.where(condition)
        return {int(i) for i in conn.execute(query).scalars()}


# --- table: what the prefilter requires --------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "needs"),
    [
        ("ip", {("ip",)}),
        ("a|b", {("a",), ("b",)}),
        (r"x[yz]w", {("xyw",), ("xzw",)}),  # a small class spells its texts out
        (r"(?:ab)+c", {("ab", "c")}),
        (r"\bnew\s+ip", {("ip", "new")}),
        (r"foo(?=bar)", {("foo",)}),  # a lookahead requires nothing it did not consume
        (r"(a|b*)c", {("c",)}),  # b* may be empty: a|b* requires nothing
        ("(?i)caf\u00e9", {("caf",)}),  # non-ASCII text is not required (case twins unknown)
        (r"ip(?:address)?change", {("ipchange",), ("ipaddresschange",)}),
        (".*", None),  # anything matches: no prefilter
        ("", None),
        (r"\d+", None),
    ],
)
def test_subject_needs(pattern: str, needs: set[tuple[str, ...]] | None) -> None:
    pre = filter_prefilter(RequestFilter(("IP Change",), ("ip-change",), pattern))
    if needs is None:
        assert pre is None
    else:
        assert pre is not None
        assert {tuple(sorted(need)) for need in pre.subject} == needs


def test_default_policy_prefilter_is_narrow() -> None:
    pre = filter_prefilter(POLICY.latest.request_filter)
    assert pre is not None
    assert pre.ticket_types == {"IP Change"}
    assert {tuple(sorted(n)) for n in pre.tags} == {("ip-change",), ("ip_change",), ("ipchange",)}
    assert {tuple(sorted(n)) for n in pre.subject} == {
        ("change", "ip"),
        ("ip", "update"),
        ("ip", "new"),
    }
    no_tags = filter_prefilter(RequestFilter(("IP Change",), (), "ip"))
    assert no_tags is not None and no_tags.tags == frozenset()  # no tag can match


def test_the_private_re_parser_still_has_the_shape_the_prefilter_reads() -> None:
    """``requests`` reads patterns with CPython's private ``re._parser``: where a version drops
    or reshapes it, this fails by name (the prefilter itself would quietly stop narrowing)."""
    import sys

    from ipchange_core import requests

    where = f"Python {sys.version.split()[0]}: re._parser/re._constants"
    assert requests._sre_parse is not None, f"{where} are gone; port requests._needs_of"
    sre = requests._sre
    ops = [op for op, _ in requests._sre_parse.parse(r"ab(?:c|d)+e?")]
    assert ops == [sre.LITERAL, sre.LITERAL, sre.MAX_REPEAT, sre.MAX_REPEAT], (
        f"{where} changed shape: {ops}"
    )
    _, repeat = requests._sre_parse.parse(r"(?:c|d)+")[0]
    assert (repeat[0], repeat[1]) == (1, sre.MAXREPEAT), f"{where} repeat bounds moved: {repeat}"
    assert filter_prefilter(POLICY.latest.request_filter) is not None, f"{where}: no narrowing"


def test_case_twins_are_every_non_ascii_character_re_folds_to_ascii() -> None:
    """Python's case-insensitive ``re`` matches these to ASCII letters, and only these."""
    ascii_ci = re.compile(r"(?i)[\x00-\x7f]")
    twins = {chr(c) for c in range(128, 0x110000) if ascii_ci.fullmatch(chr(c))}
    assert twins == set("".join(CASE_TWINS.values()))
    for letter in map(chr, range(128)):
        folds = re.compile(f"(?i){re.escape(letter)}").fullmatch
        assert {c for c in twins if folds(c)} <= set(char_variants(letter)), letter


@pytest.mark.parametrize(
    ("ticket_type", "tags", "subject", "kept"),
    [
        ("IP Change", "", "Router", True),
        ("", "billing, IP-CHANGE", "Router", True),
        ("", "", "Need a NEW static IP", True),
        ("", "", "new static \u0131p", True),  # dotless i: (?i) matches it to "i"
        ("", "", "IP \u212aey change", True),  # any case twin, in SQLite's looser test too
        ("", "", "Printer jam", False),
        ("", "ip", "Striped pattern", False),
        ("ip change", "voip", "", False),
    ],
)
def test_sql_prefilter_cases(
    engine: sa.Engine, ticket_type: str, tags: str, subject: str, kept: bool
) -> None:
    matched = filter_matcher(POLICY.latest.request_filter)(ticket_type, tags, subject)
    got = candidates(engine, POLICY, [(ticket_type, tags, subject)])
    assert (0 in got) is kept
    assert kept or not matched  # the prefilter keeps every match


# --- property: any pattern, any matching text: the SQL prefilter keeps it -----------------------

WORDS = ["ip", "IP", "change", "new", "k8s", "a.b", "x_y", "50%", "c*d", "[", "?", "Is", "\\"]
ATOMS = [r"\s", r"\d", ".", r"[a-c]", r"[Ii]", r"[^x]", r"\b", r"\w", "-"]


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def _compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(inner, min_size=1, max_size=4).map("".join),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: "(?:" + "|".join(xs) + ")"),
        st.tuples(inner, st.sampled_from(["?", "*", "+", "{2}", "{1,3}", "??", "+?"])).map(
            lambda t: f"(?:{t[0]}){t[1]}"
        ),
        inner.map(lambda x: f"(?i:{x})"),
        inner.map(lambda x: f"({x})"),
    )


patterns = st.tuples(
    st.sampled_from(["", "(?i)"]),
    st.recursive(
        st.one_of(st.sampled_from(WORDS).map(re.escape), st.sampled_from(ATOMS)),
        _compound,
        max_leaves=8,
    ),
).map("".join)

TWINS = {"i": "\u0131", "I": "\u0130", "k": "\u212a", "K": "\u212a", "s": "\u017f", "S": "\u017f"}


@st.composite
def texts_for(draw: st.DrawFn, pattern: str) -> str:
    """A text containing a match of ``pattern``, some letters maybe swapped for case twins."""
    text = draw(st.from_regex(pattern))
    if draw(st.booleans()):
        text = "".join(TWINS.get(c, c) if draw(st.booleans()) else c for c in text)
    return text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=patterns.filter(_compiles), data=st.data())
def test_sql_prefilter_keeps_every_match_of_any_pattern(
    engine: sa.Engine, pattern: str, data: st.DataObject
) -> None:
    tags = tuple(data.draw(st.lists(st.sampled_from(WORDS), max_size=2)))
    request_filter = RequestFilter(("IP Change",), tags, pattern)
    tag_texts = st.one_of(
        st.just(""),
        st.lists(st.sampled_from([*WORDS, " ip ", "IS"]), max_size=3).map(",".join),
        st.from_regex(r"[a-zA-Z_, \u0131\u0130\u212a\u017f%\\-]{0,12}", fullmatch=True),
    )
    rows = data.draw(
        st.lists(
            st.tuples(
                st.sampled_from(["", "IP Change", "ip change"]),
                tag_texts,
                st.one_of(texts_for(pattern), st.text(max_size=12)),
            ),
            min_size=1,
            max_size=8,
        )
    )
    rows = [tuple(v.replace("\x00", "") for v in row) for row in rows]  # PostgreSQL text
    matches = filter_matcher(request_filter)
    wanted = {n for n, row in enumerate(rows) if matches(*row)}
    assert wanted <= candidates(engine, policy_with(request_filter), rows)  # type: ignore[arg-type]
