"""The file importer: the one place that wires source → chunker → leaves → layout → sink.

``import_file`` gives, for any file or stream, the root CID ``ipfs add`` prints
with the same parameters.

Speed (benchmarks/README.md): for ``size-N`` chunkers the source is cut
straight into chunks — a regular file is read ~1 MiB at a time and chunks are
views of each read (memory-mapped instead with ``PYIPLD_MMAP=1``: a mapping
SIGBUSes if the file is truncated, so reading is the default), a stream is read
one chunk per ``read`` — and
only-hash imports never assemble leaf blocks (:meth:`LeafMaker.leaf`; with ``jobs`` > 1 they
hash each span of a regular file from a guarded mapping: :mod:`._fileread`). Leaves
can be hashed on worker threads (``jobs``): the hashing releases the GIL on large
buffers, chunks go to the pool in batches of about 1 MiB, results are consumed
and stored in order on the calling thread, and at most ``2 × jobs`` batches are
in flight, so memory stays bounded. A regular file must keep its size until
it is read to the end (:class:`~pyipld.errors.FileChangedError` otherwise).
"""

from __future__ import annotations

import contextlib
import errno
import io
import math
import mmap
import os
import stat
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from .._io import read_exact, use_mmap
from ..blockstore import BlockSink, NullSink, check_sink, file_sink
from ..chunker import BytesLike, Chunker, iter_reads
from ..chunker.fixed import FixedSize
from ..cid import CID
from ..errors import ConfigError, FileChangedError
from ._fileread import FileChunks, Hashed, hash_batch
from .data import DataType, Mtime
from .layout_balanced import balanced_from_links, split_single
from .layout_trickle import trickle_from_links
from .nodes import ChunkGroups, FileLink, LeafMaker, Metadata, grouped_leaf_links, leaf_links
from .params import ImportParams, ResolvedParams, import_params

__all__ = [
    "FileSource",
    "ImportResult",
    "build_file",
    "default_jobs",
    "import_bytes",
    "import_file",
    "iter_chunks",
    "iter_file_chunks",
    "leaf_maker",
    "metadata_for",
]

FileSource = str | os.PathLike[str] | BinaryIO | bytes | bytearray | memoryview | Iterable[BytesLike]
ProgressCallback = Callable[[int], None]

READ_SIZE: Final = 1 << 20  # reads for content-defined chunkers
TASK_BYTES: Final = 1 << 20  # chunk bytes per thread-pool task: amortizes ~20 µs of task overhead
MIN_THREADED_CHUNK: Final = 16 << 10  # hashlib keeps the GIL below 2 KiB; tiny chunks are not worth a pool
MIN_THREADED_BYTES: Final = 4 << 20  # known-smaller inputs are hashed on the calling thread
MMAP_MIN_BYTES: Final = 1 << 20  # smaller files are read: a mapping costs more than it saves
MMAP_WINDOW_BYTES: Final = 8 << 20  # file bytes mapped at a time
MMAP_MAX_WINDOW_BYTES: Final = 64 << 20  # chunk sizes whose lcm with the page size exceeds this are read
# Regular files are read ~1 MiB at a time (size-N: a multiple of the chunk size, cut into views of
# the read). Measured against mmap on a 128 MiB file: 1 MiB reads as fast for buzhash, 4-64 MiB slower
# (fresh large buffers fault in and fall out of cache); benchmarks/README.md.
FILE_READ_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The root of an imported file.

    Attributes:
        cid: the root CID (what ``ipfs add`` prints).
        size: file bytes imported.
        tsize: cumulative DAG size (what a parent link's Tsize would be).
    """

    cid: CID
    size: int
    tsize: int


def default_jobs() -> int:
    """Worker threads for leaf hashing: one per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def check_jobs(jobs: int | None) -> None:
    """Refuse a negative thread count (0 or None mean every core)."""
    if jobs is not None and jobs < 0:
        raise ConfigError(f"jobs must be at least 1 (or 0 for every core), got {jobs}")


def _threaded_leaf_links(
    chunks: Iterable[BytesLike], leaves: LeafMaker, sink: BlockSink, jobs: int, chunk_size: int
) -> Iterator[FileLink]:
    """:func:`leaf_links` with the hashing on ``jobs`` threads; same links, same order."""
    keep = not isinstance(sink, NullSink)
    put_parts = getattr(sink, "put_parts", None) if keep else None
    parts = put_parts is not None
    per_task = max(1, TASK_BYTES // max(chunk_size, 1))
    window: deque[Future[list[Hashed]]] = deque()

    def drain() -> Iterator[FileLink]:
        for cid, pieces, block_len, size in window.popleft().result():
            if keep:
                assert pieces is not None
                if put_parts is not None:
                    put_parts(cid, pieces)
                else:
                    sink.put(cid, pieces[0])  # type: ignore[arg-type]  # leaf() blocks are bytes
            yield FileLink(cid, block_len, size)

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pyipld-hash") as pool:
        try:
            batch: list[BytesLike] = []
            for chunk in chunks:
                batch.append(chunk)
                if len(batch) == per_task:
                    window.append(pool.submit(hash_batch, leaves, batch, keep, parts))
                    batch = []
                    if len(window) >= 2 * jobs:
                        yield from drain()
            if batch:
                window.append(pool.submit(hash_batch, leaves, batch, keep, parts))
            while window:
                yield from drain()
        finally:
            for future in window:
                future.cancel()


def leaf_maker(resolved: ResolvedParams) -> LeafMaker:
    """The leaf encoder ``resolved`` asks for (trickle dag-pb leaves are UnixFS Raw)."""
    leaf_type = DataType.RAW if resolved.layout == "trickle" else DataType.FILE
    return LeafMaker(resolved.cid_builder, raw=resolved.raw_leaves, leaf_type=leaf_type)


def build_file(
    chunks: Iterable[BytesLike],
    resolved: ResolvedParams,
    sink: BlockSink,
    *,
    meta: Metadata | None = None,
    jobs: int = 1,
) -> FileLink:
    """Build one file's DAG from its chunks into ``sink``; returns the root link."""
    builder = resolved.cid_builder
    trickle = resolved.layout == "trickle"
    leaves = leaf_maker(resolved)
    whole = isinstance(chunks, FileChunks) and chunks.size > resolved.chunker.max_chunk_size  # not one chunk
    if meta and not trickle and not whole:
        only, chunks = split_single(chunks)
        if only is not None:  # a balanced one-chunk root is its leaf, re-encoded with the metadata
            cid, block = leaves.encode(only, meta)
            sink.put(cid, block)
            return FileLink(cid, len(block), len(only))
    chunk_size = resolved.chunker.max_chunk_size
    if isinstance(chunks, ChunkGroups):
        links = grouped_leaf_links(chunks.groups, leaves, sink)
    elif jobs > 1 and chunk_size >= MIN_THREADED_CHUNK and isinstance(chunks, FileChunks) and not chunks.started:
        links = chunks.leaf_links(leaves, sink, jobs)  # read and hashed on the threads
    elif jobs > 1 and chunk_size >= MIN_THREADED_CHUNK:
        links = _threaded_leaf_links(chunks, leaves, sink, jobs, chunk_size)
    elif isinstance(chunks, FileChunks) and not chunks.started:
        links = grouped_leaf_links(chunks.groups(), leaves, sink)  # a read's chunks hashed two at a time
    else:
        links = leaf_links(chunks, leaves, sink)
    if trickle:
        return trickle_from_links(links, builder, sink, max_links=resolved.max_links, meta=meta)
    return balanced_from_links(links, builder, sink, max_links=resolved.max_links,
                               raw_leaves=resolved.raw_leaves, meta=meta)


def _read_full(f: BinaryIO, size: int) -> Iterator[bytes]:
    """Chunks of ``size`` from a stream, short reads retried (io.ReadFull)."""
    while chunk := read_exact(f, size):
        yield chunk


def _mmap_window(chunk_size: int) -> int:
    """Bytes per mapping window: a multiple of the chunk and page sizes near MMAP_WINDOW_BYTES (0: none)."""
    unit = math.lcm(chunk_size, mmap.ALLOCATIONGRANULARITY)
    if unit > MMAP_MAX_WINDOW_BYTES:
        return 0
    return unit * max(1, MMAP_WINDOW_BYTES // unit)


def _mmap_chunks(fd: int, length: int, size: int, window: int, name: str) -> Iterator[memoryview]:
    """Views of ``size`` bytes into read-only mappings of the first ``length`` bytes of ``fd``.

    The file is mapped ``window`` bytes at a time and a window is unmapped as soon
    as its last chunk view is dropped, so the process never maps more than a few
    windows at once. Pages are faulted in lazily by whichever thread hashes them
    (measured: ~1.5 % faster than MAP_POPULATE on one thread, and with threads the
    mapping work is spread over the hashing threads instead of the caller).
    """
    flags = mmap.MAP_SHARED
    for base in range(0, length, window):
        span = min(window, length - base)
        # Touching a mapped page past EOF kills the process (SIGBUS); checking the size
        # per window turns a truncation into an error, except in a few-ms race.
        if os.fstat(fd).st_size < base + span:
            raise FileChangedError(name, length, os.fstat(fd).st_size)
        mapping = mmap.mmap(fd, span, flags=flags, prot=mmap.PROT_READ, offset=base)
        view = memoryview(mapping)
        del mapping  # unmapped with its last view
        for offset in range(0, span, size):
            yield view[offset : offset + size]
        view.release()


def _checked_reads(f: BinaryIO, fd: int, size: int, read_size: int, name: str) -> Iterator[bytes]:
    """Exactly ``size`` bytes of a regular file in reads of ``read_size`` (the last shorter).

    Raises:
        FileChangedError: EOF before ``size`` bytes (it shrank), or a size other than
            ``size`` once they are read (it grew, or shrank at the very end).
    """
    done = 0
    while done < size:
        want = min(read_size, size - done)
        data = read_exact(f, want)
        if len(data) < want:  # EOF early: the file shrank
            raise FileChangedError(name, size, os.fstat(fd).st_size)
        done += want
        yield data
    _check_unchanged(fd, size, name)


def _check_unchanged(fd: int, size: int, name: str) -> None:
    now = os.fstat(fd).st_size
    if now != size:
        raise FileChangedError(name, size, now)


def _fixed_views(reads: Iterable[bytes], size: int) -> Iterator[memoryview]:
    """``size``-byte views of each read (reads are multiples of ``size`` but the last)."""
    for data in reads:
        view = memoryview(data)
        for offset in range(0, len(view), size):
            yield view[offset : offset + size]


def iter_file_chunks(f: BinaryIO, chunker: Chunker, name: str | bytes | os.PathLike[str]) -> Iterator[BytesLike]:
    """The chunks of the open file ``f`` (``name`` is only for errors).

    A regular file is imported as it was when opened: it is read (not mapped, unless
    ``PYIPLD_MMAP=1``) in large reads whose bytes are shared by the chunks cut from
    them, and it must keep its size until the end — fewer bytes before EOF or another
    size at the end raises :class:`~pyipld.errors.FileChangedError` (so no DAG of a
    prefix is ever returned as the file's). Pipes and devices are read to EOF.
    With a ``size-N`` chunker a regular file gives a :class:`FileChunks`, which
    :func:`build_file` reads and hashes on all its threads at once.
    """
    fd = f.fileno()
    st = os.fstat(fd)
    if (stat.S_ISREG(st.st_mode) and isinstance(chunker, FixedSize)
            and not (st.st_size >= MMAP_MIN_BYTES and use_mmap() and _mmap_window(chunker.chunk_size))):
        return FileChunks(fd, st.st_size, chunker.chunk_size, os.fsdecode(name))
    return _iter_file_chunks(f, chunker, name)


def _iter_file_chunks(f: BinaryIO, chunker: Chunker, name: str | bytes | os.PathLike[str]) -> Iterator[BytesLike]:
    fd = f.fileno()
    st = os.fstat(fd)
    shown = os.fsdecode(name)
    if not stat.S_ISREG(st.st_mode):
        if isinstance(chunker, FixedSize):
            yield from _read_full(f, chunker.chunk_size)
        else:
            yield from _split_views(chunker, iter_reads(f, READ_SIZE))
        return
    size = st.st_size
    mapped = size >= MMAP_MIN_BYTES and use_mmap()
    if isinstance(chunker, FixedSize):
        chunk = chunker.chunk_size
        window = _mmap_window(chunk)
        if mapped and window:
            yield from _mmap_chunks(fd, size, chunk, window, shown)
            _check_unchanged(fd, size, shown)
        else:
            read_size = chunk * max(1, FILE_READ_BYTES // chunk)
            yield from _fixed_views(_checked_reads(f, fd, size, read_size, shown), chunk)
        return
    split_mapped = getattr(chunker, "split_mapped", None)
    if mapped and split_mapped is not None:
        try:
            yield from split_mapped(fd, size)
        except OSError as exc:  # the chunker's own size check before each mapping
            if exc.errno == errno.EIO:
                raise FileChangedError(shown, size, os.fstat(fd).st_size) from exc
            raise
        _check_unchanged(fd, size, shown)
    else:
        yield from _split_views(chunker, _checked_reads(f, fd, size, FILE_READ_BYTES, shown))


def _path_chunks(path: str | os.PathLike[str], chunker: Chunker) -> Iterator[BytesLike]:
    with open(path, "rb", buffering=0) as f:
        yield from iter_file_chunks(f, chunker, path)


def _split_views(chunker: Chunker, reads: Iterable[BytesLike]) -> Iterator[BytesLike]:
    """``chunker.split(reads)``, as views of the chunker's buffers when it offers them
    (the content-defined chunkers: ``split_views``), which saves copying every byte."""
    split_views = getattr(chunker, "split_views", None)
    if split_views is not None:
        return split_views(reads)  # type: ignore[no-any-return]
    return chunker.split(reads)


def iter_chunks(source: FileSource, chunker: Chunker) -> Iterator[BytesLike]:
    """The chunks of ``source``: the cheapest way to get them for each kind of source.

    ``size-N`` chunks come straight from the source (views of a buffer or of a
    mapped file, or one ``read`` each). Content-defined chunkers see a buffer in
    place, map a regular file block by block (``split_mapped``) and otherwise get
    1 MiB reads; their chunks are views of their blocks (``split_views``).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        if isinstance(chunker, FixedSize):
            size = chunker.chunk_size
            return (view[i : i + size] for i in range(0, len(view), size))
        return _split_views(chunker, [view])
    if isinstance(source, (str, os.PathLike)):
        return _path_chunks(source, chunker)
    if hasattr(source, "read"):
        if isinstance(chunker, FixedSize):
            return _read_full(source, chunker.chunk_size)  # type: ignore[arg-type]
        return _split_views(chunker, iter_reads(source, READ_SIZE))  # type: ignore[arg-type]
    return _split_views(chunker, source)


def _known_size(source: FileSource) -> float:
    """Bytes in ``source`` when cheap to know (buffers, regular files), else infinity."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return memoryview(source).nbytes
    if isinstance(source, (str, os.PathLike)):
        try:
            st = os.stat(source)
        except OSError:
            return float("inf")  # open() will report it
        return st.st_size if stat.S_ISREG(st.st_mode) else float("inf")
    return float("inf")


def _counted(chunks: Iterable[BytesLike], progress: ProgressCallback) -> Iterator[BytesLike]:
    if isinstance(chunks, FileChunks):  # counts on whichever path build_file takes
        chunks.progress = progress
        return chunks
    return _counted_gen(chunks, progress)


def _counted_gen(chunks: Iterable[BytesLike], progress: ProgressCallback) -> Iterator[BytesLike]:
    for chunk in chunks:
        progress(len(chunk))
        yield chunk


def metadata_for(params: ImportParams, path: str | os.PathLike[str] | None = None) -> Metadata | None:
    """The mode/mtime ``params`` ask for, taken from ``path``'s stat when preserving."""
    mode = params.mode
    mtime = Mtime(*params.mtime) if params.mtime is not None else None
    if path is not None and (params.preserve_mode or params.preserve_mtime):
        st = os.lstat(path)
        if params.preserve_mode and mode is None:
            mode = st.st_mode & 0o7777
        if params.preserve_mtime and mtime is None:
            mtime = Mtime(st.st_mtime_ns // 1_000_000_000, st.st_mtime_ns % 1_000_000_000)
    meta = Metadata(mode, mtime)
    return meta if meta else None


def _check_file_source(source: object) -> None:
    """Refuse, before any work, a ``source`` that :func:`import_file` cannot read.

    Raises:
        ConfigError: not a path, buffer, binary file or iterable of bytes (a number, None,
            a text-mode file, a list of paths).
    """
    if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        return
    if isinstance(source, io.TextIOBase):
        raise ConfigError("import_file takes a binary file, not a text one: open it with 'rb'")
    if isinstance(source, (list, tuple)) and source and isinstance(source[0], (str, os.PathLike)):
        raise ConfigError(f"import_file takes one path, not a {type(source).__name__} of paths"
                          " (several: import_paths([...]))")
    if not hasattr(source, "read") and not isinstance(source, Iterable):
        raise ConfigError(f"import_file takes a path, bytes, a binary file or an iterable of bytes,"
                          f" not a {type(source).__name__}")


def import_file(
    source: FileSource,
    params: ImportParams | None = None,
    sink: BlockSink | None = None,
    *,
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import one file exactly as ``ipfs add`` would.

    Args:
        source: a path, a binary file object, bytes, or an iterable of byte reads.
        params: kubo's add parameters (default: kubo's defaults).
        sink: where blocks go (default: nowhere — only the CID is computed).
        jobs: leaf-hashing threads (default: all cores; 1 hashes in this thread).
        progress: called with the byte count of every chunk.

    Raises:
        ConfigError: invalid parameters. OSError: unreadable path.
        FileChangedError: a regular file at ``source`` changed size during the import.
    """
    params = import_params(params)
    _check_file_source(source)
    check_sink(sink)
    resolved = params.resolve()
    path = source if isinstance(source, (str, os.PathLike)) else None
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory (use a directory import)", os.fspath(path))
    meta = metadata_for(params, path)
    check_jobs(jobs)
    if not jobs:
        jobs = default_jobs()
        if hasattr(resolved.chunker, "split_mapped"):
            # rabin/buzhash scan on a worker thread of their own: leave it a core
            # (on 2 cores one hashing thread measured faster than two; docs/chunkers.md).
            jobs = max(1, jobs - 1)
    if jobs > 1 and _known_size(source) < MIN_THREADED_BYTES:
        jobs = 1  # starting a pool costs more than hashing a small file
    sink = sink if sink is not None else NullSink()
    with contextlib.ExitStack() as stack:
        if path is not None:  # opened here, so that build_file can read it on its threads
            f = stack.enter_context(open(path, "rb", buffering=0))
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):  # a filestore records its leaves as references into it
                sink = stack.enter_context(file_sink(sink, path, st.st_size))
            chunks = iter_file_chunks(f, resolved.chunker, path)
        else:
            chunks = iter_chunks(source, resolved.chunker)
        if progress is not None:
            chunks = _counted(chunks, progress)
        root = build_file(chunks, resolved, sink, meta=meta, jobs=jobs)
    return ImportResult(CID.from_bytes(root.cid), root.data_size, root.tsize)


def import_bytes(data: BytesLike, params: ImportParams | None = None, sink: BlockSink | None = None) -> ImportResult:
    """:func:`import_file` of an in-memory buffer, on this thread.

    Raises:
        ConfigError: ``data`` is not bytes-like (a str would be taken for a path).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ConfigError(f"import_bytes takes bytes, not a {type(data).__name__} (a file: import_file(path); "
                          "text: encode it first)")
    return import_file(data, params, sink, jobs=1)
