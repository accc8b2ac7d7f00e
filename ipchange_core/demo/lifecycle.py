"""Request lifecycles: who asks, when, and how each ticket moves until the "as of" instant.

:class:`World` holds what one data set keeps fixed (its span, business calendar, accounts and
people); :func:`request_lifecycles` and :func:`other_lifecycles` play the tickets of one chunk,
vectorised, recording department/status/owner changes in :class:`Events`. Instants are int64
epoch seconds; :data:`NA` marks "no timestamp".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import holidays
import numpy as np

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.demo.reference import (
    AGENT_IDS,
    BILL,
    CHANNELS,
    CHAT,
    CITIES,
    CLOSED,
    CS,
    CS_IDS,
    CUSTOMER,
    DAY,
    DEPT_STAFF,
    DEPTS,
    EMAIL,
    ENGINEER_IDS,
    FIRST,
    HOLD,
    HOUR,
    IMPL,
    INPROG,
    KAYAKO_UNASSIGNED,
    LAST,
    MINUTE,
    NA,
    NEW,
    OPEN,
    OTHER_SUBJECTS,
    PHONE,
    REASONS,
    RESELLERS,
    STAFF,
    STATUSES,
    TS,
    WAIVER_REASONS,
)
from ipchange_core.demo.text import Formatter, Pool, csv_quote, xml_escape
from ipchange_core.demo.timeline import Timeline

_CUSTOMERS_COUNTRY = "US"  # whose public holidays make the help desk quiet


class World:
    """Everything fixed for one data set: time span, calendar, accounts and people.

    Args:
        rng: The data set's generator (accounts and people are drawn from it).
        calendar: Business hours and days (the policy's).
        start: First local date covered (inclusive).
        end: Local date the data end at (exclusive); its midnight is the "as of" instant.
        n_accounts: Number of customer accounts.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        calendar: BusinessCalendar,
        start: dt.date,
        end: dt.date,
        n_accounts: int,
    ) -> None:
        epoch = dt.date(1970, 1, 1)
        self.start_day = (start - epoch).days
        self.end_day = (end - epoch).days
        self.end = end
        lo = (self.start_day - 400) * DAY
        hi = (self.end_day + 400) * DAY
        self.clock = Timeline(calendar, lo, hi)
        self.fmt = Formatter(self.clock)
        self.start_utc = int(self.clock.utc(np.array([self.start_day * DAY]))[0])
        self.as_of = int(self.clock.utc(np.array([self.end_day * DAY]))[0])

        # People: [person of record of each account, second contact of each account,
        # three technicians per reseller]; accounts point into this table.
        a = n_accounts
        numbers = 10_000 + rng.choice(max(90_000, 2 * a), size=a, replace=False)
        sites = 100 + rng.choice(max(9_000, 3 * a), size=a, replace=False)
        city = rng.integers(0, len(CITIES), a)
        self.acct_reseller = np.where(
            rng.random(a) < 0.4, rng.integers(0, len(RESELLERS), a), -1
        ).astype(np.int64)
        self.acct_por = np.arange(a, dtype=np.int64)
        self.acct_alt = np.arange(a, 2 * a, dtype=np.int64)
        self.reseller_tech = np.arange(2 * a, 2 * a + 3 * len(RESELLERS), dtype=np.int64)
        n_people = 2 * a + 3 * len(RESELLERS)
        first = rng.integers(0, len(FIRST), n_people)
        last = rng.integers(0, len(LAST), n_people)
        names = [f"{FIRST[f]} {LAST[s]}" for f, s in zip(first, last, strict=True)]
        domains = [
            f"site{s}-{CITIES[c][0].lower().replace(' ', '').replace('.', '')}.example.com"
            for s, c in zip(sites, city, strict=True)
        ]
        domains = domains + domains + [r[1] for r in RESELLERS for _ in range(3)]
        area = [CITIES[c][1] for c in city]
        area = area + area + [r[2] for r in RESELLERS for _ in range(3)]
        line = rng.integers(100, 200, n_people)
        emails = [
            f"{FIRST[f][0].lower()}{LAST[s].lower().replace(chr(39), '')}@{d}"
            for f, s, d in zip(first, last, domains, strict=True)
        ]
        self.person_name = names
        self.person_csv = Pool([*names, ""], csv_quote)  # the last entry is blank
        self.person_xml = Pool(names, xml_escape)
        self.person_email_csv = Pool(emails, csv_quote)
        self.person_email_xml = Pool(emails, xml_escape)
        self.person_phone_csv = Pool(
            [*(f"({ac}) 555-{ln:04d}" for ac, ln in zip(area, line, strict=True)), ""], csv_quote
        )
        accounts = [f"ACCT-{n}" for n in numbers]
        self.account = accounts
        self.account_csv = Pool(accounts, csv_quote)
        self.account_xml = Pool(accounts, xml_escape)
        self.site_number = sites
        self.city = city
        self.site_csv = Pool(
            [*(f"Site {s} – {CITIES[c][0]}" for s, c in zip(sites, city, strict=True)), ""],
            csv_quote,
        )
        self.reseller_csv = Pool([r[0] for r in RESELLERS] + [""], csv_quote)  # code -1 → ""

        # Shared small pools.
        self.small = Pool([str(i) for i in range(100)])
        self.creator_csv = Pool(("staff", "user"))
        self.yes_no = Pool(("no", "yes"))
        self.requester_type_csv = Pool(("site", "reseller"))
        self.channels_csv = Pool(CHANNELS)
        self.reasons_csv = Pool(REASONS)
        self.waiver_csv = Pool(("", *WAIVER_REASONS), csv_quote)
        self.action_csv = Pool(("updated",))
        self.to = Pool((" to ",))
        self.dept_csv = Pool(DEPTS, csv_quote)
        self.status_csv = Pool(STATUSES, csv_quote)
        self.staff_csv = Pool(("", *STAFF), csv_quote)
        self.staff_xml = Pool(("", *STAFF), xml_escape)
        # Event values: "" | departments | statuses | staff.
        self.value_pool = Pool(("", *DEPTS, *STATUSES, *STAFF), csv_quote)
        # The same values as Kayako's audit log writes them ("no owner" is spelled out).
        self.value_audit = Pool((KAYAKO_UNASSIGNED, *DEPTS, *STATUSES, *STAFF), csv_quote)
        self.field_pool = Pool(("department", "status", "owner"), csv_quote)
        self.field_msg = Pool(
            ("Department changed from ", "Status changed from ", "Owner changed from "), csv_quote
        )
        other_subjects = [s for dept in OTHER_SUBJECTS for s, _ in dept]
        other_tags = [t for dept in OTHER_SUBJECTS for _, t in dept]
        self.other_subject_csv = Pool(other_subjects, csv_quote)
        self.other_subject_xml = Pool(other_subjects, xml_escape)
        self.other_tags_csv = Pool([*other_tags, ""], csv_quote)
        self.other_tags_xml = Pool([t.replace(",", " ") for t in other_tags] + [""], xml_escape)
        sizes = [len(d) for d in OTHER_SUBJECTS]
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
        # Customers are nearly idle on their public holidays (the ``holidays`` package's).
        dates = days.astype("M8[D]")
        years = range(dates[0].astype(dt.date).year, dates[-1].astype(dt.date).year + 1)
        idle = np.array(sorted(holidays.country_holidays(_CUSTOMERS_COUNTRY, years=years)))
        day_factor = np.where(np.isin(dates, idle.astype("M8[D]")), 0.25, 1.0) * day_factor
        w = np.where((weekday < 5)[:, None], weekday_hours[None, :], weekend_hours[None, :])
        w = w * day_factor[:, None]
        monday_morning = (weekday == 0)[:, None] & ((hour >= 8) & (hour < 12))[None, :]
        w = np.where(monday_morning, w * 1.5, w)
        friday_afternoon = (weekday == 4)[:, None] & (hour >= 14)[None, :]
        w = np.where(friday_afternoon, w * 0.8, w).ravel()
        slot = rng.choice(len(w), size=n, p=w / w.sum())
        local = (days[slot // 24] * 24 + slot % 24) * HOUR + rng.integers(0, HOUR, n)
        utc = self.clock.utc(local)
        return np.sort(np.clip(utc, self.start_utc, self.as_of - 1))


def pick(rng: np.random.Generator, n: int, p: Sequence[float]) -> np.ndarray:
    """``n`` indices into ``p``, drawn with weights ``p`` (need not sum to 1)."""
    return rng.choice(len(p), size=n, p=np.asarray(p) / np.sum(p)).astype(np.int64)


def pick_from(rng: np.random.Generator, values: np.ndarray, n: int) -> np.ndarray:
    """``n`` values drawn uniformly, with replacement, from ``values``."""
    return values[rng.integers(0, len(values), n)]


def integers(rng: np.random.Generator, n: int) -> Callable[[float, float], np.ndarray]:
    """A draw function: each call ``(lo, hi)`` gives ``n`` integers uniform in [lo, hi)."""
    return lambda lo, hi: rng.integers(int(lo), int(hi), n)


@dataclass
class Events:
    """Ticket events of one chunk as parallel arrays (values coded into ``World.value_pool``)."""

    pos: list[np.ndarray]
    at: list[np.ndarray]
    field: list[np.ndarray]
    old: list[np.ndarray]
    new: list[np.ndarray]
    actor: list[np.ndarray]
    dept: list[np.ndarray]

    @classmethod
    def empty(cls) -> Events:
        """No events yet."""
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
        base = (1, 1 + len(DEPTS), len(DEPTS) + len(STATUSES))[field]
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
        """The events as int64 columns, ordered by time, then by ticket position."""
        cols = {
            k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)).astype(np.int64)
            for k, v in vars(self).items()
        }
        order = np.lexsort((cols["pos"], cols["at"]))
        return {k: v[order] for k, v in cols.items()}


def request_lifecycles(
    w: World, rng: np.random.Generator, created: np.ndarray, pos: np.ndarray, ev: Events
) -> dict[str, np.ndarray]:
    """Lifecycle of the IP change requests of one chunk (vectorised)."""
    r = len(created)
    ck = w.clock
    as_of = w.as_of

    u = integers(rng, r)

    # Who asked, through which channel.
    user = rng.random(r) < 0.30
    channel = np.where(user, CUSTOMER, np.array([PHONE, EMAIL, CHAT])[pick(rng, r, [62, 25, 13])])
    acct = rng.integers(0, len(w.account), r)
    res = w.acct_reseller[acct]
    via_reseller = (res >= 0) & (rng.random(r) < 0.7)
    contact = np.where(
        via_reseller,
        w.reseller_tech[np.maximum(res, 0) * 3 + u(0, 3)],
        np.where(rng.random(r) < 0.55, w.acct_por[acct], w.acct_alt[acct]),
    )
    agent = pick_from(rng, AGENT_IDS, r)

    # When the company learned of it: the call/e-mail precedes the agent's ticket.
    received = np.where(
        channel == EMAIL,
        created - np.where(rng.random(r) < 0.6, u(120, 2700), u(3600, 14 * 3600)),
        created - u(60, 600),
    )
    late_intake = user & (rng.random(r) < 0.15)
    received = np.where(user, np.where(late_intake, created + u(300, 7200), created), received)
    received = np.maximum(received, w.start_utc)  # nothing before the covered period
    recv = np.minimum(received, created)  # SPEC 2.1 received_at

    # The ticket as created (steps 1–2 of the procedure, with a few agent mistakes).
    mistake = np.where(user, 0, pick(rng, r, [88, 4, 5, 3]))  # ok, wrong dept, assigned, Open
    dept0 = np.where(user, CS, np.where(mistake == 1, np.where(rng.random(r) < 0.7, TS, CS), IMPL))
    status0 = np.where(mistake == 3, OPEN, NEW)
    owner0 = np.where(
        mistake == 2, np.where(rng.random(r) < 0.5, agent, pick_from(rng, ENGINEER_IDS, r)), 0
    )

    # Routing to Implementation: fast, next business day, days later, never.
    needs_route = dept0 != IMPL
    route_kind = np.where(user, pick(rng, r, [64, 22, 8, 6]), pick(rng, r, [50, 50, 0, 0]))
    day, _ = ck.day_sod(created)
    fast = ck.add_business(created, u(2 * MINUTE, 55 * MINUTE))
    later_day = ck.business_day_offset(day + 1, np.where(route_kind == 2, u(1, 4), 0))
    later = ck.utc(later_day * DAY + ck.open + u(0, ck.close - ck.open - HOUR))
    routed = np.where(needs_route, np.where(route_kind == 0, fast, later), created)
    routed_ok = (~needs_route | (route_kind != 3)) & (routed <= as_of)
    router = np.where(user, pick_from(rng, CS_IDS, r), agent)
    dept_now = np.where(routed_ok, IMPL, dept0)
    ev.add(
        needs_route & routed_ok, pos, routed, 0, dept0, np.full(r, IMPL), router, np.full(r, IMPL)
    )

    has_intake = np.where(user, routed_ok, rng.random(r) >= 0.01)

    # What they asked for.
    reason = pick(rng, r, [55, 25, 12, 8])
    req_kind = pick(rng, r, [81.5, 5, 3, 2, 8, 0.5])  # std, ASAP, blank, before, short, 48 h
    std, asap, blank, before, short_ts, exact = (req_kind == k for k in range(6))
    base = recv + 48 * HOUR
    bday, _ = ck.day_sod(base)
    lead = np.minimum(rng.geometric(0.3, r) - 1, 15)
    target_day = ck.business_day_offset(bday, lead)
    out_of_hours = rng.random(r) < 0.06
    tod = np.where(
        out_of_hours,
        np.array([6, 7, 18, 19, 20, 21])[u(0, 6)] * HOUR,
        ck.open + 1800 * u(0, (ck.close - ck.open) // 1800),
    )
    req_std = ck.utc(target_day * DAY + tod)
    req_std = np.where(
        req_std < base, ck.utc(ck.next_business_day(target_day) * DAY + tod), req_std
    )
    requested = np.select(
        [std, before, short_ts, exact],
        [
            req_std,
            (recv - u(HOUR, 72 * HOUR)) // 900 * 900,
            -(-(recv + u(30 * MINUTE, 46 * HOUR)) // 900) * 900,
            base,
        ],
        NA,
    )
    # The instant the customer actually wants (ASAP and "already changed" mean now).
    wanted = np.where(asap | before, recv, requested)
    short = asap | before | short_ts
    known = ~blank

    # Implementation: confirm, schedule, sign-off, do (or cancel).
    has_change = routed_ok & (rng.random(r) >= 0.005)
    delay = np.select(
        [rng.random(r) < 0.8, rng.random(r) < 0.6],
        [np.minimum(rng.exponential(1.5 * HOUR, r), 7.5 * HOUR), u(2 * HOUR, 7.9 * HOUR)],
        u(8.2 * HOUR, 24 * HOUR),
    ).astype(np.int64)
    confirmed = ck.add_business(routed, delay)
    engineer = pick_from(rng, ENGINEER_IDS, r)
    duration = np.array([1800, 3600, 7200])[pick(rng, r, [60, 30, 10])]
    earliest = confirmed + u(15 * MINUTE, 2 * HOUR)
    standard_slot = short & (rng.random(r) < 0.18)  # customer declines the expedite
    target = np.where(
        short,
        np.where(standard_slot, base + u(0, 6 * HOUR), np.maximum(wanted, earliest)),
        np.where(
            known,
            np.maximum(wanted, earliest),
            ck.add_business(confirmed, u(4 * HOUR, 24 * HOUR)),
        ),
    )
    start = ck.slot(target, duration)
    # An expedite the requested time cannot serve inside 48 h gets the first possible slot.
    start = np.where(short & ~standard_slot & (start >= base), ck.slot(earliest, duration), start)
    backlog = ~short & (rng.random(r) < 0.05)
    start_day, start_sod = ck.day_sod(start)
    pushed = ck.business_day_offset(start_day, u(1, 4))
    start = np.where(backlog, ck.utc(pushed * DAY + start_sod), start)
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
    fee_kind = np.where(expedite, pick(rng, r, [68, 8, 12, 12]), -1)
    signed = (fee_kind == 0) | (fee_kind == 1)
    fee_at = np.minimum(confirmed + u(MINUTE, HOUR), np.maximum(start - 300, confirmed))
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
    done = confirmed_ok & ~cancel_ok & (end + 25 * MINUTE <= as_of) & (rng.random(r) >= 0.01)
    completed = np.maximum(end + u(-10 * MINUTE, 25 * MINUTE), start + 5 * MINUTE)
    no_window = done & ~after_hours & (rng.random(r) < 0.03)
    change_row = cancel_ok | confirmed_ok

    # Ticket events after routing: take it, work it, close it.
    take = confirmed_ok & (confirmed + 300 <= as_of)
    ev.add(
        take & (owner0 != engineer), pos, confirmed + 300, 2, owner0, engineer, engineer, dept_now
    )
    ev.add(take, pos, confirmed + 300, 1, status0, np.full(r, INPROG), engineer, dept_now)
    close_at = np.where(
        cancel_ok, cancelled + u(MINUTE, 30 * MINUTE), completed + u(5 * MINUTE, 2 * HOUR)
    )
    close_at = np.where(take, np.maximum(close_at, confirmed + 360), close_at)
    closed = (cancel_ok | done) & (close_at <= as_of)
    status_before_close = np.where(take, INPROG, status0)
    ev.add(closed, pos, close_at, 1, status_before_close, np.full(r, CLOSED), engineer, dept_now)
    status = np.where(closed, CLOSED, status_before_close)
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

    na = np.full(r, NA)
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


def other_lifecycles(
    w: World, rng: np.random.Generator, created: np.ndarray, pos: np.ndarray, ev: Events
) -> dict[str, np.ndarray]:
    """Lifecycle of the ordinary help-desk tickets of one chunk (vectorised)."""
    n = len(created)
    ck = w.clock
    as_of = w.as_of

    u = integers(rng, n)

    user = rng.random(n) < 0.5
    dept0 = np.array([TS, CS, BILL, IMPL])[pick(rng, n, [50, 30, 15, 5])]
    transfer = rng.random(n) < 0.12
    dept1 = np.where(
        transfer,
        np.select(
            [dept0 == CS, dept0 == TS, dept0 == BILL],
            [np.where(rng.random(n) < 0.7, TS, BILL), BILL, CS],
            TS,
        ),
        dept0,
    )
    transfer_at = ck.add_business(created, u(5 * MINUTE, 4 * HOUR))
    t_ok = transfer & (transfer_at <= as_of)
    first = ck.add_business(
        np.where(transfer, transfer_at, created),
        np.minimum(rng.exponential(1.2 * HOUR, n), 16 * HOUR).astype(np.int64) + 60,
    )
    creator_staff = np.empty(n, dtype=np.int64)
    for d in range(4):
        m = dept0 == d
        creator_staff[m] = pick_from(rng, DEPT_STAFF[d], int(m.sum()))
    handler = np.empty(n, dtype=np.int64)
    for d in range(4):
        m = dept1 == d
        handler[m] = pick_from(rng, DEPT_STAFF[d], int(m.sum()))
    owner0 = np.where(~user & (rng.random(n) < 0.3), creator_staff, 0)
    # Whoever created it usually keeps it, unless it moves to another department.
    handler = np.where((owner0 > 0) & ~transfer & (rng.random(n) < 0.8), owner0, handler)

    ev.add(t_ok, pos, transfer_at, 0, dept0, dept1, creator_staff, dept1)
    dept = np.where(t_ok, dept1, dept0)
    f_ok = (~transfer | t_ok) & (first <= as_of)
    ev.add(f_ok & (owner0 != handler), pos, first, 2, owner0, handler, handler, dept)
    ev.add(f_ok, pos, first + 30, 1, np.full(n, NEW), np.full(n, OPEN), handler, dept)
    status = np.where(f_ok, OPEN, NEW)
    owner = np.where(f_ok, handler, owner0)

    hold = f_ok & (rng.random(n) < 0.10)
    hold_at = first + u(HOUR, 24 * HOUR)
    back_at = hold_at + u(4 * HOUR, 72 * HOUR)
    h1 = hold & (hold_at <= as_of)
    h2 = h1 & (back_at <= as_of)
    ev.add(h1, pos, hold_at, 1, np.full(n, OPEN), np.full(n, HOLD), handler, dept)
    ev.add(h2, pos, back_at, 1, np.full(n, HOLD), np.full(n, OPEN), handler, dept)
    status = np.where(h1 & ~h2, HOLD, status)
    resume = np.where(h2, back_at, first)

    close = f_ok & ~(h1 & ~h2) & (rng.random(n) < 0.85)
    close_at = resume + (rng.exponential(20 * HOUR, n)).astype(np.int64) + 600
    c_ok = close & (close_at <= as_of)
    ev.add(c_ok, pos, close_at, 1, np.full(n, OPEN), np.full(n, CLOSED), handler, dept)
    status = np.where(c_ok, CLOSED, status)

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
