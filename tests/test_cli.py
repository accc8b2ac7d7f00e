"""The ``ipchange`` command: exit codes, messages, and the files it writes."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ipchange_core.cli import main
from ipchange_core.export import REQUEST_COLUMNS

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
CANONICAL = ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"]


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_every_command_has_help():
    for args in (
        [],
        ["ingest"],
        ["export", "requests"],
        ["demo-data"],
        ["demo"],
        ["policy", "show"],
        ["policy", "check"],
    ):
        result = run(*args, "--help")
        assert result.exit_code == 0, args
        assert "Usage:" in result.output


def test_ingest_sample_then_reload_changes_nothing(db, tmp_path):
    files = [str(SAMPLE / f) for f in CANONICAL]
    first = run("ingest", *files, "--db", db, "--rejects-dir", str(tmp_path))
    assert first.exit_code == 0, first.output
    assert "read 14 = inserted 14 + updated 0 + unchanged 0 + rejected 0" in first.output
    again = run("ingest", *files, "--db", db, "--rejects-dir", str(tmp_path))
    assert again.exit_code == 0
    assert "read 14 = inserted 0 + updated 0 + unchanged 14 + rejected 0" in again.output


def test_rejected_rows_exit_1_and_are_written_with_reasons(db, tmp_path):
    bad = tmp_path / "intake.csv"
    lines = (SAMPLE / "intake.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = next(csv.reader([lines[1]]))
    row[header.index("current_ip")] = "300.1.2.3"
    with bad.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerow(row)
        for line in lines[2:]:
            writer.writerow(next(csv.reader([line])))
    result = run("ingest", str(bad), "--db", db, "--rejects-dir", str(tmp_path / "loads"))
    assert result.exit_code == 1
    assert "read 14 = inserted 13 + updated 0 + unchanged 0 + rejected 1" in result.output
    rejects = list(
        csv.DictReader((tmp_path / "loads" / "intake.csv.rejects.csv").open(encoding="utf-8"))
    )
    assert [(r["line"], r["column"], r["value"]) for r in rejects] == [
        ("2", "current_ip", "300.1.2.3")
    ]
    assert "not a valid IP address" in rejects[0]["reason"]
    assert (tmp_path / "loads" / "intake.csv.load.json").is_file()


def test_a_huge_rejected_value_is_cut_in_the_rejects_csv(db, tmp_path):
    # 300,000 characters: more than a spreadsheet cell or Python's csv module (131,072) takes
    lines = (SAMPLE / "intake.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    row = next(csv.reader([lines[1]]))
    row[header.index("current_ip")] = "9" * 300_000
    bad = tmp_path / "intake.csv"
    with bad.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([header, row])
    result = run("ingest", str(bad), "--db", db, "--rejects-dir", str(tmp_path / "loads"))
    assert result.exit_code == 1
    with (tmp_path / "loads" / "intake.csv.rejects.csv").open(encoding="utf-8") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert reject["value"] == "9" * 1_000 + "… (299,000 more characters)"


def test_unrecognised_file_is_refused_with_exit_2_and_no_traceback(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_text("foo,bar\n1,2\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ipchange_core.cli",
            "ingest",
            str(junk),
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "junk.csv" in proc.stderr
    assert "matches none of the formats" in proc.stderr


@pytest.mark.parametrize(
    ("args", "code"), [(["policy", "show"], 0), (["ingest", "nowhere.csv"], 2)]
)
def test_the_console_script_freezes_the_collector_before_the_interpreter_exits(args, code):
    # The freeze must outlast main()'s SystemExit (click exits in standalone mode), whatever
    # the exit code, and reach the interpreter's teardown, where atexit handlers run first.
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from ipchange_core.cli import run\n"
        f"sys.argv = ['ipchange', *{args!r}]\n"
        "run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert proc.returncode == code, proc.stderr
    assert proc.stdout.splitlines()[-1] == "frozen True"
    assert "Traceback" not in proc.stderr


def test_the_ipchange_script_is_the_freezing_entry_point():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="ipchange")
    assert script.value == "ipchange_core.cli:run"


def test_a_database_error_outside_a_load_is_one_line_exit_2(tmp_path):
    # A database whose fee ledger lacks columns (e.g. made by another tool): every table is
    # there; connecting adds the columns that have a default and refuses the others.
    path = tmp_path / "drifted.db"
    url = f"sqlite:///{path}"
    assert run("ingest", str(SAMPLE / "tickets.csv"), "--db", url).exit_code == 0
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE fee_ledger")
        conn.execute("CREATE TABLE fee_ledger (id INTEGER PRIMARY KEY)")
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "ipchange_core.cli", "fees", "export", "--month", "2026-10"),
            *("--db", url, "--out", str(tmp_path / "fees")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: the database lacks the column fee_ledger.")
    assert proc.stderr.endswith(
        "which has no default for its existing rows: load into a new database\n"
    )


def test_bad_policy_exit_2_names_the_key(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("versions: [{version: x, effective_from: 2027-01-01, fee: {amount: 3}}]\n")
    result = CliRunner().invoke(main, ["policy", "check", str(path)])
    assert result.exit_code == 2
    assert "fee.amount: unknown key" in result.output


def test_policy_show_prints_the_default_rules():
    result = run("policy", "show")
    assert result.exit_code == 0
    assert "threshold_hours: 48.0" in result.output
    assert "fee_cents: 25000" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--week", "2026-W99"], "ISO week"),
        (["--week", "2026-W45", "--month", "2026-11"], "exactly one"),
        ([], "exactly one"),
    ],
)
def test_export_period_errors_exit_2(db, tmp_path, args, message):
    result = CliRunner().invoke(
        main, ["export", "requests", *args, "-o", str(tmp_path / "r.csv"), "--db", db]
    )
    assert result.exit_code == 2
    assert message in result.output


def test_export_requests_has_the_spec_columns_and_formats(db, tmp_path):
    run("ingest", *(str(SAMPLE / f) for f in CANONICAL), "--db", db, "--rejects-dir", str(tmp_path))
    out = tmp_path / "requests.csv"
    result = run(
        "export",
        "requests",
        "--start",
        "2026-10-01",
        "--end",
        "2026-11-30",
        "-o",
        str(out),
        "--db",
        db,
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert tuple(rows[0].keys()) == REQUEST_COLUMNS
    assert len(rows) == 15
    for row in rows:
        for col in ("received_at", "due_at"):
            parsed = dt.datetime.fromisoformat(row[col])
            assert parsed.utcoffset() in (dt.timedelta(hours=-5), dt.timedelta(hours=-6))
        assert row["short_notice"] in ("true", "false", "")
        assert row["in_hours"] in ("true", "false", "")
        assert row["routing_met"] in ("true", "false", "")
        if row["notice_hours"]:
            float(row["notice_hours"])
            assert "e" not in row["notice_hours"]
    billable = [r for r in rows if r["fee_status"] == "billable"]
    assert (
        sum(int(r["fee_cents"]) for r in billable) == 100_000
    )  # data/README.md: 4 billable, $1,000.00


def test_export_requests_week_filters_by_received(db, tmp_path):
    run("ingest", *(str(SAMPLE / f) for f in CANONICAL), "--db", db, "--rejects-dir", str(tmp_path))
    out = tmp_path / "w.csv"
    run("export", "requests", "--week", "2026-W45", "-o", str(out), "--db", db)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows
    for row in rows:
        received = dt.datetime.fromisoformat(row["received_at"]).date()
        assert dt.date(2026, 11, 2) <= received <= dt.date(2026, 11, 8)


def test_demo_data_then_demo(tmp_path):
    out = tmp_path / "demo"
    result = run(
        "demo-data",
        "--requests",
        "40",
        "--other-tickets",
        "60",
        "--months",
        "2",
        "--end",
        "2026-11-25",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    kayako = (
        "kayako-tickets.xml", "kayako-posts.xml", "departments.xml", "ticketstatuses.xml",
        "tickettypes.xml",
        "ticketpriorities.xml", "ticketauditlogs.csv", "ticketauditlogs-with-masks.csv",
        "ticket-audit-logs-report.csv",
        "tickets-report.csv", "tickets-report-excel.csv",
    )  # fmt: skip
    for name in (*CANONICAL, *kayako):
        assert (out / name).is_file()
        assert f"{out / name}: " in result.output, name
    # the demo loads into the database every other command reads (here IPCHANGE_DB_URL's)
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {"IPCHANGE_DB_URL": db}
    reports = tmp_path / "reports"
    result = run("demo", "--out", str(tmp_path / "full"), "--reports", str(reports), env=env)
    assert result.exit_code == 0, result.output
    assert f"database: {db}" in result.output
    assert "SLA compliance, week" in result.output
    assert "Expedite fees" in result.output
    week = re.search(r"SLA compliance, week (\d{4}-W\d{2}) .*, (\d+) requests", result.output)
    exported = run("export", "requests", "--week", week[1], "-o", str(tmp_path / "w.csv"), env=env)
    assert f"{week[2]} request(s) of {week[1]}" in exported.output
    shutil.rmtree(tmp_path / "full")
    # a database holding loads of other files is refused: invented tickets would mix with them
    other = f"sqlite:///{tmp_path / 'other.db'}"
    real = tmp_path / "intake-2026-11.csv"
    shutil.copy(SAMPLE / "intake.csv", real)
    run("ingest", str(real), "--db", other, "--rejects-dir", str(tmp_path))
    refused = run(
        "demo", "--out", str(tmp_path / "again"), "--db", other, "--reports", str(reports)
    )
    assert refused.exit_code == 2
    assert "holds loads of other files (intake-2026-11.csv)" in refused.output
    assert not (tmp_path / "again").exists()
