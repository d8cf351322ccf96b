"""pyipld: IPFS building blocks in Python, byte-for-byte equal to kubo."""

from __future__ import annotations

from .block import Block
from .blockstore import BlockSink, BlockSource, DirectoryBlockstore, MemoryBlockstore, NullSink
from .cid import CID, CidBuilder
from .errors import (
    BlockUnavailableError,
    CarError,
    ConfigError,
    DecodeError,
    IntegrityError,
    NotFoundError,
    ProtocolError,
    PyipldError,
)

__version__ = "0.1.0"

__all__ = [
    "CID",
    "Block",
    "BlockSink",
    "BlockSource",
    "BlockUnavailableError",
    "CarError",
    "CidBuilder",
    "ConfigError",
    "DecodeError",
    "DirectoryBlockstore",
    "IntegrityError",
    "MemoryBlockstore",
    "NotFoundError",
    "NullSink",
    "ProtocolError",
    "PyipldError",
    "__version__",
]
