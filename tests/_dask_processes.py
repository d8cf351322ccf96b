"""Run inside ``unshare -n`` by tests/test_distributed.py: a real two-process Dask cluster.

Imports a tree on the cluster, then again while SIGKILLing one worker after a few task
submissions (Dask reschedules its tasks), and compares both with one process.
Prints ``OK killed-worker`` on success; exits non-zero otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any


class KillingExecutor:
    """Submits to a Dask client and SIGKILLs worker process ``pid`` at submission ``after``."""

    def __init__(self, client: Any, pid: int, after: int) -> None:
        self.client, self.pid, self.after, self.n = client, pid, after, 0

    def submit(self, fn: Any, *args: Any) -> Any:
        self.n += 1
        if self.n == self.after:
            os.kill(self.pid, signal.SIGKILL)
        return self.client.submit(fn, *args)


def main(tmp: str) -> int:
    from pyipld.distributed import import_paths_dask
    from pyipld.unixfs.parallel import ParallelImporter, list_files
    from pyipld.unixfs.params import ImportParams
    from pyipld.unixfs.tree import AddedEntry, import_paths
    from tests._dask import two_process_client, worker_pids
    from tests._peers import in_isolated_netns
    from tests.test_distributed import make_tree

    if not in_isolated_netns():
        print("refusing to start a cluster outside an isolated network namespace")
        return 2
    d = make_tree(Path(tmp))
    params = ImportParams(chunker="size-2048", max_links=3)

    def events(fn: Any, *args: Any, **kw: Any) -> list[tuple[bytes, str]]:
        out: list[AddedEntry] = []
        fn(*args, on_added=out.append, **kw)
        return [(e.path, str(e.cid)) for e in out]

    want = events(import_paths, [d], params)
    with two_process_client() as c:
        if events(import_paths_dask, [d], params, c, task_bytes=30_000) != want:
            print("MISMATCH two processes")
            return 1
        pids = worker_pids(c)
        if pids is None:
            return 1
        runner = ParallelImporter(KillingExecutor(c, pids[0], after=5), params, task_bytes=20_000)
        runner.run(list_files([os.fsencode(d)], params))
        got = events(import_paths, [d], params, file_roots=runner.file_roots)
        remote = len(runner.roots)
    if got != want or remote != 92:
        print(f"MISMATCH after a killed worker (remote roots: {remote})")
        return 1
    print("OK killed-worker")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
