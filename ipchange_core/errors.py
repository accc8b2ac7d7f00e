"""The package's exceptions: one root, a few subclasses users see as plain messages."""

from __future__ import annotations


class IpchangeError(Exception):
    """Root of every error this package raises on purpose."""


class PolicyError(IpchangeError):
    """A policy file is missing, malformed, or holds an invalid value."""


class NoDatabaseError(IpchangeError):
    """A reader was given a database that does not exist or holds no data (it creates none)."""


class OutputError(IpchangeError):
    """An output file or folder cannot be written; the message names it and the reason."""


class InvalidInputError(IpchangeError):
    """An input is unusable; carries the file, row and column it concerns."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file = file
        self.row = row
        self.column = column
        where = ", ".join(
            part
            for part in (
                file,
                f"row {row}" if row is not None else None,
                f"column {column!r}" if column is not None else None,
            )
            if part
        )
        super().__init__(f"{where}: {message}" if where else message)


class StaleRecords(IpchangeError):
    """A file was read against records of a load that is no longer the table's latest."""
