"""``ipchange pull kayako`` from the stand-in Kayako server on loopback (issue 21's figures).

Usage::

    .venv/bin/python bench/bench_pull.py [--tickets N] [--page-size P] [--touched F]

Starts ``tests.kayako_server`` with N synthetic tickets (default 100,000), then times, as
subprocesses (start-up included):

1. the first pull into a new SQLite database (every ticket);
2. an incremental pull after ``--touched`` (default 1 %) of the tickets changed.

Prints seconds, tickets/s and the server's request counts; asserts nothing about speed (the
target, an incremental pull of a 100k help desk under 10 s, is read off the figures).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.kayako_server import KayakoServer  # noqa: E402

API_KEY, SECRET = "bench-key", "bench-secret"
START = 1_796_000_000


def load_average() -> str:
    """The 1-minute load average and the core count."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def timed_pull(url: str, db: Path, loads: Path, page_size: int) -> tuple[float, str]:
    """Run one pull; its wall time and output."""
    env = os.environ | {"IPCHANGE_KAYAKO_API_KEY": API_KEY, "IPCHANGE_KAYAKO_SECRET_KEY": SECRET}
    command = [str(Path(sys.executable).with_name("ipchange")), "pull", "kayako", "--url", url]
    command += ["--db", f"sqlite:///{db}", "--rejects-dir", str(loads)]
    command += ["--page-size", str(page_size)]
    began = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"the pull failed: {done.stderr}")
    return took, done.stdout


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark; print and return its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--touched", type=float, default=0.01)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    with (
        KayakoServer(API_KEY, SECRET, tickets=args.tickets, seed=3, start=START) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        print(f"stand-in server with {args.tickets:,} tickets up in "
              f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
        db, loads = Path(tmp) / "pull.db", Path(tmp) / "loads"
        first_s, _ = timed_pull(server.url, db, loads, args.page_size)
        first_requests = len(server.log())
        server.clear_log()
        touched = server.touch(count=round(args.tickets * args.touched), at=START + 600)
        again_s, out = timed_pull(server.url, db, loads, args.page_size)
        log = server.log()
        fetched = sum(e["count"] or 0 for e in log if "ListAll" in e["e"])
    figures = {
        "tickets": args.tickets,
        "first_s": first_s,
        "first_requests": first_requests,
        "touched": len(touched),
        "incremental_s": again_s,
        "incremental_requests": len(log),
        "incremental_fetched": fetched,
    }
    print(
        f"first pull:       {first_s:6.1f} s = {args.tickets / first_s:>8,.0f} tickets/s "
        f"({first_requests} requests, pages of {args.page_size})"
    )
    print(
        f"incremental pull: {again_s:6.1f} s = {fetched / again_s:>8,.0f} tickets/s fetched "
        f"({len(touched):,} touched, {fetched:,} fetched in {len(log)} requests; target < 10 s)"
    )
    print(f"({load_average()})")
    print(next(line for line in out.splitlines() if line.startswith("pulled ")))
    return figures


if __name__ == "__main__":
    main()
