"""The package's start-up: public names imported on first use, heavy modules only when needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "sqlalchemy", "pandera", "pyarrow", "papermill", "nbformat", "plotly")


def loaded_after(code: str) -> set[str]:
    """The HEAVY modules a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    ("code", "allowed"),
    [
        ("import ipchange_core", set()),
        ("import ipchange_core.cli", set()),
        (
            "from click.testing import CliRunner\nfrom ipchange_core.cli import main\n"
            "assert CliRunner().invoke(main, ['--help']).exit_code == 0",
            set(),
        ),
        (
            "from click.testing import CliRunner\nfrom ipchange_core.cli import main\n"
            "assert CliRunner().invoke(main, ['policy', 'show']).exit_code == 0",
            set(),
        ),
        ("import ipchange_core.reports", {"pandas", "numpy", "sqlalchemy", "pyarrow", "plotly"}),
    ],
)
def test_start_up_imports_only_what_the_command_needs(code, allowed):
    assert loaded_after(code) <= allowed


def test_validation_still_imports_pandera_when_it_runs():
    assert "pandera" in loaded_after("from ipchange_core.schema import FRAME_MODELS")


@pytest.mark.parametrize(
    "first",
    ["", "import ipchange_core.evaluation", "from ipchange_core.evaluation import evaluate as e"],
)
def test_public_names_resolve_to_the_objects_whatever_was_imported_before(first):
    code = (
        f"{first}\nimport ipchange_core\n"
        "from ipchange_core import evaluate, load_policy, BusinessCalendar, Policy, PolicySet\n"
        "import ipchange_core.evaluation as module\n"
        "assert callable(evaluate) and evaluate.__module__ == 'ipchange_core.evaluation'\n"
        "assert module.evaluate is evaluate is ipchange_core.evaluate\n"
        "assert sys.modules['ipchange_core.evaluation'].evaluate is evaluate\n"
        "assert load_policy().latest.version and PolicySet and Policy and BusinessCalendar\n"
        "assert set(ipchange_core.__all__) <= set(dir(ipchange_core))\n"
    )
    subprocess.run([sys.executable, "-c", f"import sys\n{code}"], check=True)


def test_unknown_names_still_raise_attribute_error():
    import ipchange_core
    from ipchange_core import schema

    with pytest.raises(AttributeError, match="no_such_name"):
        _ = ipchange_core.no_such_name
    with pytest.raises(AttributeError, match="FRAME_MODEL"):
        _ = schema.FRAME_MODEL
    with pytest.raises(ImportError):
        from ipchange_core import no_such_name  # noqa: F401


def test_ingest_help_still_lists_every_format():
    from click.testing import CliRunner

    from ipchange_core.cli import main
    from ipchange_core.ingest import FORMATS

    result = CliRunner().invoke(main, ["ingest", "--help"])
    assert result.exit_code == 0
    assert f"[{'|'.join(['auto', *FORMATS])}]" in result.output.replace("\n", "").replace(" ", "")
    bad = CliRunner().invoke(main, ["ingest", "x.csv", "--format", "json"])
    assert bad.exit_code == 2
    assert "'json' is not one of 'auto', 'kayako-xml'" in bad.output


def test_notebook_tools_load_without_the_iri_grammar_and_still_validate():
    code = (
        "import sys\nfrom ipchange_core import render\nrender.import_notebook_tools()\n"
        "import nbformat\nassert 'rfc3987_syntax' not in sys.modules\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
        "nbformat.validate(nb)\nnb.cells[0]['execution_count'] = 'x'\n"
        "try:\n    nbformat.validate(nb)\nexcept nbformat.ValidationError:\n    pass\n"
        "else:\n    raise SystemExit('invalid notebook accepted')\n"
        "import rfc3987_syntax  # still importable afterwards by anyone who wants it\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
