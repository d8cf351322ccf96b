"""The filestore (``add --nocopy``, pyipld/filestore.py): what references cost and save.

Cases (one JSON line each, STYLE.md §9; ratios against a baseline run alternately in the same
process, ``control_2thread_sha256_s`` says how loaded the machine was):

* ``add_nocopy``: ``import_file`` of one file (raw leaves, jobs=2) into a :class:`Filestore`
  ÷ the same into a plain :class:`DirectoryBlockstore` (``baseline``: every leaf copied to a file
  of its own). ``ratio_vs_sha256``: ÷ one-thread ``hashlib.sha256`` over the same bytes.
  ``store_bytes``: bytes written by each (copies + index); ``traced_peak_mib``: Python heap peak
  of one nocopy add.
* ``add_nocopy_small_files``: ``import_paths`` of a tree of small files (100–150 B) into a
  :class:`Filestore` ÷ into a :class:`DirectoryBlockstore`: one index transaction per file.
* ``cat_nocopy``: reading the whole file back through ``open_file`` (every block hashed by the
  filestore and again by the reader) ÷ the same from the copied blocks.

Run: ``python -m benchmarks.bench_filestore [--mib N] [--smoke]``.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from benchmarks._harness import (
    MiB,
    bench_parser,
    deterministic_file,
    emit,
    sha256_files,
    time_interleaved,
    traced_peak_mib,
    two_thread_sha256,
)
from pyipld.blockstore import DirectoryBlockstore
from pyipld.filestore import Filestore
from pyipld.unixfs import ImportParams, import_file, open_file
from pyipld.unixfs.tree import import_paths


def _size_of(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    parser = bench_parser(__doc__ or "")
    parser.add_argument("--mib", type=int, default=256, help="file size in MiB (default 256)")
    args = parser.parse_args()
    mib = 4 if args.smoke else args.mib
    repeat = 1 if args.smoke else args.repeat
    params = ImportParams(raw_leaves=True)
    base = Path(tempfile.mkdtemp(prefix="pyipld-bench-filestore-"))
    try:
        src = base / "data.bin"
        deterministic_file(str(src), mib * MiB)
        data_bytes = mib * MiB

        def fresh(name: str) -> Path:
            root = base / name
            shutil.rmtree(root, ignore_errors=True)
            return root

        def nocopy() -> None:
            store = Filestore(fresh("fs"))
            import_file(src, params, store, jobs=2)
            store.close()

        def copied() -> None:
            import_file(src, params, DirectoryBlockstore(fresh("dir")), jobs=2)

        timing = time_interleaved(nocopy, copied, repeat=repeat, control=two_thread_sha256)
        vs_sha = time_interleaved(nocopy, lambda: sha256_files([src]), repeat=repeat)
        nocopy()
        copied()
        peak = traced_peak_mib(nocopy)
        emit("add_nocopy", data_bytes, timing, ratio_vs_sha256=round(vs_sha.ratio, 4),
             store_bytes={"nocopy": _size_of(base / "fs"), "copied": _size_of(base / "dir")},
             traced_peak_mib=round(peak, 2), control_2thread_sha256_s=round(timing.extra["control"], 4),
             note="under load from other jobs")

        tree = base / "tree"
        tree.mkdir()
        files = 50 if args.smoke else 2000
        for i in range(files):
            (tree / f"f{i:05d}.txt").write_bytes(hashlib.shake_256(b"%d" % i).digest(100 + i % 50))

        def tree_nocopy() -> None:
            store = Filestore(fresh("tree-fs"))
            import_paths([tree], params, store)
            store.close()

        def tree_copied() -> None:
            import_paths([tree], params, DirectoryBlockstore(fresh("tree-dir")))

        timing = time_interleaved(tree_nocopy, tree_copied, repeat=repeat, control=two_thread_sha256)
        emit("add_nocopy_small_files", sum(100 + i % 50 for i in range(files)), timing, files=files, files_per_s=round(files / timing.seconds),
             control_2thread_sha256_s=round(timing.extra["control"], 4), note="under load from other jobs")

        root = import_file(src, params).cid
        fs_store, dir_store = Filestore(base / "fs"), DirectoryBlockstore(base / "dir")

        def read(store: DirectoryBlockstore) -> None:
            with open_file(store, root, buffering=0) as f:
                while f.read(MiB):
                    pass

        timing = time_interleaved(lambda: read(fs_store), lambda: read(dir_store), repeat=repeat,
                                  control=two_thread_sha256)
        emit("cat_nocopy", data_bytes, timing, control_2thread_sha256_s=round(timing.extra["control"], 4),
             note="under load from other jobs")
        fs_store.close()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
