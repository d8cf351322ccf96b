"""Interop probe: our libp2p stack against a real peer (run inside ``unshare -n``).

``python -m tests._interop_libp2p helia|kubo FILE [--no-early-muxer] [--wait-ping S]``
starts the peer on loopback, dials it, and prints one JSON line of findings:
the Noise+yamux connection to the right peer id, its identify, our answers
to its identify/ping, a negotiated ``/ipfs/bitswap/1.2.0`` stream, and the
root block returned on a stream the peer opened. Exit status 0 only when
every check passed. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import trio

from pyipld.bitswap._pb import field_bytes, field_varint, iter_fields
from pyipld.bitswap.driver import Host, NegotiationError, Stream, read_lp_message
from pyipld.bitswap.multiaddr import Multiaddr
from pyipld.bitswap.peer import Identity
from pyipld.cid import CID
from tests._peers import helia_peer, kubo_peer

BITSWAP = "/ipfs/bitswap/1.2.0"


def want_block_message(cid: CID) -> bytes:
    entry = field_bytes(1, cid.bytes) + field_varint(2, 1) + field_varint(5, 1)  # want-block, sendDontHave
    return field_bytes(1, field_bytes(1, entry))


async def probe(maddr: str, root: str, early_muxer: bool, wait_ping: float) -> dict[str, Any]:
    out: dict[str, Any] = {"multiaddr": maddr, "early_muxer": early_muxer}
    cid = CID.decode(root)
    got_block = trio.Event()
    messages: list[bytes] = []

    async def on_bitswap(stream: Stream) -> None:
        for _ in range(64):
            body = await read_lp_message(stream, 4 << 20)
            if body is None:
                return
            messages.append(body)
            for num, _w, val in iter_fields(body):
                if num == 3 and isinstance(val, bytes):
                    data = next((v for n, _, v in iter_fields(val) if n == 2), b"")
                    if isinstance(data, bytes) and cid.verify(data):
                        out["block_bytes"] = len(data)
                        got_block.set()

    host = Host(Identity.generate(), early_muxer=early_muxer, read_timeout=30)
    host.set_stream_handler(BITSWAP, on_bitswap)
    with trio.fail_after(60 + wait_ping):
        async with host.connect(maddr) as conn:
            out["connected"] = conn.remote_peer == Multiaddr.parse(maddr).peer_id
            out["muxer"] = conn.muxer
            ident = await conn.identify()
            out["their_agent"] = ident.agent_version
            out["their_protocols"] = list(ident.protocols)
            st = await conn.open_stream([BITSWAP])
            out["bitswap_protocol"] = st.protocol
            msg = want_block_message(cid)
            await st.send_all(len(msg).to_bytes(1, "big") + msg if len(msg) < 128 else b"")
            with trio.move_on_after(20):
                await got_block.wait()
            out["got_root_block"] = got_block.is_set()
            try:
                out["our_ping_rtt"] = await conn.ping()
            except NegotiationError:
                out["our_ping_rtt"] = "na"
            with trio.move_on_after(10):
                while not host.served["/ipfs/id/1.0.0"]:
                    await trio.sleep(0.05)
            if wait_ping:
                with trio.move_on_after(wait_ping):
                    while not host.served["/ipfs/ping/1.0.0"]:
                        await trio.sleep(0.1)
            out["served"] = dict(host.served)
            out["yamux_pings_answered"] = conn.pings_answered
            await st.aclose()
        out["closed_cleanly"] = conn.closed
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["helia", "kubo"])
    ap.add_argument("file")
    ap.add_argument("--no-early-muxer", action="store_true")
    ap.add_argument("--wait-ping", type=float, default=0)
    ap.add_argument("--rsa", action="store_true", help="kubo: RSA identity (Qm... peer id)")
    a = ap.parse_args(argv)
    ctx = helia_peer(a.file) if a.peer == "helia" else kubo_peer(a.file, extra=["--key-type", "rsa"] if a.rsa else [])
    with ctx as ready:
        result = trio.run(probe, ready["multiaddr"], ready["cid"], not a.no_early_muxer, a.wait_ping)
    result["source_sha256"] = hashlib.sha256(Path(a.file).read_bytes()).hexdigest()
    print(json.dumps(result), flush=True)
    ok = (result.get("connected") and result.get("bitswap_protocol") == BITSWAP
          and result.get("got_root_block") and result["served"].get("/ipfs/id/1.0.0"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
