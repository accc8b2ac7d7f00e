"""The demo help desk as Kayako Classic writes it (FORMATS.md): lookups, XML, audit log, reports.

Written from FORMATS.md, never from what ipchange's readers expect:

- the lookup lists (``/Base/Department``, ``/Tickets/TicketStatus``, ``…/TicketType``,
  ``…/TicketPriority``) and the ``ListAll`` ticket XML in the live wire style: every non-empty
  value in ``<![CDATA[…]]>``, empty values as ``<tag />``, one element per line, no indentation;
- the audit log as a database export of ``ticketauditlogs`` (ids in ``oldvalueid`` /
  ``newvalueid``, value strings empty for department/status/owner changes, names only in the
  English ``actionmsg``), and as a KQL report on "Ticket Audit Logs";
- a KQL ticket report, CSV from Kayako's spreadsheet writer (every field quoted, local
  ``m/d/yyyy h:mm:ss``), plain and in the Excel-compatible mode (BOM, ``sep=;``, semicolons).

The ids are the demo help desk's own (:data:`~ipchange_core.demo.reference.HELPDESK_DEPT_ID` …).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ipchange_core.demo.reference import (
    AUDIT_DB_COLUMNS,
    AUDIT_REPORT_COLUMNS,
    DEPARTMENTS_XML,
    DEPTS,
    HELPDESK_DEPARTMENTS,
    HELPDESK_DEPT_ID,
    HELPDESK_PRIORITY_ID,
    HELPDESK_STATUS_ID,
    HELPDESK_TYPE_ID,
    PRIORITIES,
    PRIORITIES_XML,
    STAFF,
    STATUSES,
    STATUSES_XML,
    TICKET_REPORT_COLUMNS,
    TYPES,
    TYPES_XML,
)
from ipchange_core.demo.text import (
    Formatter,
    Layout,
    Piece,
    Pool,
    Rows,
    csv_quote,
    csv_quote_all,
    csv_rows,
    xml_element,
)

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
#: How Kayako's spreadsheet writer starts a CSV in its Excel-compatible mode.
EXCEL_PREAMBLE = "\ufeffsep=;\n"

# Audit log codes (FORMATS.md 4).
CREATOR_STAFF, CREATOR_USER, CREATOR_SYSTEM, CREATOR_PARSER = 1, 2, 3, 4
ACTION_NEW_TICKET, ACTION_NEW_POST, ACTION_OWNER, ACTION_STATUS = 1, 2, 3, 4
ACTION_PRIORITY, ACTION_DEPARTMENT = 5, 7
VALUE_NONE = 8
#: Kayako's English audit templates (language file, "Audit Log" section).
TEMPLATES = {
    ACTION_NEW_TICKET: "New ticket created by %s (%s): subject: %s",
    ACTION_NEW_POST: "New reply created by %s (%s)",
    ACTION_OWNER: "Ticket owner changed from: %s to: %s",
    ACTION_STATUS: "Ticket status changed from: %s to: %s",
    ACTION_PRIORITY: "Ticket priority changed from: %s to: %s",
    ACTION_DEPARTMENT: "Ticket department changed from: %s to: %s",
}
#: The report's labels of action types and creator types.
ACTION_LABELS = {
    ACTION_NEW_TICKET: "New Ticket",
    ACTION_NEW_POST: "New Reply",
    ACTION_OWNER: "Updated Owner",
    ACTION_STATUS: "Updated Status",
    ACTION_PRIORITY: "Updated Priority",
    ACTION_DEPARTMENT: "Updated Department",
}
CREATOR_LABELS = {CREATOR_STAFF: "Staff", CREATOR_USER: "User", CREATOR_SYSTEM: "System",
                  CREATOR_PARSER: "Parser"}  # fmt: skip
UNASSIGNED = "-- Unassigned --"

# ------------------------------------------------------------------------------------------
# Lookup lists
# ------------------------------------------------------------------------------------------


def _lookup_xml(root: str, item: str, entries: Sequence[Sequence[tuple[str, str]]]) -> str:
    lines = [XML_HEADER.rstrip("\n"), f"<{root}>"]
    for fields in entries:
        lines.append(f"<{item}>")
        lines.extend(
            f"<{tag}>\n</{tag}>" if tag == "usergroups" else xml_element(tag, value)
            for tag, value in fields
        )
        lines.append(f"</{item}>")
    lines.append(f"</{root}>")
    return "\n".join(lines) + "\n"


def lookup_documents() -> dict[str, str]:
    """The demo help desk's four lookup lists, file name → XML text (live style)."""
    departments = [
        (
            ("id", str(i)),
            ("title", title),
            ("type", kind),
            ("module", module),
            ("app", module),
            ("displayorder", str(10 * (k + 1))),
            ("parentdepartmentid", str(parent)),
            ("uservisibilitycustom", "0"),
            ("usergroups", ""),
        )
        for k, (i, title, kind, module, parent) in enumerate(HELPDESK_DEPARTMENTS)
    ]
    colours = ("#4eafcb", "#8bb467", "#f1a036", "#b3b3b3", "#5f5f5f")
    statuses = [
        (
            ("id", str(int(HELPDESK_STATUS_ID[k]))),
            ("title", title),
            ("displayorder", str(k + 1)),
            ("departmentid", "0"),
            ("displayicon", ""),
            ("type", "public"),
            ("displayinmainlist", "1"),
            ("markasresolved", "1" if title == "Closed" else "0"),
            ("displaycount", "0" if title == "Closed" else "1"),
            ("statuscolor", colours[k]),
            ("statusbgcolor", colours[k]),
            ("resetduetime", "0"),
            ("triggersurvey", "1" if title == "Closed" else "0"),
            ("staffvisibilitycustom", "0"),
        )
        for k, title in enumerate(STATUSES)
    ]
    types = [
        (
            ("id", str(int(HELPDESK_TYPE_ID[k]))),
            ("title", title),
            ("displayorder", str(k + 1)),
            ("departmentid", "0"),
            ("displayicon", ""),
            ("type", "public"),
            ("uservisibilitycustom", "0"),
        )
        for k, title in enumerate(TYPES)
    ]

    def priority(k: int, kind: str) -> tuple[tuple[str, str], ...]:
        head = (
            ("id", str(int(HELPDESK_PRIORITY_ID[k]))),
            ("title", PRIORITIES[k]),
            ("displayorder", str(k + 1)),
            ("frcolorcode", "#ffffff"),
            ("bgcolorcode", ("#8bb467", "#4eafcb", "#f1a036", "#d6483f")[k]),
            ("displayicon", ""),
            ("type", kind),
        )
        if kind == "public":
            return (*head, ("uservisibilitycustom", "0"))
        return (*head, ("uservisibilitycustom", "1"), ("usergroupid", "3"))

    # Like the public samples, one id is listed twice (public, then private).
    priorities = [priority(k, "public") for k in range(len(PRIORITIES))]
    priorities.append(priority(len(PRIORITIES) - 1, "private"))
    return {
        DEPARTMENTS_XML: _lookup_xml("departments", "department", departments),
        STATUSES_XML: _lookup_xml("ticketstatuses", "ticketstatus", statuses),
        TYPES_XML: _lookup_xml("tickettypes", "tickettype", types),
        PRIORITIES_XML: _lookup_xml("ticketpriorities", "ticketpriority", priorities),
    }


def write_lookups(paths: dict[str, Path]) -> dict[str, int]:
    """Write the lookup XMLs to ``paths`` (file name → path); return entries per file."""
    counts = {}
    for name, text in lookup_documents().items():
        paths[name].write_text(text, encoding="utf-8", newline="")
        counts[name] = text.count("<id>")
    return counts


# ------------------------------------------------------------------------------------------
# Text pools shared by every chunk
# ------------------------------------------------------------------------------------------


class KayakoPools:
    """Pre-formatted strings of the Kayako files (one set per data set)."""

    def __init__(self) -> None:
        self.dept_id = Pool(str(int(i)) for i in HELPDESK_DEPT_ID)
        self.status_id = Pool(str(int(i)) for i in HELPDESK_STATUS_ID)
        self.type_id = Pool(str(int(i)) for i in HELPDESK_TYPE_ID)
        self.priority_id = Pool(str(int(i)) for i in HELPDESK_PRIORITY_ID)
        self.staff_element = Pool(xml_element("ownerstaffname", s) for s in ("", *STAFF))
        # Report cells, quoted as the spreadsheet writer quotes them.
        self.dept_q = Pool(DEPTS, csv_quote_all)
        self.status_q = Pool(STATUSES, csv_quote_all)
        self.type_q = Pool(TYPES, csv_quote_all)
        self.priority_q = Pool(PRIORITIES, csv_quote_all)
        self.owner_q = Pool((UNASSIGNED, *STAFF), csv_quote_all)
        self.creator_q = Pool(("Staff", "User"), csv_quote_all)
        hexes = [f"{i:04x}" for i in range(65_536)]
        self.hex4 = Pool(hexes)


def _element(x: Layout, tag: str, pieces: list[Piece] | str, *, editable: bool = False) -> None:
    """A never-empty element: ``<tag><![CDATA[`` value ``]]></tag>``, one line."""
    x.const(f"<{tag}><![CDATA[")
    if isinstance(pieces, str):
        x.const(pieces)
    else:
        x.column(tag, pieces, editable=editable)
    x.const(f"]]></{tag}>\n")


def ticket_xml_rows(
    m: int,
    *,
    kid: Pool,
    mask: Pool,
    every: np.ndarray,
    fmt: Formatter,
    small: Pool,
    kp: KayakoPools,
    dept: np.ndarray,
    status: np.ndarray,
    priority: np.ndarray,
    type_code: np.ndarray,
    user_id: np.ndarray,
    acct: np.ndarray,
    account_raw: Pool,
    owner: np.ndarray,
    requester: np.ndarray,
    person_raw: Pool,
    email_raw: Pool,
    subjects: list[str],
    tags_elements: list[str],
    created: np.ndarray,
    updated: np.ndarray,
    staff_reply: np.ndarray,
    user_reply: np.ndarray,
    replies: np.ndarray,
    user: np.ndarray,
) -> Rows:
    """``<ticket>`` elements of a ``ListAll`` response, live style, children in Kayako's order."""
    x = Layout()
    x.const('<ticket id="')
    x.column("id", [(kid, every)])
    x.const('" flagtype="0">\n')
    _element(x, "displayid", [(mask, every)])
    _element(x, "departmentid", [(kp.dept_id, dept)])
    _element(x, "statusid", [(kp.status_id, status)])
    _element(x, "priorityid", [(kp.priority_id, priority)])
    _element(x, "typeid", [(kp.type_id, type_code)])
    _element(x, "userid", fmt.integer(user_id))
    _element(x, "userorganization", [(account_raw, acct)], editable=True)
    _element(x, "userorganizationid", fmt.integer(acct + 1))
    _element(x, "ownerstaffid", [(small, owner)])
    x.column("ownerstaffname", [(kp.staff_element, owner)])
    x.const("\n")
    _element(x, "fullname", [(person_raw, requester)])
    _element(x, "email", [(email_raw, requester)])
    _element(x, "lastreplier", [(person_raw, requester)])
    _element(x, "subject", [subjects], editable=True)
    for tag, values in (
        ("creationtime", created),
        ("lastactivity", updated),
        ("laststaffreply", staff_reply),
        ("lastuserreply", user_reply),
    ):
        _element(x, tag, fmt.integer(values))
    _element(x, "slaplanid", "1")
    _element(x, "nextreplydue", "0")
    _element(x, "resolutiondue", "0")
    _element(x, "replies", [(small, replies)])
    x.const("<ipaddress />\n")
    _element(x, "creator", [(small, np.where(user, 2, 1))])
    _element(x, "creationmode", [(small, np.where(user, 1, 2))])
    _element(x, "creationtype", "1")
    _element(x, "isescalated", "0")
    _element(x, "escalationruleid", "0")
    _element(x, "templategroupid", "1")
    _element(x, "templategroupname", "default")
    x.column("tags", [tags_elements])
    x.const("\n</ticket>\n")
    return x.compile(m)


def quoted_rows(n: int, columns: Sequence[tuple[list[Piece], bool]], sep: str) -> Rows:
    """``n`` rows of the spreadsheet writer's CSV: every cell in double quotes, ``sep`` between.

    Each column is (pieces, wrap): ``wrap`` cells (numbers, dates) get their quotes here, the
    others come quoted already (:func:`~ipchange_core.demo.text.csv_quote_all`).
    """
    x = Layout()
    for k, (pieces, wrap) in enumerate(columns):
        if wrap:
            x.const('"')
        x.column(f"c{k}", pieces, editable=f"c{k}" == REPORT_SUBJECT)
        if wrap:
            x.const('"')
        x.const(sep if k < len(columns) - 1 else "\n")
    return x.compile(n)


#: The ticket report's subject cell, which bad rows replace per row (column 9 of the labels).
REPORT_SUBJECT = f"c{TICKET_REPORT_COLUMNS.index('Subject')}"


def header_line(columns: Sequence[str], sep: str) -> str:
    """The header row of the spreadsheet writer's CSV."""
    return sep.join(map(csv_quote_all, columns)) + "\n"


AUDIT_DB_HEADER = ",".join(AUDIT_DB_COLUMNS) + "\n"
AUDIT_REPORT_HEADER = header_line(AUDIT_REPORT_COLUMNS, ",")
TICKET_REPORT_HEADER = header_line(TICKET_REPORT_COLUMNS, ",")
TICKET_REPORT_EXCEL_HEADER = EXCEL_PREAMBLE + header_line(TICKET_REPORT_COLUMNS, ";")


# ------------------------------------------------------------------------------------------
# The audit log
# ------------------------------------------------------------------------------------------

#: Event values as the generator codes them ("" | departments | statuses | staff), by name.
_VALUE_NAMES = np.array((UNASSIGNED, *DEPTS, *STATUSES, *STAFF), dtype=object)
_N_DEPTS, _N_STATUSES = len(DEPTS), len(STATUSES)
_STAFF_NAMES = np.array(("", *STAFF), dtype=object)
_STAFF_EMAILS = np.array(
    ("", *(n.lower().replace(" ", ".").replace("'", "") + "@helpdesk.example" for n in STAFF)),
    dtype=object,
)
_FIELD_ACTION = np.array([ACTION_DEPARTMENT, ACTION_STATUS, ACTION_OWNER], dtype=np.int64)
_FIELD_PREFIX = np.array(
    [TEMPLATES[a].split("%s")[0] for a in _FIELD_ACTION.tolist()], dtype=object
)
_TO = TEMPLATES[ACTION_DEPARTMENT].split("%s")[1]  # " to: "
_ACTION_LABEL = np.array([ACTION_LABELS.get(a, "") for a in range(8)], dtype=object)
_CREATOR_LABEL = np.array([CREATOR_LABELS.get(c, "") for c in range(5)], dtype=object)


def _event_ids(field: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Help-desk ids of coded event values: department/status id, owner staff id (0 = none)."""
    dept = HELPDESK_DEPT_ID[np.clip(code - 1, 0, _N_DEPTS - 1)]
    status = HELPDESK_STATUS_ID[np.clip(code - 1 - _N_DEPTS, 0, _N_STATUSES - 1)]
    owner = np.where(code == 0, 0, code - _N_DEPTS - _N_STATUSES)
    return np.select([field == 0, field == 1], [dept, status], owner)


def audit_rows(
    rng: np.random.Generator,
    fmt: Formatter,
    kp: KayakoPools,
    *,
    first_id: int,
    internal_id: np.ndarray,
    mask: list[str],
    events: dict[str, np.ndarray],
    created: np.ndarray,
    updated: np.ndarray,
    user: np.ndarray,
    creator_staff: np.ndarray,
    requester_id: np.ndarray,
    requester_name: np.ndarray,
    requester_email: np.ndarray,
    subject: np.ndarray,
    dept0: np.ndarray,
    dept: np.ndarray,
    owner: np.ndarray,
    bumped: np.ndarray,
) -> tuple[Rows, Rows, Rows]:
    """The chunk's audit log: the ``ticketauditlogs`` table, alone and joined, and the KQL report.

    The joined table carries the tickets' ``ticketmaskid`` as its last column.

    One ``New Ticket`` row per ticket at its creation, the department/status/owner changes of
    ``events`` (ids in ``oldvalueid``/``newvalueid``, value strings empty, names in the
    message), a reply at the last activity of tickets that had one, and a priority change
    (Normal → High) of the ``bumped`` tickets — rows a routing reader must skip. Rows are in
    time order; ``ticketauditlogid`` counts on from ``first_id``.
    """
    m = len(created)
    tickets = np.arange(m)
    replied = np.flatnonzero(updated > created)
    bump = np.flatnonzero(bumped)
    e = events
    ne = len(e["pos"])
    n_new, n_post, n_bump = m, len(replied), len(bump)
    # Parallel columns of every row, in blocks: new tickets, events, replies, priority changes.
    pos = np.concatenate([tickets, e["pos"], replied, bump])
    at = np.concatenate(
        [created, e["at"], updated[replied], created[bump] + (updated[bump] - created[bump]) // 2]
    )
    action = np.concatenate(
        [
            np.full(n_new, ACTION_NEW_TICKET),
            _FIELD_ACTION[e["field"]],
            np.full(n_post, ACTION_NEW_POST),
            np.full(n_bump, ACTION_PRIORITY),
        ]
    )
    # The department when the action happened (for a department change: the one before it).
    event_dept = np.where(e["field"] == 0, e["old"] - 1, e["dept"])
    at_dept = np.concatenate([dept0, event_dept, dept[replied], dept[bump]])
    post_by_staff = owner[replied] > 0
    bump_by = np.where(owner[bump] > 0, owner[bump], creator_staff[bump])
    creator_type = np.concatenate(
        [
            np.where(user, CREATOR_USER, CREATOR_STAFF),
            np.full(ne, CREATOR_STAFF),
            np.where(post_by_staff, CREATOR_STAFF, CREATOR_USER),
            np.full(n_bump, CREATOR_STAFF),
        ]
    )
    creator_id = np.concatenate(
        [
            np.where(user, 0, creator_staff),
            e["actor"],
            np.where(post_by_staff, owner[replied], 0),
            bump_by,
        ]
    )
    staff_name = _STAFF_NAMES[creator_id]
    staff_email = _STAFF_EMAILS[creator_id]
    people = np.concatenate([tickets, e["pos"], replied, bump])
    is_user = creator_type == CREATOR_USER
    name = np.where(is_user, requester_name[people], staff_name)
    email = np.where(is_user, requester_email[people], staff_email)
    old_id = np.concatenate(
        [np.zeros(n_new, np.int64), _event_ids(e["field"], e["old"]), np.zeros(n_post, np.int64),
         np.full(n_bump, HELPDESK_PRIORITY_ID[1])]
    )  # fmt: skip
    new_id = np.concatenate(
        [np.zeros(n_new, np.int64), _event_ids(e["field"], e["new"]), np.zeros(n_post, np.int64),
         np.full(n_bump, HELPDESK_PRIORITY_ID[2])]
    )  # fmt: skip
    prio_msg = TEMPLATES[ACTION_PRIORITY] % (PRIORITIES[1], PRIORITIES[2])
    t_new = TEMPLATES[ACTION_NEW_TICKET].split("%s")  # by, (, ): subject:, ""
    t_post = TEMPLATES[ACTION_NEW_POST].split("%s")
    posts = slice(n_new + ne, n_new + ne + n_post)
    message = np.concatenate(
        [
            t_new[0] + name[:n_new] + t_new[1] + email[:n_new] + t_new[2] + subject + t_new[3],
            _FIELD_PREFIX[e["field"]] + _VALUE_NAMES[e["old"]] + _TO + _VALUE_NAMES[e["new"]],
            t_post[0] + name[posts] + t_post[1] + email[posts] + t_post[2],
            np.full(n_bump, prio_msg, dtype=object),
        ]
    ) if len(pos) else np.zeros(0, dtype=object)  # fmt: skip
    creator_id = np.where(is_user, requester_id[people], creator_id)  # a user's id
    order = np.lexsort((np.arange(len(pos)), pos, at))
    pos, at, action, at_dept = pos[order], at[order], action[order], at_dept[order]
    creator_type, name, message = creator_type[order], name[order], message[order]
    old_id, new_id, creator_id = old_id[order], new_id[order], creator_id[order]
    n = len(pos)
    post_id = np.where(action == ACTION_NEW_POST, internal_id[pos] * 4 + 2, 0)
    audit_id = first_id + np.arange(n, dtype=np.int64)
    hash_codes = rng.integers(0, 65_536, (8, n))
    number = fmt.integer
    mask_arr = np.asarray(mask, dtype=object)[pos]
    dept_title = np.asarray(DEPTS, dtype=object)[at_dept]

    db_cols: list[tuple[str, list[Piece]]] = [
        ("ticketauditlogid", number(audit_id)),
        ("ticketid", number(internal_id[pos])),
        ("ticketpostid", number(post_id)),
        ("departmentid", [(kp.dept_id, at_dept)]),
        ("departmenttitle", [list(map(csv_quote, dept_title.tolist()))]),
        ("dateline", number(at)),
        ("creatortype", number(creator_type)),
        ("creatorid", number(creator_id)),
        ("creatorfullname", [list(map(csv_quote, name.tolist()))]),
        ("actiontype", number(action)),
        ("actionmsg", [list(map(csv_quote, message.tolist()))]),
        ("valuetype", number(np.full(n, VALUE_NONE))),
        ("oldvalueid", number(old_id)),
        ("oldvaluestring", [[""] * n]),
        ("newvalueid", number(new_id)),
        ("newvaluestring", [[""] * n]),
        ("actionhash", [(kp.hex4, hash_codes[k]) for k in range(8)]),
        ("actionmsgparams", [[""] * n]),
    ]
    report = quoted_rows(
        n,
        [
            (number(audit_id), True),
            (fmt.us_datetime(at), True),
            ([_CREATOR_LABEL[creator_type].tolist()], True),
            ([list(map(csv_quote_all, name.tolist()))], False),
            ([_ACTION_LABEL[action].tolist()], True),
            ([list(map(csv_quote_all, message.tolist()))], False),
            ([(kp.dept_q, at_dept)], False),
            ([mask_arr.tolist()], True),
            (number(internal_id[pos]), True),
        ],
        ",",
    )
    joined = [*db_cols, ("ticketmaskid", [mask_arr.tolist()])]
    return csv_rows(n, db_cols, ()), csv_rows(n, joined, ()), report
