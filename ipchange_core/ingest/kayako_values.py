"""Values Kayako Classic writes the same way in every export: ids, owners, tags."""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.policy import KayakoLookups, load_policy

UNASSIGNED = "-- Unassigned --"
"""How Kayako writes "no owner" in reports and the audit log; read as a blank owner."""


DEFAULT_LOOKUPS: KayakoLookups = load_policy().latest.kayako
"""The default policy's Kayako ids (``kayako:`` in ``policy.yaml``)."""


def replace_known(values: pa.Array, table: Mapping[str, str]) -> pa.Array:
    """Replace the values found in ``table``; leave the others for the canonical checks."""
    keys = pa.array(list(table), pa.large_string())
    index = pc.index_in(values, value_set=keys)
    mapped = pc.take(pa.array(list(table.values()), pa.large_string()), index)
    return pc.if_else(pc.is_null(index), values, mapped)


def normalise_tags(tags: pa.Array) -> pa.Array:
    """Return tags separated by single commas (Kayako separates them with spaces)."""
    joined = pc.replace_substring_regex(tags, r"[\s,]+", ",")
    return pc.utf8_trim(joined, ",")
