"""The gateway-conformance trustless fixtures and their CIDs (shared/spec/trustless-gateway.md §10.2).

Fixtures present in ``shared/fixtures/gateway-conformance/`` are read through
:func:`tests._shared.shared_path`; the three the spec notes list as missing there are
vendored in ``tests/fixtures/gateway-conformance-trustless/`` (SOURCE.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pyipld.blockstore import MemoryBlockstore
from pyipld.car.v1 import CarV1Reader
from pyipld.cid import CID

from ._shared import shared_path

VENDORED = Path(__file__).parent / "fixtures" / "gateway-conformance-trustless"

# A = subdir-with-two-single-block-files.car
A = "bafybeietjm63oynimmv5yyqay33nui4y4wx6u3peezwetxgiwvfmelutzu"
A_SUBDIR = "bafybeiggghzz6dlue3m6nb2dttnbrygxh3lrjl5764f2m4gq7dgzdt55o4"
ASCII = "bafkreifkam6ns4aoolg3wedr4uzrs3kvq66p4pecirz6y2vlrngla62mxm"
HELLO = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
# B = subdir-with-mixed-block-files.car
B = "bafybeidh6k2vzukelqtrjsmd4p52cpmltd2ufqrdtdg6yigi73in672fwu"
B_SUBDIR = "bafybeicnmple4ehlz3ostv2sbojz3zhh5q7tz5r2qkfdpqfilgggeen7xm"
# M = multiblock.txt (1026 bytes, 5 raw leaves)
M = "bafybeigcisqd7m5nf3qmuvjdbakl5bdnh4ocrmacaqkpuh77qjvggmt2sa"
L = [
    "bafkreie5noke3mb7hqxukzcy73nl23k6lxszxi5w3dtmuwz62wnvkpsscm",
    "bafkreih4ephajybraj6wnxsbwjwa77fukurtpl7oj7t7pfq545duhot7cq",
    "bafkreigu7buvm3cfunb35766dn7tmqyh2um62zcio63en2btvxuybgcpue",
    "bafkreicll3huefkc3qnrzeony7zcfo7cr3nbx64hnxrqzsixpceg332fhe",
    "bafkreifst3pqztuvj57lycamoi7z34b4emf7gawxs74nwrc2c7jncmpaqm",
]
# C = single-layer-hamt-with-multi-block-files.car
C = "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i"
SHARD_1 = "bafybeiawjmzmi5c6v5h75nepfpx7jj5ns5t54girned3kilvakmhctxlxy"
SHARD_685 = "bafybeifajm5xyg46n4hjxg7clq2f7vcn7eg7bn3yevylcemr6vd7mp6gta"
HAMT_FIRST_SHARD = "bafybeiaebmuestgbpqhkkbrwl2qtjtvs3whkmp2trkbkimuod4yv7oygni"
HAMT_LAST_SHARD = "bafybeie6yj5zjhxvxqgllcbcq2imcr6llyxxfaypa2itqubsqh4xq3etyi"
HAMT_SHARDS_SHA256 = "50de4a7a42adb79dfe4bf7ac740247ca83d048ee20c1e92c1e7082d75a82001f"
# D = dir-with-dag-cbor-with-links.car
D = "bafybeia264q44a3kmfc2otctzu4egp2k235o3t7mslz2yjraymp4nv6asi"
DOCUMENT = "bafyreidy4q6mmetut5jzc54ambsfnatbyoujmwbfzyyolqw24majazwgha"
# E = dir-with-duplicate-files.car
E = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
# F = file-3k-and-3-blocks-missing-block.car (f1 absent)
F = "QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk"
F0 = "QmPKt7ptM2ZYSGPUc8PmPT2VBkLDK3iqpG9TBJY7PCE9rF"
F1 = "QmSNLTo6Wv9dfroVaw7MFYjLqf9ho7PKrgsjdzYDtv8h1W"
F2 = "QmWXY482zQdwecnfBsj78poUUuPXvyw2JAFAEMw4tzTavV"
# G = gateway-raw-block.car
G = "bafybeie72edlprgtlwwctzljf6gkn2wnlrddqjbkxo3jomh4n7omwblxly"
G_DIR = "bafybeifaqksygmsbnqe76kwvxoqxtkzcwssq5jkhuo65ldtqiunr3bxlra"
G_ASCII = "bafkreihhpc5y2pqvl5rbe5uuyhqjouybfs3rvlmisccgzue2kkt5zq6upq"
INLINED = "bafkqaf3imvwgy3zaneqgc3janfxgy2lomvscay3jmqfa"  # identity: "hello i am inlined cid\n"

SHARED_CARS = {
    "A": "trustless-subdir-with-two-single-block-files.car",
    "D": "trustless-dir-with-dag-cbor-with-links.car",
    "F": "trustless-file-3k-and-3-blocks-missing-block.car",
    "G": "gateway-raw-block.car",
}
VENDORED_CARS = {
    "B": "subdir-with-mixed-block-files.car",
    "C": "single-layer-hamt-with-multi-block-files.car",
    "E": "dir-with-duplicate-files.car",
}


def fixture_car(key: str) -> Path:
    """Path of fixture CAR ``key`` (A…G); skips when a shared one is absent."""
    if key in VENDORED_CARS:
        return VENDORED / VENDORED_CARS[key]
    return shared_path("fixtures", "gateway-conformance", SHARED_CARS[key])


def all_fixture_cars() -> list[Path]:
    return [fixture_car(k) for k in sorted({*SHARED_CARS, *VENDORED_CARS})]


def load_store(*keys: str) -> MemoryBlockstore:
    """A MemoryBlockstore holding every block of the named fixture CARs (all when none named)."""
    store = MemoryBlockstore()
    paths = [fixture_car(k) for k in keys] if keys else all_fixture_cars()
    for path in paths:
        with path.open("rb") as f:
            for section in CarV1Reader(f):
                store.put(bytes(section.cid), bytes(section.data))
    return store


def names(cids: list[bytes]) -> list[str]:
    """Text CIDs as the fixtures spell them (CIDv0 stays ``Qm…``)."""
    return [str(CID.from_bytes(c)) for c in cids]


def hamt_all_ok(got: list[str]) -> bool:
    """True when ``got`` is C followed by its 236 sub-shards in DFS pre-order (HAMTALL)."""
    shards = got[1:]
    return (got[:1] == [C] and len(shards) == 236 and shards[0] == HAMT_FIRST_SHARD and shards[-1] == HAMT_LAST_SHARD
            and hashlib.sha256("\n".join(shards).encode()).hexdigest() == HAMT_SHARDS_SHA256)
