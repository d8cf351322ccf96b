"""Where the suite's data lives: vendored fixtures in ``tests/fixtures``, and ``../shared``.

Third-party fixtures are vendored (``tests/fixtures/<name>/`` with a SOURCE.md each), so a fresh
clone runs every conformance test: use :func:`fixture_path`. ``shared_path("fixtures", …)`` is
the older spelling of the same thing and resolves to the vendored copy too.

``../shared`` (beside the checkout, or ``$PYIPLD_SHARED``) is only needed for the kubo oracle
(``tools/kubo_oracle.py``), the peers and the design notes (``spec/``); tests needing those use
:func:`shared_path`, which skips with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _find_shared() -> Path | None:
    for candidate in (os.environ.get("PYIPLD_SHARED"), ROOT.parent / "shared"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


SHARED: Path | None = _find_shared()


def fixture_path(*parts: str) -> Path:
    """Path of a vendored fixture; a missing one is an error (it ships with the tests), never a skip."""
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"vendored fixture missing: {path} (see tests/fixtures/README.md)")
    return path


def shared_path(*parts: str) -> Path:
    """Path inside shared/, or skip the test when shared/ (or that file) is absent.

    ``shared_path("fixtures", …)`` is :func:`fixture_path` (the vendored copy).
    """
    if parts and parts[0] == "fixtures":
        return fixture_path(*parts[1:])
    if SHARED is None:
        pytest.skip("../shared is not present beside the checkout (set PYIPLD_SHARED)")
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared file missing: {path}")
    return path
