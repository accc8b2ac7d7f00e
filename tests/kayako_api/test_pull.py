"""``ipchange pull kayako`` against the stand-in Kayako server, a real process on loopback.

Each test starts its own server (``tests.kayako_server``) and runs the pull as its user does: a
process with the credentials in its environment. The server checks every signature and logs
every request; the tests read that log and the SQLite database the pull wrote.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import math
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import time
from zoneinfo import ZoneInfo

import pytest

from ipchange_core import store
from ipchange_core.kayako_api.credentials import Credentials
from ipchange_core.kayako_api.paging import page_overlap
from ipchange_core.kayako_api.pull import SAFETY_OVERLAP_SECONDS, pull_kayako
from ipchange_core.policy import load_policy
from tests.kayako_api.helpers import (
    API_KEY,
    REPO,
    SAMPLES,
    SECRET,
    count_start,
    dump,
    ipchange,
    kayako_ids,
    list_all,
    pull,
    pull_args,
    pull_env,
    spawn,
    tickets,
)
from tests.kayako_server import KayakoServer, synthetic_lookups

START = 1_796_000_000  # the stand-in's data end (epoch s): fixed, so runs compare


def server(n: int = 300, **kwargs) -> KayakoServer:
    return KayakoServer(API_KEY, SECRET, tickets=n, seed=5, start=START, **kwargs)


def ok(result) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def error_line(result) -> str:
    """The one line an exit-2 pull printed on stderr."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


# --- first pull, paging, the status trap ------------------------------------------------------


@pytest.mark.parametrize("style", ["wire", "doc"])
def test_first_pull_loads_every_ticket_resolved_ones_too(tmp_path, style):
    with server(300, style=style) as kayako:
        out = ok(pull(kayako.url, tmp_path / "db", tmp_path / "loads", "--page-size", "40"))
        log = kayako.log()
        state = kayako.state()
    assert len(kayako_ids(tmp_path / "db")) == state["tickets"] == 300
    lookups = synthetic_lookups()
    resolved = set(lookups.statuses) - lookups.open_statuses()
    assert resolved, "the stand-in has resolved statuses"
    resolved_titles = {lookups.statuses[i]["title"] for i in resolved}
    stored_status = {row["status"] for row in tickets(tmp_path / "db").values()}
    assert stored_status & resolved_titles, "resolved tickets were pulled (the -1 trap avoided)"
    pages = list_all(log)
    for entry in pages:
        parts = entry["e"].strip("/").split("/")
        assert set(parts[4].split(",")) == {str(i) for i in lookups.statuses}
        assert set(parts[3].split(",")) == {str(i) for i in lookups.ticket_departments()}
        assert parts[9:] == ["lastactivity", "DESC"]
        assert count_start(entry)[0] == 40
    step = 40 - page_overlap(40)
    assert [count_start(e)[1] for e in pages] == [k * step for k in range(len(pages))]
    assert len(pages) == math.ceil((300 - 40) / step) + 1
    assert all(entry["signature_ok"] and entry["status"] == 200 for entry in log)
    assert len({entry["salt"] for entry in log}) == len(log), "a fresh salt every request"
    assert [e["e"] for e in log[:4]] == [
        "/Base/Department",
        "/Tickets/TicketStatus",
        "/Tickets/TicketType",
        "/Tickets/TicketPriority",
    ]
    assert "read 300 = inserted 300 + updated 0 + unchanged 0 + rejected 0" in out
    assert f"pulled 300 ticket(s) in {len(pages)} page(s)" in out


@pytest.mark.parametrize("page_size", [2, 7, 300, 1000])
def test_every_page_size_pulls_the_same_tickets(tmp_path, page_size):
    with server(60) as kayako:
        ok(pull(kayako.url, tmp_path / "a", tmp_path / "l", "--page-size", str(page_size)))
        pages = list_all(kayako.log())
        expected = set(range(1, 61))
    assert kayako_ids(tmp_path / "a") == expected
    assert all(count_start(e)[0] == page_size for e in pages)
    assert sum(e["count"] for e in pages) >= 60


def test_a_repeat_pull_with_nothing_new_changes_no_row(tmp_path):
    db = tmp_path / "db"
    with server(200) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        before = dump(db)
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
    after = dump(db)
    assert "nothing new" in out
    assert "inserted 0 + updated 0" in out
    for table in set(before) | set(after):
        if table != "load_manifests":  # each pull is recorded, like a reload of a file
            assert after[table] == before[table], table
    new = after["load_manifests"][len(before["load_manifests"]) :]
    assert len(new) == 5 and all(row[6] == 0 and row[7] == 0 for row in new)  # inserted, updated


# --- incremental ------------------------------------------------------------------------------


def test_a_later_pull_reads_only_back_to_the_mark_less_the_overlap(tmp_path):
    db = tmp_path / "db"
    with server(2000) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        mark = kayako.state()["max_lastactivity"]
        stored = tickets(db)
        kayako.clear_log()
        touched = kayako.touch(count=20, at=mark + 600)  # 1 % changed since
        out = ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        pages = list_all(kayako.log())
    # what the pull had to read: the touched ones and those within the overlap of the mark
    cut = (mark - SAFETY_OVERLAP_SECONDS) * 1_000_000  # updated_at: µs since the epoch
    window = sum(1 for t in stored.values() if t["updated_at"] >= cut)
    needed = len(touched) + window
    fetched = sum(e["count"] for e in pages)
    assert fetched <= needed + 2 * 100, (fetched, needed)  # at most a page past the window
    assert len(pages) <= math.ceil(needed / 95) + 1
    assert f"updated {len(touched)}" in out
    after = tickets(db)
    changed = {k for k in after if after[k] != stored[k]}
    assert len(changed) == len(touched)
    assert all(after[k]["updated_at"] == (mark + 600) * 1_000_000 for k in changed)


def test_since_forces_a_window_back_to_a_date(tmp_path):
    db = tmp_path / "db"
    tz = "America/Chicago"
    with server(400) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        kayako.clear_log()
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        incremental = sum(e["count"] for e in list_all(kayako.log()))
        # back to the day of the 200th latest activity: further than the mark reaches
        newest = sorted((t["updated_at"] for t in tickets(db).values()), reverse=True)
        since = dt.datetime.fromtimestamp(newest[200] // 1_000_000, ZoneInfo(tz)).date()
        kayako.clear_log()
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50", "--since", str(since)))
        pages = list_all(kayako.log())
    cut = dt.datetime.combine(since, dt.time(), ZoneInfo(tz)).timestamp() * 1_000_000
    in_window = sum(1 for t in tickets(db).values() if t["updated_at"] >= cut)
    assert in_window > 200 > incremental
    fetched = sum(e["count"] for e in pages)
    assert in_window <= fetched <= in_window + 2 * 50


# --- faults -----------------------------------------------------------------------------------


def test_503_then_success_is_retried(tmp_path):
    with server(100) as kayako:
        kayako.faults([{"endpoint": "/Tickets/Ticket/ListAll", "times": 2, "status": 503}])
        ok(pull(kayako.url, tmp_path / "db", tmp_path / "l", "--backoff", "0.05"))
        statuses = [e["status"] for e in list_all(kayako.log())]
    assert statuses[:3] == [503, 503, 200]
    assert len(kayako_ids(tmp_path / "db")) == 100


def test_429_waits_as_long_as_retry_after_says(tmp_path):
    with server(50) as kayako:
        kayako.faults([{"endpoint": "/Base/Department", "status": 429, "retry_after": "2"}])
        began = time.monotonic()
        ok(pull(kayako.url, tmp_path / "db", tmp_path / "l", "--backoff", "0"))
        took = time.monotonic() - began
        statuses = [e["status"] for e in kayako.log() if e["e"] == "/Base/Department"]
    assert statuses == [429, 200]
    assert took >= 2  # --backoff 0: only Retry-After made it wait


def test_a_page_slower_than_the_timeout_is_asked_again(tmp_path):
    with server(100) as kayako:
        kayako.faults([{"endpoint": "/Tickets/Ticket/ListAll", "times": 1, "delay": 4}])
        ok(pull(kayako.url, tmp_path / "db", tmp_path / "l", "--timeout", "1", "--backoff", "0"))
        deadline = time.monotonic() + 30
        while len(list_all(kayako.log())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)  # the server logs the slow request once its delay is over
        first = [count_start(e) for e in list_all(kayako.log())][:2]
    assert first[0] == first[1]  # the slow page was requested again
    assert len(kayako_ids(tmp_path / "db")) == 100


def test_failing_for_good_is_one_line_with_the_url_and_last_status(tmp_path):
    db = tmp_path / "db"
    with server(100) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l"))
        before = dump(db)
        kayako.faults([{"endpoint": "/Tickets/Ticket/ListAll", "times": 99, "status": 503}])
        result = pull(kayako.url, db, tmp_path / "l", "--tries", "3", "--backoff", "0")
        tries = [e for e in list_all(kayako.log()) if e["status"] == 503]
    line = error_line(result)
    assert len(tries) == 3
    assert line.startswith(f"Error: {kayako.url}?e=/Tickets/Ticket/ListAll/")
    assert "gave up after 3 tries; last: HTTP 503" in line
    assert "salt" not in line and "signature=" not in line and "apikey" not in line
    assert dump(db) == before


def test_a_server_that_is_not_there_is_one_line(tmp_path):
    with server(1) as kayako:
        url = kayako.url
    result = pull(url, tmp_path / "db", tmp_path / "l", "--tries", "2", "--backoff", "0")
    assert "gave up after 2 tries; last: connection failed" in error_line(result)


@pytest.mark.parametrize("who", ["key", "secret"])
def test_a_refused_key_or_signature_stops_at_once(tmp_path, who):
    env = pull_env(api_key="wrong") if who == "key" else pull_env(secret="wrong-secret")
    with server(10) as kayako:
        result = pull(kayako.url, tmp_path / "db", tmp_path / "l", env=env)
        log = kayako.log()
    line = error_line(result)
    assert len(log) == 1 and log[0]["status"] == 401
    assert "HTTP 401: the help desk refused the API key or the signature" in line
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("html", "an HTML page"),
        ("truncated", "malformed or cut-off XML"),
        ("empty", "an empty body"),
    ],
)
@pytest.mark.parametrize("endpoint", ["/Tickets/Ticket/ListAll", "/Tickets/TicketType"])
def test_an_answer_that_is_no_kayako_document_loads_nothing(tmp_path, body, what, endpoint):
    db = tmp_path / "db"
    with server(120) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "50"))
        before = dump(db)
        kayako.touch(count=30, at=START + 3600)
        # the second page of the next pull (or the type list) comes back broken
        kayako.faults([{"endpoint": endpoint, "times": 1, "body": body}])
        result = pull(kayako.url, db, tmp_path / "l", "--page-size", "50")
    line = error_line(result)
    assert f"?e={endpoint}" in line
    assert what in line and "nothing was loaded" in line
    assert dump(db) == before


def test_kill_9_mid_pull_leaves_the_database_as_before_and_the_next_pull_completes(tmp_path):
    db, clean = tmp_path / "db", tmp_path / "clean"
    with server(600) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        kayako.touch(count=200, at=START + 7200)
        before = dump(db)
        kayako.clear_log()
        kayako.faults([{"endpoint": "/Tickets/Ticket/ListAll", "times": 1, "delay": 30}])
        process = spawn(kayako.url, db, tmp_path / "l", "--page-size", "100")
        deadline = time.monotonic() + 120
        while not any(e["fault"] for e in kayako.log()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the pull waits for its slow first page
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        assert dump(db) == before
        kayako.faults([])
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "100"))
        ok(pull(kayako.url, clean, tmp_path / "l2", "--page-size", "100"))
    assert tickets(db) == tickets(clean)


def test_kill_9_at_any_moment_leaves_the_database_before_or_loaded(tmp_path):
    """Kill pulls at spread moments (fetching, reading, writing): never a half-loaded state."""
    db = tmp_path / "db"
    with server(3000) as kayako:
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "200"))
        kayako.touch(count=1500, at=START + 7200)
        before = dump(db)
        clean = tmp_path / "clean"
        began = time.monotonic()
        ok(pull(kayako.url, clean, tmp_path / "l2", "--page-size", "200"))
        ok(pull(kayako.url, clean, tmp_path / "l2", "--page-size", "200"))
        took = (time.monotonic() - began) / 2
        outcomes = set()
        for k in range(6):
            process = spawn(kayako.url, db, tmp_path / "l", "--page-size", "200")
            time.sleep(took * (k + 1) / 7)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            now = dump(db)
            if now == before:
                outcomes.add("before")
            else:
                assert tickets(db) == tickets(clean)
                outcomes.add("loaded")
                break
        ok(pull(kayako.url, db, tmp_path / "l", "--page-size", "200"))
    assert tickets(db) == tickets(clean)
    assert "before" in outcomes


def test_tickets_deleted_between_pages_lose_no_other_ticket(tmp_path):
    """Deleting tickets already read shifts the list up; the overlap and the step back catch it."""
    policy = load_policy(None)
    with server(500) as kayako, store.connected(f"sqlite:///{tmp_path / 'db'}") as engine:
        deleted: list[int] = []

        def delete_after_first_page(paged, size):
            if paged.pages == 1:
                read = sorted(int(i) for i in paged.tickets)
                deleted.extend(kayako.delete(read[:30]))

        result = pull_kayako(
            engine,
            kayako.url,
            Credentials(API_KEY, SECRET),
            policy,
            page_size=50,
            on_page=delete_after_first_page,
        )
        present = set(range(1, 501)) - set(deleted)
    assert len(deleted) == 30
    assert result.paged.steps_back >= 1
    assert present <= kayako_ids(tmp_path / "db")


# --- secrets ----------------------------------------------------------------------------------


def test_the_secret_is_in_no_output_file_or_table(tmp_path):
    db, loads = tmp_path / "db", tmp_path / "loads"
    outputs = []
    with server(150) as kayako:
        outputs.append(pull(kayako.url, db, loads, "--page-size", "40"))
        kayako.touch(count=10, at=START + 60)
        outputs.append(pull(kayako.url, db, loads, "--page-size", "40"))
        outputs.append(pull(kayako.url, db, loads, env=pull_env(secret=SECRET + "x")))
        kayako.faults([{"endpoint": "/Tickets/Ticket/ListAll", "times": 9, "status": 503}])
        outputs.append(pull(kayako.url, db, loads, "--tries", "2", "--backoff", "0"))
        kayako.faults([{"endpoint": "/Tickets/TicketStatus", "times": 1, "body": "html"}])
        outputs.append(pull(kayako.url, db, loads))
        outputs.append(pull(kayako.url, db, loads, "--debug", env=pull_env(secret="y" + SECRET)))
    assert [r.returncode for r in outputs] == [0, 0, 2, 2, 2, 2]
    for result in outputs:
        assert SECRET not in result.stdout + result.stderr
    for path in loads.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path
    assert any(loads.iterdir())
    for table, rows in dump(db).items():
        assert rows or table != "tickets"
        for row in rows:
            assert not any(SECRET in str(value) for value in row), table
    assert SECRET.encode() not in db.read_bytes()


# --- the real samples -------------------------------------------------------------------------


def test_the_real_samples_load(tmp_path):
    with KayakoServer(API_KEY, SECRET, samples=SAMPLES) as kayako:
        out = ok(pull(kayako.url, tmp_path / "db", tmp_path / "l"))
    stored = tickets(tmp_path / "db")
    assert list(stored) == ["OLJ-171-16930"]
    row = stored["OLJ-171-16930"]
    assert (row["subject"], row["department"], row["status"], row["owner"]) == (
        "This is just a test",
        "Sales",
        "Open",
        "",
    )
    assert "read 1 = inserted 1" in out


# --- both backends ----------------------------------------------------------------------------


@pytest.mark.xdist_group("postgres")
def test_pull_then_incremental_pull_on_each_backend(engine):
    """The pull's one transaction (lookups, tickets, posts, mark) on SQLite and on PostgreSQL."""
    policy = load_policy(None)
    keys = Credentials(API_KEY, SECRET)
    with server(150) as kayako:
        first = pull_kayako(engine, kayako.url, keys, policy, page_size=40)
        assert first.tickets.inserted == 150 and first.mark_before is None
        assert first.mark_after == kayako.state()["max_lastactivity"]
        touched = kayako.touch(count=3, at=START + 900)
        again = pull_kayako(engine, kayako.url, keys, policy, page_size=40)
        same = pull_kayako(engine, kayako.url, keys, policy, page_size=40)
    assert again.mark_before == first.mark_after and again.mark_after == START + 900
    assert (again.tickets.inserted, again.tickets.updated) == (0, len(touched))
    assert again.tickets.read < 150
    assert not same.changed and same.mark_after == again.mark_after
    assert store.pull_mark(engine, kayako.url) == START + 900
    assert first.intake is not None and first.intake.inserted > 0  # the requests' macros
    assert same.intake is None  # nothing new: no posts asked for
    with_posts = sum(pull.posts.path is not None for pull in (first, again, same))
    manifests = store.manifests(engine)
    assert len(manifests) == 15 + with_posts
    assert set(manifests["format"]) == {"kayako-lookups", "kayako-xml", "kayako-posts"}


# --- what the user sees -----------------------------------------------------------------------


def test_a_terminal_sees_a_progress_bar_of_tickets_and_pages(tmp_path):
    with server(300) as kayako:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
        process = subprocess.Popen(
            pull_args(kayako.url, tmp_path / "db", tmp_path / "l", "--page-size", "40"),
            env=pull_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pull closed its end
                break
            if not chunk:
                break
            shown += chunk
        out = process.stdout.read().decode()
        assert process.wait() == 0
        os.close(master)
        piped = pull(kayako.url, tmp_path / "db2", tmp_path / "l2", "--page-size", "40")
    bar = shown.decode()
    assert re.search(r"pulling: 300 tickets, 9 pages", bar), bar
    assert re.search(r"pulling: 300 tickets, 9 pages, posts of (\d+)/\1 requests", bar), bar
    assert "pulling" not in out and "pulling" not in piped.stderr  # no bar when not a terminal


def test_the_summary_says_when_the_pulled_period_has_no_audit_rows(tmp_path):
    db = tmp_path / "db"
    with server(100) as kayako:
        first = ok(pull(kayako.url, db, tmp_path / "l"))
        mark = kayako.state()["max_lastactivity"]
        ticket = next(iter(tickets(db)))
        events = tmp_path / "ticket_events.csv"
        at = dt.datetime.fromtimestamp(mark, dt.UTC).isoformat()
        events.write_text(
            f"ticket_id,at,field,old_value,new_value,actor\n{ticket},{at},status,New,Open,Sam\n",
            encoding="utf-8",
        )
        ingest = ipchange(
            "ingest", str(events), "--db", f"sqlite:///{db}", "--rejects-dir", str(tmp_path / "l")
        )
        assert ingest.returncode == 0, ingest.stdout + ingest.stderr
        second = ok(pull(kayako.url, db, tmp_path / "l"))
    assert "no audit rows from" in first and "routing time stays unknown" in first
    assert "no audit rows" not in second


def test_without_credentials_the_pull_is_one_line_and_touches_nothing(tmp_path):
    env = {k: v for k, v in pull_env().items() if not k.startswith("IPCHANGE_KAYAKO")}
    with server(5) as kayako:
        result = pull(kayako.url, tmp_path / "db", tmp_path / "l", env=env)
        log = kayako.log()
    assert "IPCHANGE_KAYAKO_API_KEY and IPCHANGE_KAYAKO_SECRET_KEY" in error_line(result)
    assert log == [] and not (tmp_path / "db").exists()


def test_a_settings_file_others_may_read_is_refused(tmp_path):
    config = tmp_path / "kayako.yaml"
    config.write_text(f"api_key: {API_KEY}\nsecret_key: {SECRET}\n", encoding="utf-8")
    config.chmod(0o644)
    env = {k: v for k, v in pull_env().items() if not k.startswith("IPCHANGE_KAYAKO")}
    with server(5) as kayako:
        refused = pull(
            kayako.url, tmp_path / "db", tmp_path / "l", "--kayako-config", str(config), env=env
        )
        config.chmod(0o600)
        accepted = pull(
            kayako.url,
            tmp_path / "db",
            tmp_path / "l",
            env=env | {"IPCHANGE_KAYAKO_CONFIG": str(config)},
        )
    assert "readable by others; chmod 600" in error_line(refused)
    assert SECRET not in refused.stderr
    assert "read 5 = inserted 5" in ok(accepted)


def test_a_ticket_that_fails_the_checks_is_rejected_like_a_row_of_a_file(tmp_path):
    samples = tmp_path / "samples"
    samples.mkdir()
    for name in ("departments", "ticketstatuses", "tickettypes", "ticketpriorities"):
        (samples / f"{name}.xml").write_bytes((SAMPLES / f"{name}.xml").read_bytes())
    listall = (SAMPLES / "tickets-listall.xml").read_text(encoding="utf-8")
    first = listall[listall.index("    <ticket ") : listall.index("</tickets>")]
    bad = (
        first.replace('<ticket id="2"', '<ticket id="3"')
        .replace("OLJ-171-16930", "OLJ-171-16931")
        .replace("<typeid>1</typeid>", "<typeid>99</typeid>")
    )
    (samples / "tickets-listall.xml").write_text(
        listall.replace("</tickets>", bad + "</tickets>"), encoding="utf-8"
    )
    loads = tmp_path / "loads"
    with KayakoServer(API_KEY, SECRET, samples=samples) as kayako:
        result = pull(kayako.url, tmp_path / "db", loads)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "read 2 = inserted 1 + updated 0 + unchanged 0 + rejected 1" in result.stdout
    assert "1 rejected row(s), reasons in" in result.stderr
    assert "ticket type id '99' is not in the ticket type lookup" in result.stderr
    (rejects,) = loads.glob("*tickets.xml.rejects.csv")
    text = rejects.read_text(encoding="utf-8")
    assert "OLJ-171-16931" in text and "typeid" in text
    assert list(tickets(tmp_path / "db")) == ["OLJ-171-16930"]
