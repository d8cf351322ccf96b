"""``ipfs://`` for fsspec (pandas, pyarrow, Hugging Face datasets, Dask, zarr, PyTorch).

Installing pyipld registers :class:`IPFSFileSystem` for the ``ipfs`` protocol through the
``fsspec.specs`` entry point, so ``fsspec.open("ipfs://CID/path", cars=["data.car"])`` works.
If another package (``ipfsspec``) registers ``ipfs`` too, which one fsspec picks depends on
the order importlib lists installed distributions; :func:`register` makes pyipld's win.
See docs/fsspec.md.
"""

from __future__ import annotations

from .core import IPFSFile, IPFSFileSystem, IPFSWriteFile
from .sources import (
    MappedCarSource,
    MemoryBlockCache,
    PeerSource,
    RangeFile,
    RoutedSource,
    SourceChain,
    open_car_source,
)
from .staging import StagedFile, StagingTree

__all__ = [
    "IPFSFile",
    "IPFSFileSystem",
    "IPFSWriteFile",
    "MappedCarSource",
    "MemoryBlockCache",
    "PeerSource",
    "RangeFile",
    "RoutedSource",
    "SourceChain",
    "StagedFile",
    "StagingTree",
    "open_car_source",
    "register",
]


def register(*, clobber: bool = True) -> None:
    """Make ``ipfs://`` use pyipld in this process, whatever else is installed.

    fsspec consults classes registered this way before its entry-point table.
    """
    import fsspec  # type: ignore[import-untyped]

    fsspec.register_implementation("ipfs", IPFSFileSystem, clobber=clobber)
