"""Seeded, realistic demo data: the canonical CSVs and a Kayako Classic export of the same tickets.

:func:`generate` writes, into one folder, a help-desk export in which a share of the tickets are IP
change requests handled (well or badly) according to the procedure, plus a few deliberately bad
rows for the ingest and escaping tests:

- ``tickets.csv``, ``ticket_events.csv``, ``intake.csv``, ``changes.csv`` — the canonical CSVs of
  SPEC 3.4;
- ``kayako-tickets.xml`` — the same tickets as a Kayako Classic REST ``ListAll`` response;
- ``kayako-audit.csv`` — the department/status/owner changes as a Kayako audit log.

Everything is vectorised with numpy and written chunk by chunk (no per-cell formatting: text comes
from pools of pre-formatted strings joined row by row), so a million tickets take well under a
minute and memory stays bounded by the chunk size. The same arguments always give byte-identical
files.

Times are generated as int64 epoch seconds (UTC) and converted to America/Chicago wall-clock time
through an explicit table of the zone's UTC-offset transitions, never by wall-clock arithmetic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np

from ipchange_core.ingest.kayako_audit import AUDIT_COLUMNS
from ipchange_core.policy import load_policy
from ipchange_core.schema import TABLES

__all__ = [
    "BAD_ROW_KINDS",
    "CHANGES_COLUMNS",
    "CHANGES_CSV",
    "EVENTS_CSV",
    "FILES",
    "FORMULA_ACCOUNT",
    "HOSTILE_SUBJECT",
    "INTAKE_COLUMNS",
    "INTAKE_CSV",
    "KAYAKO_AUDIT_COLUMNS",
    "KAYAKO_AUDIT_CSV",
    "KAYAKO_DEPARTMENTS",
    "KAYAKO_STATUSES",
    "KAYAKO_TYPES",
    "KAYAKO_UNASSIGNED",
    "KAYAKO_XML",
    "TICKETS_COLUMNS",
    "TICKETS_CSV",
    "TICKET_EVENTS_COLUMNS",
    "BadRow",
    "DemoDataSet",
    "generate",
]

ZONE = "America/Chicago"

TICKETS_COLUMNS = tuple(c.name for c in TABLES["tickets"])
TICKET_EVENTS_COLUMNS = tuple(c.name for c in TABLES["ticket_events"])
INTAKE_COLUMNS = tuple(c.name for c in TABLES["intake"])
CHANGES_COLUMNS = tuple(c.name for c in TABLES["changes"])
KAYAKO_AUDIT_COLUMNS = AUDIT_COLUMNS

# Kayako Classic id lookups: the default policy's (``kayako:`` in policy.yaml).
_KAYAKO = load_policy().latest.kayako
KAYAKO_DEPARTMENTS: Mapping[int, str] = MappingProxyType(dict(_KAYAKO.departments))
KAYAKO_STATUSES: Mapping[int, str] = MappingProxyType(dict(_KAYAKO.statuses))
KAYAKO_TYPES: Mapping[int, str] = MappingProxyType(dict(_KAYAKO.types))
#: How the Kayako audit log writes "no owner" (the canonical files leave the owner blank).
KAYAKO_UNASSIGNED = "-- Unassigned --"

TICKETS_CSV = "tickets.csv"
EVENTS_CSV = "ticket_events.csv"
INTAKE_CSV = "intake.csv"
CHANGES_CSV = "changes.csv"
KAYAKO_XML = "kayako-tickets.xml"
KAYAKO_AUDIT_CSV = "kayako-audit.csv"
FILES = (TICKETS_CSV, EVENTS_CSV, INTAKE_CSV, CHANGES_CSV, KAYAKO_XML, KAYAKO_AUDIT_CSV)

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

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

_DEPTS = ("Customer Service", "Implementation", "Technical Support", "Billing")
_CS, _IMPL, _TS, _BILL = range(4)
_DEPT_KAYAKO_ID = np.array([2, 3, 4, 5], dtype=np.int64)

_STATUSES = ("New", "Open", "In Progress", "On Hold", "Closed")
_NEW, _OPEN, _INPROG, _HOLD, _CLOSED = range(5)

_TSC_AGENTS = (
    "Maria Gonzalez",
    "Derek Hollis",
    "Tanya Brooks",
    "Kevin Nguyen",
    "Shanice Porter",
    "Luis Ramirez",
    "Amy Castillo",
    "Brandon Lee",
)
_CS_STAFF = ("Rachel Kim", "Jordan Price", "Megan O'Neil")
_ENGINEERS = ("Sam Ortiz", "Priya Raman", "Tom Becker", "Alicia Ward", "Victor Chen")
_TS_STAFF = ("Chris Martin", "Hannah Scott", "Eric Dunn", "Nina Patel")
_BILLING_STAFF = ("Julie Frank", "Omar Haddad")
_MANAGERS = ("Dana Whitfield", "Greg Lawson", "Bob Russo")
#: Kayako staff, id = position + 1 (0 means unassigned).
_STAFF = _TSC_AGENTS + _CS_STAFF + _ENGINEERS + _TS_STAFF + _BILLING_STAFF + _MANAGERS


def _staff_ids(names: Sequence[str]) -> np.ndarray:
    return np.array([_STAFF.index(n) + 1 for n in names], dtype=np.int64)


_AGENT_IDS = _staff_ids(_TSC_AGENTS)
_CS_IDS = _staff_ids(_CS_STAFF)
_ENGINEER_IDS = _staff_ids(_ENGINEERS)
_TS_IDS = _staff_ids(_TS_STAFF + _TSC_AGENTS[:4])
_BILLING_IDS = _staff_ids(_BILLING_STAFF)
_MANAGER_IDS = _staff_ids(_MANAGERS)
_DEPT_STAFF = (_CS_IDS, _ENGINEER_IDS, _TS_IDS, _BILLING_IDS)  # indexed by department code

_CITIES = (
    ("Dallas", 214),
    ("Houston", 713),
    ("Austin", 512),
    ("San Antonio", 210),
    ("Fort Worth", 817),
    ("Plano", 972),
    ("Tulsa", 918),
    ("Oklahoma City", 405),
    ("Little Rock", 501),
    ("Memphis", 901),
    ("Nashville", 615),
    ("Kansas City", 816),
    ("Wichita", 316),
    ("Omaha", 402),
    ("Des Moines", 515),
    ("Minneapolis", 612),
    ("Chicago", 312),
    ("Milwaukee", 414),
    ("Madison", 608),
    ("St. Louis", 314),
    ("New Orleans", 504),
    ("Baton Rouge", 225),
    ("Shreveport", 318),
    ("Lubbock", 806),
    ("Waco", 254),
    ("Tyler", 903),
    ("Jackson", 601),
    ("Birmingham", 205),
    ("Mobile", 251),
    ("Springfield", 417),
    ("Corpus Christi", 361),
    ("Amarillo", 806),
)
_RESELLERS = (
    ("Lone Star Telecom", "lonestartelecom.example", 214),
    ("Prairie Voice & Data, LLC", "prairievoice.example", 405),
    ("Gulf Coast Networks", "gulfcoastnet.example", 713),
    ("Red River Communications", "redrivercomm.example", 903),
    ("Ozark Cloud Partners", "ozarkcloud.example", 417),
    ("Heartland VoIP Solutions", "heartlandvoip.example", 515),
    ("Bayou Business Systems", "bayoubiz.example", 504),
    ("Mesa Connect", "mesaconnect.example", 806),
    ("Great Plains Unified", "greatplainsuc.example", 316),
    ("Capitol Telecom Group", "capitoltelecom.example", 512),
    ("Riverbend IT Services", "riverbendit.example", 615),
    ("Trinity Cloud Services", "trinitycloud.example", 817),
)
_FIRST = (  # noqa: SIM905
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Paul Ashley Steven Kimberly Andrew Emily Joshua Donna Kenneth Michelle "
    "Kevin Carol Brian Amanda Jose Melissa Ryan Deborah Jacob Stephanie Gary Rebecca Juan Laura"
).split()
_LAST = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez "
    "Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores "
    "Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Dubois O'Brien Kowalski"
).split()

_CHANNELS = ("phone", "customer_ticket", "email", "chat")
_PHONE, _CUSTOMER, _EMAIL, _CHAT = range(4)
_REASONS = ("isp_change", "equipment_change", "wan_lan", "other")
_WAIVER_REASONS = (
    "ISP outage - carrier fault, not the customer's choice",
    "Goodwill - new customer onboarding",
    "Our error: previous change misconfigured",
    "Manager discretion",
    "Site down - emergency restoration",
)
_AGENT_SUBJECTS = (
    "IP change for site {site}",
    "IP Change - {acct} - Site {site}",
    "Change of IP address",
    "WAN IP update",
    "IP change request - {city}",
    "Need new static IP - ISP changed",
    "Static IP change - {acct}",
    "IP change for site {site} ({reseller})",
)
_USER_SUBJECTS = (
    "Need new static IP - ISP changed",
    "Change of IP address",
    "ip change",
    "IP CHANGE NEEDED",
    "Please update our IP address",
    "New ISP - IP change for {city} office",
    "Our internet provider changed, need IP updated",
    "WAN IP update",
    "Firewall replacement - new WAN IP",
    "Re: IP address change",
    "Site {site} - new IP from ISP",
)
# Ordinary help-desk subjects by department code (none of them is an IP change).
_OTHER_SUBJECTS: tuple[tuple[tuple[str, str], ...], ...] = (
    (  # Customer Service
        ("Password reset for portal", "portal,password"),
        ("Cannot log in to customer portal", "portal"),
        ("Add new user to portal", "portal"),
        ("Remove former employee", "account"),
        ("Update contact information", "account"),
        ("Request for call recordings", ""),
        ("How do I set up voicemail to email?", "voicemail"),
        ("Change account contact", "account"),
        ("Portal two-factor code not received", "portal,password"),
        ("Request copy of contract", ""),
    ),
    (  # Implementation (installs, not IP changes)
        ("New site installation", "install"),
        ("Add phone lines to existing site", "install"),
        ("Number porting request", "porting"),
        ("Add second location", "install"),
        ("Hardware order - 5 desk phones", "hardware"),
        ("Circuit install scheduling", "install"),
    ),
    (  # Technical Support
        ("Phones not ringing at front desk", "voip"),
        ("VoIP phone not registering", "voip"),
        ("Call quality - choppy audio", "voip,quality"),
        ("Voicemail not working", "voicemail"),
        ("Cannot transfer calls", "voip"),
        ("Auto attendant greeting update", ""),
        ("Desk phone stuck on booting", "hardware"),
        ("Dropped calls after 10 minutes", "voip,quality"),
        ("Fax to email not delivering", "fax"),
        ("Headset not working with desk phone", "hardware"),
        ("Call forwarding setup", ""),
        ("Music on hold change", ""),
        ("Conference bridge PIN not accepted", ""),
        ("Softphone will not log in", "voip"),
        ("Hunt group order change", ""),
        ("No dial tone on line 2", "voip"),
        ("Caller ID shows wrong name", ""),
        ("Extension 104 not ringing", "voip"),
        ("Extension 212 not ringing", "voip"),
    ),
    (  # Billing
        ("Invoice question", "billing,invoice"),
        ("Billing address update", "billing"),
        ("Credit card on file expired", "billing"),
        ("Duplicate charge on statement", "billing,invoice"),
        ("Question about late fee", "billing"),
        ("Request W-9", "billing"),
        ("Past due notice received", "billing"),
        ("Tax exemption certificate", "billing"),
        ("Credit for outage", "billing"),
        ("Question about expedite fee on invoice", "billing,invoice"),
    ),
)
_ISP_FIRST_OCTETS = np.array(
    [
        24,
        50,
        64,
        66,
        67,
        68,
        69,
        70,
        71,
        72,
        73,
        74,
        75,
        76,
        96,
        97,
        98,
        99,
        104,
        107,
        108,
        162,
        173,
        174,
        184,
        199,
        204,
        206,
        207,
        208,
        209,
        216,
    ],
    dtype=np.int64,
)

_DAY = 86_400
_HOUR = 3_600
_MIN = 60
_BH_OPEN = 9 * _HOUR  # business hours [09:00, 17:00) local, Mon–Fri (default policy)
_BH_CLOSE = 17 * _HOUR
_BDAY = _BH_CLOSE - _BH_OPEN
_NA = np.int64(-(2**62))  # "no timestamp" in int64 arrays
_CHUNK = 65_536  # tickets per chunk
_NAIVE_SHARE = 0.05  # intake/changes rows written in naive local time

# --------------------------------------------------------------------------------------------
# Public types
# --------------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class DemoDataSet:
    """What :func:`generate` wrote.

    Attributes:
        out_dir: The folder written into.
        paths: File name → path, for the six files.
        rows: File name → data rows written (CSV rows without the header; ``<ticket>``
            elements for the XML). Includes the bad rows.
        bad_rows: File name → number of rows of that file listed in ``bad``.
        bad: Every deliberately bad row, in file order. Both rows of a duplicate-key pair are
            listed (ingest rejects every copy).
        start: First local date covered (inclusive).
        end: Local date the data end at (exclusive): the "as of" instant is its midnight,
            Central time; nothing after it has happened yet.
        seed: The seed used.
    """

    out_dir: Path
    paths: Mapping[str, Path]
    rows: Mapping[str, int]
    bad_rows: Mapping[str, int]
    bad: tuple[BadRow, ...]
    start: dt.date
    end: dt.date
    seed: int

    def rejected_rows(self, file: str) -> int:
        """Number of rows of ``file`` that ingest must reject.

        Args:
            file: A file name, e.g. ``"intake.csv"``.

        Returns:
            The count of bad rows of that file whose kind is rejected.
        """
        return sum(1 for b in self.bad if b.file == file and b.rejected)


# --------------------------------------------------------------------------------------------
# Time zone and business-hours arithmetic, vectorised over int64 epoch seconds
# --------------------------------------------------------------------------------------------


class _Clock:
    """UTC ⇄ wall-clock conversions and business-hours helpers for one zone.

    Offsets come from a table of the zone's transitions between ``lo`` and ``hi`` (epoch
    seconds), found hour by hour with :mod:`zoneinfo`; lookups are ``np.searchsorted``.
    """

    def __init__(self, zone: str, lo: int, hi: int) -> None:
        tz = ZoneInfo(zone)
        self.lo = lo
        self.hi = hi

        def offset(t: int) -> int:
            delta = dt.datetime.fromtimestamp(t, tz).utcoffset()
            assert delta is not None
            return int(delta.total_seconds())

        starts, offs = [lo], [offset(lo)]
        for t in range(lo - lo % _HOUR + _HOUR, hi + 1, _HOUR):
            o = offset(t)
            if o != offs[-1]:
                starts.append(t)
                offs.append(o)
        self.starts = np.array(starts, dtype=np.int64)
        self.offs = np.array(offs, dtype=np.int64)

    def offset(self, utc: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.starts, utc, side="right") - 1
        return self.offs[np.maximum(idx, 0)]

    def local(self, utc: np.ndarray) -> np.ndarray:
        """Wall-clock seconds ("local epoch") of UTC instants."""
        return utc + self.offset(utc)

    def utc(self, local: np.ndarray) -> np.ndarray:
        """UTC instants of wall-clock times (gap times map to some nearby instant)."""
        u = local - self.offset(local - self.offset(local))
        return np.where(self.local(u) == local, u, local - self.offset(u))

    def ambiguous_or_missing(self, utc: np.ndarray) -> np.ndarray:
        """Whether the wall-clock time of each instant is not unique (so cannot be naive)."""
        local = self.local(utc)
        hits = np.zeros(len(utc), dtype=np.int64)
        for o in np.unique(self.offs):
            hits += self.local(local - o) == local
        return hits != 1

    def transitions(self, *, forward: bool) -> list[int]:
        """UTC instants at which the offset grows (spring forward) or shrinks (fall back)."""
        return [
            int(t)
            for t, a, b in zip(self.starts[1:], self.offs[:-1], self.offs[1:], strict=True)
            if (b > a) == forward
        ]

    def day_sod(self, utc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local day number (days since 1970-01-01) and second of the local day."""
        local = self.local(utc)
        day = local // _DAY
        return day, local - day * _DAY

    def next_open(self, utc: np.ndarray) -> np.ndarray:
        """First instant at or after ``utc`` inside business hours."""
        day, sod = self.day_sod(utc)
        bd = np.is_busday(day.astype("M8[D]"))
        inside = bd & (sod >= _BH_OPEN) & (sod < _BH_CLOSE)
        before = bd & (sod < _BH_OPEN)
        local = np.where(before, day * _DAY + _BH_OPEN, _next_busday(day) * _DAY + _BH_OPEN)
        return np.where(inside, utc, self.utc(local))

    def add_business(self, utc: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Earliest instant u with business time [utc, u) equal to ``seconds`` (≥ 0)."""
        day, sod = self.day_sod(self.next_open(utc))
        total = sod - _BH_OPEN + seconds
        k = total // _BDAY
        rem = total - k * _BDAY
        edge = (rem == 0) & (k > 0)  # ends exactly at 17:00, not at 09:00 next day
        k = k - edge
        rem = np.where(edge, _BDAY, rem)
        d2 = np.busday_offset(day.astype("M8[D]"), k).astype(np.int64)
        return self.utc(d2 * _DAY + _BH_OPEN + rem)

    def slot(self, utc: np.ndarray, duration: np.ndarray) -> np.ndarray:
        """Start of the first half-hour-aligned in-hours window of ``duration`` at/after ``utc``."""
        local = -(-self.local(utc) // 1800) * 1800
        day = local // _DAY
        sod = local - day * _DAY
        bd = np.is_busday(day.astype("M8[D]"))
        fits = bd & (sod >= _BH_OPEN) & (sod + duration <= _BH_CLOSE)
        before = bd & (sod < _BH_OPEN)
        start = np.where(
            fits,
            local,
            np.where(before, day * _DAY + _BH_OPEN, _next_busday(day) * _DAY + _BH_OPEN),
        )
        return self.utc(start)

    def evening(self, utc: np.ndarray, half_hours: np.ndarray) -> np.ndarray:
        """First after-hours window start (18:00 + ``half_hours``·30 min local) at/after ``utc``."""
        day, sod = self.day_sod(utc)
        start = day * _DAY + 18 * _HOUR + half_hours * 1800
        start = np.where(start < day * _DAY + sod, start + _DAY, start)
        return self.utc(start)


def _next_busday(day: np.ndarray) -> np.ndarray:
    """The first business day strictly after each local day number."""
    return np.busday_offset((day + 1).astype("M8[D]"), 0, roll="forward").astype(np.int64)


# --------------------------------------------------------------------------------------------
# Text building. A row is a sequence of constants and column "pieces"; a piece is either a list
# of strings or a pool of strings indexed by integer codes. Compiling folds each constant into
# the pooled piece before it (a suffixed copy of the pool) and merges adjacent small pools into
# their product, so a written row is the join of a handful of pieces and no cell is formatted
# on its own. Columns that bad rows edit stay separate pieces.
# --------------------------------------------------------------------------------------------

_FOLD_LIMIT = 250_000  # largest pool that gets suffixed copies
_PRODUCT_LIMIT = 16_384  # largest product of two pools that gets built


def _csv_quote(value: str) -> str:
    """Quote one CSV field the way :mod:`csv` does with ``QUOTE_MINIMAL``."""
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _xml_escape(value: str) -> str:
    """Escape text for an XML element's content."""
    if "&" in value or "<" in value or ">" in value:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


class _Pool:
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
        self._suffixed: dict[str, _Pool] = {}
        self._products: dict[int, tuple[_Pool, _Pool]] = {}

    def __len__(self) -> int:
        return len(self.values)

    def suffixed(self, suffix: str) -> _Pool:
        if not suffix:
            return self
        out = self._suffixed.get(suffix)
        if out is None:
            out = _Pool([v + suffix for v in self.values.tolist()], static=self.static)
            self._suffixed[suffix] = out
        return out

    def product(self, other: _Pool) -> _Pool:
        """Pool of ``a + b`` for a in self, b in other; code = code_a · len(other) + code_b."""
        hit = self._products.get(id(other))
        if hit is not None and hit[0] is other:
            return hit[1]
        right = other.values.tolist()
        out = _Pool(
            [a + b for a in self.values.tolist() for b in right],
            static=self.static and other.static,
        )
        if out.static:
            self._products[id(other)] = (other, out)
        return out


Piece = tuple[_Pool, np.ndarray] | list[str]


class _Rows:
    """Compiled rows: piece sequences joined row by row, and where editable columns lie."""

    def __init__(
        self, pieces: list[Sequence[str]], spans: dict[str, tuple[int, int, str]], n: int
    ) -> None:
        self.pieces = pieces
        self.spans = spans
        self.n = n

    def get(self, column: str, i: int) -> str:
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
        return "".join(map("".join, zip(*self.pieces, strict=False)))


class _Layout:
    """Builder of :class:`_Rows`: constants and named columns, in order."""

    def __init__(self) -> None:
        self.items: list[tuple[str | None, str | Piece]] = []  # (editable column, item)
        self.editable: list[str] = []

    def const(self, text: str) -> None:
        self.items.append((None, text))

    def column(self, name: str, pieces: list[Piece], *, editable: bool = False) -> None:
        if editable:
            self.editable.append(name)
        self.items.extend((name if editable else None, p) for p in pieces)

    def compile(self, n: int) -> _Rows:
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
        return _Rows(pieces, spans, n)


def _csv_rows(n: int, columns: Sequence[tuple[str, list[Piece]]], editable: Sequence[str]) -> _Rows:
    layout = _Layout()
    for k, (name, pieces) in enumerate(columns):
        layout.column(name, pieces, editable=name in editable)
        layout.const("," if k < len(columns) - 1 else "\n")
    return layout.compile(n)


def _strings(values: np.ndarray | list[str]) -> list[Piece]:
    return [values.tolist() if isinstance(values, np.ndarray) else values]


def _coded(pool: _Pool, codes: np.ndarray) -> list[Piece]:
    return [(pool, codes)]


def _objects(values: Iterable[str]) -> np.ndarray:
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _render(pieces: list[Piece]) -> list[str]:
    """The strings of one column given as pieces."""
    lists = [p[0].values[p[1]].tolist() if isinstance(p, tuple) else p for p in pieces]
    return list(map("".join, zip(*lists, strict=True)))


class _Formatter:
    """Static string pools for the timestamps and integers of one data set."""

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.day0 = int(clock.local(clock.starts[:1])[0]) // _DAY - 1
        days = int(clock.local(np.array([clock.hi]))[0]) // _DAY + 2 - self.day0
        self.days = days
        dates = np.datetime_as_string(np.arange(self.day0, self.day0 + days).astype("M8[D]"))
        dates = dates.tolist()
        hours = [f"{h:02d}:" for h in range(24)]
        self.date_hour = _Pool(
            [d + "T" + h for d in dates for h in hours]
            + [d + " " + h for d in dates for h in hours]
            + ["", "ASAP"]
        )
        self.min_sec = _Pool([f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)] + [""])
        self.offs = sorted({int(o) for o in clock.offs})
        self.suffix = _Pool([_offset_text(o) for o in self.offs] + [""])
        # 0–9999 unpadded, then 0000–9999 zero-padded (the low four digits of larger numbers).
        self.low = _Pool([str(i) for i in range(10_000)] + [f"{i:04d}" for i in range(10_000)])
        # Leading digits: of epoch seconds inside the clock's range (plus "" for 0), and of
        # small numbers such as ticket ids (grown on demand).
        self.epoch_hi0 = clock.lo // 10_000
        self.epoch_high = _Pool(
            [str(h) for h in range(self.epoch_hi0, clock.hi // 10_000 + 1)] + [""]
        )
        self.small_high = _Pool([""])

    def timestamp(
        self, utc: np.ndarray, naive: np.ndarray | None = None, asap: np.ndarray | None = None
    ) -> list[Piece]:
        """ISO-8601 pieces ``YYYY-MM-DDTHH:`` + ``MM:SS`` + ``±HH:MM``; ``_NA`` → empty.

        Rows where ``naive`` holds are written as naive local time ``YYYY-MM-DD HH:MM:SS``
        unless that wall-clock time is ambiguous or missing in the zone; rows where ``asap``
        holds are written ``ASAP``.
        """
        missing = utc == _NA
        u = np.where(missing, self.clock.starts[0], utc)
        off = self.clock.offset(u)
        local = u + off
        hour = local // _HOUR - self.day0 * 24
        slots = self.days * 24
        if naive is None:
            naive = np.zeros(len(utc), dtype=bool)
        else:
            naive = naive & ~self.clock.ambiguous_or_missing(u)
        hcode = np.where(missing, 2 * slots, hour + slots * naive)
        if asap is not None:
            hcode = np.where(asap, 2 * slots + 1, hcode)
            missing = missing | asap
        scode = np.where(missing | naive, len(self.offs), np.searchsorted(self.offs, off))
        return [
            (self.date_hour, hcode),
            (self.min_sec, np.where(missing, 3600, local % _HOUR)),
            (self.suffix, scode),
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
            self.small_high = _Pool([""] + [str(h) for h in range(1, int(hi.max()) + 1)])
        return [(self.small_high, hi), low]


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), _HOUR)
    return f"{sign}{hours:02d}:{rest // 60:02d}"


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------


class _World:
    """Everything fixed for one data set: time span, clock, accounts and people."""

    def __init__(
        self, rng: np.random.Generator, start: dt.date, end: dt.date, n_accounts: int
    ) -> None:
        epoch = dt.date(1970, 1, 1)
        self.start_day = (start - epoch).days
        self.end_day = (end - epoch).days
        self.end = end
        lo = (self.start_day - 400) * _DAY
        hi = (self.end_day + 400) * _DAY
        self.clock = _Clock(ZONE, lo, hi)
        self.fmt = _Formatter(self.clock)
        self.start_utc = int(self.clock.utc(np.array([self.start_day * _DAY]))[0])
        self.as_of = int(self.clock.utc(np.array([self.end_day * _DAY]))[0])

        # People: [person of record of each account, second contact of each account,
        # three technicians per reseller]; accounts point into this table.
        a = n_accounts
        numbers = 10_000 + rng.choice(max(90_000, 2 * a), size=a, replace=False)
        sites = 100 + rng.choice(max(9_000, 3 * a), size=a, replace=False)
        city = rng.integers(0, len(_CITIES), a)
        self.acct_reseller = np.where(
            rng.random(a) < 0.4, rng.integers(0, len(_RESELLERS), a), -1
        ).astype(np.int64)
        self.acct_por = np.arange(a, dtype=np.int64)
        self.acct_alt = np.arange(a, 2 * a, dtype=np.int64)
        self.reseller_tech = np.arange(2 * a, 2 * a + 3 * len(_RESELLERS), dtype=np.int64)
        n_people = 2 * a + 3 * len(_RESELLERS)
        first = rng.integers(0, len(_FIRST), n_people)
        last = rng.integers(0, len(_LAST), n_people)
        names = [f"{_FIRST[f]} {_LAST[s]}" for f, s in zip(first, last, strict=True)]
        domains = [
            f"site{s}-{_CITIES[c][0].lower().replace(' ', '').replace('.', '')}.example.com"
            for s, c in zip(sites, city, strict=True)
        ]
        domains = domains + domains + [r[1] for r in _RESELLERS for _ in range(3)]
        area = [_CITIES[c][1] for c in city]
        area = area + area + [r[2] for r in _RESELLERS for _ in range(3)]
        line = rng.integers(100, 200, n_people)
        emails = [
            f"{_FIRST[f][0].lower()}{_LAST[s].lower().replace(chr(39), '')}@{d}"
            for f, s, d in zip(first, last, domains, strict=True)
        ]
        self.person_name = names
        self.person_csv = _Pool([*names, ""], _csv_quote)  # the last entry is blank
        self.person_xml = _Pool(names, _xml_escape)
        self.person_email_csv = _Pool(emails, _csv_quote)
        self.person_email_xml = _Pool(emails, _xml_escape)
        self.person_phone_csv = _Pool(
            [*(f"({ac}) 555-{ln:04d}" for ac, ln in zip(area, line, strict=True)), ""], _csv_quote
        )
        accounts = [f"ACCT-{n}" for n in numbers]
        self.account = accounts
        self.account_csv = _Pool(accounts, _csv_quote)
        self.account_xml = _Pool(accounts, _xml_escape)
        self.site_number = sites
        self.city = city
        self.site_csv = _Pool(
            [*(f"Site {s} – {_CITIES[c][0]}" for s, c in zip(sites, city, strict=True)), ""],
            _csv_quote,
        )
        self.reseller_csv = _Pool([r[0] for r in _RESELLERS] + [""], _csv_quote)  # code -1 → ""

        # Shared small pools.
        self.small = _Pool([str(i) for i in range(100)])
        self.creator_csv = _Pool(("staff", "user"))
        self.yes_no = _Pool(("no", "yes"))
        self.requester_type_csv = _Pool(("site", "reseller"))
        self.channels_csv = _Pool(_CHANNELS)
        self.reasons_csv = _Pool(_REASONS)
        self.waiver_csv = _Pool(("", *_WAIVER_REASONS), _csv_quote)
        self.action_csv = _Pool(("updated",))
        self.to = _Pool((" to ",))
        self.dept_csv = _Pool(_DEPTS, _csv_quote)
        self.status_csv = _Pool(_STATUSES, _csv_quote)
        self.staff_csv = _Pool(("", *_STAFF), _csv_quote)
        self.staff_xml = _Pool(("", *_STAFF), _xml_escape)
        # Event values: "" | departments | statuses | staff.
        self.value_pool = _Pool(("", *_DEPTS, *_STATUSES, *_STAFF), _csv_quote)
        # The same values as Kayako's audit log writes them ("no owner" is spelled out).
        self.value_audit = _Pool((KAYAKO_UNASSIGNED, *_DEPTS, *_STATUSES, *_STAFF), _csv_quote)
        self.field_pool = _Pool(("department", "status", "owner"), _csv_quote)
        self.field_msg = _Pool(
            ("Department changed from ", "Status changed from ", "Owner changed from "), _csv_quote
        )
        other_subjects = [s for dept in _OTHER_SUBJECTS for s, _ in dept]
        other_tags = [t for dept in _OTHER_SUBJECTS for _, t in dept]
        self.other_subject_csv = _Pool(other_subjects, _csv_quote)
        self.other_subject_xml = _Pool(other_subjects, _xml_escape)
        self.other_tags_csv = _Pool([*other_tags, ""], _csv_quote)
        self.other_tags_xml = _Pool([t.replace(",", " ") for t in other_tags] + [""], _xml_escape)
        sizes = [len(d) for d in _OTHER_SUBJECTS]
        self.other_subject_base = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self.other_subject_size = np.array(sizes, dtype=np.int64)

    def arrivals(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sorted ticket-creation instants weighted to business hours (epoch seconds)."""
        days = np.arange(self.start_day, self.end_day, dtype=np.int64)
        weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        hour = np.arange(24)
        weekday_hours = np.array(
            [0.06] * 6
            + [0.15, 0.45, 1.0, 1.6, 1.7, 1.6, 1.1, 1.4, 1.45, 1.35, 1.15]
            + [0.6, 0.35, 0.3, 0.25, 0.15, 0.1, 0.07]
        )
        weekend_hours = np.where((hour >= 9) & (hour < 18), 0.25, 0.06)
        day_factor = np.array([1.3, 1.1, 1.0, 1.0, 0.9, 1.0, 1.0])[weekday]
        holidays = set(_us_holidays(range(days[0] // 365 + 1969, days[-1] // 365 + 1971)))
        day_factor = day_factor * np.array([0.25 if int(d) in holidays else 1.0 for d in days])
        w = np.where((weekday < 5)[:, None], weekday_hours[None, :], weekend_hours[None, :])
        w = w * day_factor[:, None]
        monday_morning = (weekday == 0)[:, None] & ((hour >= 8) & (hour < 12))[None, :]
        w = np.where(monday_morning, w * 1.5, w)
        friday_afternoon = (weekday == 4)[:, None] & (hour >= 14)[None, :]
        w = np.where(friday_afternoon, w * 0.8, w).ravel()
        slot = rng.choice(len(w), size=n, p=w / w.sum())
        local = (days[slot // 24] * 24 + slot % 24) * _HOUR + rng.integers(0, _HOUR, n)
        utc = self.clock.utc(local)
        return np.sort(np.clip(utc, self.start_utc, self.as_of - 1))


def _us_holidays(years: Iterable[int]) -> list[int]:
    """Day numbers of the US holidays on which a help desk is nearly idle."""
    out = []
    for y in years:

        def nth(month: int, weekday: int, n: int, y: int = y) -> dt.date:
            first = dt.date(y, month, 1)
            d = first + dt.timedelta(days=(weekday - first.weekday()) % 7)
            if n < 0:
                while (d + dt.timedelta(days=7)).month == month:
                    d += dt.timedelta(days=7)
                return d
            return d + dt.timedelta(days=7 * (n - 1))

        thanksgiving = nth(11, 3, 4)
        dates = [
            dt.date(y, 1, 1),
            nth(5, 0, -1),
            dt.date(y, 7, 4),
            nth(9, 0, 1),
            thanksgiving,
            thanksgiving + dt.timedelta(days=1),
            dt.date(y, 12, 24),
            dt.date(y, 12, 25),
        ]
        out += [(d - dt.date(1970, 1, 1)).days for d in dates]
    return out


def _pick(rng: np.random.Generator, n: int, p: Sequence[float]) -> np.ndarray:
    return rng.choice(len(p), size=n, p=np.asarray(p) / np.sum(p)).astype(np.int64)


def _pick_from(rng: np.random.Generator, values: np.ndarray, n: int) -> np.ndarray:
    return values[rng.integers(0, len(values), n)]


@dataclass
class _Events:
    """Ticket events of one chunk as parallel arrays (values coded into ``_World.value_pool``)."""

    pos: list[np.ndarray]
    at: list[np.ndarray]
    field: list[np.ndarray]
    old: list[np.ndarray]
    new: list[np.ndarray]
    actor: list[np.ndarray]
    dept: list[np.ndarray]

    @classmethod
    def empty(cls) -> _Events:
        return cls([], [], [], [], [], [], [])

    def add(
        self,
        mask: np.ndarray,
        pos: np.ndarray,
        at: np.ndarray,
        field: int,
        old: np.ndarray,
        new: np.ndarray,
        actor: np.ndarray,
        dept: np.ndarray,
    ) -> None:
        """Record the events where ``mask`` holds; old/new/dept are raw codes for ``field``."""
        # Codes into ("", *departments, *statuses, *staff): an owner's code is its staff id.
        base = (1, 1 + len(_DEPTS), len(_DEPTS) + len(_STATUSES))[field]
        old = np.where((field == 2) & (old == 0), 0, old + base)
        new = np.where((field == 2) & (new == 0), 0, new + base)
        for lst, arr in (
            (self.pos, pos),
            (self.at, at),
            (self.old, old),
            (self.new, new),
            (self.actor, actor),
            (self.dept, dept),
        ):
            lst.append(np.broadcast_to(arr, mask.shape)[mask])
        self.field.append(np.full(int(mask.sum()), field, dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        cols = {
            k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)).astype(np.int64)
            for k, v in vars(self).items()
        }
        order = np.lexsort((cols["pos"], cols["at"]))
        return {k: v[order] for k, v in cols.items()}


def _requests(
    w: _World, rng: np.random.Generator, created: np.ndarray, pos: np.ndarray, ev: _Events
) -> dict[str, np.ndarray]:
    """Lifecycle of the IP change requests of one chunk (vectorised)."""
    r = len(created)
    ck = w.clock
    as_of = w.as_of

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.integers(int(lo), int(hi), r)

    # Who asked, through which channel.
    user = rng.random(r) < 0.30
    channel = np.where(
        user, _CUSTOMER, np.array([_PHONE, _EMAIL, _CHAT])[_pick(rng, r, [62, 25, 13])]
    )
    acct = rng.integers(0, len(w.account), r)
    res = w.acct_reseller[acct]
    via_reseller = (res >= 0) & (rng.random(r) < 0.7)
    contact = np.where(
        via_reseller,
        w.reseller_tech[np.maximum(res, 0) * 3 + u(0, 3)],
        np.where(rng.random(r) < 0.55, w.acct_por[acct], w.acct_alt[acct]),
    )
    agent = _pick_from(rng, _AGENT_IDS, r)

    # When the company learned of it: the call/e-mail precedes the agent's ticket.
    received = np.where(
        channel == _EMAIL,
        created - np.where(rng.random(r) < 0.6, u(120, 2700), u(3600, 14 * 3600)),
        created - u(60, 600),
    )
    late_intake = user & (rng.random(r) < 0.15)
    received = np.where(user, np.where(late_intake, created + u(300, 7200), created), received)
    received = np.maximum(received, w.start_utc)  # nothing before the covered period
    recv = np.minimum(received, created)  # SPEC 2.1 received_at

    # The ticket as created (steps 1–2 of the procedure, with a few agent mistakes).
    mistake = np.where(user, 0, _pick(rng, r, [88, 4, 5, 3]))  # ok, wrong dept, assigned, Open
    dept0 = np.where(
        user, _CS, np.where(mistake == 1, np.where(rng.random(r) < 0.7, _TS, _CS), _IMPL)
    )
    status0 = np.where(mistake == 3, _OPEN, _NEW)
    owner0 = np.where(
        mistake == 2, np.where(rng.random(r) < 0.5, agent, _pick_from(rng, _ENGINEER_IDS, r)), 0
    )

    # Routing to Implementation: fast, next business day, days later, never.
    needs_route = dept0 != _IMPL
    route_kind = np.where(user, _pick(rng, r, [64, 22, 8, 6]), _pick(rng, r, [50, 50, 0, 0]))
    day, _ = ck.day_sod(created)
    fast = ck.add_business(created, u(2 * _MIN, 55 * _MIN))
    later_day = np.busday_offset(
        (day + 1).astype("M8[D]"), np.where(route_kind == 2, u(1, 4), 0), roll="forward"
    ).astype(np.int64)
    later = ck.utc(later_day * _DAY + _BH_OPEN + u(0, _BDAY - _HOUR))
    routed = np.where(needs_route, np.where(route_kind == 0, fast, later), created)
    routed_ok = (~needs_route | (route_kind != 3)) & (routed <= as_of)
    router = np.where(user, _pick_from(rng, _CS_IDS, r), agent)
    dept_now = np.where(routed_ok, _IMPL, dept0)
    ev.add(
        needs_route & routed_ok, pos, routed, 0, dept0, np.full(r, _IMPL), router, np.full(r, _IMPL)
    )

    has_intake = np.where(user, routed_ok, rng.random(r) >= 0.01)

    # What they asked for.
    reason = _pick(rng, r, [55, 25, 12, 8])
    req_kind = _pick(rng, r, [81.5, 5, 3, 2, 8, 0.5])  # std, ASAP, blank, before, short, 48 h
    std, asap, blank, before, short_ts, exact = (req_kind == k for k in range(6))
    base = recv + 48 * _HOUR
    bday, _ = ck.day_sod(base)
    lead = np.minimum(rng.geometric(0.3, r) - 1, 15)
    target_day = np.busday_offset(bday.astype("M8[D]"), lead, roll="forward").astype(np.int64)
    out_of_hours = rng.random(r) < 0.06
    tod = np.where(
        out_of_hours,
        np.array([6, 7, 18, 19, 20, 21])[u(0, 6)] * _HOUR,
        _BH_OPEN + 1800 * u(0, 16),
    )
    req_std = ck.utc(target_day * _DAY + tod)
    req_std = np.where(req_std < base, ck.utc(_next_busday(target_day) * _DAY + tod), req_std)
    requested = np.select(
        [std, before, short_ts, exact],
        [
            req_std,
            (recv - u(_HOUR, 72 * _HOUR)) // 900 * 900,
            -(-(recv + u(30 * _MIN, 46 * _HOUR)) // 900) * 900,
            base,
        ],
        _NA,
    )
    # The instant the customer actually wants (ASAP and "already changed" mean now).
    wanted = np.where(asap | before, recv, requested)
    short = asap | before | short_ts
    known = ~blank

    # Implementation: confirm, schedule, sign-off, do (or cancel).
    has_change = routed_ok & (rng.random(r) >= 0.005)
    delay = np.select(
        [rng.random(r) < 0.8, rng.random(r) < 0.6],
        [np.minimum(rng.exponential(1.5 * _HOUR, r), 7.5 * _HOUR), u(2 * _HOUR, 7.9 * _HOUR)],
        u(8.2 * _HOUR, 24 * _HOUR),
    ).astype(np.int64)
    confirmed = ck.add_business(routed, delay)
    engineer = _pick_from(rng, _ENGINEER_IDS, r)
    duration = np.array([1800, 3600, 7200])[_pick(rng, r, [60, 30, 10])]
    earliest = confirmed + u(15 * _MIN, 2 * _HOUR)
    standard_slot = short & (rng.random(r) < 0.18)  # customer declines the expedite
    target = np.where(
        short,
        np.where(standard_slot, base + u(0, 6 * _HOUR), np.maximum(wanted, earliest)),
        np.where(
            known,
            np.maximum(wanted, earliest),
            ck.add_business(confirmed, u(4 * _HOUR, 24 * _HOUR)),
        ),
    )
    start = ck.slot(target, duration)
    # An expedite the requested time cannot serve inside 48 h gets the first possible slot.
    start = np.where(short & ~standard_slot & (start >= base), ck.slot(earliest, duration), start)
    backlog = ~short & (rng.random(r) < 0.05)
    start_day, start_sod = ck.day_sod(start)
    pushed = np.busday_offset(start_day.astype("M8[D]"), u(1, 4)).astype(np.int64)
    start = np.where(backlog, ck.utc(pushed * _DAY + start_sod), start)
    expedite = short & ~standard_slot
    honour_window = std & out_of_hours & (rng.random(r) < 0.5) & (requested >= earliest)
    after_hours = (expedite & (rng.random(r) < 0.15)) | honour_window | (rng.random(r) < 0.02)
    start = np.where(
        after_hours,
        np.where(honour_window, requested, ck.evening(np.maximum(target, earliest), u(0, 6))),
        start,
    )
    end = start + duration
    approved = after_hours & (rng.random(r) < 0.6)

    # Fees: person of record, someone else, unsigned, waived (SPEC 2.1 fee status).
    fee_kind = np.where(expedite, _pick(rng, r, [68, 8, 12, 12]), -1)
    signed = (fee_kind == 0) | (fee_kind == 1)
    fee_at = np.minimum(confirmed + u(_MIN, _HOUR), np.maximum(start - 300, confirmed))
    fee_at_ok = signed & (fee_at <= as_of)
    other_signer = np.where(contact != w.acct_por[acct], contact, w.acct_alt[acct])
    waived = fee_kind == 3

    # Cancellations, before or after confirmation.
    cancel = rng.random(r) < 0.05
    cancel_early = cancel & (rng.random(r) < 0.4)
    cancelled = np.where(
        cancel_early,
        routed + ((confirmed - routed) * rng.uniform(0.2, 0.9, r)).astype(np.int64),
        confirmed + ((start - confirmed) * rng.uniform(0.1, 0.9, r)).astype(np.int64),
    )
    cancel_ok = has_change & cancel & (cancelled <= as_of)
    confirmed_ok = has_change & (confirmed <= as_of) & ~(cancel_ok & cancel_early)
    done = confirmed_ok & ~cancel_ok & (end + 25 * _MIN <= as_of) & (rng.random(r) >= 0.01)
    completed = np.maximum(end + u(-10 * _MIN, 25 * _MIN), start + 5 * _MIN)
    no_window = done & ~after_hours & (rng.random(r) < 0.03)
    change_row = cancel_ok | confirmed_ok

    # Ticket events after routing: take it, work it, close it.
    take = confirmed_ok & (confirmed + 300 <= as_of)
    ev.add(
        take & (owner0 != engineer), pos, confirmed + 300, 2, owner0, engineer, engineer, dept_now
    )
    ev.add(take, pos, confirmed + 300, 1, status0, np.full(r, _INPROG), engineer, dept_now)
    close_at = np.where(
        cancel_ok, cancelled + u(_MIN, 30 * _MIN), completed + u(5 * _MIN, 2 * _HOUR)
    )
    close_at = np.where(take, np.maximum(close_at, confirmed + 360), close_at)
    closed = (cancel_ok | done) & (close_at <= as_of)
    status_before_close = np.where(take, _INPROG, status0)
    ev.add(closed, pos, close_at, 1, status_before_close, np.full(r, _CLOSED), engineer, dept_now)
    status = np.where(closed, _CLOSED, status_before_close)
    owner = np.where(take, engineer, owner0)
    last = np.max(
        np.stack(
            [
                created,
                np.where(routed_ok, routed, 0),
                np.where(take, confirmed + 300, 0),
                np.where(closed, close_at, 0),
                np.where(fee_at_ok & confirmed_ok, fee_at, 0),
            ]
        ),
        axis=0,
    )

    na = np.full(r, _NA)
    return {
        "user": user,
        "agent": agent,
        "router": router,
        "channel": channel,
        "acct": acct,
        "via_reseller": via_reseller,
        "contact": contact,
        "received": received,
        "dept": dept_now,
        "status": status,
        "owner": owner,
        "last": last,
        "has_intake": has_intake,
        "reason": reason,
        "requested": requested,
        "asap": asap,
        "short": short,
        "change_row": change_row,
        "confirmed": np.where(confirmed_ok, confirmed, na),
        "start": np.where(confirmed_ok & ~no_window, start, na),
        "end": np.where(confirmed_ok & ~no_window, end, na),
        "completed": np.where(done, completed, na),
        "cancelled": np.where(cancel_ok, cancelled, na),
        "engineer": engineer,
        "fee_kind": np.where(confirmed_ok, fee_kind, -1),
        "fee_at": np.where(fee_at_ok & confirmed_ok, fee_at, na),
        "other_signer": other_signer,
        "waived": waived & confirmed_ok,
        "after_hours_approved": approved & confirmed_ok,
        "billable_like": confirmed_ok & done & (fee_kind == 0) & (start < base),
    }


def _others(
    w: _World, rng: np.random.Generator, created: np.ndarray, pos: np.ndarray, ev: _Events
) -> dict[str, np.ndarray]:
    """Lifecycle of the ordinary help-desk tickets of one chunk (vectorised)."""
    n = len(created)
    ck = w.clock
    as_of = w.as_of

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.integers(int(lo), int(hi), n)

    user = rng.random(n) < 0.5
    dept0 = np.array([_TS, _CS, _BILL, _IMPL])[_pick(rng, n, [50, 30, 15, 5])]
    transfer = rng.random(n) < 0.12
    dept1 = np.where(
        transfer,
        np.select(
            [dept0 == _CS, dept0 == _TS, dept0 == _BILL],
            [np.where(rng.random(n) < 0.7, _TS, _BILL), _BILL, _CS],
            _TS,
        ),
        dept0,
    )
    transfer_at = ck.add_business(created, u(5 * _MIN, 4 * _HOUR))
    t_ok = transfer & (transfer_at <= as_of)
    first = ck.add_business(
        np.where(transfer, transfer_at, created),
        np.minimum(rng.exponential(1.2 * _HOUR, n), 16 * _HOUR).astype(np.int64) + 60,
    )
    creator_staff = np.empty(n, dtype=np.int64)
    for d in range(4):
        m = dept0 == d
        creator_staff[m] = _pick_from(rng, _DEPT_STAFF[d], int(m.sum()))
    handler = np.empty(n, dtype=np.int64)
    for d in range(4):
        m = dept1 == d
        handler[m] = _pick_from(rng, _DEPT_STAFF[d], int(m.sum()))
    owner0 = np.where(~user & (rng.random(n) < 0.3), creator_staff, 0)
    # Whoever created it usually keeps it, unless it moves to another department.
    handler = np.where((owner0 > 0) & ~transfer & (rng.random(n) < 0.8), owner0, handler)

    ev.add(t_ok, pos, transfer_at, 0, dept0, dept1, creator_staff, dept1)
    dept = np.where(t_ok, dept1, dept0)
    f_ok = (~transfer | t_ok) & (first <= as_of)
    ev.add(f_ok & (owner0 != handler), pos, first, 2, owner0, handler, handler, dept)
    ev.add(f_ok, pos, first + 30, 1, np.full(n, _NEW), np.full(n, _OPEN), handler, dept)
    status = np.where(f_ok, _OPEN, _NEW)
    owner = np.where(f_ok, handler, owner0)

    hold = f_ok & (rng.random(n) < 0.10)
    hold_at = first + u(_HOUR, 24 * _HOUR)
    back_at = hold_at + u(4 * _HOUR, 72 * _HOUR)
    h1 = hold & (hold_at <= as_of)
    h2 = h1 & (back_at <= as_of)
    ev.add(h1, pos, hold_at, 1, np.full(n, _OPEN), np.full(n, _HOLD), handler, dept)
    ev.add(h2, pos, back_at, 1, np.full(n, _HOLD), np.full(n, _OPEN), handler, dept)
    status = np.where(h1 & ~h2, _HOLD, status)
    resume = np.where(h2, back_at, first)

    close = f_ok & ~(h1 & ~h2) & (rng.random(n) < 0.85)
    close_at = resume + (rng.exponential(20 * _HOUR, n)).astype(np.int64) + 600
    c_ok = close & (close_at <= as_of)
    ev.add(c_ok, pos, close_at, 1, np.full(n, _OPEN), np.full(n, _CLOSED), handler, dept)
    status = np.where(c_ok, _CLOSED, status)

    last = np.max(
        np.stack(
            [
                created,
                np.where(t_ok, transfer_at, 0),
                np.where(f_ok, first + 30, 0),
                np.where(h1, hold_at, 0),
                np.where(h2, back_at, 0),
                np.where(c_ok, close_at, 0),
            ]
        ),
        axis=0,
    )
    acct = rng.integers(0, len(w.account), n)
    requester = np.where(rng.random(n) < 0.5, w.acct_por[acct], w.acct_alt[acct])
    subject = w.other_subject_base[dept0] + (rng.random(n) * w.other_subject_size[dept0]).astype(
        np.int64
    )
    tags = np.where(rng.random(n) < 0.4, len(w.other_tags_csv) - 1, subject)
    return {
        "user": user,
        "dept": dept,
        "status": status,
        "owner": owner,
        "last": last,
        "acct": acct,
        "requester": requester,
        "subject": subject,
        "tags": tags,
        "task": rng.random(n) < 0.2,
    }


# --------------------------------------------------------------------------------------------
# Ticket ids, addresses, names typed by hand
# --------------------------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MASK_SPACE = 26**3 * 900 * 90_000
_MASK_STEP = 982_451_653  # a prime: i → (i·step + offset) mod space is a bijection
_MASK_L = np.array(
    [a + b + c + "-" for a in _LETTERS for b in _LETTERS for c in _LETTERS], dtype=object
)
_MASK_M = np.array([f"{i}-" for i in range(100, 1000)], dtype=object)
_MASK_R = np.array([str(i) for i in range(10_000, 100_000)], dtype=object)
_SMALL_OCTETS = np.array([str(i) for i in range(256)], dtype=object)
_DOT_OCTETS = np.array([f".{i}" for i in range(256)], dtype=object)


def _mask_ids(gidx: np.ndarray, offset: int) -> list[str]:
    """Unique Kayako mask ids (``ABC-123-45678``) of global ticket indices."""
    code = (gidx.astype(np.int64) * _MASK_STEP + offset) % _MASK_SPACE
    parts = (
        _MASK_L[code % 17_576].tolist(),
        _MASK_M[(code // 17_576) % 900].tolist(),
        _MASK_R[code // (17_576 * 900)].tolist(),
    )
    return list(map("".join, zip(*parts, strict=True)))


def _ips(rng: np.random.Generator, n: int, v6: np.ndarray) -> list[str]:
    """Plausible public addresses: IPv4 from ISP blocks, IPv6 where ``v6``."""
    o = rng.integers(0, 256, (4, n))
    o[0] = _ISP_FIRST_OCTETS[rng.integers(0, len(_ISP_FIRST_OCTETS), n)]
    o[3] = rng.integers(1, 255, n)
    pieces = (_SMALL_OCTETS[o[0]], _DOT_OCTETS[o[1]], _DOT_OCTETS[o[2]], _DOT_OCTETS[o[3]])
    out = list(map("".join, zip(*(p.tolist() for p in pieces), strict=True)))
    h = rng.integers(0, 65_536, (4, n))
    for i in np.flatnonzero(v6).tolist():
        out[i] = "2600:{:x}:{:x}:{:x}::{:x}".format(*h[:, i].tolist())
    return out


def _typed(name: str, how: int) -> str:
    """A person's name as someone typed it (SPEC 2.1: case and spaces do not matter)."""
    if how == 1:
        return name.lower()
    if how == 2:
        return name.upper()
    if how == 3:
        return name.replace(" ", "  ", 1)
    if how == 4:
        return name + " "
    if how == 5:
        return " " + name
    return name


def _months_before(end: dt.date, months: int) -> dt.date:
    y, m = divmod(end.year * 12 + end.month - 1 - months, 12)
    m += 1
    last = (dt.date(y + m // 12, m % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(y, m, min(end.day, last))


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


@dataclass
class _Chunk:
    """One chunk's output before writing: compiled rows per file, and row metadata."""

    rows: dict[str, _Rows]
    eligible: dict[tuple[str, str], np.ndarray]  # (file, key) → row indices
    intake_row_of_ticket: dict[int, int]
    scheduled_start: np.ndarray  # per changes row


class _BadRows:
    """Places the planned bad rows into chunks and records where they went."""

    def __init__(
        self, w: _World, rng: np.random.Generator, chunk_sizes: list[int], orphans: list[str]
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

    def apply(self, c: int, ch: _Chunk, before: Mapping[str, int], *, last: bool) -> None:
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

    def _choose(self, ch: _Chunk, used: dict[str, set[int]], file: str, key: str) -> int | None:
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
        ch: _Chunk,
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
            ch.rows[KAYAKO_XML].set("subject", i, _xml_escape(value))
        elif kind == "formula_account":
            value = FORMULA_ACCOUNT
            ch.rows[KAYAKO_XML].set("userorganization", i, _xml_escape(value))
            j = ch.intake_row_of_ticket[i]
            used[INTAKE_CSV].add(j)
            ch.rows[INTAKE_CSV].set("account", j, _csv_quote(value))
            self._record(INTAKE_CSV, before[INTAKE_CSV] + j + 1, "account", kind, value, tid)
        elif kind == "end_before_start":
            start = ch.scheduled_start[i : i + 1]
            value = _render(self.w.fmt.timestamp(start - _HOUR))[0]
        else:
            value = self.values[kind]
        ch.rows[file].set(column, i, _csv_quote(value))
        self._record(file, before[file] + i + 1, column, kind, value, tid)
        return True

    def _append(
        self, ch: _Chunk, before: Mapping[str, int], used: dict[str, set[int]], kind: str, file: str
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
# --------------------------------------------------------------------------------------------


def _request_texts(
    w: _World, rng: np.random.Generator, rq: dict[str, np.ndarray]
) -> tuple[list[str], list[list[str]]]:
    """Subjects and tags of the requests, varied as agents and customers write them."""
    r = len(rq["acct"])
    site = w.site_number[rq["acct"]].tolist()
    city = w.city[rq["acct"]].tolist()
    res = w.acct_reseller[rq["acct"]].tolist()
    tmpl = rng.integers(0, 1000, r).tolist()
    bits = rng.random((r, 5)).tolist()
    users = rq["user"].tolist()
    via = rq["via_reseller"].tolist()
    isp = (rq["reason"] == 0).tolist()
    short = rq["short"].tolist()
    subjects, tags = [], []
    for k in range(r):
        if users[k]:
            t = _USER_SUBJECTS[tmpl[k] % len(_USER_SUBJECTS)]
        else:
            t = _AGENT_SUBJECTS[tmpl[k] % len(_AGENT_SUBJECTS)]
            if "{reseller}" in t and not via[k]:
                t = _AGENT_SUBJECTS[0]
        subjects.append(
            t.format(
                site=site[k],
                city=_CITIES[city[k]][0],
                acct=w.account[rq["acct"][k]],
                reseller=_RESELLERS[res[k]][0] if res[k] >= 0 else "",
            )
        )
        b = bits[k]
        tag = []
        if b[0] < (0.15 if users[k] else 0.5):
            tag.append("ip-change")
        if b[1] < 0.3:
            tag.append("cloud")
        if via[k] and b[2] < 0.5:
            tag.append("reseller")
        if isp[k] and b[3] < 0.25:
            tag.append("isp")
        if short[k] and b[4] < 0.4:
            tag.append("urgent")
        tags.append(tag)
    return subjects, tags


def _build_chunk(
    w: _World,
    rng: np.random.Generator,
    gidx: np.ndarray,
    created: np.ndarray,
    is_req: np.ndarray,
    mask_offset: int,
) -> _Chunk:
    m = len(gidx)
    fmt = w.fmt
    req_pos = np.flatnonzero(is_req)
    oth_pos = np.flatnonzero(~is_req)
    ev = _Events.empty()
    rq = _requests(w, rng, created[req_pos], req_pos, ev)
    ot = _others(w, rng, created[oth_pos], oth_pos, ev)
    r = len(req_pos)

    def merge(req: np.ndarray, oth: np.ndarray) -> np.ndarray:
        out = np.empty(m, dtype=np.result_type(req, oth))
        out[req_pos] = req
        out[oth_pos] = oth
        return out

    tid = _Pool(_mask_ids(gidx, mask_offset), static=False)
    kid = _Pool(_render(fmt.integer(10_000 + gidx.astype(np.int64))), static=False)
    user = merge(rq["user"], ot["user"])
    dept = merge(rq["dept"], ot["dept"])
    status = merge(rq["status"], ot["status"])
    owner = merge(rq["owner"], ot["owner"])
    acct = merge(rq["acct"], ot["acct"])
    requester = merge(rq["contact"], ot["requester"])
    last = merge(rq["last"], ot["last"])
    updated = np.maximum(last, np.minimum(last + rng.integers(0, 2 * _HOUR, m), w.as_of))
    typeid = merge(
        np.where(rng.random(r) < np.where(rq["user"], 0.3, 0.85), 3, 1),
        np.where(ot["task"], 2, 1),
    )
    # Ordinary tickets use pooled (pre-quoted) subjects and tags; requests are quoted here.
    subjects, tags = _request_texts(w, rng, rq)
    subject_csv = merge(
        _objects(map(_csv_quote, subjects)), w.other_subject_csv.values[ot["subject"]]
    )
    subject_xml = merge(
        _objects(map(_xml_escape, subjects)), w.other_subject_xml.values[ot["subject"]]
    )
    tags_csv = merge(
        _objects(_csv_quote(",".join(t)) for t in tags), w.other_tags_csv.values[ot["tags"]]
    )
    tags_xml = merge(
        _objects(_xml_escape(" ".join(t)) for t in tags), w.other_tags_xml.values[ot["tags"]]
    )
    every = np.arange(m)

    rows: dict[str, _Rows] = {}
    rows[TICKETS_CSV] = _csv_rows(
        m,
        [
            ("ticket_id", _coded(tid, every)),
            ("subject", _strings(subject_csv)),
            ("department", _coded(w.dept_csv, dept)),
            ("status", _coded(w.status_csv, status)),
            ("owner", _coded(w.staff_csv, owner)),
            ("creator", _coded(w.creator_csv, user.astype(np.int64))),
            ("account", _coded(w.account_csv, acct)),
            ("requester_name", _coded(w.person_csv, requester)),
            ("requester_email", _coded(w.person_email_csv, requester)),
            ("created_at", fmt.timestamp(created)),
            ("updated_at", fmt.timestamp(updated)),
            ("tags", _strings(tags_csv)),
        ],
        ("ticket_id", "subject", "account"),
    )

    # Kayako ListAll XML, one <ticket> per line.
    x = _Layout()
    x.const('<ticket id="')
    x.column("id", [(kid, every)])
    x.const('" flagtype="0">')
    staff_reply = np.where(user & (status == _NEW) & (owner == 0), 0, updated)
    elements: list[tuple[str, list[Piece] | str]] = [
        ("displayid", _coded(tid, every)),
        ("departmentid", _coded(w.small, _DEPT_KAYAKO_ID[dept])),
        ("statusid", _coded(w.small, status + 1)),
        ("priorityid", "1"),
        ("typeid", _coded(w.small, typeid)),
        ("userorganization", _coded(w.account_xml, acct)),
        ("ownerstaffid", _coded(w.small, owner)),
        ("ownerstaffname", _coded(w.staff_xml, owner)),
        ("fullname", _coded(w.person_xml, requester)),
        ("email", _coded(w.person_email_xml, requester)),
        ("subject", _strings(subject_xml)),
        ("creationtime", fmt.integer(created)),
        ("lastactivity", fmt.integer(updated)),
        ("laststaffreply", fmt.integer(staff_reply)),
        ("lastuserreply", fmt.integer(np.where(user, created, 0))),
        ("nextreplydue", "0"),
        ("resolutiondue", "0"),
        ("creator", _coded(w.small, np.where(user, 2, 1))),
        ("tags", _strings(tags_xml)),
    ]
    for name, value in elements:
        x.const(f"<{name}>")
        if isinstance(value, str):
            x.const(value)
        else:
            x.column(name, value, editable=name in ("subject", "userorganization"))
        x.const(f"</{name}>")
    x.const("</ticket>\n")
    rows[KAYAKO_XML] = x.compile(m)

    # Ticket events, and the Kayako audit log of the same changes.
    e = ev.arrays()
    epos = e["pos"]
    ne = len(epos)
    rows[EVENTS_CSV] = _csv_rows(
        ne,
        [
            ("ticket_id", _coded(tid, epos)),
            ("at", fmt.timestamp(e["at"])),
            ("field", _coded(w.field_pool, e["field"])),
            ("old_value", _coded(w.value_pool, e["old"])),
            ("new_value", _coded(w.value_pool, e["new"])),
            ("actor", _coded(w.staff_csv, e["actor"])),
        ],
        ("ticket_id", "at"),
    )
    rows[KAYAKO_AUDIT_CSV] = _csv_rows(
        ne,
        [
            ("ticketid", _coded(kid, epos)),
            ("ticketmaskid", _coded(tid, epos)),
            ("dateline", fmt.integer(e["at"])),
            ("departmenttitle", _coded(w.dept_csv, e["dept"])),
            ("actiontype", _coded(w.action_csv, np.zeros(ne, dtype=np.int64))),
            (
                "actionmsg",
                [
                    (w.field_msg, e["field"]),
                    (w.value_audit, e["old"]),
                    (w.to, np.zeros(ne, dtype=np.int64)),
                    (w.value_audit, e["new"]),
                ],
            ),
            ("oldvaluestring", _coded(w.value_audit, e["old"])),
            ("newvaluestring", _coded(w.value_audit, e["new"])),
            ("creatorfullname", _coded(w.staff_csv, e["actor"])),
        ],
        (),
    )

    # Intake ("cloud info") records.
    k = np.flatnonzero(rq["has_intake"])
    n_in = len(k)
    ch_in = rq["channel"][k]
    a_in = rq["acct"][k]
    contact = rq["contact"][k]
    staff_made = ch_in != _CUSTOMER
    missing = np.where(
        rng.random(n_in) < np.where(staff_made, 0.04, 0.03), rng.integers(0, 4, n_in), -1
    )
    v6 = rng.random(n_in) < 0.03
    current_ip = _ips(rng, n_in, v6)
    new_ip = _ips(rng, n_in, v6)
    no_new = rng.random(n_in) < 0.25
    new_ip = ["" if x else ip for x, ip in zip(no_new.tolist(), new_ip, strict=True)]
    current_ip = [
        "" if miss == 2 else ip for miss, ip in zip(missing.tolist(), current_ip, strict=True)
    ]
    naive_in = rng.random(n_in) < _NAIVE_SHARE
    given = np.where(
        ch_in == _PHONE,
        rng.random(n_in) < 0.93,
        np.where(staff_made, rng.random(n_in) < 0.97, True),
    )
    transferred = (ch_in == _PHONE) & (rng.random(n_in) < 0.75)
    rows[INTAKE_CSV] = _csv_rows(
        n_in,
        [
            ("ticket_id", _coded(tid, req_pos[k])),
            ("received_at", fmt.timestamp(rq["received"][k], naive=naive_in)),
            ("channel", _coded(w.channels_csv, ch_in)),
            (
                "requester_type",
                _coded(w.requester_type_csv, rq["via_reseller"][k].astype(np.int64)),
            ),
            ("account", _coded(w.account_csv, a_in)),
            ("site", _coded(w.site_csv, np.where(missing == 3, len(w.site_csv) - 1, a_in))),
            ("reseller", _coded(w.reseller_csv, w.acct_reseller[a_in])),
            ("contact_name", _coded(w.person_csv, contact)),
            (
                "contact_phone",
                _coded(
                    w.person_phone_csv, np.where(missing == 0, len(w.person_phone_csv) - 1, contact)
                ),
            ),
            (
                "person_of_record",
                _coded(
                    w.person_csv, np.where(missing == 1, len(w.person_csv) - 1, w.acct_por[a_in])
                ),
            ),
            ("reason", _coded(w.reasons_csv, rq["reason"][k])),
            ("current_ip", [current_ip]),
            ("new_ip", [new_ip]),
            (
                "requested_change_at",
                fmt.timestamp(rq["requested"][k], naive=naive_in, asap=rq["asap"][k]),
            ),
            ("ticket_number_given", _coded(w.yes_no, given.astype(np.int64))),
            ("transferred_to_queue", _coded(w.yes_no, transferred.astype(np.int64))),
            ("agent", _coded(w.staff_csv, np.where(staff_made, rq["agent"][k], rq["router"][k]))),
        ],
        ("ticket_id", "received_at", "channel", "account", "current_ip", "new_ip"),
    )
    intake_row_of_ticket = dict(zip(req_pos[k].tolist(), range(n_in), strict=True))

    # Implementation's change records.
    c = np.flatnonzero(rq["change_row"])
    n_ch = len(c)
    naive_ch = rng.random(n_ch) < _NAIVE_SHARE
    fee_kind = rq["fee_kind"][c]
    how = np.where(rng.random(n_ch) < 0.75, 0, rng.integers(1, 6, n_ch)).tolist()
    por = [w.person_name[p] for p in w.acct_por[rq["acct"][c]].tolist()]
    other = [w.person_name[p] for p in rq["other_signer"][c].tolist()]
    accepted_by = [
        _csv_quote(_typed(p, h)) if f == 0 else (_csv_quote(o) if f == 1 else "")
        for f, p, o, h in zip(fee_kind.tolist(), por, other, how, strict=True)
    ]
    waived = rq["waived"][c]
    waiver_by = np.where(waived & (rng.random(n_ch) < 0.9), _pick_from(rng, _MANAGER_IDS, n_ch), 0)
    approver = np.where(rq["after_hours_approved"][c], _pick_from(rng, _MANAGER_IDS[:2], n_ch), 0)
    start = rq["start"][c]
    rows[CHANGES_CSV] = _csv_rows(
        n_ch,
        [
            ("ticket_id", _coded(tid, req_pos[c])),
            ("confirmed_at", fmt.timestamp(rq["confirmed"][c], naive=naive_ch)),
            ("scheduled_start", fmt.timestamp(start, naive=naive_ch)),
            ("scheduled_end", fmt.timestamp(rq["end"][c], naive=naive_ch)),
            ("completed_at", fmt.timestamp(rq["completed"][c], naive=naive_ch)),
            ("cancelled_at", fmt.timestamp(rq["cancelled"][c], naive=naive_ch)),
            ("engineer", _coded(w.staff_csv, rq["engineer"][c])),
            ("fee_accepted_by", [accepted_by]),
            ("fee_accepted_at", fmt.timestamp(rq["fee_at"][c], naive=naive_ch)),
            ("fee_waived", _coded(w.yes_no, waived.astype(np.int64))),
            (
                "fee_waiver_reason",
                _coded(w.waiver_csv, np.where(waived, rng.integers(1, len(w.waiver_csv), n_ch), 0)),
            ),
            ("fee_waived_by", _coded(w.staff_csv, waiver_by)),
            ("after_hours_approved_by", _coded(w.staff_csv, approver)),
        ],
        ("ticket_id", "confirmed_at", "completed_at", "scheduled_end"),
    )

    v4_current = np.array([ip != "" and ":" not in ip for ip in current_ip], dtype=bool)
    eligible = {
        (TICKETS_CSV, "any"): np.arange(m),
        (TICKETS_CSV, "request"): req_pos[k],
        (TICKETS_CSV, "billable"): req_pos[k[rq["billable_like"][k]]],
        (EVENTS_CSV, "any"): np.arange(ne),
        (INTAKE_CSV, "any"): np.arange(n_in),
        (INTAKE_CSV, "ipv4_current"): np.flatnonzero(v4_current),
        (INTAKE_CSV, "ipv4_new"): np.flatnonzero(~v6 & ~no_new),
        (CHANGES_CSV, "any"): np.arange(n_ch),
        (CHANGES_CSV, "confirmed"): np.flatnonzero(rq["confirmed"][c] != _NA),
        (CHANGES_CSV, "completed"): np.flatnonzero(rq["completed"][c] != _NA),
        (CHANGES_CSV, "window"): np.flatnonzero(start != _NA),
    }
    return _Chunk(rows, eligible, intake_row_of_ticket, start)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def generate(
    out_dir: Path,
    *,
    requests: int = 600,
    other_tickets: int = 2400,
    months: int = 5,
    seed: int = 7,
    end: dt.date | None = None,
    bad_rows: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DemoDataSet:
    """Write a seeded, realistic demo data set into ``out_dir``.

    Tickets are created over the ``months`` calendar months before ``end``: the half-open
    interval [``end`` − ``months`` at 00:00, ``end`` at 00:00), Central time. Every record is
    as of ``end`` 00:00: later work has not happened yet, though changes may be scheduled after
    it. ``requests`` of the tickets are IP change requests; ``other_tickets`` are ordinary
    help-desk tickets. The same arguments give byte-identical files.

    Args:
        out_dir: Folder to write into; created if missing, the six files overwritten.
        requests: Number of IP change request tickets.
        other_tickets: Number of ordinary help-desk tickets.
        months: Number of calendar months covered.
        seed: Seed of the random generators.
        end: Local date (America/Chicago) the data end at, exclusive; default today.
        bad_rows: Whether to add the deliberately bad rows of :data:`BAD_ROW_KINDS`.
        progress: Called after each chunk with the number of tickets just written; the calls
            add up to ``requests + other_tickets``.

    Returns:
        The paths written, the row count of each file, and where each bad row is.

    Raises:
        ValueError: If a count is negative or ``months`` is below 1.
    """
    if requests < 0 or other_tickets < 0:
        raise ValueError("requests and other_tickets must be >= 0")
    if months < 1:
        raise ValueError("months must be >= 1")
    if end is None:
        end = dt.datetime.now(ZoneInfo(ZONE)).date()
    start = _months_before(end, months)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    n = requests + other_tickets
    bounds = [*range(0, n, _CHUNK), n]
    n_chunks = len(bounds) - 1
    seeds = np.random.SeedSequence(seed).spawn(2 + n_chunks)
    rng = np.random.default_rng(seeds[0])
    w = _World(rng, start, end, max(50, requests // 2, other_tickets // 40))
    created = w.arrivals(rng, n)
    is_req = np.zeros(n, dtype=bool)
    is_req[rng.choice(n, size=requests, replace=False)] = True
    mask_offset = int(rng.integers(0, _MASK_SPACE))
    bad = None
    if bad_rows and n_chunks:
        orphans = _mask_ids(np.arange(n, n + 10), mask_offset)
        sizes = [b - a for a, b in itertools.pairwise(bounds)]
        bad = _BadRows(w, np.random.default_rng(seeds[1]), sizes, orphans)

    paths = {name: out_dir / name for name in FILES}
    rows = dict.fromkeys(FILES, 0)
    headers = {
        TICKETS_CSV: ",".join(TICKETS_COLUMNS) + "\n",
        EVENTS_CSV: ",".join(TICKET_EVENTS_COLUMNS) + "\n",
        INTAKE_CSV: ",".join(INTAKE_COLUMNS) + "\n",
        CHANGES_CSV: ",".join(CHANGES_COLUMNS) + "\n",
        KAYAKO_XML: '<?xml version="1.0" encoding="UTF-8"?>\n<tickets>\n',
        KAYAKO_AUDIT_CSV: ",".join(KAYAKO_AUDIT_COLUMNS) + "\n",
    }
    with contextlib.ExitStack() as stack:
        out = {
            name: stack.enter_context(paths[name].open("w", encoding="utf-8", newline=""))
            for name in FILES
        }
        for name, header in headers.items():
            out[name].write(header)
        for c in range(n_chunks):
            lo, hi = bounds[c], bounds[c + 1]
            chunk_rng = np.random.default_rng(seeds[2 + c])
            chunk = _build_chunk(
                w, chunk_rng, np.arange(lo, hi), created[lo:hi], is_req[lo:hi], mask_offset
            )
            if bad is not None:
                bad.apply(c, chunk, rows, last=c == n_chunks - 1)
            for name, chunk_rows in chunk.rows.items():
                out[name].write(chunk_rows.text())
                rows[name] += chunk_rows.n
            if progress is not None:
                progress(hi - lo)
        out[KAYAKO_XML].write("</tickets>\n")

    placed = tuple(sorted(bad.placed, key=lambda b: (FILES.index(b.file), b.row))) if bad else ()
    return DemoDataSet(
        out_dir=out_dir,
        paths=MappingProxyType(paths),
        rows=MappingProxyType(rows),
        bad_rows=MappingProxyType({f: sum(b.file == f for b in placed) for f in FILES}),
        bad=placed,
        start=start,
        end=end,
        seed=seed,
    )
