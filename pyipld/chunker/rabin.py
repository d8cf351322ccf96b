"""Rabin chunker ``rabin``, ``rabin-AVG``, ``rabin-MIN-AVG-MAX`` — cuts where kubo cuts.

kubo's rabin splitter is boxo ``chunker/rabin.go`` over whyrusleeping/chunker
(fe64bd25) with polynomial ``0x3DF305DFB2A805`` and a **16-byte** window. Spec:
``shared/spec/chunkers.md`` §3. Per chunk the library resets its window, rolls in
a sentinel byte 1, skips ``MIN − 16`` bytes, then rolls byte by byte and cuts
after the byte at which the chunk is at least ``MIN`` long and either
``digest & mask == 0`` (``mask = 2**floor(log2(AVG)) − 1``) or the chunk is
``MAX`` long. Once ``MIN`` is reached the digest equals the fingerprint of the
last 16 bytes, so:

    L = smallest L in [MIN, MAX] with L == MAX or fp16(chunk[L-16:L]) & mask == 0;
    at EOF the remainder (possibly shorter than MIN) is the last chunk.

Three interchangeable backends find the same cuts (see :mod:`pyipld._accel`):
``python`` transcribes the library's rolling loop; ``numpy`` computes window
fingerprints in bulk from eight 65536-entry byte-pair tables (for whole blocks, or
per chunk from ``MIN`` on) and picks boundaries greedily; ``numba`` compiles the
rolling loop, four interleaved segments at a time, skipping the first ``MIN − 16``
bytes of every chunk as the library does.

Odd corner, decided like kubo: ``rabin-AVG`` with ``AVG < 48`` gives
``MIN = AVG // 3 < 16``; the library's ``MIN − 16`` then underflows (uint64) and
it never cuts, so the whole input is one chunk. We reproduce that, and refuse
(ConfigError, kubo's "object size limit exceeded") once the input exceeds the
2 MiB block limit — kubo fails the same import with that error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Final

from .._accel import Backend, resolve_backend
from ..errors import ConfigError
from . import CHUNK_SIZE_LIMIT, DEFAULT_BLOCK_SIZE, BytesLike, register_chunker
from ._goparse import ERR_SIZE_MAX, go_atoi
from ._numpy_search import NumpyCandidateSearch
from ._window import MAPPED_BLOCKS, Decide, split_stream, split_stream_views
from ._window import split_mapped as _split_mapped

__all__ = [
    "BLOCK_SIZE_LIMIT",
    "MOD_TABLE",
    "OUT_TABLE",
    "POLYNOMIAL",
    "WINDOW_SIZE",
    "Rabin",
    "fingerprint",
    "parse_rabin",
    "pmod",
]

POLYNOMIAL: Final = 0x3DF305DFB2A805  # boxo chunker/rabin.go IpfsRabinPoly = 17437180132763653, degree 53
_DEGREE: Final = 53
WINDOW_SIZE: Final = 16  # whyrusleeping/chunker windowSize (restic's original uses 64)
_POL_SHIFT: Final = _DEGREE - 8  # top 8 bits of the 53-bit digest index mod_table
# boxo chunker/parse.go BlockSizeLimit: helpers.NewLeafNode refuses a larger leaf.
BLOCK_SIZE_LIMIT: Final = 2 * 1024 * 1024
_SPARSE_MIN_SIZE: Final = 8192  # numpy backend: below this MIN, compute candidates for whole blocks
_ERR_RABIN_MIN: Final = "rabin min must be greater than 16"  # boxo parse.go ErrRabinMin (16 itself is fine)


def pmod(value: int, poly: int = POLYNOMIAL) -> int:
    """``value`` modulo ``poly`` over GF(2) (ints as bit vectors of coefficients)."""
    deg = poly.bit_length() - 1
    while value.bit_length() - 1 >= deg:
        value ^= poly << (value.bit_length() - 1 - deg)
    return value


# out_table[b]: contribution of a byte 15 positions older than the newest (b·x^120 mod P).
OUT_TABLE: Final[tuple[int, ...]] = tuple(pmod(b << (8 * (WINDOW_SIZE - 1))) for b in range(256))
# mod_table[b]: reduces the 8 bits that overflow degree 53 with one XOR.
MOD_TABLE: Final[tuple[int, ...]] = tuple(pmod(b << _DEGREE) ^ (b << _DEGREE) for b in range(256))


def fingerprint(window: BytesLike) -> int:
    """Rabin fingerprint of ``window`` read as a big-endian polynomial: ``pmod(int(window))``."""
    return pmod(int.from_bytes(bytes(window), "big"))


class Rabin:
    """kubo's rabin splitter with explicit sizes (no validation beyond sanity: see :func:`parse_rabin`).

    Args:
        min_size, avg_size, max_size: chunk sizes in bytes; ``avg_size`` only sets the mask.
        backend: ``"python"``, ``"numpy"`` or ``"numba"``; default: the best available.
        block_size: bytes examined per step by the streaming driver (memory bound).
    """

    def __init__(
        self,
        min_size: int,
        avg_size: int,
        max_size: int,
        *,
        backend: str | None = None,
        block_size: int = 4 << 20,
    ) -> None:
        if max_size > CHUNK_SIZE_LIMIT:
            raise ConfigError(ERR_SIZE_MAX)
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self.whole_input = min_size < WINDOW_SIZE
        if not self.whole_input:
            if avg_size < 1:
                raise ConfigError(f"rabin average size must be positive, got {avg_size}")
            if min_size > max_size:
                raise ConfigError(f"rabin min {min_size} is larger than max {max_size}")
        # whyrusleeping/chunker: sizeMask = 1<<uint(math.Log2(avg)) - 1.
        self.mask = (1 << (max(avg_size, 1).bit_length() - 1)) - 1
        self.backend: Backend = resolve_backend(backend)
        self._block_size = max(block_size, 2 * max(max_size, 1) + 1)
        self._decide = self._make_decide()

    @property
    def max_chunk_size(self) -> int:
        return BLOCK_SIZE_LIMIT if self.whole_input else self.max_size

    def __repr__(self) -> str:
        return f"Rabin({self.min_size}, {self.avg_size}, {self.max_size}, backend={self.backend!r})"

    def split(self, reads: Iterable[BytesLike]) -> Iterator[bytes]:
        if self.whole_input:
            return _whole_input(reads)
        return split_stream(reads, self._decide, lookahead=self.max_size, block_size=self._block_size,
                            parallel=self.backend != "python")  # numpy and numba release the GIL

    def split_views(self, reads: Iterable[BytesLike]) -> Iterator[BytesLike]:
        """:meth:`split` yielding memoryviews instead of ``bytes`` copies (for the importer).

        The views stay valid: their bytes are immutable reads or private buffers.
        """
        if self.whole_input:
            return _whole_input(reads)
        return split_stream_views(reads, self._decide, lookahead=self.max_size, block_size=self._block_size,
                                  parallel=self.backend != "python")

    def split_mapped(self, fd: int, length: int) -> Iterator[BytesLike]:
        """The chunks of the first ``length`` bytes of the regular file ``fd``, as views
        of read-only mappings: no byte is copied (for the importer). Blocks are
        ``MAPPED_BLOCKS`` times larger than for reads: each new mapping faults in again
        the previous block's unsettled tail (up to MAX bytes), and mapped blocks cost
        page-cache pages, not private memory."""
        if self.whole_input:
            return _whole_input(_pread_all(fd, length))
        return _split_mapped(fd, length, self._decide, lookahead=self.max_size, block_size=MAPPED_BLOCKS * self._block_size,
                            parallel=self.backend != "python")

    def _make_decide(self) -> Decide:
        if self.whole_input or self.backend == "python":
            return self._decide_py
        if self.backend == "numba":
            from ._numba_kernels import make_rabin_decide

            return make_rabin_decide(self.min_size, self.max_size, self.mask)
        # Per-chunk (sparse) numpy calls pay off only when chunks are large.
        return _NumpyRabin(self.min_size, self.max_size, self.mask, sparse=self.min_size >= _SPARSE_MIN_SIZE).decide

    # -- plain Python reference: the library's loop, one chunk at a time ------------------
    def _decide_py(self, buf: BytesLike, eof: bool) -> list[int]:
        ends: list[int] = []
        start, n = 0, len(buf)
        while start < n and (eof or n - start >= self.max_size):
            start += self._chunk_len_py(buf, start)
            ends.append(start)
        return ends

    def _chunk_len_py(self, buf: BytesLike, start: int) -> int:
        """Length of the chunk at ``start`` (needs MAX bytes after it, or EOF)."""
        out_table, mod_table, mask = OUT_TABLE, MOD_TABLE, self.mask
        min_size, max_size = self.min_size, self.max_size
        # reset(): zero window, digest 0, then slide(1) — the sentinel byte.
        window = bytearray(WINDOW_SIZE)
        window[0] = 1
        wpos = 1
        digest = 1
        # The first MIN − 16 bytes join the chunk without being rolled.
        pos = start + min_size - WINDOW_SIZE
        end = min(len(buf), start + max_size)
        while pos < end:
            byte = buf[pos]
            digest ^= out_table[window[wpos]]
            window[wpos] = byte
            wpos = (wpos + 1) % WINDOW_SIZE
            digest = ((digest << 8) | byte) ^ mod_table[digest >> _POL_SHIFT]
            pos += 1
            length = pos - start
            if length >= min_size and ((digest & mask) == 0 or length >= max_size):
                return length
        return end - start  # EOF: the remainder is the last chunk


def _pread_all(fd: int, length: int, step: int = 1 << 20) -> Iterator[bytes]:
    offset = 0
    while offset < length:
        data = os.pread(fd, min(step, length - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data


def _whole_input(reads: Iterable[BytesLike]) -> Iterator[bytes]:
    """MIN < 16: the library never cuts; kubo then fails on a leaf > 2 MiB."""
    data = bytearray()
    for read in reads:
        data += read
        if len(data) > BLOCK_SIZE_LIMIT:
            raise ConfigError(
                "object size limit exceeded: with rabin min < 16 (rabin-AVG with AVG < 48) kubo makes the"
                f" whole input one block, and the input is larger than {BLOCK_SIZE_LIMIT} bytes"
            )
    if data:
        yield bytes(data)


class _NumpyRabin(NumpyCandidateSearch):
    """fp16 at every examined end from 8 gathers in 65536-entry byte-pair tables."""

    window = WINDOW_SIZE

    def __init__(self, min_size: int, max_size: int, mask: int, *, sparse: bool) -> None:
        super().__init__(min_size, max_size, max_size, sparse=sparse)
        np = self.np
        dtype = np.uint32 if mask < 1 << 32 else np.uint64
        # T_j[b] = b·x^(8j) mod P, masked: only the mask bits decide a cut.
        single = [np.array([pmod(b << (8 * j)) & mask for b in range(256)], dtype=dtype) for j in range(16)]
        # Pair k covers bytes j = 2k+1 (older, high byte of the index) and j = 2k.
        self.pairs = [(single[2 * k + 1][:, None] ^ single[2 * k][None, :]).ravel() for k in range(8)]
        self.dtype = dtype

    def scan(self, data: Any, e0: int, e1: int) -> Any:
        np = self.np
        m = e1 - e0
        window = data[e0 - WINDOW_SIZE : e1 - 1]  # bytes of the windows ending in [e0, e1)
        pair = np.left_shift(window[:-1], 8, dtype=np.uint16)  # pair[i] = byte i << 8 | byte i+1
        np.bitwise_or(pair, window[1:], out=pair)
        acc = np.take(self.pairs[0], pair[14 : 14 + m], mode="clip")
        tmp = np.empty_like(acc)
        for k in range(1, 8):
            np.take(self.pairs[k], pair[14 - 2 * k : 14 - 2 * k + m], out=tmp, mode="clip")
            np.bitwise_xor(acc, tmp, out=acc)
        return np.flatnonzero(acc == 0)


def parse_rabin(spec: str) -> Rabin:
    """Parse ``rabin``, ``rabin-AVG`` or ``rabin-[min:]MIN-[avg:]AVG-[max:]MAX`` as boxo does.

    Error texts are boxo ``chunker/parse.go``'s (kubo ≥ 0.40 limits).

    Raises:
        ConfigError: malformed string or sizes beyond kubo's limits.
    """
    parts = spec.split("-")
    if len(parts) == 1:
        avg = DEFAULT_BLOCK_SIZE
        return Rabin(avg // 3, avg, avg + avg // 2)
    if len(parts) == 2:
        avg = go_atoi(parts[1])
        if _float32_times_1_5(avg) > CHUNK_SIZE_LIMIT:  # boxo: int(float32(size)*1.5) > ChunkSizeLimit
            raise ConfigError(ERR_SIZE_MAX)
        return Rabin(avg // 3, avg, avg + avg // 2)
    if len(parts) == 4:
        sizes = []
        for part, label, err in (
            (parts[1], "min", "first label must be min"),
            (parts[2], "avg", "second label must be avg"),
            (parts[3], "max", "final label must be max"),
        ):
            sub = part.split(":")
            if len(sub) > 1 and sub[0] != label:
                raise ConfigError(err)
            sizes.append(go_atoi(sub[-1]))
            if label == "min" and sizes[0] < WINDOW_SIZE:  # checked before avg is even parsed
                raise ConfigError(_ERR_RABIN_MIN)
        lo, avg, hi = sizes
        if lo >= avg:
            raise ConfigError("incorrect format: rabin-min must be smaller than rabin-avg")
        if avg >= hi:
            raise ConfigError("incorrect format: rabin-avg must be smaller than rabin-max")
        if hi > CHUNK_SIZE_LIMIT:
            raise ConfigError(ERR_SIZE_MAX)
        return Rabin(lo, avg, hi)
    raise ConfigError("incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'")


def _float32_times_1_5(value: int) -> int:
    """Go's ``int(float32(value) * 1.5)`` (float32 rounding at each step, truncation)."""
    import struct

    def f32(x: float) -> float:
        return float(struct.unpack("<f", struct.pack("<f", x))[0])

    return int(f32(f32(float(value)) * 1.5))


register_chunker("rabin", parse_rabin)
