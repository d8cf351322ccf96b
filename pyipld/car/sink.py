"""Open a CAR file as a block sink: temp name + rename, nothing left behind on failure.

``open_car_sink`` is what ``pyipld add --car`` and ``pyipld car create`` use: blocks
are streamed into ``<dir>/.<name>.tmp-*`` as the importer makes them, the roots are
set when the import is done, and the file is renamed into place only when the
CAR is complete. ``-`` writes to stdout (spooled, since the header comes first).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Protocol

from .._atomic import atomic_output, user_output
from ..cid import CID, DAG_PB
from ..errors import ConfigError
from ..unixfs.params import ImportParams
from .index import MULTIHASH_INDEX_SORTED
from .v1 import CarV1Writer, CIDLike
from .v2 import CarV2Writer

__all__ = ["CarSink", "atomic_output", "open_car_sink", "placeholder_root_for"]


def placeholder_root_for(params: ImportParams) -> CID:
    """A CID as long as the root an import with ``params`` will most likely have.

    The CAR header is written first with this placeholder and patched in place at the
    end; a root of another length (an inlined or single raw-leaf root) still works,
    but the body then has to be moved once.
    """
    return CID.from_bytes(params.resolve().cid_builder.cid_bytes(DAG_PB, b""))


class CarSink(Protocol):
    """What :func:`open_car_sink` yields: a BlockSink that also takes the roots."""

    def put(self, cid: bytes, data: bytes) -> None: ...

    def set_roots(self, roots: Sequence[CIDLike]) -> None: ...

    @property
    def blocks_written(self) -> int: ...

    @property
    def data_bytes_written(self) -> int: ...


@contextlib.contextmanager
def open_car_sink(
    path: str | os.PathLike[str],
    version: int = 1,
    roots: Sequence[CIDLike] | None = None,
    *,
    placeholder_roots: Sequence[CIDLike] | None = None,
    params: ImportParams | None = None,
    index_codec: int | None = MULTIHASH_INDEX_SORTED,
    include_identity: bool = False,
    fsync: bool = False,
    background: bool = True,
    wrap: Callable[[IO[bytes]], IO[bytes]] | None = None,
) -> Iterator[CarV1Writer | CarV2Writer]:
    """Write a CAR file in one pass.

    Usage::

        with open_car_sink("out.car", version=2, params=params) as car:
            result = import_file("big.bin", params, car)   # blocks stream to disk
            car.set_roots([result.cid])
        # out.car now exists, complete; on any exception it does not

    Args:
        path: output file, or ``-`` for stdout.
        version: 1 or 2 (CARv2 gets a go-car MultihashIndexSorted index).
        roots: the roots if known now; else call ``set_roots`` before the block ends.
        placeholder_roots: a CID of the same length as the future root (e.g. a CIDv0 for
            ``--cid-version 0``) so the header is patched in place; otherwise the body is moved
            once at the end (through a temporary file, memory stays bounded).
        params: the import parameters; sets ``placeholder_roots`` to :func:`placeholder_root_for`.
        index_codec / include_identity: CARv2 index options (see :func:`~pyipld.car.v2.wrap_v1`).
        fsync: flush the file to disk before renaming it into place.
        background: write on a worker thread (bounded queue) so the import never waits on the disk.
        wrap: called with the output file; the writer writes through what it returns (e.g.
            :func:`pyipld._cli.commp.commp_tap`, a CommP side-tap); the file is closed (and
            renamed into place) when the ``with`` block ends.
    """
    if version not in (1, 2):
        raise ConfigError(f"unsupported CAR version {version}; use 1 or 2")
    if placeholder_roots is None and params is not None and roots is None:
        placeholder_roots = [placeholder_root_for(params)]

    def make(out: IO[bytes]) -> CarV1Writer | CarV2Writer:
        if wrap is not None:
            out = wrap(out)
        if version == 1:
            return CarV1Writer(out, roots, placeholder_roots=placeholder_roots, background=background)
        return CarV2Writer(out, roots, placeholder_roots=placeholder_roots, index_codec=index_codec,
                           include_identity=include_identity, background=background)

    with user_output(path, fsync=fsync) as f:  # "-", a device or pipe: written as it goes
        writer = make(f)
        try:
            yield writer
            writer.close()
        except BaseException:
            writer.abort()
            raise
