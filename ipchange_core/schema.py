"""The canonical tables: their columns, value kinds and enumerations (SPEC 3.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

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
    "tickets": {"ticket_type": "str"},
    "intake": {"requested_asap": "bool"},
}
"""Columns a typed frame carries beyond the CSV: the Kayako ticket type (empty when the source
has none) and whether the customer asked for the change ``ASAP``."""


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


# --- Declared contracts of the typed frames (pandera) -------------------------------------------
# Added for ingest: every frame `ingest.read_file` returns is validated against these models
# (strict: no column missing or extra; lazy: every failing row collected). A typed frame also
# carries `source_line`, the line of the input file each row came from (header = line 1).

SOURCE_LINE = "source_line"
"""Column of every parsed frame: the row's line in its input file (header = line 1)."""

_UTC_US = {"unit": "us", "tz": "UTC"}


class _TypedFrame(pa.DataFrameModel):
    """Checks shared by every typed canonical frame."""

    source_line: Series[int] = pa.Field(ge=1)

    class Config:
        """Strict: the frame holds exactly the declared columns; nothing is coerced."""

        strict = True
        coerce = False

    @pa.dataframe_check(error="column dtypes differ from schema.typed_dtypes")
    @classmethod
    def exact_dtypes(cls, df: pd.DataFrame) -> bool:
        """Check every dtype is exactly the declared one (pandera alone accepts ``object`` text)."""
        expected = {**typed_dtypes(cls.Config.name), SOURCE_LINE: "int64"}
        return {c: str(t) for c, t in df.dtypes.items()} == expected


def _required_text() -> object:
    return pa.Field(str_length={"min_value": 1})


def _enum(values: tuple[str, ...], *, required: bool = False) -> object:
    return pa.Field(isin=list(values) if required else [*values, ""])


def _instant(*, required: bool = False) -> object:
    return pa.Field(nullable=not required, dtype_kwargs=_UTC_US)


def _flag() -> object:
    return pa.Field(nullable=True)


class TicketsFrame(_TypedFrame):
    """Typed ``tickets`` (SPEC 3.4); ``ticket_type`` is the Kayako type name or blank."""

    ticket_id: Series[str] = _required_text()
    subject: Series[str]
    department: Series[str] = _required_text()
    status: Series[str] = _required_text()
    owner: Series[str]
    creator: Series[str] = _enum(CREATORS, required=True)
    account: Series[str]
    requester_name: Series[str]
    requester_email: Series[str]
    created_at: Series[pd.DatetimeTZDtype] = _instant(required=True)
    updated_at: Series[pd.DatetimeTZDtype] = _instant()
    tags: Series[str]
    ticket_type: Series[str]

    class Config:
        """Named after the canonical table."""

        name = "tickets"


class TicketEventsFrame(_TypedFrame):
    """Typed ``ticket_events`` (SPEC 3.4): one department/status/owner change each."""

    ticket_id: Series[str] = _required_text()
    at: Series[pd.DatetimeTZDtype] = _instant(required=True)
    field: Series[str] = _enum(EVENT_FIELDS, required=True)
    old_value: Series[str]
    new_value: Series[str]
    actor: Series[str]

    class Config:
        """Named after the canonical table."""

        name = "ticket_events"


class IntakeFrame(_TypedFrame):
    """Typed ``intake`` (SPEC 3.4); ``requested_asap`` is True when the customer said ``ASAP``."""

    ticket_id: Series[str] = _required_text()
    received_at: Series[pd.DatetimeTZDtype] = _instant(required=True)
    channel: Series[str] = _enum(CHANNELS, required=True)
    requester_type: Series[str] = _enum(REQUESTER_TYPES)
    account: Series[str]
    site: Series[str]
    reseller: Series[str]
    contact_name: Series[str]
    contact_phone: Series[str]
    person_of_record: Series[str]
    reason: Series[str] = _enum(REASONS)
    current_ip: Series[str]
    new_ip: Series[str]
    requested_change_at: Series[pd.DatetimeTZDtype] = _instant()
    ticket_number_given: Series[pd.BooleanDtype] = _flag()
    transferred_to_queue: Series[pd.BooleanDtype] = _flag()
    agent: Series[str]
    requested_asap: Series[bool]

    class Config:
        """Named after the canonical table."""

        name = "intake"


class ChangesFrame(_TypedFrame):
    """Typed ``changes`` (SPEC 3.4): the Implementation group's record of each change."""

    ticket_id: Series[str] = _required_text()
    confirmed_at: Series[pd.DatetimeTZDtype] = _instant()
    scheduled_start: Series[pd.DatetimeTZDtype] = _instant()
    scheduled_end: Series[pd.DatetimeTZDtype] = _instant()
    completed_at: Series[pd.DatetimeTZDtype] = _instant()
    cancelled_at: Series[pd.DatetimeTZDtype] = _instant()
    engineer: Series[str]
    fee_accepted_by: Series[str]
    fee_accepted_at: Series[pd.DatetimeTZDtype] = _instant()
    fee_waived: Series[pd.BooleanDtype] = _flag()
    fee_waiver_reason: Series[str]
    fee_waived_by: Series[str]
    after_hours_approved_by: Series[str]

    class Config:
        """Named after the canonical table."""

        name = "changes"


FRAME_MODELS: dict[str, type[_TypedFrame]] = {
    "tickets": TicketsFrame,
    "ticket_events": TicketEventsFrame,
    "intake": IntakeFrame,
    "changes": ChangesFrame,
}
"""The pandera model that declares each typed canonical frame (with ``source_line``)."""
