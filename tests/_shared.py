"""Where ``../shared`` (spec notes, third-party fixtures, the kubo oracle) lives.

CI puts ``shared/`` beside the checkout. ``PYIPLD_SHARED`` overrides; a git
worktree elsewhere falls back to ``/work/shared``. Tests that need it use
:func:`shared_path`, which skips with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _find_shared() -> Path | None:
    candidates = [os.environ.get("PYIPLD_SHARED"), ROOT.parent / "shared", "/work/shared"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


SHARED: Path | None = _find_shared()


def shared_path(*parts: str) -> Path:
    """Path inside shared/, or skip the test when shared/ (or that file) is absent."""
    if SHARED is None:
        pytest.skip("../shared is not present beside the checkout (set PYIPLD_SHARED)")
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared fixture missing: {path}")
    return path
