"""Kayako's ticket audit log → canonical ``ticket_events`` text (SPEC 3.3, FORMATS.md 4).

Two sources, recognised by their header:

* the **database export** of ``ticketauditlogs`` (``ticketid``, ``dateline``, ``actiontype``,
  ``actionmsg``, ``oldvalueid``, ``newvalueid``, …, maybe a joined ``ticketmaskid``);
* the **KQL report** on Ticket Audit Logs (``Creation Date``, ``Action``, ``Message``,
  ``Department``, ``Ticket Mask ID`` / ``Ticket ID``, …), exported to CSV or XLSX.

Department (7), status (4) and owner (3) changes become events. Kayako leaves
``oldvaluestring``/``newvaluestring`` empty for them, so the names come from the ids through the
help desk's lookups (database export: departments and statuses) or from ``actionmsg`` /
``Message`` through the language templates of the policy (``kayako_audit.messages``). The
``New Ticket`` row (1) records the department the ticket was created in: it becomes a
department event from that department to itself at the creation time, so that the ticket's
department history is known (SPEC 2.1 routing). Every other action is counted as skipped, by
kind. Times stay text: epoch seconds (database) or ISO-8601 local time (report).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, blank_column, text_array
from ipchange_core.policy import AuditMessages, KayakoLookups

ACTION_TYPES = MappingProxyType(
    {
        1: "new ticket",
        2: "new post",
        3: "owner",
        4: "status",
        5: "priority",
        6: "type",
        7: "department",
        8: "post edited",
        9: "post deleted",
        10: "ticket deleted",
        11: "flag",
        12: "watch",
        13: "trash",
        14: "tags",
        15: "link",
        16: "merge",
        17: "ban",
        18: "ticket updated",
        19: "user updated",
        20: "sla plan changed",
        21: "note added",
        22: "note deleted",
        23: "sla",
        24: "rating",
    }
)
"""Kayako's ``actiontype`` numbers (FORMATS.md 4) → the kind of action, in plain words."""


ACTION_LABELS = MappingProxyType(
    {
        "updated department": "department",
        "updated status": "status",
        "updated owner": "owner",
        "new ticket": "new ticket",
    }
)
"""The report's ``Action`` labels of the actions that make events (case-insensitive)."""


CHANGE_KINDS = ("department", "status", "owner")
"""Action kinds that become events of that ``field``."""


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
"""Columns of ``ticketauditlogs`` (FORMATS.md 4) an export usually carries, with the joined
``ticketmaskid``; the reader also uses ``departmentid``, ``oldvalueid`` and ``newvalueid``."""


DB_COLUMNS = ("ticketid", "dateline", "actiontype", "actionmsg")
"""Columns a database export of ``ticketauditlogs`` cannot do without."""


REPORT_COLUMNS = ("Creation Date", "Action", "Message")
"""Labels a KQL report on Ticket Audit Logs cannot do without (and a ticket id label)."""


REPORT_TICKET_LABELS = ("Ticket Mask ID", "Ticket ID")
"""Report labels that name the ticket: the mask id, else Kayako's internal id."""


DB_SOURCE = MappingProxyType(
    {
        "ticket_id": "ticketmaskid",
        "at": "dateline",
        "field": "actiontype",
        "old_value": "oldvalueid",
        "new_value": "newvalueid",
        "actor": "creatorfullname",
    }
)
"""Canonical ``ticket_events`` field → the database export column, for reject messages."""


REPORT_SOURCE = MappingProxyType(
    {
        "ticket_id": "Ticket Mask ID",
        "at": "Creation Date",
        "field": "Action",
        "old_value": "Message",
        "new_value": "Message",
        "actor": "Full Name",
    }
)
"""Canonical ``ticket_events`` field → the report label, for reject messages."""


VARIANT_COLUMNS = MappingProxyType(
    {
        "database": MappingProxyType(
            {
                "at": "dateline",
                "mask": "ticketmaskid",
                "id": "ticketid",
                "message": "actionmsg",
                "actor": "creatorfullname",
                "department": "departmenttitle",
            }
        ),
        "report": MappingProxyType(
            {
                "at": "Creation Date",
                "mask": "Ticket Mask ID",
                "id": "Ticket ID",
                "message": "Message",
                "actor": "Full Name",
                "department": "Department",
            }
        ),
    }
)
"""Each audit source's column for the action's time, the ticket's mask id and internal id, the
message, the actor and the ticket's department at the time."""


def audit_variant(header: list[str]) -> str | None:
    """``database`` or ``report`` when ``header`` is that kind of audit log, else ``None``."""
    cols = set(header)
    if {"ticketid", "dateline", "actiontype"} <= cols:
        return "database"
    if {"Action", "Message", "Creation Date"} <= cols and cols & set(REPORT_TICKET_LABELS):
        return "report"
    return None


@dataclass(frozen=True)
class AuditContext:
    """What the audit reader needs besides the file.

    Attributes:
        lookups: The help desk's id → name tables (stored lookups, else the policy's ids).
        messages: The ``actionmsg`` templates (``kayako_audit.messages`` of the policy).
        day_first: Report dates are ``d/m/yyyy`` (else ``m/d/yyyy``).
        ticket_ids: Kayako internal ticket id (text) → mask id, of the stored tickets.
    """

    lookups: KayakoLookups
    messages: AuditMessages
    day_first: bool = False
    ticket_ids: Mapping[str, str] = field(default_factory=dict)


def map_audit(
    header: list[str],
    columns: list[pa.Array],
    lines: np.ndarray,
    context: AuditContext,
    *,
    file: str,
) -> CanonicalText:
    """Turn audit log rows (database export or KQL report) into canonical ``ticket_events`` text.

    Args:
        header: Column names as read (stripped).
        columns: Stripped text of each column, in header order.
        lines: Line of each row (header = line 1).
        context: Lookups, message templates, date order and the stored tickets' internal ids.
        file: Name of the audit file, for messages.

    Returns:
        The event rows (a row whose ticket, id or message cannot be read is a reject naming
        the row, the value and the lookup or template setting); ``rows_skipped`` counts the
        other actions, summarised by kind in ``notes``.

    Raises:
        InvalidInputError: The header is neither audit source, or lacks a required column.
    """
    variant = audit_variant(header)
    if variant is None:
        raise InvalidInputError(
            "not a Kayako audit log: expected the columns "
            f"{', '.join(DB_COLUMNS)} (database export) or the labels "
            f"{', '.join(REPORT_COLUMNS)} with {' or '.join(REPORT_TICKET_LABELS)} (report); "
            f"the header has: {', '.join(header)}",
            file=file,
        )
    index = {name: i for i, name in enumerate(header)}
    required = DB_COLUMNS if variant == "database" else REPORT_COLUMNS
    missing = [name for name in required if name not in index]
    if missing:
        raise InvalidInputError(
            f"missing required audit column(s) {', '.join(missing)}; "
            f"the header has: {', '.join(header)}",
            file=file,
        )
    n = len(lines)

    def col(name: str) -> pd.Series:
        values = text_array(columns[index[name]]) if name in index else blank_column(n)
        return values.to_pandas().astype("str")

    rows = _Rows(lines, file)
    names = dict(VARIANT_COLUMNS[variant])
    at = col(names["at"])
    if variant == "database":
        kind = _db_kinds(col("actiontype"))
    else:
        kind = col("Action").str.strip().str.casefold()
        kind = kind.map(dict(ACTION_LABELS)).fillna(kind.str.removeprefix("updated "))
        at = _report_times(at, day_first=context.day_first)
    mask_id, internal, internal_label = col(names["mask"]), col(names["id"]), names["id"]
    message, actor = col(names["message"]), col(names["actor"])
    creation_department = col(names["department"])
    source = dict(DB_SOURCE if variant == "database" else REPORT_SOURCE)
    if names["mask"] not in index:
        source["ticket_id"] = names["id"]
    event = kind.isin([*CHANGE_KINDS, "new ticket"]).to_numpy(bool)
    skipped_kinds = kind[~event].replace("", "(blank)")

    ticket = _ticket_ids(mask_id, internal, internal_label, context.ticket_ids, rows, event)
    field = kind.where(kind != "new ticket", "department")
    old = np.full(n, "", dtype=object)
    new = np.full(n, "", dtype=object)
    for name in CHANGE_KINDS:
        is_kind = (kind == name).to_numpy(bool)
        if not is_kind.any():
            continue
        if variant == "database" and name != "owner" and "newvalueid" in index:
            table = (
                context.lookups.departments if name == "department" else context.lookups.statuses
            )
            for part, column in ((old, "oldvalueid"), (new, "newvalueid")):
                part[is_kind] = _names(col(column)[is_kind], table, name, column, rows)
        else:
            label = "actionmsg" if variant == "database" else "Message"
            o, w = _from_message(message[is_kind], name, context.messages, label, rows)
            old[is_kind], new[is_kind] = o, w
    created = (kind == "new ticket").to_numpy(bool)
    if created.any():
        dept = creation_department.copy()
        by_id = created & (dept == "").to_numpy(bool)
        if variant == "database" and by_id.any():
            table = context.lookups.departments
            dept[by_id] = _names(
                col("departmentid")[by_id], table, "department", "departmentid", rows
            )
        old[created] = new[created] = dept[created].to_numpy(dtype=object)
        blank = created & (dept == "").to_numpy(bool)
        rows.reject(blank, source["field"], kind, "a New Ticket row without its department")
    keep = event
    events = {
        "ticket_id": pa.array(ticket[keep], pa.large_string()),
        "at": pa.array(at[keep], pa.large_string()),
        "field": pa.array(field[keep], pa.large_string()),
        "old_value": pa.array(old[keep], pa.large_string()),
        "new_value": pa.array(new[keep], pa.large_string()),
        "actor": pa.array(actor[keep], pa.large_string()),
    }
    notes: list[str] = []
    if len(skipped_kinds):
        counts = skipped_kinds.value_counts()
        by_kind = ", ".join(f"{count} {name}" for name, count in counts.items())
        notes.append(f"skipped: {by_kind} (audit actions other than department, status, owner)")
    return CanonicalText(
        columns=events,
        lines=lines[keep],
        rejects=rows.frame(),
        source_names=source,
        rows_skipped=int((~event).sum()),
        notes=tuple(notes),
    )


class _Rows:
    """Collects the rejects of the audit rows (by row position) while they are mapped."""

    def __init__(self, lines: np.ndarray, file: str) -> None:
        self.lines = lines
        self.file = file
        self.parts: list[pd.DataFrame] = []

    def reject(self, where: np.ndarray, column: str, values: pd.Series, reason: object) -> None:
        """Reject the rows ``where`` (a mask over all rows); ``reason``: text or per-row text."""
        if not where.any():
            return
        shown = values[where] if len(values) == len(where) else values
        reasons = reason if isinstance(reason, str) else list(reason)
        self.parts.append(
            pd.DataFrame(
                {
                    "line": self.lines[where],
                    "column": column,
                    "value": shown.to_numpy(dtype=object),
                    "reason": reasons,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        """The rejects (``line``, ``column``, ``value``, ``reason``)."""
        frame = pd.DataFrame(
            {
                "line": pd.Series(dtype="int64"),
                "column": pd.Series(dtype="str"),
                "value": pd.Series(dtype="str"),
                "reason": pd.Series(dtype="str"),
            }
        )
        if self.parts:
            frame = pd.concat([frame, *self.parts], ignore_index=True)
        return frame.astype({"line": "int64", "column": "str", "value": "str", "reason": "str"})


def _db_kinds(actiontype: pd.Series) -> pd.Series:
    """The kind of each ``actiontype`` number (unknown numbers: ``actiontype N``)."""
    named, found = _mapped(actiontype, {str(k): v for k, v in ACTION_TYPES.items()})
    unknown = ~found
    named[unknown] = ("actiontype " + actiontype[unknown]).to_numpy(dtype=object)
    return pd.Series(named, index=actiontype.index, dtype="str")


def _ticket_ids(
    mask_id: pd.Series,
    internal: pd.Series,
    label: str,
    stored: Mapping[str, str],
    rows: _Rows,
    event: np.ndarray,
) -> pd.Series:
    """The mask id of each row: its own, else its internal id's stored ticket.

    An event row (``event``) with neither is a reject.
    """
    blank = (mask_id == "").to_numpy(bool)
    if not blank.any():  # every row names its mask id (a joined ticketmaskid)
        return mask_id
    found, _ = _mapped(internal, stored)
    ticket = mask_id.where(~blank, found)
    # a row naming no ticket at all is left to the required-column check
    lost = (ticket == "").to_numpy(bool) & event & (internal != "").to_numpy(bool)
    rows.reject(
        lost,
        label,
        internal,
        [
            f"{label} '{v}' matches no stored ticket (tickets.kayako_id): load the ticket XML "
            "or report with Kayako's ticket ids first"
            for v in internal[lost]
        ],
    )
    ticket = ticket.where(~lost, internal)  # rejected above: no second reject for a blank
    return ticket


def _names(
    ids: pd.Series, table: Mapping[int, str], what: str, column: str, rows: _Rows
) -> pd.Series:
    """Names of ``ids`` through ``table``; blank and 0 are blank, unknown ids are rejected."""
    names, known_id = _mapped(ids, {str(k): v for k, v in table.items()})
    unknown = pd.Series(~known_id, index=ids.index) & ~ids.str.fullmatch(r"0*")
    if unknown.any():
        where = np.zeros(len(rows.lines), dtype=bool)
        where[ids.index[unknown.to_numpy(bool)]] = True
        known = ", ".join(f"{k} {v}" for k, v in sorted(table.items()))
        rows.reject(
            where,
            column,
            ids[unknown],
            [f"{what} id '{v}' is not in the {what} lookup ({known})" for v in ids[unknown]],
        )
    return names


def _mapped(ids: pd.Series, table: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``table`` for each id text (leading zeros ignored; ``""`` when absent).

    Returns the values (object array) and whether each id was found.
    """
    key = pc.replace_substring_regex(pa.array(ids, pa.large_string()), r"^0+(\d)", r"\1")
    at = pd.Index(list(table), dtype="str").get_indexer(key.to_pandas())
    values = np.array([*table.values(), ""], dtype=object)
    return values[at], at >= 0


def _from_message(
    message: pd.Series, field: str, templates: AuditMessages, column: str, rows: _Rows
) -> tuple[np.ndarray, np.ndarray]:
    """Old and new names read from each message by the field's templates (else a reject).

    The templates are tried longest first (:meth:`AuditMessages.patterns`), each over the
    messages no earlier one matched, with Arrow's regex engine.
    """
    text = pa.array(message, pa.large_string())
    old = np.full(len(text), "", dtype=object)
    new = np.full(len(text), "", dtype=object)
    todo = np.ones(len(text), dtype=bool)
    for regex in templates.patterns(field):
        found = pc.extract_regex(text, regex)
        hit = todo & found.is_valid().to_numpy(zero_copy_only=False)
        if hit.any():
            old[hit] = found.field("old").to_numpy(zero_copy_only=False)[hit]
            new[hit] = found.field("new").to_numpy(zero_copy_only=False)[hit]
            todo &= ~hit
    if todo.any():
        where = np.zeros(len(rows.lines), dtype=bool)
        where[message.index[todo]] = True
        setting = f"kayako_audit.messages.{field}"
        shown = " | ".join(templates.templates(field))
        rows.reject(
            where,
            column,
            message[todo],
            f"the {field} change message matches no template of the policy setting "
            f"{setting} ({shown})",
        )
    for part in (old, new):
        part[part == templates.unassigned] = ""
    return old, new


_REPORT_DATE = re.compile(
    r"^(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4})\s+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?$"
)
_SERIAL = re.compile(r"^\d{1,6}(?:\.\d+)?$")
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)


def _report_times(values: pd.Series, *, day_first: bool) -> pd.Series:
    """Report dates as ISO-8601 local text.

    ``m/d/yyyy h:mm:ss`` (``d/m/yyyy`` when ``day_first``) and spreadsheet serial days (an XLSX
    cell without a date format) become ``yyyy-mm-ddThh:mm:ss``; an XLSX date cell is already
    ISO text; anything else is left for the time checks to refuse.
    """
    out = values.copy()
    parts = values.str.extract(_REPORT_DATE)
    hit = parts["y"].notna().to_numpy(bool)
    if hit.any():
        p = parts[hit]
        month, day = (p["b"], p["a"]) if day_first else (p["a"], p["b"])
        out[hit] = (
            p["y"]
            + "-"
            + month.str.zfill(2)
            + "-"
            + day.str.zfill(2)
            + "T"
            + p["h"].str.zfill(2)
            + ":"
            + p["mi"]
            + ":"
            + p["s"].fillna("00")
        )
    serial = values.str.fullmatch(_SERIAL).to_numpy(bool)
    if serial.any():
        days = values[serial].astype("float64").to_numpy()
        us = np.rint(days * 86_400_000_000).astype("int64")
        stamps = pd.Timestamp(_EXCEL_EPOCH) + pd.to_timedelta(us, unit="us")
        out[serial] = stamps.strftime("%Y-%m-%dT%H:%M:%S")
    return out
