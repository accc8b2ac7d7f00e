"""Fuzzed input for every format (issue #6): `ipchange ingest` ends 0, 1 or 2, never a traceback.

Each example starts from valid seed rows of one input format (a small demo data set, the Kayako
report built from its tickets), mutates them — random cells, DST-edge times, enormous fields,
thousands of columns, dropped or shuffled columns, ragged rows, wrong delimiters, stray quotes,
truncation, NUL bytes, other encodings, flipped bytes — or is pure random bytes, and drives the
real command in-process against a real database that already holds the seed data. For every
example:

* the exit code is 0, 1 or 2 and nothing escapes as a traceback;
* exit 2: the message names the file, and the database is unchanged (SQLite: byte for byte);
* exit 0/1: the printed counts reconcile (read = inserted + updated + unchanged + rejected +
  skipped), match the parse, the manifest and the stored rejects; every rejected line is in
  ``<file>.rejects.csv`` with file, line, column and reason; every accepted row is in the
  database with its values (rows lost 0).

``make test`` runs a small deterministic slice (the ``default`` profile of conftest.py);
``make fuzz`` runs the ``fuzz`` profile again and again for FUZZ_SECONDS and prints the inputs
tried per format.
"""

from __future__ import annotations

import atexit
import csv
import datetime as dt
import io
import os
import re
import shutil
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from ipchange_core import store
from ipchange_core.billing import reproducible_xlsx
from ipchange_core.cli import main
from ipchange_core.demo import generate
from ipchange_core.ingest import read_file
from ipchange_core.ingest.kayako_report import load_mapping
from ipchange_core.ingest.kayako_xml import XML_SOURCE
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from ipchange_core.schema import NATURAL_KEYS, SOURCE_LINE, TABLES

pytestmark = pytest.mark.fuzz

CT = ZoneInfo("America/Chicago")
UTC = dt.UTC
FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS") or 0)
"""``make fuzz``: seconds of fuzzing shared by the fuzz tests; 0 (``make test``): one run each."""

SUPPRESS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
    HealthCheck.function_scoped_fixture,
]

# --- seeds --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """Valid rows of one input format: a header and text cells, and how its times are written."""

    name: str  # file name to write
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    times: dict[str, str] = field(default_factory=dict)  # column -> iso | report | epoch
    xml: bool = False
    xlsx: bool = False


CANONICAL_FILES = {
    "tickets": "tickets.csv",
    "ticket_events": "ticket_events.csv",
    "intake": "intake.csv",
    "changes": "changes.csv",
}


@cache
def seed_dir() -> Path:
    """A small demo data set ending just after the March 2026 DST change, generated once."""
    out = Path(tempfile.mkdtemp(prefix="ipchange-fuzz-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    generate(
        out,
        requests=6,
        other_tickets=6,
        months=1,
        seed=11,
        end=dt.date(2026, 3, 12),
        bad_rows=False,
    )
    return out


def _csv_rows(path: Path) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [tuple(r) for r in csv.reader(handle)]
    return rows[0], tuple(rows[1:])


def kayako_text(wall: dt.datetime) -> str:
    """A wall-clock time as Kayako's report export writes it: ``m/d/yyyy h:mm:ss`` (FORMATS.md 5)."""
    return f"{wall.month}/{wall.day}/{wall.year} {wall.hour}:{wall.minute:02}:{wall.second:02}"


def _report_seed() -> Seed:
    """The demo tickets as a Kayako report CSV: mapping labels, local ``3/8/2026 9:05:00``."""
    mapping = load_mapping()
    header, rows = _csv_rows(seed_dir() / "tickets.csv")
    fields = [f for f in header if f in mapping.columns]
    labels = tuple(mapping.columns[f][0] for f in fields)
    out = []
    for row in rows:
        values = dict(zip(header, row, strict=True))
        for name in ("created_at", "updated_at"):
            if values[name]:
                local = dt.datetime.fromisoformat(values[name]).astimezone(CT)
                values[name] = kayako_text(local)
        out.append(tuple(values[f] for f in fields))
    times = {mapping.columns[f][0]: "report" for f in ("created_at", "updated_at")}
    return Seed("kayako-report.csv", labels, tuple(out), times)


def _xml_seed() -> Seed:
    root = ET.parse(seed_dir() / "kayako-tickets.xml").getroot()
    tags = tuple(dict.fromkeys(child.tag for ticket in root for child in ticket))
    rows = tuple(
        tuple((ticket.findtext(tag) or "") for tag in tags) for ticket in root.iter("ticket")
    )
    times = {XML_SOURCE["created_at"]: "epoch", XML_SOURCE["updated_at"]: "epoch"}
    return Seed("kayako-tickets.xml", tags, rows, times, xml=True)


@cache
def seed(fmt: str) -> Seed:
    """The seed of a fuzz format (see :data:`FUZZ_FORMATS`)."""
    if fmt == "kayako-csv":
        return _report_seed()
    if fmt == "kayako-xml":
        return _xml_seed()
    if fmt == "kayako-audit":
        header, rows = _csv_rows(seed_dir() / "kayako-audit.csv")
        return Seed("kayako-audit.csv", header, rows, {"dateline": "epoch"})
    table = fmt.removeprefix("xlsx-")
    header, rows = _csv_rows(seed_dir() / CANONICAL_FILES[table])
    times = {c.name: "iso" for c in TABLES[table] if c.kind in ("timestamp", "requested_time")}
    if fmt.startswith("xlsx-"):
        return Seed(f"{table}.xlsx", header, rows, times, xlsx=True)
    return Seed(CANONICAL_FILES[table], header, rows, times)


@cache
def template_db() -> Path:
    """A SQLite file holding the seed's four canonical tables, copied for every example."""
    path = seed_dir() / "template.db"
    engine = store.connect(f"sqlite:///{path}")
    policy = load_policy()
    for name in CANONICAL_FILES.values():
        load_file(engine, seed_dir() / name, policy)
    engine.dispose()
    return path


FUZZ_FORMATS = (
    "tickets",
    "ticket_events",
    "intake",
    "changes",
    "xlsx-intake",
    "xlsx-changes",
    "kayako-csv",
    "kayako-audit",
    "kayako-xml",
)
"""Seeded formats: the canonical CSVs, canonical XLSX, Kayako report CSV, audit CSV and XML."""

# --- strategies ---------------------------------------------------------------------------------

DST_DAYS = (dt.datetime(2026, 3, 8), dt.datetime(2026, 11, 1))  # spring forward, fall back


def local_status(wall: dt.datetime) -> str:
    """``gap`` (no such Central time), ``overlap`` (happens twice) or ``ok``, by zoneinfo."""
    first, second = wall.replace(tzinfo=CT, fold=0), wall.replace(tzinfo=CT, fold=1)
    if first.utcoffset() == second.utcoffset():
        return "ok"
    back = first.astimezone(UTC).astimezone(CT).replace(tzinfo=None)
    return "gap" if back != wall else "overlap"


@st.composite
def dst_walls(draw: st.DrawFn) -> dt.datetime:
    """A Central wall-clock time between 00:00 and 05:00 on a 2026 DST change day."""
    day = draw(st.sampled_from(DST_DAYS))
    minutes = draw(st.integers(0, 5 * 60))
    return day + dt.timedelta(minutes=minutes, seconds=draw(st.sampled_from([0, 0, 1, 30, 59])))


@st.composite
def dst_texts(draw: st.DrawFn, kind: str) -> str:
    """A time near a 2026 DST change written as ``kind`` (iso, report or epoch) expects."""
    if kind == "epoch":
        day = draw(st.sampled_from(DST_DAYS))
        instant = day.replace(tzinfo=UTC) + dt.timedelta(minutes=draw(st.integers(4 * 60, 10 * 60)))
        return str(int(instant.timestamp()))
    wall = draw(dst_walls())
    if kind == "report":
        return kayako_text(wall)
    form = draw(st.sampled_from(["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]))
    suffix = draw(st.sampled_from(["", "", "-05:00", "-06:00", "Z", "-0500"]))
    return wall.strftime(form) + suffix


ODD_VALUES = [
    "", " ", "ASAP", "asap", "NA", "null", "None", "0", "-1", "1e309", "nan", "yes", "NO",
    "99999999999999999999", "=cmd|' /C calc'!A0", "+1", "@SUM(A1)", "-- Unassigned --",
    "2026-02-30 10:00", "2026-13-01 10:00", "0000-01-01 00:00", "2026-11-01 01:30",
    "2026-03-08 02:30", "2026-11-01T01:30:00-05:00", "2026-11-23T09:15:00.1234567-06:00",
    "2026-11-23T09:15:00+25:00", "05 August 2014 13:16 PM", "2/31/2026 8:16:00", "3/8/2026 2:30:00",
    "11/1/2026 1:30:00",
    "300.1.2.3", "::1", "2001:db8::1%eth0", "1.2.3.4/24", "\ufeff", "\u2028", "\x85",
    "<ticket>", "]]>", "&amp;", "&#0;", '"', '""', ",", "\n", "\r", "\r\n", "\t", "\\",
    "Department changed from A to B", "ticket_id", "phone", "staff", "user",
]  # fmt: skip


def cells(kind: str | None) -> st.SearchStrategy[str]:
    """A replacement cell: odd values, random text, a DST-edge time, or an enormous field."""
    options = [
        st.sampled_from(ODD_VALUES),
        st.text(st.characters(exclude_categories=("Cs",)), max_size=24),
        st.builds(
            lambda ch, n: ch * n,
            st.sampled_from(["x", "é", '"', ",", "\n", "9", "€"]),
            st.sampled_from([10_000, 100_000, 1_000_000]),
        ),
    ]
    if kind is not None:
        options.append(dst_texts(kind))
    return st.one_of(options)


@dataclass
class Case:
    """One fuzzed input: the file's bytes, its name, the --format given, what was done to it."""

    name: str
    data: bytes
    fmt: str | None = None
    mutations: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> Path:
        path = folder / self.name
        path.write_bytes(self.data)
        return path


@st.composite
def tables(draw: st.DrawFn, s: Seed) -> tuple[list[str], list[list[str]], list[str]]:
    """The seed's rows with table-level mutations; returns header, rows and the mutations."""
    header, rows = list(s.header), [list(r) for r in s.rows]
    rows = rows[: draw(st.integers(0, len(rows)))] if draw(st.booleans()) else rows
    done: list[str] = []
    for _ in range(draw(st.integers(0, 4))):
        what = draw(
            st.sampled_from(
                ["cell", "cell", "dst", "dst", "duplicate", "drop", "wide", "shuffle", "ragged",
                 "rename", "blank-row"]
            )
        )  # fmt: skip
        if not rows and what in ("cell", "dst", "duplicate", "ragged", "blank-row"):
            continue
        done.append(what)
        if what == "cell":
            r, c = draw(st.integers(0, len(rows) - 1)), draw(st.integers(0, len(header) - 1))
            if c < len(rows[r]):
                rows[r][c] = draw(cells(s.times.get(header[c])))
        elif what == "dst" and s.times:
            column = draw(st.sampled_from(sorted(s.times)))
            if column in header:
                c = header.index(column)
                for r in draw(st.lists(st.integers(0, len(rows) - 1), min_size=1, max_size=5)):
                    if c < len(rows[r]):
                        rows[r][c] = draw(dst_texts(s.times[column]))
        elif what == "duplicate":
            rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
        elif what == "drop" and header:
            c = draw(st.integers(0, len(header) - 1))
            del header[c]
            for row in rows:
                del row[c : c + 1]
        elif what == "wide":
            k = draw(st.integers(1, 4000))
            header += [f"extra_{i}" for i in range(k)]
            value = draw(st.sampled_from(["", "x", "2026-03-08 02:30"]))
            rows = [row + [value] * k for row in rows]
        elif what == "shuffle":
            order = draw(st.permutations(range(len(header))))
            header = [header[i] for i in order]
            rows = [[row[i] if i < len(row) else "" for i in order] for row in rows]
        elif what == "ragged":
            r = draw(st.integers(0, len(rows) - 1))
            k = draw(st.integers(-3, 3))
            rows[r] = rows[r][:k] if k < 0 else rows[r] + ["z"] * k
        elif what == "rename" and header:
            c = draw(st.integers(0, len(header) - 1))
            header[c] = draw(st.sampled_from(["", " ", "ticket_id", "actionmsg", "Ticket Mask ID"]))
        elif what == "blank-row":
            rows.insert(draw(st.integers(0, len(rows))), [])
    return header, rows, done


def render_csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def render_xml(header: list[str], rows: list[list[str]], encoding: str) -> str:
    def esc(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    tags = [h if re.fullmatch(r"[A-Za-z_][\w.-]*", h) else "x" for h in header]
    out = [f'<?xml version="1.0" encoding="{encoding}"?>\n<tickets>\n']
    for n, row in enumerate(rows, start=1):
        inner = "".join(f"<{t}>{esc(v)}</{t}>" for t, v in zip(tags, row, strict=False))
        out.append(f'<ticket id="{n}" flagtype="0">{inner}</ticket>\n')
    out.append("</tickets>\n")
    return "".join(out)


def render_xlsx(header: list[str], rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [header, *rows]:
        ws.append(
            [ILLEGAL_CHARACTERS_RE.sub("", v)[:32767] if isinstance(v, str) else v for v in row]
        )
    out = io.BytesIO()
    wb.save(out)
    # the same bytes for the same draws: hypothesis replays examples and needs them identical
    return reproducible_xlsx(out.getvalue())


ENCODINGS = ["utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "utf-32",
             "shift_jis", "koi8-r", "mac_roman", "ascii"]  # fmt: skip


@st.composite
def text_mutations(draw: st.DrawFn, text: str, *, xml: bool) -> tuple[str, list[str]]:
    """Delimiters, stray quotes, line ends, markup damage: mutations of the rendered text."""
    done = []
    for _ in range(draw(st.integers(0, 2))):
        what = draw(st.sampled_from(["delimiter", "quote", "line-ends", "splice", "markup"]))
        done.append(what)
        at = draw(st.integers(0, len(text)))
        if what == "delimiter" and not xml:
            text = text.replace(",", draw(st.sampled_from([";", "\t", "|", ",,", " "])))
        elif what == "quote":
            text = text[:at] + draw(st.sampled_from(['"', '""', "'", '"\n'])) + text[at:]
        elif what == "line-ends":
            text = text.replace("\r\n", draw(st.sampled_from(["\n", "\r", "\n\n", "\r\r\n"])))
        elif what == "splice":
            text = text[:at] + draw(st.text(max_size=16)) + text[at + draw(st.integers(0, 40)) :]
        elif what == "markup" and xml:
            text = (
                text[:at]
                + draw(st.sampled_from(["<", "&", "</ticket>", "<!--", "]]>"]))
                + text[at:]
            )
    return text, done


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> tuple[bytes, list[str]]:
    """Truncation, NUL bytes, flipped or inserted bytes, a BOM: mutations of the file's bytes."""
    done = []
    for _ in range(draw(st.integers(0, 2))):
        what = draw(st.sampled_from(["truncate", "nul", "flip", "insert", "bom"]))
        done.append(what)
        at = draw(st.integers(0, len(data)))
        if what == "truncate":
            data = data[:at]
        elif what == "nul":
            data = data[:at] + b"\x00" + data[at:]
        elif what == "flip" and at < len(data):
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif what == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
        elif what == "bom":
            data = draw(st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])) + data
    return data, done


@st.composite
def inputs(draw: st.DrawFn, fmt: str) -> Case:
    """One fuzzed file of a seeded format (the seed mutated at table, text and byte level)."""
    s = seed(fmt)
    header, rows, done = draw(tables(s))
    if s.xlsx:
        typed: list[list[object]] = [list(r) for r in rows]
        if typed and draw(st.booleans()):  # real cell types: numbers, booleans, DST datetimes
            r, c = draw(st.integers(0, len(typed) - 1)), draw(st.integers(0, len(header)))
            typed[r][c:c] = [
                draw(st.one_of(st.integers(), st.floats(), st.booleans(), dst_walls()))
            ]
            done.append("typed-cell")
        data = render_xlsx(header, typed)
    else:
        encoding = draw(st.sampled_from(ENCODINGS[:3] if draw(st.booleans()) else ENCODINGS))
        text = render_xml(header, rows, encoding) if s.xml else render_csv(header, rows)
        text, more = draw(text_mutations(text, xml=s.xml))
        done += more
        if encoding != "utf-8":
            done.append(f"encoding-{encoding}")
        data = text.encode(encoding, errors="replace")
    data, more = draw(byte_mutations(data))
    done += more
    given_fmt = draw(st.sampled_from([None, None, None, "other"]))
    if given_fmt == "other":
        given_fmt = draw(st.sampled_from(["kayako-xml", "kayako-csv", "kayako-audit", "tickets",
                                          "events", "intake", "changes"]))  # fmt: skip
        done.append(f"--format {given_fmt}")
    return Case(s.name, data, given_fmt, done)


@st.composite
def random_files(draw: st.DrawFn) -> Case:
    """Pure random bytes, sometimes behind a prefix that steers format detection."""
    prefix = draw(
        st.sampled_from(
            [b"", b"", b"PK\x03\x04", b"<", b"<?xml version='1.0'?><tickets>", b"\xef\xbb\xbf",
             b"ticket_id,received_at,channel\n", b"actionmsg,dateline,ticketmaskid\n",
             b"Ticket Mask ID,Department,Status,Creation Date\n"]
        )
    )  # fmt: skip
    body = draw(st.binary(max_size=2048))
    name = draw(st.sampled_from(["random.csv", "random.xml", "random.xlsx", "random"]))
    return Case(name, prefix + body, None, ["random-bytes"])


# --- running and judging ------------------------------------------------------------------------

COUNTS = re.compile(
    r"read (\d+) = inserted (\d+) \+ updated (\d+) \+ unchanged (\d+) \+ rejected (\d+)"
    r"(?: \+ skipped (\d+))?"
)
TALLY: Counter[tuple[str, int]] = Counter()
"""(format, exit code) → inputs tried, printed at the end of the module."""


def ingest(path: Path, url: str, rejects_dir: Path, fmt: str | None = None) -> Result:
    """Run ``ipchange ingest PATH --db URL`` in-process; exceptions are caught, not raised."""
    args = ["ingest", str(path), "--db", url, "--rejects-dir", str(rejects_dir)]
    return CliRunner().invoke(main, [*args, "--format", fmt] if fmt else args)


def dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in id order: the database's content to compare."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                name: [
                    tuple(r) for r in conn.execute(sa.text(f'SELECT * FROM "{name}" ORDER BY 1'))
                ]
                for name in sorted(store.Base.metadata.tables)
            }
    finally:
        engine.dispose()


def _same(a: pd.Series, b: pd.Series) -> pd.Series:
    a, b = a.astype(object), b.astype(object)
    return pd.Series(
        [
            bool(pd.isna(y)) if pd.isna(x) else (not pd.isna(y) and x == y)
            for x, y in zip(a, b, strict=True)
        ]
    )


def assert_ended_cleanly(result: Result, where: str) -> None:
    """The run ended with exit 0, 1 or 2, without an exception escaping or a traceback printed."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info))
        pytest.fail(f"traceback on {where}:\n{trace}\n{result.output}")
    assert result.exit_code in (0, 1, 2), (where, result.exit_code, result.output)
    assert "Traceback" not in result.output, (where, result.output)


def judge(
    case: Case, path: Path, url: str, rejects_dir: Path, result: Result, before: dict
) -> None:
    """Assert everything the module docstring promises about one run."""
    where = f"{case.name} {case.mutations} --format {case.fmt}"
    assert_ended_cleanly(result, where)
    if result.exit_code == 2:
        assert case.name in result.stderr, (where, result.stderr)
        assert dump(url) == before, f"{where}: exit 2 but the database changed"
        return
    found = COUNTS.search(result.stdout)
    assert found, (where, result.output)
    read, inserted, updated, unchanged, rejected = (int(g) for g in found.groups()[:5])
    skipped = int(found.group(6) or 0)
    assert read == inserted + updated + unchanged + rejected + skipped, (where, found.group(0))
    assert (result.exit_code == 1) == (rejected > 0), (where, result.output)
    parsed = read_file(path, format=case.fmt or "auto")
    assert (read, rejected, skipped) == (
        parsed.rows_read,
        parsed.rows_rejected,
        parsed.rows_skipped,
    )
    assert inserted + updated + unchanged == len(parsed.frame), where
    engine = store.connect(url)
    try:
        manifest = store.manifests(engine).iloc[-1]
        assert (manifest.rows_read, manifest.inserted, manifest.updated, manifest.rejected) == (
            read, inserted, updated, rejected,
        )  # fmt: skip
        stored_rejects = store.rejects(engine, int(manifest.id))
        stored = store.read_frames(engine)[parsed.table]
    finally:
        engine.dispose()
    rejected_lines = set(parsed.rejects["line"])
    assert set(stored_rejects["line"]) == rejected_lines, where
    if rejected:
        written = read_rejects(rejects_dir, case.name)
        assert {int(r["line"]) for r in written} == rejected_lines, where
        for r in written:
            assert r["file"] == case.name and int(r["line"]) >= 1 and r["reason"], (where, r)
            assert r["column"] or r["reason"].startswith("row has"), (where, r)
    assert len(stored) == len(before[parsed.table]) + inserted, where
    keys = list(NATURAL_KEYS[parsed.table])
    frame = parsed.frame.drop(columns=SOURCE_LINE)
    merged = frame.merge(stored, on=keys, how="left", suffixes=("", "_db"), indicator=True)
    lost = merged[merged["_merge"] != "both"]
    assert lost.empty, f"{where}: rows lost: {lost[keys].to_dict('records')}"
    stale = pd.Series(False, index=merged.index)
    if parsed.table == "tickets":  # an older export of a ticket does not overwrite a newer one
        stale = (merged["updated_at_db"] > merged["updated_at"]).fillna(False).astype(bool)
    for column in frame.columns.difference(keys):
        same = _same(merged[column], merged[f"{column}_db"])
        assert (same | stale).all(), f"{where}: {column} stored differently"


def read_rejects(folder: Path, name: str) -> list[dict[str, str]]:
    """The rows of ``<name>.rejects.csv`` the command wrote into ``folder``."""
    with (folder / f"{name}.rejects.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def run_case(case: Case, url: str, *, sqlite_file: Path | None, tally: str = "") -> Result:
    """Write the case, snapshot the database, ingest, judge, count the input; return the run."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = case.write(folder)
        before = dump(url)
        raw = sqlite_file.read_bytes() if sqlite_file else b""
        result = ingest(path, url, folder / "loads", case.fmt)
        judge(case, path, url, folder / "loads", result, before)
        if result.exit_code == 2 and sqlite_file:
            assert sqlite_file.read_bytes() == raw, f"{case.name}: exit 2 but the file changed"
        random = case.mutations == ["random-bytes"]
        TALLY[(tally or ("random bytes" if random else case.name), result.exit_code)] += 1
    return result


def fresh_sqlite(folder: Path) -> tuple[str, Path]:
    path = folder / "fuzz.db"
    shutil.copyfile(template_db(), path)
    return f"sqlite:///{path}", path


def fuzz(test: Callable[[], None], share: float) -> None:
    """Run a ``@given`` test once; under ``make fuzz`` rerun it until ``share`` of the budget ends.

    Each rerun under the ``fuzz`` profile (not derandomized) draws fresh inputs.
    """
    deadline = time.monotonic() + FUZZ_SECONDS * share
    test()
    while FUZZ_SECONDS and time.monotonic() < deadline:
        test()


SHARES = {"format": 0.7 / len(FUZZ_FORMATS), "random": 0.1, "dst": 0.1 / 3, "postgresql": 0.1}
"""Each fuzz test's share of FUZZ_SECONDS (PostgreSQL runs its own short slice)."""


@pytest.fixture(scope="module", autouse=True)
def report_tally(request: pytest.FixtureRequest) -> Iterator[None]:
    """Print the inputs tried per format and exit code when the module ends."""
    TALLY.clear()
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is None or capture is None or not TALLY:
        return
    with capture.global_and_fixture_disabled():
        _print_tally(reporter)


def _print_tally(reporter: object) -> None:
    reporter.write_line("")
    reporter.write_line(f"fuzzed inputs tried: {sum(TALLY.values())} (failures: see the results)")
    for name in sorted({k for k, _ in TALLY}):
        codes = ", ".join(f"exit {c}: {TALLY[(name, c)]}" for c in (0, 1, 2) if TALLY[(name, c)])
        reporter.write_line(f"  {name:<22}{sum(TALLY[(name, c)] for c in (0, 1, 2)):>7}  ({codes})")


# --- the fuzz tests -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FUZZ_FORMATS)
def test_fuzzed_input_ends_0_1_2_without_traceback_or_loss(fmt: str) -> None:
    @settings(suppress_health_check=SUPPRESS)
    @given(case=inputs(fmt))
    def one(case: Case) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            url, path = fresh_sqlite(Path(tmp))
            run_case(case, url, sqlite_file=path)

    fuzz(one, SHARES["format"])


def test_random_bytes_end_0_1_2_without_traceback() -> None:
    @settings(suppress_health_check=SUPPRESS)
    @given(case=random_files())
    def one(case: Case) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            url, path = fresh_sqlite(Path(tmp))
            run_case(case, url, sqlite_file=path)

    fuzz(one, SHARES["random"])


DST_TARGETS = {
    # fuzz format: (column holding a local time, the key column)
    "intake": ("received_at", "ticket_id"),
    "xlsx-intake": ("received_at", "ticket_id"),
    "kayako-csv": ("Creation Date", "Ticket Mask ID"),
}


@pytest.mark.parametrize("fmt", list(DST_TARGETS))
def test_local_times_around_dst_are_refused_or_placed_exactly(fmt: str) -> None:
    """A Central wall-clock time that does not exist or happens twice rejects its row, naming
    the column; any other lands on the instant zoneinfo gives it."""
    s = seed(fmt)
    column, key = DST_TARGETS[fmt]
    c = s.header.index(column)

    @settings(suppress_health_check=SUPPRESS)
    @given(walls=st.lists(dst_walls(), min_size=len(s.rows), max_size=len(s.rows)), data=st.data())
    def one(walls: list[dt.datetime], data: st.DataObject) -> None:
        rows: list[list[object]] = [list(r) for r in s.rows]
        k = s.header.index(key)
        for row, wall in zip(rows, walls, strict=True):
            row[k] = f"DST-{row[k]}"  # new rows: an older stored ticket must not hide them
            if fmt == "kayako-csv":
                row[c] = kayako_text(wall)
            elif fmt.startswith("xlsx-") and data.draw(st.booleans()):
                row[c] = wall  # a real date-time cell
            else:
                row[c] = wall.isoformat(sep=data.draw(st.sampled_from([" ", "T"])))
        data_bytes = (
            render_xlsx(list(s.header), rows)
            if s.xlsx
            else render_csv(list(s.header), rows).encode()  # type: ignore[arg-type]
        )
        case = Case(s.name, data_bytes, None, ["dst"])
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            url, _ = fresh_sqlite(folder)
            path = case.write(folder)
            before = dump(url)
            result = ingest(path, url, folder / "loads")
            judge(case, path, url, folder / "loads", result, before)
            assert result.exit_code in (0, 1), result.output
            rejects = read_rejects(folder / "loads", s.name) if result.exit_code else []
            engine = store.connect(url)
            try:
                stored = store.read_frames(engine)["tickets" if fmt == "kayako-csv" else "intake"]
            finally:
                engine.dispose()
        stored = stored.set_index("ticket_id")
        target = "created_at" if fmt == "kayako-csv" else "received_at"
        for line, (row, wall) in enumerate(zip(rows, walls, strict=True), start=2):
            status = local_status(wall)
            mine = [r for r in rejects if int(r["line"]) == line and r["column"] == column]
            if status == "gap":
                assert mine and "does not exist" in mine[0]["reason"], (wall, mine)
            elif status == "overlap":
                assert mine and "ambiguous" in mine[0]["reason"], (wall, mine)
            else:
                assert not mine, (wall, mine)
                if not any(int(r["line"]) == line for r in rejects):
                    expected = pd.Timestamp(wall.replace(tzinfo=CT)).tz_convert("UTC")
                    assert stored.loc[row[k], target] == expected, wall
        TALLY[(f"dst {s.name}", result.exit_code)] += 1

    fuzz(one, SHARES["dst"])


@pytest.mark.xdist_group("postgres")
def test_fuzzed_input_on_postgresql(pg_schema_url: str) -> None:
    """The same judgement on PostgreSQL: exit 2 leaves every table as it was."""
    engine = store.connect(pg_schema_url)
    policy = load_policy()
    for name in CANONICAL_FILES.values():
        load_file(engine, seed_dir() / name, policy)
    engine.dispose()

    @settings(suppress_health_check=SUPPRESS)
    @given(case=st.sampled_from(FUZZ_FORMATS).flatmap(inputs) | random_files())
    def one(case: Case) -> None:
        run_case(case, pg_schema_url, sqlite_file=None, tally=f"postgresql {case.name}")

    fuzz(one, SHARES["postgresql"])


# --- regressions: inputs the fuzzer broke the command with, and refusals that name the place -----


def damaged_sheet(copies: int, at: float, xor: int) -> bytes:
    """The intake seed as XLSX (rows repeated ``copies`` times) with one byte of the compressed
    sheet XML flipped, ``at`` of the way into it."""
    s = seed("xlsx-intake")
    data = bytearray(render_xlsx(list(s.header), [list(r) for r in s.rows] * copies))
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + int(info.compress_size * at)] ^= xor
    return bytes(data)


def canonical_bytes(fmt: str, edit: Callable[[str], str] = str) -> bytes:
    s = seed(fmt)
    return edit(render_csv(list(s.header), [list(r) for r in s.rows])).encode()


def xlsx_bytes(fmt: str) -> bytes:
    s = seed(fmt)
    return render_xlsx(list(s.header), [list(r) for r in s.rows])


def xml_bytes(encoding: str) -> bytes:
    s = seed("kayako-xml")
    text = render_xml(list(s.header), [list(r) for r in s.rows], encoding)
    return text.encode(encoding if encoding.startswith("utf") else "utf-8")


REGRESSIONS = [
    # (id, file name, bytes, exit code, message pattern); "found:" marks what the fuzzer found
    # found: zlib.error escaped from openpyxl while opening a workbook with damaged deflate data
    ("xlsx-deflate-damage-on-open", "intake.xlsx", lambda: damaged_sheet(1, 0.0, 0x55), 2,
     r"intake\.xlsx: is not a readable XLSX workbook \(error: Error -3"),
    # found: a bad CRC, or damaged XML, of a sheet read lazily escaped while reading its rows
    ("xlsx-bad-crc-while-reading-rows", "intake.xlsx", lambda: damaged_sheet(40, 0.99, 0x55), 2,
     r"intake\.xlsx: is not a readable XLSX workbook \(BadZipFile: Bad CRC-32"),
    ("xlsx-broken-xml-while-reading-rows", "intake.xlsx", lambda: damaged_sheet(40, 0.5, 0x55),
     2, r"intake\.xlsx: is not a readable XLSX workbook \(ParseError: not well-formed"),
    # the flipped byte depends on the demo seed rows: re-aim it when the generator changes
    ("xlsx-bad-cell-reference-while-reading-rows", "intake.xlsx",
     lambda: damaged_sheet(40, 0.55, 0x01), 2,
     r"intake\.xlsx: is not a readable XLSX workbook \(ValueError: .* column name"),
    # found: a workbook (or random bytes starting like one) not named .xlsx escaped as
    # openpyxl's InvalidFileException from format detection; now read from its bytes
    ("xlsx-named-csv", "intake.csv", lambda: xlsx_bytes("xlsx-intake"), 0, r"^$"),
    ("zip-magic-named-csv", "random.csv", lambda: b"PK\x03\x04 no zip", 2,
     r"random\.csv: is not a readable XLSX workbook \(BadZipFile"),
    # found: an XML declaration of an encoding expat cannot use escaped as ValueError/LookupError
    ("xml-declares-utf-16-le", "kayako-tickets.xml", lambda: xml_bytes("utf-16-le"), 2,
     r"kayako-tickets\.xml: declares an XML encoding the reader cannot use \(multi-byte"),
    ("xml-declares-unknown-encoding", "kayako-tickets.xml", lambda: xml_bytes("x-bogus"), 2,
     r"kayako-tickets\.xml: declares an XML encoding the reader cannot use \(unknown encoding"),
    # refusals of one place name its line (and column)
    ("csv-nul-byte", "intake.csv",
     lambda: canonical_bytes("intake", lambda t: t.replace("\r\n", "\r\n\x00", 1)), 2,
     r"intake\.csv: holds NUL bytes \(first on line 2\)"),
    ("xml-truncated", "kayako-tickets.xml",
     lambda: (seed_dir() / "kayako-tickets.xml").read_bytes()[:-30], 2,
     r"kayako-tickets\.xml: malformed XML at line \d+, column \d+"),
    ("csv-undecodable", "changes.csv",
     lambda: canonical_bytes("changes") + b"X-1,\x81\x8d\xc3\n", 2,
     r"changes\.csv: is neither UTF-8 \(byte 0x81 on line \d+ is invalid\) nor cp1252"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "build", "code", "message"),
    [r[1:] for r in REGRESSIONS],
    ids=[r[0] for r in REGRESSIONS],
)
def test_regression_inputs(name: str, build: Callable[[], bytes], code: int, message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url, path = fresh_sqlite(Path(tmp))
        result = run_case(Case(name, build()), url, sqlite_file=path, tally="regressions")
    assert result.exit_code == code, result.output
    assert re.search(message, result.stderr), result.stderr
