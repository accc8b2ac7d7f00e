"""One place turns errors into messages: every command, every error, one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ipchange_core import policy as policy_module
from ipchange_core.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    """Every command under ``group`` as ``(path, command)``, groups included."""
    yield path, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(
        main, list(args), env=env, catch_exceptions=False, prog_name="ipchange"
    )


def one_error_line(result) -> str:
    """The one line the command printed to stderr, after checking there is exactly one."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def test_every_command_and_group_turns_errors_into_one_line():
    from ipchange_core.cli import _Command, _Group

    found = list(commands())
    assert len(found) > 8
    for path, command in found:
        kind = _Group if isinstance(command, click.Group) else _Command
        assert isinstance(command, kind), path


# A minimal valid call of each command taking --policy (a new such command must be added here).
POLICY_CALLS = {
    ("policy", "show"): [],
    ("ingest",): [str(SAMPLE / "intake.csv")],
    ("export", "requests"): ["-o", "{tmp}/r.csv", "--month", "2026-11"],
    ("demo",): ["--out", "{tmp}/demo"],
    **{
        ("report", which): ["--month", "2026-11", "--out", "{tmp}/reports"]
        for which in ("intake", "sla", "fees", "explorer", "all")
    },
    ("report", "check"): ["--out", "{tmp}/reports"],
    ("report", "dashboard"): ["--out", "{tmp}/reports"],
    ("fees", "export"): ["--month", "2026-11", "--out", "{tmp}/fees"],
    ("fees", "waive"): ["KXP-512-48213", "--reason", "outage", "--by", "Pat"],
    ("fees", "credit"): ["KXP-512-48213", "--reason", "outage", "--by", "Pat"],
    ("fees", "history"): ["KXP-512-48213"],
    ("fees", "evidence"): ["KXP-512-48213", "--out", "{tmp}/evidence"],
    ("fees", "statement"): ["--account", "ACCT-1", "--month", "2026-11", "--out", "{tmp}/s"],
    ("mail", "check"): ["--to", "a@example.com", "--out", "{tmp}/reports"],
    ("mail", "weekly"): ["--to", "a@example.com", "--week", "2026-W47", "--out", "{tmp}/r"],
    ("mail", "fees"): ["--to", "a@example.com", "--month", "2026-11", "--out", "{tmp}/r"],
    ("pull", "kayako"): ["--url", "http://127.0.0.1:9/api/index.php", "--rejects-dir", "{tmp}/l"],
}

IMPOSSIBLE = {
    "effective_from: 2026-13-01": (
        "versions:\n  - version: x\n    effective_from: 2026-13-01\n",
        "versions[0].effective_from: no such date: '2026-13-01'",
    ),
    "holidays: {dates: [2026-02-30]}": (
        "versions:\n  - version: x\n    effective_from: 2027-01-01\n"
        "    holidays: {dates: [2026-02-30]}\n",
        "versions[0].holidays.dates[0]: no such date: '2026-02-30'",
    ),
}


def test_policy_calls_cover_every_command_with_a_policy_option():
    with_policy = {
        path for path, command in commands() if any(p.name == "policy_file" for p in command.params)
    }
    assert with_policy == set(POLICY_CALLS)


@pytest.mark.parametrize("how", ["option", "env"])
@pytest.mark.parametrize("case", list(IMPOSSIBLE))
@pytest.mark.parametrize("path", list(POLICY_CALLS), ids=" ".join)
def test_an_impossible_date_in_the_policy_is_one_line_naming_file_and_key(
    tmp_path, path, case, how
):
    text, where = IMPOSSIBLE[case]
    policy_file = tmp_path / "my policy.yaml"
    policy_file.write_text(text, encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'none.db'}"
    args = [*path, *(a.replace("{tmp}", str(tmp_path)) for a in POLICY_CALLS[path])]
    if path != ("policy", "show") and path != ("demo",):
        args += ["--db", db]
    env = {"IPCHANGE_POLICY": str(policy_file)} if how == "env" else None
    if how == "option":
        args += ["--policy", str(policy_file)]
    result = run(*args, env=env)
    assert result.exit_code == 2, result.output
    assert one_error_line(result) == f"Error: {policy_file}: {where}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my policy.yaml"]  # nothing written


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_policy_check_names_file_and_key(tmp_path, case):
    text, where = IMPOSSIBLE[case]
    policy_file = tmp_path / "p.yaml"
    policy_file.write_text(text, encoding="utf-8")
    result = run("policy", "check", str(policy_file))
    assert result.exit_code == 2
    assert one_error_line(result) == f"Error: {policy_file}: {where}"


def test_an_unexpected_error_is_one_line_with_command_class_and_hint(monkeypatch):
    def broken(path=None):
        raise KeyError("versions")

    monkeypatch.setattr(policy_module, "load_policy", broken)
    result = run("policy", "show")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "Error: ipchange policy show failed unexpectedly: KeyError: 'versions' "
        "(rerun with --debug to see the traceback)"
    )
    with pytest.raises(KeyError, match="versions"):  # --debug lets it through
        run("--debug", "policy", "show")


def test_an_unexpected_error_in_argument_processing_is_one_line_too(monkeypatch):
    from ipchange_core import digest

    def broken(paths):
        raise RuntimeError("hashing\nthread died")

    monkeypatch.setattr(digest.FileDigest, "start_all", broken)
    result = run("ingest", str(SAMPLE / "intake.csv"))
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "Error: ipchange ingest failed unexpectedly: RuntimeError: hashing "
        "(rerun with --debug to see the traceback)"
    )


SCRIPT = """
import sys
from ipchange_core import policy
def broken(path=None):
    raise ZeroDivisionError("deep inside")
policy.load_policy = broken
from ipchange_core.cli import run
sys.argv[0] = "ipchange"
run()
"""


def test_a_real_process_prints_one_line_and_debug_the_traceback():
    plain = subprocess.run(
        [sys.executable, "-c", SCRIPT, "policy", "show"], capture_output=True, text=True
    )
    assert plain.returncode == 2
    assert plain.stderr == (
        "Error: ipchange policy show failed unexpectedly: ZeroDivisionError: deep inside "
        "(rerun with --debug to see the traceback)\n"
    )
    debug = subprocess.run(
        [sys.executable, "-c", SCRIPT, "--debug", "policy", "show"], capture_output=True, text=True
    )
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().endswith("ZeroDivisionError: deep inside")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "Error: No such option '--bogus'. (see 'ipchange --help')"),
        (["bogus"], "Error: No such command 'bogus'. (see 'ipchange --help')"),
        (
            ["fees", "export", "--format", "pdf"],
            "Error: Invalid value for '--format': 'pdf' is not one of 'csv', 'xlsx', 'both'. "
            "(see 'ipchange fees export --help')",
        ),
        (
            ["export", "requests"],
            "Error: Missing option '-o' / '--output'. (see 'ipchange export requests --help')",
        ),
        (
            ["demo-data", "--requests", "-5", "--out", "x"],
            "Error: Invalid value for '--requests': -5 is not in the range x>=0. "
            "(see 'ipchange demo-data --help')",
        ),
        (
            ["demo-data", "--end", "2026-02-30", "--out", "x"],
            "Error: Invalid value for '--end': '2026-02-30' does not match the format "
            "'%Y-%m-%d'. (see 'ipchange demo-data --help')",
        ),
        (  # found by the fuzzer: an OverflowError deep in the generator
            ["demo-data", "--end", "0001-01-01", "--out", "x"],
            "Error: --end 0001-01-01: the demo data must end between 2000-01-01 and 2999-12-31",
        ),
    ],
)
def test_usage_errors_are_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert one_error_line(result) == message


def test_a_database_message_of_several_lines_is_one_line(tmp_path):
    """Found by the fuzzer: libpq's refusal spans two lines."""
    result = run(
        "export", "requests", "--month", "2026-11", "-o", str(tmp_path / "r.csv"),
        "--db", "postgresql://ipchange@127.0.0.1:1/none",
    )  # fmt: skip
    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith(
        "Error: cannot open the database postgresql+psycopg://ipchange@127.0.0.1:1/none"
    )
    assert "Connection refused" in line
    assert not (tmp_path / "r.csv").exists()


def test_a_database_url_with_a_broken_port_is_a_clear_message(tmp_path):
    """Found by the fuzzer: SQLAlchemy's URL parser raised ValueError for "[::1"."""
    result = run("policy", "show", env={"IPCHANGE_DB_URL": "x"})
    assert result.exit_code == 0
    result = run("export", "requests", "--month", "2026-11", "-o", str(tmp_path / "r.csv"),
                 "--db", "postgresql://[::1")  # fmt: skip
    assert one_error_line(result).startswith("Error: not a valid database URL: 'postgresql://[::1'")
