"""Tests of ipchange_core.store.models: the tables mirror the canonical schema."""

from __future__ import annotations

import sqlalchemy as sa

from ipchange_core import schema, store


def test_models_mirror_the_canonical_schema() -> None:
    for table in schema.TABLES:
        columns = [c.name for c in store.Base.metadata.tables[table].columns]
        assert columns == ["id", *schema.typed_dtypes(table), "key_hash", "row_hash"], table
    ledger = store.Base.metadata.tables["fee_ledger"]
    assert isinstance(ledger.c.amount_cents.type, sa.Integer)
