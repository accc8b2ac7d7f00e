"""Build the report HTML: papermill runs a notebook, nbconvert turns it into an offline page.

Output of one run, for a period label ``P`` and a report ``name`` (SPEC 5):
``<out>/P/<name>.html`` and the executed ``<out>/P/<name>.ipynb`` beside it for audit;
``<out>/plotly.min.js`` shared by every report (written once, referenced relatively as
``../plotly.min.js`` so that a copied reports folder still works); ``<out>/index.html``.

Every file is written to a temporary name and renamed, so a failing notebook leaves the previous
report intact; the executed failing notebook is kept as ``<name>.failed.ipynb``.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ipchange_core.atomic import atomic_write, ensure_folder, publish, sweep_stale, temp_file
from ipchange_core.config import NOTEBOOKS_DIR, PACKAGE_DIR
from ipchange_core.errors import IpchangeError, OutputError

if TYPE_CHECKING:  # importing nbformat takes seconds (jsonschema): only when rendering
    import nbformat
    from nbconvert import HTMLExporter

KERNEL_NAME = "ipchange"
"""The Jupyter kernel the reports run in, registered inside this Python's prefix."""

TEMPLATES_DIR = PACKAGE_DIR / "templates"
TEMPLATE_NAME = "ipchange_report"
PLOTLY_FILE = "plotly.min.js"

REPORTS = {
    "intake": ("01-intake-log", "intake-log", "Intake log"),
    "sla": ("02-sla-compliance", "sla-compliance", "SLA compliance"),
    "fees": ("03-fee-billing", "fee-billing", "Fee billing"),
    "explorer": ("04-ticket-explorer", "ticket-explorer", "Ticket explorer"),
}
"""Report key → (notebook stem in ``notebooks/``, output name, title)."""

ALLOWED_PARAMETERS = frozenset(
    {
        "period",
        "db_url",
        "policy_file",
        "plotly_js",
        "trend_weeks",
        "what_if_threshold_hours",
        "what_if_fee",
        "input_files",
    }
)
"""Parameter names a report accepts (papermill pastes names into code unescaped)."""


KERNEL_START_SECONDS = 300
"""How long a report waits for its notebook kernel to start before it fails."""


class RenderError(IpchangeError):
    """A report notebook failed; the message names the cell and the error."""


@dataclass(frozen=True)
class Rendered:
    """One report built: its HTML and executed notebook, and how long it took (s)."""

    key: str
    html: Path
    notebook: Path
    seconds: float


def ensure_kernel() -> str:
    """Register the ``ipchange`` kernel in this Python's prefix when missing; return its name."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except NoSuchKernel:
        pass
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ipykernel",
            "install",
            "--sys-prefix",
            "--name",
            KERNEL_NAME,
            "--display-name",
            "Python (ipchange)",
        ],
        check=True,
        capture_output=True,
    )
    return KERNEL_NAME


def _check_parameters(parameters: Mapping[str, object]) -> dict[str, object]:
    unknown = sorted(set(parameters) - ALLOWED_PARAMETERS)
    if unknown:
        raise RenderError(f"unknown report parameter(s): {', '.join(unknown)}")
    for name, value in parameters.items():
        if not isinstance(value, str | int | float | bool):
            raise RenderError(f"report parameter {name} must be a plain scalar, not {value!r}")
    return dict(parameters)


def write_plotly_js(out: Path) -> Path:
    """Write ``<out>/plotly.min.js`` (the plotly.js of the installed plotly) unless up to date."""
    from plotly.offline import get_plotlyjs

    target = out / PLOTLY_FILE
    data = get_plotlyjs().encode("utf-8")
    if not target.is_file() or target.read_bytes() != data:
        atomic_write(target, data)
    return target


def _notebook(stem: str) -> nbformat.NotebookNode:
    """The report notebook, read from its reviewed ``py:percent`` file."""
    import jupytext

    source = NOTEBOOKS_DIR / f"{stem}.py"
    if not source.is_file():
        raise RenderError(f"report notebook {source} is missing")
    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python (ipchange)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def import_notebook_tools() -> None:
    """Import papermill, nbconvert and jupytext without jsonschema's optional IRI checker.

    They all import nbformat, hence jsonschema, which imports ``rfc3987_syntax`` when it is
    installed (JupyterLab's dependencies bring it): that module compiles a Lark grammar at import,
    2–3 s of CPU before the first report can start (python-jsonschema/jsonschema#1392). nbformat
    never checks the ``iri`` format, so the checker is left out of this process only.
    """
    if "jsonschema" not in sys.modules and "rfc3987_syntax" not in sys.modules:
        sys.modules["rfc3987_syntax"] = None  # type: ignore[assignment]  # → ImportError
        try:
            import jsonschema  # noqa: F401
        finally:
            del sys.modules["rfc3987_syntax"]
    import jupytext  # noqa: F401
    import nbconvert  # noqa: F401
    import papermill  # noqa: F401


@functools.cache
def html_exporter() -> HTMLExporter:
    """The one HTML exporter of this process (its Jinja template is compiled once)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    _ = exporter.template  # compiled now, before the worker processes fork
    return exporter


def _to_html(nb: nbformat.NotebookNode, title: str) -> str:
    nb.metadata["title"] = title
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or c.get("outputs")]
    body, _ = html_exporter().from_notebook_node(nb)
    return body


def render(
    key: str,
    period: str,
    *,
    out: Path,
    db_url: str,
    policy_file: str = "",
    extra: Mapping[str, object] | None = None,
) -> Rendered:
    """Run one report notebook for a period and write its HTML and executed notebook.

    Args:
        key: ``intake``, ``sla``, ``fees`` or ``explorer``.
        period: Period label (``2026-W47``, ``2026-11``, ``2026-11-02_2026-11-15``).
        out: The reports folder (the report goes to ``out/period/``).
        db_url: Database URL (absolute).
        policy_file: Policy YAML ("" for the default policy); made absolute.
        extra: More parameters from :data:`ALLOWED_PARAMETERS`.

    Raises:
        RenderError: The notebook failed; its executed copy is kept as ``<name>.failed.ipynb``.
    """
    import_notebook_tools()
    import papermill
    import zmq
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    began = time.perf_counter()
    stem, name, title = REPORTS[key]
    out = Path(os.path.abspath(out))
    folder = ensure_folder(out / period)
    parameters = _check_parameters(
        {
            "period": period,
            "db_url": db_url,
            "policy_file": str(Path(policy_file).resolve()) if policy_file else "",
            "plotly_js": f"../{PLOTLY_FILE}",
            **(extra or {}),
        }
    )
    sweep_stale(folder)  # the executed notebooks of runs killed before they finished
    tmp_path = temp_file(folder, name, ".ipynb")
    try:
        try:
            executed = papermill.execute_notebook(
                _notebook(stem),
                str(tmp_path),
                parameters=parameters,
                request_save_on_cell_execute=False,  # one write at the end, not two per cell
                kernel_name=KERNEL_NAME,
                # a kernel's first start in a fresh environment compiles the bytecode of
                # pandas and the package; beside other reports on a busy machine that can take
                # longer than papermill's 60 s
                start_timeout=KERNEL_START_SECONDS,
                language="python",
                cwd=str(NOTEBOOKS_DIR),
                progress_bar=False,
                log_output=False,
                # every output is in by then, and the notebook disposed of its engine: a
                # graceful shutdown only waits 0.8 s for the kernel's own exit
                shutdown_kernel="immediate",
                # CurveZMQ keys for the kernel's sockets when its kernelspec supports them
                # (ipykernel 7 warns about plain TCP at every kernel start); jupyter_client
                # refuses "auto" outright where libzmq was built without CurveZMQ
                config=Config(
                    KernelManager={
                        "transport_encryption": "auto" if zmq.has("curve") else "disabled"
                    }
                ),
            )
        except PapermillExecutionError as exc:
            failed = folder / f"{name}.failed.ipynb"
            os.chmod(tmp_path, 0o644)
            publish(tmp_path, failed)
            line = (exc.source or "").strip().splitlines()
            raise RenderError(
                f"{name} ({period}): cell {exc.exec_count} failed with {exc.ename}: {exc.evalue}"
                f"\n  cell starts: {line[0] if line else ''}\n  executed notebook kept: {failed}"
            ) from None
        html_text = _to_html(executed, f"{title} · {period}")
        atomic_write(folder / f"{name}.html", html_text.encode("utf-8"))
        os.chmod(tmp_path, 0o644)
        publish(tmp_path, folder / f"{name}.ipynb")
        (folder / f"{name}.failed.ipynb").unlink(missing_ok=True)
    finally:
        tmp_path.unlink(missing_ok=True)
    return Rendered(
        key, folder / f"{name}.html", folder / f"{name}.ipynb", time.perf_counter() - began
    )


def _render_job(args: tuple[str, str, Path, str, str]) -> Rendered | RenderError:
    key, period, out, db_url, policy_file = args
    try:
        return render(key, period, out=out, db_url=db_url, policy_file=policy_file)
    except RenderError as exc:
        return exc
    except OutputError as exc:  # a full disk, say: this report failed, the others go on
        return RenderError(f"{REPORTS[key][1]} ({period}): {exc}")


WORKER_PRELOAD = "ipchange_core.render_worker"
"""Module the fork server imports once: the notebook tools and the compiled HTML template."""


def _worker_context() -> multiprocessing.context.BaseContext:
    """The ``forkserver`` start method, chosen explicitly for the report workers.

    This process may run threads by now (the file digests, tqdm's monitor, SQLAlchemy's pool),
    and forking a multi-threaded process can deadlock the child (Python 3.12 warns about it;
    3.14 makes ``forkserver`` the default on Linux). The fork server is a fresh process started
    with exec; it imports :data:`WORKER_PRELOAD` once, and every worker is forked from it
    with those imports done.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_PRELOAD])
    return context


def render_all(
    jobs: Iterable[tuple[str, str]],
    *,
    out: Path,
    db_url: str,
    policy_file: str = "",
    workers: int | None = None,
    on_done: object = None,
    on_ready: object = None,
) -> tuple[list[Rendered], list[RenderError]]:
    """Render ``(key, period)`` jobs in parallel processes, then write plotly.js and the index.

    Args:
        jobs: Reports to build.
        out: The reports folder.
        db_url: Database URL.
        policy_file: Policy YAML, or "".
        workers: Processes (default: one per job, at most one per CPU this process may use).
        on_done: Called with each :class:`Rendered` or :class:`RenderError` as it finishes.
        on_ready: Called once the folder, the kernel and plotly.js are in place, before the
            first report starts (an output that cannot be written has been refused by then).

    Returns:
        The reports built and the failures (a failure leaves the previous report intact).
    """
    jobs = list(jobs)
    out = ensure_folder(Path(os.path.abspath(out)))  # before seconds of imports
    write_plotly_js(out)  # first: an output that cannot be written is refused at once
    ensure_kernel()
    if callable(on_ready):
        on_ready()
    done: list[Rendered] = []
    failed: list[RenderError] = []
    # each report is CPU-bound (its kernel's imports, queries and charts, then the HTML export):
    # more workers than CPUs only makes every report wait longer for a CPU
    workers = workers or max(1, min(len(jobs), len(os.sched_getaffinity(0))))
    with ProcessPoolExecutor(max_workers=workers, mp_context=_worker_context()) as pool:
        args = [(key, period, out, db_url, policy_file) for key, period in jobs]
        for result in pool.map(_render_job, args):
            (failed if isinstance(result, RenderError) else done).append(result)
            if callable(on_done):
                on_done(result)
    write_index(out)
    return done, failed


def report_links(out: Path) -> list[str]:
    """One escaped ``<tr>`` per period folder under ``out``, linking its reports; newest first."""
    titles = {name: title for _, name, title in REPORTS.values()}
    rows = []
    for folder in sorted((p for p in out.iterdir() if p.is_dir()), reverse=True):
        pages = sorted(p for p in folder.glob("*.html") if p.stem in titles)
        if not pages:
            continue
        links = " · ".join(
            f'<a href="{html.escape(folder.name)}/{html.escape(p.name)}">'
            f"{html.escape(titles[p.stem])}</a>"
            for p in pages
        )
        rows.append(f"<tr><th>{html.escape(folder.name)}</th><td>{links}</td></tr>")
    return rows


def write_index(out: Path) -> Path:
    """Write ``<out>/index.html``: every report found under ``out``, newest period first."""
    rows = report_links(out)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\"><title>ipchange reports</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;color:#1f2937}"
        "table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 12px;"
        "border-bottom:1px solid #e5e7eb}th{white-space:nowrap}a{color:#2563eb}"
        "</style></head><body><h1>ipchange reports</h1>"
        f"<p>Updated {html.escape(stamp)}.</p><table>{''.join(rows)}</table></body></html>\n"
    )
    target = out / "index.html"
    atomic_write(target, page.encode("utf-8"))
    return target
