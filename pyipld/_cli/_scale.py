"""``add``'s incremental and distributed options (``--cache``, ``--dask``) around ``import_paths``."""

from __future__ import annotations

import argparse
import os
from contextlib import ExitStack
from typing import Any

from ..blockstore import BlockSink, NullSink
from ..errors import ConfigError
from ..unixfs.cache import ImportCache
from ..unixfs.importer import ImportResult
from ..unixfs.params import ImportParams
from ..unixfs.tree import import_paths

__all__ = ["import_paths_scaled"]


def import_paths_scaled(args: argparse.Namespace, paths: list[Any], params: ImportParams, sink: BlockSink,
                        **kwargs: Any) -> ImportResult:
    """:func:`~pyipld.unixfs.tree.import_paths`, with ``--cache FILE`` and ``--dask [ADDRESS]`` applied."""
    cache_path = getattr(args, "cache", None)
    address = getattr(args, "dask", None)
    journal = kwargs.pop("journal", None)
    with ExitStack() as stack:
        cache = stack.enter_context(ImportCache(cache_path)) if cache_path is not None else None
        if address is None:
            return import_paths(paths, params, sink, cache=cache, journal=journal, **kwargs)
        if not isinstance(sink, NullSink):
            raise ConfigError("--dask computes CIDs only: it cannot be combined with --car or --blockstore")
        if not all(isinstance(p, (str, bytes, os.PathLike)) for p in paths):
            raise ConfigError("--dask reads files by path on the workers: stdin and URLs cannot be added with it")
        from ..distributed import dask_client, import_paths_dask

        client = stack.enter_context(dask_client(address, workers=kwargs.pop("jobs", None)))
        return import_paths_dask(paths, params, client, cache=cache, **kwargs)
