"""The ``ipchange`` command: ingest, export, demo data and policy (exit codes 0 / 1 / 2).

Each command imports the modules it uses inside its body: pandas, SQLAlchemy's ORM, pyarrow and
papermill take seconds to import together, and ``ipchange --help`` or ``policy show`` need none
of them.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click

from ipchange_core import render
from ipchange_core.config import DEMO_DIR, LOADS_DIR, REPORTS_DIR, database_url, display_url
from ipchange_core.errors import InvalidInputError, IpchangeError

if TYPE_CHECKING:
    from ipchange_core.digest import FileDigest
    from ipchange_core.periods import Period
    from ipchange_core.policy import PolicySet

EXIT_OK, EXIT_REJECTS, EXIT_FATAL = 0, 1, 2


class FatalError(click.ClickException):
    """A usage or input error reported as one line, exit code 2."""

    exit_code = EXIT_FATAL


class _Group(click.Group):
    """Turns the package's own errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IpchangeError as exc:
            raise FatalError(str(exc)) from None
        except Exception as exc:
            # A database error outside store.load (which words its own), through SQLAlchemy or
            # a raw driver cursor: one line, exit 2. A command that never imported a database
            # module cannot have raised one.
            kinds = tuple(
                getattr(sys.modules[module], name)
                for module, name in (
                    ("sqlalchemy.exc", "DBAPIError"),
                    ("sqlite3", "Error"),
                    ("psycopg", "Error"),
                )
                if module in sys.modules
            )
            if kinds and isinstance(exc, kinds):
                from ipchange_core.store import db_error_reason

                raise FatalError(f"the database refused: {db_error_reason(exc)}") from None
            raise


class _LazyChoice(click.Choice):
    """A :class:`click.Choice` whose values are computed when first needed (help or parsing)."""

    def __init__(self, values: Callable[[], Sequence[str]]) -> None:
        self._values = values
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(self._values())

    @choices.setter
    def choices(self, _: Sequence[str]) -> None:
        pass  # click.Choice.__init__ assigns the (empty) values given above


def _ingest_formats() -> list[str]:
    from ipchange_core.ingest import FORMATS  # pandas and pyarrow: not for every command

    return ["auto", *FORMATS]


def policy_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--policy FILE`` (env ``IPCHANGE_POLICY``) and pass the loaded policy as ``policy``."""

    @click.option(
        "--policy",
        "policy_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="IPCHANGE_POLICY",
        help="Policy YAML extending the default (env IPCHANGE_POLICY).",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, policy_file: Path | None, **kwargs: Any) -> Any:
        from ipchange_core.policy import load_policy

        return command(*args, policy=load_policy(policy_file), **kwargs)

    return wrapper


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipchange")
def main() -> None:
    """Reports and SLA analytics for a help desk's IP change requests.

    Exit codes: 0 ok, 1 rejected rows present, 2 usage or fatal input error.
    """


@main.group(cls=_Group)
def policy() -> None:
    """Show or check the policy (the procedure's rules as data)."""


@policy.command("show")
@policy_option
def policy_show(policy: PolicySet) -> None:
    """Print every resolved policy version as YAML."""
    import yaml

    click.echo(yaml.safe_dump(policy.as_dict(), sort_keys=False, allow_unicode=True), nl=False)


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def policy_check(file: Path) -> None:
    """Validate a policy FILE; exit 2 with the key and the problem when it is invalid."""
    from ipchange_core.policy import load_policy

    checked = load_policy(file)
    for p in checked.versions:
        click.echo(
            f"ok  {p.version:<12} from {p.effective_from}  {p.timezone}  "
            f"notice < {p.threshold_hours:g} {p.notice_measure} h  "
            f"fee {p.fee_cents / 100:.2f} {p.currency}"
        )


def db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--db URL`` (env ``IPCHANGE_DB_URL``; default the SQLite file data/ipchange.db)."""

    @click.option("--db", "db_value", help="Database URL (env IPCHANGE_DB_URL).", metavar="URL")
    @functools.wraps(command)
    def wrapper(*args: Any, db_value: str | None, **kwargs: Any) -> Any:
        return command(*args, db=database_url(db_value), **kwargs)

    return wrapper


def period_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--week`` / ``--month`` / ``--start --end`` (local dates in the policy zone).

    Place it below :func:`policy_option`: it reads the loaded policy's time zone.
    """

    @click.option("--week", "week_label", metavar="YYYY-Www", help="ISO week, e.g. 2026-W47.")
    @click.option("--month", "month_label", metavar="YYYY-MM", help="Month, e.g. 2026-11.")
    @click.option("--start", metavar="YYYY-MM-DD", help="First local date (inclusive).")
    @click.option("--end", metavar="YYYY-MM-DD", help="Last local date (inclusive).")
    @functools.wraps(command)
    def wrapper(*args: Any, week_label, month_label, start, end, **kwargs: Any) -> Any:
        from ipchange_core.periods import parse_period

        tz = kwargs["policy"].latest.timezone
        period = parse_period(
            tz, week_label=week_label, month_label=month_label, start=start, end=end
        )
        return command(*args, period=period, **kwargs)

    return wrapper


def _hashed(
    ctx: click.Context, param: click.Parameter, paths: tuple[Path, ...]
) -> tuple[FileDigest, ...]:
    """Start hashing the files in the background (:class:`ipchange_core.digest.FileDigest`).

    The command then imports pandas and SQLAlchemy for seconds, while a reload's repeat check
    needs each file's SHA-256 first.
    """
    from ipchange_core.digest import FileDigest

    return FileDigest.start_all(paths)


@main.command()
@click.argument(
    "files",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_hashed,
)
@click.option(
    "--format",
    "fmt",
    type=_LazyChoice(_ingest_formats),
    default="auto",
    show_default=True,
    help="Input format; auto recognises it by header or root element.",
)
@click.option(
    "--mapping",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Column mapping YAML for a Kayako report CSV.",
)
@click.option(
    "--rejects-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=LOADS_DIR,
    show_default=True,
    help="Where each file's load report and <file>.rejects.csv are written.",
)
@db_option
@policy_option
def ingest(
    files: tuple[FileDigest, ...],
    fmt: str,
    mapping: Path | None,
    rejects_dir: Path,
    db: str,
    policy: PolicySet,
) -> None:
    """Validate and load FILE… (each file in one transaction; re-loading changes nothing).

    Prints read = inserted + updated + unchanged + rejected (+ skipped) per file. Exit 1 when
    rows were rejected, 2 when a file was refused whole.
    """
    from ipchange_core import store
    from ipchange_core.pipeline import load_file, load_summary, write_load_report

    exit_code = EXIT_OK
    with store.connected(db) as engine:
        click.echo(f"database: {display_url(db)}")
        for digest in files:
            path = digest.path
            try:
                result, parsed = load_file(
                    engine, path, policy, fmt=fmt, mapping=mapping, digest=digest
                )
            except InvalidInputError as exc:
                click.echo(f"refused: {exc}", err=True)
                exit_code = EXIT_FATAL
                continue
            click.echo(f"{path}: {parsed.format} → {parsed.table}")
            for note in parsed.notes:
                click.echo(f"  note: {note}")
            click.echo(f"  {load_summary(result)}")
            if result.rejected:
                written = write_load_report(rejects_dir, parsed, result)
                click.echo(f"  {result.rejected} rejected row(s), reasons in {written}", err=True)
                for message in parsed.reject_messages()[:5]:
                    click.echo(f"    {message}", err=True)
                exit_code = max(exit_code, EXIT_REJECTS)
    raise SystemExit(exit_code)


@main.group(cls=_Group)
def export() -> None:
    """Flat exports for analysts."""


@export.command("requests")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file to write.",
)
@db_option
@policy_option
@period_options
def export_requests(output: Path, period: Period, db: str, policy: PolicySet) -> None:
    """Write one row per request received in the period, with every computed field (CSV)."""
    from ipchange_core import store
    from ipchange_core.evaluate import evaluate
    from ipchange_core.export import requests_table
    from ipchange_core.pipeline import write_csv
    from ipchange_core.requests import ASSEMBLED_COLUMNS

    with store.connected(db) as engine:
        frames = store.read_frames(
            engine, period.start, period.end, policy=policy, columns=ASSEMBLED_COLUMNS
        )
    evaluated = evaluate(frames, policy=policy)
    table = requests_table(evaluated, policy.latest.timezone)
    write_csv(table, output)
    click.echo(f"{len(table)} request(s) of {period.label} written to {output}")


@main.command("demo-data")
@click.option(
    "--requests", "n_requests", type=click.IntRange(min=0), default=600, show_default=True
)
@click.option("--other-tickets", type=click.IntRange(min=0), default=2400, show_default=True)
@click.option("--months", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--end", "end_date", metavar="YYYY-MM-DD", help="Data end (default: today).")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
def demo_data(
    n_requests: int, other_tickets: int, months: int, seed: int, end_date: str | None, out: Path
) -> None:
    """Generate a realistic, seeded help desk: the canonical CSVs, Kayako XML and audit CSV."""
    from ipchange_core.demo import generate_demo

    end = dt.date.fromisoformat(end_date) if end_date else None
    dataset = generate_demo(
        out, requests=n_requests, other_tickets=other_tickets, months=months, seed=seed, end=end
    )
    for name, rows in dataset.rows.items():
        bad = dataset.bad_rows.get(name, 0)
        click.echo(
            f"{dataset.paths[name]}: {rows} rows" + (f" ({bad} deliberately bad)" if bad else "")
        )


@main.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEMO_DIR,
    show_default=True,
    help="Where the demo data and its database go.",
)
@click.option(
    "--db", "db_value", metavar="URL", help="Database (default: a demo SQLite file in --out)."
)
@click.option(
    "--reports",
    "reports_out",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPORTS_DIR,
    show_default=True,
    help="Where the reports are written.",
)
@policy_option
def demo(out: Path, db_value: str | None, reports_out: Path, policy: PolicySet) -> None:
    """Generate the demo data set, load it and build every report of the last full week and month.

    Also exports the month's fees; prints a summary and the paths of everything written.
    """
    from tqdm import tqdm

    from ipchange_core import billing, periods, store
    from ipchange_core.demo import demo_summary, generate_demo
    from ipchange_core.pipeline import load_file, load_summary

    dataset = generate_demo(out / "input", requests=600, other_tickets=2400, months=8, seed=7)
    db = database_url(db_value or str(out / "ipchange-demo.db"))
    loads = [p for name, p in dataset.paths.items() if name != "kayako-audit.csv"]
    with store.connected(db) as engine:
        click.echo(f"database: {display_url(db)}")
        for path in tqdm(loads, desc="loading", unit="file"):
            result, _ = load_file(engine, path, policy)
            tqdm.write(f"{path.name}: {load_summary(result)}")
        click.echo(demo_summary(engine, policy))
    tz = policy.latest.timezone
    today = dt.datetime.now(ZoneInfo(tz)).date()
    week, month = periods.week(today, tz).previous(), periods.month(today, tz).previous()
    jobs = [(key, week.label) for key in render.REPORTS]
    jobs += [(key, month.label) for key in render.REPORTS]
    _build_reports(jobs, out=reports_out, db=db, policy=policy)
    with store.connected(db) as engine:
        result = billing.export_fees(
            engine, policy, month, reports_out / month.label, all_fees=True
        )
    for path in result.paths:
        click.echo(f"fees: {path}")


def _build_reports(jobs: list[tuple[str, str]], *, out: Path, db: str, policy: PolicySet) -> None:
    """Render report jobs in parallel with a progress bar; print each path; exit 2 on failure."""
    from tqdm import tqdm

    failures = []
    with tqdm(total=len(jobs), desc="reports", unit="report") as bar:

        def done(result: object) -> None:
            if isinstance(result, render.RenderError):
                failures.append(result)
                tqdm.write(f"FAILED {result}")
            else:
                tqdm.write(f"{result.html}  ({result.seconds:.1f} s)")
            bar.update()

        render.render_all(
            jobs,
            out=out,
            db_url=db,
            policy_file=str(policy.user_file or ""),
            on_done=done,
        )
    click.echo(f"index: {Path(out).resolve() / 'index.html'}")
    if failures:
        raise FatalError(f"{len(failures)} report(s) failed; the previous versions were kept")


@main.command()
@click.argument("which", type=click.Choice(["intake", "sla", "fees", "explorer", "all"]))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPORTS_DIR,
    show_default=True,
    help="Reports folder; each report goes to <out>/<period>/.",
)
@db_option
@policy_option
@period_options
def report(which: str, out: Path, db: str, policy: PolicySet, period: Period) -> None:
    """Build report WHICH (or all) for a period as offline HTML in <out>/<period>/.

    Also writes the executed notebook beside each page and <out>/index.html (and, for the fee
    report, each fee's evidence page in <out>/<period>/evidence/). A failing report keeps its
    previous version, names the failing cell and keeps <name>.failed.ipynb.
    """
    keys = list(render.REPORTS) if which == "all" else [which]
    if "fees" in keys:  # the fee report links each fee's evidence page
        from ipchange_core import evidence, store

        with store.connected(db) as engine:
            evidence.write_period_evidence(engine, policy, period, out / period.label)
    _build_reports([(k, period.label) for k in keys], out=out, db=db, policy=policy)


@main.group(cls=_Group)
def fees() -> None:
    """Expedite fees for billing."""


@fees.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "both"]),
    default="both",
    show_default=True,
    help="File format(s) to write.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=REPORTS_DIR,
    show_default=True,
    help="Folder; files go to <out>/<period>/fees-<period>.<format>.",
)
@click.option(
    "--all", "all_fees", is_flag=True, help="Export every fee of the period, also exported ones."
)
@click.option(
    "--batch", "batch_id", type=int, help="Re-write a recorded export batch (byte-identical)."
)
@db_option
@policy_option
@period_options
def fees_export(
    fmt: str,
    out: Path,
    all_fees: bool,
    batch_id: int | None,
    period: Period,
    db: str,
    policy: PolicySet,
) -> None:
    """Write the billable fees of a period not yet exported and record them as one batch.

    A fee is exported once; --all writes every fee of the period again (fees-<period>-all.*).
    """
    from ipchange_core import billing, store
    from ipchange_core.textops import money

    formats = billing.FORMATS if fmt == "both" else (fmt,)
    with store.connected(db) as engine:
        result = billing.export_fees(
            engine,
            policy,
            period,
            out / period.label,
            formats=formats,
            all_fees=all_fees,
            batch_id=batch_id,
        )
    if result.taken:
        click.echo(f"another export took the fees of {period.label} meanwhile: nothing new here")
        return
    if not result.paths:
        click.echo(f"no fees of {period.label} left to export (use --all to export them again)")
        return
    batch = f"batch {result.batch_id}" if result.batch_id else "no new batch"
    click.echo(
        f"{result.rows} fee(s), {money(result.total_cents)}, {result.new_rows} new ({batch})"
    )
    for path in result.paths:
        click.echo(str(path))


def _ledger_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``TICKET --reason TEXT --by NAME`` of the commands that write a ledger row."""
    command = click.option(
        "--by", required=True, help="Who decides (the OS user is recorded beside it)."
    )(command)
    command = click.option("--reason", required=True, help="Why (shown to billing).")(command)
    return click.argument("ticket")(command)


@fees.command("waive")
@_ledger_options
@db_option
@policy_option
def fees_waive(ticket: str, reason: str, by: str, db: str, policy: PolicySet) -> None:
    """Do not bill TICKET's fee; if it was exported, the next export sends the reversal."""
    from ipchange_core import billing, store

    with store.connected(db) as engine:
        row = billing.waive_fee(engine, policy, ticket, reason=reason, by=by)
    click.echo(f"{ticket}: fee waived (ledger row {row})")


@fees.command("credit")
@_ledger_options
@click.option("--amount", help="Dollars, e.g. 100.00 (default: all that was billed net).")
@db_option
@policy_option
def fees_credit(
    ticket: str, reason: str, by: str, amount: str | None, db: str, policy: PolicySet
) -> None:
    """Credit TICKET's exported fee (a negative line in the next export)."""
    from ipchange_core import billing, store
    from ipchange_core.textops import money

    cents = None if amount is None else billing.parse_amount(amount)
    with store.connected(db) as engine:
        row, credited = billing.credit_fee(
            engine, policy, ticket, amount_cents=cents, reason=reason, by=by
        )
    click.echo(f"{ticket}: credit of {money(credited)} (ledger row {row})")


@fees.command("history")
@click.argument("ticket")
@db_option
@policy_option
def fees_history(ticket: str, db: str, policy: PolicySet) -> None:
    """Every ledger row of TICKET: when, what, how much, why, who and batch."""
    import pandas as pd

    from ipchange_core import billing, store
    from ipchange_core.textops import money

    with store.connected(db) as engine:
        billing.evaluate_ticket(engine, policy, ticket)
        rows = billing.history(engine, ticket, policy.latest.timezone)
    if rows.empty:
        click.echo(f"{ticket}: no ledger rows")
        return
    for r in rows.to_dict("records"):
        batch = "not exported yet" if pd.isna(r["Batch"]) else f"batch {r['Batch']}"
        click.echo(
            f"{r['Row']}\t{r['When']:%Y-%m-%d %H:%M:%S %Z}\t{r['Kind']}\t"
            f"{money(int(r['Amount']))}\t{r['Reason'] or r['Status']}\t"
            f"by {r['By']} (OS user {r['OS user']})\t{batch}"
        )


def _out_option(default: Path, help: str) -> Callable[..., Any]:
    """``--out DIR`` of the fee commands that write pages."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help,
    )


@fees.command("evidence")
@click.argument("ticket")
@_out_option(REPORTS_DIR / "evidence", "Folder the page is written to.")
@db_option
@policy_option
def fees_evidence(ticket: str, out: Path, db: str, policy: PolicySet) -> None:
    """Write TICKET's printable fee evidence page (timeline, notice, sign-off, ledger)."""
    from ipchange_core import evidence, store

    with store.connected(db) as engine:
        path = evidence.write_evidence(engine, policy, ticket, out)
    click.echo(str(path))


@fees.command("statement")
@click.option("--account", help="The account, as recorded.")
@click.option("--reseller", help="The reseller, as recorded (instead of --account).")
@_out_option(REPORTS_DIR, "Folder; files go to <out>/<period>/statement-<who>-<period>.html/.csv.")
@db_option
@policy_option
@period_options
def fees_statement(
    account: str | None,
    reseller: str | None,
    out: Path,
    db: str,
    policy: PolicySet,
    period: Period,
) -> None:
    """An account's (or reseller's) fee lines, credits, reversals, net and SLA compliance."""
    from ipchange_core import statement, store

    if (account is None) == (reseller is None):
        raise click.UsageError("give exactly one of --account or --reseller")
    by, name = ("account", account) if account is not None else ("reseller", reseller)
    with store.connected(db) as engine:
        paths = statement.write_statement(
            engine, policy, period, out / period.label, by=by, name=str(name)
        )
    for path in paths:
        click.echo(str(path))


def run() -> None:
    """The ``ipchange`` console script: :func:`main`, then the collector is frozen for the exit.

    While the interpreter tears its modules down it runs the cyclic collector, which walks
    every object pandas, SQLAlchemy and pyarrow made: 0.24–0.6 s after an export of 100,000
    requests. :func:`gc.freeze` takes them out of its sight first (the memory goes back with the
    process). Nothing is left for a collection to close by then: each command closes its files
    and its engine (:func:`ipchange_core.store.connected`) itself. Tests call :func:`main`, and
    keep their collector.
    """
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    run()
