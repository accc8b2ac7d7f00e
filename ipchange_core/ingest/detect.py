"""The input formats and how a file's format is recognised from its header or XML root."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import clip
from ipchange_core.ingest.kayako_audit import audit_variant
from ipchange_core.ingest.kayako_lookups import LOOKUP_LISTS
from ipchange_core.ingest.kayako_posts import POSTS_ROOT, posts_answer
from ipchange_core.ingest.kayako_report import load_mapping
from ipchange_core.ingest.kayako_xml import XML_ROOT, xml_root
from ipchange_core.ingest.tabular import (
    BOM,
    XLSX_MAGIC,
    excel_delimiter,
    read_head,
    refuse_binary,
    xlsx_header,
)
from ipchange_core.schema import TABLES

FORMAT_TABLES: dict[str, str] = {
    "kayako-xml": "tickets",
    "kayako-csv": "tickets",
    "kayako-audit": "ticket_events",
    "kayako-lookups": "kayako_lookups",
    "kayako-posts": "intake",
    "tickets": "tickets",
    "events": "ticket_events",
    "intake": "intake",
    "changes": "changes",
}
"""Recognised input format → the table it loads (SPEC 6 ``--format``): a canonical table, or
``kayako_lookups`` for Kayako's lookup lists."""


FORMATS = tuple(FORMAT_TABLES)
"""Names accepted by ``format=`` besides ``auto``."""


CANONICAL_FORMATS = {
    fmt: table for fmt, table in FORMAT_TABLES.items() if not fmt.startswith("kayako-")
}
"""The formats of SPEC 3.4, recognised by their header."""


def detect_format(path: Path, *, mapping: Path | None = None) -> str:
    """Recognise a file's format from its header row or XML root element.

    Kayako XML has the root ``<tickets>`` (a lookup list: ``<departments>``, ``<ticketstatuses>``,
    ``<tickettypes>``, ``<ticketpriorities>``); an answer with posts has the root ``<posts>``,
    or ``<tickets>`` with ``<posts>`` in its first ticket (:func:`.kayako_posts.posts_answer`:
    read as intake from the cloud-info macro); a Kayako audit log is a database export of
    ``ticketauditlogs`` or a report on Ticket Audit Logs (:func:`.kayako_audit.audit_variant`);
    a Kayako report CSV has a column the mapping reads ``ticket_id`` from; a canonical CSV/XLSX
    is the table sharing the most (at least two) column names with the header.

    Args:
        path: The file.
        mapping: The report column mapping (default: the packaged one).

    Returns:
        One of :data:`FORMATS`.

    Raises:
        InvalidInputError: The file is unreadable, empty, binary, or matches no format.
    """
    path = Path(path)
    name = path.name
    head = read_head(path)
    if head.startswith(XLSX_MAGIC):
        header = xlsx_header(path)
    else:
        start = head.removeprefix(BOM).lstrip()
        if start.startswith(b"<"):
            root = xml_root(path, file=name)
            if root in LOOKUP_LISTS:
                return "kayako-lookups"
            if root not in (XML_ROOT, POSTS_ROOT):
                raise InvalidInputError(
                    f"XML root element is <{root}>, not a Kayako <{XML_ROOT}> or "
                    f"<{POSTS_ROOT}> export",
                    file=name,
                )
            return "kayako-posts" if posts_answer(path, file=name) else "kayako-xml"
        refuse_binary(head, name)
        delimiter, rest = excel_delimiter(head.removeprefix(BOM))
        text = rest.decode("utf-8", errors="replace")
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = next((row for row in rows if row), [])
    return _format_from_header([h.strip() for h in header], mapping, name)


def _format_from_header(header: list[str], mapping: Path | None, name: str) -> str:
    cols = set(header) - {""}
    if not cols:
        raise InvalidInputError("has no header row", file=name)
    if audit_variant(header) is not None:
        return "kayako-audit"
    if load_mapping(mapping).ticket_id_labels & cols:
        return "kayako-csv"
    scores = {
        fmt: len(cols & {c.name for c in TABLES[table]}) for fmt, table in CANONICAL_FORMATS.items()
    }
    best = max(scores.values())
    winners = [fmt for fmt, score in scores.items() if score == best]
    if best >= 2 and len(winners) == 1:
        return winners[0]
    shown = ", ".join(header[:8]) + (", …" if len(header) > 8 else "")
    raise InvalidInputError(
        f"not a recognised input: its header ({clip(shown)}) matches none of the formats "
        f"{', '.join(FORMATS)}",
        file=name,
    )
