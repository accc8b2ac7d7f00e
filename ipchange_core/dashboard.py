"""The landing page (SPEC 5.6): ``reports/index.html`` as a dashboard.

The latest full week's SLA tiles with the change against the week before, an 8-week sparkline
per metric, today's check counts by problem, fees waiting for sign-off and billable fees not yet
exported, then every period's reports. Offline and script-free like the check page: sparklines
are inline SVG, every value escaped.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from ipchange_core import check, periods, reports, store
from ipchange_core.atomic import atomic_write
from ipchange_core.check_report import e, standalone_page, tiles_html
from ipchange_core.policy import PolicySet
from ipchange_core.render import report_links
from ipchange_core.sla import METRICS, compliance
from ipchange_core.textops import in_set, money

TREND_WEEKS = 8


def sparkline(values: list[float], *, width: int = 160, height: int = 36) -> str:
    """An inline SVG line of percentages (0–100) left to right; NaN leaves a gap.

    Returns:
        ``<svg>`` markup holding numbers only, with a ``<title>`` listing the values.
    """
    n = len(values)
    step = width / max(n - 1, 1)
    segments: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if pd.isna(v):
            segments.append([])
            continue
        y = height - 2 - (height - 4) * min(max(v, 0.0), 100.0) / 100
        segments[-1].append(f"{i * step:.1f},{y:.1f}")
    lines = "".join(
        f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{" ".join(s)}"/>'
        if len(s) > 1
        else f'<circle r="2" fill="#2563eb" cx="{s[0].split(",")[0]}" cy="{s[0].split(",")[1]}"/>'
        for s in segments
        if s
    )
    label = " · ".join("—" if pd.isna(v) else f"{v:.0f} %" for v in values)
    return (
        f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img"><title>{e(label)}</title>{lines}</svg>'
    )


def _weekly_trend(data: reports.ReportData, weeks: list[periods.Period]) -> pd.DataFrame:
    """Compliance % per metric (rows) and week label (columns), NaN when nothing was decided."""
    h = data.history
    label = pd.Series(pd.NA, index=h.index, dtype="str")
    for w in weeks:
        label = label.mask((h["received_at"] >= w.start) & (h["received_at"] < w.end), w.label)
    c = compliance(h.assign(week=label).dropna(subset=["week"]), data.policy.latest, by="week")
    table = c.pivot(index="metric", columns="week", values="compliance_pct")
    return table.reindex(index=list(METRICS), columns=[w.label for w in weeks])


def _fee_tiles(
    evaluated: pd.DataFrame, ledger: pd.DataFrame, policy: PolicySet
) -> list[tuple[str, str, str]]:
    """Fees waiting for sign-off, and billable fees no export batch holds: count and amount."""
    currency = policy.latest.currency
    pending = evaluated[evaluated["fee_status"] == "pending_sign_off"]
    fee_of = {v.version: v.fee_cents for v in policy.versions}  # the version that judged it
    pending_cents = int(pending["policy_version"].map(fee_of).astype("int64").sum())  # 0 if none
    exported = ledger.loc[ledger["export_batch_id"].notna(), "ticket_id"]
    billable = evaluated[(evaluated["fee_status"] == "billable") & evaluated["fee_cents"].gt(0)]
    waiting = billable[~in_set(billable["ticket_id"], exported)]
    return [
        ("Fees waiting for sign-off", f"{len(pending):,}", money(pending_cents, currency)),
        (
            "Billable fees not yet exported",
            f"{len(waiting):,}",
            money(int(waiting["fee_cents"].sum()), currency),
        ),
    ]


def dashboard_page(
    out: Path, *, db_url: str, policy: PolicySet, at: pd.Timestamp | None = None
) -> str:
    """The landing page's HTML (see the module docstring), as of ``at`` (default now).

    Every number is as of that one instant: the week's tiles and sparklines, the check and the
    fees are judged at ``at`` on the records up to it (a clock still running at ``at`` is open,
    however it ended later). Only the export batches of the ledger count as they are now.
    """
    tz = policy.latest.timezone
    at = pd.Timestamp.now("UTC").as_unit("us") if at is None else at
    week = periods.week(at.tz_convert(tz).date(), tz).previous()
    weeks = [week]
    while len(weeks) < TREND_WEEKS:
        weeks.insert(0, weeks[0].previous())
    data = reports.load(week.label, db_url=db_url, policy=policy, history_weeks=TREND_WEEKS, at=at)
    trend = _weekly_trend(data, weeks)
    cells = []
    for metric, (title, value, detail, tone) in zip(
        METRICS, reports.sla_tile_values(data), strict=True
    ):
        cells.append(
            f'<div class="tile {e(tone)}"><div class="t">{e(title)}</div>'
            f'<div class="v">{e(value)}</div><div class="t">{e(detail)}</div>'
            f"{sparkline(trend.loc[metric].tolist())}</div>"
        )
    with store.connected(db_url, create=False) as engine:
        evaluated = check.evaluated_as_of(engine, policy, at)
        ledger = store.fee_ledger(engine)
    problems = check.find_problems(evaluated, policy, at)
    fees = _fee_tiles(evaluated, ledger, policy)
    fee_cells = "".join(
        f'<div class="tile"><div class="t">{e(t)}</div><div class="v">{e(v)}</div>'
        f'<div class="t">{e(d)}</div></div>'
        for t, v, d in fees
    )
    day = f"{at.tz_convert(tz):%Y-%m-%d}"
    check_link = (
        f'<p><a href="check/{e(day)}.html">Today\'s check page</a></p>'
        if (out / "check" / f"{day}.html").is_file()
        else "<p>Run <code>ipchange report check</code> for today's list.</p>"
    )
    first, last = weeks[0].label, weeks[-1].label
    body = (
        "<h1>ipchange</h1>"
        f"<h2>Week {e(week.label)}</h2>"
        f"<p>{len(data.requests):,} request(s) received. Change against {e(week.previous().label)};"
        f" sparklines: weekly compliance {e(first)} – {e(last)}.</p>"
        f'<div class="tiles">{"".join(cells)}</div>'
        f"<h2>Check · {e(at.tz_convert(tz).strftime('%a %d %b %Y %H:%M %Z'))}</h2>"
        f"<p>{len(problems):,} problem(s) on {problems['ticket_id'].nunique():,} open "
        "request(s).</p>" + tiles_html(problems) + check_link + "<h2>Fees</h2>"
        f'<div class="tiles">{fee_cells}</div>'
        "<h2>Reports</h2><table>" + "".join(report_links(out)) + "</table>"
        f"<footer>Updated {e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))} · "
        f"policy version {e(policy.latest.version)}</footer>"
    )
    return standalone_page("ipchange", body)


def write_dashboard(
    out: Path, *, db_url: str, policy: PolicySet, at: pd.Timestamp | None = None
) -> Path:
    """Write ``<out>/index.html`` as the dashboard (atomically); return its path."""
    target = Path(out) / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, dashboard_page(out, db_url=db_url, policy=policy, at=at).encode("utf-8"))
    return target
