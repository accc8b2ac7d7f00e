"""Kayako audit log CSVs through read_file: routing changes become events, the rest is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import read_file
from ipchange_core.schema import SOURCE_LINE
from tests.domain import FIXTURES, assert_reconciles, utc, write

# --- audit CSV ----------------------------------------------------------------------------


def test_audit_fixture_gives_routing_events_and_counts_the_rest() -> None:
    parsed = read_file(FIXTURES / "kayako-audit.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-audit", "ticket_events")
    assert (parsed.rows_read, len(parsed.frame), parsed.rows_rejected, parsed.rows_skipped) == (
        6,
        3,
        1,
        2,
    )
    frame = parsed.frame
    assert frame["field"].tolist() == ["department", "owner", "status"]
    assert frame.loc[0, ["old_value", "new_value", "actor"]].tolist() == [
        "Customer Service",
        "Implementation",
        "Jane Roe",
    ]
    assert frame.loc[0, "at"] == utc(2026, 11, 23, 15, 20)
    assert frame.loc[1, ["old_value", "new_value"]].tolist() == ["", "John Smith"]  # unassigned
    assert frame[SOURCE_LINE].tolist() == [2, 3, 5]
    assert parsed.rejects.iloc[0][["line", "column", "value"]].tolist() == [
        6,
        "dateline",
        "not-a-time",
    ]
    assert any("reply 1" in n and "newticket 1" in n for n in parsed.notes)


def test_audit_missing_column_is_refused(tmp_path: Path) -> None:
    text = "ticketmaskid,dateline,actionmsg\nA-1,1795447200,Status changed from New to Open\n"
    with pytest.raises(InvalidInputError, match="missing required audit column"):
        read_file(write(tmp_path, "audit.csv", text))
