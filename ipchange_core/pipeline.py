"""Jobs the command line runs: load a file with its report, generate and summarise the demo."""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Engine
from tqdm import tqdm

from ipchange_core import periods, schema, store
from ipchange_core.atomic import atomic_write
from ipchange_core.demo_data import DemoDataSet, generate
from ipchange_core.evaluate import evaluate
from ipchange_core.export import formula_safe
from ipchange_core.ingest import (
    FORMAT_TABLES,
    REJECT_COLUMNS,
    ParsedFile,
    detect_format,
    file_sha256,
    read_file,
)
from ipchange_core.policy import PolicySet
from ipchange_core.sla import compliance
from ipchange_core.textops import money

_REJECT_VALUE_MAX = 1_000
"""Characters of a rejected value written to ``<file>.rejects.csv``; the rest is summarised."""


def load_file(
    engine: Engine,
    path: Path,
    policy: PolicySet,
    *,
    fmt: str = "auto",
    mapping: Path | None = None,
) -> tuple[store.LoadResult, ParsedFile]:
    """Read, validate and load one file in one transaction, under the latest policy version.

    A file whose bytes are those of its table's latest load (same format and policy version,
    the default column mapping) is not parsed again: :func:`store.repeat_load` records the
    reload with the earlier counts, and the returned :class:`ParsedFile` has no rows, the
    stored rejects and a note saying so (its ``encoding`` is blank: the text was not decoded).

    Raises:
        InvalidInputError: the file is refused whole (nothing is loaded).
    """
    latest = policy.latest
    path = Path(path)
    if fmt == "auto":
        fmt = detect_format(path, mapping=mapping)
    if mapping is None and fmt in FORMAT_TABLES:
        digest = functools.cache(lambda: file_sha256(path))
        repeat = store.repeat_load(
            engine,
            path,
            format=fmt,
            table=FORMAT_TABLES[fmt],
            policy_version=latest.version,
            sha256=digest,
        )
        if repeat is not None:
            return repeat, _repeated_file(engine, path, fmt, digest(), repeat)
    parsed = read_file(path, format=fmt, mapping=mapping, tz=latest.timezone, kayako=latest.kayako)
    return store.load(engine, parsed, policy_version=latest.version), parsed


def _repeated_file(
    engine: Engine, path: Path, fmt: str, sha256: str, result: store.LoadResult
) -> ParsedFile:
    """What :func:`load_file` reports for a file it did not parse again (see there)."""
    rejects = store.rejects(engine, result.manifest_id)
    rejects = rejects.assign(file=path.name)[list(REJECT_COLUMNS)]
    return ParsedFile(
        path=path,
        format=fmt,
        table=result.table,
        frame=schema.empty_frame(result.table).assign(
            **{schema.SOURCE_LINE: pd.Series(dtype="int64")}
        ),
        rejects=rejects.reset_index(drop=True),
        rows_read=result.read,
        sha256=sha256,
        encoding="",
        rows_skipped=result.skipped,
        notes=(
            "same bytes as the latest load into "
            f"{result.table} (same format and policy version): not parsed again, nothing changed",
        ),
    )


def load_summary(result: store.LoadResult) -> str:
    """``read N = inserted + updated + unchanged + rejected (+ skipped)``, as one line."""
    line = (
        f"read {result.read} = inserted {result.inserted} + updated {result.updated} "
        f"+ unchanged {result.unchanged} + rejected {result.rejected}"
    )
    return line + (f" + skipped {result.skipped}" if result.skipped else "")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV (UTF-8, no index, CRLF line ends as RFC 4180) atomically (see :mod:`atomic`).

    CRLF, not LF: the csv module quotes a value only when it holds a character of the line end,
    and an unquoted carriage return inside a value starts a new row in spreadsheets (where the
    rest of the value, e.g. ``=1+1``, would then run as a formula).
    """
    atomic_write(path, frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8"))


def write_load_report(folder: Path, parsed: ParsedFile, result: store.LoadResult) -> Path:
    """Write ``<file>.rejects.csv`` (one row per problem) and ``<file>.load.json`` in ``folder``.

    Returns:
        The path of the rejects CSV. Its text cells are formula-safe for spreadsheets.
    """
    rejects = parsed.rejects.astype(
        {"file": "str", "column": "str", "value": "str", "reason": "str"}
    )
    # a spreadsheet cell holds at most 32,767 characters, and a rejected value of megabytes
    # helps nobody: keep its start and say how much was left out (the database keeps it whole)
    long = rejects["value"].str.len() > _REJECT_VALUE_MAX
    if long.any():
        cut = rejects.loc[long, "value"]
        more = (cut.str.len() - _REJECT_VALUE_MAX).map("{:,}".format).astype("str")
        rejects.loc[long, "value"] = (
            cut.str.slice(0, _REJECT_VALUE_MAX) + "… (" + more + " more characters)"
        )
    for column in ("file", "column", "value", "reason"):
        rejects[column] = formula_safe(rejects[column])
    target = folder / f"{parsed.path.name}.rejects.csv"
    write_csv(rejects, target)
    report = {
        "file": str(parsed.path),
        "sha256": parsed.sha256,
        "format": parsed.format,
        "table": parsed.table,
        "encoding": parsed.encoding,
        "read": result.read,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "skipped": result.skipped,
        "manifest_id": result.manifest_id,
        "notes": list(parsed.notes),
    }
    (folder / f"{parsed.path.name}.load.json").write_text(json.dumps(report, indent=2) + "\n")
    return target


def generate_demo(
    out: Path,
    *,
    requests: int,
    other_tickets: int,
    months: int,
    seed: int,
    end: dt.date | None = None,
) -> DemoDataSet:
    """Generate the demo data set into ``out`` with a progress bar (see ``demo_data.generate``)."""
    with tqdm(total=requests + other_tickets, desc="generating", unit="ticket") as bar:
        return generate(
            out,
            requests=requests,
            other_tickets=other_tickets,
            months=months,
            seed=seed,
            end=end,
            progress=bar.update,
        )


def demo_summary(engine: Engine, policy: PolicySet, *, today: dt.date | None = None) -> str:
    """A readable summary of the last full ISO week's SLA compliance and last month's fees."""
    tz = policy.latest.timezone
    today = today or pd.Timestamp.now(tz=tz).date()
    week = periods.week(today, tz).previous()
    month = periods.month(today, tz).previous()
    lines = []
    week_rows = evaluate(
        store.read_frames(engine, week.start, week.end, policy=policy), policy=policy
    )
    table = compliance(week_rows, policy.for_instant(week.start))
    lines.append(
        f"\nSLA compliance, week {week.label} ({week.first} – {week.last}), "
        f"{len(week_rows)} requests"
    )
    lines.append(f"  {'metric':<16}{'met':>6}{'breached':>10}{'open':>6}{'n/a':>6}{'%':>8}  target")
    for row in table.itertuples():
        pct = "—" if pd.isna(row.compliance_pct) else f"{row.compliance_pct:.1f}"
        lines.append(
            f"  {row.metric:<16}{row.met:>6}{row.breached:>10}{row.open:>6}"
            f"{row.not_applicable:>6}{pct:>8}  {row.target}"
        )
    month_rows = evaluate(
        store.read_frames(engine, month.start, month.end, policy=policy), policy=policy
    )
    lines.append(f"\nExpedite fees, {month.label}, {len(month_rows)} requests")
    by_status = month_rows.groupby("fee_status", observed=True).agg(
        requests=("ticket_id", "size"), cents=("fee_cents", "sum")
    )
    for status, row in by_status.iterrows():
        amount = f"  {money(int(row.cents))}" if status == "billable" else ""
        lines.append(f"  {status:<18}{row.requests:>6}{amount}")
    return "\n".join(lines)
