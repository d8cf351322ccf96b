"""The recipe materialiser the vector generator and the vector tests share."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests._deterministic import chacha_bytes
from tests._recipes import (
    VECTORS_DIR,
    RecipeError,
    iter_recipe,
    iter_tree,
    kubo022_param_kwargs,
    load_vectors,
    materialise_tree,
    materialise_vector_input,
    recipe_bytes,
    recipe_size,
    tree_stats,
    vector_input_bytes,
    write_recipe,
)


def test_chacha_recipe_is_kubos_generator() -> None:
    data = recipe_bytes({"gen": "chacha", "seed": "chunk-v0-seed", "size": 1000})
    assert data == chacha_bytes("chunk-v0-seed", 1000)
    # RFC 8439 keystream with key sha256("") starts like this (independent check of the seed use)
    assert recipe_bytes({"gen": "chacha", "seed": "", "size": 4}) == chacha_bytes("", 4)
    assert len(set(data)) > 200


@pytest.mark.parametrize(
    ("recipe", "expected"),
    [
        ({"gen": "zeros", "size": 5}, b"\0" * 5),
        ({"gen": "zeros", "size": 0}, b""),
        ({"gen": "repeat", "text": "abc", "size": 7}, b"abcabca"),
        ({"gen": "repeat", "hex": "00ff", "size": 3}, b"\x00\xff\x00"),
        ({"gen": "text", "text": "h\u00e9"}, "h\u00e9".encode()),
        ({"gen": "hex", "hex": "0102"}, b"\x01\x02"),
        ({"gen": "concat", "parts": [{"gen": "text", "text": "a"}, {"gen": "zeros", "size": 2}]}, b"a\0\0"),
    ],
)
def test_byte_recipes(recipe: dict[str, object], expected: bytes) -> None:
    assert recipe_bytes(recipe) == expected
    assert recipe_size(recipe) == len(expected)


@given(size=st.integers(0, 5000), read_size=st.integers(1, 700), pattern=st.binary(min_size=1, max_size=40))
def test_repeat_is_continuous_across_reads(size: int, read_size: int, pattern: bytes) -> None:
    recipe = {"gen": "repeat", "hex": pattern.hex(), "size": size}
    pieces = list(iter_recipe(recipe, read_size=read_size))
    assert b"".join(pieces) == (pattern * (size // len(pattern) + 1))[:size]
    assert all(0 < len(p) <= max(read_size, len(pattern)) for p in pieces)


@given(size=st.integers(0, 3000), read_size=st.integers(1, 1000))
def test_chacha_reads_concatenate(size: int, read_size: int) -> None:
    recipe = {"gen": "chacha", "seed": "s", "size": size}
    assert b"".join(iter_recipe(recipe, read_size=read_size)) == chacha_bytes("s", size)


@pytest.mark.parametrize(
    "recipe",
    [{"gen": "nope"}, {"gen": "repeat", "size": 3}, {"gen": "repeat", "text": "", "size": 3}, {"gen": "name"}],
)
def test_bad_byte_recipes(recipe: dict[str, object]) -> None:
    with pytest.raises(RecipeError):
        recipe_bytes(recipe)


def test_write_recipe(tmp_path: Path) -> None:
    recipe = {"gen": "chacha", "seed": "w", "size": 3 << 20}
    assert write_recipe(recipe, tmp_path / "f") == 3 << 20
    assert hashlib.sha256((tmp_path / "f").read_bytes()).digest() == hashlib.sha256(chacha_bytes("w", 3 << 20)).digest()


TREE = {
    "type": "dir",
    "entries": [
        {"name": "a.txt", "type": "file", "content": {"gen": "text", "text": "A"}},
        {"name": ".hidden", "type": "file", "content": {"gen": "name"}},
        {"name": "sub", "type": "dir", "entries": [
            {"name": "deep", "type": "dir", "entries": []},
            {"name": "link", "type": "symlink", "target": "../a.txt"},
        ]},
        {"name_hex": "ff61", "type": "file", "content": {"gen": "zeros", "size": 3}},
        {"name": "\u00e9", "type": "symlink", "target": "/nowhere"},
    ],
    "generate": [{"count": 3, "start": 8, "name": "g{i:02d}", "content": {"gen": "name"}}],
}


def test_materialise_tree(tmp_path: Path) -> None:
    root = materialise_tree(TREE, tmp_path / "t")
    broot = os.fsencode(root)
    assert sorted(os.listdir(broot)) == sorted(
        [b"a.txt", b".hidden", b"sub", b"\xffa", "\u00e9".encode(), b"g08", b"g09", b"g10"])
    assert (root / "a.txt").read_bytes() == b"A"
    assert (root / ".hidden").read_bytes() == b".hidden"
    assert (root / "g09").read_bytes() == b"g09"
    with open(os.path.join(broot, b"\xffa"), "rb") as f:
        assert f.read() == b"\0\0\0"
    assert (root / "sub" / "deep").is_dir() and not os.listdir(root / "sub" / "deep")
    assert os.readlink(root / "sub" / "link") == "../a.txt"
    assert os.readlink(root / "\u00e9") == "/nowhere"
    assert not (root / "\u00e9").exists()          # dangling, and not followed
    with pytest.raises(FileExistsError):
        materialise_tree(TREE, root)


def test_iter_tree_and_stats() -> None:
    paths = [(p, kind) for p, kind, _ in iter_tree(TREE)]
    assert paths[0] == (b"", "dir")
    assert (b"sub/link", "symlink") in paths
    assert paths.index((b"sub", "dir")) < paths.index((b"sub/deep", "dir"))
    assert tree_stats(TREE) == {"file": 6, "dir": 3, "symlink": 2, "bytes": 1 + 7 + 3 + 9}


@pytest.mark.parametrize(
    "entries",
    [
        [{"name": "x", "type": "file", "content": {"gen": "zeros", "size": 0}}] * 2,
        [{"name": "a/b", "type": "file", "content": {"gen": "zeros", "size": 0}}],
        [{"name": "..", "type": "dir", "entries": []}],
        [{"type": "dir", "entries": []}],
        [{"name": "x", "type": "fifo"}],
    ],
)
def test_bad_trees(entries: list[dict[str, object]], tmp_path: Path) -> None:
    with pytest.raises(RecipeError):
        materialise_tree({"type": "dir", "entries": entries}, tmp_path / "t")


def test_param_mapping() -> None:
    assert kubo022_param_kwargs({}) == {}
    assert kubo022_param_kwargs({"trickle": True, "cid_version": 1, "max_links": 3}) == {
        "layout": "trickle", "cid_version": 1, "max_links": 3}
    d = kubo022_param_kwargs({"hamt_threshold": 1000}, directory=True)
    assert d["hamt_threshold_inclusive"] is True and d["hidden"] is True and d["hamt_threshold"] == 1000
    with pytest.raises(RecipeError):
        kubo022_param_kwargs({"wat": 1})


@pytest.mark.parametrize("name", ["files", "params", "dirs"])
def test_vector_files_are_well_formed(name: str) -> None:
    data = load_vectors(name)
    prov = data["provenance"]
    assert prov["kubo_version"] == "0.22.0" and len(prov["oracle_sha256"]) == 64
    names = [v["name"] for v in data["vectors"]]
    assert len(names) == len(set(names)) > 10
    for v in data["vectors"]:
        assert ("cid" in v) != ("error" in v), v["name"]
        kubo022_param_kwargs(v["params"], directory=name == "dirs")
        if name == "dirs":
            assert v["input"]["type"] in ("dir", "file")
            iter_tree(v["input"]).__next__()
        else:
            assert recipe_size(v["input"]) >= 0
    assert (VECTORS_DIR / "README.md").is_file()


def test_vector_input_bytes() -> None:
    assert vector_input_bytes({"input": {"gen": "text", "text": "x"}}) == b"x"
    assert vector_input_bytes({"input": {"type": "file", "content": {"gen": "zeros", "size": 2}}}) == b"\0\0"
    with pytest.raises(RecipeError):
        vector_input_bytes({"name": "d", "input": {"type": "dir", "entries": []}})


def test_materialise_vector_input(tmp_path: Path) -> None:
    wrapped = {"name": "w", "wrap": True, "wrap_name": "f\u00fcr.txt", "input": {"type": "file", "content": {"gen": "text", "text": "x"}}}
    p = materialise_vector_input(wrapped, tmp_path)
    assert p.name == "f\u00fcr.txt" and p.read_bytes() == b"x"
    d = materialise_vector_input({"name": "d", "input": TREE}, tmp_path)
    assert d.name == "input" and (d / "sub" / "deep").is_dir()
    (tmp_path / "sub").mkdir()
    f = materialise_vector_input({"name": "b", "input": {"gen": "zeros", "size": 4}}, tmp_path / "sub")
    assert f.read_bytes() == bytes(4)


def test_vector_files_match_the_generator() -> None:
    """The committed JSON holds exactly the generator's cases (regenerate after editing it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_kubo_vectors", VECTORS_DIR / "gen_kubo_vectors.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, build in (("files", gen.files_cases), ("params", gen.params_cases), ("dirs", gen.dirs_cases)):
        recorded = [(v["name"], v["input"], v["params"], bool(v.get("wrap"))) for v in load_vectors(name)["vectors"]]
        wanted = [(c["name"], c["input"], c["params"], bool(c.get("wrap"))) for c in build()]
        assert recorded == wanted, f"tests/vectors/{name}.json is stale: run tests/vectors/gen_kubo_vectors.py"
