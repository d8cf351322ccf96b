"""pyipld.car and pyipld.unixfs load their public names on first use (pyipld/_lazy.py): the same
objects as before, a name that is also a submodule's stays the function, unknown names fail."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import sys
import pyipld.unixfs as u, pyipld.car as c
assert "pyipld.unixfs.importer" not in sys.modules and "pyipld.car.export" not in sys.modules
import pyipld.unixfs.walk, pyipld.unixfs.extract      # the submodules, imported first
from pyipld.unixfs.walk import walk
from pyipld.unixfs.extract import extract
assert u.walk is walk and u.extract is extract, (u.walk, u.extract)
from pyipld.unixfs import *                           # every name resolves
from pyipld.car import *
from pyipld.car.reader import CarFile as R
assert c.CarFile is R and set(c.__all__) <= set(dir(c)) and set(u.__all__) <= set(dir(u))
try:
    c.nope
except AttributeError:
    print("ok")
"""


def test_lazy_exports_in_a_fresh_interpreter() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_unknown_name_is_an_attribute_error() -> None:
    import pyipld.unixfs

    with pytest.raises(AttributeError):
        pyipld.unixfs.does_not_exist  # noqa: B018


CHUNKERS = """
import sys
from pyipld.chunker import parse_chunker
parse_chunker("size-1024")
assert "pyipld.chunker.rabin" not in sys.modules and "pyipld.chunker.buzhash" not in sys.modules, sorted(sys.modules)
parse_chunker("buzhash")
assert "pyipld.chunker.buzhash" in sys.modules and "pyipld.chunker.rabin" not in sys.modules
assert type(parse_chunker("rabin-2048")).__module__ == "pyipld.chunker.rabin"
print("ok")
"""


def test_a_chunker_string_loads_only_its_chunker() -> None:
    """Regression: parsing ``size-N`` imported rabin too, whose tables cost every ``add`` ~6 ms."""
    out = subprocess.run([sys.executable, "-c", CHUNKERS], check=False, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
