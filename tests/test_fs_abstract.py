"""fsspec's own conformance suite (``fsspec.tests.abstract``) against ipfs://.

Every mixin runs on the writable staging namespace: files are imported to CIDs when
written and read back through the same verified CID reader as any IPFS path, so the
get/copy tests exercise the read side (ls/info/find/glob/cat/open) and the put/pipe/open
tests the write side.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
abstract = pytest.importorskip("fsspec.tests.abstract")

from pyipld.fs import IPFSFileSystem


class IPFSFixtures(abstract.AbstractFixtures):  # type: ignore[misc]
    @pytest.fixture(scope="class")
    @classmethod
    def fs(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IPFSFileSystem]:
        sink = tmp_path_factory.mktemp("abstract") / "blocks"
        fs = IPFSFileSystem(sink=str(sink), use_env=False, add={"cid_version": 1}, skip_instance_cache=True)
        yield fs
        fs.close()

    @pytest.fixture
    def fs_join(self):  # type: ignore[no-untyped-def]
        return lambda *args: "/".join(args)

    @pytest.fixture
    def fs_path(self) -> str:
        return "staging"


class TestIPFSGet(abstract.AbstractGetTests, IPFSFixtures):  # type: ignore[misc]
    pass


class TestIPFSCopy(abstract.AbstractCopyTests, IPFSFixtures):  # type: ignore[misc]
    pass


class TestIPFSPut(abstract.AbstractPutTests, IPFSFixtures):  # type: ignore[misc]
    pass


class TestIPFSPipe(abstract.AbstractPipeTests, IPFSFixtures):  # type: ignore[misc]
    pass


class TestIPFSOpen(abstract.AbstractOpenTests, IPFSFixtures):  # type: ignore[misc]
    pass


def test_staging_files_are_cids(tmp_path: Path) -> None:
    fs = IPFSFileSystem(sink=str(tmp_path / "b"), use_env=False, add={"cid_version": 1}, skip_instance_cache=True)
    fs.pipe("staging/x", b"abc")
    cid = fs.info("staging/x")["CID"]
    assert fs.cat_file(cid) == b"abc"  # the staged file is readable by its CID too
    fs.close()
