"""Fee exports for billing (SPEC 5.3, 6): ``fees-<period>.csv`` / ``.xlsx``, recorded as batches.

Every billable fee of the period gets one entry in the store's append-only fee ledger; an export
judges each ticket again, adds the corrections its ledger needs (a waiver or cancellation loaded
later, a corrected sign-off), takes every line not yet billed (fees, corrections, waivers and
credits recorded by ``ipchange fees waive|credit``), writes them and records them as one export
batch, so that a line is billed once and each ticket nets to its fee. A reversal or credit is a
line with a negative ``Amount`` and its ``Reason``. Each batch has its own files
(:func:`batch_files`). The files carry no generation time, so writing the same rows again gives
the same bytes; :func:`export_fees` with ``batch_id`` re-writes a recorded batch and checks its
SHA-256.

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
from ipchange_core.atomic import atomic_write, publish, staged
from ipchange_core.csvfile import csv_bytes as csv_file_bytes
from ipchange_core.errors import IpchangeError, OutputError
from ipchange_core.evaluation import evaluate
from ipchange_core.export import formula_safe
from ipchange_core.periods import Period
from ipchange_core.policy import PolicySet
from ipchange_core.store.connection import reading
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
        new_rows: Lines billed for the first time (the batch's lines).
        taken: There were lines to bill when the export began, but another export that ran at
            the same time billed them (nothing new here; not an error).
    """

    paths: tuple[Path, ...]
    rows: int
    total_cents: int
    batch_id: int | None
    new_rows: int
    taken: bool = False


def _why(r: pd.DataFrame) -> pd.Series:
    """The reason a correction carries for each evaluated request (its fee status now)."""
    waived = (
        "waived after export by " + r["fee_waived_by"].str.strip()
        + ": " + r["fee_waiver_reason"].str.strip()
    )  # fmt: skip
    other = "fee now " + r["fee_status"] + " under policy " + r["policy_version"].astype(str)
    billable = "fee billable again under policy " + r["policy_version"].astype(str)
    return other.mask(r["fee_status"] == "waived", waived).mask(
        r["fee_status"] == "billable", billable
    )


def due_fees(engine: Engine, evaluated: pd.DataFrame) -> pd.DataFrame:
    """The tickets an export judges: billable now, or with ledger rows; one row each.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        evaluated: Evaluated requests of the period.

    Returns:
        Columns ``ticket_id``, ``fee_status``, ``fee_cents`` (integer cents),
        ``policy_version``, ``why`` (see :func:`ipchange_core.store.export_batch`).
    """
    in_ledger = evaluated["ticket_id"].isin(store.fee_ledger(engine)["ticket_id"])
    billable = (evaluated["fee_status"] == "billable") & evaluated["fee_cents"].gt(0)
    r = evaluated[billable | in_ledger]
    return pd.DataFrame(
        {
            "ticket_id": r["ticket_id"].astype(str),
            "fee_status": r["fee_status"].astype(str),
            "fee_cents": r["fee_cents"].fillna(0).astype("int64"),
            "policy_version": r["policy_version"].astype(str),
            "why": _why(r),
        }
    )


def _local(instants: pd.Series, tz: str) -> pd.Series:
    """Naive local wall times (for xlsx cells and the CSV text)."""
    return instants.dt.tz_convert(tz).dt.tz_localize(None).dt.floor("s")


def fee_table(rows: pd.DataFrame, entries: pd.DataFrame, tz: str) -> pd.DataFrame:
    """One row per exported fee, ordered by received time then ticket; amounts from the ledger.

    Args:
        rows: Evaluated requests (one per ticket).
        entries: Ledger rows to export (columns of :func:`ipchange_core.store.fee_ledger`). A
            reversal, correction, waiver or credit is a line of its own, with its amount
            (negative when it gives money back), its kind as the status and its reason.
        tz: Policy time zone, named in the time column headers.
    """
    order = ["received_at", "ticket_id", "id"]
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
            "Policy version": _policy_version(r),
            "Reason": reason_text(r),
        }
    )


def _policy_version(r: pd.DataFrame) -> np.ndarray:
    """The ledger row's policy version; a waiver or credit has none: the request's then."""
    version = r["policy_version"]
    if "policy_version_request" in r:
        version = version.mask(version == "", r["policy_version_request"])
    return version.to_numpy()


def _ledger_status(ledger: pd.DataFrame) -> np.ndarray:
    status = ledger["fee_status"].astype("str")
    return status.mask(ledger["kind"] != "fee", ledger["kind"]).to_numpy()


def reason_text(ledger: pd.DataFrame) -> np.ndarray:
    """The reason shown for each ledger row: blank for a plain fee, else why and by whom."""
    by, reason, kind = ledger["by_name"], ledger["reason"], ledger["kind"]
    text = reason + " (" + by + ")"
    text = text.mask(kind == "correction", reason)
    text = text.mask(kind == "waiver", "waived after export by " + by + ": " + reason)
    text = text.mask(kind == "credit", "credited by " + by + ": " + reason)
    text = text.mask((kind == "fee") & (reason == store.ledger.FEE_REASON), "")
    return text.astype(str).to_numpy()


def _safe_text(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for col in out.columns.intersection([*_TEXT, "Policy version", "Reason"]):
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
    return csv_file_bytes(out)


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
        rows = conn.execute(
            select(table.c.id, table.c.period, table.c.sha256, table.c.format).order_by(table.c.id)
        )
        return pd.DataFrame(rows.all(), columns=["id", "period", "sha256", "format"])


def _sha(table: pd.DataFrame) -> str:
    return hashlib.sha256(csv_bytes(table)).hexdigest()


def _net_lines(ledger: pd.DataFrame) -> pd.DataFrame:
    """One line per ticket with an exported fee: its live fee row carrying the net billed."""
    done = ledger[ledger["export_batch_id"].notna()]
    reversed_ids = set(done["reverses_id"].dropna().astype(int))
    fees = done[(done["kind"] == "fee") & ~done["id"].isin(reversed_ids)]
    lines = fees.drop_duplicates("ticket_id", keep="last").drop(columns="amount_cents")
    net = done.groupby("ticket_id", as_index=False)["amount_cents"].sum()
    return lines.merge(net, on="ticket_id")


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
    """Export the fee lines of a period not yet billed and record them as one batch.

    Each ticket of the period is judged again (:func:`due_fees`); where the net billed no longer
    matches its fee, the batch carries the difference with its reason, beside any waiver or
    credit recorded since (:func:`ipchange_core.store.export_batch`). Batch files are
    ``fees-<period>`` for the period's first batch and ``fees-<period>-b<n>`` for its n-th.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        policy: The policy the fees are computed by.
        period: Requests received in ``[period.start, period.end)``.
        out: Folder the files are written to.
        formats: ``csv`` and/or ``xlsx``.
        all_fees: Also write ``fees-<period>-all.*``: one line per ticket with the net it was
            billed over every batch (the new lines are recorded as a batch as usual).
        batch_id: Re-write this recorded batch instead (byte-identical, SHA-256 checked).

    Returns:
        What was written. With nothing new to export (and not ``all_fees``), no file.

    Raises:
        IpchangeError: Unknown format or batch, or a re-export that differs from the record.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise IpchangeError(f"fee export format must be csv or xlsx, not {sorted(unknown)}")
    tz = policy.latest.timezone
    if batch_id is not None:
        return _rewrite(engine, policy, batch_id, out, formats)
    evaluated = evaluate(
        store.read_frames(engine, period.start, period.end, policy=policy), policy=policy
    )
    due = due_fees(engine, evaluated)
    title = f"Expedite fees {period.label}"
    temps: dict[str, Path] = {}

    def stage(rows: pd.DataFrame) -> str:
        # the batch's files are on disk (as temporaries) before the batch is recorded: a folder
        # that cannot be written or a full disk rolls the batch back, the fees stay to export
        table = fee_table(evaluated, rows, tz)
        if not all_fees:
            for fmt, content in _contents(table, formats, title).items():
                temps[fmt] = staged(out / f"fees-{period.label}.{fmt}", content)
        return _sha(table)

    try:
        batch = store.export_batch(
            engine,
            due,
            period=period.label,
            format="+".join(formats),
            digest=stage,
            expected=store.pending(engine, due),
        )
        new_rows = len(batch.rows)
        if all_fees:
            lines = _net_lines(store.fee_ledger(engine).merge(due[["ticket_id"]], on="ticket_id"))
            if lines.empty:
                return FeeExport((), 0, 0, batch.batch_id, new_rows, taken=batch.taken)
            table = fee_table(evaluated, lines, tz)
            paths = _write(table, out, f"fees-{period.label}-all", formats, title)
        elif batch.batch_id is None:
            return FeeExport((), 0, 0, None, 0, taken=batch.taken)
        else:
            lines = batch.rows
            stem = _stem(_batches(engine), period.label, batch.batch_id)
            paths = _publish(temps, out, stem, batch.batch_id)
    finally:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
    total = int(lines["amount_cents"].sum())
    return FeeExport(paths, len(lines), total, batch.batch_id, new_rows, taken=batch.taken)


def _contents(table: pd.DataFrame, formats: tuple[str, ...], title: str) -> dict[str, bytes]:
    """The bytes of each file of a fee table, by format, in :data:`FORMATS` order."""
    return {
        fmt: csv_bytes(table) if fmt == "csv" else xlsx_bytes(table, title)
        for fmt in FORMATS
        if fmt in formats
    }


def _publish(temps: dict[str, Path], out: Path, stem: str, batch_id: int) -> tuple[Path, ...]:
    """Rename a recorded batch's staged files to ``<out>/<stem>.<format>``.

    Raises:
        OutputError: A file cannot be put in place; the message says how to write the recorded
            batch's files again.
    """
    paths = []
    for fmt, tmp in temps.items():
        path = out / f"{stem}.{fmt}"
        try:
            publish(tmp, path)
        except OutputError as exc:
            raise OutputError(
                f"{exc}; fee batch {batch_id} is recorded: write its files again with "
                f"--batch {batch_id}"
            ) from None
        paths.append(path)
    return tuple(paths)


def _write(
    table: pd.DataFrame, out: Path, stem: str, formats: tuple[str, ...], title: str
) -> tuple[Path, ...]:
    paths = []
    for fmt, content in _contents(table, formats, title).items():
        path = out / f"{stem}.{fmt}"
        atomic_write(path, content)
        paths.append(path)
    return tuple(paths)


def _rewrite(
    engine: Engine, policy: PolicySet, batch_id: int, out: Path, formats: tuple[str, ...]
) -> FeeExport:
    """Re-write a recorded batch byte for byte (its SHA-256 checked)."""
    batches = _batches(engine)
    known = batches[batches["id"] == batch_id]
    if known.empty:
        raise IpchangeError(f"no fee export batch {batch_id}")
    label = str(known["period"].iloc[0])
    ledger = store.fee_ledger(engine)
    entries = ledger[ledger["export_batch_id"] == batch_id]
    rows = evaluate(store.read_frames(engine, policy=policy), policy=policy)
    rows = rows[rows["ticket_id"].isin(entries["ticket_id"])]
    table = fee_table(rows, entries, policy.latest.timezone)
    recorded = str(known["sha256"].iloc[0])
    if recorded != _sha(table) and recorded == _sha(table.drop(columns="Reason")):
        table = table.drop(columns="Reason")  # exported before fee lines carried a reason
    if recorded != _sha(table):
        raise IpchangeError(f"batch {batch_id} no longer reproduces its recorded SHA-256")
    paths = _write(table, out, _stem(batches, label, batch_id), formats, f"Expedite fees {label}")
    return FeeExport(paths, len(table), int(entries["amount_cents"].sum()), batch_id, 0)


def batch_files(engine: Engine, batch_id: int, reports: Path) -> tuple[Path, ...]:
    """The files of a recorded export batch, as ``ipchange fees export --out reports`` writes them.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        batch_id: An ``export_batches.id``.
        reports: The reports folder (files are in ``<reports>/<period>/``).

    Returns:
        ``<reports>/<period>/<stem>.<format>`` for each format the batch was written in (they
        exist once the export or ``--batch`` wrote them).

    Raises:
        IpchangeError: No such batch.
    """
    batches = _batches(engine)
    known = batches[batches["id"] == batch_id]
    if known.empty:
        raise IpchangeError(f"no fee export batch {batch_id}")
    label = str(known["period"].iloc[0])
    stem = _stem(batches, label, batch_id)
    formats = str(known["format"].iloc[0]).split("+")
    return tuple(reports / label / f"{stem}.{fmt}" for fmt in FORMATS if fmt in formats)


def _stem(batches: pd.DataFrame, label: str, batch_id: int) -> str:
    """``fees-<period>`` for a period's first batch, ``fees-<period>-b<n>`` for its n-th."""
    ids = sorted(batches.loc[batches["period"] == label, "id"].astype(int))
    n = ids.index(batch_id) + 1
    return f"fees-{label}" if n == 1 else f"fees-{label}-b{n}"


FEE_DUE = ("billable", "awaiting_change", "pending_sign_off")
"""Fee statuses that carry a fee (billed now or once the change or sign-off is done)."""


def evaluate_ticket(engine: Engine, policy: PolicySet, ticket_id: str) -> pd.Series:
    """Evaluate one request by its ticket id (under the policy in force when it was received).

    Raises:
        IpchangeError: No ticket or intake record has that id, or it is no IP change request.
    """
    with reading(engine) as conn:
        known = [
            conn.execute(select(model.__table__.c[column]).where(model.ticket_id == ticket_id))
            .scalars()
            .first()
            for model, column in ((store.Ticket, "created_at"), (store.Intake, "received_at"))
        ]
    known = [t for t in known if t is not None]
    if not known:
        raise IpchangeError(f"unknown ticket {ticket_id!r}")
    start = pd.Timestamp(min(known))
    frames = store.read_frames(engine, start, start + pd.Timedelta(microseconds=1), policy=policy)
    rows = evaluate(frames, policy=policy)
    rows = rows[rows["ticket_id"] == ticket_id]
    if rows.empty:
        raise IpchangeError(f"ticket {ticket_id!r} is no IP change request: it has no fee")
    return rows.iloc[0]


def waive_fee(engine: Engine, policy: PolicySet, ticket_id: str, *, reason: str, by: str) -> int:
    """``ipchange fees waive``: the fee is not billed; reversed by the next export if it was.

    Returns:
        The waiver's ledger row id.

    Raises:
        IpchangeError: Unknown ticket, nothing to waive, blank reason or name (nothing written).
    """
    row = evaluate_ticket(engine, policy, ticket_id)
    return store.waive(
        engine, ticket_id, reason=reason, by=by, fee_due=str(row["fee_status"]) in FEE_DUE
    )


def credit_fee(
    engine: Engine,
    policy: PolicySet,
    ticket_id: str,
    *,
    amount_cents: int | None,
    reason: str,
    by: str,
) -> tuple[int, int]:
    """``ipchange fees credit``: a credit on an exported fee, at most its net billed.

    Returns:
        ``(ledger row id, credited integer cents)``.

    Raises:
        IpchangeError: Unknown ticket, nothing billed, amount above the net, blank reason or
            name (nothing written).
    """
    evaluate_ticket(engine, policy, ticket_id)
    return store.credit(engine, ticket_id, amount_cents=amount_cents, reason=reason, by=by)


def parse_amount(text: str) -> int:
    """Dollars as typed (``250``, ``250.00``, ``$1,250.5``) to integer cents, exactly.

    Raises:
        IpchangeError: Not a positive amount with at most two decimals.
    """
    match = re.fullmatch(r"\$?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?", text.strip())
    if not match:
        raise IpchangeError(f"amount must be dollars like 250.00, not {text!r}")
    cents = int(match.group(1).replace(",", "")) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    if cents <= 0:
        raise IpchangeError(f"amount must be more than 0.00, not {text!r}")
    return cents


def history(engine: Engine, ticket_id: str, tz: str) -> pd.DataFrame:
    """Every ledger row of a ticket with who, when, why and batch, oldest first.

    Args:
        engine: From :func:`ipchange_core.store.connect`.
        ticket_id: The ticket.
        tz: Time zone the ``When`` column is shown in (local wall time, to the second).

    Returns:
        Columns ``Row``, ``When``, ``Kind``, ``Status``, ``Amount`` (integer cents), ``Reason``,
        ``By``, ``OS user``, ``Batch`` (``<NA>`` while not exported).
    """
    return history_frame(store.ticket_ledger(engine, ticket_id), tz)


def history_frame(rows: pd.DataFrame, tz: str) -> pd.DataFrame:
    """:func:`history` of ledger rows already read (columns of :func:`store.fee_ledger`)."""
    return pd.DataFrame(
        {
            "Row": rows["id"],
            "When": rows["computed_at"].dt.tz_convert(tz).dt.floor("s"),
            "Kind": rows["kind"],
            "Status": rows["fee_status"],
            "Amount": rows["amount_cents"],
            "Reason": reason_text(rows),
            "By": rows["by_name"],
            "OS user": rows["os_user"],
            "Batch": rows["export_batch_id"],
        }
    )
