"""kubo's deterministic directory generator (test/cli/testutils, cid_profiles_test.go).

Names come from ONE continuous ChaCha20 stream keyed by sha256(seed): file i
takes ``name_len`` bytes (``last_name_len`` for the last file), each byte b maps
to ``ALPHABET[b % 39]``. Every file holds the single byte ``x``.
(shared/fixtures/kubo/cid-profile-vectors.json "directory files".)
"""

from __future__ import annotations

from pathlib import Path

from tests._deterministic import chacha_bytes

ALPHABET = "abcdefghijklmnopqrstuvwxyz01234567890-_"


def kubo_dir_names(seed: str, files: int, name_len: int, last_name_len: int) -> list[str]:
    stream = chacha_bytes(seed, 1 << 20)
    names = []
    pos = 0
    for i in range(files):
        n = last_name_len if i == files - 1 else name_len
        names.append("".join(ALPHABET[b % 39] for b in stream[pos : pos + n]))
        pos += n
    return names


def make_kubo_dir(root: Path, seed: str, files: int, name_len: int, last_name_len: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in kubo_dir_names(seed, files, name_len, last_name_len):
        (root / name).write_bytes(b"x")
    return root
