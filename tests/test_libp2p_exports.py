"""Every name in the libp2p modules' ``__all__`` exists (trio's test_exports idea)."""

from __future__ import annotations

import importlib

import pytest

MODULES = ["peer", "multiaddr", "multistream", "noise", "yamux", "identify", "driver", "_pb"]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    mod = importlib.import_module(f"pyipld.bitswap.{name}")
    assert mod.__all__, name
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert missing == []
    assert len(set(mod.__all__)) == len(mod.__all__)
