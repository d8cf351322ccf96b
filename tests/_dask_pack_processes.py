"""Run inside ``unshare -n`` by tests/test_pack_dask.py: ``car pack`` on a real two-process
Dask cluster, then again while SIGKILLing one worker after a few task submissions (Dask
reschedules its tasks and recomputes results it held), each compared byte for byte with the
single-process pack. Prints ``OK pack killed-worker`` on success; exits non-zero otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests._dask_processes import KillingExecutor


def main(tmp: str) -> int:
    from pyipld.distributed import pack_dask
    from pyipld.filecoin.pack import pack
    from pyipld.filecoin.pack_parallel import pack_parallel
    from pyipld.unixfs.params import ImportParams
    from tests._dask import two_process_client, worker_pids
    from tests._peers import in_isolated_netns
    from tests.test_pack_dask import make_tree, outputs

    if not in_isolated_netns():
        print("refusing to start a cluster outside an isolated network namespace")
        return 2
    base = Path(tmp)
    src = make_tree(base)
    params = ImportParams(cid_version=1, chunker="size-2048", max_links=4)
    target = 32 << 10
    pack([src], base / "one", target_size=target, params=params)
    want = outputs(base / "one")
    with two_process_client() as c:
        pack_dask([src], base / "two", c, target_size=target, params=params, task_bytes=10_000)
        if outputs(base / "two") != want:
            print("MISMATCH two processes")
            return 1
        pids = worker_pids(c)
        if pids is None:
            return 1
        killer = KillingExecutor(c, pids[0], after=12)
        pack_parallel([src], base / "killed", killer, target_size=target, params=params, task_bytes=10_000)
        if killer.n < 12:
            print(f"only {killer.n} tasks: no worker was killed")
            return 1
    if outputs(base / "killed") != want:
        print("MISMATCH after a killed worker")
        return 1
    print("OK pack killed-worker")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
