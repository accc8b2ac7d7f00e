"""The requests' ticket posts as Kayako writes them, with the agents' "cloud info" macro.

``kayako-posts.xml`` holds the posts of every IP change request ticket, ticket after ticket, as
``/Tickets/TicketPost/ListAll/$ticketid$`` answers them (issue 27): root ``<posts>``, one
``<post>`` per post in Kayako's element order, the live wire style (every non-empty value in
CDATA, an empty one as ``<tag />``, one element per line, no indentation). A post names its
ticket by Kayako's internal id only.

What agents write, as the procedure's step 1 has them do it: the staff post that opens an
agent's ticket holds the macro (``Cloud info`` then ``Label: value`` lines) with the intake
record's values; a customer's ticket opens with the customer's own words, and the agent who
picks it up posts the macro. A share of the macros is written in HTML (Kayako's editor:
``<p>``, ``<br />``, entities), some were typed by hand (labels in other case, a space before
the colon), some leave fields out (a line with nothing after the colon, or no line), and some
are corrected by a second macro posted later. Requests without an intake record get no macro:
a customer's post, or a staff note without it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from ipchange_core.demo.reference import NA, STAFF, ZONE
from ipchange_core.demo.text import Rows, cdata

POSTS_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<posts>\n'
POSTS_FOOTER = "</posts>\n"

POST_ELEMENTS = (
    "id",
    "ticketpostid",
    "ticketid",
    "dateline",
    "userid",
    "fullname",
    "email",
    "emailto",
    "ipaddress",
    "hasattachments",
    "creator",
    "isthirdparty",
    "ishtml",
    "isemailed",
    "staffid",
    "contents",
    "isprivate",
)
"""The children of a ``<post>``, in the order Kayako writes them."""


MACRO_LABELS = (
    ("channel", "Channel"),
    ("requester_type", "Requester"),
    ("account", "Account"),
    ("site", "Site"),
    ("reseller", "Reseller"),
    ("contact_name", "Contact"),
    ("contact_phone", "Contact phone"),
    ("person_of_record", "Person of record"),
    ("reason", "Reason"),
    ("current_ip", "Current IP"),
    ("new_ip", "New IP"),
    ("requested_change_at", "Requested change"),
    ("ticket_number_given", "Ticket number given"),
    ("transferred_to_queue", "Transferred to queue"),
)
"""The procedure's macro: each intake field's line, in the macro's order."""


WORDS = {
    "channel": {
        "phone": "phone",
        "email": "email",
        "chat": "chat",
        "customer_ticket": "customer ticket",
    },
    "reason": {
        "isp_change": "ISP change",
        "equipment_change": "equipment change",
        "wan_lan": "WAN/LAN",
        "other": "other",
    },
}
"""What the macro's pick lists write for the enumerated values."""


CUSTOMER_WORDS = (
    "Hi, we are changing our internet provider and need the static IP on our account updated.",
    "Please update the IP address for our site, new router goes in this week.",
    "Our ISP is moving us to a new block. Can you change the IP on file? Thanks",
)
STAFF_NOTES = (
    "Routed to Implementation for scheduling.",
    "Left a voicemail for the contact to confirm the window.",
    "Waiting on the customer for the new address.",
)


def _element(tag: str, value: str) -> str:
    return f"<{tag}><![CDATA[{cdata(value)}]]></{tag}>" if value else f"<{tag} />"


def post_xml(values: Mapping[str, str]) -> str:
    """One ``<post>`` as a live Kayako server writes it (``values``: element → text)."""
    body = "\n".join(_element(tag, values.get(tag, "")) for tag in POST_ELEMENTS)
    return f"<post>\n{body}\n</post>\n"


def _requested_text(epoch: int, asap: bool, iso: bool) -> str:
    """The macro's requested change time: ``m/d/yyyy h:mm AM/PM`` local, or ISO-8601 local."""
    if asap:
        return "ASAP"
    if epoch == NA:
        return ""
    local = np.datetime64(int(epoch), "s").astype(object).replace(tzinfo=ZoneInfo("UTC"))
    local = local.astimezone(ZoneInfo(ZONE))
    if iso:
        return local.strftime("%Y-%m-%d %H:%M")
    hour = local.hour % 12 or 12
    return f"{local.month}/{local.day}/{local.year} {hour}:{local.minute:02d} " + (
        "AM" if local.hour < 12 else "PM"
    )


def macro_lines(values: Mapping[str, str], *, typed: int, leave_out: bool) -> list[str]:
    """The macro's lines: ``Cloud info`` then ``Label: value``.

    ``typed`` 0 is the macro as inserted; 1 labels in lower case, 2 a space before the colon,
    3 labels in upper case (typed by hand). ``leave_out`` drops the lines of blank fields (else
    they stay, empty after the colon).
    """
    lines = ["Cloud info"]
    for field, label in MACRO_LABELS:
        value = values.get(field, "")
        if not value and leave_out:
            continue
        shown = {1: label.lower(), 3: label.upper()}.get(typed, label)
        colon = " :" if typed == 2 else ":"
        lines.append(f"{shown}{colon} {value}".rstrip())
    return lines


def html_post(lines: Sequence[str], *, paragraphs: bool) -> str:
    """Lines as Kayako's HTML editor writes them: one ``<p>`` each, or ``<br />`` between."""
    escaped = [html.escape(line, quote=False).replace("\u2013", "&ndash;") for line in lines]
    if paragraphs:
        return "".join(f"<p>{line}</p>" for line in escaped)
    return "<p>" + "<br />\n".join(escaped) + "</p>"


def _staff_email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@tsc.example"


def posts_rows(
    rng: np.random.Generator,
    *,
    internal: np.ndarray,
    created: np.ndarray,
    received: np.ndarray,
    as_of: int,
    customer: np.ndarray,
    intake: np.ndarray,
    staff: np.ndarray,
    requester: Sequence[str],
    requester_id: np.ndarray,
    fields: Mapping[str, Sequence[str]],
    requested: np.ndarray,
    asap: np.ndarray,
) -> Rows:
    """The posts of a chunk's request tickets (see the module docstring).

    Args:
        rng: Drawn from only here (after every other file's draws).
        internal: Kayako's internal ticket id of each request.
        created: Its creation, epoch seconds.
        received: When the request was received (epoch seconds).
        as_of: Nothing happens after this instant (epoch seconds).
        customer: The customer created the ticket.
        intake: The request has an intake record (its macro is posted).
        staff: The staff member who posts (index into ``("", *STAFF)``).
        requester: The customer's name.
        requester_id: The customer's Kayako user id.
        fields: Intake field → its value text per request (the intake record's values;
            enumerations as the canonical values; blank where the record has none).
        requested: Requested change time, epoch seconds (``NA``: none).
        asap: The customer asked for the change ASAP.

    Returns:
        One row per post (``Rows.n`` posts), ready to write between the header and footer.
    """
    n = len(internal)
    typed = np.where(rng.random(n) < 0.15, rng.integers(1, 4, n), 0).tolist()
    leave_out = (rng.random(n) < 0.5).tolist()
    is_html = (rng.random(n) < 0.3).tolist()
    paragraphs = (rng.random(n) < 0.5).tolist()
    iso = (rng.random(n) < 0.1).tolist()
    corrected = (rng.random(n) < 0.08).tolist()
    delay = rng.integers(600, 4 * 3600, n).tolist()
    pick = rng.integers(0, 1 << 30, n).tolist()
    names = ("", *STAFF)
    out: list[str] = []
    for i in range(n):
        ticket = int(internal[i])
        made = int(created[i])
        name = names[int(staff[i])]
        posts: list[dict[str, str]] = []
        if customer[i]:
            posts.append(
                {
                    "dateline": str(made),
                    "userid": str(int(requester_id[i])),
                    "fullname": requester[i],
                    "email": requester[i].lower().replace(" ", ".") + "@customer.example",
                    "ipaddress": f"203.0.113.{pick[i] % 250 + 1}",
                    "creator": "2",
                    "ishtml": "0",
                    "isemailed": "1",
                    "contents": CUSTOMER_WORDS[pick[i] % len(CUSTOMER_WORDS)],
                }
            )
        staff_post = {
            "userid": "0",
            "fullname": name,
            "email": _staff_email(name) if name else "",
            "creator": "1",
            "staffid": str(int(staff[i])),
        }
        if intake[i]:
            values = {f: fields[f][i] for f, _ in MACRO_LABELS}
            for field, words in WORDS.items():
                values[field] = words.get(values[field], values[field])
            values["requested_change_at"] = _requested_text(
                int(requested[i]), bool(asap[i]), iso[i]
            )
            at = max(made, int(received[i])) + (120 if customer[i] else 0)
            at = min(at, as_of - 1)
            versions = [(at, values, "")]
            later = at + delay[i]
            if corrected[i] and later < as_of and values["new_ip"]:
                wrong = dict(values, new_ip=_mistyped(values["new_ip"]))
                versions = [(at, wrong, ""), (later, values, "Corrected new IP, see below.")]
            for when, shown, note in versions:
                lines = macro_lines(shown, typed=typed[i], leave_out=leave_out[i])
                if note:
                    lines.insert(0, note)
                text = (
                    html_post(lines, paragraphs=paragraphs[i]) if is_html[i] else "\n".join(lines)
                )
                posts.append(
                    {**staff_post, "dateline": str(when), "ishtml": "1" if is_html[i] else "0"}
                    | {"contents": text}
                )
        elif not customer[i]:
            note = STAFF_NOTES[pick[i] % len(STAFF_NOTES)]
            posts.append({**staff_post, "dateline": str(made), "ishtml": "0", "contents": note})
        for k, post in enumerate(posts):
            post_id = str(ticket * 10 + k)
            post.update(
                id=post_id,
                ticketpostid=post_id,
                ticketid=str(ticket),
                hasattachments="0",
                isthirdparty="0",
                isemailed=post.get("isemailed", "0"),
                staffid=post.get("staffid", "0"),
                isprivate="0",
            )
            out.append(post_xml(post))
    return Rows([out], {}, len(out))


def _mistyped(ip: str) -> str:
    """The address with its last group's digits mistyped (what a correction fixes)."""
    head, sep, last = ip.rpartition(":" if ":" in ip else ".")
    if ":" in ip:
        return f"{head}{sep}{(int(last or '0', 16) + 1) % 0xFFFF:x}"
    return f"{head}{sep}{(int(last) + 7) % 254 + 1}"
