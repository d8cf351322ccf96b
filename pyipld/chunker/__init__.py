"""Chunkers: split a byte stream where kubo splits it.

A chunker takes an iterable of reads (``bytes``-like, any sizes) and yields
non-empty chunks whose concatenation is the input. Where it cuts depends only
on the bytes, never on how they were split into reads. Empty input yields no
chunk. Memory is bounded by the largest chunk plus one read.

Chunker strings are kubo's ``--chunker`` values (boxo chunker/parse.go):
``size-N``, ``rabin``, ``rabin-AVG``, ``rabin-MIN-AVG-MAX``, ``buzhash``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Final, Protocol, runtime_checkable

from ..errors import ConfigError

__all__ = [
    "CHUNK_SIZE_LIMIT",
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_CHUNKER",
    "BytesLike",
    "Chunker",
    "iter_reads",
    "parse_chunker",
    "register_chunker",
]

BytesLike = bytes | bytearray | memoryview

DEFAULT_BLOCK_SIZE: Final = 262144  # boxo chunker.DefaultBlockSize
DEFAULT_CHUNKER: Final = f"size-{DEFAULT_BLOCK_SIZE}"
# boxo parse.go (kubo >= 0.40): 2 MiB block limit minus 256 bytes for protobuf framing.
CHUNK_SIZE_LIMIT: Final = 2 * 1024 * 1024 - 256
READ_SIZE: Final = 1 << 20


@runtime_checkable
class Chunker(Protocol):
    """Splits a stream of reads into chunks."""

    @property
    def max_chunk_size(self) -> int:
        """Upper bound on the length of any chunk produced."""
        ...

    def split(self, reads: Iterable[BytesLike]) -> Iterator[bytes]:
        """Yield the chunks of the concatenation of ``reads``."""
        ...


ChunkerParser = Callable[[str], Chunker]
_PARSERS: dict[str, ChunkerParser] = {}


def register_chunker(name: str, parser: ChunkerParser) -> None:
    """Make ``parse_chunker`` route strings starting with ``name`` to ``parser``."""
    _PARSERS[name] = parser


def parse_chunker(spec: str) -> Chunker:
    """Build a chunker from a kubo chunker string.

    Raises:
        ConfigError: unknown name, malformed string, or sizes beyond kubo's limits.
    """
    if spec in ("", "default"):
        spec = DEFAULT_CHUNKER
    name = spec.split("-", 1)[0]
    _load_builtin(name)
    parser = _PARSERS.get(name)
    if parser is None:
        raise ConfigError(f"unrecognized chunker option: {spec!r} (expected size-N, rabin[-…] or buzhash)")
    return parser(spec)


_BUILTIN_MODULES: Final = {"size": "fixed", "rabin": "rabin", "buzhash": "buzhash"}


def _load_builtin(name: str) -> None:
    """Import the built-in chunker ``name`` (it registers itself); only that one: rabin's
    tables take a few ms to build, which every ``add`` of fixed-size chunks would pay."""
    module = _BUILTIN_MODULES.get(name)
    if module is not None and name not in _PARSERS:
        try:
            __import__(f"{__name__}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module}":
                raise


def iter_reads(fileobj: BinaryIO, read_size: int = READ_SIZE) -> Iterator[bytes]:
    """Read ``fileobj`` to EOF in reads of at most ``read_size`` bytes."""
    while True:
        data = fileobj.read(read_size)
        if not data:
            return
        yield data
