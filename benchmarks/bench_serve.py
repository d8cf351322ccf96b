"""Memory ``pyipld serve`` holds per hostile connection (issue 10 point 5), in process.

``python -m benchmarks.bench_serve [--smoke]`` connects N peers to a server with
``serve``'s limits (``pyipld._cli.net.serve_server``) over in-memory streams; each
peer leaves a 4 MiB bitswap message unfinished on stream after stream (1 MiB on
each) and floods yamux pings, never reading. The server's
``connection_bytes(conn)`` — the bytes it counts as held for that connection — is
sampled after every write and every millisecond; the case reports its maximum, and the tracemalloc peak
of the whole run divided by N. The baseline is the same run with N honest peers
that fetch a 1 MiB file (what an ordinary connection costs), measured in the same
process; ``ratio`` = hostile peak per connection ÷ honest peak per connection.
Before the fix, one such connection held 32 MiB (tests/test_serve_hostile.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tracemalloc

import trio
import trio.testing

from pyipld._cli.net import serve_server
from pyipld._varint import encode_varint
from pyipld.bitswap.client import BitswapClient
from pyipld.bitswap.message import MAX_MESSAGE_BYTES, PROTOCOL_1_2_0
from pyipld.bitswap.server import BitswapServer
from pyipld.blockstore import MemoryBlockstore
from pyipld.libp2p.driver import Host
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.peer import Identity
from pyipld.libp2p.yamux import Flag, FrameType, encode_header
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams


def _store() -> tuple[MemoryBlockstore, bytes]:
    store = MemoryBlockstore()

    class Sink:
        put = store.put

    root = import_bytes(hashlib.shake_256(b"bench_serve").digest(1 << 20), ImportParams(), Sink())  # type: ignore[arg-type]
    return store, root.cid.bytes


async def _hostile(server: BitswapServer, index: int, peak: list[int]) -> None:
    a, b = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.host.serve_transport, b)
        async with Host(Identity.from_seed(bytes([index % 250 + 5]) * 32)).upgrade(a, initiator=True) as peer:
            conn = None
            for _ in range(200):
                conn = next((c for c in server.host.connections if c.remote_peer == peer.host.peer_id), None)
                if conn is not None:
                    break
                await trio.sleep(0.005)
            assert conn is not None
            start = encode_varint(MAX_MESSAGE_BYTES) + b"\x0a" * (1 << 20)
            pings = b"".join(encode_header(FrameType.PING, Flag.SYN, 0, n) for n in range(5000))
            with trio.move_on_after(20):
                try:
                    await peer.channel.send_all(pings)
                    for _ in range(64):
                        st = await peer.open_stream(PROTOCOL_1_2_0)
                        for i in range(0, len(start), 64 * 1024):
                            await st.send_all(start[i : i + 64 * 1024])
                            peak[0] = max(peak[0], server.connection_bytes(conn))
                except Exception as exc:  # noqa: BLE001 - disconnected by the server: the expected end
                    del exc
            peak[0] = max(peak[0], server.connection_bytes(conn))
        nursery.cancel_scope.cancel()


async def _honest(server: BitswapServer, index: int, root: bytes, peak: list[int]) -> None:
    async def dial(_: Multiaddr) -> trio.abc.Stream:
        a, b = trio.testing.memory_stream_pair()
        nursery.start_soon(server.host.serve_transport, b)
        return a

    addr = f"/ip4/10.0.0.1/tcp/1/p2p/{server.host.peer_id}"
    async with trio.open_nursery() as nursery:
        async with BitswapClient.connect([addr], dial=dial, want_timeout=5.0) as client:
            await client.fetch_dag(root, MemoryBlockstore())
        nursery.cancel_scope.cancel()


def run(n: int, hostile: bool) -> tuple[int, int]:
    """(max bytes counted for one connection, tracemalloc peak of the run)."""
    store, root = _store()
    peak = [0]

    async def main() -> None:
        server = serve_server(store, Identity.from_seed(b"\x01" * 32), max_connections=n + 8)
        async with trio.open_nursery() as nursery:
            await nursery.start(server.serve, None)

            async def sample() -> None:  # every connection's counted bytes, 1000 times a second
                while True:
                    for conn in list(server.host.connections):
                        peak[0] = max(peak[0], server.connection_bytes(conn))
                    await trio.sleep(0.001)

            nursery.start_soon(sample)
            async with trio.open_nursery() as peers:
                for i in range(n):
                    if hostile:
                        peers.start_soon(_hostile, server, i, peak)
                    else:
                        peers.start_soon(_honest, server, i, root, peak)
            nursery.cancel_scope.cancel()

    tracemalloc.start()
    trio.run(main)
    _, traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak[0], traced


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    args = ap.parse_args()
    for n in ((2,) if args.smoke else (4, 16)):
        base_held, base_peak = run(n, hostile=False)
        held, peak = run(n, hostile=True)
        print(json.dumps({
            "case": f"serve_hostile_memory_{n}", "connections": n,
            "held_per_connection_max": held, "baseline_held_per_connection_max": base_held,
            "traced_peak_per_connection": peak // n, "baseline_traced_peak_per_connection": base_peak // n,
            "ratio": round((peak / n) / max(1, base_peak / n), 2),
            "baseline_kind": "honest peers fetching a 1 MiB file",
        }), flush=True)


if __name__ == "__main__":
    main()
