"""Kayako ticket posts → ``intake`` text, read from the "cloud info" macro (issue 27).

The procedure's step 1 has the agent "provide the customer information per the Cloud 'cloud
info' macro": a staff post of the ticket holds a line ``Cloud info`` (the policy's
``cloud_info.marker``), then one ``Label: value`` line per intake field. Two answers of
Kayako's REST API carry posts (FORMATS.md 1), each in both wire styles (live: CDATA and
``<tag />``; documentation: indented):

* ``/Tickets/TicketPost/ListAll/$ticketid$`` — root ``<posts>``, one ``<post>`` each, naming
  its ticket only by Kayako's internal id (``<ticketid>``): the mask id comes from the stored
  tickets (``tickets.kayako_id``), and a post whose ticket is not stored is a reject naming it.
  Posts of several tickets in one ``<posts>`` document are read alike.
* ``/Tickets/Ticket/$ticketid$`` — root ``<tickets>`` whose one ``<ticket>`` holds ``<posts>``:
  the posts of that ticket, whose mask id is its ``<displayid>``. Such a document is read as
  intake only (its ticket's own fields are loaded from a ListAll export, or from this same
  file with ``--format kayako-xml``); a ``<tickets>`` document of several tickets stays a
  ticket export, with or without posts (:func:`posts_answer`).

Which post: only staff posts (``<creator>`` 1) are read, customers' never. Of a ticket's staff
posts holding the marker, the earliest (``dateline``, then post id) gives ``received_at`` and
the ``agent`` (its ``fullname``); the latest gives every field (a macro posted again corrects
the earlier one). The evaluation then takes the earlier of ``received_at`` and the ticket's
``created_at`` (``requests.assemble``), so a reader without the ticket loses nothing.

Posts are rows: each is the value-giving post of a record (accepted, or rejected by the checks),
a reject on its own (too long, control characters), or skipped and counted by kind in
``notes`` (a customer's post, a staff post without the marker, a macro a later one corrected).
A record's line is its value-giving post's ordinal in the file (first post = 1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, clip, quote, text_array
from ipchange_core.ingest.kayako_xml import XML_ROOT, xml_encoding
from ipchange_core.policy import CloudInfo, label_key
from ipchange_core.schema import TABLES

POSTS_ROOT = "posts"
"""Root element of a ``TicketPost/ListAll`` answer."""


POST_ELEMENTS = ("id", "ticketid", "dateline", "fullname", "creator", "ishtml", "contents")
"""The ``<post>`` children the reader uses (FORMATS.md, issue 27)."""


STAFF = "1"
"""``<creator>`` of a staff post (2: a user, the customer)."""


POST_SOURCE = {
    "ticket_id": "ticketid",
    "received_at": "dateline",
    "agent": "fullname",
}
"""Canonical columns read from the post itself → its element, for reject messages (the
macro's fields are named by their label)."""


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""Control characters a post may not hold (tab, line feed and carriage return it may)."""


def posts_answer(path: Path, *, file: str) -> bool:
    """Whether an XML file is an answer with posts (root ``<posts>``, or a single-ticket GET).

    A single-ticket GET is a ``<tickets>`` document holding one ``<ticket>``, with ``<posts>``.
    A ``<tickets>`` document of several tickets is a ticket export, posts or not (its nested
    posts are not read); it is known as one when its second ticket starts, so a ListAll answer
    of any size is read no further.

    Raises:
        InvalidInputError: The XML is malformed before that is known.
    """
    depth = tickets = 0
    with_posts = False
    try:
        with path.open("rb") as raw:
            for event, elem in ET.iterparse(raw, events=("start", "end")):
                if event == "end":
                    depth -= 1
                    continue
                depth += 1
                if depth == 1 and elem.tag != XML_ROOT:
                    return elem.tag == POSTS_ROOT
                if depth == 2 and elem.tag == "ticket":
                    tickets += 1
                    if tickets > 1:
                        return False
                with_posts |= depth == 3 and elem.tag == POSTS_ROOT
    except ET.ParseError as err:
        line, column = err.position
        raise InvalidInputError(
            f"malformed XML at line {line}, column {column + 1}", file=file
        ) from None
    return with_posts


@dataclass(frozen=True)
class Post:
    """One ``<post>`` as written (stripped text of the children the reader uses).

    Attributes:
        ordinal: The post's place in the file (first = 1): the line of its rows and rejects.
        fields: ``id``, ``ticketid``, ``dateline``, ``fullname``, ``creator``, ``ishtml``,
            ``contents`` (contents unstripped).
        mask: The enclosing ``<ticket>``'s ``<displayid>`` (single-ticket answer), else ``""``.
    """

    ordinal: int
    fields: Mapping[str, str]
    mask: str = ""

    @property
    def post_id(self) -> str:
        """The post's id (``<id>``, else ``<ticketpostid>``)."""
        return self.fields["id"]


@dataclass(frozen=True)
class PostsFile:
    """An XML answer with posts, read whole (an answer holds one ticket's posts, or a few).

    Attributes:
        posts: Every ``<post>``, in file order.
        sha256: SHA-256 of the bytes, hex.
        encoding: The declared encoding.
        nested: The posts came inside ``<ticket>`` elements (a single-ticket answer).
    """

    posts: tuple[Post, ...]
    sha256: str
    encoding: str
    nested: bool


def read_posts_xml(data: bytes, *, file: str) -> PostsFile:
    """Parse the bytes of a posts answer (both forms, both wire styles).

    Raises:
        InvalidInputError: Malformed XML (a raw control character too: XML 1.0 forbids it),
            or a root that is neither ``<posts>`` nor ``<tickets>``.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        line, column = err.position
        raise InvalidInputError(
            f"malformed XML at line {line}, column {column + 1}: {str(err).split(': line ')[0]}",
            file=file,
        ) from None
    if root.tag == POSTS_ROOT:
        groups = [("", root)]
    elif root.tag == XML_ROOT:
        groups = [
            ((ticket.findtext("displayid") or "").strip(), posts)
            for ticket in root.iter("ticket")
            for posts in ticket.findall(POSTS_ROOT)
        ]
    else:
        raise InvalidInputError(
            f"XML root element is <{root.tag}>, not a Kayako <{POSTS_ROOT}> or "
            f"<{XML_ROOT}> answer with posts",
            file=file,
        )
    posts = []
    for mask, parent in groups:
        for elem in parent.iter("post"):
            values = {name: (elem.findtext(name) or "").strip() for name in POST_ELEMENTS}
            values["contents"] = elem.findtext("contents") or ""
            if not values["id"]:
                values["id"] = (elem.findtext("ticketpostid") or "").strip()
            posts.append(Post(len(posts) + 1, values, mask))
    return PostsFile(
        posts=tuple(posts),
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=xml_encoding(data[:512]),
        nested=root.tag == XML_ROOT,
    )


_BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})


class _HtmlText(HTMLParser):
    """An HTML post's text: white space runs as in HTML, a line break at ``<br>`` and blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))


def html_text(markup: str) -> str:
    """The text of an HTML post (``ishtml`` 1).

    Tags are dropped, entities read, white space runs become one space as in HTML, and a line
    ends at each ``<br>`` and block (``<p>``, ``<div>``, …).
    """
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


@dataclass(frozen=True)
class Macro:
    """The fields of one cloud-info post, as typed.

    Attributes:
        fields: Intake field → its value text (surrounding spaces stripped).
        labels: Intake field → the label it was written with.
        problems: ``(field, value, reason)`` of labels the post gives twice with two values.
    """

    fields: Mapping[str, str]
    labels: Mapping[str, str]
    problems: tuple[tuple[str, str, str], ...] = ()


_LABELLED = re.compile(r"^(?P<label>[^:]*):(?P<value>.*)$")


def parse_macro(text: str, macro: CloudInfo) -> Macro | None:
    """Read the macro out of a post's text; ``None`` when no line is the marker.

    The labelled lines after the (first) marker line are the fields; labels match ignoring
    case, surrounding spaces and a space before the colon (:func:`~ipchange_core.policy.label_key`),
    values keep their text (surrounding spaces stripped). Lines with other labels, or none, are
    not fields. A label given twice with two values is a problem of that field.
    """
    marker = label_key(macro.marker)
    lines = text.splitlines()
    at = next(
        (i for i, line in enumerate(lines) if label_key(line).removesuffix(":").rstrip() == marker),
        None,
    )
    if at is None:
        return None
    fields = macro.field_of_label()
    values: dict[str, str] = {}
    labels: dict[str, str] = {}
    problems = []
    for line in lines[at + 1 :]:
        found = _LABELLED.match(line)
        if found is None:
            continue
        field = fields.get(label_key(found["label"]))
        if field is None:
            continue
        value = found["value"].strip()
        if field in values and values[field] != value:
            problems.append(
                (
                    field,
                    value,
                    f"{field} is given twice, {quote(values[field])} and {quote(value)}",
                )
            )
            continue
        values[field] = value
        labels[field] = found["label"].strip()
    return Macro(values, labels, tuple(problems))


@dataclass
class _Record:
    """One ticket's intake, from its staff cloud-info posts."""

    first: Post
    last: Post
    macro: Macro
    corrected: Post | None = None


def post_problem(post: Post, macro: CloudInfo) -> tuple[str, str] | None:
    """Why a staff post cannot be read at all (``(value, reason)``), else ``None``."""
    contents = post.fields["contents"]
    if len(contents) > macro.max_post_chars:
        return (
            clip(contents),
            f"the post holds {len(contents):,} characters, more than the "
            f"{macro.max_post_chars:,} of the policy setting cloud_info.max_post_chars",
        )
    text = html_text(contents) if post.fields["ishtml"] == "1" else contents
    bad = _CONTROL.search(text)
    if bad is not None:
        return (
            clip(text),
            f"the post holds the control character U+{ord(bad.group()):04X} "
            f"({unicodedata.name(bad.group(), 'unnamed')}); it is not read",
        )
    if not post.fields["dateline"].isdigit():
        return (post.fields["dateline"], "the post's dateline is not a Unix time in seconds")
    return None


def post_text(post: Post) -> str:
    """The text of a post: HTML read as text, plain text as it is."""
    contents = post.fields["contents"]
    return html_text(contents) if post.fields["ishtml"] == "1" else contents


def _order(post: Post) -> tuple[int, int]:
    pid = post.post_id
    return int(post.fields["dateline"]), int(pid) if pid.isdigit() else 0


def macro_text(
    posts: tuple[Post, ...], macro: CloudInfo, ticket_ids: Mapping[str, str]
) -> CanonicalText:
    """Turn a file's posts into canonical ``intake`` text (see the module's docstring).

    Args:
        posts: The posts, in file order (:func:`read_posts_xml`).
        macro: The policy's macro (``cloud_info``).
        ticket_ids: Kayako's internal ticket id (text) → mask id of the stored tickets, for
            posts outside a ``<ticket>``.

    Returns:
        One row per ticket with a staff cloud-info post (its line: the value-giving post's
        ordinal), ascending by line; rejects of posts that cannot be read, of unknown tickets,
        of labels given twice and of words the policy does not know; the skipped posts counted.
    """
    rejects: list[dict[str, object]] = []
    records: dict[str, _Record] = {}
    customer = plain = superseded = 0
    for post in posts:
        if post.fields["creator"] != STAFF:
            customer += 1
            continue
        problem = post_problem(post, macro)
        if problem is not None:
            rejects.append(
                {
                    "line": post.ordinal,
                    "column": "contents",
                    "value": problem[0],
                    "reason": problem[1],
                }
            )
            continue
        found = parse_macro(post_text(post), macro)
        if found is None:
            plain += 1
            continue
        key = post.mask or "#" + post.fields["ticketid"]
        record = records.get(key)
        if record is None:
            records[key] = _Record(post, post, found)
            continue
        superseded += 1
        if _order(post) < _order(record.first):
            record.first = post
        if _order(post) >= _order(record.last):
            record.corrected = record.last
            record.last, record.macro = post, found
        elif record.corrected is None or _order(post) > _order(record.corrected):
            record.corrected = post
    rows = sorted(records.values(), key=lambda r: r.last.ordinal)
    columns: dict[str, list[str]] = {c.name: [] for c in TABLES["intake"]}
    columns["source"] = []
    for record in rows:
        post = record.last
        line = post.ordinal
        internal = post.fields["ticketid"]
        mask = post.mask or ticket_ids.get(internal, "")
        if not mask and internal:  # (a blank ticketid is left to the required-column check)
            rejects.append(
                {
                    "line": line,
                    "column": "ticketid",
                    "value": internal,
                    "reason": f"ticketid {quote(internal)} matches no stored ticket "
                    "(tickets.kayako_id): load the ticket XML with Kayako's ticket ids first",
                }
            )
            mask = internal  # rejected above: no second reject for a blank ticket
        values = dict(record.macro.fields)
        for field, value, reason in record.macro.problems:
            rejects.append(
                {"line": line, "column": _label(macro, field), "value": value, "reason": reason}
            )
        for field in macro.words:
            value = values.get(field, "")
            if not value:
                continue
            known = macro.value_of_word(field).get(label_key(value))
            if known is None:
                words = ", ".join(w for ws in macro.words[field].values() for w in ws[:1])
                rejects.append(
                    {
                        "line": line,
                        "column": _label(macro, field),
                        "value": value,
                        "reason": f"{quote(value)} is not a {field.replace('_', ' ')} the policy "
                        f"setting cloud_info.words.{field} knows ({words})",
                    }
                )
                # the row is rejected: a value the enum check passes keeps the reject single
                known = next(iter(macro.words[field]))
            values[field] = known
        first_at = dt.datetime.fromtimestamp(int(record.first.fields["dateline"]), dt.UTC)
        columns["ticket_id"].append(mask)
        columns["received_at"].append(first_at.isoformat())
        columns["agent"].append(record.first.fields["fullname"])
        for field in macro.labels:
            columns[field].append(values.get(field, ""))
        source = f"post {post.post_id}"
        if record.corrected is not None:
            source += f" (corrects post {record.corrected.post_id})"
        columns["source"].append(source)
    notes = []
    skipped = customer + plain + superseded
    if skipped:
        notes.append(
            f"skipped {skipped} post(s): {customer} by customers (never read as intake), "
            f"{plain} by staff without the line {macro.marker!r}, {superseded} cloud-info "
            "post(s) a later one of the same ticket corrected (the earliest gives the receipt "
            "time and the agent)"
        )
    rejected = pd.DataFrame(rejects, columns=["line", "column", "value", "reason"])
    return CanonicalText(
        columns={name: text_array(values) for name, values in columns.items()},
        lines=np.array([r.last.ordinal for r in rows], dtype=np.int64),
        rejects=rejected.astype(
            {"line": "int64", "column": "str", "value": "str", "reason": "str"}
        ),
        source_names={**POST_SOURCE, **{f: labels[0] for f, labels in macro.labels.items()}},
        rows_skipped=skipped,
        notes=tuple(notes),
    )


def _label(macro: CloudInfo, field: str) -> str:
    return macro.labels[field][0]
