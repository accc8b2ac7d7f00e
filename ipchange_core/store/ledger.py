"""The fee ledger: append fees, record an export, correct a fee, read the ledger.

Money is integer cents. An exported fee row is never updated or deleted (the database's
triggers and the ORM refuse it, see :mod:`.models`): a correction is a reversal and a new row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import (
    Engine,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ipchange_core import schema
from ipchange_core.errors import IpchangeError
from ipchange_core.store.load import table_frame
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
}


def append_fees(
    engine: Engine,
    fees: pd.DataFrame,
    *,
    policy_version: str,
    computed_at: datetime | None = None,
) -> list[int]:
    """Append fee entries to the ledger in one transaction.

    Args:
        engine: From :func:`connect`.
        fees: Columns ``ticket_id``, ``fee_status``, ``amount_cents`` (integer cents).
        policy_version: The policy version that computed them.
        computed_at: When they were computed (aware); now by default.

    Returns:
        The ids of the new entries, in the order of ``fees``.
    """
    when = computed_at or datetime.now(UTC)
    entries = [
        FeeLedger(
            ticket_id=str(row.ticket_id),
            fee_status=str(row.fee_status),
            amount_cents=int(row.amount_cents),
            policy_version=policy_version,
            computed_at=when,
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
) -> tuple[int, int]:
    """Correct a fee entry by appending a reversal and a new entry (the original stays).

    Args:
        engine: From :func:`connect`.
        fee_id: The entry to correct.
        amount_cents: The corrected amount.
        fee_status: The corrected fee status.
        policy_version: The policy version of the correction.

    Returns:
        ``(reversal_id, new_id)``; the original, its reversal and the new entry sum to
        ``amount_cents``.

    Raises:
        IpchangeError: No such entry, it is itself a reversal, or it was already reversed.
    """
    now = datetime.now(UTC)
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
            )
            corrected = FeeLedger(
                ticket_id=original.ticket_id,
                fee_status=fee_status,
                amount_cents=amount_cents,
                policy_version=policy_version,
                computed_at=now,
            )
            session.add_all([reversal, corrected])
            session.flush()
            return reversal.id, corrected.id
    except IntegrityError as exc:  # the unique reverses_id: reversed meanwhile by another writer
        raise IpchangeError(f"fee_ledger row {fee_id} was already reversed: {exc.orig}") from exc


def fee_ledger(engine: Engine) -> pd.DataFrame:
    """Return the whole fee ledger in id order (nullable ids as ``Int64``)."""
    return table_frame(engine, FeeLedger.__table__, LEDGER_DTYPES)
