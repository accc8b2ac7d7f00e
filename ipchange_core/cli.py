"""The ``ipchange`` command: ingest, export, demo data and policy (exit codes 0 / 1 / 2).

Each command imports the modules it uses inside its body: pandas, SQLAlchemy's ORM, pyarrow and
papermill take seconds to import together, and ``ipchange --help`` or ``policy show`` need none
of them.
"""

from __future__ import annotations

import contextlib
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
from ipchange_core.errors import InvalidInputError, IpchangeError, OutputError

if TYPE_CHECKING:
    from ipchange_core.digest import FileDigest
    from ipchange_core.periods import Period
    from ipchange_core.policy import PolicySet

EXIT_OK, EXIT_REJECTS, EXIT_FATAL = 0, 1, 2


class FatalError(click.ClickException):
    """A usage or input error reported as one line, exit code 2."""

    exit_code = EXIT_FATAL

    def __init__(self, message: str) -> None:
        # a driver's message may span lines (libpq adds "\tIs the server running…"): join them
        super().__init__(" ".join(part.strip() for part in message.splitlines() if part.strip()))


class _UsageError(click.UsageError):
    """A usage error shown as one line (click shows the usage and a hint on lines of their own)."""

    def show(self, file: Any = None) -> None:
        """Print ``Error: <message> (see '<command> --help')`` to stderr."""
        hint = f" (see '{self.ctx.command_path} --help')" if self.ctx is not None else ""
        click.echo(f"Error: {self.format_message()}{hint}", file=file, err=file is None)


def _message(exc: Exception, command: str) -> str:
    """The one line a user sees for an error that ended ``command`` (``ipchange fees export``).

    The package's own errors are worded where they are raised; a database or file system error
    says what refused and which path; anything else is unexpected: its class, and the hint to
    rerun with ``--debug``.
    """
    if isinstance(exc, IpchangeError):
        return str(exc)
    # A database error outside store.load (which words its own), through SQLAlchemy or a raw
    # driver cursor. A command that never imported a database module cannot have raised one.
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

        return f"the database refused: {db_error_reason(exc)}"
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        target = f"{exc.filename} → {exc.filename2}" if exc.filename2 is not None else exc.filename
        return f"{command}: {exc.strerror}: {target}"
    first = (str(exc).strip().splitlines() or [""])[0]
    first = first if len(first) <= 200 else f"{first[:200]}…"
    return (
        f"{command} failed unexpectedly: {type(exc).__name__}"
        + (f": {first}" if first else "")
        + " (rerun with --debug to see the traceback)"
    )


def _one_line(ctx: click.Context | None, command: str, body: Callable[[], Any]) -> Any:
    """Run ``body``; turn any error but click's own into a :class:`FatalError` (one line, exit 2).

    ``command`` names the command in the message (``ipchange fees export``). With
    ``ipchange --debug`` (read from ``ctx``'s root) the error goes on untouched, and Python
    prints its traceback. A usage error becomes one line too (:class:`_UsageError`).
    """
    try:
        return body()
    except _UsageError:
        raise
    except click.UsageError as exc:
        raise _UsageError(exc.format_message(), exc.ctx) from None
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except Exception as exc:
        if ctx is not None and ctx.find_root().params.get("debug"):
            raise
        raise FatalError(_message(exc, command)) from None


class _OneLine:
    """Mixin of :class:`_Command` and :class:`_Group`: their errors reach the user as one line.

    Errors while the command's arguments are processed (a callback's, a usage error) and while
    it runs are both caught (see :func:`_one_line`).
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra
    ) -> click.Context:
        """The command's context, as click makes it."""
        command = " ".join(filter(None, (parent.command_path if parent else "", info_name)))
        make = super().make_context  # type: ignore[misc]
        return _one_line(parent, command, lambda: make(info_name, args, parent=parent, **extra))

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, as click does."""
        return _one_line(ctx, ctx.command_path, lambda: super(_OneLine, self).invoke(ctx))  # type: ignore[misc]


class _Command(_OneLine, click.Command):
    """A command whose errors reach the user as one line."""


class _Group(_OneLine, click.Group):
    """A group of :class:`_Command`; its own errors are one line as well."""

    command_class = _Command
    group_class = type  # subgroups are _Group as well


class _Path(click.Path):
    """A :class:`click.Path` that refuses a NUL character (no file name can hold one)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The path, as :class:`click.Path` checks it; a usage error when it holds a NUL."""
        if "\x00" in str(value):
            self.fail(f"{str(value)!r} holds a NUL character", param, ctx)
        return super().convert(value, param, ctx)


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
        type=_Path(dir_okay=False, path_type=Path),
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
@click.option(
    "--debug", is_flag=True, help="Show the traceback of an unexpected error instead of one line."
)
def main(debug: bool) -> None:
    """Reports and SLA analytics for a help desk's IP change requests.

    Exit codes: 0 ok, 1 rejected rows present, 2 usage or fatal input error.
    """


@main.group()
def policy() -> None:
    """Show or check the policy (the procedure's rules as data)."""


@policy.command("show")
@policy_option
def policy_show(policy: PolicySet) -> None:
    """Print every resolved policy version as YAML."""
    import yaml

    click.echo(yaml.safe_dump(policy.as_dict(), sort_keys=False, allow_unicode=True), nl=False)


@policy.command("check")
@click.argument("file", type=_Path(dir_okay=False, path_type=Path))
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


def out_option(
    help_text: str, default: Path = REPORTS_DIR
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--out DIR``, a folder (default: the reports folder ``reports/``)."""
    return click.option(
        "--out",
        type=_Path(file_okay=False, path_type=Path),
        default=default,
        show_default=True,
        help=help_text,
    )


def at_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--at TIMESTAMP`` as ``at_text`` (parse it with :func:`ipchange_core.check.parse_at`)."""
    return click.option("--at", "at_text", metavar="TIMESTAMP", help=help_text)


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
    type=_Path(dir_okay=False, path_type=Path),
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
    type=_Path(exists=True, dir_okay=False, path_type=Path),
    help="Column mapping YAML for a Kayako report CSV.",
)
@click.option(
    "--rejects-dir",
    type=_Path(file_okay=False, path_type=Path),
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
    from ipchange_core.pipeline import load_file

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
            exit_code = max(exit_code, _report_load(str(path), parsed, result, rejects_dir))
    raise SystemExit(exit_code)


def _report_load(name: str, parsed: Any, result: Any, rejects_dir: Path) -> int:
    """Print a loaded file's counts, notes and rejects; write its load report; its exit code.

    ``parsed`` and ``result`` are the :class:`~ipchange_core.ingest.ParsedFile` and the
    ``store.LoadResult`` of the load. Returns 0, 1 (rows rejected) or 2 (the report could not
    be written; the load stands, its rejects are in the database).
    """
    from ipchange_core.pipeline import load_summary, write_load_report

    click.echo(f"{name}: {parsed.format} → {parsed.table}")
    for note in parsed.notes:
        click.echo(f"  note: {note}")
    click.echo(f"  {load_summary(result)}")
    try:
        written = write_load_report(rejects_dir, parsed, result)
    except OutputError as exc:
        rejected = f"{result.rejected} rejected row(s); " if result.rejected else ""
        click.echo(f"  {rejected}{exc}", err=True)
        return EXIT_FATAL
    if written is None:
        return EXIT_OK
    click.echo(f"  {result.rejected} rejected row(s), reasons in {written}", err=True)
    for message in parsed.reject_messages()[:5]:
        click.echo(f"    {message}", err=True)
    return EXIT_REJECTS


@main.group(cls=_Group)
def pull() -> None:
    """Fetch from a help desk's API and load it like an ingest of its files."""


@pull.command("kayako")
@click.option(
    "--url",
    required=True,
    metavar="URL",
    help="The help desk's API, e.g. https://helpdesk.example.com/api/index.php.",
)
@click.option(
    "--page-size",
    type=click.IntRange(2, 5000),
    default=250,
    show_default=True,
    help="Tickets per ListAll request.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Read tickets active since this local date, whatever the last pull read.",
)
@click.option(
    "--kayako-config",
    type=_Path(dir_okay=False, path_type=Path),
    help="Owner-only YAML with api_key and secret_key (env IPCHANGE_KAYAKO_CONFIG).",
)
@click.option(
    "--tries",
    type=click.IntRange(1, 100),
    default=6,
    show_default=True,
    help="Requests per answer at most, retries included.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds to wait to connect, and for each part of an answer.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds before the first retry; doubled for each further one (unless Retry-After).",
)
@click.option(
    "--rejects-dir",
    type=_Path(file_okay=False, path_type=Path),
    default=LOADS_DIR,
    show_default=True,
    help="Where each document's load report and <document>.rejects.csv are written.",
)
@db_option
@policy_option
def pull_kayako(
    url: str,
    page_size: int,
    since: dt.datetime | None,
    kayako_config: Path | None,
    tries: int,
    timeout: float,
    backoff: float,
    rejects_dir: Path,
    db: str,
    policy: PolicySet,
) -> None:
    """Pull the lookups, the tickets changed since the last pull and their requests' posts.

    The key and secret come from IPCHANGE_KAYAKO_API_KEY and IPCHANGE_KAYAKO_SECRET_KEY, or an
    owner-only YAML file (--kayako-config). The first pull reads every ticket; a later one reads
    back to an hour before the latest activity it loaded (--since: to a date). Of the new or
    changed tickets, the IP change requests' posts are fetched: their cloud-info macros are
    intake. Everything is fetched before anything is loaded, then loaded in one transaction.
    Prints each document's read = inserted + updated + unchanged + rejected and a summary.
    Exit 1 when tickets or intake records were rejected, 2 when a request failed for good or an
    answer was not a Kayako document (then nothing is loaded).
    """
    from tqdm import tqdm

    from ipchange_core import store
    from ipchange_core.kayako_api.client import RetryPolicy
    from ipchange_core.kayako_api.credentials import credentials
    from ipchange_core.kayako_api.pull import pull_kayako as pull_from
    from ipchange_core.kayako_api.pull import pull_summary

    keys = credentials(kayako_config)
    retry = RetryPolicy(tries=tries, timeout=timeout, backoff=backoff)
    exit_code = EXIT_OK
    with (
        store.connected(db) as engine,
        tqdm(
            desc="pulling",
            unit="ticket",
            disable=not sys.stderr.isatty(),
            bar_format="{desc}: {n_fmt} tickets{postfix} [{elapsed}, {rate_fmt}]",
            postfix="0 pages",
        ) as bar,
    ):
        click.echo(f"database: {display_url(db)}")

        pages = "0 pages"

        def progress(paged: Any, size: int) -> None:
            nonlocal pages
            bar.update(len(paged.tickets) - bar.n)
            pages = f"{paged.pages} pages"
            bar.set_postfix_str(pages)

        def posts_progress(done: int, total: int) -> None:
            refresh = done % 50 == 0 or done == total  # a request is quick: redraw now and then
            bar.set_postfix_str(f"{pages}, posts of {done}/{total} requests", refresh=refresh)

        result = pull_from(
            engine,
            url,
            keys,
            policy,
            page_size=page_size,
            since=since.date() if since is not None else None,
            retry=retry,
            on_page=progress,
            on_posts=posts_progress,
        )
    for loaded, parsed in result.loads:
        exit_code = max(exit_code, _report_load(parsed.path.name, parsed, loaded, rejects_dir))
    for line in pull_summary(result, policy.latest.timezone):
        click.echo(line)
    raise SystemExit(exit_code)


@main.group()
def export() -> None:
    """Flat exports for analysts."""


def _describe_requests(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """Print the data dictionary of the requests export and stop (no period or file needed)."""
    if not value or ctx.resilient_parsing:
        return
    from ipchange_core.export import dictionary_markdown

    click.echo(dictionary_markdown(), nl=False)
    ctx.exit(0)


@export.command("requests")
@click.option(
    "-o",
    "--output",
    required=True,
    type=_Path(dir_okay=False, path_type=Path),
    help="CSV file to write.",
)
@click.option(
    "--describe",
    is_flag=True,
    is_eager=True,
    expose_value=False,
    callback=_describe_requests,
    help="Print every column with its type, unit, time zone and meaning, and exit.",
)
@db_option
@policy_option
@period_options
def export_requests(output: Path, period: Period, db: str, policy: PolicySet) -> None:
    """Write one row per request received in the period, with every computed field (CSV)."""
    from ipchange_core import store
    from ipchange_core.csvfile import write_csv
    from ipchange_core.evaluation import evaluate
    from ipchange_core.export import requests_table
    from ipchange_core.requests import ASSEMBLED_COLUMNS

    with store.connected(db, create=False) as engine:
        frames = store.read_frames(
            engine, period.start, period.end, policy=policy, columns=ASSEMBLED_COLUMNS
        )
    evaluated = evaluate(frames, policy=policy)
    table = requests_table(evaluated, policy.latest.timezone)
    write_csv(table, output)
    click.echo(f"database: {display_url(db)}")
    if table.empty:
        click.echo(f"No requests were received in {period.label}; {output} holds the header only")
    else:
        click.echo(f"{len(table)} request(s) of {period.label} written to {output}")


DEMO_ENDS = (dt.date(2000, 1, 1), dt.date(2999, 12, 31))
"""The range of ``demo-data --end``: Kayako's epoch times, 20 years of ``--months`` before it."""


@main.command("demo-data")
@click.option(
    "--requests", "n_requests", type=click.IntRange(min=0), default=600, show_default=True
)
@click.option("--other-tickets", type=click.IntRange(min=0), default=2400, show_default=True)
@click.option("--months", type=click.IntRange(1, 240), default=8, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--end",
    "end_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Data end (default: today).",
)
@click.option("--out", required=True, type=_Path(file_okay=False, path_type=Path))
def demo_data(
    n_requests: int,
    other_tickets: int,
    months: int,
    seed: int,
    end_date: dt.datetime | None,
    out: Path,
) -> None:
    """Generate a realistic, seeded help desk: the canonical CSVs and Kayako's own files.

    Kayako's files: the ticket XML with its lookup lists, the audit log (database export and
    report export) and the ticket report (CSV, plain and Excel-compatible).
    """
    from ipchange_core.demo.run import generate_demo

    end = end_date.date() if end_date else None
    if end is not None and not DEMO_ENDS[0] <= end <= DEMO_ENDS[1]:
        raise FatalError(
            f"--end {end}: the demo data must end between {DEMO_ENDS[0]} and {DEMO_ENDS[1]}"
        )
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
    type=_Path(file_okay=False, path_type=Path),
    default=DEMO_DIR,
    show_default=True,
    help="Where the generated input files go.",
)
@click.option(
    "--db",
    "db_value",
    metavar="URL",
    help="Database (env IPCHANGE_DB_URL; default data/ipchange.db, the one every command and "
    "notebook reads).",
)
@click.option(
    "--reports",
    "reports_out",
    type=_Path(file_okay=False, path_type=Path),
    default=REPORTS_DIR,
    show_default=True,
    help="Where the reports are written.",
)
@policy_option
def demo(out: Path, db_value: str | None, reports_out: Path, policy: PolicySet) -> None:
    """Generate the demo data set, load it and build every report of the last full week and month.

    Also exports the month's fees; prints a summary and the paths of everything written.
    """
    import pandas as pd
    from tqdm import tqdm

    from ipchange_core import billing, periods, store
    from ipchange_core.demo.reference import FILES
    from ipchange_core.demo.run import DEMO_LOADS, demo_summary, generate_demo
    from ipchange_core.pipeline import load_file, load_summary

    db = database_url(db_value)
    with store.connected(db) as engine:
        click.echo(f"database: {display_url(db)}")
        _refuse_foreign_loads(engine, db, set(FILES))
    dataset = generate_demo(out / "input", requests=600, other_tickets=2400, months=8, seed=7)
    loads = [dataset.paths[name] for name in DEMO_LOADS]
    with store.connected(db) as engine:
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
        _check(engine, policy, pd.Timestamp.now("UTC"), out=reports_out, output=None, limit=10)


def _refuse_foreign_loads(engine: Any, db: str, names: set[str]) -> None:
    """Refuse to mix the demo's invented tickets into a database holding other loads."""
    from ipchange_core import store

    others = sorted(set(store.manifests(engine)["file_name"]) - names)
    if others:
        raise FatalError(
            f"the database {display_url(db)} holds loads of other files ({', '.join(others[:3])}"
            f"{', …' if len(others) > 3 else ''}); the demo would mix its invented tickets with "
            "them: give it a database of its own with --db"
        )


def _build_reports(jobs: list[tuple[str, str]], *, out: Path, db: str, policy: PolicySet) -> None:
    """Render report jobs in parallel with a progress bar; print each path; exit 2 on failure."""
    from tqdm import tqdm

    failures = []
    with contextlib.ExitStack() as stack:
        bars: list[tqdm] = []  # shown once the output is known to be writable

        def ready() -> None:
            bars.append(stack.enter_context(tqdm(total=len(jobs), desc="reports", unit="report")))

        def done(result: object) -> None:
            if isinstance(result, render.RenderError):
                failures.append(result)
                tqdm.write(f"FAILED {result}")
            else:
                tqdm.write(f"{result.html}  ({result.seconds:.1f} s)")
            bars[0].update()

        render.render_all(
            jobs,
            out=out,
            db_url=db,
            policy_file=str(policy.user_file or ""),
            on_done=done,
            on_ready=ready,
        )
    from ipchange_core.dashboard import write_dashboard

    click.echo(f"index: {write_dashboard(out, db_url=db, policy=policy).resolve()}")
    if failures:
        raise FatalError(f"{len(failures)} report(s) failed; the previous versions were kept")


@main.group(cls=_Group)
def report() -> None:
    """Build a period's reports as offline HTML in <out>/<period>/; the check; the dashboard.

    Also writes the executed notebook beside each page and <out>/index.html (and, for the fee
    report, each fee's evidence page in <out>/<period>/evidence/). A failing report keeps its
    previous version, names the failing cell and keeps <name>.failed.ipynb.
    """


def _period_report(which: str, title: str) -> None:
    """Add ``ipchange report WHICH`` (a period report, or ``all`` of them)."""

    @report.command(which, help=f"Build {title} for a period as offline HTML in <out>/<period>/.")
    @out_option("Reports folder; each report goes to <out>/<period>/.")
    @db_option
    @policy_option
    @period_options
    def command(out: Path, db: str, policy: PolicySet, period: Period) -> None:
        from ipchange_core import store

        with store.connected(db, create=False) as engine:  # refuse a missing or empty one
            click.echo(f"database: {display_url(db)}")
            keys = list(render.REPORTS) if which == "all" else [which]
            if "fees" in keys:  # the fee report links each fee's evidence page
                from ipchange_core import evidence

                evidence.write_period_evidence(engine, policy, period, out / period.label)
        _build_reports([(k, period.label) for k in keys], out=out, db=db, policy=policy)


for _key, (_, _, _title) in render.REPORTS.items():
    _period_report(_key, f"the {_title} report")
_period_report("all", "every report")


@report.command("check")
@at_option("Judge as of this instant (default now).")
@click.option(
    "-o",
    "--output",
    type=_Path(dir_okay=False, path_type=Path),
    help="Also write the problems as CSV here.",
)
@out_option("Reports folder; the page goes to <out>/check/<date>.html.")
@db_option
@policy_option
def report_check(
    at_text: str | None, output: Path | None, out: Path, db: str, policy: PolicySet
) -> None:
    """List what needs action on open requests now (or --at an ISO-8601 instant), most urgent first.

    --at takes an offset (2026-11-23T07:00-06:00) or a local time in the policy zone; records
    after it are ignored, so any past morning can be checked again. Prints a plain-text summary
    (fit for a cron mail) and writes the HTML page.
    """
    import pandas as pd

    from ipchange_core import check, store

    at = check.parse_at(at_text, policy.latest.timezone) if at_text else pd.Timestamp.now("UTC")
    with store.connected(db, create=False) as engine:
        _check(engine, policy, at, out=out, output=output)


def _check(
    engine: Any, policy: PolicySet, at: Any, *, out: Path, output: Path | None, limit: int = 25
) -> None:
    """Run the check as of ``at``: write its page (and CSV), print its summary."""
    from ipchange_core import check, check_report, store

    tz = policy.latest.timezone
    at = at.as_unit("us")
    problems = check.check_database(engine, policy, at)
    page = check_report.write_check_page(
        check_report.check_page(problems, at, policy, inputs=store.manifests(engine)), at, tz, out
    )
    if output is not None:
        from ipchange_core.csvfile import write_csv

        write_csv(check_report.check_table(problems, tz), output)
    click.echo(check_report.summary_text(problems, at, tz, limit=limit, page=str(page)), nl=False)
    if output is not None:
        click.echo(f"CSV: {output}")


@report.command("dashboard")
@out_option("Reports folder; the dashboard is <out>/index.html.")
@at_option("As of this instant (default now).")
@db_option
@policy_option
def report_dashboard(at_text: str | None, out: Path, db: str, policy: PolicySet) -> None:
    """Rebuild the landing page <out>/index.html (report commands also rebuild it).

    Last week's tiles and trends, today's check counts, fees waiting for sign-off or export,
    and every period's reports.
    """
    from ipchange_core.check import parse_at
    from ipchange_core.dashboard import write_dashboard

    at = parse_at(at_text, policy.latest.timezone) if at_text else None
    click.echo(str(write_dashboard(out, db_url=db, policy=policy, at=at)))


@main.group()
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
    type=_Path(file_okay=False, path_type=Path),
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
    with store.connected(db, create=False) as engine:
        click.echo(f"database: {display_url(db)}")
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


@main.group(cls=_Group)
def mail() -> None:
    """Send a report by e-mail (SMTP).

    Settings from IPCHANGE_SMTP_HOST, _PORT, _TLS (starttls|tls|none), _USER, _PASSWORD, _FROM,
    or an owner-only YAML file (--smtp-config or IPCHANGE_SMTP_CONFIG) with the keys host,
    port, tls, user, password, from; the environment wins. Exit 2 with one line when the
    settings are bad or the server cannot be reached; nothing is then marked sent.
    """


def mail_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--to`` (repeatable), ``--smtp-config`` and ``--out``; pass ``settings`` and ``to``."""

    @click.option(
        "--to", "to", multiple=True, required=True, metavar="ADDRESS", help="A recipient."
    )
    @click.option(
        "--smtp-config",
        type=_Path(dir_okay=False, path_type=Path),
        help="Owner-only YAML with the SMTP settings (env IPCHANGE_SMTP_CONFIG).",
    )
    @out_option("Reports folder the attached files are taken from or written to.")
    @functools.wraps(command)
    def wrapper(*args: Any, to: tuple[str, ...], smtp_config: Path | None, **kwargs: Any) -> Any:
        from ipchange_core.mail import address, smtp_settings

        settings = smtp_settings(smtp_config)
        return command(*args, settings=settings, to=[address(t) for t in to], **kwargs)

    return wrapper


def _send(settings: Any, to: list[str], mail_: Any) -> str:
    """Send a built mail; print one line; return its Message-ID."""
    from ipchange_core.mail import build_message, send, smtp_session

    message = build_message(settings, to, mail_.subject, mail_.text, mail_.html, mail_.attachments)
    with smtp_session(settings) as smtp:
        message_id = send(smtp, message, settings)
    names = ", ".join(a.name for a in mail_.attachments)
    click.echo(f"sent '{mail_.subject}' to {len(to)} recipient(s) with {names}")
    return message_id


@mail.command("check")
@at_option("Check as of this instant (default now).")
@db_option
@policy_option
@mail_options
def mail_check(
    at_text: str | None, settings: Any, to: list[str], out: Path, db: str, policy: PolicySet
) -> None:
    """Mail the morning check (counts, most urgent rows; its page and CSV attached)."""
    import pandas as pd

    from ipchange_core import check, store
    from ipchange_core.mailings import check_mail

    at = check.parse_at(at_text, policy.latest.timezone) if at_text else pd.Timestamp.now("UTC")
    with store.connected(db, create=False) as engine:
        built = check_mail(engine, policy, at.as_unit("us"), out)
    _send(settings, to, built)


@mail.command("weekly")
@db_option
@policy_option
@mail_options
@period_options
def mail_weekly(
    settings: Any, to: list[str], out: Path, db: str, policy: PolicySet, period: Period
) -> None:
    """Mail a period's SLA tiles and breaches, its reports attached as a zip (built if missing)."""
    from ipchange_core.mailings import weekly_mail

    _send(settings, to, weekly_mail(period.label, db_url=db, policy=policy, out=out))


@mail.command("fees")
@click.option("--resend", type=int, metavar="BATCH", help="Send this export batch again.")
@db_option
@policy_option
@mail_options
@period_options
def mail_fees(
    resend: int | None,
    settings: Any,
    to: list[str],
    out: Path,
    db: str,
    policy: PolicySet,
    period: Period,
) -> None:
    """Export a new fee batch of the period and mail every batch not mailed yet (CSV + XLSX).

    The server is tried before anything is exported; a batch is recorded as mailed only once
    the server took the message, and is never sent again unless --resend names it.
    """
    from ipchange_core import store
    from ipchange_core.mail import smtp_session
    from ipchange_core.mailings import fee_mail, mark_sent

    with smtp_session(settings):
        pass  # unreachable or refusing: exit 2 before a batch is exported
    with store.connected(db, create=False) as engine:
        built = fee_mail(engine, policy, period, out, resend=resend)
        if built is None:
            click.echo(f"every fee batch of {period.label} has been mailed; nothing sent")
            return
        message_id = _send(settings, to, built)
        mark_sent(engine, built, to, message_id)


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

    with store.connected(db, create=False) as engine:
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
    with store.connected(db, create=False) as engine:
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

    with store.connected(db, create=False) as engine:
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


@fees.command("evidence")
@click.argument("ticket")
@out_option("Folder the page is written to.", REPORTS_DIR / "evidence")
@db_option
@policy_option
def fees_evidence(ticket: str, out: Path, db: str, policy: PolicySet) -> None:
    """Write TICKET's printable fee evidence page (timeline, notice, sign-off, ledger)."""
    from ipchange_core import evidence, store

    with store.connected(db, create=False) as engine:
        path = evidence.write_evidence(engine, policy, ticket, out)
    click.echo(str(path))


@fees.command("statement")
@click.option("--account", help="The account, as recorded.")
@click.option("--reseller", help="The reseller, as recorded (instead of --account).")
@out_option("Folder; files go to <out>/<period>/statement-<who>-<period>.html/.csv.")
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
    with store.connected(db, create=False) as engine:
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
