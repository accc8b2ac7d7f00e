"""ipchange_core.pipeline: load_file's hashing of a file, and the load report."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from ipchange_core import digest as digest_module
from ipchange_core import ingest, pipeline, store
from ipchange_core.digest import FileDigest
from ipchange_core.ingest import kayako_xml, tabular
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from ipchange_core.store import sqlite as store_sqlite
from tests.store.test_read import TWO_VERSIONS, requests_indexes

FIXTURES = Path(__file__).parent / "fixtures"
HEADER = "ticket_id,subject,department,status,creator,created_at,updated_at\n"


def tickets_csv(n: int, status: str = "New", *, changed: int = 0) -> str:
    """``n`` tickets; the first ``changed`` of them with ``status`` and a later updated_at."""
    return HEADER + "".join(
        f"PIP-{i:04d},IP change {i},Implementation,{status if i < changed else 'New'},staff,"
        f"2026-11-16T09:{i % 60:02d}:00-06:00,"
        f"2026-11-16T{12 + (i < changed)}:00:00-06:00\n"
        for i in range(n)
    )


def reexported(engine: sa.Engine, tmp_path: Path) -> Path:
    """tickets.csv loaded once, then rewritten as a later export with 3 tickets changed."""
    path = tmp_path / "tickets.csv"
    path.write_text(tickets_csv(30))
    load_file(engine, path, load_policy())
    path.write_text(tickets_csv(30, "Closed", changed=3))  # a later export: not a repeat
    return path


@pytest.mark.parametrize("started", [False, True], ids=["hashed-when-needed", "started-early"])
def test_a_reload_hashes_the_file_once(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: bool
) -> None:
    """The repeat check hashes the file (or takes the digest started early, as the CLI does);
    the read takes that digest instead of hashing it."""
    policy = load_policy()
    path = reexported(engine, tmp_path)
    digests: list[str] = []
    real = hashlib.sha256

    def counted(*args: Any) -> Any:
        digests.append("")
        return real(*args)

    for module in (tabular, digest_module):
        monkeypatch.setattr(module, "hashlib", SimpleNamespace(sha256=counted))
    early = FileDigest.start_all([path])[0] if started else None
    result, parsed = load_file(engine, path, policy, digest=early)
    monkeypatch.undo()
    assert len(digests) == 1
    assert parsed.sha256 == real(path.read_bytes()).hexdigest()
    assert store.manifests(engine)["sha256"].tolist()[-1] == parsed.sha256
    assert (result.updated, result.unchanged, parsed.rows_known) == (3, 27, 27)


@pytest.mark.parametrize("name", ["kayako-audit.csv", "kayako-report.csv", "kayako-tickets.xml"])
def test_a_kayako_export_started_early_is_hashed_once(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """The read of a Kayako export takes the digest the CLI started, as a canonical CSV's does
    (the XML stream then only parses the bytes it reads)."""
    path = tmp_path / name
    path.write_bytes((FIXTURES / name).read_bytes())
    digests: list[str] = []
    real = hashlib.sha256

    def counted(*args: Any) -> Any:
        digests.append("")
        return real(*args)

    for module in (tabular, digest_module, kayako_xml):
        monkeypatch.setattr(module, "hashlib", SimpleNamespace(sha256=counted))
    _, parsed = load_file(engine, path, load_policy(), digest=FileDigest.start_all([path])[0])
    monkeypatch.undo()
    assert len(digests) == 1
    assert parsed.sha256 == real(path.read_bytes()).hexdigest()
    assert store.manifests(engine)["sha256"].tolist() == [parsed.sha256]


def test_a_digest_of_another_file_is_refused(engine: sa.Engine, tmp_path: Path) -> None:
    path, other = tmp_path / "tickets.csv", tmp_path / "other.csv"
    path.write_text(tickets_csv(3))
    other.write_text(tickets_csv(4))
    with pytest.raises(ValueError, match=r"other\.csv"):
        load_file(engine, path, load_policy(), digest=FileDigest(other))
    assert store.manifests(engine).empty  # nothing was loaded


def test_a_file_changed_while_it_is_read_is_read_again(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digest of the repeat check is not taken for bytes that changed since."""
    policy = load_policy()
    path = reexported(engine, tmp_path)
    final = tickets_csv(31, "Open", changed=5)  # what the exporter writes meanwhile
    real_read = pipeline.read_file
    reads: list[str | None] = []

    def read_then_rewrite(*args: Any, **kwargs: Any) -> ingest.ParsedFile:
        reads.append(kwargs.get("sha256"))
        parsed = real_read(*args, **kwargs)
        if len(reads) == 1:
            path.write_text(final)
        return parsed

    monkeypatch.setattr(pipeline, "read_file", read_then_rewrite)
    result, parsed = load_file(engine, path, policy)
    assert reads[0] is not None and reads[1:] == [None]  # the second read hashes what it reads
    assert parsed.sha256 == hashlib.sha256(final.encode()).hexdigest()
    assert (result.read, result.inserted, result.updated) == (31, 1, 5)
    assert set(store.read_frames(engine)["tickets"]["status"]) == {"Open", "New"}


def test_a_kayako_xml_changed_while_it_is_streamed_is_read_again(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The early digest is not taken for an XML export rewritten during its read: it is read
    again, and the first read's spilled rows are deleted."""
    path = tmp_path / "kayako-tickets.xml"
    original = (FIXTURES / "kayako-tickets.xml").read_text()
    path.write_text(original)
    final = original.replace("<subject>", "<subject>Re: ")
    assert final != original
    real_read = pipeline.read_file
    reads: list[ingest.ParsedFile] = []

    def read_then_rewrite(*args: Any, **kwargs: Any) -> ingest.ParsedFile:
        parsed = real_read(*args, **kwargs)
        reads.append(parsed)
        if len(reads) == 1:
            assert kwargs["sha256"] is not None and parsed.spill is not None
            path.write_text(final)
        return parsed

    monkeypatch.setattr(pipeline, "read_file", read_then_rewrite)
    early = FileDigest.start_all([path])[0]
    early()
    _, parsed = load_file(engine, path, load_policy(), digest=early)
    assert len(reads) == 2
    assert reads[0].spill is not None and not Path(reads[0].spill.folder.name).exists()
    assert parsed.sha256 == hashlib.sha256(final.encode()).hexdigest()
    subjects = store.read_frames(engine)["tickets"]["subject"]
    assert len(subjects) > 0 and subjects.str.startswith("Re: ").all()


def test_a_tickets_load_keeps_the_index_of_its_policy(sqlite_url: str, tmp_path: Path) -> None:
    """SQLite: after a load into tickets, the index of the load's policy, and only that one."""
    engine = store.connect(sqlite_url)
    load_file(engine, FIXTURES / "intake.csv", load_policy())
    assert requests_indexes(engine) == []  # not a tickets load
    load_file(engine, FIXTURES / "tickets.csv", load_policy())
    assert requests_indexes(engine) == [store_sqlite.requests_index(load_policy())[0]]
    load_file(engine, FIXTURES / "tickets.csv", TWO_VERSIONS)
    assert requests_indexes(engine) == [store_sqlite.requests_index(TWO_VERSIONS)[0]]
    engine.dispose()


# --- the load report: this load's rejects only, with the ticket id ------------------------------


def _rejects_csv(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.rejects.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_load_replaces_its_rejects_csv_and_a_clean_one_leaves_none(
    engine: sa.Engine, tmp_path: Path
) -> None:
    from ipchange_core.pipeline import write_load_report

    folder = tmp_path / "loads"
    path = tmp_path / "tickets.csv"
    rows = tickets_csv(4).splitlines(keepends=True)
    bad = [*rows[:2], rows[2].replace(",staff,", ",robot,"), rows[3].replace("-06:00,", "x,")]
    path.write_text("".join(bad + rows[4:]))
    result, parsed = load_file(engine, path, load_policy())
    assert write_load_report(folder, parsed, result) == folder / "tickets.csv.rejects.csv"
    first = _rejects_csv(folder, "tickets.csv")
    assert [(r["line"], r["column"], r["ticket_id"]) for r in first] == [
        ("3", "creator", "PIP-0001"),
        ("4", "created_at", "PIP-0002"),
    ]
    assert list(first[0]) == list(ingest.REJECT_COLUMNS)  # ticket_id appended last
    path.write_text("".join([*rows[:3], rows[3].replace("-06:00,", "x,"), *rows[4:]]))
    result, parsed = load_file(engine, path, load_policy())
    write_load_report(folder, parsed, result)
    assert [r["ticket_id"] for r in _rejects_csv(folder, "tickets.csv")] == ["PIP-0002"]
    path.write_text(tickets_csv(4))  # fixed: a clean reload
    result, parsed = load_file(engine, path, load_policy())
    assert write_load_report(folder, parsed, result) is None
    assert not (folder / "tickets.csv.rejects.csv").exists()
    assert (folder / "tickets.csv.load.json").read_text().count('"rejected": 0') == 1
    stored = store.rejects(engine)
    assert set(stored["ticket_id"]) == {"PIP-0001", "PIP-0002"}  # the table keeps history


def test_a_repeated_file_reports_its_stored_rejects_with_ticket_ids(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "kayako-report.csv"
    path.write_bytes((FIXTURES / "kayako-report.csv").read_bytes())
    _, first = load_file(engine, path, load_policy())
    _, again = load_file(engine, path, load_policy())  # same bytes: not parsed again
    assert "not parsed again" in again.notes[0]
    assert again.rejects["ticket_id"].tolist() == first.rejects["ticket_id"].tolist()
    assert first.rejects["ticket_id"].tolist() == ["ABC-123-45682"]
