"""The fee evidence page (SPEC 5.7): one printable, offline HTML page per fee, for a dispute.

A disputed $250 turns on the notice: 47 versus 49 hours. The page shows the timeline of the
request (ticket created, routed, intake received by whom and through which channel, requested
time), the notice in hours against the threshold with the procedure's sentence and the policy
version that judged it, the sign-off against the person of record, the change window and its
completion, the fee status and every ledger row. Times are local wall times of the policy zone,
to the minute; a value the data does not hold is shown as "unknown". All text is escaped; the
page loads nothing (no script, no external style) and fits one A4 or Letter page when printed.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy.engine import Engine

from ipchange_core import billing, store
from ipchange_core.atomic import atomic_write
from ipchange_core.config import database_url
from ipchange_core.evaluation import evaluate
from ipchange_core.periods import Period
from ipchange_core.policy import Policy, PolicySet
from ipchange_core.textops import money

if TYPE_CHECKING:  # the report modules import plotly: only the report section needs them
    from ipchange_core.reports import Html, ReportData

NOTICE_SENTENCE = (
    "ANY IP change that is being requested with less than 48 hours' notice is subject to "
    "$250.00 fee"
)
"""The procedure's sentence behind the notice threshold and the fee (IP Change Request
Procedure, 05 August 2014)."""
SIGN_OFF_SENTENCE = (
    "Part of the confirmation process for expedited request will require an acceptance of the "
    "fee signed off by the person of record for the account."
)
"""The procedure's sentence behind the sign-off."""

_CSS = """
@page { size: auto; margin: 12mm; }
body { font: 10pt/1.3 system-ui, sans-serif; color: #111; margin: 0 auto; max-width: 180mm; }
h1 { font-size: 14pt; margin: 0 0 2mm; }
h2 { font-size: 11pt; margin: 4mm 0 1mm; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.6mm 2mm 0.6mm 0; }
th { font-weight: 600; white-space: nowrap; width: 38%; }
table.ledger th, table.ledger td { font-size: 8.5pt; width: auto; border-bottom: 1px solid #ddd; }
td.num { text-align: right; white-space: nowrap; }
blockquote { margin: 1mm 0 1mm 4mm; font-style: italic; }
.verdict { font-weight: 600; }
footer { margin-top: 4mm; font-size: 8pt; color: #555; }
@media print { body { max-width: none; } }
"""


def escape(value: object) -> str:
    """Any value as HTML text (quotes escaped too)."""
    return html.escape(str(value), quote=True)


_e = escape


def _when(value: object, tz: str) -> str:
    if value is None or pd.isna(value):
        return "unknown"
    return pd.Timestamp(value).tz_convert(tz).strftime("%a %Y-%m-%d %H:%M %Z")


def _text(value: object) -> str:
    text = "" if value is None or pd.isna(value) else str(value).strip()
    return text or "unknown"


def _rows(items: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)


def _policy(policies: PolicySet, version: str) -> Policy:
    for policy in policies.versions:
        if policy.version == version:
            return policy
    return policies.latest


def _notice(r: pd.Series, policy: Policy) -> tuple[str, str]:
    unit = "business hours" if policy.notice_measure == "business" else "calendar hours"
    threshold = f"{policy.threshold_hours:g} {unit}"
    if pd.isna(r["notice_hours"]):
        return "unknown (no requested time)", threshold
    hours = float(r["notice_hours"])
    verdict = "short notice" if hours < policy.threshold_hours else "not short notice"
    return f"{hours:.2f} {unit}: {verdict} (less than {threshold} is short)", threshold


def _sign_off(r: pd.Series, tz: str) -> str:
    signer = str(r["fee_accepted_by"]).strip()
    person = str(r["person_of_record"]).strip()
    if not signer:
        return "no sign-off recorded"
    match = "matches" if not r["sign_off_by_other"] else "does NOT match"
    who = f"{signer}, {_when(r['fee_accepted_at'], tz)}"
    return f"{who}; {match} the person of record ({person or 'unknown'})"


def evidence_html(r: pd.Series, history: pd.DataFrame, policies: PolicySet) -> str:
    """The evidence page of one evaluated request.

    Args:
        r: One row of :func:`ipchange_core.evaluation.evaluate` (instants in UTC).
        history: :func:`ipchange_core.billing.history` of the ticket.
        policies: The policy set; the version recorded with the request judged it.

    Returns:
        A complete HTML document (UTF-8 text, no script, nothing loaded from elsewhere).
    """
    policy = _policy(policies, str(r["policy_version"]))
    tz = policy.timezone
    notice, threshold = _notice(r, policy)
    window = "unknown"
    if pd.notna(r["scheduled_start"]):
        window = f"{_when(r['scheduled_start'], tz)} to {_when(r['scheduled_end'], tz)}"
    routed = _when(r["routed_at"], tz)
    if pd.notna(r["routing_business_hours"]):
        routed += f" ({float(r['routing_business_hours']):.2f} business h after creation)"
    timeline = [
        ("Ticket created", _when(r["created_at"], tz)),
        ("Routed to Implementation", routed),
        (
            "Intake received",
            f"{_when(r['received_at'], tz)} by {_text(r['agent'])}, channel {_text(r['channel'])}",
        ),
        (
            "Requested change time",
            "as soon as possible" if r["requested_asap"] else _when(r["requested_change_at"], tz),
        ),
        ("Notice", notice),
        ("Sign-off", _sign_off(r, tz)),
        ("Change window", window),
        ("Completed", _when(r["completed_at"], tz)),
    ]
    if pd.notna(r["cancelled_at"]):
        timeline.append(("Cancelled", _when(r["cancelled_at"], tz)))
    status = str(r["fee_status"]).replace("_", " ")
    fee = "not decided" if pd.isna(r["fee_cents"]) else money(int(r["fee_cents"]), policy.currency)
    net = money(int(history["Amount"].sum()) if len(history) else 0, policy.currency)
    ledger = "".join(
        "<tr>"
        f"<td>{_e(h['When'].strftime('%Y-%m-%d %H:%M'))}</td><td>{_e(h['Kind'])}</td>"
        f"<td class=num>{_e(money(int(h['Amount']), policy.currency))}</td>"
        f"<td>{_e(h['Reason'] or h['Status'])}</td>"
        f"<td>{_e(h['By'])} ({_e(h['OS user'])})</td>"
        f"<td>{'not yet' if pd.isna(h['Batch']) else _e(h['Batch'])}</td>"
        "</tr>"
        for h in history.to_dict("records")
    )
    ticket = _e(r["ticket_id"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Fee evidence · {ticket}</title><style>{_CSS}</style></head>
<body>
<h1>Expedite fee evidence · ticket {ticket}</h1>
<table>{
        _rows(
            [
                ("Account", _text(r["account"])),
                ("Site / reseller", f"{_text(r['site'])} / {_text(r['reseller'])}"),
                ("Person of record", _text(r["person_of_record"])),
            ]
        )
    }</table>
<h2>Timeline ({_e(tz)})</h2>
<table>{_rows(timeline)}</table>
<h2>Rule</h2>
<blockquote>“{_e(NOTICE_SENTENCE)}”</blockquote>
<blockquote>“{_e(SIGN_OFF_SENTENCE)}”</blockquote>
<p>Policy version {_e(policy.version)}: notice is short below {_e(threshold)}; the fee is
{_e(money(policy.fee_cents, policy.currency))}.</p>
<p class="verdict">Fee status: {_e(status)} · fee {_e(fee)} · billed net {_e(net)}</p>
<h2>Ledger history</h2>
<table class="ledger"><tr><th>When</th><th>Kind</th><th>Amount</th><th>Reason</th>
<th>By (OS user)</th><th>Batch</th></tr>{ledger or "<tr><td colspan=6>No ledger rows.</td></tr>"}
</table>
<footer>ipchange · evidence for ticket {ticket} · judged under policy {_e(policy.version)}</footer>
</body></html>
"""


def evidence_name(ticket_id: str) -> str:
    """The file name of a ticket's evidence page (safe on every file system)."""
    return f"fee-evidence-{safe_name(ticket_id)}.html"


def safe_name(text: str) -> str:
    """``text`` usable in a file name on every file system (other characters become ``_``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def write_evidence(engine: Engine, policies: PolicySet, ticket_id: str, out: Path) -> Path:
    """Write ``<out>/fee-evidence-<ticket>.html`` for one request.

    Raises:
        IpchangeError: Unknown ticket, or it is no IP change request.
    """
    r = billing.evaluate_ticket(engine, policies, ticket_id)
    return _write(policies, r, store.ticket_ledger(engine, ticket_id), out)


def _write(policies: PolicySet, r: pd.Series, rows: pd.DataFrame, out: Path) -> Path:
    tz = _policy(policies, str(r["policy_version"])).timezone
    history = billing.history_frame(rows, tz)
    path = out / evidence_name(str(r["ticket_id"]))
    atomic_write(path, evidence_html(r, history, policies).encode("utf-8"))
    return path


EVIDENCE_DIR = "evidence"
"""Folder of a fee report's evidence pages, beside the report (``<reports>/<period>/evidence``)."""


def fee_tickets(requests: pd.DataFrame, ledger: pd.DataFrame) -> pd.DataFrame:
    """The requests that get an evidence page: a fee now, waived, or rows in the ledger."""
    carries = requests["fee_status"].isin([*billing.FEE_DUE, "waived"])
    return requests[carries | requests["ticket_id"].isin(ledger["ticket_id"])]


def write_period_evidence(
    engine: Engine, policies: PolicySet, period: Period, folder: Path
) -> list[Path]:
    """Write the evidence page of every fee of a period into ``<folder>/evidence/``.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        policies: Judges the requests.
        period: Requests received in ``[period.start, period.end)``.
        folder: The period's report folder (``<reports>/<period>``).

    Returns:
        The pages written, in ticket order.
    """
    requests = evaluate(
        store.read_frames(engine, period.start, period.end, policy=policies), policy=policies
    )
    ledger = store.fee_ledger(engine)  # read once: one page per fee, no query per page
    rows = dict(tuple(ledger.groupby("ticket_id"))) if len(ledger) else {}
    chosen = fee_tickets(requests, ledger).sort_values("ticket_id")
    return [
        _write(policies, r, rows.get(r["ticket_id"], ledger.iloc[0:0]), folder / EVIDENCE_DIR)
        for _, r in chosen.iterrows()
    ]


def ledger_section(data: ReportData, db_url: str) -> Html:
    """The fee report's corrections and credits of the period, and each fee's evidence link.

    Lists every ledger row other than a first fee (corrections, waivers, credits, reversals) of
    the period's requests, with amount, reason, who and batch, and their total; then the links
    to the evidence pages (``evidence/fee-evidence-<ticket>.html``, written by
    ``ipchange report fees``).

    Args:
        data: From :func:`ipchange_core.reports.load`.
        db_url: Database URL; "" for ``IPCHANGE_DB_URL`` or the default SQLite file.
    """
    from ipchange_core.reports import Html

    with store.connected(database_url(db_url or None)) as engine:
        ledger = store.fee_ledger(engine)
    tz, currency = data.tz, data.policy.latest.currency
    mine = ledger[ledger["ticket_id"].isin(data.requests["ticket_id"])]
    fixes = mine[mine["kind"] != "fee"]
    rows = "".join(
        f"<tr><td>{_e(_when(r['computed_at'], tz))}</td>"
        f"<td>{_link(r['ticket_id'])}</td><td>{_e(r['kind'])}</td>"
        f"<td class=num>{_e(money(int(r['amount_cents']), currency))}</td>"
        f"<td>{_e(text)}</td><td>{_e(r['by_name'])}</td>"
        f"<td>{'not billed yet' if pd.isna(r['export_batch_id']) else _e(r['export_batch_id'])}"
        "</td></tr>"
        for r, text in zip(fixes.to_dict("records"), billing.reason_text(fixes), strict=True)
    )
    total = money(int(fixes["amount_cents"].sum()), currency)
    table = (
        '<div class="table-wrap"><table class="report-table"><thead><tr><th>Recorded</th>'
        "<th>Ticket</th><th>Kind</th><th>Amount</th><th>Reason</th><th>By</th><th>Batch</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div>"
        f"<p>Corrections and credits: {len(fixes)} line(s), {_e(total)}.</p>"
        if len(fixes)
        else '<p class="empty">No corrections or credits for this period\'s requests.</p>'
    )
    tickets = fee_tickets(data.requests, ledger)["ticket_id"].sort_values()
    links = " · ".join(_link(t) for t in tickets)
    evidence = f"<p>Evidence pages: {links}</p>" if links else ""
    return Html(table + evidence)


def _link(ticket_id: str) -> str:
    href = f"{EVIDENCE_DIR}/{evidence_name(ticket_id)}"
    return f'<a href="{_e(href)}">{_e(ticket_id)}</a>'
