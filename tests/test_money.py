"""Money (issue #6): integer cents that add up, an immutable fee ledger, and a period billed once.

Hypothesis draws a month of requests (billable, standard notice, unsigned, waived) under a random
fee, loads them through the real ingest path into SQLite, and checks the fee billing report and
the billing export against a slow, obviously correct reference (a loop over Python ints); then it
corrects random exported fees and checks that what billing received over all batches nets to the
corrected fees, that exported rows never change, and that exporting again bills nothing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import tempfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ipchange_core import billing, reports, store
from ipchange_core.cli import main
from ipchange_core.periods import parse_period
from ipchange_core.pipeline import load_file
from ipchange_core.policy import PolicySet, load_policy
from ipchange_core.schema import TABLES
from ipchange_core.textops import money
from tests.report_fixtures import CANONICAL, SAMPLE

MONTH = "2026-11"
KINDS = ("billable", "standard", "unsigned", "waived")
EXPECTED_STATUS = {
    "billable": "billable",
    "standard": "not_applicable",
    "unsigned": "pending_sign_off",
    "waived": "waived",
}
ACCOUNTS = ("ACCT-1", "ACCT-2", "=ACCT-3", "Zoë & Co")
RESELLERS = ("", "Lone Star", "-Red River")

# --- drawing a month of requests ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Req:
    """One request: its kind decides its fee status; received on a November weekday morning."""

    kind: str
    day: int
    minute: int
    account: int
    reseller: int


requests_st = st.lists(
    st.builds(
        Req,
        kind=st.sampled_from(KINDS),
        day=st.integers(2, 27),
        minute=st.integers(0, 120),
        account=st.integers(0, len(ACCOUNTS) - 1),
        reseller=st.integers(0, len(RESELLERS) - 1),
    ),
    min_size=1,
    max_size=12,
)
fee_st = st.integers(1, 100_000_000)  # one cent to one million dollars


def policy_with_fee(cents: int) -> PolicySet:
    """The default policy with another fee (integer cents), in every version."""
    policy = load_policy()
    versions = tuple(dataclasses.replace(v, fee_cents=cents) for v in policy.versions)
    return dataclasses.replace(policy, versions=versions)


def ticket_id(i: int) -> str:
    return f"MNY-{i:03d}-{10_000 + i}"


def canonical_rows(reqs: list[Req]) -> dict[str, list[dict[str, str]]]:
    """Rows of tickets, intake and changes for the drawn requests (CST, UTC-6, in November)."""
    out: dict[str, list[dict[str, str]]] = {"tickets": [], "intake": [], "changes": []}
    for i, r in enumerate(reqs):
        received = pd.Timestamp(f"2026-11-{r.day:02d}T09:00:00-06:00") + pd.Timedelta(
            minutes=r.minute
        )
        ask = received + pd.Timedelta(hours=96 if r.kind == "standard" else 4)
        stamp = {
            "received": received.isoformat(),
            "ask": ask.isoformat(),
            "signed": (received + pd.Timedelta(hours=1)).isoformat(),
            "done": (ask + pd.Timedelta(minutes=30)).isoformat(),
        }
        out["tickets"].append(
            {
                "ticket_id": ticket_id(i),
                "subject": "IP change",
                "department": "Implementation",
                "status": "Closed",
                "creator": "staff",
                "account": ACCOUNTS[r.account],
                "created_at": stamp["received"],
            }
        )
        out["intake"].append(
            {
                "ticket_id": ticket_id(i),
                "received_at": stamp["received"],
                "channel": "phone",
                "account": ACCOUNTS[r.account],
                "reseller": RESELLERS[r.reseller],
                "person_of_record": "Jane Roe",
                "requested_change_at": stamp["ask"],
            }
        )
        out["changes"].append(
            {
                "ticket_id": ticket_id(i),
                "scheduled_start": stamp["ask"],
                "completed_at": stamp["done"],
                "fee_accepted_by": "" if r.kind == "unsigned" else "Jane Roe",
                "fee_accepted_at": "" if r.kind == "unsigned" else stamp["signed"],
                "fee_waived": "yes" if r.kind == "waived" else "no",
                "fee_waiver_reason": "goodwill" if r.kind == "waived" else "",
                "fee_waived_by": "Sam Lead" if r.kind == "waived" else "",
            }
        )
    return out


def load_month(folder: Path, url: str, reqs: list[Req], policy: PolicySet) -> sa.Engine:
    """Write the canonical CSVs and load them through the real ingest path into ``url``."""
    engine = store.connect(url)
    for table, rows in canonical_rows(reqs).items():
        path = folder / f"{table}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=[c.name for c in TABLES[table]])
            writer.writeheader()
            writer.writerows(rows)
        result, _ = load_file(engine, path, policy)
        assert result.rejected == 0 and result.inserted == len(reqs), table
    return engine


# --- reading money back as integer cents ---------------------------------------------------------

_MONEY = re.compile(r"(-?)\$(\d{1,3}(?:,\d{3})*)\.(\d{2})")
_DECIMAL = re.compile(r"(-?)(\d+)\.(\d{2})")


def cents_of(text: str, pattern: re.Pattern[str] = _MONEY) -> int:
    """``$1,234.56`` (report) or ``1234.56`` (CSV) as integer cents, without a float."""
    m = pattern.fullmatch(text)
    assert m, text
    value = int(m[2].replace(",", "")) * 100 + int(m[3])
    return -value if m[1] else value


def table_rows(markup: str) -> list[list[str]]:
    """The body cells of an escaped report table, row by row."""
    body = markup.split("<tbody>", 1)[1] if "<tbody>" in markup else ""
    return [
        re.findall(r"<td>(.*?)</td>", row, re.S)
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def csv_amounts(path: Path) -> list[tuple[str, int]]:
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8")))
    return [(r["Ticket"], cents_of(r["Amount"], _DECIMAL)) for r in rows]


# --- the reference --------------------------------------------------------------------------------


def reference_fees(reqs: list[Req], fee: int) -> dict[str, int]:
    """Billable ticket → fee, the slow way: the drawn kind says whether it bills."""
    fees = {}
    for i, r in enumerate(reqs):
        if r.kind == "billable":
            fees[ticket_id(i)] = fee
    return fees


def total(values) -> int:
    out = 0
    for v in values:
        assert type(v) is int
        out += v
    return out


# --- properties ----------------------------------------------------------------------------------


def check_report_totals(url: str, reqs: list[Req], fee: int, policy: PolicySet) -> None:
    """The fee billing report's amounts are exact and add up to the reference."""
    want = reference_fees(reqs, fee)
    data = reports.load(MONTH, db_url=url, policy=policy)
    statuses = dict(zip(data.requests["ticket_id"], data.requests["fee_status"], strict=True))
    assert statuses == {ticket_id(i): EXPECTED_STATUS[r.kind] for i, r in enumerate(reqs)}
    assert str(data.requests["fee_cents"].dtype) == "Int64"
    billable = table_rows(reports.fee_table(data, "billable").markup)
    assert [cents_of(row[-1]) for row in billable] == [fee] * len(want)
    for by in ("account", "reseller"):
        rows = table_rows(reports.fee_totals(data, by).markup)
        if not want:
            assert rows == []
            continue
        *groups, last = rows
        assert last[0] == "Total" and cents_of(last[2]) == total(want.values())
        assert total(cents_of(g[2]) for g in groups) == total(want.values())
        assert total(int(g[1]) for g in groups) == len(want)
    tile = reports.fee_summary(data).markup
    assert money(total(want.values())) in tile


def check_exports(
    folder: Path, url: str, reqs: list[Req], fee: int, policy: PolicySet, fixes
) -> None:
    """Export, correct, export again: billing receives exactly the corrected fees, once."""
    engine = store.connect(url)
    period = parse_period(policy.latest.timezone, month_label=MONTH)
    out = folder / "out"
    want = reference_fees(reqs, fee)
    try:
        first = billing.export_fees(engine, policy, period, out)
        ledger = store.fee_ledger(engine)
        assert str(ledger["amount_cents"].dtype) == "int64"
        assert first.total_cents == total(want.values()) and first.rows == len(want)
        if not want:
            assert first.paths == () and ledger.empty
            return
        batch_csv = out / f"fees-{MONTH}.csv"
        assert sorted(csv_amounts(batch_csv)) == sorted(want.items())
        sheet = openpyxl.load_workbook(out / f"fees-{MONTH}.xlsx")["fees"]
        header = [c.value for c in sheet[1]]
        amounts = [
            row[header.index("Amount")] for row in sheet.iter_rows(min_row=2, values_only=True)
        ]
        assert total(round(a * 100) for a in amounts) == total(want.values())
        # the same period again bills nothing; the batch re-writes byte for byte
        assert billing.export_fees(engine, policy, period, out).paths == ()
        billing.export_fees(engine, policy, period, folder / "again", batch_id=first.batch_id)
        assert (folder / "again" / batch_csv.name).read_bytes() == batch_csv.read_bytes()
        exported = store.fee_ledger(engine)
        # an exported fee cannot be changed or deleted, not even with plain SQL
        for statement in (
            "UPDATE fee_ledger SET amount_cents = amount_cents + 1",
            "DELETE FROM fee_ledger",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="never"), engine.begin() as conn:
                conn.exec_driver_sql(statement)
        # corrections: a reversal and a new row each; billing gets both with the next export
        current = {t: int(i) for t, i in zip(exported["ticket_id"], exported["id"], strict=True)}
        final = dict(want)
        tickets = sorted(want)
        for pick, amount in fixes:
            t = tickets[pick % len(tickets)]
            _, new = store.correct_fee(
                engine, current[t], amount_cents=amount, fee_status="billable", policy_version="fix"
            )
            current[t], final[t] = new, amount
        second = billing.export_fees(engine, policy, period, out)
        after = store.fee_ledger(engine)
        pd.testing.assert_frame_equal(after.iloc[: len(exported)], exported)  # untouched
        assert total(after["amount_cents"].tolist()) == total(final.values())
        billed: dict[str, int] = {}
        files = sorted(out.glob("fees-*.csv"), key=lambda p: int(p.stem.partition("-b")[2] or 1))
        for path in files:
            for t, cents in csv_amounts(path):
                billed[t] = billed.get(t, 0) + cents
        assert billed == final  # over every batch, each ticket nets to its corrected fee
        with engine.connect() as conn:
            batches = conn.execute(
                sa.text("SELECT rows, total_cents FROM export_batches ORDER BY id")
            )
            recorded = [(int(n), cents) for n, cents in batches]
        amounts = [[c for _, c in csv_amounts(path)] for path in files]  # batch 1, then batch 2
        assert recorded == [(len(a), total(a)) for a in amounts]
        if fixes:
            assert second.batch_id is not None
            assert second.total_cents == total(final.values()) - total(want.values())
        else:
            assert second.paths == ()
        assert billing.export_fees(engine, policy, period, out).paths == ()
    finally:
        engine.dispose()


MIXED = [
    Req(kind, day, 0, day % 4, day % 3) for kind, day in zip(KINDS * 2, range(2, 10), strict=True)
]
FIXES = [(0, 10_000), (0, 12_345), (1, 0)]
"""Every kind twice; one fee corrected twice, one corrected to nothing, the others left alone."""

fixes_st = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 200_000_000)), max_size=4)


def run_example(reqs: list[Req], fee: int, fixes, url: str = "") -> None:
    """Load, report, export, correct, export again; on ``url`` or a fresh SQLite file."""
    policy = policy_with_fee(fee)
    with tempfile.TemporaryDirectory(prefix="money-") as tmp:
        folder = Path(tmp)
        url = url or f"sqlite:///{(folder / 'money.db').as_posix()}"
        load_month(folder, url, reqs, policy).dispose()
        check_report_totals(url, reqs, fee, policy)
        check_exports(folder, url, reqs, fee, policy, fixes)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reqs=requests_st, fee=fee_st, fixes=fixes_st)
@example(reqs=MIXED, fee=25_000, fixes=FIXES)
def test_totals_add_up_and_a_fee_is_billed_once_and_corrected_by_reversal(reqs, fee, fixes):
    run_example(reqs, fee, fixes)


@pytest.mark.fuzz
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reqs=requests_st, fee=fee_st, fixes=fixes_st)
def test_totals_add_up_and_a_fee_is_billed_once_and_corrected_by_reversal_long(reqs, fee, fixes):
    run_example(reqs, fee, fixes)


@settings(max_examples=300, deadline=None)
@given(cents=st.integers(-(10**18), 10**18))
def test_report_money_text_is_exact_for_any_amount(cents):
    assert cents_of(money(cents)) == cents


@pytest.mark.xdist_group("postgres")
def test_totals_exports_and_corrections_on_postgresql(pg_schema_url):
    run_example(MIXED, 25_000, FIXES, url=pg_schema_url)


def test_a_corrected_exported_fee_reaches_billing_as_a_reversal_and_a_new_line(tmp_path):
    """The sample's November fees: one is corrected from $250.00 to $100.00 after export."""
    db = f"sqlite:///{(tmp_path / 'fees.db').as_posix()}"

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--db", db], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    run("ingest", *(str(SAMPLE / name) for name in CANONICAL), "--rejects-dir", str(tmp_path))
    out = tmp_path / "out"
    assert "2 fee(s), $500.00, 2 new (batch 1)" in run(
        "fees", "export", "--month", MONTH, "--out", str(out)
    )
    engine = store.connect(db)
    ledger = store.fee_ledger(engine)
    first = int(ledger.loc[ledger["ticket_id"] == "KVB-114-57230", "id"].iloc[0])
    store.correct_fee(
        engine, first, amount_cents=10_000, fee_status="billable", policy_version="fix"
    )
    engine.dispose()
    assert "2 fee(s), -$150.00, 2 new (batch 2)" in run(
        "fees", "export", "--month", MONTH, "--out", str(out)
    )
    batch2 = out / MONTH / f"fees-{MONTH}-b2.csv"
    lines = [
        (r["Ticket"], r["Fee status"], r["Amount"])
        for r in csv.DictReader(io.StringIO(batch2.read_text(encoding="utf-8")))
    ]
    assert lines == [
        ("KVB-114-57230", "reversal", "-250.00"),
        ("KVB-114-57230", "billable", "100.00"),
    ]
    assert "no fees of 2026-11 left" in run("fees", "export", "--month", MONTH, "--out", str(out))
    # --all lists the fee each ticket carries now: $100 + $250
    assert "2 fee(s), $350.00, 0 new" in run(
        "fees", "export", "--month", MONTH, "--all", "--out", str(out)
    )
    again = tmp_path / "again"
    run("fees", "export", "--month", MONTH, "--batch", "2", "--out", str(again))
    assert (again / MONTH / batch2.name).read_bytes() == batch2.read_bytes()
