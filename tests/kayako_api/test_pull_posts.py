"""``ipchange pull kayako`` fetches the posts of the IP change requests (issue 27).

Against the stand-in server process, as its user runs it (a process with the credentials in its
environment): which tickets' posts are asked for (the server's request log), the intake records
the posts give and their source, incremental pulls, corrected macros, customers' posts, broken
answers and tickets deleted between their page and their posts.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ipchange_core.policy import load_policy
from ipchange_core.requests import filter_matcher
from tests.kayako_api.helpers import (
    API_KEY,
    REPO,
    SECRET,
    dump,
    ipchange,
    pull,
    pull_args,
    pull_env,
    spawn,
    tickets,
)
from tests.kayako_server import KayakoServer, get, signed_query

START = 1_796_000_000  # the stand-in's data end (epoch s): fixed, so runs compare
POSTS = "/Tickets/TicketPost/ListAll/"


def server(n: int = 300, **kwargs) -> KayakoServer:
    return KayakoServer(API_KEY, SECRET, tickets=n, seed=11, start=START, **kwargs)


def ok(result, code: int = 0) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    return result.stdout


def asked(log: list[dict]) -> list[int]:
    """The internal ticket ids whose posts the pull asked for, in the order asked."""
    return [int(e["e"][len(POSTS) :]) for e in log if e["e"].startswith(POSTS)]


def requests_by_filter(db: Path) -> set[int]:
    """Internal ids of the stored tickets the default policy's request filter recognises.

    The filter's one predicate (``filter_matcher``) on each stored row: not the vectorised
    code the pull uses.
    """
    matches = filter_matcher(load_policy(None).latest.request_filter)
    return {
        int(row["kayako_id"])
        for row in tickets(db).values()
        if matches(row["ticket_type"], row["tags"], row["subject"])
    }


def intake(db: Path) -> dict[str, dict]:
    """The ``intake`` rows by ticket id, as column → value."""
    with sqlite3.connect(db) as conn:
        cursor = conn.execute("SELECT * FROM intake")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    return {r[names.index("ticket_id")]: dict(zip(names, r, strict=True)) for r in rows}


def mask_of(db: Path) -> dict[int, str]:
    """Internal ticket id → mask id of the stored tickets."""
    return {int(row["kayako_id"]): mask for mask, row in tickets(db).items()}


def served_posts(kayako: KayakoServer, ticket: int) -> list[dict[str, str]]:
    """A ticket's posts as the server answers them now (a signed request of the test's own)."""
    query = signed_query(POSTS + str(ticket), API_KEY, SECRET)
    status, body, _ = get(f"{kayako.url}?{query}")
    assert status == 200, body
    return [{child.tag: child.text or "" for child in post} for post in ET.fromstring(body)]


def expected_source(posts: list[dict[str, str]]) -> str | None:
    """``post <id>`` of the latest staff post holding a ``Cloud info`` line, and the one it
    corrects; ``None`` when no staff post holds one."""
    macros = sorted(
        (int(p["dateline"]), int(p["id"]))
        for p in posts
        if p["creator"] == "1"
        and re.search(r"(?im)^\s*cloud info\s*$", re.sub(r"<br\s*/?>|</?p>", "\n", p["contents"]))
    )
    if not macros:
        return None
    source = f"post {macros[-1][1]}"
    return source + (f" (corrects post {macros[-2][1]})" if len(macros) > 1 else "")


def wait_for_fault(kayako: KayakoServer) -> None:
    """Return once a request has taken a queued fault (at most 120 s)."""
    deadline = time.monotonic() + 120
    while not any(e["fault"] for e in kayako.log()) and time.monotonic() < deadline:
        time.sleep(0.05)


def summary(out: str) -> str:
    """The ``posts:`` line of a pull's output."""
    lines = [line for line in out.splitlines() if line.startswith("posts: ")]
    assert len(lines) == 1, out
    return lines[0]


def macro(new_ip: str, account: str = "ACCT-55501", reason: str = "ISP change") -> str:
    return (
        "Cloud info\nChannel: phone\nRequester: site\nAccount: "
        f"{account}\nSite: Site 201 – Austin\nContact: Dana Wells\nContact phone: (512) 555-0100\n"
        f"Person of record: Dana Wells\nReason: {reason}\nCurrent IP: 72.14.201.18\n"
        f"New IP: {new_ip}\nRequested change: ASAP\nTicket number given: yes\n"
        "Transferred to queue: yes"
    )


# --- which posts ------------------------------------------------------------------------------


def test_a_first_pull_asks_for_the_posts_of_the_requests_only_and_loads_their_macros(tmp_path):
    db = tmp_path / "db"
    with server(300) as kayako:
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "80"))
        log = kayako.log()
        wanted = requests_by_filter(db)
        served = {ticket: served_posts(kayako, ticket) for ticket in sorted(wanted)}
    ids = asked(log)
    assert sorted(ids) == sorted(set(ids)), "each ticket's posts asked once"
    assert set(ids) == wanted
    assert 0 < len(wanted) < len(tickets(db)) / 2, "a quarter or so are requests"
    entries = [e for e in log if e["e"].startswith(POSTS)]
    assert all(e["status"] == 200 and e["signature_ok"] for e in entries)
    pages = [i for i, e in enumerate(log) if e["e"].startswith("/Tickets/Ticket/ListAll/")]
    posts = [i for i, e in enumerate(log) if e["e"].startswith(POSTS)]
    assert max(pages) < min(posts), "the posts are asked for once the tickets are paged"
    masks = mask_of(db)
    stored = intake(db)
    expected = {
        masks[ticket]: source
        for ticket, posts in served.items()
        if (source := expected_source(posts)) is not None
    }
    assert expected, "the stand-in's requests carry macros"
    assert {mask: row["source"] for mask, row in stored.items()} == expected
    assert any("corrects" in source for source in expected.values())
    n_posts = sum(e["count"] for e in entries)
    line = summary(out)
    assert line.startswith(
        f"posts: {n_posts} post(s) of {len(wanted)} IP change request(s) among the "
        f"{len(tickets(db))} ticket(s) pulled; intake records: {len(expected)} loaded "
        f"(inserted {len(expected)} + updated 0 + unchanged 0), 0 rejected"
    )
    assert f"read {n_posts} = inserted {len(expected)} + updated 0" in out


def test_posts_served_in_the_documentation_style_give_the_same_intake(tmp_path):
    """The indented, escaped style of Kayako's documentation: the pull writes it in the wire
    style, and the reader finds the same records (HTML posts included)."""
    with server(150) as wire, server(150, style="doc") as doc:
        ok(pull(wire.url, tmp_path / "wire", tmp_path / "l"))
        ok(pull(doc.url, tmp_path / "doc", tmp_path / "l2"))
    stored = intake(tmp_path / "wire")
    assert stored and intake(tmp_path / "doc") == stored


def test_a_pull_with_nothing_new_asks_for_no_posts_and_changes_nothing(tmp_path):
    db = tmp_path / "db"
    with server(200) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        before = dump(db)
        kayako.clear_log()
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        log = kayako.log()
    after = dump(db)
    assert log and asked(log) == []
    assert summary(out) == (
        "posts: none asked for: no IP change request among the 0 new or changed ticket(s)"
    )
    for table in set(before) | set(after):
        if table != "load_manifests":
            assert after[table] == before[table], table
    # the lookups and the tickets recorded, no posts document
    assert len(after["load_manifests"]) == len(before["load_manifests"]) + 5


def test_a_ticket_with_a_stored_change_record_is_a_request_though_the_filter_misses_it(tmp_path):
    db, loads = tmp_path / "db", tmp_path / "l"
    with server(300) as kayako:
        ok(pull(kayako.url, db, loads, "--page-size", "100"))
        masks = mask_of(db)
        others = [t for t in sorted(masks) if t not in requests_by_filter(db)]
        recorded, plain = others[0], others[1]
        sample = (REPO / "data/sample/changes.csv").read_text(encoding="utf-8").splitlines()
        changes = tmp_path / "changes.csv"
        row = sample[1].split(",", 1)[1]  # a change record of the sample, for this ticket
        changes.write_text(f"{sample[0]}\n{masks[recorded]},{row}\n", encoding="utf-8")
        ok(ipchange("ingest", str(changes), "--db", f"sqlite:///{db}", "--rejects-dir", str(loads)))
        kayako.touch(ids=[recorded, plain], at=kayako.state()["max_lastactivity"] + 60)
        kayako.clear_log()
        out = ok(pull(kayako.url, db, loads, "--page-size", "100"))
        log = kayako.log()
    assert asked(log) == [recorded]  # as the reports count requests: with a change record
    assert "of 1 IP change request(s) among the 2 new or changed ticket(s)" in summary(out)


# --- incremental: a corrected macro, a customer's post ------------------------------------------


def test_a_macro_corrected_later_is_fetched_by_the_next_pull_and_wins(tmp_path):
    db = tmp_path / "db"
    with server(400) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        masks = mask_of(db)
        first = intake(db)
        ticket = next(t for t in sorted(requests_by_filter(db)) if masks[t] in first)
        old = first[masks[ticket]]
        mark = kayako.state()["max_lastactivity"]
        html = "<p>" + "<br />\n".join(macro("203.0.113.77").split("\n")) + "</p>"
        post_id = kayako.post(ticket, html, ishtml=True, staffid=3, at=mark + 600)
        kayako.clear_log()
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        log = kayako.log()
    assert asked(log) == [ticket]
    now = intake(db)
    row = now[masks[ticket]]
    assert row["new_ip"] == "203.0.113.77"
    assert row["account"] == "ACCT-55501"
    # it corrects the macro that gave the record stored before
    assert row["source"] == f"post {post_id} (corrects post {old['source'].split()[1]})"
    assert (row["received_at"], row["agent"]) == (old["received_at"], old["agent"])  # earliest
    assert {k: v for k, v in now.items() if k != masks[ticket]} == {
        k: v for k, v in first.items() if k != masks[ticket]
    }
    assert "intake records: 1 loaded (inserted 0 + updated 1 + unchanged 0), 0 rejected" in (
        summary(out)
    )
    assert "among the 1 new or changed ticket(s)" in summary(out)


def test_a_customers_post_is_never_intake(tmp_path):
    db = tmp_path / "db"
    with server(400) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        masks = mask_of(db)
        before = intake(db)
        requests = sorted(requests_by_filter(db))
        with_macro = next(t for t in requests if masks[t] in before)
        without = next(t for t in requests if masks[t] not in before)
        mark = kayako.state()["max_lastactivity"]
        for ticket in (with_macro, without):  # the customer pastes a macro of their own
            kayako.post(ticket, macro("198.51.100.9"), staffid=0, at=mark + 300)
        kayako.clear_log()
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        log = kayako.log()
    assert sorted(asked(log)) == sorted([with_macro, without])
    assert intake(db) == before
    assert masks[without] not in intake(db)
    assert "intake records: 1 loaded (inserted 0 + updated 0 + unchanged 1), 0 rejected" in (
        summary(out)
    )
    assert re.search(r"skipped \d+ post\(s\): [1-9]\d* by customers", out)


def test_a_rejected_macro_is_counted_named_and_leaves_the_stored_record(tmp_path):
    db, loads = tmp_path / "db", tmp_path / "l"
    with server(300) as kayako:
        ok(pull(kayako.url, db, loads, "--page-size", "100"))
        masks = mask_of(db)
        before = intake(db)
        ticket = next(t for t in sorted(requests_by_filter(db)) if masks[t] in before)
        mark = kayako.state()["max_lastactivity"]
        post_id = kayako.post(ticket, macro("300.1.2.3"), staffid=2, at=mark + 60)
        result = pull(kayako.url, db, loads, "--page-size", "100")
    out = ok(result, code=1)
    assert "intake records: 0 loaded (inserted 0 + updated 0 + unchanged 0), 1 rejected" in (
        summary(out)
    )
    assert f"post {post_id}" in result.stderr and "New IP" in result.stderr
    assert intake(db) == before


# --- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "what"),
    [("html", "an HTML page"), ("truncated", "malformed or cut-off XML")],
)
def test_a_posts_answer_that_is_no_kayako_document_loads_nothing(tmp_path, body, what):
    db = tmp_path / "db"
    with server(300) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        requests = sorted(requests_by_filter(db))[:6]
        mark = kayako.state()["max_lastactivity"]
        kayako.touch(ids=requests, at=mark + 900)
        before = dump(db)
        kayako.faults([{"endpoint": POSTS, "times": 1, "body": body}])
        kayako.clear_log()
        result = pull(kayako.url, db, tmp_path / "l", "--page-size", "100")
        broken = asked(kayako.log())
        kayako.clear_log()
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        again = asked(kayako.log())
    assert result.returncode == 2, result.stdout + result.stderr
    line = result.stderr.strip()
    assert line.startswith(f"Error: {kayako.url}?e={POSTS}{requests[0]}: ")
    assert what in line and "not a Kayako <posts> document; nothing was loaded" in line
    assert broken == [requests[0]], "the first broken answer stops the pull"
    assert dump(db) != before  # the next pull loaded the touched tickets and their posts
    assert again == requests


def test_a_ticket_deleted_before_its_posts_are_asked_is_counted_not_fatal(tmp_path):
    db = tmp_path / "db"
    with server(300) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        masks = mask_of(db)
        before = intake(db)
        requests = [t for t in sorted(requests_by_filter(db)) if masks[t] in before]
        gone, kept = requests[0], requests[-1]
        assert not str(kept).startswith(str(gone))
        mark = kayako.state()["max_lastactivity"]
        kayako.post(gone, macro("203.0.113.10"), staffid=1, at=mark + 60)
        kayako.post(kept, macro("203.0.113.11"), staffid=1, at=mark + 60)
        # the posts of `gone` wait 3 s: meanwhile the ticket is deleted (a real 404 follows)
        kayako.faults([{"endpoint": f"{POSTS}{gone}", "delay": 3}])
        kayako.clear_log()
        process = subprocess.Popen(
            pull_args(kayako.url, db, tmp_path / "l", "--page-size", "100"),
            env=pull_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for_fault(kayako)
        assert kayako.delete([gone]) == [gone]
        out, err = process.communicate(timeout=300)
        statuses = {int(e["e"][len(POSTS) :]): e["status"] for e in kayako.log() if POSTS in e["e"]}
    assert process.returncode == 0, out + err
    assert statuses == {gone: 404, kept: 200}
    line = summary(out)
    assert "; 1 ticket(s) gone meanwhile (404 Ticket not Found), their posts not read" in line
    after = intake(db)
    assert after[masks[gone]] == before[masks[gone]]
    assert after[masks[kept]]["new_ip"] == "203.0.113.11"


def test_a_404_other_than_ticket_not_found_stops_the_pull(tmp_path):
    db = tmp_path / "db"
    with server(200) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        request = sorted(requests_by_filter(db))[0]
        kayako.touch(ids=[request], at=kayako.state()["max_lastactivity"] + 60)
        before = dump(db)
        kayako.faults([{"endpoint": POSTS, "status": 404, "body": "text"}])
        result = pull(kayako.url, db, tmp_path / "l", "--page-size", "100")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"?e={POSTS}{request}: HTTP 404 Not Found" in result.stderr
    assert dump(db) == before


def test_since_asks_again_for_the_posts_of_every_request_in_its_window(tmp_path):
    db = tmp_path / "db"
    with server(300) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        kayako.clear_log()
        out = ok(
            pull(kayako.url, db, tmp_path / "l", "--page-size", "100", "--since", "2000-01-01")
        )
        log = kayako.log()
    assert sorted(asked(log)) == sorted(requests_by_filter(db))
    assert "among the 300 ticket(s) pulled" in summary(out)
    assert "(inserted 0 + updated 0 + unchanged" in summary(out)
    assert "nothing new" in out


def test_kill_9_while_the_posts_are_fetched_leaves_the_database_and_its_mark_as_before(tmp_path):
    db, clean = tmp_path / "db", tmp_path / "clean"
    with server(300) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        requests = sorted(requests_by_filter(db))[:5]
        kayako.touch(ids=requests, at=kayako.state()["max_lastactivity"] + 600)
        before = dump(db)
        kayako.faults([{"endpoint": POSTS, "times": 1, "delay": 30}])
        kayako.clear_log()
        process = spawn(kayako.url, db, tmp_path / "l", "--page-size", "100")
        wait_for_fault(kayako)  # the pull waits for its first posts answer
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        assert dump(db) == before
        kayako.faults([])
        kayako.clear_log()
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        again = asked(kayako.log())
        ok(pull(kayako.url, clean, tmp_path / "l2", "--page-size", "100"))
    assert again == requests, "the mark stayed: the next pull asks for the same posts"
    assert intake(db) == intake(clean)
    assert tickets(db) == tickets(clean)
