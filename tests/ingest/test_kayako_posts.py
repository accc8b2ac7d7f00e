"""Intake from Kayako's ticket posts: the "cloud info" macro (issue 27).

Labels and their variants, value formats, which post gives what, HTML posts, both XML forms
(``<posts>`` and a single-ticket ``<tickets>``) in both wire styles, bad input (each a reject
naming ticket, post and field), and a property: any macro rendered with random labels,
spacing, case and order reads back as the record it was rendered from.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest import detect_format, read_file, read_posts
from ipchange_core.ingest.kayako_posts import html_text, parse_macro
from ipchange_core.policy import CLOUD_INFO_FIELDS, CloudInfo, load_policy
from ipchange_core.schema import TABLES
from tests.domain import assert_reconciles, at, kayako_ticket, write

MACRO = load_policy().latest.cloud_info
IDS = {"5001": "ABC-123-45678", "5002": "ABC-123-45679"}
T0 = 1793286000  # 2026-10-29 13:00 UTC (08:00 CDT)

ISSUE_MACRO = """Cloud info
Channel: phone
Requester: site
Account: ACCT-10452
Site: Site 114 – Dallas
Reseller:
Contact: Linda Moreno
Contact phone: (214) 555-0142
Person of record: Linda Moreno
Reason: ISP change
Current IP: 72.14.201.18
New IP: 72.14.209.40
Requested change: 10/29/2026 10:00 AM
Ticket number given: yes
Transferred to queue: yes"""


def cdata(value: str) -> str:
    return f"<![CDATA[{value}]]>" if value else ""


def live_post(
    post_id: int,
    contents: str,
    *,
    ticketid: str = "5001",
    dateline: int = T0,
    creator: str = "1",
    ishtml: str = "0",
    fullname: str = "Ann Agent",
) -> str:
    """A ``<post>`` as a live server writes it: CDATA, ``<tag />``, one element a line."""
    values = {
        "id": str(post_id),
        "ticketpostid": str(post_id),
        "ticketid": ticketid,
        "dateline": str(dateline),
        "userid": "0" if creator == "1" else "77",
        "fullname": fullname,
        "email": "ann@tsc.example",
        "emailto": "",
        "ipaddress": "",
        "hasattachments": "0",
        "creator": creator,
        "isthirdparty": "0",
        "ishtml": ishtml,
        "isemailed": "0",
        "staffid": "3" if creator == "1" else "0",
        "contents": contents,
        "isprivate": "0",
    }
    body = "\n".join(f"<{k}><![CDATA[{v}]]></{k}>" if v else f"<{k} />" for k, v in values.items())
    return f"<post>\n{body}\n</post>\n"


def documented_post(post_id: int, contents: str, *, ticketid: str = "5001", **kw: str) -> str:
    """A ``<post>`` as the API documentation shows it: indented, entities, no CDATA."""
    values = {
        "id": str(post_id),
        "ticketpostid": str(post_id),
        "ticketid": ticketid,
        "dateline": str(kw.get("dateline", T0)),
        "fullname": kw.get("fullname", "Ann Agent"),
        "creator": kw.get("creator", "1"),
        "ishtml": kw.get("ishtml", "0"),
        "contents": html.escape(contents, quote=False),
    }
    body = "".join(f"\n\t\t<{k}>{v}</{k}>" for k, v in values.items())
    return f"\t<post>{body}\n\t</post>\n"


def posts_doc(*posts: str) -> str:
    return '<?xml version="1.0" encoding="UTF-8"?>\n<posts>\n' + "".join(posts) + "</posts>\n"


def read(tmp_path: Path, *posts: str, macro: CloudInfo = MACRO, ids=IDS):
    path = write(tmp_path, "posts.xml", posts_doc(*posts))
    parsed = read_file(path, cloud_info=macro, ticket_ids=ids)
    assert_reconciles(parsed)
    return parsed


def one(tmp_path: Path, contents: str, **kw) -> pd.Series:
    parsed = read(tmp_path, live_post(101, contents, **kw))
    assert parsed.rejects.empty, parsed.reject_messages()
    assert len(parsed.frame) == 1
    return parsed.frame.iloc[0]


# --- the issue's macro --------------------------------------------------------------------------


def test_the_issues_macro_reads_as_its_intake_record(tmp_path):
    r = one(tmp_path, "Customer called about the change.\n" + ISSUE_MACRO)
    assert r["ticket_id"] == "ABC-123-45678"
    assert r["received_at"] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert r["agent"] == "Ann Agent"
    assert (r["channel"], r["requester_type"], r["reason"]) == ("phone", "site", "isp_change")
    assert (r["account"], r["site"], r["reseller"]) == ("ACCT-10452", "Site 114 – Dallas", "")
    assert (r["contact_name"], r["contact_phone"]) == ("Linda Moreno", "(214) 555-0142")
    assert r["person_of_record"] == "Linda Moreno"
    assert (r["current_ip"], r["new_ip"]) == ("72.14.201.18", "72.14.209.40")
    assert r["requested_change_at"] == at("2026-10-29 10:00")
    assert not r["requested_asap"]
    assert r["ticket_number_given"] and r["transferred_to_queue"]
    assert (r["source"], r["overrides"]) == ("post 101", "")


# --- labels: every variant ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("Account: ACCT-1", "account", "ACCT-1"),
        ("account: ACCT-1", "account", "ACCT-1"),
        ("ACCOUNT: ACCT-1", "account", "ACCT-1"),
        ("Account : ACCT-1", "account", "ACCT-1"),  # a space before the colon
        ("   Account   :   ACCT-1   ", "account", "ACCT-1"),  # surrounding spaces
        ("Account:ACCT-1", "account", "ACCT-1"),
        ("Account\t: ACCT-1", "account", "ACCT-1"),
        ("Account number: ACCT-1", "account", "ACCT-1"),  # an alias
        ("Contact: Pat Doe", "contact_name", "Pat Doe"),
        ("Contact name: Pat Doe", "contact_name", "Pat Doe"),
        ("Contact  Name : Pat Doe", "contact_name", "Pat Doe"),  # inner spaces
        ("Contact phone: (214) 555-0142", "contact_phone", "(214) 555-0142"),
        ("Phone: 555-0100", "contact_phone", "555-0100"),
        ("Person of record: Jane Roe", "person_of_record", "Jane Roe"),
        ("POR: Jane Roe", "person_of_record", "Jane Roe"),
        ("Requester: reseller", "requester_type", "reseller"),
        ("Requester type: site", "requester_type", "site"),
        ("Current IP: 10.0.0.1", "current_ip", "10.0.0.1"),
        ("Old IP: 10.0.0.1", "current_ip", "10.0.0.1"),
        ("New IP: 2001:db8::1", "new_ip", "2001:db8::1"),  # the value's colons stay
        ("Requested change: ASAP", "requested_change_at", "ASAP"),
        ("Requested change time: ASAP", "requested_change_at", "ASAP"),
        ("Requested time: ASAP", "requested_change_at", "ASAP"),
        ("Ticket number given: no", "ticket_number_given", "no"),
        ("Transferred to queue: yes", "transferred_to_queue", "yes"),
        ("Site: Site 114 – Dallas: 2nd floor", "site", "Site 114 – Dallas: 2nd floor"),
        ("Reseller: Acme & Sons", "reseller", "Acme & Sons"),
        ("Reseller:", "reseller", ""),
    ],
)
def test_every_label_variant(line, field, value):
    macro = parse_macro(f"Cloud info\n{line}\n", MACRO)
    assert macro is not None
    assert macro.fields == {field: value}


@pytest.mark.parametrize(
    "text",
    [
        "cloud info\nAccount: A",
        "CLOUD INFO\nAccount: A",
        "  Cloud info  \nAccount: A",
        "Cloud info:\nAccount: A",
        "Called in.\r\nCloud info\r\nAccount: A\r\n",
        "Notes before\n\nCloud info\n\nAccount: A\n\nThanks, Ann",
    ],
)
def test_the_marker_line_in_any_case_and_spacing(text):
    assert parse_macro(text, MACRO).fields == {"account": "A"}


@pytest.mark.parametrize(
    "text",
    [
        "Account: A",  # no marker
        "Cloud information\nAccount: A",  # not the marker line
        "See the cloud info below\nAccount: A",  # the words, not the line
    ],
)
def test_no_marker_line_no_macro(text):
    assert parse_macro(text, MACRO) is None


def test_lines_before_the_marker_and_unknown_labels_are_not_fields():
    macro = parse_macro("Account: WRONG\nCloud info\nAccount: A\nFavourite colour: blue\n", MACRO)
    assert macro.fields == {"account": "A"}
    assert macro.labels == {"account": "Account"}


def test_a_label_given_twice_with_two_values_is_a_problem_of_that_field():
    macro = parse_macro(
        "Cloud info\nAccount: A\naccount : A\nNew IP: 1.2.3.4\nNew IP: 1.2.3.5", MACRO
    )
    assert macro.fields == {"account": "A", "new_ip": "1.2.3.4"}
    assert [p[0] for p in macro.problems] == ["new_ip"]


def test_a_help_desk_with_another_macro_changes_the_labels(tmp_path):
    policy = write(
        tmp_path,
        "p.yaml",
        "versions:\n  - version: de\n    effective_from: 2027-01-01\n    cloud_info:\n"
        "      marker: Cloud-Infos\n      labels: {account: [Kundennummer], new_ip: [Neue IP]}\n",
    )
    macro = load_policy(policy).latest.cloud_info
    text = "Cloud-Infos\nKundennummer: K-1\nNeue IP: 10.0.0.9\nAccount: not a label any more"
    assert parse_macro(text, macro).fields == {"account": "K-1", "new_ip": "10.0.0.9"}
    assert parse_macro(ISSUE_MACRO, macro) is None


# --- value formats ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected", "asap"),
    [
        ("10/29/2026 10:00 AM", at("2026-10-29 10:00"), False),
        ("10/29/2026 10:00 PM", at("2026-10-29 22:00"), False),
        ("10/29/2026 12:00 AM", at("2026-10-29 00:00"), False),
        ("10/29/2026 12:30 PM", at("2026-10-29 12:30"), False),
        ("1/5/2027 9:05 am", at("2027-01-05 09:05"), False),  # CST, lower-case am
        ("01/05/2027 09:05 AM", at("2027-01-05 09:05"), False),
        ("2026-10-29T10:00:00-05:00", at("2026-10-29 10:00"), False),
        ("2026-10-29T15:00Z", at("2026-10-29 10:00"), False),
        ("2026-10-29 10:00", at("2026-10-29 10:00"), False),  # ISO local time
        ("ASAP", pd.NaT, True),
        ("asap", pd.NaT, True),
        ("", pd.NaT, False),
    ],
)
def test_requested_change_formats(tmp_path, typed, expected, asap):
    r = one(tmp_path, f"Cloud info\nChannel: phone\nRequested change: {typed}")
    assert r["requested_asap"] == asap
    assert (pd.isna(expected) and pd.isna(r["requested_change_at"])) or (
        r["requested_change_at"] == expected
    )


@pytest.mark.parametrize(
    ("field", "typed", "expected"),
    [
        ("Channel", "phone", "phone"),
        ("Channel", "Phone call", "phone"),
        ("Channel", "CALL", "phone"),
        ("Channel", "e-mail", "email"),
        ("Channel", "Email", "email"),
        ("Channel", "chat", "chat"),
        ("Channel", "customer  ticket", "customer_ticket"),
        ("Channel", "customer_ticket", "customer_ticket"),
        ("Reason", "ISP change", "isp_change"),
        ("Reason", "isp CHANGE", "isp_change"),
        ("Reason", "equipment change", "equipment_change"),
        ("Reason", "WAN/LAN", "wan_lan"),
        ("Reason", "wan lan", "wan_lan"),
        ("Reason", "Other", "other"),
        ("Requester", "Site", "site"),
        ("Requester", "reseller", "reseller"),
    ],
)
def test_words_people_type_become_the_values(tmp_path, field, typed, expected):
    channel = "" if field == "Channel" else "Channel: chat\n"
    r = one(tmp_path, f"Cloud info\n{channel}{field}: {typed}")
    column = {"Channel": "channel", "Reason": "reason", "Requester": "requester_type"}[field]
    assert r[column] == expected


# --- which post ---------------------------------------------------------------------------------


def test_customers_posts_are_never_read_as_intake(tmp_path):
    parsed = read(tmp_path, live_post(1, ISSUE_MACRO, creator="2"))
    assert parsed.frame.empty and parsed.rejects.empty
    assert parsed.rows_skipped == 1
    assert "1 by customers" in parsed.notes[0]


def test_staff_posts_without_the_marker_are_skipped_and_counted(tmp_path):
    parsed = read(
        tmp_path,
        live_post(1, "Please call me back", creator="2"),
        live_post(2, "Routed to Implementation."),
        live_post(3, ISSUE_MACRO, dateline=T0 + 60),
        live_post(4, "Scheduled.", dateline=T0 + 120),
    )
    assert len(parsed.frame) == 1 and parsed.rows_read == 4 and parsed.rows_skipped == 3
    assert "1 by customers" in parsed.notes[0] and "2 by staff without" in parsed.notes[0]
    assert parsed.frame["source_line"].tolist() == [3]


def test_earliest_macro_gives_receipt_and_agent_latest_gives_the_values(tmp_path):
    first = ISSUE_MACRO.replace("72.14.209.40", "72.14.209.44")
    parsed = read(
        tmp_path,
        # the correction comes first in the file: time decides, not the order of the answer
        live_post(12, "Corrected:\n" + ISSUE_MACRO, dateline=T0 + 3600, fullname="Bo Lead"),
        live_post(10, first, dateline=T0, fullname="Ann Agent"),
        live_post(11, "Cloud info\nNew IP: 9.9.9.9", dateline=T0 + 60, creator="2"),
    )
    r = parsed.frame.iloc[0]
    assert r["new_ip"] == "72.14.209.40"
    assert r["received_at"] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert r["agent"] == "Ann Agent"
    assert r["source"] == "post 12 (corrects post 10)"
    assert parsed.rows_skipped == 2  # the customer's post and the corrected macro


def test_same_dateline_the_higher_post_id_is_the_later(tmp_path):
    parsed = read(
        tmp_path,
        live_post(21, "Cloud info\nChannel: chat\nAccount: B"),
        live_post(20, "Cloud info\nChannel: phone\nAccount: A"),
    )
    assert parsed.frame.iloc[0]["account"] == "B"


def test_a_correction_keeps_nothing_of_the_earlier_macro(tmp_path):
    parsed = read(
        tmp_path,
        live_post(1, "Cloud info\nChannel: phone\nSite: Site 1"),
        live_post(2, "Cloud info\nChannel: phone", dateline=T0 + 60),
    )
    assert parsed.frame.iloc[0]["site"] == ""


def test_posts_of_several_tickets_give_one_record_each(tmp_path):
    parsed = read(
        tmp_path,
        live_post(1, "Cloud info\nChannel: phone", ticketid="5001"),
        live_post(2, "Cloud info\nChannel: chat", ticketid="5002"),
    )
    assert sorted(parsed.frame["ticket_id"]) == ["ABC-123-45678", "ABC-123-45679"]


def test_fields_the_macro_leaves_out_are_blank(tmp_path):
    r = one(tmp_path, "Cloud info\nChannel: email\nContact phone:\n")
    assert (r["contact_phone"], r["person_of_record"], r["current_ip"]) == ("", "", "")
    assert pd.isna(r["ticket_number_given"]) and pd.isna(r["requested_change_at"])


# --- HTML posts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "markup",
    [
        "<p>Cloud info<br />Account: A &amp; B<br />Channel: phone</p>",
        "<p>Cloud info</p><p>Account: A &amp; B</p><p>Channel: phone</p>",
        "<div>Cloud info</div>\n<div>Account:&nbsp;A &amp; B</div><div>Channel: <b>phone</b></div>",
        "<p>Cloud info<br>\nAccount: A\n  &amp; B<br/>Channel: phone</p>",  # source wrapped
        "<p>Cloud&nbsp;info<BR>Account: A &#38; B<br />Channel : phone</p>",
    ],
)
def test_html_posts_read_as_their_text(tmp_path, markup):
    r = one(tmp_path, markup, ishtml="1")
    assert (r["account"], r["channel"]) == ("A & B", "phone")


def test_html_text_keeps_the_entities_meaning():
    assert html_text("<p>Site 114 &ndash; Dallas&nbsp;&lt;main&gt;</p>") == (
        "\nSite 114 – Dallas\xa0<main>\n"
    )


def test_a_plain_post_keeps_its_markup_as_text(tmp_path):
    r = one(tmp_path, "Cloud info\nChannel: phone\nSite: <b>Site 1</b> &amp; more")
    assert r["site"] == "<b>Site 1</b> &amp; more"


# --- both XML forms, both wire styles -----------------------------------------------------------


def single_ticket(posts: str, *, indented: bool) -> str:
    ticket = kayako_ticket(5001, displayid="ABC-123-45678")
    if indented:
        return f"<tickets>\n  {ticket[:-9]}\n  <posts>\n{posts}  </posts>\n  </ticket>\n</tickets>"
    return f"<tickets>\n{ticket[:-9]}<posts>\n{posts}</posts>\n</ticket>\n</tickets>\n"


@pytest.mark.parametrize("style", ["live", "documented"])
@pytest.mark.parametrize("form", ["posts", "single-ticket"])
def test_both_forms_and_wire_styles_read_alike(tmp_path, form, style):
    post = (live_post if style == "live" else documented_post)(7, ISSUE_MACRO)
    customer = (live_post if style == "live" else documented_post)(6, "Hello", creator="2")
    if form == "posts":
        text = posts_doc(customer, post)
        ids = IDS
    else:
        text = single_ticket(customer + post, indented=style == "documented")
        ids = {}  # the ticket's own displayid names it: no stored tickets needed
    path = write(tmp_path, "answer.xml", text)
    assert detect_format(path) == "kayako-posts"
    parsed = read_file(path, ticket_ids=ids)
    assert_reconciles(parsed)
    assert parsed.rejects.empty, parsed.reject_messages()
    r = parsed.frame.iloc[0]
    assert (r["ticket_id"], r["account"], r["site"]) == (
        "ABC-123-45678",
        "ACCT-10452",
        "Site 114 – Dallas",
    )
    assert (parsed.rows_read, parsed.rows_skipped) == (2, 1)
    assert any("single-ticket" in n for n in parsed.notes) == (form == "single-ticket")


def test_the_bytes_of_an_answer_read_as_the_file(tmp_path):
    text = posts_doc(live_post(7, ISSUE_MACRO))
    from_file = read_file(write(tmp_path, "a.xml", text), ticket_ids=IDS)
    from_bytes = read_posts(text.encode(), name="a.xml", ticket_ids=IDS)
    pd.testing.assert_frame_equal(from_file.frame, from_bytes.frame)
    assert from_bytes.sha256 == from_file.sha256 and from_bytes.format == "kayako-posts"
    with pytest.raises(ValueError, match="name the answer"):
        read_posts(text.encode())


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("<posts></posts>", "kayako-posts"),
        (single_ticket("", indented=False), "kayako-posts"),
        (f"<tickets>{kayako_ticket(1)}</tickets>", "kayako-xml"),  # ListAll: no posts
        (f"<tickets>{kayako_ticket(1)}{kayako_ticket(2)}</tickets>", "kayako-xml"),
        ("<tickets></tickets>", "kayako-xml"),
    ],
)
def test_detection_keeps_ticket_exports_ticket_exports(tmp_path, text, fmt):
    assert detect_format(write(tmp_path, "x.xml", text)) == fmt


def test_a_ticket_export_whose_tickets_carry_posts_stays_a_ticket_export():
    assert detect_format(Path(__file__).parent.parent / "fixtures" / "kayako-tickets.xml") == (
        "kayako-xml"
    )


def test_an_empty_posts_answer_reads_nothing(tmp_path):
    parsed = read(tmp_path)
    assert parsed.rows_read == 0 and parsed.frame.empty


# --- bad input: each a reject naming ticket, post and field ---------------------------------------


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("Requested change: tomorrow 10am", "Requested change", "does not match the date format"),
        ("Requested change: 13/29/2026 10:00 AM", "Requested change", "not a real date"),
        ("Requested change: 3/8/2026 2:30 AM", "Requested change", "does not exist"),  # DST gap
        ("Requested change: 11/1/2026 1:30 AM", "Requested change", "ambiguous"),  # overlap
        ("Requested change: 2/30/2027 10:00 AM", "Requested change", "not a real date"),
        ("New IP: 72.14.209.400", "New IP", "not a valid IP address"),
        ("Current IP: 10.0.0", "Current IP", "not a valid IP address"),
        ("Reason: ISP swap", "Reason", "cloud_info.words.reason"),
        ("Requester: landlord", "Requester", "cloud_info.words.requester_type"),
        ("Ticket number given: maybe", "Ticket number given", "not yes or no"),
        ("New IP: 1.2.3.4\nNew IP: 1.2.3.5", "New IP", "given twice"),
    ],
)
def test_bad_values_are_rejects_naming_ticket_post_and_field(tmp_path, line, column, reason):
    parsed = read(tmp_path, live_post(4412, f"Cloud info\nChannel: phone\n{line}"))
    assert parsed.frame.empty
    assert len(parsed.rejects) == 1, parsed.reject_messages()
    bad = parsed.rejects.iloc[0]
    assert (bad["ticket_id"], bad["column"]) == ("ABC-123-45678", column)
    assert bad["reason"].startswith("post 4412: ") and reason in bad["reason"]


def test_an_unknown_channel_word_is_one_reject_not_two(tmp_path):
    parsed = read(tmp_path, live_post(9, "Cloud info\nChannel: carrier pigeon"))
    assert parsed.rejects[["column", "value"]].to_numpy().tolist() == [
        ["Channel", "carrier pigeon"]
    ]


def test_a_post_whose_ticket_is_not_stored_is_a_reject_naming_it(tmp_path):
    parsed = read(tmp_path, live_post(31, ISSUE_MACRO, ticketid="9999"))
    bad = parsed.rejects.iloc[0]
    assert (bad["column"], bad["value"], bad["ticket_id"]) == ("ticketid", "9999", "9999")
    assert "post 31: ticketid '9999' matches no stored ticket" in bad["reason"]


def test_a_macro_naming_no_ticket_is_a_reject(tmp_path):
    parsed = read(tmp_path, live_post(32, ISSUE_MACRO, ticketid=""))
    bad = parsed.rejects.iloc[0]
    assert len(parsed.rejects) == 1 and (bad["column"], bad["ticket_id"]) == ("ticketid", "")
    assert bad["reason"] == "post 32: is blank, but a value is required"


def test_a_post_too_large_is_a_reject_never_a_crash(tmp_path):
    huge = ISSUE_MACRO + "\n" + "x" * MACRO.max_post_chars
    parsed = read(tmp_path, live_post(5, huge), live_post(6, ISSUE_MACRO, ticketid="5002"))
    assert parsed.frame["ticket_id"].tolist() == ["ABC-123-45679"]
    bad = parsed.rejects.iloc[0]
    assert (bad["line"], bad["column"], bad["ticket_id"]) == (1, "contents", "ABC-123-45678")
    assert (
        bad["reason"].startswith("post 5: the post holds 20,") and "max_post_chars" in bad["reason"]
    )
    assert len(bad["value"]) <= 60


@pytest.mark.parametrize("char", ["\x7f", "\x85", "\x9b"])
def test_a_post_with_control_characters_is_a_reject(tmp_path, char):
    parsed = read(tmp_path, live_post(8, ISSUE_MACRO.replace("Linda", f"Lin{char}da", 1)))
    bad = parsed.rejects.iloc[0]
    assert parsed.frame.empty and bad["column"] == "contents"
    assert f"U+{ord(char):04X}" in bad["reason"] and bad["reason"].startswith("post 8: ")


def test_a_raw_control_character_refuses_the_answer_as_malformed_xml(tmp_path):
    path = write(tmp_path, "p.xml", posts_doc(live_post(8, "Cloud info\nSite: a\x01b")))
    with pytest.raises(InvalidInputError, match=r"^p\.xml: malformed XML at line \d+"):
        read_file(path)


def test_a_bad_dateline_is_a_reject(tmp_path):
    parsed = read(tmp_path, live_post(8, ISSUE_MACRO).replace(str(T0), "yesterday"))
    assert parsed.rejects.iloc[0]["reason"].startswith("post 8: the post's dateline")


def test_counts_reconcile_over_a_mixed_answer(tmp_path):
    parsed = read(
        tmp_path,
        live_post(1, "hi", creator="2"),
        live_post(2, ISSUE_MACRO),
        live_post(3, ISSUE_MACRO, dateline=T0 + 5),
        live_post(4, "Cloud info\nNew IP: nope", ticketid="5002"),
        live_post(5, "x" * 30_000, ticketid="5002"),
        live_post(6, "note"),
        live_post(7, ISSUE_MACRO, ticketid="404"),
    )
    assert (parsed.rows_read, len(parsed.frame), parsed.rows_rejected, parsed.rows_skipped) == (
        7,
        1,
        3,
        3,
    )


# --- the property: any rendered macro reads back as its record -----------------------------------

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=12
).map(str.strip)
_VALUES = {
    "channel": st.sampled_from(["phone", "email", "chat", "customer_ticket"]),
    "requester_type": st.sampled_from(["site", "reseller"]),
    "reason": st.sampled_from(["isp_change", "equipment_change", "wan_lan", "other"]),
    "current_ip": st.ip_addresses(v=4).map(str),
    "new_ip": st.ip_addresses(v=4).map(str),
    "ticket_number_given": st.sampled_from(["yes", "no"]),
    "transferred_to_queue": st.sampled_from(["yes", "no"]),
    "requested_change_at": st.just("ASAP"),
}


@st.composite
def rendered_macros(draw):
    """A record, and a macro of it as someone may have typed it (plain or HTML)."""
    fields = draw(st.lists(st.sampled_from(CLOUD_INFO_FIELDS), unique=True, max_size=14))
    record = {f: draw(_VALUES.get(f, _TEXT)) for f in fields}
    record = {f: v for f, v in record.items() if ":" not in v or f in ("new_ip", "site")}
    lines = []
    for field, value in record.items():
        label = draw(st.sampled_from(MACRO.labels[field]))
        case = draw(st.sampled_from([str, str.lower, str.upper, str.title]))
        words = MACRO.words.get(field, {}).get(value)
        typed = draw(st.sampled_from([value, *words])) if words else value
        left, before, after = (draw(st.sampled_from(["", " ", "  ", "\t"])) for _ in range(3))
        lines.append(f"{left}{case(label)}{before}:{after}{typed}")
    marker = draw(st.sampled_from(["Cloud info", "cloud info", " CLOUD INFO "]))
    text = "\n".join([draw(st.sampled_from(["", "Called at 9."])), marker, *lines])
    as_html = draw(st.booleans())
    if as_html:
        text = "<p>" + "<br />".join(html.escape(line) for line in text.split("\n")) + "</p>"
    return record, text, as_html


@given(rendered_macros())
def test_any_rendered_macro_reads_back_as_its_record(case):
    record, text, as_html = case
    macro = parse_macro(html_text(text) if as_html else text, MACRO)
    assert macro is not None and not macro.problems
    # the reference: the record as rendered, white space as HTML collapses it
    expected = {f: " ".join(v.split()) if as_html else v for f, v in record.items()}
    got = dict(macro.fields)
    for field in MACRO.words:  # words are compared after the policy maps them
        if field in got:
            got[field] = MACRO.value_of_word(field)[" ".join(got[field].split()).casefold()]
    if as_html:
        got = {f: " ".join(v.split()) for f, v in got.items()}
    assert got == expected


def test_every_enumerated_value_has_words():
    for column in TABLES["intake"]:
        if column.kind == "enum":
            assert set(MACRO.words[column.name]) == set(column.values)


_XML_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",)).filter(
    lambda c: (
        c in "\t\n\r"
        or ("\x20" <= c <= "\ud7ff")
        or ("\ue000" <= c <= "\ufffd")
        or c >= "\U00010000"
    )
)
_PIECES = st.one_of(
    st.sampled_from(
        [
            "Cloud info", "cloud INFO:", "Account: ", "New IP : ", "Reason: ISP change",
            "Reason: ???", "Requested change: ", "10/29/2026 10:00 AM", "3/8/2026 2:30 AM",
            "ASAP", "<br />", "<p>", "</p>", "&amp;", "&#1;", "&nbsp;", "\n", ":", "\x85", "\x7f",
            "Channel: phone", "Channel: fax", "Ticket number given: perhaps", "2001:db8::1",
        ]
    ),
    st.text(_XML_CHARS, max_size=20),
)  # fmt: skip


@st.composite
def random_posts(draw):
    """Posts with random contents (pieces of macros, markup, control characters, noise), and
    the ticketid of each."""
    posts, tickets = [], []
    for n in range(draw(st.integers(0, 6))):
        contents = "".join(draw(st.lists(_PIECES, max_size=25))) or "x"
        if draw(st.integers(0, 9)) == 0:  # just past max_post_chars
            contents *= MACRO.max_post_chars // len(contents) + 1
        ticket = draw(st.sampled_from(["5001", "5002", "404", ""]))
        tickets.append(ticket)
        posts.append(
            documented_post(
                n + 1,
                contents,
                ticketid=ticket,
                creator=draw(st.sampled_from(["1", "1", "2", ""])),
                ishtml=draw(st.sampled_from(["0", "1", "2"])),
                dateline=draw(st.sampled_from([str(T0), str(T0 + 60), "0", "-5", "x"])),
            )
        )
    return posts, tickets


@given(random_posts())
def test_any_posts_read_without_a_crash_and_reconcile(case):
    posts, tickets = case
    parsed = read_posts(posts_doc(*posts).encode(), name="posts.xml", ticket_ids=IDS)
    assert_reconciles(parsed)
    assert parsed.rows_read == len(posts)
    assert parsed.rejects["reason"].str.match(r"post \d+: ").all()
    # each reject names its post's ticket: the stored mask id, else the id the post gave
    named = [IDS.get(tickets[line - 1], tickets[line - 1]) for line in parsed.rejects["line"]]
    assert parsed.rejects["ticket_id"].tolist() == named
