"""Dask clusters the distributed tests share (distributed must be importable)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import distributed


@contextmanager
def inproc_client() -> Iterator[Any]:
    """Two one-thread workers in this process (inproc comms; the dashboard on an ephemeral
    loopback port only)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address="127.0.0.1:0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as c:
        yield c


@contextmanager
def two_process_client() -> Iterator[Any]:
    """Two worker processes on loopback."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as cluster, distributed.Client(cluster) as c:
        yield c


def worker_pids(client: Any) -> list[int] | None:
    """The two workers' process IDs, or None (printed) when they are not two other processes."""
    pids = sorted(client.run(os.getpid).values())
    if len(pids) != 2 or os.getpid() in pids:
        print(f"unexpected worker pids {pids}")
        return None
    return pids
