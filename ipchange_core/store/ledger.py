"""The fee ledger: append fees, waive, credit, export in batches, correct a fee, read it.

Money is integer cents. An exported fee row is never updated or deleted (the database's
triggers and the ORM refuse it, see :mod:`.models`): a correction is a new row. Every row names
its reason, who wrote it (``by_name``) and the OS user of the process.

Kinds of row (``kind``):

* ``fee`` — a fee billed for the first time (or the corrected entry of :func:`correct_fee`);
* ``reversal`` — the negation of one earlier row (``reverses_id``);
* ``correction`` — the difference an export found between the net billed and the fee due now;
* ``waiver`` — the fee is not billed: the negation of what the ticket carried (0 if nothing);
* ``credit`` — a negative amount given on an exported fee, at most its net billed.

The fee due for a ticket (:func:`net_due`) is 0 when waived (a ``waiver`` row, or the fee is no
longer billable); otherwise the amount of its live ``fee`` row (or the policy's fee when it has
none), less its credits, never below 0. An export (:func:`export_batch`) adds one ``correction``
(or first ``fee``) row per ticket whose ledger sum differs from that, then takes every row not
yet exported, all under one lock, so two racing exports never bill a row twice.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ipchange_core import schema
from ipchange_core.errors import IpchangeError
from ipchange_core.store.backend import backend_of
from ipchange_core.store.connection import reading
from ipchange_core.store.load import rows_frame, table_frame
from ipchange_core.store.models import ExportBatch, FeeLedger

LEDGER_DTYPES = {
    "id": "int64",
    "ticket_id": "str",
    "fee_status": "str",
    "amount_cents": "int64",
    "policy_version": "str",
    "computed_at": schema.TIMESTAMP_DTYPE,
    "export_batch_id": "Int64",
    "reverses_id": "Int64",
    "kind": "str",
    "reason": "str",
    "by_name": "str",
    "os_user": "str",
}
FEE_REASON = "short-notice expedite fee, signed off by the person of record"
"""The reason of a fee row appended by an export."""
EXPORTER = "ipchange fees export"
"""Who writes the rows an export adds (beside the OS user)."""


def os_user() -> str:
    """The operating-system user running this process (``unknown`` when it has no name)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _named(reason: str, by: str) -> tuple[str, str]:
    """The reason and name stripped; a blank one is refused."""
    reason, by = " ".join(str(reason).split()), " ".join(str(by).split())
    if not reason:
        raise IpchangeError("a ledger row needs a reason (--reason)")
    if not by:
        raise IpchangeError("a ledger row needs the name of who records it (--by)")
    return reason, by


def append_fees(
    engine: Engine,
    fees: pd.DataFrame,
    *,
    policy_version: str,
    computed_at: datetime | None = None,
    reason: str = FEE_REASON,
    by: str = EXPORTER,
) -> list[int]:
    """Append fee entries (kind ``fee``) to the ledger in one transaction.

    Args:
        engine: From :func:`connect`.
        fees: Columns ``ticket_id``, ``fee_status``, ``amount_cents`` (integer cents).
        policy_version: The policy version that computed them.
        computed_at: When they were computed (aware); now by default.
        reason: Why they are billed.
        by: Who appends them.

    Returns:
        The ids of the new entries, in the order of ``fees``.
    """
    when = computed_at or datetime.now(UTC)
    reason, by = _named(reason, by)
    entries = [
        FeeLedger(
            ticket_id=str(row.ticket_id),
            fee_status=str(row.fee_status),
            amount_cents=int(row.amount_cents),
            policy_version=policy_version,
            computed_at=when,
            kind="fee",
            reason=reason,
            by_name=by,
            os_user=os_user(),
        )
        for row in fees[["ticket_id", "fee_status", "amount_cents"]].itertuples(index=False)
    ]
    with Session(engine) as session, session.begin():
        session.add_all(entries)
        session.flush()
        return [entry.id for entry in entries]


def record_export(
    engine: Engine,
    fee_ids: Sequence[int],
    *,
    period: str,
    format: str,
    sha256: str,
    created_at: datetime | None = None,
) -> int:
    """Record an export batch and mark its fee entries as exported, in one transaction.

    Args:
        engine: From :func:`connect`.
        fee_ids: The ledger entries exported.
        period: The period exported (e.g. ``2026-11``).
        format: The file format (``csv`` or ``xlsx``).
        sha256: SHA-256 of the exported file.
        created_at: When the export was made (aware); now by default.

    Returns:
        The new ``export_batches.id``.

    Raises:
        IpchangeError: An entry does not exist or was already exported (never billed twice).
    """
    ids = sorted({int(i) for i in fee_ids})
    ledger = FeeLedger.__table__
    with engine.begin() as conn:
        found = conn.execute(
            select(ledger.c.id, ledger.c.export_batch_id, ledger.c.amount_cents).where(
                ledger.c.id.in_(ids)
            )
        ).all()
        missing = sorted(set(ids) - {row.id for row in found})
        if missing:
            raise IpchangeError(f"no fee_ledger rows with ids {missing[:10]}")
        done = [row for row in found if row.export_batch_id is not None]
        if done:
            raise IpchangeError(
                f"fee_ledger row {done[0].id} was already exported in batch "
                f"{done[0].export_batch_id}; a fee is never billed twice"
            )
        batch_id = conn.execute(
            ExportBatch.__table__.insert()
            .values(
                period=period,
                created_at=created_at or datetime.now(UTC),
                format=format,
                rows=len(ids),
                total_cents=sum(row.amount_cents for row in found),
                sha256=sha256,
            )
            .returning(ExportBatch.id)
        ).scalar_one()
        marked = conn.execute(
            ledger.update()
            .where(ledger.c.id.in_(ids), ledger.c.export_batch_id.is_(None))
            .values(export_batch_id=batch_id)
        ).rowcount
        if marked != len(ids):  # pragma: no cover - guarded by the checks above
            raise IpchangeError("fee rows changed during the export; nothing was recorded")
    return batch_id


def correct_fee(
    engine: Engine,
    fee_id: int,
    *,
    amount_cents: int,
    fee_status: str,
    policy_version: str,
    reason: str = "fee amount corrected",
    by: str = "",
) -> tuple[int, int]:
    """Correct a fee entry by appending a reversal and a new entry (the original stays).

    Args:
        engine: From :func:`connect`.
        fee_id: The entry to correct.
        amount_cents: The corrected amount.
        fee_status: The corrected fee status.
        policy_version: The policy version of the correction.
        reason: Why.
        by: Who corrects it (the OS user by default).

    Returns:
        ``(reversal_id, new_id)``; the original, its reversal and the new entry sum to
        ``amount_cents``.

    Raises:
        IpchangeError: No such entry, it is itself a reversal, or it was already reversed.
    """
    now = datetime.now(UTC)
    user = os_user()
    reason, by = _named(reason, by or user)
    who = {"reason": reason, "by_name": by, "os_user": user}
    try:
        with Session(engine) as session, session.begin():
            original = session.get(FeeLedger, fee_id)
            if original is None:
                raise IpchangeError(f"no fee_ledger row with id {fee_id}")
            if original.reverses_id is not None:
                raise IpchangeError(f"fee_ledger row {fee_id} is a reversal; correct the original")
            earlier = session.scalar(select(FeeLedger.id).where(FeeLedger.reverses_id == fee_id))
            if earlier is not None:
                raise IpchangeError(
                    f"fee_ledger row {fee_id} was already reversed by row {earlier}; "
                    "correct the entry that replaced it"
                )
            reversal = FeeLedger(
                ticket_id=original.ticket_id,
                fee_status=original.fee_status,
                amount_cents=-original.amount_cents,
                policy_version=policy_version,
                computed_at=now,
                reverses_id=original.id,
                kind="reversal",
                **who,
            )
            corrected = FeeLedger(
                ticket_id=original.ticket_id,
                fee_status=fee_status,
                amount_cents=amount_cents,
                policy_version=policy_version,
                computed_at=now,
                kind="fee",
                **who,
            )
            session.add_all([reversal, corrected])
            session.flush()
            return reversal.id, corrected.id
    except IntegrityError as exc:  # the unique reverses_id: reversed meanwhile by another writer
        raise IpchangeError(f"fee_ledger row {fee_id} was already reversed: {exc.orig}") from exc


def fee_ledger(engine: Engine) -> pd.DataFrame:
    """Return the whole fee ledger in id order (nullable ids as ``Int64``)."""
    return table_frame(engine, FeeLedger.__table__, LEDGER_DTYPES)


@dataclass(frozen=True)
class TicketLedger:
    """What one ticket's ledger rows add up to (integer cents).

    Attributes:
        total_cents: Sum of every row (exported or not): what billing will have once the
            pending rows go out.
        billed_cents: Sum of the exported rows plus the pending negative ones: the most a credit
            may still give back.
        credit_cents: Sum of the ``credit`` rows (0 or negative).
        waived: A ``waiver`` row exists.
        fee_cents: Amount of the live ``fee`` row (not reversed, the latest), None without one.
    """

    total_cents: int
    billed_cents: int
    credit_cents: int
    waived: bool
    fee_cents: int | None


def ticket_state(rows: pd.DataFrame) -> TicketLedger:
    """Sum up one ticket's ledger rows (columns as :func:`fee_ledger`)."""
    amounts = rows["amount_cents"].astype("int64")
    exported = rows["export_batch_id"].notna()
    reversed_ids = set(rows["reverses_id"].dropna().astype(int))
    fees = rows[(rows["kind"] == "fee") & ~rows["id"].isin(reversed_ids)]
    return TicketLedger(
        total_cents=int(amounts.sum()),
        billed_cents=int(amounts[exported | amounts.lt(0)].sum()),
        credit_cents=int(amounts[rows["kind"] == "credit"].sum()),
        waived=bool((rows["kind"] == "waiver").any()),
        fee_cents=int(fees["amount_cents"].iloc[-1]) if len(fees) else None,
    )


def net_due(state: TicketLedger, *, billable: bool, fee_cents: int) -> int:
    """The net a ticket should have been billed, in integer cents.

    0 when waived or not billable; else its recorded fee (the policy's ``fee_cents`` when it
    has none yet) plus its credits (negative), never below 0.
    """
    if state.waived or not billable:
        return 0
    base = fee_cents if state.fee_cents is None else state.fee_cents
    return max(base + state.credit_cents, 0)


def _lock(conn: Connection) -> None:
    """Serialise the writers of the ledger (SQLite: BEGIN IMMEDIATE already did)."""
    backend_of(conn).lock_table(conn, "fee_ledger")


def _rows(conn: Connection, ticket_ids: Sequence[str]) -> pd.DataFrame:
    ledger = FeeLedger.__table__
    query = select(*(ledger.c[name] for name in LEDGER_DTYPES)).order_by(ledger.c.id)
    ids = sorted({str(t) for t in ticket_ids})
    found = []
    for start in range(0, len(ids), 10_000):  # bound the bind parameters of one statement
        chunk = ids[start : start + 10_000]
        found += conn.execute(query.where(ledger.c.ticket_id.in_(chunk))).all()
    return rows_frame(sorted(found, key=lambda row: row.id), LEDGER_DTYPES)


def _insert(conn: Connection, **values: object) -> int:
    values.setdefault("computed_at", datetime.now(UTC))
    values.setdefault("os_user", os_user())
    return conn.execute(
        FeeLedger.__table__.insert().values(**values).returning(FeeLedger.id)
    ).scalar_one()


def waive(engine: Engine, ticket_id: str, *, reason: str, by: str, fee_due: bool) -> int:
    """Record that a ticket's fee is not billed; reverse what it carries (one row).

    Args:
        engine: From :func:`connect`.
        ticket_id: The ticket.
        reason: Why (not blank).
        by: Who decided (not blank); the OS user is recorded beside it.
        fee_due: The ticket carries a fee now (billable, awaiting change or pending sign-off).

    Returns:
        The id of the ``waiver`` row; its amount is minus the ticket's ledger sum (0 when it was
        never billed), so the next export sends the reversal.

    Raises:
        IpchangeError: Blank reason or name, already waived, or no fee to waive.
    """
    reason, by = _named(reason, by)
    with engine.begin() as conn:
        _lock(conn)
        state = ticket_state(_rows(conn, [ticket_id]))
        if state.waived:
            raise IpchangeError(f"nothing to waive: the fee of {ticket_id} is already waived")
        if not fee_due and state.total_cents == 0:
            raise IpchangeError(f"nothing to waive: {ticket_id} carries no expedite fee")
        return _insert(
            conn,
            ticket_id=ticket_id,
            fee_status="waived",
            amount_cents=-state.total_cents,
            policy_version="",
            kind="waiver",
            reason=reason,
            by_name=by,
        )


def credit(
    engine: Engine, ticket_id: str, *, amount_cents: int | None, reason: str, by: str
) -> tuple[int, int]:
    """Give a credit (a negative row) on an exported fee, at most its net billed.

    Args:
        engine: From :func:`connect`.
        ticket_id: The ticket.
        amount_cents: The credit, positive integer cents; None = the whole net billed.
        reason: Why (not blank).
        by: Who gives it (not blank); the OS user is recorded beside it.

    Returns:
        ``(row id, credited cents)``.

    Raises:
        IpchangeError: Blank reason or name, nothing billed, or an amount ≤ 0 or above the net.
    """
    reason, by = _named(reason, by)
    with engine.begin() as conn:
        _lock(conn)
        state = ticket_state(_rows(conn, [ticket_id]))
        net = state.billed_cents
        if net <= 0:
            raise IpchangeError(f"nothing to credit: no fee of {ticket_id} is billed net")
        amount = net if amount_cents is None else int(amount_cents)
        if amount <= 0:
            raise IpchangeError(f"a credit must be more than 0 cents, not {amount}")
        if amount > net:
            raise IpchangeError(
                f"a credit of {amount} cents is more than the {net} cents billed net for "
                f"{ticket_id}"
            )
        row = _insert(
            conn,
            ticket_id=ticket_id,
            fee_status="credit",
            amount_cents=-amount,
            policy_version="",
            kind="credit",
            reason=reason,
            by_name=by,
        )
        return row, amount


@dataclass(frozen=True)
class Batch:
    """The rows one export took.

    Attributes:
        batch_id: The recorded batch (None when there was nothing new).
        rows: Its ledger rows (columns as :func:`fee_ledger`), in id order.
        taken: There was something to export when the export began, but another export took it
            first (the rows were billed once, by that one).
    """

    batch_id: int | None
    rows: pd.DataFrame
    taken: bool = False


def pending(engine: Engine, due: pd.DataFrame) -> int:
    """How many rows an export of ``due`` would bill now (read without the lock)."""
    with reading(engine) as conn:
        ledger = _rows(conn, due["ticket_id"].tolist())
    return len(_corrections(ledger, due)) + len(_unexported(ledger))


def _unexported(ledger: pd.DataFrame) -> pd.DataFrame:
    return ledger[ledger["export_batch_id"].isna() & ledger["amount_cents"].ne(0)]


def _corrections(ledger: pd.DataFrame, due: pd.DataFrame) -> list[dict[str, object]]:
    """The rows that bring each ticket's ledger sum to its net due (at most a fee and a fix)."""
    rows: list[dict[str, object]] = []
    groups = dict(tuple(ledger.groupby("ticket_id"))) if len(ledger) else {}
    empty = ledger.iloc[0:0]
    for t in due.itertuples(index=False):
        state = ticket_state(groups.get(t.ticket_id, empty))
        billable = t.fee_status == "billable"
        want = net_due(state, billable=billable, fee_cents=int(t.fee_cents))
        have = state.total_cents
        common = {"ticket_id": t.ticket_id, "policy_version": t.policy_version}
        if billable and want and state.fee_cents is None and not have:
            have = int(t.fee_cents)
            rows.append(
                {
                    **common,
                    "fee_status": "billable",
                    "amount_cents": have,
                    "kind": "fee",
                    "reason": FEE_REASON,
                }
            )
        if want != have:
            rows.append(
                {
                    **common,
                    "fee_status": t.fee_status,
                    "amount_cents": want - have,
                    "kind": "correction",
                    "reason": t.why,
                }
            )
    return rows


def export_batch(
    engine: Engine,
    due: pd.DataFrame,
    *,
    period: str,
    format: str,
    digest: Callable[[pd.DataFrame], str],
    expected: int = 0,
) -> Batch:
    """Bring each ticket's ledger to its net due and record every unbilled row as one batch.

    Everything happens in one transaction under the ledger's lock: a second export waits for
    the first and then finds nothing new.

    Args:
        engine: From :func:`connect`.
        due: One row per ticket in scope: ``ticket_id``, ``fee_status``, ``fee_cents`` (the
            policy's fee when billable), ``policy_version``, ``why`` (the reason a correction
            carries).
        period: The period label of the batch.
        format: The file formats (``csv+xlsx``).
        digest: Gives the SHA-256 recorded for the batch's rows.
        expected: What :func:`pending` found before; when > 0 and nothing is left, another
            export took it (``taken``).

    Returns:
        The batch and its rows.
    """
    with engine.begin() as conn:
        _lock(conn)
        tickets = due["ticket_id"].tolist()
        for values in _corrections(_rows(conn, tickets), due):
            _insert(conn, by_name=EXPORTER, **values)
        rows = _unexported(_rows(conn, tickets))
        if rows.empty:
            return Batch(None, rows, taken=expected > 0)
        batch_id = conn.execute(
            ExportBatch.__table__.insert()
            .values(
                period=period,
                created_at=datetime.now(UTC),
                format=format,
                rows=len(rows),
                total_cents=int(rows["amount_cents"].sum()),
                sha256=digest(rows),
            )
            .returning(ExportBatch.id)
        ).scalar_one()
        ledger = FeeLedger.__table__
        conn.execute(
            ledger.update()
            .where(ledger.c.id.in_(rows["id"].tolist()), ledger.c.export_batch_id.is_(None))
            .values(export_batch_id=batch_id)
        )
    return Batch(
        batch_id, rows.assign(export_batch_id=batch_id).astype({"export_batch_id": "Int64"})
    )


def ticket_ledger(engine: Engine, ticket_id: str) -> pd.DataFrame:
    """Every ledger row of one ticket, in id order (columns as :func:`fee_ledger`)."""
    with reading(engine) as conn:
        return _rows(conn, [ticket_id])
