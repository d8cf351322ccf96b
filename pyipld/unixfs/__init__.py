"""UnixFS: import files and trees exactly like ``ipfs add``, read them back safely.

Files: :func:`import_file`/:func:`import_bytes` (importer.py), reading back with
:func:`read_file`/:func:`iter_file`/:func:`open_file` (reader.py). Directories:
:func:`import_directory`/:func:`import_paths` (tree.py) — and :func:`import_urls` for trees behind
fsspec URLs such as ``s3://bucket/prefix`` (remote.py) —, :func:`build_directory` and
:class:`DirectoryBuilder` over ready entries, :func:`resolve_path`, :func:`iter_directory`,
:func:`walk`, and safe :func:`extract`. See docs/directories.md.
"""

# ruff: noqa: TC004 - the names in TYPE_CHECKING are exported lazily (lazy_package)
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_package

if TYPE_CHECKING:  # the public names, loaded on first use by lazy_package below
    from .cache import ImportCache
    from .directory import DirectoryBuilder, DirEntry, DirLink, build_directory
    from .extract import ExtractStats, extract
    from .hamt import build_hamt
    from .importer import ImportResult, import_bytes, import_file
    from .params import UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams
    from .reader import UnixFSReader, iter_file, open_file, read_file
    from .remote import import_urls
    from .resolve import ResolvedPath, resolve_path
    from .tree import AddedEntry, import_directory, import_paths
    from .walk import DirectoryEntry, UnixFSNode, iter_directory, load_node, lookup, walk

__all__ = [
    "UNIXFS_V0_2015",
    "UNIXFS_V1_2025",
    # directories: building
    "AddedEntry",
    "DirEntry",
    "DirLink",
    "DirectoryBuilder",
    # directories: reading
    "DirectoryEntry",
    "ExtractStats",
    # files (importer.py, params.py)
    "ImportCache",
    "ImportParams",
    "ImportResult",
    "ResolvedPath",
    "UnixFSNode",
    "UnixFSReader",
    "build_directory",
    "build_hamt",
    "extract",
    "import_bytes",
    "import_directory",
    "import_file",
    "import_paths",
    "import_urls",
    "iter_directory",
    "iter_file",
    "load_node",
    "lookup",
    "open_file",
    "read_file",
    "resolve_path",
    "walk",
]

lazy_package(__name__, {
    "ImportCache": "cache",
    "DirectoryBuilder": "directory",
    "DirEntry": "directory",
    "DirLink": "directory",
    "build_directory": "directory",
    "ExtractStats": "extract",
    "extract": "extract",
    "build_hamt": "hamt",
    "ImportResult": "importer",
    "import_bytes": "importer",
    "import_file": "importer",
    "UNIXFS_V0_2015": "params",
    "UNIXFS_V1_2025": "params",
    "ImportParams": "params",
    "UnixFSReader": "reader",
    "iter_file": "reader",
    "open_file": "reader",
    "read_file": "reader",
    "ResolvedPath": "resolve",
    "resolve_path": "resolve",
    "AddedEntry": "tree",
    "import_directory": "tree",
    "import_paths": "tree",
    "import_urls": "remote",
    "DirectoryEntry": "walk",
    "UnixFSNode": "walk",
    "iter_directory": "walk",
    "load_node": "walk",
    "lookup": "walk",
    "walk": "walk",
}, shadowed=("extract", "walk"))  # each loads on first use: start-up time
