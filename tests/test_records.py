"""Tests of ipchange_core.records: where a CSV's records are, and the hashes of their texts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipchange_core.records import RecordHashes, record_texts, repeats, text_hashes


def reference(body: bytes) -> list[tuple[int, int, int]] | None:
    """Slow reference: (line, begin, end) of each data record, or None if one spans lines."""
    quotes = 0
    for i, byte in enumerate(body):
        if byte == ord('"'):
            quotes += 1
        elif byte == ord("\n") and quotes % 2:
            return None  # a line feed inside a quoted value
        elif byte == ord("\r") and body[i + 1 : i + 2] != b"\n":
            return None  # a bare carriage return
    records = []
    begin = 0
    for number, line in enumerate(body.splitlines(keepends=True), start=1):
        if line not in (b"\n", b"\r\n"):
            records.append((number, begin, begin + len(line)))
        begin += len(line)
    return records[1:] if records else None


@pytest.mark.parametrize(
    ("body", "lines"),
    [
        (b"h\na\nb\n", [2, 3]),
        (b"h\na\nb", [2, 3]),  # no line end after the last record
        (b"h\r\na\r\n\r\nb\r\n", [2, 4]),  # CRLF, a blank line between
        (b"\n\nh\na\n", [4]),  # blank lines before the header
        (b"h\n\n\n", []),  # a header and blank lines only
        (b'h\n"a,""b""",c\nd\n', [2, 3]),  # quoted commas and escaped quotes
        (b'h\n"a\nb"\n', None),  # a quoted line break: the CSV reader must count
        (b"h\ra\r", None),  # bare CR line ends
        (b"h\na\r", None),  # a final bare CR
        (b"", None),  # no header
        (b"\n\r\n", None),  # blank lines only
    ],
)
def test_record_lines(body: bytes, lines: list[int] | None) -> None:
    texts = record_texts(body)
    if lines is None:
        assert texts is None
        return
    assert texts is not None
    assert texts.lines.tolist() == lines
    assert [t[0] for t in reference(body) or []] == lines


def test_equal_records_hash_alike_and_line_ends_count() -> None:
    texts = record_texts(b"h\nsame\nother\nsame\nsame\r\nsame")
    assert texts is not None
    h = texts.hashes.tolist()
    assert h[0] == h[2]  # byte-identical records
    assert len({h[0], h[1], h[3], h[4]}) == 4  # another text, a CRLF end, no line end


def test_a_record_is_known_once_and_under_the_same_header() -> None:
    old = record_texts(b"id,x\nA,1\nB,2\nC,3\n")
    assert old is not None
    previous = RecordHashes(7, old.header, old.hashes, np.array([10, 20, 30]))
    new = record_texts(b"id,x\nC,3\nA,1\nD,4\nB,2\nB,2\n")
    assert new is not None
    at = new.known(previous)
    assert at.tolist() == [2, 0, -1, -1, -1]  # B,2 twice: neither copy is known
    assert previous.take(at[at >= 0]).keys.tolist() == [30, 10]
    renamed = record_texts(b"id,y\nA,1\n")
    assert renamed is not None
    assert renamed.known(previous).tolist() == [-1]


def test_select_keeps_the_header_and_the_chosen_records() -> None:
    body = b"\nid,x\r\nA,1\r\n\r\nB,2\r\nC,3"
    texts = record_texts(body)
    assert texts is not None
    assert texts.select(body, np.array([0, 2])) == b"\nid,x\r\nA,1\r\nC,3"
    after = b"id,x\n\n\nA,1\n\nM"  # blank lines after the header are not part of the text read
    texts = record_texts(after)
    assert texts is not None
    assert texts.select(after, np.array([1])) == b"id,x\nM"
    assert texts.select(after, np.array([], dtype=np.int64)) == b"id,x\n"


def test_record_hashes_survive_storage() -> None:
    hashes = RecordHashes(3, -5, np.array([1, -2, 2**62]), np.array([4, 5, -(2**63)]))
    data, keys = hashes.to_bytes()
    back = RecordHashes.from_bytes(3, -5, data, keys)
    assert (back.hashes.tolist(), back.keys.tolist()) == ([1, -2, 2**62], [4, 5, -(2**63)])


def test_text_hashes_of_nulls_and_chunks() -> None:
    chunked = pa.chunked_array([["a", None], ["", "b"]], pa.large_string())
    h = text_hashes(chunked).tolist()
    assert h[1] == h[2] == text_hashes(pa.array([""]))[0]  # null hashes as empty
    assert h[0] == text_hashes(pa.array(["a"]))[0] != h[3]


line_text = st.lists(
    st.sampled_from(["a", "b", ",", '""', '"x,y"', " ", "é"]), min_size=0, max_size=4
).map("".join)
record_bodies = st.lists(
    st.tuples(line_text, st.sampled_from(["\n", "\r\n", "\n\n", "\r", '"\n'])),
    min_size=1,
    max_size=12,
).map(lambda parts: "".join(text + end for text, end in parts).encode())


@given(record_bodies)
def test_records_match_the_slow_reference(body: bytes) -> None:
    texts = record_texts(body)
    expected = reference(body)
    if texts is None:
        assert expected is None
        return
    assert expected is not None
    assert list(zip(texts.lines, texts.begins, texts.ends, strict=True)) == expected
    by_text: dict[bytes, int] = {}
    for begin, end, h in zip(texts.begins, texts.ends, texts.hashes, strict=True):
        assert by_text.setdefault(body[begin:end], int(h)) == int(h)
    assert len(set(by_text.values())) == len(by_text)  # different texts, different hashes


texts_of_records = st.lists(st.sampled_from(["A,1", "B,2", "C,3", "D,4", "E,5"]), max_size=10)


@given(texts_of_records, texts_of_records, st.booleans())
def test_known_matches_the_slow_reference(old: list[str], new: list[str], renamed: bool) -> None:
    """A record is known at its position in the old records when it appears once in the new
    text, the old records are unique and the headers agree; else -1."""
    old_texts = record_texts(("id,x\n" + "".join(f"{r}\n" for r in dict.fromkeys(old))).encode())
    new_body = ("id,y\n" if renamed else "id,x\n") + "".join(f"{r}\n" for r in new)
    new_texts = record_texts(new_body.encode())
    if old_texts is None or new_texts is None:  # no records at all
        return
    old_records = list(dict.fromkeys(old))
    previous = RecordHashes(1, old_texts.header, old_texts.hashes, np.arange(len(old_records)))
    expected = [
        old_records.index(r) if not renamed and r in old_records and new.count(r) == 1 else -1
        for r in new
    ]
    assert new_texts.known(previous).tolist() == expected


@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-3, 3), max_size=60))
def test_repeats_are_the_values_seen_twice(values: list[int]) -> None:
    expected = sorted(v for v, n in Counter(values).items() if n > 1)
    assert repeats(np.array(values, dtype=np.int64)).tolist() == expected
