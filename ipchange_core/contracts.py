"""Declared contracts of the typed canonical frames (pandera; SPEC 3.4).

Every frame ``ingest.read_file`` returns is validated against these models (strict: no column
missing or extra; lazy: every failing row collected). A typed frame also carries ``source_line``,
the line of the input file each row came from (header = line 1). Kept apart from
:mod:`ipchange_core.schema` because importing pandera takes about a second: it is imported only
when a frame is validated (``schema.FRAME_MODELS`` resolves to :data:`FRAME_MODELS` on first use).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ipchange_core.schema import (
    CHANNELS,
    CREATORS,
    EVENT_FIELDS,
    REASONS,
    REQUESTER_TYPES,
    SOURCE_LINE,
    typed_dtypes,
)

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
    """Typed ``tickets`` (SPEC 3.4).

    ``ticket_type`` is the Kayako type name, ``kayako_id`` Kayako's internal ticket id (digits);
    each is blank when the source has none.
    """

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
    kayako_id: Series[str] = pa.Field(str_matches=r"^(?:\d+)?$")

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
    source: Series[str]
    overrides: Series[str]

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
