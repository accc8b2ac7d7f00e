"""Every number of a report rebuilt from `ipchange export requests` (issue 26).

One demo data set is generated, loaded and reported: every ISO week and month it covers gets
the intake log, the SLA report and the fee report, and the requests export of the period (and of
the period before it, for the tiles' "vs last period"). Each check reads the numbers from the
rendered HTML (tests/report_pages.py) and rebuilds them from the export's CSV with plain Python:
counts of ``<metric>_state``, flags, fee columns. Nothing here calls the functions that build a
report.

The demo covers February and March 2026 (the DST change of 8 March inside), ending long before
any run of this test: every SLA clock has ended or passed its target by then, so a report and an
export made a minute apart judge every request alike (states that depend on the time of judging
cannot change between the two).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter, defaultdict
from pathlib import Path

from click.testing import CliRunner

from ipchange_core import render
from ipchange_core.cli import main
from ipchange_core.demo.reference import CANONICAL_FILES
from ipchange_core.reports import METRIC_LABELS  # the names the page gives the metrics
from ipchange_core.sla import METRICS
from tests.report_pages import cents, read_page, values

DEMO_END = dt.date(2026, 4, 1)
DEMO_MONTHS = 2
FIRST_DAY = dt.date(2026, 2, 1)
REPORTS = ("intake", "sla", "fees")
RISKY = ("=", "+", "-", "@", "\t", "\r")


def _days() -> list[dt.date]:
    n = (DEMO_END - FIRST_DAY).days
    return [FIRST_DAY + dt.timedelta(days=k) for k in range(n)]


def _week(day: dt.date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


WEEKS = sorted({_week(d) for d in _days()})
MONTHS = sorted({f"{d:%Y-%m}" for d in _days()})
PERIODS = WEEKS + MONTHS


def previous(period: str) -> str:
    """The period before a week or month label."""
    if "-W" in period:
        monday = dt.date.fromisocalendar(int(period[:4]), int(period[6:]), 1)
        return _week(monday - dt.timedelta(days=7))
    first = dt.date(int(period[:4]), int(period[5:]), 1)
    return f"{first - dt.timedelta(days=1):%Y-%m}"


def _period_args(period: str) -> list[str]:
    return ["--week", period] if "-W" in period else ["--month", period]


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output  # 1: the demo's deliberately bad rows
    return result.output


def _unsafe(text: str) -> str:
    """A text cell as typed, without the ``'`` the export puts before a formula-like start."""
    return text[1:] if text.startswith("'") and text[1:2] in RISKY else text


def _read_export(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [{k: _unsafe(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def build(root: Path) -> dict:
    """The demo's reports of every period and the requests export of every period."""
    data = root / "input"
    _invoke(
        [
            *("demo-data", "--requests", "500", "--other-tickets", "200"),
            *("--months", str(DEMO_MONTHS), "--end", DEMO_END.isoformat()),
            *("--seed", "26", "--out", str(data)),
        ]
    )
    db = f"sqlite:///{(root / 'demo.db').as_posix()}"
    # the canonical CSVs: their events leave some creation states unknown (correct intake open)
    files = [str(data / name) for name in CANONICAL_FILES]
    _invoke(["ingest", *files, "--db", db, "--rejects-dir", str(root / "loads")])
    out = root / "reports"

    def export(when: str) -> dict[str, list[dict[str, str]]]:
        exports = {}
        for period in sorted(set(PERIODS) | {previous(p) for p in PERIODS}):
            path = root / f"exports-{when}" / f"{period}.csv"
            _invoke(["export", "requests", *_period_args(period), "--db", db, "-o", str(path)])
            exports[period] = _read_export(path)
        return exports

    # A clock still running when its target passed (a ticket never routed, say) is missed by
    # more each business minute: the pages are built between two exports, and show a value
    # between the two.
    before = export("before")
    done, failed = render.render_all(
        [(key, period) for period in PERIODS for key in REPORTS], out=out, db_url=db
    )
    assert not failed, [str(f) for f in failed]
    pages = {(r.key, r.html.parent.name): r.html for r in done}
    return {"pages": pages, "exports": export("after"), "exports_before": before}


def _states(rows: list[dict[str, str]], metric: str) -> Counter:
    return Counter(row[f"{metric}_state"] for row in rows)


def _pct(met: int, decided: int) -> float | None:
    return 100 * met / decided if decided else None


def _pct_text(pct: float | None) -> str:
    return "—" if pct is None else f"{pct:.0f} %"


def _flagged(row: dict[str, str], flag: str) -> bool:
    return flag in row["flags"].split(";")


def check_every_period_is_reported_and_exported(demo):
    assert len(WEEKS) == 10 and MONTHS == ["2026-02", "2026-03"]
    assert set(demo["pages"]) == {(key, period) for period in PERIODS for key in REPORTS}
    assert sum(len(demo["exports"][p]) for p in MONTHS) == sum(
        len(demo["exports"][p]) for p in WEEKS
    )  # the weeks and the months cover the same requests
    assert all(demo["exports"][p] for p in PERIODS)  # the demo has requests in every period
    states = Counter(row["correct_intake_state"] for p in MONTHS for row in demo["exports"][p])
    assert states["open"] and states["met"] and states["breached"]  # every kind reconciles


def check_sla_table_and_tiles(demo, period):
    rows = demo["exports"][period]
    page = read_page(demo["pages"][("sla", period)])
    section = page["This period against its targets"]
    table = {r["Metric"]: r for r in section.table().records()}
    tiles = {t["title"]: t for t in section.tiles}
    before = demo["exports"][previous(period)]
    for metric in METRICS:
        label = METRIC_LABELS[metric]
        n = _states(rows, metric)
        assert set(n) <= {"met", "breached", "open", "not_applicable"}
        assert sum(n.values()) == len(rows)
        shown = table[label]
        got = (shown["Met"], shown["Breached"], shown["Still open"], shown["Not applicable"])
        assert got == (
            str(n["met"]),
            str(n["breached"]),
            str(n["open"]),
            str(n["not_applicable"]),
        ), (period, metric)
        decided = n["met"] + n["breached"]
        pct = _pct(n["met"], decided)
        assert shown["Compliance"] == _pct_text(pct)
        tile = tiles[label]
        assert tile["value"] == _pct_text(pct), (period, metric)
        assert f"· {n['met']}/{decided} met ·" in tile["detail"], (period, metric, tile)
        m = _states(before, metric)
        earlier = _pct(m["met"], m["met"] + m["breached"])
        if pct is None or earlier is None:
            assert tile["detail"].endswith("no comparison")
        else:
            assert tile["detail"].endswith(f"{pct - earlier:+.0f} pts vs {previous(period)}")


def check_breach_list(demo, period):
    rows = demo["exports"][period]
    shown = read_page(demo["pages"][("sla", period)])["Breaches"].table().records()
    label_of = {label: metric for metric, label in METRIC_LABELS.items()}
    listed = {(r["Ticket"], label_of[r["Metric"]]): r for r in shown}
    expected = {
        (row["ticket_id"], metric): row
        for row in rows
        for metric in METRICS
        if row[f"{metric}_state"] == "breached"
    }
    assert len(shown) == len(expected)
    assert set(listed) == set(expected)
    earlier = {row["ticket_id"]: row for row in demo["exports_before"][period]}
    for (ticket, metric), row in expected.items():
        missed = row.get(f"{metric}_missed_by_hours", "")
        cell = listed[(ticket, metric)]["Missed by (business h)"]
        if missed in ("", "0", "-0"):
            assert cell == "—", (ticket, metric)
        else:  # the page rounds to 0.1 h, the export to 0.0001 h; built between two exports
            low = float(earlier[ticket].get(f"{metric}_missed_by_hours") or missed)
            shown_hours = float(cell.replace(",", ""))
            assert low - 0.05 - 1e-4 <= shown_hours <= float(missed) + 0.05 + 1e-4, (ticket, metric)
        if metric == "correct_intake":
            assert listed[(ticket, metric)]["What went wrong"] == row["correct_intake_issues"]


def check_per_agent_and_per_engineer_tables(demo, period):
    for role in ("agent", "engineer"):
        _check_by_person(demo, period, role)


def _check_by_person(demo, period, role):
    rows = demo["exports"][period]
    section = read_page(demo["pages"][("sla", period)])["By agent and by engineer"]
    shown = {r[role.capitalize()]: r for r in section.table(role.capitalize()).records()}
    groups = defaultdict(list)
    for row in rows:
        groups[row[role] or "(none)"].append(row)
    assert set(shown) == set(groups)
    for person, mine in groups.items():
        assert shown[person]["Requests"] == str(len(mine))
        for metric in METRICS:
            n = _states(mine, metric)
            pct = _pct(n["met"], n["met"] + n["breached"])
            assert shown[person][METRIC_LABELS[metric]] == _pct_text(pct), (person, metric)


def check_intake_log_counts(demo, period):
    rows = demo["exports"][period]
    page = read_page(demo["pages"][("intake", period)])
    tiles = {t["title"]: t["value"] for t in page["At a glance"].tiles}
    problems = [
        r
        for r in rows
        if any(
            _flagged(r, f)
            for f in ("no_intake_record", "intake_without_ticket", "incomplete_intake")
        )
    ]
    assert tiles == {
        "Requests received": f"{len(rows):,}",
        "Short notice": f"{sum(r['short_notice'] == 'true' for r in rows):,}",
        "Not routed yet": f"{sum(_flagged(r, 'not_routed') for r in rows):,}",
        "Intake problems": f"{len(problems):,}",
    }

    logged = page["Every request"].table()
    assert sorted(logged.column("Ticket")) == sorted(r["ticket_id"] for r in rows)
    routing_words = {"met": "in time", "breached": "late", "open": "waiting"}
    routing_words["not_applicable"] = "not needed"
    by_ticket = {r["ticket_id"]: r for r in rows}
    for ticket, routing in zip(logged.column("Ticket"), logged.column("Routing"), strict=True):
        assert routing == routing_words[by_ticket[ticket]["routing_state"]]
    # each record's provenance: this demo's intake was loaded from its intake.csv
    for ticket, source in zip(logged.column("Ticket"), logged.column("Intake from"), strict=True):
        assert source == ("—" if _flagged(by_ticket[ticket], "no_intake_record") else "intake.csv")

    quality = page["Data quality"]
    counts = {r["Check"]: r["Count"] for r in quality.tables[0].records()}
    for check, flag in (
        ("Tickets without an intake record", "no_intake_record"),
        ("Intake records without a ticket", "intake_without_ticket"),
        ("Intake records with missing cloud-info fields", "incomplete_intake"),
        (
            "Agent tickets without a recorded creation state (correct intake open)",
            "creation_state_unknown",
        ),
    ):
        assert counts[check] == f"{sum(_flagged(r, flag) for r in rows):,}", (period, check)
    unknown = [r for r in rows if _flagged(r, "creation_state_unknown")]
    assert all(r["correct_intake_state"] in ("open", "breached") for r in unknown)
    assert all(
        r["correct_intake_state"] == "open"
        for r in unknown
        if r["correct_intake_issues"] == "creation state unknown"
    )
    affected = [t for t in quality.tables if t.header[:1] == ["Ticket"]]
    affected = affected[0].column("Ticket") if affected else []
    assert sorted(affected) == sorted({r["ticket_id"] for r in problems + unknown})


def check_intake_charts(demo, period):
    """Requests by channel, by reason and by day, as the chart draws them."""
    rows = demo["exports"][period]
    section = read_page(demo["pages"][("intake", period)])["When and how requests arrived"]
    by_channel, by_reason, by_day = section.charts[0]

    def drawn(trace):
        return dict(zip(values(trace["x"]), values(trace["y"]), strict=True))

    def label(value: str) -> str:
        return (value or "unknown").replace("_", " ")

    assert drawn(by_channel) == Counter(label(r["channel"]) for r in rows)
    assert drawn(by_reason) == Counter(label(r["reason"]) for r in rows)
    per_day = Counter(dt.date.fromisoformat(r["received_at"][:10]) for r in rows)  # local date
    if "-W" in period:
        first = dt.date.fromisocalendar(int(period[:4]), int(period[6:]), 1)
        days = [first + dt.timedelta(days=k) for k in range(7)]
        assert values(by_day["x"]) == [f"{d:%a %d}" for d in days]
    else:
        first = dt.date(int(period[:4]), int(period[5:]), 1)
        days = [
            d for d in (first + dt.timedelta(days=k) for k in range(31)) if d.month == first.month
        ]
        assert values(by_day["x"]) == [f"{d:%d %b}" for d in days]
    assert values(by_day["y"]) == [per_day.get(d, 0) for d in days]


def check_fee_report_totals(demo, period):
    rows = demo["exports"][period]
    page = read_page(demo["pages"][("fees", period)])
    by_status = Counter(r["fee_status"] for r in rows)
    billable = [r for r in rows if r["fee_status"] == "billable"]
    total = sum(int(r["fee_cents"]) for r in billable)

    tiles = {t["title"]: t for t in page["Summary"].tiles}
    assert cents(tiles["Billable"]["value"]) == total
    assert tiles["Billable"]["detail"].startswith(f"{len(billable):,} request")
    for title, status in (
        ("Signed off, change not yet done", "awaiting_change"),
        ("Pending sign-off", "pending_sign_off"),
        ("Waived", "waived"),
        ("Needs review", "needs_review"),
    ):
        assert tiles[title]["value"] == f"{by_status[status]:,}", (period, title)

    for heading, status in (
        ("Billable fees, with sign-off evidence", "billable"),
        ("Signed off, change not yet done", "awaiting_change"),
        ("Pending sign-off", "pending_sign_off"),
        ("Waived", "waived"),
        ("Needs review", "needs_review"),
    ):
        section = page[heading]
        listed = section.tables[0].column("Ticket") if section.tables else []
        expected = [r["ticket_id"] for r in rows if r["fee_status"] == status]
        assert sorted(listed) == sorted(expected), (period, status)
    if billable:
        amounts = page["Billable fees, with sign-off evidence"].table().column("Amount")
        assert sum(cents(a) for a in amounts) == total

    for heading, key in (("Totals per account", "account"), ("Totals per reseller", "reseller")):
        section = page[heading]
        if not billable:
            assert not section.tables
            continue
        shown = {r[key.capitalize()]: r for r in section.table().records()}
        groups = defaultdict(list)
        for r in billable:
            groups[r[key] or "(none)"].append(int(r["fee_cents"]))
        assert shown.pop("Total") == {
            key.capitalize(): "Total",
            "Billable requests": str(len(billable)),
            "Amount": shown_money(total),
        }
        assert {k: (v["Billable requests"], cents(v["Amount"])) for k, v in shown.items()} == {
            k: (str(len(v)), sum(v)) for k, v in groups.items()
        }


def shown_money(amount: int) -> str:
    """USD cents as the page writes them: ``$1,250.00``."""
    return f"${amount // 100:,}.{amount % 100:02d}"


PER_PERIOD = (
    check_sla_table_and_tiles,
    check_breach_list,
    check_per_agent_and_per_engineer_tables,
    check_intake_log_counts,
    check_intake_charts,
    check_fee_report_totals,
)


def test_every_number_of_every_report_is_rebuilt_from_the_export(tmp_path):
    """Every check on every period; a failure names each (check, period) that failed.

    One test, not one per period: the reports take minutes to build, and pytest-xdist's
    ``loadgroup`` does not keep a group of tests on one worker under pytest 9 (the nodeid
    suffix it relies on is ignored), so several tests would build them on several workers.
    """
    demo = build(tmp_path)
    check_every_period_is_reported_and_exported(demo)
    failures = []
    for period in PERIODS:
        for check in PER_PERIOD:
            try:
                check(demo, period)
            except AssertionError as error:
                failures.append(f"{check.__name__}[{period}]: {error}")
    assert not failures, "\n".join(failures)
