"""Personal data (issue #6): manager-facing pages and billing files show no e-mail or phone number.

The sample data set gets an e-mail address or a telephone number appended to every value of every
free-text column (requester e-mail and name, contact, person of record and the matching sign-off,
waiver reason, subject, account, site, agents and engineers, …) and one input file is named
after an e-mail address. After loading it through ``ipchange ingest``, every manager- and
billing-facing output (SPEC 1) is scanned: the intake log, the SLA compliance and the fee billing
pages, the reports index, and the fee export CSV and XLSX. The ticket explorer is for analysts
(SPEC 5.4), as are ``ipchange export requests`` and the loads folder's rejects; they are not
scanned.
"""

from __future__ import annotations

import csv
import html
import io
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from click.testing import CliRunner

from ipchange_core import render
from ipchange_core.cli import main
from ipchange_core.textops import mask_contacts
from tests.report_fixtures import CANONICAL, FREE_TEXT, SAMPLE

pytestmark = pytest.mark.xdist_group("reports")  # one worker renders the reports once

WEEK, MONTH = "2026-W45", "2026-11"
CONTACTS = (
    "jane.roe@acme-isp.example.com",
    "(214) 555-0142",
    "214.555.0199",
    "+1 512 555 0100",
    "555-0123",
    "ops+billing@reseller.example.net",
    "+44 20 7946 0958",
    "512-555-0175",
)
"""What people type into free-text fields: e-mail addresses and phone numbers in many forms."""
FILE_NAMES = {"tickets.csv": "tickets from jane.roe@acme-isp.example.com.csv"}

EMAIL = re.compile(r"[\w.+'-]+@[\w-]+(\.[\w-]+)+")
PHONES = (
    re.compile(r"\(\d{3}\)\s*\d{3}[\s.-]\d{4}"),
    re.compile(r"(?<![\w-])\d{3}[.\s-]\d{3}[.\s-]\d{4}(?![\w-])"),
    re.compile(r"\+\d{1,3}[\s.-]?\d{1,4}([\s.-]\d{2,4}){2,3}"),
    re.compile(r"(?<![\w-])555-\d{4}(?![\w-])"),
)
PLANTED_DIGITS = tuple(re.sub(r"\D", "", c) for c in CONTACTS if "@" not in c)


def contact_details(text: str) -> list[str]:
    """E-mail addresses and phone numbers in ``text``, by pattern and by the planted digits."""
    found = [m.group(0) for m in EMAIL.finditer(text)]
    found += [m.group(0) for pattern in PHONES for m in pattern.finditer(text)]
    digits = re.sub(r"\D", "", text)
    found += [d for d in PLANTED_DIGITS if d in digits]
    return found


def test_the_scanner_finds_every_planted_detail_and_nothing_in_ordinary_cells():
    for contact in CONTACTS:
        assert contact_details(f"Jane Roe {contact}"), contact
    ordinary = [
        "KVB-114-57230",
        "2026-11-10 09:30:00",
        "Tue 10 Nov 09:30",
        "72.14.201.18",
        "$1,250.00",
        "ACCT-44120",
        "9.00",
        "2014-08-05",
        "ceb584f94980",
        "[e-mail]",
        "[phone]",
    ]
    assert [c for c in ordinary if contact_details(c)] == []


def test_masking_keeps_the_rest_of_the_text():
    values = pd.Series([f"Jane Roe {c}" for c in CONTACTS] + ["KVB-114-57230"], dtype="str")
    masked = mask_contacts(values)
    assert masked.str.startswith("Jane Roe [").sum() == len(CONTACTS)
    assert masked.iloc[-1] == "KVB-114-57230"
    assert [m for m in masked if contact_details(m)] == []


def with_contacts(value: str) -> str:
    """The value with one contact detail appended; equal values get the same one."""
    return f"{value} {CONTACTS[sum(map(ord, value)) % len(CONTACTS)]}".strip()


def write_inputs(folder: Path) -> tuple[list[Path], int]:
    """The sample CSVs with contact details in every free-text value; returns (files, planted)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, planted = [], 0
    for name in CANONICAL:
        with (SAMPLE / name).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        table = name.removesuffix(".csv")
        for row in rows:
            for column in FREE_TEXT[table]:
                if row[column] or column in ("requester_email", "contact_phone", "subject"):
                    row[column] = with_contacts(row[column])
                    planted += 1
        path = folder / FILE_NAMES.get(name, name)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        paths.append(path)
    return paths, planted


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Load the sample with contact details, build the manager reports and the fee export."""
    root = tmp_path_factory.mktemp("pii")
    db = f"sqlite:///{(root / 'pii.db').as_posix()}"
    files, planted = write_inputs(root / "input")
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["ingest", *map(str, files), "--db", db, "--rejects-dir", str(root / "loads")],
        catch_exceptions=False,
    )
    assert result.exit_code in (0, 1), result.output
    out = root / "reports"
    jobs = [("intake", WEEK), ("sla", WEEK), ("fees", MONTH)]
    _, failed = render.render_all(jobs, out=out, db_url=db)
    assert not failed, [str(f) for f in failed]
    exports = root / "exports"
    result = runner.invoke(
        main,
        ["fees", "export", "--month", MONTH, "--db", db, "--out", str(exports)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return {"input": root / "input", "out": out, "exports": exports, "planted": planted}


def page_texts(path: Path) -> list[str]:
    """The raw HTML and each text node of it, unescaped (what a reader can see or copy)."""
    raw = path.read_text(encoding="utf-8")
    nodes = [html.unescape(t) for t in re.split(r"<[^>]*>", raw) if t.strip()]
    return [raw, *nodes]


def spreadsheet_cells(folder: Path) -> dict[str, list[str]]:
    cells = {}
    for path in sorted(folder.rglob("*.csv")):
        rows = csv.reader(io.StringIO(path.read_bytes().decode(), newline=""))
        cells[path.name] = [cell for row in rows for cell in row]
    for path in sorted(folder.rglob("*.xlsx")):
        sheet = openpyxl.load_workbook(path).active
        cells[path.name] = [str(c) for row in sheet.iter_rows(values_only=True) for c in row]
    return cells


def test_the_inputs_carry_contact_details_in_every_free_text_column(built):
    found = 0
    for path in sorted(built["input"].glob("*.csv")):
        text = path.read_text(encoding="utf-8")
        found += len(EMAIL.findall(text)) + sum(len(p.findall(text)) for p in PHONES)
    assert built["planted"] > 150 and found >= built["planted"]


def test_manager_pages_show_no_email_or_phone(built):
    pages = sorted(built["out"].rglob("*.html"))
    names = {p.name for p in pages}
    assert names == {"index.html", "intake-log.html", "sla-compliance.html", "fee-billing.html"}
    leaks = {p.name: [d for t in page_texts(p) for d in contact_details(t)] for p in pages}
    assert {k: v for k, v in leaks.items() if v} == {}
    fees = (built["out"] / MONTH / "fee-billing.html").read_text(encoding="utf-8")
    assert "[e-mail]" in fees or "[phone]" in fees  # masked in place: the names are still there
    intake = (built["out"] / WEEK / "intake-log.html").read_text(encoding="utf-8")
    assert "tickets from [e-mail]" in intake  # the provenance footer's file name


def test_billing_files_show_no_email_or_phone(built):
    cells = spreadsheet_cells(built["exports"])
    assert set(cells) == {f"fees-{MONTH}.csv", f"fees-{MONTH}.xlsx"}
    leaks = {
        name: [d for c in values for d in contact_details(c)] for name, values in cells.items()
    }
    assert {k: v for k, v in leaks.items() if v} == {}
    assert any("[" in c for c in cells[f"fees-{MONTH}.csv"])  # masked, not dropped
