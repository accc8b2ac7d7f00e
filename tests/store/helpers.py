"""Shared inputs and checks of the store tests: parsed files, typed frames, stored rows."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from ipchange_core import schema
from ipchange_core.records import RecordHashes

UTC = "UTC"
KEYS = {
    "tickets": ["ticket_id"],
    "ticket_events": ["ticket_id", "at", "field", "old_value", "new_value"],
    "intake": ["ticket_id"],
    "changes": ["ticket_id"],
}
REJECT_COLUMNS = ["file", "line", "column", "value", "reason"]


# --- inputs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What ingest.ParsedFile carries (store.load accepts any object shaped like it)."""

    path: Path
    format: str
    table: str
    frame: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int
    rows_skipped: int
    sha256: str
    encoding: str = "utf-8"
    records: RecordHashes | None = None
    known: RecordHashes | None = None


def parsed(
    table: str,
    frame: pd.DataFrame,
    *,
    name: str | None = None,
    rejects: pd.DataFrame | None = None,
    skipped: int = 0,
) -> Parsed:
    """A parsed file of ``frame``; its sha256 follows its name and content."""
    frame = frame.reset_index(drop=True)
    if "source_line" not in frame.columns:
        frame = frame.assign(source_line=np.arange(2, len(frame) + 2, dtype="int64"))
    if rejects is None:
        rejects = pd.DataFrame(
            {c: pd.Series(dtype="int64" if c == "line" else "str") for c in REJECT_COLUMNS}
        )
    digest = hashlib.sha256(
        (name or "").encode() + pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    ).hexdigest()
    return Parsed(
        path=Path(name or f"{table}-{digest[:8]}.csv"),
        format=table,
        table=table,
        frame=frame,
        rejects=rejects,
        rows_read=len(frame) + rejects["line"].nunique() + skipped,
        rows_skipped=skipped,
        sha256=digest,
    )


def utc(text: str | None) -> pd.Timestamp:
    return pd.NaT if text is None else pd.Timestamp(text, tz=UTC).as_unit("us")


def typed(table: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A typed canonical frame from dicts (missing text = "", instants given as UTC strings)."""
    dtypes = schema.typed_dtypes(table)
    data = {}
    for name, dtype in dtypes.items():
        values = [row.get(name) for row in rows]
        if dtype == schema.TIMESTAMP_DTYPE:
            values = [utc(v) if v is None or isinstance(v, str) else v for v in values]
        elif dtype == "str":
            values = ["" if v is None else v for v in values]
        elif dtype == "bool":
            values = [bool(v) for v in values]
        data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data) if rows else schema.empty_frame(table)


def ticket(ticket_id: str, **values: Any) -> dict[str, Any]:
    return {
        "ticket_id": ticket_id,
        "subject": "IP change",
        "department": "Implementation",
        "status": "New",
        "creator": "staff",
        "created_at": "2026-11-16 16:00:00",
        **values,
    }


def tickets_frame(n: int, prefix: str = "KXP", seed: int = 0) -> pd.DataFrame:
    """``n`` realistic typed ticket rows with ids ``<prefix>-<number>``."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-01-01", tz=UTC).as_unit("us")
    created = start + pd.to_timedelta(rng.integers(0, 300 * 86_400_000_000, n), unit="us")
    updated = pd.Series(created + pd.Timedelta(hours=5)).where(rng.random(n) > 0.2)
    frame = pd.DataFrame(
        {
            "ticket_id": [f"{prefix}-{i:07d}" for i in range(n)],
            "subject": [f"IP change for site {i % 977} – café" for i in range(n)],
            "department": np.where(rng.random(n) > 0.3, "Implementation", "Customer Service"),
            "status": np.where(rng.random(n) > 0.5, "New", "Closed"),
            "owner": np.where(rng.random(n) > 0.5, "Alex Agent", ""),
            "creator": np.where(rng.random(n) > 0.5, "staff", "user"),
            "account": [f"ACCT-{i % 5000:05d}" for i in range(n)],
            "requester_name": [f"Person {i % 7919}" for i in range(n)],
            "requester_email": [f"p{i % 7919}@example.com" for i in range(n)],
            "created_at": created,
            "updated_at": updated,
            "tags": np.where(rng.random(n) > 0.7, "ip,urgent", ""),
            "ticket_type": np.where(rng.random(n) > 0.5, "IP Change", ""),
            "kayako_id": np.where(rng.random(n) > 0.4, [str(10_000 + i) for i in range(n)], ""),
        }
    )
    return frame.astype(schema.typed_dtypes("tickets"))


def expected(table: str, *frames: pd.DataFrame) -> pd.DataFrame:
    """What read_frames returns for these loaded frames: schema columns, sorted by key."""
    frame = pd.concat(frames, ignore_index=True)[list(schema.typed_dtypes(table))]
    return frame.sort_values(KEYS[table], ignore_index=True)


def assert_typed(frames: dict[str, pd.DataFrame]) -> None:
    assert list(frames) == list(schema.TABLES)
    for table, frame in frames.items():
        dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
        assert dtypes == schema.typed_dtypes(table), table
        assert isinstance(frame.index, pd.RangeIndex)
        for name, dtype in dtypes.items():
            if dtype == "str":
                assert not frame[name].isna().any(), f"{table}.{name} has NA text"


def table_rows(engine: sa.Engine, table: str) -> list[tuple[Any, ...]]:
    """Every stored row of a table, bookkeeping columns included, in id order."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY id"))]
