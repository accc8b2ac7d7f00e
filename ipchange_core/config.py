"""Project paths and the database URL: the one place that reads them from the environment.

When the package runs from a checkout (an editable install), the project root is the checkout's
top folder; otherwise it is the current directory at import time.
"""

from __future__ import annotations

import os
from pathlib import Path

from ipchange_core.errors import IpchangeError, NoDatabaseError

PACKAGE_DIR = Path(__file__).resolve().parent


def _project_root() -> Path:
    checkout = PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout
    return Path.cwd()


PROJECT_ROOT = _project_root()
"""The checkout holding this package, else the current directory."""

DATA_DIR = PROJECT_ROOT / "data"
REPORTS_DIR = PROJECT_ROOT / "reports"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
DEMO_DIR = DATA_DIR / "demo"
"""Where ``ipchange demo`` writes its generated inputs (git-ignored); it loads them into the
default database, :data:`DEFAULT_DB_PATH` unless ``--db`` or ``IPCHANGE_DB_URL`` says otherwise."""
LOADS_DIR = REPORTS_DIR / "loads"
"""Where each ingest writes a load report and the rejected rows of a file."""

DEFAULT_DB_PATH = DATA_DIR / "ipchange.db"
"""The embedded SQLite database used when neither ``--db`` nor ``IPCHANGE_DB_URL`` is given."""

DB_URL_ENV = "IPCHANGE_DB_URL"
"""Environment variable holding the database URL."""


def database_url(cli_value: str | None = None, *, base: Path | None = None) -> str:
    """Return the database URL to use, with any SQLite file path made absolute.

    The value comes from ``cli_value`` (the ``--db`` option), else from ``IPCHANGE_DB_URL``, else
    it is the SQLite file :data:`DEFAULT_DB_PATH`. A value without ``://`` is taken as the path of
    a SQLite file. A relative SQLite path is resolved against ``base``: the current directory for
    a command, :data:`PROJECT_ROOT` for a notebook (whose kernel runs in ``notebooks/``), so that
    the caller can show the user which file is meant (a relative path must never quietly open or
    create a database somewhere unexpected). In-memory SQLite URLs are returned unchanged.

    Args:
        cli_value: The ``--db`` value, or ``None`` when the option was not given.
        base: The folder a relative SQLite path is relative to; the current directory when None.

    Returns:
        A SQLAlchemy URL string (password included, as given).

    Raises:
        IpchangeError: The value is not a valid database URL.
    """
    from sqlalchemy.engine import make_url  # not at import: `ipchange --help` needs no SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    raw = (cli_value or "").strip() or os.environ.get(DB_URL_ENV, "").strip()
    if not raw:
        return f"sqlite:///{DEFAULT_DB_PATH.as_posix()}"
    if "\x00" in raw:
        raise IpchangeError(f"not a valid database URL: {raw!r} holds a NUL character")
    if "://" not in raw:
        raw = f"sqlite:///{raw}"
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise IpchangeError(f"not a valid database URL: {raw!r} ({exc})") from None
    database = url.database or ""
    if (
        url.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not database.startswith("file:")
    ):
        path = Path(os.path.abspath(Path(base or os.getcwd()) / Path(database).expanduser()))
        url = url.set(database=path.as_posix())
    return url.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """Return ``url`` with any password masked, for messages to the user."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url


def no_database(url: str, problem: str) -> NoDatabaseError:
    """The error of a reader given a database that does not exist or holds no data.

    Args:
        url: The database URL (its password is masked in the message).
        problem: What is wrong, e.g. ``"no database file /data/typo.db"``.
    """
    shown = display_url(url)
    return NoDatabaseError(
        f"{problem} (reading never creates a database): load exports into it with "
        f"`ipchange ingest FILE… --db {shown}`, or run `make demo` (`ipchange demo`) to load the "
        f"demo data into the default database {DEFAULT_DB_PATH}"
    )
