"""Kayako's lookup lists (``/Base/Department`` and friends, FORMATS.md 3) → id/title rows.

Both styles of FORMATS.md 2 are read alike: the documented, indented one and the live wire one
(CDATA, ``<tag />``). A list may name an id twice (Kayako's public samples list a type once as
``public`` and once as ``private``): with the same title it is one entry; with two titles the
file is refused, naming both.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.kayako_xml import xml_encoding

LOOKUP_LISTS = MappingProxyType(
    {
        "departments": "department",
        "ticketstatuses": "ticketstatus",
        "tickettypes": "tickettype",
        "ticketpriorities": "ticketpriority",
    }
)
"""Root element of each lookup list → the element of one entry."""


LOOKUP_COLUMNS = ("id", "title", "module", "markasresolved")
"""Columns of a lookup list's rows: ``module`` (departments: ``tickets`` or ``livechat``) and
``markasresolved`` (statuses: ``0``/``1``) are blank where the list has none."""


@dataclass(frozen=True, eq=False)
class LookupList:
    """One lookup list as read.

    Attributes:
        path: The file.
        kind: Its root element (a key of :data:`LOOKUP_LISTS`).
        rows: One row per distinct id, in file order: ``id`` (int64) and the text columns of
            :data:`LOOKUP_COLUMNS`.
        entries: Entries in the file (a repeated id counts each time).
        sha256: SHA-256 of the file's bytes, hex.
        encoding: The encoding the XML declares.
    """

    path: Path
    kind: str
    rows: pd.DataFrame
    entries: int
    sha256: str
    encoding: str

    @property
    def repeated(self) -> int:
        """Entries that repeat an id listed before with the same title."""
        return self.entries - len(self.rows)


def read_lookups(path: Path) -> LookupList:
    """Read a Kayako lookup list XML.

    Raises:
        InvalidInputError: Malformed XML, a root that is no lookup list, an entry without a
            whole-number id or without a title, or one id with two titles.
    """
    path = Path(path)
    name = path.name
    data = path.read_bytes()
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        line, column = err.position
        raise InvalidInputError(
            f"malformed XML at line {line}, column {column + 1}", file=name
        ) from None
    item = LOOKUP_LISTS.get(root.tag)
    if item is None:
        raise InvalidInputError(
            f"XML root element is <{root.tag}>, not a Kayako lookup list "
            f"({', '.join(f'<{r}>' for r in LOOKUP_LISTS)})",
            file=name,
        )
    seen: dict[int, dict[str, str]] = {}
    entries = 0
    for n, elem in enumerate(root.iter(item), start=1):
        entries += 1
        values = {c: (elem.findtext(c) or "").strip() for c in LOOKUP_COLUMNS}
        if not values["id"].isdigit():
            raise InvalidInputError(
                f"<{item}> number {n} has id {values['id']!r}, not a whole number", file=name
            )
        if not values["title"]:
            raise InvalidInputError(
                f"<{item}> number {n} (id {values['id']}) has no title", file=name
            )
        key = int(values["id"])
        before = seen.get(key)
        if before is None:
            seen[key] = values
        elif before["title"] != values["title"]:
            raise InvalidInputError(
                f"{item} id {key} is listed with two titles, {before['title']!r} and "
                f"{values['title']!r}",
                file=name,
            )
    rows = pd.DataFrame(
        {
            "id": pd.Series(list(seen), dtype="int64"),
            **{
                c: pd.Series([v[c] for v in seen.values()], dtype="str") for c in LOOKUP_COLUMNS[1:]
            },
        }
    )
    return LookupList(
        path=path,
        kind=root.tag,
        rows=rows,
        entries=entries,
        sha256=hashlib.sha256(data).hexdigest(),
        encoding=xml_encoding(data[:512]),
    )
