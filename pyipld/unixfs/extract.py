"""Safe extraction of a UnixFS DAG (file, directory tree or symlink) to the file system.

Safety rules (the DAG is untrusted):

* every entry name is checked before use: empty, ``.``, ``..``, or containing
  ``/`` or NUL is refused (:class:`~pyipld.errors.UnsafePathError`) — so no
  absolute or traversal path can be formed;
* every file-system operation is relative to a directory file descriptor that
  was opened with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``-style), so a symlink
  — one from the DAG or one already on disk — is never followed while writing;
  symlinks from the DAG are created as symlinks (their targets may point
  anywhere, as in tar; they are never dereferenced here);
* nothing is written outside DEST, and nothing that already exists is replaced — except,
  when asked (``replace``, what ``ipfs get`` does), a file, symlink or empty directory at
  DEST itself by a file or symlink root;
* a file appears under its name only when complete: it is written to a
  temporary name in the same directory and renamed (a failure removes it);
* duplicate names in one directory, a directory linking to one of its
  ancestors, nesting deeper than ``max_depth``, more than ``max_entries`` entries
  (when set: a DAG may link one sub-tree many times), and links of the wrong type
  (e.g. a HAMT shard pointing at a file, a file node linking a directory, an
  unknown codec) raise :class:`~pyipld.errors.UnixFSError`;
* stored mode/mtime are restored (mode bits ``0o777`` only: set-uid, set-gid and
  sticky bits from an untrusted DAG are dropped); a directory's metadata is set
  after its contents are written.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from .._atomic import is_device_or_pipe
from .._prealloc import SpaceReserver
from ..blockstore import BlockSource
from ..cid import CID
from ..errors import UnixFSError, UnsafePathError
from .directory import is_plain_entry_name
from .reader import iter_file
from .resolve import resolve_path
from .walk import DirectoryEntry, UnixFSNode, iter_directory, load_node

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_ENTRIES", "ExtractStats", "check_entry_name_safe", "check_tree_destination",
           "extract", "get_destination", "rename_replacing"]

EntryCallback = Callable[[bytes, str], None]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_MODE_MASK = 0o777
_RESERVE_FROM: Final = 8 << 20  # files this large get their disk space reserved ahead of the writes
DEFAULT_MAX_DEPTH: Final = 256  # directories nested deeper are refused (`get`/`car extract` --max-depth)
# Entries written before giving up: a DAG can link one sub-tree many times, so a few blocks
# can stand for more files than any disk holds (`get`/`car extract` --max-entries; 0 = no limit).
DEFAULT_MAX_ENTRIES: Final = 1_000_000


@dataclass(slots=True)
class ExtractStats:
    """What :func:`extract` wrote."""

    files: int = 0
    directories: int = 0
    symlinks: int = 0
    file_bytes: int = 0


def _temp_name() -> bytes:
    """A fresh name beside the destination, for a file or tree written before it is renamed."""
    return b".pyipld-tmp-" + secrets.token_hex(8).encode()


def check_entry_name_safe(name: bytes) -> None:
    """Refuse a name that could leave its directory or is not a plain name.

    Raises:
        UnsafePathError: empty, ``.``, ``..``, or containing ``/`` or NUL.
    """
    if not is_plain_entry_name(name):
        raise UnsafePathError(f"unsafe entry name {name!r}: refusing to write it")


def _meta(node: UnixFSNode) -> tuple[int | None, int | None]:
    """(mode, mtime in ns) stored on a dag-pb node, if any."""
    if node.data is None:
        return None, None
    mode = node.data.mode & _MODE_MASK if node.data.mode else None
    mt = node.data.mtime
    return mode, (mt.seconds * 1_000_000_000 + mt.nanos) if mt is not None else None


def write_fully(fd: int, chunk: bytes | memoryview) -> None:
    """``os.write`` until all of ``chunk`` is written."""
    view = memoryview(chunk)
    while view:
        view = view[os.write(fd, view):]


def restore_metadata(fd: int, node: UnixFSNode) -> None:
    """Give the open file the mode and mtime stored on its dag-pb node (as ``ipfs get`` does)."""
    mode, mtime_ns = _meta(node)
    if mode is not None:
        os.fchmod(fd, mode)
    if mtime_ns is not None:
        os.utime(fd, ns=(mtime_ns, mtime_ns))


def get_destination(dest: str | os.PathLike[str] | bytes, kind: str, root_name: str | bytes) -> bytes:
    """Where ``ipfs get -o DEST`` writes a root of ``kind`` (boxo's tar extractor): a file or
    symlink root goes inside DEST, as ``root_name``, when DEST is an existing directory (a
    symlink there is not followed); anything else is written at DEST itself.

    Raises:
        UnsafePathError: ``root_name`` is not a plain entry name.
    """
    raw = os.fsencode(dest)
    if kind not in ("file", "symlink"):
        return raw
    try:
        st = os.lstat(raw)
    except FileNotFoundError:
        return raw
    if not stat.S_ISDIR(st.st_mode):
        return raw
    name = os.fsencode(root_name)
    check_entry_name_safe(name)
    return os.path.join(raw, name)


def rename_replacing(tmp: bytes | str, name: bytes | str, *, dir_fd: int | None, shown: str) -> None:
    """Rename the finished ``tmp`` to ``name``, replacing a file or symlink there, or an empty
    directory (as boxo's extractor removes what is in the way of a file or symlink root).

    Raises:
        FileExistsError: ``name`` is a directory that is not empty, or a device, FIFO or socket
            (never replaced: boxo would remove even ``/dev/null``).
    """
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    else:
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise FileExistsError(17, "destination exists and is not a file, symlink or directory", shown)
    try:
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except IsADirectoryError:
        try:
            os.rmdir(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            raise FileExistsError(17, "destination is a directory that is not empty", shown) from None
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


class _Extractor:
    def __init__(self, source: BlockSource, *, metadata: bool, max_depth: int, max_entries: int | None,
                 on_entry: EntryCallback | None, dest: bytes = b"", replace: bool = False) -> None:
        self.source = source
        self.dest = dest
        self.replace = replace
        self.max_entries = max_entries or None
        self.seen = 0
        self.metadata = metadata
        self.max_depth = max_depth
        self.on_entry = on_entry
        self.stats = ExtractStats()

    def _shown(self, path: bytes) -> str:
        """An entry's path as the user named it: DEST, or DEST/path inside a tree."""
        return os.fsdecode(os.path.join(self.dest, path) if path else self.dest)

    def _move_into_place(self, dir_fd: int, tmp: bytes, name: bytes, path: bytes) -> None:
        """Rename a finished entry from its temporary name; only the root, with ``replace``,
        may take the place of what is there."""
        if self.replace and not path:
            rename_replacing(tmp, name, dir_fd=dir_fd, shown=self._shown(path))
            return
        try:
            os.lstat(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        else:
            raise FileExistsError(17, "refusing to replace an existing entry", self._shown(path))
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)

    def _report(self, path: bytes, kind: str) -> None:
        if self.on_entry is not None:
            self.on_entry(path, kind)

    def copy_into(self, fd: int, node: UnixFSNode, space: SpaceReserver | None = None) -> None:
        """The file's bytes, written to ``fd`` (``space``: disk reserved ahead of the writes)."""
        written = 0
        for chunk in iter_file(self.source, node.cid):
            if space is not None:
                space.ensure(written + len(chunk))
            write_fully(fd, chunk)
            written += len(chunk)
            self.stats.file_bytes += len(chunk)

    def write_into_device(self, dest: bytes, node: UnixFSNode) -> None:
        """A file root into the device or named pipe the user named (``-o /dev/null``, a FIFO)."""
        fd = os.open(dest, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            self.copy_into(fd, node)
        finally:
            os.close(fd)
        self.stats.files += 1
        self._report(b"", "file")

    def write_file(self, dir_fd: int, name: bytes, node: UnixFSNode, path: bytes) -> None:
        tmp = _temp_name()
        fd = os.open(tmp, _FILE_FLAGS, 0o666, dir_fd=dir_fd)
        try:
            space = SpaceReserver(fd, min_end=_RESERVE_FROM)
            try:
                self.copy_into(fd, node, space)
                if self.metadata:
                    restore_metadata(fd, node)
            finally:
                space.release()
                os.close(fd)
            self._move_into_place(dir_fd, tmp, name, path)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
            raise
        self.stats.files += 1
        self._report(path, "file")

    def write_symlink(self, dir_fd: int, name: bytes, node: UnixFSNode, path: bytes) -> None:
        assert node.data is not None
        target = node.data.data or b""
        if not target or b"\0" in target:
            raise UnixFSError(f"symlink {os.fsdecode(path)!r} has an empty or NUL-containing target")
        made = _temp_name() if self.replace and not path else name  # a root that may replace: made aside first
        os.symlink(target, made, dir_fd=dir_fd)
        try:
            _, mtime_ns = _meta(node) if self.metadata else (None, None)
            if mtime_ns is not None:
                try:
                    os.utime(made, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
                except NotImplementedError:  # pragma: no cover - platforms without lutimes
                    pass
            if made != name:
                self._move_into_place(dir_fd, made, name, path)
        except BaseException:
            if made != name:
                try:
                    os.unlink(made, dir_fd=dir_fd)
                except FileNotFoundError:
                    pass
            raise
        self.stats.symlinks += 1
        self._report(path, "symlink")

    def write_tree(self, dir_fd: int, node: UnixFSNode, path: bytes) -> None:
        """Fill the (new, empty) directory ``dir_fd`` with ``node``'s entries; closes ``dir_fd``."""
        frames: list[tuple[int, Iterator[DirectoryEntry], set[bytes], UnixFSNode, bytes]] = [
            (dir_fd, iter_directory(self.source, node), set(), node, path)
        ]
        ancestors = [node.cid]
        try:
            while frames:
                fd, entries, seen, dnode, dpath = frames[-1]
                entry = next(entries, None)
                if entry is None:
                    frames.pop()
                    ancestors.pop()
                    try:
                        self._finish_dir(fd, dnode, dpath)
                    finally:
                        os.close(fd)  # one open descriptor per level of nesting, never per directory
                    continue
                name = entry.name
                check_entry_name_safe(name)
                self.seen += 1
                if self.max_entries is not None and self.seen > self.max_entries:
                    raise UnixFSError(f"more than max_entries={self.max_entries} entries to extract "
                                      "(a larger limit: --max-entries N, 0 for none)")
                if name in seen:
                    raise UnixFSError(f"duplicate entry name {name!r} in directory {os.fsdecode(dpath)!r}")
                seen.add(name)
                child = load_node(self.source, entry.cid)
                child_path = dpath + b"/" + name if dpath else name
                kind = child.kind
                if kind == "file":
                    self.write_file(fd, name, child, child_path)
                elif kind == "symlink":
                    self.write_symlink(fd, name, child, child_path)
                elif kind == "directory":
                    if child.cid in ancestors:
                        raise UnixFSError(f"directory cycle: {os.fsdecode(child_path)!r} links to an ancestor")
                    if len(frames) >= self.max_depth:
                        raise UnixFSError(f"directories nested deeper than max_depth={self.max_depth} "
                                          "(a larger limit: --max-depth N)")
                    os.mkdir(name, 0o777, dir_fd=fd)
                    child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    frames.append((child_fd, iter_directory(self.source, child), set(), child, child_path))
                    ancestors.append(child.cid)
                else:
                    raise UnixFSError(f"entry {os.fsdecode(child_path)!r} ({CID.from_bytes(child.cid)}) is not a "
                                      "UnixFS file, directory or symlink")
        finally:
            for fd, *_ in frames:
                os.close(fd)

    def _finish_dir(self, fd: int, node: UnixFSNode, path: bytes) -> None:
        mode, mtime_ns = _meta(node) if self.metadata else (None, None)
        if mode is not None:
            os.fchmod(fd, mode)
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        self.stats.directories += 1
        self._report(path, "directory")


def check_tree_destination(dest: str | os.PathLike[str] | bytes) -> None:
    """Refuse, before any work, a DEST a directory root could not be written to.

    Raises:
        FileExistsError: DEST is there and is not an empty directory.
    """
    raw = os.fsencode(dest).rstrip(b"/") or b"/"
    parent, name = os.path.split(raw)
    if name in (b".", b"..", b"/", b""):
        return  # filled in place (see extract)
    try:
        parent_fd = os.open(parent or b".", os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return  # nothing in the way: extract makes the parents
    try:
        _check_dir_dest(parent_fd, name, raw)
    finally:
        os.close(parent_fd)


def _check_dir_dest(parent_fd: int, name: bytes, raw: bytes) -> None:
    """A directory root may go where nothing is, or onto an empty directory."""
    try:
        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    except OSError as exc:  # a file, device, FIFO or symlink (never followed) is in the way
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        raise FileExistsError(17, "destination exists and is not a directory", os.fsdecode(raw)) from None
    try:
        empty = not os.listdir(fd)
    finally:
        os.close(fd)
    if not empty:
        raise FileExistsError(17, "destination exists and is not an empty directory", os.fsdecode(raw)) from None


def _write_tree_then_rename(ex: _Extractor, parent_fd: int, name: bytes, node: UnixFSNode) -> None:
    """Extract the tree under a temporary name beside ``name``, then rename it into place: a
    failure halfway (a missing block, --max-entries, an unsafe name) leaves nothing at ``name``,
    so the same command can simply be run again. The rename replaces at most an empty
    directory; anything else that appeared at ``name`` meanwhile makes it fail."""
    tmp = _temp_name()
    os.mkdir(tmp, 0o777, dir_fd=parent_fd)
    try:
        ex.write_tree(os.open(tmp, _DIR_FLAGS, dir_fd=parent_fd), node, b"")
        try:
            os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise
            raise FileExistsError(17, "destination appeared meanwhile and is not an empty directory",
                                  os.fsdecode(name)) from None
    except BaseException:
        shutil.rmtree(tmp, dir_fd=parent_fd, ignore_errors=True)  # best effort: a read-only sub-tree may stay
        raise


def extract(
    source: BlockSource,
    root: str | bytes | CID,
    dest: str | os.PathLike[str] | bytes,
    *,
    metadata: bool = True,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_entries: int | None = DEFAULT_MAX_ENTRIES,
    on_entry: EntryCallback | None = None,
    atomic: bool = True,
    replace: bool = False,
) -> ExtractStats:
    """Write the file, directory or symlink at IPFS path ``root`` to ``dest``.

    ``dest`` itself becomes the root entry: it must not exist, except that a
    directory root may replace an existing empty directory, and a file root is written into an
    existing device or named pipe (``/dev/null``, ``/dev/stdout``). The parent of a file or
    symlink must exist; a directory's missing parents are made (as ``ipfs get`` does).
    A file is written under a temporary name beside ``dest`` and renamed into place; so is a
    tree with ``atomic`` (the default): after a failure there is nothing at ``dest``. Without
    it a tree is written in place, and a failure leaves what was written so far. With
    ``replace`` a file or symlink root takes the place of a file, symlink or empty directory
    at ``dest``, as ``ipfs get`` does (see :func:`get_destination` for its other rule).

    Args:
        source: where blocks come from (every block is hash-checked).
        root: ``CID`` or ``CID/a/b`` (resolved through basic and HAMT directories).
        dest: the path to create.
        metadata: restore stored mode (0o777 bits) and mtime.
        max_depth: deepest directory nesting accepted.
        max_entries: refuse to write more entries than this (a DAG can link one
            sub-tree many times: its extracted size can be far larger than its blocks);
            ``None`` or 0: no limit.
        on_entry: called with ``(path relative to dest, kind)`` after each entry.
        atomic: write a tree under a temporary name, renamed to ``dest`` when complete.
        replace: a file or symlink root replaces what is at ``dest`` (not a non-empty directory).

    Raises:
        UnsafePathError: an entry name that could escape its directory.
        UnixFSError: duplicate names, cycles, wrong link types, malformed nodes.
        NotFoundError / IntegrityError: missing or corrupt blocks.
        FileExistsError: ``dest`` (or an entry) already exists.
    """
    resolved = resolve_path(source, root)
    node = resolved.node
    raw = os.fsencode(dest).rstrip(b"/") or b"/"
    ex = _Extractor(source, metadata=metadata, max_depth=max_depth, max_entries=max_entries, on_entry=on_entry,
                    dest=raw, replace=replace)
    parent, name = os.path.split(raw)
    kind = node.kind
    try:
        parent_fd = os.open(parent or b".", os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        if kind != "directory":
            raise
        os.makedirs(parent, 0o755, exist_ok=True)  # boxo: os.MkdirAll(DEST, 0755) makes a tree's parents too
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    try:
        if raw == os.fsencode(os.devnull) and kind != "file":  # boxo's tar Extractor: /dev/null, nothing to do
            return ex.stats
        if kind == "file" and is_device_or_pipe(raw):  # -o /dev/null, /dev/stdout, a FIFO: written into
            ex.write_into_device(raw, node)
        elif kind == "file":
            ex.write_file(parent_fd, name, node, b"")
        elif kind == "symlink":
            ex.write_symlink(parent_fd, name, node, b"")
        elif kind == "directory":
            if not atomic or name in (b".", b"..", b"/"):  # "." cannot be renamed onto: filled in place
                try:
                    os.mkdir(name, 0o777, dir_fd=parent_fd)
                except FileExistsError:
                    _check_dir_dest(parent_fd, name, raw)
                ex.write_tree(os.open(name, _DIR_FLAGS, dir_fd=parent_fd), node, b"")
            else:
                _check_dir_dest(parent_fd, name, raw)
                _write_tree_then_rename(ex, parent_fd, name, node)
        else:
            raise UnixFSError(f"{resolved.cid} is not a UnixFS file, directory or symlink")
    finally:
        os.close(parent_fd)
    return ex.stats
