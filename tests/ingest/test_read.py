"""read_file as a whole: any text ends accepted or rejected, and the counts reconcile."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core.ingest import (
    read_file,
)
from ipchange_core.schema import TABLES
from tests.domain import assert_reconciles, write

# --- property: any text ends accepted or rejected, counts reconcile ----------------------------

_cell = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=12,
) | st.sampled_from(
    ["", "ASAP", "yes", "NO", "phone", "1.2.3.4", "::1", "2026-11-23 09:15", "2026-11-01 01:30",
     "2026-11-23T09:15:00Z", "T-1", "T-1", "00123", "NA", " ", '"', "\n", "\r", ","]
)  # fmt: skip


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(
        st.lists(_cell, min_size=0, max_size=len(TABLES["intake"]) + 2), min_size=0, max_size=8
    )
)
def test_random_rows_are_accepted_or_rejected_and_counts_reconcile(
    tmp_path: Path, rows: list[list[str]]
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # quotes values holding CR or LF
    writer.writerow([col.name for col in TABLES["intake"]])
    writer.writerows(rows)
    path = write(tmp_path, "intake.csv", out.getvalue())
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.rows_read == sum(1 for r in rows if r)  # a row of nothing is a blank line


STRUCTURE = [
    # (id, raw text, rows read, accepted, rejected lines)
    ("bare-cr-line-ends", "ticket_id,received_at,channel\rT-1,2026-11-23 09:00,phone\rT-2,x,phone\r",
     2, 1, [3]),
    ("unterminated-quote", 'ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\n"T-2,x,phone\n',
     2, 1, [3]),
    ("leading-blank-lines", "\n\nticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\nT-2,x,phone\n",
     2, 1, [5]),
    ("trailing-blank-lines", "ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\n\n\n",
     1, 1, []),
    ("no-final-newline", "ticket_id,received_at,channel\nT-1,2026-11-23 09:00,phone\nT-2,x,phone",
     2, 1, [3]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "read", "accepted", "rejected"),
    [s[1:] for s in STRUCTURE],
    ids=[s[0] for s in STRUCTURE],
)
def test_irregular_csv_structure_keeps_exact_lines(
    tmp_path: Path, text: str, read: int, accepted: int, rejected: list[int]
) -> None:
    parsed = read_file(write(tmp_path, "intake.csv", text))
    assert_reconciles(parsed)
    assert (parsed.rows_read, len(parsed.frame)) == (read, accepted)
    assert sorted(set(parsed.rejects["line"])) == rejected


@pytest.mark.parametrize("end", ["\n", "\r", "\r\n"])
def test_a_cut_off_last_line_is_a_reject_without_a_ticket_id(tmp_path: Path, end: str) -> None:
    """A reject on a line that holds no row read (found by fuzzing: an IndexError before)."""
    header = ",".join(c.name for c in TABLES["changes"])
    row = "DHG-207-75089,2026-02-23T09:59:41-06:00" + "," * (len(TABLES["changes"]) - 2)
    parsed = read_file(write(tmp_path, "changes.csv", f"{header}{end}{end}{row}{end}{end}M"))
    assert parsed.frame["ticket_id"].tolist() == ["DHG-207-75089"]
    assert parsed.rejects[["line", "ticket_id"]].values.tolist() == [[5, ""]]
    assert_reconciles(parsed)
