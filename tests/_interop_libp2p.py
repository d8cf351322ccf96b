"""Interop probe: our libp2p stack against a real peer (run inside ``unshare -n``).

``python -m tests._interop_libp2p helia|kubo FILE [--no-early-muxer] [--wait-ping S] [--rsa]``
starts the peer on loopback, dials it, and prints one JSON line of findings:
the Noise+yamux connection to the right peer id, its identify, our answers
to its identify/ping, a negotiated ``/ipfs/bitswap/1.2.0`` stream, and the
root block returned on a stream the peer opened. Exit status 0 only when
every check passed. ``python -m tests._interop_libp2p serve-to helia|kubo`` runs
the other direction: we listen, the peer's client dials us and fetches one
raw block that a tiny test-only handler serves. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import trio

from pyipld._pb import field_bytes, field_varint, iter_fields
from pyipld._varint import decode_varint, encode_varint
from pyipld.cid import CID
from pyipld.dagpb import decode_pbnode
from pyipld.libp2p.driver import (
    Connection,
    Host,
    NegotiationError,
    Stream,
    read_lp_message,
)
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.peer import Identity
from pyipld.unixfs.data import decode_unixfs_data
from tests._peers import (
    HELIA_DIR,
    KUBO_ORACLE,
    KUBO_PYTHON,
    helia_peer,
    in_isolated_netns,
    kubo_peer,
)

BITSWAP = "/ipfs/bitswap/1.2.0"


def want_message(cids: list[CID]) -> bytes:
    """A bitswap 1.2 wantlist: want-block + sendDontHave for each CID."""
    entries = b"".join(
        field_bytes(1, field_bytes(1, c.bytes) + field_varint(2, 1) + field_varint(5, 1)) for c in cids
    )
    body = field_bytes(1, entries)
    return encode_varint(len(body)) + body


def cid_of_payload(prefix: bytes, data: bytes) -> CID | None:
    """Rebuild the CID of a bitswap 1.1+ payload block (sha2-256 only), verifying the data."""
    version, n1 = decode_varint(prefix, 0)
    codec, n2 = decode_varint(prefix, n1)
    mh_code, _ = decode_varint(prefix, n1 + n2)
    if mh_code != 0x12:
        return None
    mh = b"\x12\x20" + hashlib.sha256(data).digest()
    return CID(version, codec, mh)


def leaf_bytes(cid: CID, block: bytes) -> bytes:
    if cid.codec == 0x55:
        return block
    node = decode_pbnode(block)
    return decode_unixfs_data(node.data or b"").data or b""


async def probe(maddr: str, root: str, early_muxer: bool, wait_ping: float, source: bytes) -> dict[str, Any]:
    """Dial, identify, negotiate bitswap, then fetch the root and every leaf it links to."""
    out: dict[str, Any] = {"multiaddr": maddr, "early_muxer": early_muxer}
    root_cid = CID.decode(root)
    blocks: dict[CID, bytes] = {}
    wanted: set[CID] = {root_cid}
    changed = trio.Event()

    async def on_bitswap(stream: Stream) -> None:
        nonlocal changed
        for _ in range(1024):
            body = await read_lp_message(stream, 4 << 20)
            if body is None:
                return
            for num, _w, val in iter_fields(body):
                if num == 3 and isinstance(val, bytes):
                    f = {n: v for n, _, v in iter_fields(val)}
                    prefix, data = f.get(1), f.get(2)
                    if isinstance(prefix, bytes) and isinstance(data, bytes):
                        cid = cid_of_payload(prefix, data)
                        if cid is not None and cid in wanted:  # verified: rebuilt from the data's hash
                            blocks[cid] = data
                            changed.set()
                            changed = trio.Event()

    async def wait_for(cids: set[CID], seconds: float) -> bool:
        with trio.move_on_after(seconds):
            while not cids <= blocks.keys():
                await changed.wait()
        return cids <= blocks.keys()

    host = Host(Identity.generate(), early_muxer=early_muxer, read_timeout=30)
    host.set_stream_handler(BITSWAP, on_bitswap)
    with trio.fail_after(90 + wait_ping):
        async with host.connect(maddr) as conn:
            out["connected"] = conn.remote_peer == Multiaddr.parse(maddr).peer_id
            out["muxer"] = conn.muxer
            ident = await conn.identify()
            out["their_agent"] = ident.agent_version
            out["their_protocols"] = list(ident.protocols)
            st = await conn.open_stream([BITSWAP])
            out["bitswap_protocol"] = st.protocol
            await st.send_all(want_message([root_cid]))
            await st.aclose()
            out["got_root_block"] = await wait_for({root_cid}, 20)
            if out["got_root_block"]:
                links = [CID.from_bytes(link.cid) for link in decode_pbnode(blocks[root_cid]).links]
                wanted.update(links)
                t0 = trio.current_time()
                st = await conn.open_stream([BITSWAP])
                await st.send_all(want_message(links))
                await st.aclose()
                out["got_all_leaves"] = await wait_for(set(links), 60)
                out["leaves"] = len(links)
                out["fetch_seconds"] = round(trio.current_time() - t0, 3)
                if out["got_all_leaves"]:
                    joined = b"".join(leaf_bytes(c, blocks[c]) for c in links)
                    out["file_matches"] = joined == source
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
        out["closed_cleanly"] = conn.closed
    return out


BLOCK = b"hello world\n"
BLOCK_CID = CID(1, 0x55, b"\x12\x20" + hashlib.sha256(BLOCK).digest())
BITSWAP_ALL = [BITSWAP, "/ipfs/bitswap/1.1.0", "/ipfs/bitswap/1.0.0", "/ipfs/bitswap"]


def block_message() -> bytes:
    """A bitswap 1.1+ message carrying BLOCK: payload {prefix, data}."""
    prefix = b"\x01\x55\x12\x20"
    return field_bytes(3, field_bytes(1, prefix) + field_bytes(2, BLOCK))


async def serve_one_block(peer: str, timeout: float) -> dict[str, Any]:
    """Listen; let the peer's own client dial us and fetch BLOCK (a minimal block server)."""
    out: dict[str, Any] = {"cid": str(BLOCK_CID)}
    host = Host(Identity.generate(), read_timeout=30)

    async def on_connection(conn: Connection) -> None:
        out["inbound_muxer"] = conn.muxer
        out["inbound_early_muxer"] = conn.handshake.selected_muxer is not None

    async def on_bitswap(stream: Stream) -> None:
        for _ in range(64):
            body = await read_lp_message(stream, 4 << 20)
            if body is None:
                return
            wanted = False
            for num, _w, wl in iter_fields(body):
                if num != 1 or not isinstance(wl, bytes):
                    continue
                for n2, _w2, entry in iter_fields(wl):
                    if n2 == 1 and isinstance(entry, bytes):
                        fields = {n: v for n, _, v in iter_fields(entry)}
                        if fields.get(1) == BLOCK_CID.bytes and not fields.get(3):
                            wanted = True
            if wanted:
                out["wants_seen"] = out.get("wants_seen", 0) + 1
                back = await stream.connection.open_stream(BITSWAP_ALL)
                out["reply_protocol"] = back.protocol
                msg = block_message()
                await back.send_all(len(msg).to_bytes(1, "big") + msg)
                await back.aclose()

    for proto in BITSWAP_ALL:
        host.set_stream_handler(proto, on_bitswap)
    async with trio.open_nursery() as nursery:
        addrs = await nursery.start(partial(host.listen, on_connection=on_connection), "/ip4/127.0.0.1/tcp/0")
        maddr = str(addrs[0])
        out["our_multiaddr"] = maddr
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "out"
            if peer == "helia":
                argv = ["node", str(HELIA_DIR / "helia_peer.mjs"), "get-block", maddr, str(BLOCK_CID)]
            else:
                argv = [str(KUBO_PYTHON), str(KUBO_ORACLE), "fetch", maddr, str(BLOCK_CID), str(dest),
                        "--timeout", str(timeout)]
            proc = await trio.to_thread.run_sync(
                lambda: subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 30,
                                       cwd=HELIA_DIR if peer == "helia" else None, check=False)
            )
            out["peer_rc"] = proc.returncode
            out["peer_stdout"] = proc.stdout.strip()[-500:]
            if proc.returncode:
                out["peer_stderr"] = proc.stderr.strip()[-1500:]
            if peer == "kubo" and dest.exists():
                out["fetched_ok"] = dest.read_bytes() == BLOCK
            elif peer == "helia" and proc.returncode == 0:
                line = json.loads(proc.stdout.strip().splitlines()[-1])
                out["fetched_ok"] = line.get("sha256") == hashlib.sha256(BLOCK).hexdigest()
        out["served"] = dict(host.served)
        nursery.cancel_scope.cancel()
    return out


def main(argv: list[str]) -> int:
    if os.environ.get("PYIPLD_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    if argv and argv[0] == "serve-to":
        if not in_isolated_netns():
            raise SystemExit("run me inside unshare -n")
        result = trio.run(serve_one_block, argv[1], 60.0)
        print(json.dumps(result), flush=True)
        return 0 if result.get("fetched_ok") else 1
    ap = argparse.ArgumentParser()
    ap.add_argument("peer", choices=["helia", "kubo"])
    ap.add_argument("file")
    ap.add_argument("--no-early-muxer", action="store_true")
    ap.add_argument("--wait-ping", type=float, default=0)
    ap.add_argument("--rsa", action="store_true", help="kubo: RSA identity (Qm... peer id)")
    a = ap.parse_args(argv)
    ctx = helia_peer(a.file) if a.peer == "helia" else kubo_peer(a.file, extra=["--key-type", "rsa"] if a.rsa else [])
    with ctx as ready:
        result = trio.run(probe, ready["multiaddr"], ready["cid"], not a.no_early_muxer, a.wait_ping,
                          Path(a.file).read_bytes())
    result["source_sha256"] = hashlib.sha256(Path(a.file).read_bytes()).hexdigest()
    print(json.dumps(result), flush=True)
    ok = (result.get("connected") and result.get("bitswap_protocol") == BITSWAP
          and result.get("got_root_block") and result.get("file_matches")
          and result["served"].get("/ipfs/id/1.0.0"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
