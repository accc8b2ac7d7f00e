"""Shared fixtures: the external services some tests need, and a throwaway SQLite URL.

PostgreSQL and Chromium come from the environment (`.ci/run` provides both). On a developer's
machine a missing service skips the tests that need it; under CI (`CI=true`) it fails them, so a
broken CI set-up cannot pass by skipping.
"""

import os
import shutil
from pathlib import Path

import pytest


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} [required because CI=true]", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """SQLAlchemy URL of a scratch PostgreSQL database, from IPCHANGE_TEST_PG_URL."""
    url = os.environ.get("IPCHANGE_TEST_PG_URL", "")
    if not url:
        _unavailable("PostgreSQL not available: set IPCHANGE_TEST_PG_URL (.ci/run starts one)")
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of a Chromium executable, from IPCHANGE_CHROMIUM or `chromium` on PATH."""
    path = os.environ.get("IPCHANGE_CHROMIUM") or shutil.which("chromium") or ""
    if not path:
        _unavailable(
            "Chromium not available: set IPCHANGE_CHROMIUM or install Debian's chromium"
            " (.ci/run installs it)"
        )
    elif not os.access(path, os.X_OK):
        _unavailable(f"Chromium not available: {path} (IPCHANGE_CHROMIUM) is not executable")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite file in the test's own temporary folder."""
    return f"sqlite:///{(tmp_path / 'test.db').as_posix()}"
