"""Checks one file vector (tests/vectors/files.json, params.json) against pyipld's importer."""

from __future__ import annotations

from typing import Any

import pytest

from pyipld.errors import ConfigError
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams
from tests._recipes import kubo022_param_kwargs, load_vectors, vector_input_bytes

__all__ = ["check_file_vector", "vector_params"]


def vector_params(name: str) -> list[Any]:
    """pytest params (id = vector name; ``slow`` vectors get the slow marker)."""
    out = []
    for v in load_vectors(name)["vectors"]:
        marks = [pytest.mark.slow] if v.get("slow") else []
        out.append(pytest.param(v, id=v["name"], marks=marks))
    return out


def _import(vector: dict[str, Any]) -> Any:
    params = ImportParams(**kubo022_param_kwargs(vector["params"]))
    return import_bytes(vector_input_bytes(vector), params)


def check_file_vector(vector: dict[str, Any]) -> None:
    """Same root CID as kubo 0.22, or the same refusal.

    Vectors marked ``differs_in_current_kubo`` record kubo 0.22 where newer kubo changed the
    rule (chunk limit 1 MiB -> 2 MiB - 256 B; identity blocks > 128 B now refused). pyipld
    follows current kubo there; such a vector must then give either kubo 0.22's answer or
    the newer rule's outcome, checked explicitly.
    """
    newer = vector.get("differs_in_current_kubo")
    if "error" in vector:
        if newer and vector["params"].get("chunker") == "size-1048577":
            try:
                result = _import(vector)
            except ConfigError:
                return                                   # kubo 0.22's limit
            assert result.size == len(vector_input_bytes(vector))
            with pytest.raises(ConfigError):             # current kubo's limit instead
                ImportParams(chunker="size-2096897").resolve()
            return
        try:
            result = _import(vector)
        except ConfigError:
            return
        pytest.fail(f"kubo refuses `{vector['ipfs_add']}` ({vector['error']}); pyipld gave {result.cid}")
    if newer and vector["params"].get("hash") == "identity":
        try:
            result = _import(vector)
        except ConfigError as exc:                       # newer kubo: "digest too large"
            assert "too large" in str(exc)
            return
    else:
        result = _import(vector)
    assert str(result.cid) == vector["cid"], f"{vector['ipfs_add']}: pyipld {result.cid} != kubo {vector['cid']}"
    assert result.size == len(vector_input_bytes(vector))
