"""Report notebooks: executed by papermill into offline, escaped HTML (ipchange_core.render)."""

from __future__ import annotations

import base64
import dataclasses
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ipchange_core import render, reports
from ipchange_core.policy import RequestFilter
from ipchange_core.requests import ASSEMBLED_COLUMNS
from tests.report_fixtures import EMAILS_AND_PHONES, build_db

pytestmark = pytest.mark.xdist_group("reports")  # one worker builds the reports once

PERIOD = "2026-W45"
FEES_PERIOD = "2026-11"
NAMES = {key: name for key, (_, name, _) in render.REPORTS.items()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Every report built once, in parallel, from the hostile sample database."""
    root = tmp_path_factory.mktemp("reports")
    db = build_db(root)
    out = root / "reports"
    jobs = [(k, PERIOD) for k in ("intake", "sla", "explorer")] + [("fees", FEES_PERIOD)]
    done, failed = render.render_all(jobs, out=out, db_url=db)
    assert not failed, [str(f) for f in failed]
    return {"out": out, "db": db, "pages": {r.key: r.html for r in done}}


def test_every_notebook_executes_and_keeps_its_executed_notebook(built):
    pages = built["pages"]
    assert set(pages) == set(render.REPORTS)
    for key, page in pages.items():
        assert page.name == f"{NAMES[key]}.html"
        assert page.with_suffix(".ipynb").is_file()
    assert (built["out"] / "plotly.min.js").is_file()
    index = (built["out"] / "index.html").read_text(encoding="utf-8")
    assert f'href="{PERIOD}/sla-compliance.html"' in index
    assert f'href="{FEES_PERIOD}/fee-billing.html"' in index


def test_html_is_offline_without_code_and_escaped(built):
    for key, page in built["pages"].items():
        text = page.read_text(encoding="utf-8")
        assert page.stat().st_size < 1_000_000, key
        assert not re.search(r"<script[^>]+src=[\"']?(https?:)?//", text), key
        assert "require.js" not in text and "MathJax" not in text and "mermaid" not in text
        assert '<script charset="utf-8" src="../plotly.min.js"></script>' in text
        assert "reports.load(" not in text and "from ipchange_core" not in text, key
        assert not re.search(r'class="[^"]*jp-(Input|Output)Prompt', text), key
        assert not re.search(r"(In|Out)&nbsp;\[\d", text), key
        assert "<script>alert(1)</script>" not in text, key
        assert "<img src=x" not in text, key
        assert "&lt;script&gt;" in text, key  # the payload is shown, as text
        for private in EMAILS_AND_PHONES:
            assert private not in text, (key, private)
        assert "Provenance" in text and "tickets.csv" in text
        assert f"Read from database {built['db']}" in text, key  # the database it read
    # charts stay offline HTML drawn by the shared plotly.min.js, not a figure for a live lab
    assert built["pages"]["sla"].read_text(encoding="utf-8").count("Plotly.newPlot(") == 2


def test_sections_say_what_a_manager_needs(built):
    sla = built["pages"]["sla"].read_text(encoding="utf-8")
    for words in ("Routed to Implementation", "Trend", "Breaches", "Routing latency", "By agent"):
        assert words in sla
    intake = built["pages"]["intake"].read_text(encoding="utf-8")
    for words in ("Data quality", "Every request", "Received (Central)", "FNT-611-53870"):
        assert words in intake
    fees = built["pages"]["fees"].read_text(encoding="utf-8")
    assert "$500.00" in fees  # two billable fees of $250 in November
    assert "Totals per reseller" in fees and "$250" in fees


def test_failing_notebook_keeps_previous_report_and_names_the_cell(built, tmp_path):
    page = built["pages"]["intake"]
    before = page.read_bytes()
    with pytest.raises(render.RenderError) as caught:
        render.render(
            "intake",
            PERIOD,
            out=built["out"],
            db_url=built["db"],
            policy_file=str(tmp_path / "no.yaml"),
        )
    assert "cell" in str(caught.value) and "reports.load" in str(caught.value)
    assert page.read_bytes() == before
    assert (page.parent / "intake-log.failed.ipynb").is_file()
    assert not list(page.parent.glob(".*.tmp"))


def test_a_report_command_prints_the_page_and_no_kernel_warning(tmp_path):
    # The kernel talks over CurveZMQ-encrypted sockets: ipykernel 7 warns on every start
    # over plain TCP, which `ipchange report` would pass on to the user's terminal.
    db = build_db(tmp_path, hostile=False)
    out = tmp_path / "reports"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ipchange_core.cli", "report", "intake", "--week", PERIOD),
            *("--db", db, "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    page = out / PERIOD / "intake-log.html"
    assert page.is_file() and str(page) in proc.stdout + proc.stderr


def test_html_helpers_escape_everything():
    table = reports._table(__import__("pandas").DataFrame({"<b>": ["<script>x</script>"]}))
    assert "<script>" not in table.markup and "&lt;b&gt;" in table.markup
    tiles = reports.tiles([("<i>", "<script>", "\"'", "bad")])
    assert "<script>" not in tiles.markup and "<i>" not in tiles.markup
    assert reports.plotly_loader('"><script>').markup.count("<script") == 1


def test_charts_carry_the_figure_for_jupyterlab_and_html_for_the_page(built):
    data = reports.load(PERIOD, db_url=built["db"])
    chart = reports.intake_counts(data)
    bundle = chart._repr_mimebundle_()
    figure = bundle["application/vnd.plotly.v1+json"]
    assert [trace["type"] for trace in figure["data"]] == ["bar", "bar", "bar"]
    assert figure["config"]["displaylogo"] is False
    y = figure["data"][0]["y"]  # numbers travel as base64 typed arrays, as plotly.js reads them
    by_channel = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"])
    assert by_channel.sum() == len(data.requests) > 0
    assert "Plotly.newPlot(" in bundle["text/html"] and "<script src" not in bundle["text/html"]
    assert reports.plotly_loader("").markup == ""  # JupyterLab draws its figures itself


def test_no_dollar_amount_is_typeset_as_mathematics(built):
    data = reports.load(FEES_PERIOD, db_url=built["db"])
    alternative = reports.rejudge(data, reports.what_if_policy(data.policy, fee=300.0))
    shown = reports.what_if(data, alternative)._repr_html_()
    assert "fee $250.00. What if: below 48 h, fee $300.00" in shown
    assert shown.startswith('<div class="tex2jax_ignore mathjax_ignore">')  # MathJax 2 and 3+


def test_report_commands_have_help():
    from click.testing import CliRunner

    from ipchange_core.cli import main

    for args in (["report"], ["fees", "export"], ["demo"]):
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, args


def test_what_if_policy_renames_versions_and_changes_the_rules():
    policy = reports.load_policy()
    alt = reports.what_if_policy(policy, threshold_hours=24, fee=300)
    assert alt.latest.threshold_hours == 24 and alt.latest.fee_cents == 30_000
    assert alt.latest.version.endswith("+what-if") and policy.latest.fee_cents == 25_000


def test_explorer_reads_export_files_without_a_database(built, tmp_path):
    """The explorer's input_files give the same requests as loading those files first."""
    files = sorted((built["out"].parent / "input").glob("*.csv"))
    assert len(files) == 4
    from_db = reports.load(PERIOD, db_url=built["db"])
    from_files = reports.load(PERIOD, db_url="", input_files=";".join(map(str, files)))
    columns = ["ticket_id", "fee_status", "notice_hours", "routing_state", "flags"]
    assert len(from_files.requests) == len(from_db.requests) > 0
    assert from_files.requests[columns].equals(from_db.requests[columns])
    assert sorted(from_files.manifests["file_name"]) == sorted(f.name for f in files)
    page = render.render(
        "explorer",
        PERIOD,
        out=tmp_path,
        db_url=f"sqlite:///{tmp_path / 'empty.db'}",
        extra={"input_files": ";".join(map(str, files))},
    )
    text = page.html.read_text(encoding="utf-8")
    assert "Ticket explorer" in text
    assert from_files.requests["ticket_id"].iloc[0] in text  # requests came from the files


@pytest.mark.parametrize(
    ("period", "history_weeks", "weeks"),
    [
        ("2026-W45", 0, {"2026-W45"}),  # no history: the period alone
        ("2026-W45", 1, {"2026-W44", "2026-W45"}),  # one trend week, and the week compared with
        ("2026-W45", 2, {"2026-W44", "2026-W45"}),
        ("2026-W46", 2, {"2026-W45", "2026-W46"}),  # W44 would be a third week: not read
        ("2026-W46", 3, {"2026-W44", "2026-W45", "2026-W46"}),
    ],
)
def test_history_is_the_trend_weeks_and_the_previous_period(built, period, history_weeks, weeks):
    """``history_weeks`` ISO weeks ending with the period's last week, plus the previous period.

    The sample's requests lie in W44, W45 and W46.
    """
    data = reports.load(period, db_url=built["db"], history_weeks=history_weeks)
    assert set(reports.week_labels(data.history["received_at"], data.tz)) == weeks
    in_period = data.history["received_at"] >= data.period.start
    assert data.requests.equals(data.history[in_period].reset_index(drop=True))


def test_month_history_holds_the_whole_previous_month(built):
    """The tiles compare a month with the month before: all of it is read, not only 8 weeks."""
    data = reports.load("2026-12", db_url=built["db"], history_weeks=1)
    november = reports.load("2026-11", db_url=built["db"])
    assert len(november.requests) > 0
    got = data.history[data.history["received_at"] < data.period.start].reset_index(drop=True)
    assert got["ticket_id"].tolist() == november.requests["ticket_id"].tolist()


def test_rejudge_equals_a_fresh_load_under_the_other_policy(built):
    """The explorer's what-if judges the frames already read: the same as reading them again."""
    data = reports.load(PERIOD, db_url=built["db"], history_weeks=2)
    alt = reports.what_if_policy(data.policy, threshold_hours=72, fee=300)
    again = reports.load(PERIOD, db_url=built["db"], history_weeks=2, policy=alt)
    got = reports.rejudge(data, alt)
    assert got.policy is alt and got.generated_at == data.generated_at
    columns = ["ticket_id", "received_at", "short_notice", "fee_status", "fee_cents", "flags"]
    for name in ("requests", "history"):
        mine, fresh = getattr(got, name)[columns], getattr(again, name)[columns]
        pd.testing.assert_frame_equal(mine, fresh, obj=name)
    changed = got.requests["fee_status"] != data.requests["fee_status"]
    assert changed.any()  # 72 h: more short-notice requests than at 48 h


def test_rejudge_refuses_a_policy_that_recognises_other_requests(built):
    data = reports.load(PERIOD, db_url=built["db"])
    other = dataclasses.replace(
        data.policy.latest, request_filter=RequestFilter(("Incident",), (), "")
    )
    with pytest.raises(ValueError, match="recognises other requests"):
        reports.rejudge(data, dataclasses.replace(data.policy, versions=(other,)))


def test_reports_read_only_what_evaluation_needs(built):
    """A report kernel reads the columns evaluate needs: never the requester's name or e-mail
    (they appear in no report), nor the events' actor."""
    data = reports.load(PERIOD, db_url=built["db"], history_weeks=2)
    assert {t: tuple(f.columns) for t, f in data.frames.items()} == ASSEMBLED_COLUMNS
    assert len(data.frames["tickets"]) > 0 and len(data.requests) > 0
