"""``pyipld filestore ls|verify|dups``: kubo's ``ipfs filestore`` over a ``--blockstore DIR`` that
``add --nocopy`` wrote references to (output as kubo 0.22 prints it)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from ..cid import CID
from ..errors import CIDError, ConfigError, PyipldError
from ..filestore import INDEX_NAME, Filestore, ListResult, Status
from .add_output import CidEncoder

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("filestore", help="list and verify the references `add --nocopy` kept (ipfs filestore)",
                       description="Interact with filestore objects (kubo's `ipfs filestore`).")
    fs = p.add_subparsers(dest="filestore_command", metavar="SUBCOMMAND", required=True)
    ls = fs.add_parser("ls", help="list objects in the filestore: <hash> <size> <path> <offset>",
                       description="List objects in the filestore. With CIDs, only those (and they are verified, "
                                   "as kubo does). Output: <hash> <size> <path> <offset>")
    verify = fs.add_parser("verify", help="verify objects in the filestore: <status> <hash> <size> <path> <offset>",
                           description="Verify objects in the filestore (every referenced block is read and "
                                       "hashed). <status> is ok, changed (the file's contents changed), no-file "
                                       "(the file is gone), error (another problem reading it), missing (no such "
                                       "object) or ERROR (internal error, also printed to stderr).")
    dups = fs.add_parser("dups", help="list blocks that are both referenced and stored as copies",
                         description="List blocks that are both in the filestore and standard block storage.")
    for q, what in ((ls, "list"), (verify, "verify")):
        q.add_argument("objs", nargs="*", metavar="CID", help=f"CIDs of objects to {what} (default: all)")
        q.add_argument("--file-order", action="store_true",
                       help="sort the results by the path of the backing file (then offset)")
    for q in (ls, verify, dups):
        q.add_argument("--blockstore", metavar="DIR", help="the blockstore `add --nocopy --blockstore DIR` wrote")
        q.add_argument("--cid-base", default=None, metavar="BASE", help="multibase of the printed CIDs")
        q.set_defaults(func=run)


def _open(args: argparse.Namespace) -> Filestore:
    if not args.blockstore:
        raise ConfigError("filestore needs --blockstore DIR (the blockstore `add --nocopy` wrote to)")
    try:
        return Filestore(args.blockstore, create=False)
    except PyipldError:
        raise ConfigError(f"filestore is not enabled in {args.blockstore}: no {INDEX_NAME} "
                          "(add --nocopy --blockstore DIR creates it)") from None


def _by_args(store: Filestore, objs: list[str]) -> Iterator[ListResult]:
    """kubo ``listByArgs``: each CID verified; an unparsable one is an ERROR entry."""
    for arg in objs:
        try:
            cid = CID.decode(arg)
        except (CIDError, ValueError) as exc:
            yield ListResult(Status.OTHER_ERROR, None, error=f"{arg}: {exc}")
            continue
        yield store.check(cid)


def run(args: argparse.Namespace) -> int:
    store = _open(args)
    encoder = CidEncoder.from_options(args.cid_base, None)

    def enc(cid: CID) -> str:
        return encoder.encode(cid)

    out = sys.stdout
    try:
        if args.filestore_command == "dups":
            for cid in store.duplicates():
                out.write(enc(cid) + "\n")
            return 0
        verify = args.filestore_command == "verify"
        results = _by_args(store, args.objs) if args.objs else store.list(verify=verify, file_order=args.file_order)
        if verify:
            for r in results:  # kubo: every entry on stdout; ERROR entries also on stderr
                if r.status == Status.OTHER_ERROR:
                    print(r.error, file=sys.stderr)
                out.write(f"{r.status.label:<7} {r.format_long(enc)}\n")
            return 0
        errors = False
        for r in results:  # kubo streamResult: error entries on stderr, then one error at the end
            if r.error:
                errors = True
                out.flush()
                print(r.error, file=sys.stderr)
            else:
                out.write(r.format_long(enc) + "\n")
        if errors:
            raise PyipldError("errors while displaying some entries")
        return 0
    finally:
        store.close()
