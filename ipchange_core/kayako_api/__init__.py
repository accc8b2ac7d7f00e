"""Kayako Classic's REST API (FORMATS.md 1): ``ipchange pull kayako`` instead of hand exports.

Modules, one job each:

* :mod:`.credentials` — the API key and secret key, from the environment or an owner-only file.
* :mod:`.client` — signed requests (a fresh salt each), retries with backoff, answers checked
  to be Kayako documents, URLs shown without salt and signature.
* :mod:`.paging` — ``ListAll`` page by page, newest activity first, with overlapping pages.
* :mod:`.documents` — the fetched tickets as one ``<tickets>`` document, as Kayako writes it.
* :mod:`.pull` — the pull: lookups, tickets since the mark, loaded like an ingest of the files.

The API has no audit log: department, status and owner history still comes from an audit
report export (``ipchange ingest``; README, "Pulling from Kayako").
"""
