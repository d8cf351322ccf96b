"""Helpers for the ipfs:// filesystem tests: trees imported into CARs, a Range-capable HTTP server."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyipld.car import open_car_sink
from pyipld.unixfs import ImportParams, import_directory

from ._deterministic import chacha_bytes

V1 = ImportParams(cid_version=1)


def make_tree(root: Path, *, big: int = 700_000, hamt_files: int = 40) -> Path:
    """A small tree: text, a multi-leaf binary, a nested dir, a HAMT-sized dir, a symlink."""
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"hello world\n")
    (root / "empty.bin").write_bytes(b"")
    (root / "sub" / "big.bin").write_bytes(chacha_bytes("fs-big", big))
    (root / "sub" / "deep" / "c.csv").write_text("x,y\n1,2\n3,4\n")
    (root / "many").mkdir()
    for i in range(hamt_files):
        (root / "many" / f"f{i:03d}.txt").write_text(f"file {i}\n")
    os.symlink("a.txt", root / "link")
    return root


def build_car(src: Path, car: Path, params: ImportParams = V1, *, version: int = 2) -> str:
    """Import ``src`` (a directory) into ``car``; returns the root CID text."""
    with open_car_sink(car, version=version, params=params) as sink:
        res = import_directory(src, params, sink)
        sink.set_roots([res.cid])
    return str(res.cid)


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves one directory with single-range support and counts the body bytes it sends."""

    counter: dict[str, int]

    def log_message(self, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data_size = path.stat().st_size
        rng = self.headers.get("Range")
        start, end = 0, data_size - 1
        status = 200
        if rng and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a) if a else max(0, data_size - int(b))
            end = min(int(b), data_size - 1) if (a and b) else data_size - 1
            status = 206
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{data_size}")
        self.end_headers()
        if head:
            return
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(length)
        self.counter["requests"] += 1
        self.counter["bytes"] += len(body)
        self.wfile.write(body)


@contextmanager
def range_server(directory: Path) -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback HTTP server for ``directory``: yields (base URL, counters)."""
    counter = {"requests": 0, "bytes": 0}
    handler = type("H", (_RangeHandler,), {"counter": counter})

    def make(*a: object, **kw: object) -> _RangeHandler:
        return handler(*a, directory=str(directory), **kw)  # type: ignore[arg-type]

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
