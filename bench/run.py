"""``make bench``: the benchmarks of the rules engine, ingest and the pull, with ratios to peers.

Prints figures, asserts nothing about speed (this machine is shared and noisy): the load average
is printed beside each figure so that a slow run can be read for what it is.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_calendar
import bench_check
import bench_evaluate
import bench_pull
import ingest_throughput

from ipchange_core import load_policy, store
from ipchange_core.ingest import read_file


def load_average() -> str:
    """The 1-minute load average and the core count, e.g. ``load 1.9 on 2 cores``."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def ingest_rows_per_second(table: str, rows: int) -> dict[str, float]:
    """One canonical CSV of ``rows`` rows → SQLite: first load, then a reload of the same file."""
    path = ingest_throughput.make(table, rows)
    version = load_policy().latest.version
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.connect(f"sqlite:///{tmp}/bench.db")
        timings = []
        for _ in range(2):
            t0 = time.perf_counter()
            result = store.load(engine, read_file(path), policy_version=version)
            timings.append(time.perf_counter() - t0)
        engine.dispose()
    assert result.unchanged == result.read - result.rejected
    return {"rows": rows, "first_s": timings[0], "reload_s": timings[1]}


def main() -> None:
    """Run every benchmark and print one section each."""
    print(f"# ipchange benchmarks ({load_average()})\n")

    print("## Business time between two instants (SPEC 2.1)")
    rows = bench_calendar.main()
    print(bench_calendar.format_table(rows))
    print(f"({load_average()}; targets: <= 50 ns/interval at 10M, >= 1,000x businesstimedelta)\n")

    print("## evaluate(): every rule on 1,000,000 requests")
    result = bench_evaluate.main(1_000_000)
    print(
        f"{result['seconds']:.2f} s wall, {result['cpu_seconds']:.2f} s CPU, "
        f"peak RSS {result['peak_rss_mb']:.0f} MB ({load_average()}; target <= 10 s)\n"
    )

    print("## Ingest: canonical CSV into SQLite (parse + validate + store), 1,000,000 rows each")
    for table in ("tickets", "ticket_events", "intake", "changes"):
        figures = ingest_rows_per_second(table, 1_000_000)
        rate = figures["rows"] / figures["first_s"]
        share = figures["reload_s"] / figures["first_s"]
        print(
            f"{table:<14} first load {figures['first_s']:5.1f} s = {rate:>9,.0f} rows/s; "
            f"reload unchanged {figures['reload_s']:4.1f} s = {share:.0%} of the first"
        )
    print(f"({load_average()}; target >= 100,000 rows/s)\n")

    print("## The morning check, the dashboard and a weekly mail: 1,000,000 tickets")
    bench_check.main([])

    print("\n## Pull from Kayako's REST API (stand-in server on loopback): 100,000 tickets")
    bench_pull.main([])


if __name__ == "__main__":
    main()
