"""Multihash: the hash-function registry and ``code ‖ length ‖ digest`` bytes.

Codes are from the multicodec table; the accepted set is what kubo's
``ipfs add --hash`` accepts and Python can compute (boxo ``verifcid``
allow-list, go-multihash registry; see shared/spec/unixfs-importer.md §2.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from ._varint import decode_varint, encode_varint
from .errors import CIDError, ConfigError

__all__ = [
    "IDENTITY",
    "SHA2_256",
    "HashFunction",
    "decode_multihash",
    "encode_multihash",
    "get_hash",
    "hash_by_code",
    "hash_names",
]

Digester = Callable[[bytes | bytearray | memoryview], bytes]


@dataclass(frozen=True, slots=True)
class HashFunction:
    """One multihash function.

    Attributes:
        name: multicodec name (``sha2-256``).
        code: multicodec code (0x12).
        digest_size: default digest length in bytes (go-multihash "length -1").
        digest: bytes -> digest (of ``digest_size`` bytes).
        prefix: the multihash header ``varint(code) ‖ varint(digest_size)``.
    """

    name: str
    code: int
    digest_size: int
    digest: Digester
    prefix: bytes

    def multihash(self, data: bytes | bytearray | memoryview) -> bytes:
        """The full multihash of ``data``."""
        return self.prefix + self.digest(data)


def _hashlib(name: str, **kw: int) -> Digester:
    ctor = getattr(hashlib, name)

    def digest(data: bytes | bytearray | memoryview) -> bytes:
        return ctor(data, **kw).digest()  # type: ignore[no-any-return]

    return digest


def _shake256(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.shake_256(data).digest(64)  # go-multihash: 256/8*2 bytes


def _dbl_sha256(data: bytes | bytearray | memoryview) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def _blake3(data: bytes | bytearray | memoryview) -> bytes:
    try:
        import blake3  # optional: pip install pyipld[blake3]
    except ImportError as exc:  # pragma: no cover - depends on environment
        raise ConfigError("blake3 needs the 'blake3' package: pip install 'pyipld[blake3]'") from exc
    return blake3.blake3(bytes(data)).digest()


def _keccak(bits: int) -> Digester:
    def digest(data: bytes | bytearray | memoryview) -> bytes:
        try:
            from Crypto.Hash import keccak  # optional: pip install pyipld[keccak]
        except ImportError as exc:  # pragma: no cover - depends on environment
            raise ConfigError(
                f"keccak-{bits} needs the 'pycryptodome' package: pip install 'pyipld[keccak]'"
            ) from exc
        return keccak.new(data=bytes(data), digest_bits=bits).digest()  # type: ignore[no-any-return,unused-ignore]

    return digest


def _identity(data: bytes | bytearray | memoryview) -> bytes:
    return bytes(data)


def _table() -> dict[str, tuple[int, int, Digester]]:
    table: dict[str, tuple[int, int, Digester]] = {
        "identity": (0x00, 0, _identity),
        "sha1": (0x11, 20, _hashlib("sha1")),
        "sha2-256": (0x12, 32, _hashlib("sha256")),
        "sha2-512": (0x13, 64, _hashlib("sha512")),
        "sha3-512": (0x14, 64, _hashlib("sha3_512")),
        "sha3-384": (0x15, 48, _hashlib("sha3_384")),
        "sha3-256": (0x16, 32, _hashlib("sha3_256")),
        "sha3-224": (0x17, 28, _hashlib("sha3_224")),
        "shake-256": (0x19, 64, _shake256),
        "blake3": (0x1E, 32, _blake3),
        "dbl-sha2-256": (0x56, 32, _dbl_sha256),
        # go-multihash registers hashers for keccak-256/512 only (not 224/384).
        "keccak-256": (0x1B, 32, _keccak(256)),
        "keccak-512": (0x1D, 64, _keccak(512)),
    }
    # boxo verifcid: blake2b-160..512 (digest >= 20 bytes)
    for bits in range(160, 513, 8):
        table[f"blake2b-{bits}"] = (0xB200 + bits // 8, bits // 8, _hashlib("blake2b", digest_size=bits // 8))
    # go-multihash registers a blake2s hasher for blake2s-256 only (kubo refuses the others).
    table["blake2s-256"] = (0xB260, 32, _hashlib("blake2s", digest_size=32))
    return table


_BY_NAME: Final[dict[str, HashFunction]] = {
    name: HashFunction(name, code, size, fn, encode_varint(code) + encode_varint(size))
    for name, (code, size, fn) in _table().items()
}
_BY_CODE: Final[dict[int, HashFunction]] = {h.code: h for h in _BY_NAME.values()}

# Names in go-multihash's table that boxo's verifcid does not allow: kubo accepts the flag, then
# fails the add with its own message (checked against kubo 0.22 for md5).
_KNOWN_INSECURE: Final = frozenset({"md5"})

SHA2_256: Final = _BY_NAME["sha2-256"]
IDENTITY: Final = _BY_NAME["identity"]


def hash_names() -> list[str]:
    """Names accepted by :func:`get_hash`, sorted."""
    return sorted(_BY_NAME)


def get_hash(name: str) -> HashFunction:
    """Look a hash function up by multicodec name (case-insensitive, as kubo)."""
    try:
        return _BY_NAME[name.lower()]
    except KeyError:
        pass
    if name.lower() in _KNOWN_INSECURE:  # kubo knows the name; boxo's verifcid refuses the add
        raise ConfigError("potentially insecure hash functions not allowed")
    from .chunker._goparse import go_quote

    raise ConfigError(f"unrecognized hash function: {go_quote(name.lower())}")  # kubo core/commands/add.go


def hash_by_code(code: int) -> HashFunction:
    """Look a hash function up by multicodec code."""
    try:
        return _BY_CODE[code]
    except KeyError:
        raise CIDError(f"unsupported multihash code 0x{code:x}") from None


def encode_multihash(code: int, digest: bytes) -> bytes:
    """``varint(code) ‖ varint(len) ‖ digest``."""
    return encode_varint(code) + encode_varint(len(digest)) + digest


def decode_multihash(data: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, bytes, int]:
    """Parse a multihash at ``offset``.

    Returns:
        ``(code, digest, bytes_read)``.
    """
    code, n1 = decode_varint(data, offset)
    length, n2 = decode_varint(data, offset + n1)
    start = offset + n1 + n2
    if start + length > len(data):
        raise CIDError(
            f"multihash digest length {length} runs past the end of the input at offset {offset}",
            offset=offset,
        )
    return code, bytes(data[start : start + length]), n1 + n2 + length
