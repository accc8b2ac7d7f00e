"""Flat files for analysts and billing: the requests export, with text safe for spreadsheets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.isotext import iso_text
from ipchange_core.sla import METRICS


@dataclass(frozen=True)
class ExportColumn:
    """One column of an export, as its data dictionary describes it.

    Attributes:
        name: Column name in the CSV header.
        type: ``text``, ``enum`` (one of the values named in ``meaning``), ``timestamp``
            (ISO-8601 with the UTC offset), ``decimal``, ``integer`` or ``boolean``
            (``true``/``false``). Empty means unknown or not applicable, for every type.
        unit: Unit of a number ("" when none).
        zone: Time zone of a timestamp ("" when none).
        meaning: What the value says, with the rule it comes from.
    """

    name: str
    type: str
    unit: str
    zone: str
    meaning: str


_ZONE = "policy zone (America/Chicago by default), with its UTC offset"
_STATE = (
    "`met`, `breached`, `open` (clock still running and target not yet passed{more}) or "
    "`not_applicable` ({na}); the state the SLA report counts, judged at export time"
)
_MISSED = "; empty unless the state is `breached`"


def _c(name: str, type_: str, meaning: str, *, unit: str = "", zone: str = "") -> ExportColumn:
    return ExportColumn(name, type_, unit, zone, meaning)


def _state_c(metric: str, met_when: str, *, na: str, more: str = "") -> ExportColumn:
    """The ``<metric>_state`` column: the states, when it is not applicable, when it is met."""
    meaning = _STATE.format(more=more, na=na) + f"; met when {met_when}."
    return _c(f"{metric}_state", "enum", meaning)


REQUEST_DICTIONARY = (
    _c(
        "ticket_id",
        "text",
        "Kayako ticket mask id (`ABC-123-45678`), of the ticket or of an "
        "intake record whose ticket is missing.",
    ),
    _c("account", "text", "Account of the intake record, else of the ticket."),
    _c(
        "channel",
        "enum",
        "How the request arrived: `phone`, `customer_ticket`, `email`, `chat` "
        "(intake record; empty without one).",
    ),
    _c(
        "received_at",
        "timestamp",
        "When the company learned of the request: the earlier of the "
        "intake's `received_at` and the ticket's `created_at` (SPEC 2.1). A request belongs to "
        "the period of this instant.",
        zone=_ZONE,
    ),
    _c(
        "requested_change_at",
        "timestamp",
        "The time the customer asked for; `ASAP` and a time "
        "before `received_at` are written as `received_at` (the latter flagged "
        "`requested_before_received`); empty when not given.",
        zone=_ZONE,
    ),
    _c(
        "notice_hours",
        "decimal",
        "`requested_change_at` − `received_at`, 4 decimals; calendar "
        "hours unless the policy measures notice in business hours.",
        unit="hours",
    ),
    _c(
        "short_notice",
        "boolean",
        "`notice_hours` is less than the policy threshold (48 h by "
        "default; exactly 48 is not short).",
    ),
    _c(
        "fee_status",
        "enum",
        "`not_applicable`, `billable`, `pending_sign_off`, "
        "`awaiting_change`, `waived` or `needs_review` (SPEC 2.1).",
    ),
    _c(
        "fee_cents",
        "integer",
        "Expedite fee: the policy fee when `billable`, 0 when "
        "`not_applicable` or `waived`, empty while undecided.",
        unit="cents (policy currency)",
    ),
    _c(
        "routing_business_hours",
        "decimal",
        "Business time from the ticket's creation (the "
        "request's receipt without a ticket) to its first arrival in Implementation; empty while "
        "not routed.",
        unit="business hours",
    ),
    _c(
        "routing_met",
        "boolean",
        "`true` when `routing_state` is `met`, `false` when `breached`, else empty.",
    ),
    _c(
        "confirmation_business_hours",
        "decimal",
        "Business time from `received_at` to the order confirmation; empty while not confirmed.",
        unit="business hours",
    ),
    _c(
        "confirmation_met",
        "boolean",
        "`true` when `confirmation_state` is `met`, `false` when `breached`, else empty.",
    ),
    _c(
        "in_hours",
        "boolean",
        "The change window (scheduled start to end, else the completion "
        "instant) lies entirely inside business hours; empty when no time is known. An approved "
        "after-hours change is `false` here and `met` in `in_hours_state`.",
    ),
    _c(
        "on_time",
        "boolean",
        "`true` when `on_time_state` is `met`, `false` when `breached`, else empty.",
    ),
    _c(
        "due_at",
        "timestamp",
        "When the customer may expect the change: the first business-hours "
        "instant at or after the requested time for a billable expedite, else after the later of "
        "the requested time and `received_at` + the notice threshold (SPEC 2.1).",
        zone=_ZONE,
    ),
    _c(
        "policy_version",
        "text",
        "Version of the policy in force at `received_at`, which judged the request.",
    ),
    _c(
        "flags",
        "text",
        "Data and compliance flags joined with `;`, in the order of "
        "`ipchange_core.evaluation.FLAGS`; empty when none.",
    ),
    _state_c(
        "routing",
        "`routing_business_hours` is within the policy target (1 h by default)",
        na="cancelled before routing",
    ),
    _state_c(
        "confirmation",
        "`confirmation_business_hours` is within the policy target (8 h by default)",
        na="cancelled before confirmation",
    ),
    _state_c(
        "correct_intake",
        "the ticket was created in Implementation / New / unassigned, the intake record is "
        "complete and the ticket number was given to the caller (SPEC 2.2)",
        na="customer-created tickets",
        more="; also when no history records the state the ticket was created in, see "
        "`correct_intake_issues`",
    ),
    _state_c(
        "in_hours",
        "the change is inside business hours or its after-hours work was approved",
        na="cancelled, nothing scheduled",
    ),
    _state_c(
        "on_time",
        "the change started (scheduled start, else completion) no later than `due_at`",
        na="cancelled, nothing started",
    ),
    _state_c(
        "fee_compliance",
        "a short-notice expedite has a valid sign-off or a waiver, breached when it was done "
        "without one",
        na="not an expedite: no fee, or fee needs review",
    ),
    _c(
        "routing_missed_by_hours",
        "decimal",
        "Business hours past the routing target (so far, at "
        "export time, while not routed)" + _MISSED + ".",
        unit="business hours",
    ),
    _c(
        "confirmation_missed_by_hours",
        "decimal",
        "Business hours past the confirmation target "
        "(so far, at export time, while not confirmed)" + _MISSED + ".",
        unit="business hours",
    ),
    _c(
        "in_hours_missed_by_hours",
        "decimal",
        "Hours of the change window outside business hours "
        "(0 for a completion instant outside them with no window)" + _MISSED + ".",
        unit="hours",
    ),
    _c(
        "on_time_missed_by_hours",
        "decimal",
        "Business hours from `due_at` to the start (to the "
        "export time while not started)" + _MISSED + ".",
        unit="business hours",
    ),
    _c(
        "correct_intake_issues",
        "text",
        "What was wrong with the intake, joined with `; ` (e.g. "
        "`not created in Implementation`, `missing reason`); `creation state unknown` means no "
        "history records how the ticket was created, which keeps the state `open`, not "
        "`breached`.",
    ),
    _c("agent", "text", "The agent who took the request (intake record)."),
    _c("engineer", "text", "The Implementation engineer of the change (change record)."),
    _c("reseller", "text", "Reseller of the account (intake record)."),
    _c(
        "reason",
        "enum",
        "Why the IP changes: `isp_change`, `equipment_change`, `wan_lan` or "
        "`other` (intake record).",
    ),
    _c("requester_type", "enum", "Who asked: `site` or `reseller` (intake record)."),
    _c("subject", "text", "Subject of the ticket."),
)
"""The data dictionary of ``ipchange export requests``: its columns, in order (SPEC 6)."""

REQUEST_COLUMNS = tuple(c.name for c in REQUEST_DICTIONARY)
"""Columns of ``ipchange export requests`` (SPEC 6), in order."""

MISSED_BY = ("routing", "confirmation", "in_hours", "on_time")
"""Metrics whose breaches have a duration (``<metric>_missed_by_hours``), as the breach list."""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""A cell starting with one of these is run as a formula by spreadsheets (OWASP CSV injection)."""


def iso_local(instants: pd.Series, tz: str) -> pd.Series:
    """ISO-8601 text with the UTC offset of ``tz`` (``2026-11-23T09:15:00-06:00``); NaT → "".

    Seconds precision, or microseconds when any instant has a fraction of a second. Vectorised
    (:func:`ipchange_core.isotext.iso_text`).
    """
    utc = instants.dt.tz_convert("UTC").dt.as_unit("us")
    local = instants.dt.tz_convert(tz).dt.tz_localize(None).dt.as_unit("us")
    micros = utc.array.asi8
    offset_minutes = (local.array.asi8 - micros) // 60_000_000
    fraction = bool((micros[~utc.isna().to_numpy()] % 1_000_000).any())
    text = iso_text(micros, offset_minutes, fraction=fraction)
    return pd.Series(text, index=instants.index, dtype="str").fillna("")


def _met(state: pd.Series) -> pd.Series:
    """``true`` when met, ``false`` when breached, empty while open or not applicable."""
    return state.map({"met": "true", "breached": "false"}).fillna("")


def _bool_text(values: pd.Series) -> pd.Series:
    return (
        values.astype("boolean").map({True: "true", False: "false"}, na_action="ignore").fillna("")
    )


def hours_column_text(hours: pd.Series) -> pd.Series:
    """Decimal hours rounded to 4 places (0.36 s), never in scientific notation; NaN → "".

    Trailing zeros are dropped (``1.5``, ``2``); a value rounding to zero from below keeps its
    sign (``-0``), as Python's ``f"{h:.4f}"`` writes it. Vectorised on the integer 1/10,000ths.
    """
    rounded = hours.astype(float).round(4).to_numpy()
    known = ~np.isnan(rounded)
    tenths = np.abs(np.rint(np.where(known, rounded, 0.0) * 10_000)).astype(np.int64)
    whole = pc.cast(pa.array(tenths // 10_000), pa.string())
    fraction = pc.utf8_rtrim(
        pc.utf8_lpad(pc.cast(pa.array(tenths % 10_000), pa.string()), 4, "0"), "0"
    )
    dot = pc.if_else(pc.equal(pc.utf8_length(fraction), 0), "", ".")
    sign = pa.array(np.where(np.signbit(rounded), "-", ""), pa.string())
    text = pc.binary_join_element_wise(sign, whole, dot, fraction, "")
    return pd.Series(pc.if_else(pa.array(known), text, ""), index=hours.index, dtype="str")


def requests_table(evaluated: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The requests export: one row per request with every computed field, as text (SPEC 6).

    The columns are those of :data:`REQUEST_DICTIONARY`, in its order. Timestamps are ISO-8601
    with the offset of ``tz``; hours are decimals; booleans are ``true``/``false``; unknown
    values are empty; text cells are made formula-safe. Each ``<metric>_state`` is the state
    :func:`ipchange_core.sla.evaluate_sla` gave the request, the one the SLA report counts, with
    ``n/a`` written ``not_applicable``.

    Args:
        evaluated: Output of :func:`ipchange_core.evaluation.evaluate`.
        tz: The policy time zone the timestamps are shown in.
    """
    e = evaluated
    values = {
        "ticket_id": e["ticket_id"],
        "account": e["account"],
        "channel": e["channel"],
        "received_at": iso_local(e["received_at"], tz),
        "requested_change_at": iso_local(e["requested_change_at"], tz),
        "notice_hours": hours_column_text(e["notice_hours"]),
        "short_notice": _bool_text(e["short_notice"]),
        "fee_status": e["fee_status"],
        "fee_cents": e["fee_cents"].astype("Int64").astype("str").fillna(""),
        "routing_business_hours": hours_column_text(e["routing_business_hours"]),
        "routing_met": _met(e["routing_state"]),
        "confirmation_business_hours": hours_column_text(e["confirmation_business_hours"]),
        "confirmation_met": _met(e["confirmation_state"]),
        "in_hours": _bool_text(e["in_hours"]),
        "on_time": _met(e["on_time_state"]),
        "due_at": iso_local(e["due_at"], tz),
        "policy_version": e["policy_version"],
        "flags": e["flags"],
        "correct_intake_issues": e["correct_intake_issues"],
    }
    for metric in METRICS:
        values[f"{metric}_state"] = export_state(e[f"{metric}_state"])
    for metric in MISSED_BY:
        breached = e[f"{metric}_state"] == "breached"
        values[f"{metric}_missed_by_hours"] = hours_column_text(
            e[f"{metric}_missed_by"].where(breached)
        )
    for name in ("agent", "engineer", "reseller", "reason", "requester_type", "subject"):
        values[name] = e[name]
    if set(values) != set(REQUEST_COLUMNS):
        raise AssertionError(f"export and dictionary differ: {set(values) ^ set(REQUEST_COLUMNS)}")
    out = pd.DataFrame(values, columns=list(REQUEST_COLUMNS))
    for column in REQUEST_DICTIONARY:
        if column.type in ("text", "enum"):
            out[column.name] = formula_safe(out[column.name].fillna(""))
    return out


def export_state(state: pd.Series) -> pd.Series:
    """A metric's state as the export writes it: ``met|breached|open|not_applicable`` (text)."""
    return state.astype("str").replace("n/a", "not_applicable")


def dictionary_markdown(columns: tuple[ExportColumn, ...] = REQUEST_DICTIONARY) -> str:
    """The data dictionary of the requests export as a Markdown page.

    ``ipchange export requests --describe`` prints it, and ``docs/export-requests.md`` holds
    it (regenerate with ``ipchange export requests --describe > docs/export-requests.md``).
    """
    lines = [
        "# `ipchange export requests`: the data dictionary",
        "",
        "<!-- Generated from ipchange_core.export.REQUEST_DICTIONARY by "
        "`ipchange export requests --describe`; do not edit by hand. -->",
        "",
        "One row per IP change request received in the period (SPEC 6), as CSV (UTF-8, CRLF). "
        "Every value is text: timestamps ISO-8601 with the UTC offset, hours as decimals, "
        "booleans `true`/`false`; an empty cell is unknown or not applicable, never 0. Text "
        "that a spreadsheet would run as a formula starts with `'`. SLA states are judged at "
        "the time of the export, as a report is at the time it is built; the SLA report's "
        "met / breached / open / not applicable counts are the counts of the `<metric>_state` "
        "columns.",
        "",
        "| column | type | unit | time zone | meaning |",
        "|---|---|---|---|---|",
    ]
    for c in columns:
        cells = (f"`{c.name}`", c.type, c.unit or "—", c.zone or "—", c.meaning)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def formula_safe(text: pd.Series) -> pd.Series:
    """Prefix ``'`` to text a spreadsheet would run as a formula (starts with = + - @ tab CR).

    Numbers are not text and stay numbers; apply this to text columns only.
    """
    text = text.astype("str")
    risky = text.str.startswith(FORMULA_PREFIXES)
    return text.mask(risky, "'" + text)
