"""Evaluate requests by the policy in force at receipt: every computed field in one frame."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.errors import InvalidInputError
from ipchange_core.fees import decide_fees
from ipchange_core.policy import Policy, PolicySet, load_policy
from ipchange_core.requests import ASSEMBLED_COLUMNS, assemble
from ipchange_core.schema import TIMESTAMP_DTYPE, typed_dtypes
from ipchange_core.sla import evaluate_sla
from ipchange_core.textops import join_labels

FLAGS = (
    "requested_before_received",
    "no_intake_record",
    "intake_without_ticket",
    "incomplete_intake",
    "creation_state_unknown",
    "not_routed",
    "routing_history_missing",
    "sign_off_by_other",
    "person_of_record_missing",
    "incomplete_waiver",
    "expedited_without_sign_off",
    "after_hours_unapproved",
)
"""Flags a request can carry, joined with ``;`` in the ``flags`` column in this order."""


_READ_HINT = (
    "read the tables with ipchange_core.load_frames(period) (input_files= for export files), "
    "or give each column the dtype of ipchange_core.schema.typed_dtypes"
)


def _column(table: str, name: str, values: pd.Series, dtype: str) -> pd.Series:
    """``values`` in ``dtype`` when that loses nothing, else an error naming table and column."""
    where = f"evaluate: table {table!r}, column {name!r}"
    if str(values.dtype) == dtype:
        return values
    if dtype == TIMESTAMP_DTYPE:
        if isinstance(values.dtype, pd.DatetimeTZDtype):  # another zone or unit: same instants
            return values.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
        problem = (
            "holds local times without a zone (localize them)"
            if pd.api.types.is_datetime64_dtype(values.dtype)
            else f"holds {values.dtype} values"
        )
        raise InvalidInputError(
            f"{where} {problem}, expected aware instants ({TIMESTAMP_DTYPE}); {_READ_HINT}"
        )
    known = values.dropna()
    if dtype == "str" and known.map(type).eq(str).all():  # text read as object; NA = blank
        return values.fillna("").astype("str")
    if dtype == "boolean" and known.map(type).isin([bool, np.bool_]).all():
        return values.astype("boolean")
    raise InvalidInputError(f"{where} holds {values.dtype} values, expected {dtype}; {_READ_HINT}")


def typed_frames(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The columns :func:`evaluate` reads of each frame, checked and typed by the contract.

    A column already in its typed dtype is taken as it is; aware instants in another zone or
    unit become UTC microseconds, text read as ``object`` becomes ``str`` (NA as blank), flags
    become nullable booleans. Nothing else is guessed.

    Raises:
        InvalidInputError: A table or column is missing, or a column holds values of another
            kind (e.g. instants as text); the message names the table and the column.
    """
    typed = {}
    for table, columns in ASSEMBLED_COLUMNS.items():
        if table not in frames:
            raise InvalidInputError(
                f"evaluate: no table {table!r}; it needs {', '.join(ASSEMBLED_COLUMNS)}; "
                + _READ_HINT
            )
        frame = frames[table]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"evaluate: table {table!r} has no column {missing[0]!r}"
                + (f" (nor {', '.join(map(repr, missing[1:]))})" if missing[1:] else "")
                + f"; {_READ_HINT}"
            )
        dtypes = typed_dtypes(table)
        changed = {
            c: _column(table, c, frame[c], dtypes[c])
            for c in columns
            if str(frame[c].dtype) != dtypes[c]
        }
        typed[table] = frame.assign(**changed) if changed else frame
    return typed


@lru_cache(maxsize=32)
def calendar_for(policy: Policy) -> BusinessCalendar:
    """The business calendar of one policy version (built once per version)."""
    return BusinessCalendar.from_policy(policy)


def evaluate(
    frames: Mapping[str, pd.DataFrame],
    *,
    policy: PolicySet | None = None,
    as_of: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Apply the notice, fee and SLA rules to every IP change request.

    Each request is judged by the policy version in force at its ``received_at`` and records that
    version in ``policy_version``.

    Args:
        frames: The canonical frames ``tickets``, ``ticket_events``, ``intake`` and
            ``changes``, typed as :func:`ipchange_core.schema.typed_dtypes` says (e.g. from
            :func:`ipchange_core.load_frames`); frames read otherwise are checked and typed by
            :func:`typed_frames`.
        policy: The policy; the default policy when None.
        as_of: Report time (aware) against which running clocks are judged; now when None.

    Returns:
        One row per request: the joined request fields, ``notice_hours`` (hours),
        ``short_notice``, ``fee_status``, ``fee_cents``, the SLA columns of
        :func:`ipchange_core.sla.evaluate_sla`, ``policy_version`` and ``flags``. Instants are
        UTC; hours are floats.

    Raises:
        InvalidInputError: A frame lacks a table or column, or a column holds values of another
            kind; the message names the table and the column.
    """
    frames = typed_frames(frames)
    policy = policy or load_policy()
    as_of = pd.Timestamp.now(tz="UTC") if as_of is None else pd.Timestamp(as_of)
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    requests = assemble(
        frames["tickets"], frames["ticket_events"], frames["intake"], frames["changes"], policy
    )
    version = policy.version_index(requests["received_at"])
    parts = []
    for n, pol in enumerate(policy.versions):
        rows = requests[version == n]
        if rows.empty:
            continue
        cal = calendar_for(pol)
        judged = rows.join(decide_fees(rows, pol, cal))
        judged = judged.join(evaluate_sla(judged, pol, cal, as_of))
        parts.append(judged.assign(policy_version=pol.version))
    if parts:
        out = pd.concat(parts).sort_index()
    else:
        empty = requests.join(decide_fees(requests, policy.latest, calendar_for(policy.latest)))
        out = empty.join(evaluate_sla(empty, policy.latest, calendar_for(policy.latest), as_of))
        out["policy_version"] = pd.Series(dtype="str")
    out["no_intake_record"] = ~out["has_intake"]
    out["intake_without_ticket"] = ~out["has_ticket"]
    out["flags"] = join_labels({flag: out[flag] for flag in FLAGS}, out.index)
    return out
