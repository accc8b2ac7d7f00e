"""Running ``ipchange pull kayako`` as its user does (a process) against the stand-in server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO.parent / "shared" / "kayako" / "samples"
API_KEY = "ipchange-test-key"
SECRET = "Zq9-SECRET-never-shown-7Hx"


def pull_env(api_key: str = API_KEY, secret: str = SECRET, **extra: str) -> dict[str, str]:
    """The environment of a pull: the credentials, no settings file of the machine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IPCHANGE_")}
    env |= {"IPCHANGE_KAYAKO_API_KEY": api_key, "IPCHANGE_KAYAKO_SECRET_KEY": secret}
    return env | extra


def pull_args(url: str, db: Path, loads: Path, *args: str) -> list[str]:
    """The command line of ``ipchange pull kayako`` (the interpreter running the tests)."""
    return [
        sys.executable,
        "-m",
        "ipchange_core.cli",
        "pull",
        "kayako",
        "--url",
        url,
        "--db",
        f"sqlite:///{db}",
        "--rejects-dir",
        str(loads),
        *args,
    ]


def ipchange(*args: str, env: dict[str, str] | None = None):
    """Run ``ipchange ARGS…`` to its end; the completed process (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "ipchange_core.cli", *args],
        env=pull_env() if env is None else env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def pull(url: str, db: Path, loads: Path, *args: str, env: dict[str, str] | None = None):
    """Run a pull to its end; the completed process (text output)."""
    return subprocess.run(
        pull_args(url, db, loads, *args),
        env=pull_env() if env is None else env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def spawn(url: str, db: Path, loads: Path, *args: str) -> subprocess.Popen:
    """Start a pull and return at once (its output discarded).

    Its temporary folders go below ``db``'s folder (``TMPDIR``): one the test kills is left.
    """
    return subprocess.Popen(
        pull_args(url, db, loads, *args),
        env=pull_env(TMPDIR=str(db.parent)),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table of a SQLite database, in rowid order (no database: {})."""
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            name: conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall()
            for name in sorted(names)
        }


def tickets(db: Path) -> dict[str, dict]:
    """The ``tickets`` rows by ticket id, as column → value (every column but the row id)."""
    with sqlite3.connect(db) as conn:
        cursor = conn.execute("SELECT * FROM tickets")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    return {
        r[names.index("ticket_id")]: {k: v for k, v in zip(names, r, strict=True) if k != "id"}
        for r in rows
    }


def kayako_ids(db: Path) -> set[int]:
    """Kayako's internal ids of the stored tickets."""
    with sqlite3.connect(db) as conn:
        return {int(r[0]) for r in conn.execute("SELECT kayako_id FROM tickets")}


def list_all(log: list[dict]) -> list[dict]:
    """The ``ListAll`` requests of a server log."""
    return [entry for entry in log if entry["e"].startswith("/Tickets/Ticket/ListAll")]


def count_start(entry: dict) -> tuple[int, int]:
    """``$count$`` and ``$start$`` of a logged ``ListAll`` request."""
    parts = entry["e"].strip("/").split("/")
    return int(parts[7]), int(parts[8])
