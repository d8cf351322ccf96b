"""Import through fsspec URLs (pyipld/unixfs/remote.py): overhead over the transport, and memory.

Cases (one JSON line each, STYLE.md §9):

* ``file_url``: a tree of a few large files imported as ``file://`` (fsspec's local file
  system, ranged ``cat_file`` reads) ÷ one-thread ``hashlib.sha256`` over the same bytes;
  ``vs_plain_path`` = ÷ the same import by path (``import_paths``), both ``jobs=1``, interleaved.
* ``s3_moto``: the same tree from a loopback moto S3 server (skipped without moto/s3fs) ÷ a
  plain download of the same objects in the same 4 MiB ranged requests (the transport alone):
  what hashing and the tree walk add to reading the bucket. moto is a Python server, so the
  absolute speed is moto's, not S3's.
* ``peak_memory``: tracemalloc peak of importing one large object through ``file://``, in MiB,
  beside the object's size (bounded: a few ranged reads, never the object).

Run: ``python -m benchmarks.bench_remote [--size-mib M] [--smoke]``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    MiB,
    bench_parser,
    deterministic_file,
    emit,
    sha256_files,
    time_interleaved,
    traced_peak_mib,
)
from pyipld.unixfs import remote
from pyipld.unixfs.params import ImportParams
from pyipld.unixfs.remote import import_urls
from pyipld.unixfs.tree import import_paths


def make_tree(root: Path, files: int, size: int) -> list[Path]:
    paths = []
    for i in range(files):
        p = root / "tree" / f"sub{i % 2}" / f"f{i}.bin"
        p.parent.mkdir(parents=True, exist_ok=True)
        deterministic_file(str(p), size, seed=f"remote-{i}")
        paths.append(p)
    return paths


def bench_file_url(root: Path, paths: list[Path], repeat: int) -> None:
    nbytes = sum(p.stat().st_size for p in paths)
    params = ImportParams(cid_version=1)
    url = f"file://{root / 'tree'}"
    got = import_urls([url], params, jobs=1)
    assert got == import_paths([root / "tree"], params, jobs=1)
    timing = time_interleaved(lambda: import_urls([url], params, jobs=1), lambda: sha256_files(paths), repeat=repeat,
                              control=lambda: import_paths([root / "tree"], params, jobs=1))
    emit("file_url", nbytes, timing, vs_plain_path=round(timing.seconds / timing.extra["control"], 3),
         files=len(paths), note="ratio = ÷ one-thread sha256; machine shared with other jobs")


def bench_s3(root: Path, paths: list[Path], repeat: int) -> None:
    try:
        import boto3
        import s3fs  # noqa: F401
        from moto.server import ThreadedMotoServer
    except ImportError:
        emit("s3_moto", 0, None, skipped="moto[server] and s3fs not installed")
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key="bench",
                              region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        for p in paths:
            client.upload_file(str(p), "bench", str(p.relative_to(root)))
        opts: dict[str, Any] = {"key": "bench", "secret": "bench", "use_listings_cache": False,
                                "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        source = remote.RemoteSource("s3", opts)
        keys = [(f"bench/{p.relative_to(root)}", p.stat().st_size) for p in paths]

        def download() -> None:
            for key, size in keys:
                for a in range(0, size, remote.READ_BYTES):
                    source.read(key, a, min(a + remote.READ_BYTES, size))

        params = ImportParams(cid_version=1)
        got = import_urls(["s3://bench/tree"], params, storage_options=opts, jobs=1)
        assert got == import_paths([root / "tree"], params, jobs=1)
        timing = time_interleaved(lambda: import_urls(["s3://bench/tree"], params, storage_options=opts, jobs=1),
                                  download, repeat=repeat)
        emit("s3_moto", sum(s for _, s in keys), timing,
             note="ratio = ÷ the same ranged downloads alone (moto on loopback); machine shared")
    finally:
        server.stop()


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--size-mib", type=int, default=64, help="bytes per file of the tree (4 files)")
    args = parser.parse_args()
    size = (2 if args.smoke else args.size_mib) * MiB
    repeat = 1 if args.smoke else args.repeat
    root = Path(tempfile.mkdtemp(prefix="pyipld-bench-remote-"))
    try:
        paths = make_tree(root, 4, size)
        bench_file_url(root, paths, repeat)
        bench_s3(root, paths, repeat)
        big = paths[0]
        peak = traced_peak_mib(lambda: import_urls([f"file://{big}"], ImportParams(cid_version=1), jobs=2))
        emit("peak_memory", big.stat().st_size, None, traced_peak_mib=round(peak, 2),
             object_mib=round(big.stat().st_size / MiB, 1), read_mib=remote.READ_BYTES / MiB)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
