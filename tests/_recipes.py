"""Input recipes: small JSON descriptions of test inputs, and the code that builds them.

The known-answer vectors in ``tests/vectors/*.json`` store recipes, not data. The
generator (``tests/vectors/gen_kubo_vectors.py``) and the tests materialise a recipe with
this module, so both sides see the same bytes and the same tree.

Byte recipes (a JSON object, key ``gen``)::

    {"gen": "chacha", "seed": "s", "size": 1000}   kubo's deterministic bytes (tests/_deterministic)
    {"gen": "zeros", "size": 1000}
    {"gen": "repeat", "text": "abc", "size": 1000}  pattern repeated, cut to size
    {"gen": "repeat", "hex": "00ff", "size": 1000}
    {"gen": "text", "text": "hello world"}          UTF-8 bytes
    {"gen": "hex", "hex": "00ff"}
    {"gen": "concat", "parts": [recipe, ...]}
    {"gen": "name"}                                  (inside a tree only) the entry's name bytes

Tree recipes (a node; the top node is what gets added)::

    {"type": "file", "content": BYTE_RECIPE}
    {"type": "symlink", "target": "some/path"}      (or "target_hex")
    {"type": "dir", "entries": [ENTRY, ...], "generate": [GROUP, ...]}

An ENTRY is a node plus ``"name": "x"`` (or ``"name_hex": "78"`` for names that are not
UTF-8). A GROUP makes many files: ``{"count": 300, "name": "f{i:05d}", "start": 0,
"content": BYTE_RECIPE}`` (``name`` is a ``str.format`` template with ``i``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests._deterministic import chacha_stream

__all__ = [
    "VECTORS_DIR",
    "RecipeError",
    "iter_recipe",
    "iter_tree",
    "kubo022_param_kwargs",
    "load_vectors",
    "materialise_tree",
    "materialise_vector_input",
    "recipe_bytes",
    "recipe_size",
    "tree_stats",
    "vector_input_bytes",
    "write_recipe",
]

Recipe = dict[str, Any]

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
_READ = 1 << 20


class RecipeError(ValueError):
    """A recipe is malformed (a bug in a vector file or a test)."""


def _pattern(recipe: Recipe) -> bytes:
    if "text" in recipe:
        pattern = str(recipe["text"]).encode("utf-8")
    elif "hex" in recipe:
        pattern = bytes.fromhex(recipe["hex"])
    else:
        raise RecipeError(f"repeat recipe needs 'text' or 'hex': {recipe}")
    if not pattern:
        raise RecipeError("repeat recipe with an empty pattern")
    return pattern


def recipe_size(recipe: Recipe, *, name: bytes | None = None) -> int:
    """Number of bytes the recipe makes (without making them)."""
    gen = recipe.get("gen")
    if gen in ("chacha", "zeros", "repeat"):
        return int(recipe["size"])
    if gen == "text":
        return len(str(recipe["text"]).encode("utf-8"))
    if gen == "hex":
        return len(bytes.fromhex(recipe["hex"]))
    if gen == "concat":
        return sum(recipe_size(p, name=name) for p in recipe["parts"])
    if gen == "name":
        if name is None:
            raise RecipeError("{'gen': 'name'} is only valid inside a tree")
        return len(name)
    raise RecipeError(f"unknown byte recipe: {recipe}")


def iter_recipe(recipe: Recipe, *, read_size: int = _READ, name: bytes | None = None) -> Iterator[bytes]:
    """Yield the recipe's bytes in pieces of at most ``read_size`` (memory stays bounded)."""
    gen = recipe.get("gen")
    if gen == "chacha":
        yield from chacha_stream(str(recipe["seed"]), int(recipe["size"]), read_size=read_size)
    elif gen == "zeros":
        left = int(recipe["size"])
        while left > 0:
            n = min(left, read_size)
            yield bytes(n)
            left -= n
    elif gen == "repeat":
        pattern = _pattern(recipe)
        size = int(recipe["size"])
        block = pattern * max(1, read_size // len(pattern))
        emitted = 0
        while emitted < size:
            # keep the pattern phase continuous across pieces
            phase = emitted % len(pattern)
            piece = (block[phase:] + block[:phase])[: size - emitted]
            yield piece
            emitted += len(piece)
    elif gen == "text":
        yield str(recipe["text"]).encode("utf-8")
    elif gen == "hex":
        yield bytes.fromhex(recipe["hex"])
    elif gen == "concat":
        for part in recipe["parts"]:
            yield from iter_recipe(part, read_size=read_size, name=name)
    elif gen == "name":
        if name is None:
            raise RecipeError("{'gen': 'name'} is only valid inside a tree")
        yield name
    else:
        raise RecipeError(f"unknown byte recipe: {recipe}")


def recipe_bytes(recipe: Recipe, *, name: bytes | None = None) -> bytes:
    """All bytes of the recipe at once."""
    return b"".join(iter_recipe(recipe, name=name))


def write_recipe(recipe: Recipe, path: str | bytes | os.PathLike[str], *, name: bytes | None = None) -> int:
    """Write the recipe's bytes to ``path``; return the number written."""
    n = 0
    with open(path, "wb") as f:
        for piece in iter_recipe(recipe, name=name):
            f.write(piece)
            n += len(piece)
    return n


def _entry_name(entry: Recipe) -> bytes:
    if "name_hex" in entry:
        name = bytes.fromhex(entry["name_hex"])
    elif "name" in entry:
        name = str(entry["name"]).encode("utf-8")
    else:
        raise RecipeError(f"entry without a name: {entry}")
    if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
        raise RecipeError(f"invalid entry name {name!r}")
    return name


def _children(node: Recipe) -> Iterator[tuple[bytes, Recipe]]:
    for entry in node.get("entries", []):
        yield _entry_name(entry), entry
    for group in node.get("generate", []):
        start = int(group.get("start", 0))
        template = str(group["name"])
        for i in range(start, start + int(group["count"])):
            yield template.format(i=i).encode("utf-8"), {"type": "file", "content": group["content"]}


def iter_tree(node: Recipe, prefix: bytes = b"") -> Iterator[tuple[bytes, str, Recipe]]:
    """Yield ``(relative path bytes, type, node)`` for the node and everything below it,
    parents before children, children in recipe order. The top node's path is ``b""``."""
    kind = node.get("type")
    if kind not in ("file", "dir", "symlink"):
        raise RecipeError(f"unknown node type: {node}")
    yield prefix, kind, node
    if kind == "dir":
        seen: set[bytes] = set()
        for name, child in _children(node):
            if name in seen:
                raise RecipeError(f"duplicate name {name!r} under {prefix!r}")
            seen.add(name)
            yield from iter_tree(child, prefix + b"/" + name if prefix else name)


def materialise_tree(node: Recipe, dest: str | os.PathLike[str]) -> Path:
    """Create the tree at ``dest`` (which must not exist yet) and return its path.

    Files get the bytes of their content recipe (``{"gen": "name"}`` = the entry's name);
    symlinks are created as symlinks (never followed); directories may be empty.
    """
    root = os.fsencode(os.fspath(dest))
    if os.path.lexists(root):
        raise FileExistsError(f"{os.fsdecode(root)} already exists")
    for rel, kind, sub in iter_tree(node):
        path = os.path.join(root, rel) if rel else root
        name = rel.rsplit(b"/", 1)[-1] if rel else None
        if kind == "dir":
            os.mkdir(path)
        elif kind == "file":
            write_recipe(sub["content"], path, name=name)
        else:
            target = bytes.fromhex(sub["target_hex"]) if "target_hex" in sub else str(sub["target"]).encode()
            os.symlink(target, path)
    return Path(os.fsdecode(root))


def tree_stats(node: Recipe) -> dict[str, int]:
    """Counts of files, dirs and symlinks and the total file bytes of a tree recipe."""
    stats = {"file": 0, "dir": 0, "symlink": 0, "bytes": 0}
    for rel, kind, sub in iter_tree(node):
        stats[kind] += 1
        if kind == "file":
            name = rel.rsplit(b"/", 1)[-1] if rel else None
            stats["bytes"] += recipe_size(sub["content"], name=name)
    return stats


def load_vectors(name: str) -> dict[str, Any]:
    """Load ``tests/vectors/<name>.json`` (name without ``.json``)."""
    path = VECTORS_DIR / f"{name}.json"
    with open(path, encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    if data.get("format") != 1 or not isinstance(data.get("vectors"), list):
        raise RecipeError(f"{path}: not a format-1 vector file")
    return data


# The oracle's parameter names (= kubo 0.22 `ipfs add` options) -> ImportParams fields.
_PARAM_FIELDS = {"cid_version", "raw_leaves", "chunker", "hash", "inline", "inline_limit", "max_links",
                 "hamt_threshold", "hamt_fanout"}


def kubo022_param_kwargs(params: dict[str, Any], *, directory: bool = False) -> dict[str, Any]:
    """``pyipld.unixfs.params.ImportParams`` keyword arguments that reproduce a vector's kubo 0.22 add.

    Absent keys stay at pyipld's (= kubo's) defaults. Directory adds also get what kubo 0.22's
    library call did implicitly: HAMT sharding when the links estimate is **>=** the threshold,
    and dot-files included (the library's ``AddFile`` adds hidden files, like ``ipfs add -H``).
    """
    unknown = set(params) - _PARAM_FIELDS - {"trickle"}
    if unknown:
        raise RecipeError(f"unknown vector params {sorted(unknown)}")
    kwargs: dict[str, Any] = {k: v for k, v in params.items() if k in _PARAM_FIELDS}
    if params.get("trickle"):
        kwargs["layout"] = "trickle"
    if directory:
        kwargs.update(hamt_threshold_inclusive=True, hamt_estimation="links", hidden=True)
    return kwargs


def vector_input_bytes(vector: dict[str, Any]) -> bytes:
    """The bytes of a file vector's input (a byte recipe, or a ``file`` node)."""
    node = vector["input"]
    if node.get("type") == "file":
        return recipe_bytes(node["content"])
    if "gen" in node:
        return recipe_bytes(node)
    raise RecipeError(f"{vector.get('name')}: input is not a file")


def materialise_vector_input(vector: dict[str, Any], tmp_dir: str | os.PathLike[str]) -> Path:
    """Write a vector's input under ``tmp_dir`` and return the path kubo was given.

    The path's base name is the vector's ``wrap_name`` (it matters with ``wrap: true``: it
    becomes the entry name in the wrapping directory), else ``input``.
    """
    path = Path(tmp_dir) / str(vector.get("wrap_name") or "input")
    node = vector["input"]
    if "gen" in node:
        write_recipe(node, path)
    elif node.get("type") == "file":
        write_recipe(node["content"], path)
    else:
        materialise_tree(node, path)
    return path
