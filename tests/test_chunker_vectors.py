"""Known answers from real kubo: root CIDs of files added with every chunker (tests/vectors/chunkers.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._inputs import make_input

VECTORS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "vectors" / "chunkers.json").read_text())


def _params(entry: dict[str, Any]) -> ImportParams:
    p = entry["params"]
    return ImportParams(chunker=p["chunker"], cid_version=p["cid_version"], raw_leaves=p["raw_leaves"])


def _cases() -> list[Any]:
    return [pytest.param(v, id=v["name"], marks=[pytest.mark.slow] if v.get("slow") else []) for v in VECTORS]


def test_vectors_cover_the_issue() -> None:
    chunkers = {v["params"]["chunker"] for v in VECTORS}
    assert {"rabin", "buzhash", "rabin-16-64-256", "rabin-65536", "rabin-min:1024-avg:4096-max:16384"} <= chunkers
    assert {v["input"]["gen"] for v in VECTORS} == {"chacha", "zeros", "repeat", "repeat_random"}
    assert {v["params"]["cid_version"] for v in VECTORS} == {0, 1}
    assert all(v["source"].startswith("kubo 0.22.0") for v in VECTORS)


@pytest.mark.parametrize("entry", _cases())
def test_kubo_vector(entry: dict[str, Any]) -> None:
    data = make_input(entry["input"])
    assert str(import_bytes(data, _params(entry)).cid) == entry["cid"]


SMALL = [v for v in VECTORS if v["input"]["size"] <= 300_000 and not v.get("slow")]


@pytest.mark.parametrize("entry", [pytest.param(v, id=v["name"]) for v in SMALL[::3]])
def test_kubo_vector_plain_python(entry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain reference alone (no numpy/numba) reproduces kubo too."""
    monkeypatch.setenv("PYIPLD_ACCEL", "python")
    data = make_input(entry["input"])
    assert str(import_bytes(data, _params(entry)).cid) == entry["cid"]


@pytest.mark.parametrize("chunker", ["rabin", "rabin-36-512-1024", "buzhash", "size-64"])
def test_hello_worlds(chunker: str) -> None:
    # kubo test/sharness/t0040-add-and-cat.sh
    cid = import_bytes(b"Hello Worlds!\n", ImportParams(chunker=chunker)).cid
    assert str(cid) == "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
