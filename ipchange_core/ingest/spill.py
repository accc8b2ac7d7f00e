"""Spilling the accepted rows of a file read in blocks to a temporary file, and its keys.

A Kayako XML export is read a block of tickets at a time (:mod:`ipchange_core.ingest.read`);
with ``spill=True`` each block's accepted rows go to an Arrow IPC file (:class:`Spill`) and
are read back block by block (:class:`SpilledRows`), so memory stays flat whatever the size of
the file. :class:`FileKeys` finds natural keys repeated across blocks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from ipchange_core.errors import IpchangeError
from ipchange_core.ingest.checks import Rejects, reject_duplicates
from ipchange_core.ingest.columns import bools, no_rejects, typed_frame
from ipchange_core.records import (
    repeats,
)
from ipchange_core.schema import SOURCE_LINE

_SPILL_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")
"""Spilled blocks are LZ4-compressed: much less disk for little CPU (bench/RESULTS.md)."""


class Spill:
    """Arrow tables appended block by block, read back in order, one block at a time.

    Kept in memory when ``folder`` is ``None``, else in an Arrow IPC file there.
    """

    def __init__(self, folder: Path | None, name: str) -> None:
        self._path = None if folder is None else folder / f"{name}.arrow"
        self._tables: list[pa.Table] = []
        self._writer: pa.ipc.RecordBatchFileWriter | None = None
        self._schema: pa.Schema | None = None

    def append(self, table: pa.Table) -> None:
        """Add a block (its schema must be that of the first block)."""
        if self._path is None:
            self._tables.append(table)
            return
        if self._schema is None:
            self._schema = table.schema
            self._writer = pa.ipc.new_file(str(self._path), self._schema, options=_SPILL_OPTIONS)
        if self._writer is None:
            raise RuntimeError(f"{self._path} was read already: no block can be added")
        self._writer.write_table(table.cast(self._schema))

    def __iter__(self) -> Iterator[pa.Table]:
        if self._path is None:
            yield from self._tables
            return
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._schema is None:
            return
        with pa.OSFile(str(self._path)) as source:  # read, not mapped: a block's memory goes
            reader = pa.ipc.open_file(source)  # with it
            for i in range(reader.num_record_batches):
                yield pa.Table.from_batches([reader.get_batch(i)])


@dataclass(frozen=True, eq=False)
class SpilledRows:
    """The accepted rows of a spilled read (:attr:`ParsedFile.spill`)."""

    table: str
    folder: tempfile.TemporaryDirectory[str]
    blocks: Spill
    drop: np.ndarray  # lines of rows rejected once the whole file was read (repeated keys)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Yield the typed rows block by block, without the rows of ``drop``."""
        if not Path(self.folder.name).is_dir():
            raise IpchangeError("the spilled rows of this file were deleted (ParsedFile.close)")
        for block in self.blocks:
            frame = typed_frame(self.table, block)
            del block
            if len(self.drop):
                keep = ~np.isin(frame[SOURCE_LINE].to_numpy(), self.drop)
                frame = frame[keep].reset_index(drop=True)
            yield frame

    def close(self) -> None:
        """Delete the temporary file."""
        self.folder.cleanup()


class FileKeys:
    """The natural keys of a file checked block by block, to reject every copy of a repeat.

    Memory holds a 64-bit hash of each valid key (8 bytes a row); the keys themselves, with
    their lines, go to a :class:`Spill`, and only those whose hash repeats are read back and
    compared exactly (two different keys may share a hash).
    """

    def __init__(self, table: str, folder: Path | None) -> None:
        self._table = table
        self._hashes: list[np.ndarray] = []
        self._keys = Spill(folder, "keys")

    def add(self, keys: pa.Table, lines: np.ndarray) -> None:
        """Note a block's keys (``valid``, ``hash``, ``key``, ``value`` of :func:`check_text`)."""
        valid = keys["valid"]
        keys = keys.filter(valid).append_column("line", pa.array(lines[bools(valid)]))
        self._hashes.append(keys["hash"].to_numpy())
        self._keys.append(keys)

    def rejects(self) -> pd.DataFrame:
        """One reject per copy of every key seen more than once (``line``, ``column``, …)."""
        repeated = repeats(np.concatenate([np.empty(0, np.int64), *self._hashes]))
        if not len(repeated):
            return no_rejects()
        suspects = pa.concat_tables(
            block.filter(pa.array(np.isin(block["hash"].to_numpy(), repeated)))
            for block in self._keys
        )
        rej = Rejects(suspects["line"].to_numpy())
        keys = suspects["key"]
        reject_duplicates(
            self._table,
            lambda rows: keys.take(pa.array(rows)),
            bools(keys.is_valid()),
            suspects["value"],
            suspects["hash"].to_numpy(),
            rej,
        )
        return rej.frame()
