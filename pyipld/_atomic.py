"""Write a file under a temporary name beside its target and rename it into place.

The one temp-file-plus-rename helper: CAR outputs, ``car extract`` files, the
directory blockstore and key files all use it, so a failed or interrupted write
never leaves a partial file under the real name (the temporary file is removed
on any exception, and the target is left as it was).

Stale temporary files: the temporary name is fixed per target
(``.<name>.<hash>.pyipld-tmp``) and held under an exclusive ``flock`` while it is
written, so the next run writing the same target finds a killed run's leftover
unlocked and reuses (truncates) it — a kill -9 leaves nothing behind for longer than
until the command is run again. A live writer of the same target keeps its lock; the
second writer then falls back to a random name (``.<name>.tmp-XXXX``), as before.

``resumable_output`` is the same without the truncation: ``pyipld add --car`` checks a
killed run's leftover against its journal (pyipld/car/resume.py) and continues it, and
may keep the temporary file when it fails, for the next run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: random temporary names only
    fcntl = None  # type: ignore[assignment]

__all__ = ["TEMP_SUFFIX", "OutputHandle", "TempNamesOf", "atomic_output", "is_device_or_pipe", "made_directory",
           "resumable_output", "start_over", "user_output"]

TEMP_SUFFIX = ".pyipld-tmp"
"""Every fixed temporary name ends so: ``find DIR -name '.*.pyipld-tmp' -delete`` cleans up by hand."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def start_over(fd: int) -> None:
    """Empty the file ``fd`` — unless it is empty already: on ext4 a truncate to 0 makes
    ``close()`` start writing back every dirty page (auto_da_alloc), a serial ~0.3 s per GiB at
    the end of an ``add --car``."""
    if os.fstat(fd).st_size:
        os.ftruncate(fd, 0)


def _temp_prefix(base: str) -> str:
    """What every temporary name of an output named ``base`` starts with (``.<name>.``)."""
    return f".{base[:32]}."


def _claim_fixed(directory: str, base: str, *, truncate: bool = True) -> tuple[int, str] | None:
    """Open and lock the fixed temporary name of ``base``; ``None`` if it is busy or not ours.

    The name is opened without following a symlink and must be a plain file of ours with one
    link; after locking, it must still be the file the name points to (a writer that held the
    lock renames the file into place *before* releasing it, so a stale open cannot win).
    """
    if fcntl is None:  # pragma: no cover
        return None
    digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:8]
    tmp = os.path.join(directory, f"{_temp_prefix(base)}{digest}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_nlink != 1:
            raise BlockingIOError
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        now = os.stat(tmp, follow_symlinks=False)
        if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
            raise BlockingIOError
        if truncate:
            start_over(fd)  # a killed run's leftover
        os.fchmod(fd, 0o600)
    except OSError:
        os.close(fd)
        return None
    return fd, tmp


@dataclass(slots=True)
class OutputHandle:
    """What :func:`resumable_output` yields.

    Attributes:
        file: the open temporary file (read-write, positioned at 0, *not* truncated).
        temp: its path.
        fixed: true when ``temp`` is the fixed, locked name (a killed run's leftover is
            found there by the next run); false for a random fallback name.
        keep_on_failure: set it to keep the temporary file when the ``with`` block fails
            (only honoured for the fixed name: a later run can find it).
    """

    file: IO[bytes]
    temp: str
    fixed: bool
    keep_on_failure: bool = False


class TempNamesOf:
    """``exclude`` callback for an import that writes ``target``: true for the temporary names
    beside it (the fixed ``.<name>.<hash>….pyipld-tmp`` ones, the journal's too, and the
    ``.<name>.tmp-XXXX`` fallback). With ``--hidden`` and OUT inside an input, the CAR took in
    its own half-written temporary file. ``also``: another callback (ignore rules) to honour.
    A class, not a closure: Dask pickles it."""

    def __init__(self, target: str, also: Callable[[bytes], bool] | None = None) -> None:
        self.prefix = os.fsencode(_temp_prefix(os.path.basename(target)))
        self.also = also

    def __call__(self, name: bytes) -> bool:
        if name.startswith(self.prefix) and (name.endswith(os.fsencode(TEMP_SUFFIX))
                                             or name[len(self.prefix):].startswith(b"tmp-")):
            return True
        return self.also is not None and self.also(name)


def is_device_or_pipe(target: str | bytes) -> bool:
    """Whether ``target`` names (through any symlinks) something other than a regular file or a
    directory: a device, a named pipe or a socket (``/dev/null``, ``/dev/stdout``, a FIFO)."""
    try:
        st = os.stat(target)
    except OSError:
        return False
    return not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode))


def _refuse_directory(target: str) -> None:
    """Fail at once when ``target`` is a directory (not a link to one): the final rename would,
    after all the work, and its error named the temporary file."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(target).st_mode)
    except OSError:
        return
    if is_dir:
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)


@contextlib.contextmanager
def _output(path: str | os.PathLike[str], *, fsync: bool, private: bool, keep: bool) -> Iterator[OutputHandle]:
    target = os.fspath(path)
    _refuse_directory(target)
    directory = os.path.dirname(os.path.abspath(target))
    base = os.path.basename(target)
    claimed = _claim_fixed(directory, base, truncate=not keep)
    if claimed is not None:
        fd, tmp = claimed
    else:
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{_temp_prefix(base)}tmp-")
        except OSError as exc:  # name the file the caller asked for, not the temporary one
            raise type(exc)(exc.errno, exc.strerror, target) from None
    with os.fdopen(fd, "w+b") as f:
        handle = OutputHandle(f, tmp, claimed is not None)
        try:
            yield handle
            f.flush()
            if fsync:
                os.fsync(f.fileno())
            if not private:
                os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600
            os.replace(tmp, target)  # rename and unlink happen while the lock is held (see _claim_fixed)
        except BaseException:
            if not (handle.keep_on_failure and handle.fixed):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            raise


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, fsync: bool = False, private: bool = False
) -> Iterator[IO[bytes]]:
    """A binary file at a temporary name beside ``path``, renamed to ``path`` on success.

    The temporary name is ``.<name>.<hash>.pyipld-tmp`` (``<name>`` cut to 32 characters,
    so a long target name cannot make it too long), locked while in use; when another live
    writer holds it, ``.<name>.tmp-XXXX``. ``os.replace`` swaps the directory entry: an
    existing file — or symlink — at ``path`` is replaced, never written through. On an
    exception the temporary file is removed and ``path`` is untouched. For a name the user gave
    on the command line, see :func:`user_output`.

    Args:
        fsync: flush the data to disk before the rename (survives power loss; costs
            a flush of the whole file). go-car does not sync, so the default is off.
        private: keep the file mode 0600 (keys, blockstore files); otherwise the
            usual ``0666 & ~umask``.
    """
    with _output(path, fsync=fsync, private=private, keep=False) as handle:
        yield handle.file


@contextlib.contextmanager
def user_output(path: str | os.PathLike[str], *, fsync: bool = False) -> Iterator[IO[bytes]]:
    """An output the user named on the command line: ``-`` is standard output, a device or named
    pipe (symlinks followed: ``/dev/null``, ``/dev/stdout``, a FIFO) is written into as it is —
    renaming over it would replace ``/dev/null`` with a file — and anything else is
    :func:`atomic_output`. Never for names that come from a CAR or a DAG: those must not write
    through a link (:func:`atomic_output` replaces it)."""
    target = os.fspath(path)
    if target == "-":
        stdout = sys.stdout.buffer
        yield stdout
        stdout.flush()
    elif is_device_or_pipe(target):
        with open(target, "wb") as out:
            yield out
    else:
        with atomic_output(target, fsync=fsync) as out:
            yield out


@contextlib.contextmanager
def made_directory(path: str | os.PathLike[str]) -> Iterator[None]:
    """Create the directory ``path`` and its parents; if the block fails, the ones made here are
    removed again while still empty (a failed run leaves no empty output directory behind)."""
    target = parent = os.path.abspath(path)
    made = []
    while not os.path.lexists(parent):  # deepest first
        made.append(parent)
        parent = os.path.dirname(parent)
    os.makedirs(target, exist_ok=True)  # an existing file there: FileExistsError
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            for directory in made:
                os.rmdir(directory)
        raise


def resumable_output(path: str | os.PathLike[str], *, fsync: bool = False) -> contextlib.AbstractContextManager[
        OutputHandle]:
    """:func:`atomic_output` that keeps what a killed run left at the fixed temporary name.

    The file is not truncated: the caller decides whether the leftover can be continued
    (``pyipld add --car`` checks its journal) and truncates it otherwise. Set
    ``handle.keep_on_failure`` to keep the file for a later run when the block fails.
    """
    return _output(path, fsync=fsync, private=False, keep=True)
