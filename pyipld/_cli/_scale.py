"""``add``'s incremental and distributed options (``--cache``, ``--dask``) around ``import_paths``, and
fsspec URL inputs (``import_urls``, ``--storage-options``)."""

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
    urls = [p for p in paths if isinstance(p, str)]  # fsspec URLs (local paths come as bytes)
    options = getattr(args, "storage_options", None)
    if urls:
        if len(urls) != len(paths):
            raise ConfigError("fsspec URLs cannot be mixed with local paths, stdin or http(s) URLs in one add")
        if cache_path is not None:
            raise ConfigError("--cache keys local files by their stat data: it cannot be used with fsspec URLs")
    journal = kwargs.pop("journal", None)
    with ExitStack() as stack:
        cache = stack.enter_context(ImportCache(cache_path)) if cache_path is not None else None
        if address is None:
            if urls:
                from ..unixfs.remote import import_urls

                return import_urls(urls, params, sink, storage_options=options, **kwargs)  # add.py gives no journal
            return import_paths(paths, params, sink, cache=cache, journal=journal, **kwargs)
        if not isinstance(sink, NullSink):
            raise ConfigError("--dask computes CIDs only: it cannot be combined with --car or --blockstore")
        if not all(isinstance(p, (str, bytes, os.PathLike)) for p in paths):
            raise ConfigError("--dask reads files by path or fsspec URL on the workers: stdin and http(s) URLs "
                              "cannot be added with it")
        from ..distributed import dask_client, import_paths_dask

        client = stack.enter_context(dask_client(address, workers=kwargs.pop("jobs", None)))
        if urls:
            return import_paths_dask(urls, params, client, storage_options=options, **kwargs)
        return import_paths_dask(paths, params, client, cache=cache, **kwargs)
