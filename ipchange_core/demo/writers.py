"""The writers: one chunk of tickets as rows of the canonical CSVs and of the Kayako files.

The canonical files follow SPEC 3.4; the Kayako files (ticket XML, audit log, ticket reports) are
written as Kayako writes them (FORMATS.md, :mod:`ipchange_core.demo.kayako`). The legacy
``kayako-audit.csv`` (names in the value strings, which Kayako never writes) stays only for the
current audit reader's tests and benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ipchange_core.demo.kayako import audit_rows, quoted_rows, ticket_xml_rows
from ipchange_core.demo.lifecycle import (
    Events,
    World,
    other_lifecycles,
    pick_from,
    request_lifecycles,
)
from ipchange_core.demo.posts import posts_rows
from ipchange_core.demo.reference import (
    AGENT_SUBJECTS,
    AUDIT_DB_CSV,
    AUDIT_DB_MASKS_CSV,
    AUDIT_REPORT_CSV,
    CHANGES_CSV,
    CITIES,
    CUSTOMER,
    EVENTS_CSV,
    HOUR,
    INTAKE_CSV,
    ISP_FIRST_OCTETS,
    KAYAKO_AUDIT_CSV,
    KAYAKO_POSTS_XML,
    KAYAKO_XML,
    MANAGER_IDS,
    NA,
    NEW,
    PHONE,
    RESELLERS,
    TICKET_REPORT_CSV,
    TICKET_REPORT_EXCEL_CSV,
    TICKETS_CSV,
    USER_SUBJECTS,
)
from ipchange_core.demo.text import (
    Pool,
    Rows,
    cdata,
    coded,
    csv_quote,
    csv_quote_all,
    csv_rows,
    csv_unquote,
    objects,
    render,
    strings,
    xml_element,
)

_NAIVE_SHARE = 0.05  # intake/changes rows written in naive local time

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MASK_SPACE = 26**3 * 900 * 90_000
_MASK_STEP = 982_451_653  # a prime: i → (i·step + offset) mod space is a bijection
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MASK_SPACE = 26**3 * 900 * 90_000
_MASK_STEP = 982_451_653  # a prime: i → (i·step + offset) mod space is a bijection
_MASK_L = np.array(
    [a + b + c + "-" for a in _LETTERS for b in _LETTERS for c in _LETTERS], dtype=object
)
_MASK_M = np.array([f"{i}-" for i in range(100, 1000)], dtype=object)
_MASK_R = np.array([str(i) for i in range(10_000, 100_000)], dtype=object)
_SMALL_OCTETS = np.array([str(i) for i in range(256)], dtype=object)
_DOT_OCTETS = np.array([f".{i}" for i in range(256)], dtype=object)


def mask_ids(gidx: np.ndarray, offset: int) -> list[str]:
    """Unique Kayako mask ids (``ABC-123-45678``) of global ticket indices."""
    code = (gidx.astype(np.int64) * _MASK_STEP + offset) % MASK_SPACE
    parts = (
        _MASK_L[code % 17_576].tolist(),
        _MASK_M[(code // 17_576) % 900].tolist(),
        _MASK_R[code // (17_576 * 900)].tolist(),
    )
    return list(map("".join, zip(*parts, strict=True)))


def _ips(rng: np.random.Generator, n: int, v6: np.ndarray) -> list[str]:
    """Plausible public addresses: IPv4 from ISP blocks, IPv6 where ``v6``."""
    o = rng.integers(0, 256, (4, n))
    o[0] = ISP_FIRST_OCTETS[rng.integers(0, len(ISP_FIRST_OCTETS), n)]
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


@dataclass
class Chunk:
    """One chunk's output before writing: compiled rows per file, and row metadata."""

    rows: dict[str, Rows]
    eligible: dict[tuple[str, str], np.ndarray]  # (file, key) → row indices
    intake_row_of_ticket: dict[int, int]
    scheduled_start: np.ndarray  # per changes row


def _request_texts(
    w: World, rng: np.random.Generator, rq: dict[str, np.ndarray]
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
            t = USER_SUBJECTS[tmpl[k] % len(USER_SUBJECTS)]
        else:
            t = AGENT_SUBJECTS[tmpl[k] % len(AGENT_SUBJECTS)]
            if "{reseller}" in t and not via[k]:
                t = AGENT_SUBJECTS[0]
        subjects.append(
            t.format(
                site=site[k],
                city=CITIES[city[k]][0],
                acct=w.account[rq["acct"][k]],
                reseller=RESELLERS[res[k]][0] if res[k] >= 0 else "",
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


def build_chunk(
    w: World,
    rng: np.random.Generator,
    gidx: np.ndarray,
    created: np.ndarray,
    is_req: np.ndarray,
    mask_offset: int,
    audit_id: int,
) -> Chunk:
    """The rows of every file for one chunk of tickets.

    Args:
        w: The data set's world.
        rng: The chunk's own generator (chunks are seeded independently).
        gidx: Global ticket indices of the chunk.
        created: Their creation instants, epoch seconds.
        is_req: Which of them are IP change requests.
        mask_offset: The data set's offset of Kayako mask ids (see :func:`mask_ids`).
        audit_id: The ``ticketauditlogid`` of the chunk's first audit row.

    Returns:
        The compiled rows per file, and which rows bad rows may use.
    """
    m = len(gidx)
    fmt = w.fmt
    req_pos = np.flatnonzero(is_req)
    oth_pos = np.flatnonzero(~is_req)
    ev = Events.empty()
    rq = request_lifecycles(w, rng, created[req_pos], req_pos, ev)
    ot = other_lifecycles(w, rng, created[oth_pos], oth_pos, ev)
    r = len(req_pos)

    def merge(req: np.ndarray, oth: np.ndarray) -> np.ndarray:
        out = np.empty(m, dtype=np.result_type(req, oth))
        out[req_pos] = req
        out[oth_pos] = oth
        return out

    tid = Pool(mask_ids(gidx, mask_offset), static=False)
    kid = Pool(render(fmt.integer(10_000 + gidx.astype(np.int64))), static=False)
    user = merge(rq["user"], ot["user"])
    dept = merge(rq["dept"], ot["dept"])
    status = merge(rq["status"], ot["status"])
    owner = merge(rq["owner"], ot["owner"])
    acct = merge(rq["acct"], ot["acct"])
    requester = merge(rq["contact"], ot["requester"])
    last = merge(rq["last"], ot["last"])
    updated = np.maximum(last, np.minimum(last + rng.integers(0, 2 * HOUR, m), w.as_of))
    typeid = merge(
        np.where(rng.random(r) < np.where(rq["user"], 0.3, 0.85), 3, 1),
        np.where(ot["task"], 2, 1),
    )
    # Ordinary tickets use pooled (pre-quoted) subjects and tags; requests are quoted here.
    subjects, tags = _request_texts(w, rng, rq)
    subject_csv = merge(
        objects(map(csv_quote, subjects)), w.other_subject_csv.values[ot["subject"]]
    )
    tags_csv = merge(
        objects(csv_quote(",".join(t)) for t in tags), w.other_tags_csv.values[ot["tags"]]
    )
    every = np.arange(m)

    rows: dict[str, Rows] = {}
    rows[TICKETS_CSV] = csv_rows(
        m,
        [
            ("ticket_id", coded(tid, every)),
            ("subject", strings(subject_csv)),
            ("department", coded(w.dept_csv, dept)),
            ("status", coded(w.status_csv, status)),
            ("owner", coded(w.staff_csv, owner)),
            ("creator", coded(w.creator_csv, user.astype(np.int64))),
            ("account", coded(w.account_csv, acct)),
            ("requester_name", coded(w.person_csv, requester)),
            ("requester_email", coded(w.person_email_csv, requester)),
            ("created_at", fmt.timestamp(created)),
            ("updated_at", fmt.timestamp(updated)),
            ("tags", strings(tags_csv)),
        ],
        ("ticket_id", "subject", "account"),
    )

    # Ticket events, and the legacy audit CSV of the same changes.
    e = ev.arrays()
    epos = e["pos"]
    ne = len(epos)
    rows[EVENTS_CSV] = csv_rows(
        ne,
        [
            ("ticket_id", coded(tid, epos)),
            ("at", fmt.timestamp(e["at"])),
            ("field", coded(w.field_pool, e["field"])),
            ("old_value", coded(w.value_pool, e["old"])),
            ("new_value", coded(w.value_pool, e["new"])),
            ("actor", coded(w.staff_csv, e["actor"])),
        ],
        ("ticket_id", "at"),
    )
    rows[KAYAKO_AUDIT_CSV] = csv_rows(
        ne,
        [
            ("ticketid", coded(kid, epos)),
            ("ticketmaskid", coded(tid, epos)),
            ("dateline", fmt.integer(e["at"])),
            ("departmenttitle", coded(w.dept_csv, e["dept"])),
            ("actiontype", coded(w.action_csv, np.zeros(ne, dtype=np.int64))),
            (
                "actionmsg",
                [
                    (w.field_msg, e["field"]),
                    (w.value_audit, e["old"]),
                    (w.to, np.zeros(ne, dtype=np.int64)),
                    (w.value_audit, e["new"]),
                ],
            ),
            ("oldvaluestring", coded(w.value_audit, e["old"])),
            ("newvaluestring", coded(w.value_audit, e["new"])),
            ("creatorfullname", coded(w.staff_csv, e["actor"])),
        ],
        (),
    )

    # Intake ("cloud info") records.
    k = np.flatnonzero(rq["has_intake"])
    n_in = len(k)
    ch_in = rq["channel"][k]
    a_in = rq["acct"][k]
    contact = rq["contact"][k]
    staff_made = ch_in != CUSTOMER
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
        ch_in == PHONE,
        rng.random(n_in) < 0.93,
        np.where(staff_made, rng.random(n_in) < 0.97, True),
    )
    transferred = (ch_in == PHONE) & (rng.random(n_in) < 0.75)
    intake_columns = [
            ("ticket_id", coded(tid, req_pos[k])),
            ("received_at", fmt.timestamp(rq["received"][k], naive=naive_in)),
            ("channel", coded(w.channels_csv, ch_in)),
            (
                "requester_type",
                coded(w.requester_type_csv, rq["via_reseller"][k].astype(np.int64)),
            ),
            ("account", coded(w.account_csv, a_in)),
            ("site", coded(w.site_csv, np.where(missing == 3, len(w.site_csv) - 1, a_in))),
            ("reseller", coded(w.reseller_csv, w.acct_reseller[a_in])),
            ("contact_name", coded(w.person_csv, contact)),
            (
                "contact_phone",
                coded(
                    w.person_phone_csv, np.where(missing == 0, len(w.person_phone_csv) - 1, contact)
                ),
            ),
            (
                "person_of_record",
                coded(
                    w.person_csv, np.where(missing == 1, len(w.person_csv) - 1, w.acct_por[a_in])
                ),
            ),
            ("reason", coded(w.reasons_csv, rq["reason"][k])),
            ("current_ip", [current_ip]),
            ("new_ip", [new_ip]),
            (
                "requested_change_at",
                fmt.timestamp(rq["requested"][k], naive=naive_in, asap=rq["asap"][k]),
            ),
            ("ticket_number_given", coded(w.yes_no, given.astype(np.int64))),
            ("transferred_to_queue", coded(w.yes_no, transferred.astype(np.int64))),
            ("agent", coded(w.staff_csv, np.where(staff_made, rq["agent"][k], rq["router"][k]))),
    ]  # fmt: skip
    rows[INTAKE_CSV] = csv_rows(
        n_in,
        intake_columns,
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
        csv_quote(_typed(p, h)) if f == 0 else (csv_quote(o) if f == 1 else "")
        for f, p, o, h in zip(fee_kind.tolist(), por, other, how, strict=True)
    ]
    waived = rq["waived"][c]
    waiver_by = np.where(waived & (rng.random(n_ch) < 0.9), pick_from(rng, MANAGER_IDS, n_ch), 0)
    approver = np.where(rq["after_hours_approved"][c], pick_from(rng, MANAGER_IDS[:2], n_ch), 0)
    start = rq["start"][c]
    rows[CHANGES_CSV] = csv_rows(
        n_ch,
        [
            ("ticket_id", coded(tid, req_pos[c])),
            ("confirmed_at", fmt.timestamp(rq["confirmed"][c], naive=naive_ch)),
            ("scheduled_start", fmt.timestamp(start, naive=naive_ch)),
            ("scheduled_end", fmt.timestamp(rq["end"][c], naive=naive_ch)),
            ("completed_at", fmt.timestamp(rq["completed"][c], naive=naive_ch)),
            ("cancelled_at", fmt.timestamp(rq["cancelled"][c], naive=naive_ch)),
            ("engineer", coded(w.staff_csv, rq["engineer"][c])),
            ("fee_accepted_by", [accepted_by]),
            ("fee_accepted_at", fmt.timestamp(rq["fee_at"][c], naive=naive_ch)),
            ("fee_waived", coded(w.yes_no, waived.astype(np.int64))),
            (
                "fee_waiver_reason",
                coded(w.waiver_csv, np.where(waived, rng.integers(1, len(w.waiver_csv), n_ch), 0)),
            ),
            ("fee_waived_by", coded(w.staff_csv, waiver_by)),
            ("after_hours_approved_by", coded(w.staff_csv, approver)),
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
        (CHANGES_CSV, "confirmed"): np.flatnonzero(rq["confirmed"][c] != NA),
        (CHANGES_CSV, "completed"): np.flatnonzero(rq["completed"][c] != NA),
        (CHANGES_CSV, "window"): np.flatnonzero(start != NA),
    }
    _kayako_files(
        w, rng, rows, tid, kid, every, e, audit_id, 10_000 + gidx.astype(np.int64),
        subjects=subjects, tags=tags, req=rq, oth=ot, merge=merge, user=user, dept=dept,
        status=status, owner=owner, acct=acct, requester=requester, created=created,
        updated=updated, typeid=typeid,
    )  # fmt: skip
    # The posts, last: what they draw from rng changes no other file.
    values = {name: [csv_unquote(v) for v in render(pieces)] for name, pieces in intake_columns}
    in_row = np.full(r, -1, dtype=np.int64)
    in_row[k] = np.arange(n_in)

    def per_request(column: str) -> list[str]:
        got = values[column]
        return [got[a] if a >= 0 else "" for a in in_row.tolist()]

    rows[KAYAKO_POSTS_XML] = posts_rows(
        rng,
        internal=10_000 + gidx[req_pos].astype(np.int64),
        created=created[req_pos],
        received=rq["received"],
        as_of=w.as_of,
        customer=rq["user"],
        intake=in_row >= 0,
        staff=np.where(rq["user"], rq["router"], rq["agent"]),
        requester=[w.person_name[c] for c in rq["contact"].tolist()],
        requester_id=rq["contact"] + 1,
        fields={name: per_request(name) for name, _ in intake_columns},
        requested=np.where(in_row >= 0, rq["requested"], NA),
        asap=rq["asap"] & (in_row >= 0),
    )
    return Chunk(rows, eligible, intake_row_of_ticket, start)


def _kayako_files(
    w: World,
    rng: np.random.Generator,
    rows: dict[str, Rows],
    tid: Pool,
    kid: Pool,
    every: np.ndarray,
    e: dict[str, np.ndarray],
    audit_id: int,
    internal: np.ndarray,
    *,
    subjects: list[str],
    tags: list[list[str]],
    req: dict[str, np.ndarray],
    oth: dict[str, np.ndarray],
    merge: Callable[[np.ndarray, np.ndarray], np.ndarray],
    user: np.ndarray,
    dept: np.ndarray,
    status: np.ndarray,
    owner: np.ndarray,
    acct: np.ndarray,
    requester: np.ndarray,
    created: np.ndarray,
    updated: np.ndarray,
    typeid: np.ndarray,
) -> None:
    """Add the chunk's rows of the Kayako files (ticket XML, audit log, ticket reports).

    Draws from ``rng`` only after every canonical file's draws, so the canonical files do not
    depend on what the Kayako files hold.
    """
    m = len(created)
    fmt = w.fmt
    kp = w.kayako
    priority = np.where(rng.random(m) < 0.15, 2, np.where(rng.random(m) < 0.1, 0, 1))
    priority = np.where(merge(req["short"], np.zeros(len(oth["dept"]), dtype=bool)), 2, priority)
    bumped = (priority == 2) & (updated > created) & (rng.random(m) < 0.3)
    replies = np.where(updated > created, rng.integers(1, 6, m), 0)
    creator_staff = merge(np.where(req["user"], 0, req["agent"]), oth["creator_staff"])
    # The department each ticket was created in: before its first department change.
    dept0 = dept.copy()
    moves = e["field"] == 0
    first, at = np.unique(e["pos"][moves], return_index=True)
    dept0[first] = e["old"][moves][at] - 1
    subject_raw = merge(objects(subjects), w.other_subject_cdata.values[oth["subject"]])
    subject_report = merge(
        objects(map(csv_quote_all, subjects)), w.other_subject_report.values[oth["subject"]]
    )
    tags_element = merge(
        objects(xml_element("tags", " ".join(t)) for t in tags),
        w.other_tags_element.values[oth["tags"]],
    )
    rows[KAYAKO_XML] = ticket_xml_rows(
        m,
        kid=kid,
        mask=tid,
        every=every,
        fmt=fmt,
        small=w.small,
        kp=kp,
        dept=dept,
        status=status,
        priority=priority,
        type_code=typeid - 1,
        user_id=requester + 1,
        acct=acct,
        account_raw=w.account_cdata,
        owner=owner,
        requester=requester,
        person_raw=w.person_cdata,
        email_raw=w.person_email_cdata,
        subjects=list(map(cdata, subject_raw.tolist())),
        tags_elements=tags_element.tolist(),
        created=created,
        updated=updated,
        staff_reply=np.where(user & (status == NEW) & (owner == 0), 0, updated),
        user_reply=np.where(user, created, 0),
        replies=replies,
        user=user,
    )
    rows[AUDIT_DB_CSV], rows[AUDIT_DB_MASKS_CSV], rows[AUDIT_REPORT_CSV] = audit_rows(
        rng,
        fmt,
        kp,
        first_id=audit_id,
        internal_id=internal,
        mask=tid.values.tolist(),
        events=e,
        created=created,
        updated=updated,
        user=user,
        creator_staff=creator_staff,
        requester_id=requester + 1,
        requester_name=np.asarray(w.person_name, dtype=object)[requester],
        requester_email=np.asarray(w.person_email, dtype=object)[requester],
        subject=subject_raw,
        dept0=dept0,
        dept=dept,
        owner=owner,
        bumped=bumped,
    )
    for name, sep in ((TICKET_REPORT_CSV, ","), (TICKET_REPORT_EXCEL_CSV, ";")):
        rows[name] = quoted_rows(
            m,
            [
                (fmt.integer(internal), True),
                ([(tid, every)], True),
                ([(kp.dept_q, dept)], False),
                ([(kp.status_q, status)], False),
                ([(kp.priority_q, priority)], False),
                ([(kp.owner_q, owner)], False),
                ([(kp.type_q, typeid - 1)], False),
                ([(w.person_report, requester)], False),
                ([(w.person_email_report, requester)], False),
                ([subject_report.tolist()], False),
                (fmt.us_datetime(created), True),
                (fmt.us_datetime(updated), True),
                ([(kp.creator_q, user.astype(np.int64))], False),
            ],
            sep,
        )
