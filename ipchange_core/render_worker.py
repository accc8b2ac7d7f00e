"""Preloaded by the fork server of the report workers (:func:`ipchange_core.render.render_all`).

Importing it imports papermill, nbconvert and jupytext and compiles the report's HTML template,
once in the fork server: every report worker forked from it starts with them ready.
"""

from ipchange_core import render

render._import_notebook_tools()
render._exporter()
