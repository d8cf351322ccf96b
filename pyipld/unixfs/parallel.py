"""Parallel import: one import split into independent tasks whose results assemble into the
single-process root (shared/spec/parallel-import.md §1–3). Executor-agnostic: anything with
``submit(fn, *args) -> future`` (a ``dask.distributed.Client``, a ``concurrent.futures``
executor) runs the tasks; :mod:`pyipld.distributed` is the Dask glue.

Theory of operation:

* Tasks carry a path and byte ranges, never file data; results are small. For object storage
  (``source``: a :class:`~.remote.RemoteSource`) they carry the object's key, size and version
  too, and the workers read their ranges from the store.
* **Small files** go in batches to :func:`hash_files` (the importer, one file at a time).
* **A large file, balanced layout**: leaves are grouped in tasks of ``L**k`` consecutive
  leaves (``L`` = max links, smallest ``k ≥ 1`` giving about ``task_bytes``); a task builds
  its level-``k`` node with exactly ``k`` grouping rounds (:func:`~.layout_balanced.group_rounds`,
  a lone trailing node wrapped too) and returns its (CID, Tsize, bytes); the coordinator
  groups those nodes with :func:`~.layout_balanced.balanced_from_links` — the importer's own
  code — and puts the metadata on the root.
* **Trickle**: the root's children are its first ``L`` leaves, then 4 subtrees of depth 1,
  4 of depth 2, … of ``L·5**(d−1)`` leaves each; one task per child subtree
  (:func:`~.layout_trickle.trickle_subtree`), the root is encoded by the coordinator.
* **buzhash / rabin**: whether a window passes the mask depends only on its 16/32 bytes, so
  :func:`scan_candidates` tasks find the candidate ends of byte ranges (returned as
  arithmetic runs, bounded: a range with too many irregular runs makes the file one
  sequential task), :func:`replay_cuts` applies boxo's min/max rules to them exactly, and
  the leaves are then hashed in tasks as above with explicit chunk boundaries.

Coordinator memory per large file: one (CID, Tsize, size) per task, plus 8 bytes per leaf
of a content-defined file while its tasks are planned.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import mmap
import os
import stat
import threading
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from .._io import use_mmap
from .._sha256x2 import mapped_hashing_available
from ..blockstore import NullSink
from ..chunker.fixed import FixedSize
from ..errors import ConfigError, FileChangedError
from ._fileread import hash_mapped, pread_exact
from .cache import ImportCache, params_key
from .importer import build_file, import_file, leaf_maker, metadata_for
from .layout_balanced import balanced_from_links, group_rounds
from .layout_trickle import LAYER_REPEAT, trickle_subtree
from .nodes import ChunkGroups, FileLink, Leaf, LeafMaker, encode_file_node
from .params import ImportParams, ResolvedParams
from .remote import RemoteSource, hash_objects

__all__ = [
    "DEFAULT_TASK_BYTES",
    "Executor",
    "ParallelImporter",
    "Runs",
    "Shape",
    "Span",
    "hash_files",
    "hash_span",
    "list_files",
    "plan_leaves",
    "replay_cuts",
    "runs_from_candidates",
    "scan_candidates",
]

DEFAULT_TASK_BYTES: Final = 64 << 20  # Dask costs ~2-5 ms of CPU per task (same GIL in-process): 16 MiB lost ~15 %
MAX_BATCH_FILES: Final = 256
SPAN_READ_BYTES: Final = 2 << 20  # bytes a span task reads at a time, into one buffer per worker thread
MAPPED_GROUP_BYTES: Final = 32 << 20
"""Bytes a span task maps and hashes in one call of the guarded kernel (only-hash). Each call
gives the GIL back once, and on a Dask worker the event loop's thread (in-process: also the
scheduler's) holds it for milliseconds at a time: with 2 MiB groups, 64 MiB tasks on a
two-thread ``LocalCluster`` spent ~30 % of their time waiting for it (2 GiB: 0.78–0.88 s against
0.57–0.68 s with 32 MiB groups, the threaded importer 0.57–0.65 s in the same runs). The pages
are unmapped after each group."""
SCAN_READ_BYTES: Final = 4 << 20  # bytes a candidate scan reads at a time (dense candidates: 8 B each)
_read_buffers = threading.local()
Runs = list[tuple[int, int, int]]
"""Candidate chunk ends as arithmetic runs ``(first, step, count)``, sorted."""
Shape = tuple[Literal["balanced", "trickle", "leaves", "node"], int]
"""What a span task returns: ``("balanced", k)`` its level-k nodes, ``("trickle", d)`` a depth-d
trickle subtree, ``("leaves", 0)`` its leaf links. ``("node", n)`` is no task: the coordinator
encodes a trickle node over the next ``n`` plan entries (prefix order)."""
StatKey = tuple[int, int, int, int, int]


class Future(Protocol):
    def result(self) -> Any: ...


class Executor(Protocol):
    """``submit(fn, *args)``: ``dask.distributed.Client``, ``concurrent.futures.Executor``.

    An executor may also have ``submit_many(fn, calls) -> list[future]`` (one future per
    argument tuple, in order): the tasks of one file are then submitted at once (on Dask, one
    graph update instead of one per task)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class Span:
    """Consecutive leaves of a file: fixed ``chunk``-byte chunks over ``[start, stop)``, or
    (``chunk == 0``) chunks ending at the absolute offsets ``cuts`` (the last is ``stop``)."""

    start: int
    stop: int
    chunk: int = 0
    cuts: bytes = b""
    """Native-endian int64 chunk ends (``array('q').tobytes()``): 8 bytes per leaf in a task."""

    @property
    def leaves(self) -> int:
        return -(-(self.stop - self.start) // self.chunk) if self.chunk else len(self.cuts) // 8

    def bounds(self) -> Iterator[tuple[int, int]]:
        if self.chunk:
            for a in range(self.start, self.stop, self.chunk):
                yield a, min(a + self.chunk, self.stop)
            return
        a = self.start
        for b in memoryview(self.cuts).cast("q"):
            yield a, b
            a = b


# -- worker side ------------------------------------------------------------------------------

def hash_files(paths: Sequence[bytes], params: ImportParams) -> list[FileLink | None]:
    """Whole-file imports, one per path (None where it failed: the coordinator redoes it and
    reports the error the single-process importer would)."""
    resolved = params.resolve()
    chunk = resolved.chunker.chunk_size if isinstance(resolved.chunker, FixedSize) else 0
    out: list[FileLink | None] = []
    for path in paths:
        try:
            if chunk and not params.has_metadata:
                out.append(_hash_whole(path, chunk, resolved))
                continue
            res = import_file(os.fsdecode(path), params, jobs=1)
        except (OSError, ValueError):
            out.append(None)
            continue
        out.append(FileLink(res.cid.bytes, res.tsize, res.size))
    return out


def _hash_whole(path: bytes, chunk: int, resolved: ResolvedParams) -> FileLink:
    """``import_file(jobs=1)`` of a regular file with ``size-N`` chunks and no metadata, its
    chunks read into the worker thread's reused buffer (:func:`_span_groups`) instead of a
    fresh 1 MiB buffer per read (measured 3-8 % less CPU on 1 MiB files). The file must keep
    its size (:class:`~pyipld.errors.FileChangedError` otherwise), as there."""
    size = os.stat(path).st_size
    link = build_file(ChunkGroups(_span_groups(path, Span(0, size, chunk=chunk))), resolved, NullSink())
    now = os.stat(path).st_size
    if now != size:
        raise FileChangedError(os.fsdecode(path), size, now)
    return link


def hash_span(path: bytes, span: Span, shape: Shape, params: ImportParams, source: RemoteSource | None = None,
              version: int = 0) -> list[FileLink]:
    """Hash the leaves of ``span`` and build what ``shape`` asks for (see :data:`Shape`).
    ``source``: the object store ``path`` is in (ranged reads; ``version`` checked), else local."""
    resolved = params.resolve()
    leaves = leaf_maker(resolved)
    if source is None and leaves.hashes_mapped_views and mapped_hashing_available():
        hashed: Iterable[Leaf] = _mapped_span_leaves(path, span, leaves)  # no read copy
    else:
        groups = (_span_groups(path, span) if source is None else
                  source.span_groups(path.decode("utf-8", "surrogateescape"), span.bounds(), version))
        hashed = (leaf for group in groups for leaf in leaves.leaves(group, False))  # two at a time
    links = [FileLink(cid, block_len, b - a) for (a, b), (cid, _, block_len) in
             zip(span.bounds(), hashed, strict=True)]
    kind, level = shape
    builder, sink = resolved.cid_builder, NullSink()
    if kind == "balanced":
        return group_rounds(links, level, builder, sink, max_links=resolved.max_links)
    if kind == "trickle":
        return [trickle_subtree(links, level, builder, sink, max_links=resolved.max_links)]
    return links


def _mapped_span_leaves(path: bytes, span: Span, leaves: LeafMaker) -> Iterator[Leaf]:
    """Only-hash leaves of ``span``, each ~``MAPPED_GROUP_BYTES`` group hashed from a guarded mapping
    (:func:`~pyipld.unixfs._fileread.hash_mapped`); from a group that cannot be mapped here (or
    when the SIGBUS guard stepped aside) on, the rest is read as :func:`_span_groups` reads."""
    with _opened(path, span) as (fd, name, size):
        groups = _read_groups(span.bounds(), MAPPED_GROUP_BYTES)
        for group in groups:
            try:
                hashed = hash_mapped(fd, group, leaves, name, span.stop)
            except OSError:
                rest = itertools.chain(group, (bound for later in groups for bound in later))
                for chunks in _read_bounds(fd, rest, size, name):
                    yield from leaves.leaves(chunks, False)
                return
            yield from hashed


def _span_groups(path: bytes, span: Span) -> Iterator[list[memoryview]]:
    """The chunks of ``span`` a read at a time, each group valid only until the next one is taken
    (callers hash or copy it first): :func:`_read_bounds`, or through one read-only mapping of the
    range (one group) with ``PYIPLD_MMAP=1``."""
    with _opened(path, span) as (fd, name, size):
        if use_mmap() and span.stop > span.start:
            base = span.start - span.start % mmap.ALLOCATIONGRANULARITY
            mapping = mmap.mmap(fd, span.stop - base, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ, offset=base)
            view = memoryview(mapping)
            del mapping  # unmapped with its last view (as the importer does)
            yield [view[a - base : b - base] for a, b in span.bounds()]
            view.release()
            return
        yield from _read_bounds(fd, span.bounds(), size, name)


@contextlib.contextmanager
def _opened(path: bytes, span: Span) -> Iterator[tuple[int, str, int]]:
    """``path`` open for a span task: its descriptor, name and size (FileChangedError when it is
    shorter than the span now)."""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        name = os.fsdecode(path)
        if size < span.stop:
            raise FileChangedError(name, span.stop, size)
        yield fd, name, size


def _read_bounds(fd: int, bounds: Iterable[tuple[int, int]], size: int, name: str) -> Iterator[list[memoryview]]:
    """The chunks ``bounds`` of ``fd``, read with ``preadv`` into this thread's reused buffer,
    ~``SPAN_READ_BYTES`` of whole chunks at a time (a fresh buffer per chunk costs its page
    faults: tasks ran ~1.6x slower); each group is valid until the next one is taken."""
    buf: bytearray = getattr(_read_buffers, "buf", None) or bytearray(SPAN_READ_BYTES)
    _read_buffers.buf = None  # a nested reader on this thread gets its own
    try:
        for group in _read_groups(bounds, SPAN_READ_BYTES):
            first, last = group[0][0], group[-1][1]
            if last - first > len(buf):  # one chunk larger than the buffer
                buf = bytearray(last - first)
            view = memoryview(buf)
            pread_exact(fd, view[: last - first], first, size, name)
            yield [view[a - first : b - first] for a, b in group]
            view.release()
    finally:
        if len(buf) <= SPAN_READ_BYTES:
            _read_buffers.buf = buf


def _read_groups(bounds: Iterable[tuple[int, int]], limit: int) -> Iterator[list[tuple[int, int]]]:
    """Consecutive chunk bounds in groups of at most ``limit`` bytes (a larger chunk alone)."""
    group: list[tuple[int, int]] = []
    for a, b in bounds:
        if group and b - group[0][0] > limit:
            yield group
            group = []
        group.append((a, b))
    if group:
        yield group


def _searcher(spec: str) -> tuple[Any, int] | None:
    """The numpy candidate search of a content-defined chunker and its window, or None."""
    from ..chunker import parse_chunker
    from ..chunker.buzhash import Buzhash, _NumpyBuzhash
    from ..chunker.rabin import Rabin, _NumpyRabin

    chunker = parse_chunker(spec)
    try:
        if isinstance(chunker, Buzhash):
            return _NumpyBuzhash(), 32
        if isinstance(chunker, Rabin) and not chunker.whole_input:
            return _NumpyRabin(chunker.min_size, chunker.max_size, chunker.mask, sparse=False), 16
    except RuntimeError:  # no numpy
        return None
    return None


def runs_from_candidates(np: Any, cand: Any) -> Runs:
    """Sorted candidate ends as arithmetic runs (consecutive runs may share an end)."""
    if cand.size == 0:
        return []
    if cand.size == 1:
        return [(int(cand[0]), 1, 1)]
    d = np.diff(cand)
    brk = np.flatnonzero(d[1:] != d[:-1]) + 1
    first = np.concatenate(([0], brk))
    last = np.concatenate((brk, [d.size]))
    return list(zip(cand[first].tolist(), d[first].tolist(), (last - first + 1).tolist(), strict=True))


def scan_candidates(path: bytes, start: int, stop: int, chunker: str, max_runs: int,
                    source: RemoteSource | None = None, version: int = 0) -> Runs | None:
    """Candidate chunk ends ``e`` in ``[start, stop)`` (the window ending at ``e`` passes the
    chunker's mask test), or None when they need more than ``max_runs`` runs. ``source``,
    ``version``: as for :func:`hash_span`. The range is read ``SCAN_READ_BYTES`` at a time
    (each piece with the window before it), so a task's size does not set its memory."""
    found = _searcher(chunker)
    if found is None:
        return None
    search, window = found
    np = search.np
    name = path.decode("utf-8", "surrogateescape")
    runs: Runs = []
    with contextlib.ExitStack() as stack:
        fd = -1 if source is not None else stack.enter_context(open(path, "rb", buffering=0)).fileno()
        for a in range(start, stop, SCAN_READ_BYTES):
            b = min(stop, a + SCAN_READ_BYTES)
            base = max(0, a - window)
            lo = max(a, window) - base
            if lo >= b - base:
                continue
            data = source.read(name, base, b) if source is not None else os.pread(fd, b - base, base)
            if len(data) != b - base:
                raise FileChangedError(os.fsdecode(path), stop, base + len(data))
            cand = search.candidates(np.frombuffer(data, dtype=np.uint8), lo, b - base)
            del data
            runs.extend((e + base, d, n) for e, d, n in runs_from_candidates(np, cand))
            if len(runs) > max_runs:
                return None
    if source is not None:
        source.check_version(name, version)
    return runs


# -- coordinator side: pure planning and assembly ---------------------------------------------

class _Candidates:
    """Runs loaded in file order; ``first_at_least(x)`` answers from them (sans-I/O)."""

    def __init__(self) -> None:
        self.first = array("q")
        self.step = array("q")
        self.last = array("q")
        self.count = array("q")
        self.head = 0

    def extend(self, runs: Runs) -> None:
        for a, s, c in runs:
            self.first.append(a)
            self.step.append(s)
            self.count.append(c)
            self.last.append(a + s * (c - 1))

    def first_at_least(self, x: int) -> int | None:
        i = bisect_left(self.last, x, self.head)
        if i == len(self.last):
            return None
        self.head = i
        a, s = self.first[i], self.step[i]
        if x <= a:
            return a
        return a + -(-(x - a) // s) * s

    def compact(self) -> None:
        if self.head > 4096:
            for arr in (self.first, self.step, self.last, self.count):
                del arr[: self.head]
            self.head = 0


def replay_cuts(size: int, ranges: Iterable[tuple[int, Runs]], chunker: str) -> Iterator[int]:
    """Chunk ends of a ``size``-byte file from its candidates, by boxo's rules
    (parallel-import.md §3.3). ``ranges``: ``(stop, runs)`` per scanned range in file order,
    the ranges covering ``[0, size)``; they are consumed only as far as needed."""
    from ..chunker import parse_chunker
    from ..chunker.buzhash import BUZ_MAX, BUZ_MIN, Buzhash

    parsed = parse_chunker(chunker)
    buz = isinstance(parsed, Buzhash)
    lo_size, hi_size = (BUZ_MIN, BUZ_MAX) if buz else (parsed.min_size, parsed.max_size)  # type: ignore[attr-defined]
    cands = _Candidates()
    source = iter(ranges)
    covered = 0
    s = 0
    while s < size:
        need = min(s + hi_size + 1, size)
        while covered < need:
            got = next(source, None)
            if got is None:  # the caller stopped feeding (a range too dense to replay)
                return
            stop, runs = got
            cands.extend(runs)
            covered = stop
        if buz:
            if size - s < lo_size:
                cut = size
            else:
                b = min(size - s, hi_size)
                e = cands.first_at_least(s + lo_size)
                cut = e if e is not None and e <= s + b - 1 else s + b
        elif s + lo_size > size:
            cut = size
        else:
            e = cands.first_at_least(s + lo_size)
            if e is not None and e <= min(s + hi_size, size):
                cut = e
            else:
                cut = min(s + hi_size, size)
        yield cut
        s = cut
        cands.compact()


def plan_leaves(n_leaves: int, mean_leaf: float, resolved: ResolvedParams, task_bytes: int
                ) -> list[tuple[int, int, Shape]] | None:
    """Tasks ``(first leaf, end leaf, shape)`` for a file of ``n_leaves`` leaves, or None when
    it is small enough to be one whole-file task."""
    width = resolved.max_links
    if resolved.layout == "trickle":
        if n_leaves * mean_leaf < 2 * task_bytes or n_leaves <= width:
            return None
        tasks: list[tuple[int, int, Shape]] = []
        _trickle_children(tasks, 0, -1, n_leaves, width, mean_leaf, task_bytes)
        return tasks
    if n_leaves * mean_leaf <= task_bytes or n_leaves < 2:
        return None
    k, per = balanced_task(width, mean_leaf, task_bytes, n_leaves)
    return [(i, min(i + per, n_leaves), ("balanced", k)) for i in range(0, n_leaves, per)]


def balanced_task(width: int, mean_leaf: float, task_bytes: int, n_leaves: float = math.inf) -> tuple[int, int]:
    """``(k, leaves per task)``: whole level-k nodes of at most ``task_bytes`` (k = 0: leaves),
    as many per task as fit. Any choice gives the same root; this one only sets task sizes."""
    k = 0
    while width ** (k + 1) * mean_leaf <= task_bytes and width ** (k + 1) < n_leaves:
        k += 1
    return k, width**k * max(1, int(task_bytes // (width**k * mean_leaf)))


def _trickle_children(tasks: list[tuple[int, int, Shape]], first: int, depth: int, end: int, width: int,
                      mean_leaf: float, task_bytes: int) -> int:
    """Plan the children of a trickle node of ``depth`` (-1: the root) whose leaves start at
    ``first`` (at most ``end``); a child subtree larger than a task is planned as a ``node``
    entry followed by its own children. Returns the leaf after the node's last one."""
    i = min(first + width, end)
    tasks.append((first, i, ("leaves", 0)))
    d = 1
    while (depth < 0 or d < depth) and i < end:
        per = width * 5 ** (d - 1)
        for _ in range(LAYER_REPEAT):
            if i >= end:
                break
            stop = min(i + per, end)
            if d >= 2 and (stop - i) * mean_leaf > task_bytes:
                at = len(tasks)
                tasks.append((i, stop, ("node", 0)))
                _trickle_children(tasks, i, d, stop, width, mean_leaf, task_bytes)
                tasks[at] = (i, stop, ("node", _count_children(tasks, at + 1)))
            else:
                tasks.append((i, stop, ("trickle", d)))
            i = stop
        d += 1
    return i


def _count_children(tasks: list[tuple[int, int, Shape]], start: int) -> int:
    """Entries directly below the node planned at ``start - 1`` (its subtree ends the list)."""
    count, i = 0, start
    while i < len(tasks):
        count += 1
        i = _skip(tasks, i)
    return count


def _skip(tasks: Sequence[tuple[int, int, Shape]], i: int) -> int:
    """The index after entry ``i`` and, for a node, its whole subtree."""
    kind, n = tasks[i][2]
    i += 1
    if kind == "node":
        for _ in range(n):
            i = _skip(tasks, i)
    return i


def assemble(shapes: Sequence[Shape], results: Iterable[list[FileLink] | None], resolved: ResolvedParams,
             meta: Any) -> FileLink:
    """The file root from its tasks' results (consumed in order, streaming), by the importer's
    own layout code: memory is one partly filled node per level, not one link per task.
    ``results`` has None for ``node`` entries (no task)."""
    sink = NullSink()
    if resolved.layout == "trickle":
        items = zip(shapes, results, strict=True)

        def entry() -> list[FileLink]:
            shape, res = next(items)
            if shape[0] != "node":
                assert res is not None
                return res
            children = [link for _ in range(shape[1]) for link in entry()]
            return [encode_file_node(children, resolved.cid_builder, sink)]

        children = []
        for _ in range(_count_children([(0, 0, shape) for shape in shapes], 0)):
            children.extend(entry())
        return encode_file_node(children, resolved.cid_builder, sink, meta)
    return balanced_from_links((link for res in results if res for link in res), resolved.cid_builder, sink,
                               max_links=resolved.max_links, raw_leaves=resolved.raw_leaves, meta=meta)


def _drain(futures: list[Any]) -> Iterator[Any]:
    """Results in order, each future released once read (the coordinator keeps no result list)."""
    futures.reverse()
    while futures:
        future = futures.pop()
        yield None if future is None else future.result()


def _stat_key(st: os.stat_result) -> StatKey:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


# -- coordinator side: driving an executor ----------------------------------------------------

@dataclass(slots=True)
class _Split:
    path: bytes
    size: int
    version: int = 0
    tasks: list[tuple[Shape, Any]] = field(default_factory=list)
    scans: list[tuple[int, Any]] = field(default_factory=list)


class ParallelImporter:
    """Runs the file imports of a tree (or one file) on an executor; see the module docstring.

    Args:
        executor: ``submit(fn, *args)``.
        params: import parameters (only-hash: no blocks are kept).
        task_bytes: about how many file bytes one task reads.
        cache: an :class:`~.cache.ImportCache` consulted before planning and refreshed after.
        progress: called with the byte count of every finished task.
        source: the object store the files are in (paths are its paths, stats from
            :func:`~.remote.list_objects`; no cache), else the local file system.
    """

    def __init__(self, executor: Executor, params: ImportParams, *, task_bytes: int = DEFAULT_TASK_BYTES,
                 cache: ImportCache | None = None, progress: Callable[[int], None] | None = None,
                 source: RemoteSource | None = None) -> None:
        if source is not None and cache is not None:
            raise ConfigError("the import cache keys local files: it cannot be used with fsspec URLs")
        self.source = source
        self.executor = executor
        self.params = params
        self.resolved = params.resolve()
        self.task_bytes = max(1, task_bytes)
        self.cache = cache
        self.key = params_key(params) if cache is not None else ""
        self.progress = progress
        self.roots: dict[bytes, tuple[StatKey, FileLink]] = {}

    # -- planning ---------------------------------------------------------------------------
    def _splittable(self, size: int) -> bool:
        if size <= self.task_bytes:
            return False
        chunker = self.resolved.chunker
        if isinstance(chunker, FixedSize):
            return True
        # Scanning pays only if the file may have more leaves than one node holds.
        min_chunk = getattr(chunker, "min_size", 128 << 10)
        return size // max(1, min_chunk) + 1 > self.resolved.max_links and _searcher(self.params.chunker) is not None

    def run(self, files: Iterable[tuple[bytes, os.stat_result]]) -> dict[bytes, tuple[StatKey, FileLink]]:
        """Import ``files`` (regular files with their lstat); returns path → (stat key, root)."""
        batches: list[tuple[list[tuple[bytes, os.stat_result, int]], Any, int]] = []
        batch: list[tuple[bytes, os.stat_result, int]] = []
        batch_bytes = 0
        splits: list[tuple[_Split, os.stat_result, int]] = []

        def flush() -> None:
            nonlocal batch, batch_bytes
            if batch:
                batches.append((batch, self._submit_files([(p, st) for p, st, _ in batch]), batch_bytes))
                batch, batch_bytes = [], 0

        for path, st in files:
            started = time.time_ns()
            if self.cache is not None:
                hit = self.cache.lookup(self.key, path, st)
                if hit is not None:
                    self.roots[path] = (_stat_key(st), hit)
                    if self.progress is not None:
                        self.progress(hit.data_size)
                    continue
            if self._splittable(st.st_size):
                splits.append((self._submit_split(path, st), st, started))
                continue
            batch.append((path, st, started))
            batch_bytes += st.st_size
            if batch_bytes >= self.task_bytes or len(batch) >= MAX_BATCH_FILES:
                flush()
        flush()
        for split, st, started in splits:
            if split.scans:
                self._plan_cdc(split)
        for items, future, nbytes in batches:
            for (path, st, started), link in zip(items, future.result(), strict=True):
                if link is not None:
                    self._done(path, st, started, link)
            if self.progress is not None:
                self.progress(nbytes)
        for split, st, started in splits:
            self._done(split.path, st, started, self._finish_split(split))
        return self.roots

    def _submit_files(self, files: list[tuple[bytes, os.stat_result]]) -> Any:
        """One whole-file task for ``files`` (local paths, or objects with size and version)."""
        if self.source is None:
            return self.executor.submit(hash_files, [p for p, _ in files], self.params)
        return self.executor.submit(hash_objects, self.source, [(p, st.st_size, st.st_ino) for p, st in files],
                                    self.params)

    def _where(self, split: _Split) -> tuple[Any, ...]:
        """The trailing task arguments that say where a file is read: none for a local one."""
        return () if self.source is None else (self.source, split.version)

    def _submit_split(self, path: bytes, st: os.stat_result) -> _Split:
        size = st.st_size
        split = _Split(path, size, st.st_ino if self.source is not None else 0)
        chunker = self.resolved.chunker
        if isinstance(chunker, FixedSize):
            c = chunker.chunk_size
            plan = plan_leaves(-(-size // c), c, self.resolved, self.task_bytes)
            if plan is None:
                split.tasks.append((("leaves", -1), self._submit_files([(path, st)])))
                return split
            calls = [None if shape[0] == "node" else
                     (path, Span(i * c, min(size, j * c), chunk=c), shape, self.params, *self._where(split))
                     for i, j, shape in plan]
            futures = iter(self._submit_all(hash_span, [call for call in calls if call is not None]))
            split.tasks = [(shape, None if call is None else next(futures)) for (_, _, shape), call in zip(plan, calls)]
            return split
        step = self.task_bytes
        # Random data gives about one candidate per mask+1 bytes: allow 4x that, else the file
        # is too irregular to replay cheaply and becomes one sequential task.
        avg = getattr(chunker, "mask", (1 << 17) - 1) + 1
        max_runs = max(4096, 4 * step // avg)
        scans = [(path, a, min(size, a + step), self.params.chunker, max_runs, *self._where(split))
                 for a in range(0, size, step)]
        split.scans = [(call[2], future) for call, future in zip(scans, self._submit_all(scan_candidates, scans))]
        return split

    def _submit_all(self, fn: Callable[..., Any], calls: list[tuple[Any, ...]]) -> list[Any]:
        """One future per argument tuple: through ``submit_many`` when the executor has it."""
        many = getattr(self.executor, "submit_many", None)
        if many is not None and len(calls) > 1:
            return list(many(fn, calls))
        return [self.executor.submit(fn, *args) for args in calls]

    def _plan_cdc(self, split: _Split) -> None:
        scans, split.scans = split.scans, []
        dense = False

        def ranges() -> Iterator[tuple[int, Runs]]:
            nonlocal dense
            for stop, future in scans:
                runs = future.result()
                if runs is None:
                    dense = True
                    return
                yield stop, runs

        cutter = replay_cuts(split.size, ranges(), self.params.chunker)
        if self.resolved.layout != "trickle":
            last = self._stream_balanced(split, cutter)
            if dense or last != split.size:
                split.tasks = [(("leaves", -1), self._submit_files([(split.path, self._whole(split))]))]
            return
        cuts = array("q", cutter)
        if dense or (cuts and cuts[-1] != split.size):
            split.tasks.append((("leaves", -1), self._submit_files([(split.path, self._whole(split))])))
            return
        plan = plan_leaves(len(cuts), split.size / max(1, len(cuts)), self.resolved, self.task_bytes)
        if plan is None:
            split.tasks.append((("leaves", -1), self._submit_files([(split.path, self._whole(split))])))
            return
        for i, j, shape in plan:
            if shape[0] == "node":
                split.tasks.append((shape, None))
                continue
            span = Span(cuts[i - 1] if i else 0, cuts[j - 1], cuts=cuts[i:j].tobytes())
            split.tasks.append((shape, self.executor.submit(hash_span, split.path, span, shape, self.params,
                                                            *self._where(split))))

    def _whole(self, split: _Split) -> os.stat_result:
        """A stat carrying what a whole-file task needs of a split file (size, version)."""
        return os.stat_result((stat.S_IFREG, split.version, 0, 1, 0, 0, split.size, 0, 0, 0))

    def _stream_balanced(self, split: _Split, cutter: Iterator[int]) -> int:
        """Submit leaf tasks as the replay yields cuts (the coordinator never holds all cuts);
        returns the last cut. A file whose leaves fit one task becomes one k = 0 task."""
        chunker = self.resolved.chunker
        expected = getattr(chunker, "min_size", 128 << 10) + getattr(chunker, "mask", (1 << 17) - 1) + 1
        k, per = balanced_task(self.resolved.max_links, expected, self.task_bytes)
        pending = array("q")
        start = last = 0
        for cut in cutter:
            pending.append(cut)
            last = cut
            if len(pending) > per:  # a full task, and more leaves after it
                self._submit_span(split, Span(start, pending[per - 1], cuts=pending[:per].tobytes()), ("balanced", k))
                start = pending[per - 1]
                del pending[:per]
        if pending:
            # Alone, the leaves are handed back as leaves and the coordinator builds the root.
            shape: Shape = ("balanced", k if split.tasks else 0)
            self._submit_span(split, Span(start, pending[-1], cuts=pending.tobytes()), shape)
        return last

    def _submit_span(self, split: _Split, span: Span, shape: Shape) -> None:
        split.tasks.append((shape, self.executor.submit(hash_span, split.path, span, shape, self.params,
                                                        *self._where(split))))

    def _finish_split(self, split: _Split) -> FileLink | None:
        if split.tasks and split.tasks[0][0] == ("leaves", -1):
            link: FileLink | None = split.tasks[0][1].result()[0]
        else:
            local = split.path if self.source is None else None
            meta = metadata_for(self.params, local) if self.params.has_metadata else None  # type: ignore[arg-type]
            shapes = [shape for shape, _ in split.tasks]
            futures, split.tasks = [future for _, future in split.tasks], []
            link = assemble(shapes, _drain(futures), self.resolved, meta)
        if self.progress is not None:
            self.progress(split.size)
        return link

    def _done(self, path: bytes, st: os.stat_result, started: int, link: FileLink | None) -> None:
        if link is None:
            return
        self.roots[path] = (_stat_key(st), link)
        if self.cache is not None:
            try:
                after = os.lstat(path)
            except OSError:
                return
            self.cache.record(self.key, path, st, after, link, started)

    def file_roots(self, path: bytes, st: os.stat_result) -> FileLink | None:
        """The tree importer's hook: the computed root if the file still has the planned stat."""
        got = self.roots.get(path)
        if got is None or got[0] != _stat_key(st):
            return None
        return got[1]


def list_files(paths: Iterable[bytes], params: ImportParams,
               exclude: Callable[[bytes], bool] | None = None) -> Iterator[tuple[bytes, os.stat_result]]:
    """Regular files under ``paths`` (lstat, no symlinks followed; hidden ones only with
    ``params.hidden``), in walk order. Cheap: the tree importer walks again to build directories."""
    stack = list(reversed([os.fsencode(p) for p in paths]))
    while stack:
        p = stack.pop()
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            yield p, st
        elif stat.S_ISDIR(st.st_mode):
            try:
                with os.scandir(p) as it:
                    names = sorted(e.name for e in it if (params.hidden or not e.name.startswith(b"."))
                                   and (exclude is None or not exclude(e.name)))
            except OSError:
                continue
            stack.extend(os.path.join(p, n) for n in reversed(names))

