"""Account and reseller statements (SPEC 5.7): fee lines, credits, reversals, net and SLA.

``ipchange fees statement --account A (--month M | --start D --end D)`` (or ``--reseller R``)
writes ``statement-<who>-<period>.html`` and ``.csv``: every ledger line of the requests of that
account received in the period (fees, corrections, waivers, credits and reversals) with its
batch and the batch's date (or "not billed yet"), the net billed, and the SLA compliance of the
account's requests of the period. Money is integer cents, shown as dollars; the CSV is
formula-safe; the HTML is offline and escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ipchange_core import billing, store
from ipchange_core.atomic import atomic_write
from ipchange_core.csvfile import csv_bytes as csv_file_bytes
from ipchange_core.errors import IpchangeError
from ipchange_core.evaluation import evaluate
from ipchange_core.evidence import escape as _e
from ipchange_core.evidence import evidence_name, safe_name
from ipchange_core.export import formula_safe
from ipchange_core.periods import Period
from ipchange_core.policy import PolicySet
from ipchange_core.sla import compliance
from ipchange_core.store.connection import reading
from ipchange_core.textops import money


@dataclass(frozen=True)
class Statement:
    """A statement.

    Attributes:
        lines: One row per ledger line: ``Ticket``, ``Received``, ``Kind``, ``Amount``
            (integer cents), ``Reason``, ``Batch`` (``<NA>`` while not billed), ``Billed on``
            (local date of the batch, ``""`` while not billed).
        billed_cents: Sum of the billed lines (integer cents).
        pending_cents: Sum of the lines not billed yet.
        sla: :func:`ipchange_core.sla.compliance` of the account's requests of the period.
        requests: How many requests of the account were received in the period.
    """

    lines: pd.DataFrame
    billed_cents: int
    pending_cents: int
    sla: pd.DataFrame
    requests: int


def statement(
    engine: Engine, policy: PolicySet, period: Period, *, by: str, name: str
) -> Statement:
    """Gather the statement of one account (``by="account"``) or reseller (``"reseller"``).

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        policy: Judges the requests.
        period: Requests received in ``[period.start, period.end)``.
        by: ``account`` or ``reseller``.
        name: The account or reseller, exactly as stored.

    Raises:
        IpchangeError: ``by`` is neither, or no request of the period belongs to ``name``.
    """
    if by not in ("account", "reseller"):
        raise IpchangeError(f"a statement is per account or reseller, not {by!r}")
    evaluated = evaluate(
        store.read_frames(engine, period.start, period.end, policy=policy), policy=policy
    )
    mine = evaluated[evaluated[by] == name]
    if mine.empty:
        raise IpchangeError(f"no request of {by} {name!r} was received in {period.label}")
    tz = policy.latest.timezone
    ledger = store.fee_ledger(engine)
    rows = ledger[ledger["ticket_id"].isin(mine["ticket_id"])]
    table = store.ExportBatch.__table__
    with reading(engine) as conn:
        dates = dict(conn.execute(select(table.c.id, table.c.created_at)).all())
    received = mine.set_index("ticket_id")["received_at"]
    rows = rows.assign(received_at=rows["ticket_id"].map(received)).sort_values(
        ["received_at", "ticket_id", "id"]
    )
    billed_on = rows["export_batch_id"].map(
        lambda b: "" if pd.isna(b) else f"{pd.Timestamp(dates[int(b)]).tz_convert(tz):%Y-%m-%d}"
    )
    lines = pd.DataFrame(
        {
            "Ticket": rows["ticket_id"],
            "Received": rows["received_at"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M"),
            "Kind": rows["kind"],
            "Amount": rows["amount_cents"].astype("int64"),
            "Reason": billing.reason_text(rows),
            "Batch": rows["export_batch_id"],
            "Billed on": billed_on.astype(str),
        }
    ).reset_index(drop=True)
    billed = rows["export_batch_id"].notna()
    return Statement(
        lines=lines,
        billed_cents=int(rows.loc[billed, "amount_cents"].sum()),
        pending_cents=int(rows.loc[~billed, "amount_cents"].sum()),
        sla=compliance(mine, policy.latest),
        requests=len(mine),
    )


def csv_bytes(s: Statement) -> bytes:
    """The statement's lines as UTF-8 CSV (amounts in dollars, text formula-safe), then the net."""
    out = s.lines.copy()
    for col in ("Ticket", "Kind", "Reason"):
        out[col] = formula_safe(out[col].fillna(""))
    out["Amount"] = s.lines["Amount"].map(_dollars)
    out["Batch"] = out["Batch"].astype("str").replace("<NA>", "")
    total = pd.DataFrame([{"Ticket": "Net billed", "Amount": _dollars(s.billed_cents)}])
    return csv_file_bytes(pd.concat([out, total]).fillna(""))


def _dollars(cents: int) -> str:
    return f"{'-' if cents < 0 else ''}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _pct(value: float) -> str:
    return "unknown" if pd.isna(value) else f"{value:.1f} %"


def html_page(s: Statement, *, by: str, name: str, period: Period, currency: str) -> str:
    """The statement as one offline, escaped HTML page (printable)."""
    lines = "".join(
        "<tr>"
        f'<td><a href="../evidence/{_e(evidence_name(r["Ticket"]))}">{_e(r["Ticket"])}</a></td>'
        f"<td>{_e(r['Received'])}</td><td>{_e(r['Kind'])}</td>"
        f"<td class=num>{_e(money(int(r['Amount']), currency))}</td><td>{_e(r['Reason'])}</td>"
        f"<td>{'not billed yet' if pd.isna(r['Batch']) else _e(r['Batch'])}</td>"
        f"<td>{_e(r['Billed on'])}</td></tr>"
        for r in s.lines.to_dict("records")
    )
    sla = "".join(
        f"<tr><td>{_e(str(r['metric']).replace('_', ' '))}</td><td class=num>"
        f"{_pct(r['compliance_pct'])}</td>"
        f"<td class=num>{int(r['met'])}</td><td class=num>{int(r['breached'])}</td>"
        f"<td class=num>{int(r['open'])}</td><td>{_e(r['target'])}</td></tr>"
        for r in s.sla.to_dict("records")
    )
    title = f"Statement · {by} {name} · {period.label}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{_e(title)}</title><style>
@page {{ size: auto; margin: 12mm; }}
body {{ font: 10pt/1.3 system-ui, sans-serif; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 1mm 3mm 1mm 0; text-align: left; }}
td.num {{ text-align: right; }} tr {{ border-bottom: 1px solid #ddd; }}
</style></head><body>
<h1>{_e(title)}</h1>
<p>{s.requests} request(s) received in the period.
Net billed: <strong>{_e(money(s.billed_cents, currency))}</strong>;
not billed yet: {_e(money(s.pending_cents, currency))}.</p>
<h2>Fee lines, credits and reversals</h2>
<table><tr><th>Ticket</th><th>Received</th><th>Kind</th><th>Amount</th><th>Reason</th>
<th>Batch</th><th>Billed on</th></tr>{lines or "<tr><td colspan=7>No fee lines.</td></tr>"}
</table>
<h2>SLA compliance of these requests</h2>
<table><tr><th>Metric</th><th>Compliance</th><th>Met</th><th>Breached</th><th>Open</th>
<th>Target</th></tr>{sla}</table>
</body></html>
"""


def write_statement(
    engine: Engine, policy: PolicySet, period: Period, out: Path, *, by: str, name: str
) -> tuple[Path, Path]:
    """Write ``<out>/statement-<by>-<name>-<period>.html`` and ``.csv``.

    Returns:
        The HTML and CSV paths.
    """
    s = statement(engine, policy, period, by=by, name=name)
    stem = f"statement-{by}-{safe_name(name)}-{period.label}"
    page = html_page(s, by=by, name=name, period=period, currency=policy.latest.currency)
    paths = (out / f"{stem}.html", out / f"{stem}.csv")
    atomic_write(paths[0], page.encode("utf-8"))
    atomic_write(paths[1], csv_bytes(s))
    return paths
