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


# --- waivers, credits, automatic corrections and batches ----------------------------------------

NOV = ("--month", "2026-11")


def export(db: str, out: Path, *more: str):
    result = run("fees", "export", *NOV, "--db", db, "--out", str(out), *more)
    assert result.exit_code == 0, result.output
    return result.output


def lines(path: Path) -> list[tuple[str, str, str, str]]:
    return [(r["Ticket"], r["Fee status"], r["Amount"], r["Reason"]) for r in read_csv(path)]


def test_waiver_credit_and_a_later_load_go_out_as_the_next_batch(db, tmp_path):
    out = tmp_path / "out"
    folder = out / "2026-11"
    export(db, out)
    first = (folder / "fees-2026-11.csv").read_bytes()
    assert "fee waived" in run(
        "fees", "waive", "LXR-226-58019", "--reason", "outage on our side", "--by", "Pat Manager",
        "--db", db,
    ).output  # fmt: skip
    # a waiver of KVB loaded later (the Implementation group's record) is found by the export
    changes = (tmp_path / "changes.csv").read_text(encoding="utf-8")
    row = next(line for line in changes.splitlines() if line.startswith("KVB-114-57230"))
    fields = next(csv.reader([row]))
    fields[9:12] = ["yes", "carrier fault", "Dana Whitfield"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(fields)
    (tmp_path / "changes.csv").write_text(
        changes.replace(row, buffer.getvalue().rstrip("\n")), encoding="utf-8"
    )
    loaded = run(
        "ingest", str(tmp_path / "changes.csv"), "--db", db, "--rejects-dir", str(tmp_path)
    )
    assert loaded.exit_code == 0, loaded.output
    assert "2 fee(s), -$500.00, 2 new (batch 2)" in export(db, out)
    assert lines(folder / "fees-2026-11-b2.csv") == [
        ("KVB-114-57230", "correction", "-250.00", "waived after export by Dana Whitfield: carrier fault"),
        ("LXR-226-58019", "waiver", "-250.00", "waived after export by Pat Manager: outage on our side"),
    ]  # fmt: skip
    assert (folder / "fees-2026-11.csv").read_bytes() == first  # batch 1's file is untouched
    assert "no fees of 2026-11 left" in export(db, out)
    # nothing left to credit on a fee waived and reversed
    refused = run("fees", "credit", "LXR-226-58019", "--reason", "x", "--by", "Lee", "--db", db)
    assert refused.exit_code == 2 and "nothing to credit" in refused.output
    # --batch re-writes batch 2 byte for byte, under its own name
    again = tmp_path / "again"
    export(db, again, "--batch", "2")
    for fmt in ("csv", "xlsx"):
        name = f"2026-11/fees-2026-11-b2.{fmt}"
        assert (again / name).read_bytes() == (out / name).read_bytes()
    engine = store.connect(db)
    try:
        assert [p.name for p in billing.batch_files(engine, 2, out)] == [
            "fees-2026-11-b2.csv", "fees-2026-11-b2.xlsx"
        ]  # fmt: skip
        history = billing.history(engine, "LXR-226-58019", "America/Chicago")
    finally:
        engine.dispose()
    assert history["Kind"].tolist() == ["fee", "waiver"]
    assert history["Amount"].tolist() == [25_000, -25_000]
    assert history["Batch"].tolist() == [1, 2]
    assert history["By"].tolist() == ["ipchange fees export", "Pat Manager"]
    assert (history["OS user"] == store.os_user()).all()


def test_credit_partial_then_full_and_history(db, tmp_path):
    out = tmp_path / "out"
    export(db, out)
    given = run(
        "fees", "credit", "KVB-114-57230", "--amount", "100.00", "--reason", "goodwill",
        "--by", "Lee Clerk", "--db", db,
    )  # fmt: skip
    assert given.exit_code == 0 and "credit of $100.00" in given.output
    rest = run("fees", "credit", "KVB-114-57230", "--reason", "dispute", "--by", "Lee", "--db", db)
    assert "credit of $150.00" in rest.output  # the default: all that is left net
    assert "2 fee(s), -$250.00, 2 new (batch 2)" in export(db, out)
    assert lines(out / "2026-11" / "fees-2026-11-b2.csv") == [
        ("KVB-114-57230", "credit", "-100.00", "credited by Lee Clerk: goodwill"),
        ("KVB-114-57230", "credit", "-150.00", "credited by Lee: dispute"),
    ]
    shown = run("fees", "history", "KVB-114-57230", "--db", db).output.splitlines()
    assert len(shown) == 3
    assert "\tfee\t$250.00\t" in shown[0] and shown[0].endswith("batch 1")
    assert "\tcredit\t-$100.00\tcredited by Lee Clerk: goodwill\tby Lee Clerk" in shown[1]
    assert shown[2].endswith("batch 2")
    assert "no fees of 2026-11 left" in export(db, out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["waive", "NOPE-1", "--reason", "r", "--by", "Pat"], "unknown ticket 'NOPE-1'"),
        (["credit", "NOPE-1", "--reason", "r", "--by", "Pat"], "unknown ticket 'NOPE-1'"),
        (["waive", "KXP-512-48213", "--reason", "r", "--by", "Pat"], "nothing to waive"),
        (["credit", "KXP-512-48213", "--reason", "r", "--by", "Pat"], "nothing to credit"),
        (["credit", "KVB-114-57230", "--reason", "r", "--by", "Pat"], "nothing to credit"),
        (["waive", "KVB-114-57230", "--reason", " ", "--by", "Pat"], "needs a reason"),
        (["waive", "KVB-114-57230", "--reason", "r", "--by", ""], "needs the name"),
        (["credit", "KVB-114-57230", "--reason", "", "--by", "Pat"], "needs a reason"),
        (["credit", "KVB-114-57230", "--reason", "r", "--by", "P", "--amount", "x"], "amount must"),
        (["credit", "KVB-114-57230", "--reason", "r", "--by", "P", "--amount", "0"], "amount must"),
        (["history", "NOPE-1"], "unknown ticket 'NOPE-1'"),
    ],
)
def test_refusals_exit_2_with_one_line_and_write_nothing(db, args, message):
    result = run("fees", *args, "--db", db)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert store.fee_ledger(store.connect(db)).empty


def test_a_credit_above_the_net_billed_is_refused(db, tmp_path):
    export(db, tmp_path)
    above = run(
        "fees", "credit", "KVB-114-57230", "--amount", "250.01", "--reason", "r", "--by", "P",
        "--db", db,
    )  # fmt: skip
    assert above.exit_code == 2 and "more than the 25000 cents billed net" in above.output
    assert len(store.fee_ledger(store.connect(db))) == 2


def test_the_export_that_loses_a_race_says_so_and_exits_0(db, tmp_path, monkeypatch):
    real = store.export_batch

    def raced(engine, due, **kwargs):
        real(engine, due, **kwargs)  # another export takes the fees first
        return real(engine, due, **kwargs)

    monkeypatch.setattr(store, "export_batch", raced)
    result = run("fees", "export", *NOV, "--db", db, "--out", str(tmp_path))
    assert result.exit_code == 0
    assert "another export took the fees of 2026-11 meanwhile: nothing new" in result.output
    ledger = store.fee_ledger(store.connect(db))
    assert ledger["export_batch_id"].tolist() == [1, 1]


@pytest.mark.parametrize(
    ("text", "cents"), [("250", 25_000), ("250.00", 25_000), ("$1,250.5", 125_050), ("0.01", 1)]
)
def test_parse_amount(text, cents):
    assert billing.parse_amount(text) == cents


def test_a_batch_exported_before_reasons_rewrites_without_the_reason_column(db, tmp_path):
    """Batches recorded before fee lines had reasons were written without the Reason column:
    ``--batch N`` writes them again as they were, byte for byte."""
    import hashlib
    import sqlite3

    import pandas as pd

    from ipchange_core.csvfile import csv_bytes

    out = tmp_path / "out"
    assert run("fees", "export", "--month", "2026-11", "--db", db, "--out", str(out)).exit_code == 0
    first = out / "2026-11" / "fees-2026-11.csv"
    table = pd.read_csv(first, dtype=str, keep_default_na=False)
    old_bytes = csv_bytes(table.drop(columns="Reason"))  # the file without Reason (blank here)
    assert [row["Reason"] for row in read_csv(first)] == ["", ""]
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # the batch as the earlier version recorded it
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
            " AND tbl_name = 'export_batches'"
        ).fetchall()
        for name, _ in triggers:  # the ledger rule refuses updates; this is the past
            conn.execute(f"DROP TRIGGER {name}")
        conn.execute(
            "UPDATE export_batches SET sha256 = ?", (hashlib.sha256(old_bytes).hexdigest(),)
        )
        for _, sql in triggers:
            conn.execute(sql)
    first.unlink()
    again = run(
        "fees", "export", "--month", "2026-11", "--db", db, "--out", str(out), "--batch", "1"
    )
    assert again.exit_code == 0, again.output
    assert first.read_bytes() == old_bytes
    assert "Reason" not in read_csv(first)[0]
