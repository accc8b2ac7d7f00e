"""The help desk's Kayako lookup lists in the store: loaded by version, read as id → name."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from sqlalchemy import Connection, Engine, func, select

from ipchange_core.ingest.kayako_lookups import LOOKUP_COLUMNS, LookupList
from ipchange_core.policy import KayakoLookups
from ipchange_core.store.connection import reading
from ipchange_core.store.load import LoadResult, _record_manifest
from ipchange_core.store.models import KayakoLookup

LOOKUPS_TABLE = "kayako_lookups"
"""The table of the lookup lists (the manifest's ``table``)."""

LOOKUPS_FORMAT = "kayako-lookups"
"""The input format of a lookup list XML (the manifest's ``format``)."""


def load_lookups(engine: Engine, lookup: LookupList, *, policy_version: str) -> LoadResult:
    """Store one lookup list in one transaction, as a new version when it changed.

    Counts: ``inserted`` ids new to the list's current version, ``updated`` ids whose title,
    module or markasresolved changed, ``unchanged`` the others, ``skipped`` the entries that
    repeat an id with the same title. A list identical to its current version (a reload)
    records its manifest and stores nothing; ids the new version lacks are counted nowhere.
    """
    with engine.begin() as conn:
        return load_lookups_into(conn, lookup, policy_version=policy_version)


def load_lookups_into(conn: Connection, lookup: LookupList, *, policy_version: str) -> LoadResult:
    """:func:`load_lookups` within the caller's transaction ``conn``."""
    current = _current(conn, lookup.kind).set_index("id")
    new = lookup.rows.set_index("id")
    known = new.index.isin(current.index)
    same = known & (
        new[list(LOOKUP_COLUMNS[1:])]
        .eq(current.reindex(new.index)[list(LOOKUP_COLUMNS[1:])])
        .all(axis=1)
        .to_numpy(bool)
    )
    changed = not (same.all() and len(new) == len(current))
    result = LoadResult(
        file=str(lookup.path),
        table=LOOKUPS_TABLE,
        read=lookup.entries,
        inserted=int((~known).sum()),
        updated=int((known & ~same).sum()),
        unchanged=int(same.sum()),
        rejected=0,
        skipped=lookup.repeated,
        manifest_id=0,
    )
    result = _record_manifest(
        conn, result, sha256=lookup.sha256, format=LOOKUPS_FORMAT, policy_version=policy_version
    )
    if changed and len(new):
        conn.execute(
            KayakoLookup.__table__.insert(),
            [
                {
                    "manifest_id": result.manifest_id,
                    "list": lookup.kind,
                    "item_id": int(item_id),
                    **{c: row[c] for c in LOOKUP_COLUMNS[1:]},
                }
                for item_id, row in new.iterrows()
            ],
        )
    return result


def _current(conn: Connection, kind: str) -> pd.DataFrame:
    """The current version of one list (no rows before its first load)."""
    t = KayakoLookup.__table__
    newest = select(func.max(t.c.manifest_id)).where(t.c.list == kind).scalar_subquery()
    query = select(t.c.item_id, *(t.c[c] for c in LOOKUP_COLUMNS[1:])).where(
        t.c.list == kind, t.c.manifest_id == newest
    )
    rows = conn.execute(query).all()
    return pd.DataFrame(
        {
            "id": pd.Series([r[0] for r in rows], dtype="int64"),
            **{
                c: pd.Series([r[i] for r in rows], dtype="str")
                for i, c in enumerate(LOOKUP_COLUMNS[1:], start=1)
            },
        }
    )


def kayako_lookups(engine: Engine, fallback: KayakoLookups) -> KayakoLookups:
    """The help desk's id → name tables: its stored lists, the policy's ids where none is stored.

    Only departments of the tickets module hold tickets: live chat departments are kept in the
    store but are not ticket departments.
    """
    with reading(engine) as conn:
        return lookups_in(conn, fallback)


def lookups_in(conn: Connection, fallback: KayakoLookups) -> KayakoLookups:
    """:func:`kayako_lookups` as ``conn`` sees the database (within its transaction)."""
    kinds = ("departments", "ticketstatuses", "tickettypes")
    return named_lookups({kind: _current(conn, kind) for kind in kinds}, fallback)


def named_lookups(lists: Mapping[str, pd.DataFrame], fallback: KayakoLookups) -> KayakoLookups:
    """The id → name tables of lookup lists' current rows, the policy's ids where none is listed.

    Only departments of the tickets module hold tickets: live chat departments are left out.

    Args:
        lists: Root element → the list's rows (``id`` and the text columns of a
            :class:`~ipchange_core.ingest.kayako_lookups.LookupList`): ``departments``,
            ``ticketstatuses`` and ``tickettypes`` (others are not used).
        fallback: The policy's tables.
    """
    departments = lists["departments"]
    departments = departments[departments["module"].isin(["", "tickets"])]
    statuses, types = lists["ticketstatuses"], lists["tickettypes"]

    def names(rows: pd.DataFrame) -> dict[int, str]:
        return dict(zip(rows["id"].tolist(), rows["title"].tolist(), strict=True))

    return KayakoLookups(
        departments={**fallback.departments, **names(departments)},
        statuses={**fallback.statuses, **names(statuses)},
        types={**fallback.types, **names(types)},
    )
