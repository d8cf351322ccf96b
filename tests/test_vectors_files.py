"""files.json: kubo 0.22 root CIDs for the fixed-size chunker and the balanced layout (issue 2).

Empty, 1 byte, chunk size +-1, 174/175 chunks (second level), 174*174(+1) chunks (third
level), CIDv0/v1, raw leaves on/off, chunk sizes 1 B .. 1 MiB, --max-file-links, repeating
data, and what kubo refuses. Provenance: tests/vectors/README.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests._file_vectors import check_file_vector, vector_params


@pytest.mark.parametrize("vector", vector_params("files"))
def test_file_vector(vector: dict[str, Any]) -> None:
    check_file_vector(vector)
