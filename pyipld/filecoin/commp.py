"""Filecoin piece commitment (CommP) and piece CIDs v1 / v2 (FRC-0069).

CommP of a payload is the root of a binary Merkle tree over the fr32-expanded
payload (every 127 bytes become 128: two zero bits after every 254 bits), zero-
extended to a power-of-two *padded piece size*, hashed with sha256-trunc254-padded
(SHA-256 of the two children with the two top bits of the last byte cleared).
See shared/spec/commp.md; go-fil-commp-hashhash and go-data-segment compute the same.

Theory of operation (:class:`CommP`):

* Input is cut into *chunks* of ``2**13`` quads (1 040 384 bytes). Each chunk is
  one complete subtree whose root sits at tree level 15 (level 0 = the 32-byte
  leaves). Chunk roots are computed by a backend — the optional native
  accelerator (:mod:`._commp_accel`) or numpy fr32 + batched ``hashlib`` — and
  optionally on several threads (native: ctypes drops the GIL) or processes
  (pure Python), consumed in order, at most ``2 × jobs`` in flight.
* Chunk roots go onto a binary-counter stack (one pending node per level), so
  memory is O(chunk × jobs + height) whatever the payload size.
* :meth:`CommP.digest` hashes the unfinished tail (< 1 chunk) with zero-subtree
  shortcuts — a missing right sibling at level ``i`` is the precomputed root of
  ``2**i`` zero leaves — then folds the stack up to the piece height. Nothing of
  the zero padding is ever hashed, so a 64 GiB all-zero piece is instant.
* The first chunk is kept (≤ 1 MiB) together with the right siblings met on the
  leftmost path, so :meth:`CommP.patch` can rewrite early bytes afterwards — a
  CAR writer patches its header's root on close, and a side-tap
  (:class:`CommPWriter`) follows that seek-and-rewrite.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, TYPE_CHECKING, Any, Final, Protocol, Self

from .._varint import decode_varint, encode_varint
from ..cid import CID, RAW
from ..errors import CIDError, ConfigError

if TYPE_CHECKING:  # ctypes and the native build load only when a piece is computed
    from . import _commp_accel


@lru_cache(maxsize=1)
def _numpy() -> Any:
    """numpy (fr32 and the trunc254 masking vectorised; optional), imported on first use:
    importing it costs ~0.1 s of every CLI start, also for verbs that never reach CommP."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is an optional extra
        return None
    return numpy

__all__ = [
    "CHUNK_BYTES",
    "FIL_COMMITMENT_UNSEALED",
    "FR32_SHA256_TRUNC254_PADBINTREE",
    "MAX_PIECE_SIZE",
    "MIN_PIECE_SIZE",
    "SHA2_256_TRUNC254_PADDED",
    "CommP",
    "CommPWriter",
    "PieceInfo",
    "backend_name",
    "check_piece_size",
    "chunk_roots",
    "commp_bytes",
    "commp_file",
    "decode_piece_cid",
    "fr32_pad",
    "fr32_unpad",
    "node",
    "pad_commp",
    "padded_piece_size",
    "parse_piece_size",
    "piece_cid_v1",
    "piece_cid_v2",
    "unpadded_piece_size",
    "zero_commitment",
]

FIL_COMMITMENT_UNSEALED: Final = 0xF101  # multicodec, go-fil-commcid
SHA2_256_TRUNC254_PADDED: Final = 0x1012  # multihash of piece CID v1
FR32_SHA256_TRUNC254_PADBINTREE: Final = 0x1011  # multihash of piece CID v2 (FRC-0069)
MIN_PIECE_SIZE: Final = 128  # one fr32 quad: 4 leaves, height 2
MAX_PIECE_SIZE: Final = 1 << 63  # sizes are uint64 in Filecoin; 2**63 keeps height ≤ 58

_LOG2_CHUNK_QUADS: Final = 13
_CHUNK_QUADS: Final = 1 << _LOG2_CHUNK_QUADS
CHUNK_BYTES: Final = 127 * _CHUNK_QUADS  # input bytes per chunk subtree
_CHUNK_LEVEL: Final = _LOG2_CHUNK_QUADS + 2  # a quad is 4 leaves = 2 levels

_V1_PREFIX: Final = b"\x01" + encode_varint(FIL_COMMITMENT_UNSEALED) + encode_varint(SHA2_256_TRUNC254_PADDED) + b"\x20"


# -- primitives ------------------------------------------------------------------------


def node(left: bytes, right: bytes) -> bytes:
    """sha256-trunc254-padded of two 32-byte children."""
    d = bytearray(hashlib.sha256(left + right).digest())
    d[31] &= 0x3F
    return bytes(d)


@lru_cache(maxsize=1)
def _zero_table() -> tuple[bytes, ...]:
    table = [bytes(32)]
    for _ in range(63):
        table.append(node(table[-1], table[-1]))
    return tuple(table)


def zero_commitment(level: int) -> bytes:
    """Root of ``2**level`` zero leaves (an all-zero piece of ``32 << level`` bytes)."""
    if not 0 <= level < 64:
        raise ConfigError(f"zero commitment level {level} out of range 0..63")
    return _zero_table()[level]


def padded_piece_size(payload_size: int) -> int:
    """Smallest padded piece size (power of two ≥ 128) that holds ``payload_size`` bytes."""
    if payload_size < 0:
        raise ConfigError(f"payload size {payload_size} is negative")
    quads = max(1, -(-payload_size // 127))
    size = max(MIN_PIECE_SIZE, 1 << (128 * quads - 1).bit_length())
    if size > MAX_PIECE_SIZE:
        raise ConfigError(f"payload of {payload_size} bytes needs a piece over {MAX_PIECE_SIZE} bytes")
    return size


def unpadded_piece_size(padded_size: int) -> int:
    """Payload capacity of a padded piece: ``padded_size × 127 / 128``."""
    check_piece_size(padded_size)
    return padded_size // 128 * 127


def check_piece_size(size: int) -> int:
    """Return ``size`` if it is a valid padded piece size, else raise ConfigError."""
    if size < MIN_PIECE_SIZE or size > MAX_PIECE_SIZE or size & (size - 1):
        raise ConfigError(f"piece size {size} is not a power of two between {MIN_PIECE_SIZE} and 2**63")
    return size


_UNITS: Final = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1000, "m": 1 << 20, "mib": 1 << 20, "mb": 1000**2,
                 "g": 1 << 30, "gib": 1 << 30, "gb": 1000**3, "t": 1 << 40, "tib": 1 << 40, "tb": 1000**4}


def parse_piece_size(text: str | int) -> int:
    """Parse ``"32GiB"``, ``"512MiB"``, ``"2048"``, ``"1m"`` into bytes (binary units by default)."""
    if isinstance(text, int):
        return text
    s = text.strip().lower().replace(" ", "")
    i = len(s)
    while i and not s[i - 1].isdigit():
        i -= 1
    number, unit = s[:i], s[i:]
    if not number.isdigit() or unit not in _UNITS:
        raise ConfigError(f"cannot parse size {text!r} (examples: 2048, 512KiB, 32GiB)")
    return int(number) * _UNITS[unit]


def _height(padded_size: int) -> int:
    return (padded_size // 32).bit_length() - 1


_S_PAIRS: Final = struct.Struct("64s" * 1024)
_DIGEST: Callable[[Any], bytes] = type(hashlib.sha256()).digest  # unbound HASH.digest, for map()


def _hash_pairs_py(level: bytes | bytearray | memoryview) -> bytes:
    """Next tree level with hashlib: batches of 1024 nodes through C-level ``map``."""
    n = len(level) // 64
    sha = hashlib.sha256
    dig: Callable[[Any], bytes] = _DIGEST
    parts = []
    full = n - n % 1024
    for off in range(0, 64 * full, 64 * 1024):
        parts.append(b"".join(map(dig, map(sha, _S_PAIRS.unpack_from(level, off)))))
    for off in range(64 * full, 64 * n, 64):
        parts.append(sha(level[off : off + 64]).digest())
    out = bytearray(b"".join(parts))
    _np = _numpy()
    if _np is not None:
        _np.frombuffer(out, dtype=_np.uint8)[31::32] &= 0x3F
    else:  # pragma: no cover - numpy missing
        for i in range(31, len(out), 32):
            out[i] &= 0x3F
    return bytes(out)


def _fr32_py(data: bytes | bytearray | memoryview) -> bytes:
    """fr32-expand whole 127-byte quads (numpy: whole-array byte shifts)."""
    q = len(data) // 127
    _np = _numpy()
    if _np is None or q < 4:
        mask = (1 << 254) - 1
        out = []
        for i in range(0, 127 * q, 127):
            x = int.from_bytes(data[i : i + 127], "little")
            out.append(((x & mask) | ((x >> 254) & mask) << 256 | ((x >> 508) & mask) << 512
                        | (x >> 762) << 768).to_bytes(128, "little"))
        return b"".join(out)
    a = _np.frombuffer(data, dtype=_np.uint8, count=127 * q).reshape(q, 127)
    o = _np.empty((q, 128), dtype=_np.uint8)
    o[:, 0:31] = a[:, 0:31]
    o[:, 31] = a[:, 31] & 0x3F
    o[:, 32:64] = (a[:, 31:63] >> 6) | (a[:, 32:64] << 2)
    o[:, 63] &= 0x3F
    o[:, 64:96] = (a[:, 63:95] >> 4) | (a[:, 64:96] << 4)
    o[:, 95] &= 0x3F
    o[:, 96:127] = (a[:, 95:126] >> 2) | (a[:, 96:127] << 6)
    o[:, 127] = a[:, 126] >> 2
    expanded: bytes = o.tobytes()
    return expanded


def fr32_pad(data: bytes | bytearray | memoryview) -> bytes:
    """fr32 expansion: every 127 input bytes become 128 (two zero bits every 254 bits).

    Raises:
        ConfigError: ``len(data)`` is not a multiple of 127.
    """
    if len(data) % 127:
        raise ConfigError(f"fr32 input length {len(data)} is not a multiple of 127")
    return _fr32_py(data)


def fr32_unpad(data: bytes | bytearray | memoryview) -> bytes:
    """Inverse of :func:`fr32_pad` (the two top bits of each 32-byte word are dropped)."""
    if len(data) % 128:
        raise ConfigError(f"fr32 padded length {len(data)} is not a multiple of 128")
    mask = (1 << 254) - 1
    out = []
    for i in range(0, len(data), 128):
        y = int.from_bytes(data[i : i + 128], "little")
        x = (y & mask) | ((y >> 256) & mask) << 254 | ((y >> 512) & mask) << 508 | ((y >> 768) & mask) << 762
        out.append(x.to_bytes(127, "little"))
    return b"".join(out)




# -- backends ----------------------------------------------------------------------------


class _Backend(Protocol):
    name: str

    def hash_pairs(self, level: bytes) -> bytes: ...

    def fr32(self, data: bytes) -> bytes: ...

    def subtree(self, data: bytes | memoryview, log2_quads: int) -> bytes: ...


class _PyBackend:
    name = "python"

    def hash_pairs(self, level: bytes) -> bytes:
        return _hash_pairs_py(level)

    def fr32(self, data: bytes) -> bytes:
        return _fr32_py(data)

    def subtree(self, data: bytes | memoryview, log2_quads: int) -> bytes:
        level = _fr32_py(data)
        while len(level) > 32:
            level = _hash_pairs_py(level)
        return level


def _py_subtree_task(data: bytes) -> bytes:
    """Process-pool entry point (module level so it pickles)."""
    return _PyBackend().subtree(data, _LOG2_CHUNK_QUADS)


class _NativeBackend:
    def __init__(self, native: _commp_accel.NativeCommP) -> None:
        self.native = native
        self.name = "native-shani" if native.shani else "native-portable"

    def hash_pairs(self, level: bytes) -> bytes:
        return self.native.hash_pairs(level)

    def fr32(self, data: bytes) -> bytes:
        return self.native.fr32(data)

    def subtree(self, data: bytes | memoryview, log2_quads: int) -> bytes:
        return self.native.subtree(data, log2_quads)


def _get_backend(name: str) -> _Backend:
    if name in ("auto", "native"):
        from . import _commp_accel

        native = _commp_accel.load()
        if native is not None:
            return _NativeBackend(native)
        if name == "native":
            raise ConfigError("the native CommP accelerator is unavailable (no C compiler, or PYIPLD_PUREPYTHON=1)")
        return _PyBackend()
    if name == "python":
        return _PyBackend()
    raise ConfigError(f"unknown CommP backend {name!r} (auto, native, python)")


def backend_name(backend: str = "auto") -> str:
    """Which implementation ``backend`` resolves to here: native-shani, native-portable or python."""
    return _get_backend(backend).name


def _root_of(backend: _Backend, data: bytes, level: int) -> bytes:
    """Root at ``level`` of a tree whose leaves are fr32(``data``) then zeros (data: whole quads)."""
    nodes = backend.fr32(data) if data else b""
    if 4 * (len(nodes) // 128) > 1 << level:
        raise AssertionError("tail larger than its subtree")  # pragma: no cover - internal invariant
    if not nodes:
        return zero_commitment(level)
    zeros = _zero_table()
    for lvl in range(level):
        if len(nodes) % 64:
            nodes += zeros[lvl]
        nodes = backend.hash_pairs(nodes)
    return nodes


# -- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PieceInfo:
    """A piece commitment with its sizes.

    Attributes:
        commp: the 32-byte tree root.
        payload_size: bytes that were hashed (before fr32 and zero padding).
        padded_size: the padded piece size (power of two, what deals use).
    """

    commp: bytes
    payload_size: int
    padded_size: int

    @property
    def unpadded_size(self) -> int:
        """Payload capacity of the piece: ``padded_size × 127 / 128``."""
        return self.padded_size // 128 * 127

    @property
    def height(self) -> int:
        """Tree height: log2(padded_size / 32)."""
        return _height(self.padded_size)

    @property
    def padding(self) -> int:
        """FRC-0069 padding: zero bytes added to the payload to fill the tree."""
        return self.unpadded_size - self.payload_size

    @property
    def cid_v1(self) -> CID:
        """Piece CID v1 (``baga6ea4sea…``): fil-commitment-unsealed + sha2-256-trunc254-padded."""
        return piece_cid_v1(self.commp)

    @property
    def cid_v2(self) -> CID:
        """Piece CID v2 (FRC-0069, ``bafkzcib…``): raw + fr32-sha256-trunc254-padbintree."""
        return piece_cid_v2(self.commp, self.payload_size, self.padded_size)


def piece_cid_v1(commp: bytes) -> CID:
    """Piece CID v1 of a 32-byte commitment."""
    if len(commp) != 32:
        raise ConfigError(f"commP must be 32 bytes, got {len(commp)}")
    return CID.from_bytes(_V1_PREFIX + commp)


def piece_cid_v2(commp: bytes, payload_size: int, padded_size: int | None = None) -> CID:
    """Piece CID v2 (FRC-0069): digest = uvarint(padding) ‖ uint8(height) ‖ root."""
    if len(commp) != 32:
        raise ConfigError(f"commP must be 32 bytes, got {len(commp)}")
    size = check_piece_size(padded_size) if padded_size is not None else padded_piece_size(payload_size)
    if payload_size < 0 or payload_size > size // 128 * 127:
        raise ConfigError(f"payload of {payload_size} bytes does not fit a {size}-byte piece")
    digest = encode_varint(size // 128 * 127 - payload_size) + bytes([_height(size)]) + commp
    mh = encode_varint(FR32_SHA256_TRUNC254_PADBINTREE) + encode_varint(len(digest)) + digest
    return CID(1, RAW, mh)


def decode_piece_cid(cid: CID | str | bytes) -> tuple[bytes, int | None, int | None]:
    """(commp, padded size or None, payload size or None) of a piece CID v1 or v2.

    Raises:
        CIDError: not a piece CID.
    """
    c = CID.parse(cid)
    mh = c.multihash
    code, n = decode_varint(mh)
    length, m = decode_varint(mh, n)
    digest = mh[n + m :]
    if len(digest) != length:
        raise CIDError("piece CID multihash length mismatch")
    if c.codec == FIL_COMMITMENT_UNSEALED and code == SHA2_256_TRUNC254_PADDED and length == 32:
        return digest, None, None
    if c.codec == RAW and code == FR32_SHA256_TRUNC254_PADBINTREE and length >= 34:
        padding, k = decode_varint(digest)
        if len(digest) - k != 33:
            raise CIDError("piece CID v2 digest must be uvarint padding, 1 height byte, 32-byte root")
        height = digest[k]
        if not 2 <= height <= _height(MAX_PIECE_SIZE):
            raise CIDError(f"piece CID v2 height {height} out of range")
        size = 32 << height
        if padding > size // 128 * 127:
            raise CIDError(f"piece CID v2 padding {padding} larger than the piece")
        return digest[k + 1 :], size, size // 128 * 127 - padding
    raise CIDError(f"{c} is not a piece CID (v1 fil-commitment-unsealed or v2 FRC-0069)")


def pad_commp(commp: bytes, from_size: int, to_size: int) -> bytes:
    """Commitment of a piece of ``from_size`` zero-extended to ``to_size`` (hashhash PadCommP)."""
    check_piece_size(from_size)
    check_piece_size(to_size)
    if to_size < from_size:
        raise ConfigError(f"cannot pad a {from_size}-byte piece down to {to_size}")
    root = commp
    for level in range(_height(from_size), _height(to_size)):
        root = node(root, zero_commitment(level))
    return root


# -- streaming accumulator ------------------------------------------------------------------


def default_jobs() -> int:
    """One worker per available core."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class CommP:
    """Streaming CommP: ``update(bytes)`` any number of times, then ``digest()``.

    Memory is bounded by ``(2 × jobs + 2)`` chunks of ~1 MiB whatever the input size.
    ``digest()`` does not reset the state: more data can follow.

    Args:
        jobs: workers hashing chunk subtrees in parallel (1 = this thread only).
        backend: ``"auto"`` (native accelerator if available, else Python),
            ``"native"`` (error if unavailable) or ``"python"``.
    """

    def __init__(self, *, jobs: int = 1, backend: str = "auto") -> None:
        if jobs < 1:
            raise ConfigError(f"jobs must be ≥ 1, got {jobs}")
        self._backend = _get_backend(backend)
        self.jobs = jobs
        self._buf = bytearray()
        self._size = 0
        self._chunks = 0  # chunk roots pushed
        self._stack: list[bytes | None] = []  # index i = level _CHUNK_LEVEL + i
        self._first: bytes | None = None  # the first chunk's bytes, for patch()
        self._right: list[bytes] = []  # right siblings merged into the leftmost path
        self._pending: deque[Future[bytes]] = deque()
        self._executor: Executor | None = None
        self._zero_copy = isinstance(self._backend, _NativeBackend)

    @property
    def backend(self) -> str:
        """The implementation in use (native-shani, native-portable, python)."""
        return self._backend.name

    @property
    def payload_size(self) -> int:
        """Bytes written so far."""
        return self._size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash more payload bytes."""
        self._size += len(data)
        buf = self._buf
        if not buf and isinstance(data, bytes) and len(data) >= CHUNK_BYTES and self._zero_copy:
            # Immutable input: hash whole chunks straight from it, no copies.
            whole = len(data) - len(data) % CHUNK_BYTES
            mv = memoryview(data)
            for off in range(0, whole, CHUNK_BYTES):
                self._submit(mv[off : off + CHUNK_BYTES])
            buf += mv[whole:]
            return
        buf += data
        if len(buf) < CHUNK_BYTES:
            return
        whole = len(buf) - len(buf) % CHUNK_BYTES
        view = memoryview(buf)
        try:
            for off in range(0, whole, CHUNK_BYTES):
                self._submit(bytes(view[off : off + CHUNK_BYTES]))
        finally:
            view.release()
        del buf[:whole]

    def _submit(self, chunk: bytes | memoryview) -> None:
        if self._chunks + len(self._pending) == 0:
            self._first = bytes(chunk)
        if self.jobs == 1:
            self._push(self._backend.subtree(chunk, _LOG2_CHUNK_QUADS))
            return
        if self._executor is None:
            if isinstance(self._backend, _PyBackend):
                # forkserver: safe when the caller has threads (fork is not).
                import multiprocessing  # here: ~6 ms of every CLI start otherwise
                from concurrent.futures import ProcessPoolExecutor

                methods = multiprocessing.get_all_start_methods()
                ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else None)
                self._executor = ProcessPoolExecutor(self.jobs, mp_context=ctx)
            else:
                self._executor = ThreadPoolExecutor(self.jobs, thread_name_prefix="pyipld-commp")
        if isinstance(self._backend, _PyBackend):
            self._pending.append(self._executor.submit(_py_subtree_task, bytes(chunk)))
        else:
            self._pending.append(self._executor.submit(self._backend.subtree, chunk, _LOG2_CHUNK_QUADS))
        while len(self._pending) >= 2 * self.jobs:
            self._push(self._pending.popleft().result())

    def _drain(self) -> None:
        while self._pending:
            self._push(self._pending.popleft().result())

    def _push(self, root: bytes) -> None:
        stack = self._stack
        i = 0
        self._chunks += 1
        while i < len(stack) and stack[i] is not None:
            left = stack[i]
            assert left is not None
            if i == len(stack) - 1 or all(s is None for s in stack[i + 1 :]):
                # ``left`` is on the leftmost path (it covers chunk 0): keep its sibling.
                self._right.append(root)
            root = node(left, root)
            stack[i] = None
            i += 1
        if i == len(stack):
            stack.append(root)
        else:
            stack[i] = root

    def push_chunk_roots(self, roots: Iterable[bytes]) -> None:
        """Add whole ``CHUNK_BYTES`` chunks hashed elsewhere (:func:`chunk_roots`), in order.

        For parallel CommP: only at a chunk boundary (nothing buffered yet); :meth:`patch`
        cannot rewrite bytes that came in this way.

        Raises:
            ValueError: bytes are buffered (not at a chunk boundary).
        """
        self._drain()
        if self._buf:
            raise ValueError("chunk roots can only be added at a chunk boundary")
        for root in roots:
            if len(root) != 32:
                raise ValueError(f"a chunk root is 32 bytes, got {len(root)}")
            self._push(root)
            self._size += CHUNK_BYTES

    def digest(self, piece_size: int | None = None) -> PieceInfo:
        """The commitment of everything written so far.

        Args:
            piece_size: pad the piece to this padded size (power of two ≥ the natural size).

        Raises:
            ConfigError: ``piece_size`` is not a power of two, or too small for the payload.
        """
        self._drain()
        natural = padded_piece_size(self._size)
        if piece_size is None:
            size = natural
        else:
            size = check_piece_size(piece_size)
            if size < natural:
                raise ConfigError(f"piece size {size} is too small for {self._size} payload bytes "
                                  f"(needs {natural})")
        height = _height(size)
        tail = bytes(self._buf) + bytes(-len(self._buf) % 127)
        if self._chunks == 0:
            return PieceInfo(_root_of(self._backend, tail, height), self._size, size)
        stack = self._stack
        top = height - _CHUNK_LEVEL
        exact = stack[top] if top < len(stack) else None
        if exact is not None:
            return PieceInfo(exact, self._size, size)  # exactly 2**top chunks, no tail
        # Stack entries are left children; a missing right sibling is a zero subtree.
        zeros = _zero_table()
        carry = _root_of(self._backend, tail, _CHUNK_LEVEL) if tail else None
        for level in range(_CHUNK_LEVEL, height):
            i = level - _CHUNK_LEVEL
            left = stack[i] if i < len(stack) else None
            if left is not None:
                carry = node(left, carry if carry is not None else zeros[level])
            elif carry is not None:
                carry = node(carry, zeros[level])
        assert carry is not None
        return PieceInfo(carry, self._size, size)

    def patch(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Overwrite already-written bytes (e.g. a CAR header whose root was patched on close).

        The range must lie within the first chunk (``CHUNK_BYTES``) or in the not-yet
        hashed tail; the total size does not change.

        Raises:
            ConfigError: the range is outside those regions.
        """
        end = offset + len(data)
        if offset < 0 or end > self._size:
            raise ConfigError(f"patch range {offset}..{end} outside the {self._size} bytes written")
        self._drain()
        hashed = self._size - len(self._buf)
        if offset >= hashed:
            self._buf[offset - hashed : end - hashed] = data
            return
        if end > CHUNK_BYTES or self._first is None:
            raise ConfigError(f"cannot patch bytes {offset}..{end}: only the first {CHUNK_BYTES} bytes "
                              "or the unhashed tail can be rewritten")
        first = bytearray(self._first)
        first[offset:end] = data
        self._first = bytes(first)
        root = self._backend.subtree(self._first, _LOG2_CHUNK_QUADS)
        for sibling in self._right:
            root = node(root, sibling)
        self._stack[len(self._right)] = root

    def close(self) -> None:
        """Stop worker threads or processes (also done by ``with``)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._pending.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CommPWriter(io.RawIOBase):
    """A file wrapper that hashes what is written: a CommP side-tap.

    Writes are passed to ``raw`` and hashed. Seeking back and rewriting bytes
    (a CAR writer patching its header's roots on close) is followed with
    :meth:`CommP.patch` while the rewrite lies within the first ~1 MiB. Anything
    the tap cannot follow (a rewrite further in, a read-back, a truncate) marks it
    stale, and :meth:`digest` then re-reads ``raw`` from the start (which must be
    readable and seekable, e.g. a file opened ``w+b``).
    """

    def __init__(self, raw: IO[bytes], commp: CommP | None = None) -> None:
        super().__init__()
        self.raw = raw
        self.commp = commp or CommP()
        self._pos = raw.tell() if _seekable(raw) else 0
        self._base = self._pos  # hashing starts here
        self.stale = False

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return _seekable(self.raw)

    def readable(self) -> bool:
        try:
            return bool(self.raw.readable())
        except (AttributeError, ValueError, OSError):
            return False

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._pos = self.raw.seek(offset, whence)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(memoryview(buffer)))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        n = self.raw.truncate(size)
        if n - self._base != self.commp.payload_size:
            self.stale = True
        return n

    def write(self, data: Any) -> int:
        mv = memoryview(data).cast("B")
        n = self.raw.write(mv)
        n = len(mv) if n is None else n
        pos = self._pos - self._base
        self._pos += n
        if self.stale:
            return n
        size = self.commp.payload_size
        if pos > size or pos < 0:
            self.stale = True
            return n
        overlap = min(size - pos, n)
        try:
            if overlap > 0:
                self.commp.patch(pos, mv[:overlap])
        except ConfigError:
            self.stale = True
            return n
        if n > overlap:
            self.commp.update(mv[overlap:n])
        return n

    def flush(self) -> None:
        self.raw.flush()

    def digest(self, piece_size: int | None = None) -> PieceInfo:
        """The commitment of the bytes written so far (re-read from ``raw`` if stale)."""
        if not self.stale:
            return self.commp.digest(piece_size)
        if not (self.readable() and self.seekable()):
            raise ConfigError("the CommP tap lost track of a rewrite and cannot re-read its output")
        end = self.raw.seek(0, io.SEEK_END)
        self.raw.seek(self._base)
        with CommP(jobs=self.commp.jobs) as fresh:
            _feed(fresh, self.raw, 4 << 20, None)
            info = fresh.digest(piece_size)
        self.raw.seek(end)
        return info


def _seekable(f: IO[bytes]) -> bool:
    try:
        return bool(f.seekable())
    except (AttributeError, ValueError, OSError):
        return False


def commp_bytes(data: bytes | bytearray | memoryview, *, piece_size: int | None = None,
                jobs: int = 1, backend: str = "auto") -> PieceInfo:
    """CommP of an in-memory payload."""
    with CommP(jobs=jobs, backend=backend) as c:
        c.update(data)
        return c.digest(piece_size)


def commp_file(source: str | os.PathLike[str] | IO[bytes] | Iterable[bytes], *, piece_size: int | None = None,
               jobs: int | None = None, backend: str = "auto",
               progress: Callable[[int], None] | None = None, read_size: int = 4 << 20) -> PieceInfo:
    """CommP of a file (path or binary file object) or an iterable of byte strings, streamed.

    Args:
        progress: called with the byte count of each read.
        jobs: workers (default: all cores).
    """
    with CommP(jobs=jobs or default_jobs(), backend=backend) as c:
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                _feed(c, f, read_size, progress)
        elif hasattr(source, "read"):
            _feed(c, source, read_size, progress)  # type: ignore[arg-type]
        else:
            for block in source:
                c.update(block)
                if progress is not None:
                    progress(len(block))
        return c.digest(piece_size)


def chunk_roots(path: str | os.PathLike[str] | bytes, start: int, stop: int, *, backend: str = "auto") -> list[bytes]:
    """Subtree roots of the ``CHUNK_BYTES`` chunks of ``path`` in ``[start, stop)`` (both multiples
    of ``CHUNK_BYTES``): a task of a parallel CommP (:meth:`CommP.push_chunk_roots`)."""
    if start % CHUNK_BYTES or stop % CHUNK_BYTES:
        raise ValueError(f"chunk range [{start}, {stop}) is not aligned to {CHUNK_BYTES}")
    impl = _get_backend(backend)
    out = []
    with open(path, "rb", buffering=0) as f:
        for off in range(start, stop, CHUNK_BYTES):
            data = os.pread(f.fileno(), CHUNK_BYTES, off)
            if len(data) != CHUNK_BYTES:
                raise OSError(f"{os.fsdecode(path)} shrank while its CommP was computed")
            out.append(impl.subtree(data, _LOG2_CHUNK_QUADS))
    return out


def _feed(c: CommP, f: IO[bytes], read_size: int, progress: Callable[[int], None] | None) -> None:
    while True:
        block = f.read(read_size)
        if not block:
            return
        c.update(block)
        if progress is not None:
            progress(len(block))
