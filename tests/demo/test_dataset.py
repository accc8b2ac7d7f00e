"""Tests of generate() and DemoDataSet (ipchange_core/demo/dataset.py)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ipchange_core.demo import DemoDataSet, bad_rows, dataset, generate
from ipchange_core.demo import reference as ref
from tests.demo.checks import END, OTHERS, REQUESTS, ZONE, read


def test_same_arguments_give_identical_bytes(ds: DemoDataSet, tmp_path: Path) -> None:
    again = generate(tmp_path, requests=REQUESTS, other_tickets=OTHERS, seed=11, end=END)
    for name in ref.FILES:
        assert again.paths[name].read_bytes() == ds.paths[name].read_bytes(), name
    assert again.bad == ds.bad


def test_another_seed_gives_other_data(ds: DemoDataSet, tmp_path: Path) -> None:
    other = generate(tmp_path, requests=REQUESTS, other_tickets=OTHERS, seed=12, end=END)
    for name in ref.FILES:
        assert other.paths[name].read_bytes() != ds.paths[name].read_bytes(), name


def test_several_chunks_are_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dataset, "CHUNK_SIZE", 250)
    calls: list[int] = []
    kwargs = {"requests": 80, "other_tickets": 620, "end": END}
    a = generate(tmp_path / "a", progress=calls.append, **kwargs)
    b = generate(tmp_path / "b", **kwargs)
    assert calls == [250, 250, 200]
    for name in ref.FILES:
        assert a.paths[name].read_bytes() == b.paths[name].read_bytes(), name
    assert read(a, ref.TICKETS_CSV)["ticket_id"].nunique() == 700
    assert {b.kind for b in a.bad} == set(bad_rows.BAD_ROW_KINDS)


def test_row_counts(ds: DemoDataSet, clean: DemoDataSet) -> None:
    tickets = read(ds, ref.TICKETS_CSV)
    assert tickets["ticket_id"].nunique() == REQUESTS + OTHERS
    pairs = sum(b.kind == "duplicate_id" for b in ds.bad if b.file == ref.TICKETS_CSV) // 2
    assert pairs >= 1
    assert len(tickets) == REQUESTS + OTHERS + pairs
    assert ds.rows[ref.KAYAKO_XML] == REQUESTS + OTHERS
    assert len(read(clean, ref.TICKETS_CSV)) == REQUESTS + OTHERS
    intake = read(clean, ref.INTAKE_CSV)
    assert 0.9 * REQUESTS <= len(intake) <= REQUESTS  # never-routed tickets have none
    assert intake["ticket_id"].is_unique
    assert set(intake["ticket_id"]) <= set(tickets["ticket_id"])
    changes = read(clean, ref.CHANGES_CSV)
    assert set(changes["ticket_id"]) <= set(tickets["ticket_id"])
    assert ds.rows[ref.EVENTS_CSV] == ds.rows[ref.KAYAKO_AUDIT_CSV]


def test_empty_and_invalid_arguments(tmp_path: Path) -> None:
    empty = generate(tmp_path, requests=0, other_tickets=0, end=END)
    assert set(empty.rows.values()) == {0}
    assert ET.parse(empty.paths[ref.KAYAKO_XML]).getroot().tag == "tickets"
    with pytest.raises(ValueError, match="months"):
        generate(tmp_path, months=0)
    with pytest.raises(ValueError, match=">= 0"):
        generate(tmp_path, requests=-1)


def test_default_end_is_today_in_chicago(tmp_path: Path) -> None:
    before = dt.datetime.now(ZoneInfo(ZONE)).date()
    got = generate(tmp_path, requests=5, other_tickets=5, months=1, bad_rows=False)
    assert got.end in {before, before + dt.timedelta(days=1)}
    assert got.start == dataset.months_before(got.end, 1)


@pytest.mark.parametrize(
    ("end", "months", "start"),
    [
        (dt.date(2026, 12, 10), 5, dt.date(2026, 7, 10)),
        (dt.date(2026, 3, 31), 1, dt.date(2026, 2, 28)),
        (dt.date(2026, 1, 15), 2, dt.date(2025, 11, 15)),
    ],
)
def test_months_before(end: dt.date, months: int, start: dt.date) -> None:
    assert dataset.months_before(end, months) == start
