"""Path resolution: ``CID/a/b/c`` through basic and HAMT-sharded directories.

Accepted forms: ``CID``, ``CID/a/b``, ``/ipfs/CID/a/b`` (a trailing ``/`` and
repeated slashes are ignored). Components are matched as raw UTF-8 bytes
(no normalisation); ``.`` and ``..`` are refused rather than interpreted.
HAMTs are searched by hash, loading only the shards on the name's path.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..blockstore import BlockSource, check_source
from ..chunker._goparse import go_quote
from ..cid import CID
from ..errors import CIDError, NotFoundError, UnixFSError, UnsafePathError
from .walk import UnixFSNode, load_node, lookup

__all__ = ["ResolvedPath", "resolve_path", "split_path"]


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """Where a path leads.

    Attributes:
        root: the CID the path starts from.
        components: the names followed.
        node: the node at the end of the path.
    """

    root: CID
    components: tuple[bytes, ...]
    node: UnixFSNode

    @property
    def cid(self) -> CID:
        return CID.from_bytes(self.node.cid)


def split_path(path: str | bytes | CID) -> tuple[CID, tuple[bytes, ...]]:
    """``(root CID, components)`` of an IPFS path (text, or a binary CID / :class:`CID`).

    Raises:
        CIDError: the first component is not a CID.
        UnsafePathError: a ``.`` or ``..`` component.
    """
    if isinstance(path, CID):
        return path, ()
    if isinstance(path, bytes) and path[:1] in (b"\x01", b"\x12"):  # a binary CID, not text
        return CID.from_bytes(path), ()
    if not isinstance(path, (str, bytes, bytearray, memoryview)):  # bytes(5) would be five NUL bytes
        raise CIDError(f"an IPFS path is a CID, its text or its bytes, not a {type(path).__name__}")
    raw = path.encode("utf-8", "surrogateescape") if isinstance(path, str) else bytes(path)
    parts = [p for p in raw.split(b"/") if p]
    if parts[:1] == [b"ipfs"] and raw.startswith(b"/"):
        parts = parts[1:]
    if not parts:
        raise NotFoundError("empty path: expected CID[/name...]")
    root = CID.decode(parts[0].decode("ascii", "replace"))
    rest = tuple(parts[1:])
    for part in rest:
        if part in (b".", b".."):
            # the path as text: it was shown as a bytes repr, b'…/../…'
            shown = raw.decode("utf-8", "backslashreplace")
            raise UnsafePathError(f"path component {part.decode()!r} is not allowed in {shown!r}")
    return root, rest


def resolve_path(source: BlockSource, path: str | bytes | CID) -> ResolvedPath:
    """Follow ``path`` from its root CID through directories.

    Raises:
        NotFoundError: a missing block or a name not in its directory.
        UnixFSError: a component below a file or symlink, or a malformed directory.
        IntegrityError: a block that does not match its CID.
    """
    check_source(source)
    root, components = split_path(path)
    node = load_node(source, root)
    walked: list[bytes] = []
    for name in components:
        if node.kind != "directory":
            where = "/".join(p.decode("utf-8", "replace") for p in walked) or str(root)
            raise UnixFSError(f"cannot resolve {name.decode('utf-8', 'replace')!r}: {where} is a {node.kind}, "
                              "not a directory")
        entry = lookup(source, node, name)
        if entry is None:  # boxo path/resolver ErrNoLink: the name Go-quoted, the CID of the directory searched
            quoted = go_quote(name.decode("utf-8", "surrogateescape"))
            raise NotFoundError(f"no link named {quoted} under {CID.from_bytes(node.cid)}")
        walked.append(name)
        node = load_node(source, entry.cid)
    return ResolvedPath(root, tuple(walked), node)
