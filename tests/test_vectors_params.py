"""params.json: kubo 0.22 root CIDs for trickle, every accepted hash, and inline CIDs (issue 3).

Trickle with 1, 2 and many layers (dag-pb and raw leaves, CIDv0/1), every hash kubo 0.22
accepts and the ones it refuses, identity, inline limits around the block sizes.
Provenance: tests/vectors/README.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._file_vectors import check_file_vector, vector_params


@pytest.mark.parametrize("vector", vector_params("params"))
def test_params_vector(vector: dict[str, Any]) -> None:
    check_file_vector(vector)
