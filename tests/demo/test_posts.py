"""The demo's posts (ipchange_core/demo/posts.py): Kayako's wire style, and the demo load's
intake coming from them (issue 27)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from ipchange_core import reports, store
from ipchange_core.demo import DemoDataSet
from ipchange_core.demo import reference as ref
from ipchange_core.demo.posts import POST_ELEMENTS
from ipchange_core.demo.run import DEMO_LOADS
from ipchange_core.ingest import read_file
from ipchange_core.pipeline import load_file
from ipchange_core.policy import load_policy


def test_posts_are_written_as_a_live_kayako_server_writes_them(clean: DemoDataSet) -> None:
    raw = clean.paths[ref.KAYAKO_POSTS_XML].read_text(encoding="utf-8")
    assert raw.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<posts>\n<post>\n<id><![CDATA[')
    assert "\n  " not in raw  # no indentation
    assert "<emailto />" in raw  # an empty value
    root = ET.fromstring(raw.encode())
    posts = root.findall("post")
    assert len(posts) == clean.rows[ref.KAYAKO_POSTS_XML]
    for post in posts:
        assert [child.tag for child in post] == list(POST_ELEMENTS)


def _contents(ds: DemoDataSet) -> list[tuple[str, str, str]]:
    root = ET.parse(ds.paths[ref.KAYAKO_POSTS_XML]).getroot()
    return [(p.findtext("creator"), p.findtext("ishtml"), p.findtext("contents")) for p in root]


def test_every_kind_of_post_the_issue_asks_for(clean: DemoDataSet) -> None:
    posts = _contents(clean)
    macros = [(c, h, t) for c, h, t in posts if "Cloud info" in t]
    assert all(c == "1" for c, _, _ in macros)  # only staff post the macro
    assert any(h == "1" and ("<br />" in t or "<p>" in t) for _, h, t in macros)  # HTML
    assert any(h == "0" for _, h, _ in macros)  # plain
    assert any(t.startswith("Corrected") for _, _, t in macros)  # a corrected macro
    assert any(c == "2" for c, _, _ in posts)  # customers' own posts, without a macro
    assert any(re.search(r"(?m)^Contact phone:$", t) for _, _, t in macros)  # a field left blank
    assert any("Contact phone" not in t for _, h, t in macros if h == "0")  # a line left out


@pytest.fixture(scope="module")
def loaded(clean: DemoDataSet, tmp_path_factory: pytest.TempPathFactory):
    """The demo's loads (``make demo``'s, in order) into a SQLite database."""
    db = tmp_path_factory.mktemp("db") / "demo.db"
    engine = store.connect(f"sqlite:///{db}")
    results = {name: load_file(engine, clean.paths[name], load_policy()) for name in DEMO_LOADS}
    yield engine, results, db
    engine.dispose()


def test_the_demo_load_takes_intake_from_the_posts(clean: DemoDataSet, loaded) -> None:
    engine, results, _ = loaded
    assert ref.INTAKE_CSV not in DEMO_LOADS and ref.KAYAKO_POSTS_XML in DEMO_LOADS
    result, parsed = results[ref.KAYAKO_POSTS_XML]
    assert parsed.format == "kayako-posts" and result.table == "intake"
    assert result.read == clean.rows[ref.KAYAKO_POSTS_XML]
    assert result.rejected == 0, parsed.reject_messages()
    intake = store.read_frames(engine)["intake"]
    assert len(intake) == result.inserted > 0
    assert intake["source"].str.fullmatch(r"post \d+( \(corrects post \d+\))?").all()
    assert intake["source"].str.contains("corrects").any()
    # the same records as the intake file the generator wrote beside them (clean: no bad rows)
    from_file = read_file(clean.paths[ref.INTAKE_CSV]).frame.set_index("ticket_id")
    from_posts = intake.set_index("ticket_id")
    assert set(from_posts.index) == set(from_file.index)
    fields = [
        "channel", "requester_type", "account", "site", "reseller", "contact_name",
        "contact_phone", "person_of_record", "reason", "current_ip", "new_ip",
        "requested_change_at", "requested_asap", "ticket_number_given", "transferred_to_queue",
        "agent",
    ]  # fmt: skip
    expected = from_file[fields].copy()
    # the macro writes the requested time to the minute (m/d/yyyy h:mm AM/PM)
    expected["requested_change_at"] = expected["requested_change_at"].dt.floor("min")
    pd.testing.assert_frame_equal(
        from_posts.loc[from_file.index, fields], expected, check_dtype=False
    )
    # the posts' receipt is when the agent wrote the macro: never before the ticket existed
    tickets = store.read_frames(engine)["tickets"].set_index("ticket_id")
    assert (from_posts["received_at"] >= tickets.loc[from_posts.index, "created_at"]).all()


def test_the_intake_log_shows_each_records_post(clean: DemoDataSet, loaded) -> None:
    _, _, db = loaded
    data = reports.load(f"{clean.start:%Y-%m-%d}_{clean.end:%Y-%m-%d}", db_url=str(Path(db)))
    page = reports.intake_log(data).markup
    cells = re.findall(r"<td>(post \d+[^<]*|—)</td>", page)
    with_intake = int(data.requests["has_intake"].sum())
    assert sum(c.startswith("post ") for c in cells) == with_intake > 0
    assert cells.count("—") >= len(data.requests) - with_intake
