"""``pyipld chunk``: show where a chunker cuts a file (offsets and lengths), as kubo would."""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Iterator

from .._accel import BACKENDS, resolve_backend
from ..chunker import iter_reads, parse_chunker
from ..chunker.buzhash import Buzhash
from ..chunker.rabin import Rabin

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chunk", help="print the chunk boundaries of a file",
                       description="Split a file with a kubo chunker and print one line per chunk: "
                                   "offset, length (and the chunk's sha256 with --sha256).")
    p.add_argument("path", nargs="?", default="-", metavar="FILE", help="file to split; - for stdin")
    p.add_argument("-s", "--chunker", default="size-262144",
                   help="size-N, rabin, rabin-AVG, rabin-MIN-AVG-MAX, buzhash (default size-262144)")
    p.add_argument("--accel", choices=BACKENDS, default=None,
                   help="rabin/buzhash implementation (default: the fastest installed)")
    p.add_argument("--sha256", action="store_true", help="also print each chunk's sha256")
    p.add_argument("--stats", action="store_true", help="print only a summary (count, sizes, speed) on stderr")
    p.set_defaults(func=run)


def _reads(path: str) -> Iterator[bytes]:
    if path == "-":
        yield from iter_reads(sys.stdin.buffer)
        return
    with open(path, "rb") as f:
        yield from iter_reads(f)


def run(args: argparse.Namespace) -> int:
    chunker = parse_chunker(args.chunker)
    if args.accel is not None:
        backend = resolve_backend(args.accel)
        if isinstance(chunker, Rabin):
            chunker = Rabin(chunker.min_size, chunker.avg_size, chunker.max_size, backend=backend)
        elif isinstance(chunker, Buzhash):
            chunker = Buzhash(backend=backend)
    offset = count = 0
    smallest, largest = -1, 0
    started = time.perf_counter()
    out = sys.stdout
    for chunk in chunker.split(_reads(args.path)):
        if not args.stats:
            line = f"{offset}\t{len(chunk)}"
            if args.sha256:
                line += "\t" + hashlib.sha256(chunk).hexdigest()
            out.write(line + "\n")
        offset += len(chunk)
        count += 1
        smallest = len(chunk) if smallest < 0 else min(smallest, len(chunk))
        largest = max(largest, len(chunk))
    if args.stats:
        seconds = time.perf_counter() - started
        mean = offset / count if count else 0
        print(f"{args.chunker}: {count} chunks, {offset} bytes, min {max(smallest, 0)} mean {mean:.0f} "
              f"max {largest}, {offset / seconds / 1e6 if seconds else 0:.1f} MB/s", file=sys.stderr)
    return 0
