"""Loading Kayako XML exports in blocks: ingest.read_file(spill=True) into store.load.

Every test loads for real, on a SQLite file and on PostgreSQL, with a block size small enough
that the file spans many blocks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from ipchange_core import store
from ipchange_core.errors import InvalidInputError, IpchangeError
from ipchange_core.ingest import ParsedFile, read_file
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from ipchange_core.schema import SOURCE_LINE, typed_dtypes
from tests.domain import assert_reconciles, kayako_ticket, write
from tests.store.helpers import table_rows

BLOCK = 4
T0 = 1795446900  # 2026-11-23 15:15 UTC, in epoch seconds


def export(tickets: list[str]) -> str:
    return "<tickets>" + "".join(tickets) + "</tickets>"


def tickets_with_repeats() -> list[str]:
    """23 tickets over 6 blocks of 4: repeated ids within and across blocks, and bad rows.

    K-2 is on lines 2 and 17 (blocks 1 and 5); K-9 on 9, 10 and 21 (blocks 3, 3 and 6), its
    copy on line 21 also with an unknown status; line 14 has an unknown status id.
    """
    tickets = [kayako_ticket(n, lastactivity=str(T0 + 60)) for n in range(1, 24)]
    tickets[16] = kayako_ticket(17, displayid="K-2", lastactivity=str(T0 + 60))
    tickets[9] = kayako_ticket(10, displayid="K-9", lastactivity=str(T0 + 60))
    tickets[20] = kayako_ticket(21, displayid="K-9", statusid="77")
    tickets[13] = kayako_ticket(14, statusid="77")
    return tickets


def spilled(path: Path, block: int = BLOCK) -> ParsedFile:
    return read_file(path, block_rows=block, spill=True)


def stored_tickets(engine: sa.Engine) -> pd.DataFrame:
    return store.read_frames(engine)["tickets"]


# --- reading in blocks ----------------------------------------------------------------------


def test_repeated_ids_reject_every_copy_across_blocks(tmp_path: Path) -> None:
    path = write(tmp_path, "export.xml", export(tickets_with_repeats()))
    parsed = read_file(path, block_rows=BLOCK)
    assert_reconciles(parsed)
    assert sorted(set(parsed.rejects["line"])) == [2, 9, 10, 14, 17, 21]
    assert not {"K-2", "K-9"} & set(parsed.frame["ticket_id"])
    reasons = parsed.rejects.set_index(["line", "column"])["reason"]
    assert reasons[(17, "displayid")] == (
        "duplicate ticket_id 'K-2': also on line(s) 2; every copy is rejected"
    )
    assert reasons[(10, "displayid")] == (
        "duplicate ticket_id 'K-9': also on line(s) 9, 21; every copy is rejected"
    )
    assert "status id '77'" in reasons[(21, "statusid")]  # its own problem is kept too


@settings(max_examples=40)
@given(
    ids=st.lists(st.integers(1, 12), min_size=0, max_size=30),
    bad=st.sets(st.integers(0, 29)),
    block=st.integers(1, 8),
)
def test_blocks_of_any_size_give_what_one_block_gives(
    tmp_path_factory: pytest.TempPathFactory, ids: list[int], bad: set[int], block: int
) -> None:
    tickets = [
        kayako_ticket(n, displayid=f"K-{i}", **({"statusid": "77"} if n - 1 in bad else {}))
        for n, i in enumerate(ids, start=1)
    ]
    path = write(tmp_path_factory.mktemp("xml"), "export.xml", export(tickets))
    whole = read_file(path)
    once = [i for i in ids if ids.count(i) == 1]
    good = [f"K-{i}" for n, i in enumerate(ids) if i in once and n not in bad]
    assert whole.frame["ticket_id"].tolist() == good  # every copy of a repeated id is rejected
    parsed = read_file(path, block_rows=block)
    assert_reconciles(parsed)
    pd.testing.assert_frame_equal(parsed.frame, whole.frame)
    pd.testing.assert_frame_equal(parsed.rejects, whole.rejects)
    with spilled(path, block) as streamed:
        assert (streamed.rows_read, streamed.sha256) == (whole.rows_read, whole.sha256)
        pd.testing.assert_frame_equal(streamed.rejects, whole.rejects)
        blocks = list(streamed.blocks())
        assert all(len(frame) <= block for frame in blocks)
        frame = pd.concat([whole.frame.iloc[:0], *blocks], ignore_index=True)
        pd.testing.assert_frame_equal(frame, whole.frame)
        assert len(streamed.frame) == 0  # the rows wait in the spill, not in memory


def test_spilled_rows_are_deleted_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = write(tmp_path, "export.xml", export(tickets_with_repeats()))
    parsed = spilled(path)
    assert list(parsed.frame.dtypes.astype(str)) == [*typed_dtypes("tickets").values(), "int64"]
    assert len(list((tmp_path / "tmp").iterdir())) == 1
    parsed.close()
    assert list((tmp_path / "tmp").iterdir()) == []
    with pytest.raises(IpchangeError, match="deleted"):
        next(parsed.blocks())


def test_a_malformed_end_leaves_no_spill_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    text = export(tickets_with_repeats()).replace("</tickets>", "<ticket></tickets>")
    with pytest.raises(InvalidInputError, match="malformed XML"):
        spilled(write(tmp_path, "export.xml", text))
    assert list((tmp_path / "tmp").iterdir()) == []


# --- loading in blocks ------------------------------------------------------------------------


def test_multi_block_load_stores_what_the_file_holds(engine: sa.Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "export.xml", export(tickets_with_repeats()))
    whole = read_file(path)
    with spilled(path) as parsed:
        result = store.load(engine, parsed, policy_version="t")
    assert (result.read, result.inserted, result.updated, result.unchanged) == (23, 17, 0, 0)
    assert (result.rejected, result.skipped) == (6, 0)
    expected = whole.frame.drop(columns=SOURCE_LINE).sort_values("ticket_id", ignore_index=True)
    pd.testing.assert_frame_equal(stored_tickets(engine), expected)
    assert store.rejects(engine, result.manifest_id)["line"].tolist() == [
        2, 9, 10, 14, 17, 21, 21
    ]  # fmt: skip
    assert store.manifests(engine)[["rows_read", "inserted", "rejected"]].to_numpy().tolist() == [
        [23, 17, 6]
    ]
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("tickets")}
    assert {"ux_tickets_ticket_id", "ix_tickets_created_at"} <= indexes  # rebuilt once, at the end


@pytest.mark.parametrize("block", [2, 10], ids=["by-ticket", "whole-table"])
def test_multi_block_reload_changes_nothing_and_older_never_overwrites(
    engine: sa.Engine, tmp_path: Path, block: int
) -> None:
    # 60 stored tickets: blocks of 2 look their stored rows up by ticket_id, blocks of 10 read
    # the whole table's hashes once.
    first = [kayako_ticket(n, lastactivity=str(T0 + 3600)) for n in range(1, 61)]
    path = write(tmp_path, "first.xml", export(first))
    with spilled(path, block) as parsed:
        store.load(engine, parsed, policy_version="t")
    stored = table_rows(engine, "tickets")
    with spilled(path, block) as parsed:
        again = store.load(engine, parsed, policy_version="t")
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 60, 0)
    assert table_rows(engine, "tickets") == stored

    newer = [
        kayako_ticket(n, subject=f"changed {n}", lastactivity=str(T0 + (7200 if n % 2 else 1800)))
        for n in range(1, 61)
    ] + [kayako_ticket(61)]  # odd n: a newer export of the ticket; even n: an older one
    with spilled(write(tmp_path, "newer.xml", export(newer)), block) as parsed:
        result = store.load(engine, parsed, policy_version="t")
    assert (result.inserted, result.updated, result.unchanged) == (1, 30, 30)
    subjects = stored_tickets(engine).set_index("ticket_id")["subject"]
    assert subjects["K-1"] == "changed 1" and subjects["K-61"] == "Subject &"
    assert subjects["K-2"] == "Subject &"  # the older export did not overwrite


def _refuse_ticket(engine: sa.Engine, ticket_id: str) -> None:
    """A trigger that makes the database refuse one ticket row (a real failure, late)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON tickets "
                f"WHEN NEW.ticket_id = '{ticket_id}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.ticket_id = '{ticket_id}' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON tickets "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


@pytest.mark.parametrize("stored", [0, 5], ids=["empty-table", "upsert"])
def test_a_failure_in_the_last_block_writes_nothing_of_the_file(
    engine: sa.Engine, tmp_path: Path, stored: int
) -> None:
    if stored:
        base = write(tmp_path, "base.xml", export([kayako_ticket(n) for n in range(1, stored + 1)]))
        with spilled(base) as parsed:
            store.load(engine, parsed, policy_version="t")
    before = (table_rows(engine, "tickets"), store.manifests(engine), store.rejects(engine))
    path = write(tmp_path, "export.xml", export(tickets_with_repeats()))
    _refuse_ticket(engine, "K-23")  # the 23rd ticket: the last of six blocks
    with spilled(path) as parsed, pytest.raises(IpchangeError, match="nothing was written"):
        store.load(engine, parsed, policy_version="t")
    after = (table_rows(engine, "tickets"), store.manifests(engine), store.rejects(engine))
    assert after[0] == before[0]
    pd.testing.assert_frame_equal(after[1], before[1])
    pd.testing.assert_frame_equal(after[2], before[2])
    indexes = {index["name"] for index in sa.inspect(engine).get_indexes("tickets")}
    assert {"ux_tickets_ticket_id", "ix_tickets_created_at"} <= indexes

    with engine.begin() as conn:
        on = "" if engine.dialect.name == "sqlite" else " ON tickets"
        conn.exec_driver_sql(f"DROP TRIGGER refuse{on}")
    with spilled(path) as parsed:
        result = store.load(engine, parsed, policy_version="t")
    assert (result.read, result.inserted + result.updated + result.unchanged) == (23, 17)
    ids = set(stored_tickets(engine)["ticket_id"])
    assert len(ids) == 17 + (1 if stored else 0)  # the stored K-2 stays: the file's are rejected
    assert "K-9" not in ids


def test_load_file_reads_xml_in_blocks_and_cleans_up(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = write(tmp_path, "export.xml", export(tickets_with_repeats()))
    result, parsed = load_file(engine, path, load_policy())
    assert (result.read, result.inserted, result.rejected) == (23, 17, 6)
    assert parsed.rows_rejected == 6 and len(parsed.frame) == 0
    assert list((tmp_path / "tmp").iterdir()) == []


# --- Kayako's internal ticket id and the audit log ---------------------------------------------


AUDIT_DB = (
    "ticketauditlogid,ticketid,departmentid,departmenttitle,dateline,creatortype,"
    "creatorfullname,actiontype,actionmsg,valuetype,oldvalueid,oldvaluestring,newvalueid,"
    "newvaluestring\n"
    f"1,1,2,Customer Service,{T0},2,Pat Doe,1,New Ticket,0,0,,0,\n"
    f"2,1,2,Customer Service,{T0 + 1800},1,Jane Roe,7,"
    "Ticket department changed from: Customer Service to: Implementation,8,2,,3,\n"
    f"3,99,2,Customer Service,{T0 + 1800},1,Jane Roe,7,"
    "Ticket department changed from: Customer Service to: Implementation,8,2,,3,\n"
)


def test_audit_export_without_mask_ids_finds_tickets_by_their_stored_kayako_id(
    engine: sa.Engine, tmp_path: Path
) -> None:
    policy = load_policy()
    xml = write(tmp_path, "tickets.xml", export([kayako_ticket(1), kayako_ticket(2)]))
    load_file(engine, xml, policy)
    stored = stored_tickets(engine).set_index("ticket_id")
    assert stored["kayako_id"].to_dict() == {"K-1": "1", "K-2": "2"}
    assert store.kayako_ticket_ids(engine) == {"1": "K-1", "2": "K-2"}
    audit = write(tmp_path, "swticketauditlogs.csv", AUDIT_DB)
    result, parsed = load_file(engine, audit, policy)
    assert (parsed.format, result.read, result.inserted, result.rejected) == (
        "kayako-audit",
        3,
        2,
        1,
    )
    assert parsed.reject_messages() == [
        "swticketauditlogs.csv line 4, column ticketid: ticketid '99' matches no stored ticket "
        "(tickets.kayako_id): load the ticket XML or report with Kayako's ticket ids first"
    ]
    events = store.read_frames(engine)["ticket_events"]
    assert events[["ticket_id", "old_value", "new_value"]].to_numpy().tolist() == [
        ["K-1", "Customer Service", "Customer Service"],
        ["K-1", "Customer Service", "Implementation"],
    ]
    again, _ = load_file(engine, audit, policy)
    assert (again.inserted, again.updated) == (0, 0)


def test_an_older_database_gets_the_kayako_id_column(tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    with store.connected(url) as engine, engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_tickets_kayako_id"))
        conn.execute(sa.text("ALTER TABLE tickets DROP COLUMN kayako_id"))
    with store.connected(url) as engine:
        inspector = sa.inspect(engine)
        assert "kayako_id" in {c["name"] for c in inspector.get_columns("tickets")}
        assert "ix_tickets_kayako_id" in {i["name"] for i in inspector.get_indexes("tickets")}
        load_file(engine, write(tmp_path, "t.xml", export([kayako_ticket(7)])), load_policy())
        assert store.kayako_ticket_ids(engine) == {"7": "K-7"}
