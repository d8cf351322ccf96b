"""Known answers from real kubo for the other add parameters of issue 3 (tests/vectors/import_params.json):
trickle layout (1, 2, many layers; dag-pb and raw leaves), every hash, inline CIDs, max-links, profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyipld.errors import ConfigError
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._inputs import make_input

VECTORS: list[dict[str, Any]] = json.loads((Path(__file__).parent / "vectors" / "import_params.json").read_text())


def _params(entry: dict[str, Any]) -> ImportParams:
    p = dict(entry["params"])
    if "profile" in p:
        return ImportParams.from_profile(p.pop("profile"), **p)
    return ImportParams(**p)


def test_vectors_cover_the_issue() -> None:
    kinds = {v["name"].split("/")[0] for v in VECTORS}
    assert kinds == {"trickle", "balanced", "hash", "inline", "profile"}
    assert {v["params"].get("hash") for v in VECTORS} >= {"sha2-256", "sha3-256", "blake2b-256", "blake3", None}
    assert all(v["source"].startswith("kubo 0.22.0") for v in VECTORS)


@pytest.mark.parametrize("entry", [pytest.param(v, id=v["name"]) for v in VECTORS])
def test_kubo_vector(entry: dict[str, Any]) -> None:
    data = make_input(entry["input"])
    try:
        cid = import_bytes(data, _params(entry)).cid
    except ConfigError as exc:
        if "needs the" in str(exc):  # an optional hash package is not installed
            pytest.skip(str(exc))
        raise
    assert str(cid) == entry["cid"]
