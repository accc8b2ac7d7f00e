"""All-or-nothing file writes: a temporary file in the same folder, renamed over the target.

A folder or file that cannot be written (no permission, a read-only or full file system, a file
where a folder should be) raises :class:`~ipchange_core.errors.OutputError` naming the path and
the reason in words, and leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

from ipchange_core.errors import OutputError

_TEMP = re.compile(r"\.(?P<name>.+)\.pid(?P<pid>\d+)\.[^.]+\.(?:tmp|ipynb)")
"""Name of a temporary file: ``.<target>.pid<owner>.<random>.tmp`` (or ``.ipynb``)."""


_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than this process may write",
    errno.ENAMETOOLONG: "the name is too long",
}


def _reason(exc: OSError, folder: Path) -> str:
    """Why ``folder`` (or a file in it) could not be written, in words."""
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocking = next(
            (p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None
        )
        if blocking is not None:
            return f"{blocking} is a file, not a folder"
    return _REASONS.get(exc.errno or 0, exc.strerror or type(exc).__name__)


def ensure_folder(folder: Path) -> Path:
    """Create ``folder`` (and its parents) when missing; return it.

    Raises:
        OutputError: It cannot be created, or is not a folder.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the folder {folder}: {_reason(exc, folder)}") from None
    return folder


def temp_file(folder: Path, name: str, suffix: str = ".tmp") -> Path:
    """Create an empty temporary file in ``folder`` for the target ``name``, owned by this process.

    The name carries this process's id, so :func:`sweep_stale` can tell the leftovers of a killed
    process from the files of one still writing. ``suffix`` is ``.tmp`` or ``.ipynb``.

    Raises:
        OutputError: ``folder`` cannot be created or written.
    """
    ensure_folder(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.pid{os.getpid()}.", suffix=suffix)
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {_reason(exc, folder)}") from None
    os.close(fd)
    return Path(tmp)


def sweep_stale(folder: Path) -> list[Path]:
    """Remove the temporary files in ``folder`` whose owning process no longer runs.

    A process killed while writing (``kill -9``) cannot remove its own temporary file; the next
    writer to the folder does. Files of live processes, and any other file, are left alone.

    Returns:
        The files removed.
    """
    removed = []
    for path in folder.glob(".*.pid*.*") if folder.is_dir() else ():
        match = _TEMP.fullmatch(path.name)
        if match and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def staged(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path`` (mode 0644) and return the temporary.

    The caller renames it over ``path`` (:func:`publish`) or removes it; once it exists, the
    rename needs no more space. The folder is created when missing.

    Raises:
        OutputError: The folder or the file cannot be written (the temporary is removed).
    """
    tmp = temp_file(path.parent, path.name)
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {_reason(exc, path.parent)}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Rename the temporary file ``tmp`` over ``path`` (atomic); remove ``tmp`` when that fails.

    Raises:
        OutputError: ``path`` cannot be replaced (a folder of that name, say).
    """
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = "a folder of that name is in the way" if path.is_dir() else _reason(exc, path)
        raise OutputError(f"cannot write {path}: {reason}") from None


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The folder is created when missing; the file is readable by everyone (mode 0644).

    Raises:
        OutputError: ``path`` cannot be written; no file is left behind, an old one is kept.
    """
    publish(staged(path, data), path)
