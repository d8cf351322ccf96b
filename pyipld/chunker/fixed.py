"""Fixed-size chunker ``size-N`` (boxo chunker/splitting.go: io.ReadFull of N bytes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..errors import ConfigError
from . import CHUNK_SIZE_LIMIT, BytesLike, register_chunker

__all__ = ["FixedSize"]


class FixedSize:
    """Chunks of exactly ``chunk_size`` bytes; the last may be shorter."""

    def __init__(self, chunk_size: int) -> None:
        if not 0 < chunk_size <= CHUNK_SIZE_LIMIT:
            raise ConfigError(f"chunker size must be in 1..{CHUNK_SIZE_LIMIT}, got {chunk_size}")
        self.chunk_size = chunk_size

    @property
    def max_chunk_size(self) -> int:
        return self.chunk_size

    def __repr__(self) -> str:
        return f"FixedSize({self.chunk_size})"

    def split(self, reads: Iterable[BytesLike]) -> Iterator[bytes]:
        size = self.chunk_size
        pending = bytearray()
        for read in reads:
            view = memoryview(read)
            if pending:
                need = size - len(pending)
                pending += view[:need]
                view = view[need:]
                if len(pending) < size:
                    continue
                yield bytes(pending)
                pending.clear()
            full_end = len(view) - len(view) % size
            for start in range(0, full_end, size):
                yield bytes(view[start : start + size])
            pending += view[full_end:]
        if pending:
            yield bytes(pending)


def parse_size(spec: str) -> FixedSize:
    """Parse ``size-N`` with boxo ``chunker/parse.go`` rules and error texts (kubo >= 0.40 limit)."""
    from ._goparse import ERR_SIZE, ERR_SIZE_MAX, go_atoi

    parts = spec.split("-")
    if len(parts) != 2:
        raise ConfigError("incorrect chunker string format (expected size-{size})")
    size = go_atoi(parts[1])
    if size <= 0:
        raise ConfigError(ERR_SIZE)
    if size > CHUNK_SIZE_LIMIT:
        raise ConfigError(ERR_SIZE_MAX)
    return FixedSize(size)


register_chunker("size", parse_size)
