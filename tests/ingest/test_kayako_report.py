"""Kayako report CSVs through read_file: the column mapping, local dates, translations."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import read_file
from ipchange_core.ingest.kayako_report import load_mapping
from tests.domain import FIXTURES, assert_reconciles, by_id, utc, write

# --- report CSV ---------------------------------------------------------------------------


def test_report_fixture_maps_labels_and_local_dates() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    assert_reconciles(parsed)
    assert (parsed.format, parsed.table) == ("kayako-csv", "tickets")
    frame = by_id(parsed)
    first = frame.loc["ABC-123-45678"]
    assert first["created_at"] == utc(2014, 8, 5, 13, 16)  # 08:16 AM CDT
    assert first["updated_at"] == utc(2014, 8, 5, 14, 0)
    assert (first["owner"], first["creator"], first["tags"]) == ("", "staff", "ip-change,isp")
    assert first["ticket_type"] == "IP Change"
    assert frame.loc["ABC-123-45679", "created_at"] == utc(2026, 11, 20, 20, 5)  # 02:05 PM CST
    assert any("Priority" in note for note in parsed.notes)


def test_report_dst_overlap_is_rejected_under_its_label() -> None:
    parsed = read_file(FIXTURES / "kayako-report.csv")
    reject = parsed.rejects.iloc[0]
    assert (reject["line"], reject["column"]) == (4, "Creation Date")
    assert "is ambiguous in America/Chicago" in reject["reason"]


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
    assert mapping.date_format == "%d %B %Y %I:%M %p"
    assert mapping.columns["ticket_id"] == ("Ticket Mask ID",)
    assert not mapping.defaults
