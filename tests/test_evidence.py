"""The fee evidence page (ipchange_core.evidence, ``ipchange fees evidence``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipchange_core import store
from ipchange_core.cli import main
from tests.test_billing import db  # noqa: F401  (the sample, loaded with hostile text)

TICKET = "KVB-114-57230"


def run(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def page(db, tmp_path):  # noqa: F811
    run("fees", "export", "--month", "2026-11", "--db", db, "--out", str(tmp_path / "fees"))
    for n in range(6):  # a long history still fits the page
        run(
            "fees", "credit", TICKET, "--amount", "1.00", "--reason", f"<b>goodwill {n}</b>",
            "--by", "=Lee & Co", "--db", db,
        )  # fmt: skip
        run("fees", "export", "--month", "2026-11", "--db", db, "--out", str(tmp_path / "fees"))
    path = run("fees", "evidence", TICKET, "--db", db, "--out", str(tmp_path / "ev")).strip()
    return path


def test_the_page_shows_the_timeline_notice_sign_off_and_ledger(page):
    text = Path(page).read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|\b(src|href)=", text)  # nothing runs, nothing loads
    assert "=HYPERLINK(&quot;http://x&quot;" in text  # hostile account shown as escaped text
    for expected in (
        "Tue 2026-11-10 09:33 CST",  # created (15:33 UTC)
        "Tue 2026-11-10 09:30 CST by Tanya Brooks, channel phone",
        "Tue 2026-11-10 18:30 CST</td>",  # requested
        "9.00 calendar hours: short notice (less than 48 calendar hours is short)",
        "less than 48 hours&#x27; notice is subject to $250.00 fee",
        "Policy version 2014-08-05",
        "Harold Kim, Tue 2026-11-10 10:02 CST; matches the person of record (@Harold Kim)",
        "Tue 2026-11-10 18:30 CST to Tue 2026-11-10 19:00 CST",
        "Completed</th><td>Tue 2026-11-10 18:52 CST",
        "billed net $244.00",  # $250.00 less six credits of $1.00
        "credited by =Lee &amp; Co: &lt;b&gt;goodwill 5&lt;/b&gt;",
    ):
        assert expected in text, expected
    assert len(re.findall(r"<td>credit</td>", text)) == 6


@pytest.mark.parametrize("paper", ["A4", "Letter"])
def test_the_page_prints_on_one_sheet_in_chromium(page, chromium_path, paper):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        try:
            tab = browser.new_page()
            requests: list[str] = []
            tab.on("request", lambda r: requests.append(r.url))
            tab.goto(f"file://{page}")
            shown = tab.inner_text("body")
            pdf = tab.pdf(format=paper, print_background=True)
        finally:
            browser.close()
    assert [u for u in requests if not u.startswith("file://")] == []
    assert "<b>goodwill 0</b>" in shown  # the text as typed, not markup
    assert "billed net $244.00" in shown
    assert len(re.findall(rb"/Type\s*/Page[^s]", pdf)) == 1


def test_unknown_ticket_exits_2(db):  # noqa: F811
    result = CliRunner().invoke(main, ["fees", "evidence", "NOPE", "--db", db])
    assert result.exit_code == 2 and "unknown ticket 'NOPE'" in result.output
    assert store.fee_ledger(store.connect(db)).empty


def test_fee_report_shows_corrections_and_links_the_evidence(db, tmp_path):  # noqa: F811
    fees_out = str(tmp_path / "fees")
    run("fees", "export", "--month", "2026-11", "--db", db, "--out", fees_out)
    run("fees", "waive", "LXR-226-58019", "--reason", "outage <ours>", "--by", "Pat", "--db", db)
    run(
        "fees", "credit", TICKET, "--amount", "20.50", "--reason", "late", "--by", "Lee", "--db", db
    )
    run("fees", "export", "--month", "2026-11", "--db", db, "--out", fees_out)
    reports = tmp_path / "reports"
    run("report", "fees", "--month", "2026-11", "--db", db, "--out", str(reports))
    page = (reports / "2026-11" / "fee-billing.html").read_text(encoding="utf-8")
    assert "Corrections and credits: 2 line(s), -$270.50." in page
    assert "waived after export by Pat: outage &lt;ours&gt;" in page
    assert "credited by Lee: late" in page
    link = f'<a href="evidence/fee-evidence-{TICKET}.html">{TICKET}</a>'
    assert link in page
    evidence_page = reports / "2026-11" / "evidence" / f"fee-evidence-{TICKET}.html"
    assert "billed net $229.50" in evidence_page.read_text(encoding="utf-8")
