"""Importing file trees exactly like ``ipfs add -r``: :func:`import_paths`, :func:`import_directory`.

Modules: :mod:`.paths` (the arguments), :mod:`.walk` (the walk), :mod:`.source` (listing and
stating a local tree), :mod:`.files` (one file's or symlink's import and its hooks),
:mod:`.dirs` (directory assembly and kubo's report order), :mod:`.entries` (the types).
"""

from .entries import (
                      AddedCallback,
                      AddedEntry,
                      EntryKind,
                      ExcludeCallback,
                      FileJournal,
                      FileRoots,
                      NamedStream,
                      ProgressCallback,
)
from .files import encode_symlink
from .paths import import_directory, import_paths

__all__ = ["AddedCallback", "AddedEntry", "EntryKind", "ExcludeCallback", "FileJournal", "FileRoots", "NamedStream",
           "ProgressCallback", "encode_symlink", "import_directory", "import_paths"]
