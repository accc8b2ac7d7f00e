"""The policy: the procedure's rules as versioned data, loaded and validated from YAML."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ipchange_core.errors import PolicyError
from ipchange_core.yamlconfig import brief, load_config_yaml

if TYPE_CHECKING:  # imported where used: `ipchange policy show` needs no pandas
    import numpy as np
    import pandas as pd

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NOTICE_MEASURES = ("calendar", "business")


@dataclass(frozen=True)
class KayakoLookups:
    """Kayako Classic numeric ids of one help desk, mapped to names."""

    departments: Mapping[int, str]
    statuses: Mapping[int, str]
    types: Mapping[int, str]


ENGLISH_AUDIT_MESSAGES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "department": ("Ticket department changed from: %s to: %s",),
        "status": (
            "Ticket status changed from: %s to: %s by auto close",
            "Ticket status changed from: %s to: %s",
        ),
        "owner": ("Ticket owner changed from: %s to: %s",),
    }
)
"""Kayako's English language templates of the audit ``actionmsg`` (FORMATS.md 4)."""


@dataclass(frozen=True)
class AuditMessages:
    """How a help desk's audit log writes department/status/owner changes (FORMATS.md 4).

    Attributes:
        messages: Field → its ``actionmsg`` templates, each with two ``%s``: old, then new name.
        unassigned: How the message names "no owner".
        report_day_first: The audit report's dates are ``d/m/yyyy`` (else ``m/d/yyyy``).
    """

    messages: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: ENGLISH_AUDIT_MESSAGES
    )
    unassigned: str = "-- Unassigned --"
    report_day_first: bool = False

    def templates(self, field: str) -> tuple[str, ...]:
        """The templates of ``field`` (``department``, ``status`` or ``owner``)."""
        return tuple(self.messages.get(field, ()))

    def patterns(self, field: str) -> list[str]:
        """The templates of ``field`` as anchored regexes with groups ``old`` and ``new``.

        The longest template is tried first, so that ``… to: %s by auto close`` wins over
        ``… to: %s``.
        """
        out = []
        for template in sorted(self.templates(field), key=len, reverse=True):
            head, middle, tail = template.split("%s")
            out.append(
                f"(?s)^{re.escape(head)}(?P<old>.*?){re.escape(middle)}(?P<new>.*){re.escape(tail)}$"
            )
        return out


CLOUD_INFO_FIELDS = (
    "channel",
    "requester_type",
    "account",
    "site",
    "reseller",
    "contact_name",
    "contact_phone",
    "person_of_record",
    "reason",
    "current_ip",
    "new_ip",
    "requested_change_at",
    "ticket_number_given",
    "transferred_to_queue",
)
"""The ``intake`` fields a cloud-info macro carries (the ticket, the receipt time and the agent
come from the post itself)."""


ENGLISH_CLOUD_INFO_LABELS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "channel": ("Channel",),
        "requester_type": ("Requester", "Requester type"),
        "account": ("Account", "Account number"),
        "site": ("Site",),
        "reseller": ("Reseller",),
        "contact_name": ("Contact", "Contact name"),
        "contact_phone": ("Contact phone", "Phone"),
        "person_of_record": ("Person of record", "POR"),
        "reason": ("Reason",),
        "current_ip": ("Current IP", "Old IP"),
        "new_ip": ("New IP",),
        "requested_change_at": ("Requested change", "Requested change time", "Requested time"),
        "ticket_number_given": ("Ticket number given",),
        "transferred_to_queue": ("Transferred to queue",),
    }
)
"""The default "cloud info" macro's label of each field, then its aliases."""


ENGLISH_CLOUD_INFO_WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "channel": MappingProxyType(
            {
                "phone": ("phone", "phone call", "call"),
                "email": ("email", "e-mail"),
                "chat": ("chat",),
                "customer_ticket": ("customer ticket",),
            }
        ),
        "requester_type": MappingProxyType({"site": ("site",), "reseller": ("reseller",)}),
        "reason": MappingProxyType(
            {
                "isp_change": ("ISP change",),
                "equipment_change": ("equipment change",),
                "wan_lan": ("WAN/LAN", "WAN LAN"),
                "other": ("other",),
            }
        ),
    }
)
"""The words people type for each value of the macro's enumerated fields (every value of the
``intake`` enumerations, ``schema.TABLES``, has an entry)."""


CLOUD_INFO_WINNERS = ("later", "posts", "file")
"""Which intake record stands when a ticket has both: the later load's, the macro's, the file's."""


def label_key(text: str) -> str:
    """A macro label or value word as compared: case-folded, inner white space single."""
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class CloudInfo:
    """The help desk's "cloud info" macro: how intake is read from a ticket's staff posts.

    Attributes:
        marker: The line that marks a post as a cloud-info post (case and surrounding spaces
            ignored).
        labels: Intake field → its label, then its aliases (:data:`CLOUD_INFO_FIELDS`).
        words: Enumerated field → value → the words people type for it; the value itself
            (``isp_change``) is always understood too.
        requested_format: ``strftime`` format of a requested change time, local time in the
            policy zone (``ASAP`` and ISO-8601 are always understood).
        max_post_chars: Longest post (characters of its contents) read; a longer one is a reject.
        wins: Which record stands when a ticket has an intake file row and a macro:
            ``later`` (the later load), ``posts`` (the macro) or ``file`` (the file's row).
    """

    marker: str = "Cloud info"
    labels: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: ENGLISH_CLOUD_INFO_LABELS
    )
    words: Mapping[str, Mapping[str, tuple[str, ...]]] = dataclasses.field(
        default_factory=lambda: ENGLISH_CLOUD_INFO_WORDS
    )
    requested_format: str = "%m/%d/%Y %I:%M %p"
    max_post_chars: int = 20_000
    wins: str = "later"

    def field_of_label(self) -> dict[str, str]:
        """Label or alias as compared (:func:`label_key`) → its intake field."""
        return {label_key(label): f for f, labels in self.labels.items() for label in labels}

    def value_of_word(self, field: str) -> dict[str, str]:
        """Word as compared (:func:`label_key`) → the enumerated value of ``field``."""
        out = {label_key(value): value for value in self.words.get(field, {})}
        for value, words in self.words.get(field, {}).items():
            out.update({label_key(word): value for word in words})
        return out


@dataclass(frozen=True)
class SlaTargets:
    """Targets of the weekly SLA metrics (SPEC 2.2); hours are business hours, pct 0–100."""

    routing_business_hours: float
    confirmation_business_hours: float
    correct_intake_pct: float
    in_hours_pct: float
    on_time_pct: float
    fee_compliance_pct: float


@dataclass(frozen=True)
class RequestFilter:
    """How a help-desk ticket without an intake record is recognised as an IP change request."""

    ticket_types: tuple[str, ...]
    tags: tuple[str, ...]
    subject_pattern: str


@dataclass(frozen=True, eq=False)
class Policy:
    """One version of the rules, in force from local midnight of ``effective_from``.

    Attributes:
        version: Name recorded with every result it produced.
        effective_from: First local date (in ``timezone``) this version applies to.
        timezone: IANA zone of the business hours and of naive input times.
        weekdays: Business weekdays, Monday = 0.
        open_time: Local opening time (inside business hours).
        close_time: Local closing time (outside: windows are half-open).
        holiday_country: ``holidays`` package country code, or None.
        holiday_dates: Extra closed local dates.
        threshold_hours: Notice below this many hours is short notice (strictly less).
        notice_measure: ``calendar`` (real elapsed hours) or ``business`` hours.
        fee_cents: Expedite fee in integer cents.
        currency: ISO currency code of the fee.
        routing_department: Department every IP change ticket must reach.
        agent_ticket: Department, status and owner an agent-created ticket must start with.
        customer_ticket: Department and status a customer-created ticket arrives with.
        request_filter: Recognises requests among other tickets.
        sla_targets: Targets of the SLA metrics.
        kayako: Kayako ids to names.
        look_ahead_business_hours: The morning check (SPEC 5.5) lists an unscheduled change
            once its ``due_at`` is at most this many business hours away (or past).
        kayako_audit: How the help desk's audit log words its messages (optional in the file:
            Kayako's English defaults).
        cloud_info: The "cloud info" macro intake is read from (optional in the file: the
            procedure's macro).
    """

    version: str
    effective_from: dt.date
    timezone: str
    weekdays: tuple[int, ...]
    open_time: dt.time
    close_time: dt.time
    holiday_country: str | None
    holiday_dates: tuple[dt.date, ...]
    threshold_hours: float
    notice_measure: str
    fee_cents: int
    currency: str
    routing_department: str
    agent_ticket: Mapping[str, str]
    customer_ticket: Mapping[str, str]
    request_filter: RequestFilter
    sla_targets: SlaTargets
    kayako: KayakoLookups
    look_ahead_business_hours: float
    kayako_audit: AuditMessages = dataclasses.field(default_factory=AuditMessages)
    cloud_info: CloudInfo = dataclasses.field(default_factory=CloudInfo)

    @property
    def effective_from_utc(self) -> pd.Timestamp:
        """Local midnight of ``effective_from`` as a UTC instant (µs resolution)."""
        import pandas as pd

        local = pd.Timestamp(self.effective_from).tz_localize(
            self.timezone, nonexistent="shift_forward", ambiguous=True
        )
        return local.tz_convert("UTC").as_unit("us")


@dataclass(frozen=True)
class PolicySet:
    """All versions of a policy, ordered by ``effective_from``; the first also covers the past."""

    versions: tuple[Policy, ...]
    sources: tuple[str, ...]
    user_file: Path | None = None
    """The user policy file these versions were read from (None: the default alone)."""

    @property
    def latest(self) -> Policy:
        """The version with the latest ``effective_from``."""
        return self.versions[-1]

    def version_index(self, received_at: pd.Series) -> np.ndarray:
        """Index into ``versions`` of the version in force at each instant.

        Args:
            received_at: Aware instants. A version is in force from local midnight of its
                ``effective_from`` (inclusive) to the next version's (exclusive); instants before
                the first version are judged by the first. NaT gets the latest version.

        Returns:
            An int array of the same length.
        """
        import numpy as np
        import pandas as pd

        starts = pd.DatetimeIndex([p.effective_from_utc for p in self.versions]).as_unit("us").asi8
        utc = pd.Series(received_at).dt.tz_convert("UTC").dt.as_unit("us")
        instants = utc.array.asi8
        idx = np.searchsorted(starts, instants, side="right") - 1
        idx = np.clip(idx, 0, len(starts) - 1)
        return np.where(utc.isna().to_numpy(), len(starts) - 1, idx)

    def for_instant(self, at: pd.Timestamp | dt.datetime) -> Policy:
        """The version in force at one aware instant."""
        import pandas as pd

        return self.versions[int(self.version_index(pd.Series([pd.Timestamp(at)]))[0])]

    def as_dict(self) -> dict[str, Any]:
        """The resolved versions as plain data (what ``ipchange policy show`` prints)."""
        return {
            "sources": list(self.sources),
            "versions": [_to_plain(p) for p in self.versions],
        }


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


DEFAULT_POLICY_RESOURCE = "policy.yaml"


def load_policy(path: str | Path | None = None) -> PolicySet:
    """Load the default policy, extended or overridden by a user policy file.

    Each version in the user file states only what changes; it inherits every other key from the
    version in force just before its ``effective_from``. A user version with the same
    ``effective_from`` as a default one replaces it (still inheriting what it does not state).

    Args:
        path: A user policy YAML, or None for the default alone.

    Raises:
        PolicyError: the file is missing or invalid; the message names the key and the problem.
    """
    default_text = resources.files("ipchange_core").joinpath(DEFAULT_POLICY_RESOURCE).read_text()
    raw = _read_versions(default_text, "default policy")
    sources = ["default policy"]
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"{path}: cannot read policy file: {exc}") from exc
        by_date = {r[1]["effective_from"]: r for r in raw}
        for where, entry in _read_versions(text, str(path)):
            replaced = by_date.get(entry["effective_from"], (where, {}))[1]
            by_date[entry["effective_from"]] = (where, _merge(replaced, entry))
        raw = list(by_date.values())
        sources.append(str(path))
    raw.sort(key=lambda r: r[1]["effective_from"])
    versions: list[Policy] = []
    resolved: dict[str, Any] = {}
    for where, entry in raw:
        resolved = _merge(resolved, entry)
        versions.append(_build(resolved, where))
    names = [p.version for p in versions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PolicyError(f"version names must be unique; repeated: {', '.join(duplicates)}")
    return PolicySet(tuple(versions), tuple(sources), path)


def _read_versions(text: str, source: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        doc = load_config_yaml(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("versions"), list)
        or not doc["versions"]
    ):
        raise PolicyError(f"{source}: expected a mapping with a non-empty list 'versions'")
    if set(doc) - {"versions"}:
        raise PolicyError(
            f"{source}: unknown top-level key(s): {', '.join(sorted(set(doc) - {'versions'}))}"
        )
    out = []
    for i, entry in enumerate(doc["versions"]):
        where = f"{source}: versions[{i}]"
        if not isinstance(entry, dict):
            raise PolicyError(f"{where}: expected a mapping")
        if "effective_from" not in entry or "version" not in entry:
            raise PolicyError(f"{where}: 'version' and 'effective_from' are required")
        entry = dict(entry)
        entry["effective_from"] = _date(entry["effective_from"], f"{where}.effective_from")
        _check_keys(entry, _SHAPE, where)
        out.append((where, entry))
    return out


# Allowed keys: a nested dict is a section; None marks a leaf.
_SHAPE: dict[str, Any] = {
    "version": None,
    "effective_from": None,
    "timezone": None,
    "business_hours": {"weekdays": None, "open": None, "close": None},
    "holidays": {"country": None, "dates": None},
    "notice": {"threshold_hours": None, "measure": None},
    "fee": {"amount_cents": None, "currency": None, "sign_off_by": None},
    "routing": {"department": None},
    "agent_ticket": {"department": None, "status": None, "owner": None},
    "customer_ticket": {"department": None, "status": None},
    "request_filter": {"ticket_types": None, "tags": None, "subject_pattern": None},
    "sla_targets": {f.name: None for f in dataclasses.fields(SlaTargets)},
    "kayako": {"departments": None, "statuses": None, "types": None},
    "check": {"look_ahead_business_hours": None},
    "kayako_audit": {"messages": None, "unassigned": None, "report_day_first": None},
    "cloud_info": {
        "marker": None,
        "labels": None,
        "words": None,
        "requested_format": None,
        "max_post_chars": None,
        "wins": None,
    },
}


def _check_keys(entry: Mapping[str, Any], shape: Mapping[str, Any], where: str) -> None:
    for key, value in entry.items():
        if key not in shape:
            hint = difflib.get_close_matches(str(key), list(shape), n=1)
            suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise PolicyError(f"{where}.{key}: unknown key{suggestion}")
        if shape[key] is not None:
            if not isinstance(value, dict):
                raise PolicyError(f"{where}.{key}: expected a mapping of {', '.join(shape[key])}")
            _check_keys(value, shape[key], f"{where}.{key}")


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "kayako":
            merged[key] = _merge(merged[key], value)
        elif key == "kayako" and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _get(entry: Mapping[str, Any], dotted: str, where: str) -> Any:
    node: Any = entry
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise PolicyError(f"{where}.{dotted}: missing")
        node = node[part]
    return node


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        raise PolicyError(f"{where}: expected a date (YYYY-MM-DD), got a date-time {value}")
    if isinstance(value, dt.date):
        return value
    try:
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return dt.date.fromisoformat(value.strip())
    except ValueError:  # 2026-13-01, 2026-02-30: kept as text by load_config_yaml
        raise PolicyError(f"{where}: no such date: {brief(value)}") from None
    raise PolicyError(f"{where}: expected a date (YYYY-MM-DD), got {brief(value)}")


def _time(value: Any, where: str) -> dt.time:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}", value):
        raise PolicyError(f"{where}: expected a local time 'HH:MM' in quotes, got {brief(value)}")
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        raise PolicyError(f"{where}: not a valid time: {brief(value)}") from None


MAX_FEE_CENTS = 10**9
"""Largest fee in cents ($10 million): more is a typing mistake, and sums stay within int64."""
MAX_HOURS = 24 * 366 * 10
"""Largest notice threshold or SLA target in hours (ten years): more is a typing mistake."""


def _number(value: Any, where: str, *, positive: bool = True, most: float = MAX_HOURS) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{where}: expected a number, got {brief(value)}")
    if positive and not value > 0:
        raise PolicyError(f"{where}: must be greater than 0, got {brief(value)}")
    if not value <= most:  # also NaN and infinity
        raise PolicyError(f"{where}: must be at most {most:g}, got {brief(value)}")
    return float(value)


def _text(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise PolicyError(f"{where}: expected a non-empty text, got {brief(value)}")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: expected a list of texts, got {brief(value)}")
    return tuple(value)


def _audit(value: Any, where: str) -> AuditMessages:
    """The ``kayako_audit`` settings; absent keys keep Kayako's English defaults."""
    default = AuditMessages()
    messages = dict(default.messages)
    for field, templates in (value.get("messages") or {}).items():
        if field not in ENGLISH_AUDIT_MESSAGES:
            raise PolicyError(
                f"{where}.messages.{field}: unknown field; expected one of "
                f"{', '.join(ENGLISH_AUDIT_MESSAGES)}"
            )
        listed = _texts(templates, f"{where}.messages.{field}")
        for template in listed:
            if template.count("%s") != 2:
                raise PolicyError(
                    f"{where}.messages.{field}: {template!r} must hold %s twice "
                    "(the old name, then the new name)"
                )
        messages[field] = listed
    unassigned = value.get("unassigned", default.unassigned)
    day_first = value.get("report_day_first", default.report_day_first)
    if not isinstance(day_first, bool):
        raise PolicyError(f"{where}.report_day_first: expected true or false")
    return AuditMessages(
        messages=MappingProxyType(messages),
        unassigned=_text(unassigned, f"{where}.unassigned"),
        report_day_first=day_first,
    )


def _cloud_info(value: Any, where: str) -> CloudInfo:
    """The ``cloud_info`` settings; absent keys keep the procedure's macro."""
    default = CloudInfo()
    labels = dict(default.labels)
    for field, listed in (value.get("labels") or {}).items():
        if field not in CLOUD_INFO_FIELDS:
            raise PolicyError(
                f"{where}.labels.{field}: unknown field; expected one of "
                f"{', '.join(CLOUD_INFO_FIELDS)}"
            )
        names = _texts(listed, f"{where}.labels.{field}")
        if not names or any(not n.strip() or ":" in n for n in names):
            raise PolicyError(
                f"{where}.labels.{field}: expected a non-empty list of labels without ':'"
            )
        labels[field] = tuple(n.strip() for n in names)
    seen: dict[str, str] = {}
    for field, names in labels.items():
        for name in names:
            other = seen.setdefault(label_key(name), field)
            if other != field:
                raise PolicyError(
                    f"{where}.labels: {name!r} is a label of both {other} and {field}"
                )
    words = {f: dict(v) for f, v in default.words.items()}
    allowed = {f: tuple(t) for f, t in ENGLISH_CLOUD_INFO_WORDS.items()}  # every value
    for field, table in (value.get("words") or {}).items():
        if field not in allowed or not isinstance(table, dict):
            raise PolicyError(
                f"{where}.words.{field}: expected one of {', '.join(allowed)} mapped to "
                "value: [words]"
            )
        for enum, listed in table.items():
            if enum not in allowed[field]:
                raise PolicyError(
                    f"{where}.words.{field}.{enum}: not a {field} value; expected one of "
                    f"{', '.join(allowed[field])}"
                )
            words[field][enum] = _texts(listed, f"{where}.words.{field}.{enum}")
    for field, table in words.items():
        owner: dict[str, str] = {}
        for enum, listed in table.items():
            for word in (enum, *listed):
                other = owner.setdefault(label_key(word), enum)
                if other != enum:
                    raise PolicyError(
                        f"{where}.words.{field}: {word!r} stands for both {other} and {enum}"
                    )
    fmt = _text(value.get("requested_format", default.requested_format), where)
    if fmt != default.requested_format:
        # ingest imports this module, and pandas: only for a policy that sets its own format
        from ipchange_core.ingest.timestamps import strftime_regex

        try:
            strftime_regex(fmt)
        except ValueError as err:
            raise PolicyError(f"{where}.requested_format: {fmt!r} is unusable: {err}") from None
    longest = value.get("max_post_chars", default.max_post_chars)
    if isinstance(longest, bool) or not isinstance(longest, int) or not 100 <= longest <= 10**7:
        raise PolicyError(
            f"{where}.max_post_chars: expected a whole number from 100 to 10000000, "
            f"got {brief(longest)}"
        )
    wins = value.get("wins", default.wins)
    if wins not in CLOUD_INFO_WINNERS:
        raise PolicyError(
            f"{where}.wins: expected one of {', '.join(CLOUD_INFO_WINNERS)}, got {brief(wins)}"
        )
    return CloudInfo(
        marker=_text(value.get("marker", default.marker), f"{where}.marker").strip(),
        labels=MappingProxyType(labels),
        words=MappingProxyType({f: MappingProxyType(t) for f, t in words.items()}),
        requested_format=fmt,
        max_post_chars=longest,
        wins=wins,
    )


def _ids(value: Any, where: str) -> dict[int, str]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: expected a mapping of id: name")
    out = {}
    for k, v in value.items():
        if isinstance(k, bool) or not isinstance(k, int) or not isinstance(v, str):
            raise PolicyError(
                f"{where}.{k}: expected an integer id mapped to a name, got {brief(v)}"
            )
        out[k] = v
    return out


def _build(entry: Mapping[str, Any], where: str) -> Policy:
    g = lambda key: _get(entry, key, where)  # noqa: E731 - a local shorthand
    tz = _text(g("timezone"), f"{where}.timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{where}.timezone: unknown time zone {brief(tz)}") from None
    days = g("business_hours.weekdays")
    if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
        raise PolicyError(
            f"{where}.business_hours.weekdays: expected a non-empty list of {', '.join(WEEKDAYS)}"
        )
    open_t = _time(g("business_hours.open"), f"{where}.business_hours.open")
    close_t = _time(g("business_hours.close"), f"{where}.business_hours.close")
    if open_t >= close_t:
        raise PolicyError(f"{where}.business_hours: open {open_t} must be before close {close_t}")
    country = g("holidays.country")
    if country is not None:
        import holidays as holidays_pkg

        if not isinstance(country, str) or country not in holidays_pkg.list_supported_countries():
            raise PolicyError(
                f"{where}.holidays.country: {brief(country)} is not a holidays country"
            )
    dates = g("holidays.dates")
    if not isinstance(dates, list):
        raise PolicyError(f"{where}.holidays.dates: expected a list of dates")
    measure = g("notice.measure")
    if measure not in NOTICE_MEASURES:
        raise PolicyError(
            f"{where}.notice.measure: expected one of {NOTICE_MEASURES}, got {brief(measure)}"
        )
    fee = g("fee.amount_cents")
    if isinstance(fee, bool) or not isinstance(fee, int) or not 0 <= fee <= MAX_FEE_CENTS:
        raise PolicyError(
            f"{where}.fee.amount_cents: expected whole cents from 0 to {MAX_FEE_CENTS}, "
            f"got {brief(fee)}"
        )
    if g("fee.sign_off_by") != "person_of_record":
        raise PolicyError(f"{where}.fee.sign_off_by: only 'person_of_record' is supported")
    pattern = _text(g("request_filter.subject_pattern"), f"{where}.request_filter.subject_pattern")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"{where}.request_filter.subject_pattern: invalid regex: {exc}") from None
    targets = {
        f.name: _number(g(f"sla_targets.{f.name}"), f"{where}.sla_targets.{f.name}")
        for f in dataclasses.fields(SlaTargets)
    }
    for name, value in targets.items():
        if name.endswith("_pct") and value > 100:
            raise PolicyError(f"{where}.sla_targets.{name}: a percentage cannot exceed 100")
    version = g("version")
    if isinstance(version, bool) or not isinstance(version, str | int | dt.date):
        raise PolicyError(f"{where}.version: expected a name, got {brief(version)}")
    return Policy(
        version=str(version),
        effective_from=g("effective_from"),
        timezone=tz,
        weekdays=tuple(sorted(WEEKDAYS.index(d) for d in set(days))),
        open_time=open_t,
        close_time=close_t,
        holiday_country=country,
        holiday_dates=tuple(_date(d, f"{where}.holidays.dates[{i}]") for i, d in enumerate(dates)),
        threshold_hours=_number(g("notice.threshold_hours"), f"{where}.notice.threshold_hours"),
        notice_measure=measure,
        fee_cents=fee,
        currency=_text(g("fee.currency"), f"{where}.fee.currency"),
        routing_department=_text(g("routing.department"), f"{where}.routing.department"),
        agent_ticket={
            k: _text(g(f"agent_ticket.{k}"), f"{where}.agent_ticket.{k}", allow_empty=k == "owner")
            for k in ("department", "status", "owner")
        },
        customer_ticket={
            k: _text(g(f"customer_ticket.{k}"), f"{where}.customer_ticket.{k}")
            for k in ("department", "status")
        },
        request_filter=RequestFilter(
            ticket_types=_texts(
                g("request_filter.ticket_types"), f"{where}.request_filter.ticket_types"
            ),
            tags=_texts(g("request_filter.tags"), f"{where}.request_filter.tags"),
            subject_pattern=pattern,
        ),
        sla_targets=SlaTargets(**targets),
        kayako=KayakoLookups(
            **{
                k: _ids(g(f"kayako.{k}"), f"{where}.kayako.{k}")
                for k in ("departments", "statuses", "types")
            }
        ),
        look_ahead_business_hours=_number(
            g("check.look_ahead_business_hours"), f"{where}.check.look_ahead_business_hours"
        ),
        kayako_audit=_audit(entry.get("kayako_audit") or {}, f"{where}.kayako_audit"),
        cloud_info=_cloud_info(entry.get("cloud_info") or {}, f"{where}.cloud_info"),
    )
