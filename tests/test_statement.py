"""Account and reseller statements (ipchange_core.statement, ``ipchange fees statement``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from click.testing import CliRunner

from ipchange_core.cli import main
from tests.test_billing import db  # noqa: F401  (the sample, loaded with hostile text)

NOV = ("--month", "2026-11")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_statement_lists_fees_credits_net_and_sla(db, tmp_path):  # noqa: F811
    out = str(tmp_path)
    assert run("fees", "export", *NOV, "--db", db, "--out", out).exit_code == 0
    credit = ("--amount", "50", "--reason", "=goodwill", "--by", "Lee")
    assert run("fees", "credit", "LXR-226-58019", *credit, "--db", db).exit_code == 0
    assert run("fees", "export", *NOV, "--db", db, "--out", out).exit_code == 0
    assert run("fees", "credit", "LXR-226-58019", *credit, "--db", db).exit_code == 0
    result = run("fees", "statement", "--reseller=-Red River+1", *NOV, "--db", db, "--out", out)
    assert result.exit_code == 0, result.output
    page, sheet = (Path(p) for p in result.output.split())
    rows = list(csv.DictReader(io.StringIO(sheet.read_text(encoding="utf-8"))))
    assert [(r["Ticket"], r["Kind"], r["Amount"], r["Batch"]) for r in rows] == [
        ("LXR-226-58019", "fee", "250.00", "1"),
        ("LXR-226-58019", "credit", "-50.00", "2"),
        ("LXR-226-58019", "credit", "-50.00", ""),
        ("Net billed", "", "200.00", ""),
    ]
    assert rows[1]["Reason"] == "credited by Lee: =goodwill"
    text = page.read_text(encoding="utf-8")
    assert "Net billed: <strong>$200.00</strong>" in text
    assert "not billed yet: -$50.00" in text
    assert "2 request(s) received in the period" in text  # LXR and one without a fee
    # LXR's change ran 07:00-07:30 without after-hours approval: one of the two breached
    in_hours = "<td>in hours</td><td class=num>50.0 %</td><td class=num>1</td><td class=num>1</td>"
    assert in_hours in text
    assert "statement-reseller--Red_River_1-2026-11" in page.name


def test_statement_refusals(db, tmp_path):  # noqa: F811
    both = run("fees", "statement", "--account", "A", "--reseller", "R", *NOV, "--db", db)
    assert both.exit_code == 2
    none = run("fees", "statement", "--account", "NOPE", *NOV, "--db", db, "--out", str(tmp_path))
    assert none.exit_code == 2 and "no request of account 'NOPE'" in none.output
