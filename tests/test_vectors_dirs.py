"""kubo 0.22 directory vectors (tests/vectors/dirs.json): every root CID, and every entry's CID.

kubo 0.22 shards at links estimate **>=** threshold and its library add includes dot-files;
``tests._recipes.kubo022_param_kwargs(..., directory=True)`` maps both onto ImportParams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyipld.blockstore import MemoryBlockstore
from pyipld.cid import CID
from pyipld.errors import PyipldError
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import AddedEntry, import_paths
from pyipld.unixfs.walk import load_node
from tests._recipes import kubo022_param_kwargs, load_vectors, materialise_vector_input


def _cases() -> list[Any]:
    out = []
    for v in load_vectors("dirs")["vectors"]:
        marks = [pytest.mark.slow] if v.get("slow") else []
        out.append(pytest.param(v, id=v["name"], marks=marks))
    return out


def _shown(path: bytes) -> str:
    parts = []
    for p in path.split(b"/"):
        try:
            parts.append(p.decode("utf-8"))
        except UnicodeDecodeError:
            parts.append("hex:" + p.hex())
    return "/".join(parts)


@pytest.mark.parametrize("vector", _cases())
def test_kubo_dir_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    params = ImportParams(**kubo022_param_kwargs(vector["params"], directory=True))
    path = materialise_vector_input(vector, tmp_path)
    wrap = bool(vector.get("wrap"))
    if "error" in vector:
        with pytest.raises(PyipldError):
            import_paths([path], params, wrap=wrap)
        return
    events: list[AddedEntry] = []
    store = MemoryBlockstore()
    root = import_paths([path], params, store, wrap=wrap, on_added=events.append)
    assert str(root.cid) == vector["cid"], vector["name"]
    node = load_node(store, root.cid)
    assert ("hamt-shard" if node.sharded else "directory") == vector["root_type"]
    if vector.get("entries") is not None:
        # Our events name entries from the added path's base name; kubo's walk is relative to the root.
        base = path.name.encode()
        if wrap:
            got = {_shown(e.path): str(e.cid) for e in events if e.path}
        else:
            got = {_shown(e.path[len(base) + 1 :]): str(e.cid) for e in events if e.path != base}
        want = {p: c for p, c, _ in vector["entries"]}
        assert got == want
        assert CID.decode(vector["cid"]) == root.cid
