"""A tiny CARv1 reader for tests (varint-prefixed sections after a dag-cbor header).

Kept independent of pyipld.car so the directory tests do not depend on it.
"""

from __future__ import annotations

from pathlib import Path

import dag_cbor

from pyipld._varint import decode_varint
from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID


def read_car(path: Path) -> tuple[list[CID], MemoryBlockstore]:
    data = path.read_bytes()
    n, off = decode_varint(data, 0)
    header = dag_cbor.decode(data[off : off + n])
    assert isinstance(header, dict)
    roots = [CID.from_bytes(bytes(r)) for r in header["roots"]]  # type: ignore[union-attr]
    pos = off + n
    store = MemoryBlockstore()
    while pos < len(data):
        size, k = decode_varint(data, pos)
        pos += k
        section = data[pos : pos + size]
        pos += size
        if not section:
            continue
        cid, m = CID.decode_prefix(section)
        store.put(cid.bytes, bytes(section[m:]))
    return roots, store
