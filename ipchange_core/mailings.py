"""The mails people get (``ipchange mail check|weekly|fees``): what each says and attaches.

* check — the morning check's counts and most urgent rows; attached its page and CSV.
* weekly — the SLA tiles of a period and its breaches; attached a zip of the period's reports
  with the shared plotly.js beside them (unzipped, the pages open offline).
* fees — the fee export batches of a period not mailed yet; attached their CSV and XLSX. Each
  mailed batch is recorded (table ``mail_sent``) once the server took the message, so a batch
  is never sent twice unless asked (``resend``).
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ipchange_core import billing, check, check_report, render, reports, store
from ipchange_core.csvfile import write_csv
from ipchange_core.dashboard import write_dashboard
from ipchange_core.errors import IpchangeError
from ipchange_core.mail import Attachment, html_document, paragraph, table, tiles
from ipchange_core.periods import Period
from ipchange_core.policy import PolicySet
from ipchange_core.sla import breaches
from ipchange_core.textops import money

_META = sa.MetaData()
MAIL_SENT = sa.Table(
    "mail_sent",
    _META,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("export_batch_id", sa.Integer, nullable=True),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("sent_at", sa.String(40), nullable=False),
)
"""One row per fee export batch mailed (append-only): which batch, to whom, when (UTC ISO)."""
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class Mail:
    """A mail to send: subject, plain text, e-mail-safe HTML, attachments, batches it carries."""

    subject: str
    text: str
    html: str
    attachments: tuple[Attachment, ...]
    batches: tuple[int, ...] = ()


def check_mail(engine: Engine, policy: PolicySet, at: pd.Timestamp, out: Path) -> Mail:
    """The morning check as of ``at``; its page and CSV are written under ``<out>/check/``."""
    tz = policy.latest.timezone
    problems = check.check_database(engine, policy, at)
    page_html = check_report.check_page(problems, at, policy, inputs=store.manifests(engine))
    page = check_report.write_check_page(page_html, at, tz, out)
    csv_path = page.with_suffix(".csv")
    write_csv(check_report.check_table(problems, tz), csv_path)
    n = check.counts(problems)
    items = [
        (check.PROBLEM_LABELS[p], f"{n[p]:,}", p, "bad" if n[p] else "good") for p in check.PROBLEMS
    ]
    rows = pd.DataFrame(
        {
            "Ticket": problems["ticket_id"],
            "Problem": problems["problem"].map(check.PROBLEM_LABELS),
            "Business h left": problems["business_hours_left"].map(check_report.hours_text),
            "Deadline": problems["deadline"].dt.tz_convert(tz).dt.strftime("%a %d %b %H:%M"),
            "Account": problems["account"],
            "Action": problems["action"],
        }
    )
    when = f"{at.tz_convert(tz):%a %d %b %Y %H:%M %Z}"
    body = html_document(
        f"Check · {when}",
        [
            paragraph(
                f"{len(problems):,} problem(s) on {problems['ticket_id'].nunique():,} open "
                f"request(s) as of {when}. Business hours left count to the deadline; negative "
                "means it has passed. The attached page and CSV list them all."
            ),
            tiles(items),
            table(rows, empty="Nothing needs action."),
        ],
    )
    return Mail(
        f"ipchange check {at.tz_convert(tz):%Y-%m-%d}: {len(problems)} problem(s)",
        check_report.summary_text(problems, at, tz, page=f"attached check-{page.name}"),
        body,
        (
            Attachment(f"check-{page.name}", page.read_bytes(), "text/html"),
            Attachment(f"check-{csv_path.name}", csv_path.read_bytes(), "text/csv"),
        ),
    )


WEEKLY_REPORTS = ("intake", "sla")
"""The reports of the weekly mail's attachment."""


def weekly_mail(label: str, *, db_url: str, policy: PolicySet, out: Path) -> Mail:
    """The SLA tiles and breaches of a period; the period's reports attached as one zip.

    Reports missing under ``<out>/<label>/`` are built first.

    Raises:
        IpchangeError: A report could not be built.
    """
    data = reports.load(label, db_url=db_url, policy=policy, history_weeks=2)
    names = {key: render.REPORTS[key][1] for key in WEEKLY_REPORTS}
    missing = [k for k, name in names.items() if not (out / label / f"{name}.html").is_file()]
    if missing:
        _, failed = render.render_all(
            [(k, label) for k in missing],
            out=out,
            db_url=db_url,
            policy_file=str(policy.user_file or ""),
        )
        if failed:
            raise IpchangeError(f"cannot build the weekly reports: {failed[0]}")
        write_dashboard(out, db_url=db_url, policy=policy)  # render_all wrote the plain index
    render.write_plotly_js(out)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names.values():
            archive.write(out / label / f"{name}.html", f"{label}/{name}.html")
        archive.write(out / render.PLOTLY_FILE, render.PLOTLY_FILE)
    b = breaches(data.requests)
    listed = pd.DataFrame(
        {
            "Metric": b["metric"].map(reports.METRIC_LABELS),
            "Ticket": b["ticket_id"],
            "Missed by (business h)": b["missed_by_hours"].map("{:,.1f}".format),
            "Account": b["account"],
        }
    )
    values = reports.sla_tile_values(data)
    text = [f"SLA compliance {label} ({len(data.requests):,} request(s))", ""]
    text += [f"  {title}: {value} ({detail})" for title, value, detail, _ in values]
    text += ["", f"{len(b):,} breach(es). The reports are attached (unzip, open the .html)."]
    body = html_document(
        f"SLA compliance · {label}",
        [
            paragraph(f"{len(data.requests):,} request(s) received in {label}."),
            tiles(values),
            paragraph(f"{len(b):,} breach(es), worst first per metric:"),
            table(listed, empty="No breaches this period."),
            paragraph("The intake log and SLA report are attached: unzip and open the .html."),
        ],
    )
    return Mail(
        f"ipchange weekly SLA {label}",
        "\n".join(text) + "\n",
        body,
        (Attachment(f"reports-{label}.zip", buffer.getvalue(), "application/zip"),),
    )


def _unsent_batches(engine: Engine, label: str) -> list[int]:
    batches = store.ExportBatch.__table__
    _META.create_all(engine, tables=[MAIL_SENT])
    sent = sa.select(MAIL_SENT.c.export_batch_id).where(MAIL_SENT.c.kind == "fees")
    query = (
        sa.select(batches.c.id)
        .where(batches.c.period == label, batches.c.id.not_in(sent))
        .order_by(batches.c.id)
    )
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def fee_mail(
    engine: Engine, policy: PolicySet, period: Period, out: Path, *, resend: int | None = None
) -> Mail | None:
    """The period's fee export batches not mailed yet (a new batch is exported first).

    Args:
        engine: The database.
        policy: The policy the fees are computed by.
        period: The billing period.
        out: Reports folder; the files go to ``<out>/<period>/``.
        resend: Send this recorded batch again instead.

    Returns:
        The mail, or None when every batch of the period has been mailed.
    """
    folder = out / period.label
    if resend is None:
        billing.export_fees(engine, policy, period, folder)
        batches = _unsent_batches(engine, period.label)
    else:
        batches = [resend]
    if not batches:
        return None
    attachments: list[Attachment] = []
    rows = total = 0
    for batch in batches:
        written = billing.export_fees(engine, policy, period, folder, batch_id=batch)
        rows, total = rows + written.rows, total + written.total_cents
        mime = {".csv": "text/csv", ".xlsx": XLSX_MIME}
        attachments += [Attachment(p.name, p.read_bytes(), mime[p.suffix]) for p in written.paths]
    names = ", ".join(str(b) for b in batches)
    amount = money(total, policy.latest.currency)
    summary = f"{rows:,} fee(s), {amount}, in export batch(es) {names} of {period.label}."
    again = " (sent again on request)" if resend is not None else ""
    body = html_document(
        f"Expedite fees · {period.label}",
        [
            tiles(
                [
                    ("Fees", f"{rows:,}", f"batch(es) {names}{again}", "neutral"),
                    ("Amount", amount, "billable, signed off by the person of record", "neutral"),
                ]
            ),
            paragraph(summary + " The CSV and XLSX files for billing are attached."),
        ],
    )
    return Mail(
        f"ipchange fees {period.label}: batch {names}{again}",
        summary + again + "\nThe CSV and XLSX files for billing are attached.\n",
        body,
        tuple(attachments),
        tuple(batches),
    )


def mark_sent(engine: Engine, mail: Mail, recipients: list[str], message_id: str) -> None:
    """Record the fee batches of a mail the server accepted (one transaction)."""
    if not mail.batches:
        return
    _META.create_all(engine, tables=[MAIL_SENT])
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    with engine.begin() as conn:
        conn.execute(
            MAIL_SENT.insert(),
            [
                {
                    "kind": "fees",
                    "export_batch_id": batch,
                    "recipients": ", ".join(recipients),
                    "message_id": message_id,
                    "sent_at": now,
                }
                for batch in mail.batches
            ],
        )
