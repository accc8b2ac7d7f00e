"""Every report and command on a period with no requests, no history, only open clocks or one
request; and every reader refusing a database that does not exist or holds nothing.

The reports are built the way a user builds them, with `ipchange report all`, and checked on
the rendered pages: the numbers in the tiles and tables, and the sentence that says a period
is empty.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup
from click.testing import CliRunner

from ipchange_core import periods, reports, store
from ipchange_core.cli import main
from ipchange_core.errors import NoDatabaseError
from ipchange_core.sla import METRICS

pytestmark = pytest.mark.xdist_group("emptiness")  # one worker builds the scenario once

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
CANONICAL = ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"]
TZ = "America/Chicago"
ONE = "KXP-512-48213"  # the sample's request received on Mon 2026-10-26, alone in 2026-W44
ONE_WEEK = "2026-W44"
EMPTY_WEEK = "2026-W46"  # no request, but the trend's weeks hold the one of 2026-W44
NO_HISTORY = "2020-W01"  # nothing in it nor in the 8 weeks before it
OPEN_ID = "OPN-100-00001"
PAGES = {
    "intake": "intake-log.html",
    "sla": "sla-compliance.html",
    "fees": "fee-billing.html",
    "explorer": "ticket-explorer.html",
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write(path: Path, rows: list[dict[str, str]], fields: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def scenario_db(tmp_path_factory):
    """A database holding the sample's request ONE and a request received five minutes ago.

    The fresh request has an intake record and nothing else: no event, no change. Its routing
    (1 business hour), confirmation (8) and change clocks cannot have run out.
    """
    root = tmp_path_factory.mktemp("emptiness")
    received = pd.Timestamp.now(tz=TZ).floor("s") - pd.Timedelta(minutes=5)
    requested = received + pd.Timedelta(days=10)
    files = []
    for name in CANONICAL:
        with (SAMPLE / name).open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            rows = [row for row in reader if row["ticket_id"] == ONE]
        fresh = dict.fromkeys(fields, "")
        if name == "tickets.csv":
            rows.append(
                {
                    **fresh,
                    **{"ticket_id": OPEN_ID, "subject": "IP change for site 9"},
                    **{"department": "Customer Service", "status": "New", "creator": "user"},
                    **{"account": "ACCT-99999", "created_at": received.isoformat()},
                    "tags": "ip-change",
                }
            )
        elif name == "intake.csv":
            rows.append(
                {
                    **fresh,
                    **{"ticket_id": OPEN_ID, "received_at": received.isoformat()},
                    **{"channel": "phone", "requester_type": "site", "account": "ACCT-99999"},
                    **{"site": "Site 9", "contact_name": "Ann Lee", "person_of_record": "Ann Lee"},
                    **{"reason": "isp_change", "current_ip": "10.0.0.1", "new_ip": "10.0.0.2"},
                    "requested_change_at": requested.isoformat(),
                    **{"ticket_number_given": "yes", "transferred_to_queue": "yes"},
                    "agent": "Kim Doe",
                }
            )
        files.append(_write(root / name, rows, fields))
    url = f"sqlite:///{root / 'scenario.db'}"
    loaded = run("ingest", *map(str, files), "--db", url, "--rejects-dir", str(root / "loads"))
    assert loaded.exit_code == 0, loaded.output
    return {"url": url, "root": root, "open_week": periods.week(received.date(), TZ).label}


@pytest.fixture(scope="module")
def scenario(scenario_db):
    """``scenario_db`` and every report of its four weeks, built by ``ipchange report all``."""
    out = scenario_db["root"] / "reports"
    built = {}
    for week in (ONE_WEEK, EMPTY_WEEK, NO_HISTORY, scenario_db["open_week"]):
        built[week] = run(
            "report", "all", "--week", week, "--db", scenario_db["url"], "--out", str(out)
        )
    return {**scenario_db, "out": out, "built": built}


def _page(scenario, week: str, key: str) -> BeautifulSoup:
    result = scenario["built"][week]
    assert result.exit_code == 0, result.output
    path = scenario["out"] / week / PAGES[key]
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _tile(page: BeautifulSoup, title: str) -> str:
    for tile in page.select(".tile"):
        if tile.select_one(".tile-title").get_text(strip=True) == title:
            return tile.select_one(".tile-value").get_text(strip=True)
    raise AssertionError(f"no tile {title!r}")


def _rows(page: BeautifulSoup, *headers: str) -> list[dict[str, str]]:
    """The rows (header → text) of the first report table with all of ``headers``."""
    for table in page.select("table.report-table"):
        head = [th.get_text(strip=True) for th in table.select("thead th")]
        if set(headers) <= set(head):
            return [
                dict(zip(head, (td.get_text(strip=True) for td in tr.select("td")), strict=True))
                for tr in table.select("tbody tr")
            ]
    raise AssertionError(f"no table with the columns {headers}")


def _sla_counts(page: BeautifulSoup) -> list[dict[str, str]]:
    rows = _rows(page, "Metric", "Met", "Breached", "Still open", "Not applicable")
    assert len(rows) == len(METRICS)
    return rows


def test_every_report_on_every_kind_of_week(scenario):
    # One test for the four weeks: the scenario's 16 reports are built once (pytest 9 ignores
    # xdist_group, so separate tests could each build them on another worker).
    for week in (EMPTY_WEEK, NO_HISTORY):
        _week_without_requests(scenario, week)
    _week_with_one_request(scenario)
    _week_of_only_open_clocks(scenario)


def _week_without_requests(scenario, week: str) -> None:
    sentence = f"No requests were received in {week}."
    for key in PAGES:
        page = _page(scenario, week, key)
        assert sentence in page.get_text(" "), key
        assert "Traceback" not in page.get_text(), key
        assert f"database sqlite:///{scenario['root'] / 'scenario.db'}" in page.get_text(), key
    intake = _page(scenario, week, "intake")
    assert _tile(intake, "Requests received") == "0"
    sla = _page(scenario, week, "sla")
    for row in _sla_counts(sla):
        assert (row["Met"], row["Breached"], row["Still open"], row["Compliance"]) == (
            "0",
            "0",
            "0",
            "—",
        )
    trend = sla.get_text(" ")
    if week == NO_HISTORY:  # no request in any of the trend's weeks: words, not an empty chart
        assert "No requests were received in the 8 weeks 2019-W46 – 2020-W01." in trend
    else:  # the trend still shows the weeks before, with the one request of 2026-W44
        assert "Plotly.newPlot" in str(sla)
    fees = _page(scenario, week, "fees")
    assert _tile(fees, "Billable") == "$0.00"


def _week_with_one_request(scenario) -> None:
    intake = _page(scenario, ONE_WEEK, "intake")
    assert _tile(intake, "Requests received") == "1"
    assert [row["Ticket"] for row in _rows(intake, "Ticket", "Short notice")] == [ONE]
    sla = _page(scenario, ONE_WEEK, "sla")
    for row in _sla_counts(sla):
        decided = int(row["Met"]) + int(row["Breached"])
        assert decided + int(row["Still open"]) + int(row["Not applicable"]) == 1, row
        assert row["Compliance"] == {0: "—", 1: "100 %" if row["Met"] == "1" else "0 %"}[decided]
    agents = _rows(sla, "Agent", "Requests")
    assert [(row["Agent"], row["Requests"]) for row in agents] == [("Maria Gonzalez", "1")]
    explorer = _page(scenario, ONE_WEEK, "explorer")
    assert [row["Ticket"] for row in _rows(explorer, "Ticket", "Flags")] == [ONE]
    what_if = _rows(explorer, "Fee status", "Requests (policy)")
    assert sum(int(row["Requests (policy)"]) for row in what_if) == 1
    fees = _page(scenario, ONE_WEEK, "fees")
    assert _tile(fees, "Billable") == "$0.00"  # 72 h of notice: no fee
    assert "No request received in 2026-W44 was given short notice." in fees.get_text(" ")


def _week_of_only_open_clocks(scenario) -> None:
    week = scenario["open_week"]
    intake = _page(scenario, week, "intake")
    assert _tile(intake, "Requests received") == "1"
    assert _tile(intake, "Not routed yet") == "1"
    sla = _page(scenario, week, "sla")
    counts = {row["Metric"]: row for row in _sla_counts(sla)}
    for metric in ("Routed to Implementation", "Order confirmed", "Changed on time"):
        row = counts[metric]
        assert (row["Met"], row["Breached"], row["Still open"], row["Compliance"]) == (
            "0",
            "0",
            "1",
            "—",
        ), metric
    text = sla.get_text(" ")
    assert "No breaches this period." in text
    assert f"No request received in {week} reached Implementation yet." in text
    for key in PAGES:
        assert "Traceback" not in _page(scenario, week, key).get_text(), key


def test_commands_on_a_week_without_requests_say_so_and_exit_0(scenario_db, tmp_path):
    out = tmp_path / "requests.csv"
    result = run(
        "export", "requests", "--week", EMPTY_WEEK, "-o", str(out), "--db", scenario_db["url"]
    )
    assert result.exit_code == 0, result.output
    assert f"No requests were received in {EMPTY_WEEK}" in result.output
    with out.open(encoding="utf-8") as handle:
        assert len(list(csv.reader(handle))) == 1  # the header
    result = run(
        "fees", "export", "--week", EMPTY_WEEK, "--db", scenario_db["url"], "--out", str(tmp_path)
    )
    assert result.exit_code == 0, result.output
    assert f"no fees of {EMPTY_WEEK}" in result.output


READERS = [
    ["export", "requests", "--week", ONE_WEEK, "-o", "{tmp}/x.csv"],
    ["fees", "export", "--month", "2026-10", "--out", "{tmp}/fees"],
    *(["report", key, "--week", ONE_WEEK, "--out", "{tmp}/reports"] for key in PAGES),
    ["report", "all", "--week", ONE_WEEK, "--out", "{tmp}/reports"],
]


@pytest.mark.parametrize("args", READERS, ids=lambda a: " ".join(a[:2]))
def test_readers_refuse_a_database_that_does_not_exist(args, tmp_path):
    missing = tmp_path / "typo.db"
    result = run(*(a.format(tmp=tmp_path) for a in args), "--db", str(missing))
    assert result.exit_code == 2, result.output
    assert f"no database file {missing}" in result.output
    assert "ipchange ingest" in result.output and "make demo" in result.output
    assert not missing.exists()
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "reports").exists()


@pytest.mark.parametrize("args", READERS[:3], ids=lambda a: " ".join(a[:2]))
def test_readers_refuse_a_database_nothing_was_loaded_into(args, tmp_path):
    empty = tmp_path / "empty.db"
    store.connect(f"sqlite:///{empty}").dispose()  # the tables of an earlier reader, no load
    result = run(*(a.format(tmp=tmp_path) for a in args), "--db", str(empty))
    assert result.exit_code == 2, result.output
    assert re.search(rf"nothing was ever loaded into sqlite:///{empty}", result.output)


def test_notebook_api_refuses_a_missing_database_and_reads_the_default(tmp_path, monkeypatch):
    missing = tmp_path / "nothing.db"
    with pytest.raises(NoDatabaseError, match=f"no database file {missing}"):
        reports.load(ONE_WEEK, db_url=str(missing))
    with pytest.raises(NoDatabaseError):
        reports.load_requests(ONE_WEEK, db=str(missing))
    assert not missing.exists()
    monkeypatch.setenv("IPCHANGE_DB_URL", f"sqlite:///{missing}")
    with pytest.raises(NoDatabaseError, match=f"no database file {missing}"):
        reports.load(ONE_WEEK)  # db_url may be left out: IPCHANGE_DB_URL, else data/ipchange.db


def test_a_relative_database_path_in_a_notebook_is_relative_to_the_project_root(monkeypatch):
    from ipchange_core.config import PROJECT_ROOT

    monkeypatch.chdir(PROJECT_ROOT / "notebooks")  # where a notebook's kernel runs
    with pytest.raises(NoDatabaseError, match=f"no database file {PROJECT_ROOT}/data/no-such.db"):
        reports.load(ONE_WEEK, db_url="data/no-such.db")


def test_last_week_and_last_month_are_the_full_periods_before_today():
    today = pd.Timestamp.now(tz=TZ).date()
    week = reports.period_from_label("last-week", TZ)
    month = reports.period_from_label("last-month", TZ)
    assert week.last < today <= week.last + dt.timedelta(days=7) and week.first.weekday() == 0
    assert month.last < today and month.first.day == 1 and month.last.month == month.first.month
    assert (month.last + dt.timedelta(days=1)).month == today.month
