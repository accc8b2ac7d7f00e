"""Deliberately bad (or awkward) rows, placed into chunks for the ingest and escaping tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ipchange_core.demo.lifecycle import World
from ipchange_core.demo.reference import (
    CHANGES_CSV,
    EVENTS_CSV,
    HOUR,
    INTAKE_CSV,
    KAYAKO_XML,
    TICKETS_CSV,
)
from ipchange_core.demo.text import csv_quote, render, xml_escape
from ipchange_core.demo.writers import Chunk

#: Every kind of deliberately bad row, and whether ingest must reject such a row.
BAD_ROW_KINDS: Mapping[str, bool] = MappingProxyType(
    {
        "invalid_ip": True,  # 300.1.2.3
        "unknown_enum": True,  # channel=fax
        "unparseable_date": True,  # 31/02/2026 9am
        "dst_gap": True,  # naive local time that does not exist (spring forward)
        "dst_ambiguous": True,  # naive local time that exists twice (fall back)
        "end_before_start": True,  # scheduled_end < scheduled_start
        "duplicate_id": True,  # both rows of a pair sharing one key inside one file
        "orphan_intake": False,  # intake for a ticket absent from tickets.csv: data quality
        "hostile_subject": False,  # <script>…: must load, and be escaped on output
        "formula_account": False,  # =HYPERLINK(…): must load, and be neutralised in exports
    }
)


@dataclass(frozen=True)
class BadRow:
    """One deliberately bad (or deliberately awkward) row written by :func:`generate`.

    Attributes:
        file: File name inside the output folder, e.g. ``"intake.csv"``.
        row: 1-based data row number; the header is not counted, so the line is ``row + 1``
            (no generated value contains a line break).
        column: The column holding the bad value.
        kind: What is wrong, a key of :data:`BAD_ROW_KINDS`.
        value: The value written in ``column``.
        ticket_id: The ticket the row belongs to.
        rejected: Whether ingest must reject the row; False for the data-quality and escaping
            cases (orphan intake, hostile subject, formula-like account), which must load.
    """

    file: str
    row: int
    column: str
    kind: str
    value: str
    ticket_id: str
    rejected: bool


# --------------------------------------------------------------------------------------------
# Bad rows
# --------------------------------------------------------------------------------------------

# (kind, file, column, which rows qualify). Values are replaced in place, except for the
# "appended" kinds, which add a row after the chunk's rows.
_BAD_PLAN = (
    ("invalid_ip", INTAKE_CSV, "current_ip", "ipv4_current"),
    ("invalid_ip", INTAKE_CSV, "new_ip", "ipv4_new"),
    ("unknown_enum", INTAKE_CSV, "channel", "any"),
    ("unknown_enum", INTAKE_CSV, "channel", "any"),
    ("unparseable_date", INTAKE_CSV, "received_at", "any"),
    ("unparseable_date", CHANGES_CSV, "confirmed_at", "confirmed"),
    ("unparseable_date", EVENTS_CSV, "at", "any"),
    ("dst_gap", INTAKE_CSV, "received_at", "any"),
    ("dst_gap", CHANGES_CSV, "completed_at", "completed"),
    ("dst_ambiguous", CHANGES_CSV, "completed_at", "completed"),
    ("end_before_start", CHANGES_CSV, "scheduled_end", "window"),
    ("end_before_start", CHANGES_CSV, "scheduled_end", "window"),
    ("hostile_subject", TICKETS_CSV, "subject", "request"),
    ("formula_account", TICKETS_CSV, "account", "billable"),
    ("duplicate_id", TICKETS_CSV, "ticket_id", "any"),
    ("duplicate_id", INTAKE_CSV, "ticket_id", "any"),
    ("duplicate_id", CHANGES_CSV, "ticket_id", "any"),
    ("orphan_intake", INTAKE_CSV, "ticket_id", "any"),
    ("orphan_intake", INTAKE_CSV, "ticket_id", "any"),
)
_APPENDED = frozenset({"duplicate_id", "orphan_intake"})
HOSTILE_SUBJECT = "<script>alert(1)</script>"
FORMULA_ACCOUNT = '=HYPERLINK("x")'


class BadRows:
    """Places the planned bad rows into chunks and records where they went."""

    def __init__(
        self, w: World, rng: np.random.Generator, chunk_sizes: list[int], orphans: list[str]
    ) -> None:
        self.w = w
        self.rng = rng
        sizes = np.asarray(chunk_sizes, dtype=float)
        at = rng.choice(len(sizes), size=len(_BAD_PLAN), p=sizes / sizes.sum())
        self.pending = sorted(zip(at.tolist(), range(len(_BAD_PLAN)), strict=True))
        self.orphans = orphans
        self.placed: list[BadRow] = []
        ck = w.clock
        gap = _pick_transition(ck.transitions(forward=True), w.as_of)
        fold = _pick_transition(ck.transitions(forward=False), w.as_of)
        self.values = {
            "invalid_ip": "300.1.2.3",
            "unknown_enum": "fax",
            "unparseable_date": f"31/02/{w.end.year} 9am",
            # Wall clock just before the jump, +1 s = the first missing second, +30 min.
            "dst_gap": _naive_text(int(ck.local(np.array([gap - 1]))[0]) + 1 + 1800),
            # Wall clock at the fall back = start of the repeated hour, +30 min.
            "dst_ambiguous": _naive_text(int(ck.local(np.array([fold]))[0]) + 1800),
        }

    def apply(self, c: int, ch: Chunk, before: Mapping[str, int], *, last: bool) -> None:
        """Place the bad rows due in chunk ``c`` (carrying over those that find no row)."""
        todo = [k for at, k in self.pending if at <= c]
        self.pending = [(at, k) for at, k in self.pending if at > c]
        used: dict[str, set[int]] = {f: set() for f in ch.rows}
        todo.sort(key=lambda k: _BAD_PLAN[k][0] in _APPENDED)  # replacements first
        for k in todo:
            kind, file, column, key = _BAD_PLAN[k]
            if kind in _APPENDED:
                ok = self._append(ch, before, used, kind, file)
            else:
                ok = self._replace(ch, before, used, kind, file, column, key)
            if not ok and not last:
                self.pending.append((c + 1, k))

    def _choose(self, ch: Chunk, used: dict[str, set[int]], file: str, key: str) -> int | None:
        rows = [i for i in ch.eligible[(file, key)].tolist() if i not in used[file]]
        if key == "billable":
            rows = [i for i in rows if ch.intake_row_of_ticket[i] not in used[INTAKE_CSV]]
        if not rows:
            return None
        return rows[int(self.rng.integers(0, len(rows)))]

    def _record(self, file: str, row: int, column: str, kind: str, value: str, tid: str) -> None:
        self.placed.append(BadRow(file, row, column, kind, value, tid, BAD_ROW_KINDS[kind]))

    def _replace(
        self,
        ch: Chunk,
        before: Mapping[str, int],
        used: dict[str, set[int]],
        kind: str,
        file: str,
        column: str,
        key: str,
    ) -> bool:
        i = self._choose(ch, used, file, key)
        if i is None:
            return False
        used[file].add(i)
        tid = ch.rows[file].get("ticket_id", i)
        if kind == "hostile_subject":
            value = HOSTILE_SUBJECT
            ch.rows[KAYAKO_XML].set("subject", i, xml_escape(value))
        elif kind == "formula_account":
            value = FORMULA_ACCOUNT
            ch.rows[KAYAKO_XML].set("userorganization", i, xml_escape(value))
            j = ch.intake_row_of_ticket[i]
            used[INTAKE_CSV].add(j)
            ch.rows[INTAKE_CSV].set("account", j, csv_quote(value))
            self._record(INTAKE_CSV, before[INTAKE_CSV] + j + 1, "account", kind, value, tid)
        elif kind == "end_before_start":
            start = ch.scheduled_start[i : i + 1]
            value = render(self.w.fmt.timestamp(start - HOUR))[0]
        else:
            value = self.values[kind]
        ch.rows[file].set(column, i, csv_quote(value))
        self._record(file, before[file] + i + 1, column, kind, value, tid)
        return True

    def _append(
        self, ch: Chunk, before: Mapping[str, int], used: dict[str, set[int]], kind: str, file: str
    ) -> bool:
        i = self._choose(ch, used, file, "any")
        if i is None:
            return False
        rows = ch.rows[file]
        used[file].add(i)
        j = rows.append_copy(i)
        used[file].add(j)
        if kind == "orphan_intake":
            rows.set("ticket_id", j, self.orphans.pop())
        else:  # both rows of a duplicate pair carry the key: list the original too
            tid = rows.get("ticket_id", i)
            self._record(file, before[file] + i + 1, "ticket_id", kind, tid, tid)
        tid = rows.get("ticket_id", j)
        self._record(file, before[file] + j + 1, "ticket_id", kind, tid, tid)
        return True


def _pick_transition(instants: list[int], as_of: int) -> int:
    past = [t for t in instants if t <= as_of]
    return past[-1] if past else instants[0]


def _naive_text(local: int) -> str:
    return dt.datetime.fromtimestamp(local, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------
# One chunk of tickets → rows of every file
