"""Flat files for analysts and billing: the requests export, with text safe for spreadsheets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.isotext import iso_text

REQUEST_COLUMNS = (
    "ticket_id",
    "account",
    "channel",
    "received_at",
    "requested_change_at",
    "notice_hours",
    "short_notice",
    "fee_status",
    "fee_cents",
    "routing_business_hours",
    "routing_met",
    "confirmation_business_hours",
    "confirmation_met",
    "in_hours",
    "on_time",
    "due_at",
    "policy_version",
    "flags",
)
"""Columns of ``ipchange export requests`` (SPEC 6), in order."""

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


def _hours_text(hours: pd.Series) -> pd.Series:
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

    Timestamps are ISO-8601 with the offset of ``tz``; hours are decimals; booleans are
    ``true``/``false``; unknown values are empty; text cells are made formula-safe.

    Args:
        evaluated: Output of :func:`ipchange_core.evaluate.evaluate`.
        tz: The policy time zone the timestamps are shown in.
    """
    e = evaluated
    out = pd.DataFrame(
        {
            "ticket_id": e["ticket_id"],
            "account": e["account"],
            "channel": e["channel"],
            "received_at": iso_local(e["received_at"], tz),
            "requested_change_at": iso_local(e["requested_change_at"], tz),
            "notice_hours": _hours_text(e["notice_hours"]),
            "short_notice": _bool_text(e["short_notice"]),
            "fee_status": e["fee_status"],
            "fee_cents": e["fee_cents"].astype("Int64").astype("str").fillna(""),
            "routing_business_hours": _hours_text(e["routing_business_hours"]),
            "routing_met": _met(e["routing_state"]),
            "confirmation_business_hours": _hours_text(e["confirmation_business_hours"]),
            "confirmation_met": _met(e["confirmation_state"]),
            "in_hours": _bool_text(e["in_hours"]),
            "on_time": _met(e["on_time_state"]),
            "due_at": iso_local(e["due_at"], tz),
            "policy_version": e["policy_version"],
            "flags": e["flags"],
        },
        columns=list(REQUEST_COLUMNS),
    )
    for col in ("ticket_id", "account", "channel", "policy_version"):
        out[col] = formula_safe(out[col])
    return out


def formula_safe(text: pd.Series) -> pd.Series:
    """Prefix ``'`` to text a spreadsheet would run as a formula (starts with = + - @ tab CR).

    Numbers are not text and stay numbers; apply this to text columns only.
    """
    text = text.astype("str")
    risky = text.str.startswith(FORMULA_PREFIXES)
    return text.mask(risky, "'" + text)
