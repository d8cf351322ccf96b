"""The backend switch: PYIPLD_PUREPYTHON and PYIPLD_ACCEL, read in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pyipld._accel import available_backends

ROOT = Path(__file__).resolve().parents[1]
PROBE = "from pyipld.chunker import parse_chunker as p; print(p('rabin').backend, p('buzhash').backend)"


def backend_with(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYIPLD_PUREPYTHON", "PYIPLD_ACCEL")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert out[0] == out[1]
    return out[0]


def test_default_is_the_fastest_available() -> None:
    assert backend_with() == available_backends()[-1]


def test_purepython_forces_the_reference() -> None:
    assert backend_with(PYIPLD_PUREPYTHON="1") == "python"
    assert backend_with(PYIPLD_PUREPYTHON="1", PYIPLD_ACCEL="numba") == "python"
    assert backend_with(PYIPLD_PUREPYTHON="0") == available_backends()[-1]


@pytest.mark.skipif("numpy" not in available_backends(), reason="numpy not installed")
def test_accel_picks_one() -> None:
    assert backend_with(PYIPLD_ACCEL="numpy") == "numpy"
    assert backend_with(PYIPLD_ACCEL="python") == "python"
    assert backend_with(PYIPLD_ACCEL="bogus") == available_backends()[-1]
