"""``pyipld car pack PATH… --target-size SIZE -o OUTDIR``: deal-sized CARs plus a manifest.

The ``car`` command group lives in another module; it calls :func:`register_pack`
with its sub-parsers to add ``pack`` (and ``unpack``, which reassembles files).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .._progress import Progress
from ..errors import ConfigError
from ..filecoin.commp import default_jobs, parse_piece_size
from ..filecoin.pack import MANIFEST_NAME, pack, reassemble
from .add import add_import_arguments, params_from_args, print_line

__all__ = ["register_pack", "run_pack", "run_unpack"]


def register_pack(car_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pack`` and ``unpack`` to the ``car`` command's sub-parsers."""
    p = car_sub.add_parser("pack", help="pack files into CARs that each fit a Filecoin piece",
                           description="Turn files and directory trees into numbered CARv1 files whose padded "
                                       "piece size fits --target-size, plus manifest.json (files -> CARs, "
                                       "root CIDs, piece CIDs). Deterministic; an interrupted run resumes.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="files and directories to pack")
    p.add_argument("--target-size", required=True, metavar="SIZE",
                   help="padded piece size each CAR must fit, a power of two (e.g. 32GiB)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output directory")
    p.add_argument("-j", "--jobs", type=int, default=None, help="hashing threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("-p", "--progress", action="store_true", help="show import progress on stderr")
    add_import_arguments(p)
    # -- distributed (docs/distributed.md): a plain flag, kept apart --
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="import files and write each CAR (with its piece CID) on a Dask cluster: local (an "
                        "embedded LocalCluster, -j threads) or a scheduler address tcp://host:8786; the workers "
                        "must see PATH and OUTDIR at the same paths. Same output as without it")
    p.set_defaults(func=run_pack)
    u = car_sub.add_parser("unpack", help="rebuild the files of a `car pack` output directory",
                           description="Reassemble every file listed in OUTDIR/manifest.json from its CARs.")
    u.add_argument("packdir", metavar="PACKDIR", help="directory written by `car pack`")
    u.add_argument("-o", "--output", required=True, metavar="DEST", help="where to write the files")
    u.set_defaults(func=run_unpack)


def run_pack(args: argparse.Namespace) -> int:
    target = parse_piece_size(args.target_size)
    params = params_from_args(args)
    params.resolve()
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {args.jobs}")
    bar = Progress(None, label="pack") if args.progress else None

    def on_car(entry: dict[str, Any]) -> None:
        if not args.quiet:
            if bar:
                sys.stderr.write("\n")
            print(f"{entry['name']} {entry['piece_cid']} {entry['padded_piece_size']} {entry['car_size']}",
                  flush=True)

    if args.dask is not None:
        from ..distributed import dask_client, pack_dask

        with dask_client(args.dask, workers=args.jobs) as client:
            result = pack_dask(args.paths, args.output, client, target_size=target, params=params,
                               on_car=on_car, progress=bar.update if bar else None)
    else:
        result = pack(args.paths, args.output, target_size=target, params=params,
                      jobs=args.jobs or default_jobs(), on_car=on_car, progress=bar.update if bar else None)
    if bar:
        bar.close()
    if not args.quiet:
        doc = result.manifest
        print(f"{len(doc['cars'])} CARs ({result.cars_skipped} already done), {len(doc['files'])} files, "
              f"manifest {args.output}/{MANIFEST_NAME}", flush=True)
    return 0


def run_unpack(args: argparse.Namespace) -> int:
    for rel in reassemble(args.packdir, args.output):
        print_line(rel, sys.stdout)
    return 0
