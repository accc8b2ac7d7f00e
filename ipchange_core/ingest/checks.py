"""Value checks of canonical text: every column checked and typed, then the contract.

:func:`check_text` checks each column by its kind (:mod:`ipchange_core.schema`) with
vectorised rules, rejects end-before-start rows and repeated natural keys, types the accepted
rows exactly as :func:`ipchange_core.schema.typed_dtypes` and validates them against their
pandera model (:data:`ipchange_core.schema.FRAME_MODELS`). Every problem is one reject naming
the line, column and value with a reason in plain words.
"""

from __future__ import annotations

import functools
import importlib
import ipaddress
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ipchange_core.ingest.columns import (
    NAT,
    CanonicalText,
    blank_column,
    blanks,
    bools,
    contiguous,
    no_rejects,
    quote,
    typed_frame,
)
from ipchange_core.ingest.timestamps import OK, TimeParser
from ipchange_core.records import (
    RecordHashes,
    repeats,
    text_hashes,
)
from ipchange_core.schema import NATURAL_KEYS, SOURCE_LINE, TABLES, Column, typed_dtypes

ORDER_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "tickets": (("created_at", "updated_at"),),
    "changes": (("scheduled_start", "scheduled_end"),),
}
"""(start, end) columns where an end before its start rejects the row ("end before start")."""


_IPV4 = r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"


_WORKERS = 2  # columns checked in parallel


TIME_BLOCK = 1 << 18  # times parsed at a time (see _check_time)


KEY_BLOCK = 1 << 18  # natural keys written out as text and hashed at a time (see check_text)


class Rejects:
    """Collects problems row by row; ``bad`` marks every row with at least one."""

    def __init__(self, lines: np.ndarray) -> None:
        self.lines = lines
        self.bad = np.zeros(len(lines), dtype=bool)
        self.parts: list[pd.DataFrame] = []

    def add(
        self,
        column: str,
        mask: np.ndarray,
        values: pa.Array | None,
        reason: str | Callable[[str], str] | list[str],
    ) -> None:
        """Reject the rows in ``mask``; ``reason`` is text, a function of the value, or a list."""
        idx = np.flatnonzero(mask)
        if not len(idx):
            return
        self.bad[idx] = True
        vals = values.take(pa.array(idx)).to_pylist() if values is not None else [""] * len(idx)
        if callable(reason):
            reasons = [reason(v) for v in vals]
        elif isinstance(reason, str):
            reasons = [reason] * len(idx)
        else:
            reasons = reason
        self.parts.append(
            pd.DataFrame(
                {"line": self.lines[idx], "column": column, "value": vals, "reason": reasons}
            )
        )

    def merge(self, other: Rejects) -> None:
        """Take over the problems another collector found (same rows)."""
        self.bad |= other.bad
        self.parts.extend(other.parts)

    def frame(self) -> pd.DataFrame:
        """Every problem collected, one row each (``line``, ``column``, ``value``, ``reason``)."""
        return pd.concat([no_rejects(), *self.parts], ignore_index=True)


@dataclass(frozen=True)
class _Checked:
    """One column after its checks: typed values, which rows failed, and why."""

    typed: pa.Array | pa.ChunkedArray
    blank: np.ndarray
    bad: np.ndarray
    rejects: Rejects
    us: np.ndarray | None = None  # UTC microseconds of a time column (NAT = none)
    asap: np.ndarray | None = None  # rows of a requested time that say ASAP


def _check_column(
    col: Column, values: pa.Array | pa.ChunkedArray, parser: TimeParser, lines: np.ndarray
) -> _Checked:
    """Check and type one canonical column on its own (columns are checked in parallel)."""
    rej = Rejects(lines)
    blank = blanks(values)
    if col.required:
        rej.add(col.name, blank, None, "is blank, but a value is required")
    if col.kind == "enum":
        typed, bad = _check_enum(values, blank, col, rej)
    elif col.kind == "bool":
        typed, bad = _check_bool(values, blank, col, rej)
    elif col.kind == "ip":
        typed, bad = _check_ip(values, blank, col, rej)
    elif col.kind in ("timestamp", "requested_time"):
        present = ~blank
        asap = None
        if col.kind == "requested_time":
            asap = bools(pc.match_like(values, "asap", ignore_case=True))
            present &= ~asap
        us, bad = _check_time(values, present, col, parser, rej)
        typed = pa.array(us, type=pa.int64(), mask=us == NAT).cast(pa.timestamp("us", tz="UTC"))
        return _Checked(typed, blank, bad, rej, us, asap)
    else:
        typed, bad = values, np.zeros(len(lines), dtype=bool)
    return _Checked(typed, blank, bad, rej)


def check_text(
    table: str, text: CanonicalText, parser: TimeParser, *, duplicates: bool = True
) -> tuple[pd.DataFrame, pd.DataFrame, pa.Table]:
    """Check and type every canonical column.

    The columns of ``text`` are consumed: ``text.columns`` is emptied once they are checked,
    and each is freed as soon as its accepted rows are copied, so the text and its typed copy
    of a whole file are never in memory together.

    Args:
        table: The canonical table.
        text: Its rows as text.
        parser: Reads the time columns.
        duplicates: Reject every copy of a natural key repeated within ``text``; ``False``
            leaves that to the caller (a file read in blocks: :class:`FileKeys`).

    Returns:
        The accepted typed frame, the rejects, and the keys of every row of ``text``: ``valid``
        (bool: the natural key is neither blank nor invalid) and ``hash`` (int64
        :func:`~ipchange_core.records.text_hashes` of the key as one text); with
        ``duplicates=False`` also ``key`` (that text, null where not valid) and ``value`` (the
        first key column), as :func:`reject_duplicates` takes them.
    """
    n = len(text.lines)
    rej = Rejects(text.lines)
    if len(text.rejects):
        rej.bad |= np.isin(text.lines, text.rejects["line"].to_numpy())
    columns = TABLES[table]
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:  # arrow and numpy release the GIL
        checked = dict(
            zip(
                (col.name for col in columns),
                pool.map(
                    lambda col: _check_column(col, text.columns[col.name], parser, text.lines),
                    columns,
                ),
                strict=True,
            )
        )
    valid_key = np.ones(n, dtype=bool)
    for name, result in checked.items():
        rej.merge(result.rejects)
        if name in NATURAL_KEYS[table]:
            valid_key &= ~result.blank & ~result.bad
    typed = {name: result.typed for name, result in checked.items()}
    times = {name: r.us for name, r in checked.items() if r.us is not None}
    for start, end in ORDER_RULES.get(table, ()):
        _check_order(start, end, times, text.columns, rej)
    hashes = np.empty(n, dtype=np.int64)
    for start in range(0, n, KEY_BLOCK):  # the key texts of a block at a time
        rows = slice(start, start + KEY_BLOCK)
        hashes[rows] = text_hashes(_key_text(table, typed, times, valid_key, rows))
    keys = pa.table({"valid": valid_key, "hash": hashes})
    value = typed[NATURAL_KEYS[table][0]]
    if duplicates:
        texts_of = functools.partial(_key_text, table, typed, times, valid_key)
        reject_duplicates(table, texts_of, valid_key, value, hashes, rej)
        del texts_of
    else:
        key = _key_text(table, typed, times, valid_key)
        keys = keys.append_column("key", key).append_column("value", value)
        del key
    del value

    for extra, dtype in typed_dtypes(table).items():
        if extra in typed:
            continue
        if dtype == "bool":  # requested_asap
            asap = checked["requested_change_at"].asap
            typed[extra] = pa.array(asap if asap is not None else np.zeros(n, dtype=bool))
        else:
            typed[extra] = text.columns.get(extra, blank_column(n))
    typed[SOURCE_LINE] = pa.array(text.lines, type=pa.int64())
    del checked
    text.columns.clear()
    keep = None if not rej.bad.any() else pa.array(~rej.bad)
    for name in list(typed):  # a filter copies the column: the text of each goes once copied
        column = typed.pop(name)
        typed[name] = column if keep is None else column.filter(keep)
        del column
    frame = typed_frame(table, pa.table(typed))
    del typed
    frame, contract = _validate_contract(table, frame)
    rejects = rej.frame()
    if len(contract):
        rejects = pd.concat([rejects, contract], ignore_index=True)
    return frame, rejects, keys


def claims_known_key(keys: pa.Table, known: RecordHashes) -> bool:
    """Whether a parsed row's natural key (``check_text``'s ``keys``) is that of a known record."""
    valid = bools(keys["valid"])
    return bool(pd.Series(known.keys).isin(keys["hash"].to_numpy()[valid]).any())


def _check_order(
    start: str,
    end: str,
    times: dict[str, np.ndarray],
    columns: dict[str, pa.Array | pa.ChunkedArray],
    rej: Rejects,
) -> None:
    """Reject rows whose ``end`` instant is strictly before their ``start`` (equal is fine)."""
    a, b = times[start], times[end]
    before = (a != NAT) & (b != NAT) & (b < a)
    if not before.any():
        return
    mask = pa.array(before)
    starts = columns[start].filter(mask).to_pylist()
    ends = columns[end].filter(mask).to_pylist()
    reasons = [
        f"{quote(e)} is before {start} {quote(s)}" for s, e in zip(starts, ends, strict=True)
    ]
    rej.add(end, before, columns[end], reasons)


def _check_enum(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """Accept the column's values in any letter case; store them lower-case."""
    allowed = pa.array(col.values, pa.large_string())
    other = ~bools(pc.is_in(values, value_set=allowed)) & ~blank
    bad = np.zeros(len(values), dtype=bool)
    if other.any():
        mask = pa.array(other)
        lower = contiguous(pc.utf8_lower(values.filter(mask)))
        bad[np.flatnonzero(other)] = ~bools(pc.is_in(lower, value_set=allowed))
        listed = ", ".join(col.values)
        rej.add(col.name, bad, values, lambda v: f"{quote(v)} is not one of: {listed}")
        values = pc.replace_with_mask(contiguous(values), mask, lower)
    return values, bad


def _check_bool(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """``yes``/``no`` in any letter case; blank is unknown (NA)."""
    yes = bools(pc.match_like(values, "yes", ignore_case=True))
    no = bools(pc.match_like(values, "no", ignore_case=True))
    bad = ~(yes | no | blank)
    rej.add(col.name, bad, values, lambda v: f"{quote(v)} is not yes or no")
    return pa.array(yes, mask=~(yes | no)), bad


def _check_ip(
    values: pa.Array | pa.ChunkedArray, blank: np.ndarray, col: Column, rej: Rejects
) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
    """An IPv4 or IPv6 address as :mod:`ipaddress` reads it; IPv6 is stored in compressed form.

    Dotted-quad IPv4 is checked by a vectorised pattern; only the other values (IPv6 or bad)
    go through :func:`ipaddress.ip_address`, once per distinct value.
    """
    other = ~bools(pc.match_substring_regex(values, _IPV4)) & ~blank
    bad = np.zeros(len(values), dtype=bool)
    if other.any():
        mask = pa.array(other)
        subset = values.filter(mask).to_pylist()
        canonical: dict[str, str | None] = {}
        for value in dict.fromkeys(subset):
            try:
                canonical[value] = str(ipaddress.ip_address(value))
            except ValueError:
                canonical[value] = None
        fixed = [canonical[v] for v in subset]
        bad[np.flatnonzero(other)] = [f is None for f in fixed]
        rej.add(col.name, bad, values, lambda v: f"{quote(v)} is not a valid IP address")
        replacement = [f if f is not None else v for f, v in zip(fixed, subset, strict=True)]
        replacement_array = pa.array(replacement, pa.large_string())
        values = pc.replace_with_mask(contiguous(values), mask, replacement_array)
    return values, bad


def _check_time(
    values: pa.Array | pa.ChunkedArray,
    present: np.ndarray,
    col: Column,
    parser: TimeParser,
    rej: Rejects,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the non-blank times of a column; return UTC microseconds (``NAT`` = none) and bad.

    The times are parsed :data:`TIME_BLOCK` rows at a time: a parse makes a score of
    temporary integer arrays the length of its input, too much memory at once for a whole
    column of millions of rows (figures: bench/RESULTS.md).
    """
    n = len(values)
    us = np.full(n, NAT, dtype=np.int64)
    codes = np.full(n, OK, dtype=np.int8)
    for start in range(0, n, TIME_BLOCK):
        block = present[start : start + TIME_BLOCK]
        idx = np.flatnonzero(block)
        if len(idx):
            subset = contiguous(values.slice(start, len(block)).filter(pa.array(block)))
            us[start + idx], codes[start + idx] = parser.parse(subset)
    bad = codes != OK
    if bad.any():
        raw = values.filter(pa.array(bad)).to_pylist()
        reasons = [parser.reason(int(c), v) for c, v in zip(codes[bad], raw, strict=True)]
        rej.add(col.name, bad, values, reasons)
    return us, bad


def _key_text(
    table: str,
    typed: dict[str, pa.Array],
    times: dict[str, np.ndarray],
    valid_key: np.ndarray,
    rows: slice | np.ndarray | None = None,
) -> pa.Array | pa.ChunkedArray:
    """The natural key of each row as one text; null where ``valid_key`` is False.

    Times compare as instants, so the same moment written with different offsets is one key.
    ``rows`` (a slice, or row numbers) selects the rows; ``None`` is every row.
    """
    rows = slice(None) if rows is None else rows

    def part(name: str) -> pa.Array | pa.ChunkedArray:
        if name in times:
            return pa.array(times[name][rows]).cast(pa.large_string())
        column = typed[name]
        return column[rows] if isinstance(rows, slice) else column.take(pa.array(rows))

    parts = [part(name) for name in NATURAL_KEYS[table]]
    key = (
        parts[0]
        if len(parts) == 1
        else pc.binary_join_element_wise(*parts, pa.scalar("\x1f", pa.large_string()))
    )
    return pc.if_else(pa.array(valid_key[rows]), key, pa.scalar(None, pa.large_string()))


def reject_duplicates(
    table: str,
    key_text: Callable[[np.ndarray], pa.Array | pa.ChunkedArray],
    valid: np.ndarray,
    values: pa.Array | pa.ChunkedArray,
    hashes: np.ndarray,
    rej: Rejects,
) -> None:
    """Reject every copy of a key seen more than once, naming the other lines.

    Rows not ``valid`` are left out: their key is blank or invalid, and they are rejected for
    that already. ``key_text`` gives the key texts (:func:`_key_text`) of the rows it is given;
    ``values`` (the first key column) is the value a reject shows. ``hashes`` (int64, of each
    row's key text) find the candidates: only the keys whose hash repeats are written out and
    compared as texts (sorting hashes is much quicker than counting texts).
    """
    keys = NATURAL_KEYS[table]
    repeated = repeats(hashes[valid])
    if not len(repeated):
        return
    suspects = np.flatnonzero(valid & np.isin(hashes, repeated))
    texts = key_text(suspects)
    counts = pc.value_counts(texts)
    dup_values = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    if not len(dup_values):
        return  # only hashes collide
    found = bools(pc.is_in(texts, value_set=dup_values))
    idx = suspects[found]
    dup = np.zeros(len(hashes), dtype=bool)
    dup[idx] = True
    dup_keys = texts.filter(pa.array(found)).to_pylist()
    by_key: dict[str, list[int]] = {}
    for k, line in zip(dup_keys, rej.lines[idx].tolist(), strict=True):
        by_key.setdefault(k, []).append(line)
    what = "ticket_id {}" if len(keys) == 1 else f"event ({', '.join(keys)})"
    reasons = []
    for k, line in zip(dup_keys, rej.lines[idx].tolist(), strict=True):
        others = [x for x in by_key[k] if x != line]
        shown = ", ".join(map(str, others[:10]))
        if len(others) > 10:
            shown += f" and {len(others) - 10} more"
        subject = what.format(quote(k)) if len(keys) == 1 else what
        reasons.append(f"duplicate {subject}: also on line(s) {shown}; every copy is rejected")
    rej.add(keys[0], dup, values, reasons)


_PANDERA_BACKENDS = (
    "pandera.backends.pandas.builtin_checks",
    "pandera.backends.pandas.builtin_hypotheses",
    "pandera.backends.pandas.container",
    "pandera.backends.pandas.components",
    "pandera.api.geopandas.container",
)
"""What pandera imports on the first validate to register its pandas backends (most of the
time goes to hypothesis and pandera's strategies)."""


def import_contracts(backends: bool) -> None:
    """Import pandera's models while the file is read (arrow releases the GIL).

    pandera is slow to import and only the checks at the end of a read need it. With
    ``backends`` (a reload, which parses only the records it does not know: little else to
    wait for), its pandas backends too; not on a first load, whose peak memory grew with them
    for a gain small beside the load's time (figures: bench/RESULTS.md). A failure here is
    left to the import in :func:`_validate_contract`, which reports it.
    """
    with suppress(Exception):
        for module in ("ipchange_core.contracts", *(_PANDERA_BACKENDS if backends else ())):
            importlib.import_module(module)


def _validate_contract(table: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate the typed frame against its pandera model (lazy: every failing row collected).

    The checks above should leave nothing for the model to find; a row that still fails is
    rejected with the failed check, and a failure not tied to a row is a bug (``RuntimeError``).
    """
    from pandera.errors import SchemaErrors  # pandera is slow to load: only when validating

    from ipchange_core.schema import FRAME_MODELS

    try:
        return FRAME_MODELS[table].validate(frame, lazy=True), no_rejects()
    except SchemaErrors as err:
        cases = err.failure_cases
    if cases["index"].isna().any():
        raise RuntimeError(f"typed {table} frame breaks its declared contract:\n{cases}")
    rows = cases["index"].astype("int64").to_numpy()
    rejects = pd.DataFrame(
        {
            "line": frame[SOURCE_LINE].to_numpy()[rows],
            "column": cases["column"].astype("str").to_numpy(),
            "value": cases["failure_case"].astype("str").to_numpy(),
            "reason": [f"fails the {table} contract check {c}" for c in cases["check"]],
        }
    )
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    return frame[keep].reset_index(drop=True), rejects
