"""Parse throughput of ``ingest.read_file`` on large canonical files.

Usage: ``.venv/bin/python bench/ingest_throughput.py [ROWS] [TABLE...]`` — writes a synthetic
canonical CSV of ROWS rows (default 1,000,000) per table under ``bench/out/`` and prints the
rows per second of ``read_file`` (best of five runs) and the load average, since other work on
the machine slows it down.

``.venv/bin/python bench/ingest_throughput.py --xml-rss MB...`` — writes Kayako XML exports of
about MB megabytes each (the tickets of the end-to-end benchmark's export, then copies of them
under new display ids) and prints the seconds and peak RSS of one ``ipchange ingest`` of each
into a fresh SQLite file: how memory grows with the size of an XML export.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_e2e import ticket_elements

from ipchange_core.ingest import read_file
from ipchange_core.schema import TABLES

OUT = Path(__file__).resolve().parent / "out"
E2E_XML = OUT / "e2e-1000000" / "data" / "kayako-tickets.xml"
IPCHANGE = Path(sys.executable).with_name("ipchange")


def _times(base: np.ndarray, offset: np.ndarray, *, minutes: int = 0) -> np.ndarray:
    """Times as a help desk writes them: some ISO with offset, the others naive local time.

    ``base`` lies between 09:00 and 10:00 and ``minutes`` is at most a few hours, so naive times
    never fall in a DST gap or overlap: the benchmark measures the happy path.
    """
    t = base + np.timedelta64(minutes, "m")
    text = np.datetime_as_string(t, unit="s").astype(object)
    text[offset] = text[offset] + "-06:00"
    text[~offset] = [s.replace("T", " ") for s in text[~offset]]
    return text


def make(table: str, n: int, seed: int = 1) -> Path:
    """Write a synthetic canonical CSV of ``n`` rows and return its path."""
    rng = np.random.default_rng(seed)
    ids = np.char.add("ABC-", np.arange(n).astype(str))
    days = rng.integers(0, 300, n).astype("timedelta64[D]")
    base = np.datetime64("2026-01-05T09:00") + days + rng.integers(0, 60, n).astype("m8[m]")
    offset = rng.random(n) < 0.5
    cols: dict[str, object] = {}
    for k, col in enumerate(TABLES[table]):
        if col.name == "ticket_id":
            cols[col.name] = ids
        elif col.kind in ("timestamp", "requested_time"):
            text = _times(base, offset, minutes=30 * k)  # later columns are later in time
            if not col.required:
                text[rng.random(n) < 0.5] = ""
            if col.kind == "requested_time":
                text[rng.random(n) < 0.2] = "ASAP"
            cols[col.name] = text
        elif col.kind == "enum":
            cols[col.name] = rng.choice(col.values, n)
        elif col.kind == "bool":
            cols[col.name] = rng.choice(["yes", "no", ""], n)
        elif col.kind == "ip":
            octets = rng.integers(1, 255, (n, 4)).astype(str)
            cols[col.name] = [".".join(o) for o in octets]
        else:
            texts = ["Acme Corp", "Jane Roe", "IP change, site 12"] + [""] * (not col.required)
            cols[col.name] = rng.choice(texts, n)
    if table == "ticket_events":
        cols["ticket_id"] = rng.choice(ids[: max(1, n // 4)], n)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{table}-{n}.csv"
    pd.DataFrame(cols).to_csv(path, index=False)
    return path


def kayako_xml(megabytes: float, out: Path, source: Path = E2E_XML) -> Path:
    """Write a Kayako XML export of about ``megabytes`` MB (10^6 bytes) of ``<ticket>`` elements.

    The tickets of ``source`` (live style, as the end-to-end benchmark's generator writes them),
    then copies whose display ids get a ``C1``, ``C2``… prefix, so no key repeats.
    """
    target = int(megabytes * 1e6)
    size, copy = 0, 0
    with out.open("w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n<tickets>\n')
        while size < target:
            for ticket in ticket_elements(source):
                if copy:
                    ticket = ticket.replace(
                        "<displayid><![CDATA[", f"<displayid><![CDATA[C{copy}", 1
                    )
                f.write(ticket)
                size += len(ticket)
                if size >= target:
                    break
            copy += 1
        f.write("</tickets>\n")
    return out


def ingest_peak_rss(path: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MB, ``/usr/bin/time`` %M) of ``ipchange ingest`` of one file."""
    with tempfile.TemporaryDirectory() as tmp:
        stats = Path(tmp) / "time"
        command = ["/usr/bin/time", "-f", "%M", "-o", str(stats), str(IPCHANGE), "ingest"]
        command += [str(path), "--db", f"sqlite:///{tmp}/bench.db", "--rejects-dir", tmp]
        t0 = time.perf_counter()
        subprocess.run(command, check=False, capture_output=True)
        seconds = time.perf_counter() - t0
        return seconds, int(stats.read_text().split()[-1]) / 1024


def xml_rss(sizes: list[float]) -> None:
    """Print seconds and peak RSS of loading Kayako XML exports of the given sizes (MB)."""
    if not E2E_XML.exists():
        raise SystemExit(f"{E2E_XML} is missing: run `make bench-e2e` first")
    with tempfile.TemporaryDirectory() as tmp:
        for megabytes in sizes:
            path = kayako_xml(megabytes, Path(tmp) / f"kayako-{megabytes:g}MB.xml")
            seconds, rss = ingest_peak_rss(path)
            print(
                f"Kayako XML {path.stat().st_size / 1e6:7,.0f} MB  {seconds:6.1f} s  "
                f"peak RSS {rss:6,.0f} MB  load {os.getloadavg()[0]:.1f}"
            )
            path.unlink()


def main() -> None:
    """Run the benchmark and print rows/s per table (or XML peak RSS with ``--xml-rss``)."""
    if sys.argv[1:2] == ["--xml-rss"]:
        xml_rss([float(arg) for arg in sys.argv[2:]] or [100, 1000])
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    tables = sys.argv[2:] or ["intake", "tickets", "changes", "ticket_events"]
    for table in tables:
        path = make(table, n)
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            parsed = read_file(path)
            best = min(best, time.perf_counter() - t0)
        assert parsed.rows_read == len(parsed.frame) + parsed.rows_rejected
        size = path.stat().st_size / 1e6
        print(
            f"{table:14s} {n:>9,d} rows {size:6.0f} MB  {best:6.2f} s  {n / best:>9,.0f} rows/s  "
            f"accepted {len(parsed.frame):,d} rejected {parsed.rows_rejected:,d}  "
            f"load {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
