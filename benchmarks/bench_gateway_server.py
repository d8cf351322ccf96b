"""Trustless gateway server: raw-block requests/s, CAR throughput, peak RSS vs file size.

    python -m benchmarks.bench_gateway_server [--smoke] [--size BYTES] [--clients N] [--requests N]

The server is ``pyipld gateway --blockstore DIR --listen 127.0.0.1:0`` in a child
process (its peak RSS is its own: ``VmHWM`` from /proc); the load comes from this
process over loopback with h11 (the HTTP/1.1 library Hypercorn itself uses) on trio,
kept-alive connections.

Cases (one JSON line each, ``ratio = t_case / t_baseline``):

* ``raw_4k_requests``: 4 KiB raw blocks, ``--clients`` (64) connections each sending
  requests back to back; ``req_per_s``. Baseline: the same number of
  :func:`~pyipld.http.gateway.plan_response` calls in-process (the protocol logic
  without HTTP), so ``ratio`` is the cost of the transport.
* ``car_entity``: ``GET /ipfs/{root}?format=car`` of one file (1 GiB; raw leaves of
  256 KiB), the body drained; baseline: one-thread ``hashlib.sha256`` over the same
  bytes (``speed = baseline / seconds``). The server hash-checks every block it sends.
* ``car_peak_rss``: the server's peak RSS while serving a file of size S/4 and S
  (fresh server each): flat means memory does not grow with the file.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h11
import trio

from pyipld.blockstore import DirectoryBlockstore
from pyipld.cid import CID
from pyipld.http.gateway import GatewayRequest, plan_response
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.params import ImportParams

from ._harness import MiB, Timing, bench_parser, deterministic_file, emit

BLOCK = 4096


class Server:
    """``pyipld gateway`` in a child process."""

    def __init__(self, blockstore: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyipld", "gateway", "--blockstore", str(blockstore), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"gateway did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        host, port = line.split("http://", 1)[1].strip().rsplit(":", 1)
        self.host, self.port = host, int(port)

    def peak_rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Conn:
    """One kept-alive HTTP/1.1 connection (h11 does the parsing)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def get(self, target: str, headers: list[tuple[str, str]] = ()) -> tuple[int, int]:  # type: ignore[assignment]
        data = self.h11.send(h11.Request(method="GET", target=target, headers=[("Host", "bench"), *headers]))
        end = self.h11.send(h11.EndOfMessage())
        assert data is not None and end is not None
        await self.stream.send_all(data + end)
        status, nbytes = 0, 0
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.stream.receive_some(1 << 20))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                nbytes += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.h11.start_next_cycle()
                return status, nbytes
            elif isinstance(event, h11.ConnectionClosed):
                raise RuntimeError("connection closed mid-response")


async def _raw_load(server: Server, cids: list[str], clients: int, total: int) -> float:
    per_client = max(total // clients, 1)

    async def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = Conn(await trio.open_tcp_stream(server.host, server.port))
        for _ in range(per_client):
            status, n = await conn.get(f"/ipfs/{rng.choice(cids)}?format=raw",
                                       [("Accept", "application/vnd.ipld.raw")])
            if status != 200 or n != BLOCK:
                raise RuntimeError(f"bad answer {status} {n}")
        await conn.stream.aclose()

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(worker, i)
    return time.perf_counter() - t0


async def _car_fetch(server: Server, root: str) -> int:
    conn = Conn(await trio.open_tcp_stream(server.host, server.port))
    status, n = await conn.get(f"/ipfs/{root}?format=car&dag-scope=entity")
    await conn.stream.aclose()
    if status != 200:
        raise RuntimeError(f"CAR status {status}")
    return n


def bench_raw(tmp: Path, clients: int, requests: int, repeat: int) -> None:
    store = DirectoryBlockstore(tmp / "raw-blocks")
    rng = random.Random(7)
    cids = []
    for _ in range(1000):
        data = rng.randbytes(BLOCK)
        cid = CID(1, 0x55, b"\x12\x20" + hashlib.sha256(data).digest())
        store.put(cid.bytes, data)
        cids.append(str(cid))
    server = Server(tmp / "raw-blocks")
    try:
        reqs = [GatewayRequest("GET", f"/ipfs/{c}".encode(), b"format=raw") for c in cids]

        def in_process() -> None:
            for i in range(requests):
                plan_response(store, reqs[i % len(reqs)])

        best = best_base = float("inf")
        trio.run(_raw_load, server, cids, clients, min(requests, 1000))  # warm-up
        for _ in range(repeat):
            best = min(best, trio.run(_raw_load, server, cids, clients, requests))
            t0 = time.perf_counter()
            in_process()
            best_base = min(best_base, time.perf_counter() - t0)
        done = (requests // clients) * clients
        emit("raw_4k_requests", done * BLOCK, Timing(best, best_base * done / requests), clients=clients,
             requests=done, req_per_s=round(done / best), baseline_case="plan_response in-process (no HTTP)",
             server_peak_rss_mib=round(server.peak_rss_mib(), 1))
    finally:
        server.stop()


def _import(tmp: Path, size: int) -> tuple[Path, str, Path]:
    src = tmp / f"input-{size}.bin"
    deterministic_file(str(src), size, seed="pyipld-bench-gateway")
    blocks = tmp / f"car-blocks-{size}"
    params = ImportParams(cid_version=1, raw_leaves=True, chunker="size-262144")
    root = import_file(src, params, DirectoryBlockstore(blocks)).cid
    return src, str(root), blocks


def _sha256_file(path: Path) -> None:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(MiB):
            h.update(chunk)


def bench_car(tmp: Path, size: int, repeat: int) -> None:
    src, root, blocks = _import(tmp, size)
    server = Server(blocks)
    try:
        trio.run(_car_fetch, server, root)  # warm-up (page cache, imports)
        _sha256_file(src)
        best = best_base = float("inf")
        nbytes = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            nbytes = trio.run(_car_fetch, server, root)
            best = min(best, time.perf_counter() - t0)
            t0 = time.perf_counter()
            _sha256_file(src)
            best_base = min(best_base, time.perf_counter() - t0)
        timing = Timing(best, best_base)
        emit("car_entity", size, timing, car_bytes=nbytes, speed=round(best_base / best, 3),
             baseline_case="hashlib.sha256 one thread over the same bytes (read from the page cache)",
             server_peak_rss_mib=round(server.peak_rss_mib(), 1))
    finally:
        server.stop()
    # peak RSS: a fresh server per size
    peaks = {}
    for s in (size // 4, size):
        _, r, b = _import(tmp, s) if s != size else (src, root, blocks)
        srv = Server(b)
        try:
            trio.run(_car_fetch, srv, r)
            peaks[s] = round(srv.peak_rss_mib(), 1)
        finally:
            srv.stop()
    emit("car_peak_rss", size, None, peak_rss_mib_by_size={str(k): v for k, v in peaks.items()},
         growth_mib=round(peaks[size] - peaks[size // 4], 1))


def main() -> None:
    ap = bench_parser(__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1 << 30, help="CAR entity size (default 1 GiB)")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=20_000, help="raw requests per timed run")
    args = ap.parse_args()
    size, requests, repeat = args.size, args.requests, args.repeat
    if args.smoke:
        size, requests, repeat = 8 * MiB, 640, 1
    with tempfile.TemporaryDirectory(prefix="pyipld-bench-gw-", dir=os.environ.get("TMPDIR")) as d:
        tmp = Path(d)
        bench_raw(tmp, args.clients, requests, repeat)
        bench_car(tmp, size, repeat)


if __name__ == "__main__":
    main()
