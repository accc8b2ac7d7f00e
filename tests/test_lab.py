"""The notebooks as an analyst meets them: a real JupyterLab (ipchange_core.lab), Chromium, Run All.

One lab server (started as `make lab` starts it) serves a copy of the committed notebooks, so
that nothing it saves reaches the repository, and reads a demo database ending today (the
notebooks' default periods are last week and last month) through IPCHANGE_DB_URL. Each notebook
is opened unedited, run with the lab's own "Run All Cells" command, and its rendered page is
checked: every cell ran, no error output, charts drawn by the lab's plotly renderer, tables
filled with the numbers the package computes, and no MathJax anywhere although amounts such as
$250.00 sit side by side.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time

import pytest
from click.testing import CliRunner

from ipchange_core import lab, reports
from ipchange_core.cli import main
from ipchange_core.config import NOTEBOOKS_DIR
from ipchange_core.textops import money

pytestmark = pytest.mark.xdist_group("lab")  # one worker, one server for every notebook

CANONICAL = ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"]
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHARTS = {"01-intake-log": 2, "02-sla-compliance": 2, "03-fee-billing": 1, "04-ticket-explorer": 2}
"""Charts each notebook draws for a period with requests."""
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> str:
    """A demo help desk of the last two months up to today, loaded into a SQLite file."""
    root = tmp_path_factory.mktemp("lab-db")
    runner = CliRunner()
    made = runner.invoke(
        main,
        [
            *("demo-data", "--requests", "150", "--other-tickets", "150", "--months", "2"),
            *("--end", dt.date.today().isoformat(), "--out", str(root / "input")),
        ],
        catch_exceptions=False,
    )
    assert made.exit_code == 0, made.output
    url = f"sqlite:///{root / 'demo.db'}"
    files = [str(root / "input" / name) for name in CANONICAL]
    loaded = runner.invoke(
        main,
        ["ingest", *files, "--db", url, "--rejects-dir", str(root / "loads")],
        catch_exceptions=False,
    )
    assert loaded.exit_code == 1, loaded.output  # the demo's deliberately bad rows
    return url


@pytest.fixture(scope="module")
def lab_page(demo_db, chromium_path, tmp_path_factory):
    """A Chromium page on the JupyterLab of a copy of the notebooks; yields (page, server)."""
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("lab")
    notebooks = root / "notebooks"
    notebooks.mkdir()
    for path in NOTEBOOKS_DIR.glob("*.ipynb"):
        shutil.copy(path, notebooks / path.name)
    env = {
        **os.environ,
        "IPCHANGE_DB_URL": demo_db,
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
    }
    began = time.perf_counter()
    server = lab.start(
        root_dir=notebooks,
        open_browser=False,
        env=env,
        extra=[
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the lab's commands
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
            f"--LabApp.user_settings_dir={root / 'settings'}",
            "--ServerApp.log_level=WARN",
        ],
    )
    TIMINGS["server"] = time.perf_counter() - began
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path, args=BROWSER_ARGS, headless=True
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{server.base}/lab?token={server.token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
            yield page, server
            browser.close()
    finally:
        server.stop()
        print(f"\nlab timings (s): {', '.join(f'{k} {v:.1f}' for k, v in TIMINGS.items())}")


def _run_all(page, stem: str):
    """Open a notebook unedited, Run All Cells, wait for every cell; return its panel locator."""
    began = time.perf_counter()
    panel_id = page.evaluate(
        """async (path) => {
            const app = window.jupyterapp;
            const panel = await app.commands.execute('docmanager:open', {path});
            await panel.context.ready;
            await panel.sessionContext.ready;
            return panel.id;
        }""",
        f"{stem}.ipynb",
    )
    page.wait_for_function(
        """(id) => {
            const panel = window.jupyterapp.shell.currentWidget;
            const kernel = panel && panel.id === id && panel.sessionContext.session?.kernel;
            return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
        }""",
        arg=panel_id,
        timeout=120_000,
    )
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """(id) => {
            const prompts = [...document.getElementById(id)
                .querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        arg=panel_id,
        timeout=240_000,
    )
    panel = page.locator(f"[id='{panel_id}']")
    # every chart the lab draws has its SVG once plotly has laid it out
    page.wait_for_function(
        """([id, n]) => {
            const plots = [...document.getElementById(id).querySelectorAll('.js-plotly-plot')];
            return plots.length >= n && plots.every(p => p.querySelector('svg.main-svg'));
        }""",
        arg=[panel_id, CHARTS[stem]],
        timeout=60_000,
    )
    TIMINGS[stem] = time.perf_counter() - began
    return panel


def _check_page(page, panel, stem: str) -> None:
    """No error output, the charts drawn by the lab's plotly, no MathJax, provenance named."""
    errors = panel.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert errors.count() == 0, errors.all_text_contents()
    assert "Traceback" not in panel.text_content()
    assert panel.locator(".js-plotly-plot").count() == CHARTS[stem]
    assert panel.locator(".js-plotly-plot svg.main-svg").count() >= CHARTS[stem]
    assert page.locator("mjx-container, .MathJax, .MathJax_Display").count() == 0
    provenance = panel.locator("footer.provenance").text_content()
    assert "Read from database sqlite:///" in provenance, provenance


def _notebook(lab_page, stem: str, period: str, db: str):
    """Run a notebook in the lab and check its page; return its panel and the period's requests."""
    page, _ = lab_page
    panel = _run_all(page, stem)
    _check_page(page, panel, stem)
    return panel, reports.load_requests(period, db=db)


def _rows(panel, *headers: str) -> list[list[str]]:
    """The body cells of the first report table whose header holds all of ``headers``."""
    tables = panel.locator("table.report-table").evaluate_all(
        """tables => tables.map(t => ({
            head: [...t.querySelectorAll('thead th')].map(th => th.textContent.trim()),
            rows: [...t.querySelectorAll('tbody tr')]
                .map(r => [...r.cells].map(c => c.textContent.trim())),
        }))"""
    )
    for table in tables:
        if set(headers) <= set(table["head"]):
            return table["rows"]
    raise AssertionError(f"no table with the columns {headers}: {[t['head'] for t in tables]}")


def _tile(panel, title: str) -> str:
    tile = panel.locator(".tile", has=panel.page.locator(".tile-title", has_text=title))
    return tile.first.locator(".tile-value").text_content().strip()


def test_make_lab_allows_root_only_as_root(monkeypatch, tmp_path):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    command = lab.lab_command(port=8999, token="t0k", root_dir=tmp_path)
    assert "--allow-root" in command
    assert "--ServerApp.ip=127.0.0.1" in command and "--ServerApp.port=8999" in command
    assert f"--ServerApp.root_dir={tmp_path}" in command
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert "--allow-root" not in lab.lab_command(port=8999, token="t0k", root_dir=tmp_path)
    makefile = (NOTEBOOKS_DIR.parent / "Makefile").read_text(encoding="utf-8")
    assert "\t$(PY) -m ipchange_core.lab\n" in makefile  # make lab starts this same server


def _intake_log(panel, requests) -> None:
    assert len(requests) > 0  # the demo data reach last week
    assert _tile(panel, "Requests received") == f"{len(requests):,}"
    logged = _rows(panel, "Ticket", "Short notice")
    assert sorted(row[0] for row in logged) == sorted(requests["ticket_id"])


def _sla_compliance(panel, requests) -> None:
    n = len(requests)
    counts = _rows(panel, "Metric", "Still open")
    assert len(counts) == 6  # one row per metric
    for metric, _target, met, breached, still_open, na, _pct in counts:
        assert int(met) + int(breached) + int(still_open) + int(na) == n, metric
    breached = sum(int(row[3]) for row in counts)
    if breached:
        assert len(_rows(panel, "Metric", "Missed by (business h)")) == breached
    else:
        assert "No breaches this period." in panel.text_content()
    agents = _rows(panel, "Agent", "Requests")
    assert sum(int(row[1]) for row in agents) == n


def _fee_billing(panel, requests) -> None:
    billable = requests[requests["fee_status"] == "billable"]
    assert len(billable) > 0
    amount = money(int(billable["fee_cents"].sum()))
    assert _tile(panel, "Billable") == amount
    assert amount.startswith("$") and panel.text_content().count("$") >= 2  # math bait present
    rows = _rows(panel, "Signed off by", "Amount")
    assert sorted(row[0] for row in rows) == sorted(billable["ticket_id"])


def _ticket_explorer(panel, requests) -> None:
    what_if = _rows(panel, "Fee status", "Requests (what if)")
    assert sum(int(row[1]) for row in what_if) == len(requests)
    assert sum(int(row[2]) for row in what_if) == len(requests)
    note = panel.locator("p.note", has_text="What if").text_content()
    assert re.search(r"fee \$250\.00\. What if: below 24 h, fee \$300\.00", note), note
    sample = _rows(panel, "Ticket", "Flags")
    assert len(sample) == min(50, len(requests))
    # the fee-status chart: one bar per status, each bar level with its own label
    chart = panel.locator(".js-plotly-plot").nth(1)
    chart.scroll_into_view_if_needed()
    labels = sorted(
        (_box(label)["y"] + _box(label)["height"] / 2, label.text_content())
        for label in chart.locator(".yaxislayer-above .ytick text").all()
    )
    assert [text for _, text in labels] == list(reports.FEE_LABELS.values())  # top to bottom
    label_y = [y for y, _ in labels]
    bars = [_box(bar) for bar in chart.locator(".barlayer .point path").all()]
    drawn = [box for box in bars if box["width"] > 2]  # a zero bar is its outline only
    counts = requests["fee_status"].value_counts()
    assert len(drawn) == int((counts > 0).sum())
    for box in drawn:
        centre = box["y"] + box["height"] / 2
        assert min(abs(centre - y) for y in label_y) < 2, (centre, label_y)


def test_every_notebook_runs_all_in_jupyterlab(lab_page, demo_db):
    # One test for the four notebooks: one lab server and one demo database, built once
    # (pytest 9 ignores xdist_group, so separate tests could each build them on another worker).
    for stem, period, check in (
        ("01-intake-log", "last-week", _intake_log),
        ("02-sla-compliance", "last-week", _sla_compliance),
        ("03-fee-billing", "last-month", _fee_billing),
        ("04-ticket-explorer", "last-month", _ticket_explorer),
    ):
        panel, requests = _notebook(lab_page, stem, period, demo_db)
        check(panel, requests)


def _box(element) -> dict:
    box = element.bounding_box()
    assert box is not None
    return box
