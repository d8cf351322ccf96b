"""ipfs:// (fsspec) benchmarks: sequential and random reads from a local indexed CAR, pandas
Parquet through ipfs:// vs the plain file, and what opening a 10,000-chunk zarr array and
reading one chunk transfers from a remote CAR.

Run ``python -m benchmarks.bench_fsspec`` (``--smoke`` for tiny sizes). Each case prints one
JSON line; ``ratio`` = t_case / t_baseline with the baseline run interleaved in the same
process (STYLE §9). Goals (issue 12): sequential read ÷ hashlib.sha256 over the same bytes
≥ 0.8 (``speed`` = 1/ratio); pd.read_parquet via ipfs:// ÷ plain file ≤ 1.3 (``ratio``).
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import time
from pathlib import Path

from benchmarks._harness import MiB, bench_parser, deterministic_file, emit, time_interleaved
from pyipld.car import open_car_sink
from pyipld.fs import IPFSFileSystem
from pyipld.unixfs import ImportParams, import_directory, import_file


def _car_of_file(src: Path, car: Path, params: ImportParams) -> str:
    with open_car_sink(car, version=2, params=params) as sink:
        cid = import_file(src, params, sink).cid
        sink.set_roots([cid])
    return str(cid)


def _car_of_dir(src: Path, car: Path, params: ImportParams) -> str:
    with open_car_sink(car, version=2, params=params) as sink:
        cid = import_directory(src, params, sink).cid
        sink.set_roots([cid])
    return str(cid)


def _sequential_cases(car: Path, cid: str, size: int, data: bytes, label: str, repeat: int) -> None:
    read = 8 * MiB

    def fresh() -> IPFSFileSystem:  # a cold filesystem per run: nothing read before is in memory
        return IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)

    def via_open() -> None:
        fs = fresh()
        with fs.open(cid, "rb") as f:
            while f.read(read):
                pass
        fs.close()

    def via_cat() -> None:
        fs = fresh()
        for off in range(0, size, read):
            fs.cat_file(cid, off, off + read)
        fs.close()

    def sha() -> None:
        hashlib.sha256(data).digest()

    for case, fn in (("open_read_8MiB", via_open), ("cat_file_8MiB_ranges", via_cat)):
        t = time_interleaved(fn, sha, repeat=repeat)
        emit(f"sequential_{case}[{label}]", size, t, speed=round(1 / t.ratio, 3),
             baseline_case="hashlib.sha256 over the same bytes (goal speed >= 0.8)")


def bench_sequential(tmp: Path, size: int, repeat: int) -> None:
    src = tmp / "seq.bin"
    deterministic_file(str(src), size, "pyipld-bench-fsspec")
    data = src.read_bytes()
    for label, params in (("cidv1-raw", ImportParams(cid_version=1)), ("cidv0-kubo-default", ImportParams())):
        car = tmp / f"seq-{label}.car"
        _sequential_cases(car, _car_of_file(src, car, params), size, data, label, repeat)


def bench_random(tmp: Path, size: int, count: int) -> None:
    src = tmp / "seq.bin"
    deterministic_file(str(src), size, "pyipld-bench-fsspec")
    car = tmp / "seq-cidv1-raw.car"
    cid = _car_of_file(src, car, ImportParams(cid_version=1))
    rng = random.Random(1)
    offsets = [rng.randrange(0, size - 4096) for _ in range(count)]
    for label, mem in (("memory_cache_64MiB", 64 * MiB), ("no_memory_cache", 0)):
        fs = IPFSFileSystem(cars=[str(car)], use_env=False, memory_cache=mem, skip_instance_cache=True)
        fs.cat_file(cid, 0, 1)
        t0 = time.perf_counter()
        for off in offsets:
            fs.cat_file(cid, off, off + 4096)
        dt = time.perf_counter() - t0
        fd = os.open(src, os.O_RDONLY)
        b0 = time.perf_counter()
        for off in offsets:
            os.pread(fd, 4096, off)
        base = time.perf_counter() - b0
        os.close(fd)
        emit(f"random_4KiB_cat_file[{label}]", count * 4096, None, reads_per_s=round(count / dt),
             seconds=round(dt, 4), baseline=round(base, 4), ratio=round(dt / base, 1),
             baseline_case="os.pread of 4 KiB from the plain file (page cache)")
        fs.close()


def bench_parquet(tmp: Path, size: int, repeat: int) -> None:
    import numpy as np
    import pandas as pd

    n = size // 32  # 4 float64 columns, ~32 bytes a row
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({c: rng.random(n) for c in "abcd"})
    src = tmp / "pq"
    src.mkdir(exist_ok=True)
    frame.to_parquet(src / "t.parquet", index=False)
    nbytes = (src / "t.parquet").stat().st_size
    car = tmp / "pq.car"
    root = _car_of_dir(src, car, ImportParams(cid_version=1))
    opts = {"cars": [str(car)], "use_env": False}
    url = f"ipfs://{root}/t.parquet"

    def via_ipfs() -> None:
        pd.read_parquet(url, storage_options=opts)

    def plain() -> None:
        pd.read_parquet(src / "t.parquet")

    t = time_interleaved(via_ipfs, plain, repeat=repeat)
    emit("pandas_read_parquet_ipfs", nbytes, t, baseline_case="pd.read_parquet of the plain file (goal ratio <= 1.3)")

    def one_column() -> None:
        pd.read_parquet(url, columns=["b"], storage_options=opts)

    def one_column_plain() -> None:
        pd.read_parquet(src / "t.parquet", columns=["b"])

    t = time_interleaved(one_column, one_column_plain, repeat=repeat)
    emit("pandas_read_parquet_ipfs_one_column", nbytes, t, baseline_case="the same from the plain file")


def bench_zarr(tmp: Path, chunks_per_side: int) -> None:
    import numpy as np
    import zarr

    from tests._fs import range_server

    side = chunks_per_side * 8
    src = tmp / "z"
    z = zarr.open_array(str(src / "a.zarr"), mode="w", shape=(side, side), chunks=(8, 8), dtype="float64")
    arr = np.random.default_rng(3).random((side, side))
    z[:] = arr
    www = tmp / "www"
    www.mkdir(exist_ok=True)
    root = _car_of_dir(src, www / "z.car", ImportParams(cid_version=1))
    car_size = (www / "z.car").stat().st_size
    with range_server(www) as (url, counter):
        fs = IPFSFileSystem(cars=[f"{url}/z.car"], use_env=False, skip_instance_cache=True)
        after_car = dict(counter)
        t0 = time.perf_counter()
        za = zarr.open_array(fs.get_mapper(f"{root}/a.zarr"), mode="r")
        opened = dict(counter)
        value = za[side // 2 + 3, side // 3 + 1]
        dt = time.perf_counter() - t0
        assert value == arr[side // 2 + 3, side // 3 + 1]
        done = dict(counter)
        fs.close()
    emit("zarr_open_and_read_one_chunk_remote_car", car_size, None, chunks=chunks_per_side ** 2,
         seconds=round(dt, 4),
         car_open_requests=after_car["requests"], car_open_bytes=after_car["bytes"],
         zarr_open_requests=opened["requests"] - after_car["requests"],
         zarr_open_bytes=opened["bytes"] - after_car["bytes"],
         one_chunk_requests=done["requests"] - opened["requests"],
         one_chunk_bytes=done["bytes"] - opened["bytes"],
         total_fraction_of_car=round(done["bytes"] / car_size, 4),
         note="car_open = CARv2 header + index (needed to find any block)")


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=1024, help="sequential-read file size")
    parser.add_argument("--only", default="seq,random,parquet,zarr", help="comma-separated cases to run")
    args = parser.parse_args()
    smoke = args.smoke
    size = (8 if smoke else args.size_mib) * MiB
    repeat = 1 if smoke else args.repeat
    with tempfile.TemporaryDirectory(prefix="bench-fsspec-") as d:
        tmp = Path(d)
        if "seq" in args.only:
            bench_sequential(tmp, size, repeat)
        if "random" in args.only:
            bench_random(tmp, size, 200 if smoke else 20_000)
        if "parquet" in args.only:
            bench_parquet(tmp, (2 if smoke else 256) * MiB, repeat)
        if "zarr" in args.only:
            bench_zarr(tmp, 10 if smoke else 100)


if __name__ == "__main__":
    main()
