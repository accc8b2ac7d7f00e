"""Signed requests to Kayako's REST API, retried when the server or the network fails.

Every request is ``GET <url>?e=<endpoint>&apikey=…&salt=…&signature=…`` with a fresh random
salt and ``signature = base64(HMAC-SHA256(secret key, salt))`` (FORMATS.md 1). Connection
errors, timeouts, HTTP 429 and 5xx are retried with exponential backoff and jitter, waiting as
long as a ``Retry-After`` header asks (seconds or an HTTP date), a bounded number of times. 401
and 403 stop at once. Messages name the URL with only its ``e`` parameter: never the salt, the
signature or the key; so do httpx's own log records, should logging be configured.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

import httpx

from ipchange_core.kayako_api.credentials import Credentials, KayakoApiError

SIGNED_PARAMETERS = ("apikey", "salt", "signature")
"""Query parameters a shown URL leaves out."""


class _ShownUrls(logging.Filter):
    """Show the URLs of httpx's log records (``HTTP Request: GET <url> …``) as :func:`shown_url`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                shown_url(str(arg)) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


logging.getLogger("httpx").addFilter(_ShownUrls())


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for an answer, and how often and how long to retry.

    Attributes:
        tries: Requests at most (the first included), at least 1.
        timeout: Seconds to connect, and between two bytes of the answer.
        backoff: Seconds before the second try; doubled for each further try, at most
            ``max_wait``, each wait drawn between half and all of it (jitter).
        max_wait: The longest wait in seconds, also for a ``Retry-After``.
    """

    tries: int = 6
    timeout: float = 60.0
    backoff: float = 1.0
    max_wait: float = 300.0

    def wait(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed try ``attempt`` (1 = the first)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        full = min(self.backoff * 2 ** (attempt - 1), self.max_wait)
        return rng.uniform(full / 2, full)


def signature(secret_key: str, salt: str) -> str:
    """``base64(HMAC-SHA256(key = secret_key, message = salt))`` (FORMATS.md 1)."""
    digest = hmac.new(secret_key.encode(), salt.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def shown_url(url: str) -> str:
    """``url`` without the signed parameters (apikey, salt, signature) and any user info."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = urlencode([(k, v) for k, v in query if k not in SIGNED_PARAMETERS], safe="/,")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, kept, ""))


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta seconds or an HTTP date)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class KayakoNotFound(KayakoApiError):
    """HTTP 404: an unknown endpoint, or a thing it names that is not there ("Ticket not Found").

    Attributes:
        reason: The first line of the answer's body (Kayako's one-line error text).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class KayakoClient:
    """A help desk's REST API: :meth:`get` an endpoint's answer, signed, retried, checked.

    Use it as a context manager (it holds a connection pool).
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials,
        *,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Prepare requests to ``url`` (``https://helpdesk.example.com/api/index.php``).

        Raises:
            KayakoApiError: ``url`` is not an http(s) URL, or carries a query.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise KayakoApiError(f"--url {shown_url(url)!r}: expected http(s)://host/…/index.php")
        if parts.query or parts.fragment:
            raise KayakoApiError(
                f"--url {shown_url(url)}: give the API URL without a query (…/api/index.php)"
            )
        self.url = url
        self._credentials = credentials
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = random.Random()
        self.requests = 0
        timeout = httpx.Timeout(self.retry.timeout)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def __enter__(self) -> KayakoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def shown(self, endpoint: str) -> str:
        """The URL of ``endpoint`` as messages show it (no key, salt or signature)."""
        return f"{shown_url(self.url)}?e={endpoint}"

    def _params(self) -> dict[str, str]:
        salt = secrets.token_urlsafe(24)
        return {
            "apikey": self._credentials.api_key,
            "salt": salt,
            "signature": signature(self._credentials.secret_key, salt),
        }

    def get(self, endpoint: str) -> bytes:
        """The body of ``GET <url>?e=<endpoint>`` (HTTP 200), signed afresh for every try.

        Raises:
            KayakoApiError: 401/403 (the key or signature was refused), another 4xx
                (:class:`KayakoNotFound` for 404), or the tries ran out (the last status or
                error named).
        """
        shown = self.shown(endpoint)
        last = ""
        for attempt in range(1, self.retry.tries + 1):
            wait_for: float | None = None
            self.requests += 1
            signed = self._params()
            try:
                response = self._http.get(self.url, params={"e": endpoint, **signed})
            except httpx.TimeoutException:
                last = f"no answer within {self.retry.timeout:g} s"
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
            else:
                status = response.status_code
                if status == 200:
                    return response.content
                if status in (401, 403):
                    raise KayakoApiError(
                        f"{shown}: HTTP {status}: the help desk refused the API key or the "
                        "signature (check IPCHANGE_KAYAKO_API_KEY and IPCHANGE_KAYAKO_SECRET_KEY)"
                    )
                reason = _first_line(response.text)
                for value in signed.values():  # a server that echoes the request
                    for form in {value, quote(value, safe=""), quote_plus(value)}:
                        reason = reason.replace(form, "…") if len(form) >= 8 else reason
                last = f"HTTP {status}" + (f" {reason}" if reason else "")
                if status == 404:
                    raise KayakoNotFound(f"{shown}: {last}", reason=reason)
                if status != 429 and status < 500:
                    raise KayakoApiError(f"{shown}: {last}")
                wait_for = retry_after(response.headers.get("retry-after"))
            if attempt < self.retry.tries:
                self._sleep(self.retry.wait(attempt, wait_for, self._rng))
        raise KayakoApiError(f"{shown}: gave up after {self.retry.tries} tries; last: {last}")

    def document(self, endpoint: str, root: str) -> tuple[bytes, ET.Element]:
        """:meth:`get` an answer that must be an XML document with the root ``<root>``.

        Raises:
            KayakoApiError: See :meth:`get`; or the body is not that document (an HTML page,
                cut-off or malformed XML, another root), which is refused whole.
        """
        body = self.get(endpoint)
        try:
            element = ET.fromstring(body)
        except ET.ParseError as err:
            line, column = err.position
            head = body.lstrip()[:200].lower()
            if not head:
                what = "an empty body"
            elif head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
                what = "an HTML page (a login or error page?)"
            else:
                what = f"malformed or cut-off XML (line {line}, column {column + 1})"
            raise KayakoApiError(
                f"{self.shown(endpoint)}: the answer is {what}, not a Kayako <{root}> document; "
                "nothing was loaded"
            ) from None
        if element.tag.lower() == "html":
            raise KayakoApiError(
                f"{self.shown(endpoint)}: the answer is an HTML page (a login or error page?), "
                f"not a Kayako <{root}> document; nothing was loaded"
            )
        if element.tag != root:
            raise KayakoApiError(
                f"{self.shown(endpoint)}: the answer's root is <{element.tag}>, not a Kayako "
                f"<{root}> document; nothing was loaded"
            )
        return body, element


def _first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of an error body, cut at ``limit`` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else f"{line[:limit]}…"
