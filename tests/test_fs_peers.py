"""ipfs:// from bitswap peers (our own server, in-process on 127.0.0.1): honest and hostile."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fsspec")
trio = pytest.importorskip("trio")

from pyipld.bitswap.server import BitswapServer
from pyipld.blockstore import MemoryBlockstore
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_file

from ._deterministic import chacha_bytes
from ._fs import build_car


class _Liar(MemoryBlockstore):
    """Has every block, sends wrong bytes for each."""

    def get(self, cid: bytes) -> bytes:
        return b"not the block " + super().get(cid)[:16]


@contextmanager
def bitswap_server(store: MemoryBlockstore) -> Iterator[str]:
    """A BitswapServer in a trio thread on 127.0.0.1; yields its /p2p/ multiaddr."""
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        server = BitswapServer(store)
        with trio.fail_after(120):  # bounded even if the test hangs
            async with trio.open_nursery() as nursery:
                addrs = await nursery.start(server.serve, "/ip4/127.0.0.1/tcp/0")
                box["addr"] = str(addrs[0])
                box["token"] = trio.lowlevel.current_trio_token()
                box["cancel"] = nursery.cancel_scope
                ready.set()

    thread = threading.Thread(target=lambda: trio.run(main), daemon=True)
    thread.start()
    assert ready.wait(30)
    try:
        yield str(box["addr"])
    finally:
        trio.from_thread.run_sync(box["cancel"].cancel, trio_token=box["token"])  # type: ignore[attr-defined]
        thread.join(10)


def _stored(data: bytes, store: MemoryBlockstore) -> str:
    return str(import_file(data, ImportParams(cid_version=1, chunker="size-65536"), store).cid)


def test_read_from_a_bitswap_peer() -> None:
    store = MemoryBlockstore()
    data = chacha_bytes("peer", 400_000)
    cid = _stored(data, store)
    with bitswap_server(store) as addr:
        fs = IPFSFileSystem(peers=[addr], use_env=False, peer_timeout=10, skip_instance_cache=True)
        assert fs.cat_file(cid, 100_000, 100_050) == data[100_000:100_050]
        assert fs.cat_file(cid) == data
        fs.close()


def test_hostile_peer_falls_back_to_the_car(tmp_path: Path) -> None:
    liar = _Liar()
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.bin").write_bytes(chacha_bytes("hostile", 100_000))
    root = build_car(src, tmp_path / "good.car")
    from pyipld.car import CarBlockstore

    with CarBlockstore(tmp_path / "good.car") as car:
        for c in car.iter_cids():
            liar.put(c, car.get(c))
    with bitswap_server(liar) as addr:
        fs = IPFSFileSystem(peers=[addr], cars=[str(tmp_path / "good.car")], use_env=False, peer_timeout=2,
                            skip_instance_cache=True)
        assert fs.cat_file(f"{root}/f.bin") == (src / "f.bin").read_bytes()
        assert fs.chain.fetched[f"car:{tmp_path / 'good.car'}"] > 0
        assert fs.chain.fetched[f"peers:{addr}"] == 0
        fs.close()


def test_a_peer_that_lacks_a_block_or_is_gone_is_unavailable_not_absent() -> None:
    from pyipld.errors import BlockUnavailableError

    store = MemoryBlockstore()
    data = chacha_bytes("peer gone", 300_000)
    cid = _stored(data, store)
    absent = _stored(b"this peer never had it", MemoryBlockstore())
    with bitswap_server(store) as addr:
        fs = IPFSFileSystem(peers=[addr], use_env=False, peer_timeout=2, memory_cache=0, skip_instance_cache=True)
        assert fs.cat_file(cid, 0, 10) == data[:10]
        with pytest.raises(BlockUnavailableError, match=f"peers:{addr}"):
            fs.exists(absent)  # a root nobody has: cannot tell, so no False
    with pytest.raises(BlockUnavailableError) as info:  # the peer is gone: a later leaf cannot come
        fs.cat_file(cid, 250_000, 250_010)
    assert not isinstance(info.value, (KeyError, FileNotFoundError))
    fs.close()
