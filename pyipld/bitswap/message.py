"""Bitswap wire messages (1.2.0, 1.1.0, 1.0.0) and their length-prefixed framing.

Spec: https://specs.ipfs.tech/bitswap-protocol/ and shared/spec/bitswap.md §10.2.
The schema is small and fixed, so the codec is hand-written (proto3 rules:
unknown fields are skipped, defaults are omitted on encode, any field order and
non-minimal varints are accepted on decode). Every length is checked against the
input before anything is sliced, and :class:`MessageReader` checks a frame's
length prefix against ``max_message_bytes`` before buffering the body.

``prefix`` of a payload block is ``varint(version) varint(codec)
varint(mh_code) varint(mh_len)``; :func:`cid_from_prefix` rebuilds the CID by
hashing the data, so a block can only ever be filed under the CID it hashes to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final

from .._pb import encode_pb_varint, iter_fields
from .._varint import decode_varint, encode_varint
from ..cid import CID, DAG_PB
from ..errors import CIDError, DecodeError, LimitExceededError, VarintError
from ..multihash import IDENTITY, hash_by_code

__all__ = [
    "MAX_BLOCK_BYTES",
    "MAX_CID_BYTES",
    "MAX_DIGEST_BYTES",
    "MAX_MESSAGE_BYTES",
    "PROTOCOLS",
    "PROTOCOL_1_0_0",
    "PROTOCOL_1_1_0",
    "PROTOCOL_1_2_0",
    "PROTOCOL_LEGACY",
    "BitswapMessage",
    "BlockPresence",
    "MessageReader",
    "PayloadBlock",
    "Prefix",
    "PresenceType",
    "WantType",
    "WantlistEntry",
    "cid_from_prefix",
    "decode_message",
    "decode_prefix",
    "encode_message",
    "encode_prefix",
    "frame_message",
]

PROTOCOL_1_2_0: Final = "/ipfs/bitswap/1.2.0"
PROTOCOL_1_1_0: Final = "/ipfs/bitswap/1.1.0"
PROTOCOL_1_0_0: Final = "/ipfs/bitswap/1.0.0"
PROTOCOL_LEGACY: Final = "/ipfs/bitswap"  # = 1.0.0
# Proposal order for a dialer (newest first); Helia only speaks 1.2.0.
PROTOCOLS: Final = (PROTOCOL_1_2_0, PROTOCOL_1_1_0, PROTOCOL_1_0_0, PROTOCOL_LEGACY)

# go-bitswap network.MessageSizeMax = 1 << 22; Helia uses 4 MiB both ways too.
MAX_MESSAGE_BYTES: Final = 4 << 20
# The bitswap spec: implementations MUST handle blocks up to 2 MiB.
MAX_BLOCK_BYTES: Final = 2 << 20
# No real CID has a longer digest: boxo verifcid (kubo 0.22's boxo, verifcid/validate.go)
# refuses a multihash with MhLength > maximumHashLength = 128 (identity included, its
# DefaultMaxIdentityDigestSize is 128 too). A wire CID with a longer digest is refused
# at decode, so nothing a peer sends can make a reply grow with the CIDs it names.
MAX_DIGEST_BYTES: Final = 128
# version + codec varint + hash code varint + length varint (9 bytes each at most) + digest
MAX_CID_BYTES: Final = 1 + 9 + 9 + 9 + MAX_DIGEST_BYTES
# A wantlist bigger than this is refused (kubo and Helia cap a peer's wantlist at 1024).
MAX_WANTLIST_ENTRIES: Final = 1024 * 4

BytesLike = bytes | bytearray | memoryview
_VERSIONS: Final = {PROTOCOL_1_2_0: 2, PROTOCOL_1_1_0: 1, PROTOCOL_1_0_0: 0, PROTOCOL_LEGACY: 0}


class WantType(IntEnum):
    """``Message.Wantlist.WantType``."""

    BLOCK = 0
    HAVE = 1


class PresenceType(IntEnum):
    """``Message.BlockPresenceType``."""

    HAVE = 0
    DONT_HAVE = 1


@dataclass(frozen=True, slots=True)
class WantlistEntry:
    """One wantlist entry; ``cid`` is the binary CID (CIDv0 = bare multihash)."""

    cid: bytes
    priority: int = 1
    cancel: bool = False
    want_type: WantType = WantType.BLOCK
    send_dont_have: bool = False


@dataclass(frozen=True, slots=True)
class PayloadBlock:
    """A 1.1.0+ block: CID prefix plus data."""

    prefix: bytes
    data: bytes


@dataclass(frozen=True, slots=True)
class BlockPresence:
    """A 1.2.0 HAVE / DONT_HAVE answer."""

    cid: bytes
    type: PresenceType


@dataclass(frozen=True, slots=True)
class BitswapMessage:
    """A decoded ``Message``.

    Attributes:
        entries: wantlist entries (empty: no wantlist).
        full: the wantlist replaces the receiver's copy.
        blocks: 1.0.0 raw blocks (CIDv0 dag-pb implied).
        payload: 1.1.0+ blocks with prefixes.
        presences: 1.2.0 HAVE / DONT_HAVE.
        pending_bytes: 1.2.0, informational.
    """

    entries: tuple[WantlistEntry, ...] = ()
    full: bool = False
    blocks: tuple[bytes, ...] = ()
    payload: tuple[PayloadBlock, ...] = ()
    presences: tuple[BlockPresence, ...] = ()
    pending_bytes: int = 0
    wantlist_present: bool = field(default=False, compare=False)

    def is_empty(self) -> bool:
        return not (self.entries or self.full or self.blocks or self.payload or self.presences)


# -- protobuf primitives ----------------------------------------------------------------

def _key(number: int, wire: int) -> bytes:
    return bytes((number << 3 | wire,))


def _len_field(number: int, value: bytes) -> bytes:
    return _key(number, 2) + encode_pb_varint(len(value)) + value


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _expect(what: str, name: str, wire: int, want: int) -> None:
    if wire != want:
        raise DecodeError(f"{what}: field {name} has wire type {wire}, expected {want}")


# -- encode ---------------------------------------------------------------------------

def _encode_entry(entry: WantlistEntry, version: int) -> bytes:
    out = _len_field(1, entry.cid)
    if entry.priority:
        out += _key(2, 0) + encode_pb_varint(entry.priority)
    if entry.cancel:
        out += _key(3, 0) + b"\x01"
    if version >= 2:
        if entry.want_type:
            out += _key(4, 0) + encode_pb_varint(int(entry.want_type))
        if entry.send_dont_have:
            out += _key(5, 0) + b"\x01"
    return out


def encode_message(msg: BitswapMessage, protocol: str = PROTOCOL_1_2_0) -> bytes:
    """Encode ``msg`` for a peer speaking ``protocol`` (no length prefix).

    1.0.0 puts block data into ``blocks``; 1.1.0 and 1.2.0 use ``payload``.
    Fields the version lacks (presences, want types) are left out; the caller
    should not ask an old peer for them.
    """
    version = _VERSIONS[protocol]
    parts: list[bytes] = []
    if msg.entries or msg.full:
        body = b"".join(_len_field(1, _encode_entry(e, version)) for e in msg.entries)
        if msg.full:
            body += _key(2, 0) + b"\x01"
        parts.append(_len_field(1, body))
    if version == 0:
        parts.extend(_len_field(2, data) for data in msg.blocks)
        parts.extend(_len_field(2, block.data) for block in msg.payload)
    else:
        for block in msg.payload:
            parts.append(_len_field(3, _len_field(1, block.prefix) + _len_field(2, block.data)))
    if version >= 2:
        for presence in msg.presences:
            body = _len_field(1, presence.cid)
            if presence.type:
                body += _key(2, 0) + encode_pb_varint(int(presence.type))
            parts.append(_len_field(4, body))
        if msg.pending_bytes:
            parts.append(_key(5, 0) + encode_pb_varint(msg.pending_bytes))
    return b"".join(parts)


def frame_message(msg: BitswapMessage, protocol: str = PROTOCOL_1_2_0,
                  *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """``varint(len) ‖ encode_message(msg)``; refuses to build an oversized frame."""
    body = encode_message(msg, protocol)
    if len(body) > max_message_bytes:
        raise LimitExceededError(f"bitswap message of {len(body)} bytes > max_message_bytes={max_message_bytes}")
    return encode_varint(len(body)) + body


# -- decode ---------------------------------------------------------------------------

def _check_cid(raw: memoryview, what: str) -> bytes:
    """A wire CID, parsed; refused when its digest is longer than any real one."""
    if len(raw) > MAX_CID_BYTES:  # before parsing: never copy a megabyte "CID"
        raise DecodeError(f"{what}: CID of {len(raw)} bytes > {MAX_CID_BYTES} "
                          f"(digests are at most MAX_DIGEST_BYTES={MAX_DIGEST_BYTES}, boxo verifcid)")
    try:
        cid = CID.from_bytes(raw)
        digest_len = len(cid.multihash) - _mh_header_len(cid.multihash)
    except (CIDError, VarintError) as exc:
        raise DecodeError(f"{what}: invalid CID: {exc}") from exc
    if digest_len > MAX_DIGEST_BYTES:
        raise DecodeError(f"{what}: CID digest of {digest_len} bytes > MAX_DIGEST_BYTES={MAX_DIGEST_BYTES} "
                          "(boxo verifcid maximumHashLength)")
    return cid.bytes


def _mh_header_len(mh: bytes) -> int:
    _, n1 = decode_varint(mh)
    _, n2 = decode_varint(mh, n1)
    return n1 + n2


def _decode_entry(buf: memoryview) -> WantlistEntry:
    what = "bitswap Wantlist.Entry"
    cid: bytes | None = None
    priority = 0
    cancel = False
    want_type = WantType.BLOCK
    send_dont_have = False
    for number, wire, value in iter_fields(buf, what, copy=False):
        if number == 1:
            _expect(what, "block", wire, 2)
            assert isinstance(value, memoryview)
            cid = _check_cid(value, what)
        elif number == 2:
            _expect(what, "priority", wire, 0)
            assert isinstance(value, int)
            priority = _int32(value)
        elif number == 3:
            _expect(what, "cancel", wire, 0)
            cancel = bool(value)
        elif number == 4:
            _expect(what, "wantType", wire, 0)
            assert isinstance(value, int)
            if value not in (0, 1):
                raise DecodeError(f"{what}: unknown wantType {value}")
            want_type = WantType(value)
        elif number == 5:
            _expect(what, "sendDontHave", wire, 0)
            send_dont_have = bool(value)
    if cid is None:
        raise DecodeError(f"{what}: entry without a CID")
    return WantlistEntry(cid, priority, cancel, want_type, send_dont_have)


def decode_message(data: BytesLike, *, max_block_bytes: int = MAX_BLOCK_BYTES,
                   max_entries: int = MAX_WANTLIST_ENTRIES) -> BitswapMessage:
    """Decode one message body (without its length prefix).

    Raises:
        DecodeError: malformed protobuf, a bad CID, an unknown enum value.
        LimitExceededError: a block larger than ``max_block_bytes`` or more
            than ``max_entries`` wantlist entries.
    """
    what = "bitswap Message"
    buf = memoryview(data)
    entries: list[WantlistEntry] = []
    full = False
    wantlist_present = False
    blocks: list[bytes] = []
    payload: list[PayloadBlock] = []
    presences: list[BlockPresence] = []
    pending = 0
    for number, wire, value in iter_fields(buf, what, copy=False):
        if number == 1:
            _expect(what, "wantlist", wire, 2)
            assert isinstance(value, memoryview)
            wantlist_present = True
            for n2, w2, v2 in iter_fields(value, "bitswap Wantlist", copy=False):
                if n2 == 1:
                    _expect("bitswap Wantlist", "entries", w2, 2)
                    assert isinstance(v2, memoryview)
                    if len(entries) >= max_entries:
                        raise LimitExceededError(f"bitswap wantlist has more than max_entries={max_entries} entries")
                    entries.append(_decode_entry(v2))
                elif n2 == 2:
                    _expect("bitswap Wantlist", "full", w2, 0)
                    full = bool(v2)
        elif number == 2:
            _expect(what, "blocks", wire, 2)
            assert isinstance(value, memoryview)
            _check_block_size(len(value), max_block_bytes)
            blocks.append(bytes(value))
        elif number == 3:
            _expect(what, "payload", wire, 2)
            assert isinstance(value, memoryview)
            prefix = b""
            block = b""
            for n2, w2, v2 in iter_fields(value, "bitswap Block", copy=False):
                if n2 == 1:
                    _expect("bitswap Block", "prefix", w2, 2)
                    assert isinstance(v2, memoryview)
                    prefix = bytes(v2)
                elif n2 == 2:
                    _expect("bitswap Block", "data", w2, 2)
                    assert isinstance(v2, memoryview)
                    _check_block_size(len(v2), max_block_bytes)
                    block = bytes(v2)
            decode_prefix(prefix)  # reject garbage early
            payload.append(PayloadBlock(prefix, block))
        elif number == 4:
            _expect(what, "blockPresences", wire, 2)
            assert isinstance(value, memoryview)
            cid: bytes | None = None
            kind = PresenceType.HAVE
            for n2, w2, v2 in iter_fields(value, "bitswap BlockPresence", copy=False):
                if n2 == 1:
                    _expect("bitswap BlockPresence", "cid", w2, 2)
                    assert isinstance(v2, memoryview)
                    cid = _check_cid(v2, "bitswap BlockPresence")
                elif n2 == 2:
                    _expect("bitswap BlockPresence", "type", w2, 0)
                    if v2 not in (0, 1):
                        raise DecodeError(f"bitswap BlockPresence: unknown type {v2}")
                    assert isinstance(v2, int)
                    kind = PresenceType(v2)
            if cid is None:
                raise DecodeError("bitswap BlockPresence without a CID")
            presences.append(BlockPresence(cid, kind))
        elif number == 5:
            _expect(what, "pendingBytes", wire, 0)
            assert isinstance(value, int)
            pending = _int32(value)
    return BitswapMessage(tuple(entries), full, tuple(blocks), tuple(payload), tuple(presences),
                          pending, wantlist_present)


def _check_block_size(size: int, limit: int) -> None:
    if size > limit:
        raise LimitExceededError(f"bitswap block of {size} bytes > max_block_bytes={limit}")


class MessageReader:
    """Push parser for a stream of ``varint(len) ‖ message`` frames.

    The length prefix is checked against ``max_message_bytes`` as soon as it
    is complete, before the body is buffered, so memory stays below one
    maximum-size message per stream.
    """

    def __init__(self, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_message_bytes = max_message_bytes
        self._prefix = bytearray()  # a length prefix split across feeds (< 10 bytes)
        self._need: int | None = None  # body length once the prefix is read
        self._parts: list[bytes | memoryview] = []  # the body so far, as it arrived
        self._held = 0  # bytes in _parts

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._prefix) + self._held

    def feed(self, data: BytesLike) -> list[bytes]:
        """Add bytes; return the complete message bodies (possibly none).

        Raises:
            LimitExceededError: a length prefix above ``max_message_bytes``.
            VarintError: a malformed length prefix.
        """
        return [body if isinstance(body, bytes) else bytes(body) for body in self.feed_views(data)]

    def feed_views(self, data: BytesLike) -> list[BytesLike]:
        """:meth:`feed`, but bodies wholly inside an immutable argument (``bytes``, or a
        read-only view of one) come back as views of it: no copy. A body that arrives in
        pieces is joined once, when its last piece is here.

        Raises:
            LimitExceededError: a length prefix above ``max_message_bytes``.
            VarintError: a malformed length prefix.
        """
        if not (isinstance(data, bytes) or (isinstance(data, memoryview) and isinstance(data.obj, bytes))):
            data = bytes(data)  # the caller may reuse its buffer: keep nothing that aliases it
        view = memoryview(data)
        out: list[BytesLike] = []
        pos = 0
        if self._need is not None:  # the rest of a body
            missing = self._need - self._held
            if len(view) < missing:
                if len(view):
                    self._keep(view)
                return out
            self._parts.append(view[:missing])
            out.append(b"".join(self._parts))
            self._parts.clear()
            self._held = 0
            self._need = None
            pos = missing
        elif self._prefix:  # the rest of a length prefix
            take = min(len(view), 10 - len(self._prefix))
            head = bytes(self._prefix) + bytes(view[:take])
            length, n = self._read_prefix(head)
            if length is None:
                self._prefix[:] = head
                return out
            self._prefix.clear()
            pos = n - (len(head) - take)  # prefix bytes that came from ``data``
            self._need = length
            return self.feed_views(view[pos:])  # also completes an empty body (nothing is in `out` yet)
        out.extend(self._feed_in_place(view, pos))
        return out

    def _keep(self, piece: memoryview) -> None:
        """Hold part of a body: a view when it is most of the chunk under it, else a copy
        (a small tail must not pin a large chunk that ``buffered`` does not count)."""
        under = piece.obj
        self._parts.append(piece if 2 * len(piece) >= len(under) else bytes(piece))  # type: ignore[arg-type]
        self._held += len(piece)

    def _read_prefix(self, data: BytesLike, pos: int = 0) -> tuple[int | None, int]:
        """(body length, prefix bytes) at ``pos``; (None, 0) while the prefix is still arriving."""
        try:
            length, n = decode_varint(data, pos)
        except VarintError:
            rest = data[pos:]
            if len(rest) < 9 and all(b & 0x80 for b in rest):
                return None, 0  # the prefix is still arriving
            raise
        if length > self.max_message_bytes:
            raise LimitExceededError(
                f"bitswap message length {length} > max_message_bytes={self.max_message_bytes}")
        return length, n

    def _feed_in_place(self, view: memoryview, pos: int) -> list[BytesLike]:
        out: list[BytesLike] = []
        end = len(view)
        while pos < end:
            length, n = self._read_prefix(view, pos)
            if length is None:
                self._prefix += view[pos:]
                break
            if end - pos - n < length:
                self._need = length
                self._keep(view[pos + n :])
                break
            out.append(view[pos + n : pos + n + length])
            pos += n + length
        return out

    def at_boundary(self) -> bool:
        """True when no partial frame is buffered (a clean place for EOF)."""
        return self._need is None and not self._prefix


# -- CID prefixes ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Prefix:
    """The parts of a CID that are not the digest."""

    version: int
    codec: int
    mh_code: int
    mh_length: int


def encode_prefix(cid: bytes) -> bytes:
    """The bitswap prefix of a binary CID."""
    parsed = CID.from_bytes(cid)
    code, n1 = decode_varint(parsed.multihash)
    length, _ = decode_varint(parsed.multihash, n1)
    return (encode_varint(parsed.version) + encode_varint(parsed.codec)
            + encode_varint(code) + encode_varint(length))


def decode_prefix(prefix: BytesLike) -> Prefix:
    """Parse a bitswap CID prefix.

    Raises:
        CIDError: malformed, trailing bytes, or a version other than 0/1.
    """
    try:
        version, i = decode_varint(prefix)
        codec, n = decode_varint(prefix, i)
        i += n
        code, n = decode_varint(prefix, i)
        i += n
        length, n = decode_varint(prefix, i)
        i += n
    except VarintError as exc:
        raise CIDError(f"bad bitswap CID prefix {bytes(prefix).hex()}: {exc}") from exc
    if i != len(prefix):
        raise CIDError(f"bad bitswap CID prefix {bytes(prefix).hex()}: {len(prefix) - i} trailing bytes")
    if version not in (0, 1):
        raise CIDError(f"bad bitswap CID prefix: CID version {version}")
    if version == 0 and (codec != DAG_PB or code != 0x12 or length != 32):
        raise CIDError("bad bitswap CID prefix: CIDv0 must be dag-pb sha2-256/32")
    return Prefix(version, codec, code, length)


def cid_from_prefix(prefix: BytesLike, data: BytesLike) -> bytes:
    """Rebuild the binary CID of ``data`` from a bitswap prefix by hashing it.

    A shorter ``mh_length`` than the hash's digest truncates the digest, as
    go-multihash ``Sum`` does; a longer one is an error.

    Raises:
        CIDError: bad prefix, unsupported or identity hash, bad digest length.
    """
    p = decode_prefix(prefix)
    fn = hash_by_code(p.mh_code)
    if fn is IDENTITY:
        raise CIDError("bitswap block with an identity-hash prefix (identity CIDs are never sent)")
    if not 20 <= p.mh_length <= fn.digest_size:  # boxo verifcid: digests under 20 bytes are insecure
        raise CIDError(f"bitswap prefix digest length {p.mh_length} not in 20..{fn.digest_size} for {fn.name}")
    digest = fn.digest(data)[: p.mh_length]
    mh = encode_varint(fn.code) + encode_varint(p.mh_length) + digest
    if p.version == 0:
        return mh
    return b"\x01" + encode_varint(p.codec) + mh
