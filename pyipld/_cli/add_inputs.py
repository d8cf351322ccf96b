"""``add``'s file arguments, checked and ordered as go-ipfs-cmds v0.9.0 ``parseArgs`` does.

Every argument is checked before anything is added, with kubo's error texts: ``lstat nofile: no
such file or directory``, ``'d' is a directory, use the '-r' flag to specify directories``, a
repeated base name from another directory. ``-`` is stdin (named ``--stdin-name``), an
``http(s)://`` URL is a file named by the URL's last path segment (boxo ``files.NewWebFile``), a
named pipe is read as a file; ``--dereference-args`` resolves symlinked arguments. Any other
``protocol://`` argument is an fsspec URL (``s3://bucket/prefix``, pyipld's own): an object is a
file, a prefix a directory (needs ``-r``), named by its last segment — checked here like a path,
with fsspec imported only then. The entries are then sorted by name (byte order), the order kubo
adds and prints them.
"""

from __future__ import annotations

import functools
import io
import os
import posixpath
import stat
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any, Final, Self

from ..errors import NotFoundError, SourceError, UsageError
from ..unixfs.remote import is_fsspec_url
from ..unixfs.tree import NamedStream
from .gopath import clean

__all__ = ["STDIN_MESSAGE", "Input", "announce_terminal_stdin", "collect_inputs", "go_os_error", "is_url", "open_url",
           "stdin_reader", "url_base"]


def go_os_error(op: str, path: str, exc: OSError) -> str:
    """Go's ``*PathError`` text: ``lstat nofile: no such file or directory``."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return f"{op} {path}: {text[:1].lower()}{text[1:]}"


def is_url(arg: str) -> urllib.parse.SplitResult | None:
    """go-ipfs-cmds ``isURL``: an http or https URL with a host."""
    try:
        url = urllib.parse.urlsplit(arg)
    except ValueError:
        return None
    return url if url.scheme in ("http", "https") and url.netloc else None


def url_base(url: urllib.parse.SplitResult) -> str:
    """go-ipfs-cmds ``urlBase``: ``path.Base`` of the URL path, or the host when there is none."""
    return posixpath.basename(url.path.rstrip("/")) or "/" if url.path else url.netloc


def open_url(url: str) -> IO[bytes]:
    """GET ``url`` as boxo's WebFile does; a status outside 2xx is an error with its text."""
    import urllib.error  # here: http.client, email and ssl cost every `add` start-up time
    import urllib.request

    try:
        response = urllib.request.urlopen(url)
    except urllib.error.HTTPError as exc:
        raise NotFoundError(f"got non-2XX status code {exc.code}: {url}") from None
    except urllib.error.URLError as exc:
        raise NotFoundError(f'Get "{url}": {exc.reason}') from None
    stream: IO[bytes] = io.BufferedReader(_CheckedBody(response, url), 1 << 20)
    return stream


class _CheckedBody(io.RawIOBase):
    """A response body that is an error when it ends before its ``Content-Length`` or breaks off
    inside a chunk (``http.client`` returns the short body as if it were all; Go's client, and so
    kubo, says "unexpected EOF")."""

    def __init__(self, response: Any, url: str) -> None:
        self._response = response
        self._url = url
        self._got = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import http.client

        try:
            n: int = self._response.readinto(buffer)
        except http.client.HTTPException as exc:
            raise SourceError(f'GET "{self._url}": unexpected EOF: the body broke off after {self._got} bytes '
                              f"({type(exc).__name__})") from None
        self._got += n
        if n == 0 and len(buffer) and self._response.length:  # bytes still owed by Content-Length
            raise SourceError(f'GET "{self._url}": unexpected EOF: the body ended after {self._got} bytes, '
                              f"Content-Length said {self._got + self._response.length}")
        return n

    def close(self) -> None:
        self._response.close()
        super().close()


@dataclass(frozen=True)
class Input:
    """One file argument: its entry name and what to import (a path, or a stream)."""

    name: bytes
    source: bytes | NamedStream | str
    """A local path, a stream, or (``str``) an fsspec URL."""
    argument: str = ""
    """The command-line word it came from (for messages)."""


_MAX_LINKS: Final = 255  # Go's walkSymlinks gives up after this many


def _eval_symlinks(path: str) -> str:
    """Go's ``filepath.EvalSymlinks`` (path/filepath/symlink.go) on POSIX, with its errors.

    Components are resolved left to right: each is appended to the result and lstat'ed (a
    missing one is ``lstat RESULT: …``, RESULT as built so far, not absolute), a symlink's
    target replaces it and is walked in turn (from ``/`` when absolute), ``..`` drops the last
    resolved component where there is one, and more than 255 links is ``EvalSymlinks: too many
    links``.
    """
    root = 1 if path.startswith("/") else 0  # Go's volLen: the leading slash stays
    dest, rest, links = path[:root], path[root:], 0
    while True:
        component, sep, rest = rest.lstrip("/").partition("/")
        if not component:
            break
        if component == ".":
            continue
        if component == "..":
            cut = dest.rfind("/", root)
            if cut < root or dest[cut + 1:] == "..":  # nothing to drop: keep the ".."
                dest = dest + "/.." if len(dest) > root else dest + ".."
            else:
                dest = dest[:cut]
            continue
        dest = dest + "/" + component if dest and not dest.endswith("/") else dest + component
        try:
            st = os.lstat(dest)
        except OSError as exc:
            raise UsageError(go_os_error("lstat", dest, exc)) from None
        if not stat.S_ISLNK(st.st_mode):
            if not stat.S_ISDIR(st.st_mode) and sep:
                raise UsageError("not a directory")  # Go returns the bare syscall.ENOTDIR
            continue
        links += 1
        if links > _MAX_LINKS:
            raise UsageError("EvalSymlinks: too many links")
        try:
            target = os.readlink(dest)
        except OSError as exc:
            raise UsageError(go_os_error("readlink", dest, exc)) from None
        rest = target + sep + rest
        if target.startswith("/"):
            dest, root = "/", 1
        else:
            cut = dest.rfind("/", root)
            dest = dest[:root] if cut < root else dest[:cut]
    return clean(dest)


def _remote_input(arg: str, recursive: bool, storage_options: dict[str, Any] | None) -> tuple[str, str, Input]:
    """An fsspec URL argument: (base name, parent, entry), checked to exist (a prefix needs ``-r``)."""
    from ..unixfs.remote import RemoteSource

    source = RemoteSource.for_url(arg, storage_options)
    path = source.strip(arg)
    info = source.info(path)
    if info.get("type") == "directory" and not recursive:
        raise UsageError(f"'{arg}' is a directory, use the '-r' flag to specify directories")
    base = posixpath.basename(path.rstrip("/")) or path.strip("/") or "/"
    return base, f"{source.protocol}://{posixpath.dirname(path.rstrip('/'))}", Input(os.fsencode(base), arg)


def _run_check(check_rules: Callable[[], object] | None) -> None:
    if check_rules is not None:
        try:
            check_rules()
        except OSError as exc:
            raise UsageError(go_os_error("open", os.fsdecode(exc.filename or ""), exc)) from None


def collect_inputs(paths: list[str], *, recursive: bool, dereference: bool, stdin_name: str,
                   stdin: Callable[[], IO[bytes]], check_rules: Callable[[], object] | None = None,
                   storage_options: dict[str, Any] | None = None) -> list[Input]:
    """Check every argument, then return the entries in kubo's order (sorted by name).

    ``check_rules`` (compiling the ``--ignore`` rules) runs before the first file system
    path is checked, as kubo builds its filter there; its ``OSError`` becomes kubo's error.
    ``storage_options``: for fsspec URL arguments.
    """
    entries: list[Input] = []
    import_dir: dict[bytes, str] = {}
    for arg in paths:
        if arg == "-":
            entries.append(Input(os.fsencode(stdin_name), NamedStream(os.fsencode(stdin_name), stdin)))
            continue
        url = is_url(arg)
        if url is not None:
            name = os.fsencode(url_base(url))
            entries.append(Input(name, NamedStream(name, functools.partial(open_url, arg)), arg))
            continue
        if is_fsspec_url(arg):
            _run_check(check_rules)
            base, parent, entry = _remote_input(arg, recursive, storage_options)
            if entry.name in import_dir:
                if import_dir[entry.name] != parent:
                    raise UsageError(f"file name {base} repeated under different import directories: "
                                     f"{parent} and {import_dir[entry.name]}")
                continue
            import_dir[entry.name] = parent
            entries.append(entry)
            continue
        fpath = clean(arg)
        if fpath == ".":
            fpath = _eval_symlinks(os.getcwd())
        elif dereference:
            fpath = _eval_symlinks(fpath)
        _run_check(check_rules)
        try:
            st = os.lstat(fpath)
        except OSError as exc:
            raise UsageError(go_os_error("lstat", fpath, exc)) from None
        if stat.S_ISDIR(st.st_mode) and not recursive:
            raise UsageError(f"'{fpath}' is a directory, use the '-r' flag to specify directories")
        parent, base = os.path.dirname(fpath) or ".", os.path.basename(fpath) or fpath
        key = os.fsencode(base)
        if key in import_dir:
            if import_dir[key] != parent:
                raise UsageError(f"file name {base} repeated under different import directories: "
                                 f"{parent} and {import_dir[key]}")
            continue  # the exact same file again
        import_dir[key] = parent
        entries.append(Input(key, os.fsencode(fpath)))
    entries.sort(key=lambda e: e.name)
    return entries


STDIN_MESSAGE = "pyipld: Reading from /dev/stdin; send Ctrl-d to stop."


def announce_terminal_stdin() -> None:
    """go-ipfs-cmds ``maybeWrapStdin``: a terminal stdin gets kubo's hint on stderr before it is read."""
    try:
        terminal = sys.stdin.isatty()
    except (AttributeError, OSError, ValueError):
        terminal = False
    if terminal:
        print(STDIN_MESSAGE, file=sys.stderr, flush=True)


def stdin_reader() -> IO[bytes]:
    """stdin as bytes, without closing the process's stdin when the import is done."""
    announce_terminal_stdin()
    if _has_fd(sys.stdin):
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return _Unclosed(sys.stdin.buffer)  # type: ignore[return-value]  # read() and close() are all that is used


def _has_fd(stream: object) -> bool:
    try:
        stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return True


class _Unclosed:
    """A reader whose ``close`` (and context exit) leaves the wrapped stream open."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        return self._raw.read(n)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        data = self._raw.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

