"""The file importer: the one place that wires source → chunker → leaves → layout → sink.

``import_file`` gives, for any file or stream, the root CID ``ipfs add`` prints
with the same parameters. Leaves can be hashed on worker threads (``jobs``):
``hashlib`` releases the GIL on large buffers, results are consumed in order,
and at most ``2 × jobs`` leaves are in flight, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..blockstore import BlockSink, NullSink
from ..chunker import BytesLike, iter_reads
from ..cid import CID
from .data import DataType, Mtime
from .layout_balanced import build_balanced
from .layout_trickle import build_trickle
from .nodes import FileLink, LeafMaker, Metadata
from .params import ImportParams, ResolvedParams

__all__ = ["ImportResult", "import_file", "import_bytes", "build_file", "default_jobs", "FileSource"]

FileSource = str | os.PathLike[str] | BinaryIO | bytes | bytearray | memoryview | Iterable[BytesLike]
ProgressCallback = Callable[[int], None]


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


def _encode_in_threads(
    chunks: Iterable[bytes], leaves: LeafMaker, jobs: int
) -> Iterator[tuple[bytes, bytes, int]]:
    window: deque[Future[tuple[bytes, bytes]]] = deque()
    sizes: deque[int] = deque()
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pyipld-hash") as pool:
        for chunk in chunks:
            window.append(pool.submit(leaves.encode, chunk))
            sizes.append(len(chunk))
            if len(window) >= 2 * jobs:
                cid, block = window.popleft().result()
                yield cid, block, sizes.popleft()
        while window:
            cid, block = window.popleft().result()
            yield cid, block, sizes.popleft()


def build_file(
    chunks: Iterable[bytes],
    resolved: ResolvedParams,
    sink: BlockSink,
    *,
    meta: Metadata | None = None,
    jobs: int = 1,
) -> FileLink:
    """Build one file's DAG from its chunks into ``sink``; returns the root link."""
    builder = resolved.cid_builder
    trickle = resolved.layout == "trickle"
    leaves = LeafMaker(builder, raw=resolved.raw_leaves, leaf_type=DataType.RAW if trickle else DataType.FILE)
    encoded = None
    # A balanced one-chunk root with metadata re-encodes its chunk, so keep chunks then.
    if jobs > 1 and not (meta and not trickle):
        encoded = _encode_in_threads(chunks, leaves, jobs)
    build = build_trickle if trickle else build_balanced
    return build(chunks, leaves, builder, sink, max_links=resolved.max_links, meta=meta, encoded=encoded)


def _reads(source: FileSource, read_size: int) -> Iterator[BytesLike]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield source
    elif isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            yield from iter_reads(f, read_size)
    elif hasattr(source, "read"):
        yield from iter_reads(source, read_size)  # type: ignore[arg-type]
    else:
        yield from source


def _counted(reads: Iterable[BytesLike], progress: ProgressCallback | None) -> Iterator[BytesLike]:
    for read in reads:
        if progress is not None:
            progress(len(read))
        yield read


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
        progress: called with the byte count of every read.

    Raises:
        ConfigError: invalid parameters. OSError: unreadable path.
    """
    params = params or ImportParams()
    resolved = params.resolve()
    path = source if isinstance(source, (str, os.PathLike)) else None
    if path is not None and Path(path).is_dir():
        raise IsADirectoryError(21, "is a directory (use a directory import)", os.fspath(path))
    meta = metadata_for(params, path)
    reads = _counted(_reads(source, 1 << 20), progress)
    chunks = resolved.chunker.split(reads)
    root = build_file(chunks, resolved, sink if sink is not None else NullSink(), meta=meta, jobs=jobs or default_jobs())
    return ImportResult(CID.from_bytes(root.cid), root.data_size, root.tsize)


def import_bytes(data: BytesLike, params: ImportParams | None = None, sink: BlockSink | None = None) -> ImportResult:
    """:func:`import_file` of an in-memory buffer, on this thread."""
    return import_file(data, params, sink, jobs=1)
