"""Places an output cannot be written to: a read-only or full file system, a file in the way.

A tiny tmpfs needs root (CI runs as root); :func:`tmpfs` skips the test where ``mount`` fails.
A full disk is also simulated without root by a size limit (RLIMIT_FSIZE) on a child process:
see :func:`size_limited`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(folder: Path, *, size_kb: int = 64, read_only: bool = False) -> Iterator[Path]:
    """Mount a tmpfs of ``size_kb`` KiB on ``folder`` (created) for the block; skip without root."""
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k,mode=0755" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> None:
    """Write a file into ``folder`` until its file system has no byte left."""
    with (folder / "filler").open("wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 4096)


def size_limited(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` limiting every file the child writes to ``limit_bytes`` (RLIMIT_FSIZE).

    Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing it.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return limit


def files_under(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, relative, sorted (hidden temporaries included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def immutable_sqlite(path: Path) -> str:
    """A URL opening the SQLite file read-only, writing nothing (no -wal or -shm file)."""
    return f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"


def environ(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra`` set (for a child process)."""
    return {**os.environ, **extra}
