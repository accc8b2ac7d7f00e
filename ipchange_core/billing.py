"""Fee exports for billing (SPEC 5.3, 6): ``fees-<period>.csv`` / ``.xlsx``, recorded as batches.

Every billable fee of the period gets one entry in the store's append-only fee ledger; an export
takes the entries not yet exported, writes them and records them as one export batch, so that a
fee is billed once. A correction of an exported fee (:func:`store.correct_fee`) reaches billing
with the next export as two lines: the reversal (negative amount) and the corrected fee.
``all_fees=True`` writes the fee every ticket of the period carries now (recording only the new
entries). The files carry no generation time, so writing the same rows again gives the same
bytes; :func:`export_fees` with ``batch_id`` re-writes a recorded batch and checks its SHA-256.

Times are local wall times of the policy zone, named in the column header (Excel cannot hold
time zones); text cells are formula-safe (OWASP CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from ipchange_core import store
from ipchange_core.atomic import publish, staged
from ipchange_core.errors import IpchangeError, OutputError
from ipchange_core.evaluation import evaluate
from ipchange_core.export import formula_safe
from ipchange_core.periods import Period
from ipchange_core.policy import PolicySet
from ipchange_core.textops import mask_contacts

FORMATS = ("csv", "xlsx")
_FIXED_STAMP = dt.datetime(2000, 1, 1)  # xlsx document dates: fixed, so re-exports are identical
_TEXT = ("Ticket", "Account", "Reseller", "Fee status", "Person of record", "Signed off by")


@dataclass(frozen=True)
class FeeExport:
    """The result of one export.

    Attributes:
        paths: Files written (empty when there was nothing to export).
        rows: Fees in the files.
        total_cents: Their sum.
        batch_id: The export batch recorded (None when no fee was new).
        new_rows: Fees exported for the first time.
    """

    paths: tuple[Path, ...]
    rows: int
    total_cents: int
    batch_id: int | None
    new_rows: int


def _current_entries(ledger: pd.DataFrame) -> pd.DataFrame:
    """Ledger entries that are neither reversals nor reversed (the fee each ticket carries)."""
    reversed_ids = set(ledger["reverses_id"].dropna().astype(int))
    live = ledger["reverses_id"].isna() & ~ledger["id"].isin(reversed_ids)
    return ledger[live]


def _reversals_to_bill(ledger: pd.DataFrame) -> pd.DataFrame:
    """Reversals not yet exported of entries that were exported: billing must receive the credit.

    A correction of a fee already billed is a reversal plus a new entry; exporting only the new
    entry would bill the ticket twice. A reversal of an entry never exported is not billed (the
    two cancel out inside the ledger).
    """
    exported = ledger.loc[ledger["export_batch_id"].notna(), "id"]
    due = ledger["reverses_id"].isin(exported) & ledger["export_batch_id"].isna()
    return ledger[due]


def _ensure_ledger(engine: Engine, billable: pd.DataFrame) -> pd.DataFrame:
    """Append a ledger entry for each billable request without one; return the current entries."""
    current = _current_entries(store.fee_ledger(engine))
    new = billable[~billable["ticket_id"].isin(current["ticket_id"])]
    for version, part in new.groupby("policy_version"):
        store.append_fees(
            engine,
            pd.DataFrame(
                {
                    "ticket_id": part["ticket_id"],
                    "fee_status": part["fee_status"],
                    "amount_cents": part["fee_cents"].astype("int64"),
                }
            ),
            policy_version=str(version),
        )
    if not new.empty:
        current = _current_entries(store.fee_ledger(engine))
    return current


def _local(instants: pd.Series, tz: str) -> pd.Series:
    """Naive local wall times (for xlsx cells and the CSV text)."""
    return instants.dt.tz_convert(tz).dt.tz_localize(None).dt.floor("s")


def fee_table(rows: pd.DataFrame, entries: pd.DataFrame, tz: str) -> pd.DataFrame:
    """One row per exported fee, ordered by received time then ticket; amounts from the ledger.

    Args:
        rows: Evaluated requests (one per ticket).
        entries: Ledger entries to export (``ticket_id``, ``fee_status``, ``amount_cents``,
            ``policy_version``; ``id`` and ``reverses_id`` when they come from the ledger). A
            reversal is a line of its own, with the negative amount and the status ``reversal``.
        tz: Policy time zone, named in the time column headers.
    """
    order = ["received_at", "ticket_id", "id"] if "id" in entries else ["received_at", "ticket_id"]
    # one line per ledger entry; where both have a column (fee_status, policy_version) the
    # ledger's wins: the file bills what the ledger holds
    r = entries.merge(rows, on="ticket_id", suffixes=("", "_request")).sort_values(order)
    return pd.DataFrame(
        {
            "Ticket": r["ticket_id"].to_numpy(),
            "Account": r["account"].to_numpy(),
            "Reseller": r["reseller"].to_numpy(),
            f"Received ({tz})": _local(r["received_at"], tz).to_numpy(),
            f"Requested ({tz})": _local(r["requested_change_at"], tz).to_numpy(),
            "Notice hours": r["notice_hours"].astype(float).round(2).to_numpy(),
            "Fee status": _ledger_status(r),
            "Amount": (r["amount_cents"].astype("int64") / 100).round(2).to_numpy(),
            "Person of record": r["person_of_record"].to_numpy(),
            "Signed off by": r["fee_accepted_by"].to_numpy(),
            f"Sign-off time ({tz})": _local(r["fee_accepted_at"], tz).to_numpy(),
            "Policy version": r["policy_version"].to_numpy(),
        }
    )


def _ledger_status(ledger: pd.DataFrame) -> np.ndarray:
    status = ledger["fee_status"].astype("str")
    if "reverses_id" in ledger:
        status = status.mask(ledger["reverses_id"].notna(), "reversal")
    return status.to_numpy()


def _safe_text(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in (*_TEXT, "Policy version"):
        out[col] = formula_safe(mask_contacts(out[col].fillna("")))
    return out


def csv_bytes(table: pd.DataFrame) -> bytes:
    """UTF-8 CSV: times ``YYYY-MM-DD HH:MM:SS``, amounts with two decimals, text formula-safe."""
    out = _safe_text(table)
    for col in out.columns:
        if col.startswith(("Received", "Requested", "Sign-off time")):
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    out["Amount"] = out["Amount"].map("{:.2f}".format)
    out["Notice hours"] = out["Notice hours"].map("{:.2f}".format, na_action="ignore")
    return out.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def xlsx_bytes(table: pd.DataFrame, title: str) -> bytes:
    """An .xlsx workbook of the table: real numbers and dates, text formula-safe, no timestamps."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    out = _safe_text(table)
    wb = Workbook()
    ws = wb.active
    ws.title = "fees"
    ws.append(list(out.columns))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for values in out.itertuples(index=False):
        ws.append([_cell(v) for v in values])
    formats = {}
    for i, col in enumerate(out.columns, start=1):
        if col.startswith(("Received", "Requested", "Sign-off time")):
            formats[i] = "yyyy-mm-dd hh:mm"
        elif col in ("Amount", "Notice hours"):
            formats[i] = "0.00"
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            if cell.column in formats:
                cell.number_format = formats[cell.column]
            elif isinstance(cell.value, str):
                cell.data_type = "s"  # never a formula, whatever the text
    for i, col in enumerate(out.columns, start=1):
        ws.column_dimensions[ws.cell(1, i).column_letter].width = max(12, len(col) + 2)
    ws.freeze_panes = "A2"
    wb.properties.title = title
    wb.properties.creator = "ipchange"
    wb.properties.created = _FIXED_STAMP
    buffer = io.BytesIO()
    wb.save(buffer)
    return reproducible_xlsx(buffer.getvalue())


def _cell(value: object) -> object:
    if isinstance(value, str):
        from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

        # control characters cannot be stored in a worksheet (openpyxl raises): show U+FFFD
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if value is None or pd.isna(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def reproducible_xlsx(data: bytes) -> bytes:
    """Rewrite an xlsx with fixed entry times and document dates: equal content, equal bytes.

    openpyxl stamps the zip entries and ``docProps/core.xml`` with the current time, so saving
    the same workbook twice gives different bytes; after this, it gives the same.
    """
    stamp = _FIXED_STAMP.strftime("%Y-%m-%dT%H:%M:%SZ")
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                content = re.sub(
                    rb"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:)",
                    rb"\g<1>" + stamp.encode() + rb"\g<3>",
                    content,
                )
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            target.writestr(fixed, content)
    return buffer.getvalue()


def _batches(engine: Engine) -> pd.DataFrame:
    table = store.ExportBatch.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.period, table.c.sha256).order_by(table.c.id))
        return pd.DataFrame(rows.all(), columns=["id", "period", "sha256"])


def export_fees(
    engine: Engine,
    policy: PolicySet,
    period: Period,
    out: Path,
    *,
    formats: tuple[str, ...] = FORMATS,
    all_fees: bool = False,
    batch_id: int | None = None,
) -> FeeExport:
    """Export the billable fees of a period and record the batch.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        policy: The policy the fees are computed by.
        period: Requests received in ``[period.start, period.end)``.
        out: Folder the files are written to.
        formats: ``csv`` and/or ``xlsx``.
        all_fees: Export every billable fee of the period, also those exported before
            (``fees-<period>-all.*``); only the new ones are recorded in the batch.
        batch_id: Re-write this recorded batch instead (byte-identical, SHA-256 checked).

    Returns:
        What was written. With nothing new to export, no file is written.

    Raises:
        IpchangeError: Unknown format or batch, or a re-export that differs from the record.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise IpchangeError(f"fee export format must be csv or xlsx, not {sorted(unknown)}")
    tz = policy.latest.timezone
    evaluated = evaluate(
        store.read_frames(engine, period.start, period.end, policy=policy), policy=policy
    )
    billable = evaluated[(evaluated["fee_status"] == "billable") & evaluated["fee_cents"].gt(0)]
    current = _ensure_ledger(engine, billable)
    batches = _batches(engine)
    if batch_id is not None:
        ledger = store.fee_ledger(engine)
        entries = ledger[ledger["export_batch_id"] == batch_id]
        known = batches[batches["id"] == batch_id]
        if known.empty:
            raise IpchangeError(f"no fee export batch {batch_id}")
        label = str(known["period"].iloc[0])
        rows = evaluate(store.read_frames(engine, policy=policy), policy=policy)
        rows = rows[rows["ticket_id"].isin(entries["ticket_id"])]
        new = entries.iloc[0:0]
    else:
        label = period.label
        entries = current[current["ticket_id"].isin(billable["ticket_id"])]
        credits = _reversals_to_bill(store.fee_ledger(engine))
        credits = credits[credits["ticket_id"].isin(evaluated["ticket_id"])]
        new = pd.concat([entries[entries["export_batch_id"].isna()], credits])
        if not all_fees:  # all_fees: the fee each ticket carries now (net of corrections)
            entries = new
        rows = evaluated
    if entries.empty:
        return FeeExport((), 0, 0, None, 0)
    table = fee_table(rows, entries, tz)
    data = {}
    if "csv" in formats:
        data["csv"] = csv_bytes(table)
    if "xlsx" in formats:
        data["xlsx"] = xlsx_bytes(table, f"Expedite fees {label}")
    # a batch is identified by the SHA-256 of its CSV, whichever formats were written
    batch_table = fee_table(rows, new, tz) if all_fees and batch_id is None else table
    sha = hashlib.sha256(csv_bytes(batch_table)).hexdigest()
    if batch_id is not None:
        recorded = str(batches.loc[batches["id"] == batch_id, "sha256"].iloc[0])
        if recorded != sha:
            raise IpchangeError(f"batch {batch_id} no longer reproduces its recorded SHA-256")
    # every file is on disk (as a temporary) before the batch is recorded: a folder that cannot
    # be written or a full disk leaves the fees unexported, to be exported again
    temps: dict[str, Path] = {}
    try:
        for fmt, content in data.items():
            temps[fmt] = staged(out / f"fees-{label}.{fmt}", content)
        if batch_id is not None:
            new_batch = batch_id
            stem = _stem(batches, label, batch_id)
        else:
            new_batch = None
            if not new.empty:
                new_batch = store.record_export(
                    engine, new["id"].tolist(), period=label, format="+".join(data), sha256=sha
                )
                batches = _batches(engine)
            stem = f"fees-{label}-all" if all_fees else _stem(batches, label, new_batch)
        paths = []
        for fmt, tmp in temps.items():
            path = out / f"{stem}.{fmt}"
            try:
                publish(tmp, path)
            except OutputError as exc:
                if new_batch is None or batch_id is not None:
                    raise
                raise OutputError(
                    f"{exc}; fee batch {new_batch} is recorded: write its files again with "
                    f"--batch {new_batch}"
                ) from None
            paths.append(path)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    return FeeExport(
        tuple(paths), len(table), int(entries["amount_cents"].sum()), new_batch, len(new)
    )


def _stem(batches: pd.DataFrame, label: str, batch_id: int | None) -> str:
    """``fees-<period>`` for a period's first batch, ``fees-<period>-batch<id>`` after it."""
    first = batches.loc[batches["period"] == label, "id"].min()
    if batch_id is None or pd.isna(first) or batch_id == first:
        return f"fees-{label}"
    return f"fees-{label}-batch{batch_id}"
