"""Load the vendored tests/fixtures/libp2p-vectors.json."""

from __future__ import annotations

import functools
import json
from typing import Any

from tests._shared import fixture_path


@functools.cache
def _load() -> dict[str, Any]:
    return json.loads(fixture_path("libp2p-vectors.json").read_text())


def vectors(section: str) -> Any:
    return _load()[section]
