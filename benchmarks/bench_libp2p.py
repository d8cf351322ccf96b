"""Throughput of the libp2p stack (Noise transport, yamux framing, the trio driver).

``python -m benchmarks.bench_libp2p [--smoke]`` prints one JSON line per case:
``{"case","bytes","seconds","baseline","ratio"}``; the baseline is
``hashlib.sha256`` over the same bytes, measured in the same run (interleaved,
minimum of the repeats). ``driver_peak`` reports the tracemalloc peak of one
driver transfer (memory must not grow with the transfer size).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import tracemalloc
from collections.abc import Callable

import trio
import trio.testing

from pyipld.libp2p.driver import Host, Stream
from pyipld.libp2p.noise import NoiseSession
from pyipld.libp2p.peer import Identity
from pyipld.libp2p.yamux import DataReceived, YamuxSession

CHUNK = 1 << 20


def _noise_pair() -> tuple[NoiseSession, NoiseSession]:
    a, b = Identity.from_seed(b"\x01" * 32), Identity.from_seed(b"\x02" * 32)
    i = NoiseSession(a, initiator=True, randbytes=lambda n: b"\x05" * n)
    r = NoiseSession(b, initiator=False, randbytes=lambda n: b"\x06" * n)
    r.receive_data(i.data_to_send())
    i.receive_data(r.data_to_send())
    r.receive_data(i.data_to_send())
    return i, r


def noise_case(data: bytes) -> None:
    i, r = _noise_pair()
    for off in range(0, len(data), CHUNK):
        i.send(data[off : off + CHUNK])
        r.receive_data(i.data_to_send())
        while r.next_event() is not None:
            pass


def yamux_case(data: bytes) -> None:
    c, s = YamuxSession(is_client=True), YamuxSession(is_client=False)
    sid = c.open_stream()
    view = memoryview(data)
    while len(view):
        n = c.send_data(sid, view[:CHUNK])
        view = view[n:]
        s.receive_data(c.data_to_send())
        while (ev := s.next_event()) is not None:
            if isinstance(ev, DataReceived):
                s.stream_consumed(sid, len(ev.data))
        back = s.data_to_send()
        if back:  # b"" would mean EOF
            c.receive_data(back)
        while c.next_event() is not None:
            pass


def driver_case(data: bytes) -> None:
    a, b = Host(Identity.from_seed(b"\x01" * 32)), Host(Identity.from_seed(b"\x02" * 32))
    received = 0

    async def sink(stream: Stream) -> None:
        nonlocal received
        while chunk := await stream.receive_some():
            received += len(chunk)

    b.set_stream_handler("/bench/sink", sink)

    async def main() -> None:
        s1, s2 = trio.testing.memory_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(b.serve_transport, s2)
            async with a.upgrade(s1, initiator=True) as conn:
                st = await conn.open_stream("/bench/sink")
                view = memoryview(data)
                for off in range(0, len(view), CHUNK):
                    await st.send_all(view[off : off + CHUNK])
                await st.send_eof()
                while received < len(data):
                    await trio.sleep(0.001)
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert received == len(data)


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(name: str, fn: Callable[[bytes], None], data: bytes, repeats: int) -> dict[str, object]:
    fn(data[: 1 << 16])  # warm-up
    case_t, base_t = [], []
    for _ in range(repeats):
        case_t.append(_time(lambda: fn(data)))
        base_t.append(_time(lambda: hashlib.sha256(data).digest()))
    c, b = min(case_t), min(base_t)
    return {"case": name, "bytes": len(data), "seconds": round(c, 4), "baseline": round(b, 5),
            "ratio": round(c / b, 2), "MB_per_s": round(len(data) / c / 1e6, 1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    ap.add_argument("--mib", type=int, default=64)
    a = ap.parse_args(argv)
    size = (1 << 20) if a.smoke else a.mib << 20
    repeats = 1 if a.smoke else 5
    data = bytes(range(256)) * (size // 256)
    for name, fn in (("noise_transport", noise_case), ("yamux_framing", yamux_case), ("driver_memory_stream", driver_case)):
        print(json.dumps(measure(name, fn, data, repeats)), flush=True)
    for mib in ((1, 2) if a.smoke else (8, 32)):
        buf = bytes(mib << 20)
        tracemalloc.start()
        driver_case(buf)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(json.dumps({"case": "driver_peak", "bytes": mib << 20, "peak_bytes": peak,
                          "note": "input buffer itself excluded (allocated before tracing)"}), flush=True)


if __name__ == "__main__":
    main()
