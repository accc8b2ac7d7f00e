"""A typed frame made ready for the database: hashed by natural key and row, values to bind."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import (
    Connection,
)

from ipchange_core import schema
from ipchange_core.errors import InvalidInputError, IpchangeError
from ipchange_core.isotext import iso_text
from ipchange_core.records import repeats, text_hashes
from ipchange_core.store.backend import backend_of

NAT = np.iinfo(np.int64).min
"""numpy's NaT as int64; never a real instant."""
NA_FLAG = 2
"""A nullable boolean's "not given", as a number."""


def combine_hashes(hashes: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Combine per-column uint64 hashes into one per row (pandas' combine_hash_arrays)."""
    with np.errstate(over="ignore"):
        mult = np.uint64(1000003)
        out = np.full(n, 0x345678, dtype=np.uint64)
        count = len(hashes)
        for i, h in enumerate(hashes):
            out = (out ^ h) * mult
            mult += np.uint64(82520 + count + count - i)
        out += np.uint64(97531)
    return out.view(np.int64)


@dataclass
class Batch:
    """A typed frame in the forms the database needs: hashes, and values ready to bind."""

    table: str
    frame: pd.DataFrame
    kinds: dict[str, str]  # column -> text | instant | flag | bool
    text: dict[str, tuple[np.ndarray, np.ndarray]]  # factorized text column -> (values, codes)
    numbers: dict[str, np.ndarray]  # column -> int64 (µs, NaT = min int) or int8 flags
    key_hash: np.ndarray
    row_hash: np.ndarray

    @property
    def columns(self) -> list[str]:
        """The data columns, in schema order."""
        return list(self.kinds)

    def sqlite_rows(self, rows: np.ndarray) -> np.ndarray:
        """Row-major object matrix of the selected rows: data columns, key_hash, row_hash."""
        matrix = np.empty((len(rows), len(self.kinds) + 2), dtype=object)
        for j, name in enumerate(self.kinds):
            if name in self.text:
                values, codes = self.text[name]
                matrix[:, j] = values[codes[rows]]
            elif self.kinds[name] == "text":  # (nearly) all distinct: Python text block by block
                matrix[:, j] = self.frame[name].array.take(rows).to_numpy(dtype=object)
            else:
                matrix[:, j] = self.numbers[name][rows].astype(object)
        matrix[:, -2] = self.key_hash[rows].astype(object)
        matrix[:, -1] = self.row_hash[rows].astype(object)
        return matrix

    def ticket_ids(self) -> np.ndarray:
        """The distinct ticket_id values of the batch (an object array)."""
        if "ticket_id" in self.text:
            return self.text["ticket_id"][0]
        return pd.unique(self.frame["ticket_id"].to_numpy(dtype=object))

    def arrow(self, rows: np.ndarray) -> pa.Table:
        """Arrow table of the selected rows: data columns, key_hash, row_hash."""
        part = self.frame.iloc[rows]
        arrays = {
            name: iso_text(self.numbers[name][rows]) if kind == "instant" else pa.array(part[name])
            for name, kind in self.kinds.items()
        }
        arrays["key_hash"] = pa.array(self.key_hash[rows])
        arrays["row_hash"] = pa.array(self.row_hash[rows])
        return pa.table(arrays)


def conform(frame: pd.DataFrame, table: str, file: str) -> pd.DataFrame:
    """Return ``frame``'s canonical columns in schema order, with exactly the typed dtypes."""
    dtypes = schema.typed_dtypes(table)
    missing = [name for name in dtypes if name not in frame.columns]
    if missing:
        raise IpchangeError(f"{file}: the parsed {table} frame lacks columns {missing}")
    out = {}
    for name, dtype in dtypes.items():
        column = frame[name]
        if dtype == schema.TIMESTAMP_DTYPE and getattr(column.dtype, "tz", None) is None:
            raise IpchangeError(f"{file}: column {name!r} holds naive times, not UTC instants")
        if column.dtype != pd.api.types.pandas_dtype(dtype):
            try:
                column = column.astype(dtype)
            except (TypeError, ValueError) as exc:
                raise IpchangeError(f"{file}: column {name!r} is not {dtype}: {exc}") from None
        if dtype in ("str", "bool") and column.isna().any():
            raise IpchangeError(f"{file}: column {name!r} has missing values (blank is '')")
        out[name] = column
    return pd.DataFrame(out, index=frame.index)


def typed_batch(frame: pd.DataFrame, table: str) -> Batch:
    """The :class:`Batch` of a frame conformed to ``table`` (:func:`conform`)."""
    kinds: dict[str, str] = {}
    text: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    numbers: dict[str, np.ndarray] = {}
    hashes: dict[str, np.ndarray] = {}
    for name, dtype in schema.typed_dtypes(table).items():
        column = frame[name]
        if dtype == "str":
            kinds[name] = "text"
            # Hash (and later bind) each distinct value once, unless a sample shows the values
            # (nearly) all distinct, when factorizing them would cost more than it saves: then
            # they become Python text a block at a time, to be hashed and later to be bound
            # (a whole column at once would cost memory in proportion: see bench/RESULTS.md).
            sample = column.iloc[:: max(1, len(column) // 2000)]
            if len(sample) >= 100 and sample.nunique() >= 0.99 * len(sample):
                hashes[name] = text_hashes(pa.array(column)).view(np.uint64)
            else:
                codes, uniques = pd.factorize(column)
                values = np.asarray(uniques, dtype=object)
                text[name] = (values, codes)
                hashes[name] = pd.util.hash_array(values, categorize=False)[codes]
            continue
        if dtype == schema.TIMESTAMP_DTYPE:
            kinds[name] = "instant"
            numbers[name] = column.dt.tz_convert(None).to_numpy().view(np.int64)
        elif dtype == "boolean":
            kinds[name] = "flag"
            numbers[name] = column.to_numpy(dtype=np.int8, na_value=NA_FLAG)
        elif dtype == "bool":
            kinds[name] = "bool"
            numbers[name] = column.to_numpy(dtype=np.int8)
        else:  # pragma: no cover - schema and store disagree
            raise IpchangeError(f"no storage for dtype {dtype!r} of {table}.{name}")
        hashes[name] = pd.util.hash_array(numbers[name], categorize=False)
    n = len(frame)
    return Batch(
        table=table,
        frame=frame,
        kinds=kinds,
        text=text,
        numbers=numbers,
        key_hash=combine_hashes([hashes[k] for k in schema.NATURAL_KEYS[table]], n),
        row_hash=combine_hashes(list(hashes.values()), n),
    )


def check_unique_keys(batch: Batch, lines: np.ndarray, file: str) -> bool:
    """Raise on two rows with one natural key; return False if only their hashes collide."""
    if not len(repeats(batch.key_hash)):
        return True
    dup = pd.Series(batch.key_hash).duplicated(keep=False).to_numpy()
    keys = list(schema.NATURAL_KEYS[batch.table])
    suspects = batch.frame.loc[dup, keys]
    exact = suspects.duplicated(keep=False).to_numpy()
    if exact.any():
        first = suspects[exact].iloc[0]
        same = (suspects == first).all(axis=1).to_numpy()
        where = lines[dup][same]
        shown = ", ".join(str(v) for v in first.to_list())
        raise InvalidInputError(
            f"duplicate key ({shown}) on lines {', '.join(map(str, where[:5]))}",
            file=file,
            row=int(where[1]),
        )
    return False  # a 64-bit collision between two different keys: compare every row in SQL


def unchanged_mask(batch: Batch, stored: np.ndarray, trust: bool) -> np.ndarray:
    """Rows whose (key_hash, row_hash) is already stored: identical rows, nothing to send."""
    n = len(batch.key_hash)
    if not trust or len(stored) == 0:
        return np.zeros(n, dtype=bool)
    index = pd.Index(stored[:, 0])
    if not index.is_unique:  # a hash collision among stored keys: let the database compare
        return np.zeros(n, dtype=bool)
    pos = index.get_indexer(batch.key_hash)
    found = pos >= 0
    same = np.zeros(n, dtype=bool)
    same[found] = stored[pos[found], 1] == batch.row_hash[found]
    return same


def quote(conn: Connection, name: str) -> str:
    """``name`` quoted as an identifier of ``conn``'s dialect."""
    return conn.dialect.identifier_preparer.quote(name)


def upsert_tail(conn: Connection, table: str, columns: list[str]) -> str:
    """``ON CONFLICT … DO UPDATE SET … WHERE <not stale> AND <any column differs>``."""
    q = lambda name: quote(conn, name)  # noqa: E731
    tq = q(table)
    keys = schema.NATURAL_KEYS[table]
    others = [c for c in columns if c not in keys]
    differs = backend_of(conn).differs
    sets = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in [*others, "row_hash"])
    changed = " OR ".join(f"{tq}.{q(c)} {differs} excluded.{q(c)}" for c in others)
    where = f"({changed})"
    if table == "tickets":  # an older export of a ticket never overwrites a newer one
        u = q("updated_at")
        where = (
            f"(excluded.{u} IS NULL OR {tq}.{u} IS NULL OR excluded.{u} >= {tq}.{u}) AND {where}"
        )
    conflict = ", ".join(q(k) for k in keys)
    return f" ON CONFLICT ({conflict}) DO UPDATE SET {sets} WHERE {where}"
