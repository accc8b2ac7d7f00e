"""A small database from data/sample with script payloads in every free-text field."""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner

from ipchange_core.cli import main
from ipchange_core.schema import TABLES

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
CANONICAL = ["tickets.csv", "ticket_events.csv", "intake.csv", "changes.csv"]
PAYLOADS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<script>document.title='pwned'</script>",
)
HOSTILE_FIELDS = {
    "tickets.csv": ("subject", "account"),
    "intake.csv": ("account", "site", "reseller", "person_of_record", "agent"),
    "changes.csv": ("engineer", "fee_accepted_by", "fee_waiver_reason", "fee_waived_by"),
}
FREE_TEXT = {
    table: tuple(c.name for c in columns if c.kind == "text" and c.name != "ticket_id")
    for table, columns in TABLES.items()
}
"""Every free-text column of every canonical table (ticket_id is the key, not free text)."""
EMAILS_AND_PHONES = ("@site114-dallas.example.com", "(214) 555-0142", "555-0120")


def hostile_copy(folder: Path) -> list[Path]:
    """Write the sample CSVs with payloads appended to free-text fields (same value per ticket).

    The same account/person text is used in every file, so tickets still match their intake and
    the fee's signer still matches the person of record.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CANONICAL:
        with (SAMPLE / name).open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        fields = list(rows[0])
        for row in rows:
            for field in HOSTILE_FIELDS.get(name, ()):
                if row.get(field):
                    row[field] = _hostile(field, row[field])
        out = folder / name
        with out.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        written.append(out)
    return written


def _hostile(field: str, value: str) -> str:
    """A deterministic payload per value, so equal values stay equal across files."""
    payload = PAYLOADS[sum(map(ord, value)) % len(PAYLOADS)]
    if field in ("account",):
        return f"{value}{payload}"
    return f"{payload}{value}" if field in ("subject", "site") else f"{value} {payload}"


def build_db(folder: Path, *, hostile: bool = True) -> str:
    """Ingest the (hostile) sample into a fresh SQLite file; return its URL."""
    url = f"sqlite:///{(folder / 'reports.db').as_posix()}"
    files = hostile_copy(folder / "input") if hostile else [SAMPLE / f for f in CANONICAL]
    result = CliRunner().invoke(
        main,
        ["ingest", *map(str, files), "--db", url, "--rejects-dir", str(folder / "loads")],
        catch_exceptions=False,
    )
    assert result.exit_code in (0, 1), result.output
    return url
