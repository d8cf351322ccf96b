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
* ``car_entity_car``: the same file as one CAR served by ``pyipld gateway --car`` (each block
  read with one ``pread``, the default), same client and baseline, interleaved with ``car_entity``;
  ``car_entity_mapped``: the same with ``PYIPLD_MMAP=1`` (blocks hashed and framed from the
  mapped file, no read copy; a CAR truncated while served kills that server with SIGBUS). Also ``server_cpu_vs_sha256``: baseline ÷ the server's
  own CPU seconds (user + system, all threads) for the best fetch, which moves less with the
  machine's load than wall time, and ``two_thread_control``: two threads of sha256 over the
  same bytes ÷ one (2.0 = both cores free).
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

from ._harness import MiB, Timing, bench_parser, deterministic_file, emit, sha256_files

BLOCK = 4096


class Server:
    """``pyipld gateway`` in a child process."""

    def __init__(self, blockstore: Path | None = None, car: Path | None = None, mapped: bool = False) -> None:
        source = ["--blockstore", str(blockstore)] if blockstore is not None else ["--car", str(car)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pyipld", "gateway", *source, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYIPLD_MMAP": "1" if mapped else "0"})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on http://" not in line:
            self.proc.kill()
            raise RuntimeError(f"gateway did not start: {line!r} {self.proc.stderr.read() if self.proc.stderr else ''}")
        host, port = line.split("http://", 1)[1].strip().rsplit(":", 1)
        self.host, self.port = host, int(port)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process so far (all threads)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def _car_file(src: Path, tmp: Path) -> Path:
    """``pyipld add --car`` of ``src`` with the same parameters as :func:`_import` (same root)."""
    import contextlib
    import io

    from pyipld import cli

    car = tmp / f"{src.stem}.car"
    with contextlib.redirect_stdout(io.StringIO()):
        if cli.main(["add", "-Q", "--cid-version", "1", "--chunker", "size-262144", "--car", str(car), str(src)]):
            raise RuntimeError("pyipld add --car failed")
    return car


def _two_thread_control(src: Path) -> float:
    """Two threads of sha256 over ``src`` ÷ one thread (2.0: both cores free)."""
    import threading

    t0 = time.perf_counter()
    sha256_files([src])
    one = time.perf_counter() - t0
    threads = [threading.Thread(target=sha256_files, args=([src],)) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(2 * one / (time.perf_counter() - t0), 2)


def bench_car(tmp: Path, size: int, repeat: int) -> None:
    src, root, blocks = _import(tmp, size)
    car = _car_file(src, tmp)
    servers = {"car_entity": Server(blocks), "car_entity_car": Server(car=car),
               "car_entity_mapped": Server(car=car, mapped=True)}
    try:
        for server in servers.values():
            trio.run(_car_fetch, server, root)  # warm-up (page cache, imports)
        sha256_files([src])
        best = dict.fromkeys(servers, float("inf"))
        cpu = dict.fromkeys(servers, float("inf"))
        best_base = float("inf")
        nbytes = 0
        control = _two_thread_control(src)
        for _ in range(repeat):
            for name, server in servers.items():  # interleaved: case, baseline, other case, baseline
                cpu0 = server.cpu_seconds()
                t0 = time.perf_counter()
                nbytes = trio.run(_car_fetch, server, root)
                best[name] = min(best[name], time.perf_counter() - t0)
                cpu[name] = min(cpu[name], server.cpu_seconds() - cpu0)
                t0 = time.perf_counter()
                sha256_files([src])
                best_base = min(best_base, time.perf_counter() - t0)
        for name, server in servers.items():
            emit(name, size, Timing(best[name], best_base), car_bytes=nbytes, speed=round(best_base / best[name], 3),
                 server_cpu_s=round(cpu[name], 3), server_cpu_vs_sha256=round(best_base / max(cpu[name], 1e-9), 3),
                 two_thread_control=control, load_avg=round(os.getloadavg()[0], 1),
                 baseline_case="hashlib.sha256 one thread over the same bytes (read from the page cache)",
                 server_peak_rss_mib=round(server.peak_rss_mib(), 1))
    finally:
        for server in servers.values():
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
