"""Shared test helpers: typed canonical frames from a few words per request, and input files."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import pandas as pd

from ipchange_core import schema
from ipchange_core.ingest import REJECT_COLUMNS, ParsedFile
from ipchange_core.schema import SOURCE_LINE, TABLES, TIMESTAMP_DTYPE, empty_frame, typed_dtypes

FIXTURES = Path(__file__).parent / "fixtures"

CT = "America/Chicago"

TICKET_DEFAULTS = {
    "subject": "IP change for site 114",
    "department": "Implementation",
    "status": "New",
    "owner": "",
    "creator": "staff",
    "account": "ACCT-1",
    "requester_name": "Pat Doe",
    "requester_email": "pat@example.com",
    "tags": "",
    "ticket_type": "",
}
INTAKE_DEFAULTS = {
    "channel": "phone",
    "requester_type": "site",
    "account": "ACCT-1",
    "site": "Site 114",
    "reseller": "",
    "contact_name": "Pat Doe",
    "contact_phone": "555-0100",
    "person_of_record": "Jane Roe",
    "reason": "isp_change",
    "current_ip": "203.0.113.5",
    "new_ip": "203.0.113.9",
    "ticket_number_given": True,
    "transferred_to_queue": True,
    "agent": "Alex Agent",
}


def at(local: str | None) -> pd.Timestamp:
    """A Central wall-clock time ``YYYY-MM-DD HH:MM[:SS[.ffffff]]`` as a UTC instant (µs)."""
    if local is None:
        return pd.NaT
    stamp = pd.Timestamp(local)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(CT, ambiguous="raise", nonexistent="raise")
    return stamp.tz_convert("UTC").as_unit("us")


def _frame(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    if not rows:
        return empty_frame(table)
    dtypes = typed_dtypes(table)
    data = {}
    for name, dtype in dtypes.items():
        values = [row.get(name) for row in rows]
        if dtype == TIMESTAMP_DTYPE:
            data[name] = pd.Series(
                [at(v) if isinstance(v, str) else v for v in values], dtype=dtype
            )
        elif dtype == "str":
            data[name] = pd.Series(["" if v is None else v for v in values], dtype="str")
        elif dtype == "bool":
            data[name] = pd.Series([bool(v) for v in values], dtype="bool")
        else:
            data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data)


def frames(
    *requests: dict[str, Any], tickets=(), events=(), intake=(), changes=()
) -> dict[str, pd.DataFrame]:
    """Typed frames for requests described by :func:`request`, plus raw extra rows."""
    t, e, i, c = list(tickets), list(events), list(intake), list(changes)
    for r in requests:
        t += r["tickets"]
        e += r["ticket_events"]
        i += r["intake"]
        c += r["changes"]
    return {
        "tickets": _frame("tickets", t),
        "ticket_events": _frame("ticket_events", e),
        "intake": _frame("intake", i),
        "changes": _frame("changes", c),
    }


def request(
    ticket_id: str = "KXP-100-00001",
    *,
    received: str = "2026-11-16 10:00",
    requested: str | None = "2026-11-20 10:00",
    created: str | None = None,
    ticket: dict[str, Any] | None = None,
    intake: dict[str, Any] | None = None,
    change: dict[str, Any] | None = None,
    events: list[dict[str, Any]] = (),
    has_ticket: bool = True,
    has_intake: bool = True,
) -> dict[str, list[dict[str, Any]]]:
    """One request as rows of the four tables; times are Central wall-clock strings.

    ``requested`` may be a time, ``"ASAP"`` or None (blank). ``created`` defaults to
    ``received``. ``change`` holds changes.csv fields (None = no change record).
    """
    asap = requested == "ASAP"
    rows: dict[str, list[dict[str, Any]]] = {
        "tickets": [],
        "ticket_events": [],
        "intake": [],
        "changes": [],
    }
    if has_ticket:
        rows["tickets"].append(
            {
                "ticket_id": ticket_id,
                **TICKET_DEFAULTS,
                "created_at": created or received,
                **(ticket or {}),
            }
        )
    if has_intake:
        rows["intake"].append(
            {
                "ticket_id": ticket_id,
                **INTAKE_DEFAULTS,
                "received_at": received,
                "requested_change_at": None if asap else requested,
                "requested_asap": asap,
                **(intake or {}),
            }
        )
    if change is not None:
        rows["changes"].append({"ticket_id": ticket_id, **change})
    rows["ticket_events"] = [{"ticket_id": ticket_id, **ev} for ev in events]
    return rows


def expedite(
    *,
    signed: str | None = "Jane Roe",
    done: bool = True,
    start: str = "2026-11-17 10:00",
    **extra: Any,
) -> dict[str, Any]:
    """A change record of an expedited change scheduled at ``start`` for an hour."""
    end = (pd.Timestamp(start) + pd.Timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    change = {
        "confirmed_at": "2026-11-16 11:00",
        "scheduled_start": start,
        "scheduled_end": end,
        "completed_at": end if done else None,
        "engineer": "Eve Engineer",
        "fee_accepted_by": signed or "",
        "fee_accepted_at": "2026-11-16 11:00" if signed else None,
    }
    change.update(extra)
    return change


# --- input files ---------------------------------------------------------------------------


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(dt.datetime(*args, tzinfo=dt.UTC))


def header(table: str) -> str:
    return ",".join(col.name for col in TABLES[table])


def row(table: str, **values: str) -> str:
    """One CSV line of ``table`` with the given values and valid defaults elsewhere."""
    defaults = {
        "tickets": {
            "ticket_id": "T-1",
            "department": "Implementation",
            "status": "New",
            "creator": "staff",
            "created_at": "2026-11-23T09:00:00-06:00",
        },
        "ticket_events": {
            "ticket_id": "T-1",
            "at": "2026-11-23T09:00:00-06:00",
            "field": "status",
            "old_value": "New",
            "new_value": "Open",
        },
        "intake": {
            "ticket_id": "T-1",
            "received_at": "2026-11-23T09:00:00-06:00",
            "channel": "phone",
        },
        "changes": {"ticket_id": "T-1"},
    }[table]
    merged = {**defaults, **values}
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(
        [merged.get(col.name, "") for col in TABLES[table]]
    )
    return out.getvalue().removesuffix("\r\n")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def assert_reconciles(parsed: ParsedFile) -> None:
    """The invariants every parse must keep, whatever the input."""
    rejected = parsed.rejects["line"].nunique()
    assert parsed.rows_read == len(parsed.frame) + rejected + parsed.rows_skipped
    assert list(parsed.rejects.columns) == list(REJECT_COLUMNS)
    assert parsed.rejects["line"].dtype == "int64"
    assert (parsed.rejects["file"] == parsed.path.name).all()
    assert (parsed.rejects["reason"].str.len() > 0).all()
    expected = {**typed_dtypes(parsed.table), SOURCE_LINE: "int64"}
    assert {c: str(t) for c, t in parsed.frame.dtypes.items()} == expected
    assert list(parsed.frame.columns) == list(expected)
    assert not set(parsed.frame[SOURCE_LINE]) & set(parsed.rejects["line"])
    assert parsed.frame[SOURCE_LINE].is_unique
    schema.FRAME_MODELS[parsed.table].validate(parsed.frame, lazy=True)


def by_id(parsed: ParsedFile) -> pd.DataFrame:
    """The accepted rows of a tickets file, indexed by ticket_id."""
    return parsed.frame.set_index("ticket_id")


def only_reject(parsed: ParsedFile) -> pd.Series:
    assert_reconciles(parsed)
    assert len(parsed.rejects) == 1, parsed.reject_messages()
    return parsed.rejects.iloc[0]


def kayako_ticket(n: int, **fields: str) -> str:
    """One <ticket> of a Kayako XML export: ticket ``n`` with valid defaults, ``fields`` set."""
    base = {
        "displayid": f"K-{n}",
        "departmentid": "3",
        "statusid": "1",
        "typeid": "3",
        "ownerstaffid": "0",
        "creator": "1",
        "creationtime": "1795446900",
        "subject": "Subject <b>&amp;</b>".replace("<b>", "").replace("</b>", ""),
    }
    base.update(fields)
    body = "".join(f"<{k}>{v}</{k}>" for k, v in base.items())
    return f'<ticket id="{n}" flagtype="0">{body}</ticket>'
