"""A hostile client against the real ``pyipld serve`` process (run inside ``unshare -n``).

``python -m tests._hostile_serve`` refuses to run outside an isolated network
namespace; tests/test_serve_netns.py starts it through ``run_in_netns``. It prints
one JSON line with what it saw:

1. ``serve`` on a busy port, a bad port and an address that is not ours: a one-line
   ``Error:`` and exit status 1 (it was an ExceptionGroup traceback).
2. ``serve --car``: a peer wants CIDs with ~1 MB and ~3 MB digests and never reads
   (issue 10 point 1; this stopped the server). Only that connection may close.
3. 200 hostile connections at once — peers that flood pings and stream opens and
   never read, half handshakes, garbage, idle connections, unfinished messages —
   while an honest client fetches the whole DAG and checks every block; then 140
   more idle connections fill every slot, and the honest client gets in again by
   replacing one that has been idle for ``--idle-grace``.
4. The server is still running, and ends at its ``--lifetime`` with status 0 and no
   traceback.

Every loop is bounded in count and time.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

from pyipld._varint import encode_varint
from pyipld.bitswap.client import BitswapClient
from pyipld.bitswap.message import PROTOCOL_1_2_0, BitswapMessage, WantlistEntry, WantType, frame_message
from pyipld.blockstore import MemoryBlockstore
from pyipld.car.export import export_dag
from pyipld.libp2p.driver import Host
from pyipld.libp2p.multiaddr import Multiaddr
from pyipld.libp2p.yamux import Flag, FrameType, encode_header
from pyipld.unixfs.importer import import_bytes
from pyipld.unixfs.params import ImportParams

from ._peers import in_isolated_netns

HOSTILE_CONNECTIONS = 200
SERVE_LIFETIME = 45.0  # seconds; the attack and the honest fetches end well before it (about 25 s)


def serve_argv(*extra: str) -> list[str]:
    return [sys.executable, "-m", "pyipld", "serve", *extra]


def cli_errors(car: Path) -> dict[str, Any]:
    """serve on a busy port, a bad port, an unassignable address: rc 1 and one ``Error:`` line."""
    import socket

    out: dict[str, Any] = {}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = {"busy": f"/ip4/127.0.0.1/tcp/{port}", "bad_port": "/ip4/127.0.0.1/tcp/70000",
                 "unassignable": "/ip4/10.255.255.1/tcp/0"}
        for name, listen in cases.items():
            proc = subprocess.run(serve_argv("--car", str(car), "--listen", listen, "--lifetime", "1"),
                                  capture_output=True, text=True, timeout=60, check=False)
            lines = proc.stderr.strip().splitlines()
            out[name] = {"rc": proc.returncode, "stderr": proc.stderr[-2000:],
                         "ok": proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("Error: ")}
    return out


def make_car(tmp: Path) -> tuple[Path, bytes, dict[bytes, bytes]]:
    store = MemoryBlockstore()
    data = hashlib.shake_256(b"hostile").digest(1_300_000)  # 1.3 MB: six 256 KiB leaves and a root

    class Sink:
        put = store.put

    root = import_bytes(data, ImportParams(), Sink()).cid  # type: ignore[arg-type]
    car = tmp / "data.car"
    with open(car, "wb") as f:
        export_dag(store, root, f)
    return car, root.bytes, {cid: store.get(cid) for cid in store}


def absurd_want() -> bytes:
    cids = [b"\x01\x55\x12" + encode_varint(n) + b"\x07" * n for n in (1_000_000, 3_000_000)]
    entries = tuple(WantlistEntry(c, 1, False, WantType.BLOCK, True) for c in cids)
    return frame_message(BitswapMessage(entries=entries), PROTOCOL_1_2_0, max_message_bytes=1 << 30)


async def absurd_cids_attack(addr: str) -> dict[str, Any]:
    """Issue 10 point 1: want 1 MB and 3 MB digests and do not read the reply."""
    host = Host()
    closed = False
    with trio.move_on_after(20):
        async with host.connect(addr) as conn:
            stream = await conn.open_stream(PROTOCOL_1_2_0)
            try:
                await stream.send_all(absurd_want())
                await stream.send_eof()
            except trio.BrokenResourceError:
                pass  # already refused
            with trio.move_on_after(15):
                await conn.wait_closed()
            closed = conn.closed
    return {"connection_closed": closed}


async def raw_secure(host: Host, ip: str, port: int) -> tuple[trio.SocketStream, Any]:
    tcp = await trio.open_tcp_stream(ip, port)
    channel, _, _, _ = await host._handshake(tcp, True, None)
    return tcp, channel


async def hostile(kind: str, ip: str, port: int, addr: str, hold: trio.Event, stats: dict[str, int],
                  errors: dict[str, str]) -> None:
    """One hostile connection, held open until ``hold`` is set."""
    try:
        with trio.move_on_after(60):
            if kind == "never_reads":  # pings and stream opens, never reading a byte of the answers
                tcp, channel = await raw_secure(Host(), ip, port)
                flood = b"".join(encode_header(FrameType.PING, Flag.SYN, 0, n) for n in range(20_000))
                flood += b"".join(encode_header(FrameType.WINDOW_UPDATE, Flag.SYN, 2 * n + 1, 0)
                                  for n in range(20_000))
                with trio.move_on_after(10):
                    await channel.send_all(flood)
                stats[kind] += 1
                await hold.wait()
                await trio.aclose_forcefully(tcp)
            elif kind == "half_handshake":
                tcp = await trio.open_tcp_stream(ip, port)
                await tcp.send_all(b"\x13/multistream/1.0.0\n")
                stats[kind] += 1
                await hold.wait()
                await trio.aclose_forcefully(tcp)
            elif kind == "garbage":
                tcp = await trio.open_tcp_stream(ip, port)
                await tcp.send_all(os.urandom(4096))
                stats[kind] += 1
                await hold.wait()
                await trio.aclose_forcefully(tcp)
            elif kind == "partial_messages":  # unfinished 4 MiB messages on many streams
                async with Host().connect(addr) as conn:
                    start = encode_varint(4 << 20) + b"\x0a" * (128 * 1024)
                    for _ in range(24):
                        st = await conn.open_stream(PROTOCOL_1_2_0)
                        await st.send_all(start)
                    stats[kind] += 1
                    await hold.wait()
            else:  # idle: a proper connection that does nothing
                async with Host().connect(addr) as conn:
                    stats[kind] += 1
                    with trio.move_on_after(60):
                        await hold.wait()
                    del conn
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError, Exception) as exc:  # noqa: BLE001
        stats["refused_or_dropped"] += 1
        errors.setdefault(kind, repr(exc)[:200])


async def honest_fetch(addr: str, root: bytes, blocks: dict[bytes, bytes]) -> dict[str, Any]:
    """Fetch the DAG; retry the connection while the server's slots are full (bounded)."""
    errors: list[str] = []
    for attempt in range(15):
        store = MemoryBlockstore()
        try:
            with trio.fail_after(30):
                async with BitswapClient.connect([addr], want_timeout=5.0, idle_timeout=20.0) as client:
                    await client.fetch_dag(root, store)
        except Exception as exc:  # noqa: BLE001 - refused while slots are full: try again
            errors.append(repr(exc)[:200])
            await trio.sleep(1)
            continue
        same = len(store) == len(blocks) and all(store.get(c) == d for c, d in blocks.items())
        return {"ok": same, "attempts": attempt + 1, "blocks": len(store), "errors": errors}
    return {"ok": False, "attempts": 15, "errors": errors}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


async def attack(proc: subprocess.Popen[str], addr: str, root: bytes, blocks: dict[bytes, bytes]) -> dict[str, Any]:
    ip, port = Multiaddr.parse(addr).tcp_address()
    out: dict[str, Any] = {"absurd_cids": await absurd_cids_attack(addr)}
    out["alive_after_absurd_cids"] = proc.poll() is None
    kinds = ["never_reads", "half_handshake", "garbage", "idle", "partial_messages"]
    stats: dict[str, int] = {k: 0 for k in kinds} | {"refused_or_dropped": 0}
    errors: dict[str, str] = {}
    hold = trio.Event()
    async with trio.open_nursery() as nursery:
        for i in range(HOSTILE_CONNECTIONS):
            nursery.start_soon(hostile, kinds[i % len(kinds)], ip, port, addr, hold, stats, errors)
            if i % 20 == 19:
                await trio.sleep(0.05)
        with trio.move_on_after(15):  # let them all connect (or be refused)
            while sum(stats.values()) < HOSTILE_CONNECTIONS:
                await trio.sleep(0.2)
        out["hostile"] = dict(stats)
        out["hostile_errors"] = errors
        out["rss_kib_under_attack"] = rss_kib(proc.pid)
        await trio.sleep(3.5)  # past the server's --idle-grace: idle hostile connections can be replaced
        out["honest"] = await honest_fetch(addr, root, blocks)
        out["rss_kib_after_fetch"] = rss_kib(proc.pid)
        # fill every slot with fresh idle connections (they replace the older idle ones), then
        # fetch again: refused until they have been idle for --idle-grace, then one is replaced
        more: dict[str, int] = {"idle": 0, "refused_or_dropped": 0}
        for _ in range(140):
            nursery.start_soon(hostile, "idle", ip, port, addr, hold, more, errors)
        with trio.move_on_after(15):
            while sum(more.values()) < 140:
                await trio.sleep(0.2)
        out["fill"] = dict(more)
        out["honest_when_full"] = await honest_fetch(addr, root, blocks)
        out["alive_under_attack"] = proc.poll() is None
        hold.set()
    return out


def main() -> int:
    if not in_isolated_netns():
        print(json.dumps({"error": "not in an isolated network namespace"}))
        return 2
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        car, root, blocks = make_car(Path(tmp))
        result["cli_errors"] = cli_errors(car)
        argv = serve_argv("--car", str(car), "--listen", "/ip4/127.0.0.1/tcp/0", "--idle-grace", "3",
                          "--lifetime", str(SERVE_LIFETIME))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            addr = proc.stdout.readline().strip()  # bounded by --lifetime
            result["multiaddr"] = addr
            started = time.monotonic()
            result.update(trio.run(attack, proc, addr, root, blocks))
            result["attack_seconds"] = round(time.monotonic() - started, 1)
            _, err = proc.communicate(timeout=SERVE_LIFETIME + 30)
            result["serve_rc"] = proc.returncode
            result["serve_stderr_tail"] = err[-3000:]
            result["traceback"] = "Traceback" in err or "ExceptionGroup" in err
            found = re.search(r"(\d+) connections were refused and (\d+) idle ones replaced", err)
            result["refused"], result["replaced"] = (int(found[1]), int(found[2])) if found else (0, 0)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
