"""A real SMTP server for the mail tests: aiosmtpd on loopback, run as its own process.

``python tests/smtp_server.py PORT FOLDER [USER PASSWORD [CERT KEY]]`` saves each message it
accepts as ``FOLDER/<n>.eml`` (its recipients in ``<n>.rcpt``), prints ``ready`` once listening,
and runs until SIGTERM. With USER and PASSWORD it requires that login (without TLS: loopback
only); with CERT and KEY (PEM files) it also requires STARTTLS before anything else.
"""

from __future__ import annotations

import signal
import ssl
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class SaveMessages:
    """Writes every message to a folder, numbered in the order received."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        self.count += 1
        stem = self.folder / f"{self.count:04d}"
        stem.with_suffix(".rcpt").write_text("\n".join(envelope.rcpt_tos), encoding="utf-8")
        stem.with_suffix(".eml").write_bytes(envelope.original_content)
        return "250 Message accepted for delivery"


def main() -> None:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    user, password = (sys.argv[3], sys.argv[4]) if len(sys.argv) > 4 else ("", "")
    tls = None
    if len(sys.argv) > 6:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(sys.argv[5], sys.argv[6])

    def authenticate(server, session, envelope, mechanism, data) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == user
            and data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False)

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # the server's threads inherit the mask
    controller = Controller(
        SaveMessages(folder),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate if user else None,
        auth_required=bool(user),
        auth_require_tls=tls is not None,
        tls_context=tls,
        require_starttls=tls is not None,
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait(stop)
    controller.stop()


if __name__ == "__main__":
    main()
