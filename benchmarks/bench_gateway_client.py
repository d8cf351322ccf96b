"""Gateway client: verified fetch speed over loopback, and bytes moved for a ranged read.

    python -m benchmarks.bench_gateway_client [--smoke] [--size BYTES] [--repeat N] [--no-helia]

One file (ChaCha20 stream, 256 KiB chunks, CIDv1 raw leaves) is written as a CAR and
served by ``pyipld gateway --car`` in a separate process. Cases (one JSON line each):

* ``gateway_fetch``: our client streams the whole file (one ``dag-scope=entity`` CAR,
  every block hash-checked) to nowhere; baseline = one-thread ``hashlib.sha256`` over
  the same bytes, interleaved; ``speed_vs_sha256 = baseline / seconds`` (goal ≥ 0.5);
  ``client_peak_rss_mib``: the fetching process alone (a child), flat in the file size.
* ``gateway_fetch_server_hash_on_read_false``: the same against ``pyipld gateway
  --hash-on-read=false`` (the server sends its CAR's blocks without hashing them again, as
  kubo's gateway does by default; the client still verifies every block).
* ``gateway_fetch_static_server``: the same client against a minimal static server
  (``benchmarks/_static_car_server.py``: the prepared answer by ``sendfile``), so the
  figure is the client's own cost, not the server's.
* ``gateway_fetch_no_socket``: the same answer handed to the client in 64 KiB pieces
  through ``httpx.MockTransport`` (no socket, no HTTP parsing): CAR splitting, hashing
  and the walk alone.
* ``gateway_fetch_helia``: the peer figure: Helia's ``@helia/verified-fetch`` client
  (one ``?format=raw`` request per block) fetching the same file from the same
  server; wall time minus a one-block fetch (node start-up), same baseline.
* ``gateway_range``: 1 MiB read from the middle of the file (not block-aligned) through
  :func:`pyipld.http.fetch.open_file` (entity-bytes) and through raw blocks
  (:class:`GatewayBlockSource` + :class:`UnixFSReader`); ``bytes_ratio`` = bytes
  received ÷ 1 MiB (goal ≤ 1.6).

Runs itself inside ``unshare -n`` (loopback only) when it can.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mmap
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._harness import MiB, Timing, bench_parser, deterministic_file, emit, peak_rss_mib_of, time_interleaved

ROOT = Path(__file__).resolve().parents[1]
_INNER = "PYIPLD_BENCH_GW_INNER"


def _in_netns() -> bool:
    try:
        with open("/proc/net/dev") as fh:
            return [ln.split(":", 1)[0].strip() for ln in fh.readlines()[2:] if ":" in ln] == ["lo"]
    except OSError:
        return False


def _reexec_in_netns() -> int | None:
    if os.environ.get(_INNER) or _in_netns() or not shutil.which("unshare"):
        return None
    probe = subprocess.run(["unshare", "-n", "true"], check=False, capture_output=True)
    if probe.returncode != 0:
        return None
    cmd = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable, "-m",
           "benchmarks.bench_gateway_client", *sys.argv[1:]]
    return subprocess.run(cmd, check=False, env={**os.environ, _INNER: "1", "PYTHONPATH": str(ROOT)},
                          cwd=ROOT).returncode


@contextlib.contextmanager
def our_gateway(cars: list[Path], *flags: str) -> Iterator[str]:
    """``pyipld gateway [FLAGS] --car …`` in its own process; yields the base URL."""
    with _server([sys.executable, "-m", "pyipld", "gateway", *flags, "--car", *map(str, cars),
                  "--listen", "127.0.0.1:0"]) as url:
        yield url


@contextlib.contextmanager
def static_gateway(body: Path) -> Iterator[str]:
    """:mod:`benchmarks._static_car_server` sending ``body`` for every request; yields the base URL."""
    with _server([sys.executable, "-m", "benchmarks._static_car_server", str(body)]) as url:
        yield url


def _write_entity_car(car: Path, cid: str, out: Path) -> None:
    """The exact dag-scope=entity answer for ``cid`` (header + DFS sections), from the shared traversal."""
    from pyipld._varint import encode_varint
    from pyipld.car.blockstore import CarBlockstore
    from pyipld.car.v1 import encode_header
    from pyipld.cid import CID
    from pyipld.http.traversal import CarScope, iter_scope_blocks

    root = CID.decode(cid)
    store = CarBlockstore(car)
    with open(out, "wb") as fh:
        fh.write(encode_header([root]))
        fh.writelines(encode_varint(len(c) + len(d)) + c + d for c, d in iter_scope_blocks(store, CarScope(root, (), "entity")))


@contextlib.contextmanager
def _server(argv: list[str]) -> Iterator[str]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"gateway did not start: {line!r}")
        yield line.split()[-1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _add_car(path: Path, car: Path) -> str:
    from pyipld import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["add", "-Q", "--cid-version", "1", "--chunker", "size-262144", "--car", str(car), str(path)])
    if rc != 0:
        raise RuntimeError("pyipld add failed")
    return out.getvalue().strip()


def _helia_client_seconds(url: str, cid: str, small_cid: str) -> float | None:
    helia = Path(os.environ.get("PYIPLD_HELIA_HTTP_DIR") or ROOT / ".peers" / "http")
    script = helia / "verified_fetch_client.mjs"
    if not shutil.which("node") or not script.is_file() or not (helia / "node_modules").is_dir():
        return None

    def run(target: str) -> float:
        t0 = time.perf_counter()
        subprocess.run(["node", str(script), "--gateway", url, "--timeout-ms", "600000", "--out", os.devnull,
                        f"ipfs://{target}"], check=True, cwd=helia, capture_output=True, timeout=900)
        return time.perf_counter() - t0

    startup = min(run(small_cid) for _ in range(2))
    return max(run(cid) - startup, 1e-6)


def main() -> int:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size", type=int, default=None, help="file bytes (default 1 GiB; --smoke 16 MiB)")
    parser.add_argument("--no-helia", action="store_true", help="skip the Helia peer figure")
    args = parser.parse_args()
    rc = _reexec_in_netns()
    if rc is not None:
        return rc
    size = args.size or ((16 if args.smoke else 1024) * MiB)
    repeat = 1 if args.smoke else args.repeat

    from pyipld.http import GatewayBlockSource, GatewayClient
    from pyipld.http.fetch import iter_file, open_file
    from pyipld.unixfs.reader import UnixFSReader

    work = Path(tempfile.mkdtemp(prefix="pyipld-bench-gw-"))
    try:
        data_path = work / "file.bin"
        deterministic_file(str(data_path), size, seed="bench-gateway")
        car = work / "file.car"
        cid = _add_car(data_path, car)
        small = work / "small.bin"
        small.write_bytes(b"small\n")
        small_car = work / "small.car"
        small_cid = _add_car(small, small_car)
        with open(data_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view, \
                our_gateway([car]) as url, GatewayClient([url], timeout=60) as client:

            def sha() -> None:
                hashlib.sha256(view).digest()

            def timed_fetch(case: str, via: GatewayClient, **extra: Any) -> None:
                """``case``: the whole file through ``via``, verified, interleaved with ``sha``."""

                def fetch() -> None:
                    n = sum(len(piece) for piece in iter_file(via, cid))
                    assert n == size, n

                timing = time_interleaved(fetch, sha, repeat=repeat)
                emit(case, size, timing, speed_vs_sha256=round(timing.baseline / timing.seconds, 3), **extra)

            base_rss, peak_rss = peak_rss_mib_of(
                f"from pyipld.http import GatewayClient\nfrom pyipld.http.fetch import iter_file\n"
                f"c = GatewayClient([{url!r}])",
                f"n = 0\nfor p in iter_file(c, {cid!r}): n += len(p)\nassert n == {size}")
            timed_fetch("gateway_fetch", client, client_peak_rss_mib=round(peak_rss - base_rss, 1), netns=_in_netns())
            with our_gateway([car], "--hash-on-read=false") as trusted_url, \
                    GatewayClient([trusted_url], timeout=60) as trusted_client:
                timed_fetch("gateway_fetch_server_hash_on_read_false", trusted_client, netns=_in_netns())

            body = work / "entity.car"
            _write_entity_car(car, cid, body)
            with static_gateway(body) as static_url, GatewayClient([static_url], timeout=60) as static_client:
                timed_fetch("gateway_fetch_static_server", static_client, netns=_in_netns())

            import httpx

            with open(body, "rb") as bf, mmap.mmap(bf.fileno(), 0, access=mmap.ACCESS_READ) as body_view:

                def answer(request: httpx.Request) -> httpx.Response:
                    pieces = (body_view[i : i + 65536] for i in range(0, len(body_view), 65536))
                    return httpx.Response(200, headers={"content-type": "application/vnd.ipld.car; version=1; "
                                                        "order=dfs; dups=n"}, content=pieces)

                with GatewayClient(["http://in-process"], transport=httpx.MockTransport(answer)) as mock_client:
                    timed_fetch("gateway_fetch_no_socket", mock_client)
            # -- range --------------------------------------------------------------------
            start = size // 2 + 12345
            length = min(MiB, size - start)
            before = client.stats.bytes_received
            with open_file(client, cid, buffering=0) as f:
                f.seek(start)
                assert f.read(length) == view[start : start + length]
            car_bytes = client.stats.bytes_received - before
            with GatewayClient([url], timeout=60) as raw_client:
                source = GatewayBlockSource(client=raw_client)
                got = b"".join(UnixFSReader(source, cid).iter_range(start, length))
                assert got == view[start : start + length]
                raw_bytes = raw_client.stats.bytes_received
            emit("gateway_range", length, None, file_bytes=size, car_bytes_received=car_bytes,
                 bytes_ratio=round(car_bytes / length, 3), raw_bytes_received=raw_bytes,
                 raw_bytes_ratio=round(raw_bytes / length, 3), netns=_in_netns())

        if not args.no_helia:
            with our_gateway([car, small_car]) as url:
                seconds = _helia_client_seconds(url, cid, small_cid)
            if seconds is None:
                print('{"case": "gateway_fetch_helia", "skipped": "Helia HTTP peers not installed"}', flush=True)
            else:
                with open(data_path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
                    t0 = time.perf_counter()
                    hashlib.sha256(view).digest()
                    base = time.perf_counter() - t0
                t = Timing(seconds, base)
                emit("gateway_fetch_helia", size, t, speed_vs_sha256=round(base / seconds, 3), netns=_in_netns())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
