"""Text assembly: rows of CSV and XML joined from pools of pre-formatted strings.

A row is a sequence of constants and column "pieces"; a piece is either a list of strings or a
pool of strings indexed by integer codes. Compiling folds each constant into the pooled piece
before it (a suffixed copy of the pool) and merges adjacent small pools into their product, so
a written row is the join of a handful of pieces and no cell is formatted on its own. Columns
that bad rows edit stay separate pieces.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from ipchange_core.demo.reference import DAY, HOUR, NA
from ipchange_core.demo.timeline import Timeline

_FOLD_LIMIT = 250_000  # largest pool that gets suffixed copies
_PRODUCT_LIMIT = 16_384  # largest product of two pools that gets built


def csv_quote(value: str) -> str:
    """Quote one CSV field the way :mod:`csv` does with ``QUOTE_MINIMAL``."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_unquote(value: str) -> str:
    """The value of one CSV field quoted by :func:`csv_quote` (or not quoted)."""
    if value.startswith('"'):
        return value[1:-1].replace('""', '"')
    return value


def csv_quote_all(value: str) -> str:
    """Quote one CSV field the way Kayako's spreadsheet writer does: always."""
    return '"' + value.replace('"', '""') + '"'


def cdata(value: str) -> str:
    """Text for the inside of a ``<![CDATA[…]]>`` section (a ``]]>`` is split across two)."""
    return value.replace("]]>", "]]]]><![CDATA[>")


def xml_element(tag: str, value: str) -> str:
    """One element as a live Kayako server writes it: ``<tag><![CDATA[v]]></tag>`` or ``<tag />``.

    Used for values that may be empty; the others get their wrapper from the row layout.
    """
    return f"<{tag}><![CDATA[{cdata(value)}]]></{tag}>" if value else f"<{tag} />"


class Pool:
    """Strings to index with integer codes, with cached suffixed copies and products.

    ``static`` pools live as long as the data set (and may cache products with each other);
    the others are built for one chunk.
    """

    def __init__(
        self,
        values: Iterable[str],
        quote: Callable[[str], str] | None = None,
        *,
        static: bool = True,
    ) -> None:
        items = [quote(v) for v in values] if quote else list(values)
        self.values = np.empty(len(items), dtype=object)
        self.values[:] = items
        self.static = static
        self._suffixed: dict[str, Pool] = {}
        self._products: dict[int, tuple[Pool, Pool]] = {}

    def __len__(self) -> int:
        return len(self.values)

    def suffixed(self, suffix: str) -> Pool:
        """This pool with ``suffix`` appended to every string (cached; same codes)."""
        if not suffix:
            return self
        out = self._suffixed.get(suffix)
        if out is None:
            out = Pool([v + suffix for v in self.values.tolist()], static=self.static)
            self._suffixed[suffix] = out
        return out

    def product(self, other: Pool) -> Pool:
        """Pool of ``a + b`` for a in self, b in other; code = code_a · len(other) + code_b."""
        hit = self._products.get(id(other))
        if hit is not None and hit[0] is other:
            return hit[1]
        right = other.values.tolist()
        out = Pool(
            [a + b for a in self.values.tolist() for b in right],
            static=self.static and other.static,
        )
        if out.static:
            self._products[id(other)] = (other, out)
        return out


Piece = tuple[Pool, np.ndarray] | list[str]


class Rows:
    """Compiled rows: piece sequences joined row by row, and where editable columns lie."""

    def __init__(
        self, pieces: list[Sequence[str]], spans: dict[str, tuple[int, int, str]], n: int
    ) -> None:
        self.pieces = pieces
        self.spans = spans
        self.n = n

    def get(self, column: str, i: int) -> str:
        """The (quoted/escaped) value of ``column`` in row ``i``."""
        a, b, suffix = self.spans[column]
        text = "".join(self.pieces[j][i] for j in range(a, b))
        return text[: len(text) - len(suffix)]

    def set(self, column: str, i: int, value: str) -> None:
        """Replace the (already quoted/escaped) value of ``column`` in row ``i``."""
        a, b, suffix = self.spans[column]
        for j in range(a, b):
            self.pieces[j][i] = ""  # type: ignore[index]
        self.pieces[a][i] = value  # type: ignore[index]
        self.pieces[b - 1][i] += suffix  # type: ignore[index]

    def append_copy(self, i: int) -> int:
        """Append a copy of row ``i``; return the new row's index."""
        for p in self.pieces:
            if isinstance(p, list):
                p.append(p[i])
        self.n += 1
        return self.n - 1

    def text(self) -> str:
        """All rows, joined."""
        return "".join(map("".join, zip(*self.pieces, strict=False)))


class Layout:
    """Builder of :class:`Rows`: constants and named columns, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str | None, str | Piece]] = []  # (editable column, item)
        self.editable: list[str] = []

    def const(self, text: str) -> None:
        """Append text that every row carries."""
        self.items.append((None, text))

    def column(self, name: str, pieces: list[Piece], *, editable: bool = False) -> None:
        """Append a named column; an ``editable`` one can later be read and replaced per row."""
        if editable:
            self.editable.append(name)
        self.items.extend((name if editable else None, p) for p in pieces)

    def compile(self, n: int) -> Rows:
        """The ``n`` rows, with constants folded into pools and small pools multiplied."""
        # Each compiled piece: [kind, payload, codes, folded suffix, editable column].
        out: list[list] = []
        for owner, item in self.items:
            last = out[-1] if out else None
            if isinstance(item, str):
                if last is not None and last[0] == "const":
                    last[1] += item
                elif last is not None and last[0] == "pool" and len(last[1]) <= _FOLD_LIMIT:
                    last[3] += item
                else:
                    out.append(["const", item, None, "", None])
            elif isinstance(item, tuple):
                pool, codes = item
                if (
                    last is not None
                    and last[0] == "pool"
                    and last[4] == owner
                    and len(last[1]) * len(pool) <= min(_PRODUCT_LIMIT, max(n, 1))
                ):
                    last[1] = last[1].suffixed(last[3]).product(pool)
                    last[2] = last[2] * len(pool) + codes
                    last[3] = ""
                else:
                    out.append(["pool", pool, codes, "", owner])
            else:
                out.append(["list", item, None, "", owner])
        pieces: list[Sequence[str]] = []
        spans: dict[str, tuple[int, int, str]] = {}
        for k, (kind, payload, codes, suffix, owner) in enumerate(out):
            if kind == "const":
                pieces.append(itertools.repeat(payload))  # type: ignore[arg-type]
            elif kind == "pool":
                pieces.append(payload.suffixed(suffix).values[codes].tolist())
            else:
                pieces.append(payload)
            if owner is not None:
                first = spans.get(owner, (k, k, ""))[0]
                spans[owner] = (first, k + 1, suffix)
        return Rows(pieces, spans, n)


def csv_rows(n: int, columns: Sequence[tuple[str, list[Piece]]], editable: Sequence[str]) -> Rows:
    """``n`` CSV rows of the named columns (``editable`` ones can be replaced per row)."""
    layout = Layout()
    for k, (name, pieces) in enumerate(columns):
        layout.column(name, pieces, editable=name in editable)
        layout.const("," if k < len(columns) - 1 else "\n")
    return layout.compile(n)


def strings(values: np.ndarray | list[str]) -> list[Piece]:
    """A column given as one string per row."""
    return [values.tolist() if isinstance(values, np.ndarray) else values]


def coded(pool: Pool, codes: np.ndarray) -> list[Piece]:
    """A column given as codes into a pool."""
    return [(pool, codes)]


def objects(values: Iterable[str]) -> np.ndarray:
    """Strings as a numpy object array."""
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def render(pieces: list[Piece]) -> list[str]:
    """The strings of one column given as pieces."""
    lists = [p[0].values[p[1]].tolist() if isinstance(p, tuple) else p for p in pieces]
    return list(map("".join, zip(*lists, strict=True)))


class Formatter:
    """Static string pools for the timestamps and integers of one data set."""

    def __init__(self, clock: Timeline) -> None:
        self.clock = clock
        self.day0 = int(clock.local(np.array([clock.lo]))[0]) // DAY - 1
        days = int(clock.local(np.array([clock.hi]))[0]) // DAY + 2 - self.day0
        self.days = days
        dates = np.datetime_as_string(np.arange(self.day0, self.day0 + days).astype("M8[D]"))
        dates = dates.tolist()
        hours = [f"{h:02d}:" for h in range(24)]
        self.date_hour = Pool(
            [d + "T" + h for d in dates for h in hours]
            + [d + " " + h for d in dates for h in hours]
            + ["", "ASAP"]
        )
        self.min_sec = Pool([f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)] + [""])
        # Kayako's spreadsheet dates: m/d/yyyy h:mm:ss, no leading zeros on month, day, hour.
        us_days = [
            f"{d.month}/{d.day}/{d.year} "
            for d in (dt.date(1970, 1, 1) + dt.timedelta(days=self.day0 + k) for k in range(days))
        ]
        self.us_date_hour = Pool([d + f"{h}:" for d in us_days for h in range(24)] + [""])
        self.offs = clock.offsets
        self.suffix = Pool([_offset_text(o) for o in self.offs] + [""])
        # 0–9999 unpadded, then 0000–9999 zero-padded (the low four digits of larger numbers).
        self.low = Pool([str(i) for i in range(10_000)] + [f"{i:04d}" for i in range(10_000)])
        # Leading digits: of epoch seconds inside the clock's range (plus "" for 0), and of
        # small numbers such as ticket ids (grown on demand).
        self.epoch_hi0 = clock.lo // 10_000
        self.epoch_high = Pool(
            [str(h) for h in range(self.epoch_hi0, clock.hi // 10_000 + 1)] + [""]
        )
        self.small_high = Pool([""])

    def timestamp(
        self, utc: np.ndarray, naive: np.ndarray | None = None, asap: np.ndarray | None = None
    ) -> list[Piece]:
        """ISO-8601 pieces ``YYYY-MM-DDTHH:`` + ``MM:SS`` + ``±HH:MM``; ``NA`` → empty.

        Rows where ``naive`` holds are written as naive local time ``YYYY-MM-DD HH:MM:SS``
        unless that wall-clock time is ambiguous or missing in the zone; rows where ``asap``
        holds are written ``ASAP``.
        """
        missing = utc == NA
        u = np.where(missing, self.clock.lo, utc)
        off = self.clock.offset(u)
        local = u + off
        hour = local // HOUR - self.day0 * 24
        slots = self.days * 24
        if naive is None:
            naive = np.zeros(len(utc), dtype=bool)
        else:
            naive = naive & ~self.clock.ambiguous(u)
        hcode = np.where(missing, 2 * slots, hour + slots * naive)
        if asap is not None:
            hcode = np.where(asap, 2 * slots + 1, hcode)
            missing = missing | asap
        scode = np.where(missing | naive, len(self.offs), np.searchsorted(self.offs, off))
        return [
            (self.date_hour, hcode),
            (self.min_sec, np.where(missing, 3600, local % HOUR)),
            (self.suffix, scode),
        ]

    def us_datetime(self, utc: np.ndarray) -> list[Piece]:
        """Local ``m/d/yyyy h:mm:ss`` pieces (Kayako's US date-time format); ``NA`` → empty."""
        missing = utc == NA
        u = np.where(missing, self.clock.lo, utc)
        local = self.clock.local(u)
        hour = local // HOUR - self.day0 * 24
        return [
            (self.us_date_hour, np.where(missing, self.days * 24, hour)),
            (self.min_sec, np.where(missing, 3600, local % HOUR)),
        ]

    def integer(self, values: np.ndarray) -> list[Piece]:
        """Decimal pieces of non-negative integers (epoch seconds or small numbers)."""
        hi = values // 10_000
        low = (self.low, np.where(hi == 0, values, values - hi * 10_000 + 10_000))
        nonzero = hi[hi > 0]
        top = len(self.epoch_high) - 1
        if (
            len(nonzero)
            and self.epoch_hi0 <= nonzero.min()
            and nonzero.max() < self.epoch_hi0 + top
        ):
            return [(self.epoch_high, np.where(hi == 0, top, hi - self.epoch_hi0)), low]
        if int(hi.max(initial=0)) >= len(self.small_high):
            self.small_high = Pool([""] + [str(h) for h in range(1, int(hi.max()) + 1)])
        return [(self.small_high, hi), low]


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), HOUR)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


# The generator
# --------------------------------------------------------------------------------------------
