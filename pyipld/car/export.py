"""DAG export in ``ipfs dag export`` order: depth-first, pre-order, first seen.

kubo (core/commands/dag/export.go) walks the DAG with go-ipld-prime's
explore-all selector and writes each block when it is first loaded, before its
children; children come in the order their links appear in the block (dag-pb:
Links order; dag-cbor/dag-json: encoded map/list order). A block loaded again is
not written again (``AllowDuplicatePuts(false)``). Identity CIDs the DAG links to
are written as ordinary sections. See shared/spec/car.md §5.

The walk uses an explicit stack, so deep chains (Filecoin exports) cannot hit the
recursion limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from ..blockstore import BlockSink, BlockSource
from ..cid import CID
from ..errors import IntegrityError, NotFoundError
from ..links import DAG_JSON, iter_links
from .v1 import CarV1Writer, CIDLike

__all__ = ["DAG_JSON", "ExportStats", "export_dag", "iter_dag", "iter_links"]

def _load(source: BlockSource, cid: bytes, verify: bool) -> bytes | None:
    parsed = CID.from_bytes(cid)
    if parsed.hash_code == 0:
        return parsed.digest
    try:
        data = source.get(cid)
    except NotFoundError:
        return None
    if verify and not parsed.verify(data):
        raise IntegrityError(f"block {parsed} does not match its CID")
    return data


def iter_dag(
    source: BlockSource, root: CIDLike, *, local_only: bool = False, verify: bool = True
) -> Iterator[tuple[bytes, bytes]]:
    """``(cid, data)`` of every block under ``root`` in ``dag export`` order, each once.

    Args:
        local_only: skip missing sub-DAGs (kubo ``--local-only``) instead of failing.
        verify: hash-check each block loaded from ``source``.

    Raises:
        NotFoundError: a block is missing (without ``local_only``).
    """
    seen: set[bytes] = set()
    stack: list[Iterator[bytes]] = [iter((CID.parse(root).bytes,))]
    while stack:
        try:
            cid = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if cid in seen:
            continue
        data = _load(source, cid, verify)
        if data is None:
            if local_only:
                continue
            raise NotFoundError(f"block was not found locally (offline): ipld: could not find {CID.from_bytes(cid)}")
        seen.add(cid)
        yield cid, data
        stack.append(iter_links(cid, data))


@dataclass(frozen=True, slots=True)
class ExportStats:
    """What :func:`export_dag` wrote."""

    blocks: int
    block_bytes: int


def export_dag(
    source: BlockSource,
    root: CIDLike,
    out: IO[bytes] | BlockSink,
    *,
    local_only: bool = False,
    verify: bool = True,
) -> ExportStats:
    """Write the DAG under ``root`` as a CARv1 (one root) exactly like ``ipfs dag export``.

    ``out`` is a binary stream (a CARv1 is written to it) or any BlockSink
    (e.g. a :class:`~pyipld.car.v2.CarV2Writer` whose roots you set).
    """
    blocks = 0
    nbytes = 0
    if isinstance(out, (CarV1Writer,)) or (hasattr(out, "put") and not hasattr(out, "write")):
        sink: Any = out
        for cid, data in iter_dag(source, root, local_only=local_only, verify=verify):
            sink.put(cid, data)
            blocks += 1
            nbytes += len(data)
        return ExportStats(blocks, nbytes)
    writer = CarV1Writer(out, [CID.parse(root)])  # type: ignore[arg-type]
    for cid, data in iter_dag(source, root, local_only=local_only, verify=verify):
        writer.put(cid, data)
        blocks += 1
        nbytes += len(data)
    writer.close()
    return ExportStats(blocks, nbytes)
