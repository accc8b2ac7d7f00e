"""The demo's reference data: file names and columns, departments, staff, places, subjects.

Codes used across the generator (department, status and channel numbers) index the tuples
defined here; Kayako ids come from the default policy's ``kayako:`` lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

from ipchange_core.ingest.kayako_audit import AUDIT_COLUMNS
from ipchange_core.policy import load_policy
from ipchange_core.schema import TABLES

_POLICY = load_policy().latest
ZONE = _POLICY.timezone  # the default policy's: wall-clock times of the generated data

TICKETS_COLUMNS = tuple(c.name for c in TABLES["tickets"])
TICKET_EVENTS_COLUMNS = tuple(c.name for c in TABLES["ticket_events"])
INTAKE_COLUMNS = tuple(c.name for c in TABLES["intake"])
CHANGES_COLUMNS = tuple(c.name for c in TABLES["changes"])
#: The legacy ``kayako-audit.csv``: the current audit reader's columns (names in the value
#: strings, which Kayako does not write); it goes when that reader reads Kayako's forms.
KAYAKO_AUDIT_COLUMNS = AUDIT_COLUMNS
#: The table ``ticketauditlogs`` of Kayako's database (FORMATS.md 4).
AUDIT_DB_COLUMNS = (
    "ticketauditlogid",
    "ticketid",
    "ticketpostid",
    "departmentid",
    "departmenttitle",
    "dateline",
    "creatortype",
    "creatorid",
    "creatorfullname",
    "actiontype",
    "actionmsg",
    "valuetype",
    "oldvalueid",
    "oldvaluestring",
    "newvalueid",
    "newvaluestring",
    "actionhash",
    "actionmsgparams",
)
#: The labels of a KQL report on "Ticket Audit Logs" with the ticket's mask id and id.
AUDIT_REPORT_COLUMNS = (
    "Ticket Audit Log ID",
    "Creation Date",
    "Creator",
    "Full Name",
    "Action",
    "Message",
    "Department",
    "Ticket Mask ID",
    "Ticket ID",
)
#: The labels of a KQL report on tickets (FORMATS.md 5).
TICKET_REPORT_COLUMNS = (
    "Ticket ID",
    "Ticket Mask ID",
    "Department",
    "Status",
    "Priority",
    "Owner",
    "Type",
    "Full Name",
    "Email",
    "Subject",
    "Creation Date",
    "Last Activity",
    "Creator",
)

# Kayako Classic id lookups: the default policy's (``kayako:`` in policy.yaml).
_KAYAKO = _POLICY.kayako
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
KAYAKO_POSTS_XML = "kayako-posts.xml"  # the requests' posts, with the cloud-info macro
KAYAKO_AUDIT_CSV = "kayako-audit.csv"
DEPARTMENTS_XML = "departments.xml"
STATUSES_XML = "ticketstatuses.xml"
TYPES_XML = "tickettypes.xml"
PRIORITIES_XML = "ticketpriorities.xml"
LOOKUP_XMLS = (DEPARTMENTS_XML, STATUSES_XML, TYPES_XML, PRIORITIES_XML)
AUDIT_DB_CSV = "ticketauditlogs.csv"
AUDIT_DB_MASKS_CSV = "ticketauditlogs-with-masks.csv"  # joined with swtickets.ticketmaskid
AUDIT_REPORT_CSV = "ticket-audit-logs-report.csv"
TICKET_REPORT_CSV = "tickets-report.csv"
TICKET_REPORT_EXCEL_CSV = "tickets-report-excel.csv"
CANONICAL_FILES = (TICKETS_CSV, EVENTS_CSV, INTAKE_CSV, CHANGES_CSV)
#: Files written chunk by chunk (the lookup XMLs are written whole, first).
CHUNKED_FILES = (
    *CANONICAL_FILES,
    KAYAKO_XML,
    KAYAKO_POSTS_XML,
    KAYAKO_AUDIT_CSV,
    AUDIT_DB_CSV,
    AUDIT_DB_MASKS_CSV,
    AUDIT_REPORT_CSV,
    TICKET_REPORT_CSV,
    TICKET_REPORT_EXCEL_CSV,
)
FILES = (*CHUNKED_FILES, *LOOKUP_XMLS)

# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

DEPTS = ("Customer Service", "Implementation", "Technical Support", "Billing")
CS, IMPL, TS, BILL = range(4)

STATUSES = ("New", "Open", "In Progress", "On Hold", "Closed")
NEW, OPEN, INPROG, HOLD, CLOSED = range(5)
TYPES = ("Issue", "Task", "IP Change")
PRIORITIES = ("Low", "Normal", "High", "Urgent")

# The demo help desk's own Kayako ids (its lookup XMLs): deliberately not the default policy's
# ``kayako:`` ids, so that a reader has to take names from the lookups. Indexed by the codes above.
HELPDESK_DEPT_ID = np.array([12, 14, 15, 17], dtype=np.int64)
HELPDESK_STATUS_ID = np.array([5, 1, 6, 2, 3], dtype=np.int64)
HELPDESK_TYPE_ID = np.array([1, 2, 4], dtype=np.int64)
HELPDESK_PRIORITY_ID = np.array([1, 2, 3, 4], dtype=np.int64)
#: Every department of the help desk: (id, title, type, module, parent id). Only the ticket
#: departments above hold tickets; the others are there because a real list has them.
HELPDESK_DEPARTMENTS = (
    (1, "General", "public", "tickets", 0),
    (3, "Sales Chat", "public", "livechat", 0),
    (12, "Customer Service", "public", "tickets", 0),
    (14, "Implementation", "private", "tickets", 0),
    (15, "Technical Support", "public", "tickets", 0),
    (17, "Billing", "public", "tickets", 0),
    (18, "Billing Disputes", "private", "tickets", 17),
)

TSC_AGENTS = (
    "Maria Gonzalez",
    "Derek Hollis",
    "Tanya Brooks",
    "Kevin Nguyen",
    "Shanice Porter",
    "Luis Ramirez",
    "Amy Castillo",
    "Brandon Lee",
)
CS_STAFF = ("Rachel Kim", "Jordan Price", "Megan O'Neil")
ENGINEERS = ("Sam Ortiz", "Priya Raman", "Tom Becker", "Alicia Ward", "Victor Chen")
TS_STAFF = ("Chris Martin", "Hannah Scott", "Eric Dunn", "Nina Patel")
BILLING_STAFF = ("Julie Frank", "Omar Haddad")
MANAGERS = ("Dana Whitfield", "Greg Lawson", "Bob Russo")
#: Kayako staff, id = position + 1 (0 means unassigned).
STAFF = TSC_AGENTS + CS_STAFF + ENGINEERS + TS_STAFF + BILLING_STAFF + MANAGERS


def _staff_ids(names: Sequence[str]) -> np.ndarray:
    return np.array([STAFF.index(n) + 1 for n in names], dtype=np.int64)


AGENT_IDS = _staff_ids(TSC_AGENTS)
CS_IDS = _staff_ids(CS_STAFF)
ENGINEER_IDS = _staff_ids(ENGINEERS)
TS_IDS = _staff_ids(TS_STAFF + TSC_AGENTS[:4])
BILLING_IDS = _staff_ids(BILLING_STAFF)
MANAGER_IDS = _staff_ids(MANAGERS)
DEPT_STAFF = (CS_IDS, ENGINEER_IDS, TS_IDS, BILLING_IDS)  # indexed by department code

CITIES = (
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
RESELLERS = (
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
FIRST = (  # noqa: SIM905
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Carlos Karen Daniel Lisa Matthew Nancy Anthony "
    "Betty Mark Sandra Paul Ashley Steven Kimberly Andrew Emily Joshua Donna Kenneth Michelle "
    "Kevin Carol Brian Amanda Jose Melissa Ryan Deborah Jacob Stephanie Gary Rebecca Juan Laura"
).split()
LAST = (  # noqa: SIM905
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez "
    "Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores "
    "Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Dubois O'Brien Kowalski"
).split()

CHANNELS = ("phone", "customer_ticket", "email", "chat")
PHONE, CUSTOMER, EMAIL, CHAT = range(4)
REASONS = ("isp_change", "equipment_change", "wan_lan", "other")
WAIVER_REASONS = (
    "ISP outage - carrier fault, not the customer's choice",
    "Goodwill - new customer onboarding",
    "Our error: previous change misconfigured",
    "Manager discretion",
    "Site down - emergency restoration",
)
AGENT_SUBJECTS = (
    "IP change for site {site}",
    "IP Change - {acct} - Site {site}",
    "Change of IP address",
    "WAN IP update",
    "IP change request - {city}",
    "Need new static IP - ISP changed",
    "Static IP change - {acct}",
    "IP change for site {site} ({reseller})",
)
USER_SUBJECTS = (
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
OTHER_SUBJECTS: tuple[tuple[tuple[str, str], ...], ...] = (
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
ISP_FIRST_OCTETS = np.array(
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

DAY = 86_400
HOUR = 3_600
MINUTE = 60
NA = np.int64(-(2**62))  # "no timestamp" in int64 arrays
