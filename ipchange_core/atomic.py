"""All-or-nothing file writes: a temporary file in the same folder, renamed over the target."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

_TEMP = re.compile(r"\.(?P<name>.+)\.pid(?P<pid>\d+)\.[^.]+\.(?:tmp|ipynb)")
"""Name of a temporary file: ``.<target>.pid<owner>.<random>.tmp`` (or ``.ipynb``)."""


def temp_file(folder: Path, name: str, suffix: str = ".tmp") -> Path:
    """Create an empty temporary file in ``folder`` for the target ``name``, owned by this process.

    The name carries this process's id, so :func:`sweep_stale` can tell the leftovers of a killed
    process from the files of one still writing. ``suffix`` is ``.tmp`` or ``.ipynb``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.pid{os.getpid()}.", suffix=suffix)
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


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half.

    The folder is created when missing; the file is readable by everyone (mode 0644).
    """
    tmp = temp_file(path.parent, path.name)
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
