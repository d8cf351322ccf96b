"""CIDs: binary form, text form (CIDv0 base58btc, CIDv1 base32), and the builder
the importer uses to name every block.

The hot path (one CID per block) builds CID bytes by concatenating a
pre-computed prefix and a digest; :class:`CID` is the value type at API edges.
Text forms other than ``Qm…`` and ``b…`` are parsed through ``multiformats``.
"""

from __future__ import annotations

import base64
import builtins
from dataclasses import dataclass, field
from typing import Final

from ._varint import decode_varint, encode_varint
from .errors import CIDError, ConfigError
from .multihash import IDENTITY, SHA2_256, HashFunction, decode_multihash, get_hash, hash_by_code

__all__ = ["CID", "CODEC_NAMES", "DAG_CBOR", "DAG_PB", "RAW", "CidBuilder"]

DAG_PB: Final = 0x70
RAW: Final = 0x55
DAG_CBOR: Final = 0x71
CODEC_NAMES: Final = {DAG_PB: "dag-pb", RAW: "raw", DAG_CBOR: "dag-cbor", 0x0129: "dag-json",
                      0x51: "cbor", 0x0200: "json", 0xF101: "fil-commitment-unsealed"}

_B58: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX: Final = {c: i for i, c in enumerate(_B58)}
_CIDV0_PREFIX: Final = b"\x12\x20"  # sha2-256, 32 bytes
MAX_IDENTITY_DIGEST: Final = 128  # boxo verifcid.DefaultMaxIdentityDigestSize


_B58_PAIRS: Final = [a + b for a in _B58 for b in _B58]  # q * 58 + r -> the digits q, r


def b58encode(data: bytes) -> str:
    """Bitcoin base58 (multibase ``z`` without the prefix).

    Two digits per big-integer division (``add -r`` prints a CID per file: 8 -> 5 µs each)."""
    n = int.from_bytes(data, "big")
    out = []
    while n >= 3364:  # 58 ** 2
        n, r = divmod(n, 3364)
        out.append(_B58_PAIRS[r])
    head = (_B58_PAIRS[n] if n >= 58 else _B58[n]) if n else ""  # no leading "1" from a lone high digit
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + head + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    """Inverse of :func:`b58encode`."""
    n = 0
    try:
        for ch in text:
            n = n * 58 + _B58_INDEX[ch]
    except KeyError:
        raise CIDError(f"invalid base58 character in {text!r}") from None
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def b32encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase ``b`` without prefix)."""
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def b32decode(text: str) -> bytes:
    try:
        return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except ValueError:
        raise CIDError(f"invalid base32 in {text!r}") from None


@dataclass(frozen=True, slots=True)
class CID:
    """A content identifier.

    Attributes:
        version: 0 or 1.
        codec: multicodec of the block (0x70 dag-pb, 0x55 raw, ...).
        multihash: the multihash bytes (``code ‖ len ‖ digest``).
    """

    version: int
    codec: int
    multihash: bytes
    _bytes: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.version == 0:
            if self.codec != DAG_PB or not (self.multihash.startswith(_CIDV0_PREFIX) and len(self.multihash) == 34):
                raise CIDError("CIDv0 is only dag-pb with a sha2-256 multihash")
            raw = self.multihash
        elif self.version == 1:
            raw = b"\x01" + encode_varint(self.codec) + self.multihash
        else:
            raise CIDError(f"unsupported CID version {self.version}")
        object.__setattr__(self, "_bytes", raw)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: builtins.bytes | bytearray | memoryview) -> CID:
        """Parse a complete binary CID (no trailing bytes allowed)."""
        cid, n = cls.decode_prefix(data)
        if n != len(data):
            raise CIDError(f"{len(data) - n} trailing bytes after CID")
        return cid

    @classmethod
    def decode_prefix(cls, data: builtins.bytes | bytearray | memoryview, offset: int = 0) -> tuple[CID, int]:
        """Parse a binary CID at ``offset`` that may be followed by more bytes.

        Returns:
            ``(cid, bytes_read)``.
        """
        if len(data) - offset >= 2 and data[offset] == 0x12 and data[offset + 1] == 0x20:
            if len(data) - offset < 34:
                raise CIDError(f"truncated CIDv0 at offset {offset}", offset=offset)
            return cls(0, DAG_PB, bytes(data[offset : offset + 34])), 34
        version, n1 = decode_varint(data, offset)
        if version != 1:
            raise CIDError(f"unsupported CID version {version} at offset {offset}", offset=offset)
        codec, n2 = decode_varint(data, offset + n1)
        _, _, n3 = decode_multihash(data, offset + n1 + n2)
        start = offset + n1 + n2
        return cls(1, codec, bytes(data[start : start + n3])), n1 + n2 + n3

    @classmethod
    def decode(cls, text: str) -> CID:
        """Parse the text form of a CID (``Qm…``, ``b…`` or any multibase)."""
        if not isinstance(text, str):
            raise CIDError(f"a CID's text form is a str, not a {type(text).__name__} (binary: CID.from_bytes)")
        text = text.strip()
        if not text:
            raise CIDError("empty CID")
        if len(text) == 46 and text.startswith("Qm"):
            return cls.from_bytes(b58decode(text))
        if text[0] == "b":
            return cls.from_bytes(b32decode(text[1:]))
        if text[0] == "z":
            return cls.from_bytes(b58decode(text[1:]))
        try:
            import multiformats

            parsed = multiformats.CID.decode(text)
        except Exception as exc:  # multiformats raises several unrelated types
            raise CIDError(f"invalid CID {text!r}: {exc}") from exc
        return cls.from_bytes(bytes(parsed))

    @classmethod
    def parse(cls, value: CID | str | builtins.bytes) -> CID:
        """Accept a CID, its text form, or its binary form."""
        if isinstance(value, CID):
            return value
        if isinstance(value, str):
            return cls.decode(value)
        if not isinstance(value, (builtins.bytes, bytearray, memoryview)):
            raise CIDError(f"a CID is a CID, its text or its bytes, not a {type(value).__name__}")
        return cls.from_bytes(value)

    # -- views -----------------------------------------------------------------------
    @property
    def bytes(self) -> builtins.bytes:
        """The binary CID."""
        return self._bytes

    @property
    def hash_code(self) -> int:
        return decode_varint(self.multihash)[0]

    @property
    def digest(self) -> builtins.bytes:
        return decode_multihash(self.multihash)[1]

    def encode(self) -> str:
        """Text form as kubo prints it: base58btc for v0, base32 for v1."""
        if self.version == 0:
            return b58encode(self._bytes)
        return "b" + b32encode(self._bytes)

    def __str__(self) -> str:
        return self.encode()

    def __repr__(self) -> str:
        return f"CID({self.encode()!r})"

    def to_v1(self) -> CID:
        return CID(1, self.codec, self.multihash)

    def verify(self, data: builtins.bytes | bytearray | memoryview) -> bool:
        """True when ``data`` hashes to this CID's multihash."""
        code, digest, _ = decode_multihash(self.multihash)
        fn = hash_by_code(code)
        if fn is IDENTITY:
            return bytes(data) == digest
        if len(digest) != fn.digest_size:
            return False
        return fn.digest(data) == digest


@dataclass(frozen=True, slots=True)
class CidBuilder:
    """Names blocks the way kubo's adder does (version, hash, optional inlining).

    ``inline_limit`` not ``None`` turns on go-cidutil's InlineBuilder: a block of at
    most that many bytes (``len <= limit``, so 0 inlines the empty block) gets an
    identity-multihash CIDv1 of the same codec.
    """

    version: int = 0
    hash: HashFunction = SHA2_256
    inline_limit: int | None = None

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise ConfigError(f"unknown CID version: {self.version}")
        if self.version == 0 and self.hash is not SHA2_256:
            raise ConfigError("CIDv0 only supports sha2-256")

    @classmethod
    def create(cls, version: int = 0, hash_name: str = "sha2-256", inline_limit: int | None = None) -> CidBuilder:
        return cls(version, get_hash(hash_name), inline_limit)

    def cid_bytes(self, codec: int, data: bytes | bytearray | memoryview) -> bytes:
        """Binary CID of a block of ``codec`` holding ``data``."""
        if self.inline_limit is not None and len(data) <= self.inline_limit:
            return b"\x01" + encode_varint(codec) + b"\x00" + encode_varint(len(data)) + bytes(data)
        if self.hash is IDENTITY:
            if len(data) > MAX_IDENTITY_DIGEST:  # boxo verifcid.DefaultMaxIdentityDigestSize
                raise ConfigError(
                    f"identity hash digest too large: block of {len(data)} bytes > {MAX_IDENTITY_DIGEST}"
                )
            return b"\x01" + encode_varint(codec) + b"\x00" + encode_varint(len(data)) + bytes(data)
        mh = self.hash.prefix + self.hash.digest(data)
        if codec == RAW or self.version == 1:  # raw leaves are always CIDv1 (go-cid)
            return b"\x01" + encode_varint(codec) + mh
        return mh

    def cid(self, codec: int, data: bytes | bytearray | memoryview) -> CID:
        return CID.from_bytes(self.cid_bytes(codec, data))
