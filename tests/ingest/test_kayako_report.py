"""Kayako report exports through read_file: Kayako's CSV styles and XLSX, the mapping, local dates."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import read_file
from ipchange_core.ingest.kayako_report import load_mapping
from ipchange_core.ingest.timestamps import GAP, OK, OVERLAP, TimeParser
from tests.domain import FIXTURES, assert_reconciles, by_id, utc, write

LABELS = (
    "Ticket ID",
    "Ticket Mask ID",
    "Department",
    "Status",
    "Priority",
    "Owner",
    "Full Name",
    "Subject",
    "Creation Date",
    "Last Activity",
    "Creator",
)
"""Kayako's own labels (FORMATS.md 5); Priority is not mapped by default."""


ROWS = (
    ("7", "R-1", "Implementation", "Open", "High", "-- Unassigned --", "Jo", 'A "quoted", s;ubject',
     "3/8/2026 9:05:00", "3/9/2026 14:00:00", "Staff"),
    ("8", "R-2", "Customer Service", "Closed", "Low", "Ann Lee", "Bo", "Plain",
     "11/20/2026 14:05:00", "", "User"),
)  # fmt: skip


def kayako_csv(rows: tuple[tuple[str, ...], ...], *, excel: bool = False) -> bytes:
    """A report CSV as Kayako's spreadsheet writer exports it (FORMATS.md 5), written by hand.

    Every field in double quotes, quotes doubled; ``excel``: UTF-8 BOM, ``sep=;``, semicolons.
    """
    sep = ";" if excel else ","
    lines = [sep.join('"' + v.replace('"', '""') + '"' for v in row) for row in (LABELS, *rows)]
    text = "\r\n".join(lines) + "\r\n"
    return (b"\xef\xbb\xbf" + b"sep=;\r\n" if excel else b"") + text.encode("utf-8")


# --- Kayako's report CSV and XLSX by the default mapping -------------------------------------


@pytest.mark.parametrize("excel", [False, True], ids=["plain-csv", "excel-csv"])
def test_kayako_report_csv_is_read_by_the_default_mapping(tmp_path: Path, excel: bool) -> None:
    parsed = read_file(write(tmp_path, "report.csv", kayako_csv(ROWS, excel=excel)))
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table, len(parsed.rejects)) == ("kayako-csv", "tickets", 0)
    frame = by_id(parsed)
    first, second = frame.loc["R-1"], frame.loc["R-2"]
    assert first["created_at"] == utc(2026, 3, 8, 14, 5)  # 9:05 CDT, the morning DST starts
    assert first["updated_at"] == utc(2026, 3, 9, 19, 0)  # 14:00 CDT
    assert second["created_at"] == utc(2026, 11, 20, 20, 5)
    assert second["updated_at"] is None or second["updated_at"] != second["updated_at"]  # unknown
    assert first["subject"] == 'A "quoted", s;ubject'
    assert (first["owner"], second["owner"]) == ("", "Ann Lee")
    assert (first["creator"], second["creator"]) == ("staff", "user")
    assert frame["source_line"].tolist() == ([3, 4] if excel else [2, 3])  # as the file numbers
    assert any("Priority" in n and "Ticket ID" not in n for n in parsed.notes)  # ignored, no error
    assert (first["kayako_id"], second["kayako_id"]) == ("7", "8")  # Ticket ID: internal id
    assert parsed.encoding == ("utf-8-sig" if excel else "utf-8")


def test_excel_csv_rejects_name_the_file_line(tmp_path: Path) -> None:
    rows = (*ROWS, ("9", "R-3", "Implementation", "Open", "Low", "", "Cy", "x",
                    "3/8/2026 2:30:00", "", "Staff"))  # fmt: skip
    parsed = read_file(write(tmp_path, "report.csv", kayako_csv(rows, excel=True)))
    assert_reconciles(parsed)
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"], reject["ticket_id"]) == (5, "Creation Date", "R-3")
    assert "does not exist in America/Chicago" in reject["reason"]


def test_kayako_report_xlsx_date_cells_are_local_times(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(LABELS)
    for row in ROWS:
        cells: list[object] = list(row)
        cells[0] = int(row[0])  # numbers are numbers
        for i in (8, 9):  # dates are serial days with Kayako's display format
            cells[i] = dt.datetime.strptime(row[i], "%m/%d/%Y %H:%M:%S") if row[i] else None
        ws.append(cells)
    for column in ("I", "J"):
        for cell in ws[column][1:]:
            cell.number_format = "m/d/yyyy h:mm:ss"
    path = tmp_path / "report.xlsx"
    wb.save(path)
    parsed = read_file(path)
    assert_reconciles(parsed)
    assert (parsed.format, len(parsed.rejects)) == ("kayako-csv", 0)
    frame = by_id(parsed)
    assert frame.loc["R-1", "created_at"] == utc(2026, 3, 8, 14, 5)
    assert frame.loc["R-1", "updated_at"] == utc(2026, 3, 9, 19, 0)
    assert frame.loc["R-2", "created_at"] == utc(2026, 11, 20, 20, 5)
    assert frame["source_line"].tolist() == [2, 3]


def test_day_first_is_selected_in_the_mapping(tmp_path: Path) -> None:
    default = (FIXTURES.parent.parent / "ipchange_core" / "kayako_report_mapping.yaml").read_text()
    assert 'date_format: "%m/%d/%Y %H:%M:%S"' in default
    mapping = write(
        tmp_path, "day-first.yaml", default.replace("%m/%d/%Y %H:%M:%S", "%d/%m/%Y %H:%M:%S")
    )
    report = write(tmp_path, "report.csv", kayako_csv(ROWS[:1]))
    us = by_id(read_file(report)).loc["R-1", "created_at"]
    day_first = by_id(read_file(report, mapping=mapping)).loc["R-1", "created_at"]
    assert (us, day_first) == (utc(2026, 3, 8, 14, 5), utc(2026, 8, 3, 14, 5))  # 3 Aug CDT
    late = ("7", "R-1", "Implementation", "Open", "", "", "", "", "13/8/2026 9:05:00", "", "User")
    parsed = read_file(write(tmp_path, "late.csv", kayako_csv((late,))))  # US: no month 13
    assert "is not a real date" in parsed.rejects.iloc[0]["reason"]
    assert by_id(read_file(tmp_path / "late.csv", mapping=mapping)).loc["R-1", "created_at"] == utc(
        2026, 8, 13, 14, 5
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3/8/2026 9:05:00", utc(2026, 3, 8, 14, 5)),  # no leading zeros
        ("03/08/2026 09:05:00", utc(2026, 3, 8, 14, 5)),  # leading zeros read too
        ("12/31/2026 23:59:59", utc(2027, 1, 1, 5, 59, 59)),
        ("2/29/2028 0:00:00", utc(2028, 2, 29, 6, 0)),  # leap day
        ("3/8/2026 3:00:00", utc(2026, 3, 8, 8, 0)),  # first instant after the gap (CDT)
        ("11/1/2026 2:00:00", utc(2026, 11, 1, 8, 0)),  # after the overlap (CST)
    ],
)
def test_kayako_dates_read(text: str, expected: object) -> None:
    us, codes = TimeParser("%m/%d/%Y %H:%M:%S", "America/Chicago", file=None).parse(
        pa.array([text], "large_string")
    )
    assert codes.tolist() == [OK]
    assert us[0] == expected.value // 1000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("3/8/2026 2:30:00", "does not exist in America/Chicago"),  # spring-forward gap
        ("11/1/2026 1:30:00", "is ambiguous in America/Chicago"),  # fall-back overlap
        ("2/29/2026 9:00:00", "is not a real date"),
        ("3/8/2026 24:00:00", "is not a real date"),
        ("3/8/2026 9:5:00", "does not match the date format"),  # minutes keep two digits
        ("3/8/26 9:05:00", "does not match the date format"),
        ("3/8/2026 9:05", "does not match the date format"),
        ("3/8/2026 9:05:00 PM", "does not match the date format"),
        ("123/8/2026 9:05:00", "does not match the date format"),
    ],
)
def test_kayako_dates_refused(tmp_path: Path, text: str, why: str) -> None:
    row = ("7", "R-1", "Implementation", "Open", "", "", "", "", text, "", "User")
    parsed = read_file(write(tmp_path, "report.csv", kayako_csv((row,))))
    assert_reconciles(parsed)
    assert len(parsed.frame) == 0
    reject = parsed.rejects.iloc[0]
    assert (reject["column"], reject["value"], reject["ticket_id"]) == (
        "Creation Date",
        text,
        "R-1",
    )
    assert why in reject["reason"]


def test_blank_creation_date_is_rejected_blank_last_activity_is_unknown(tmp_path: Path) -> None:
    rows = (("7", "R-1", "Implementation", "Open", "", "", "", "", "", "", "User"), ROWS[1])
    parsed = read_file(write(tmp_path, "report.csv", kayako_csv(rows)))
    assert_reconciles(parsed)
    assert parsed.frame["ticket_id"].tolist() == ["R-2"]
    assert parsed.frame["updated_at"].isna().tolist() == [True]
    assert parsed.rejects[["line", "column", "ticket_id"]].to_numpy().tolist() == [
        [2, "Creation Date", "R-1"]
    ]


CT = ZoneInfo("America/Chicago")


@given(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2999, 12, 30)))
def test_kayako_date_text_round_trips(local: dt.datetime) -> None:
    """Kayako's text of a wall-clock time reads back as zoneinfo resolves it (slow reference)."""
    local = local.replace(microsecond=0)
    text = (
        f"{local.month}/{local.day}/{local.year} {local.hour}:{local.minute:02}:{local.second:02}"
    )
    us, codes = TimeParser("%m/%d/%Y %H:%M:%S", "America/Chicago", file=None).parse(
        pa.array([text], pa.large_string())
    )
    wall = dt.datetime.strptime(text, "%m/%d/%Y %H:%M:%S")
    assert wall == local
    first, second = wall.replace(tzinfo=CT, fold=0), wall.replace(tzinfo=CT, fold=1)
    exists = first.astimezone(dt.UTC).astimezone(CT).replace(tzinfo=None) == wall
    if not exists:
        assert codes.tolist() == [GAP]
    elif first.utcoffset() != second.utcoffset():
        assert codes.tolist() == [OVERLAP]
    else:
        assert codes.tolist() == [OK]
        assert us[0] == int(first.timestamp()) * 1_000_000


# --- the fixture and other mappings --------------------------------------------------------------


def test_report_fixture_maps_labels_and_local_dates() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-csv", "tickets")
    frame = by_id(parsed)
    first = frame.loc["ABC-123-45678"]
    assert first["created_at"] == utc(2014, 8, 5, 13, 16)  # 8:16 CDT
    assert first["updated_at"] == utc(2014, 8, 5, 14, 0)
    assert (first["owner"], first["creator"], first["tags"]) == ("", "staff", "ip-change,isp")
    assert first["ticket_type"] == "IP Change"
    assert first["subject"] == 'IP change for site 12, "urgent"; today'
    assert frame.loc["ABC-123-45679", "created_at"] == utc(2026, 11, 20, 20, 5)  # 14:05 CST
    assert any("Priority" in note for note in parsed.notes)


def test_report_dst_overlap_is_rejected_under_its_label() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"], reject["ticket_id"]) == (
        4,
        "Creation Date",
        "ABC-123-45682",
    )
    assert "is ambiguous in America/Chicago" in reject["reason"]


def test_old_date_format_by_an_explicit_mapping(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "old.yaml",
        "date_format: '%d %B %Y %I:%M %p'\n"
        "columns: {ticket_id: Ticket Mask ID, department: Department, status: Status,"
        " created_at: Creation Date, creator: Creator}\n",
    )
    text = (
        "Ticket Mask ID,Department,Status,Creation Date,Creator\n"
        "ABC-1,Implementation,New,05 August 2014 08:16 AM,staff\n"
    )
    parsed = read_file(write(tmp_path, "old.csv", text), mapping=mapping)
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, "created_at"] == utc(2014, 8, 5, 13, 16)


REPORT = "Ticket Mask ID,Department,Status,Created\nR-1,General,Open,2026-11-23 09:15\n"


def test_report_without_creator_is_refused_unless_the_mapping_sets_a_default(
    tmp_path: Path,
) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%Y-%m-%d %H:%M'\n"
        "columns: {ticket_id: Ticket Mask ID, department: Department, status: Status,"
        " created_at: [Creation Date, Created]}\n",
    )
    report = write(tmp_path, "report.csv", REPORT)
    with pytest.raises(InvalidInputError, match=r"^report\.csv: report has no column for creator"):
        read_file(report, mapping=mapping)
    mapping.write_text(mapping.read_text() + "defaults: {creator: staff}\n")
    parsed = read_file(report, mapping=mapping)
    assert_reconciles(parsed)
    assert parsed.frame.loc[0, ["creator", "created_at"]].tolist() == [
        "staff",
        utc(2026, 11, 23, 15, 15),
    ]


def test_report_value_translations(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%Y-%m-%d %H:%M'\n"
        "columns: {ticket_id: Ticket Mask ID, department: Department, status: Status,"
        " created_at: Created, creator: Source}\n"
        "values: {creator: {Staff CP: staff, Email: user}}\n",
    )
    text = "Ticket Mask ID,Department,Status,Created,Source\nR-1,General,Open,2026-11-23 09:15,Staff CP\nR-2,General,Open,2026-11-23 09:15,Email\nR-3,General,Open,2026-11-23 09:15,Fax\n"
    parsed = read_file(write(tmp_path, "report.csv", text), mapping=mapping)
    assert_reconciles(parsed)
    assert parsed.frame["creator"].tolist() == ["staff", "user"]
    assert parsed.rejects[["line", "column"]].to_numpy().tolist() == [[4, "Source"]]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("columns: [a, b]\n", "needs a 'columns' section"),
        ("columns: {ticket_number: X}\n", "unknown field(s) ticket_number"),
        ("columns: {ticket_id: X}\nextra: 1\n", "unknown key(s): extra"),
        ("columns: {ticket_id: X}\ndate_format: 5\n", "date_format must be"),
        ("columns: {ticket_id: [1, 2]}\n", "must be a column label or a list of labels"),
        ("columns: {ticket_id: X\n", "not valid YAML"),
    ],
    ids=["not-a-mapping", "unknown-field", "unknown-key", "bad-date-format", "bad-label", "yaml"],
)
def test_bad_mapping_is_refused_naming_it(tmp_path: Path, yaml_text: str, message: str) -> None:
    mapping = write(tmp_path, "mine.yaml", yaml_text)
    with pytest.raises(InvalidInputError) as caught:
        load_mapping(mapping)
    assert str(caught.value).startswith("mine.yaml: ") and message in str(caught.value)


def test_mapping_with_an_unusable_date_format_is_refused(tmp_path: Path) -> None:
    mapping = write(
        tmp_path,
        "mine.yaml",
        "date_format: '%d/%m/%y'\ncolumns: {ticket_id: Ticket Mask ID, department: Department,"
        " status: Status, created_at: Created}\ndefaults: {creator: user}\n",
    )
    with pytest.raises(InvalidInputError, match=r"^mine\.yaml: date_format '%d/%m/%y'"):
        read_file(write(tmp_path, "report.csv", REPORT), mapping=mapping)


def test_default_mapping_is_packaged() -> None:
    mapping = load_mapping()
    assert mapping.date_format == "%m/%d/%Y %H:%M:%S"
    assert mapping.translations["creator"] == {"Staff": "staff", "User": "user"}
    assert mapping.columns["ticket_id"] == ("Ticket Mask ID",)
    assert not mapping.defaults


def test_sample_report_reads_as_the_sample_tickets() -> None:
    """data/sample/kayako-report.csv is tickets.csv as Kayako exports it: the same rows."""
    sample = FIXTURES.parent.parent / "data" / "sample"
    report, tickets = read_file(sample / "kayako-report.csv"), read_file(sample / "tickets.csv")
    assert_reconciles(report)
    assert (report.format, len(report.rejects), len(report.frame)) == ("kayako-csv", 0, 19)
    assert report.frame["kayako_id"].str.fullmatch(r"\d+").all()  # Ticket ID: the internal id
    columns = [
        c for c in tickets.frame.columns if c not in ("source_line", "ticket_type", "kayako_id")
    ]
    mine = report.frame[columns].sort_values("ticket_id", ignore_index=True)
    theirs = tickets.frame[columns].sort_values("ticket_id", ignore_index=True)
    pd.testing.assert_frame_equal(mine, theirs)
