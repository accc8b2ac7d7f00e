"""The check's outputs (SPEC 5.5): the CSV, a plain-text summary for cron mail, an offline page.

The page is built like every report: every value escaped, contact details masked, no script and
nothing fetched (a Content-Security-Policy forbids it), and a provenance footer.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ipchange_core import __version__
from ipchange_core.atomic import atomic_write
from ipchange_core.check import PROBLEM_LABELS, PROBLEMS, counts
from ipchange_core.export import formula_safe, iso_local
from ipchange_core.policy import PolicySet
from ipchange_core.textops import mask_contacts

PAGE_STYLE = (
    "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;"
    "margin:2em auto;padding:0 1em;color:#1f2937}"
    "table{border-collapse:collapse;width:100%;font-size:14px}"
    "th,td{text-align:left;padding:5px 10px;border-bottom:1px solid #e5e7eb;vertical-align:top}"
    "th{background:#f9fafb;white-space:nowrap}td.num{text-align:right;white-space:nowrap}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px;margin:1em 0}"
    ".tile{border:1px solid #e5e7eb;border-radius:8px;padding:10px 14px;min-width:150px}"
    ".tile .v{font-size:26px;font-weight:600}.tile .t{font-size:13px;color:#4b5563}"
    ".bad .v{color:#dc2626}.good .v{color:#16a34a}.late{color:#dc2626;font-weight:600}"
    "footer{margin-top:2em;font-size:12px;color:#6b7280}a{color:#2563eb}"
    ".spark{display:block;margin-top:8px;background:#f3f4f6;border-radius:4px}"
)
_CSP = (
    '<meta http-equiv="Content-Security-Policy" '
    "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
)


def e(value: object) -> str:
    """HTML-escape any value (quotes too), one line; None, NaN and NaT become an em dash."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    return html.escape(" ".join(str(value).split()), quote=True)


def standalone_page(title: str, body: str) -> str:
    """A complete offline HTML page: no script may run and nothing is fetched (CSP).

    Args:
        title: Page title (escaped here).
        body: Already-escaped body markup.
    """
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{_CSP}'
        f'<meta name="viewport" content="width=device-width">'
        f"<title>{e(title)}</title><style>{PAGE_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def hours_text(hours: float) -> str:
    """Business hours for people: ``3.5 h``, ``-1.3 h`` (overdue), ``—`` when unknown."""
    return "—" if pd.isna(hours) else f"{hours:,.1f} h"


def check_table(problems: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The check CSV (``ipchange report check -o``): one row per (ticket, problem), as text.

    Instants are ISO-8601 with the offset of ``tz``; ``business_hours_left`` is decimal hours
    (2 places, negative when overdue, empty when unknown); text is formula-safe.
    """
    out = problems.copy()
    for col in ("deadline", "due_at", "received_at", "scheduled_start"):
        out[col] = iso_local(problems[col], tz)
    out["business_hours_left"] = (
        problems["business_hours_left"]
        .map(lambda h: f"{h:.2f}", na_action="ignore")
        .astype("str")
        .fillna("")
    )
    for col in ("ticket_id", "account", "owner", "engineer", "action", "policy_version"):
        out[col] = formula_safe(mask_contacts(out[col]))
    return out


def _local(at: pd.Timestamp, tz: str) -> str:
    return at.tz_convert(tz).strftime("%a %d %b %Y %H:%M %Z")


def summary_text(
    problems: pd.DataFrame, at: pd.Timestamp, tz: str, *, limit: int = 25, page: str = ""
) -> str:
    """A plain-text summary fit for a cron mail: counts by problem, then the most urgent rows.

    Args:
        problems: Output of :func:`ipchange_core.check.find_problems`.
        at: The instant checked.
        tz: Zone the times are shown in.
        limit: Rows listed; the rest are counted.
        page: Path of the HTML page, named at the end when given.
    """
    n = counts(problems)
    tickets = problems["ticket_id"].nunique()
    lines = [
        f"ipchange check as of {_local(at, tz)}: {len(problems)} problem(s) on {tickets} request(s)"
    ]
    lines += [f"  {n[p]:>5}  {PROBLEM_LABELS[p]} ({p})" for p in PROBLEMS]
    if len(problems):
        lines.append("")
        lines.append("Most urgent (business hours left, negative = overdue):")
    shown = problems.head(limit)
    for row in shown.itertuples(index=False):
        lines.append(
            f"  {' '.join(str(row.ticket_id).split()):<16} {hours_text(row.business_hours_left):>9}"
            f"  {row.problem:<22}  {' '.join(str(row.account).split())}: "
            f"{' '.join(str(row.action).split())}"
        )
    if len(problems) > limit:
        lines.append(f"  … and {len(problems) - limit} more")
    if page:
        lines.append(f"Page: {page}")
    text = "\n".join(lines) + "\n"
    return str(mask_contacts(pd.Series([text], dtype="str")).iloc[0])


def tiles_html(problems: pd.DataFrame) -> str:
    """One tile per problem with its count (red when any)."""
    n = counts(problems)
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile {"bad" if n[p] else "good"}"><div class="v">{n[p]:,}</div>'
            f'<div class="t">{e(PROBLEM_LABELS[p])}</div></div>'
            for p in PROBLEMS
        )
        + "</div>"
    )


def rows_html(problems: pd.DataFrame, tz: str, *, limit: int = 1000) -> str:
    """The problems as an escaped HTML table (contact details masked), most urgent first."""
    if problems.empty:
        return "<p>Nothing needs action.</p>"
    shown = problems.head(limit)
    text = {
        c: [e(v) for v in mask_contacts(shown[c].astype("str")).tolist()]
        for c in ("ticket_id", "account", "owner", "action")
    }
    deadline = shown["deadline"].dt.tz_convert(tz).dt.strftime("%a %d %b %H:%M").tolist()
    labels = [e(PROBLEM_LABELS[p]) for p in shown["problem"].tolist()]
    hours = shown["business_hours_left"].tolist()
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Ticket", "Problem", "Business h left", "Deadline", "Account", "Owner", "Action")
    )
    body = [
        f"<tr><td>{ticket}</td><td>{label}</td>"
        f'<td class="num{" late" if left < 0 else ""}">{e(hours_text(left))}</td>'
        f"<td>{e(due)}</td><td>{account}</td><td>{owner}</td><td>{action}</td></tr>"
        for ticket, label, left, due, account, owner, action in zip(
            text["ticket_id"],
            labels,
            hours,
            deadline,
            text["account"],
            text["owner"],
            text["action"],
            strict=True,
        )
    ]
    more = (
        f"<p>First {limit:,} of {len(problems):,} rows shown; the CSV has all.</p>"
        if len(problems) > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def check_page(
    problems: pd.DataFrame, at: pd.Timestamp, policy: PolicySet, *, inputs: pd.DataFrame
) -> str:
    """The check as one offline HTML page.

    Args:
        problems: Output of :func:`ipchange_core.check.find_problems`.
        at: The instant checked.
        policy: The policy the requests were judged by.
        inputs: Load manifests (``file_name``, ``rows_read``) for the provenance footer.
    """
    tz = policy.latest.timezone
    versions = sorted(set(problems["policy_version"])) or [policy.latest.version]
    m = (
        inputs.sort_values("id").drop_duplicates("file_name", keep="last")
        if len(inputs)
        else inputs
    )
    files = ", ".join(
        f"{f} ({r:,} rows)"
        for f, r in zip(m.get("file_name", []), m.get("rows_read", []), strict=True)
    )
    generated = _local(pd.Timestamp.now(tz="UTC"), tz)
    body = (
        f"<h1>Check · {e(_local(at, tz))}</h1>"
        f"<p>Every open request judged as of {e(_local(at, tz))} ({e(tz)}); records after that "
        "instant are ignored. Business hours left count to the deadline; negative means it "
        f"has passed. {len(problems):,} problem(s) on {problems['ticket_id'].nunique():,} "
        "request(s).</p>"
        + tiles_html(problems)
        + rows_html(problems, tz)
        + f"<footer>Checked at {e(_local(at, tz))} · policy version {e(', '.join(versions))} · "
        f"look-ahead {policy.latest.look_ahead_business_hours:g} business h · inputs: "
        f"{e(files or 'none loaded')} · generated {e(generated)} · ipchange {e(__version__)}"
        "</footer>"
    )
    return standalone_page(f"Check · {at.tz_convert(tz):%Y-%m-%d}", body)


def write_check_page(html_text: str, at: pd.Timestamp, tz: str, out: Path) -> Path:
    """Write the page to ``<out>/check/<local date of at>.html`` atomically; return its path."""
    target = Path(out) / "check" / f"{at.tz_convert(tz):%Y-%m-%d}.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, html_text.encode("utf-8"))
    return target
