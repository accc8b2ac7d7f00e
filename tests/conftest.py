"""Shared fixtures: the external services some tests need, and a throwaway SQLite URL.

PostgreSQL and Chromium come from the environment (`.ci/run` provides both). On a developer's
machine a missing service skips the tests that need it; under CI (`CI=true`) it fails them, so a
broken CI set-up cannot pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from hypothesis import settings

from ipchange_core import store

if TYPE_CHECKING:
    from tests.kayako_server import KayakoServer

KAYAKO_TEST_KEY = "test-kayako-api-key"
KAYAKO_TEST_SECRET = "test-kayako-secret"
"""The API key and secret the ``kayako_server`` fixture's servers expect by default."""

# Hypothesis profiles. `make test` uses "default": derandomized, so every run tries the same
# examples, with no deadline (two busy cores make timings noisy) and few examples for the tests
# that leave max_examples to the profile (tests/test_fuzz.py; the others set their own).
# `make fuzz` loads "fuzz": fresh random examples on every run; the fuzz tests rerun in rounds of
# max_examples until their time budget (FUZZ_SECONDS) is spent.
settings.register_profile("default", derandomize=True, deadline=None, max_examples=6)
settings.register_profile("fuzz", derandomize=False, deadline=None, max_examples=25)


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


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """A URL of the test PostgreSQL server whose search_path is a fresh, private schema."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        url = sa.make_url(pg_url).update_query_dict({"options": f"-csearch_path={name}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


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


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[sa.Engine]:
    """Each test twice: on a SQLite file, and on PostgreSQL (a private schema)."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_schema_url"
    engine = store.connect(request.getfixturevalue(name))
    yield engine
    engine.dispose()


@pytest.fixture
def kayako_server() -> Iterator[Callable[..., KayakoServer]]:
    """Start stand-in Kayako servers (tests/kayako_server.py); each is stopped after the test.

    Call it as ``kayako_server(tickets=..., ...)``: the API key and secret are
    :data:`KAYAKO_TEST_KEY` and :data:`KAYAKO_TEST_SECRET` unless given.
    """
    from tests.kayako_server import KayakoServer

    started: list[KayakoServer] = []

    def start(
        api_key: str = KAYAKO_TEST_KEY, secret: str = KAYAKO_TEST_SECRET, **options: Any
    ) -> KayakoServer:
        started.append(KayakoServer(api_key, secret, **options))
        return started[-1]

    yield start
    for server in started:
        server.stop()
