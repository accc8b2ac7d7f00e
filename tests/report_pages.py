"""Read the numbers a rendered report shows: its tiles, tables and chart data, by section.

Parses the HTML page as a browser gets it (standard library ``html.parser``), so a test can
compare what a reader sees with numbers it computed elsewhere, never with the functions that
built the page.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np


@dataclass
class Table:
    """One HTML table: its header cells and its rows of cell text."""

    header: list[str]
    rows: list[list[str]]

    def records(self) -> list[dict[str, str]]:
        """The rows as dicts keyed by the header."""
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]


@dataclass
class Section:
    """What a page shows under one ``<h2>`` heading."""

    heading: str
    tiles: list[dict[str, str]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[list[dict]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, first_column: str | None = None) -> Table:
        """The section's only table, or the one whose first header cell is ``first_column``."""
        found = [t for t in self.tables if first_column in (None, t.header[0])]
        assert len(found) == 1, (self.heading, first_column, [t.header for t in self.tables])
        return found[0]


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = [Section("")]
        self._heading: list[str] | None = None
        self._tile: dict[str, str] | None = None
        self._tile_part: str | None = None
        self._table: Table | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._script: list[str] | None = None
        self._note: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "h2":
            self._heading = []
        elif tag == "div" and "tile" in classes:
            self._tile = {}
        elif tag == "div" and self._tile is not None and classes:
            self._tile_part = classes[0].removeprefix("tile-")
            self._tile[self._tile_part] = ""
        elif tag == "table":
            self._table = Table([], [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("th", "td") and self._row is not None:
            self._cell = []
        elif tag == "script":
            self._script = []
        elif tag == "p" and ("note" in classes or "empty" in classes):
            self._note = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._heading is not None:
            self.sections.append(Section("".join(self._heading).replace("¶", "").strip()))
            self._heading = None
        elif tag == "div" and self._tile_part is not None:
            self._tile_part = None
        elif tag == "div" and self._tile is not None:
            self.sections[-1].tiles.append(self._tile)
            self._tile = None
        elif tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            if not self._table.header:
                self._table.header = self._row
            else:
                self._table.rows.append(self._row)
            self._row = None
        elif tag == "table" and self._table is not None:
            self.sections[-1].tables.append(self._table)
            self._table = None
        elif tag == "script" and self._script is not None:
            text = "".join(self._script)
            if "Plotly.newPlot(" in text:
                self.sections[-1].charts.append(_traces(text))
            self._script = None
        elif tag == "p" and self._note is not None:
            self.sections[-1].notes.append(" ".join("".join(self._note).split()))
            self._note = None

    def handle_data(self, data: str) -> None:
        for part in (self._heading, self._cell, self._script, self._note):
            if part is not None:
                part.append(data)
        if self._tile is not None and self._tile_part is not None:
            self._tile[self._tile_part] += data


def _traces(script: str) -> list[dict]:
    """The data traces of a ``Plotly.newPlot(id, traces, layout, config)`` call."""
    after = script[script.index("Plotly.newPlot(") :]
    start = after.index("[", after.index(","))
    traces, _ = json.JSONDecoder().raw_decode(after[start:])
    return traces


def values(axis: object) -> list:
    """A plotly trace's axis values: a list, or a typed array (``{"dtype", "bdata"}``)."""
    if isinstance(axis, dict):
        return np.frombuffer(base64.b64decode(axis["bdata"]), dtype=axis["dtype"]).tolist()
    return list(axis)


def read_page(path: Path) -> dict[str, Section]:
    """The sections of a rendered report, by heading (the part before the first is ``""``)."""
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return {s.heading: s for s in parser.sections}


def cents(text: str) -> int:
    """``$1,250.00`` → 125000 (USD as the reports write it)."""
    sign = -1 if text.startswith("-") else 1
    return sign * int(Decimal(text.lstrip("-").removeprefix("$").replace(",", "")) * 100)
