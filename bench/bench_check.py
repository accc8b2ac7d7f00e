"""The morning check, the dashboard and a weekly mail on a busy help desk (issue 23's figures).

Usage::

    .venv/bin/python bench/bench_check.py [--tickets N] [--requests M] [--years Y]

Reuses (or generates) the data set of :mod:`bench_e2e` under ``bench/out/e2e-<N>/`` and loads its
canonical CSVs into ``bench/out/check-<N>.db`` once. Then, with the data's last morning as
``--at``:

1. ``ipchange report check`` as a subprocess (wall time and peak RSS, start-up included), and
   the check in this process after start-up (read, judge, CSV, page): the target is ≤ 3 s;
2. the dashboard (``reports/index.html``) in this process;
3. ``ipchange mail weekly`` for the last full week to a local aiosmtpd server process (the
   week's reports are built first if missing, which the figure includes).

Prints figures, asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_e2e

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
IPCHANGE = str(Path(sys.executable).with_name("ipchange"))


def load_average() -> str:
    """The 1-minute load average and the core count."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def ensure_db(out: Path, tickets: int, requests: int, years: int) -> str:
    """The SQLite URL of the canonical CSVs of the data set, loaded once."""
    bench_e2e.ensure_data(out, tickets, requests, years)
    db = out.parent / f"check-{tickets}.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        files = [out / "data" / f for f in bench_e2e.CANONICAL]
        print(f"loading {len(files)} files into {db} …", flush=True)
        partial = db.with_suffix(".partial.db")
        partial.unlink(missing_ok=True)
        subprocess.run(
            [
                *(IPCHANGE, "ingest", *map(str, files), "--db", f"sqlite:///{partial}"),
                *("--rejects-dir", str(out / "check-loads")),
            ],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        partial.rename(db)
    return url


def timed(args: list[str], log: Path) -> tuple[float, float, str]:
    """Run the CLI under /usr/bin/time (:func:`bench_e2e.run`): seconds, peak RSS MB, output."""
    seconds, rss, rc = bench_e2e.run(args, log)
    output = log.read_text()
    if rc != 0:
        raise SystemExit(f"{args[:3]} failed (rc {rc}), see {log}")
    return seconds, rss, output


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the three figures and print them; return them by name."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tickets", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--years", type=int, default=3)
    a = p.parse_args(argv)
    out = HERE / "out" / f"e2e-{a.tickets}"
    url = ensure_db(out, a.tickets, a.requests, a.years)

    import pandas as pd

    from ipchange_core import check, check_report, periods, store
    from ipchange_core.dashboard import write_dashboard
    from ipchange_core.pipeline import write_csv
    from ipchange_core.policy import load_policy

    policy = load_policy()
    tz = policy.latest.timezone
    last = bench_e2e.END - dt.timedelta(days=1)
    while last.weekday() > 4:  # the data's last weekday morning
        last -= dt.timedelta(days=1)
    morning = f"{last.isoformat()} 07:00"
    at = check.parse_at(morning, tz)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        reports_dir = Path(tmp) / "reports"
        logs = out / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cli_s, rss, output = timed(
            [
                *("report", "check", "--at", morning, "--db", url),
                *("-o", f"{tmp}/check.csv", "--out", str(reports_dir)),
            ],
            logs / "check.log",
        )
        figures["check_cli_s"], figures["check_cli_rss_mb"] = cli_s, rss
        print(output.splitlines()[1])

        t0, c0 = time.perf_counter(), time.process_time()
        with store.connected(url) as engine:
            problems = check.check_database(engine, policy, at)
            inputs = store.manifests(engine)
        page = check_report.check_page(problems, at, policy, inputs=inputs)
        check_report.write_check_page(page, at, tz, reports_dir)
        write_csv(check_report.check_table(problems, tz), Path(tmp) / "again.csv")
        figures["check_s"] = time.perf_counter() - t0
        figures["check_cpu_s"] = time.process_time() - c0
        figures["problems"] = len(problems)

        t0, c0 = time.perf_counter(), time.process_time()
        write_dashboard(reports_dir, db_url=url, policy=policy, at=at)
        figures["dashboard_s"] = time.perf_counter() - t0
        figures["dashboard_cpu_s"] = time.process_time() - c0

        week = periods.week(last, tz).previous()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "smtp_server.py"), str(port), tmp],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout.readline().strip() == "ready"
            os.environ.update(
                {
                    "IPCHANGE_SMTP_HOST": "127.0.0.1",
                    "IPCHANGE_SMTP_PORT": str(port),
                    "IPCHANGE_SMTP_TLS": "none",
                    "IPCHANGE_SMTP_FROM": "bench@example.org",
                }
            )
            mail = ["mail", "weekly", "--week", week.label, "--db", url]
            mail += ["--to", "manager@example.org", "--out", str(reports_dir)]
            mail_s, mail_rss, _ = timed(mail, logs / "mail-weekly.log")
            figures["weekly_mail_s"], figures["weekly_mail_rss_mb"] = mail_s, mail_rss
            again_s, _, _ = timed(mail, logs / "mail-weekly-again.log")
            figures["weekly_mail_built_s"] = again_s
            sizes = sorted(Path(tmp).glob("*.eml"))
            figures["weekly_mail_mb"] = sizes[-1].stat().st_size / 1e6
        finally:
            server.terminate()
            server.wait(timeout=10)
    n = pd.Timestamp(at).tz_convert(tz)
    print(
        f"check as of {n:%Y-%m-%d %H:%M %Z} on {a.tickets:,} tickets ({a.requests:,} requests): "
        f"{figures['problems']:,.0f} problem rows\n"
        f"  report check (subprocess, start-up included): {figures['check_cli_s']:.2f} s, "
        f"peak RSS {figures['check_cli_rss_mb']:.0f} MB\n"
        f"  the check after start-up (read, judge, CSV, page): {figures['check_s']:.2f} s wall, "
        f"{figures['check_cpu_s']:.2f} s CPU (target <= 3 s)\n"
        f"  dashboard (index.html): {figures['dashboard_s']:.2f} s wall, "
        f"{figures['dashboard_cpu_s']:.2f} s CPU\n"
        f"  mail weekly {week.label} to a local SMTP server: {figures['weekly_mail_s']:.1f} s "
        f"building the reports, {figures['weekly_mail_built_s']:.1f} s with them built; "
        f"message {figures['weekly_mail_mb']:.1f} MB, peak RSS "
        f"{figures['weekly_mail_rss_mb']:.0f} MB\n"
        f"({load_average()})"
    )
    return figures


if __name__ == "__main__":
    main()
