"""``pyipld commp FILE [--piece-size N]``: Filecoin piece CIDs of a file or stdin.

Output follows go-fil-commp-hashhash's ``stream-commp`` (CommPCid, Payload,
Unpadded piece, Padded piece) plus the FRC-0069 piece CID v2. Also the helpers the
``add --car OUT.car --commp`` path uses: :func:`commp_tap` wraps the CAR output file
so the bytes are hashed as they are written, :func:`print_piece_info` prints the result.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from typing import IO, Any, TextIO

from .._progress import Progress
from ..errors import ConfigError
from ..filecoin.commp import (
    CommP,
    CommPWriter,
    PieceInfo,
    check_piece_size,
    commp_file,
    default_jobs,
    padded_piece_size,
    parse_piece_size,
)

__all__ = ["CARV2_PRAGMA", "commp_tap", "piece_info_dict", "print_piece_info", "register", "run"]

# CARv2 pragma (car.md): deals are made over CARv1 bytes, so CommP of a CARv2 is suspicious.
CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
_PROGRESS_MIN_BYTES = 64 << 20  # show progress (when not --quiet) for inputs at least this big


def piece_info_dict(info: PieceInfo) -> dict[str, Any]:
    """The JSON form printed by ``--json`` and stored in pack manifests."""
    return {
        "piece_cid": str(info.cid_v1),
        "piece_cid_v2": str(info.cid_v2),
        "payload_size": info.payload_size,
        "unpadded_piece_size": info.unpadded_size,
        "padded_piece_size": info.padded_size,
    }


def print_piece_info(info: PieceInfo, stream: TextIO | None = None, *, as_json: bool = False) -> None:
    """Print a piece commitment the way ``stream-commp`` does (or as one JSON object)."""
    out = stream or sys.stdout
    if as_json:
        print(json.dumps(piece_info_dict(info)), file=out)
        return
    print(f"CommPCid: {info.cid_v1}", file=out)
    print(f"PieceCIDv2: {info.cid_v2}", file=out)
    print(f"Payload:        {info.payload_size:>14} bytes", file=out)
    print(f"Unpadded piece: {info.unpadded_size:>14} bytes", file=out)
    print(f"Padded piece:   {info.padded_size:>14} bytes", file=out)


def commp_tap(raw: IO[bytes], *, jobs: int | None = None) -> CommPWriter:
    """Wrap a CAR output file: everything written is hashed; call ``.digest()`` at the end.

    Header patches on close (seek back, rewrite the root) are followed.
    """
    return CommPWriter(raw, CommP(jobs=jobs or default_jobs()))


def commp_of_car(path: str | os.PathLike[str], *, piece_size: int | None = None,
                 jobs: int | None = None) -> PieceInfo:
    """CommP of a CAR file's deal bytes: the whole file for a CARv1, the inner CARv1 for a CARv2."""
    from ..car.v2 import read_v2_prefix

    with open(path, "rb") as f:
        if f.read(len(CARV2_PRAGMA)) != CARV2_PRAGMA:
            f.seek(0)
            return commp_file(f, piece_size=piece_size, jobs=jobs)
        f.seek(0)
        header = read_v2_prefix(f, os.fstat(f.fileno()).st_size)
        f.seek(header.data_offset)
        remaining = header.data_size

        def reads() -> Iterator[bytes]:
            nonlocal remaining
            while remaining:
                block = f.read(min(remaining, 4 << 20))
                if not block:
                    raise ConfigError(f"{path}: CARv2 data payload is truncated")
                remaining -= len(block)
                yield block

        return commp_file(reads(), piece_size=piece_size, jobs=jobs)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("commp", help="Filecoin piece commitment (piece CID v1 and v2) of a file",
                       description="Compute the Filecoin piece CID of FILE (- for stdin), streaming.")
    p.add_argument("file", metavar="FILE", help="input file, - for stdin (deals use CARv1 bytes)")
    p.add_argument("--piece-size", default=None, metavar="SIZE",
                   help="pad to this padded piece size (power of two, e.g. 32GiB)")
    p.add_argument("-j", "--jobs", type=int, default=None, help="hashing workers (default: all cores)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress or warnings on stderr")
    # -- distributed (docs/distributed.md): a plain flag, kept apart --
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="hash aligned subtrees on a Dask cluster: local (an embedded LocalCluster) or tcp://host:8786")
    p.set_defaults(func=run)


class _Sniff:
    """Reads through, remembering the first bytes (for the CARv2 warning)."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.head = b""

    def read(self, n: int) -> bytes:
        block = self.f.read(n)
        if len(self.head) < len(CARV2_PRAGMA):
            self.head += block[: len(CARV2_PRAGMA) - len(self.head)]
        return block


def run(args: argparse.Namespace) -> int:
    piece_size = parse_piece_size(args.piece_size) if args.piece_size is not None else None
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    stdin = args.file == "-"
    total = None if stdin else os.path.getsize(args.file)
    if piece_size is not None:  # fail before reading what we can already refuse
        check_piece_size(piece_size)
        if total is not None and padded_piece_size(total) > piece_size:
            raise ConfigError(f"piece size {piece_size} is too small for {total} payload bytes "
                              f"(needs {padded_piece_size(total)})")
    if getattr(args, "dask", None) is not None:
        return _run_dask(args, piece_size)
    show = not args.quiet and (stdin and sys.stderr.isatty() or (total or 0) >= _PROGRESS_MIN_BYTES)
    bar = Progress(total, label="commp") if show else None
    with (open(sys.stdin.fileno(), "rb", closefd=False) if stdin else open(args.file, "rb")) as f:
        sniff = _Sniff(f)
        try:
            info = commp_file(sniff, piece_size=piece_size, jobs=args.jobs,  # type: ignore[arg-type]
                              progress=bar.update if bar else None)
        finally:
            if bar:
                bar.close()
    if sniff.head == CARV2_PRAGMA and not args.quiet:
        print("warning: input is a CARv2; deals are made over CARv1 bytes, so this piece CID is almost "
              "certainly not the one you want", file=sys.stderr)
    print_piece_info(info, as_json=args.json)
    return 0


def _run_dask(args: argparse.Namespace, piece_size: int | None) -> int:
    if args.file == "-":
        raise ConfigError("--dask needs a file path (workers read it by path), not stdin")
    from ..distributed import commp_file_dask, dask_client

    with dask_client(args.dask, workers=args.jobs) as client:
        info = commp_file_dask(args.file, client, piece_size=piece_size)
    with open(args.file, "rb") as f:
        if f.read(len(CARV2_PRAGMA)) == CARV2_PRAGMA and not args.quiet:
            print("warning: input is a CARv2; deals are made over CARv1 bytes, so this piece CID is almost "
                  "certainly not the one you want", file=sys.stderr)
    print_piece_info(info, as_json=args.json)
    return 0
