"""Faults and concurrency (issue #6): kill -9, a database server stopped mid-load, parallel runs.

Everything is real: the ``ipchange`` command in its own processes, SQLite files, a private
PostgreSQL cluster (started from the machine's binaries by ``.ci/postgres``, so that stopping it
cannot disturb other tests) and papermill report runs. Each fault is injected at a seeded random
instant; afterwards the database must hold all of the interrupted file or none of it (full table
contents and load manifests compared), and a retry must load it with reconciling counts.

The default tests inject two or three faults each (``make test``). The
``@pytest.mark.fuzz`` variants run only under ``make fuzz`` (``FUZZ_SECONDS`` set) or when
``IPCHANGE_FAULT_POINTS`` is set: they inject that many faults (default 20, reports 10), each
test stopping early once ``FUZZ_SECONDS`` have passed.
"""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ipchange_core import render, schema, store
from ipchange_core.cli import main
from ipchange_core.errors import IpchangeError
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from ipchange_core.store import sqlite as store_sqlite
from tests.conftest import _unavailable
from tests.report_fixtures import build_db

ROOT = Path(__file__).resolve().parents[1]
IPCHANGE = [sys.executable, "-m", "ipchange_core.cli"]  # = the `ipchange` entry point
MARKER_ENV = "IPCHANGE_FAULT_RUN"  # inherited by every process a run starts (kernels too)
HEADER = [column.name for column in schema.TABLES["tickets"]]  # tickets.csv
BAD_ROWS = 2  # rows every generated file holds that validation rejects


FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS") or 0)
long_version = pytest.mark.skipif(
    not FUZZ_SECONDS and "IPCHANGE_FAULT_POINTS" not in os.environ,
    reason="the long version runs under `make fuzz` (FUZZ_SECONDS) or IPCHANGE_FAULT_POINTS",
)


def fault_points(default: int) -> int:
    """How many faults a fuzz test injects: IPCHANGE_FAULT_POINTS, else ``default``."""
    return int(os.environ.get("IPCHANGE_FAULT_POINTS", default))


def fuzz_deadline() -> float:
    """The monotonic time after which a test injects no more faults (FUZZ_SECONDS from now)."""
    return time.monotonic() + (FUZZ_SECONDS or float("inf"))


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFile:
    """A generated tickets.csv and what loading it into the database before it must do."""

    path: Path
    new: int  # rows not yet stored
    changed: int  # stored rows whose subject it changes
    same: int  # stored rows it repeats unchanged

    @property
    def accepted(self) -> int:
        return self.new + self.changed + self.same


def write_tickets(
    path: Path, prefix: str, n: int, *, revisit: tuple[str, int, int] | None = None
) -> TicketFile:
    """Write ``n`` new tickets ``<prefix>-<i>``, plus BAD_ROWS rejected rows.

    ``revisit = (old_prefix, changed, same)`` also repeats the first ``changed + same`` tickets
    of an earlier file made with ``old_prefix``: the first ``changed`` with a new subject.
    """
    rows = []
    old_prefix, changed, same = revisit or ("", 0, 0)
    for i in range(changed + same):
        rows.append(_ticket(old_prefix, i, f"revised by {prefix}: " if i < changed else ""))
    rows += [_ticket(prefix, i, "") for i in range(n)]
    rows.insert(len(rows) // 2, [f"{prefix}-BAD-1", "x", "Implementation", "New", "", "robot"])
    rows.append([f"{prefix}-BAD-2", "x", "Implementation", "New", "", "staff", "", "", "", "soon"])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(row + [""] * (len(HEADER) - len(row)) for row in rows)
    return TicketFile(path, n, changed, same)


def _ticket(prefix: str, i: int, revised: str) -> list[str]:
    return [
        f"{prefix}-{i:07d}",
        f"{revised}IP change for site {i % 977} – café",
        "Implementation" if i % 3 else "Customer Service",
        "New",
        "Sam Ortiz" if i % 2 else "",
        "staff" if i % 5 else "user",
        f"ACCT-{i % 5000:05d}",
        f"Person {i % 7919}",
        f"p{i % 7919}@example.com",
        f"2026-10-{1 + i % 28:02d}T{9 + i % 8:02d}:{i % 60:02d}:00-05:00",
        "" if i % 4 else f"2026-10-{1 + i % 28:02d}T18:00:00-05:00",
        "ip-change" if i % 2 else "",
    ]


# --- processes ----------------------------------------------------------------------------------


class Run:
    """An ``ipchange`` command in its own process group, tagged so its leftovers can be found."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.tag = uuid.uuid4().hex
        env = {**os.environ, MARKER_ENV: self.tag}
        env.pop("IPCHANGE_DB_URL", None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*IPCHANGE, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def wait_for_line(self, prefix: str, timeout: float = 120) -> float:
        """Read stdout up to a line starting with ``prefix``; return the time it came."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith(prefix):
                return time.monotonic()
            if not line:
                break
        out, err = self.finish()
        raise AssertionError(f"no line {prefix!r} from {self.proc.args}: {out}\n{err}")

    def kill(self) -> bool:
        """SIGKILL the whole run, kernels included; return whether it was still running."""
        running = self.proc.poll() is None
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)
        for pid in _tagged(self.tag):  # Jupyter kernels run in a session of their own
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.finish()
        return running

    def finish(self, timeout: float = 300) -> tuple[str, str]:
        """Wait for the run to end; return its remaining stdout and its stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        deadline = time.monotonic() + 30
        while _tagged(self.tag) and time.monotonic() < deadline:
            time.sleep(0.2)  # a kernel exits by itself soon after its parent
        assert not _tagged(self.tag), f"processes of {self.proc.args} outlived it"
        return out, err

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries this run's tag."""
    found = []
    needle = f"{MARKER_ENV}={tag}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def ingest_args(url: str, work: Path, *files: Path) -> list[str]:
    return ["ingest", *map(str, files), "--db", url, "--rejects-dir", str(work / "loads")]


def assert_clean_exit(run: Run, out: str, err: str, allowed: tuple[int, ...]) -> None:
    """The run ended with an allowed exit code and one-line messages, never a traceback."""
    assert run.proc.returncode in allowed, (run.proc.returncode, out, err)
    assert "Traceback" not in out + err, err
    if run.proc.returncode == 2:
        assert "Error: " in err, err


# --- database contents --------------------------------------------------------------------------

SNAPSHOT_TABLES = ["tickets", "load_manifests", "load_records", "rejects"]


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the tables a tickets load writes, in id order (manifests without loaded_at)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            shot = {}
            for name in SNAPSHOT_TABLES:
                table = store.Base.metadata.tables[name]
                columns = [c for c in table.c if c.name != "loaded_at"]
                rows = conn.execute(sa.select(*columns).order_by(columns[0])).all()
                shot[name] = [tuple(row) for row in rows]
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("tickets")}
            assert {"ux_tickets_ticket_id", "ix_tickets_created_at"} <= indexes
    finally:
        engine.dispose()
    return shot


def sqlite_integrity(url: str) -> None:
    with closing(sqlite3.connect(sa.engine.make_url(url).database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def judge(
    before: dict[str, list[tuple[Any, ...]]],
    after: dict[str, list[tuple[Any, ...]]],
    url: str,
    file: TicketFile,
) -> str:
    """Retry ``file`` after a fault; return "all" or "none" for what the fault had left.

    "none": the database is exactly as before and the retry loads the whole file. "all": the
    database is exactly as the retry leaves it (less the retry's manifest) and the retry finds
    every row already stored. Anything else fails.
    """
    engine = store.connect(url)
    try:
        result, _ = load_file(engine, file.path, load_policy(None))
    finally:
        engine.dispose()
    retried = snapshot(url)
    assert result.read == file.accepted + BAD_ROWS and result.rejected == BAD_ROWS
    assert after["load_manifests"] == retried["load_manifests"][: len(after["load_manifests"])]
    if after == before:
        counts = (result.inserted, result.updated, result.unchanged)
        assert counts == (file.new, file.changed, file.same)
        return "none"
    assert after["tickets"] == retried["tickets"], "a fault left part of a file"
    assert after["rejects"] == retried["rejects"]
    # The retry repeats the file's bytes: its manifest takes over the record hashes.
    assert [r[1:] for r in after["load_records"]] == [r[1:] for r in retried["load_records"]]
    assert len(after["load_manifests"]) == len(before["load_manifests"]) + 1
    # manifest columns: id, file_name, sha256, format, table, rows_read, inserted, updated, ...
    assert after["load_manifests"][-1][6:10] == (file.new, file.changed, file.same, BAD_ROWS)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, file.accepted)
    return "all"


def kill_rounds(
    url: str,
    calibration_url: str,
    work: Path,
    points: int,
    *,
    seed: int,
    inject: Callable[[Run], bool],
    check: Callable[[], None] = lambda: None,
    rows: int = 5_000,
) -> dict[str, int]:
    """Load tickets files, inject a fault into each at a random instant; check all-or-nothing.

    An uninterrupted load of the first file is timed first, in the database
    ``calibration_url``; each fault then strikes that long times uniform(0, 1.6) after the
    command has printed its "database:" line (it is connected and starts reading the file). The first file goes into an empty table (the bulk path: indexes
    dropped and rebuilt); the others update 200 of its rows, repeat 100 and add ``rows`` new.

    Returns:
        How many faults struck a running load, and how many left all / none of the file.
    """
    work.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex[:6].upper()  # fresh ticket ids, whatever the database holds
    base = write_tickets(work / "base.csv", f"{name}-BASE", rows)
    engine = store.connect(calibration_url)
    try:
        began = time.monotonic()
        load_file(engine, base.path, load_policy(None))
        load_seconds = time.monotonic() - began
    finally:
        engine.dispose()
    rng = random.Random(seed)
    counts = {"faults": 0, "all": 0, "none": 0}
    deadline = fuzz_deadline()
    for i in range(points):
        if time.monotonic() > deadline:
            break
        file = base
        if i:
            revisit = (f"{name}-BASE", 200, 100)
            file = write_tickets(work / f"r{i}.csv", f"{name}-R{i}", rows, revisit=revisit)
        before = snapshot(url)
        run = Run(ingest_args(url, work, file.path), work)
        shown = run.wait_for_line("database:")
        time.sleep(max(0.0, shown + rng.uniform(0, 1.6) * load_seconds - time.monotonic()))
        counts["faults"] += inject(run)
        check()
        counts[judge(before, snapshot(url), url, file)] += 1
    return counts


def sigkill(run: Run) -> bool:
    return run.kill()


# --- SQLite -------------------------------------------------------------------------------------


def _sqlite_kills(tmp_path: Path, points: int) -> dict[str, int]:
    url = f"sqlite:///{(tmp_path / 'faults.db').as_posix()}"
    store.connect(url).dispose()
    counts = kill_rounds(
        url,
        f"sqlite:///{(tmp_path / 'calibration.db').as_posix()}",
        tmp_path,
        points,
        seed=20261116,
        inject=sigkill,
        check=lambda: sqlite_integrity(url),
    )
    assert counts["faults"] >= 1, counts  # at least one kill struck a running load
    return counts


def test_kill_9_of_an_sqlite_ingest_leaves_all_or_nothing(tmp_path: Path) -> None:
    print("kill -9 sqlite ingest:", _sqlite_kills(tmp_path, 3))


@pytest.mark.fuzz
@long_version
def test_kill_9_of_an_sqlite_ingest_fuzz(tmp_path: Path) -> None:
    print("kill -9 sqlite ingest:", _sqlite_kills(tmp_path, fault_points(20)))


def test_a_busy_sqlite_database_says_retry(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.connect(sqlite_url).dispose()
    file = write_tickets(tmp_path / "t.csv", "BUSY", 10)
    monkeypatch.setattr(store_sqlite, "BUSY_MS", 300)  # the real lock, a shorter wait
    holder = sqlite3.connect(sa.engine.make_url(sqlite_url).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process writing, for longer than the timeout
    try:
        # opening a database whose tables exist takes no write lock: readers are not blocked
        store.connect(sqlite_url).dispose()
        result = CliRunner().invoke(main, ingest_args(sqlite_url, tmp_path, file.path))
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 2, result.output
    assert "database is busy" in result.output and "retry" in result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert snapshot(sqlite_url)["tickets"] == []


def test_creating_the_tables_of_a_busy_sqlite_database_says_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "new.db"
    monkeypatch.setattr(store_sqlite, "BUSY_MS", 300)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN IMMEDIATE")  # another process writes before the tables exist
    try:
        with pytest.raises(IpchangeError, match=r"database is busy: .* retry"):
            store.connect(f"sqlite:///{path}")
    finally:
        holder.rollback()
        holder.close()


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """The server binaries, found as .ci/postgres finds them."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions and (versions[-1] / "initdb").is_file():
        return versions[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass(frozen=True)
class Cluster:
    """A private PostgreSQL server: its folder, port and the URLs of its two databases."""

    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/faults"

    @property
    def calibration_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/calibration"

    def script(self, *args: str) -> None:
        command = ["bash", str(ROOT / ".ci" / "postgres"), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr

    def start(self) -> None:
        self.script("start", str(self.folder), str(self.port), "faults", "calibration")

    def stop_immediately(self) -> None:
        """``pg_ctl stop -m immediate``: every backend dies at once; recovery at the next start."""
        command = [str(_pg_bindir() / "pg_ctl"), "-D", str(self.folder / "data")]
        command += ["-m", "immediate", "-w", "stop"]
        if os.geteuid() == 0:  # as .ci/postgres runs it
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, cwd="/", check=True, capture_output=True, timeout=120)

    def wait_idle(self) -> None:
        """Wait until no other session works in the database (a killed client's included)."""
        engine = sa.create_engine(self.url)
        deadline = time.monotonic() + 120
        try:
            while True:
                with engine.connect() as conn:
                    others = conn.exec_driver_sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    ).scalar()
                if not others:
                    return
                assert time.monotonic() < deadline, "a killed client's session never ended"
                time.sleep(0.2)
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A PostgreSQL server of this module alone, in a folder the postgres user can reach."""
    if _pg_bindir() is None:
        _unavailable("PostgreSQL server binaries not found (on Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="ipchange-faults-", dir="/tmp"))
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = Cluster(folder, port)
    try:
        server.start()
        yield server
    finally:
        server.script("stop", str(folder))
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_fresh(cluster: Cluster) -> str:
    """The private server's database, without any table."""
    engine = sa.create_engine(cluster.url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    engine.dispose()
    store.connect(cluster.url).dispose()
    return cluster.url


def _pg_kills(cluster: Cluster, work: Path, points: int, seed: int) -> dict[str, int]:
    counts = kill_rounds(
        cluster.url,
        cluster.calibration_url,
        work,
        points,
        seed=seed,
        inject=sigkill,
        check=cluster.wait_idle,
    )
    assert counts["faults"] >= 1, counts
    return counts


def _pg_stops(cluster: Cluster, work: Path, points: int, seed: int) -> dict[str, int]:
    def stop(run: Run) -> bool:
        running = run.proc.poll() is None
        cluster.stop_immediately()
        out, err = run.finish()
        assert_clean_exit(run, out, err, (1, 2) if running else (1,))
        cluster.start()
        return running

    counts = kill_rounds(cluster.url, cluster.calibration_url, work, points, seed=seed, inject=stop)
    assert counts["faults"] >= 1, counts
    return counts


def test_kill_9_of_a_postgresql_ingest_leaves_all_or_nothing(
    cluster: Cluster, pg_fresh: str, tmp_path: Path
) -> None:
    print("kill -9 postgresql ingest:", _pg_kills(cluster, tmp_path, 2, seed=5432))


def test_postgresql_stopped_immediately_during_an_ingest(
    cluster: Cluster, pg_fresh: str, tmp_path: Path
) -> None:
    print("stop -m immediate:", _pg_stops(cluster, tmp_path, 2, seed=15432))


@pytest.mark.fuzz
@long_version
def test_postgresql_faults_fuzz(cluster: Cluster, pg_fresh: str, tmp_path: Path) -> None:
    kills = _pg_kills(cluster, tmp_path / "kill", fault_points(20), seed=1)
    stops = _pg_stops(cluster, tmp_path / "stop", fault_points(20) // 2, seed=2)
    print({"kill -9 postgresql ingest": kills, "stop -m immediate": stops})


# --- reports ------------------------------------------------------------------------------------

WEEK = "2026-W45"


def report_args(which: str, url: str, out: Path) -> list[str]:
    return ["report", which, "--week", WEEK, "--db", url, "--out", str(out)]


def whole(path: Path, data: bytes) -> bool:
    """Whether ``data`` is a complete file of its kind (an HTML page, or a notebook's JSON)."""
    if path.suffix == ".ipynb":
        return json.loads(data)["cells"] is not None
    text = data.decode("utf-8")
    return text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def check_reports(out: Path, previous: dict[Path, bytes]) -> int:
    """Every file of the reports folder is its previous version or another whole file.

    Returns how many files a killed run had replaced (whole). Leftover temporary files are
    hidden, and the index lists only the real report.
    """
    replaced = 0
    for path, data in previous.items():
        now = path.read_bytes()
        if now != data:
            assert path.name != render.PLOTLY_FILE and whole(path, now), f"{path} is not whole"
            previous[path] = now
            replaced += 1
    folder = out / WEEK
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert visible == ["intake-log.html", "intake-log.ipynb"], visible
    assert all(p.name.startswith(".intake-log.") for p in folder.iterdir() if p.name[0] == ".")
    index = render.write_index(out).read_text(encoding="utf-8")
    assert index.count("href=") == 1 and f'href="{WEEK}/intake-log.html"' in index
    return replaced


def _report_kills(tmp_path: Path, points: int) -> dict[str, int]:
    url = build_db(tmp_path, hostile=False)
    out = tmp_path / "reports"
    first = Run(report_args("intake", url, out), tmp_path)
    assert_clean_exit(first, *first.finish(), (0,))
    seconds = first.seconds
    previous = {
        path: path.read_bytes()
        for path in (
            out / WEEK / "intake-log.html",
            out / WEEK / "intake-log.ipynb",
            out / "index.html",
            out / render.PLOTLY_FILE,
        )
    }
    assert all(whole(p, data) for p, data in previous.items() if p.suffix != ".js")
    rng = random.Random(45)
    counts = {"faults": 0, "replaced": 0, "kept": 0}
    deadline = fuzz_deadline()
    for _ in range(points):
        if time.monotonic() > deadline:
            break
        run = Run(report_args("intake", url, out), tmp_path)
        time.sleep(max(0.0, run.started + rng.uniform(0, 1.1) * seconds - time.monotonic()))
        counts["faults"] += run.kill()
        counts["replaced" if check_reports(out, previous) else "kept"] += 1
    assert counts["faults"] >= 1, counts
    return counts


def test_kill_9_of_a_report_run_keeps_a_whole_report(tmp_path: Path) -> None:
    print("kill -9 report run:", _report_kills(tmp_path, 2))


@pytest.mark.fuzz
@long_version
def test_kill_9_of_a_report_run_fuzz(tmp_path: Path) -> None:
    print("kill -9 report run:", _report_kills(tmp_path, fault_points(10)))


# --- concurrency --------------------------------------------------------------------------------


def test_four_ingests_and_two_reports_at_once_on_one_sqlite_file(tmp_path: Path) -> None:
    url = build_db(tmp_path, hostile=False)
    sample = len(snapshot(url)["tickets"])
    files = [
        write_tickets(tmp_path / "a.csv", "CA", 3000),
        write_tickets(tmp_path / "b.csv", "CB", 3000, revisit=("CA", 500, 500)),
        write_tickets(tmp_path / "c.csv", "CC", 3000),
        write_tickets(tmp_path / "d.csv", "CD", 3000, revisit=("CC", 0, 1000)),
    ]
    out = tmp_path / "reports"
    ingests = [Run(ingest_args(url, tmp_path, f.path), tmp_path) for f in files]
    reports = [Run(report_args(which, url, out), tmp_path) for which in ("intake", "sla")]
    busy = []
    for run, file in zip(ingests, files, strict=True):
        out_, err = run.finish()
        assert_clean_exit(run, out_, err, (1, 2))
        if run.proc.returncode == 2:  # only ever because another process held the database
            assert "database is busy" in err and "retry" in err, err
            busy.append(file)
    for run in reports:
        out_, err = run.finish()
        assert_clean_exit(run, out_, err, (0, 2))
        if run.proc.returncode == 2:
            assert "database is busy" in out_ + err and "retry" in out_ + err, out_ + err
    engine = store.connect(url)
    try:
        for file in busy:  # the retry the message asks for
            load_file(engine, file.path, load_policy(None))
        manifests = store.manifests(engine)
        tickets = store.read_frames(engine)["tickets"]
    finally:
        engine.dispose()
    # Every row of every file is stored once: rows lost 0, and one manifest per load.
    assert len(tickets) == sample + 4 * 3000
    assert tickets["ticket_id"].is_unique
    ours = manifests[manifests["file_name"].isin([f.path.name for f in files])]
    assert sorted(ours["file_name"]) == sorted(f.path.name for f in files)
    assert ours["inserted"].sum() == 4 * 3000
    for file in files:
        row = ours[ours["file_name"] == file.path.name].iloc[0]
        assert row["inserted"] + row["updated"] + row["unchanged"] == file.accepted
        assert row["rejected"] == BAD_ROWS
    for run, which in zip(reports, ("intake-log", "sla-compliance"), strict=True):
        if run.proc.returncode == 0:
            assert whole(out / WEEK / f"{which}.html", (out / WEEK / f"{which}.html").read_bytes())
    print("busy retries:", len(busy), "report exits:", [r.proc.returncode for r in reports])
