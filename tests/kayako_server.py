"""A stand-in Kayako Classic REST API for the tests and ``make bench``: a real HTTP server process.

``python -m tests.kayako_server --api-key KEY --secret SECRET [--host 127.0.0.1] [--port 0]
[--tickets N] [--seed S] [--style wire|doc] [--samples DIR] [--start EPOCH]`` listens on loopback
and prints one line, its API URL ``http://127.0.0.1:PORT/api/index.php``, once it is ready; it
runs until terminated. :class:`KayakoServer` runs it as a child process for a test.

The API answers as FORMATS.md 1–3 says Kayako does:

- ``GET /api/index.php?e=/App/Controller/…&apikey=…&salt=…&signature=…`` (or ``index.php?/App/…
  &apikey=…``). The key must be KEY and the URL-decoded signature ``base64(HMAC-SHA256(SECRET,
  salt))``; else ``401`` with a one-line text body (``Unauthorized: invalid API key`` /
  ``…: invalid signature``). A salt accepted once is refused after (``Unauthorized: salt
  reused``).
- ``/Base/Department``, ``/Tickets/TicketStatus``, ``/Tickets/TicketType``,
  ``/Tickets/TicketPriority``, ``/Base/Staff`` (root ``<staffusers>``).
- ``/Tickets/Ticket/ListAll/$departmentid$/$ticketstatusid$/$ownerstaffid$/$userid$/$count$/
  $start$/$sortField$/$sortOrder$``: comma lists; a department list is required (missing or not
  numbers: ``400`` "Department ID is Invalid"), unknown, live chat and ``-1`` departments match
  nothing; a status ``-1`` keeps only statuses whose ``markasresolved`` is 0 (the trap);
  owner/user ``-1`` = no filter, owner ``0`` = unassigned; count/start are LIMIT/OFFSET (count
  ``-1``, ``0`` or left out: no limit); sortField ``lastactivity``, ``dateline`` (creation),
  ``duetime`` (next reply due), ``ticketstatustitle``, ``departmenttitle``, else the ticket id;
  ``ASC`` (default) or ``DESC``; ties go by ticket id in the same direction. Trailing arguments
  may be left out (status, owner, user ``-1``).
- ``/Tickets/Ticket/$id$`` (internal or mask id): the ``<tickets>`` document with its
  ``<posts>``; ``/Tickets/TicketPost/ListAll/$ticketid$``: ``<posts>``. Unknown ticket: ``404``
  "Ticket not Found"; unknown endpoint: ``404`` "Invalid endpoint: …".
- Bodies ``text/xml``: the live wire style (every non-empty value in CDATA, empty values
  ``<tag />``, one element a line, no indentation) or, with ``--style doc``, the documentation's
  (indented, escaped text).

The control API (unsigned, JSON, same port):

- ``POST /_control/faults`` ``[{"endpoint": "/Tickets/Ticket/ListAll", "times": 1, "status":
  503, "retry_after": "1", "delay": 2.5, "body": "text|html|truncated|empty"}, …]`` replaces the
  queue of faults (``[]`` clears it) → ``{"queued": n}``. Each authenticated API request takes
  the first queued fault whose ``endpoint`` prefixes its ``e`` (omitted: any), counting its
  ``times`` (default 1) down; it waits ``delay`` seconds (default 0), then answers ``status``
  with the ``body``: ``text`` a one-line reason, ``html`` a login page, ``truncated`` the first
  half of the real answer, ``empty`` nothing; ``Retry-After`` when given. Default status: 200
  for html/truncated/empty, else 503. A fault with neither status nor body only delays the real
  answer. Requests refused for their key or signature take no fault.
- ``POST /_control/touch`` ``{"ids": [...]}`` or ``{"count": n}``, ``"at": epoch`` (default now)
  sets ``lastactivity`` of those tickets (count: the first n of a shuffle fixed by the seed)
  → ``{"touched": [ids], "at": at}``.
- ``POST /_control/add`` ``{"count": n, "at": epoch}`` adds tickets with the next ids, created
  and last active at ``at``, status New → ``{"added": [ids], "at": at}``.
- ``POST /_control/post`` ``{"ticket": id, "contents": "…", "ishtml": 0|1, "staffid": n, "at":
  epoch}`` posts on a ticket (by staff ``staffid``, default 1; by the ticket's user if 0; contents
  as given) and makes ``at`` (default now) its last activity → ``{"post": post id, "at": at}``.
- ``POST /_control/delete`` ``{"ids": [...]}`` → ``{"deleted": [ids that were there]}``.
- ``GET /_control/log`` → one entry per API request, in the order they arrived: ``{"e",
  "apikey", "salt", "signature_ok", "status"`` (0 while the answer is being made, e.g. during a
  fault's delay; set before the answer is sent), ``"count"`` (tickets, posts or list entries in
  a 200 XML answer, else null), ``"fault"`` (the fault taken, or null)``}``;
  ``POST /_control/log/clear``.
- ``GET /_control/state`` → ``{"tickets", "max_lastactivity", "max_id", "version",
  "faults_queued"}``.

The data are ``--tickets`` synthetic tickets (deterministic from ``--seed``; internal ids 1..N,
times before ``--start``) of the demo help desk's lookups
(:data:`~ipchange_core.demo.reference.HELPDESK_DEPARTMENTS` …: a live chat and private
departments, Closed resolved), about a quarter of them IP change requests whose staff posts carry
the "cloud info" macro of issue 27 (plain or HTML with ``<br />``, some corrected by a later
post, some with the labels typed as ``new ip :``, some without the empty ``Reseller`` line; a
few customers' requests have no macro yet); or, with ``--samples DIR``, Kayako's public samples
as they are (``/_control/add`` then copies their first ticket).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

import numpy as np

from ipchange_core.demo.kayako import lookup_documents
from ipchange_core.demo.posts import POST_ELEMENTS
from ipchange_core.demo.reference import (
    AGENT_SUBJECTS,
    BILL,
    CITIES,
    CS,
    DEPARTMENTS_XML,
    FIRST,
    HELPDESK_DEPARTMENTS,
    HELPDESK_PRIORITY_ID,
    HELPDESK_STATUS_ID,
    HELPDESK_TYPE_ID,
    IMPL,
    ISP_FIRST_OCTETS,
    LAST,
    OTHER_SUBJECTS,
    PRIORITIES_XML,
    RESELLERS,
    STAFF,
    STATUSES,
    STATUSES_XML,
    TS,
    TYPES,
    TYPES_XML,
    USER_SUBJECTS,
    ZONE,
)
from ipchange_core.demo.text import cdata
from ipchange_core.demo.writers import mask_ids

REPO = Path(__file__).resolve().parents[1]
API_PATH = "/api/index.php"

TICKET_FIELDS = (
    "displayid",
    "departmentid",
    "statusid",
    "priorityid",
    "typeid",
    "userid",
    "userorganization",
    "userorganizationid",
    "ownerstaffid",
    "ownerstaffname",
    "fullname",
    "email",
    "lastreplier",
    "subject",
    "creationtime",
    "lastactivity",
    "laststaffreply",
    "lastuserreply",
    "slaplanid",
    "nextreplydue",
    "resolutiondue",
    "replies",
    "ipaddress",
    "creator",
    "creationmode",
    "creationtype",
    "isescalated",
    "escalationruleid",
    "templategroupid",
    "templategroupname",
    "tags",
)
"""The children of ``<ticket>`` in Kayako's order (FORMATS.md 2), before watcher/workflow/note."""
F = {name: k for k, name in enumerate(TICKET_FIELDS)}

POST_FIELDS = POST_ELEMENTS
"""The children of ``<post>`` (issue 27), in Kayako's order (the demo writes the same)."""

LOOKUP_FILES = {
    "departments": ("departments.xml", "department", "/Base/Department"),
    "ticketstatuses": ("ticketstatuses.xml", "ticketstatus", "/Tickets/TicketStatus"),
    "tickettypes": ("tickettypes.xml", "tickettype", "/Tickets/TicketType"),
    "ticketpriorities": ("ticketpriorities.xml", "ticketpriority", "/Tickets/TicketPriority"),
}
"""Lookup list root → (sample file, entry element, endpoint)."""

SORT_FIELDS = ("lastactivity", "dateline", "ticketstatustitle", "departmenttitle", "duetime")
"""``$sortField$`` values the stand-in sorts by; anything else sorts by ticket id."""

LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Help Desk - Powered by Kayako</title></head>\n"
    '<body><form method="post" action="/staff/index.php?/Core/Default/Login">\n'
    '<input type="text" name="username" /><input type="password" name="password" />\n'
    '<input type="submit" value="Login" /></form></body></html>\n'
)
"""What a proxy or an expired session answers instead of the API: a login page, with 200."""

SUPPORT_EMAIL = "support@helpdesk.example"

CONTAINERS = frozenset({"usergroups"})
"""Lookup children that hold a list (of user groups): written open and closed even when empty."""


# --------------------------------------------------------------------------------------------
# XML as Kayako writes it
# --------------------------------------------------------------------------------------------


class Style:
    """How one response style writes elements: ``wire`` (live server) or ``doc`` (the docs)."""

    def __init__(self, name: str) -> None:
        if name not in ("wire", "doc"):
            raise ValueError(f"style must be wire or doc, not {name!r}")
        self.name = name
        self.wire = name == "wire"

    def indent(self, depth: int) -> str:
        """Leading white space of an element at ``depth`` (root = 0)."""
        return "" if self.wire else "    " * depth

    def element(self, tag: str, value: str, depth: int) -> str:
        """One leaf element and its line end (a list such as ``usergroups`` is never a leaf)."""
        pad = self.indent(depth)
        if tag in CONTAINERS:
            return f"{pad}<{tag}>\n{pad}</{tag}>\n"
        if not value:
            return f"{pad}<{tag} />\n"
        if self.wire:
            return f"<{tag}><![CDATA[{cdata(value)}]]></{tag}>\n"
        return f"{pad}<{tag}>{escape(value)}</{tag}>\n"

    def leaves(self, tags: Sequence[str], depth: int) -> Callable[[Sequence[str]], str]:
        """A fast writer of the leaf elements ``tags`` (values in that order) at ``depth``."""
        pad = self.indent(depth)
        if self.wire:
            opens = [f"<{t}><![CDATA[" for t in tags]
            closes = [f"]]></{t}>\n" for t in tags]
        else:
            opens = [f"{pad}<{t}>" for t in tags]
            closes = [f"</{t}>\n" for t in tags]
        empties = [f"{pad}<{t} />\n" for t in tags]
        rows = list(zip(opens, closes, empties, strict=True))
        if self.wire:

            def quote(v: str) -> str:
                return cdata(v) if "]]>" in v else v
        else:

            def quote(v: str) -> str:
                return escape(v) if "&" in v or "<" in v or ">" in v else v

        def write(values: Sequence[str]) -> str:
            out = []
            for (o, c, e), v in zip(rows, values, strict=True):
                if v:
                    out += (o, quote(v), c)
                else:
                    out.append(e)
            return "".join(out)

        return write

    def tagged(self, tag: str, attrs: Sequence[tuple[str, str]], text: str, depth: int) -> str:
        """An element with attributes (watcher, workflow, note) and optional text."""
        pad = self.indent(depth)
        head = f"{pad}<{tag}" + "".join(f" {k}={quoteattr(v)}" for k, v in attrs)
        if not text:
            return head + " />\n"
        body = f"<![CDATA[{cdata(text)}]]>" if self.wire else escape(text)
        return f"{head}>{body}</{tag}>\n"


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


# --------------------------------------------------------------------------------------------
# The help desk's data
# --------------------------------------------------------------------------------------------


class Ticket:
    """One ticket: internal id, flag type, the fields of :data:`TICKET_FIELDS` as text, extras.

    ``extras`` are the watcher/workflow/note elements as (tag, attributes, text); ``posts`` the
    ticket's posts (dicts of :data:`POST_FIELDS`) once made, ``None`` while they are still to be
    made from ``post_plan``.
    """

    __slots__ = ("extras", "fields", "flagtype", "id", "post_plan", "posts")

    def __init__(
        self,
        ticket_id: int,
        fields: list[str],
        *,
        flagtype: str = "0",
        extras: list[tuple[str, list[tuple[str, str]], str]] | None = None,
        post_plan: tuple[int, int] | None = None,
        posts: list[dict[str, str]] | None = None,
    ) -> None:
        self.id = ticket_id
        self.fields = fields
        self.flagtype = flagtype
        self.extras = extras or []
        self.post_plan = post_plan
        self.posts = posts


class Lookups:
    """The four lookup lists and the staff list, as entries of (tag, text) pairs."""

    def __init__(self, lists: dict[str, list[list[tuple[str, str]]]]) -> None:
        self.lists = lists
        self.departments = {
            int(e["id"]): e for e in map(dict, lists["departments"]) if e.get("id", "").isdigit()
        }
        self.statuses = {
            int(e["id"]): e for e in map(dict, lists["ticketstatuses"]) if e.get("id", "").isdigit()
        }

    def ticket_departments(self) -> set[int]:
        """Ids of the departments of the tickets module (the only ones that hold tickets)."""
        return {i for i, e in self.departments.items() if e.get("module", "tickets") == "tickets"}

    def open_statuses(self) -> set[int]:
        """Ids of the statuses whose ``markasresolved`` is 0: what a status argument -1 keeps."""
        return {i for i, e in self.statuses.items() if e.get("markasresolved", "0") == "0"}


def parse_list(text: str | bytes, item: str) -> list[list[tuple[str, str]]]:
    """The entries ``<item>`` of a lookup list XML, each as its children's (tag, stripped text)."""
    root = ET.fromstring(text)
    return [[(c.tag, (c.text or "").strip()) for c in e] for e in root.iter(item)]


def synthetic_lookups() -> Lookups:
    """The demo help desk's lookup lists (departments incl. live chat and private ones), + staff."""
    docs = lookup_documents()
    names = {
        "departments": DEPARTMENTS_XML,
        "ticketstatuses": STATUSES_XML,
        "tickettypes": TYPES_XML,
        "ticketpriorities": PRIORITIES_XML,
    }
    lists = {root: parse_list(docs[names[root]], LOOKUP_FILES[root][1]) for root in names}
    lists["staff"] = [_staff_entry(k + 1, name) for k, name in enumerate(STAFF)]
    return Lookups(lists)


def staff_email(name: str) -> str:
    """A staff member's e-mail address."""
    return name.lower().replace(" ", ".").replace("'", "") + "@helpdesk.example"


def _staff_entry(staff_id: int, name: str) -> list[tuple[str, str]]:
    first, _, last = name.partition(" ")
    return [
        ("id", str(staff_id)),
        ("staffgroupid", "2"),
        ("firstname", first),
        ("lastname", last),
        ("fullname", name),
        ("username", first.lower()),
        ("email", staff_email(name)),
        ("designation", ""),
        ("greeting", ""),
        ("mobilenumber", ""),
        ("isenabled", "1"),
        ("timezone", ""),
        ("enabledst", "0"),
        ("signature", ""),
    ]


def sample_data(folder: Path) -> tuple[Lookups, list[Ticket]]:
    """The lookups and tickets of Kayako's public samples in ``folder`` (FORMATS.md), as they are."""
    lists = {}
    for root, (name, item, _endpoint) in LOOKUP_FILES.items():
        lists[root] = parse_list((folder / name).read_bytes(), item)
    lists["staff"] = []
    tickets = []
    for elem in ET.parse(folder / "tickets-listall.xml").getroot().iter("ticket"):
        values = {c.tag: (c.text or "").strip() for c in elem if not len(c.attrib)}
        extras = [
            (c.tag, list(c.attrib.items()), (c.text or "").strip())
            for c in elem
            if c.tag in ("watcher", "workflow", "note")
        ]
        fields = [values.get(name, "") for name in TICKET_FIELDS]
        tickets.append(
            Ticket(
                int(elem.get("id", "0")),
                fields,
                flagtype=elem.get("flagtype", "0"),
                extras=extras,
                posts=[],
            )
        )
    return Lookups(lists), tickets


# The synthetic help desk: the demo help desk's ids (its lookups), where its tickets are.
_DEPT_IDS = {title: i for i, title, _kind, _module, _parent in HELPDESK_DEPARTMENTS}
_OTHER_DEPTS = (  # (department id, subjects by code), weights: where the other tickets are
    ((_DEPT_IDS["Customer Service"], CS), 30),
    ((_DEPT_IDS["Implementation"], IMPL), 10),
    ((_DEPT_IDS["Technical Support"], TS), 35),
    ((_DEPT_IDS["Billing"], BILL), 12),
    ((_DEPT_IDS["Billing Disputes"], BILL), 5),
    ((_DEPT_IDS["General"], CS), 8),
)
_STATUS = {title: int(HELPDESK_STATUS_ID[k]) for k, title in enumerate(STATUSES)}
_TYPE = {title: int(HELPDESK_TYPE_ID[k]) for k, title in enumerate(TYPES)}
_PRIORITY = [int(i) for i in HELPDESK_PRIORITY_ID]
_STATUS_WEIGHTS = (("New", 8), ("Open", 15), ("In Progress", 15), ("On Hold", 7), ("Closed", 55))
_REQUEST_SHARE = 0.25
_DAY = 86_400
_ZONE = ZoneInfo(ZONE)
_ORG_KINDS = ("Dental", "Family Clinic", "Law Office", "Realty", "Auto Parts", "Insurance")
_TAGS = ("ip-change", "voip", "urgent", "followup", "vip")


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _html(text: str) -> str:
    """Plain text as Kayako's editor writes it in an HTML post: ``<br />`` lines, ``&amp;``."""
    return "<p>" + "<br />\n".join(escape(line) for line in text.split("\n")) + "</p>"


def _ip(rng: random.Random) -> str:
    first = int(ISP_FIRST_OCTETS[rng.randrange(len(ISP_FIRST_OCTETS))])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


class Generator:
    """Deterministic synthetic tickets (and their posts) from a seed, times before ``start``."""

    def __init__(self, seed: int, start: int) -> None:
        self.seed = seed
        self.start = start
        self.offset = random.Random(seed).randrange(1 << 40)

    def tickets(self, first: int, n: int, *, at: int | None = None) -> list[Ticket]:
        """Tickets with internal ids ``first``…``first+n-1``; all created at ``at`` if given."""
        ids = np.arange(first, first + n, dtype=np.int64)
        masks = mask_ids(ids, self.offset)
        return [self._ticket(int(i), m, at) for i, m in zip(ids.tolist(), masks, strict=True)]

    def _ticket(self, tid: int, mask: str, at: int | None) -> Ticket:
        rng = random.Random(self.seed * 1_000_003 + tid)
        request = rng.random() < _REQUEST_SHARE
        by_user = rng.random() < (0.35 if request else 0.5)
        city, _area = CITIES[rng.randrange(len(CITIES))]
        site = rng.randrange(100, 400)
        acct = f"ACCT-{rng.randrange(10_000, 99_999)}"
        reseller = RESELLERS[rng.randrange(len(RESELLERS))][0]
        if request:
            dept = _DEPT_IDS[
                "Customer Service" if by_user and rng.random() < 0.5 else "Implementation"
            ]
            pattern = rng.choice(USER_SUBJECTS if by_user else AGENT_SUBJECTS)
            subject = pattern.format(site=site, acct=acct, city=city, reseller=reseller)
            type_id = _TYPE["IP Change"] if not by_user or rng.random() < 0.5 else _TYPE["Issue"]
            tags = ["ip-change"] if rng.random() < 0.4 else []
        else:
            dept, code = _pick(rng, _OTHER_DEPTS)
            subject, tag_text = rng.choice(OTHER_SUBJECTS[code])
            type_id = _TYPE["Task"] if rng.random() < 0.3 else _TYPE["Issue"]
            tags = tag_text.split(",") if tag_text else []
        if rng.random() < 0.1:
            tags.append(rng.choice(_TAGS[1:]))
        status = _STATUS[_pick(rng, _STATUS_WEIGHTS)]
        if at is None:
            created = self.start - rng.randrange(3_600, 365 * _DAY)
            last = created + rng.randrange(0, min(20 * _DAY, self.start - created) + 1)
        else:
            created = last = at
            status = _STATUS["New"]
        owner = (
            0 if status == _STATUS["New"] or rng.random() < 0.1 else rng.randrange(len(STAFF)) + 1
        )
        owner_name = STAFF[owner - 1] if owner else ""
        first, lastname = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first} {lastname}"
        email = (
            f"{first}.{lastname}".lower().replace("'", "")
            + f"@{city.lower().replace(' ', '')}.example"
        )
        staff_reply = (
            rng.randrange(created, last + 1) if last > created and rng.random() < 0.7 else 0
        )
        user_reply = created if by_user else (last if last > created and rng.random() < 0.4 else 0)
        replier = owner_name if staff_reply and staff_reply >= user_reply else name
        fields = [
            mask,
            str(dept),
            str(status),
            str(_PRIORITY[_pick(rng, ((0, 3), (1, 5), (2, 2), (3, 1)))]),
            str(type_id),
            str(rng.randrange(1, 50_000)),
            f"{city} {rng.choice(_ORG_KINDS)}",
            str(rng.randrange(1, 5_000)),
            str(owner),
            owner_name,
            name,
            email,
            replier,
            subject,
            str(created),
            str(last),
            str(staff_reply),
            str(user_reply),
            "1",
            "0" if status == _STATUS["Closed"] else str(last + 4 * 3_600),
            "0" if status == _STATUS["Closed"] else str(created + 3 * _DAY),
            str(rng.randrange(0, 6) if last > created else 0),
            _ip(rng) if by_user else "",
            "2" if by_user else "1",
            "1" if by_user else "2",
            "1",
            "0",
            "0",
            "1",
            "default",
            " ".join(tags),
        ]
        extras: list[tuple[str, list[tuple[str, str]], str]] = []
        if owner and rng.random() < 0.1:
            extras.append(("watcher", [("staffid", str(owner)), ("name", owner_name)], ""))
        if rng.random() < 0.05:
            extras.append(("workflow", [("id", "1"), ("title", "Close Ticket")], ""))
        if owner and rng.random() < 0.05:
            attrs = [
                ("type", "ticket"),
                ("id", str(tid)),
                ("ticketid", str(tid)),
                ("notecolor", "1"),
                ("creatorstaffid", str(owner)),
                ("forstaffid", "0"),
                ("creatorstaffname", owner_name),
                ("creationdate", str(last)),
            ]
            extras.append(("note", attrs, f"Called {name}, left a voicemail & sent an e-mail"))
        plan = None
        if request or rng.random() < 0.2:
            plan = (int(request), last)
        return Ticket(tid, fields, extras=extras, post_plan=plan, posts=None if plan else [])

    def posts(self, ticket: Ticket) -> list[dict[str, str]]:
        """The posts of a synthetic ticket: for requests, the cloud-info macro (issue 27)."""
        if ticket.post_plan is None:
            return []
        request, until = ticket.post_plan
        f = ticket.fields
        rng = random.Random(self.seed * 7_000_003 + ticket.id)
        created = int(f[F["creationtime"]])
        by_user = f[F["creator"]] == "2"
        staff_id = int(f[F["ownerstaffid"]]) or rng.randrange(8) + 1  # an agent took the call
        posts: list[dict[str, str]] = []

        def when(offset: int) -> int:
            return min(created + offset, max(until, created))

        def user_post(at: int, text: str) -> None:
            post_id = ticket.id * 10 + len(posts) + 1
            posts.append(self.post(ticket, post_id, at, contents=text, ishtml=False, staff_id=0))

        def staff_post(at: int, text: str, html: bool) -> None:
            post_id = ticket.id * 10 + len(posts) + 1
            contents = _html(text) if html else text
            posts.append(
                self.post(ticket, post_id, at, contents=contents, ishtml=html, staff_id=staff_id)
            )

        if by_user:
            user_post(
                created, f"Hello,\n\n{f[F['subject']]}. Please call me back.\n\n{f[F['fullname']]}"
            )
        if request and (not by_user or rng.random() < 0.75):  # some customers' have none yet
            macro = self._macro(rng, ticket)
            html = rng.random() < 0.4
            staff_post(when(0 if not by_user else rng.randrange(300, 7_200)), macro(rng), html)
            if rng.random() < 0.2:  # the agent posts the macro again to correct it
                staff_post(when(rng.randrange(7_200, 2 * _DAY)), macro(rng), html)
        elif not by_user:
            staff_post(created, "Opened on behalf of the customer; details to follow.", False)
        if until > created and rng.random() < 0.3:
            user_post(when(rng.randrange(60, 3 * _DAY)), "Thank you, any update on this?")
        posts.sort(key=lambda p: (int(p["dateline"]), int(p["ticketpostid"])))
        return posts

    def _macro(self, rng: random.Random, ticket: Ticket) -> Callable[[random.Random], str]:
        """The text of the ticket's cloud-info macro; each call draws the changing values anew."""
        f = ticket.fields
        created = int(f[F["creationtime"]])
        org = f[F["userorganization"]]
        city, area = next(((c, a) for c, a in CITIES if org.startswith(c + " ")), CITIES[0])
        contact = f[F["fullname"]]
        reseller = rng.choice(RESELLERS)[0] if rng.random() < 0.3 else ""
        phone = f"({area}) 555-{rng.randrange(100, 10_000):04d}"
        site = f"Site {rng.randrange(100, 400)} – {city}"
        account = f"ACCT-{rng.randrange(10_000, 99_999)}"
        current = _ip(rng)
        channel = "phone" if f[F["creator"]] == "1" else "email"
        reason = rng.choice(("ISP change", "equipment change", "WAN/LAN", "other"))
        prefix = rng.choice(("", "", "Per call with the customer:\n"))
        other_case = rng.random() < 0.15  # an agent who types the labels: "new ip : …"
        no_reseller_line = not reseller and rng.random() < 0.5

        def label(name: str) -> str:
            return f"{name.lower()} :" if other_case else f"{name}:"

        def text(draw: random.Random) -> str:
            requested = created + draw.randrange(3_600, 10 * _DAY)
            local = dt.datetime.fromtimestamp(requested, _ZONE)
            form = draw.random()
            if form < 0.1:
                when = "ASAP"
            elif form < 0.25:
                when = local.replace(minute=0, second=0).isoformat()
            else:
                hour = local.hour % 12 or 12
                ampm = "AM" if local.hour < 12 else "PM"
                when = f"{local.month}/{local.day}/{local.year} {hour}:00 {ampm}"
            fields = [
                ("Channel", channel),
                ("Requester", "reseller" if reseller else "site"),
                ("Account", account),
                ("Site", site),
                ("Reseller", reseller),
                ("Contact", contact),
                ("Contact phone", phone),
                ("Person of record", contact),
                ("Reason", reason),
                ("Current IP", current),
                ("New IP", _ip(draw)),
                ("Requested change", when),
                ("Ticket number given", draw.choice(("yes", "no"))),
                ("Transferred to queue", "yes"),
            ]
            lines = [
                f"{label(name)} {value}".rstrip()
                for name, value in fields
                if value or not no_reseller_line
            ]
            return prefix + "Cloud info\n" + "\n".join(lines)

        return text

    @staticmethod
    def post(
        ticket: Ticket, post_id: int, at: int, *, contents: str, ishtml: bool, staff_id: int
    ) -> dict[str, str]:
        """A post on ``ticket`` at ``at`` (epoch s): by staff member ``staff_id``, or by the
        ticket's user when ``staff_id`` is 0.
        """
        f = ticket.fields
        user = staff_id == 0
        name = f[F["fullname"]] if user else STAFF[(staff_id - 1) % len(STAFF)]
        return {
            "id": str(post_id),
            "ticketpostid": str(post_id),
            "ticketid": str(ticket.id),
            "dateline": str(at),
            "userid": f[F["userid"]] if user else "0",
            "fullname": name,
            "email": f[F["email"]] if user else staff_email(name),
            "emailto": SUPPORT_EMAIL if user else "",
            "ipaddress": f[F["ipaddress"]] if user else "",
            "hasattachments": "0",
            "creator": "2" if user else "1",
            "isthirdparty": "0",
            "ishtml": "1" if ishtml else "0",
            "isemailed": "1" if user else "0",
            "staffid": "0" if user else str(staff_id),
            "contents": contents,
            "isprivate": "0",
        }


# --------------------------------------------------------------------------------------------
# The help desk: tickets, their sorted indexes, the request log and the faults
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer of Kayako's error form: an HTTP status and a one-line text body."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class HelpDesk:
    """The served state; every method is safe to call from the server's threads."""

    def __init__(
        self,
        *,
        api_key: str,
        secret: str,
        tickets: int,
        seed: int,
        style: str,
        samples: Path | None,
        start: int,
    ) -> None:
        self.api_key = api_key
        self.secret = secret.encode("utf-8")
        self.style = Style(style)
        self.seed = seed
        self.lock = threading.Lock()
        self.generator = Generator(seed, start)
        if samples is not None:
            self.lookups, ticket_list = sample_data(samples)
        else:
            self.lookups = synthetic_lookups()
            ticket_list = self.generator.tickets(1, tickets)
        self.tickets: dict[int, Ticket] = {t.id: t for t in ticket_list}
        self.last_post_id = 1_000_000_000  # posts made through the control API count on from here
        self.version = 0
        self._orders: OrderedDict[tuple, list[Ticket]] = OrderedDict()
        self.salts: set[str] = set()
        self.log: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.synthetic = samples is None
        self._ticket_xml = self.style.leaves(TICKET_FIELDS, 2)
        self._post_xml = self.style.leaves(POST_FIELDS, 4)
        self._post_xml_alone = self.style.leaves(POST_FIELDS, 2)

    # --- signatures --------------------------------------------------------------------------

    def signature(self, salt: str) -> str:
        """``base64(HMAC-SHA256(secret, salt))``, as Kayako computes it."""
        digest = hmac.new(self.secret, salt.encode("utf-8"), hashlib.sha256).digest()
        return base64.b64encode(digest).decode("ascii")

    def authenticate(self, query: dict[str, str]) -> tuple[bool, str]:
        """Check key, signature and salt; return (signature_ok, refusal text or '')."""
        salt = query.get("salt", "")
        ok = bool(salt) and hmac.compare_digest(
            query.get("signature", "").encode("utf-8"), self.signature(salt).encode("ascii")
        )
        if query.get("apikey", "") != self.api_key:
            return ok, "Unauthorized: invalid API key"
        if not ok:
            return ok, "Unauthorized: invalid signature"
        with self.lock:
            if salt in self.salts:
                return ok, "Unauthorized: salt reused"
            self.salts.add(salt)
        return ok, ""

    # --- faults ------------------------------------------------------------------------------

    def take_fault(self, e: str) -> dict[str, Any] | None:
        """The first queued fault whose endpoint prefixes ``e``, counted down (None if none)."""
        with self.lock:
            for k, fault in enumerate(self.faults):
                if e.startswith(fault.get("endpoint", "")):
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        del self.faults[k]
                    return dict(fault)
        return None

    # --- answers -----------------------------------------------------------------------------

    def answer(self, e: str) -> tuple[str, int]:
        """The XML document answering endpoint ``e`` and the number of items in it.

        Raises:
            ApiError: Kayako's error answer (unknown endpoint, invalid argument, no such ticket).
        """
        parts = [p for p in e.strip("/").split("/")]
        route = "/".join(parts[:3]).lower()
        for root, (_file, item, endpoint) in LOOKUP_FILES.items():
            if "/".join(parts).lower() == endpoint.strip("/").lower():
                return self._list(root, item, self.lookups.lists[root])
        if "/".join(parts).lower() == "base/staff":
            return self._list("staffusers", "staff", self.lookups.lists["staff"])
        if route == "tickets/ticket/listall":
            return self.list_all(parts[3:])
        if route == "tickets/ticketpost/listall" and len(parts) == 4:
            ticket = self._find(parts[3])
            posts = self._posts(ticket)
            body = "".join(self._post(p, 1) for p in posts)
            return f"{XML_DECLARATION}<posts>\n{body}</posts>\n", len(posts)
        if "/".join(parts[:2]).lower() == "tickets/ticket" and len(parts) == 3:
            ticket = self._find(parts[2])
            return self._tickets_document([ticket], posts=True), 1
        raise ApiError(404, f"Invalid endpoint: {e}")

    def _list(self, root: str, item: str, entries: list[list[tuple[str, str]]]) -> tuple[str, int]:
        s = self.style
        out = [XML_DECLARATION, f"<{root}>\n"]
        for entry in entries:
            out.append(f"{s.indent(1)}<{item}>\n")
            out.extend(s.element(tag, value, 2) for tag, value in entry)
            out.append(f"{s.indent(1)}</{item}>\n")
        out.append(f"</{root}>\n")
        return "".join(out), len(entries)

    def _find(self, text: str) -> Ticket:
        with self.lock:
            if text.isdigit() and int(text) in self.tickets:
                return self.tickets[int(text)]
            for ticket in self.tickets.values():  # Kayako also takes the mask id
                if ticket.fields[0] == text:
                    return ticket
        raise ApiError(404, "Ticket not Found")

    def _posts(self, ticket: Ticket) -> list[dict[str, str]]:
        with self.lock:
            if ticket.posts is None:
                ticket.posts = self.generator.posts(ticket)
            return ticket.posts

    def _post(self, post: dict[str, str], depth: int) -> str:
        pad = self.style.indent(depth)
        write = self._post_xml if depth > 1 else self._post_xml_alone
        return f"{pad}<post>\n{write([post[k] for k in POST_FIELDS])}{pad}</post>\n"

    def _ticket(self, ticket: Ticket, *, posts: bool) -> str:
        s = self.style
        pad = s.indent(1)
        out = [
            f'{pad}<ticket id="{ticket.id}" flagtype={quoteattr(ticket.flagtype)}>\n',
            self._ticket_xml(ticket.fields),
        ]
        out.extend(s.tagged(tag, attrs, text, 2) for tag, attrs, text in ticket.extras)
        if posts:
            inner = "".join(self._post(p, 3) for p in self._posts(ticket))
            out.append(f"{s.indent(2)}<posts>\n{inner}{s.indent(2)}</posts>\n")
        out.append(f"{pad}</ticket>\n")
        return "".join(out)

    def _tickets_document(self, tickets: Iterable[Ticket], *, posts: bool = False) -> str:
        body = "".join(self._ticket(t, posts=posts) for t in tickets)
        return f"{XML_DECLARATION}<tickets>\n{body}</tickets>\n"

    def list_all(self, args: list[str]) -> tuple[str, int]:
        """``ListAll/$departmentid$/$ticketstatusid$/$ownerstaffid$/$userid$/$count$/$start$/
        $sortField$/$sortOrder$``: trailing arguments may be left out (status, owner and user
        -1, no count, start 0, sort by ticket id, ASC).
        """
        if not args or not args[0]:
            raise ApiError(400, "Department ID is Invalid")
        padded = [*args, *[""] * 8][:8]
        departments = _ids(padded[0], "Department ID is Invalid")
        statuses = _ids(padded[1] or "-1", "Ticket Status ID is Invalid")
        owners = _ids(padded[2] or "-1", "Owner Staff ID is Invalid")
        users = _ids(padded[3] or "-1", "User ID is Invalid")
        count = _number(padded[4] or "-1", "Count is Invalid")
        start = max(_number(padded[5] or "0", "Start is Invalid"), 0)
        field = padded[6].lower() if padded[6].lower() in SORT_FIELDS else "ticketid"
        descending = padded[7].upper() == "DESC"
        if statuses == {-1}:  # the trap (FORMATS.md 1): -1 hides resolved statuses
            statuses = self.lookups.open_statuses()
        key = (
            frozenset(departments & self.lookups.ticket_departments()),
            frozenset(statuses),
            frozenset(owners),
            frozenset(users),
            field,
            descending,
        )
        with self.lock:
            order = self._order(key)
            page = order[start : start + count] if count > 0 else order[start:]
            text = self._tickets_document(page)
        return text, len(page)

    def _order(self, key: tuple) -> list[Ticket]:
        """The tickets matching ``key``'s filters in its order (cached until the next change)."""
        cached = self._orders.get(key)
        if cached is not None:
            self._orders.move_to_end(key)
            return cached
        departments, statuses, owners, users, field, descending = key
        dept_ids = {str(i) for i in departments}
        status_ids = {str(i) for i in statuses}
        owner_ids = None if -1 in owners else {str(i) for i in owners}
        user_ids = None if -1 in users else {str(i) for i in users}
        d, s, o, u = F["departmentid"], F["statusid"], F["ownerstaffid"], F["userid"]
        chosen = [
            t
            for t in self.tickets.values()
            if t.fields[d] in dept_ids
            and t.fields[s] in status_ids
            and (owner_ids is None or t.fields[o] in owner_ids)
            and (user_ids is None or t.fields[u] in user_ids)
        ]
        chosen.sort(key=self._sort_key(field), reverse=descending)
        self._orders[key] = chosen
        while len(self._orders) > 8:
            self._orders.popitem(last=False)
        return chosen

    def _sort_key(self, field: str) -> Callable[[Ticket], tuple]:
        """Sort key of a ``$sortField$``; ties go by ticket id (so paging is deterministic)."""
        if field in ("lastactivity", "dateline", "duetime"):
            k = F[{"dateline": "creationtime", "duetime": "nextreplydue"}.get(field, field)]
            return lambda t: (_int(t.fields[k]), t.id)
        if field in ("ticketstatustitle", "departmenttitle"):
            k = F["statusid" if field == "ticketstatustitle" else "departmentid"]
            table = self.lookups.statuses if k == F["statusid"] else self.lookups.departments
            titles = {str(i): e.get("title", "") for i, e in table.items()}
            return lambda t: (titles.get(t.fields[k], ""), t.id)
        return lambda t: (t.id,)

    # --- changes (the control API) -----------------------------------------------------------

    def _changed(self) -> None:
        self.version += 1
        self._orders.clear()

    def touch(self, ids: list[int] | None, count: int | None, at: int) -> list[int]:
        """Set the last activity of tickets ``ids`` (or the first ``count`` of a shuffle) to ``at``."""
        with self.lock:
            if ids is None:
                order = sorted(self.tickets)
                random.Random(self.seed + 1).shuffle(order)
                ids = order[: count or 0]
            touched = [i for i in ids if i in self.tickets]
            for i in touched:
                self.tickets[i].fields[F["lastactivity"]] = str(at)
            self._changed()
        return touched

    def add(self, count: int, at: int) -> list[int]:
        """Add ``count`` new tickets created (and last active) at ``at``; return their ids."""
        with self.lock:
            first = max(self.tickets, default=0) + 1
            if self.synthetic:
                new = self.generator.tickets(first, count, at=at)
            else:  # the samples: copies of their first ticket under new ids and mask ids
                template = next(iter(self.tickets.values()))
                masks = mask_ids(np.arange(first, first + count), self.generator.offset)
                new = []
                for k, mask in enumerate(masks):
                    fields = list(template.fields)
                    fields[F["displayid"]] = mask
                    fields[F["creationtime"]] = fields[F["lastactivity"]] = str(at)
                    new.append(Ticket(first + k, fields, extras=[], posts=[]))
            for ticket in new:
                self.tickets[ticket.id] = ticket
            self._changed()
        return [t.id for t in new]

    def add_post(
        self, ticket_id: int, *, contents: str, ishtml: bool, staff_id: int, at: int
    ) -> int:
        """Post on a ticket (by staff ``staff_id``, by its user if 0) at ``at``, which becomes
        its last activity; return the post's id.

        Raises:
            KeyError: No such ticket.
        """
        with self.lock:
            ticket = self.tickets[ticket_id]
            if ticket.posts is None:
                ticket.posts = self.generator.posts(ticket)
            self.last_post_id += 1
            post = self.generator.post(
                ticket, self.last_post_id, at, contents=contents, ishtml=ishtml, staff_id=staff_id
            )
            ticket.posts.append(post)
            f = ticket.fields
            f[F["lastactivity"]] = str(at)
            f[F["lastuserreply" if staff_id == 0 else "laststaffreply"]] = str(at)
            f[F["lastreplier"]] = post["fullname"]
            f[F["replies"]] = str(_int(f[F["replies"]]) + 1)
            self._changed()
        return self.last_post_id

    def delete(self, ids: list[int]) -> list[int]:
        """Remove tickets ``ids``; return those that were there."""
        with self.lock:
            gone = [i for i in ids if self.tickets.pop(i, None) is not None]
            self._changed()
        return gone

    def state(self) -> dict[str, Any]:
        """Ticket count, the latest last activity (epoch s, null without tickets), the max id."""
        with self.lock:
            k = F["lastactivity"]
            last = max((_int(t.fields[k]) for t in self.tickets.values()), default=None)
            return {
                "tickets": len(self.tickets),
                "max_lastactivity": last,
                "max_id": max(self.tickets, default=None),
                "version": self.version,
                "faults_queued": len(self.faults),
            }


def _int(text: str) -> int:
    return int(text) if text.lstrip("-").isdigit() else 0


def _ids(text: str, invalid: str) -> set[int]:
    """A comma-separated list of ids (``-1`` = no filter)."""
    try:
        return {int(part) for part in text.split(",")}
    except ValueError:
        raise ApiError(400, invalid) from None


def _number(text: str, invalid: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(400, invalid) from None


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


class Handler(BaseHTTPRequestHandler):
    """Answers the API under :data:`API_PATH` and the control API under ``/_control/``."""

    server: KayakoHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive: a pull of many pages reuses its connection
    # headers and body go out in two writes: without TCP_NODELAY the body of a small answer
    # waits for the client's delayed ACK of the headers (figures: bench/RESULTS.md, the pull)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is at ``GET /_control/log``."""

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode("utf-8"), "application/json")

    def do_GET(self) -> None:
        """The API, ``/_control/log`` and ``/_control/state``."""
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_control/log":
            with self.server.desk.lock:
                self._json(200, list(self.server.desk.log))
        elif url.path == "/_control/state":
            self._json(200, self.server.desk.state())
        elif url.path == API_PATH:
            self._api(url.query)
        else:
            answer = _Answer.text(404, "Not Found")
            self._send(answer.status, answer.body, answer.content_type)

    def do_POST(self) -> None:
        """The control API."""
        desk = self.server.desk
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw) if raw.strip() else {}
        except ValueError as err:
            self._json(400, {"error": f"body is not JSON: {err}"})
            return
        now = int(time.time())
        try:
            if path == "/_control/faults":
                faults = [_fault(f) for f in data]
                with desk.lock:
                    desk.faults = faults
                self._json(200, {"queued": len(faults)})
            elif path == "/_control/touch":
                at = int(data.get("at", now))
                ids = [int(i) for i in data["ids"]] if "ids" in data else None
                touched = desk.touch(ids, int(data.get("count", 0)), at)
                self._json(200, {"touched": touched, "at": at})
            elif path == "/_control/add":
                at = int(data.get("at", now))
                self._json(200, {"added": desk.add(int(data.get("count", 1)), at), "at": at})
            elif path == "/_control/post":
                at = int(data.get("at", now))
                post_id = desk.add_post(
                    int(data["ticket"]),
                    contents=str(data["contents"]),
                    ishtml=bool(data.get("ishtml", 0)),
                    staff_id=int(data.get("staffid", 1)),
                    at=at,
                )
                self._json(200, {"post": post_id, "at": at})
            elif path == "/_control/delete":
                self._json(200, {"deleted": desk.delete([int(i) for i in data["ids"]])})
            elif path == "/_control/log/clear":
                with desk.lock:
                    desk.log.clear()
                self._json(200, {"cleared": True})
            else:
                self._json(404, {"error": f"no control endpoint {path}"})
        except (KeyError, TypeError, ValueError) as err:
            self._json(400, {"error": f"bad control request: {err!r}"})

    def _api(self, query_text: str) -> None:
        desk = self.server.desk
        query = {k: v[0] for k, v in urllib.parse.parse_qs(query_text).items()}
        path = urllib.parse.unquote(query_text.split("&", 1)[0])
        if "e" not in query and path.startswith("/") and "=" not in path:
            query["e"] = path  # Kayako's other form: index.php?/Tickets/Ticket/ListAll/…&apikey=…
        e = "/" + query.get("e", "").strip("/")
        entry: dict[str, Any] = {
            "e": query.get("e", ""),
            "apikey": query.get("apikey", ""),
            "salt": query.get("salt", ""),
            "signature_ok": False,
            "status": 0,
            "count": None,
            "fault": None,
        }
        with desk.lock:  # logged on arrival: a test sees a request that is still being answered
            desk.log.append(entry)
        ok, refusal = desk.authenticate(query)
        fault = desk.take_fault(e) if not refusal else None
        with desk.lock:
            entry["signature_ok"], entry["fault"] = ok, fault
        count = None
        if refusal:
            answer = _Answer.text(401, refusal)
        else:
            if fault is not None:
                time.sleep(fault["delay"])
            try:
                if fault is not None and fault["kind"] != "delay":
                    answer = _fault_answer(desk, fault, e)
                else:
                    text, count = desk.answer(e)
                    answer = _Answer(200, text.encode("utf-8"), "text/xml; charset=UTF-8")
            except ApiError as err:
                answer = _Answer.text(err.status, err.text)
        with desk.lock:  # complete before the answer leaves: the client never sees it first
            entry["status"], entry["count"] = answer.status, count
        self._send(answer.status, answer.body, answer.content_type, answer.headers)


class _Answer:
    """An HTTP answer to send: status, body bytes, content type, extra headers."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers

    @classmethod
    def text(cls, status: int, text: str, headers: Sequence[tuple[str, str]] = ()) -> _Answer:
        """Kayako's error form: a one-line text body."""
        return cls(status, (text + "\n").encode("utf-8"), "text/plain; charset=UTF-8", headers)


def _fault_answer(desk: HelpDesk, fault: dict[str, Any], e: str) -> _Answer:
    """What a fault answers instead of the API (after its delay)."""
    status = fault["status"]
    headers = [("Retry-After", fault["retry_after"])] if fault["retry_after"] else []
    body = fault["body"]
    if body == "html":
        return _Answer(status, LOGIN_PAGE.encode("utf-8"), "text/html; charset=UTF-8", headers)
    if body == "truncated":
        try:
            text = desk.answer(e)[0]
        except ApiError as err:
            text = err.text
        cut = text[: len(text) // 2].encode("utf-8")  # cut between characters
        return _Answer(status, cut, "text/xml; charset=UTF-8", headers)
    if body == "empty":
        return _Answer(status, b"", "text/plain; charset=UTF-8", headers)
    return _Answer.text(status, _REASONS.get(status, "Service Unavailable"), headers)


def _fault(spec: dict[str, Any]) -> dict[str, Any]:
    """A fault as queued: endpoint prefix, times left, status, body kind, Retry-After, delay."""
    unknown = set(spec) - {"endpoint", "times", "status", "retry_after", "delay", "body"}
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}")
    body = spec.get("body")
    if body not in (None, "text", "html", "truncated", "empty"):
        raise ValueError(f"fault body must be text, html, truncated or empty, not {body!r}")
    endpoint = spec.get("endpoint", "")
    fault = {
        "endpoint": "/" + endpoint.strip("/") if endpoint else "",
        "times": int(spec.get("times", 1)),
        "delay": float(spec.get("delay", 0)),
        "retry_after": str(spec["retry_after"]) if spec.get("retry_after") is not None else "",
    }
    if body is None and "status" not in spec:
        return {**fault, "kind": "delay", "status": 200, "body": ""}
    default = 200 if body in ("html", "truncated", "empty") else 503
    return {**fault, "kind": body or "text", "status": int(spec.get("status", default)),
            "body": body or "text"}  # fmt: skip


class KayakoHttpServer(ThreadingHTTPServer):
    """The HTTP server holding the :class:`HelpDesk`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], desk: HelpDesk) -> None:
        super().__init__(address, Handler)
        self.desk = desk


def main(argv: Sequence[str] | None = None) -> None:
    """Run the stand-in server until it is terminated."""
    parser = argparse.ArgumentParser(prog="python -m tests.kayako_server", description=__doc__)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tickets", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", choices=("wire", "doc"), default="wire")
    parser.add_argument("--samples", type=Path)
    parser.add_argument("--start", type=int, help="epoch seconds the data ends at (default now)")
    args = parser.parse_args(argv)
    desk = HelpDesk(
        api_key=args.api_key,
        secret=args.secret,
        tickets=args.tickets,
        seed=args.seed,
        style=args.style,
        samples=args.samples,
        start=args.start if args.start is not None else int(time.time()),
    )
    server = KayakoHttpServer((args.host, args.port), desk)
    host, port = server.server_address[:2]
    print(f"http://{host}:{port}{API_PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# --------------------------------------------------------------------------------------------
# The test-side wrapper
# --------------------------------------------------------------------------------------------


class KayakoServer:
    """The stand-in server as a child process (``python -m tests.kayako_server``).

    Use as a context manager; :meth:`stop` terminates it. The control methods call the
    unsigned ``/_control/`` API.
    """

    def __init__(
        self,
        api_key: str,
        secret: str,
        *,
        tickets: int = 200,
        seed: int = 1,
        style: str = "wire",
        samples: Path | None = None,
        start: int | None = None,
        timeout: float = 120.0,
    ) -> None:
        args = [sys.executable, "-m", "tests.kayako_server", "--api-key", api_key]
        args += ["--secret", secret, "--tickets", str(tickets), "--seed", str(seed)]
        args += ["--style", style]
        if samples is not None:
            args += ["--samples", str(samples)]
        if start is not None:
            args += ["--start", str(start)]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._proc = subprocess.Popen(
            args, cwd=REPO, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        self.pid = self._proc.pid
        line: list[str] = []
        reader = threading.Thread(
            target=lambda: line.append(self._proc.stdout.readline()), daemon=True
        )
        reader.start()
        reader.join(timeout)
        if not line or not line[0].startswith("http://"):
            self.stop()
            self._stderr.seek(0)
            err = self._stderr.read().decode("utf-8", "replace")[-4000:]
            raise RuntimeError(
                f"the stand-in Kayako server did not start within {timeout} s: {err}"
            )
        self.url = line[0].strip()
        self.base = self.url.removesuffix(API_PATH)

    def __enter__(self) -> KayakoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._stderr.close()

    def _control(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(self.base + "/_control/" + path, data=data)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read())

    def faults(self, faults: list[dict[str, Any]]) -> dict[str, Any]:
        """Queue ``faults`` (replacing those still queued); see the module docstring."""
        return self._control("faults", faults)

    def touch(
        self, ids: Sequence[int] | None = None, *, count: int | None = None, at: int | None = None
    ) -> list[int]:
        """Set the last activity of tickets (``ids``, or ``count`` of a fixed shuffle); their ids."""
        payload: dict[str, Any] = {"ids": list(ids)} if ids is not None else {"count": count}
        if at is not None:
            payload["at"] = at
        return self._control("touch", payload)["touched"]

    def add(self, count: int, *, at: int | None = None) -> list[int]:
        """Add ``count`` new tickets created at ``at`` (default now); their internal ids."""
        payload: dict[str, Any] = {"count": count} if at is None else {"count": count, "at": at}
        return self._control("add", payload)["added"]

    def post(
        self,
        ticket: int,
        contents: str,
        *,
        ishtml: bool = False,
        staffid: int = 1,
        at: int | None = None,
    ) -> int:
        """Post on ticket ``ticket`` (by staff ``staffid``, by its user if 0); the post's id."""
        payload: dict[str, Any] = {"ticket": ticket, "contents": contents, "ishtml": int(ishtml)}
        payload["staffid"] = staffid
        if at is not None:
            payload["at"] = at
        return self._control("post", payload)["post"]

    def delete(self, ids: Sequence[int]) -> list[int]:
        """Remove tickets; the ids that were there."""
        return self._control("delete", {"ids": list(ids)})["deleted"]

    def log(self) -> list[dict[str, Any]]:
        """One entry per API request so far (see the module docstring)."""
        return self._control("log")

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        self._control("log/clear", {})

    def state(self) -> dict[str, Any]:
        """Ticket count, latest last activity, max id."""
        return self._control("state")


def signed_query(e: str, api_key: str, secret: str, salt: str | None = None) -> str:
    """The query string of a signed API request for endpoint ``e`` (a fresh salt unless given)."""
    salt = salt if salt is not None else secrets.token_urlsafe(18)
    digest = hmac.new(secret.encode("utf-8"), salt.encode("utf-8"), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode("ascii")
    return urllib.parse.urlencode({"e": e, "apikey": api_key, "salt": salt, "signature": signature})


def get(url: str, timeout: float = 60) -> tuple[int, str, dict[str, str]]:
    """GET ``url``: (status, body text, headers), for any status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read().decode("utf-8"), dict(answer.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8"), dict(err.headers)


__all__ = ["KayakoServer", "get", "signed_query"]

if __name__ == "__main__":
    main()
