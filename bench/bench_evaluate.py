"""Benchmark: ``evaluate`` on N synthetic requests (typed frames built with numpy)."""

from __future__ import annotations

import gc
import resource
import sys
import time

import numpy as np
import pandas as pd

from ipchange_core import evaluate
from ipchange_core.schema import TIMESTAMP_DTYPE

START = pd.Timestamp("2024-01-01", tz="UTC").value // 1000  # µs since epoch (.value is ns)
SPAN_US = 3 * 365 * 86_400 * 10**6


def synthetic_frames(n: int, seed: int = 1) -> dict[str, pd.DataFrame]:
    """N requests over three years: all four tables, with events for the customer tickets."""
    rng = np.random.default_rng(seed)
    ids = pd.array([f"KXP-{i // 100000:03d}-{i % 100000:05d}" for i in range(n)], dtype="str")

    def instants(us):
        return pd.Series(pd.to_datetime(us, unit="us", utc=True), dtype=TIMESTAMP_DTYPE)

    received = np.sort(START + rng.integers(0, SPAN_US, n))  # exports list tickets by creation
    hour = 3_600 * 10**6
    requested = received + rng.integers(-2 * hour, 120 * hour, n)
    created = received + rng.integers(-hour, hour, n)
    text = lambda values: pd.array(values, dtype="str")  # noqa: E731
    tickets = pd.DataFrame(
        {
            "ticket_id": ids,
            "subject": text(
                np.where(rng.random(n) < 0.5, "IP change for site", "Need new static IP")
            ),
            "department": text(np.where(rng.random(n) < 0.7, "Implementation", "Customer Service")),
            "status": text(np.full(n, "New")),
            "owner": text(np.full(n, "")),
            "creator": text(np.where(rng.random(n) < 0.7, "staff", "user")),
            "account": text(np.full(n, "ACCT-1")),
            "requester_name": text(np.full(n, "Pat")),
            "requester_email": text(np.full(n, "pat@example.com")),
            "created_at": instants(created),
            "updated_at": instants(created + hour),
            "tags": text(np.full(n, "ip-change")),
            "ticket_type": text(np.full(n, "")),
        }
    )
    asap = rng.random(n) < 0.05
    intake = pd.DataFrame(
        {
            "ticket_id": ids,
            "received_at": instants(received),
            "channel": text(np.full(n, "phone")),
            "requester_type": text(np.full(n, "site")),
            "account": text(np.full(n, "ACCT-1")),
            "site": text(np.full(n, "Site 1")),
            "reseller": text(np.full(n, "")),
            "contact_name": text(np.full(n, "Pat")),
            "contact_phone": text(np.full(n, "555")),
            "person_of_record": text(np.full(n, "Jane Roe")),
            "reason": text(np.full(n, "isp_change")),
            "current_ip": text(np.full(n, "10.0.0.1")),
            "new_ip": text(np.full(n, "10.0.0.2")),
            "requested_change_at": instants(requested).mask(asap),
            "ticket_number_given": pd.array(rng.random(n) < 0.95, dtype="boolean"),
            "transferred_to_queue": pd.array(np.ones(n, dtype=bool), dtype="boolean"),
            "agent": text(np.where(rng.random(n) < 0.5, "Ann", "Ben")),
            "requested_asap": asap,
        }
    )
    start = requested + rng.integers(-hour, 24 * hour, n)
    done = rng.random(n) < 0.8
    changes = pd.DataFrame(
        {
            "ticket_id": ids,
            "confirmed_at": instants(received + rng.integers(0, 24 * hour, n)),
            "scheduled_start": instants(start),
            "scheduled_end": instants(start + hour),
            "completed_at": instants(start + hour).where(done),
            "cancelled_at": instants(start).where(rng.random(n) < 0.03),
            "engineer": text(np.where(rng.random(n) < 0.5, "Eve", "Finn")),
            "fee_accepted_by": text(np.where(rng.random(n) < 0.8, "jane roe", "")),
            "fee_accepted_at": instants(received + hour),
            "fee_waived": pd.array(rng.random(n) < 0.02, dtype="boolean"),
            "fee_waiver_reason": text(np.full(n, "outage")),
            "fee_waived_by": text(np.full(n, "Mo")),
            "after_hours_approved_by": text(np.full(n, "")),
        }
    )
    moved = tickets["department"] == "Customer Service"
    events = pd.DataFrame(
        {
            "ticket_id": tickets["ticket_id"][moved],
            "at": instants(
                created[moved.to_numpy()] + rng.integers(0, 30 * hour, int(moved.sum()))
            ),
            "field": "department",
            "old_value": "Customer Service",
            "new_value": "Implementation",
            "actor": "Tess",
        }
    ).astype({"field": "str", "old_value": "str", "new_value": "str", "actor": "str"})
    return {"tickets": tickets, "ticket_events": events, "intake": intake, "changes": changes}


def main(n: int = 1_000_000) -> dict[str, float]:
    """Time ``evaluate`` on ``n`` requests: wall and CPU seconds, the process's peak RSS (MB)."""
    frames = synthetic_frames(n)
    as_of = pd.Timestamp("2027-06-01", tz="UTC")
    evaluate(synthetic_frames(1000), as_of=as_of)  # warm caches (policy, calendar)
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    out = evaluate(frames, as_of=as_of)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert len(out) == n
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"requests": n, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak}


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    result = main(size)
    print(
        f"evaluate: {result['requests']:,} requests in {result['seconds']:.2f} s "
        f"({result['cpu_seconds']:.2f} s CPU), "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (whole process, inputs included)"
    )
