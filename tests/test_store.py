"""Tests of ipchange_core.store and ipchange_core.config: loads, reads, ledger, database URLs.

Every test runs against real databases: a SQLite file in the test's temporary folder and a
PostgreSQL schema of its own (dropped afterwards) in the server named by IPCHANGE_TEST_PG_URL.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ipchange_core import config, ingest, schema, store
from ipchange_core.errors import InvalidInputError, IpchangeError
from ipchange_core.ingest.kayako_report import DEFAULT_MAPPING
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from ipchange_core.records import RecordHashes

UTC = "UTC"
KEYS = {
    "tickets": ["ticket_id"],
    "ticket_events": ["ticket_id", "at", "field", "old_value", "new_value"],
    "intake": ["ticket_id"],
    "changes": ["ticket_id"],
}
REJECT_COLUMNS = ["file", "line", "column", "value", "reason"]


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What ingest.ParsedFile carries (store.load accepts any object shaped like it)."""

    path: Path
    format: str
    table: str
    frame: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    rows_skipped: int
    sha256: str
    encoding: str = "utf-8"
    records: RecordHashes | None = None
    known: RecordHashes | None = None


def parsed(
    table: str,
    frame: pd.DataFrame,
    *,
    name: str | None = None,
    rejects: pd.DataFrame | None = None,
    skipped: int = 0,
) -> Parsed:
    """A parsed file of ``frame``; its sha256 follows its name and content."""
    frame = frame.reset_index(drop=True)
    if "source_line" not in frame.columns:
        frame = frame.assign(source_line=np.arange(2, len(frame) + 2, dtype="int64"))
    if rejects is None:
        rejects = pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "line" else "str") for c in REJECT_COLUMNS}
        )
    digest = hashlib.sha256(
        (name or "").encode() + pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    ).hexdigest()
    return Parsed(
        path=Path(name or f"{table}-{digest[:8]}.csv"),
        format=table,
        table=table,
        frame=frame,
        rejects=rejects,
        rows_read=len(frame) + rejects["line"].nunique() + skipped,
        rows_skipped=skipped,
        sha256=digest,
    )


def utc(text: str | None) -> pd.Timestamp:
    return pd.NaT if text is None else pd.Timestamp(text, tz=UTC).as_unit("us")


def typed(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A typed canonical frame from dicts (missing text = "", instants given as UTC strings)."""
    dtypes = schema.typed_dtypes(table)
    data = {}
    for name, dtype in dtypes.items():
        values = [row.get(name) for row in rows]
        if dtype == schema.TIMESTAMP_DTYPE:
            values = [utc(v) if v is None or isinstance(v, str) else v for v in values]
        elif dtype == "str":
            values = ["" if v is None else v for v in values]
        elif dtype == "bool":
            values = [bool(v) for v in values]
        data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data) if rows else schema.empty_frame(table)


def ticket(ticket_id: str, **values: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "subject": "IP change",
        "department": "Implementation",
        "status": "New",
        "creator": "staff",
        "created_at": "2026-11-16 16:00:00",
        **values,
    }


def tickets_frame(n: int, prefix: str = "KXP", seed: int = 0) -> pd.DataFrame:
    """``n`` realistic typed ticket rows with ids ``<prefix>-<number>``."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz=UTC).as_unit("us")
    created = start + pd.to_timedelta(rng.integers(0, 300 * 86_400_000_000, n), unit="us")
    updated = pd.Series(created + pd.Timedelta(hours=5)).where(rng.random(n) > 0.2)
    frame = pd.DataFrame(
        {
            "ticket_id": [f"{prefix}-{i:07d}" for i in range(n)],
            "subject": [f"IP change for site {i % 977} – café" for i in range(n)],
            "department": np.where(rng.random(n) > 0.3, "Implementation", "Customer Service"),
            "status": np.where(rng.random(n) > 0.5, "New", "Closed"),
            "owner": np.where(rng.random(n) > 0.5, "Alex Agent", ""),
            "creator": np.where(rng.random(n) > 0.5, "staff", "user"),
            "account": [f"ACCT-{i % 5000:05d}" for i in range(n)],
            "requester_name": [f"Person {i % 7919}" for i in range(n)],
            "requester_email": [f"p{i % 7919}@example.com" for i in range(n)],
            "created_at": created,
            "updated_at": updated,
            "tags": np.where(rng.random(n) > 0.7, "ip,urgent", ""),
            "ticket_type": np.where(rng.random(n) > 0.5, "IP Change", ""),
        }
    )
    return frame.astype(schema.typed_dtypes("tickets"))


def expected(table: str, *frames: pd.DataFrame) -> pd.DataFrame:
    """What read_frames returns for these loaded frames: schema columns, sorted by key."""
    frame = pd.concat(frames, ignore_index=True)[list(schema.typed_dtypes(table))]
    return frame.sort_values(KEYS[table], ignore_index=True)


def assert_typed(frames: dict[str, pd.DataFrame]) -> None:
    assert list(frames) == list(schema.TABLES)
    for table, frame in frames.items():
        dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
        assert dtypes == schema.typed_dtypes(table), table
        assert isinstance(frame.index, pd.RangeIndex)
        for name, dtype in dtypes.items():
            if dtype == "str":
                assert not frame[name].isna().any(), f"{table}.{name} has NA text"


def table_rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    """Every stored row of a table, bookkeeping columns included, in id order."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]


# --- databases ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test twice: on a SQLite file, and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_schema_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    engine = store.connect(db_url)
    yield engine
    engine.dispose()


# --- models -------------------------------------------------------------------------------------


def test_models_mirror_the_canonical_schema() -> None:
    for table in schema.TABLES:
        columns = [c.name for c in store.Base.metadata.tables[table].columns]
        assert columns == ["id", *schema.typed_dtypes(table), "key_hash", "row_hash"], table
    ledger = store.Base.metadata.tables["fee_ledger"]
    assert isinstance(ledger.c.amount_cents.type, sa.Integer)


def test_sqlite_connection_settings(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}
    engine.dispose()


def test_connected_closes_its_connections_when_the_block_raises(sqlite_url: str) -> None:
    wal = Path(sqlite_url.removeprefix("sqlite:///") + "-wal")
    with pytest.raises(RuntimeError), store.connected(sqlite_url) as engine:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar_one() == 0
        assert wal.exists() and engine.pool.checkedin() == 1  # pooled, the database open
        raise RuntimeError("the block failed")
    assert engine.pool.checkedin() == 0
    assert not wal.exists()  # the last connection closed: SQLite removed its log


def test_sqlite_writers_queue_and_readers_are_not_blocked(sqlite_url: str) -> None:
    first, second = store.connect(sqlite_url), store.connect(sqlite_url)
    store.load(first, parsed("tickets", typed("tickets", [ticket("A-1")])), policy_version="t")
    with first.begin() as conn:  # BEGIN IMMEDIATE: holds the write lock until the block ends
        conn.exec_driver_sql("UPDATE tickets SET status = 'Open'")
        # A read in another connection sees the last committed state, without waiting.
        assert store.read_frames(second)["tickets"]["status"].tolist() == ["New"]
        with second.connect() as other:
            # (on the driver connection: through SQLAlchemy, the PRAGMA would begin a write)
            other.connection.driver_connection.execute("PRAGMA busy_timeout = 100")
            with pytest.raises(sa.exc.OperationalError, match="locked"), other.begin():
                pass  # a second writer cannot even begin while the first one writes
    assert store.read_frames(second)["tickets"]["status"].tolist() == ["Open"]
    first.dispose()
    second.dispose()


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
    fixture = Path(__file__).parent / "fixtures" / "tickets.csv"
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
        engine, path, load_policy(newer), mapping=Path(store.__file__).with_name(DEFAULT_MAPPING)
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
EDITS = ("keep", "keep", "keep", "newer", "older", "drop", "twice", "rival", "bad")


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
        }[edit]
        second.extend(line.splitlines(keepends=True))
    second += [export_line(n + j, 5) for j in range(added)]
    second = [second[k] for k in order if k < len(second)] + second[len(order) :]
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


def test_distinct_and_repeated_text_hash_and_bind_alike() -> None:
    """Text columns whose values are (nearly) all distinct are hashed and bound a block at a
    time, others once per distinct value: a row gets the same hashes and bound values either
    way (stored hashes decide what a reload changes)."""
    distinct = tickets_frame(300)
    repeated = pd.concat([distinct, distinct], ignore_index=True)
    one = store._batch(store._conform(distinct, "tickets", "a.csv"), "tickets")
    two = store._batch(store._conform(repeated, "tickets", "b.csv"), "tickets")
    assert "ticket_id" not in one.text and "ticket_id" in two.text  # the two ways
    assert two.key_hash[:300].tolist() == one.key_hash.tolist()
    assert two.row_hash[:300].tolist() == one.row_hash.tolist()
    assert len(set(one.key_hash.tolist())) == 300
    rows = np.arange(0, 300, 7)
    assert two.sqlite_rows(rows).tolist() == one.sqlite_rows(rows).tolist()
    assert sorted(one.ticket_ids()) == sorted(distinct["ticket_id"])


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


@pytest.mark.parametrize("block", [1, 7, 50])
def test_rows_sent_in_several_copy_blocks_all_arrive(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """PostgreSQL takes the rows in COPY blocks written one ahead by a worker (SQLite: as is)."""
    monkeypatch.setattr(store, "_PG_COPY_ROWS", block)
    old = tickets_frame(50)
    first = store.load(engine, parsed("tickets", old), policy_version="t")  # into the empty table
    new = pd.concat([old, tickets_frame(9, prefix="NEW")], ignore_index=True)
    new.loc[[0, 13, 49], "status"] = "Closed (changed)"
    second = store.load(engine, parsed("tickets", new), policy_version="t")  # staged and merged
    assert (first.inserted, second.inserted, second.updated, second.unchanged) == (50, 9, 3, 47)
    pd.testing.assert_frame_equal(store.read_frames(engine)["tickets"], expected("tickets", new))


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
    }
    joined = bad.assign(reason=["unknown channel; also this", *bad["reason"][1:]])
    assert stored[REJECT_COLUMNS].to_numpy().tolist() == joined.to_numpy().tolist()
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


# --- fee ledger ---------------------------------------------------------------------------------


def fees(*amounts: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ticket_id": [f"T-{i}" for i in range(len(amounts))],
            "fee_status": ["billable"] * len(amounts),
            "amount_cents": list(amounts),
        }
    )


def test_an_exported_fee_is_never_updated_or_deleted(engine: sa.Engine) -> None:
    exported, pending = store.append_fees(engine, fees(25_000, 25_000), policy_version="2026.1")
    batch = store.record_export(engine, [exported], period="2026-11", format="csv", sha256="ab")
    statements = [
        f"UPDATE fee_ledger SET amount_cents = 0 WHERE id = {exported}",
        f"UPDATE fee_ledger SET export_batch_id = NULL WHERE id = {exported}",
        f"DELETE FROM fee_ledger WHERE id = {exported}",
        f"UPDATE export_batches SET total_cents = 0 WHERE id = {batch}",
        f"DELETE FROM export_batches WHERE id = {batch}",
    ]
    if engine.dialect.name == "postgresql":
        statements += ["TRUNCATE fee_ledger", "TRUNCATE export_batches CASCADE"]
    for statement in statements:
        with pytest.raises(sa.exc.DBAPIError, match="never"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    # Rows not yet exported are not frozen.
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE fee_ledger SET amount_cents = 100 WHERE id = {pending}")
    # The ORM refuses too, with the package's own error.
    with Session(engine) as session:
        row = session.get(store.FeeLedger, exported)
        row.amount_cents = 1
        with pytest.raises(IpchangeError, match="never updated or deleted"):
            session.flush()
        session.rollback()
        session.delete(session.get(store.FeeLedger, exported))
        with pytest.raises(IpchangeError, match="never updated or deleted"):
            session.flush()
    ledger = store.fee_ledger(engine)
    assert ledger.set_index("id")["amount_cents"].to_dict() == {exported: 25_000, pending: 100}
    assert ledger["export_batch_id"].tolist() == [batch, pd.NA]


def test_a_fee_is_never_exported_twice(engine: sa.Engine) -> None:
    ids = store.append_fees(engine, fees(25_000, 25_000, 0), policy_version="2026.1")
    batch = store.record_export(engine, ids[:2], period="2026-11", format="xlsx", sha256="cd")
    with pytest.raises(IpchangeError, match="already exported in batch"):
        store.record_export(engine, ids, period="2026-11", format="xlsx", sha256="ef")
    with pytest.raises(IpchangeError, match="no fee_ledger rows"):
        store.record_export(engine, [9999], period="2026-11", format="xlsx", sha256="ef")
    with engine.connect() as conn:
        batches = conn.execute(sa.text("SELECT id, rows, total_cents FROM export_batches")).all()
    assert [tuple(b) for b in batches] == [(batch, 2, 50_000)]


def test_corrections_are_new_rows_that_net_out(engine: sa.Engine) -> None:
    (original,) = store.append_fees(engine, fees(25_000), policy_version="2026.1")
    store.record_export(engine, [original], period="2026-11", format="csv", sha256="ab")
    reversal, corrected = store.correct_fee(
        engine, original, amount_cents=0, fee_status="waived", policy_version="2026.2"
    )
    ledger = store.fee_ledger(engine).set_index("id")
    assert ledger.loc[original, "amount_cents"] == 25_000  # the exported row is untouched
    assert ledger.loc[reversal, ["amount_cents", "reverses_id"]].tolist() == [-25_000, original]
    assert ledger.loc[corrected, ["amount_cents", "fee_status"]].tolist() == [0, "waived"]
    assert ledger["amount_cents"].sum() == 0
    assert ledger.loc[[reversal, corrected], "export_batch_id"].isna().all()  # next export
    assert str(ledger["computed_at"].dtype) == schema.TIMESTAMP_DTYPE
    with pytest.raises(IpchangeError, match="already reversed"):
        store.correct_fee(engine, original, amount_cents=1, fee_status="x", policy_version="v")
    with pytest.raises(IpchangeError, match="is a reversal"):
        store.correct_fee(engine, reversal, amount_cents=1, fee_status="x", policy_version="v")


# --- reading a period ---------------------------------------------------------------------------

START, END = utc("2026-11-16 06:00:00"), utc("2026-11-23 06:00:00")  # ISO week 47, Central


def period_data() -> dict[str, pd.DataFrame]:
    inside, before, after = "2026-11-18 12:00:00", "2026-11-10 12:00:00", "2026-11-25 12:00:00"
    cases = {  # ticket created_at, intake received_at (None = no such row)
        "both-inside": (inside, inside),
        "ticket-before": (before, inside),  # received = ticket's created_at: before the week
        "intake-before": (inside, before),
        "ticket-only": (inside, None),
        "intake-only": (None, inside),
        "at-start": ("2026-11-16 06:00:00", None),  # half-open: the start is in
        "at-end": ("2026-11-23 06:00:00", None),  # ... and the end is out
        "ticket-after": (after, inside),  # received = the intake, inside
        "both-after": (after, after),
        "intake-only-before": (None, before),
        "one-µs-before": ("2026-11-16 05:59:59.999999", "2026-11-17 00:00:00"),
    }
    tickets, intake, events, changes = [], [], [], []
    for name, (created, received) in cases.items():
        if created:
            tickets.append(ticket(name, created_at=created))
        if received:
            intake.append({"ticket_id": name, "received_at": received, "channel": "phone"})
        events.append({"ticket_id": name, "at": inside, "field": "status", "new_value": "Open"})
        changes.append({"ticket_id": name, "completed_at": after})
    return {
        "tickets": typed("tickets", tickets),
        "ticket_events": typed("ticket_events", events),
        "intake": typed("intake", intake),
        "changes": typed("changes", changes),
    }


def test_read_frames_selects_requests_by_their_earliest_time(engine: sa.Engine) -> None:
    data = period_data()
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")
    frames = store.read_frames(engine, START, END)
    assert_typed(frames)
    wanted = ["at-start", "both-inside", "intake-only", "ticket-after", "ticket-only"]
    for table, frame in frames.items():
        everything = data[table]
        pd.testing.assert_frame_equal(
            frame, expected(table, everything[everything["ticket_id"].isin(wanted)])
        )
    assert sorted(frames["changes"]["ticket_id"]) == wanted

    open_end = store.read_frames(engine, start=END)
    assert sorted(open_end["changes"]["ticket_id"]) == ["at-end", "both-after"]
    open_start = store.read_frames(engine, end=START)
    assert sorted(open_start["changes"]["ticket_id"]) == [
        "intake-before",
        "intake-only-before",
        "one-µs-before",
        "ticket-before",
    ]
    everything = store.read_frames(engine)
    assert len(everything["changes"]) == len(data["changes"])
    central = START.tz_convert("America/Chicago")  # any zone: it is the instant that counts
    assert sorted(store.read_frames(engine, central, END)["changes"]["ticket_id"]) == wanted
    # Nanosecond bounds: stored instants are whole µs, so 1 ns after START excludes START.
    later = store.read_frames(engine, START + pd.Timedelta(1, "ns"), END)
    assert "at-start" not in set(later["changes"]["ticket_id"])


def test_read_frames_of_an_empty_database_is_typed(engine: sa.Engine) -> None:
    frames = store.read_frames(engine, START, END)
    assert_typed(frames)
    assert all(frame.empty for frame in frames.values())


def test_read_frames_refuses_naive_or_reversed_periods(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.read_frames(engine, pd.Timestamp("2026-11-16"), END)
    with pytest.raises(ValueError, match="precedes"):
        store.read_frames(engine, END, START)


def test_read_frames_filters_in_sql(sqlite_url: str) -> None:
    engine = store.connect(sqlite_url)
    data = period_data()
    for table, frame in data.items():
        store.load(engine, parsed(table, frame), policy_version="t")
    store.read_frames(engine, START, END)
    with engine.connect() as conn:
        query = sa.union(*store._period_parts(store._utc(START, "start"), store._utc(END, "end")))
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plans = [r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")]
    assert any("USING INDEX ix_tickets_created_at" in p for p in plans), plans
    assert any("USING INDEX ix_intake_received_at" in p for p in plans), plans
    engine.dispose()


# --- database URLs ------------------------------------------------------------------------------


def test_default_database_is_the_sqlite_file_in_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(config.DB_URL_ENV, raising=False)
    assert config.DEFAULT_DB_PATH == config.PROJECT_ROOT / "data" / "ipchange.db"
    assert config.DEFAULT_DB_PATH.is_absolute()
    assert (config.PROJECT_ROOT / "pyproject.toml").is_file()  # running from the checkout
    assert config.database_url(None) == f"sqlite:///{config.DEFAULT_DB_PATH.as_posix()}"
    assert config.database_url("") == config.database_url(None)


def test_relative_sqlite_paths_become_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(config.DB_URL_ENV, "sqlite:///from-env.db")
    assert config.database_url(None) == f"sqlite:///{(tmp_path / 'from-env.db').as_posix()}"
    # --db wins over the environment; a bare path means a SQLite file.
    assert config.database_url("sub/../x.db") == f"sqlite:///{(tmp_path / 'x.db').as_posix()}"
    assert config.database_url("sqlite:////abs/y.db") == "sqlite:////abs/y.db"
    assert config.database_url("sqlite://") == "sqlite://"
    pg = "postgresql+psycopg://user:secret@db.example:5432/ipchange"
    assert config.database_url(pg) == pg
    assert config.display_url(pg) == "postgresql+psycopg://user:***@db.example:5432/ipchange"
    with pytest.raises(IpchangeError, match="not a valid database URL"):
        config.database_url("not a scheme://x")


def test_connect_resolves_relative_paths_and_never_guesses_a_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    engine = store.connect("sqlite:///here.db")
    assert engine.url.database == (tmp_path / "here.db").as_posix()
    engine.dispose()
    assert (tmp_path / "here.db").is_file()
    with pytest.raises(IpchangeError, match="no folder"):
        store.connect("sqlite:///missing/there.db")
    assert not (tmp_path / "missing").exists()
    with pytest.raises(IpchangeError, match="unsupported database"):
        store.connect("mysql://localhost/x")


def test_postgresql_urls(pg_schema_url: str) -> None:
    plain = store.connect(pg_schema_url.replace("postgresql+psycopg://", "postgresql://", 1))
    assert plain.dialect.driver == "psycopg"
    plain.dispose()
    with pytest.raises(
        IpchangeError, match=r"cannot open the database postgresql\+psycopg://u:\*\*\*@"
    ):
        store.connect("postgresql+psycopg://u:secret@127.0.0.1:1/nothing")
