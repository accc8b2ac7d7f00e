"""environment.yml (conda-forge) lists the same packages as pyproject.toml, with the same bounds.

pyproject.toml is the source of truth: its runtime dependencies plus the extras that the
`-e .[...]` line of environment.yml installs must each appear once in environment.yml, as a
conda-forge package, or under `pip:` when the package is only on PyPI, and nothing else may.
"""

import copy
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, for the packages whose names differ (normalised names).
# Extras are stripped before the lookup, so `psycopg[binary]` is `psycopg` on both sides
# (conda-forge's psycopg ships with libpq, which is what the binary extra provides on PyPI).
PYPI_TO_CONDA = {
    "playwright": "playwright-python",  # conda-forge names the Python bindings playwright-python
}
CONDA_TO_PYPI = {conda: pypi for pypi, conda in PYPI_TO_CONDA.items()}

# Packages not on conda-forge: environment.yml must list them under `pip:`.
PIP_ONLY = frozenset({"businesstimedelta"})

# Conda entries that are tooling, not project dependencies: the interpreter, and the pip that
# installs the `pip:` section.
CONDA_TOOLING = frozenset({"python", "pip"})

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_LOWER_BOUND = re.compile(r">=\s*([0-9][0-9A-Za-z.*+!]*)")
_PROJECT_LINE = re.compile(r"(?:-e|--editable)\s*\.(?:\[([^\]]*)\])?")


def normalise(spec: str) -> str:
    """Bare name of a requirement or conda spec ('conda-forge::Foo_Bar[x]>=1' -> 'foo-bar')."""
    match = _NAME.match(spec.split("::")[-1])
    if match is None:
        raise ValueError(f"no package name in {spec!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def lower_bound(spec: str) -> str | None:
    """The version after '>=' in a requirement or conda spec, if any ('pandas>=3.0' -> '3.0')."""
    match = _LOWER_BOUND.search(spec.split(";")[0])
    return match.group(1) if match else None


def _describe(pypi_name: str) -> str:
    if pypi_name in PIP_ONLY:
        return f"{pypi_name} (under pip:)"
    conda_name = PYPI_TO_CONDA.get(pypi_name, pypi_name)
    return pypi_name if conda_name == pypi_name else f"{pypi_name} (conda-forge: {conda_name})"


def compare(pyproject: dict, environment: dict) -> list[str]:
    """Every way the two files disagree, one message per kind, naming the packages; [] if none."""
    problems: list[str] = []
    project = pyproject.get("project", {})
    extras_available = project.get("optional-dependencies", {})

    # environment.yml: conda entries (mapped to PyPI names) and the pip: section.
    conda: dict[str, str] = {}
    pip: dict[str, str] = {}
    project_extras: set[str] | None = None
    wrong_names: list[str] = []
    for entry in environment.get("dependencies", []):
        if isinstance(entry, dict):
            for line in entry.get("pip", []):
                line = str(line).strip()
                if line.startswith("-") or line.startswith("."):
                    match = _PROJECT_LINE.fullmatch(line)
                    if match is None:
                        problems.append(f"unexpected pip: line {line!r} (expected '-e .[dev]')")
                    else:
                        project_extras = {e.strip() for e in (match.group(1) or "").split(",")}
                        project_extras.discard("")
                else:
                    pip[normalise(line)] = line
        else:
            name = normalise(str(entry))
            if name in PYPI_TO_CONDA and name not in CONDA_TO_PYPI:
                wrong_names.append(f"{name} -> {PYPI_TO_CONDA[name]}")
            if name not in CONDA_TOOLING:
                conda[CONDA_TO_PYPI.get(name, name)] = str(entry)

    if wrong_names:
        names = ", ".join(wrong_names)
        problems.append(f"use the conda-forge names in environment.yml: {names}")

    # pyproject.toml: runtime dependencies plus the extras that environment.yml installs.
    if project_extras is None:
        problems.append("environment.yml: pip: section lacks '-e .[dev]' (the project itself)")
        project_extras = set()
    unknown_extras = project_extras - set(extras_available)
    if unknown_extras:
        problems.append(f"'-e .[...]' names extras pyproject.toml lacks: {sorted(unknown_extras)}")
    required: dict[str, str] = {}
    for spec in project.get("dependencies", []):
        required[normalise(spec)] = spec
    for extra in sorted(project_extras & set(extras_available)):
        for spec in extras_available[extra]:
            required[normalise(spec)] = spec

    listed = {**conda, **pip}
    missing = sorted(set(required) - set(listed))
    if missing:
        names = ", ".join(_describe(name) for name in missing)
        problems.append(f"in pyproject.toml but missing from environment.yml: {names}")
    extra = sorted(set(listed) - set(required))
    if extra:
        problems.append(f"in environment.yml but not in pyproject.toml: {', '.join(extra)}")
    misplaced_conda = sorted(set(conda) & PIP_ONLY)
    if misplaced_conda:
        names = ", ".join(misplaced_conda)
        problems.append(f"not on conda-forge, move under pip: in environment.yml: {names}")
    misplaced_pip = sorted(set(pip) - PIP_ONLY)
    if misplaced_pip:
        problems.append(
            f"list as conda-forge packages, not under pip: {', '.join(misplaced_pip)}"
            " (or add them to PIP_ONLY in tests/test_environment.py if conda-forge lacks them)"
        )
    both = sorted(set(conda) & set(pip))
    if both:
        problems.append(f"listed both as conda package and under pip: {', '.join(both)}")

    bounds = []
    for name in sorted(set(required) & set(listed)):
        want, have = lower_bound(required[name]), lower_bound(listed[name])
        if want != have:
            bounds.append(f"{name} (pyproject >={want}, environment.yml >={have})")
    if bounds:
        problems.append(f"lower bounds differ: {', '.join(bounds)}")
    return problems


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    problems = compare(pyproject, environment)
    assert not problems, "environment.yml is out of step with pyproject.toml:\n" + "\n".join(
        problems
    )


def test_environment_yml_uses_conda_forge_and_python_311():
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    assert environment["channels"] == ["conda-forge"]
    assert "python=3.11" in environment["dependencies"]


def test_name_map_is_one_to_one():
    assert len(CONDA_TO_PYPI) == len(PYPI_TO_CONDA)
    assert not set(PYPI_TO_CONDA) & PIP_ONLY


# --- the comparison itself, on synthetic files ------------------------------------------------

SYNTHETIC_PYPROJECT = {
    "project": {
        "dependencies": ["pandas>=3.0", "PyYAML>=6.0"],
        "optional-dependencies": {
            "dev": [
                "psycopg[binary]>=3.2",
                "playwright>=1.45",
                "pytest_xdist>=3.5",
                "businesstimedelta>=1.0",
            ],
            "docs": ["sphinx>=7"],
        },
    }
}
SYNTHETIC_ENVIRONMENT = {
    "channels": ["conda-forge"],
    "dependencies": [
        "python=3.11",
        "pip",
        "pandas>=3.0",
        "pyyaml>=6.0",
        "psycopg>=3.2",
        "playwright-python>=1.45",
        "pytest-xdist>=3.5",
        {"pip": ["businesstimedelta>=1.0", "-e .[dev]"]},
    ],
}

Edit = Callable[[dict, dict], None]


def _deps(environment: dict) -> list:
    return environment["dependencies"]


def _pip(environment: dict) -> list:
    return next(e for e in environment["dependencies"] if isinstance(e, dict))["pip"]


def _replace(items: list, old: str, new: str) -> None:
    items[items.index(old)] = new


IN_STEP: dict[str, Edit] = {
    "unchanged": lambda p, e: None,
    "channel prefix and spaces": lambda p, e: _replace(
        _deps(e), "pandas>=3.0", "conda-forge::pandas >=3.0"
    ),
    "case and separators": lambda p, e: _replace(_deps(e), "pyyaml>=6.0", "PyYAML>=6.0"),
    "extra installed in both": lambda p, e: (
        _replace(_pip(e), "-e .[dev]", "-e .[dev,docs]"),
        _deps(e).append("sphinx>=7"),
    ),
}

OUT_OF_STEP: dict[str, tuple[Edit, list[str]]] = {
    "runtime dependency added to pyproject only": (
        lambda p, e: p["project"]["dependencies"].append("click>=8.1"),
        ["missing from environment.yml", "click"],
    ),
    "dev dependency added to pyproject only": (
        lambda p, e: p["project"]["optional-dependencies"]["dev"].append("ruff>=0.6"),
        ["missing from environment.yml", "ruff"],
    ),
    "renamed package added to pyproject only": (
        lambda p, e: _deps(e).remove("playwright-python>=1.45"),
        ["missing from environment.yml", "playwright (conda-forge: playwright-python)"],
    ),
    "pip-only package missing": (
        lambda p, e: _pip(e).remove("businesstimedelta>=1.0"),
        ["missing from environment.yml", "businesstimedelta (under pip:)"],
    ),
    "dependency added to environment.yml only": (
        lambda p, e: _deps(e).append("tqdm>=4.66"),
        ["not in pyproject.toml", "tqdm"],
    ),
    "PyPI name used where conda-forge's differs": (
        lambda p, e: _replace(_deps(e), "playwright-python>=1.45", "playwright>=1.45"),
        ["use the conda-forge names", "playwright -> playwright-python"],
    ),
    "extra not installed by the -e line": (
        lambda p, e: _deps(e).append("sphinx>=7"),
        ["not in pyproject.toml", "sphinx"],
    ),
    "pip-only package listed as conda package": (
        lambda p, e: (
            _pip(e).remove("businesstimedelta>=1.0"),
            _deps(e).append("businesstimedelta>=1.0"),
        ),
        ["move under pip:", "businesstimedelta"],
    ),
    "conda-forge package under pip:": (
        lambda p, e: (_deps(e).remove("pandas>=3.0"), _pip(e).insert(0, "pandas>=3.0")),
        ["not under pip:", "pandas"],
    ),
    "lower bound bumped in pyproject only": (
        lambda p, e: _replace(p["project"]["dependencies"], "pandas>=3.0", "pandas>=3.1"),
        ["lower bounds differ", "pandas (pyproject >=3.1, environment.yml >=3.0)"],
    ),
    "lower bound dropped in environment.yml": (
        lambda p, e: _replace(_deps(e), "psycopg>=3.2", "psycopg"),
        ["lower bounds differ", "psycopg"],
    ),
    "project line missing": (
        lambda p, e: _pip(e).remove("-e .[dev]"),
        ["lacks '-e .[dev]'"],
    ),
    "unknown extra on the project line": (
        lambda p, e: _replace(_pip(e), "-e .[dev]", "-e .[dev,nope]"),
        ["extras pyproject.toml lacks", "nope"],
    ),
}


def _edited(edit: Edit) -> tuple[dict, dict]:
    pyproject = copy.deepcopy(SYNTHETIC_PYPROJECT)
    environment = copy.deepcopy(SYNTHETIC_ENVIRONMENT)
    edit(pyproject, environment)
    return pyproject, environment


@pytest.mark.parametrize("edit", IN_STEP.values(), ids=IN_STEP.keys())
def test_compare_accepts_files_in_step(edit):
    assert compare(*_edited(edit)) == []


@pytest.mark.parametrize("edit, expected", OUT_OF_STEP.values(), ids=OUT_OF_STEP.keys())
def test_compare_names_what_differs(edit, expected):
    report = "\n".join(compare(*_edited(edit)))
    for fragment in expected:
        assert fragment in report, f"{fragment!r} not in:\n{report}"


@pytest.mark.parametrize(
    "spec, name, bound",
    [
        ("psycopg[binary]>=3.2", "psycopg", "3.2"),
        ("PyYAML>=6.0", "pyyaml", "6.0"),
        ("pytest_xdist >= 3.5", "pytest-xdist", "3.5"),
        ("conda-forge::Zope.Interface>=5; python_version>'3'", "zope-interface", "5"),
        ("python=3.11", "python", None),
        ("pip", "pip", None),
    ],
)
def test_normalise_and_lower_bound(spec, name, bound):
    assert normalise(spec) == name
    assert lower_bound(spec) == bound


@pytest.mark.xdist_group("postgres")
def test_xdist_groups_reach_the_scheduler(request):
    """Tests that share one PostgreSQL database run on one worker only if xdist sees their group.

    pytest 9.2 builds node ids in a way that drops the ``@group`` suffix pytest-xdist adds, and
    ``--dist loadgroup`` then spreads a group over every worker (pytest-xdist issue 1386).
    """
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist workers
        pytest.skip("not run by pytest-xdist with --dist loadgroup")
    assert request.node.nodeid.endswith("@postgres")
