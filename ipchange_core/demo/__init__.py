"""Demo data: a seeded, realistic help desk written as the canonical CSVs and as Kayako writes it.

Modules, by concept:

- :mod:`~ipchange_core.demo.reference` — file names and columns, departments, staff, places;
- :mod:`~ipchange_core.demo.timeline` — the demo's epoch-second instants on the policy's
  :class:`~ipchange_core.business_calendar.BusinessCalendar`;
- :mod:`~ipchange_core.demo.text` — rows assembled from pools of pre-formatted strings;
- :mod:`~ipchange_core.demo.lifecycle` — the accounts and people, and how tickets move;
- :mod:`~ipchange_core.demo.kayako` — Kayako's own files: lookup lists, live-style ticket XML,
  audit log (database and report export), ticket report CSVs;
- :mod:`~ipchange_core.demo.posts` — the request tickets' posts (``TicketPost/ListAll``
  answers) with the agents' "cloud info" macro, which ``make demo`` takes intake from;
- :mod:`~ipchange_core.demo.writers` — one chunk of tickets as rows of every file;
- :mod:`~ipchange_core.demo.bad_rows` — deliberately bad rows for the ingest tests;
- :mod:`~ipchange_core.demo.dataset` — :func:`generate` and what it returns;
- :mod:`~ipchange_core.demo.run` — the ``ipchange demo`` job.
"""

from ipchange_core.demo.bad_rows import BAD_ROW_KINDS, BadRow
from ipchange_core.demo.dataset import DemoDataSet, generate
from ipchange_core.demo.reference import FILES

__all__ = [
    "BAD_ROW_KINDS",
    "FILES",
    "BadRow",
    "DemoDataSet",
    "generate",
]
