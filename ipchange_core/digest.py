"""A file's SHA-256: computed once, in the background if asked early, and checked still valid.

``ipchange ingest`` starts hashing its files while it imports pandas and SQLAlchemy (about two
seconds), so a reload finds the digest of a file of hundreds of MB ready: reading and hashing
release the GIL. This module imports nothing heavy for that reason.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable
from pathlib import Path

from ipchange_core.errors import InvalidInputError

__all__ = ["FileDigest", "file_sha256"]


def file_sha256(path: Path) -> str:
    """Return the SHA-256 (hex) of a file's bytes, read in 1 MiB blocks (memory stays flat).

    Raises:
        InvalidInputError: The file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
    except OSError as err:
        raise InvalidInputError(
            f"cannot read the file: {err.strerror or err}", file=Path(path).name
        ) from None
    return digest.hexdigest()


class FileDigest:
    """A file's SHA-256, computed at most once, and whether the file is still as it was then.

    Calling it returns the digest (see :func:`file_sha256`), computing it then unless
    :meth:`start_all` already started it, in which case the call waits for it.

    Attributes:
        path: The file.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._result: str | Exception | None = None  # the hex digest, or why there is none
        self._stat: tuple[int, ...] | None = None
        self._done: threading.Event | None = None  # set by start_all: computed in the background

    @classmethod
    def start_all(cls, paths: Iterable[Path]) -> tuple[FileDigest, ...]:
        """Digests of ``paths``, computed one file after another in one background thread.

        A daemon thread: a command that ends early does not wait for it. Errors (an unreadable
        file) are raised by the call that asks for that file's digest.
        """
        digests = tuple(cls(path) for path in paths)
        for digest in digests:
            digest._done = threading.Event()

        def compute_all() -> None:
            for digest in digests:
                digest._compute()

        threading.Thread(target=compute_all, name="ipchange-digests", daemon=True).start()
        return digests

    def __call__(self) -> str:
        """The digest (hex); raises :class:`InvalidInputError` when the file cannot be read."""
        if self._done is not None:
            self._done.wait()
        elif self._result is None:
            self._compute()
        if isinstance(self._result, Exception):
            raise self._result
        return str(self._result)

    def unchanged(self) -> str | None:
        """The digest if it was computed (or started) and the file's identity is as then.

        The identity is the file's device, inode, size and modification and change times,
        taken just before its bytes were read; ``None`` also when the file could not be read.
        """
        if self._done is not None:
            self._done.wait()
        if not isinstance(self._result, str) or self._identity() != self._stat:
            return None
        return self._result

    def _compute(self) -> None:
        try:
            self._stat = self._identity()
            self._result = file_sha256(self.path)
        except Exception as exc:  # raised to the caller of __call__, not in the thread
            self._result = exc
        finally:
            if self._done is not None:
                self._done.set()

    def _identity(self) -> tuple[int, ...] | None:
        try:
            st = self.path.stat()
        except OSError:  # the read reports it
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
