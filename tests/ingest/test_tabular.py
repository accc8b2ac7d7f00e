"""CSV and XLSX files as text: line numbers, malformed rows, encodings, refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import openpyxl
import pytest

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import (
    detect_format,
    read_file,
)
from ipchange_core.schema import SOURCE_LINE, TABLES
from tests.domain import FIXTURES, assert_reconciles, header, row, utc, write

# --- CSV structure ------------------------------------------------------------------------------


def test_lines_count_quoted_line_breaks_blank_lines_and_crlf(tmp_path: Path) -> None:
    text = (
        f"{header('tickets')}\r\n"
        + row("tickets", ticket_id="T-1", subject="two\r\nlines")
        + "\r\n\r\n"
        + row("tickets", ticket_id="T-2", creator="robot")
        + "\r\n"
    )
    parsed = read_file(write(tmp_path, "tickets.csv", text))
    assert_reconciles(parsed)
    assert parsed.frame[SOURCE_LINE].tolist() == [2]
    assert parsed.frame.loc[0, "subject"] == "two\r\nlines"
    assert parsed.rejects["line"].tolist() == [5]


def test_quoted_line_breaks_without_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    lines = [
        header("tickets"),
        row("tickets", ticket_id="T-1", subject="a\nb\nc"),
        row("tickets", ticket_id="T-2", creator="robot"),
    ]
    parsed = read_file(write(tmp_path, "tickets.csv", "\n".join(lines)))  # no final newline
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, "subject"] == "a\nb\nc"
    assert parsed.rejects["line"].tolist() == [5]


def test_rows_with_the_wrong_number_of_fields_are_rejected(tmp_path: Path) -> None:
    lines = [
        header("changes"),
        row("changes", ticket_id="T-1"),
        "T-2,2026-11-23 10:00",
        row("changes", ticket_id="T-3") + ",extra",
    ]
    parsed = read_file(write(tmp_path, "changes.csv", "\n".join(lines) + "\n"))
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["T-1"]
    assert parsed.rejects["line"].tolist() == [3, 4]
    assert parsed.rejects["column"].tolist() == ["", ""]
    assert "row has 2 field(s) but the header has 13" in parsed.rejects["reason"].iloc[0]
    assert parsed.reject_messages()[0].startswith("changes.csv line 3: row has 2 field(s)")


def test_columns_in_any_order_extra_ignored_optional_absent(tmp_path: Path) -> None:
    text = "channel,note,received_at,ticket_id\nphone,hello,2026-11-23 09:00,T-1\n"
    parsed = read_file(write(tmp_path, "intake.csv", text))
    assert_reconciles(parsed)
    assert parsed.format == "intake"
    assert parsed.frame.loc[0, "channel"] == "phone" and parsed.frame.loc[0, "agent"] == ""
    assert any("note" in n and "ignored" in n for n in parsed.notes)
    assert any("absent" in n and "current_ip" in n for n in parsed.notes)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no-bom", "bom"])
def test_excel_sep_line_names_the_delimiter_of_any_csv(tmp_path: Path, bom: bytes) -> None:
    """Excel's ``sep=;`` first line (Kayako's Excel-compatible CSV): any CSV, rows numbered as
    the file numbers them, malformed rows shown with the file's delimiter."""
    lines = [
        "sep=;",
        header("changes").replace(",", ";"),
        row("changes", ticket_id="T-1", engineer="Lee, Ann")
        .replace(",", ";")
        .replace('"Lee; Ann"', '"Lee, Ann"'),
        "T-2;x",
        row("changes", ticket_id="T-3", scheduled_start="soon").replace(",", ";"),
    ]
    path = write(tmp_path, "changes.csv", bom + ("\r\n".join(lines) + "\r\n").encode())
    assert detect_format(path) == "changes"
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.frame[["ticket_id", "engineer", SOURCE_LINE]].to_numpy().tolist() == [
        ["T-1", "Lee, Ann", 3]
    ]
    assert parsed.rejects[["line", "column", "ticket_id"]].to_numpy().tolist() == [
        [4, "", ""],
        [5, "scheduled_start", "T-3"],
    ]
    assert parsed.rejects["value"].iloc[0] == "T-2;x"


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    parsed = read_file(write(tmp_path, "changes.csv", header("changes") + "\n"))
    assert_reconciles(parsed)
    assert (parsed.rows_read, len(parsed.frame)) == (0, 0)


# --- encodings --------------------------------------------------------------------------------


def test_utf8_bom_is_recognised_and_removed(tmp_path: Path) -> None:
    text = f"{header('tickets')}\n{row('tickets', subject='Café ☕')}\n"
    path = write(tmp_path, "tickets.csv", b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert detect_format(path) == "tickets"
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "utf-8-sig"
    assert parsed.frame.loc[0, ["ticket_id", "subject"]].tolist() == ["T-1", "Café ☕"]


def test_cp1252_is_detected_and_decoded(tmp_path: Path) -> None:
    text = f"{header('tickets')}\n{row('tickets', subject='Café – “quoted” €5', owner='Zoë')}\n"
    path = write(tmp_path, "tickets.csv", text.encode("cp1252"))
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "cp1252"
    assert parsed.frame.loc[0, "subject"] == "Café – “quoted” €5"
    assert parsed.frame.loc[0, "owner"] == "Zoë"
    assert parsed.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


REFUSED = [
    ("missing-column", "intake.csv", "ticket_id,channel\nT-1,phone\n",
     "missing required column(s) received_at"),
    ("empty", "intake.csv", b"", "is empty"),
    ("blank", "intake.csv", b"  \n\n \t\r\n", "is empty"),
    ("bom-only", "intake.csv", b"\xef\xbb\xbf", "is empty"),
    ("binary", "intake.csv", bytes(range(256)) * 4, "NUL bytes"),
    ("png", "intake.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "NUL bytes"),
    ("utf16", "intake.csv", "ticket_id,x\n".encode("utf-16"), "UTF-16"),
    ("neither-encoding", "intake.csv",
     header("intake").encode() + b"\nT-1,\x81\x8d,\xc3\n", "neither UTF-8"),
    ("bom-then-bad-utf8", "intake.csv", b"\xef\xbb\xbf" + header("intake").encode() + b"\n\xff\n",
     "byte-order mark"),
    ("one-column-junk", "data.csv", "junk\nfoo\nbar\n", "matches none of the formats"),
    ("ambiguous-header", "data.csv", "ticket_id,account\nT-1,Acme\n", "matches none of the formats"),
    ("duplicate-header", "intake.csv",
     header("intake") + ",channel\n", "column 'channel' appears twice"),
    ("malformed-xml", "k.xml", "<tickets><ticket><displayid>1</ticket></tickets>",
     "malformed XML at line 1, column 32"),
    ("other-xml", "k.xml", "<?xml version='1.0'?><users><user/></users>", "root element is <users>"),
    ("not-xlsx", "k.xlsx", b"PK\x03\x04 this is no zip", "not a readable XLSX workbook"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_unusable_file_is_refused_naming_it(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(InvalidInputError) as caught:
        read_file(path)
    assert message in str(caught.value)
    assert str(caught.value).startswith(name)
    assert caught.value.file == name
    assert "\n" not in str(caught.value)


def test_explicit_format_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^intake\.csv: missing required column"):
        read_file(FIXTURES / "intake.csv", format="tickets")
    with pytest.raises(InvalidInputError, match="unknown format 'json'"):
        read_file(FIXTURES / "intake.csv", format="json")


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^nope\.csv: cannot read the file"):
        read_file(tmp_path / "nope.csv")


# --- XLSX ------------------------------------------------------------------------------------


def test_xlsx_first_sheet_is_read_as_shown(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([col.name for col in TABLES["intake"]])
    values = {
        "ticket_id": 123,
        "received_at": dt.datetime(2026, 11, 23, 9, 15),
        "channel": "phone",
        "account": "NA",
        "current_ip": "10.0.0.1",
        "ticket_number_given": "yes",
        "contact_phone": 5550100.0,
    }
    ws.append([values.get(col.name) for col in TABLES["intake"]])
    ws.cell(row=2, column=1).number_format = "00000"
    ws.append([])  # an empty row is not a row
    ws.append(["T-9", "2026-11-01 01:30", "phone"])
    ws.append(["T-10", "2026-11-23 09:00", "phone", *[""] * 14, "stray"])
    wb.create_sheet("ignored").append(["not", "read"])
    path = tmp_path / "intake.xlsx"
    wb.save(path)

    assert detect_format(path) == "intake"
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert parsed.encoding == "xlsx"
    got = parsed.frame.iloc[0]
    assert (got["ticket_id"], got["account"], got["contact_phone"]) == ("00123", "NA", "5550100")
    assert got["received_at"] == utc(2026, 11, 23, 15, 15)
    assert got[SOURCE_LINE] == 2
    assert parsed.rejects["line"].tolist() == [4, 5]
    assert "ambiguous" in parsed.rejects["reason"].iloc[0]
    assert "right of the header" in parsed.rejects["reason"].iloc[1]
