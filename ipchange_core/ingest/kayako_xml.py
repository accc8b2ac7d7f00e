"""Kayako ticket XML exports (REST ``ListAll``, ``TicketSearch``) → ``tickets`` text (SPEC 3.1).

Only renames, looks up and normalises text; :mod:`ipchange_core.ingest.checks` then checks and
types the result like any other format. Times stay text: Unix epoch seconds (UTC).
"""

from __future__ import annotations

import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, no_rejects, text_array
from ipchange_core.ingest.kayako_values import UNASSIGNED, normalise_tags, replace_known
from ipchange_core.policy import KayakoLookups

XML_ROOT = "tickets"
"""Root element of a Kayako ticket export."""


XML_SOURCE = MappingProxyType(
    {
        "ticket_id": "displayid",
        "subject": "subject",
        "department": "departmentid",
        "status": "statusid",
        "owner": "ownerstaffname",
        "creator": "creator",
        "account": "userorganization",
        "requester_name": "fullname",
        "requester_email": "email",
        "created_at": "creationtime",
        "updated_at": "lastactivity",
        "tags": "tags",
        "ticket_type": "typeid",
        "kayako_id": "id",
    }
)
"""Canonical ``tickets`` field → the ``<ticket>`` child element it is read from (``id``: the
attribute ``<ticket id="…">``, Kayako's internal ticket id)."""


_XML_ELEMENTS = (*XML_SOURCE.values(), "ownerstaffid")


XML_BLOCK_TICKETS = 50_000
"""Tickets of a Kayako XML export read, checked and loaded at a time (:class:`TicketXml`)."""


XML_CREATORS = MappingProxyType({"1": "staff", "2": "user"})
"""Kayako's ``<creator>`` codes (SPEC 3.1)."""


class _HashingReader:
    """A binary file wrapper that keeps the first bytes read and hashes every byte read.

    Given the file's SHA-256 (``sha256``, hex), it does not hash the bytes again.
    """

    def __init__(self, raw: BinaryIO, sha256: str | None = None) -> None:
        self._raw = raw
        self._known = sha256
        self._hash = hashlib.sha256() if sha256 is None else None
        self.head = b""

    def read(self, size: int = -1) -> bytes:
        chunk = self._raw.read(size)
        if self._hash is not None:
            self._hash.update(chunk)
        if len(self.head) < 512:
            self.head += chunk[:512]
        return chunk

    def drain(self) -> None:
        """Hash whatever the parser left unread (nothing to do when the digest was given)."""
        while self._hash is not None and (chunk := self._raw.read(1 << 20)):
            self._hash.update(chunk)

    def hexdigest(self) -> str:
        """The file's SHA-256 (hex): the one given, or that of the bytes read and drained."""
        return self._hash.hexdigest() if self._hash is not None else str(self._known)


def xml_encoding(head: bytes) -> str:
    """Return the encoding an XML file declares (``utf-8`` if none; ``utf-8-sig`` with a BOM)."""
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    found = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([A-Za-z0-9._-]+)", head)
    return found.group(1).decode("ascii").lower() if found else "utf-8"


def _xml_error(err: ET.ParseError | ValueError | LookupError, file: str) -> InvalidInputError:
    if not isinstance(err, ET.ParseError):  # expat cannot read the declared encoding at all
        return InvalidInputError(
            f"declares an XML encoding the reader cannot use ({err}); save it as UTF-8", file=file
        )
    line, column = err.position  # expat counts columns from 0
    message = str(err).split(": line ")[0]
    return InvalidInputError(
        f"malformed XML at line {line}, column {column + 1}: {message}", file=file
    )


def xml_root(path: Path, *, file: str) -> str:
    """Return the tag of the root element of an XML file.

    Raises:
        InvalidInputError: The file is not well-formed before its root element starts.
    """
    try:
        with path.open("rb") as raw:
            for _event, elem in ET.iterparse(raw, events=("start",)):
                return elem.tag
    except (ET.ParseError, ValueError, LookupError) as err:
        raise _xml_error(err, file) from None
    raise InvalidInputError("holds no XML element", file=file)


class TicketXml:
    """A Kayako ticket XML export, read as a stream of blocks of canonical ``tickets`` text.

    :meth:`blocks` reads the file once with ``iterparse``, clearing each ``<ticket>`` once read,
    and yields the rows of every ``block_tickets`` tickets: memory holds one block (its values
    as Python strings, then as Arrow arrays), whatever the size of the file. Department, status
    and type ids go through ``lookups``; ``<creator>`` 1/2 becomes ``staff``/``user``; an owner
    is blank when ``<ownerstaffid>`` is 0 or ``<ownerstaffname>`` is empty; epoch 0 in a time
    element means "no time"; space-separated ``<tags>`` become comma-separated. A row's line is
    the ticket's ordinal (first ticket = 1).

    Once :meth:`blocks` is exhausted, ``sha256`` (hex, of the file's bytes: the one given, else
    computed from the bytes read), ``encoding`` (the declared one) and ``notes`` describe the
    whole file.
    """

    source_names = XML_SOURCE
    """Canonical column → the element it is read from, for reject messages."""

    def __init__(
        self,
        path: Path,
        lookups: KayakoLookups,
        *,
        file: str,
        block_tickets: int = XML_BLOCK_TICKETS,
        sha256: str | None = None,
    ) -> None:
        """Prepare to read ``path`` (named ``file`` in messages) in blocks of ``block_tickets``.

        ``sha256`` is the file's SHA-256 (hex) if the caller computed it already and the file
        has not changed since: its bytes are then not hashed again.
        """
        if block_tickets < 1:
            raise ValueError(f"block_tickets must be at least 1, got {block_tickets}")
        self.path = path
        self.lookups = lookups
        self.file = file
        self.block_tickets = block_tickets
        self._known_sha256 = sha256
        self.sha256 = ""
        self.encoding = ""
        self.notes: tuple[str, ...] = ()

    def blocks(self) -> Iterator[CanonicalText]:
        """Yield the rows block by block (at least one block, empty for a file without tickets).

        Raises:
            InvalidInputError: The XML is malformed (with the parser's line and column) or its
                root element is not ``<tickets>``; raised when the parser gets there, so rows
                of earlier blocks may have been yielded already.
        """
        first = 1
        for values in self._values():
            n = len(values["displayid"])
            yield _ticket_text(values, np.arange(first, first + n, dtype=np.int64), self.lookups)
            first += n

    def _values(self) -> Iterator[dict[str, list[str]]]:
        """The child elements' text of each block of tickets (Python strings, unstripped)."""
        values: dict[str, list[str]] = {name: [] for name in _XML_ELEMENTS}
        blocks = others = depth = 0
        try:
            with self.path.open("rb") as raw:
                reader = _HashingReader(raw, self._known_sha256)
                root = None
                for event, elem in ET.iterparse(reader, events=("start", "end")):
                    if event == "start":
                        depth += 1
                        if depth == 1:
                            root = elem
                            if elem.tag != XML_ROOT:
                                raise InvalidInputError(
                                    f"XML root element is <{elem.tag}>, not a Kayako "
                                    f"<{XML_ROOT}> export",
                                    file=self.file,
                                )
                        continue
                    depth -= 1
                    if depth == 2 and len(elem):
                        elem.clear()  # a nested block such as <posts>: not needed, free it now
                    elif depth == 1:
                        if elem.tag == "ticket":
                            children = {child.tag: child.text or "" for child in elem}
                            children["id"] = elem.get("id", "")
                            for name, column in values.items():
                                column.append(children.get(name, ""))
                            if len(values["displayid"]) == self.block_tickets:
                                yield values  # as Python strings: one block at a time
                                values = {name: [] for name in _XML_ELEMENTS}
                                blocks += 1
                        else:
                            others += 1
                        assert root is not None
                        root.clear()
                reader.drain()
        except (ET.ParseError, ValueError, LookupError) as err:
            raise _xml_error(err, self.file) from None
        except OSError as err:
            raise InvalidInputError(
                f"cannot read the file: {err.strerror or err}", file=self.file
            ) from None
        if values["displayid"] or not blocks:
            yield values
        self.sha256 = reader.hexdigest()
        self.encoding = xml_encoding(reader.head)
        if others:
            self.notes = (f"ignored {others} element(s) under <{XML_ROOT}> that are not <ticket>",)


def _ticket_text(
    values: dict[str, list[str]], lines: np.ndarray, lookups: KayakoLookups
) -> CanonicalText:
    """The canonical ``tickets`` text of one block of tickets (see :class:`TicketXml`)."""
    text = {
        name: pc.utf8_trim_whitespace(pa.array(column, pa.large_string()))
        for name, column in values.items()
    }
    values.clear()
    rejects: list[pd.DataFrame] = []
    columns: dict[str, pa.Array] = {}
    for column, element in XML_SOURCE.items():
        columns[column] = text[element]
    for column, table, what in (
        ("department", lookups.departments, "department"),
        ("status", lookups.statuses, "status"),
        ("ticket_type", lookups.types, "ticket type"),
    ):
        columns[column], bad = _lookup(
            text[XML_SOURCE[column]], table, lines, XML_SOURCE[column], what
        )
        rejects.append(bad)
    columns["creator"] = replace_known(text["creator"], XML_CREATORS)
    unassigned = pc.or_(
        pc.equal(text["ownerstaffid"], "0"), pc.equal(text["ownerstaffname"], UNASSIGNED)
    )
    columns["owner"] = pc.if_else(unassigned, "", text["ownerstaffname"])
    for column in ("created_at", "updated_at"):
        columns[column] = pc.if_else(pc.equal(columns[column], "0"), "", columns[column])
    columns["tags"] = normalise_tags(columns["tags"])
    return CanonicalText(
        columns={k: text_array(v) for k, v in columns.items()},
        lines=lines,
        rejects=pd.concat([no_rejects(), *rejects], ignore_index=True),
        source_names=dict(XML_SOURCE),
    )


def _lookup(
    ids: pa.Array, table: Mapping[int, str], lines: np.ndarray, element: str, what: str
) -> tuple[pa.Array, pd.DataFrame]:
    """Map id text through ``table``; blank and ``0`` become blank, unknown ids are rejected.

    An unknown id keeps its text (so no other check reports the row a second time).
    """
    series = ids.to_pandas()
    key = series.str.replace(r"^0+(?=\d)", "", regex=True)
    names = key.map({str(k): v for k, v in table.items()})
    unknown = names.isna() & ~key.isin(["", "0"])
    names = names.where(~unknown, series).where(~key.isin(["", "0"]), "")
    bad = no_rejects()
    if unknown.any():
        known = ", ".join(f"{k} {v}" for k, v in sorted(table.items()))
        raw = series[unknown].tolist()
        bad = pd.DataFrame(
            {
                "line": lines[unknown.to_numpy()],
                "column": element,
                "value": raw,
                "reason": [f"{what} id '{v}' is not in the {what} lookup ({known})" for v in raw],
            }
        )
    return text_array(names.astype("str")), bad
