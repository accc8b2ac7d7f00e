"""Hostile text through the whole product: ingest → database → every report, export and CSV.

A corpus of XSS, broken-markup, spreadsheet-formula and SQL payloads is written into every free
text column of every canonical table (schema.TABLES), loaded through ``ipchange ingest`` into
SQLite, rendered through every report once per module and opened in headless Chromium. The
claims: no injected code runs (no dialog, no title change, no request other than file:, no
console error, no canary global), every payload is shown verbatim as text, SQL fragments come back
from the database byte-identical, every cell of every CSV/XLSX the product writes is
formula-safe, and report parameters outside the allow-list are refused before a kernel starts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from ipchange_core import billing, render, store
from ipchange_core.cli import main
from ipchange_core.export import FORMULA_PREFIXES
from ipchange_core.policy import load_policy
from ipchange_core.schema import TABLES
from tests.report_fixtures import FREE_TEXT

pytestmark = pytest.mark.xdist_group("reports")  # one worker renders the reports once

WEEK, MONTH = "2026-W45", "2026-11"
CANARY = "__ipchange_pwned"
"""A global the payloads set when they run: it must stay undefined in every page."""

XSS = (
    "<script>alert(1)</script>",
    f"<script>window.{CANARY}=1;document.title='pwned'</script>",
    "<SCRIPT SRC=http://127.0.0.1:9/x.js></SCRIPT>",
    "<img src=x onerror=alert(1)>",
    "<img src='http://127.0.0.1:9/beacon.png'>",
    f'<IMG SRC="javascript:window.{CANARY}=1">',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg/onload=fetch('http://127.0.0.1:9/svg')>",
    '<a href="javascript:alert(1)">click me</a>',
    "javascript:alert(document.domain)",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>parent.alert(1)</script>"></iframe>',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    '<div style="width:expression(alert(1))">x</div>',
    "<style>@import 'http://127.0.0.1:9/x.css';</style>",
    "<link rel=stylesheet href=http://127.0.0.1:9/l.css>",
    '<meta http-equiv="refresh" content="0;url=http://127.0.0.1:9/">',
    '<object data="http://127.0.0.1:9/o"></object>',
    '"><script>alert(1)</script>',
    "'><img src=x onerror=alert(1)>",
    "</td></tr></table><script>alert(1)</script>",
    "</div></footer></body></html><h1>forged</h1>",
    "<!-- unterminated comment",
    "-->]]><![CDATA[",
    "{{7*7}} {% raw %} ${7*7} #{7*7}",
    "[click](javascript:alert(1)) ![x](http://127.0.0.1:9/md.png)",
    "$$\\alert{1}$$ $x$",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#60;",
    "\u202eevil\u202c abc \u200f\u05e9\u05dc\u05d5\u05dd\u200e",  # RTL override, Hebrew
    "Zoë Ångström – 日本語 – 🙂",
    "line one\nline two\r\n<b>line three</b>",
    "bell\x07 escape\x1b[31m red\x1b[0m backspace\x08",  # no XML 1.0 character (xlsx)
)
"""Markup and script payloads: each must show as its own text and never run."""

FORMULAS = (
    '=HYPERLINK("http://127.0.0.1:9/x","click")',
    "=1+1",
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(1,1)",
    "=cmd|' /C notepad'!'A1'",
    "\t=1+1",
    "\r=1+1",
    "-2",
    'harmless\r=HYPERLINK("http://127.0.0.1:9/","x")',  # a bare CR would start a new row
)
"""Spreadsheet formulas (OWASP CSV injection); ingest strips the surrounding white space."""

SQL = (
    "'; DROP TABLE tickets; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM fee_ledger; --",
    "1; UPDATE export_batches SET total_cents = 0",
    "%' OR '%'='",
    "\\'; SELECT sqlite_version(); --",
)
"""SQL fragments: stored and shown verbatim, every table intact."""

LONG = ("<script>alert(1)</script>" + "x" * 5_000 + "<img src=x onerror=alert(1)>",)

CORPUS = XSS + FORMULAS + SQL + LONG


def test_the_corpus_is_large_and_covers_every_free_text_column():
    assert len(CORPUS) >= 30 and len(set(CORPUS)) == len(CORPUS)
    assert sum(map(len, FREE_TEXT.values())) == 23
    assert "subject" in FREE_TEXT["tickets"] and "fee_waiver_reason" in FREE_TEXT["changes"]


# --- the hostile data set -----------------------------------------------------------------------


def _iso(when: dt.datetime) -> str:
    return when.isoformat()


def hostile_rows(corpus: tuple[str, ...]) -> dict[str, list[dict[str, str]]]:
    """Two requests per payload (one billable, one waived), the payload in every free-text column.

    Request ``A<k>`` is a short-notice change signed off by its person of record (same text, so
    the sign-off matches) and completed: billable. ``B<k>`` is the same but waived. Both are
    received in ISO week 2026-W45 (CST, UTC-6), so every report of the week and the month shows
    them.
    """
    cst = dt.timezone(dt.timedelta(hours=-6))
    rows: dict[str, list[dict[str, str]]] = {table: [] for table in TABLES}
    for k, payload in enumerate(corpus):
        for variant, day in (("A", 3), ("B", 4)):
            ticket = f"INJ-{k:03d}-{variant}{k:04d}"
            received = dt.datetime(2026, 11, day, 9, 0, tzinfo=cst) + dt.timedelta(minutes=k)
            text = dict.fromkeys(
                (c for cols in FREE_TEXT.values() for c in cols), payload
            )  # every free-text column, whatever its table
            rows["tickets"].append(
                {
                    **text,
                    "ticket_id": ticket,
                    "creator": "staff",
                    "created_at": _iso(received),
                    "updated_at": _iso(received + dt.timedelta(hours=4)),
                }
            )
            rows["ticket_events"].append(
                {
                    **text,
                    "ticket_id": ticket,
                    "at": _iso(received + dt.timedelta(minutes=20)),
                    "field": "department",
                }
            )
            rows["intake"].append(
                {
                    **text,
                    "ticket_id": ticket,
                    "received_at": _iso(received),
                    "channel": "phone",
                    "requester_type": "site",
                    "reason": "isp_change",
                    "current_ip": "203.0.113.5",
                    "new_ip": "203.0.113.9",
                    "requested_change_at": _iso(received + dt.timedelta(hours=3)),
                    "ticket_number_given": "yes",
                    "transferred_to_queue": "yes",
                }
            )
            rows["changes"].append(
                {
                    **text,
                    "ticket_id": ticket,
                    "confirmed_at": _iso(received + dt.timedelta(minutes=30)),
                    "scheduled_start": _iso(received + dt.timedelta(hours=3)),
                    "scheduled_end": _iso(received + dt.timedelta(hours=3, minutes=30)),
                    "completed_at": _iso(received + dt.timedelta(hours=3, minutes=20)),
                    "fee_accepted_at": _iso(received + dt.timedelta(hours=1)),
                    "fee_waived": "yes" if variant == "B" else "no",
                }
            )
    return rows


def bad_intake_rows(corpus: tuple[str, ...]) -> list[dict[str, str]]:
    """Intake rows rejected at load (unknown channel = the payload): the rejects CSV carries it."""
    received = "2026-11-05T10:00:00-06:00"
    return [
        {"ticket_id": f"BAD-{k:03d}-00000", "received_at": received, "channel": payload}
        for k, payload in enumerate(corpus)
    ]


HOSTILE_FILE_NAME = {"changes": 'changes"><svg onload=alert(1)>.csv'}
"""A file name is shown too (the provenance footer): one of them is hostile."""


def write_inputs(folder: Path, corpus: tuple[str, ...]) -> list[Path]:
    """Write the canonical CSVs (Python's csv module quotes what needs quoting)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = hostile_rows(corpus)
    rows["intake"] += bad_intake_rows(corpus)
    paths = []
    for table, columns in TABLES.items():
        path = folder / HOSTILE_FILE_NAME.get(table, f"{table}.csv")
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=[c.name for c in columns], extrasaction="ignore"
            )
            writer.writeheader()
            writer.writerows(rows[table])
        paths.append(path)
    return paths


def build(root: Path, corpus: tuple[str, ...]) -> dict:
    """Ingest the hostile files with the CLI, render every report, export fees and requests."""
    db = f"sqlite:///{(root / 'hostile.db').as_posix()}"
    files = write_inputs(root / "input", corpus)
    loads = root / "loads"
    result = CliRunner().invoke(
        main,
        ["ingest", *map(str, files), "--db", db, "--rejects-dir", str(loads)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output  # loaded, with the bad intake rows rejected
    out = root / "reports"
    jobs = [("intake", WEEK), ("sla", WEEK), ("fees", MONTH), ("explorer", MONTH)]
    done, failed = render.render_all(jobs, out=out, db_url=db)
    assert not failed, [str(f) for f in failed]
    exports = root / "exports"
    for args in (
        ["fees", "export", "--month", MONTH, "--out", str(exports)],
        ["export", "requests", "--month", MONTH, "-o", str(exports / "requests.csv")],
    ):
        result = CliRunner().invoke(main, [*args, "--db", db], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return {
        "db": db,
        "out": out,
        "pages": {r.key: r.html for r in done},
        "loads": loads,
        "exports": exports,
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The default corpus, loaded and rendered once for the module."""
    return build(tmp_path_factory.mktemp("injection"), CORPUS)


def stored(payload: str) -> str:
    """What ingest keeps of a value: surrounding white space is stripped (SPEC 3, ingest)."""
    return payload.strip()


def shown(text: str) -> str:
    """Text as a browser lays it out: runs of HTML white space collapse to one space."""
    return re.sub(r"[ \t\n\r\f]+", " ", text).strip()


EXPLORER_ROWS = 50  # reports.sample_requests shows the first 50 requests of the period


def expected_in_page(key: str, corpus: tuple[str, ...]) -> tuple[str, ...]:
    """The payloads each page must show as text (request A<k> is the k-th received)."""
    return corpus[:EXPLORER_ROWS] if key == "explorer" else corpus


# --- the database -------------------------------------------------------------------------------


def check_database(built: dict, corpus: tuple[str, ...]) -> None:
    """Every payload is read back byte-identical from every free-text column; no table is lost."""
    engine = store.connect(built["db"])
    try:
        names = set(sa.inspect(engine).get_table_names())
        assert {*TABLES, "fee_ledger", "export_batches", "load_manifests", "rejects"} <= names
        frames = store.read_frames(engine)
    finally:
        engine.dispose()
    for table, columns in FREE_TEXT.items():
        frame = frames[table]
        assert len(frame) == 2 * len(corpus), table
        k = frame["ticket_id"].str.slice(4, 7).astype(int)
        for column in columns:
            want = k.map(lambda i: stored(corpus[i]))
            bad = frame.loc[frame[column] != want, ["ticket_id", column]]
            assert bad.empty, (table, column, bad.head(3).to_dict("records"))


def test_sql_fragments_and_every_payload_come_back_byte_identical(built):
    check_database(built, CORPUS)
    engine = store.connect(built["db"])
    try:
        with engine.connect() as conn:
            drop = stored(SQL[0])
            n = conn.execute(
                sa.text("SELECT count(*) FROM tickets WHERE subject = :s"), {"s": drop}
            )
            assert n.scalar_one() == 2
            assert conn.execute(sa.text("SELECT count(*) FROM export_batches")).scalar_one() == 1
    finally:
        engine.dispose()


# --- spreadsheets -------------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d+(\.\d+)?")
NUMERIC_COLUMNS = {
    "Amount",
    "Notice hours",
    "line",
    "notice_hours",
    "fee_cents",
    "routing_business_hours",
    "confirmation_business_hours",
}
"""Columns the product fills with numbers it computed: only these may start with ``-``."""


def written_csvs(built: dict) -> dict[str, list[dict[str, str]]]:
    """Every CSV the product wrote for billing, analysts and load reports, parsed."""
    paths = [
        *sorted((built["exports"]).rglob("*.csv")),
        *sorted(built["loads"].glob("*.rejects.csv")),
    ]
    assert {p.name for p in paths} >= {"fees-2026-11.csv", "requests.csv", "intake.csv.rejects.csv"}
    # as a spreadsheet reads it: a bare CR ends a row unless it is inside a quoted value
    return {
        p.name: list(csv.DictReader(io.StringIO(p.read_bytes().decode(), newline="")))
        for p in paths
    }


def unsafe_cells(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    """Cells a spreadsheet would run as a formula (numbers the product wrote are fine)."""
    return [
        (column, value)
        for row in rows
        for column, value in row.items()
        if value.startswith(FORMULA_PREFIXES)
        and not (column in NUMERIC_COLUMNS and NUMBER.fullmatch(value))
    ]


def in_xlsx(text: str) -> str:
    """Text as a worksheet keeps it: no control characters (U+FFFD instead), XML line ends."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", text).replace("\r\n", "\n").replace("\r", "\n")


def check_spreadsheets(built: dict, corpus: tuple[str, ...]) -> None:
    """No cell of any CSV or XLSX starts like a formula; formula payloads are kept, quoted."""
    risky = [stored(p) for p in corpus if stored(p).startswith(FORMULA_PREFIXES)]
    written = written_csvs(built)
    assert len(written["requests.csv"]) == 2 * len(corpus)  # no value split a row
    assert len(written["intake.csv.rejects.csv"]) == len(corpus)
    for name, rows in written.items():
        assert rows, name
        assert unsafe_cells(rows) == [], name
        cells = {v for row in rows for v in row.values()}
        assert {"'" + p for p in risky} <= cells, name  # kept, made inert with a quote
    for path in sorted(built["exports"].rglob("*.xlsx")):
        sheet = openpyxl.load_workbook(path)["fees"]
        header = [c.value for c in sheet[1]]
        strings = []
        for row in sheet.iter_rows(min_row=2):
            for column, cell in zip(header, row, strict=True):
                assert cell.data_type != "f", (path.name, column, cell.value)
                if isinstance(cell.value, str):
                    assert cell.data_type == "s", (column, cell.value)
                    assert not cell.value.startswith(FORMULA_PREFIXES), (column, cell.value)
                    strings.append(cell.value)
                else:
                    assert column not in billing._TEXT, (column, cell.value)
        assert {"'" + in_xlsx(p) for p in risky} <= set(strings), path.name


def test_every_exported_cell_is_formula_safe(built):
    check_spreadsheets(built, CORPUS)
    fees = written_csvs(built)["fees-2026-11.csv"]
    assert len(fees) == len(CORPUS)  # the billable A<k>; the waived B<k> bill nothing
    assert {r["Amount"] for r in fees} == {"250.00"}


def test_a_tab_or_cr_prefix_the_ingest_would_strip_is_still_made_safe():
    """The writers are safe on their own, also for values that never went through ingest."""
    policy = load_policy()
    tz = policy.latest.timezone
    payloads = ["\t=1+1", "\r=1+1", "=1+1", "+1", "-1+1", "@SUM(1)", "plain"]
    n = len(payloads)
    when = pd.Series(pd.to_datetime(["2026-11-03T15:00:00Z"] * n, format="ISO8601", utc=True))
    rows = pd.DataFrame(
        {
            "ticket_id": payloads,
            "account": payloads,
            "reseller": payloads,
            "received_at": when,
            "requested_change_at": when,
            "notice_hours": [1.0] * n,
            "person_of_record": payloads,
            "fee_accepted_by": payloads,
            "fee_accepted_at": when,
        }
    )
    entries = pd.DataFrame(
        {
            "ticket_id": payloads,
            "fee_status": payloads,
            "amount_cents": [25_000] * n,
            "policy_version": payloads,
            "id": range(n),
            "kind": ["correction"] * n,  # its reason is shown as recorded
            "reason": payloads,
            "by_name": payloads,
        }
    )
    table = billing.fee_table(rows, entries, tz)
    text = billing.csv_bytes(table).decode("utf-8")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert unsafe_cells(parsed) == []
    assert {r["Ticket"] for r in parsed} == {"'" + p for p in payloads[:-1]} | {"plain"}
    assert [r["Reason"] for r in parsed] == [r["Ticket"] for r in parsed]
    workbook = openpyxl.load_workbook(io.BytesIO(billing.xlsx_bytes(table, "t")))
    for row in workbook["fees"].iter_rows(min_row=2):
        for cell in row:
            assert not (isinstance(cell.value, str) and cell.value.startswith(FORMULA_PREFIXES))


# --- papermill parameters ------------------------------------------------------------------------


def test_parameters_outside_the_allow_list_are_refused_before_a_kernel_starts(built, tmp_path):
    canary = tmp_path / "ran"
    code = f"x=open({str(canary)!r},'w').close();y"
    out = tmp_path / "reports"
    for extra, message in (
        ({code: 1}, "unknown report parameter"),
        ({"__import__('os').system('true')": 1}, "unknown report parameter"),
        ({"trend_weeks": [1]}, "plain scalar"),
        ({"trend_weeks": {"a": 1}}, "plain scalar"),
    ):
        with pytest.raises(render.RenderError, match=message):
            render.render("sla", WEEK, out=out, db_url=built["db"], extra=extra)
        assert not canary.exists()
        assert [p for p in out.rglob("*") if p.is_file()] == []  # no notebook, no page
    assert set(render.ALLOWED_PARAMETERS) >= {"period", "db_url", "policy_file", "plotly_js"}


def test_the_report_command_takes_no_free_parameters(built, tmp_path):
    """The CLI passes only validated period labels to papermill."""
    out = tmp_path / "cli"
    for args in (
        ["--week", "2026-W45;import os"],
        ["--month", "2026-11')\nimport os\n('"],
        ["--start", "2026-11-01", "--end", "x=1"],
    ):
        result = CliRunner().invoke(
            main, ["report", "sla", *args, "--db", built["db"], "--out", str(out)]
        )
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert not out.exists()


# --- the browser ----------------------------------------------------------------------------------

_PAGE_PROBE = """() => ({
    canary: typeof window.CANARY,
    handlers: [...document.querySelectorAll('*')].filter(
        e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    embedded: document.querySelectorAll(
        'iframe, object, embed, link[href^="http"], img, base, form, '
        + 'meta[http-equiv]:not([http-equiv="Content-Security-Policy"])').length,
    text: document.body.innerText,
})""".replace("CANARY", CANARY)


def check_browser(built: dict, corpus: tuple[str, ...], chromium_path: str, copy: Path) -> None:
    """Open every report (from a copy of the folder) in Chromium; nothing injected may run."""
    sync_api = pytest.importorskip("playwright.sync_api")
    shutil.copytree(built["out"], copy)  # a copied reports folder still works
    titles = {key: title for key, (_, _, title) in render.REPORTS.items()}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            dialogs, errors, console, requests = [], [], [], []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requests.append(r.url))
            for key, html_path in built["pages"].items():
                period = html_path.parent.name
                page.goto((copy / period / html_path.name).as_uri())
                page.wait_for_selector("svg.main-svg", timeout=20_000)  # the charts drew
                page.wait_for_timeout(300)
                assert page.title() == f"{titles[key]} · {period}", key
                probe = page.evaluate(_PAGE_PROBE)
                assert probe["canary"] == "undefined", key
                assert probe["handlers"] == 0 and probe["embedded"] == 0, (key, probe)
                text = shown(probe["text"])
                missing = [p for p in expected_in_page(key, corpus) if shown(stored(p)) not in text]
                assert missing == [], (key, missing[:5])
            assert dialogs == [] and errors == [] and console == [], (dialogs, errors, console)
            assert [u for u in requests if not u.startswith("file://")] == []
        finally:
            browser.close()


def test_reports_show_every_payload_as_text_and_run_none(built, chromium_path, tmp_path):
    assert set(built["pages"]) == set(render.REPORTS)
    check_browser(built, CORPUS, chromium_path, tmp_path / "copied")


# --- the long version ---------------------------------------------------------------------------

FRAGMENTS = (
    *(p for p in CORPUS if len(p) < 200),
    "<",
    ">",
    '"',
    "'",
    "`",
    "&",
    "\\",
    "</script>",
    "<!--",
    "]]>",
    "\u2028",
    "\x07",
    "onerror=alert(1)",
    "javascript:",
    "=",
    "+",
    "-",
    "@",
)


def fuzz_corpus(n: int, seed: int) -> tuple[str, ...]:
    """``n`` distinct payloads glued from 1–4 fragments (seeded, so a failure reproduces)."""
    import random

    rng = random.Random(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 4)))
        if text.strip():
            out[text] = None
    return tuple(out)


@pytest.mark.fuzz
@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_payloads_through_every_report_and_export(seed, chromium_path, tmp_path):
    corpus = fuzz_corpus(240, seed)
    built = build(tmp_path, corpus)
    check_database(built, corpus)
    check_spreadsheets(built, corpus)
    check_browser(built, corpus, chromium_path, tmp_path / "copied")
