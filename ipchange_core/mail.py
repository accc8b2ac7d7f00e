"""Reports that reach people (SPEC 5, "Reports can be mailed"): SMTP settings and messages.

Settings come from the environment (``IPCHANGE_SMTP_HOST``, ``_PORT``, ``_TLS`` = ``starttls``
| ``tls`` | ``none``, ``_USER``, ``_PASSWORD``, ``_FROM``, ``_CAFILE``) or an owner-only YAML
file (keys ``host``, ``port``, ``tls``, ``user``, ``password``, ``from``, ``cafile``); the
environment wins. ``cafile`` names PEM certificates to trust besides the system's (a company's
own mail server); the server's certificate is always verified. The
password is never printed: not in messages, errors or ``repr``.

A message is ``multipart/mixed``: a ``multipart/alternative`` body (plain text, then e-mail-safe
HTML: tables and inline styles only, no script, no stylesheet, nothing fetched) and the
attachments, which open offline.
"""

from __future__ import annotations

import dataclasses
import os
import smtplib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

import pandas as pd

from ipchange_core.check_report import e
from ipchange_core.errors import IpchangeError
from ipchange_core.owner_only import owner_only_settings
from ipchange_core.textops import mask_contacts

ENV = {
    "host": "IPCHANGE_SMTP_HOST",
    "port": "IPCHANGE_SMTP_PORT",
    "tls": "IPCHANGE_SMTP_TLS",
    "user": "IPCHANGE_SMTP_USER",
    "password": "IPCHANGE_SMTP_PASSWORD",
    "from": "IPCHANGE_SMTP_FROM",
    "cafile": "IPCHANGE_SMTP_CAFILE",
}
"""Setting → environment variable."""
CONFIG_ENV = "IPCHANGE_SMTP_CONFIG"
"""Environment variable naming the owner-only settings file (or ``--smtp-config``)."""
SECURITY = {"starttls": 587, "tls": 465, "none": 25}
"""Connection security → its default port."""

_TONES = {"good": "#16a34a", "bad": "#dc2626", "neutral": "#374151"}
_CELL = "padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top"


class MailError(IpchangeError):
    """Bad mail settings, a bad address, or a server that did not take the message."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send: host, port, ``security`` (starttls|tls|none), login, sender.

    ``cafile`` is a PEM file of certificates trusted besides the system's ("" for none).
    """

    host: str
    port: int
    security: str
    user: str
    password: str = dataclasses.field(repr=False)
    sender: str
    cafile: str = ""

    def tls_context(self) -> ssl.SSLContext:
        """A verifying TLS context: the system's certificates, and ``cafile``'s."""
        return ssl.create_default_context(cafile=self.cafile or None)

    def __str__(self) -> str:
        login = f" as {self.user}" if self.user else ""
        return f"{self.host}:{self.port} ({self.security}){login}"


def smtp_settings(
    config: Path | None = None, environ: Mapping[str, str] | None = None
) -> SmtpSettings:
    """The SMTP settings from ``config`` (owner-only YAML) and the environment (which wins).

    Args:
        config: Settings file; None for ``IPCHANGE_SMTP_CONFIG`` or none.
        environ: The environment (``os.environ`` when None).

    Raises:
        MailError: A missing host or sender, a bad port or security, a login without password,
            or a settings file others can read. The message never holds the password.
    """
    values, path = owner_only_settings(
        config,
        ENV,
        config_env=CONFIG_ENV,
        environ=os.environ if environ is None else environ,
        what="mail setting",
        error=MailError,
    )
    where = f" ({path} or {ENV['host']}…)" if path else f" ({ENV['host']}, {ENV['from']}, …)"
    security = values.get("tls", "starttls").strip().lower() or "starttls"
    if security not in SECURITY:
        raise MailError(f"mail setting tls: expected starttls, tls or none, got {security!r}")
    host = values.get("host", "").strip()
    if not host:
        raise MailError(f"mail setting host is missing{where}")
    port_text = values.get("port", "").strip() or str(SECURITY[security])
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise MailError(f"mail setting port: expected 1–65535, got {port_text!r}")
    sender = values.get("from", "").strip()
    if not sender:
        raise MailError(f"mail setting from (the sender address) is missing{where}")
    user, password = values.get("user", ""), values.get("password", "")
    if bool(user) != bool(password):
        raise MailError("mail settings user and password go together; one is missing")
    cafile = values.get("cafile", "").strip()
    if cafile and not Path(cafile).is_file():
        raise MailError(f"mail setting cafile: no such file {cafile}")
    sender = address(sender, "from")
    return SmtpSettings(host, int(port_text), security, user, password, sender, cafile)


def address(text: str, what: str = "--to") -> str:
    """A checked e-mail address (``name <a@b.c>`` or ``a@b.c``); refuses line breaks.

    Raises:
        MailError: Not an address.
    """
    addr = parseaddr(text)[1]
    if any(c in text for c in "\r\n") or "@" not in addr or addr.startswith("@"):
        raise MailError(f"{what} {text!r}: not an e-mail address")
    return text.strip()


@contextmanager
def smtp_session(settings: SmtpSettings, *, timeout: float = 30) -> Iterator[smtplib.SMTP]:
    """An open, logged-in SMTP connection; connect before doing work that a send would record.

    Raises:
        MailError: The server cannot be reached, refuses TLS or the login (one line, no
            password).
    """
    try:
        if settings.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=timeout, context=settings.tls_context()
            )
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=timeout)
        try:
            if settings.security == "starttls":
                smtp.starttls(context=settings.tls_context())
            if settings.user:
                smtp.login(settings.user, settings.password)
            yield smtp
        finally:
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"mail server {settings}: {_reason(exc, settings)}") from None


def _reason(exc: BaseException, settings: SmtpSettings) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}"
    if settings.password:
        text = text.replace(settings.password, "***")
    return f"{type(exc).__name__}: {' '.join(text.split())}"


def send(smtp: smtplib.SMTP, message: EmailMessage, settings: SmtpSettings) -> str:
    """Send ``message`` on an open session; return its Message-ID.

    Raises:
        MailError: The server did not accept it for every recipient.
    """
    try:
        refused = smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"mail server {settings}: {_reason(exc, settings)}") from None
    if refused:
        raise MailError(f"mail server {settings} refused {', '.join(sorted(refused))}")
    return str(message["Message-ID"])


@dataclass(frozen=True)
class Attachment:
    """A file sent along: its name, bytes and MIME type (``maintype/subtype``)."""

    name: str
    data: bytes
    mime: str


def build_message(
    settings: SmtpSettings,
    to: Sequence[str],
    subject: str,
    text: str,
    html_body: str,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """A ``multipart/mixed`` message: text and HTML alternatives, then the attachments.

    Args:
        settings: Gives the sender.
        to: Recipient addresses (checked with :func:`address`).
        subject: Plain text (line breaks removed).
        text: The plain-text part.
        html_body: E-mail-safe, already escaped HTML (see :func:`html_document`).
        attachments: Files to attach.
    """
    msg = EmailMessage()
    msg["From"] = settings.sender
    msg["To"] = ", ".join(address(t) for t in to)
    msg["Subject"] = " ".join(subject.split())
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=parseaddr(settings.sender)[1].split("@")[-1])
    msg.set_content(text)
    msg.add_alternative(html_body, subtype="html")
    for item in attachments:
        maintype, subtype = item.mime.split("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return msg


def html_document(title: str, blocks: Sequence[str]) -> str:
    """An e-mail-safe HTML document: inline styles only, no script, no stylesheet, no images."""
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>'
        + e(title)
        + '</title></head><body style="margin:0;padding:16px;background:#ffffff;'
        'font-family:Arial,Helvetica,sans-serif;color:#1f2937;font-size:14px">'
        + f'<h1 style="font-size:20px;margin:0 0 12px 0">{e(title)}</h1>'
        + "".join(blocks)
        + "</body></html>"
    )


def paragraph(text: str) -> str:
    """An escaped paragraph."""
    return f'<p style="margin:8px 0">{e(text)}</p>'


def tiles(items: Sequence[tuple[str, str, str, str]]) -> str:
    """Tiles of (title, value, detail, tone) as a table, three to a row."""
    cells = [
        f'<td style="padding:10px 14px;border:1px solid #e5e7eb;vertical-align:top;width:33%">'
        f'<div style="font-size:12px;color:#4b5563">{e(title)}</div>'
        f'<div style="font-size:24px;font-weight:bold;color:{_TONES.get(tone, _TONES["neutral"])}">'
        f"{e(value)}</div>"
        f'<div style="font-size:12px;color:#6b7280">{e(detail)}</div></td>'
        for title, value, detail, tone in items
    ]
    rows = ["<tr>" + "".join(cells[i : i + 3]) + "</tr>" for i in range(0, len(cells), 3)]
    return (
        '<table role="presentation" cellspacing="0" cellpadding="0" '
        f'style="border-collapse:collapse;margin:8px 0 16px 0">{"".join(rows)}</table>'
    )


def table(frame: pd.DataFrame, *, empty: str, limit: int = 25) -> str:
    """An escaped table of the first ``limit`` rows (contact details masked), with a count."""
    if frame.empty:
        return paragraph(empty)
    shown = frame.head(limit)
    head = "".join(f'<th style="{_CELL};background:#f3f4f6">{e(c)}</th>' for c in shown.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="{_CELL}">{e(v)}</td>'
            for v in mask_contacts(pd.Series(list(row), dtype="str")).tolist()
        )
        + "</tr>"
        for row in shown.astype("str").itertuples(index=False)
    )
    more = paragraph(f"First {limit} of {len(frame):,} rows; the attachment has all.")
    return (
        f'<table cellspacing="0" cellpadding="0" style="border-collapse:collapse;width:100%">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        + (more if len(frame) > limit else "")
    )
