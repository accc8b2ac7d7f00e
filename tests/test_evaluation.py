"""Property tests of the vectorised rules against a slow per-request reference written here."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipchange_core import evaluate
from ipchange_core.errors import InvalidInputError
from ipchange_core.evaluation import typed_frames
from tests.domain import at, frames, request

CT = ZoneInfo("America/Chicago")
UTC = dt.UTC
AS_OF = at("2027-03-01 12:00")
THRESHOLD = dt.timedelta(hours=48)


def utc(local: str | None) -> dt.datetime | None:
    """Central wall time → aware UTC datetime (fold=0), computed with zoneinfo only."""
    if local is None:
        return None
    naive = dt.datetime.fromisoformat(local)
    return naive.replace(tzinfo=CT).astimezone(UTC)


def ref_next_open(t: dt.datetime) -> dt.datetime:
    """First instant at or after t inside Mon–Fri 09:00–17:00 Central (no holidays)."""
    day = t.astimezone(CT).date()
    while True:
        if day.weekday() < 5:
            start = dt.datetime.combine(day, dt.time(9), CT).astimezone(UTC)
            end = dt.datetime.combine(day, dt.time(17), CT).astimezone(UTC)
            if t < end:
                return max(t, start)
        day += dt.timedelta(days=1)


def norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def reference(spec: dict) -> dict:
    """SPEC 2.1 read literally, one request at a time, in plain Python on UTC datetimes."""
    received = min(utc(spec["received"]), utc(spec["created"]))
    requested = spec["requested"]
    if requested == "ASAP":
        wanted = received
    elif requested is None:
        wanted = None
    else:
        wanted = max(utc(requested), received)
    notice = None if wanted is None else (wanted - received) / dt.timedelta(hours=1)
    ch = spec["change"]
    completed = utc(ch.get("completed_at"))
    cancelled = utc(ch.get("cancelled_at"))
    start = utc(ch.get("scheduled_start")) or completed
    deadline = received + THRESHOLD
    signed = norm(ch.get("fee_accepted_by", "")) != "" and norm(
        ch.get("fee_accepted_by", "")
    ) == norm(spec["por"])
    waiver = (
        bool(ch.get("fee_waived"))
        and ch.get("fee_waiver_reason", "").strip() != ""
        and ch.get("fee_waived_by", "").strip() != ""
    )
    if cancelled is not None and (completed is None or cancelled < completed):
        status = "not_applicable"
    elif notice is None:
        status = "needs_review"
    elif notice >= 48 or (start is not None and start >= deadline):
        status = "not_applicable"
    elif waiver:
        status = "waived"
    elif spec["por"].strip() == "":
        status = "needs_review"
    elif signed:
        status = "billable" if completed is not None else "awaiting_change"
    else:
        status = "pending_sign_off"
    if status == "billable":
        due_from = wanted
    elif wanted is None:
        due_from = deadline
    else:
        due_from = max(wanted, deadline)
    return {"status": status, "notice": notice, "due_at": ref_next_open(due_from)}


def unambiguous(naive: dt.datetime) -> str:
    """The wall time, moved 2 h later if it does not exist exactly once in Central time."""
    aware = naive.replace(tzinfo=CT)
    missing = aware.astimezone(UTC).astimezone(CT).replace(tzinfo=None) != naive
    repeated = aware.utcoffset() != naive.replace(tzinfo=CT, fold=1).utcoffset()
    if missing or repeated:
        naive += dt.timedelta(hours=2)
    return naive.isoformat(sep=" ", timespec="minutes")


def local_times(draw, base: dt.datetime, max_hours: int) -> str:
    return unambiguous(base + dt.timedelta(minutes=draw(st.integers(0, max_hours * 60))))


@st.composite
def request_specs(draw, n):
    specs = []
    for k in range(n):
        # around both 2026 DST changes and ordinary weeks
        base = draw(
            st.sampled_from(
                [dt.datetime(2026, 3, 4), dt.datetime(2026, 10, 28), dt.datetime(2026, 11, 16)]
            )
        )
        received = local_times(draw, base, 24 * 6)
        created = local_times(draw, base, 24 * 6) if draw(st.booleans()) else received
        recv_dt = dt.datetime.fromisoformat(received)
        kind = draw(st.sampled_from(["ASAP", "blank", "time", "time"]))
        requested = {"ASAP": "ASAP", "blank": None}.get(kind) or local_times(
            draw, recv_dt - dt.timedelta(hours=6), 24 * 5
        )
        change = {}
        if draw(st.booleans()):
            start = local_times(draw, recv_dt, 24 * 4)
            change["scheduled_start"] = start
            change["scheduled_end"] = unambiguous(
                dt.datetime.fromisoformat(start) + dt.timedelta(hours=1)
            )
            if draw(st.booleans()):
                change["completed_at"] = change["scheduled_end"]
        if draw(st.integers(0, 5)) == 0:
            change["cancelled_at"] = local_times(draw, recv_dt, 24 * 4)
        change["fee_accepted_by"] = draw(
            st.sampled_from(["", "Jane Roe", " jane  ROE", "Bob Smith"])
        )
        if draw(st.integers(0, 4)) == 0:
            change["fee_waived"] = True
            change["fee_waiver_reason"] = draw(st.sampled_from(["", "outage"]))
            change["fee_waived_by"] = draw(st.sampled_from(["", "Mo"]))
        por = draw(st.sampled_from(["Jane Roe", "Jane Roe", ""]))
        specs.append(
            {
                "id": f"KXP-{k:03d}-00000",
                "received": received,
                "created": created,
                "requested": requested,
                "change": change,
                "por": por,
            }
        )
    return specs


def build(specs):
    return frames(
        *(
            request(
                s["id"],
                received=s["received"],
                created=s["created"],
                requested=s["requested"],
                intake={"person_of_record": s["por"]},
                change=s["change"],
            )
            for s in specs
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_specs(20))
def test_fee_status_notice_and_due_match_reference(specs):
    out = evaluate(build(specs), as_of=AS_OF).set_index("ticket_id")
    assert len(out) == len(specs)
    for s in specs:
        want = reference(s)
        row = out.loc[s["id"]]
        assert row["fee_status"] == want["status"], s
        if want["notice"] is None:
            assert pd.isna(row["notice_hours"])
        else:
            assert abs(row["notice_hours"] - want["notice"]) < 1e-9, s
        assert row["due_at"].to_pydatetime() == want["due_at"], s
        if want["status"] == "billable":
            assert row["fee_cents"] == 25000
        elif want["status"] in ("not_applicable", "waived"):
            assert row["fee_cents"] == 0
        else:
            assert pd.isna(row["fee_cents"])


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request_specs(6))
def test_batch_equals_one_by_one(specs):
    """Vectorised evaluation of many requests equals evaluating each alone (no misalignment)."""
    together = evaluate(build(specs), as_of=AS_OF).set_index("ticket_id")
    for s in specs:
        alone = evaluate(build([s]), as_of=AS_OF).set_index("ticket_id").loc[s["id"]]
        pd.testing.assert_series_equal(together.loc[s["id"]], alone, check_names=False)


def test_nothing_is_dropped_and_other_tickets_are_not_requests():
    specs = frames(
        request("KXP-1"),
        request(
            "KXP-2",
            has_intake=False,
            ticket={"subject": "Change of IP address please", "creator": "user"},
        ),
        request(
            "KXP-3",
            has_intake=False,
            ticket={"subject": "Password reset", "tags": "ip-change,cloud"},
        ),
        request("KXP-4", has_ticket=False),
        request("KXP-5", has_intake=False, ticket={"subject": "Printer broken"}),
        request(
            "KXP-6", has_intake=False, ticket={"subject": "Question", "ticket_type": "IP Change"}
        ),
    )
    out = evaluate(specs, as_of=AS_OF)
    assert sorted(out["ticket_id"]) == ["KXP-1", "KXP-2", "KXP-3", "KXP-4", "KXP-6"]
    flags = out.set_index("ticket_id")["flags"]
    assert "intake_without_ticket" in flags["KXP-4"]
    assert "no_intake_record" in flags["KXP-2"]


def test_empty_input_gives_empty_frame_with_columns():
    out = evaluate(frames(), as_of=AS_OF)
    assert out.empty
    for col in ("fee_status", "notice_hours", "due_at", "flags", "policy_version", "routing_state"):
        assert col in out.columns


# --------------------------------------------------------------------------------------------
# Frames an analyst read themselves: typed by the contract, or refused naming table and column


def _analyst_frames():
    return frames(
        request("KXP-1", change={"completed_at": at("2026-11-20 10:20"), "engineer": "Sam"}),
        request("KXP-2", received="2026-11-18 16:00", requested="ASAP"),
    )


def test_frames_in_other_zones_units_and_object_text_evaluate_alike():
    typed = _analyst_frames()
    expected = evaluate(typed, as_of=AS_OF)
    loose = {table: frame.copy() for table, frame in typed.items()}
    for table, frame in loose.items():
        for col in frame.columns:
            if isinstance(frame[col].dtype, pd.DatetimeTZDtype):  # Central, nanoseconds
                frame[col] = frame[col].dt.tz_convert(CT).astype("datetime64[ns, America/Chicago]")
            elif (
                frame[col].dtype == "str" or frame[col].dtype == "boolean"
            ):  # as pd.read_csv(dtype=object) gives text
                frame[col] = frame[col].astype(object)
        assert (frame.dtypes != typed[table].dtypes).any(), table
    pd.testing.assert_frame_equal(evaluate(loose, as_of=AS_OF), expected)


def test_evaluate_names_the_table_and_column_it_cannot_use():
    typed = _analyst_frames()
    missing = {k: v for k, v in typed.items() if k != "ticket_events"}
    with pytest.raises(InvalidInputError, match=r"no table 'ticket_events'"):
        evaluate(missing, as_of=AS_OF)
    text = {
        **typed,
        "tickets": typed["tickets"].assign(created_at=lambda f: f["created_at"].astype(str)),
    }
    with pytest.raises(InvalidInputError, match=r"table 'tickets', column 'created_at' holds str"):
        evaluate(text, as_of=AS_OF)
    naive = {
        **typed,
        "intake": typed["intake"].assign(
            received_at=lambda f: f["received_at"].dt.tz_localize(None)
        ),
    }
    with pytest.raises(
        InvalidInputError, match=r"table 'intake', column 'received_at' holds local times"
    ):
        evaluate(naive, as_of=AS_OF)
    no_column = {**typed, "changes": typed["changes"].drop(columns="engineer")}
    with pytest.raises(InvalidInputError, match=r"table 'changes' has no column 'engineer'"):
        evaluate(no_column, as_of=AS_OF)
    numbers = {**typed, "tickets": typed["tickets"].assign(account=7)}
    with pytest.raises(InvalidInputError, match=r"table 'tickets', column 'account' holds int64"):
        evaluate(numbers, as_of=AS_OF)


def test_typed_frames_are_taken_as_they_are():
    typed = _analyst_frames()
    checked = typed_frames(typed)
    for table, frame in checked.items():
        assert frame is typed[table]  # nothing copied when every column is typed already
