"""ipchange_core.csvfile: write_csv, the bytes of pandas' ``to_csv`` (CRLF, minimal quoting),
built in Arrow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipchange_core.csvfile import csv_bytes, write_csv


def pandas_bytes(frame: pd.DataFrame) -> bytes:
    """The writer write_csv replaced, as the oracle of its bytes."""
    return frame.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def written(frame: pd.DataFrame, folder: Path) -> bytes:
    path = folder / "out.csv"
    write_csv(frame, path)
    return path.read_bytes()


CASES = {
    "bare CR is quoted": (pd.DataFrame({"a": ["x\r=1+1", "y"]}), b'a\r\n"x\r=1+1"\r\ny\r\n'),
    "LF and CRLF are quoted": (
        pd.DataFrame({"a": ["x\ny", "x\r\ny"]}),
        b'a\r\n"x\ny"\r\n"x\r\ny"\r\n',
    ),
    "quotes doubled, comma quoted": (
        pd.DataFrame({"a": ['say "hi"', "1,2"], "b": ["", " "]}),
        b'a,b\r\n"say ""hi""",\r\n"1,2", \r\n',
    ),
    "missing text is empty": (
        pd.DataFrame({"a": pd.Series(["x", None], dtype="str"), "b": ["1", "2"]}),
        b"a,b\r\nx,1\r\n,2\r\n",
    ),
    "lone empty field is quoted": (
        pd.DataFrame({"a": pd.Series(["", None], dtype="str")}),
        b'a\r\n""\r\n""\r\n',
    ),
    "header quoted like values": (
        pd.DataFrame({'x"y': ["1"], "a,b": ["2"], "c\rd": ["3"]}),
        b'"x""y","a,b","c\rd"\r\n1,2,3\r\n',
    ),
    "control characters and unicode as they are": (
        pd.DataFrame({"a": ["\x00\t\x1b", "é€😀"], "b": ["=1", "@x"]}),
        "a,b\r\n\x00\t\x1b,=1\r\né€😀,@x\r\n".encode(),
    ),
    "integers, nullable integers, booleans": (
        pd.DataFrame(
            {
                "i": [1, -2],
                "n": pd.array([None, 3], dtype="Int64"),
                "b": [True, False],
            }
        ),
        b"i,n,b\r\n1,,True\r\n-2,3,False\r\n",
    ),
    "text in several chunks (a concat)": (
        pd.concat([pd.DataFrame({"a": ["x", "y,z"]}), pd.DataFrame({"a": ['"', None]})]),
        b'a\r\nx\r\n"y,z"\r\n""""\r\n""\r\n',
    ),
    "no rows": (pd.DataFrame({"a": pd.Series(dtype="str"), "b": []}), b"a,b\r\n"),
}


@pytest.mark.parametrize("frame, expected", CASES.values(), ids=CASES.keys())
def test_write_csv_cases(frame: pd.DataFrame, expected: bytes, tmp_path: Path) -> None:
    assert written(frame, tmp_path) == expected
    assert pandas_bytes(frame) == expected


# text full of what CSV must quote (CR, LF, CRLF, quotes, commas), plus any other character
TEXT = st.lists(
    st.sampled_from(['"', ",", "\r", "\n", "\r\n", " ", "\x00", "="]) | st.characters(), max_size=6
).map("".join)
COLUMNS = {
    "str": (st.none() | TEXT, "str"),
    "int64": (st.integers(-(2**63), 2**63 - 1), "int64"),
    "Int64": (st.none() | st.integers(-(2**63), 2**63 - 1), "Int64"),
    "bool": (st.booleans(), "bool"),
    "float64": (st.floats(), "float64"),
}


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(TEXT, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(0, 5))
    data = {}
    for name in names:
        values, dtype = COLUMNS[draw(st.sampled_from(sorted(COLUMNS)))]
        data[name] = pd.Series(draw(st.lists(values, min_size=n, max_size=n)), dtype=dtype)
    return pd.DataFrame(data)


@settings(max_examples=300)
@given(frame=frames())
def test_write_csv_bytes_are_pandas_to_csv(
    frame: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert written(frame, tmp_path_factory.getbasetemp()) == pandas_bytes(frame)


def test_csv_bytes_are_what_write_csv_writes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": ["x,y", ""], "b": [1, 2]})
    assert written(frame, tmp_path) == csv_bytes(frame)
