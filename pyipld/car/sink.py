"""Open a CAR file as a block sink: temp name + rename, nothing left behind on failure.

``open_car_sink`` is what ``pyipld add --car`` and ``pyipld car create`` use: blocks
are streamed into ``<dir>/.<name>.tmp-*`` as the importer makes them, the roots are
set when the import is done, and the file is renamed into place only when the
CAR is complete. ``-`` writes to stdout (spooled, since the header comes first).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Protocol

from ..errors import ConfigError
from .index import MULTIHASH_INDEX_SORTED
from .v1 import CarV1Writer, CIDLike
from .v2 import CarV2Writer

__all__ = ["CarSink", "atomic_output", "open_car_sink"]


class CarSink(Protocol):
    """What :func:`open_car_sink` yields: a BlockSink that also takes the roots."""

    def put(self, cid: bytes, data: bytes) -> None: ...

    def set_roots(self, roots: Sequence[CIDLike]) -> None: ...

    @property
    def blocks_written(self) -> int: ...

    @property
    def data_bytes_written(self) -> int: ...


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file at a temporary name beside ``path``, renamed to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)}.tmp-")
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def open_car_sink(
    path: str | os.PathLike[str],
    version: int = 1,
    roots: Sequence[CIDLike] | None = None,
    *,
    placeholder_roots: Sequence[CIDLike] | None = None,
    index_codec: int | None = MULTIHASH_INDEX_SORTED,
    include_identity: bool = False,
) -> Iterator[CarV1Writer | CarV2Writer]:
    """Write a CAR file in one pass.

    Usage::

        with open_car_sink("out.car", version=2) as car:
            result = import_file("big.bin", params, car)   # blocks stream to disk
            car.set_roots([result.cid])
        # out.car now exists, complete; on any exception it does not

    Args:
        path: output file, or ``-`` for stdout.
        version: 1 or 2 (CARv2 gets a go-car MultihashIndexSorted index).
        roots: the roots if known now; else call ``set_roots`` before the block ends.
        placeholder_roots: a CID of the same length as the future root (e.g. a CIDv0 for
            ``--cid-version 0``) so the header is patched in place; otherwise the body is shifted.
        index_codec / include_identity: CARv2 index options (see :func:`~pyipld.car.v2.wrap_v1`).
    """
    if version not in (1, 2):
        raise ConfigError(f"unsupported CAR version {version}; use 1 or 2")

    def make(out: IO[bytes]) -> CarV1Writer | CarV2Writer:
        if version == 1:
            return CarV1Writer(out, roots, placeholder_roots=placeholder_roots)
        return CarV2Writer(out, roots, placeholder_roots=placeholder_roots, index_codec=index_codec,
                           include_identity=include_identity)

    if os.fspath(path) == "-":
        stdout = sys.stdout.buffer
        writer = make(stdout)
        yield writer
        writer.close()
        stdout.flush()
        return
    with atomic_output(path) as f:
        writer = make(f)
        yield writer
        writer.close()
