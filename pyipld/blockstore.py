"""Blockstores: where blocks go (:class:`BlockSink`) and come from (:class:`BlockSource`).

The importer only needs ``put``; readers only need ``get``. Keys are binary CIDs.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from ._atomic import atomic_output
from ._io import read_plain_file
from .cid import CID, b32encode
from .errors import CIDError, ConfigError, IntegrityError, NotFoundError

__all__ = [
    "BlockSink",
    "BlockSource",
    "DirectoryBlockstore",
    "MemoryBlockstore",
    "NullSink",
    "TrustedSource",
    "check_block",
    "file_sink",
    "get_verified",
    "get_verified_view",
    "stored_view",
]


@runtime_checkable
class BlockSink(Protocol):
    """Something that accepts blocks.

    A sink may also offer ``put_parts(cid, parts)``: the block ``b"".join(parts)``
    given as pieces (bytes or views, e.g. of a mapped input file, unchanged until
    written). The importer then hands leaves over without joining them; the CAR
    writers do this. It is optional and not part of this protocol's check.

    A sink may also offer ``file_refs(path, size)``: a context manager giving the sink
    for one regular file's blocks, which arrive in file order (see :func:`file_sink`);
    the filestore (:mod:`pyipld.filestore`) records raw leaves there as references.
    """

    def put(self, cid: bytes, data: bytes) -> None: ...


@runtime_checkable
class BlockSource(Protocol):
    """Something that returns a block's bytes by binary CID (raises NotFoundError).

    A source may also offer ``get_view(cid) -> memoryview``: the same bytes as a
    read-only view of storage it keeps open (e.g. a mapped CAR), without a copy;
    valid while the source is open. :func:`get_verified_view` uses it. It is optional
    and not part of this protocol's check.
    """

    def get(self, cid: bytes) -> bytes: ...

    def has(self, cid: bytes) -> bool: ...


def file_sink(sink: BlockSink, path: str | bytes | os.PathLike[str], size: int) -> contextlib.AbstractContextManager[BlockSink]:
    """The sink for the blocks of the regular file ``path`` of ``size`` bytes: ``sink.file_refs``
    when the sink keeps references into files (``add --nocopy``), else ``sink`` itself."""
    refs = getattr(sink, "file_refs", None)
    if refs is None:
        return contextlib.nullcontext(sink)
    return refs(path, size)  # type: ignore[no-any-return]


_Data = TypeVar("_Data", bytes, bytes | memoryview)


_SOURCE_HINT = "a CAR file: pyipld.car.CarBlockstore(path); a directory: DirectoryBlockstore(path)"
_SINK_HINT = "a CAR file: pyipld.car.open_car_sink(path); a directory: DirectoryBlockstore(path)"


def check_source(source: object) -> None:
    """Refuse, with the fix, a block source without ``get`` (a path to a CAR is a common first try).

    Raises:
        ConfigError: ``source`` has no ``get`` method.
    """
    if not callable(getattr(source, "get", None)) or isinstance(source, dict):
        raise ConfigError(f"source must be a block source (with get(cid)), not a {type(source).__name__} ({_SOURCE_HINT})")


def check_sink(sink: object) -> None:
    """Refuse, with the fix, a block sink without ``put``.

    Raises:
        ConfigError: ``sink`` is not None and has no ``put`` method.
    """
    if sink is not None and not callable(getattr(sink, "put", None)):
        raise ConfigError(f"sink must be a block sink (with put(cid, data)), not a {type(sink).__name__}"
                          f" ({_SINK_HINT})")


def get_verified(source: BlockSource, cid: bytes) -> bytes:
    """Fetch a block and check that it hashes to ``cid``.

    Identity CIDs carry their data and need no store.

    Raises:
        NotFoundError: the block is missing.
        IntegrityError: the stored bytes do not match the CID.
    """
    parsed = CID.from_bytes(cid)
    if parsed.hash_code == 0:
        return parsed.digest
    checked = getattr(source, "get_verified", None)
    if checked is not None:  # a store that hashes what it reads anyway (the filestore): once is enough
        return checked(cid)  # type: ignore[no-any-return]
    return check_block(parsed, source.get(cid))


def get_verified_view(source: BlockSource, cid: bytes) -> bytes | memoryview:
    """:func:`get_verified`, but through the source's ``get_view`` when it has one (no copy).

    Raises:
        NotFoundError: the block is missing.
        IntegrityError: the stored bytes do not match the CID.
    """
    checked = getattr(source, "get_verified_view", None)  # a store that vouches for its blocks (TrustedSource)
    if checked is None and getattr(source, "get_view", None) is None:
        return get_verified(source, cid)
    parsed = CID.from_bytes(cid)
    if parsed.hash_code == 0:
        return parsed.digest
    if checked is not None:
        return checked(cid)  # type: ignore[no-any-return]
    return check_block(parsed, stored_view(source, cid))


def stored_view(source: BlockSource, cid: bytes) -> bytes | memoryview:
    """The block as stored, unchecked: a view of the source's storage when it has ``get_view``."""
    get_view = getattr(source, "get_view", None)
    return get_view(cid) if get_view is not None else source.get(cid)


def check_block(parsed: CID, data: _Data) -> _Data:
    """``data``, if it hashes to ``parsed``; else :class:`IntegrityError`."""
    if not parsed.verify(data):
        raise IntegrityError(f"block {parsed} is corrupt: its data does not hash to its CID")
    return data


class TrustedSource:
    """``source`` with its blocks taken as stored: :func:`get_verified` and
    :func:`get_verified_view` return them without hashing them again.

    kubo's default (``Datastore.HashOnRead=false``), for a server over a store it trusts, such as
    CARs or a blockstore pyipld wrote: clients of a trustless gateway hash every block anyway, and
    hashing each block again on the server roughly doubles its CPU per byte served.
    """

    def __init__(self, source: BlockSource) -> None:
        self.source = source

    def get(self, cid: bytes) -> bytes:
        return self.source.get(cid)

    def has(self, cid: bytes) -> bool:
        return self.source.has(cid)

    def get_verified(self, cid: bytes) -> bytes:
        return self.source.get(cid)

    def get_verified_view(self, cid: bytes) -> bytes | memoryview:
        return stored_view(self.source, cid)


class NullSink:
    """Keeps nothing: for ``--only-hash``."""

    def put(self, cid: bytes, data: bytes) -> None:
        pass


class MemoryBlockstore:
    """A dict of blocks."""

    def __init__(self) -> None:
        self._blocks: dict[bytes, bytes] = {}

    def put(self, cid: bytes, data: bytes) -> None:
        self._blocks[cid] = data

    def get(self, cid: bytes) -> bytes:
        try:
            return self._blocks[cid]
        except KeyError:
            raise NotFoundError(f"block not found: {CID.from_bytes(cid)}") from None

    def has(self, cid: bytes) -> bool:
        return cid in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._blocks)


# boxo verifcid maximumHashLength: no block any IPFS implementation accepts has a longer digest
MAX_DIGEST_BYTES = 128


MAX_STORED_BLOCK_BYTES = 8 << 20  # the CAR readers' section limit; kubo's blocks are at most 2 MiB


def _show(cid: bytes) -> str:
    try:
        text = str(CID.from_bytes(cid))
    except CIDError:
        return f"<invalid CID {cid[:16].hex()}…>"
    return text if len(text) <= 120 else text[:60] + "…" + text[-20:]


class DirectoryBlockstore:
    """One file per block under ``root``, named by the base32 CIDv1 of the block.

    Files are written to a temporary name in the same directory and renamed, so
    a crash never leaves a partial block behind. Blocks are fanned out into
    sub-directories by the last two characters of the name (like kubo's flatfs
    ``next-to-last/2`` shard). A CIDv0 and its CIDv1 share one file.

    ``has`` answers True or False for any CID (a CID whose digest is longer than
    any real one, or whose name the file system cannot hold, is simply not
    there); ``get`` raises :class:`NotFoundError` for it and ``put`` refuses it
    with :class:`~pyipld.errors.CIDError`.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = True) -> None:
        self.root = Path(root)
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise NotFoundError(f"blockstore directory not found: {self.root}" if not self.root.exists()
                                else f"not a blockstore directory: {self.root} is not a directory")

    def _path(self, cid: bytes) -> Path | None:
        """The block's file; None for a CID no real block has (digest over 128 bytes)."""
        parsed = CID.from_bytes(cid)
        if len(parsed.digest) > MAX_DIGEST_BYTES:
            return None
        name = b32encode(parsed.to_v1().bytes)
        return self.root / name[-3:-1] / (name + ".data")

    def put(self, cid: bytes, data: bytes) -> None:
        path = self._path(cid)
        if path is None:
            raise CIDError(f"{_show(cid)}: digest longer than {MAX_DIGEST_BYTES} bytes (boxo verifcid); not storable")
        if path.exists():
            return
        path.parent.mkdir(exist_ok=True)
        with atomic_output(path, private=True) as f:
            f.write(data)

    def get(self, cid: bytes) -> bytes:
        path = self._path(cid)
        try:
            if path is None:
                raise FileNotFoundError(cid)
            data = read_plain_file(path, MAX_STORED_BLOCK_BYTES)  # one fstat, one read (gateway raw path)
        except FileNotFoundError:
            raise NotFoundError(f"block not found: {_show(cid)}") from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise NotFoundError(f"block not found: {_show(cid)}") from None
            raise
        if data is None:  # a symlink (to /dev/zero…), a FIFO, a device, or too large
            raise IntegrityError(f"{path}: not a block file (a regular file of at most "
                                 f"{MAX_STORED_BLOCK_BYTES} bytes) for {_show(cid)}")
        return data

    def has(self, cid: bytes) -> bool:
        path = self._path(cid)
        try:
            return path is not None and path.exists()
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:  # a name this file system cannot hold was never stored
                return False
            raise

    def verify_all(self) -> Iterator[IntegrityError]:
        """Yield an error for every stored file whose bytes do not match its name."""
        for path in self.root.glob("*/*.data"):
            cid = CID.decode("b" + path.stem)
            if not cid.verify(path.read_bytes()):
                yield IntegrityError(f"block {cid} is corrupt ({path})")
