"""The canonical CSV/XLSX formats (SPEC 3.4): a table's columns picked out by header name."""

from __future__ import annotations

import pyarrow as pa

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, blank_column, clip, no_rejects, text_array
from ipchange_core.ingest.tabular import RawTable
from ipchange_core.schema import TABLES

OPTIONAL_EXTRAS: dict[str, tuple[str, ...]] = {"tickets": ("ticket_type", "kayako_id")}
"""Typed-frame columns a canonical file may also carry (blank when absent)."""


def canonical_text(raw: RawTable, table: str, name: str) -> CanonicalText:
    """Pick a canonical table's columns out of a file by header name."""
    seen: set[str] = set()
    for label in raw.header:
        if label in seen and label:
            raise InvalidInputError(f"column {label!r} appears twice in the header", file=name)
        seen.add(label)
    columns = TABLES[table]
    wanted = [c.name for c in columns] + list(OPTIONAL_EXTRAS.get(table, ()))
    missing = [c.name for c in columns if c.required and c.name not in seen]
    if missing:
        raise InvalidInputError(
            f"missing required column(s) {', '.join(missing)} for {table}; "
            f"the header has: {clip(', '.join(raw.header))}",
            file=name,
        )
    index = {label: i for i, label in enumerate(raw.header)}
    n = len(raw.lines)
    text = {col: raw.columns[index[col]] if col in index else blank_column(n) for col in wanted}
    if table == "intake":  # each record's provenance: this file
        text["source"] = text_array(pa.repeat(name, n))
    notes = []
    absent = [c.name for c in columns if c.name not in index]
    if absent:
        notes.append(f"column(s) absent, read as blank: {', '.join(absent)}")
    extra = [label for label in raw.header if label not in wanted]
    if extra:
        notes.append(f"ignored column(s) not in {table}: {clip(', '.join(extra))}")
    return CanonicalText(columns=text, lines=raw.lines, rejects=no_rejects(), notes=tuple(notes))
