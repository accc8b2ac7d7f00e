"""Configuration YAML as hostile text: the reader (yamlconfig) and the column mapping it serves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.kayako_report import load_mapping
from ipchange_core.yamlconfig import MAX_VALUES, brief, load_config_yaml


def laughs(levels: int, width: int = 10) -> str:
    """A "billion laughs" document: ``width ** levels`` values under ``top`` once expanded."""
    lines = ["l0: &l0 [" + ", ".join(["ha"] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\ntop: *l{levels - 1}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("d: 2026-02-28\n", {"d": dt.date(2026, 2, 28)}),
        ("d: 2026-02-30\n", {"d": "2026-02-30"}),  # impossible: kept as text for the key's check
        ("d: 2026-13-01\n", {"d": "2026-13-01"}),
        ("d: 2026-11-01 25:00:00\n", {"d": "2026-11-01 25:00:00"}),
        ("n: 12\n", {"n": 12}),
        ("f: !!float x\n", {"f": "x"}),
        ("n: " + "9" * 5000 + "\n", {"n": "9" * 5000}),  # beyond int()'s 4,300 digits: text
        ("", None),
        (laughs(4), {**{f"l{i}": ["ha"] * 10 for i in range(1)}}),  # checked below
    ],
    ids=[
        "date",
        "feb-30",
        "month-13",
        "hour-25",
        "int",
        "float-tag",
        "5000-digits",
        "empty",
        "small-aliases",
    ],
)
def test_values_the_reader_keeps(text: str, expected: object) -> None:
    doc = load_config_yaml(text)
    if text.startswith("l0"):  # 10**4 values after expansion: allowed, shared lists
        assert len(doc["top"]) == 10 and doc["top"][0][0][0] == ["ha"] * 10
        return
    assert doc == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (laughs(9), f"expands to more than {MAX_VALUES:,} values"),
        ("a: &a [*a]\n", f"expands to more than {MAX_VALUES:,} values"),
        ("a: &a {b: *a}\n", f"expands to more than {MAX_VALUES:,} values"),
        ("a: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("a: " + "{b: " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
        ("a: [1, 2\n", "expected ',' or ']'"),
        ("a: *nowhere\n", "found undefined alias"),
        ("a: !!python/object:os.system x\n", "could not determine a constructor"),
        ("a: !!timestamp x\n", "a value YAML cannot build (AttributeError"),
        ("a: !!bool maybe\n", "a value YAML cannot build (KeyError: 'maybe')"),
        ("a: [1,\n  2\n", "expected ',' or ']', but got '<stream end>' (line 3, column 1)"),
        ("a: \x00\n", "unacceptable character #x0000"),
    ],
    ids=["billion-laughs", "recursive-list", "recursive-map", "deep-lists", "deep-maps",
         "unclosed", "undefined-alias", "python-tag", "bad-timestamp", "bad-bool", "one-line",
         "nul"],
)  # fmt: skip
def test_documents_the_reader_refuses(text: str, message: str) -> None:
    with pytest.raises(yaml.YAMLError, match=None) as caught:
        load_config_yaml(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_brief_cuts_long_deep_and_recursive_values() -> None:
    deep: list = []
    deep.append(deep)
    assert brief("x" * 10_000).startswith("'xxx") and len(brief("x" * 10_000)) <= 70
    assert brief(list(range(10**6))) == "[0, 1, 2, 3, 4, 5, ...]"
    assert brief(deep) == "[[[[...]]]]"
    assert brief(10**4000)[:5] == "10000" and len(brief(10**4000)) <= 70


# --- the column mapping -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("columns: {ticket_id: X}\ndefaults: [creator]\n", "defaults must be a mapping of field names to texts"),
        ("columns: {ticket_id: X}\ndefaults: {creator: [a, b]}\n", "defaults must be a mapping of field names to texts"),
        ("columns: {ticket_id: X}\nvalues: {status: [Open]}\n", "values must be a mapping of field names to mappings"),
        ("columns: {ticket_id: X}\nvalues: {status: {Open: [x]}}\n", "values.status must be a mapping of field names to texts"),
        (laughs(9).replace("top:", "defaults:") + "columns: {ticket_id: X}\n", "column mapping is not valid YAML: expands to more than"),
        ("columns: " + "[" * 3000 + "]" * 3000 + "\n", "column mapping is not valid YAML: nested too deeply"),
        ("", "column mapping needs a 'columns' section"),
    ],
    ids=["defaults-list", "default-list", "values-list", "value-list", "alias-bomb", "deep", "empty"],
)  # fmt: skip
def test_hostile_mapping_is_refused_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInputError) as caught:
        load_mapping(path)
    assert str(caught.value).startswith("mine.yaml: ") and message in str(caught.value)


def test_unreadable_mapping_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "latin1.yaml").write_bytes(b"columns: {ticket_id: Num\xe9ro}\n")
    with pytest.raises(InvalidInputError, match=r"^latin1\.yaml: cannot read the column mapping"):
        load_mapping(tmp_path / "latin1.yaml")
    with pytest.raises(
        InvalidInputError, match=r"cannot read the column mapping: .*Is a directory"
    ):
        load_mapping(tmp_path)


def test_a_mapping_with_scalar_defaults_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "columns: {ticket_id: X}\ndefaults: {creator: staff, department: 5}\n"
        "values: {status: {Open: Open, '1': Closed}}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    assert dict(mapping.defaults) == {"creator": "staff", "department": "5"}
    assert dict(mapping.translations["status"]) == {"Open": "Open", "1": "Closed"}
