"""The demo job: a generated help desk, and a readable summary of what was loaded."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine
from tqdm import tqdm

from ipchange_core import periods, store
from ipchange_core.demo.dataset import DemoDataSet, generate
from ipchange_core.demo.reference import (
    AUDIT_DB_CSV,
    CHANGES_CSV,
    KAYAKO_POSTS_XML,
    KAYAKO_XML,
    LOOKUP_XMLS,
)
from ipchange_core.evaluation import evaluate
from ipchange_core.policy import PolicySet
from ipchange_core.sla import compliance
from ipchange_core.textops import money

__all__ = ["DEMO_LOADS", "KAYAKO_LOADS", "demo_summary", "generate_demo"]

#: The demo help desk as Kayako writes it, in load order: its lookup lists, the ticket XML, the
#: audit log's database export, the requests' posts (intake from the agents' "cloud info"
#: macro; after the tickets, whose internal ids they name), then our own change records.
#: ``intake.csv`` is still written (for ``demo-data`` users) but not loaded.
KAYAKO_LOADS = (*LOOKUP_XMLS, KAYAKO_XML, AUDIT_DB_CSV, KAYAKO_POSTS_XML, CHANGES_CSV)
#: The files ``ipchange demo`` loads, in order: Kayako's own files, so the demo runs the real path.
DEMO_LOADS = KAYAKO_LOADS


def generate_demo(
    out: Path,
    *,
    requests: int,
    other_tickets: int,
    months: int,
    seed: int,
    end: dt.date | None = None,
) -> DemoDataSet:
    """Generate the demo data set into ``out`` with a progress bar.

    See :func:`ipchange_core.demo.dataset.generate` for the arguments.
    """
    with tqdm(total=requests + other_tickets, desc="generating", unit="ticket") as bar:
        return generate(
            out,
            requests=requests,
            other_tickets=other_tickets,
            months=months,
            seed=seed,
            end=end,
            progress=bar.update,
        )


def demo_summary(engine: Engine, policy: PolicySet, *, today: dt.date | None = None) -> str:
    """A readable summary of the last full ISO week's SLA compliance and last month's fees."""
    tz = policy.latest.timezone
    today = today or pd.Timestamp.now(tz=tz).date()
    week = periods.week(today, tz).previous()
    month = periods.month(today, tz).previous()
    lines = []
    week_rows = evaluate(
        store.read_frames(engine, week.start, week.end, policy=policy), policy=policy
    )
    table = compliance(week_rows, policy.for_instant(week.start))
    lines.append(
        f"\nSLA compliance, week {week.label} ({week.first} – {week.last}), "
        f"{len(week_rows)} requests"
    )
    lines.append(f"  {'metric':<16}{'met':>6}{'breached':>10}{'open':>6}{'n/a':>6}{'%':>8}  target")
    for row in table.itertuples():
        pct = "—" if pd.isna(row.compliance_pct) else f"{row.compliance_pct:.1f}"
        lines.append(
            f"  {row.metric:<16}{row.met:>6}{row.breached:>10}{row.open:>6}"
            f"{row.not_applicable:>6}{pct:>8}  {row.target}"
        )
    month_rows = evaluate(
        store.read_frames(engine, month.start, month.end, policy=policy), policy=policy
    )
    lines.append(f"\nExpedite fees, {month.label}, {len(month_rows)} requests")
    by_status = month_rows.groupby("fee_status", observed=True).agg(
        requests=("ticket_id", "size"), cents=("fee_cents", "sum")
    )
    for status, row in by_status.iterrows():
        amount = f"  {money(int(row.cents))}" if status == "billable" else ""
        lines.append(f"  {status:<18}{row.requests:>6}{amount}")
    return "\n".join(lines)
