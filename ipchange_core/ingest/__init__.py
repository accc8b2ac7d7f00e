"""Reading input files into typed canonical frames and rejects (SPEC 3).

:func:`read_file` is the entry point: it recognises the format (:mod:`.detect`), has the
format's reader turn the file into canonical text, checks and types that text the same way for
every format (:mod:`.checks`, times by :mod:`.timestamps`) and returns a :class:`ParsedFile`.

Modules, one job each:

* :mod:`.read` — :func:`read_file` and :class:`ParsedFile`: which reader runs, counts that
  reconcile, block-by-block reading of large XML exports.
* :mod:`.detect` — the formats (:data:`FORMAT_TABLES`) and :func:`detect_format`.
* :mod:`.tabular` — any CSV/XLSX file as stripped text columns with line numbers.
* Readers, one per format family, each returning :class:`~.columns.CanonicalText`:
  :mod:`.canonical` (canonical CSV/XLSX), :mod:`.kayako_xml` (ticket XML),
  :mod:`.kayako_report` (KQL report CSV and its column mapping), :mod:`.kayako_audit` (audit log:
  database export or KQL report, CSV or XLSX), :mod:`.kayako_lookups` (the lookup lists' XML),
  :mod:`.kayako_posts` (ticket posts: intake from the "cloud info" macro, :func:`read_posts`);
  :mod:`.kayako_values` holds what Kayako writes alike in all of them.
* :mod:`.checks` — value checks, repeated keys and the pandera contract.
* :mod:`.timestamps` — the vectorised time parser.
* :mod:`.spill` — rows of a file read in blocks, kept in a temporary file.
* :mod:`.columns` — :class:`~.columns.CanonicalText` and the Arrow text helpers all share.
"""

from __future__ import annotations

from ipchange_core.ingest.detect import CANONICAL_FORMATS, FORMAT_TABLES, FORMATS, detect_format
from ipchange_core.ingest.read import REJECT_COLUMNS, ParsedFile, read_file, read_posts
from ipchange_core.ingest.timestamps import strftime_regex
from ipchange_core.policy import KayakoLookups

__all__ = [
    "CANONICAL_FORMATS",
    "FORMATS",
    "FORMAT_TABLES",
    "REJECT_COLUMNS",
    "KayakoLookups",
    "ParsedFile",
    "detect_format",
    "read_file",
    "read_posts",
    "strftime_regex",
]
