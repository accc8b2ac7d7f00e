"""The landing page `reports/index.html` (SPEC 5.6), checked in Chromium like the reports."""

from __future__ import annotations

import csv
import io
import re

from click.testing import CliRunner

from ipchange_core import schema, store
from ipchange_core.check import PROBLEM_LABELS, PROBLEMS
from ipchange_core.cli import main
from ipchange_core.dashboard import sparkline
from tests.browser import assert_inert_and_offline, open_page
from tests.domain import frames, request
from tests.report_fixtures import build_db
from tests.store.helpers import parsed

AT = "2026-11-18 07:00"  # Wednesday of 2026-W47: the latest full week is 2026-W46


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    return result.output


def tiles_in_chromium(chromium_path: str, path) -> list[list[str]]:
    """Each tile's texts, then its sparkline's title ("" without one), as Chromium shows them."""
    seen = open_page(
        chromium_path,
        path,
        """() => [...document.querySelectorAll('.tile')].map(t =>
            [...t.querySelectorAll('div')].map(d => d.innerText).concat(
                [t.querySelector('svg title') ? t.querySelector('svg title').textContent : '']))""",
    )
    assert_inert_and_offline(seen)
    return seen["probe"]


def routing_pct(url: str, week: str, folder) -> str:
    """The week's routing compliance from `ipchange export requests` (met ÷ decided)."""
    target = folder / f"{week}.csv"
    run("export", "requests", "--week", week, "--db", url, "-o", str(target))
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    met = sum(r["routing_met"] == "true" for r in rows)
    decided = sum(r["routing_met"] in ("true", "false") for r in rows)
    return f"{100 * met / decided:.0f} %" if decided else "—"


def test_dashboard_numbers_in_chromium(tmp_path, chromium_path):
    url = build_db(tmp_path)
    out = tmp_path / "reports"
    run(
        "report", "check", "--at", AT, "--db", url, "-o", str(tmp_path / "c.csv"), "--out", str(out)
    )
    run("report", "dashboard", "--at", AT, "--db", url, "--out", str(out))
    first = tiles_in_chromium(chromium_path, out / "index.html")
    by_title = {t[0]: t for t in first}

    # the check's counts are those of the check's CSV
    rows = list(csv.DictReader(io.StringIO((tmp_path / "c.csv").read_text(encoding="utf-8"))))
    for problem in PROBLEMS:
        label = PROBLEM_LABELS[problem]
        shown = [t for t in first if len(t) > 1 and t[1] == label]
        assert shown and shown[0][0] == str(sum(r["problem"] == problem for r in rows))

    # the routing tile and its sparkline agree with the requests export, week by week
    routing = by_title["Routed to Implementation"]
    assert routing[1] == routing_pct(url, "2026-W46", tmp_path)
    weeks = [f"2026-W{n}" for n in range(39, 47)]
    assert routing[-1] == " · ".join(routing_pct(url, w, tmp_path) for w in weeks)
    assert "vs 2026-W45" in routing[2]

    # exporting fees moves them out of "not yet exported"
    waiting = int(by_title["Billable fees not yet exported"][1])
    exported = run("fees", "export", "--month", "2026-11", "--db", url, "--out", str(out))
    new = int(re.search(r"(\d+) new", exported)[1])
    assert new > 0
    october = run("fees", "export", "--month", "2026-10", "--db", url, "--out", str(out))
    new += int(m[1]) if (m := re.search(r"(\d+) new", october)) else 0
    run("report", "dashboard", "--at", AT, "--db", url, "--out", str(out))
    again = {t[0]: t for t in tiles_in_chromium(chromium_path, out / "index.html")}
    assert int(again["Billable fees not yet exported"][1]) == waiting - new
    assert again["Fees waiting for sign-off"][1:3] == by_title["Fees waiting for sign-off"][1:3]


def test_the_week_tiles_are_judged_at_the_dashboards_instant(tmp_path, chromium_path):
    """A confirmation clock still running at --at is open on the page, not the breach it became.

    2026-W47's requests, seen on Monday 23 Nov at 09:30 Central: one confirmed in time; one
    received Friday 15:00 (due Monday 15:00) and confirmed on Tuesday; one received Friday 10:00
    (due Monday 10:00) and never confirmed. At --at only the first is decided.
    """
    url = f"sqlite:///{tmp_path / 'w47.db'}"
    data = frames(
        request(
            "IN-TIME", received="2026-11-16 10:00", change={"confirmed_at": "2026-11-16 10:30"}
        ),
        request("LATE", received="2026-11-20 15:00", change={"confirmed_at": "2026-11-24 10:00"}),
        request("NEVER", received="2026-11-20 10:00"),
    )
    with store.connected(url) as engine:
        for table in schema.TABLES:
            store.load(engine, parsed(table, data[table]), policy_version="t")
    out = tmp_path / "reports"

    def confirmation_tile(at: str) -> list[str]:
        run("report", "dashboard", "--at", at, "--db", url, "--out", str(out))
        tiles = tiles_in_chromium(chromium_path, out / "index.html")
        return {t[0]: t for t in tiles}["Order confirmed"]

    _, value, detail, spark = confirmation_tile("2026-11-23 09:30")
    assert (value, detail.split(" · ")[1]) == ("100 %", "1/1 met")
    assert spark.endswith("· 100 %")
    # at noon the Friday-10:00 clock has run out, the Friday-15:00 one runs until 15:00
    _, value, detail, spark = confirmation_tile("2026-11-23 12:00")
    assert (value, detail.split(" · ")[1]) == ("50 %", "1/2 met")
    # on the Sunday after (still W47 the latest full week), both late ones are breaches
    _, value, detail, spark = confirmation_tile("2026-11-29 23:00")
    assert (value, detail.split(" · ")[1]) == ("33 %", "1/3 met")


def test_sparkline_breaks_at_unknown_weeks():
    svg = sparkline([50.0, float("nan"), 100.0, 0.0], width=30, height=24)
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 1
    assert "50 % · — · 100 % · 0 %" in svg
    assert 'points="20.0,22.0 30.0,2.0"' not in svg and 'points="20.0,2.0 30.0,22.0"' in svg
