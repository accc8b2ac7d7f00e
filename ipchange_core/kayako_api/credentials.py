"""The Kayako API key and secret key: from the environment or an owner-only YAML file.

``IPCHANGE_KAYAKO_API_KEY`` and ``IPCHANGE_KAYAKO_SECRET_KEY``, or a file (``--kayako-config``
or ``IPCHANGE_KAYAKO_CONFIG``) with the keys ``api_key`` and ``secret_key`` that only its owner
may read; the environment wins. Never from the command line (it shows in ``ps`` and in shell
history). The secret key is not in ``repr``, ``str`` or any message.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ipchange_core.errors import IpchangeError
from ipchange_core.owner_only import owner_only_settings

ENV = {"api_key": "IPCHANGE_KAYAKO_API_KEY", "secret_key": "IPCHANGE_KAYAKO_SECRET_KEY"}
"""Setting → environment variable."""
CONFIG_ENV = "IPCHANGE_KAYAKO_CONFIG"
"""Environment variable naming the owner-only file (or ``--kayako-config``)."""


class KayakoApiError(IpchangeError):
    """Missing credentials, a refused request, an answer that is not a Kayako document."""


@dataclass(frozen=True)
class Credentials:
    """An API key and its secret key (the secret is never shown)."""

    api_key: str
    secret_key: str = dataclasses.field(repr=False)

    def __str__(self) -> str:
        return f"API key {self.api_key[:4]}…"


def credentials(
    config: Path | None = None, environ: Mapping[str, str] | None = None
) -> Credentials:
    """The credentials from ``config`` (owner-only YAML) and the environment (which wins).

    Args:
        config: The settings file; ``None`` for ``IPCHANGE_KAYAKO_CONFIG`` or none.
        environ: The environment (``os.environ`` when ``None``).

    Raises:
        KayakoApiError: A key is missing, or the file is readable by others, unreadable or
            holds other settings.
    """
    values, path = owner_only_settings(
        config,
        ENV,
        config_env=CONFIG_ENV,
        environ=os.environ if environ is None else environ,
        what="Kayako API setting",
        error=KayakoApiError,
    )
    missing = [k for k in ENV if not values.get(k, "").strip()]
    if missing:
        where = f" (not in the environment, nor in {path})" if path else ""
        raise KayakoApiError(
            f"Kayako API setting(s) {', '.join(missing)} missing{where}: set "
            f"{' and '.join(ENV[k] for k in missing)}, or put {', '.join(missing)} in an "
            f"owner-only YAML file named by --kayako-config or {CONFIG_ENV}"
        )
    return Credentials(values["api_key"].strip(), values["secret_key"].strip())
