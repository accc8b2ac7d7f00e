"""Kayako ticket audit log exports (CSV) → canonical ``ticket_events`` text (SPEC 3.3).

Only department, status and owner changes become events; the other entries are counted as
skipped. Times stay text: Unix epoch seconds (UTC).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, blank_column, no_rejects, text_array
from ipchange_core.ingest.kayako_values import UNASSIGNED

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
        return text_array(columns[index[name]]) if name in index else blank_column(n)

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
