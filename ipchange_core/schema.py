"""The canonical tables: their columns, value kinds and enumerations (SPEC 3.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

if TYPE_CHECKING:  # resolved lazily by __getattr__ below (pandera is slow to import)
    from ipchange_core.contracts import FRAME_MODELS as FRAME_MODELS

Kind = Literal["text", "timestamp", "requested_time", "bool", "enum", "ip"]

TIMESTAMP_DTYPE = "datetime64[us, UTC]"
"""Every instant inside the package: UTC, microsecond resolution."""

CHANNELS = ("phone", "customer_ticket", "email", "chat")
REQUESTER_TYPES = ("site", "reseller")
REASONS = ("isp_change", "equipment_change", "wan_lan", "other")
CREATORS = ("staff", "user")
EVENT_FIELDS = ("department", "status", "owner")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table.

    Attributes:
        name: Column name as written in the CSV header.
        kind: How the raw text is read (``timestamp`` = ISO-8601 instant; ``requested_time`` =
            timestamp, ``ASAP`` or blank; ``bool`` = ``yes``/``no``; ``ip`` = IPv4/IPv6 address).
        required: Whether a blank value rejects the row.
        values: Allowed values of an ``enum`` column.
    """

    name: str
    kind: Kind = "text"
    required: bool = False
    values: tuple[str, ...] = ()


def _c(name: str, kind: Kind = "text", *, required: bool = False, values: tuple[str, ...] = ()):
    return Column(name, kind, required, values)


TABLES: dict[str, tuple[Column, ...]] = {
    "tickets": (
        _c("ticket_id", required=True),
        _c("subject"),
        _c("department", required=True),
        _c("status", required=True),
        _c("owner"),
        _c("creator", "enum", required=True, values=CREATORS),
        _c("account"),
        _c("requester_name"),
        _c("requester_email"),
        _c("created_at", "timestamp", required=True),
        _c("updated_at", "timestamp"),
        _c("tags"),
    ),
    "ticket_events": (
        _c("ticket_id", required=True),
        _c("at", "timestamp", required=True),
        _c("field", "enum", required=True, values=EVENT_FIELDS),
        _c("old_value"),
        _c("new_value"),
        _c("actor"),
    ),
    "intake": (
        _c("ticket_id", required=True),
        _c("received_at", "timestamp", required=True),
        _c("channel", "enum", required=True, values=CHANNELS),
        _c("requester_type", "enum", values=REQUESTER_TYPES),
        _c("account"),
        _c("site"),
        _c("reseller"),
        _c("contact_name"),
        _c("contact_phone"),
        _c("person_of_record"),
        _c("reason", "enum", values=REASONS),
        _c("current_ip", "ip"),
        _c("new_ip", "ip"),
        _c("requested_change_at", "requested_time"),
        _c("ticket_number_given", "bool"),
        _c("transferred_to_queue", "bool"),
        _c("agent"),
    ),
    "changes": (
        _c("ticket_id", required=True),
        _c("confirmed_at", "timestamp"),
        _c("scheduled_start", "timestamp"),
        _c("scheduled_end", "timestamp"),
        _c("completed_at", "timestamp"),
        _c("cancelled_at", "timestamp"),
        _c("engineer"),
        _c("fee_accepted_by"),
        _c("fee_accepted_at", "timestamp"),
        _c("fee_waived", "bool"),
        _c("fee_waiver_reason"),
        _c("fee_waived_by"),
        _c("after_hours_approved_by"),
    ),
}
"""Canonical tables in CSV column order. ``ticket_id`` is the Kayako mask id (``ABC-123-45678``)."""

EXTRA_TYPED_COLUMNS: dict[str, dict[str, str]] = {
    "tickets": {"ticket_type": "str", "kayako_id": "str"},
    "intake": {"requested_asap": "bool", "source": "str", "overrides": "str"},
}
"""Columns a typed frame carries beyond the CSV: the Kayako ticket type and Kayako's internal
ticket id (``<ticket id>``, the audit log's ``ticketid``; text of the integer), each empty when
the source has none; whether the customer asked for the change ``ASAP``; where an intake record
came from (``source``: the intake file's name, or ``post <id>`` for a cloud-info macro in a
Kayako post) and the record of the other kind it replaced when it was loaded (``overrides``:
blank when none, see ``pipeline.load_file``)."""


NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "tickets": ("ticket_id",),
    "ticket_events": ("ticket_id", "at", "field", "old_value", "new_value"),
    "intake": ("ticket_id",),
    "changes": ("ticket_id",),
}
"""The natural key of each canonical table: no two rows of a table share one."""


def typed_dtypes(table: str) -> dict[str, str]:
    """Return the pandas dtype of every column of a typed (parsed, validated) canonical frame.

    Text is ``str`` (blank = empty string, never NA), instants are ``datetime64[us, UTC]`` (NaT =
    unknown), ``yes``/``no`` flags are nullable ``boolean`` (NA = not given), and ``requested_time``
    columns are instants with ``ASAP`` carried in ``requested_asap``.
    """
    kinds = {
        "text": "str",
        "enum": "str",
        "ip": "str",
        "timestamp": TIMESTAMP_DTYPE,
        "requested_time": TIMESTAMP_DTYPE,
        "bool": "boolean",
    }
    dtypes = {col.name: kinds[col.kind] for col in TABLES[table]}
    dtypes.update(EXTRA_TYPED_COLUMNS.get(table, {}))
    return dtypes


def empty_frame(table: str) -> pd.DataFrame:
    """Return a typed canonical frame with no rows (the columns and dtypes of ``table``)."""
    dtypes = typed_dtypes(table)
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in dtypes.items()})


SOURCE_LINE = "source_line"
"""Column of every parsed frame: the row's line in its input file (header = line 1)."""


def __getattr__(name: str) -> object:
    """Resolve ``FRAME_MODELS`` (:mod:`ipchange_core.contracts`) on first use.

    Importing pandera takes about a second and only validation needs it, so every command,
    report kernel and reader that never validates a frame skips it.
    """
    if name == "FRAME_MODELS":
        from ipchange_core.contracts import FRAME_MODELS

        return FRAME_MODELS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
