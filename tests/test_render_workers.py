"""Report workers start from a single-threaded fork server, whatever threads the command runs."""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from ipchange_core import render


def _inside() -> tuple[int, bool, str | None]:
    """In a worker: the fork server's threads, whether papermill came preloaded, an env var."""
    server_threads = len(os.listdir(f"/proc/{os.getppid()}/task"))
    return server_threads, "papermill" in sys.modules, os.environ.get("JE_ARROW_MALLOC_CONF")


def test_workers_fork_from_a_single_threaded_server_with_the_tools_loaded() -> None:
    context = render._worker_context()
    assert context.get_start_method() == "forkserver"
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait, daemon=True)  # this process is multi-threaded
    busy.start()
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            server_threads, preloaded, env = pool.submit(_inside).result(timeout=120)
    finally:
        stop.set()
    assert server_threads == 1  # forking it cannot deadlock a child (no DeprecationWarning)
    assert preloaded  # papermill, nbconvert and the template: imported once, in the server
    assert env is None  # the thread settings used while preloading were put back


def test_the_preload_module_is_the_one_render_names() -> None:
    module = Path(render.__file__).with_name(f"{render.WORKER_PRELOAD.rsplit('.', 1)[1]}.py")
    assert module.is_file()
