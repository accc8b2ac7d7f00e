"""Tests of the deliberately bad rows (demo/bad_rows.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipchange_core.demo import DemoDataSet, bad_rows
from ipchange_core.demo import reference as ref
from tests.demo.checks import CSV_FILES, ZONE, instants, read


def test_every_bad_row_is_where_the_data_set_says(ds: DemoDataSet) -> None:
    assert {b.kind for b in ds.bad} == set(bad_rows.BAD_ROW_KINDS)
    assert {name: sum(b.file == name for b in ds.bad) for name in ref.FILES} == dict(ds.bad_rows)
    frames = {name: read(ds, name) for name in CSV_FILES}
    tickets = frames[ref.TICKETS_CSV]
    for b in ds.bad:
        row = frames[b.file].iloc[b.row - 1]
        assert row[b.column] == b.value, b
        assert row.get("ticket_id") == b.ticket_id, b
        assert b.rejected == bad_rows.BAD_ROW_KINDS[b.kind]
        ids = frames[b.file]["ticket_id"]
        if b.kind == "duplicate_id":  # both rows of the pair are listed
            rows = [x.row for x in ds.bad if x.file == b.file and x.ticket_id == b.ticket_id]
            assert sorted(rows) == [k + 1 for k in np.flatnonzero(ids == b.ticket_id)]
            assert len(rows) == 2
            assert frames[b.file].iloc[rows[0] - 1].equals(frames[b.file].iloc[rows[1] - 1])
        if b.kind == "orphan_intake":
            assert b.ticket_id not in set(tickets["ticket_id"])
    by_kind = {b.kind: b for b in ds.bad}
    assert by_kind["invalid_ip"].value == "300.1.2.3"
    assert by_kind["unknown_enum"].value == "fax"
    assert by_kind["unparseable_date"].value == "31/02/2026 9am"
    assert by_kind["dst_gap"].value == "2026-03-08 02:30:00"
    assert by_kind["dst_ambiguous"].value == "2026-11-01 01:30:00"
    assert by_kind["hostile_subject"].value == "<script>alert(1)</script>"
    assert by_kind["formula_account"].value == '=HYPERLINK("x")'
    with pytest.raises(ValueError, match="nonexistent"):
        pd.Timestamp(by_kind["dst_gap"].value).tz_localize(ZONE, nonexistent="raise")
    with pytest.raises(ValueError, match="ambiguous"):
        pd.Timestamp(by_kind["dst_ambiguous"].value).tz_localize(ZONE, ambiguous="raise")
    ends = [b for b in ds.bad if b.kind == "end_before_start"]
    changes = frames[ref.CHANGES_CSV]
    for b in ends:
        row = changes.iloc[b.row - 1]
        assert (
            instants(pd.Series([row["scheduled_end"]]))[0]
            < instants(pd.Series([row["scheduled_start"]]))[0]
        )
    formula = [b for b in ds.bad if b.kind == "formula_account"]
    assert {b.file for b in formula} == {ref.TICKETS_CSV, ref.INTAKE_CSV}
    assert ds.rejected_rows(ref.INTAKE_CSV) == sum(
        b.rejected for b in ds.bad if b.file == ref.INTAKE_CSV
    )


def test_no_bad_rows_when_not_asked(clean: DemoDataSet) -> None:
    assert clean.bad == ()
    assert set(clean.bad_rows.values()) == {0}
    text = "".join(clean.paths[name].read_text(encoding="utf-8") for name in CSV_FILES)
    for marker in ("300.1.2.3", ",fax,", "31/02/", "<script>", "HYPERLINK"):
        assert marker not in text
    for name in (ref.TICKETS_CSV, ref.INTAKE_CSV, ref.CHANGES_CSV):
        assert read(clean, name)["ticket_id"].is_unique, name
