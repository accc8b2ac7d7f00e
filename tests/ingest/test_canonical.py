"""Canonical CSV/XLSX files read whole: the fixtures, round trips of a typed frame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ipchange_core.ingest import (
    FORMAT_TABLES,
    read_file,
)
from ipchange_core.schema import SOURCE_LINE, TABLES
from tests.domain import FIXTURES, assert_reconciles, utc, write

# --- round trips of the canonical fixtures ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "rows"),
    [
        ("tickets.csv", "tickets", 3),
        ("ticket_events.csv", "events", 3),
        ("intake.csv", "intake", 3),
        ("changes.csv", "changes", 2),
    ],
    ids=["tickets", "events", "intake", "changes"],
)
def test_canonical_fixture_reads_clean(name: str, fmt: str, rows: int) -> None:
    parsed = read_file(FIXTURES / name)
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == (fmt, FORMAT_TABLES[fmt])
    assert (parsed.rows_read, len(parsed.frame), len(parsed.rejects)) == (rows, rows, 0)
    assert parsed.frame[SOURCE_LINE].tolist() == list(range(2, rows + 2))
    assert parsed.sha256 == hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()
    assert parsed.encoding == "utf-8"


def test_intake_fixture_values() -> None:
    frame = read_file(FIXTURES / "intake.csv").frame.set_index("ticket_id")
    first = frame.loc["ABC-123-45678"]
    assert first["received_at"] == utc(2026, 11, 23, 15, 10)  # 09:10 CST = UTC-6
    assert first["requested_change_at"] == utc(2026, 11, 24, 20, 0)
    assert not first["requested_asap"]
    assert first["new_ip"] == "2001:db8::7"  # IPv6 in compressed canonical form
    assert first["ticket_number_given"] is np.True_
    asap = frame.loc["ABC-123-45680"]
    assert asap["requested_asap"] and pd.isna(asap["requested_change_at"])
    assert (asap["ticket_number_given"], asap["transferred_to_queue"]) == (False, False)
    blank = frame.loc["00123"]  # leading zeros and "NA" are text, never numbers or missing
    assert blank["account"] == "NA"
    assert pd.isna(blank["ticket_number_given"]) and blank["requester_type"] == ""


def test_tickets_fixture_values() -> None:
    frame = read_file(FIXTURES / "tickets.csv").frame.set_index("ticket_id")
    assert frame.loc["ABC-123-45678", "subject"] == "IP change, site 12"
    assert frame.loc["ABC-123-45678", "tags"] == "ip-change,isp"
    assert frame.loc["00123", "creator"] == "user"  # enum letter case normalised
    assert frame.loc["00123", "account"] == "NA"
    assert frame.loc["ABC-123-45679", "created_at"] == utc(2026, 11, 20, 20, 5)
    assert (frame["ticket_type"] == "").all()


def _to_canonical_csv(frame: pd.DataFrame, table: str) -> str:
    """Write a typed frame back as canonical CSV (times as ISO-8601 with offset)."""
    out = pd.DataFrame(index=frame.index)
    for col in TABLES[table]:
        values = frame[col.name]
        if col.kind in ("timestamp", "requested_time"):
            local = values.dt.tz_convert("America/Chicago")
            text = local.map(lambda t: t.isoformat() if pd.notna(t) else "")
            if col.kind == "requested_time":
                text = text.where(~frame["requested_asap"], "ASAP")
            out[col.name] = text
        elif col.kind == "bool":
            out[col.name] = values.map({True: "yes", False: "no"}).fillna("")
        else:
            out[col.name] = values
    return out.to_csv(index=False)


@pytest.mark.parametrize("name", ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"])
def test_round_trip_typed_frame_to_csv_and_back(tmp_path: Path, name: str) -> None:
    first = read_file(FIXTURES / name)
    path = write(tmp_path, name, _to_canonical_csv(first.frame, first.table))
    again = read_file(path)
    assert_reconciles(again)
    pd.testing.assert_frame_equal(again.frame, first.frame)
