"""libp2p identities: keys, the PublicKey protobuf, PeerId, key files.

Spec: https://github.com/libp2p/specs/blob/master/peer-ids/peer-ids.md

* A public key travels as the protobuf ``PublicKey {Type = 1; Data = 2}``,
  always field 1 then field 2 with minimal varints (it is hashed).
* The peer id is the multihash of that encoding: identity multihash when the
  encoding is at most 42 bytes (Ed25519: ``00 24 08 01 12 20 <pub32>``, text
  ``12D3KooW…``), sha2-256 otherwise (RSA: ``Qm…``).
* Text forms: bare base58btc of the multihash, or a CIDv1 with codec
  ``libp2p-key`` (0x72), base32 by default (``bafzaa…``).

We generate Ed25519 identities only, and verify Ed25519, RSA, secp256k1 and
ECDSA signatures (older kubo nodes have RSA identities).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .._atomic import atomic_output
from .._pb import WIRE_LEN, WIRE_VARINT, field_bytes, field_varint, iter_fields
from .._varint import encode_varint
from ..cid import CID, b58decode, b58encode
from ..errors import CIDError, ConfigError, DecodeError
from ..multihash import decode_multihash

__all__ = [
    "LIBP2P_KEY_CODEC",
    "Identity",
    "KeyType",
    "PeerId",
    "PublicKey",
    "decode_public_key",
    "encode_public_key",
]

LIBP2P_KEY_CODEC: Final = 0x72  # multicodec "libp2p-key"
_MAX_INLINE_KEY: Final = 42  # peer-ids spec: keys <= 42 bytes use the identity multihash
_MAX_KEY_PROTO: Final = 8192  # RSA-8192 DER is ~1 KiB; anything bigger is hostile
_MAX_RSA_BITS: Final = 8192


class KeyType(IntEnum):
    """``KeyType`` enum of the libp2p key protobuf."""

    RSA = 0
    Ed25519 = 1
    Secp256k1 = 2
    ECDSA = 3


def encode_public_key(key_type: KeyType | int, data: bytes) -> bytes:
    """Deterministic ``PublicKey`` protobuf (field 1 then field 2)."""
    return field_varint(1, int(key_type)) + field_bytes(2, data)


def _decode_key_proto(data: bytes | bytearray | memoryview, what: str) -> tuple[KeyType, bytes]:
    if len(data) > _MAX_KEY_PROTO:
        raise DecodeError(f"{what}: {len(data)} bytes > {_MAX_KEY_PROTO}")
    key_type: int | None = None
    body: bytes | None = None
    for number, wire, value in iter_fields(data, what):
        if number == 1 and wire == WIRE_VARINT:
            assert isinstance(value, int)
            key_type = value
        elif number == 2 and wire == WIRE_LEN:
            assert isinstance(value, bytes)
            body = value
        else:
            raise DecodeError(f"{what}: unexpected field {number} (wire type {wire})")
    if key_type is None or body is None:
        raise DecodeError(f"{what}: Type and Data are both required")
    try:
        kt = KeyType(key_type)
    except ValueError:
        raise DecodeError(f"{what}: unknown key type {key_type}") from None
    return kt, body


def decode_public_key(data: bytes | bytearray | memoryview) -> PublicKey:
    """Parse a ``PublicKey`` protobuf.

    Raises:
        DecodeError: malformed protobuf, unknown key type or invalid key bytes.
    """
    kt, body = _decode_key_proto(data, "PublicKey")
    key = PublicKey(kt, body)
    key._load()  # validate now, not at first verify
    return key


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A libp2p public key: type plus the type-specific ``Data`` bytes."""

    key_type: KeyType
    data: bytes

    def to_protobuf(self) -> bytes:
        """The ``PublicKey`` protobuf (what identify and Noise carry)."""
        return encode_public_key(self.key_type, self.data)

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_public_key(self)

    def _load(self) -> object:
        try:
            if self.key_type == KeyType.Ed25519:
                if len(self.data) != 32:
                    raise DecodeError(f"Ed25519 public key is {len(self.data)} bytes, not 32")
                return ed25519.Ed25519PublicKey.from_public_bytes(self.data)
            if self.key_type == KeyType.Secp256k1:
                return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), self.data)
            key = serialization.load_der_public_key(self.data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise DecodeError(f"invalid {self.key_type.name} public key: {exc}") from exc
        if self.key_type == KeyType.RSA:
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size > _MAX_RSA_BITS:
                raise DecodeError("RSA key type with a non-RSA or oversized key")
        elif not isinstance(key, ec.EllipticCurvePublicKey):
            raise DecodeError("ECDSA key type with a non-EC key")
        return key

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's signature of ``message`` (libp2p rules)."""
        try:
            key = self._load()
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            elif isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
            else:  # pragma: no cover - _load only returns the types above
                return False
        except (InvalidSignature, DecodeError, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class PeerId:
    """A peer id: the multihash bytes of the peer's encoded public key."""

    multihash: bytes

    def __post_init__(self) -> None:
        try:
            code, digest, n = decode_multihash(self.multihash)
        except DecodeError as exc:
            raise CIDError(f"invalid peer id multihash: {exc}") from exc
        if n != len(self.multihash):
            raise CIDError("trailing bytes after peer id multihash")
        if code == 0x00:
            if len(digest) > _MAX_INLINE_KEY:
                raise CIDError(f"identity peer id of {len(digest)} bytes > {_MAX_INLINE_KEY}")
        elif code == 0x12:
            if len(digest) != 32:
                raise CIDError("sha2-256 peer id with a digest that is not 32 bytes")
        else:
            raise CIDError(f"peer id multihash code 0x{code:x} is neither identity nor sha2-256")

    @classmethod
    def from_public_key(cls, key: PublicKey) -> PeerId:
        encoded = key.to_protobuf()
        if len(encoded) <= _MAX_INLINE_KEY:
            return cls(b"\x00" + encode_varint(len(encoded)) + encoded)
        return cls(b"\x12\x20" + hashlib.sha256(encoded).digest())

    @classmethod
    def decode(cls, text: str) -> PeerId:
        """Parse ``12D3KooW…``/``Qm…`` (base58btc multihash) or a libp2p-key CIDv1.

        Raises:
            CIDError: not a peer id.
        """
        text = text.strip()
        if text.startswith(("1", "Qm")):
            return cls(b58decode(text))
        cid = CID.decode(text)
        if cid.version != 1 or cid.codec != LIBP2P_KEY_CODEC:
            raise CIDError(f"{text!r} is a CID but not a libp2p-key CIDv1")
        return cls(cid.multihash)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> PeerId:
        return cls(bytes(data))

    def to_base58(self) -> str:
        return b58encode(self.multihash)

    def to_cid(self) -> CID:
        return CID(1, LIBP2P_KEY_CODEC, self.multihash)

    def extract_public_key(self) -> PublicKey | None:
        """The key inlined in an identity peer id, else None."""
        code, digest, _ = decode_multihash(self.multihash)
        return decode_public_key(digest) if code == 0x00 else None

    def matches(self, key: PublicKey) -> bool:
        return PeerId.from_public_key(key) == self

    def __str__(self) -> str:
        return self.to_base58()

    def __repr__(self) -> str:
        return f"PeerId({self.to_base58()!r})"


@dataclass(frozen=True)
class Identity:
    """Our own Ed25519 identity (private key), with its public key and peer id."""

    seed: bytes
    _key: ed25519.Ed25519PrivateKey = field(repr=False, compare=False)
    public_key: PublicKey = field(compare=False)

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """The identity of a 32-byte Ed25519 seed (RFC 8032 private key)."""
        if len(seed) != 32:
            raise ConfigError(f"Ed25519 seed must be 32 bytes, got {len(seed)}")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(bytes(seed), key, PublicKey(KeyType.Ed25519, pub))

    @classmethod
    def generate(cls, randbytes: Callable[[int], bytes] = os.urandom) -> Identity:
        """A fresh identity; ``randbytes`` is injectable for reproducible tests."""
        return cls.from_seed(randbytes(32))

    @property
    def peer_id(self) -> PeerId:
        return PeerId.from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    def private_key_protobuf(self) -> bytes:
        """``PrivateKey`` protobuf, Data = seed ‖ public key (64 bytes, go/js form)."""
        return encode_public_key(KeyType.Ed25519, self.seed + self.public_key.data)

    @classmethod
    def from_private_key_protobuf(cls, data: bytes) -> Identity:
        """Parse a ``PrivateKey`` protobuf (Ed25519; 64-byte or legacy 96-byte Data)."""
        kt, body = _decode_key_proto(data, "PrivateKey")
        if kt != KeyType.Ed25519:
            raise ConfigError(f"only Ed25519 identities are supported, not {kt.name}")
        if len(body) == 96 and body[32:64] == body[64:]:
            body = body[:64]  # legacy go form: seed ‖ pub ‖ pub
        if len(body) != 64:
            raise DecodeError(f"Ed25519 private key Data is {len(body)} bytes, not 64")
        ident = cls.from_seed(body[:32])
        if ident.public_key.data != body[32:]:
            raise DecodeError("Ed25519 private key: public half does not match the seed")
        return ident

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the PrivateKey protobuf atomically (temp file + rename), mode 0600."""
        with atomic_output(path, fsync=True, private=True) as fh:
            fh.write(self.private_key_protobuf())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file written by :meth:`save`."""
        with open(path, "rb") as fh:
            data = fh.read(_MAX_KEY_PROTO + 1)
        try:
            return cls.from_private_key_protobuf(data)
        except DecodeError as exc:
            raise ConfigError(f"key file {os.fspath(path)!r}: {exc}") from exc

    @classmethod
    def load_or_create(cls, path: str | os.PathLike[str]) -> Identity:
        """Load ``path``, or generate an identity and save it there first."""
        if Path(path).exists():
            return cls.load(path)
        ident = cls.generate()
        ident.save(path)
        return ident
