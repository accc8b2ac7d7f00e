"""The mark of ``ipchange pull kayako``: the latest ``lastactivity`` loaded from a help desk.

A later pull reads tickets back to the mark minus a safety overlap
(:data:`ipchange_core.kayako_api.pull.SAFETY_OVERLAP_SECONDS`). The mark moves only in the
transaction that loads the pull's tickets, so a pull that dies before its commit leaves it where
it was, and the next pull reads that window again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select

from ipchange_core.store.connection import reading
from ipchange_core.store.models import KayakoPullMark


def pull_mark(engine: Engine, url: str) -> int | None:
    """The latest ``lastactivity`` (Unix epoch seconds, UTC) loaded from ``url``; ``None`` before.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        url: The Kayako API URL without a query (``…/api/index.php``).
    """
    table = KayakoPullMark.__table__
    with reading(engine) as conn:
        return conn.execute(
            select(table.c.lastactivity).where(table.c.url == url)
        ).scalar_one_or_none()


def advance_mark(conn: Connection, url: str, lastactivity: int, *, manifest_id: int) -> None:
    """Set the mark of ``url`` to ``lastactivity`` unless it is already later, within ``conn``.

    Args:
        conn: The transaction that loads the pull's tickets.
        url: The Kayako API URL without a query.
        lastactivity: The latest ``lastactivity`` of the pull (Unix epoch seconds, UTC).
        manifest_id: The manifest of the pull's tickets load.
    """
    table = KayakoPullMark.__table__
    current = conn.execute(
        select(table.c.lastactivity).where(table.c.url == url)
    ).scalar_one_or_none()
    values = {
        "lastactivity": lastactivity,
        "manifest_id": manifest_id,
        "pulled_at": datetime.now(UTC),
    }
    if current is None:
        conn.execute(table.insert().values(url=url, **values))
    elif lastactivity > current:
        conn.execute(table.update().where(table.c.url == url).values(**values))
