"""pyipld/unixfs/tree/readahead.py: sub-directories listed and lstat'ed ahead of a cached walk —
the walk's answers are the source's, in its order, at most ``window`` directories ahead, and a
failed read is read again (and raises) on the walk's thread."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from pyipld.unixfs.tree.readahead import ReadAhead, sub_directories
from pyipld.unixfs.tree.source import LocalSource


class FakeSource:
    def __init__(self, fail: set[bytes] | None = None) -> None:
        self.lists: list[tuple[bytes, bool]] = []  # (path, on the walk's thread)
        self.stats: list[bytes] = []
        self.gate = threading.Event()
        self.gate.set()
        self.fail = fail or set()
        self.lock = threading.Lock()

    def list_dir(self, path: bytes) -> list[bytes]:
        self.gate.wait(10)
        with self.lock:
            self.lists.append((path, threading.current_thread() is threading.main_thread()))
        if path in self.fail:
            raise PermissionError(13, "Permission denied", path)
        return [path + b"/x", path + b"/y"]

    def stat_listing(self, path: bytes, names: list[bytes]) -> tuple[bytes, bytes] | None:
        with self.lock:
            self.stats.append(path)
        return b"records of " + path, b"ff"

    def read_listing(self, path: bytes) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
        names = self.list_dir(path)
        return names, self.stat_listing(path, names)


def _make(source: FakeSource, threads: int = 2, window: int = 16) -> ReadAhead:
    return ReadAhead(cast(LocalSource, source), threads, window)


def _settled(ra: ReadAhead) -> None:
    for future in list(cast(Any, ra)._started.values()):
        future.result(10)


def test_read_ahead_answers_are_the_sources() -> None:
    src = FakeSource()
    ra = _make(src)
    try:
        ra.want([b"a", b"b"])
        assert ra.list_dir(b"a") == [b"a/x", b"a/y"]
        assert ra.stat_listing(b"a", [b"a/x", b"a/y"]) == (b"records of a", b"ff")
        assert ra.list_dir(b"b") == [b"b/x", b"b/y"]
        assert ra.stat_listing(b"b", [b"b/x", b"b/y"]) == (b"records of b", b"ff")
        assert sorted(src.lists) == [(b"a", False), (b"b", False)]  # both read on the threads, once
        # not read ahead: asked of the source on the caller's thread
        assert ra.list_dir(b"c") == [b"c/x", b"c/y"] and src.lists[-1] == (b"c", True)
        assert ra.stat_listing(b"c", [b"c/x", b"c/y"]) == (b"records of c", b"ff")
        assert src.stats.count(b"c") == 1
        # a listing's records are taken once: asked again, they are read again
        ra.list_dir(b"d")
        ra.stat_listing(b"d", [])
        ra.stat_listing(b"d", [])
        assert src.stats.count(b"d") == 2
    finally:
        ra.close()


def test_at_most_window_directories_ahead_in_depth_first_order() -> None:
    src = FakeSource()
    src.gate.clear()
    ra = _make(src, threads=1, window=2)
    try:
        ra.want([b"a", b"b", b"c", b"d"])
        src.gate.set()
        _settled(ra)
        assert [p for p, _ in src.lists] == [b"a", b"b"]  # two ahead, no more
        ra.list_dir(b"a")  # taken: c is started
        ra.want([b"a/1", b"a/2"])  # a's sub-directories come before b's siblings, once there is room
        _settled(ra)
        assert [p for p, _ in src.lists] == [b"a", b"b", b"c"]
        ra.list_dir(b"a/1")  # the walk caught up: read here; a/2 is still behind b and c
        ra.list_dir(b"b")  # taken: room for a/2 (not d)
        _settled(ra)
        assert [p for p, _ in src.lists] == [b"a", b"b", b"c", b"a/1", b"a/2"]
        for path in (b"a/2", b"c", b"d"):
            ra.list_dir(path)
        assert [p for p, _ in src.lists] == [b"a", b"b", b"c", b"a/1", b"a/2", b"d"]  # once each
        assert [p for p, main in src.lists if main] == [b"a/1"]
    finally:
        ra.close()


def test_the_walk_catching_up_reads_on_its_own_thread_once() -> None:
    src = FakeSource()
    ra = _make(src, threads=1, window=0)  # nothing is ever started: the walk is always first
    try:
        ra.want([b"a", b"b"])
        assert ra.list_dir(b"a") == [b"a/x", b"a/y"] and ra.list_dir(b"b") == [b"b/x", b"b/y"]
        assert src.lists == [(b"a", True), (b"b", True)]
        assert not cast(Any, ra)._queue
    finally:
        ra.close()


def test_a_failed_read_ahead_is_read_again_and_raises_on_the_walks_thread() -> None:
    src = FakeSource(fail={b"locked"})
    ra = _make(src)
    try:
        ra.want([b"locked", b"open"])
        _settled(ra)
        with pytest.raises(PermissionError) as info:
            ra.list_dir(b"locked")
        assert info.value.filename == b"locked"
        assert [p for p, main in src.lists if p == b"locked"] == [b"locked", b"locked"]
        assert (b"locked", True) in src.lists
        assert ra.list_dir(b"open") == [b"open/x", b"open/y"]
    finally:
        ra.close()


def test_close_drops_what_was_not_started() -> None:
    src = FakeSource()
    src.gate.clear()
    ra = _make(src, threads=1, window=1)
    ra.want([b"a", b"b", b"c"])
    ra.close()
    src.gate.set()
    assert ra.list_dir(b"b") == [b"b/x", b"b/y"]  # still answers, on the caller's thread
    assert [p for p, _ in src.lists if p == b"c"] == []


def test_sub_directories_of_a_listing() -> None:
    assert sub_directories(b"/t", [b"a", b"b", b"c", b"d"], b"dfld") == [b"/t/a", b"/t/d"]
    assert sub_directories(b"/t", [b"a"], b"f") == []
    assert sub_directories(b"/t", [], b"") == []
