"""``car pack`` split into tasks (import batches, CAR writes) whose output is byte-identical to
:func:`pyipld.filecoin.pack.pack`. Executor-agnostic: anything with ``submit(fn, *args)``
returning a future (a ``dask.distributed.Client``, a ``concurrent.futures`` pool) runs the
tasks; :func:`pyipld.distributed.pack_dask` is the Dask glue.

Theory of operation:

* The walk, the manifest checks and the resume point are the single-process packer's own
  (:class:`~pyipld.filecoin.pack._Packer`); so are the placement rules and the CAR writer.
* **Import tasks** (:func:`import_batch`): a batch of consecutive files (about ``task_bytes``,
  at most 256 files; a large file alone) is imported by a worker into one spool in
  ``OUTDIR/.pack-tmp`` (blocks + a CID → offset index file), and each file's item
  decomposition is computed there (:meth:`_FileDag.items`, a pure function of the file's DAG
  and its room, which the coordinator computes from names alone). Results are small: per
  file its root, size and, per item, (root CID, planned size, offset, length, Tsize) or the
  spine's CIDs.
* **A large file** (fixed-size chunks, balanced layout, over ``split_bytes``) is
  imported by **span tasks** (:func:`import_span`, at most ``MAX_SPANS`` per file): each keeps
  the leaves of its byte range and their level-k nodes in a spool of its own and returns the
  nodes' (CID, Tsize, bytes), as :func:`pyipld.unixfs.parallel.hash_span` does; the coordinator
  builds the upper nodes with the importer's ``balanced_from_links`` (into a small spool) and
  computes the file's items reading interior nodes from all its spools. Other layouts and
  chunkers: the whole file is one import task.
* **The coordinator** takes the results in file order and places the items exactly as the
  single-process packer does. When a CAR is full it builds the CAR's directory blocks
  (small, from names and item roots) and submits a **write task** (:func:`write_car_task`):
  spool paths and item roots in, the CAR written under a temporary name and renamed by the
  worker, its CommP computed from the same bytes on the same worker, the manifest entry out.
* Writes finish in any order; the manifest is rewritten (atomically) only for the finished
  prefix of CARs, each time with the resume point and file entries the single-process run
  had at that CAR, so an interrupted run — distributed or not — resumes from it and a CAR
  written past that prefix is simply written again.
* A spool is deleted when every CAR holding its files' items is written. Imports run ahead
  of placement only while the spooled-but-unwritten bytes stay under ``max_spool_bytes``
  (then the coordinator waits for the oldest write), so disk use stays bounded.

Workers see ``OUTDIR`` and the input files at the same paths as the coordinator (one machine
or a shared file system). A task that is run twice (a worker died) writes another spool or the
same CAR bytes again: results are the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from .._atomic import made_directory
from ..chunker.fixed import FixedSize
from ..cid import CID
from ..errors import ConfigError, NotFoundError
from ..unixfs.importer import import_file, leaf_maker, metadata_for
from ..unixfs.layout_balanced import balanced_from_links, group_rounds
from ..unixfs.nodes import FileLink
from ..unixfs.parallel import Span, _span_groups, plan_leaves
from ..unixfs.params import ImportParams, import_params
from .commp import check_piece_size
from .pack import (
    _DIR_FIXED,
    _HEADER_FIXED,
    PackResult,
    _BlockList,
    _check_resume_item,
    _FileDag,
    _Input,
    _Item,
    _Packer,
    _resume_manifest,
    _Spool,
    _walk,
    write_car,
)

__all__ = ["DEFAULT_TASK_BYTES", "MAX_BATCH_FILES", "MAX_SPANS", "import_batch", "import_span", "pack_parallel",
           "write_car_task"]

DEFAULT_TASK_BYTES: Final = 64 << 20
MAX_BATCH_FILES: Final = 256
MAX_SPANS: Final = 64  # pieces of one large file: bounds the spools (open files) a CAR writer reads

# One file's result: (root CID, file bytes, items); an item is
# (index, root CID or None, planned size, offset, length, Tsize of its root, spine CIDs or None).
ItemInfo = tuple[int, bytes | None, int, int, int, int, list[bytes] | None]
FileInfo = tuple[bytes, int, list[ItemInfo]]


# -- worker side ------------------------------------------------------------------------------

def import_batch(tmpdir: str, files: Sequence[tuple[int, str, int, int, int]],
                 params: ImportParams) -> tuple[str, list[FileInfo]]:
    """Import ``files`` — ``(index, path, size, mtime_ns, room)`` each — into one spool in
    ``tmpdir``; returns the spool's path and each file's root, size and items."""
    spool = _Spool(Path(tmpdir))
    try:
        out: list[FileInfo] = []
        for index, path, size, mtime_ns, room in files:
            st = os.stat(path)
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                raise ConfigError(f"{path} changed while packing")
            result = import_file(path, params, spool, jobs=1)
            dag = _FileDag(spool, result.cid.bytes)
            items = [(it.index, it.root, it.size, it.offset, it.length,
                      dag.tsize(it.root) if it.root is not None else 0, it.blocks)
                     for it in dag.items(index, room)]
            out.append((result.cid.bytes, result.size, items))
        spool.save_index()
        spool.release()
    except BaseException:
        spool.close()
        raise
    return spool.path, out


def import_span(tmpdir: str, path: str, size: int, mtime_ns: int, start: int, stop: int, rounds: int,
                params: ImportParams) -> tuple[str, list[tuple[bytes, int, int]]]:
    """The leaves of ``[start, stop)`` of a large fixed-size-chunked file (balanced layout) and
    their level-``rounds`` nodes, into one spool in ``tmpdir``; returns the spool's path and
    the nodes' ``(CID, Tsize, bytes)`` — what :func:`pyipld.unixfs.parallel.hash_span`
    returns, with the blocks kept."""
    st = os.stat(path)
    if st.st_size != size or st.st_mtime_ns != mtime_ns:
        raise ConfigError(f"{path} changed while packing")
    resolved = params.resolve()
    chunk = resolved.chunker.max_chunk_size
    leaves = leaf_maker(resolved)
    spool = _Spool(Path(tmpdir))
    try:
        span = Span(start, stop, chunk=chunk)
        links = []
        for group in _span_groups(os.fsencode(path), span):
            for data, (cid, block, block_len) in zip(group, leaves.leaves(group, True), strict=True):  # in pairs
                assert block is not None
                spool.put(cid, block)
                links.append(FileLink(cid, block_len, len(data)))
        nodes = group_rounds(links, rounds, resolved.cid_builder, spool, max_links=resolved.max_links)
        spool.save_index()
        spool.release()
    except BaseException:
        spool.close()
        raise
    return spool.path, [(n.cid, n.tsize, n.data_size) for n in nodes]


class _MultiSpool:
    """Several spools of one file, read as one (``get``/``length`` by CID)."""

    def __init__(self, paths: Sequence[str]) -> None:
        self.spools = [_Spool.open(p) for p in paths]
        self._of: dict[bytes, _Spool] = {}
        for sp in self.spools:
            self._of.update(dict.fromkeys(sp._index, sp))

    def get(self, cid: bytes) -> bytes:
        sp = self._of.get(cid)
        if sp is None:
            raise NotFoundError(f"block {CID.from_bytes(cid)} is not in the pack spools")
        return sp.get(cid)

    def length(self, cid: bytes) -> int:
        return self._of[cid].length(cid)

    def release(self) -> None:
        for sp in self.spools:
            sp.release()


def write_car_task(outdir: str, index: int, root: bytes, dir_blocks: list[tuple[bytes, bytes]],
                   parts: Sequence[tuple[tuple[str, ...], bytes, bytes | None, list[bytes] | None]],
                   capacity: int) -> dict[str, Any]:
    """Write CAR ``index`` from spools: ``parts`` are ``(spool paths, file root, item root or
    None, spine CIDs or None)`` in CAR order. Returns the CAR's manifest entry."""
    spools: dict[tuple[str, ...], _MultiSpool] = {}
    try:
        def blocks() -> Iterator[tuple[bytes, bytes]]:
            for paths, file_root, item_root, spine in parts:
                if paths not in spools:
                    spools[paths] = _MultiSpool(paths)
                dag = _FileDag(spools[paths], file_root)  # type: ignore[arg-type]
                yield from dag.iter_blocks(_Item(0, 0, item_root, 0, blocks=spine))

        dag_roots = [r for _, _, r, _ in parts if r is not None]
        return write_car(Path(outdir), index, root, dir_blocks, dag_roots, blocks(), capacity)
    finally:
        for s in spools.values():
            s.release()


# -- coordinator side -------------------------------------------------------------------------

class _PlannedDag:
    """What placement and the directory builder need of a file imported elsewhere."""

    def __init__(self, root: bytes, spools: list[tuple[str, int, int]], tsizes: dict[bytes, int]) -> None:
        self.root = root
        self.spools = spools  # (path, first file byte, end) per spool; (path, 0, 0) holds upper nodes
        self._tsizes = tsizes

    def tsize(self, cid: bytes) -> int:
        return self._tsizes[cid]

    def spools_for(self, item: _Item) -> tuple[str, ...]:
        """The spools holding an item's blocks: those of the spans it overlaps, and the upper
        nodes' (all of them for a spine item)."""
        if item.root is None or len(self.spools) == 1:
            return tuple(p for p, _, _ in self.spools)
        a, b = item.offset, item.offset + item.length
        return tuple(p for p, lo, hi in self.spools if lo == hi == 0 or (lo < b and a < hi) or lo == a)


class _Batch:
    """One import task (a batch of files), or the span tasks of one large file (``spans``)."""

    def __init__(self, files: list[int], nbytes: int, future: Any,
                 spans: list[tuple[int, int, Any]] | None = None) -> None:
        self.files = files
        self.nbytes = nbytes
        self.future = future
        self.spans = spans
        self.spools: list[str] = []
        self.last_car = -1  # the last CAR holding one of its items
        self.placed = False  # every item of its files is placed

    @property
    def futures(self) -> list[Any]:
        return [f for f in [self.future, *(f for _, _, f in self.spans or ())] if f is not None]


class _Write:
    def __init__(self, index: int, future: Any, resume: tuple[int, int], files: list[dict[str, Any]]) -> None:
        self.index = index
        self.future = future
        self.resume = resume
        self.files = files  # the manifest's file entries as of this CAR (single-process order)


class _ParallelPacker(_Packer):
    def __init__(self, outdir: Path, target_size: int, params: ImportParams, executor: Any, *,
                 task_bytes: int, max_spool_bytes: int, split_bytes: int,
                 on_car: Callable[[dict[str, Any]], None] | None,
                 progress: Callable[[int], None] | None) -> None:
        super().__init__(outdir, target_size, params, 1, on_car, progress)
        self.executor = executor
        self.task_bytes = task_bytes
        self.max_spool_bytes = max_spool_bytes
        self.split_bytes = split_bytes
        self.next_car = 0
        self.writes: deque[_Write] = deque()
        self.batches: deque[_Batch] = deque()  # submitted, spool not yet deleted
        self.batch_of: dict[int, _Batch] = {}
        self.spooled = 0
        self.run_dir = ""
        self.resolved = params.resolve()

    def car_index(self) -> int:
        return self.next_car

    def pack_all(self, inputs: list[_Input], start_file: int, start_item: int) -> None:
        self.next_car = len(self.cars)
        self.run_dir = str(self.tmp / uuid.uuid4().hex)  # a late task of an older run cannot mix in
        os.mkdir(self.run_dir)
        if self.split_bytes < 0:  # default: a file of over two tasks and a quarter of the input
            total = sum(inp.size for inp in inputs[start_file:])
            self.split_bytes = max(2 * self.task_bytes, total // 4)
        plan = list(self._plan_batches(inputs, start_file))
        submitted = 0
        pending: deque[_Batch] = deque()  # submitted, results not yet placed
        while submitted < len(plan) or pending:
            # Submit ahead while the spooled bytes allow (always keep one import going).
            while submitted < len(plan) and (self.spooled < self.max_spool_bytes or not pending):
                if self.spooled >= self.max_spool_bytes and self.writes:
                    self._finish_oldest_write()
                    continue
                files, nbytes, spans = plan[submitted]
                if spans is not None:
                    inp = inputs[files[0]]
                    batch = _Batch(files, nbytes, None, [
                        (a, b, self.executor.submit(import_span, self.run_dir, inp.path, inp.size, inp.mtime_ns,
                                                    a, b, rounds, self.params)) for a, b, rounds in spans])
                else:
                    args = [(i, inputs[i].path, inputs[i].size, inputs[i].mtime_ns, self.room(i, inputs[i]))
                            for i in files]
                    batch = _Batch(files, nbytes, self.executor.submit(import_batch, self.run_dir, args, self.params))
                for i in files:
                    self.batch_of[i] = batch
                pending.append(batch)
                self.batches.append(batch)
                self.spooled += nbytes
                submitted += 1
            batch = pending.popleft()
            if batch.spans is not None:
                i = batch.files[0]
                info, spools = self._assemble(i, inputs[i], batch)
                self._place_file(i, inputs[i], info, spools, start_item if i == start_file else 0, counted=True)
            else:
                spool, results = batch.future.result()
                batch.future = None  # drop it: Dask must not recompute a finished import
                batch.spools = [spool]
                for i, info in zip(batch.files, results, strict=True):
                    self._place_file(i, inputs[i], info, [(spool, 0, 0)], start_item if i == start_file else 0)
            batch.placed = True
            self._finish_done_writes()
        if self.current:
            self.flush(resume=(len(inputs), 0))
        while self.writes:
            self._finish_oldest_write()

    def room(self, index: int, inp: _Input) -> int:
        return self.capacity - _DIR_FIXED - self.dir_cost(index, inp.name)

    def _plan_batches(self, inputs: list[_Input], start: int
                      ) -> Iterator[tuple[list[int], int, list[tuple[int, int, int]] | None]]:
        files: list[int] = []
        nbytes = 0
        for i in range(start, len(inputs)):
            size = inputs[i].size
            spans = self._spans(size)
            if files and (spans is not None or nbytes + size > self.task_bytes or len(files) >= MAX_BATCH_FILES):
                yield files, nbytes, None
                files, nbytes = [], 0
            if spans is not None:
                yield [i], size, spans
                continue
            files.append(i)
            nbytes += size
        if files:
            yield files, nbytes, None

    def _spans(self, size: int) -> list[tuple[int, int, int]] | None:
        """Byte ranges ``(start, stop, rounds)`` of a file imported in parallel pieces (fixed-size
        chunks, balanced layout, more than two tasks' worth), or None: one task imports it.
        At most ``MAX_SPANS`` pieces: a CAR writer opens the spools its items overlap."""
        resolved = self.resolved
        chunker = resolved.chunker
        if size <= self.split_bytes or resolved.layout != "balanced" or not isinstance(chunker, FixedSize):
            return None
        c = chunker.chunk_size
        plan = plan_leaves(-(-size // c), c, resolved, max(self.task_bytes, size // MAX_SPANS))
        if plan is None or len(plan) < 2:
            return None
        return [(i * c, min(size, j * c), shape[1]) for i, j, shape in plan]

    def _assemble(self, index: int, inp: _Input, batch: _Batch) -> tuple[FileInfo, list[tuple[str, int, int]]]:
        """A large file's root from its spans' nodes (the importer's own balanced layout code,
        upper nodes into a spool of their own), then its items, as one process computes them."""
        assert batch.spans is not None
        spools: list[tuple[str, int, int]] = []
        resolved = self.resolved

        def links() -> Iterator[FileLink]:
            assert batch.spans is not None
            for k, (a, b, future) in enumerate(batch.spans):
                path, nodes = future.result()
                batch.spans[k] = (a, b, None)
                if self.progress is not None:  # a large file's bar moves span by span
                    self.progress(b - a)
                spools.append((path, a, b))
                batch.spools.append(path)
                for cid, tsize, nbytes in nodes:
                    yield FileLink(cid, tsize, nbytes)

        upper = _Spool(Path(self.run_dir))
        batch.spools.append(upper.path)
        try:
            meta = metadata_for(self.params, inp.path) if self.params.has_metadata else None
            root = balanced_from_links(links(), resolved.cid_builder, upper, max_links=resolved.max_links,
                                       raw_leaves=resolved.raw_leaves, meta=meta)
            upper.save_index()
        finally:
            upper.release()
        spools.insert(0, (upper.path, 0, 0))
        multi = _MultiSpool([p for p, _, _ in spools])
        try:
            dag = _FileDag(multi, root.cid)  # type: ignore[arg-type]
            items: list[ItemInfo] = [(it.index, it.root, it.size, it.offset, it.length,
                                      dag.tsize(it.root) if it.root is not None else 0, it.blocks)
                                     for it in dag.items(index, self.room(index, inp))]
        finally:
            multi.release()
        return (root.cid, root.data_size, items), spools

    def _place_file(self, index: int, inp: _Input, info: FileInfo, spools: list[tuple[str, int, int]],
                    first_item: int, *, counted: bool = False) -> None:
        root, size, items = info
        self.imported += 1
        self.imported_bytes += size
        if self.progress is not None and not counted:
            self.progress(size)
        if first_item == 0:
            doc: dict[str, Any] = {"path": inp.name, "size": size, "root": str(CID.from_bytes(root)),
                                   "parts": [], "spine_car": None}
            self.files.append(doc)
        else:
            doc = self.files[index]
            if doc["root"] != str(CID.from_bytes(root)):
                raise ConfigError(f"{inp.path} changed since the interrupted run")
            _check_resume_item(self.outdir, inp.name, first_item, len(items))
        dag = _PlannedDag(root, spools, {r: t for _, r, _, _, _, t, _ in items if r is not None})
        for k, item_root, planned, offset, length, _, spine in items[first_item:]:
            item = _Item(index, k, item_root, planned, blocks=spine, offset=offset, length=length)
            self.place(dag, item, doc)  # type: ignore[arg-type]
            self.batch_of[index].last_car = self.next_car

    def flush(self, resume: tuple[int, int]) -> None:
        index = self.next_car
        dir_blocks = _BlockList()
        root = self.build_root(dir_blocks)
        parts = [(dag.spools_for(item), dag.root, item.root, item.blocks if item.root is None else None)  # type: ignore[attr-defined]
                 for dag, item in self.current]
        future = self.executor.submit(write_car_task, str(self.outdir), index, root, dir_blocks.blocks, parts,
                                      self.capacity)
        # The file entries the single-process manifest holds after this CAR: every file up to the
        # resume point, the last one as it is now (later CARs add parts to it).
        upto = self.files[: resume[0] + 1]
        if upto and resume[0] < len(self.files):
            last = dict(upto[-1])
            last["parts"] = list(last["parts"])
            upto[-1] = last
        self.writes.append(_Write(index, future, resume, upto))
        self.next_car += 1
        self.current = []
        self.planned = _HEADER_FIXED + _DIR_FIXED

    def abandon(self, *, wait: bool) -> None:
        """After an error: cancel the imports, and let the CAR writes already submitted end
        (``wait``) so that nothing is written into OUTDIR once :func:`pack_parallel` has
        returned. Their CARs are not in the manifest; a re-run writes them again."""
        for batch in self.batches:
            for future in batch.futures:
                with contextlib.suppress(Exception):
                    future.cancel()
        for write in self.writes:
            if write.future is None:
                continue
            if wait:
                with contextlib.suppress(Exception):
                    write.future.result()
            else:
                with contextlib.suppress(Exception):
                    write.future.cancel()
        self.writes.clear()

    def _finish_done_writes(self) -> None:
        while self.writes and self.writes[0].future.done():
            self._finish_oldest_write()

    def _finish_oldest_write(self) -> None:
        write = self.writes.popleft()
        entry = write.future.result()
        write.future = None
        self.cars.append(entry)
        self.written += 1
        self.save(write.resume, complete=False, files=write.files)
        # Spools whose files are all placed and whose CARs are all written can go.
        while self.batches and self.batches[0].placed and self.batches[0].last_car <= write.index:
            done = self.batches.popleft()
            self.spooled -= done.nbytes
            for i in done.files:
                self.batch_of.pop(i, None)
            for spool in done.spools:
                for name in (spool, spool + ".idx"):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name)
        if self.on_car is not None:
            self.on_car(entry)


def pack_parallel(
    paths: Sequence[str | os.PathLike[str]],
    outdir: str | os.PathLike[str],
    executor: Any,
    *,
    target_size: int,
    params: ImportParams | None = None,
    task_bytes: int = DEFAULT_TASK_BYTES,
    max_spool_bytes: int | None = None,
    split_bytes: int | None = None,
    on_car: Callable[[dict[str, Any]], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> PackResult:
    """:func:`pyipld.filecoin.pack.pack` with file imports and CAR writes (with CommP) run as
    tasks on ``executor``; the manifest and every CAR are byte-identical, and either kind of run
    resumes the other's interrupted pack.

    Args:
        executor: ``submit(fn, *args) -> future`` (the futures' ``result()`` and ``done()`` are used).
        task_bytes: about how many input bytes one import task reads (a larger file is one task).
        max_spool_bytes: imported-but-unwritten bytes allowed in ``OUTDIR/.pack-tmp`` (default:
            four CARs' capacity or eight tasks, whichever is larger).
        split_bytes: files larger than this (fixed-size chunks, balanced layout) are imported
            in span tasks (default: larger than two tasks and than a quarter of the input — with
            other files to import in parallel, one task per file keeps the workers busier).
        on_car, progress: as for :func:`~pyipld.filecoin.pack.pack` (``progress`` advances by a
            file's bytes when its import task's result is placed, by a span's for a split file).
    """
    check_piece_size(target_size)
    params = import_params(params)
    params.resolve()
    if task_bytes < 1:
        raise ConfigError(f"task_bytes must be positive, got {task_bytes}")
    out = Path(outdir)
    with made_directory(out):
        inputs, skipped, empty = _walk(paths, out)
        spool_limit = max_spool_bytes if max_spool_bytes is not None else max(4 * target_size, 8 * task_bytes)
        packer = _ParallelPacker(out, target_size, params, executor, task_bytes=task_bytes,
                                 max_spool_bytes=spool_limit, split_bytes=-1 if split_bytes is None else split_bytes,
                                 on_car=on_car, progress=progress)
        previous = _resume_manifest(out, None)
        before = len(previous["cars"]) if previous is not None else 0
        start = packer.start(inputs, skipped, empty)
        if start is not None:
            packer.tmp.mkdir(exist_ok=True)
            try:
                packer.pack_all(inputs, *start)
                packer.save(None, complete=True)
            except BaseException as exc:
                packer.abandon(wait=not isinstance(exc, KeyboardInterrupt))
                raise
            finally:
                shutil.rmtree(packer.tmp, ignore_errors=True)
    return PackResult(str(out), packer.doc, packer.written, before, packer.imported, packer.imported_bytes)

