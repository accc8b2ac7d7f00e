"""Kayako's lookup lists (FORMATS.md 3): read in both styles, stored by version, used by readers."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from ipchange_core import store
from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import detect_format, read_file
from ipchange_core.ingest.kayako_lookups import read_lookups
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy
from tests.domain import kayako_ticket, write

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "kayako" / "samples"
LISTS = ("departments", "ticketstatuses", "tickettypes", "ticketpriorities")


def sample(name: str) -> Path:
    path = SAMPLES / f"{name}.xml"
    if not path.exists():
        pytest.skip(f"the real Kayako samples are not beside the repository ({SAMPLES})")
    return path


@pytest.mark.parametrize(
    ("name", "rows", "entries"),
    [
        ("departments", [(1, "Support", "tickets", ""), (2, "Sales", "tickets", "")], 2),
        ("ticketstatuses", [(1, "Open", "", "0"), (3, "Closed", "", "1")], 2),
        ("tickettypes", [(1, "Feedback", "", "")], 2),  # id 1 public and private
        ("ticketpriorities", [(1, "Critical", "", "")], 2),
    ],
)
def test_the_real_samples_read_as_they_are(name: str, rows: list[tuple], entries: int) -> None:
    path = sample(name)
    assert detect_format(path) == "kayako-lookups"
    lookup = read_lookups(path)
    assert lookup.kind == name
    assert [tuple(r) for r in lookup.rows.itertuples(index=False)] == rows
    assert (lookup.entries, lookup.repeated) == (entries, entries - len(rows))
    parsed = read_file(path)
    assert (parsed.rows_read, parsed.rows_skipped, len(parsed.frame)) == (
        entries,
        entries - len(rows),
        len(rows),
    )


INDENTED = """<?xml version="1.0" encoding="UTF-8"?>
<departments>
    <department>
        <id>3</id>
        <title>Implementation</title>
        <type>public</type>
        <module>tickets</module>
    </department>
    <department>
        <id>8</id>
        <title>Chat</title>
        <type>public</type>
        <module>livechat</module>
    </department>
</departments>
"""
WIRE = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<departments>\n<department>\n'
    "<id><![CDATA[3]]></id>\n<title><![CDATA[Implementation]]></title>\n"
    "<type><![CDATA[public]]></type>\n<module><![CDATA[tickets]]></module>\n"
    "<parentdepartmentid />\n</department>\n<department>\n<id><![CDATA[8]]></id>\n"
    "<title><![CDATA[Chat]]></title>\n<type><![CDATA[public]]></type>\n"
    "<module><![CDATA[livechat]]></module>\n<parentdepartmentid />\n</department>\n"
    "</departments>\n"
)


def test_both_styles_read_alike(tmp_path: Path) -> None:
    a = read_lookups(write(tmp_path, "a.xml", INDENTED)).rows
    b = read_lookups(write(tmp_path, "b.xml", WIRE)).rows
    assert a.equals(b)
    assert a["module"].tolist() == ["tickets", "livechat"]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("Support", None),
        ("Help Desk", "ticketstatus id 4 is listed with two titles, 'Support' and 'Help Desk'"),
    ],
)
def test_a_repeated_id(tmp_path: Path, second: str, message: str | None) -> None:
    text = (
        "<ticketstatuses>"
        "<ticketstatus><id>4</id><title>Support</title><type>public</type></ticketstatus>"
        f"<ticketstatus><id>4</id><title>{second}</title><type>private</type></ticketstatus>"
        "</ticketstatuses>"
    )
    path = write(tmp_path, "ticketstatuses.xml", text)
    if message is None:
        assert read_lookups(path).rows["title"].tolist() == ["Support"]
    else:
        with pytest.raises(InvalidInputError, match=message):
            read_lookups(path)


def test_stored_lookups_name_the_ids_of_ticket_xml(engine: sa.Engine, tmp_path: Path) -> None:
    policy = load_policy()
    statuses = write(
        tmp_path,
        "ticketstatuses.xml",
        "<ticketstatuses><ticketstatus><id>31</id><title>Waiting on ISP</title>"
        "<markasresolved>0</markasresolved></ticketstatus></ticketstatuses>",
    )
    departments = write(tmp_path, "departments.xml", WIRE.replace("[3]", "[41]"))
    for path in (statuses, departments):
        result, parsed = load_file(engine, path, policy)
        assert (parsed.format, result.inserted, result.read) == (
            "kayako-lookups",
            *[len(parsed.frame)] * 2,
        )
    again, _ = load_file(engine, statuses, policy)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 1)
    lookups = store.kayako_lookups(engine, policy.latest.kayako)
    assert lookups.statuses[31] == "Waiting on ISP"
    assert lookups.departments[41] == "Implementation"
    assert 8 not in lookups.departments  # a live chat department holds no tickets
    assert lookups.departments[2] == "Customer Service"  # the policy's ids are the fallback
    xml = write(
        tmp_path,
        "tickets.xml",
        "<tickets>" + kayako_ticket(1, departmentid="41", statusid="31") + "</tickets>",
    )
    result, _ = load_file(engine, xml, policy)
    assert result.rejected == 0
    stored = store.read_frames(engine)["tickets"]
    assert stored[["department", "status"]].to_numpy().tolist() == [
        ["Implementation", "Waiting on ISP"]
    ]


def test_a_changed_list_is_a_new_version(engine: sa.Engine, tmp_path: Path) -> None:
    policy = load_policy()
    first = "<tickettypes><tickettype><id>3</id><title>IP Change</title></tickettype></tickettypes>"
    path = write(tmp_path, "tickettypes.xml", first)
    load_file(engine, path, policy)
    path.write_text(first.replace("IP Change", "IP address change"))
    result, _ = load_file(engine, path, policy)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    assert store.kayako_lookups(engine, policy.latest.kayako).types[3] == "IP address change"
    manifests = store.manifests(engine)
    assert manifests["table"].tolist() == ["kayako_lookups"] * 2
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT count(*) FROM kayako_lookups")).scalar_one()
    assert versions == 2  # the first version is kept
