"""Fee exports for billing (ipchange_core.billing, ``ipchange fees export``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from ipchange_core import billing, store
from ipchange_core.cli import main
from ipchange_core.periods import parse_period
from ipchange_core.policy import load_policy

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
CANONICAL = ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"]
# the two billable November fees: make their text cells look like spreadsheet formulas
HOSTILE = {
    "ACCT-44120": '=HYPERLINK("http://x","ACCT-44120")',
    "Harold Kim": "@Harold Kim",
    "Red River Communications": "-Red River+1",
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'fees.db'}"
    files = []
    for name in CANONICAL:
        text = (SAMPLE / name).read_text(encoding="utf-8")
        for old, new in HOSTILE.items():
            text = text.replace(old, new.replace('"', '""') if '"' in new else new)
        if name in ("tickets.csv", "intake.csv"):
            text = text.replace(
                '=HYPERLINK(""http://x"",""ACCT-44120"")',
                '"=HYPERLINK(""http://x"",""ACCT-44120"")"',
            )
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(str(tmp_path / name))
    result = run("ingest", *files, "--db", url, "--rejects-dir", str(tmp_path / "loads"))
    assert result.exit_code == 0, result.output
    return url


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


def test_export_writes_csv_and_xlsx_with_local_times_and_numbers(db, tmp_path):
    result = run("fees", "export", "--month", "2026-11", "--db", db, "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "2 fee(s), $500.00, 2 new (batch 1)" in result.output
    folder = tmp_path / "out" / "2026-11"
    rows = read_csv(folder / "fees-2026-11.csv")
    assert [r["Ticket"] for r in rows] == ["KVB-114-57230", "LXR-226-58019"]
    assert rows[0]["Received (America/Chicago)"] == "2026-11-10 09:30:00"
    assert rows[0]["Amount"] == "250.00"
    assert rows[0]["Fee status"] == "billable"
    wb = openpyxl.load_workbook(folder / "fees-2026-11.xlsx")
    ws = wb["fees"]
    header = [c.value for c in ws[1]]
    assert "Sign-off time (America/Chicago)" in header
    amount = ws.cell(2, header.index("Amount") + 1)
    assert amount.value == 250 and amount.data_type == "n" and amount.number_format == "0.00"
    assert ws.cell(2, header.index("Notice hours") + 1).data_type == "n"
    assert ws.cell(2, header.index("Received (America/Chicago)") + 1).is_date


def test_a_fee_is_exported_once_unless_all(db, tmp_path):
    out = str(tmp_path)
    assert (
        "2 new (batch 1)"
        in run("fees", "export", "--month", "2026-11", "--db", db, "--out", out).output
    )
    again = run("fees", "export", "--month", "2026-11", "--db", db, "--out", out)
    assert again.exit_code == 0 and "no fees of 2026-11 left to export" in again.output
    everything = run("fees", "export", "--month", "2026-11", "--all", "--db", db, "--out", out)
    assert "2 fee(s), $500.00, 0 new (no new batch)" in everything.output
    ledger = store.fee_ledger(store.connect(db))
    assert ledger["export_batch_id"].tolist() == [1, 1]


def test_re_export_is_byte_identical(db, tmp_path):
    first = tmp_path / "a"
    run("fees", "export", "--month", "2026-11", "--db", db, "--out", str(first))
    again = tmp_path / "b"
    result = run(
        "fees", "export", "--month", "2026-11", "--batch", "1", "--db", db, "--out", str(again)
    )
    assert result.exit_code == 0, result.output
    for fmt in ("csv", "xlsx"):
        name = f"2026-11/fees-2026-11.{fmt}"
        assert (first / name).read_bytes() == (again / name).read_bytes(), fmt
    run("fees", "export", "--month", "2026-11", "--all", "--db", db, "--out", str(first))
    for fmt in ("csv", "xlsx"):
        all_name, batch_name = f"2026-11/fees-2026-11-all.{fmt}", f"2026-11/fees-2026-11.{fmt}"
        assert (first / all_name).read_bytes() == (first / batch_name).read_bytes(), fmt


def test_csv_only_and_empty_period(db, tmp_path):
    policy = load_policy()
    engine = store.connect(db)
    period = parse_period(policy.latest.timezone, month_label="2026-01")
    nothing = billing.export_fees(engine, policy, period, tmp_path, formats=("csv",))
    assert nothing.paths == () and nothing.batch_id is None
    period = parse_period(policy.latest.timezone, month_label="2026-10")
    done = billing.export_fees(engine, policy, period, tmp_path, formats=("csv",))
    assert [p.name for p in done.paths] == ["fees-2026-10.csv"] and done.total_cents == 50_000
