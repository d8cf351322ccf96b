"""Deterministic test data exactly as kubo's tests make it.

kubo test/cli/testutils/random_deterministic.go: the first ``size`` bytes of the
ChaCha20 keystream (RFC 8439, 12-byte all-zero nonce, counter 0) keyed by
``sha256(seed)``. ``cryptography`` takes a 16-byte nonce = counter ‖ nonce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

_ZERO_NONCE = bytes(16)


def chacha_stream(seed: str, size: int, *, read_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield ``size`` deterministic bytes in reads of ``read_size``."""
    key = hashlib.sha256(seed.encode("utf-8")).digest()
    encryptor = Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), mode=None).encryptor()
    zeros = bytes(read_size)
    remaining = size
    while remaining > 0:
        n = min(read_size, remaining)
        yield encryptor.update(zeros[:n])
        remaining -= n


def chacha_bytes(seed: str, size: int) -> bytes:
    """All ``size`` bytes of :func:`chacha_stream` at once."""
    return b"".join(chacha_stream(seed, size))
