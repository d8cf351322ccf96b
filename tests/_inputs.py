"""Test inputs rebuilt from small JSON recipes stored beside known-answer vectors.

Recipes: ``{"gen": "chacha", "seed", "size"}`` (kubo's deterministic ChaCha20 data),
``{"gen": "zeros", "size"}``, ``{"gen": "repeat", "pattern": HEX, "size"}`` and
``{"gen": "repeat_random", "seed", "period", "size"}`` (chacha(seed, period) repeated).
"""

from __future__ import annotations

from typing import Any

from tests._deterministic import chacha_bytes


def _repeat(unit: bytes, size: int) -> bytes:
    if not unit:
        raise ValueError("empty repeat unit")
    return (unit * (size // len(unit) + 1))[:size]


def make_input(recipe: dict[str, Any]) -> bytes:
    """The bytes a recipe describes (ValueError for an unknown generator)."""
    gen, size = recipe["gen"], int(recipe["size"])
    if gen == "chacha":
        return chacha_bytes(str(recipe["seed"]), size)
    if gen == "zeros":
        return bytes(size)
    if gen == "repeat":
        return _repeat(bytes.fromhex(recipe["pattern"]), size)
    if gen == "repeat_random":
        return _repeat(chacha_bytes(str(recipe["seed"]), int(recipe["period"])), size)
    raise ValueError(f"unknown input generator {gen!r}")
