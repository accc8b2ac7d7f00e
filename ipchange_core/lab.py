"""JupyterLab for analysts: the server ``make lab`` runs, on loopback, with the project's kernel.

``python -m ipchange_core.lab`` registers the ``ipchange`` kernel, starts JupyterLab on the
report notebooks (``--allow-root`` when run as root, as in containers and CI), waits until it
answers and prints the URL to open, token included. The tests start the same server.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipchange_core.config import NOTEBOOKS_DIR
from ipchange_core.errors import IpchangeError

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its process and the URL of its lab page (token included)."""

    process: subprocess.Popen
    base: str
    token: str

    @property
    def url(self) -> str:
        """The lab page with the token, to open in a browser."""
        return f"{self.base}/lab?token={self.token}"

    def stop(self) -> None:
        """Stop the server (and its kernels) and wait for it to exit."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def lab_command(
    *,
    port: int,
    token: str,
    root_dir: Path = NOTEBOOKS_DIR,
    open_browser: bool = True,
    extra: Sequence[str] = (),
) -> list[str]:
    """The ``jupyter lab`` command line of this Python, on loopback ``port`` with ``token``.

    Args:
        port: TCP port on 127.0.0.1.
        token: The token a browser must present.
        root_dir: The folder the lab shows (the report notebooks by default).
        open_browser: Let JupyterLab open a browser when the machine has one.
        extra: More ``jupyter lab`` options.
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.ip={HOST}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
    ]
    if not open_browser:
        command.append("--no-browser")
    if os.geteuid() == 0:  # JupyterLab refuses to start as root without it
        command.append("--allow-root")
    return [*command, *extra]


def start(
    *,
    root_dir: Path = NOTEBOOKS_DIR,
    open_browser: bool = True,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float = 120.0,
) -> LabServer:
    """Register the kernel, start JupyterLab on a free loopback port and wait until it answers.

    Args:
        root_dir: The folder the lab shows.
        open_browser: Let JupyterLab open a browser when the machine has one.
        extra: More ``jupyter lab`` options.
        env: The server's environment (its kernels inherit it); this process's when None.
        timeout: Seconds to wait for the server's first answer.

    Raises:
        IpchangeError: The server exited or did not answer within ``timeout`` seconds.
    """
    from ipchange_core.render import ensure_kernel

    ensure_kernel()
    port, token = free_port(), secrets.token_urlsafe(24)
    command = lab_command(
        port=port, token=token, root_dir=root_dir, open_browser=open_browser, extra=extra
    )
    process = subprocess.Popen(command, env=None if env is None else dict(env))
    server = LabServer(process, f"http://{HOST}:{port}", token)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise IpchangeError(f"JupyterLab exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{server.base}/api/status?token={token}", timeout=2):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    server.stop()
    raise IpchangeError(f"JupyterLab did not answer on {server.base} within {timeout:g} s")


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """``make lab``: start JupyterLab, print its URL, run until interrupted (Ctrl-C, SIGTERM)."""
    signal.signal(signal.SIGTERM, _exit)  # stop the server too, not only this process
    server = start()
    print(f"\nJupyterLab is running; open {server.url}\n", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
