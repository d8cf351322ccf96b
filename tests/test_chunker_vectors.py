"""Known answers from real kubo 0.22 for the content-defined chunkers (tests/vectors/chunkers.json)
and for trickle / hash / inline / IPIP-499 parameters over them (tests/vectors/import_params.json)."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from pyipld.errors import ConfigError
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._recipes import VECTORS_DIR, kubo022_param_kwargs, load_vectors, vector_input_bytes

CHUNKERS = load_vectors("chunkers")["vectors"]
IMPORT_PARAMS = load_vectors("import_params")["vectors"]


def _cases(vectors: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(v, id=v["name"], marks=[pytest.mark.slow] if v.get("slow") else []) for v in vectors]


def _cid(entry: dict[str, Any]) -> str:
    params = ImportParams(**kubo022_param_kwargs(entry["params"]))
    try:
        return str(import_bytes(vector_input_bytes(entry), params).cid)
    except ConfigError as exc:
        if "needs the" in str(exc):  # an optional hash package is not installed
            pytest.skip(str(exc))
        raise


def test_vector_files_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("gen_chunker_vectors", VECTORS_DIR / "gen_chunker_vectors.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    for name, vectors in (("chunkers", CHUNKERS), ("import_params", IMPORT_PARAMS)):
        recorded = [(v["name"], v["input"], v["params"]) for v in vectors]
        wanted = [(c["name"], c["input"], c["params"]) for c in gen.BUILDERS[name]()]
        assert recorded == wanted, f"tests/vectors/{name}.json is stale: run tests/vectors/gen_chunker_vectors.py"


def test_vectors_cover_the_issue() -> None:
    chunkers = {v["params"]["chunker"] for v in CHUNKERS}
    assert {"rabin", "buzhash", "rabin-16-64-256", "rabin-65536", "rabin-min:1024-avg:4096-max:16384"} <= chunkers
    assert {v["input"]["gen"] for v in CHUNKERS} == {"chacha", "zeros", "repeat"}
    assert {v["params"].get("cid_version", 0) for v in CHUNKERS} == {0, 1}
    assert all(v["source"] == "kubo 0.22.0 via kubo_oracle.py" and "cid" in v for v in CHUNKERS + IMPORT_PARAMS)


@pytest.mark.parametrize("entry", _cases(CHUNKERS))
def test_chunker_vector(entry: dict[str, Any]) -> None:
    assert _cid(entry) == entry["cid"]


@pytest.mark.parametrize("entry", _cases(IMPORT_PARAMS))
def test_import_params_vector(entry: dict[str, Any]) -> None:
    assert _cid(entry) == entry["cid"]


SMALL = [v for v in CHUNKERS if v["input"]["size"] <= 300_000]


@pytest.mark.parametrize("entry", [pytest.param(v, id=v["name"]) for v in SMALL[::3]])
def test_chunker_vector_plain_python(entry: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain reference alone (no numpy/numba) reproduces kubo too."""
    monkeypatch.setenv("PYIPLD_ACCEL", "python")
    assert _cid(entry) == entry["cid"]


@pytest.mark.parametrize("chunker", ["rabin", "rabin-36-512-1024", "buzhash", "size-64"])
def test_hello_worlds(chunker: str) -> None:
    # kubo test/sharness/t0040-add-and-cat.sh
    cid = import_bytes(b"Hello Worlds!\n", ImportParams(chunker=chunker)).cid
    assert str(cid) == "QmVr26fY1tKyspEJBniVhqxQeEjhF78XerGiqWAwraVLQH"
