"""Tests of the demo's reference data (demo/reference.py) and the header templates."""

from __future__ import annotations

import pytest

from ipchange_core.demo import reference as ref
from tests.demo.checks import COLUMNS, DATA


def test_kayako_lookups() -> None:
    assert dict(ref.KAYAKO_DEPARTMENTS) == {
        1: "General",
        2: "Customer Service",
        3: "Implementation",
        4: "Technical Support",
        5: "Billing",
    }
    assert dict(ref.KAYAKO_STATUSES) == {
        1: "New",
        2: "Open",
        3: "In Progress",
        4: "On Hold",
        5: "Closed",
    }
    assert dict(ref.KAYAKO_TYPES) == {1: "Issue", 2: "Task", 3: "IP Change"}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_templates_are_the_header_only(name: str) -> None:
    text = (DATA / "templates" / name).read_text(encoding="utf-8")
    assert text == ",".join(COLUMNS[name]) + "\n"
