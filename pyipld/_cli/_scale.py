"""``add``'s incremental-import option (``--cache``) turned into ``import_paths`` keywords."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..unixfs.cache import ImportCache

__all__ = ["open_scale_options"]


@contextmanager
def open_scale_options(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    """Keyword arguments for :func:`~pyipld.unixfs.tree.import_paths`; the cache is closed on exit."""
    path = getattr(args, "cache", None)
    if path is None:
        yield {}
        return
    with ImportCache(path) as cache:
        yield {"cache": cache}
