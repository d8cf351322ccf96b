"""Identity keys, PeerId text forms, key files, multiaddrs."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import given
from hypothesis import strategies as st

from pyipld.errors import CIDError, ConfigError, DecodeError
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.peer import (
    Identity,
    KeyType,
    PeerId,
    PublicKey,
    decode_public_key,
    encode_public_key,
)
from tests._libp2p_vectors import vectors


def test_spec_ed25519_vector() -> None:
    v = vectors("peer_id_spec_ed25519")
    ident = Identity.from_seed(bytes.fromhex(v["private_seed"]))
    assert ident.public_key.to_protobuf().hex() == v["public_key_proto"]
    assert ident.peer_id.multihash.hex() == v["peer_id_multihash"]
    assert str(ident.peer_id) == v["peer_id_base58"]
    assert ident.peer_id.to_cid().encode() == v["peer_id_cidv1_base32"]
    assert ident.private_key_protobuf().hex() == v["private_key_proto_64"]
    assert PeerId.decode(v["peer_id_cidv1_base32"]) == ident.peer_id
    assert PeerId.decode(v["peer_id_base58"]).extract_public_key() == ident.public_key


def test_noise_vector_identities() -> None:
    v = vectors("noise_xx")
    ini = Identity.from_seed(bytes.fromhex(v["ed25519_seed_initiator"]))
    res = Identity.from_seed(bytes.fromhex(v["ed25519_seed_responder"]))
    assert ini.public_key.to_protobuf().hex() == v["identity_pubkey_proto_initiator"]
    assert str(ini.peer_id) == v["peer_id_initiator"]
    assert ini.peer_id.to_cid().encode() == v["peer_id_initiator_cid"]
    assert str(res.peer_id) == v["peer_id_responder"]


def test_sha256_peer_id_text() -> None:
    text = vectors("peer_id_sha256_example_base58")
    pid = PeerId.decode(text)
    assert pid.multihash[:2] == b"\x12\x20" and str(pid) == text
    assert pid.extract_public_key() is None


def test_rsa_key_gets_sha256_peer_id_and_verifies() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub = decode_public_key(encode_public_key(KeyType.RSA, der))
    assert str(pub.peer_id).startswith("Qm")
    sig = key.sign(b"msg", padding.PKCS1v15(), hashes.SHA256())
    assert pub.verify(b"msg", sig)
    assert not pub.verify(b"other", sig)


@pytest.mark.parametrize("curve,kt", [(ec.SECP256R1(), KeyType.ECDSA), (ec.SECP256K1(), KeyType.Secp256k1)])
def test_ec_keys_verify(curve: ec.EllipticCurve, kt: KeyType) -> None:
    key = ec.generate_private_key(curve)
    if kt == KeyType.Secp256k1:
        data = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    else:
        data = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    pub = decode_public_key(encode_public_key(kt, data))
    sig = key.sign(b"hello", ec.ECDSA(hashes.SHA256()))
    assert pub.verify(b"hello", sig) and not pub.verify(b"hellO", sig)


def test_ed25519_sign_verify() -> None:
    ident = Identity.generate(lambda n: b"\x07" * n)
    assert ident == Identity.from_seed(b"\x07" * 32)
    sig = ident.sign(b"x")
    assert ident.public_key.verify(b"x", sig)
    assert not ident.public_key.verify(b"y", sig)
    assert not ident.public_key.verify(b"x", sig[:-1] + bytes([sig[-1] ^ 1]))


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        bytes.fromhex("0801"),  # Data missing
        bytes.fromhex("1220") + b"\x00" * 32,  # Type missing
        bytes.fromhex("0807122000") + b"\x00" * 31,  # unknown type 7
        bytes.fromhex("08011210") + b"\x00" * 16,  # ed25519 of 16 bytes
        bytes.fromhex("08001203010203"),  # RSA with junk DER
        bytes.fromhex("0801122a"),  # truncated
        bytes.fromhex("0801122000") + b"\x00" * 31 + b"\x18\x01",  # extra field
    ],
)
def test_bad_public_keys(blob: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_public_key(blob)


@given(st.binary(max_size=80))
def test_decode_public_key_fuzz(blob: bytes) -> None:
    try:
        decode_public_key(blob)
    except DecodeError:
        pass


@pytest.mark.parametrize("text", ["", "12D3KooW", "Qm123", "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",
                                  "1" + "0" * 10])
def test_bad_peer_ids(text: str) -> None:
    with pytest.raises(CIDError):
        PeerId.decode(text)


def test_peer_id_rejects_other_hashes() -> None:
    with pytest.raises(CIDError):
        PeerId(b"\x13\x40" + b"\x00" * 64)  # sha2-512
    with pytest.raises(CIDError):
        PeerId(b"\x00\x2b" + b"\x00" * 43)  # identity longer than 42


def test_key_file_roundtrip(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "key")
    ident = Identity.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Identity.load(path) == ident
    assert Identity.load_or_create(path).peer_id == ident.peer_id
    assert os.listdir(tmp_path) == ["key"]  # no temp file left behind


def test_key_file_legacy_and_errors(tmp_path: os.PathLike[str]) -> None:
    ident = Identity.from_seed(bytes(range(32)))
    legacy = encode_public_key(KeyType.Ed25519, ident.seed + ident.public_key.data * 2)
    assert Identity.from_private_key_protobuf(legacy) == ident
    bad = os.path.join(tmp_path, "bad")
    with open(bad, "wb") as fh:
        fh.write(encode_public_key(KeyType.Ed25519, ident.seed + b"\x00" * 32))  # wrong public half
    with pytest.raises(ConfigError):
        Identity.load(bad)
    with pytest.raises(ConfigError):
        Identity.from_private_key_protobuf(encode_public_key(KeyType.RSA, b"\x00" * 64))
    with pytest.raises(ConfigError):
        Identity.from_seed(b"short")


def test_multiaddr_vectors() -> None:
    for text, hexbin in vectors("multiaddr").items():
        ma = Multiaddr.parse(text)
        assert ma.bytes.hex() == hexbin
        assert str(ma) == text
        assert Multiaddr.from_bytes(bytes.fromhex(hexbin)) == ma


def test_multiaddr_helpers() -> None:
    ma = Multiaddr.parse("/ip4/127.0.0.1/tcp/4001/ipfs/bafzaajaiaejcahwr5d5ofrfbis4l5d6uwr57hu5tjodrypfm6yaq6dsc2r2pzyt6")
    assert str(ma) == "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
    assert ma.tcp_address() == ("127.0.0.1", 4001)
    assert str(ma.peer_id) == "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"
    assert ma.without_peer_id().peer_id is None
    assert Multiaddr.from_tcp("::1", 5, ma.peer_id) == Multiaddr.parse(f"/ip6/::1/tcp/5/p2p/{ma.peer_id}")
    assert Multiaddr.parse("/dns4/example.com/tcp/1").tcp_address() == ("example.com", 1)


@pytest.mark.parametrize(
    "text",
    ["", "ip4/1.2.3.4", "/ip4/1.2.3.4/tcp", "/ip4/300.1.1.1/tcp/1", "/ip4/1.2.3.4/tcp/70000",
     "/udp/1", "/ip4/1.2.3.4/tcp/x", "/p2p/QmNotAPeer"],
)
def test_bad_multiaddrs(text: str) -> None:
    with pytest.raises(DecodeError):
        Multiaddr.parse(text)


def test_tcp_address_requires_tcp() -> None:
    with pytest.raises(DecodeError):
        Multiaddr.parse("/p2p/12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq").tcp_address()


@given(st.ip_addresses(), st.integers(0, 65535))
def test_multiaddr_roundtrip(ip: object, port: int) -> None:
    ma = Multiaddr.from_tcp(str(ip), port)
    assert Multiaddr.from_bytes(ma.bytes) == ma
    assert Multiaddr.parse(str(ma)) == ma


@given(st.binary(max_size=64))
def test_multiaddr_from_bytes_fuzz(blob: bytes) -> None:
    try:
        Multiaddr.from_bytes(blob)
    except DecodeError:
        pass


def test_public_key_dataclass() -> None:
    pk = PublicKey(KeyType.Ed25519, b"\x01" * 32)
    assert PeerId.from_public_key(pk).matches(pk)
