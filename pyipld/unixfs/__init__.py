"""UnixFS: import files and trees exactly like ``ipfs add``, read them back safely.

Directory API (this section is maintained by the directories work; the file
importer and reader exports sit beside it).
"""

from __future__ import annotations

from .directory import DirectoryBuilder, DirEntry, DirLink, build_directory
from .extract import ExtractStats, extract
from .hamt import build_hamt
from .importer import ImportResult, import_bytes, import_file
from .params import UNIXFS_V0_2015, UNIXFS_V1_2025, ImportParams
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
    "ImportParams",
    "ImportResult",
    "ResolvedPath",
    "UnixFSNode",
    "build_directory",
    "build_hamt",
    "extract",
    "import_bytes",
    "import_directory",
    "import_file",
    "import_paths",
    "iter_directory",
    "load_node",
    "lookup",
    "resolve_path",
    "walk",
]
