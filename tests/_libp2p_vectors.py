"""Load ../shared/fixtures/libp2p-vectors.json (skip when absent)."""

from __future__ import annotations

import functools
import json
from typing import Any

from tests._shared import shared_path


@functools.cache
def _load() -> dict[str, Any]:
    return json.loads(shared_path("fixtures", "libp2p-vectors.json").read_text())


def vectors(section: str) -> Any:
    return _load()[section]
