"""Preloaded by the fork server of the report workers (:func:`ipchange_core.render.render_all`).

Importing it imports papermill, nbconvert and jupytext and compiles the report's HTML template,
once in the fork server: every report worker forked from it starts with them ready.

The server must stay single-threaded, or forking it is what the start method was chosen to
avoid. papermill imports pyarrow and numpy, which start threads when loaded: OpenBLAS its
workers, pyarrow's jemalloc a background thread. They are loaded here with those threads
turned off, and the environment is put back afterwards (the kernels see the user's settings).
"""

import os

_NO_THREADS = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
}
_saved = {name: os.environ.get(name) for name in _NO_THREADS}
os.environ.update(_NO_THREADS)
try:
    from ipchange_core import render

    render.import_notebook_tools()
    render.html_exporter()
finally:
    for _name, _value in _saved.items():
        if _value is None:
            os.environ.pop(_name, None)
        else:
            os.environ[_name] = _value
