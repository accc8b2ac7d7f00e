"""Outputs that cannot be written: one line naming the place and the reason, exit 2, nothing left.

``fees export --out DIR``, ``report … --out DIR`` and ``export requests -o FILE`` under a parent
that cannot be created, on a read-only or full file system (a tiny tmpfs, or a size limit on a
child process), with a folder where the file should be. A fee export that could not write its
files records no batch: the fees are still there to export.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ipchange_core import store
from ipchange_core.cli import main
from tests.output_places import (
    files_under,
    fill,
    immutable_sqlite,
    size_limited,
    tmpfs,
)
from tests.report_fixtures import build_db

MONTH = "2026-11"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data loaded into a SQLite file (copied by each test that writes to it)."""
    folder = tmp_path_factory.mktemp("sample")
    build_db(folder, hostile=False)
    return folder / "reports.db"


@pytest.fixture
def db(sample_db: Path, tmp_path: Path) -> str:
    copy = tmp_path / "db" / "copy.db"
    copy.parent.mkdir()
    shutil.copyfile(sample_db, copy)
    return f"sqlite:///{copy}"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, prog_name="ipchange")


def one_line(result) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.splitlines()
    return line


def batches(db: str) -> int:
    engine = store.connect(db)
    try:
        return len(pd.read_sql_table("export_batches", engine))
    finally:
        engine.dispose()


COMMANDS = {
    "export requests": lambda db, out: ["export", "requests", "--db", db, "--month", MONTH,
                                        "-o", str(out / "requests.csv")],
    "fees export": lambda db, out: ["fees", "export", "--db", db, "--month", MONTH,
                                    "--out", str(out)],
    "report": lambda db, out: ["report", "intake", "--db", db, "--month", MONTH,
                               "--out", str(out)],
}  # fmt: skip


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_file_in_the_way_of_the_folder(command: str, db: str, tmp_path: Path) -> None:
    blocker = tmp_path / "shared"
    blocker.write_text("not a folder")
    line = one_line(run(*COMMANDS[command](db, blocker / "reports")))
    assert line.startswith("Error: cannot create the folder ")
    assert line.endswith(f"{blocker} is a file, not a folder")
    assert files_under(tmp_path / "db") == ["copy.db"]
    if command == "fees export":
        assert batches(db) == 0


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_parent_that_cannot_exist(command: str, db: str) -> None:
    out = Path("/proc/ipchange-no-such-folder/reports")
    line = one_line(run(*COMMANDS[command](db, out)))
    assert line.startswith("Error: cannot create the folder /proc/ipchange-no-such-folder")
    assert line.endswith("No such file or directory")


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_read_only_file_system(command: str, db: str, tmp_path: Path) -> None:
    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        line = one_line(run(*COMMANDS[command](db, ro)))
        assert files_under(ro) == []
    assert "the file system is read-only" in line and str(ro) in line
    if command == "fees export":
        assert batches(db) == 0


@pytest.mark.parametrize("command", ["export requests", "fees export"])
def test_a_full_disk_leaves_no_partial_file_and_no_batch(
    command: str, db: str, tmp_path: Path
) -> None:
    with tmpfs(tmp_path / "full", size_kb=16) as full:
        (full / MONTH).mkdir()
        fill(full)
        line = one_line(run(*COMMANDS[command](db, full)))
        assert files_under(full) == [MONTH, "filler"]
    assert line.endswith("no space left on the device"), line
    if command == "fees export":
        assert batches(db) == 0
        again = run(*COMMANDS[command](db, tmp_path / "fine"))
        assert again.exit_code == 0 and "2 new (batch 1)" in again.output, again.output


def test_a_full_disk_in_a_report_keeps_the_previous_report(db: str, tmp_path: Path) -> None:
    """The page is written last: a full disk fails that report alone, naming it, exit 2."""
    with tmpfs(tmp_path / "full", size_kb=4096) as full:
        fill(full)  # plotly.min.js (4.6 MB) cannot be written: refused before any report runs
        result = run(*COMMANDS["report"](db, full))
        assert files_under(full) == ["filler"]
    assert one_line(result).endswith("no space left on the device")


def test_a_size_limited_process_leaves_no_partial_file(sample_db: Path, tmp_path: Path) -> None:
    """A full disk without root: the child may write no file beyond 1,000 bytes (the CSV is
    ~1,800); the database is opened immutable, so only the output is written."""
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "ipchange_core.cli", "export", "requests", "--db",
         immutable_sqlite(sample_db), "--month", MONTH, "-o", str(out / "requests.csv")],
        capture_output=True, text=True, preexec_fn=size_limited(1_000), check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        f"Error: cannot write {out / 'requests.csv'}: the file is larger than this process may "
        "write\n"
    )
    assert files_under(out) == []


def test_a_folder_where_the_fee_file_should_be(db: str, tmp_path: Path) -> None:
    """The files are staged first; the batch is recorded; the rename is refused: the message
    says how to write the recorded batch's files again."""
    (tmp_path / "out" / MONTH / f"fees-{MONTH}.csv").mkdir(parents=True)
    line = one_line(run(*COMMANDS["fees export"](db, tmp_path / "out")))
    assert line == (
        f"Error: cannot write {tmp_path / 'out' / MONTH / f'fees-{MONTH}.csv'}: a folder of that "
        "name is in the way; fee batch 1 is recorded: write its files again with --batch 1"
    )
    assert files_under(tmp_path / "out") == [MONTH, f"{MONTH}/fees-{MONTH}.csv"]
    (tmp_path / "out" / MONTH / f"fees-{MONTH}.csv").rmdir()
    again = run(*COMMANDS["fees export"](db, tmp_path / "out"), "--batch", "1")
    assert again.exit_code == 0, again.output
    assert files_under(tmp_path / "out") == [
        MONTH, f"{MONTH}/fees-{MONTH}.csv", f"{MONTH}/fees-{MONTH}.xlsx",
    ]  # fmt: skip


def test_output_given_as_a_folder_is_a_usage_error(db: str, tmp_path: Path) -> None:
    line = one_line(run("export", "requests", "--db", db, "--month", MONTH, "-o", str(tmp_path)))
    assert line == (
        f"Error: Invalid value for '-o' / '--output': File '{tmp_path}' is a directory. "
        "(see 'ipchange export requests --help')"
    )
