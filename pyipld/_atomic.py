"""Write a file under a temporary name beside its target and rename it into place.

The one temp-file-plus-rename helper: CAR outputs, ``car extract`` files, the
directory blockstore and key files all use it, so a failed or interrupted write
never leaves a partial file under the real name (the temporary file is removed
on any exception, and the target is left as it was).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["atomic_output"]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, fsync: bool = False, private: bool = False
) -> Iterator[IO[bytes]]:
    """A binary file at a temporary name beside ``path``, renamed to ``path`` on success.

    The temporary name is ``.<name>.tmp-XXXX`` (``<name>`` cut to 32 characters, so a
    long target name cannot make it too long). ``os.replace`` swaps the directory
    entry: an existing file — or symlink — at ``path`` is replaced, never written
    through. On an exception the temporary file is removed and ``path`` is untouched.

    Args:
        fsync: flush the data to disk before the rename (survives power loss; costs
            a flush of the whole file). go-car does not sync, so the default is off.
        private: keep the file mode 0600 (keys, blockstore files); otherwise the
            usual ``0666 & ~umask``.
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(target)[:32]}.tmp-")
    except OSError as exc:  # name the file the caller asked for, not the temporary one
        raise type(exc)(exc.errno, exc.strerror, target) from None
    try:
        with os.fdopen(fd, "w+b") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        if not private:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
