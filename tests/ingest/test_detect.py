"""detect_format: a file's format from its header row or XML root."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipchange_core.ingest import (
    detect_format,
)
from tests.domain import FIXTURES, write

# --- detect_format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("tickets.csv", "tickets"),
        ("ticket_events.csv", "events"),
        ("intake.csv", "intake"),
        ("changes.csv", "changes"),
        ("kayako-tickets.xml", "kayako-xml"),
        ("kayako-report.csv", "kayako-csv"),
        ("kayako-audit.csv", "kayako-audit"),
    ],
)
def test_detect_format_of_each_fixture(name: str, fmt: str) -> None:
    assert detect_format(FIXTURES / name) == fmt


def test_detect_format_ignores_the_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, "tickets.csv", (FIXTURES / "changes.csv").read_text())
    assert detect_format(path) == "changes"
