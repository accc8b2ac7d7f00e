"""Kayako Classic exports turned into canonical text columns (SPEC 3.1–3.3).

Three source formats feed the canonical tables:

* the ticket XML of the REST ``ListAll`` / ``TicketSearch`` calls → ``tickets``;
* a KQL report exported to CSV, whose human column labels a :class:`ReportMapping` maps onto
  the canonical fields → ``tickets``;
* the ticket audit log as CSV → ``ticket_events`` (department, status and owner changes only).

This module only renames, looks up and normalises text; :mod:`ipchange_core.ingest` then checks
and types the result exactly like a canonical CSV, so every format obeys the same rules. Times stay
text here: Unix epoch seconds (UTC) for the XML and the audit log, the mapping's ``date_format``
(local wall-clock time in the policy zone) for the report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ipchange_core.errors import InvalidInputError
from ipchange_core.policy import KayakoLookups, load_policy
from ipchange_core.schema import TABLES
from ipchange_core.yamlconfig import load_config_yaml

UNASSIGNED = "-- Unassigned --"
"""How Kayako writes "no owner" in reports and the audit log; read as a blank owner."""

REPORT_FIELDS = (*(col.name for col in TABLES["tickets"]), "ticket_type")
"""Canonical fields a report column may be mapped to."""

REPORT_REQUIRED = ("ticket_id", "department", "status", "created_at")
"""Fields whose report column must be present (``creator`` may come from ``defaults`` instead)."""

DEFAULT_MAPPING = "kayako_report_mapping.yaml"
"""Packaged mapping used when ``--mapping`` is not given."""

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
    }
)
"""Canonical ``tickets`` field → the ``<ticket>`` child element it is read from."""

_XML_ELEMENTS = (*XML_SOURCE.values(), "ownerstaffid")

XML_BLOCK_TICKETS = 50_000
"""Tickets of a Kayako XML export read, checked and loaded at a time (:class:`TicketXml`)."""

XML_CREATORS = MappingProxyType({"1": "staff", "2": "user"})
"""Kayako's ``<creator>`` codes (SPEC 3.1)."""

AUDIT_COLUMNS = (
    "ticketid",
    "ticketmaskid",
    "dateline",
    "departmenttitle",
    "actiontype",
    "actionmsg",
    "oldvaluestring",
    "newvaluestring",
    "creatorfullname",
)
"""Columns of a Kayako audit log CSV (SPEC 3.3)."""

AUDIT_REQUIRED = ("ticketmaskid", "dateline", "actionmsg", "oldvaluestring", "newvaluestring")
"""Audit columns without which no event can be built."""

AUDIT_SOURCE = MappingProxyType(
    {
        "ticket_id": "ticketmaskid",
        "at": "dateline",
        "field": "actionmsg",
        "old_value": "oldvaluestring",
        "new_value": "newvaluestring",
        "actor": "creatorfullname",
    }
)
"""Canonical ``ticket_events`` field → the audit column it is read from."""

AUDIT_CHANGE = r"(?i)^(?:ticket\s+)?(?P<field>department|status|owner)\s+changed\b"
"""An ``actionmsg`` that records a routing change, e.g. ``Status changed from New to Open``."""


DEFAULT_LOOKUPS: KayakoLookups = load_policy().latest.kayako
"""The default policy's Kayako ids (``kayako:`` in ``policy.yaml``)."""


@dataclass(frozen=True)
class CanonicalText:
    """Rows of one input, as text in canonical columns, ready for :mod:`ipchange_core.ingest`.

    Attributes:
        columns: Canonical column → stripped text (``large_string``, no nulls, one per row),
            as an arrow array or chunked array.
        lines: Line in the source file of each row (header = line 1; XML: the ticket's ordinal).
        rejects: Problems found while mapping (columns ``line``, ``column``, ``value``,
            ``reason``); those lines are rejected whatever else they hold.
        source_names: Canonical column → its name in the source, used in reject messages.
        rows_skipped: Source rows that are not rows of the table at all (audit entries that are
            not department, status or owner changes).
        notes: Plain-words remarks on the file as a whole (ignored columns, skipped rows).
    """

    columns: dict[str, pa.Array | pa.ChunkedArray]
    lines: np.ndarray
    rejects: pd.DataFrame
    source_names: Mapping[str, str] = field(default_factory=dict)
    rows_skipped: int = 0
    notes: tuple[str, ...] = ()


def no_rejects() -> pd.DataFrame:
    """Return an empty frame of mapping problems (``line``, ``column``, ``value``, ``reason``)."""
    return pd.DataFrame(
        {
            "line": pd.Series(dtype="int64"),
            "column": pd.Series(dtype="str"),
            "value": pd.Series(dtype="str"),
            "reason": pd.Series(dtype="str"),
        }
    )


def text_array(values: object) -> pa.Array:
    """Return ``values`` (a list, a pandas Series or an arrow array) as a ``large_string`` array."""
    arr = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def _blank(n: int) -> pa.Array:
    return text_array(pa.repeat("", n))


# --- ticket XML ----------------------------------------------------------------------------------


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
                            for name, column in values.items():
                                column.append(children.get(name, ""))
                            if len(values["displayid"]) == self.block_tickets:
                                yield values  # Python strings cost ~4x their text: one block
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
    columns["creator"] = _replace_known(text["creator"], XML_CREATORS)
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


def _replace_known(values: pa.Array, table: Mapping[str, str]) -> pa.Array:
    """Replace the values found in ``table``; leave the others for the canonical checks."""
    keys = pa.array(list(table), pa.large_string())
    index = pc.index_in(values, value_set=keys)
    mapped = pc.take(pa.array(list(table.values()), pa.large_string()), index)
    return pc.if_else(pc.is_null(index), values, mapped)


def normalise_tags(tags: pa.Array) -> pa.Array:
    """Return tags separated by single commas (Kayako separates them with spaces)."""
    joined = pc.replace_substring_regex(tags, r"[\s,]+", ",")
    return pc.utf8_trim(joined, ",")


# --- report CSV ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportMapping:
    """How the columns of a Kayako report CSV map onto canonical ``tickets`` fields.

    Attributes:
        columns: Canonical field → report column labels, the first present one is used.
        date_format: ``strftime`` format of the report's dates, local time in the policy zone.
        defaults: Canonical field → value used when the report has no column for it.
        translations: Canonical field → {report value: canonical value} (the YAML ``values``
            section), applied before the checks.
        source: Name of the mapping file, for messages.
    """

    columns: Mapping[str, tuple[str, ...]]
    date_format: str = "%d %B %Y %I:%M %p"
    defaults: Mapping[str, str] = field(default_factory=dict)
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = DEFAULT_MAPPING

    @property
    def ticket_id_labels(self) -> frozenset[str]:
        """Labels that mark a CSV as a report (those mapped to ``ticket_id``)."""
        return frozenset(self.columns.get("ticket_id", ()))


def load_mapping(path: Path | None = None) -> ReportMapping:
    """Read a report column mapping (YAML); ``None`` reads the packaged default.

    Args:
        path: The mapping file, or ``None`` for :data:`DEFAULT_MAPPING`.

    Returns:
        The mapping.

    Raises:
        InvalidInputError: The file is unreadable, not YAML, or names unknown fields.
    """
    if path is None:
        name = DEFAULT_MAPPING
        text = resources.files("ipchange_core").joinpath(DEFAULT_MAPPING).read_text("utf-8")
    else:
        name = Path(path).name
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"cannot read the column mapping: {err}", file=name) from None
    try:
        doc = load_config_yaml(text)
    except yaml.YAMLError as err:
        raise InvalidInputError(f"column mapping is not valid YAML: {err}", file=name) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        raise InvalidInputError("column mapping needs a 'columns' section", file=name)
    unknown_keys = set(doc) - {"columns", "date_format", "defaults", "values"}
    if unknown_keys:
        raise InvalidInputError(
            f"column mapping has unknown key(s): {', '.join(sorted(unknown_keys))}", file=name
        )
    columns: dict[str, tuple[str, ...]] = {}
    for fld, labels in doc["columns"].items():
        labels = [labels] if isinstance(labels, str) else labels
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidInputError(
                f"columns.{fld} must be a column label or a list of labels", file=name
            )
        columns[str(fld)] = tuple(x.strip() for x in labels)
    defaults = _plain_mapping(doc.get("defaults"), "defaults", name)
    values = {
        k: _plain_mapping(v, f"values.{k}", name)
        for k, v in _plain_mapping(doc.get("values"), "values", name, nested=True).items()
    }
    for section, fields in (("columns", columns), ("defaults", defaults), ("values", values)):
        bad = sorted(set(fields) - set(REPORT_FIELDS))
        if bad:
            raise InvalidInputError(
                f"{section} names unknown field(s) {', '.join(bad)}; "
                f"known: {', '.join(REPORT_FIELDS)}",
                file=name,
            )
    date_format = doc.get("date_format", ReportMapping.date_format)
    if not isinstance(date_format, str) or not date_format.strip():
        raise InvalidInputError("date_format must be a strftime format string", file=name)
    return ReportMapping(columns, date_format, defaults, values, name)


def _plain_mapping(value: Any, where: str, name: str, *, nested: bool = False) -> dict[str, Any]:
    """A mapping section of the column mapping, as texts (or mappings, ``nested``); None: {}."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, dict | None) if nested else isinstance(v, str | int | float | dt.date)
        for v in value.values()
    ):
        kind = "mappings" if nested else "texts"
        raise InvalidInputError(f"{where} must be a mapping of field names to {kind}", file=name)
    return {str(k): v if nested else str(v) for k, v in value.items()}


def map_report(
    header: list[str],
    columns: list[pa.Array],
    lines: np.ndarray,
    mapping: ReportMapping,
    *,
    file: str,
) -> CanonicalText:
    """Map the columns of a Kayako report CSV onto canonical ``tickets`` text.

    Args:
        header: Column labels as read (stripped).
        columns: Stripped text of each column, in header order.
        lines: Line of each row (header = line 1).
        mapping: The column mapping.
        file: Name of the report file, for messages.

    Returns:
        The rows. ``-- Unassigned --`` owners become blank; tags become comma-separated.

    Raises:
        InvalidInputError: A required field has no column (``creator`` may be given by
            ``defaults`` instead), naming the labels the mapping looks for.
    """
    index = {label: i for i, label in enumerate(header)}
    n = len(lines)
    text: dict[str, pa.Array] = {}
    source: dict[str, str] = {}
    for fld in REPORT_FIELDS:
        labels = mapping.columns.get(fld, ())
        found = next((label for label in labels if label in index), None)
        if found is not None:
            text[fld] = columns[index[found]]
            source[fld] = found
        elif fld in mapping.defaults:
            text[fld] = text_array(pa.repeat(mapping.defaults[fld], n))
            source[fld] = f"defaults.{fld}"
        elif fld in REPORT_REQUIRED or fld == "creator":
            wanted = " or ".join(repr(x) for x in labels) or "(none mapped)"
            extra = f" and {mapping.source} sets no defaults.{fld}" if fld == "creator" else ""
            raise InvalidInputError(
                f"report has no column for {fld}: {mapping.source} looks for {wanted}{extra}",
                file=file,
            )
        else:
            text[fld] = _blank(n)
    for fld, table in mapping.translations.items():
        text[fld] = _replace_known(text[fld], table)
    text["owner"] = pc.if_else(pc.equal(text["owner"], UNASSIGNED), "", text["owner"])
    text["tags"] = normalise_tags(text["tags"])
    used = set(source.values())
    ignored = [label for label in header if label not in used]
    notes = []
    if ignored:
        notes.append(f"ignored report column(s) not in the mapping: {', '.join(ignored)}")
    return CanonicalText(
        columns={k: text_array(v) for k, v in text.items()},
        lines=lines,
        rejects=no_rejects(),
        source_names=source,
        notes=tuple(notes),
    )


# --- audit log CSV -------------------------------------------------------------------------------


def map_audit(
    header: list[str], columns: list[pa.Array], lines: np.ndarray, *, file: str
) -> CanonicalText:
    """Turn Kayako audit log rows into canonical ``ticket_events`` text.

    Only rows whose ``actionmsg`` records a department, status or owner change become events
    (``field`` from the message, old/new values from ``oldvaluestring``/``newvaluestring``,
    ``-- Unassigned --`` owners blank). The other rows are counted in ``rows_skipped`` with a
    summary by ``actiontype`` in ``notes``.

    Args:
        header: Column names as read (stripped).
        columns: Stripped text of each column, in header order.
        lines: Line of each row (header = line 1).
        file: Name of the audit file, for messages.

    Returns:
        The event rows.

    Raises:
        InvalidInputError: A required audit column is missing.
    """
    index = {name: i for i, name in enumerate(header)}
    missing = [name for name in AUDIT_REQUIRED if name not in index]
    if missing:
        raise InvalidInputError(
            f"missing required audit column(s) {', '.join(missing)}; "
            f"the header has: {', '.join(header)}",
            file=file,
        )
    n = len(lines)

    def col(name: str) -> pa.Array:
        return text_array(columns[index[name]]) if name in index else _blank(n)

    found = pc.extract_regex(col("actionmsg"), AUDIT_CHANGE)
    change = found.is_valid().to_numpy(zero_copy_only=False)
    keep = pa.array(change)

    def changes(values: pa.Array) -> pa.Array:
        return values if change.all() else values.filter(keep)  # a filter copies the column

    fld = pc.utf8_lower(changes(found).field("field"))
    del found
    events = {
        "ticket_id": changes(col("ticketmaskid")),
        "at": changes(col("dateline")),
        "field": fld,
        "old_value": changes(col("oldvaluestring")),
        "new_value": changes(col("newvaluestring")),
        "actor": changes(col("creatorfullname")),
    }
    is_owner = pc.equal(fld, "owner")
    for name in ("old_value", "new_value"):
        unassigned = pc.and_(is_owner, pc.equal(events[name], UNASSIGNED))
        events[name] = pc.if_else(unassigned, "", events[name])
    skipped = int(n - change.sum())
    notes: list[str] = []
    if skipped:
        kinds = col("actiontype").filter(pa.array(~change)).to_pandas().replace("", "(blank)")
        top = kinds.value_counts().head(5)
        by_kind = ", ".join(f"{kind} {count}" for kind, count in top.items())
        more = " …" if kinds.nunique() > len(top) else ""
        notes.append(
            f"skipped {skipped} audit row(s) that are not department, status or owner changes "
            f"(by actiontype: {by_kind}{more})"
        )
    if "creatorfullname" not in index:
        notes.append("no creatorfullname column: event actors are blank")
    return CanonicalText(
        columns={k: text_array(v) for k, v in events.items()},
        lines=lines[change],
        rejects=no_rejects(),
        source_names=dict(AUDIT_SOURCE),
        rows_skipped=skipped,
        notes=tuple(notes),
    )
