"""Tests of ipchange_core.store.load: loads, reloads, rejects, manifests, transactions.

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core import config, ingest, schema, store
from ipchange_core.errors import InvalidInputError, IpchangeError
from ipchange_core.ingest.kayako_report import DEFAULT_MAPPING
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from tests.store.helpers import (
    REJECT_COLUMNS,
    Parsed,
    assert_typed,
    expected,
    parsed,
    table_rows,
    ticket,
    tickets_frame,
    typed,
    utc,
)

# --- round trips --------------------------------------------------------------------------------

TEXTS = [
    "00123",
    "NA",
    "",
    "naïve café ☕ 𝄞 עברית 中文",
    'a "quoted", comma',
    "line\nbreak\r\nand CRLF",
    "back\\slash \\N",
    "  spaced  ",
    "NULL",
    "tab\there",
    "=1+2",
    "null",
]
INSTANTS = [
    "2026-03-08 07:59:59.999999",  # 01:59:59.999999 CST, the last µs before the DST jump
    "2026-03-08 08:00:00",
    "2026-11-01 06:30:00.000001",  # inside the repeated Central hour
    "1969-12-31 23:59:59.999999",  # before the Unix epoch
    "1900-01-01 00:00:00",
    "2199-12-31 23:59:59.999999",
    None,
]


def tricky(table: str, n: int = 24) -> pd.DataFrame:
    """Rows of ``table`` cycling through awkward text, instants and flags."""
    rows = []
    for i in range(n):
        row: dict[str, Any] = {}
        for j, (name, dtype) in enumerate(schema.typed_dtypes(table).items()):
            if dtype == "str":
                row[name] = TEXTS[(i + j) % len(TEXTS)]
            elif dtype == schema.TIMESTAMP_DTYPE:
                value = INSTANTS[(i + j) % len(INSTANTS)]
                row[name] = (
                    value
                    if value is not None or name not in ("created_at", "at", "received_at")
                    else INSTANTS[0]
                )
            elif dtype == "boolean":
                row[name] = [True, False, pd.NA][(i + j) % 3]
            else:
                row[name] = bool((i + j) % 2)
        row["ticket_id"] = ["00123", "NA", "null", "ÜNÏ-001", "KXP-1"][i % 5] + f"-{i}"
        if table == "ticket_events":
            row["ticket_id"] = f"KXP-{i // 3}"
        rows.append(row)
    return typed(table, rows)


@pytest.mark.parametrize("table", list(schema.TABLES))
def test_round_trip_preserves_every_value(engine: sa.Engine, table: str) -> None:
    frame = tricky(table)
    first, second = frame.iloc[:10], frame.iloc[10:]
    # The first half goes into an empty table (bulk path), the second through the upsert.
    for part in (first, second):
        result = store.load(engine, parsed(table, part), policy_version="t")
        assert (result.inserted, result.updated, result.unchanged) == (len(part), 0, 0)
    frames = store.read_frames(engine)
    assert_typed(frames)
    pd.testing.assert_frame_equal(frames[table], expected(table, frame), check_exact=True)
    instants = [c for c, d in schema.typed_dtypes(table).items() if d == schema.TIMESTAMP_DTYPE]
    for name in instants:
        assert str(frames[table][name].dt.tz) == "UTC"


def test_load_accepts_an_ingest_parsed_file(engine: sa.Engine) -> None:
    fixture = Path(__file__).parents[1] / "fixtures" / "tickets.csv"
    parsed_file = ingest.read_file(fixture)
    result = store.load(engine, parsed_file, policy_version="t")
    assert result.read == parsed_file.rows_read
    assert result.inserted == len(parsed_file.frame)


# --- reloads ------------------------------------------------------------------------------------


def four_tables() -> dict[str, pd.DataFrame]:
    tickets = tickets_frame(300, seed=1)
    ids = tickets["ticket_id"].tolist()
    events = typed(
        "ticket_events",
        [
            {
                "ticket_id": ids[i // 2],
                "at": f"2026-11-16 16:{i % 60:02d}:00",
                "field": ["department", "status", "owner"][i % 3],
                "old_value": "Customer Service",
                "new_value": "Implementation",
                "actor": "Alex",
            }
            for i in range(200)
        ],
    )
    intake = typed(
        "intake",
        [
            {
                "ticket_id": ids[i],
                "received_at": "2026-11-16 15:00:00.5",
                "channel": "phone",
                "person_of_record": "Jane Roe",
                "requested_change_at": None if i % 4 == 0 else "2026-11-18 15:00:00",
                "requested_asap": i % 4 == 0,
                "ticket_number_given": [True, False, pd.NA][i % 3],
            }
            for i in range(150)
        ],
    )
    changes = typed(
        "changes",
        [
            {"ticket_id": ids[i], "completed_at": "2026-11-17 16:00:00", "fee_waived": False}
            for i in range(100)
        ],
    )
    return {"tickets": tickets, "ticket_events": events, "intake": intake, "changes": changes}


def test_reloading_the_same_files_changes_nothing(engine: sa.Engine) -> None:
    data = four_tables()
    files = {table: parsed(table, frame) for table, frame in data.items()}
    for table, file in files.items():
        result = store.load(engine, file, policy_version="t")
        assert result.inserted == len(data[table])
    before = {table: table_rows(engine, table) for table in data}
    for table, file in files.items():
        result = store.load(engine, file, policy_version="t")
        assert (result.inserted, result.updated, result.unchanged) == (0, 0, len(data[table]))
    assert {table: table_rows(engine, table) for table in data} == before
    frames = store.read_frames(engine)
    for table, frame in data.items():
        pd.testing.assert_frame_equal(frames[table], expected(table, frame))
    assert len(store.manifests(engine)) == 8


TICKETS_CSV = (
    "ticket_id,subject,department,status,owner,creator,account,requester_name,"
    "requester_email,created_at,updated_at,tags\n"
    + "".join(
        f"RLD-{i:04d},IP change {i},Implementation,New,Alex Agent,staff,ACCT-{i},Jane Roe,"
        f"jane@example.com,2026-11-16T09:{i % 60:02d}:00-06:00,2026-11-16T12:00:00-06:00,ip\n"
        for i in range(40)
    )
    + "RLD-BAD1,Bad,Implementation,New,,robot,ACCT,Jane,j@example.com,2026-11-16T09:00:00-06:00,,\n"
    + "RLD-BAD2,Bad,Implementation,New,,staff,ACCT,Jane,j@example.com,yesterday,,\n"
)


def write_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reloading_the_latest_file_is_recorded_without_parsing_it(
    engine: sa.Engine, tmp_path: Path
) -> None:
    policy = load_policy()
    path = write_file(tmp_path, "tickets.csv", TICKETS_CSV)
    first, parsed_first = load_file(engine, path, policy)
    assert (first.read, first.inserted, first.rejected) == (42, 40, 2)
    stored = table_rows(engine, "tickets")

    second, parsed_second = load_file(engine, path, policy)
    assert asdict(second) | {"manifest_id": 0} == {
        "file": str(path),
        "table": "tickets",
        "read": 42,
        "inserted": 0,
        "updated": 0,
        "unchanged": 40,
        "rejected": 2,
        "skipped": 0,
        "manifest_id": 0,
    }
    assert second.manifest_id > first.manifest_id
    assert len(parsed_second.frame) == 0  # not parsed: no rows came out of the file
    assert "not parsed again" in parsed_second.notes[0]
    assert (
        parsed_second.sha256 == parsed_first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    )
    assert parsed_second.rows_rejected == 2
    assert parsed_second.rejects[["file", "line", "column"]].to_numpy().tolist() == [
        ["tickets.csv", 42, "creator"],
        ["tickets.csv", 43, "created_at"],
    ]
    assert table_rows(engine, "tickets") == stored
    manifests = store.manifests(engine)
    assert manifests[
        ["rows_read", "inserted", "updated", "unchanged", "rejected"]
    ].to_numpy().tolist() == [[42, 40, 0, 0, 2], [42, 0, 0, 40, 2]]
    assert manifests["sha256"].tolist() == [parsed_first.sha256] * 2


def test_a_file_loaded_before_another_one_is_parsed_and_loaded_again(
    engine: sa.Engine, tmp_path: Path
) -> None:
    policy = load_policy()
    a = write_file(tmp_path, "a.csv", TICKETS_CSV)
    b = write_file(tmp_path, "b.csv", TICKETS_CSV.replace(",Alex Agent,", ",Sam Other,"))
    load_file(engine, a, policy)
    from_b, _ = load_file(engine, b, policy)
    assert (from_b.updated, from_b.unchanged) == (40, 0)

    again, parsed_again = load_file(engine, a, policy)  # B was loaded since: A must overwrite it
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 40, 0, 2)
    assert len(parsed_again.frame) == 40
    assert set(store.read_frames(engine)["tickets"]["owner"]) == {"Alex Agent"}


def test_a_new_policy_version_or_a_mapping_parses_the_file_again(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = write_file(tmp_path, "tickets.csv", TICKETS_CSV)
    load_file(engine, path, load_policy())
    newer = write_file(
        tmp_path,
        "policy.yaml",
        "versions:\n  - version: v2\n    effective_from: 2027-01-01\n"
        "    fee: {amount_cents: 30000}\n",
    )
    again, parsed_again = load_file(engine, path, load_policy(newer))
    assert (again.inserted, again.updated, again.unchanged, again.rejected) == (0, 0, 40, 2)
    assert len(parsed_again.frame) == 40
    assert store.manifests(engine)["policy_version"].tolist()[-1] == "v2"
    mapped, parsed_mapped = load_file(
        engine, path, load_policy(newer), mapping=Path(config.__file__).with_name(DEFAULT_MAPPING)
    )
    assert (mapped.unchanged, len(parsed_mapped.frame)) == (40, 40)


def test_a_load_between_the_check_and_the_lock_cancels_the_repeat(
    engine: sa.Engine, tmp_path: Path
) -> None:
    policy = load_policy()
    path = write_file(tmp_path, "tickets.csv", TICKETS_CSV)
    first, parsed_first = load_file(engine, path, policy)

    def concurrent_load_then_hash() -> str:  # another writer gets in while the file is hashed
        store.load(engine, parsed("tickets", tickets_frame(3)), policy_version=first.table)
        return parsed_first.sha256

    repeat = store.repeat_load(
        engine,
        path,
        format="tickets",
        table="tickets",
        policy_version=policy.latest.version,
        sha256=concurrent_load_then_hash,
    )
    assert repeat is None
    assert len(store.manifests(engine)) == 2  # the first load and the concurrent one, no repeat


def export_line(i: int, version: int, *, bad: bool = False) -> str:
    """One tickets.csv record of ticket ``i`` as exported at ``version`` (later = newer)."""
    creator = "robot" if bad else "staff"
    return (
        f"RLD-{i:04d},IP change {i} v{version},Implementation,New,Alex Agent,{creator},ACCT-{i},"
        f"Jane Roe,jane@example.com,2026-11-16T09:{i % 60:02d}:00-06:00,"
        f"2026-11-16T12:{version:02d}:00-06:00,ip\n"
    )


EXPORT_HEADER = TICKETS_CSV.split("\n", 1)[0] + "\n"
EDITS = ("keep", "keep", "keep", "newer", "older", "drop", "twice", "rival", "bad", "blank", "torn")


def export_pair(n: int, edits: list[str], added: int, order: list[int]) -> tuple[str, str]:
    """An export of ``n`` tickets and a later one with ``edits`` (one per ticket), ``added``
    new tickets, and its records in ``order`` (a permutation of them)."""
    first = [export_line(i, 5) for i in range(n)]
    second: list[str] = []
    for i, edit in enumerate(edits):
        line = {
            "keep": first[i],
            "newer": export_line(i, 9),
            "older": export_line(i, 1),
            "drop": "",
            "twice": first[i] + first[i],
            "rival": first[i] + export_line(i, 7),  # the same key, another text
            "bad": export_line(i, 9, bad=True),
            "blank": "\n",  # the record gone, its line left blank
            "torn": f"RLD-{i:04d}\n",  # cut after its first field: one field, a reject
        }[edit]
        second.extend(line.splitlines(keepends=True))
    second += [export_line(n + j, 5) for j in range(added)]
    second = [second[k] for k in order if k < len(second)] + second[len(order) :]
    if second and second[-1].startswith("RLD-") and "," not in second[-1]:
        second[-1] = second[-1].rstrip("\n")  # a file torn off mid-record has no last line end
    return EXPORT_HEADER + "".join(first), EXPORT_HEADER + "".join(second)


def stored_tickets(engine: sa.Engine) -> pd.DataFrame:
    """The stored tickets as read back, in ticket order."""
    tickets = store.read_frames(engine)["tickets"]
    return tickets.sort_values("ticket_id", ignore_index=True)


def assert_same_reload(engine: sa.Engine, folder: Path, first: str, second: str) -> int:
    """Reload ``second`` after ``first`` into ``engine`` (``load_file``: it may parse only the
    records ``first`` did not have), and into a fresh SQLite file reading all of ``second``;
    assert the counts, rejects and stored tickets agree. Return the records not parsed."""
    policy = load_policy()
    a = write_file(folder, "first.csv", first)
    b = write_file(folder, "second.csv", second)
    reference = store.connect(f"sqlite:///{folder / 'reference.db'}")
    try:
        load_file(engine, a, policy)
        load_file(reference, a, policy)
        result, parsed_file = load_file(engine, b, policy)
        full = ingest.read_file(b, tz=policy.latest.timezone)
        expected = store.load(reference, full, policy_version=policy.latest.version)
        assert full.known is None
        assert asdict(result) | {"manifest_id": 0} == asdict(expected) | {"manifest_id": 0}
        shown = ["line", "column", "value", "reason"]
        assert (
            parsed_file.rejects[shown].to_numpy().tolist()
            == full.rejects[shown].to_numpy().tolist()
        )
        pd.testing.assert_frame_equal(stored_tickets(engine), stored_tickets(reference))
        again, _ = load_file(engine, b, policy)  # unchanged: recorded without parsing
        assert (again.inserted, again.updated) == (0, 0)
        return parsed_file.rows_known
    finally:
        reference.dispose()


@pytest.mark.parametrize(
    ("edits", "added", "known"),
    [
        (["keep"] * 9 + ["newer"], 1, 9),  # one changed, one new: only those two are parsed
        (["keep"] * 8 + ["older", "bad"], 0, 8),  # an older export does not overwrite
        (["keep"] * 8 + ["twice", "drop"], 0, 8),  # a repeated line: both copies parsed
        (["keep"] * 8 + ["rival", "keep"], 0, 0),  # a rival of a known record: read in full
        (["keep"] * 4 + ["newer"] * 6, 0, 0),  # mostly changed: read in full
        (["keep"] * 5 + ["newer"] * 5, 0, 5),  # half: the known half is not parsed
        (["torn", "blank"] + ["keep"] * 8, 0, 8),  # (reversed) a torn last record, blank before
        (["bad"] + ["keep"] * 8 + ["blank"], 0, 8),  # (reversed) a blank line after the header
    ],
)
def test_a_reload_parses_only_the_records_the_last_load_did_not_accept(
    engine: sa.Engine, tmp_path: Path, edits: list[str], added: int, known: int
) -> None:
    first, second = export_pair(len(edits), edits, added, list(range(len(edits) + added))[::-1])
    assert assert_same_reload(engine, tmp_path, first, second) == known


@given(
    st.lists(st.sampled_from(EDITS), min_size=1, max_size=25),
    st.integers(0, 4),
    st.randoms(use_true_random=False),
)
def test_a_reload_of_known_records_stores_what_a_full_read_stores(
    edits: list[str], added: int, rng: Any
) -> None:
    order = list(range(len(edits) * 2 + added))
    rng.shuffle(order)
    first, second = export_pair(len(edits), edits, added, order)
    with tempfile.TemporaryDirectory() as folder:
        engine = store.connect(f"sqlite:///{Path(folder) / 'delta.db'}")
        try:
            assert_same_reload(engine, Path(folder), first, second)
        finally:
            engine.dispose()


def test_a_load_after_the_read_makes_the_known_records_stale(
    engine: sa.Engine, tmp_path: Path
) -> None:
    policy = load_policy()
    first, second = export_pair(10, ["keep"] * 9 + ["newer"], 0, list(range(10)))
    load_file(engine, write_file(tmp_path, "first.csv", first), policy)
    previous = store.previous_records(
        engine, "tickets", format="tickets", policy_version=policy.latest.version
    )
    assert previous is not None
    parsed_second = ingest.read_file(write_file(tmp_path, "second.csv", second), previous=previous)
    assert parsed_second.rows_known == 9
    store.load(engine, parsed("tickets", tickets_frame(3)), policy_version="t")  # another writer
    before = table_rows(engine, "tickets")
    with pytest.raises(store.StaleRecords, match="loaded again"):
        store.load(engine, parsed_second, policy_version=policy.latest.version)
    assert table_rows(engine, "tickets") == before
    assert len(store.manifests(engine)) == 2


def test_a_newer_export_updates_only_the_changed_rows(engine: sa.Engine) -> None:
    old = tickets_frame(50)
    store.load(engine, parsed("tickets", old), policy_version="t")
    new = pd.concat([old, tickets_frame(3, prefix="NEW")], ignore_index=True)
    changed = [4, 17, 30]
    new.loc[changed, "status"] = "Closed (changed)"
    new.loc[changed, "updated_at"] = utc("2027-01-01 00:00:00")
    new.loc[40, "tags"] = "vip"  # no updated_at change needed: not older than the stored one
    result = store.load(engine, parsed("tickets", new), policy_version="t")
    assert asdict(result) | {"file": "", "manifest_id": 0} == {
        "file": "",
        "table": "tickets",
        "read": 53,
        "inserted": 3,
        "updated": 4,
        "unchanged": 46,
        "rejected": 0,
        "skipped": 0,
        "manifest_id": 0,
    }
    pd.testing.assert_frame_equal(store.read_frames(engine)["tickets"], expected("tickets", new))


def test_a_small_file_into_a_large_table_is_compared_by_ticket(engine: sa.Engine) -> None:
    big = tickets_frame(500)
    store.load(engine, parsed("tickets", big), policy_version="t")
    small = pd.concat([big.iloc[[3, 7]], tickets_frame(1, prefix="NEW")], ignore_index=True)
    small.loc[1, "owner"] = "Somebody New"
    result = store.load(engine, parsed("tickets", small), policy_version="t")
    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    stored = store.read_frames(engine)["tickets"]
    assert len(stored) == 501
    assert stored.set_index("ticket_id").loc[small.loc[1, "ticket_id"], "owner"] == "Somebody New"


def test_changed_event_intake_and_change_rows_are_updated(engine: sa.Engine) -> None:
    data = four_tables()
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")
    edits = {  # table: (column, {row: new value})
        "ticket_events": ("actor", {0: "Someone else", 5: ""}),
        "intake": ("ticket_number_given", {0: pd.NA, 1: True}),  # True -> NA, False -> True
        "changes": ("completed_at", {0: pd.NaT, 5: utc("2026-11-17 16:00:00.000001")}),
    }
    for table, (column, values) in edits.items():
        frame = data[table].copy()
        for row, value in values.items():
            frame.loc[row, column] = value
        result = store.load(engine, parsed(table, frame), policy_version="t")
        assert (result.inserted, result.updated, result.unchanged) == (0, 2, len(frame) - 2)
        pd.testing.assert_frame_equal(store.read_frames(engine)[table], expected(table, frame))
    # An event whose old/new value differ is another event (part of the natural key).
    moved = data["ticket_events"].iloc[:1].assign(new_value="Billing")
    result = store.load(engine, parsed("ticket_events", moved), policy_version="t")
    assert (result.inserted, result.updated) == (1, 0)


def test_a_stale_ticket_does_not_overwrite_a_newer_one(engine: sa.Engine) -> None:
    newer = typed(
        "tickets",
        [
            ticket("T-1", status="Closed", updated_at="2026-11-20 10:00:00"),
            ticket("T-2", status="Closed", updated_at="2026-11-20 10:00:00"),
            ticket("T-3", status="Closed", updated_at=None),
        ],
    )
    store.load(engine, parsed("tickets", newer), policy_version="t")
    older = typed(
        "tickets",
        [
            ticket("T-1", status="New", updated_at="2026-11-20 09:59:59.999999"),  # older
            ticket("T-2", status="Open", updated_at="2026-11-20 10:00:00"),  # same time: written
            ticket("T-3", status="Open", updated_at="2026-11-19 10:00:00"),  # stored has none
        ],
    )
    result = store.load(engine, parsed("tickets", older), policy_version="t")
    assert (result.inserted, result.updated, result.unchanged) == (0, 2, 1)
    stored = store.read_frames(engine)["tickets"].set_index("ticket_id")["status"]
    assert stored.to_dict() == {"T-1": "Closed", "T-2": "Open", "T-3": "Open"}
    # Reloading the stale file again still counts the stale row as unchanged.
    result = store.load(engine, parsed("tickets", older), policy_version="t")
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 3)


def test_duplicate_keys_in_one_file_are_refused(engine: sa.Engine) -> None:
    frame = typed("tickets", [ticket("T-1"), ticket("T-2"), ticket("T-1", status="Open")])
    with pytest.raises(InvalidInputError, match=r"duplicate key \(T-1\) on lines 2, 4") as info:
        store.load(engine, parsed("tickets", frame), policy_version="t")
    assert info.value.row == 4
    assert store.manifests(engine).empty


def test_counts_that_do_not_reconcile_are_refused(engine: sa.Engine) -> None:
    file = parsed("tickets", typed("tickets", [ticket("T-1")]))
    bad = Parsed(**{**asdict(file), "rows_read": 5})
    with pytest.raises(IpchangeError, match="read 5 rows but accepted 1"):
        store.load(engine, bad, policy_version="t")
    assert store.manifests(engine).empty


# --- rejects and manifests ----------------------------------------------------------------------


def test_rejects_and_manifests_are_recorded_once_per_file(engine: sa.Engine) -> None:
    frame = typed("intake", [{"ticket_id": "T-1", "received_at": "2026-11-16 15:00:00"}])
    bad = pd.DataFrame(
        {
            "file": ["intake.csv"] * 3,
            "line": [3, 3, 5],
            "column": ["channel", "current_ip", ""],
            "value": ["fax", "999.1.1.1", "a,b"],
            "reason": ["unknown channel", "invalid IP address", "malformed row"],
        }
    )
    # Two problems with one value are kept as one reject with both reasons.
    bad_twice = pd.concat([bad, bad.iloc[[0]].assign(reason="also this")], ignore_index=True)
    file = parsed("intake", frame, name="intake.csv", rejects=bad_twice, skipped=1)
    first = store.load(engine, file, policy_version="2026.1")
    second = store.load(engine, file, policy_version="2026.1")
    assert (first.read, first.inserted, first.rejected, first.skipped) == (4, 1, 2, 1)
    assert (second.inserted, second.unchanged, second.rejected) == (0, 1, 2)

    stored = store.rejects(engine)
    assert {n: str(d) for n, d in stored.dtypes.items()} == {
        "manifest_id": "int64",
        "file": "str",
        "line": "int64",
        "column": "str",
        "value": "str",
        "reason": "str",
        "ticket_id": "str",
    }
    joined = bad.assign(reason=["unknown channel; also this", *bad["reason"][1:]])
    assert stored[REJECT_COLUMNS].to_numpy().tolist() == joined.to_numpy().tolist()
    assert stored["ticket_id"].tolist() == ["", "", ""]  # a parse without keys: blank
    assert stored["manifest_id"].tolist() == [first.manifest_id] * 3
    pd.testing.assert_frame_equal(store.rejects(engine, second.manifest_id), stored)
    with pytest.raises(IpchangeError, match="no load manifest with id 999"):
        store.rejects(engine, 999)

    manifests = store.manifests(engine)
    assert manifests["id"].tolist() == [first.manifest_id, second.manifest_id]
    row = manifests.iloc[0].to_dict()
    assert {k: row[k] for k in ("file_name", "sha256", "format", "table", "policy_version")} == {
        "file_name": "intake.csv",
        "sha256": file.sha256,
        "format": "intake",
        "table": "intake",
        "policy_version": "2026.1",
    }
    assert [row[k] for k in ("rows_read", "inserted", "updated", "unchanged")] == [4, 1, 0, 0]
    assert [row[k] for k in ("rejected", "skipped")] == [2, 1]
    assert str(manifests["loaded_at"].dtype) == schema.TIMESTAMP_DTYPE


# --- transactions -------------------------------------------------------------------------------


def indexes(engine: sa.Engine, table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(engine).get_indexes(table)}


@pytest.mark.parametrize("preload", [False, True], ids=["into-empty", "into-filled"])
def test_a_failing_load_leaves_no_trace(engine: sa.Engine, preload: bool) -> None:
    if preload:
        store.load(engine, parsed("tickets", tickets_frame(20, prefix="OLD")), policy_version="t")
    before = {
        table: table_rows(engine, table) for table in ("tickets", "load_manifests", "rejects")
    }
    names = indexes(engine, "tickets")
    frame = tickets_frame(2000, prefix="NEW")
    # A row the database itself refuses (created_at is NOT NULL), after many good ones.
    frame.loc[1999, "created_at"] = pd.NaT
    bad = pd.DataFrame(
        {"file": ["x"], "line": [5000], "column": ["status"], "value": ["?"], "reason": ["r"]}
    )
    with pytest.raises(IpchangeError, match="refused the load, nothing was written"):
        store.load(engine, parsed("tickets", frame, rejects=bad), policy_version="t")
    after = {table: table_rows(engine, table) for table in ("tickets", "load_manifests", "rejects")}
    assert after == before
    assert indexes(engine, "tickets") == names
    # The database is still usable, and the good rows load once the bad one is fixed.
    frame.loc[1999, "created_at"] = utc("2026-11-16 16:00:00")
    result = store.load(engine, parsed("tickets", frame), policy_version="t")
    assert result.inserted == 2000
