"""The storage backends' one interface, and the registry that picks one by dialect name.

Every choice between SQLite and PostgreSQL lives in a backend module (:mod:`.sqlite`,
:mod:`.postgres`), each an instance of :class:`Backend` registered under its SQLAlchemy dialect
name (the model is papermill's registry of I/O handlers). :func:`~ipchange_core.store.connect`
picks one by the URL; the rest of the package asks :func:`backend_of` for the backend of an
engine or connection and calls it, never branching on the dialect itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Connection, Engine, Select
from sqlalchemy import Table as SATable

from ipchange_core.errors import IpchangeError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    from sqlalchemy import ColumnElement

    from ipchange_core.policy import PolicySet
    from ipchange_core.store.batch import Batch

Condition = Callable[[Any], "ColumnElement[bool]"]
"""A condition on a ticket_id column: "it is one of the selected ids"."""


class Backend(ABC):
    """What the store needs from a database product: each backend offers the same methods."""

    name: str
    """The SQLAlchemy dialect name the backend serves (``sqlite``, ``postgresql``)."""

    differs: str
    """The SQL operator "differs, NULL being a value like any other"."""

    # --- connecting -------------------------------------------------------------------------
    @abstractmethod
    def create_engine(self, url: URL) -> Engine:
        """An engine for ``url``, its driver checked and its connections configured.

        Raises:
            IpchangeError: Unsupported driver, missing folder or missing driver package.
        """

    @abstractmethod
    def before_create(self, conn: Connection) -> None:
        """Prepare the transaction that creates missing tables (serialise concurrent ones)."""

    @abstractmethod
    def read_only(self, conn: Connection) -> None:
        """Make the next transaction of ``conn`` a read-only one seeing one snapshot."""

    @abstractmethod
    def busy_reason(self, reason: BaseException) -> str | None:
        """A "busy, retry" sentence if the driver's ``reason`` means a lock wait timed out."""

    # --- instants -----------------------------------------------------------------------------
    @abstractmethod
    def instant_impl(self) -> Any:
        """The column type that stores a UTC instant."""

    @abstractmethod
    def bind_instant(self, value: datetime) -> Any:
        """An aware ``datetime`` as the stored value."""

    @abstractmethod
    def result_instant(self, value: Any) -> datetime:
        """A stored instant as an aware UTC ``datetime``."""

    # --- loading ------------------------------------------------------------------------------
    @abstractmethod
    def lock_table(self, conn: Connection, table: str) -> None:
        """Make other writers of ``table`` wait for this transaction."""

    @abstractmethod
    def stored_hashes(self, conn: Connection, table: str, ids: np.ndarray | None) -> np.ndarray:
        """(key_hash, row_hash) of the stored rows of a non-empty table (all, or of ``ids``)."""

    @abstractmethod
    def write(self, conn: Connection, batch: Batch, rows: np.ndarray, *, empty: bool) -> int:
        """Upsert the selected rows of ``batch``; return the rows inserted or updated.

        Into an ``empty`` table (whose indexes the caller dropped) they go as plain inserts.
        """

    @abstractmethod
    def bulk(self, conn: Connection) -> AbstractContextManager[None]:
        """Settings of ``conn`` for work that passes every page of a table once."""

    @abstractmethod
    def insert(self, table: SATable) -> Any:
        """The dialect's ``INSERT`` of ``table`` (it has ``on_conflict_do_nothing``)."""

    @abstractmethod
    def fetch_row(self, conn: Connection, query: Select[Any]) -> Any:
        """The first row of ``query``, binary columns as their bytes (``None``: no row)."""

    # --- reading ------------------------------------------------------------------------------
    @abstractmethod
    def prepare_read(self, conn: Connection, *, mapped: bool) -> None:
        """Settings of a reading connection for reading many rows (``mapped``: may map files)."""

    @abstractmethod
    def contains(self, column: Any, text: str) -> ColumnElement[bool]:
        """``column`` contains ``text`` (printable ASCII), each letter in any case."""

    @abstractmethod
    def contains_any(self, column: Any, texts: Sequence[str]) -> ColumnElement[bool] | None:
        """``column`` contains one of ``texts`` as one test, or ``None`` (test them one by one)."""

    @abstractmethod
    def case_twin_terms(self, columns: Sequence[Any]) -> list[ColumnElement[bool]]:
        """Terms that keep every value :meth:`contains` might miss (case twins beyond ASCII)."""

    @abstractmethod
    def index_requests(self, engine: Engine, policy: PolicySet) -> bool:
        """Keep an index of the request candidates of ``policy`` if it helps; say if changed."""

    @abstractmethod
    def selection(
        self,
        conn: Connection,
        start: datetime | None,
        end: datetime | None,
        policy: PolicySet | None,
        columns: Mapping[str, Sequence[str]],
        open_at: datetime | None = None,
    ) -> AbstractContextManager[tuple[Condition, dict[str, pd.DataFrame]]]:
        """Compute the ticket_ids of the requests received in [start, end) once.

        With ``open_at``, without those closed then
        (:func:`~ipchange_core.store.read.closed_by`). Yields a condition on a ticket_id column
        and the frames of tables already read (typed, unsorted, in the columns of ``columns``):
        ``{}`` if none.
        """

    @abstractmethod
    def instant_column(self, column: Any) -> Any:
        """An instant column as µs since the epoch (NULL as :data:`~.batch.NAT` if need be)."""

    @abstractmethod
    def flag_column(self, column: Any) -> Any:
        """A nullable boolean column in the form :meth:`read_columns` returns it."""

    @abstractmethod
    def read_columns(
        self, conn: Connection, query: Select[Any], dtypes: Mapping[str, str]
    ) -> tuple[dict[str, Any], int]:
        """The columns of a :func:`~.read.storage_select` query as arrays, and the row count."""

    @abstractmethod
    def second_reader(self, conn: Connection) -> bool:
        """Whether a second connection can read ``conn``'s snapshot meanwhile, in a thread."""


_BACKENDS: dict[str, Backend] = {}


def register(backend: Backend) -> Backend:
    """Make ``backend`` the one of its dialect name; return it."""
    _BACKENDS[backend.name] = backend
    return backend


def backend_for(name: str) -> Backend:
    """The backend registered for the dialect ``name``.

    Raises:
        IpchangeError: No backend serves that dialect.
    """
    try:
        return _BACKENDS[name]
    except KeyError:
        raise IpchangeError(
            f"unsupported database {name!r}: use sqlite:// or postgresql+psycopg://"
        ) from None


def backend_of(bind: Engine | Connection) -> Backend:
    """The backend of an engine or connection (by its dialect)."""
    return backend_for(bind.dialect.name)


def backends() -> Iterator[Backend]:
    """Every registered backend."""
    return iter(_BACKENDS.values())
