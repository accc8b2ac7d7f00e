"""The pull's documents as Kayako writes them: one ``<tickets>`` of pages, one ``<posts>``.

A page of ``ListAll`` may come in either style of FORMATS.md 2 (the live wire style or the
documented, indented one); the pull writes every ticket it keeps in the live wire style: each
non-empty value in ``<![CDATA[…]]>``, empty values as ``<tag />``, one element per line without
indentation, attributes as sent; so are the posts. The lookup lists are written as they were
received.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from xml.sax.saxutils import quoteattr

from ipchange_core.demo.text import cdata
from ipchange_core.ingest.kayako_posts import POSTS_ROOT
from ipchange_core.ingest.kayako_xml import XML_ROOT
from ipchange_core.kayako_api.paging import PageTicket

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def wire_xml(element: ET.Element) -> str:
    """``element`` and its children in the live wire style, one element per line."""
    attributes = "".join(f" {name}={quoteattr(value)}" for name, value in element.attrib.items())
    if len(element):
        inner = "".join(wire_xml(child) for child in element)
        return f"<{element.tag}{attributes}>\n{inner}</{element.tag}>\n"
    if element.text:
        return f"<{element.tag}{attributes}><![CDATA[{cdata(element.text)}]]></{element.tag}>\n"
    return f"<{element.tag}{attributes} />\n"


def page_tickets(root: ET.Element) -> list[PageTicket]:
    """The ``<ticket>`` elements of a ``<tickets>`` answer, in its order, in the wire style."""
    tickets = []
    for element in root.findall("ticket"):
        text = (element.findtext("lastactivity") or "").strip()
        tickets.append(
            PageTicket(
                id=element.get("id", "").strip(),
                lastactivity=int(text) if text.isdigit() else None,
                xml=wire_xml(element),
            )
        )
    return tickets


def write_tickets(path: Path, tickets: Iterable[PageTicket]) -> None:
    """Write one ``<tickets>`` document of ``tickets``, newest activity first (then by id)."""
    ordered = sorted(
        tickets, key=lambda t: (-(t.lastactivity or 0), int(t.id) if t.id.isdigit() else 0, t.id)
    )
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(XML_DECLARATION + f"<{XML_ROOT}>\n")
        out.writelines(t.xml for t in ordered)
        out.write(f"</{XML_ROOT}>\n")


def write_posts(path: Path, answers: Iterable[ET.Element]) -> int:
    """Write the ``<post>`` elements of ``<posts>`` answers as one ``<posts>`` document.

    Posts keep the answers' order; each answer is written as it comes (``answers`` may fetch
    lazily). Kayako's ``ListAll`` of posts writes the same document for one ticket.

    Returns:
        The posts written.
    """
    written = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(XML_DECLARATION + f"<{POSTS_ROOT}>\n")
        for answer in answers:
            posts = answer.findall("post")
            out.writelines(wire_xml(post) for post in posts)
            written += len(posts)
        out.write(f"</{POSTS_ROOT}>\n")
    return written
