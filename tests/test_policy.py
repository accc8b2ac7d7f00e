"""The policy file: defaults from the procedure, versions, validation messages."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ipchange_core import PolicyError, load_policy
from tests.domain import at


def write(tmp_path, text):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_default_reproduces_the_procedure():
    p = load_policy().latest
    assert p.timezone == "America/Chicago"
    assert p.weekdays == (0, 1, 2, 3, 4)
    assert (p.open_time, p.close_time) == (dt.time(9), dt.time(17))
    assert p.threshold_hours == 48
    assert p.notice_measure == "calendar"
    assert p.fee_cents == 25000
    assert p.holiday_country is None and p.holiday_dates == ()
    assert p.routing_department == "Implementation"
    assert dict(p.agent_ticket) == {"department": "Implementation", "status": "New", "owner": ""}
    assert p.sla_targets.routing_business_hours == 1
    assert p.sla_targets.on_time_pct == 95
    assert p.look_ahead_business_hours == 8


def test_look_ahead_is_versioned_like_the_other_settings(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: v2\n    effective_from: 2027-01-01\n"
            "    check: {look_ahead_business_hours: 16}\n",
        )
    )
    assert [p.look_ahead_business_hours for p in ps.versions] == [8, 16]
    assert ps.as_dict()["versions"][1]["look_ahead_business_hours"] == 16


def test_user_version_inherits_and_only_changes_what_it_says(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: v2\n    effective_from: 2027-01-01\n    fee: {amount_cents: 30000}\n",
        )
    )
    assert [p.version for p in ps.versions] == ["2014-08-05", "v2"]
    assert ps.latest.fee_cents == 30000
    assert ps.latest.threshold_hours == 48
    assert ps.latest.currency == "USD"


def test_version_in_force_at_local_midnight(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: v2\n    effective_from: 2027-01-01\n    fee: {amount_cents: 1}\n",
        )
    )
    assert ps.for_instant(at("2026-12-31 23:59:59.999999")).version == "2014-08-05"
    assert ps.for_instant(at("2027-01-01 00:00")).version == "v2"
    # before the first version: judged by the first
    assert ps.for_instant(pd.Timestamp("2001-01-01", tz="UTC")).version == "2014-08-05"


def test_same_effective_date_replaces_default(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: mine\n    effective_from: 2014-08-05\n    notice: {threshold_hours: 24}\n",
        )
    )
    assert [p.version for p in ps.versions] == ["mine"]
    assert ps.latest.threshold_hours == 24


BAD = [
    (
        "unknown-key",
        "    notice: {threshold_hrs: 24}\n",
        "notice.threshold_hrs: unknown key (did you mean 'threshold_hours'?)",
    ),
    (
        "negative-threshold",
        "    notice: {threshold_hours: -1}\n",
        "notice.threshold_hours: must be greater than 0",
    ),
    ("fee-float", "    fee: {amount_cents: 250.5}\n", "fee.amount_cents: expected whole cents"),
    ("bad-zone", "    timezone: Mars/Olympus\n", "timezone: unknown time zone 'Mars/Olympus'"),
    (
        "open-after-close",
        "    business_hours: {open: '18:00'}\n",
        "open 18:00:00 must be before close 17:00:00",
    ),
    (
        "unquoted-time",
        "    business_hours: {open: 9}\n",
        "business_hours.open: expected a local time 'HH:MM'",
    ),
    ("bad-weekday", "    business_hours: {weekdays: [mon, funday]}\n", "business_hours.weekdays"),
    ("bad-measure", "    notice: {measure: lunar}\n", "notice.measure: expected one of"),
    (
        "bad-country",
        "    holidays: {country: XX}\n",
        "holidays.country: 'XX' is not a holidays country",
    ),
    (
        "bad-regex",
        "    request_filter: {subject_pattern: '(unclosed'}\n",
        "subject_pattern: invalid regex",
    ),
    (
        "pct-over-100",
        "    sla_targets: {on_time_pct: 120}\n",
        "on_time_pct: a percentage cannot exceed 100",
    ),
    # impossible dates: the YAML reader keeps them as text, the key's check names them
    (
        "no-13th-month",
        "    holidays: {dates: [2026-13-01]}\n",
        "holidays.dates[0]: no such date: '2026-13-01'",
    ),
    (
        "no-30-february",
        "    holidays: {dates: [2026-02-30]}\n",
        "holidays.dates[0]: no such date: '2026-02-30'",
    ),
    (
        "date-not-a-date",
        "    holidays: {dates: [[2026, 1, 1]]}\n",
        "holidays.dates[0]: expected a date (YYYY-MM-DD), got [2026, 1, 1]",
    ),
    (
        "date-time-not-a-date",
        "    holidays: {dates: [2026-12-24 10:00:00]}\n",
        "expected a date (YYYY-MM-DD), got a date-time",
    ),
    # huge and non-finite numbers
    (
        "threshold-infinite",
        "    notice: {threshold_hours: .inf}\n",
        "notice.threshold_hours: must be at most 87840, got inf",
    ),
    (
        "threshold-nan",
        "    notice: {threshold_hours: .nan}\n",
        "notice.threshold_hours: must be greater than 0, got nan",
    ),
    (
        "target-1e400",
        "    sla_targets: {routing_business_hours: 1.0e+400}\n",
        "routing_business_hours: must be at most 87840",
    ),
    (
        "fee-huge",
        "    fee: {amount_cents: 100000000000000000000000}\n",
        "fee.amount_cents: expected whole cents from 0 to 1000000000, got 100000000000000000000000",
    ),
    (
        "fee-5000-digits",
        "    fee: {amount_cents: " + "9" * 5000 + "}\n",
        "fee.amount_cents: expected whole cents from 0 to 1000000000, got '99999",
    ),
    # wrong types
    ("version-a-list", "    version: [a, b]\n", "version: expected a name, got ['a', 'b']"),
    (
        "time-a-list",
        "    business_hours: {open: [9, 0]}\n",
        "business_hours.open: expected a local time 'HH:MM' in quotes, got [9, 0]",
    ),
    (
        "country-a-list",
        "    holidays: {country: [US]}\n",
        "holidays.country: ['US'] is not a holidays country",
    ),
    ("zone-a-number", "    timezone: 5\n", "timezone: expected a non-empty text, got 5"),
    (
        "look-ahead-zero",
        "    check: {look_ahead_business_hours: 0}\n",
        "check.look_ahead_business_hours: must be greater than 0",
    ),
    (
        "kayako-id-not-int",
        "    kayako: {departments: {one: Implementation}}\n",
        "kayako.departments.one",
    ),
    (
        "audit-template-one-placeholder",
        "    kayako_audit: {messages: {status: ['Status: %s']}}\n",
        "kayako_audit.messages.status: 'Status: %s' must hold %s twice",
    ),
    (
        "audit-template-unknown-field",
        "    kayako_audit: {messages: {priority: ['from %s to %s']}}\n",
        "kayako_audit.messages.priority: unknown field",
    ),
    (
        "audit-day-first-not-bool",
        "    kayako_audit: {report_day_first: sometimes}\n",
        "kayako_audit.report_day_first: expected true or false",
    ),
    (
        "cloud-info-unknown-field",
        "    cloud_info: {labels: {ticket_id: [Ticket]}}\n",
        "cloud_info.labels.ticket_id: unknown field",
    ),
    (
        "cloud-info-label-with-colon",
        "    cloud_info: {labels: {account: ['Account:']}}\n",
        "cloud_info.labels.account: expected a non-empty list of labels without ':'",
    ),
    (
        "cloud-info-no-labels",
        "    cloud_info: {labels: {account: []}}\n",
        "cloud_info.labels.account: expected a non-empty list",
    ),
    (
        "cloud-info-label-of-two-fields",
        "    cloud_info: {labels: {contact_phone: [Account  number]}}\n",
        "cloud_info.labels: 'Account  number' is a label of both account and contact_phone",
    ),
    (
        "cloud-info-word-unknown-value",
        "    cloud_info: {words: {reason: {fiber: [fibre]}}}\n",
        "cloud_info.words.reason.fiber: not a reason value",
    ),
    (
        "cloud-info-word-of-two-values",
        "    cloud_info: {words: {channel: {chat: [Phone]}}}\n",
        "cloud_info.words.channel: 'Phone' stands for both phone and chat",
    ),
    (
        "cloud-info-words-of-a-text-field",
        "    cloud_info: {words: {account: {a: [b]}}}\n",
        "cloud_info.words.account: expected one of channel, requester_type, reason",
    ),
    (
        "cloud-info-format-without-day",
        "    cloud_info: {requested_format: '%m/%Y %H:%M'}\n",
        "cloud_info.requested_format: '%m/%Y %H:%M' is unusable",
    ),
    (
        "cloud-info-post-bound",
        "    cloud_info: {max_post_chars: 10}\n",
        "cloud_info.max_post_chars: expected a whole number from 100 to 10000000, got 10",
    ),
    (
        "cloud-info-wins",
        "    cloud_info: {wins: newest}\n",
        "cloud_info.wins: expected one of later, posts, file, got 'newest'",
    ),
    (
        "cloud-info-marker-blank",
        "    cloud_info: {marker: '  '}\n",
        "cloud_info.marker: expected a non-empty text",
    ),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD, ids=[b[0] for b in BAD])
def test_invalid_policy_names_key_and_problem(tmp_path, case, body, message):
    path = write(tmp_path, "versions:\n  - version: x\n    effective_from: 2027-01-01\n" + body)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2", "not valid YAML"),
        ("versions: []\n", "non-empty list 'versions'"),
        (
            "versions:\n  - effective_from: 2027-01-01\n",
            "'version' and 'effective_from' are required",
        ),
        (
            "versions:\n  - {version: a, effective_from: 'soon'}\n",
            "expected a date (YYYY-MM-DD), got 'soon'",
        ),
        (
            "versions:\n  - {version: '2014-08-05', effective_from: 2027-01-01}\n",
            "version names must be unique",
        ),
    ],
)
def test_malformed_policy_files(tmp_path, text, message):
    with pytest.raises(PolicyError, match=None) as err:
        load_policy(write(tmp_path, text))
    assert message in str(err.value)


def test_impossible_effective_from_names_file_and_key(tmp_path):
    path = write(tmp_path, "versions:\n  - version: x\n    effective_from: 2026-13-01\n")
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert str(err.value) == f"{path}: versions[0].effective_from: no such date: '2026-13-01'"


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{b}: &{b} [*{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}, *{a}]\n"
    for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a billion laughs: 10**9 values once expanded, refused before anything walks it
        (BOMB + "versions: *i\n", "not valid YAML: expands to more than 100,000 values"),
        ("versions: &v [*v]\n", "not valid YAML: expands to more than 100,000 values"),
        ("versions: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML: nested too deeply"),
        ("", "expected a mapping with a non-empty list 'versions'"),
        ("versions: [1]\n", "versions[0]: expected a mapping"),
    ],
    ids=[
        "billion-laughs",
        "recursive-alias",
        "deep-nesting",
        "empty-file",
        "version-not-a-mapping",
    ],
)
def test_hostile_policy_yaml(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load_policy(path)
    assert message in str(err.value)
    assert str(err.value).startswith(f"{path}: ")
    assert len(str(err.value)) < 400  # a bounded message, not the expanded value


def test_a_bomb_in_a_value_is_refused_too(tmp_path):
    path = write(
        tmp_path,
        BOMB
        + "versions:\n  - {version: x, effective_from: 2027-01-01, request_filter: {tags: *i}}\n",
    )
    with pytest.raises(PolicyError, match="expands to more than 100,000 values"):
        load_policy(path)


def test_unreadable_policy_files(tmp_path):
    (tmp_path / "latin1.yaml").write_bytes(b"versions:\n  - version: caf\xe9\n")
    with pytest.raises(PolicyError, match=r"latin1\.yaml: cannot read policy file: .*utf-8"):
        load_policy(tmp_path / "latin1.yaml")
    with pytest.raises(PolicyError, match=r"cannot read policy file: \[Errno 21\] Is a directory"):
        load_policy(tmp_path)


def test_missing_file_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_holiday_dates_and_country(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: h\n    effective_from: 2014-08-05\n    holidays: {country: US, dates: [2026-12-24]}\n",
        )
    )
    assert ps.latest.holiday_country == "US"
    assert ps.latest.holiday_dates == (dt.date(2026, 12, 24),)


def test_audit_message_templates_in_another_language(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: de\n    effective_from: 2027-01-01\n    kayako_audit:\n"
            "      messages: {department: ['Ticketabteilung geändert von: %s zu: %s']}\n"
            "      unassigned: '-- Nicht zugewiesen --'\n      report_day_first: true\n",
        )
    )
    audit = ps.latest.kayako_audit
    assert audit.templates("department") == ("Ticketabteilung geändert von: %s zu: %s",)
    assert audit.templates("owner") == ("Ticket owner changed from: %s to: %s",)  # kept
    assert (audit.unassigned, audit.report_day_first) == ("-- Nicht zugewiesen --", True)
    assert ps.versions[0].kayako_audit.templates("department") == (
        "Ticket department changed from: %s to: %s",
    )


def test_the_cloud_info_macro_is_versioned_like_the_other_settings(tmp_path):
    ps = load_policy(
        write(
            tmp_path,
            "versions:\n  - version: v2\n    effective_from: 2027-01-01\n    cloud_info:\n"
            "      labels: {account: [Acct, Account]}\n"
            "      words: {channel: {phone: [telephone]}}\n"
            "      requested_format: '%d.%m.%Y %H:%M'\n      wins: posts\n",
        )
    )
    first, latest = ps.versions[0].cloud_info, ps.latest.cloud_info
    assert first.labels["account"] == ("Account", "Account number")
    assert latest.labels["account"] == ("Acct", "Account")
    assert latest.labels["site"] == ("Site",)  # inherited
    assert latest.value_of_word("channel")["telephone"] == "phone"
    assert "phone call" not in latest.value_of_word("channel")  # the value's words replaced
    assert latest.value_of_word("channel")["e-mail"] == "email"  # the others inherited
    assert (first.requested_format, latest.requested_format) == (
        "%m/%d/%Y %I:%M %p",
        "%d.%m.%Y %H:%M",
    )
    assert (first.wins, latest.wins) == ("later", "posts")
    assert ps.as_dict()["versions"][1]["cloud_info"]["wins"] == "posts"
