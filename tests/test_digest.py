"""ipchange_core.digest: a file's SHA-256, computed once (in the background if started early)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipchange_core import digest as digest_module
from ipchange_core.digest import FileDigest, file_sha256
from ipchange_core.errors import InvalidInputError


@settings(max_examples=30, deadline=None)
@given(contents=st.lists(st.binary(max_size=3 << 20), min_size=1, max_size=4))
def test_digests_started_in_the_background_are_those_of_the_bytes(
    tmp_path_factory: pytest.TempPathFactory, contents: list[bytes]
) -> None:
    folder = tmp_path_factory.mktemp("files")
    paths = []
    for i, content in enumerate(contents):
        path = folder / f"f{i}.csv"
        path.write_bytes(content)
        paths.append(path)
    digests = FileDigest.start_all(paths)
    assert [d.path for d in digests] == paths
    expected = [hashlib.sha256(content).hexdigest() for content in contents]
    assert [d.unchanged() for d in digests] == expected
    assert [d() for d in digests] == expected
    assert [file_sha256(path) for path in paths] == expected


def test_an_unstarted_digest_is_computed_when_called_and_only_then(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"ticket_id\nT-1\n")
    d = FileDigest(path)
    assert d.unchanged() is None  # nothing computed yet
    assert d() == hashlib.sha256(b"ticket_id\nT-1\n").hexdigest()
    assert d.unchanged() == d()


@pytest.mark.parametrize("started", [True, False])
def test_a_file_rewritten_after_hashing_is_no_longer_unchanged(
    tmp_path: Path, started: bool
) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"ticket_id\nT-1\n")
    d = FileDigest.start_all([path])[0] if started else FileDigest(path)
    first = d()
    assert d.unchanged() == first
    path.write_bytes(b"ticket_id\nT-2\n")  # same size, new bytes
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # coarse clocks
    assert d.unchanged() is None
    assert d() == first  # the digest of the bytes it read, never recomputed


@pytest.mark.parametrize("started", [True, False])
def test_an_unreadable_file_is_refused_by_name_when_its_digest_is_asked(
    tmp_path: Path, started: bool
) -> None:
    missing = tmp_path / "gone.csv"
    present = tmp_path / "here.csv"
    present.write_bytes(b"x\n")
    if started:
        gone, here = FileDigest.start_all([missing, present])
        assert here() == hashlib.sha256(b"x\n").hexdigest()  # the error stops no other file
    else:
        gone = FileDigest(missing)
    assert gone.unchanged() is None
    with pytest.raises(InvalidInputError, match=r"gone\.csv.*cannot read the file"):
        gone()
    with pytest.raises(InvalidInputError, match=r"gone\.csv"):
        gone()  # asked again: the same answer


def test_the_background_thread_hashes_while_the_caller_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start_all returns at once; the hashing runs in another thread."""
    path = tmp_path / "a.csv"
    path.write_bytes(b"a\n" * 1000)
    release, threads = threading.Event(), []
    real = digest_module.file_sha256

    def slow(p: Path) -> str:
        threads.append(threading.current_thread())
        release.wait(10)
        return real(p)

    monkeypatch.setattr(digest_module, "file_sha256", slow)
    (d,) = FileDigest.start_all([path])
    release.set()
    assert d() == hashlib.sha256(b"a\n" * 1000).hexdigest()
    assert threads and threads[0] is not threading.current_thread()
    assert threads[0].daemon  # a command that ends early does not wait for it
