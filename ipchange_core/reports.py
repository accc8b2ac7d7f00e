"""Report sections (SPEC 5): one function per section, returning escaped HTML or a chart.

Every function returns an :class:`Html` object, which Jupyter displays through
``_repr_html_``, so each one can be called in a notebook cell: ``reports.sla_tiles(data)`` with
``data = reports.load("2026-W47")``. Ticket text is hostile, so HTML is only ever built here, and
only through ``html.escape`` or ``DataFrame.to_html(escape=True)``. Charts are :class:`Chart`
objects: a live JupyterLab draws their plotly figure itself, an exported report page shows their
HTML, embedded with ``include_plotlyjs=False`` (the page loads plotly.js once, see
:func:`plotly_loader`). Every section says in words when its period has nothing to show.

Manager and billing reports show ticket ids, accounts, sites, resellers and staff names, never a
requester's e-mail address or telephone number: no function here selects those columns.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ipchange_core import __version__, periods, store
from ipchange_core.check import PROBLEM_LABELS, as_of, run_check
from ipchange_core.config import PROJECT_ROOT, database_url, display_url
from ipchange_core.evaluation import evaluate
from ipchange_core.fees import FEE_STATUSES
from ipchange_core.ingest import REJECT_COLUMNS, read_file
from ipchange_core.policy import PolicySet, load_policy
from ipchange_core.requests import ASSEMBLED_COLUMNS
from ipchange_core.schema import NATURAL_KEYS, SOURCE_LINE, TABLES, empty_frame
from ipchange_core.sla import METRICS, breaches, compliance
from ipchange_core.textops import mask_contacts, money

METRIC_LABELS = {
    "routing": "Routed to Implementation",
    "confirmation": "Order confirmed",
    "correct_intake": "Correct intake",
    "in_hours": "Changed in business hours",
    "on_time": "Changed on time",
    "fee_compliance": "Fee signed off",
}
"""Manager-facing names of the SLA metrics."""

FEE_LABELS = {
    "not_applicable": "No fee (enough notice)",
    "billable": "Billable",
    "pending_sign_off": "Pending sign-off",
    "awaiting_change": "Signed off, change not yet done",
    "waived": "Waived",
    "needs_review": "Needs review",
}
"""Manager-facing names of the fee statuses."""

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_COLORS = ("#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#64748b")
_LAYOUT = {
    "template": "plotly_white",
    "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
    "colorway": list(_COLORS),
}
_PLOT_CONFIG = {"displaylogo": False, "responsive": True}


class Html:
    """A piece of report HTML that is already safe (every data value escaped).

    Jupyter shows it inside an element MathJax skips, so a JupyterLab never typesets the text
    between two amounts such as ``$250.00`` and ``$300.00`` as mathematics.
    """

    def __init__(self, markup: str) -> None:
        self.markup = markup

    def _repr_html_(self) -> str:
        return f'<div class="tex2jax_ignore mathjax_ignore">{self.markup}</div>'

    def __str__(self) -> str:
        return self.markup

    def __add__(self, other: Html) -> Html:
        return Html(self.markup + other.markup)


class Chart(Html):
    """A plotly chart: its figure for a live JupyterLab, its HTML for a report page.

    Jupyter receives both; JupyterLab draws the figure with its own plotly renderer, while the
    HTML export of an executed report (nbconvert) takes the HTML, which needs plotly.js loaded
    once by the page (:func:`plotly_loader`).

    Attributes:
        figure: The plotly figure (to restyle or save in a notebook).
    """

    def __init__(self, figure: go.Figure, markup: str) -> None:
        super().__init__(markup)
        self.figure = figure

    def _repr_mimebundle_(
        self, include: object = None, exclude: object = None
    ) -> dict[str, object]:
        spec = json.loads(self.figure.to_json())
        return {
            "application/vnd.plotly.v1+json": {**spec, "config": _PLOT_CONFIG},
            "text/html": self._repr_html_(),
        }


def _e(value: object) -> str:
    """HTML-escape any value (quotes too); None and NA become an em dash."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------------------------
# Loading


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, read and evaluated once.

    Attributes:
        period: The period reported.
        policy: The policy the requests were judged by.
        requests: Evaluated requests received in the period (``[start, end)`` in UTC).
        history: Evaluated requests of the ``history_weeks`` ISO weeks ending with the period's
            last week and of the previous period (for trends and "vs last week"); equals
            ``requests`` when not asked for.
        manifests: Every load manifest (input files and row counts).
        rejects: Every rejected input row.
        generated_at: When the data was read, or the ``at`` of :func:`load` (UTC); running SLA
            clocks are judged at this instant.
        frames: The canonical frames ``history`` was evaluated from (see :func:`rejudge`); read
            from the database, only the columns evaluation reads
            (:data:`ipchange_core.requests.ASSEMBLED_COLUMNS`).
        start: First instant of ``history`` (UTC; ``history`` covers ``[start, period.end)``).
        source: Where the data came from, for the provenance: ``database <URL>`` (password
            masked) or ``files <names>``.
    """

    period: periods.Period
    policy: PolicySet
    requests: pd.DataFrame
    history: pd.DataFrame
    manifests: pd.DataFrame
    rejects: pd.DataFrame
    generated_at: pd.Timestamp
    frames: dict[str, pd.DataFrame]
    start: pd.Timestamp
    source: str = ""

    @property
    def tz(self) -> str:
        """The policy time zone every local time is shown in."""
        return self.policy.latest.timezone

    @property
    def zone_name(self) -> str:
        """Short name of the zone for column headers, e.g. ``Central``."""
        return _zone_name(self.tz)


def _zone_name(tz: str) -> str:
    names = {"America/Chicago": "Central", "America/New_York": "Eastern", "UTC": "UTC"}
    return names.get(tz, tz)


def period_from_label(label: str, tz: str) -> periods.Period:
    """The period of a report label: ``2026-W47``, ``2026-11`` or ``2026-11-02_2026-11-15``.

    ``last-week`` and ``last-month`` are the last full ISO week and calendar month before today
    (in ``tz``): the notebooks' defaults, so that a notebook opened without editing shows data.

    Raises:
        PeriodError: The label is none of these.
    """
    relative = {"last-week": periods.week, "last-month": periods.month}
    if label in relative:
        return relative[label](pd.Timestamp.now(tz=tz).date(), tz).previous()
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})", label)
    if m:
        return periods.parse_period(tz, start=m[1], end=m[2])
    if re.fullmatch(r"\d{4}-W\d{2}", label):
        return periods.parse_period(tz, week_label=label)
    return periods.parse_period(tz, month_label=label)


def what_if_policy(
    policy: PolicySet, *, threshold_hours: float | None = None, fee: float | None = None
) -> PolicySet:
    """A copy of ``policy`` with another notice threshold and/or fee (in currency units).

    Versions are renamed ``<version>+what-if`` so that results never pass for the real policy.
    """
    changes: dict[str, object] = {}
    if threshold_hours is not None:
        changes["threshold_hours"] = float(threshold_hours)
    if fee is not None:
        changes["fee_cents"] = round(float(fee) * 100)
    if not changes:
        return policy
    versions = tuple(
        dataclasses.replace(v, version=f"{v.version}+what-if", **changes) for v in policy.versions
    )
    return dataclasses.replace(policy, versions=versions)


def load(
    period: str,
    *,
    db_url: str = "",
    policy_file: str = "",
    history_weeks: int = 0,
    policy: PolicySet | None = None,
    input_files: str = "",
    at: pd.Timestamp | None = None,
) -> ReportData:
    """Read and evaluate the requests of a period (and optionally the weeks before it).

    Relative paths (a SQLite ``db_url``, ``input_files``) are relative to the project root,
    wherever the notebook runs, as they are for commands run there (``make``).

    Args:
        period: Report label (see :func:`period_from_label`).
        db_url: Database URL or SQLite path; "" for ``IPCHANGE_DB_URL`` or the default SQLite
            file ``data/ipchange.db``. A database that does not exist or holds no load is
            refused (:class:`~ipchange_core.errors.NoDatabaseError`), never created.
        policy_file: Policy YAML extending the default; "" for the default policy.
        history_weeks: Also evaluate this many ISO weeks ending with the period's last week
            (``history_weeks=8`` for a week: it and the 7 before it) and the previous period.
        policy: A policy to use instead of ``policy_file`` (e.g. from :func:`what_if_policy`).
        input_files: Export files separated by ``;`` (any format ``ipchange ingest`` reads) to
            read directly instead of the database; later files win for the same ticket.
        at: Judge as of this instant (aware) instead of now: every record after it is ignored
            (:func:`ipchange_core.check.as_of`) and running clocks are judged at it, so a clock
            still running then is open, whatever happened later. ``generated_at`` is ``at``.

    Raises:
        NoDatabaseError: The database does not exist or nothing was ever loaded into it.
    """
    policy = policy or load_policy(policy_file or None)
    tz = policy.latest.timezone
    span = period_from_label(period, tz)
    now = pd.Timestamp.now(tz="UTC") if at is None else pd.Timestamp(at).tz_convert("UTC")
    start = span.start
    if history_weeks:  # the trend's weeks, and the previous period the tiles compare with
        first = periods.week(span.last, tz).start - pd.Timedelta(weeks=history_weeks - 1)
        first = periods.week(first.tz_convert(tz).date(), tz).start
        start = min(start, first, span.previous().start)
    if input_files:
        paths = [PROJECT_ROOT / p.strip() for p in input_files.split(";") if p.strip()]
        frames, manifests, rejects = _read_exports(paths, policy, now)
        source = f"files {'; '.join(p.name for p in paths)}"
    else:
        url = database_url(db_url or None, base=PROJECT_ROOT)
        source = f"database {display_url(url)}"
        with store.connected(url, create=False) as engine:
            frames = store.read_frames(
                engine, start, span.end, policy=policy, columns=ASSEMBLED_COLUMNS
            )
            manifests = store.manifests(engine)
            rejects = store.rejects(engine)
    if at is not None:
        frames = as_of(frames, now)
    requests, history = _judge(frames, policy, start, span, now)
    return ReportData(
        span, policy, requests, history, manifests, rejects, now, frames, start, source
    )


def load_requests(
    period: str, *, db: str = "", policy: PolicySet | None = None, input_files: str = ""
) -> pd.DataFrame:
    """The requests received in a period, judged now: one row per request, every computed field.

    Args:
        period: ``2026-W47``, ``2026-11``, ``2026-11-02_2026-11-15``, ``last-week`` or
            ``last-month`` (local dates in the policy's time zone, see :func:`period_from_label`).
        db: Database URL or SQLite path (see :func:`load`); "" for the default database.
        policy: The policy to judge by (e.g. :func:`what_if_policy`); the default policy when
            None.
        input_files: Export files separated by ``;`` to read instead of the database.

    Returns:
        The frame of :func:`ipchange_core.evaluation.evaluate` for the requests received in
        ``[period start, period end)``: instants UTC (microseconds), hours as floats, money in
        integer cents.
    """
    return load(period, db_url=db, policy=policy, input_files=input_files).requests


def load_frames(
    period: str, *, db: str = "", policy: PolicySet | None = None, input_files: str = ""
) -> dict[str, pd.DataFrame]:
    """The typed canonical frames of a period's requests, as :func:`evaluate` takes them.

    Args:
        period: As for :func:`load_requests`.
        db: As for :func:`load_requests`.
        policy: Which tickets are requests (its request filter); the default policy when None.
        input_files: As for :func:`load_requests`.

    Returns:
        ``tickets``, ``ticket_events``, ``intake`` and ``changes``, in the columns evaluation
        reads (:data:`ipchange_core.requests.ASSEMBLED_COLUMNS`; all columns from files) and the
        dtypes of :func:`ipchange_core.schema.typed_dtypes`.
    """
    return load(period, db_url=db, policy=policy, input_files=input_files).frames


def _judge(
    frames: dict[str, pd.DataFrame],
    policy: PolicySet,
    start: pd.Timestamp,
    span: periods.Period,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluated requests received in ``span`` and in ``[start, span.end)``, judged at ``now``."""
    evaluated = evaluate(frames, policy=policy, as_of=now)
    received = evaluated["received_at"]
    history = evaluated[(received >= start) & (received < span.end)].reset_index(drop=True)
    requests = history[history["received_at"] >= span.start].reset_index(drop=True)
    return requests, history


def rejudge(data: ReportData, policy: PolicySet) -> ReportData:
    """The same requests judged again under ``policy`` (e.g. from :func:`what_if_policy`).

    The frames already read are evaluated again at the same ``generated_at``: no second read.

    Raises:
        ValueError: ``policy`` recognises other tickets as requests than ``data.policy`` (another
            request filter or effective date), so the frames read may lack some of them.
    """
    recognising = [(v.effective_from, v.request_filter) for v in policy.versions]
    if recognising != [(v.effective_from, v.request_filter) for v in data.policy.versions]:
        raise ValueError("rejudge: the policy recognises other requests; load the data again")
    requests, history = _judge(data.frames, policy, data.start, data.period, data.generated_at)
    return dataclasses.replace(data, policy=policy, requests=requests, history=history)


def _read_exports(
    paths: list[Path], policy: PolicySet, now: pd.Timestamp
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    """Typed frames, manifest-like rows and rejects of export files read without a database."""
    latest = policy.latest
    parsed = [read_file(p, tz=latest.timezone, kayako=latest.kayako) for p in paths]
    frames = {}
    for table in TABLES:
        parts = [f.frame.drop(columns=SOURCE_LINE) for f in parsed if f.table == table]
        frame = pd.concat(parts, ignore_index=True) if parts else empty_frame(table)
        keys = list(NATURAL_KEYS[table])
        frames[table] = frame.drop_duplicates(keys, keep="last", ignore_index=True)
    manifests = pd.DataFrame(
        {
            "id": range(len(parsed)),
            "file_name": [f.path.name for f in parsed],
            "sha256": [f.sha256 for f in parsed],
            "table": [f.table for f in parsed],
            "rows_read": [f.rows_read for f in parsed],
            "rejected": [f.rows_rejected for f in parsed],
            "loaded_at": pd.Series([now] * len(parsed), dtype="datetime64[us, UTC]"),
        }
    )
    rejects = pd.concat(
        [f.rejects for f in parsed] or [pd.DataFrame(columns=list(REJECT_COLUMNS))],
        ignore_index=True,
    )
    return frames, manifests, rejects


# --------------------------------------------------------------------------------------------
# Building blocks


def plotly_loader(src: str) -> Html:
    """The one ``<script>`` that loads plotly.js for every chart of a report page.

    Args:
        src: URL of plotly.js relative to the report (``ipchange report`` passes
            ``../plotly.min.js``), or "" for none: a live JupyterLab draws the charts itself.
    """
    return Html(f'<script charset="utf-8" src="{_e(src)}"></script>' if src else "")


def _figure(fig: go.Figure, *, height: int = 320) -> Chart:
    fig.update_layout(**_LAYOUT, height=height)
    return Chart(
        fig,
        '<div class="chart">'
        + fig.to_html(full_html=False, include_plotlyjs=False, config=_PLOT_CONFIG)
        + "</div>",
    )


def _empty(text: str) -> Html:
    """A sentence saying why a section has nothing to show."""
    return Html(f'<p class="empty">{_e(text)}</p>')


def _no_requests(data: ReportData) -> str:
    return f"No requests were received in {data.period.label}."


def _count_axis(axis: dict, largest: float) -> dict:
    """Whole-number ticks for a count axis (no 0.5 requests)."""
    return {
        **axis,
        "rangemode": "tozero",
        "tickformat": ",d",
        **({"dtick": 1} if largest <= 8 else {}),
    }


def _table(frame: pd.DataFrame, *, empty: str = "Nothing to show.", limit: int = 500) -> Html:
    """An escaped HTML table of text cells, contact details masked; long tables are cut."""
    if frame.empty:
        return _empty(empty)
    # to_html would print a line break or tab inside a value as the characters "\n" or "\t"
    shown = frame.head(limit).replace(r"[\t\r\n]+", " ", regex=True)
    for col in shown.columns[shown.dtypes == "str"]:
        shown[col] = mask_contacts(shown[col])  # no contact details in any report
    markup = shown.to_html(
        index=False, escape=True, na_rep="—", border=0, classes="report-table", justify="left"
    )
    if len(frame) > limit:
        markup += f'<p class="note">First {limit} of {len(frame)} rows shown.</p>'
    return Html(f'<div class="table-wrap">{markup}</div>')


def tiles(items: list[tuple[str, str, str, str]]) -> Html:
    """Tiles of (title, value, detail, tone) with tone ``good``, ``bad`` or ``neutral``."""
    cells = "".join(
        f'<div class="tile {_e(tone)}"><div class="tile-title">{_e(title)}</div>'
        f'<div class="tile-value">{_e(value)}</div>'
        f'<div class="tile-detail">{_e(detail)}</div></div>'
        for title, value, detail, tone in items
    )
    return Html(f'<div class="tiles">{cells}</div>')


def _local(instants: pd.Series, tz: str, fmt: str = "%a %d %b %H:%M") -> pd.Series:
    local = instants.dt.tz_convert(tz)
    return local.dt.strftime(fmt).astype("str").fillna("—")


def _hours(values: pd.Series, digits: int = 1) -> pd.Series:
    return values.astype(float).map(lambda h: f"{h:,.{digits}f}", na_action="ignore").fillna("—")


def _text(values: pd.Series) -> pd.Series:
    return values.astype("str").fillna("").replace("", "—")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# --------------------------------------------------------------------------------------------
# Shared sections


def header(data: ReportData) -> Html:
    """The period in words and the time zone used (the notebook's title cell names the report).

    A period without requests says so here, at the top of the report.
    """
    p = data.period
    span = f"{p.first:%a %d %b %Y} – {p.last:%a %d %b %Y}"
    period = Html(
        f'<p class="period"><b>{_e(p.label)}</b> · {_e(span)} · times in '
        f"{_e(data.zone_name)} time ({_e(data.tz)})</p>"
    )
    return period + _empty(_no_requests(data)) if data.requests.empty else period


def provenance(data: ReportData) -> Html:
    """Footer: the source read, period, policy version(s), input manifests, generated-at, version.

    Only the latest load of each file name is listed (the one the data came from last).
    """
    versions = sorted(set(data.requests["policy_version"])) or [data.policy.latest.version]
    m = data.manifests.sort_values("id").drop_duplicates("file_name", keep="last")
    inputs = pd.DataFrame(
        {
            "File": m["file_name"],
            "Table": m["table"],
            "Rows read": m["rows_read"].map("{:,}".format),
            "Rejected": m["rejected"].map("{:,}".format),
            f"Loaded ({data.zone_name})": _local(m["loaded_at"], data.tz, "%Y-%m-%d %H:%M"),
            "SHA-256": m["sha256"].str.slice(0, 12),
        }
    )
    generated = data.generated_at.tz_convert(data.tz).strftime("%Y-%m-%d %H:%M %Z")
    p = data.period
    facts = (
        f"<p>Read from {_e(data.source or 'an unknown source')}</p>"
        f"<p>Period <b>{_e(p.label)}</b> ({_e(p.first)} – {_e(p.last)}, {_e(data.tz)}) · "
        f"policy version {_e(', '.join(versions))} · generated {_e(generated)} · "
        f"ipchange {_e(__version__)}</p>"
    )
    return Html(
        '<footer class="provenance"><h2>Provenance</h2>'
        + facts
        + _table(inputs, empty="No input files loaded.").markup
        + "</footer>"
    )


# --------------------------------------------------------------------------------------------
# 1. Intake log


def _progress(r: pd.DataFrame) -> pd.Series:
    """Where each request stands: cancelled, completed, scheduled, confirmed or open."""
    state = pd.Series("open", index=r.index, dtype="str")
    state = state.mask(r["confirmed_at"].notna(), "confirmed")
    state = state.mask(r["scheduled_start"].notna(), "scheduled")
    state = state.mask(r["completed_at"].notna(), "completed")
    return state.mask(r["cancelled_at"].notna() & r["completed_at"].isna(), "cancelled")


def intake_summary(data: ReportData) -> Html:
    """Tiles: requests received, short notice, not routed, intake problems."""
    r = data.requests
    n = len(r)
    short = int(r["short_notice"].fillna(False).sum())
    not_routed = int(r["not_routed"].sum())
    problems = int(
        (r["no_intake_record"] | r["intake_without_ticket"] | r["incomplete_intake"]).sum()
    )
    return tiles(
        [
            ("Requests received", f"{n:,}", f"{data.period.label}", "neutral"),
            ("Short notice", f"{short:,}", "less notice than the policy asks", "neutral"),
            (
                "Not routed yet",
                f"{not_routed:,}",
                "never reached Implementation",
                _tone(not_routed),
            ),
            ("Intake problems", f"{problems:,}", "see data quality below", _tone(problems)),
        ]
    )


def _tone(bad_count: int) -> str:
    return "bad" if bad_count else "good"


def intake_log(data: ReportData) -> Html:
    """Every request of the period, oldest first, without contact details.

    The last column is the intake record's provenance (:func:`_intake_source`).
    """
    r = data.requests.sort_values("received_at")
    z = data.zone_name
    table = pd.DataFrame(
        {
            "Ticket": _text(r["ticket_id"]),
            f"Received ({z})": _local(r["received_at"], data.tz),
            "Channel": _text(r["channel"].str.replace("_", " ")),
            "Account": _text(r["account"]),
            "Site": _text(r["site"]),
            "Reseller": _text(r["reseller"]),
            "Reason": _text(r["reason"].str.replace("_", " ")),
            f"Requested ({z})": _local(r["requested_change_at"], data.tz).mask(
                r["requested_asap"] & r["requested_change_at"].isna(), "ASAP"
            ),
            "Notice h": _hours(r["notice_hours"], 0),
            "Short notice": r["short_notice"].map({True: "yes", False: "no"}).fillna("—"),
            "Routing": r["routing_state"].astype("str").map(_ROUTING_WORDS).fillna("—"),
            "State": _progress(r),
            "Intake from": _intake_source(r),
        }
    )
    return _table(table, empty=_no_requests(data))


def _intake_source(r: pd.DataFrame) -> pd.Series:
    """Where each request's intake record came from, and what it replaced.

    ``post 4412`` (a cloud-info macro in Kayako), an intake file's name, ``—`` without a
    record; a record loaded over one of the other kind says so: ``post 4412, over intake.csv``.
    """
    source = r["source"].mask(r["has_intake"] & (r["source"] == ""), "intake file (not recorded)")
    shown = source.where(r["overrides"] == "", source + ", over " + r["overrides"])
    return _text(shown.where(r["has_intake"], "—"))


_ROUTING_WORDS = {
    "met": "in time",
    "breached": "late",
    "open": "waiting",
    "n/a": "not needed",
}


def intake_counts(data: ReportData) -> Html:
    """Bar charts: requests by channel, by reason and by day received."""
    r = data.requests
    if r.empty:
        return _empty(_no_requests(data))
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("By channel", "By reason", "By day"),
        horizontal_spacing=0.08,
    )
    channel = r["channel"].replace("", "unknown").str.replace("_", " ").value_counts()
    reason = r["reason"].replace("", "unknown").str.replace("_", " ").value_counts()
    days = pd.Series(pd.date_range(data.period.first, data.period.last, freq="D").date, name="day")
    per_day = (
        r["received_at"].dt.tz_convert(data.tz).dt.date.value_counts().reindex(days, fill_value=0)
    )
    day_labels = [f"{d:%a %d}" if len(days) <= 14 else f"{d:%d %b}" for d in days]
    fig.add_bar(
        x=channel.index.tolist(), y=channel.to_numpy(), row=1, col=1, marker_color=_COLORS[0]
    )
    fig.add_bar(x=reason.index.tolist(), y=reason.to_numpy(), row=1, col=2, marker_color=_COLORS[1])
    fig.add_bar(x=day_labels, y=per_day.to_numpy(), row=1, col=3, marker_color=_COLORS[6])
    fig.update_layout(showlegend=False)
    largest = max([channel.max(), reason.max(), per_day.max(), 0])
    fig.update_yaxes(**_count_axis({}, largest))
    fig.update_yaxes(title_text="requests", row=1, col=1)
    return _figure(fig, height=300)


def arrivals_heatmap(data: ReportData) -> Html:
    """Heat map of arrivals by local weekday (rows) and hour of day (columns)."""
    if data.requests.empty:
        return _empty(_no_requests(data))
    local = data.requests["received_at"].dt.tz_convert(data.tz)
    grid = (
        pd.crosstab(local.dt.weekday, local.dt.hour)
        .reindex(index=range(7), columns=range(24), fill_value=0)
        .fillna(0)
    )
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=[f"{h:02d}:00" for h in range(24)],
            y=list(WEEKDAYS),
            colorscale="Blues",
            hovertemplate="%{y} %{x}: %{z} request(s)<extra></extra>",
            colorbar={
                "title": {"text": "requests"},
                "tickformat": ",d",
                **({"dtick": 1} if grid.to_numpy().max() <= 8 else {}),
            },
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _figure(fig, height=300)


def data_quality(data: ReportData) -> Html:
    """Counts of intake problems and rejected input rows, then the affected tickets."""
    r = data.requests
    counts = pd.DataFrame(
        {
            "Check": [
                "Tickets without an intake record",
                "Intake records without a ticket",
                "Intake records with missing cloud-info fields",
                "Agent tickets without a recorded creation state (correct intake open)",
                "Customer tickets without department history (routing unknown)",
                "Rejected input rows (all loads)",
            ],
            "Count": [
                f"{int(r['no_intake_record'].sum()):,}",
                f"{int(r['intake_without_ticket'].sum()):,}",
                f"{int(r['incomplete_intake'].sum()):,}",
                f"{int(r['creation_state_unknown'].sum()):,}",
                f"{int(r['routing_history_missing'].sum()):,}",
                f"{len(data.rejects):,}",
            ],
        }
    )
    bad = r[
        r["no_intake_record"]
        | r["intake_without_ticket"]
        | r["incomplete_intake"]
        | r["creation_state_unknown"]
        | r["routing_history_missing"]
    ]
    no_history = bad["routing_history_missing"].map({True: "no department history", False: ""})
    detail = pd.DataFrame(
        {
            "Ticket": _text(bad["ticket_id"]),
            "Account": _text(bad["account"]),
            "Agent": _text(bad["agent"]),
            "Problems": _text(
                bad["correct_intake_issues"].str.cat(no_history, sep="; ").str.strip("; ")
            ),
        }
    )
    rej = data.rejects.groupby(["file", "reason"], as_index=False).size()
    rej = rej.sort_values("size", ascending=False).rename(
        columns={"file": "File", "reason": "Reason", "size": "Rows"}
    )
    return (
        _table(counts)
        + Html("<h3>Affected requests</h3>")
        + _table(detail, empty="No intake problems in this period.")
        + Html("<h3>Rejected input rows by reason</h3>")
        + _table(rej, empty="No input rows were rejected.", limit=50)
    )


# --------------------------------------------------------------------------------------------
# 2. SLA compliance


def week_labels(instants: pd.Series, tz: str) -> pd.Series:
    """The ISO week (``2026-W47``) of each instant, read on the wall clock of ``tz``."""
    iso = instants.dt.tz_convert(tz).dt.isocalendar()
    return iso["year"].astype("str") + "-W" + iso["week"].astype("str").str.zfill(2)


def _pct(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.0f} %"


def sla_tiles(data: ReportData) -> Html:
    """One tile per metric: this period's %, target, and the change vs the previous period."""
    return tiles(sla_tile_values(data))


def sla_tile_values(data: ReportData) -> list[tuple[str, str, str, str]]:
    """The SLA tiles as (title, value, detail, tone) text, for pages and mail alike.

    Tone is ``good`` (target met), ``bad`` (missed) or ``neutral`` (nothing decided).
    """
    pol = data.policy.for_instant(data.period.start)
    now = compliance(data.requests, pol).set_index("metric")
    prev_span = data.period.previous()
    h = data.history
    prev_rows = h[(h["received_at"] >= prev_span.start) & (h["received_at"] < prev_span.end)]
    before = compliance(prev_rows, pol).set_index("metric")
    items = []
    for metric in METRICS:
        row = now.loc[metric]
        decided = int(row["met"] + row["breached"])
        delta = row["compliance_pct"] - before.loc[metric, "compliance_pct"]
        change = "no comparison" if pd.isna(delta) else f"{delta:+.0f} pts vs {prev_span.label}"
        tone = {True: "good", False: "bad"}.get(row["target_met"], "neutral")
        detail = f"target {row['target']} · {row['met']}/{decided} met · {change}"
        items.append((METRIC_LABELS[metric], _pct(row["compliance_pct"]), detail, tone))
    return items


def sla_table(data: ReportData) -> Html:
    """The counts behind the tiles: met, breached, still open and not applicable per metric."""
    pol = data.policy.for_instant(data.period.start)
    c = compliance(data.requests, pol)
    table = pd.DataFrame(
        {
            "Metric": c["metric"].map(METRIC_LABELS),
            "Target": c["target"],
            "Met": c["met"].astype("str"),
            "Breached": c["breached"].astype("str"),
            "Still open": c["open"].astype("str"),
            "Not applicable": c["not_applicable"].astype("str"),
            "Compliance": c["compliance_pct"].map(_pct),
        }
    )
    return _table(table)


def sla_trend(data: ReportData, weeks: int = 8) -> Html:
    """Line chart of weekly compliance % per metric over the last ``weeks`` ISO weeks."""
    h = data.history.assign(week=week_labels(data.history["received_at"], data.tz))
    labels = []
    week = periods.week(data.period.last, data.tz)
    for _ in range(weeks):
        labels.append(week.label)
        week = week.previous()
    labels.reverse()
    h = h[h["week"].isin(labels)]
    if h.empty:
        return _empty(f"No requests were received in the {weeks} weeks {labels[0]} – {labels[-1]}.")
    table = compliance(h, data.policy.for_instant(data.period.start), by="week")
    if table["compliance_pct"].isna().all():
        return _empty(
            f"No request of the {weeks} weeks {labels[0]} – {labels[-1]} was decided yet for any "
            "metric: their clocks are still running."
        )
    fig = go.Figure()
    for metric in METRICS:
        part = table[table["metric"] == metric].set_index("week").reindex(labels)
        fig.add_scatter(
            x=labels,
            y=part["compliance_pct"].to_numpy(),
            mode="lines+markers",
            name=METRIC_LABELS[metric],
            connectgaps=False,
        )
    fig.update_yaxes(range=[0, 105], title_text="% met", ticksuffix=" %")
    fig.update_layout(legend={"orientation": "h", "y": -0.2})
    return _figure(fig, height=360)


def breach_list(data: ReportData) -> Html:
    """Every breach, worst first per metric, with how far the target was missed."""
    b = breaches(data.requests)
    table = pd.DataFrame(
        {
            "Metric": b["metric"].map(METRIC_LABELS),
            "Ticket": _text(b["ticket_id"]),
            "Missed by (business h)": _hours(b["missed_by_hours"]).where(
                b["missed_by_hours"] > 0, "—"
            ),
            "What went wrong": _text(b["detail"]),
            f"Received ({data.zone_name})": _local(b["received_at"], data.tz),
            "Account": _text(b["account"]),
            "Agent": _text(b["agent"]),
            "Engineer": _text(b["engineer"]),
        }
    )
    if data.requests.empty:
        return _empty(_no_requests(data))
    return _table(table, empty="No breaches this period.")


def at_risk(data: ReportData) -> Html:
    """Open clocks of the period's requests with time left, least time first (SPEC 5.5).

    The morning check's engine (:func:`ipchange_core.check.run_check`) as of ``generated_at``:
    what will breach or be billed wrongly unless someone acts. Problems already overdue are in
    the breach list or the check, not here.
    """
    found = run_check(data.frames, data.policy, data.generated_at)
    found = found[
        found["ticket_id"].isin(data.requests["ticket_id"]) & (found["business_hours_left"] >= 0)
    ]
    table = pd.DataFrame(
        {
            "Ticket": _text(found["ticket_id"]),
            "Problem": found["problem"].map(PROBLEM_LABELS),
            "Business h left": _hours(found["business_hours_left"]),
            f"Deadline ({data.zone_name})": _local(found["deadline"], data.tz),
            "Account": _text(found["account"]),
            "Owner": _text(found["owner"]),
            "Action": _text(found["action"]),
        }
    )
    return _table(table, empty="Nothing at risk: no open request of this period has time left.")


def routing_latency(data: ReportData) -> Html:
    """Histogram of business hours from ticket creation to Implementation, with the target."""
    r = data.requests
    hours = r.loc[r["routed_at"].notna(), "routing_business_hours"].dropna()
    if r.empty:
        return _empty(_no_requests(data))
    if hours.empty:
        return _empty(f"No request received in {data.period.label} reached Implementation yet.")
    target = data.policy.for_instant(data.period.start).sla_targets.routing_business_hours
    fig = go.Figure(go.Histogram(x=hours.to_numpy(), nbinsx=24, marker_color=_COLORS[0]))
    fig.add_vline(
        x=target, line_dash="dash", line_color=_COLORS[3], annotation_text=f"target {target:g} h"
    )
    fig.update_xaxes(title_text="business hours to reach Implementation", rangemode="tozero")
    fig.update_yaxes(title_text="requests", tickformat=",d", rangemode="tozero")
    return _figure(fig, height=300)


def by_person(data: ReportData, role: str) -> Html:
    """Compliance % per metric for each ``agent`` or ``engineer`` (requests they handled)."""
    if data.requests.empty:
        return _empty(_no_requests(data))
    r = data.requests.assign(**{role: data.requests[role].replace("", "(none)")})
    c = compliance(r, data.policy.for_instant(data.period.start), by=role)
    pivot = c.pivot(index=role, columns="metric", values="compliance_pct").reindex(
        columns=list(METRICS)
    )
    counts = r.groupby(role).size()
    table = pd.DataFrame({role.capitalize(): pivot.index, "Requests": counts.reindex(pivot.index)})
    for metric in METRICS:
        table[METRIC_LABELS[metric]] = pivot[metric].map(_pct).to_numpy()
    table["Requests"] = table["Requests"].astype("str")
    return _table(table.reset_index(drop=True))


# --------------------------------------------------------------------------------------------
# 3. Fee billing


def fee_summary(data: ReportData) -> Html:
    """Tiles: billable count and amount, pending sign-off, waived, needs review."""
    r = data.requests
    cur = data.policy.latest.currency
    items = []
    for status, tone in (
        ("billable", "good"),
        ("awaiting_change", "neutral"),
        ("pending_sign_off", "neutral"),
        ("waived", "neutral"),
        ("needs_review", "bad"),
    ):
        rows = r[r["fee_status"] == status]
        cents = int(rows["fee_cents"].fillna(0).sum()) if status == "billable" else None
        value = money(cents, cur) if cents is not None else f"{len(rows):,}"
        detail = _plural(len(rows), "request") if cents is not None else "requests"
        items.append((FEE_LABELS[status], value, detail, tone if len(rows) else "neutral"))
    return tiles(items)


def fee_chart(data: ReportData, *, every_status: bool = False) -> Html:
    """Horizontal bars: requests per fee status in the period, one bar per status, zeros too.

    The statuses are categories, each bar beside its own label, in :data:`FEE_STATUSES` order.

    Args:
        data: The report's data.
        every_status: Also count the requests given enough notice (``not_applicable``); by
            default only the expedites are shown.
    """
    order = [s for s in FEE_STATUSES if every_status or s != "not_applicable"]
    r = data.requests[data.requests["fee_status"].isin(order)]
    counts = r["fee_status"].value_counts().reindex(order, fill_value=0)
    if data.requests.empty:
        return _empty(_no_requests(data))
    if r.empty:
        return _empty(f"No request received in {data.period.label} was given short notice.")
    colors = {"billable": _COLORS[1], "needs_review": _COLORS[3], "pending_sign_off": _COLORS[2]}
    fig = go.Figure(
        go.Bar(
            x=counts.to_numpy(),
            y=[FEE_LABELS[s] for s in order],
            orientation="h",
            marker_color=[colors.get(s, _COLORS[6]) for s in order],
            hovertemplate="%{y}: %{x} request(s)<extra></extra>",
        )
    )
    fig.update_yaxes(type="category", autorange="reversed")
    title = "requests" if every_status else "expedite requests"
    fig.update_xaxes(**_count_axis({"title_text": title}, counts.max()))
    return _figure(fig, height=60 + 36 * len(order))


def fee_table(data: ReportData, status: str) -> Html:
    """The requests of one fee status, with sign-off evidence (person of record, not contacts)."""
    if status not in FEE_STATUSES:
        raise ValueError(f"unknown fee status {status!r}")
    r = data.requests[data.requests["fee_status"] == status].sort_values("received_at")
    z = data.zone_name
    table = pd.DataFrame(
        {
            "Ticket": _text(r["ticket_id"]),
            "Account": _text(r["account"]),
            "Reseller": _text(r["reseller"]),
            f"Received ({z})": _local(r["received_at"], data.tz),
            f"Requested ({z})": _local(r["requested_change_at"], data.tz),
            "Notice h": _hours(r["notice_hours"], 1),
            "Person of record": _text(r["person_of_record"]),
        }
    )
    if status == "waived":
        table["Waived by"] = _text(r["fee_waived_by"])
        table["Reason"] = _text(r["fee_waiver_reason"])
    else:
        table["Signed off by"] = _text(r["fee_accepted_by"])
        table[f"Signed off ({z})"] = _local(r["fee_accepted_at"], data.tz)
    if status == "billable":
        table["Amount"] = r["fee_cents"].map(lambda c: money(c, data.policy.latest.currency))
    if status == "needs_review":
        table["Why"] = _text(r["flags"].str.replace(";", "; ").str.replace("_", " "))
    return _table(table, empty=f"No {FEE_LABELS[status].lower()} requests this period.")


def fee_totals(data: ReportData, by: str) -> Html:
    """Billable fees per ``account`` or ``reseller``: requests and amount, largest first."""
    r = data.requests[data.requests["fee_status"] == "billable"]
    key = r[by].replace("", "(none)")
    g = r.assign(_k=key).groupby("_k").agg(n=("ticket_id", "size"), cents=("fee_cents", "sum"))
    g = g.sort_values(["cents", "n"], ascending=False)
    cur = data.policy.latest.currency
    table = pd.DataFrame(
        {
            by.capitalize(): g.index.astype("str"),
            "Billable requests": g["n"].astype("str").to_numpy(),
            "Amount": [money(c, cur) for c in g["cents"]],
        }
    )
    if not table.empty:
        total = pd.DataFrame(
            {
                by.capitalize(): ["Total"],
                "Billable requests": [str(int(g["n"].sum()))],
                "Amount": [money(int(g["cents"].sum()), cur)],
            }
        )
        table = pd.concat([table, total], ignore_index=True)
    return _table(table, empty="No billable fees this period.")


# --------------------------------------------------------------------------------------------
# 4. Ticket explorer


def distributions(data: ReportData) -> Html:
    """Histograms of notice hours and of confirmation business hours.

    The fee statuses are categories, drawn as bars by :func:`fee_chart`.
    """
    r = data.requests
    if r.empty:
        return _empty(_no_requests(data))
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Notice given (h)", "Confirmation (business h)")
    )
    fig.add_histogram(x=r["notice_hours"].dropna().to_numpy(), nbinsx=30, row=1, col=1)
    fig.add_histogram(
        x=r["confirmation_business_hours"].dropna().to_numpy(), nbinsx=30, row=1, col=2
    )
    fig.update_layout(showlegend=False)
    fig.update_yaxes(tickformat=",d", rangemode="tozero", title_text="requests", col=1)
    return _figure(fig, height=320)


def what_if(data: ReportData, alternative: ReportData) -> Html:
    """Fee outcome per status under the real policy and an alternative, side by side."""
    cur = data.policy.latest.currency
    rows = []
    for status in FEE_STATUSES:
        a = data.requests[data.requests["fee_status"] == status]
        b = alternative.requests[alternative.requests["fee_status"] == status]
        rows.append(
            {
                "Fee status": FEE_LABELS[status],
                "Requests (policy)": str(len(a)),
                "Requests (what if)": str(len(b)),
                "Amount (policy)": money(int(a["fee_cents"].fillna(0).sum()), cur),
                "Amount (what if)": money(int(b["fee_cents"].fillna(0).sum()), cur),
            }
        )
    real, alt = data.policy.latest, alternative.policy.latest
    note = Html(
        f'<p class="note">Policy: short notice below {_e(f"{real.threshold_hours:g}")} h, fee '
        f"{_e(money(real.fee_cents, cur))}. What if: below "
        f"{_e(f'{alt.threshold_hours:g}')} h, fee {_e(money(alt.fee_cents, cur))}.</p>"
    )
    return note + _table(pd.DataFrame(rows))


def sample_requests(data: ReportData, limit: int = 50) -> Html:
    """The first requests of the period with their computed fields (no contact details)."""
    r = data.requests.sort_values("received_at").head(limit)
    table = pd.DataFrame(
        {
            "Ticket": _text(r["ticket_id"]),
            "Subject": _text(r["subject"]),
            "Account": _text(r["account"]),
            f"Received ({data.zone_name})": _local(r["received_at"], data.tz),
            "Notice h": _hours(r["notice_hours"]),
            "Fee": r["fee_status"].map(FEE_LABELS).fillna("—"),
            "Flags": _text(r["flags"].str.replace(";", "; ").str.replace("_", " ")),
        }
    )
    return _table(table, empty=_no_requests(data))
