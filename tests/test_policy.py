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
