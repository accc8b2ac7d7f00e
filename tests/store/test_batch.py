"""Tests of ipchange_core.store.batch: typed rows hashed and made ready to bind."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ipchange_core.store.batch import conform, typed_batch
from tests.store.helpers import (
    tickets_frame,
)


def test_distinct_and_repeated_text_hash_and_bind_alike() -> None:
    """Text columns whose values are (nearly) all distinct are hashed and bound a block at a
    time, others once per distinct value: a row gets the same hashes and bound values either
    way (stored hashes decide what a reload changes)."""
    distinct = tickets_frame(300)
    repeated = pd.concat([distinct, distinct], ignore_index=True)
    one = typed_batch(conform(distinct, "tickets", "a.csv"), "tickets")
    two = typed_batch(conform(repeated, "tickets", "b.csv"), "tickets")
    assert "ticket_id" not in one.text and "ticket_id" in two.text  # the two ways
    assert two.key_hash[:300].tolist() == one.key_hash.tolist()
    assert two.row_hash[:300].tolist() == one.row_hash.tolist()
    assert len(set(one.key_hash.tolist())) == 300
    rows = np.arange(0, 300, 7)
    assert two.sqlite_rows(rows).tolist() == one.sqlite_rows(rows).tolist()
    assert sorted(one.ticket_ids()) == sorted(distinct["ticket_id"])
