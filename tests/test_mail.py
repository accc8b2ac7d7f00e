"""`ipchange mail …` through a real SMTP server process (aiosmtpd) on loopback."""

from __future__ import annotations

import csv
import email
import email.policy
import html
import io
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ipchange_core import reports
from ipchange_core.check import PROBLEM_LABELS, PROBLEMS
from ipchange_core.cli import main
from ipchange_core.mail import MailError, SmtpSettings, smtp_settings
from tests.conftest import _unavailable
from tests.report_fixtures import EMAILS_AND_PHONES, PAYLOADS, build_db

SERVER = Path(__file__).with_name("smtp_server.py")
USER, PASSWORD = "mailer", "s3cret-Pa55-word"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inbox")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(port), str(folder), USER, PASSWORD],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        yield {"port": port, "folder": folder}
    finally:
        process.terminate()
        process.wait(timeout=10)


def smtp_env(server, **changes) -> dict[str, str]:
    env = {
        "IPCHANGE_SMTP_HOST": "127.0.0.1",
        "IPCHANGE_SMTP_PORT": str(server["port"]),
        "IPCHANGE_SMTP_TLS": "none",
        "IPCHANGE_SMTP_USER": USER,
        "IPCHANGE_SMTP_PASSWORD": PASSWORD,
        "IPCHANGE_SMTP_FROM": "ipchange <reports@example.org>",
        "IPCHANGE_SMTP_CONFIG": "",
        "IPCHANGE_SMTP_CAFILE": "",
    }
    return env | changes


def inbox(server) -> list[Path]:
    return sorted(server["folder"].glob("*.eml"))


def invoke(args, env):
    return CliRunner().invoke(main, args, env=env)


def received(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)


def parts(msg) -> dict[str, object]:
    """text, html and {filename: bytes} of a received message, checking its structure."""
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_payload()[0]
    assert body.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in body.get_payload()] == ["text/plain", "text/html"]
    files = {a.get_filename(): a.get_content() for a in msg.iter_attachments()}
    files = {name: d.encode() if isinstance(d, str) else d for name, d in files.items()}
    return {
        "text": msg.get_body(("plain",)).get_content(),
        "html": msg.get_body(("html",)).get_content(),
        "files": files,
    }


def test_check_mail_parts_escaping_and_no_contact_details(server, tmp_path):
    url = build_db(tmp_path)
    before = len(inbox(server))
    result = invoke(
        [
            *("mail", "check", "--at", "2026-11-18 07:00", "--db", url),
            *("--to", "lead@example.org", "--to", "Billing <billing@example.org>"),
            *("--out", str(tmp_path / "reports")),
        ],
        smtp_env(server),
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    new = inbox(server)[before:]
    assert len(new) == 1
    rcpt = new[0].with_suffix(".rcpt").read_text().split()
    assert rcpt == ["lead@example.org", "billing@example.org"]
    raw = new[0].read_bytes()
    assert PASSWORD.encode() not in raw
    msg = received(new[0])
    assert msg["Subject"].startswith("ipchange check 2026-11-18: ")
    got = parts(msg)
    assert set(got["files"]) == {"check-2026-11-18.html", "check-2026-11-18.csv"}
    rows = list(csv.DictReader(io.StringIO(got["files"]["check-2026-11-18.csv"].decode())))
    assert rows
    # e-mail-safe HTML: inline styles only, no script or stylesheet; every payload escaped
    body = got["html"]
    assert "<script" not in body.lower() and "<style" not in body.lower()
    assert "<link" not in body.lower() and "<img" not in body.lower()
    shown = [p for p in PAYLOADS if html.escape(p, quote=True) in body]
    assert shown and not any(p in body for p in PAYLOADS)
    # the tiles give the CSV's counts
    for problem in PROBLEMS:
        n = sum(r["problem"] == problem for r in rows)
        assert f">{n:,}</div>" in body.split(html.escape(PROBLEM_LABELS[problem]))[1][:400]
    assert f"{len(rows)} problem(s)" in got["text"]
    attached_page = got["files"]["check-2026-11-18.html"].decode()
    assert "<script" not in attached_page.lower()
    everything = got["text"] + body + b"".join(got["files"].values()).decode()
    assert not any(c in everything for c in EMAILS_AND_PHONES)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"IPCHANGE_SMTP_HOST": ""}, "mail setting host is missing"),
        ({"IPCHANGE_SMTP_FROM": ""}, "from (the sender address) is missing"),
        ({"IPCHANGE_SMTP_PORT": "99999"}, "port: expected 1–65535"),
        ({"IPCHANGE_SMTP_TLS": "maybe"}, "tls: expected starttls, tls or none"),
        ({"IPCHANGE_SMTP_PASSWORD": "wrong-" + PASSWORD}, "535"),
        ({"IPCHANGE_SMTP_PORT": "1"}, "ConnectionRefusedError"),
        ({"IPCHANGE_SMTP_TLS": "tls"}, "mail server 127.0.0.1"),
    ],
)
def test_bad_settings_or_server_exit_2_in_one_line(server, tmp_path, changes, message):
    url = build_db(tmp_path, hostile=False)
    before = len(inbox(server))
    result = invoke(
        [
            *("mail", "fees", "--month", "2026-11", "--db", url),
            *("--to", "b@example.org", "--out", str(tmp_path / "reports")),
        ],
        smtp_env(server, **changes),
    )
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and message in result.output
    assert PASSWORD not in result.output
    assert len(inbox(server)) == before
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM export_batches")).scalar() == 0
            assert not sa.inspect(conn).has_table("mail_sent")
    finally:
        engine.dispose()


def test_settings_file_must_be_owner_only_and_the_password_stays_hidden(tmp_path):
    path = tmp_path / "smtp.yaml"
    path.write_text(
        f"host: mail.example.org\nuser: {USER}\npassword: {PASSWORD}\nfrom: r@example.org\n"
    )
    path.chmod(0o644)
    with pytest.raises(MailError, match="readable by others; chmod 600") as err:
        smtp_settings(path, environ={})
    assert PASSWORD not in str(err.value)
    path.chmod(0o600)
    settings = smtp_settings(path, environ={"IPCHANGE_SMTP_PORT": "2525"})
    assert (settings.host, settings.port, settings.security) == (
        "mail.example.org",
        2525,
        "starttls",
    )
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert isinstance(settings, SmtpSettings) and settings.password == PASSWORD


def test_bad_recipient_is_refused_before_anything_is_sent(server, tmp_path):
    result = invoke(
        ["mail", "check", "--db", "sqlite:///nowhere.db", "--to", "not-an-address"],
        smtp_env(server),
    )
    assert result.exit_code == 2 and "not an e-mail address" in result.output


def test_fee_mail_sends_a_batch_once_unless_asked(server, tmp_path):
    url = build_db(tmp_path, hostile=False)
    args = ["mail", "fees", "--month", "2026-11", "--db", url, "--to", "billing@example.org"]
    args += ["--out", str(tmp_path / "reports")]
    before = len(inbox(server))
    first = invoke(args, smtp_env(server))
    assert first.exit_code == 0, first.output
    new = inbox(server)[before:]
    assert len(new) == 1
    got = parts(received(new[0]))
    assert set(got["files"]) == {"fees-2026-11.csv", "fees-2026-11.xlsx"}
    rows = list(csv.DictReader(io.StringIO(got["files"]["fees-2026-11.csv"].decode("utf-8-sig"))))
    assert rows
    sheet = openpyxl.load_workbook(io.BytesIO(got["files"]["fees-2026-11.xlsx"])).active
    assert sheet.max_row - 1 >= len(rows)
    assert f"{len(rows):,} fee(s)" in got["text"]
    assert not any(c in got["text"] + got["html"] for c in EMAILS_AND_PHONES)

    again = invoke(args, smtp_env(server))
    assert again.exit_code == 0 and "nothing sent" in again.output
    assert len(inbox(server)) == before + 1

    resent = invoke([*args, "--resend", "1"], smtp_env(server))
    assert resent.exit_code == 0, resent.output
    assert len(inbox(server)) == before + 2
    assert "sent again on request" in received(inbox(server)[-1])["Subject"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sent = conn.execute(sa.text("SELECT export_batch_id FROM mail_sent")).scalars().all()
    finally:
        engine.dispose()
    assert sent == [1, 1]


def test_weekly_mail_attaches_the_reports_that_open_offline(server, tmp_path):
    url = build_db(tmp_path, hostile=False)
    out = tmp_path / "reports"
    before = len(inbox(server))
    result = invoke(
        [
            *("mail", "weekly", "--week", "2026-W46", "--db", url),
            *("--to", "boss@example.org", "--out", str(out)),
        ],
        {**smtp_env(server), "IPCHANGE_DB_URL": url},
    )
    assert result.exit_code == 0, result.output
    got = parts(received(inbox(server)[before]))
    archive = zipfile.ZipFile(io.BytesIO(got["files"]["reports-2026-W46.zip"]))
    assert set(archive.namelist()) == {
        "2026-W46/intake-log.html",
        "2026-W46/sla-compliance.html",
        "plotly.min.js",
    }
    page = archive.read("2026-W46/sla-compliance.html").decode()
    assert 'src="../plotly.min.js"' in page and "cdn." not in page
    data = reports.load("2026-W46", db_url=url, history_weeks=2)
    for title, value, _detail, _tone in reports.sla_tile_values(data):
        cell = got["html"].split(html.escape(title))[1][:300]
        assert f">{html.escape(value)}</div>" in cell
        assert f"  {title}: {value} (" in got["text"]
    assert "<script" not in got["html"].lower()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The server again, requiring STARTTLS with a self-signed certificate for 127.0.0.1."""
    if not shutil.which("openssl"):
        _unavailable("openssl not available to make a test certificate (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("tls-inbox")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), str(port), str(folder), USER, PASSWORD, str(cert), str(key)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "ready"
        yield {"port": port, "folder": folder, "cert": cert}
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("tls", "trusted", "message"),
    [
        ("starttls", True, ""),
        ("starttls", False, "CERTIFICATE_VERIFY_FAILED"),
        ("none", True, "AUTH extension not supported"),  # offered only after STARTTLS
        ("tls", True, "mail server 127.0.0.1"),  # it speaks STARTTLS, not TLS from the start
    ],
)
def test_starttls_verifies_the_server_certificate(tls_server, tmp_path, tls, trusted, message):
    url = build_db(tmp_path, hostile=False)
    before = len(sorted(tls_server["folder"].glob("*.eml")))
    env = smtp_env(tls_server, IPCHANGE_SMTP_TLS=tls)
    if trusted:
        env["IPCHANGE_SMTP_CAFILE"] = str(tls_server["cert"])
    result = invoke(
        [
            *("mail", "check", "--at", "2026-11-18 07:00", "--db", url),
            *("--to", "lead@example.org", "--out", str(tmp_path / "reports")),
        ],
        env,
    )
    after = sorted(tls_server["folder"].glob("*.eml"))
    assert PASSWORD not in result.output
    if not message:
        assert result.exit_code == 0, result.output
        assert len(after) == before + 1
        assert received(after[-1])["Subject"].startswith("ipchange check 2026-11-18")
    else:
        assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
        assert message in result.output
        assert len(after) == before
