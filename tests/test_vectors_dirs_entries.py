"""dirs.json, entry by entry: what can be checked without a directory importer.

The directory part of pyipld checks whole-directory roots (basic and HAMT) itself. Here:
every file entry kubo recorded equals our file import of the recipe's bytes, every symlink
entry equals a UnixFS symlink node, every non-sharded directory (root or not) equals a small
reference builder written in this file (dag-pb links sorted by name bytes, cumulative Tsize),
and the HAMT vectors' ``links_estimate`` is what their recipe really produces. A failure in
the last one means the vector recipe is wrong, not the library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyipld.cid import CID
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams, ResolvedParams
from tests._recipes import iter_tree, kubo022_param_kwargs, load_vectors, recipe_bytes

DAG_PB = 0x70


def _vectors(keep: Callable[[dict[str, Any]], bool]) -> list[Any]:
    out = []
    for v in load_vectors("dirs")["vectors"]:
        if not keep(v):
            continue
        marks = [pytest.mark.slow] if v.get("slow") else []
        out.append(pytest.param(v, id=v["name"], marks=marks))
    return out


def _path_bytes(shown: str) -> bytes:
    """Undo the walker's per-name ``hex:`` escaping of non-UTF-8 names."""
    parts = [bytes.fromhex(p[4:]) if p.startswith("hex:") else p.encode() for p in shown.split("/")]
    return b"/".join(parts)


def _nodes(vector: dict[str, Any]) -> dict[bytes, tuple[str, dict[str, Any]]]:
    """Recipe nodes by path relative to the added root (wrapping included)."""
    prefix = vector["wrap_name"].encode() + b"/" if vector.get("wrap") else b""
    nodes: dict[bytes, tuple[str, dict[str, Any]]] = {}
    for rel, kind, node in iter_tree(vector["input"]):
        path = (prefix + rel).rstrip(b"/") if prefix else rel
        nodes[path] = (kind, node)
    if vector.get("wrap"):
        nodes[b""] = ("dir", {"type": "dir", "entries": []})
    return nodes


class _Reference:
    """Root/entry CIDs of a tree made only of basic directories (no HAMT)."""

    def __init__(self, vector: dict[str, Any]) -> None:
        self.resolved: ResolvedParams = ImportParams(
            **kubo022_param_kwargs(vector["params"])).resolve()
        self.params = ImportParams(**kubo022_param_kwargs(vector["params"]))
        self.nodes = _nodes(vector)

    def file(self, path: bytes, node: dict[str, Any]) -> tuple[bytes, int]:
        name = path.rsplit(b"/", 1)[-1]
        result = import_bytes(recipe_bytes(node["content"], name=name), self.params)
        return result.cid.bytes, result.tsize

    def symlink(self, node: dict[str, Any]) -> tuple[bytes, int]:
        target = bytes.fromhex(node["target_hex"]) if "target_hex" in node else node["target"].encode()
        block = encode_pbnode([], encode_unixfs_data(UnixFSData(DataType.SYMLINK, data=target)))
        return self.resolved.cid_builder.cid_bytes(DAG_PB, block), len(block)

    def build(self, path: bytes = b"") -> tuple[bytes, int]:
        """(cid bytes, Tsize) of the node at ``path``; directories as basic directories."""
        kind, node = self.nodes[path]
        if kind == "file":
            return self.file(path, node)
        if kind == "symlink":
            return self.symlink(node)
        links = []
        for child in self.nodes:
            if child and child != path and _parent(child) == path:
                cid, tsize = self.build(child)
                links.append(PBLink(cid, child.rsplit(b"/", 1)[-1], tsize))
        links.sort(key=lambda link: link.name or b"")       # raw byte order, as boxo
        block = encode_pbnode(links, encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
        cid = self.resolved.cid_builder.cid_bytes(DAG_PB, block)
        return cid, len(block) + sum(link.tsize or 0 for link in links)


def _parent(path: bytes) -> bytes:
    return path.rsplit(b"/", 1)[0] if b"/" in path else b""


# (entries are recorded for trees of at most 200 nodes; bigger roots: the directory tests)
@pytest.mark.parametrize("vector", _vectors(lambda v: v.get("entries") is not None))
def test_dir_vector_entries(vector: dict[str, Any]) -> None:
    entries = vector["entries"]
    nodes = _nodes(vector)
    assert vector["entry_count"] == len(entries) == len(nodes) - 1
    ref = _Reference(vector)
    for shown, cid, kind in entries:
        path = _path_bytes(shown)
        rkind, node = nodes[path]
        if rkind == "file":
            assert CID.from_bytes(ref.file(path, node)[0]).encode() == cid, shown
        elif rkind == "symlink":
            assert kind == "symlink"
            assert CID.from_bytes(ref.symlink(node)[0]).encode() == cid, shown
        else:
            assert kind in ("directory", "hamt-shard")


@pytest.mark.parametrize("vector", _vectors(lambda v: not v.get("shard_nodes") and v["root_type"] == "directory"))
def test_basic_dir_vector_root(vector: dict[str, Any]) -> None:
    """Vectors without any HAMT: the whole tree from the reference builder above."""
    ref = _Reference(vector)
    nodes = ref.nodes
    build = ref.build
    got = {p: CID.from_bytes(build(p)[0]).encode() for p in nodes if nodes[p][0] == "dir"}
    assert got[b""] == vector["cid"]
    for shown, cid, kind in vector.get("entries") or []:
        if kind == "directory":
            assert got[_path_bytes(shown)] == cid, shown


@pytest.mark.parametrize("vector", _vectors(lambda v: "links_estimate" in v))
def test_hamt_vector_recipes_hit_the_estimate(vector: dict[str, Any]) -> None:
    """Σ(name bytes + CID bytes) over the root's links is the recorded ``links_estimate``."""
    nodes = _nodes(vector)
    ref = _Reference(vector)
    top = [p for p in nodes if p and b"/" not in p]
    total = 0
    for p in top:
        kind, node = nodes[p]
        if kind == "file":
            cid_len = len(ref.file(p, node)[0])
        else:                     # only basic sub-directories appear in these recipes
            sub = [q for q in nodes if q.startswith(p + b"/")]
            assert all(nodes[q][0] == "file" for q in sub)
            cid_len = len(ref.build(p)[0])
        total += len(p) + cid_len
    assert total == vector["links_estimate"]
    threshold = vector["params"].get("hamt_threshold", 262144)
    assert (vector["root_type"] == "hamt-shard") == (total >= threshold)   # kubo 0.22: inclusive
