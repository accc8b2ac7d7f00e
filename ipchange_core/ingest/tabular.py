"""Reading a CSV or XLSX file as stripped text columns with the line of each row.

Every tabular format (canonical CSV/XLSX, Kayako report CSV, Kayako audit CSV) is first read
here, as text, before any meaning is given to its columns: bytes decoded (UTF-8, with or without
BOM, or cp1252), rows numbered as the file numbers them (quoted line breaks, blank lines, bare
CR), malformed rows rejected, binary or empty files refused by name.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import clip, contiguous, no_rejects, strip, text_array
from ipchange_core.records import (
    RecordHashes,
    RecordTexts,
    bare_cr,
    quoted_line_feeds,
    record_texts,
)

_HEAD_BYTES = 1 << 16


BOM = b"\xef\xbb\xbf"


XLSX_MAGIC = b"PK\x03\x04"


_CSV_BLOCK_BYTES = 8 << 20  # pyarrow parses blocks in parallel; fewer, larger chunks are cheaper


_BLANK_FILE = re.compile(rb"(?:\xef\xbb\xbf)?\s*\Z")


_SEP_LINE = re.compile(rb"sep=([^\"\r\n])[ \t]*(?:\r\n|\n|\r|\Z)", re.IGNORECASE)
"""Excel's first line naming the delimiter (``sep=;``), as spreadsheet writers' Excel mode
writes it before the header (Kayako's Excel-compatible CSV: FORMATS.md 5)."""


def excel_delimiter(body: bytes) -> tuple[str, bytes]:
    """The delimiter of a CSV's text (BOM removed) and its text from the header on.

    Args:
        body: The file's text as UTF-8 bytes, without a byte-order mark.

    Returns:
        The character a first line ``sep=X`` names, and the text after that line; for a
        file without such a line, a comma and ``body`` unchanged.
    """
    found = _SEP_LINE.match(body)
    if found is None:
        return ",", body
    return found.group(1).decode("latin-1"), body[found.end() :]


@dataclass(frozen=True)
class RawTable:
    """A tabular file (CSV or XLSX) as stripped text, before any meaning is given to it."""

    header: list[str]
    columns: list[pa.Array]
    lines: np.ndarray
    rejects: pd.DataFrame
    sha256: str
    encoding: str
    texts: RecordTexts | None = None
    known: RecordHashes | None = None


def _row_table(
    header: list[str],
    columns: list[pa.Array],
    lines: list[int],
    bad: list[dict[str, object]],
    sha256: str,
    encoding: str,
) -> RawTable:
    """A :class:`RawTable` from a file read row by row, with its malformed-row rejects."""
    rejects = pd.concat([no_rejects(), pd.DataFrame(bad)], ignore_index=True) if bad else None
    return RawTable(
        header=[h.strip() for h in header],
        columns=columns,
        lines=np.asarray(lines, dtype=np.int64),
        rejects=no_rejects() if rejects is None else rejects,
        sha256=sha256,
        encoding=encoding,
    )


def read_head(path: Path) -> bytes:
    """Return the first bytes of a file (enough for its header); refuse an empty file."""
    name = path.name
    try:
        with path.open("rb") as f:
            head = f.read(_HEAD_BYTES)
    except OSError as err:
        raise InvalidInputError(f"cannot read the file: {err.strerror or err}", file=name) from None
    if not head.removeprefix(BOM).strip():
        raise InvalidInputError("is empty", file=name)
    return head


def read_bytes(path: Path) -> bytes:
    """Return a file's bytes; an unreadable file is refused by name."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise InvalidInputError(
            f"cannot read the file: {err.strerror or err}", file=path.name
        ) from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def refuse_binary(data: bytes, name: str) -> None:
    """Refuse UTF-16 text and bytes holding NUL (a binary file), naming the first line."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InvalidInputError("is UTF-16 text; save it as UTF-8 (or cp1252)", file=name)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise InvalidInputError(
            f"holds NUL bytes (first on line {_line_of(data, nul)}): "
            "a binary file, not a text table",
            file=name,
        )


def _decode(data: bytes, name: str) -> tuple[bytes, str]:
    """Return the text as UTF-8 bytes without BOM, and the encoding it was found in.

    UTF-8 (with or without BOM) is taken as is; otherwise the bytes must be valid cp1252.
    """
    if _BLANK_FILE.match(data):
        raise InvalidInputError("is empty", file=name)
    refuse_binary(data, name)
    if data.isascii():
        return data, "utf-8"
    if data.startswith(BOM):
        body = data[len(BOM) :]
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as err:
            raise InvalidInputError(
                f"starts with a UTF-8 byte-order mark but byte 0x{body[err.start]:02x} on line "
                f"{_line_of(body, err.start)} is not UTF-8",
                file=name,
            ) from None
        return body, "utf-8-sig"
    try:
        data.decode("utf-8")
        return data, "utf-8"
    except UnicodeDecodeError as utf8_err:
        try:
            return data.decode("cp1252").encode("utf-8"), "cp1252"
        except UnicodeDecodeError as cp_err:
            raise InvalidInputError(
                f"is neither UTF-8 (byte 0x{data[utf8_err.start]:02x} on line "
                f"{_line_of(data, utf8_err.start)} is invalid) nor cp1252 (byte "
                f"0x{data[cp_err.start]:02x} on line {_line_of(data, cp_err.start)} is undefined)",
                file=name,
            ) from None


_SEP_LINE = re.compile(rb"\Asep=(.)\r?\n")


def read_table(
    path: Path,
    *,
    hashed: bool = False,
    previous: RecordHashes | None = None,
    sha256: str | None = None,
) -> RawTable:
    """Read a CSV or XLSX file as stripped text columns with their line numbers.

    With ``hashed``, a CSV's records are also located and hashed (``texts``), unless some
    record spans lines; with ``previous`` as well, records found among those are not parsed
    when they are most of the file (``known``; lines and rejects keep the file's numbering).
    The file's SHA-256 is ``sha256`` when given (see :func:`read_file`), else that of the bytes
    read.
    """
    data = read_bytes(path)
    with ThreadPoolExecutor(max_workers=2) as pool:
        digest: Future[str] = Future()
        if sha256 is None:  # hashing releases the GIL: overlap it
            digest = pool.submit(lambda: hashlib.sha256(data).hexdigest())
        else:
            digest.set_result(sha256)
        if data.startswith(XLSX_MAGIC):
            return replace(_read_xlsx(data, path.name, ""), sha256=digest.result())
        body, encoding = _decode(data, path.name)
        delimiter, rest = excel_delimiter(body)
        if rest is not body:  # a ``sep=`` line: read the rest, numbered as the file numbers it
            raw = _read_csv(rest, path.name, "", encoding, delimiter=delimiter)
            rejects = raw.rejects.assign(line=raw.rejects["line"].to_numpy(np.int64) + 1)
            return replace(raw, lines=raw.lines + 1, rejects=rejects, sha256=digest.result())
        if not hashed:
            return replace(_read_csv(body, path.name, "", encoding), sha256=digest.result())
        if previous is None:
            located = pool.submit(record_texts, body)
            raw = _read_csv(body, path.name, "", encoding)
            return replace(raw, sha256=digest.result(), texts=located.result())
        texts = record_texts(body)
        at = None if texts is None else texts.known(previous)
        if at is None or 2 * np.count_nonzero(at >= 0) < len(at):  # mostly new: read it all
            raw = _read_csv(body, path.name, "", encoding)
            return replace(raw, sha256=digest.result(), texts=texts)
        rest = np.flatnonzero(at < 0)
        raw = _read_csv(texts.select(body, rest), path.name, "", encoding)
        # The text read holds the header, then one line per record of ``rest``.
        lines = texts.lines[rest]
        rejects = raw.rejects.assign(line=lines[raw.rejects["line"].to_numpy(np.int64) - 2])
        return replace(
            raw,
            lines=lines[raw.lines - 2],
            rejects=rejects,
            sha256=digest.result(),
            texts=texts,
            known=previous.take(at[at >= 0]),
        )


def _structural_reject(line: int, text: str, reason: str) -> dict[str, object]:
    return {"line": line, "column": "", "value": clip(text), "reason": reason}


def _one_line_each(body: bytes, rows: int) -> bool:
    """Whether the header and each of ``rows`` records take exactly one line each.

    Then no quoted value holds a line break and no line is blank (pyarrow skips blank lines).
    """
    if b'"' not in body:
        return b"\n\n" not in body and b"\n\r\n" not in body
    return body.count(b"\n") + (not body.endswith(b"\n")) == rows + 1


def _record_starts(body: bytes) -> tuple[np.ndarray, bool]:
    """Find the line each CSV record starts on (header first), vectorised over the bytes.

    A line feed ends a record unless an odd number of quote characters precede it (it is inside
    a quoted value); empty lines hold no record.

    Returns:
        The 1-based start line of every record, and whether any quoted value holds a line break.
    """
    arr = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(arr == 10)
    inside = quoted_line_feeds(body, newlines)
    ends = np.flatnonzero(~inside)  # line feeds that end a line outside any quoted value
    starts = np.concatenate(([1], ends + 2)).astype(np.int64)
    first_byte = np.concatenate(([0], newlines[ends] + 1))
    padded = np.concatenate((arr, np.zeros(2, dtype=np.uint8)))
    at, after = padded[first_byte], padded[first_byte + 1]
    empty = (first_byte >= len(arr)) | (at == 10) | ((at == 13) & (after == 10))
    return starts[~empty], bool(inside.any())


def _read_csv(
    body: bytes, name: str, sha256: str, encoding: str, *, delimiter: str = ","
) -> RawTable:
    """Read a CSV with pyarrow; fall back to the standard library for irregular files.

    Each row carries the line it starts on: one line per row in the usual case; otherwise
    :func:`_record_starts` counts quoted line breaks and blank lines. The fallback reads files
    with rows of the wrong width (each rejected) and bare-CR line ends.
    """
    slow = functools.partial(_read_csv_slow, body, name, sha256, encoding, delimiter=delimiter)
    head = body[: 1 << 20].decode("utf-8", errors="ignore")
    reader = csv.reader(io.StringIO(head, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return slow()
    if reader.line_num != 1 or not header or bare_cr(body):
        return slow()
    table = _pyarrow_csv(body, len(header), delimiter, multiline=False)
    if table is not None and _one_line_each(body, table.num_rows):  # the usual case
        lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    else:
        starts, multiline = _record_starts(body)
        if multiline:  # a quoted value holds a line break: parse again allowing for that
            table = _pyarrow_csv(body, len(header), delimiter, multiline=True)
        if table is None or len(starts) != table.num_rows + 1:  # malformed rows
            return slow()
        lines = starts[1:]
    # One contiguous array per column, each block freed once copied. Arrow's allocator keeps
    # freed blocks for reuse, but a column's copy is too large to fit in them: handed back to
    # the system column by column, they do not add up (a lower peak: bench/RESULTS.md).
    columns = []
    pool = pa.default_memory_pool()
    while table.num_columns:
        columns.append(contiguous(strip(table.column(0))))
        table = table.remove_column(0)
        pool.release_unused()
    return RawTable(
        header=[h.strip() for h in header],
        columns=columns,
        lines=lines,
        rejects=no_rejects(),
        sha256=sha256,
        encoding=encoding,
    )


def _pyarrow_csv(body: bytes, width: int, delimiter: str, *, multiline: bool) -> pa.Table | None:
    """Parse with pyarrow, every value as text; ``None`` when some row is malformed."""
    names = [f"c{i}" for i in range(width)]
    invalid: list[object] = []

    def on_invalid(row: object) -> str:
        invalid.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(body),
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=_CSV_BLOCK_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=multiline,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return None if invalid else table


def _read_csv_slow(
    body: bytes, name: str, sha256: str, encoding: str, *, delimiter: str = ","
) -> RawTable:
    """Read a CSV with the standard library, for files the fast reader cannot number exactly.

    Used when a file has blank lines, bare CR line ends or rows with the wrong number of fields;
    each row's line is where it starts.
    """
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""), delimiter=delimiter)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[dict[str, object]] = []
    end = 0
    try:
        for record in reader:
            start, end = end + 1, reader.line_num
            if not record:
                continue
            if header is None:
                header = record
            elif len(record) == len(header):
                rows.append(record)
                lines.append(start)
            else:
                reason = f"row has {len(record)} field(s) but the header has {len(header)}"
                bad.append(_structural_reject(start, delimiter.join(record), reason))
    except csv.Error as err:
        raise InvalidInputError(f"line {end + 1}: unreadable CSV ({err})", file=name) from None
    if header is None:
        raise InvalidInputError("is empty", file=name)
    columns = [
        strip(text_array(list(col))) if rows else text_array([])
        for col in (zip(*rows, strict=True) if rows else [()] * len(header))
    ]
    return _row_table(header, columns, lines, bad, sha256, encoding)


_XLSX_DAMAGE = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    KeyError,
    IndexError,
    OSError,
    ValueError,
    TypeError,
    SyntaxError,  # the sheet's XML (xml.etree and lxml parse errors derive from it)
)
"""What a damaged workbook raises, on opening or later while its sheet is read lazily."""


@contextmanager
def _first_sheet(data: bytes, name: str) -> Iterator[object]:
    """The first worksheet, read-only; damage found while it is read refuses the file by name.

    The workbook is read from its bytes whatever the file is called (given a path, openpyxl
    refuses names that do not end in ``.xlsx``).
    """
    import openpyxl

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            yield wb.worksheets[0]
        finally:
            wb.close()
    except _XLSX_DAMAGE as err:
        raise InvalidInputError(
            f"is not a readable XLSX workbook ({type(err).__name__}: {err})", file=name
        ) from None


def xlsx_header(path: Path) -> list[str]:
    """Return the texts of row 1 of a workbook's first sheet."""
    with _first_sheet(read_bytes(path), path.name) as ws:
        first = next(ws.iter_rows(min_row=1, max_row=1), ())  # type: ignore[attr-defined]
        return [_cell_text(cell) for cell in first]


def _cell_text(cell: object) -> str:
    """Return a cell's text as the sheet shows it.

    Numbers print without a spurious ``.0`` and keep zero-padding formats such as ``00000``;
    dates and times print as ISO-8601 (``2026-11-23 09:15:00``), because the order Excel displays
    day and month in depends on the reader's locale.
    """
    value = getattr(cell, "value", None)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        spec = "microseconds" if value.microsecond else "seconds"
        return value.isoformat(sep=" ", timespec=spec)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        number_format = str(getattr(cell, "number_format", "General"))
        if float(value).is_integer():
            text = str(int(value))
            if re.fullmatch(r"0+", number_format):
                text = text.zfill(len(number_format))
            return text
        return repr(float(value))
    return str(value)


def _read_xlsx(data: bytes, name: str, sha256: str) -> RawTable:
    """Read the first sheet of a workbook: row 1 is the header, line = sheet row number."""
    with _first_sheet(data, name) as ws:
        rows = ws.iter_rows(min_row=1)  # type: ignore[attr-defined]
        header = [_cell_text(c) for c in next(rows, ())]
        while header and not header[-1].strip():
            header.pop()
        if not header:
            raise InvalidInputError("first sheet has no header in row 1", file=name)
        width = len(header)
        records: list[list[str]] = []
        lines: list[int] = []
        bad: list[dict[str, object]] = []
        for number, row in enumerate(rows, start=2):
            texts = [_cell_text(c) for c in row]
            if not any(t.strip() for t in texts):
                continue
            if any(t.strip() for t in texts[width:]):
                reason = f"row has values right of the header's last column ({width})"
                bad.append(_structural_reject(number, ",".join(texts), reason))
                continue
            records.append((texts + [""] * width)[:width])
            lines.append(number)
    columns = [strip(text_array([r[i] for r in records])) for i in range(width)]
    return _row_table(header, columns, lines, bad, sha256, "xlsx")
