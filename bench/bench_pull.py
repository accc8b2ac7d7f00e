"""``ipchange pull kayako`` from the stand-in Kayako server on loopback (issue 21's figures).

Usage::

    .venv/bin/python bench/bench_pull.py [--tickets N] [--page-size P] [--touched F]

Starts ``tests.kayako_server`` with N synthetic tickets (default 100,000), then times, as
subprocesses (start-up included):

1. the first pull into a new SQLite database (every ticket, and the posts of every IP change
   request among them);
2. an incremental pull after ``--touched`` (default 1 %) of the tickets changed (and the posts
   of the requests among those).

Prints seconds, tickets/s and the server's request counts (pages, posts answers and the posts
in them); asserts nothing about speed (the target, an incremental pull of a 100k help desk
under 10 s, is read off the figures).
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


PAGES, POSTS = "/Tickets/Ticket/ListAll/", "/Tickets/TicketPost/ListAll/"


def requests_of(log: list[dict], endpoint: str) -> tuple[int, int]:
    """Requests to ``endpoint`` in a server log, and the items (tickets, posts) they answered."""
    entries = [e for e in log if e["e"].startswith(endpoint)]
    return len(entries), sum(e["count"] or 0 for e in entries)


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
        first_s, first_out = timed_pull(server.url, db, loads, args.page_size)
        first_log = server.log()
        first_requests = len(first_log)
        first_posts, first_posts_n = requests_of(first_log, POSTS)
        server.clear_log()
        touched = server.touch(count=round(args.tickets * args.touched), at=START + 600)
        again_s, out = timed_pull(server.url, db, loads, args.page_size)
        log = server.log()
        fetched = requests_of(log, PAGES)[1]
        posts, posts_n = requests_of(log, POSTS)
    figures = {
        "tickets": args.tickets,
        "first_s": first_s,
        "first_requests": first_requests,
        "touched": len(touched),
        "incremental_s": again_s,
        "incremental_requests": len(log),
        "incremental_fetched": fetched,
        "first_posts_requests": first_posts,
        "first_posts": first_posts_n,
        "incremental_posts_requests": posts,
        "incremental_posts": posts_n,
    }
    print(
        f"first pull:       {first_s:6.1f} s = {args.tickets / first_s:>8,.0f} tickets/s "
        f"({first_requests} requests, pages of {args.page_size}; of them {first_posts:,} for "
        f"the posts of the IP change requests: {first_posts_n:,} posts)"
    )
    print(
        f"incremental pull: {again_s:6.1f} s = {fetched / again_s:>8,.0f} tickets/s fetched "
        f"({len(touched):,} touched, {fetched:,} fetched in {len(log)} requests, of them {posts:,} "
        f"for posts: {posts_n:,} posts; target < 10 s)"
    )
    print(f"({load_average()})")
    for output in (first_out, out):
        print(
            *(line for line in output.splitlines() if line.startswith(("pulled ", "posts: "))),
            sep="\n",
        )
    return figures


if __name__ == "__main__":
    main()
