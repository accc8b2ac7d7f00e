"""The API client's parts: credentials, signatures, URLs shown, retry waits, answers checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import stat
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from ipchange_core.cli import main
from ipchange_core.kayako_api.client import (
    KayakoClient,
    RetryPolicy,
    retry_after,
    shown_url,
    signature,
)
from ipchange_core.kayako_api.credentials import Credentials, KayakoApiError, credentials

SECRET = "s3cr3t-Do-Not-Show"
ENV = {"IPCHANGE_KAYAKO_API_KEY": "key-1", "IPCHANGE_KAYAKO_SECRET_KEY": SECRET}


# --- credentials ------------------------------------------------------------------------------


def test_credentials_from_the_environment_hide_the_secret():
    found = credentials(environ=ENV)
    assert found == Credentials("key-1", SECRET)
    assert SECRET not in repr(found) and SECRET not in str(found)


def owner_file(tmp_path, text, mode=0o600):
    path = tmp_path / "kayako.yaml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_credentials_from_an_owner_only_file_the_environment_winning(tmp_path):
    path = owner_file(tmp_path, f"api_key: file-key\nsecret_key: {SECRET}\n")
    assert credentials(path, environ={}) == Credentials("file-key", SECRET)
    env = {"IPCHANGE_KAYAKO_CONFIG": str(path), "IPCHANGE_KAYAKO_API_KEY": "env-key"}
    assert credentials(environ=env) == Credentials("env-key", SECRET)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_a_file_others_may_read_is_refused_unread(tmp_path, mode):
    path = owner_file(tmp_path, f"api_key: k\nsecret_key: {SECRET}\n", mode)
    with pytest.raises(KayakoApiError, match="readable by others; chmod 600") as err:
        credentials(path, environ={})
    assert SECRET not in str(err.value)
    assert stat.S_IMODE(path.stat().st_mode) == mode


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("api_key: k\n", "secret_key missing"),
        (f"secret_key: {SECRET}\n", "api_key missing"),
        (f"api_key: k\nsecret_key: {SECRET}\npassword: x\n", "unknown Kayako API setting"),
        (f"[{SECRET}]\n", "expected a mapping"),
    ],
)
def test_a_bad_file_is_named_without_its_secret(tmp_path, text, message):
    path = owner_file(tmp_path, text)
    with pytest.raises(KayakoApiError, match=message) as err:
        credentials(path, environ={})
    assert SECRET not in str(err.value)


def test_no_credentials_at_all_names_the_variables():
    with pytest.raises(KayakoApiError) as err:
        credentials(environ={})
    assert "IPCHANGE_KAYAKO_API_KEY and IPCHANGE_KAYAKO_SECRET_KEY" in str(err.value)


@pytest.mark.parametrize("option", ["--secret", "--secret-key", "--api-key", "--key"])
def test_the_command_line_takes_no_key(option):
    result = CliRunner().invoke(
        main, ["pull", "kayako", "--url", "http://127.0.0.1:9/api/index.php", option, SECRET]
    )
    assert result.exit_code == 2
    assert "No such option" in result.output
    assert SECRET not in result.output


# --- signing and showing ----------------------------------------------------------------------


def test_the_signature_is_base64_of_hmac_sha256_of_the_salt():
    # FORMATS.md 1, computed here from its definition with other primitives
    expected = base64.b64encode(hmac.digest(b"secret", b"salt-123", "sha256")).decode()
    assert signature("secret", "salt-123") == expected
    assert len(base64.b64decode(signature("x", "y"))) == hashlib.sha256().digest_size


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://h.example/api/index.php?e=/Base/Department&apikey=K&salt=S&signature=G%3D",
            "https://h.example/api/index.php?e=/Base/Department",
        ),
        ("https://user:pw@h.example:8443/api/index.php", "https://h.example:8443/api/index.php"),
        ("http://h.example/api/index.php?salt=1&signature=2", "http://h.example/api/index.php"),
    ],
)
def test_a_shown_url_has_no_key_salt_signature_or_password(url, shown):
    assert shown_url(url) == shown


# --- waits ------------------------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_an_http_date():
    now = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7
    assert retry_after("Mon, 07 Dec 2026 12:00:30 GMT", now) == 30
    assert retry_after("Mon, 07 Dec 2026 11:00:00 GMT", now) == 0  # in the past: at once
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_waits_grow_exponentially_with_jitter_up_to_a_cap():
    policy = RetryPolicy(backoff=1.0, max_wait=10.0)
    rng = random.Random(3)
    for attempt, full in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (9, 10)]:
        waits = [policy.wait(attempt, None, rng) for _ in range(200)]
        assert full / 2 <= min(waits) and max(waits) <= full
        assert max(waits) - min(waits) > full / 4  # jittered, not fixed
    assert policy.wait(1, 4.5, rng) == 4.5
    assert policy.wait(1, 999, rng) == 10.0


def client_with(answers, tries=4):
    """A client whose server answers from ``answers`` in turn; its requests and sleeps."""
    seen, sleeps = [], []

    def handle(request):
        seen.append(request)
        answer = answers[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    client = KayakoClient(
        "https://h.example/api/index.php",
        Credentials("key-abcdefgh", SECRET),
        retry=RetryPolicy(tries=tries, backoff=0.5),
        sleep=sleeps.append,
        transport=httpx.MockTransport(handle),
    )
    return client, seen, sleeps


def test_a_failing_server_is_retried_with_fresh_salts_then_answers():
    answers = [
        httpx.Response(503, text="Service Unavailable"),
        httpx.ConnectError("refused"),
        httpx.Response(429, headers={"Retry-After": "3"}),
        httpx.Response(200, content=b"<departments/>"),
    ]
    client, seen, sleeps = client_with(answers)
    assert client.document("/Base/Department", "departments")[0] == b"<departments/>"
    queries = [parse_qs(urlsplit(str(r.url)).query) for r in seen]
    salts = [q["salt"][0] for q in queries]
    assert len(set(salts)) == 4
    assert all(q["signature"][0] == signature(SECRET, q["salt"][0]) for q in queries)
    assert all(SECRET not in str(r.url) for r in seen)
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0 and sleeps[2] == 3


def test_giving_up_names_the_url_and_the_last_status():
    client, seen, sleeps = client_with([httpx.Response(502, text="Bad Gateway")] * 3, tries=3)
    with pytest.raises(KayakoApiError) as err:
        client.get("/Tickets/TicketType")
    assert str(err.value) == (
        "https://h.example/api/index.php?e=/Tickets/TicketType: gave up after 3 tries; "
        "last: HTTP 502 Bad Gateway"
    )
    assert len(seen) == 3 and len(sleeps) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_stops_at_once(status):
    client, seen, sleeps = client_with([httpx.Response(status, text="Unauthorized")])
    with pytest.raises(KayakoApiError, match=f"HTTP {status}: the help desk refused"):
        client.get("/Base/Department")
    assert len(seen) == 1 and not sleeps


def test_another_client_error_stops_at_once_without_echoing_the_request():
    signed = {}

    def handle(request):
        signed.update({k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()})
        return httpx.Response(400, text=f"Bad {request.url} salt {signed['salt']}")

    client = KayakoClient(
        "https://h.example/api/index.php",
        Credentials("key-that-is-long", SECRET),
        transport=httpx.MockTransport(handle),
    )
    with pytest.raises(KayakoApiError) as err:
        client.get("/Tickets/Ticket/ListAll/9")
    message = str(err.value)
    assert message.startswith(
        "https://h.example/api/index.php?e=/Tickets/Ticket/ListAll/9: HTTP 400"
    )
    for name in ("apikey", "salt", "signature"):
        assert signed[name] not in message
        assert quote(signed[name], safe="") not in message


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"", "an empty body"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "an HTML page"),
        (b"<?xml version='1.0'?><tickets><ticket id='1'>", "malformed or cut-off XML"),
        (b"<departments></departments>", "root is <departments>"),
    ],
)
def test_an_answer_that_is_no_kayako_document_is_refused(body, what):
    client, _, _ = client_with([httpx.Response(200, content=body)])
    with pytest.raises(KayakoApiError, match="not a Kayako <tickets> document") as err:
        client.document("/Tickets/Ticket/ListAll/1", "tickets")
    assert what in str(err.value)
    assert "?e=/Tickets/Ticket/ListAll/1" in str(err.value)


@pytest.mark.parametrize(
    "url", ["ftp://h.example/api/index.php", "https://h/api/index.php?e=/x", "index.php"]
)
def test_a_url_that_is_no_api_url_is_refused(url):
    with pytest.raises(KayakoApiError, match="--url"):
        KayakoClient(url, Credentials("k", SECRET))


def test_httpx_log_records_show_the_url_without_key_salt_or_signature(caplog):
    client, seen, _ = client_with([httpx.Response(200, content=b"<tickettypes/>")])
    with caplog.at_level(logging.DEBUG):
        client.get("/Tickets/TicketType")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "e=/Tickets/TicketType" in logged
    query = parse_qs(urlsplit(str(seen[0].url)).query)
    for name in ("apikey", "salt", "signature"):
        assert query[name][0] not in logged
