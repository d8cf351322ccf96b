"""The write side of ``ipfs://``: a mutable tree of names -> CIDs, committed to a root CID.

Content addressing means a write cannot change an existing CID; it makes new blocks and,
eventually, a new root. Like kubo's MFS, writes therefore go to a *staging tree* kept in
this process: a path whose first component is not a CID (``out/train.parquet``) names a
staged entry. A file is imported (``pyipld add`` parameters) into the sink's blockstore
when it is closed, and is readable at once through the same filesystem; directories are
only names until :meth:`StagingTree.commit` builds their dag-pb nodes, bottom-up, exactly
as ``ipfs add -r`` would for the same entries, and returns the root CID.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from ..blockstore import BlockSink, BlockSource, get_verified
from ..cid import CID, RAW
from ..errors import IntegrityError, NotFoundError
from ..links import iter_links
from ..unixfs.directory import DirEntry, build_directory
from ..unixfs.params import ImportParams
from ..unixfs.walk import UnixFSNode

__all__ = ["StagedFile", "StagingTree", "TreeSource", "cumulative_size", "fill_store"]


def cumulative_size(node: UnixFSNode) -> int:
    """The Tsize a parent's link to ``node`` carries: the block's length plus its links' Tsizes.

    This is go-merkledag's ``ProtoNode.Size()``, which kubo writes when it links an existing
    node (``ipfs files cp``) and which equals what ``ipfs add`` computes for the DAGs it builds;
    a raw block is its own length. One block is read, never the whole DAG.
    """
    if node.pb is None:
        return len(node.block)
    return len(node.block) + sum(link.tsize or 0 for link in node.pb.links)


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A staged file: its root CID (binary), byte size and cumulative DAG size; ``local`` when
    its blocks were imported into the sink's store, false when it is linked from a source
    (``cp`` from an IPFS path), so a commit must bring its blocks in."""

    cid: bytes
    size: int
    tsize: int
    local: bool = True


class StagingTree:
    """Paths (``a/b/c``, no leading slash) to staged files and directories; thread-safe."""

    def __init__(self) -> None:
        self.files: dict[str, StagedFile] = {}
        self.dirs: set[str] = set()
        self._lock = threading.RLock()

    @staticmethod
    def parents(path: str) -> list[str]:
        parts = path.split("/")
        return ["/".join(parts[:i]) for i in range(1, len(parts))]

    def is_dir(self, path: str) -> bool:
        return path == "" or path in self.dirs

    def add_file(self, path: str, staged: StagedFile) -> None:
        """Stage ``path`` (parents are created; a directory there is an error)."""
        with self._lock:
            if path in self.dirs:
                raise IsADirectoryError(path)
            for parent in self.parents(path):
                if parent in self.files:
                    raise NotADirectoryError(parent)
            self.dirs.update(self.parents(path))
            self.files[path] = staged

    def mkdir(self, path: str, *, parents: bool = True, exist_ok: bool = True) -> None:
        with self._lock:
            if path in self.files:
                raise FileExistsError(path)
            if path in self.dirs and not exist_ok:
                raise FileExistsError(path)
            ups = self.parents(path)
            if not parents and ups and ups[-1] not in self.dirs:
                raise FileNotFoundError(ups[-1])
            for parent in ups:
                if parent in self.files:
                    raise NotADirectoryError(parent)
            self.dirs.update(ups)
            self.dirs.add(path)

    def remove(self, path: str, *, recursive: bool = False) -> None:
        with self._lock:
            if path in self.files:
                del self.files[path]
                return
            if path not in self.dirs:
                raise FileNotFoundError(path)
            below = [p for p in (*self.files, *self.dirs) if p.startswith(path + "/")]
            if below and not recursive:
                raise OSError(39, "directory not empty", path)
            for p in below:
                self.files.pop(p, None)
                self.dirs.discard(p)
            self.dirs.discard(path)

    def children(self, path: str) -> list[tuple[str, StagedFile | None]]:
        """Direct children of a staged directory: ``(full path, file or None for a directory)``."""
        prefix = path + "/" if path else ""
        with self._lock:
            out: dict[str, StagedFile | None] = {}
            for p, f in self.files.items():
                if p.startswith(prefix) and "/" not in p[len(prefix):]:
                    out[p] = f
            for d in self.dirs:
                if d.startswith(prefix) and d != path and "/" not in d[len(prefix):]:
                    out[d] = None
        return sorted(out.items())

    def linked(self, path: str) -> list[bytes]:
        """Root CIDs (each once) of the files at or under ``path`` that are not ``local``."""
        prefix = path + "/" if path else ""
        with self._lock:
            return list(dict.fromkeys(f.cid for p, f in self.files.items()
                                      if not f.local and (p == path or p.startswith(prefix))))

    def commit(self, path: str, params: ImportParams, sink: BlockSink) -> tuple[bytes, int]:
        """Build the directory DAG of staged ``path`` into ``sink``; ``(root CID, tsize)``.

        Raises:
            FileNotFoundError: nothing staged at ``path``.
        """
        with self._lock:
            if path in self.files:
                f = self.files[path]
                return f.cid, f.tsize
            if not self.is_dir(path):
                raise FileNotFoundError(path)
            # post-order over an explicit stack (no recursion on deep trees)
            done: dict[str, tuple[bytes, int]] = {}
            stack: list[tuple[str, bool]] = [(path, False)]
            while stack:
                d, expanded = stack.pop()
                kids = self.children(d)
                if not expanded:
                    stack.append((d, True))
                    stack.extend((p, False) for p, f in kids if f is None)
                    continue
                entries = []
                for p, staged in kids:
                    name = p.rsplit("/", 1)[-1].encode("utf-8", "surrogateescape")
                    cid, tsize = (staged.cid, staged.tsize) if staged is not None else done[p]
                    entries.append(DirEntry(name, cid, tsize))
                link = build_directory(entries, params, sink)
                done[d] = (link.cid, link.tsize)
            return done[path]


class _Store(BlockSource, BlockSink, Protocol):
    pass


class TreeSource:
    """The blocks of a committed tree: the sink's ``store`` first, then ``sources`` (the
    filesystem's verified source chain). A block from the store is hash-checked here; a bad
    one is looked for in the sources (the chain records the failure)."""

    def __init__(self, store: BlockSource, sources: BlockSource) -> None:
        self.store = store
        self.sources = sources
        self.missing: NotFoundError | None = None  # why the last block no one had was missing

    def get(self, cid: bytes) -> bytes:
        try:
            return get_verified(self.store, cid)
        except (NotFoundError, IntegrityError):
            pass
        try:
            return self.sources.get(cid)
        except NotFoundError as exc:
            self.missing = exc
            raise

    def has(self, cid: bytes) -> bool:
        return self.store.has(cid) or self.sources.has(cid)


def _walk(cid: bytes, data: bytes) -> Iterator[bytes]:
    return iter(()) if CID.from_bytes(cid).codec == RAW else iter_links(cid, data)


def fill_store(store: _Store, sources: BlockSource, roots: Iterable[bytes]) -> int:
    """Put into ``store`` every block of the DAGs under ``roots`` that it lacks, fetched from
    ``sources`` (which verify them); returns how many were added.

    Blocks the store has are read only for their links (raw leaves never are); the walk keeps
    a stack as deep as the DAG and the CIDs of the inner nodes seen (not of the leaves).

    Raises:
        NotFoundError: a block the store lacks is in no source.
        IntegrityError: a block the store has does not match its CID, and no source has it.
    """
    tree = TreeSource(store, sources)
    added = 0
    seen: set[bytes] = set()
    for root in roots:
        stack: list[Iterator[bytes]] = [iter((root,))]
        while stack:
            cid = next(stack[-1], None)
            if cid is None:
                stack.pop()
                continue
            if cid in seen:
                continue
            parsed = CID.from_bytes(cid)
            if parsed.hash_code == 0:
                data = parsed.digest
            elif store.has(cid):
                if parsed.codec == RAW:
                    continue
                data = tree.get(cid)
            else:
                data = sources.get(cid)
                store.put(cid, data)
                added += 1
            if parsed.codec != RAW:
                seen.add(cid)
                stack.append(_walk(cid, data))
    return added
