"""Loading intake from Kayako posts: tickets by internal id, and posts beside intake files.

Each test loads for real through ``pipeline.load_file`` (SQLite, and PostgreSQL when there is
one): posts find their ticket through the stored tickets, a record of one source loaded over
one of the other says so (``overrides``), and the policy's ``cloud_info.wins`` decides which
stands.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from ipchange_core import store
from ipchange_core.pipeline import load_file, load_posts
from ipchange_core.policy import load_policy
from tests.domain import header, kayako_ticket, row, write
from tests.ingest.test_kayako_posts import ISSUE_MACRO, live_post, posts_doc


def tickets_xml(tmp_path: Path) -> Path:
    tickets = "".join(kayako_ticket(n, displayid=f"K-{n}") for n in (5001, 5002))
    return write(tmp_path, "kayako-tickets.xml", f"<tickets>{tickets}</tickets>")


def posts_xml(tmp_path: Path, *posts: str) -> Path:
    return write(tmp_path, "kayako-posts.xml", posts_doc(*posts))


def intake_csv(tmp_path: Path, **values: str) -> Path:
    line = row("intake", ticket_id="K-5001", account="FROM-FILE", **values)
    return write(tmp_path, "intake.csv", header("intake") + "\n" + line + "\n")


def stored(engine: sa.Engine) -> dict[str, tuple[str, str, str]]:
    intake = store.read_frames(engine)["intake"]
    return {r.ticket_id: (r.account, r.source, r.overrides) for r in intake.itertuples(index=False)}


def test_posts_find_their_ticket_once_the_tickets_are_stored(engine, tmp_path):
    policy = load_policy()
    posts = posts_xml(tmp_path, live_post(41, ISSUE_MACRO))
    result, parsed = load_file(engine, posts, policy)
    assert (result.read, result.rejected, result.inserted) == (1, 1, 0)
    assert "ticketid '5001' matches no stored ticket" in parsed.rejects.iloc[0]["reason"]
    load_file(engine, tickets_xml(tmp_path), policy)
    result, parsed = load_file(engine, posts, policy)  # the same bytes: read again, not a repeat
    assert (result.read, result.rejected, result.inserted) == (1, 0, 1)
    assert stored(engine) == {"K-5001": ("ACCT-10452", "post 41", "")}
    result, _ = load_file(engine, posts, policy)
    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 1)


def test_a_record_over_one_of_the_other_source_names_it(engine, tmp_path):
    policy = load_policy()
    load_file(engine, tickets_xml(tmp_path), policy)
    load_file(engine, intake_csv(tmp_path), policy)
    assert stored(engine) == {"K-5001": ("FROM-FILE", "intake.csv", "")}
    posts = posts_xml(tmp_path, live_post(41, ISSUE_MACRO))
    result, _ = load_file(engine, posts, policy)  # the later load wins (the default)
    assert result.updated == 1
    assert stored(engine) == {"K-5001": ("ACCT-10452", "post 41", "intake.csv")}
    result, _ = load_file(engine, posts, policy)  # a reload keeps what it replaced
    assert (result.updated, result.unchanged) == (0, 1)
    assert stored(engine)["K-5001"][2] == "intake.csv"
    load_file(engine, intake_csv(tmp_path, site="edited"), policy)
    assert stored(engine) == {"K-5001": ("FROM-FILE", "intake.csv", "post 41")}


def _policy(tmp_path: Path, wins: str):
    return load_policy(
        write(
            tmp_path,
            "policy.yaml",
            f"versions:\n  - version: v2\n    effective_from: 2014-08-05\n"
            f"    cloud_info: {{wins: {wins}}}\n",
        )
    )


def test_the_policy_can_have_the_macro_win(engine, tmp_path):
    policy = _policy(tmp_path, "posts")
    load_file(engine, tickets_xml(tmp_path), policy)
    load_file(engine, posts_xml(tmp_path, live_post(41, ISSUE_MACRO)), policy)
    result, parsed = load_file(engine, intake_csv(tmp_path), policy)
    assert (result.read, result.skipped, result.inserted, result.updated) == (1, 1, 0, 0)
    assert "cloud_info.wins is posts" in parsed.notes[-1]
    assert stored(engine) == {"K-5001": ("ACCT-10452", "post 41", "")}


def test_the_policy_can_have_the_file_win(engine, tmp_path):
    policy = _policy(tmp_path, "file")
    load_file(engine, tickets_xml(tmp_path), policy)
    load_file(engine, intake_csv(tmp_path), policy)
    posts = posts_xml(
        tmp_path,
        live_post(41, ISSUE_MACRO),
        live_post(42, ISSUE_MACRO.replace("ACCT-10452", "OTHER"), ticketid="5002"),
    )
    result, _ = load_file(engine, posts, policy)
    assert (result.read, result.skipped, result.inserted) == (2, 1, 1)
    assert stored(engine) == {
        "K-5001": ("FROM-FILE", "intake.csv", ""),
        "K-5002": ("OTHER", "post 42", ""),
    }


def test_a_pull_loads_the_bytes_of_an_answer_like_the_file(engine, tmp_path):
    policy = load_policy()
    load_file(engine, tickets_xml(tmp_path), policy)
    answer = posts_doc(live_post(41, ISSUE_MACRO), live_post(42, "hi", creator="2")).encode()
    result, parsed = load_posts(engine, answer, "posts-5001.xml", policy)
    assert (result.read, result.inserted, result.skipped) == (2, 1, 1)
    assert parsed.format == "kayako-posts" and parsed.path.name == "posts-5001.xml"
    assert store.manifests(engine)["file_name"].iloc[-1] == "posts-5001.xml"
    assert stored(engine) == {"K-5001": ("ACCT-10452", "post 41", "")}
    path = write(tmp_path, "posts-5001.xml", answer.decode())
    result, _ = load_file(engine, path, policy)
    assert (result.read, result.unchanged, result.skipped) == (2, 1, 1)
