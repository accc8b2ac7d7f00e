"""All-or-nothing writes, and the sweep of temporary files left by killed processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from ipchange_core.atomic import atomic_write, sweep_stale, temp_file


def test_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"
    atomic_write(target, b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]


def test_sweep_removes_only_the_temporaries_of_dead_processes(tmp_path: Path) -> None:
    # A real process creates a temporary file and is killed with SIGKILL before it can rename it.
    script = (
        "import sys, time; from pathlib import Path; from ipchange_core.atomic import temp_file;"
        "print(temp_file(Path(sys.argv[1]), 'intake-log', '.ipynb'), flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    orphan = Path(child.stdout.readline().strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()
    mine = temp_file(tmp_path, "fees-2026-10.csv")  # this process is alive: kept
    other = tmp_path / ".gitignore"
    other.write_text("*\n")
    plain = tmp_path / "intake-log.html"
    plain.write_text("<html></html>")
    assert orphan.exists() and orphan.name.startswith(".intake-log.pid")

    assert sweep_stale(tmp_path) == [orphan]
    assert not orphan.exists()
    assert mine.exists() and other.exists() and plain.exists()
    assert sweep_stale(tmp_path / "missing") == []
