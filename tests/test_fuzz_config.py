"""Fuzzed configuration, arguments, environment and output paths (issue #25): one line, 0/1/2.

The data files are fuzzed in tests/test_fuzz.py; this module attacks everything else a user
hands the command:

* **policy YAML** (``policy check``, ``policy show --policy``, ``export requests --policy``) and
  **column mapping YAML** (``ingest --mapping``): random structures, near-valid files with wrong
  types, impossible dates, huge and non-finite numbers, deep nesting, aliases that expand,
  non-UTF-8 bytes, an empty file, a folder given as the file;
* **arguments**: periods, batch ids, amounts and dates of ``demo-data``, output names with odd
  characters;
* **environment**: ``IPCHANGE_DB_URL`` and ``IPCHANGE_POLICY`` (the Kayako API secrets of the
  coming REST pull are read by nothing yet, so there is nothing to fuzz);
* **output paths**: a missing parent that cannot be created, a file in the way, a read-only and
  a full file system (tiny tmpfs mounts, as root).

Every run must end with exit 0, 1 or 2, never a traceback nor an "unexpected" error; exit 2 prints
exactly one line (``Error: …``, or ``refused: …`` for an ingested file); no temporary file is left
and a refused output is not written. ``make test`` runs a few fixed examples of each; ``make fuzz``
reruns them with fresh inputs for their share of FUZZ_SECONDS and prints the inputs tried with
those of tests/test_fuzz.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from ipchange_core.cli import main
from ipchange_core.ingest.kayako_report import REPORT_FIELDS
from ipchange_core.policy import _SHAPE
from tests.output_places import fill, tmpfs
from tests.test_fuzz import (
    SUPPRESS,
    TALLY,
    assert_ended_cleanly,
    fresh_sqlite,
    fuzz,
    render_csv,
    report_tally,  # noqa: F401 - the module's fixture: prints TALLY at the end
    seed,
)

pytestmark = pytest.mark.fuzz

SHARE = 0.05
"""Each test's share of FUZZ_SECONDS (tests/test_fuzz.py spends the whole of it once more)."""

PERIOD = ["--start", "2026-03-01", "--end", "2026-03-12"]  # the seed data's days

# --- judging one run ----------------------------------------------------------------------------


@dataclass
class Run:
    """One command line to judge: its arguments, environment and the outputs it may write."""

    surface: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)  # files a refused run must not leave
    folders: list[Path] = field(default_factory=list)  # where no temporary may be left


def invoke(run: Run) -> Result:
    """Run in the first folder: a relative path (a database URL, say) lands there."""
    with contextlib.chdir(run.folders[0]):
        return CliRunner().invoke(main, run.args, env=run.env, prog_name="ipchange")


def judge(run: Run, result: Result) -> None:
    """Exit 0/1/2, no traceback or unexpected error, one line on exit 2, nothing left behind."""
    where = f"{run.surface}: ipchange {' '.join(map(repr, run.args))} env={run.env}"
    assert_ended_cleanly(result, where)
    assert "failed unexpectedly" not in result.output, (where, result.output)
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert len(lines) == 1, (where, result.stderr)
        assert lines[0].startswith(("Error: ", "refused: ")), (where, lines[0])
        for output in run.outputs:  # os.path: False for a name too long, not an OSError
            assert not os.path.exists(output) or os.path.isdir(output), (where, output)
    for folder in run.folders:
        if folder.is_dir():
            leftovers = [p for p in folder.rglob(".*.pid*")]
            assert not leftovers, (where, leftovers)
    TALLY[(run.surface, result.exit_code)] += 1


def judged(run: Run) -> Result:
    result = invoke(run)
    judge(run, result)
    return result


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="ipchange-fuzz-config-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# --- YAML: tokens, near-valid files, hostile whole files ----------------------------------------

YAML_TOKENS = [
    "2026-13-01", "2026-02-30", "2026-11-01", "0001-01-01", "9999-12-31", "1677-09-21",
    "2262-04-12", "2026-11-01 02:30:00", "2026-03-08T02:30:00-06:00", "2026-1-1",
    ".inf", "-.inf", ".nan", "1e400", "1.0e+400", "-1", "0", "0.0", "48", "3.5", "0x10", "0o17",
    "99999999999999999999", "9" * 5000, "true", "no", "null", "~", "''", '" "', "[]", "{}",
    "[mon, funday]", "[mon, mon]", "{a: 1}", "'09:00'", "'17:00'", "'24:00'", "'9:00'", "9:00",
    "'(unclosed'", "'.*'", "'(a+)+$'", "US", "XX", "America/Chicago", "Mars/Olympus",
    "'../../etc/passwd'", "calendar", "business", "person_of_record", "*undefined",
    "&a [*a]", "!!binary aGVsbG8=", "!!python/object/apply:os.system ['true']", "!!set {a}",
    "!!timestamp 2026-13-01", "!!int x", "!!float x", "[" * 300 + "]" * 300,
    "{a: " * 200 + "1" + "}" * 200, "'%d %B %Y %I:%M %p'", "'%Q'", "'%'", "'%Y-%m-%d'",
]  # fmt: skip


def tokens() -> st.SearchStrategy[str]:
    """A YAML value as source text: a hostile token, or random text as a quoted scalar."""
    return st.one_of(
        st.sampled_from(YAML_TOKENS),
        st.text(max_size=40).map(json.dumps),  # a JSON string is a YAML double-quoted scalar
        st.integers(-(2**70), 2**70).map(str),
    )


def laughs(levels: int) -> str:
    lines = ["l0: &l0 [ha, ha, ha, ha, ha, ha, ha, ha, ha, ha]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def random_documents() -> st.SearchStrategy[str]:
    """A random structure of YAML values, dumped."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), st.dates()
    )
    tree = st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=30,
    )
    return st.one_of(
        tree, st.fixed_dictionaries({"versions": tree}), st.fixed_dictionaries({"columns": tree})
    ).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))


@dataclass(frozen=True)
class ConfigFile:
    """A configuration file to hand over: text or bytes, or a folder in its place."""

    kind: str  # what was done, for the tally and messages
    data: bytes = b""
    folder: bool = False

    def write(self, path: Path) -> Path:
        if self.folder:
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.write_bytes(self.data)
        return path


def whole_files(valid: str) -> st.SearchStrategy[ConfigFile]:
    """Hostile whole files around a valid text: empty, non-UTF-8, truncated, a bomb, a folder."""
    return st.one_of(
        st.just(ConfigFile("empty")),
        st.just(ConfigFile("whitespace", b"  \n\t\n")),
        st.just(ConfigFile("folder", folder=True)),
        st.just(ConfigFile("bom", b"\xef\xbb\xbf" + valid.encode())),
        st.sampled_from(["latin-1", "utf-16", "cp1252"]).map(
            lambda enc: ConfigFile(f"encoding {enc}", (valid + "# café\n").encode(enc))
        ),
        st.binary(max_size=200).map(lambda b: ConfigFile("random bytes", b)),
        st.integers(1, len(valid)).map(lambda n: ConfigFile("truncated", valid.encode()[:n])),
        st.integers(3, 9).map(lambda n: ConfigFile("alias bomb", (laughs(n) + valid).encode())),
        st.just(ConfigFile("deep nesting", ("x: " + "[" * 10_000 + "]" * 10_000).encode())),
    )


@st.composite
def policy_files(draw: st.DrawFn) -> ConfigFile:
    """A user policy: near-valid versions with hostile values, a random structure, or worse."""
    what = draw(st.sampled_from(["near-valid", "near-valid", "near-valid", "random", "whole"]))
    valid = "versions:\n  - version: mine\n    effective_from: 2026-03-01\n"
    if what == "random":
        return ConfigFile("random structure", draw(random_documents()).encode())
    if what == "whole":
        return draw(whole_files(valid))
    lines = ["versions:"]
    for i in range(draw(st.integers(1, 3))):
        lines.append(f"  - version: {draw(st.sampled_from([f'v{i}', 'v0']) | tokens())}")
        lines.append(f"    effective_from: {draw(st.sampled_from(['2026-03-01']) | tokens())}")
        for _ in range(draw(st.integers(0, 4))):
            section = draw(st.sampled_from([*_SHAPE, "bogus"]))
            keys = _SHAPE.get(section)
            if keys is None:
                lines.append(f"    {section}: {draw(tokens())}")
            else:
                key = draw(st.sampled_from([*keys, "bogus"]))
                lines.append(f"    {section}: {{{key}: {draw(tokens())}}}")
    return ConfigFile("near-valid", ("\n".join(lines) + "\n").encode())


@st.composite
def mapping_files(draw: st.DrawFn) -> ConfigFile:
    """A report column mapping: near-valid sections with hostile values, or worse."""
    what = draw(st.sampled_from(["near-valid", "near-valid", "near-valid", "random", "whole"]))
    labels = dict(zip(seed("kayako-csv").header, REPORT_FIELDS, strict=False))
    valid = "columns:\n" + "".join(f"  {f}: {json.dumps(label)}\n" for label, f in labels.items())
    if what == "random":
        return ConfigFile("random structure", draw(random_documents()).encode())
    if what == "whole":
        return draw(whole_files(valid))
    lines = [valid.rstrip("\n")] if draw(st.booleans()) else ["columns: {}"]
    for _ in range(draw(st.integers(1, 4))):
        section = draw(st.sampled_from(["columns", "date_format", "defaults", "values", "bogus"]))
        if section == "date_format":
            lines.append(f"date_format: {draw(tokens())}")
        elif section in ("columns", "defaults", "values"):
            key = draw(st.sampled_from([*REPORT_FIELDS, "bogus"]))
            lines.append(f"{section}: {{{key}: {draw(tokens())}}}")  # a repeated key: last wins
        else:
            lines.append(f"bogus: {draw(tokens())}")
    return ConfigFile("near-valid", ("\n".join(lines) + "\n").encode())


# --- the fuzz tests -----------------------------------------------------------------------------


def test_fuzzed_policy_files(workdir: Path) -> None:
    @settings(suppress_health_check=SUPPRESS)
    @given(config=policy_files(), command=st.sampled_from(["check", "show", "export"]))
    def one(config: ConfigFile, command: str) -> None:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            folder = Path(tmp)
            policy = config.write(folder / "my policy.yaml")
            if command == "check":
                args = ["policy", "check", str(policy)]
            elif command == "show":
                args = ["policy", "show", "--policy", str(policy)]
            else:
                url, _ = fresh_sqlite(folder)
                out = folder / "out" / "requests.csv"
                args = ["export", "requests", "--policy", str(policy), "--db", url,
                        *PERIOD, "-o", str(out)]  # fmt: skip
            judged(Run(f"policy {command}", args, folders=[folder]))

    fuzz(one, SHARE)


def test_fuzzed_mapping_files(workdir: Path) -> None:
    s = seed("kayako-csv")
    report = render_csv(list(s.header), [list(r) for r in s.rows]).encode()

    @settings(suppress_health_check=SUPPRESS)
    @given(config=mapping_files())
    def one(config: ConfigFile) -> None:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            folder = Path(tmp)
            mapping = config.write(folder / "mapping.yaml")
            (folder / "report.csv").write_bytes(report)
            url, _ = fresh_sqlite(folder)
            args = ["ingest", str(folder / "report.csv"), "--format", "kayako-csv",
                    "--mapping", str(mapping), "--db", url, "--rejects-dir", str(folder / "loads")]  # fmt: skip
            judged(Run("column mapping", args, folders=[folder]))

    fuzz(one, SHARE)


ODD_TEXT = [
    "", " ", "-", "--", "2026", "2026-W00", "2026-W53", "2027-W53", "2026-W1", "2026-w47",
    "2026-13", "2026-00", "0000-01", "0001-01", "9999-12", "99999-01", "2026-11-31", "2026-02-30",
    "0001-01-01", "9999-12-31", "2026-11-01T00:00", "2026-11-01 ", "１２３", "٢٠٢٦-١١",
    "2026-11\n", "2026-11\x00", "NaN", "-1", "1e9", "=1+1", "../..", "$(id)",
]  # fmt: skip


def odd_texts() -> st.SearchStrategy[str]:
    return st.sampled_from(ODD_TEXT) | st.text(max_size=20)


def odd_names() -> st.SearchStrategy[str]:
    """A file name: odd characters, a leading dash, very long, or random text."""
    return st.one_of(
        st.sampled_from(["a b.csv", "ünï cødé.csv", "-o.csv", "..csv", "new\nline.csv",
                         "tab\t.csv", "x" * 300 + ".csv", "nul\x00.csv", "é" * 130 + ".csv",
                         "'quote\".csv", "star*?.csv", "back\\slash.csv"]),
        st.text(st.characters(exclude_characters="/"), min_size=1, max_size=30),
    )  # fmt: skip


@st.composite
def argument_lists(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A command with fuzzed periods, ids, amounts and output names (``{out}``: its folder)."""
    command = draw(st.sampled_from(["export", "fees", "demo-data"]))
    period: list[str] = []
    for option in draw(st.lists(st.sampled_from(["--week", "--month", "--start", "--end"]),
                                max_size=3)):  # fmt: skip
        period += [option, draw(odd_texts())]
    if command == "export":
        return "periods", ["export", "requests", *period, "-o", "{out}/" + draw(odd_names())]
    if command == "fees":
        batch = draw(st.one_of(st.integers(-(2**70), 2**70).map(str), odd_texts()))
        fmt = draw(st.sampled_from(["csv", "xlsx", "both", "pdf", ""]))
        extra = ["--batch", batch] if draw(st.booleans()) else []
        return "ids", ["fees", "export", *(period or PERIOD), *extra, "--format", fmt,
                       "--out", "{out}/" + draw(odd_names())]  # fmt: skip
    # demo-data: amounts that are not valid, or valid and small (a valid huge one is real work)
    amount = st.sampled_from(["-1", "x", "", "1.5", "0x10", " 1", "1e3", "99999999999999999999",
                              "0", "1", "2"])  # fmt: skip
    args = ["demo-data", "--requests", draw(amount), "--other-tickets", draw(amount)]
    args += ["--months", draw(st.sampled_from(["1", "0", "-3", "x", ""]))]
    args += ["--seed", draw(st.integers(-(2**70), 2**70).map(str) | odd_texts())]
    if draw(st.booleans()):
        args += ["--end", draw(odd_texts())]
    return "amounts", [*args, "--out", "{out}/" + draw(odd_names())]


def test_fuzzed_arguments(workdir: Path) -> None:
    @settings(suppress_health_check=SUPPRESS)
    @given(drawn=argument_lists())
    def one(drawn: tuple[str, list[str]]) -> None:
        surface, args = drawn
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            folder = Path(tmp)
            url, _ = fresh_sqlite(folder)
            args = [a.replace("{out}", str(folder / "out")) for a in args]
            if args[0] != "demo-data":
                args += ["--db", url]
            judged(Run(f"arguments: {surface}", args, folders=[folder]))

    fuzz(one, SHARE)


DB_URLS = [
    "", "   ", "sqlite://", "sqlite:///:memory:", "sqlite:////proc/no/such.db", "sqlite:///",
    "postgresql://ipchange@127.0.0.1:1/none", "postgresql+psycopg://u:s3cr3t-pw@127.0.0.1:1/d",
    "postgresql://u@127.0.0.1:1/d?sslmode=bogus", "mysql://u@127.0.0.1:1/d", "://", "sqlite:",
    "sqlite+pysqlcipher:///x.db", "file:x.db", "sqlite:///file:x.db?mode=ro&uri=true",
    "sqlite:///{tmp}", "sqlite:///{tmp}/a file.db", "{tmp}/plain path.db", "~/x.db",
    "sqlite:///{tmp}/\u00e9\u00e8.db", "postgresql://[::1",
]  # fmt: skip


def test_fuzzed_environment(workdir: Path) -> None:
    @settings(suppress_health_check=SUPPRESS)
    @given(
        # no NUL: an environment variable cannot hold one (the OS refuses it before we run)
        url=st.sampled_from(DB_URLS)
        | st.text(st.characters(exclude_characters="\x00"), max_size=40),
        policy=st.one_of(
            st.none(), st.sampled_from(["", "{tmp}", "{tmp}/missing.yaml"]), policy_files()
        ),
        command=st.sampled_from(["export", "show"]),
    )
    def one(url: str, policy: ConfigFile | str | None, command: str) -> None:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            folder = Path(tmp)
            env = {"IPCHANGE_DB_URL": url.replace("{tmp}", tmp)}
            if isinstance(policy, ConfigFile):
                env["IPCHANGE_POLICY"] = str(policy.write(folder / "env policy.yaml"))
            elif policy is not None:
                env["IPCHANGE_POLICY"] = policy.replace("{tmp}", tmp)
            out = folder / "out" / "r.csv"
            if not url.strip():  # the default database, data/ipchange.db of the checkout
                command = "show"
            args = (
                ["export", "requests", *PERIOD, "-o", str(out)]
                if command == "export"
                else ["policy", "show"]
            )
            result = judged(Run(f"environment: {command}", args, env, [out], [folder]))
            assert "s3cr3t-pw" not in result.output, result.output  # a password never shows

    fuzz(one, SHARE)


OUTPUT_SHAPES = ["file in the way", "no such root", "read-only", "full", "name too long", "fine"]


def test_fuzzed_output_paths(workdir: Path) -> None:
    @settings(suppress_health_check=SUPPRESS, max_examples=8)
    @given(
        shape=st.sampled_from(OUTPUT_SHAPES),
        command=st.sampled_from(["export", "fees", "report"]),
        depth=st.integers(0, 2),
        name=odd_names(),
    )
    def one(shape: str, command: str, depth: int, name: str) -> None:
        if command == "report" and shape == "fine":
            shape = "read-only"  # a writable folder would render a report: seconds, not a path
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            folder = Path(tmp)
            url, _ = fresh_sqlite(folder)
            base = folder / "shared"
            base.mkdir()
            with _shaped(base, shape) as target:
                for i in range(depth):
                    target /= f"level {i}"
                if command == "export":
                    out = target / name
                    args = ["export", "requests", "-o", str(out)]
                elif command == "fees":
                    out = target
                    args = ["fees", "export", "--out", str(target)]
                else:
                    out = target
                    args = ["report", "intake", "--out", str(target)]
                run = Run(f"output: {shape}", [*args, *PERIOD, "--db", url], {}, [], [folder])
                if command == "export" and shape != "fine":
                    run.outputs.append(out)
                judged(run)

    fuzz(one, SHARE)


def _shaped(base: Path, shape: str):
    """A context giving a folder of the given shape under ``base`` (mounts are undone after)."""
    if shape == "read-only":
        return tmpfs(base / "ro", read_only=True)
    if shape == "full":

        @contextlib.contextmanager
        def full() -> Iterator[Path]:
            with tmpfs(base / "full", size_kb=16) as mounted:
                fill(mounted)
                yield mounted

        return full()
    if shape == "file in the way":
        (base / "blocker").write_text("a file")
        return contextlib.nullcontext(base / "blocker" / "sub")
    if shape == "no such root":
        return contextlib.nullcontext(Path("/proc/ipchange-none"))
    if shape == "name too long":
        return contextlib.nullcontext(base / ("n" * 300))
    return contextlib.nullcontext(base / "fine")
