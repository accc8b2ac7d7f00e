"""Settings that hold a secret: from the environment, or from a YAML file only its owner reads.

The mail settings (:mod:`ipchange_core.mail`) and the Kayako API keys
(:mod:`ipchange_core.kayako_api.credentials`) come this way. A file that its group or others
may read is refused before it is opened; the environment wins over the file. No message here
holds a value read.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

import yaml

from ipchange_core.errors import IpchangeError


def read_owner_only(
    path: Path, keys: Mapping[str, str], *, what: str, error: type[IpchangeError]
) -> dict[str, object]:
    """The mapping of an owner-only YAML settings file.

    Args:
        path: The file.
        keys: The settings it may hold (setting → environment variable).
        what: The settings in messages, e.g. ``mail setting``.
        error: The exception to raise.

    Raises:
        error: The file cannot be read, others may read it (``chmod 600``), it is not a YAML
            mapping, or it names a setting not in ``keys``.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}s: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(f"{path}: {what}s hold a secret and are readable by others; chmod 600 it")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        raise error(f"{path}: not a readable YAML mapping of {what}s") from None
    if not isinstance(doc, dict):
        raise error(f"{path}: expected a mapping of {', '.join(keys)}")
    unknown = sorted(set(map(str, doc)) - set(keys))
    if unknown:
        raise error(f"{path}: unknown {what}(s): {', '.join(unknown)}")
    return doc


def owner_only_settings(
    config: Path | None,
    keys: Mapping[str, str],
    *,
    config_env: str,
    environ: Mapping[str, str],
    what: str,
    error: type[IpchangeError],
) -> tuple[dict[str, str], Path | None]:
    """Settings from ``config`` (or the file ``config_env`` names) and the environment.

    Args:
        config: The settings file given on the command line, or ``None``.
        keys: Setting → its environment variable (set and non-empty, it wins over the file).
        config_env: The environment variable naming the file when ``config`` is ``None``.
        environ: The environment.
        what: The settings in messages, e.g. ``mail setting``.
        error: The exception to raise.

    Returns:
        The settings as text (a setting given nowhere is absent) and the file read, if any.

    Raises:
        error: See :func:`read_owner_only`.
    """
    path = config or (Path(environ[config_env]) if environ.get(config_env) else None)
    read = read_owner_only(path, keys, what=what, error=error) if path else {}
    values = {k: "" if v is None else str(v) for k, v in read.items()}
    values |= {k: environ[name] for k, name in keys.items() if environ.get(name)}
    return values, path
