"""The whole pyipld exception tree, in one place.

Every error pyipld raises on purpose derives from :class:`PyipldError`, so callers
can catch one type. Sub-classes also derive from the built-in they refine
(``ValueError``, ``KeyError``) so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "BlockIntegrityError",
    "BlockUnavailableError",
    "CIDError",
    "CarError",
    "CarIndexError",
    "ConfigError",
    "DagPBError",
    "DecodeError",
    "FileChangedError",
    "FilestoreError",
    "GatewayError",
    "GatewayRequestError",
    "GatewayTimeoutError",
    "IncompleteResponseError",
    "IntegrityError",
    "LimitExceededError",
    "LocalProtocolError",
    "ManifestError",
    "NotFoundError",
    "PathNotFoundError",
    "PeerTimeoutError",
    "ProtocolError",
    "PyipldError",
    "RemoteProtocolError",
    "RoutingError",
    "SourceError",
    "UnixFSError",
    "UnsafePathError",
    "UsageError",
    "VarintError",
]


class PyipldError(Exception):
    """Base class of every error pyipld raises."""


class DecodeError(PyipldError, ValueError):
    """Bytes are not a valid instance of a format.

    Attributes:
        offset: byte offset of the problem inside the input, when known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class VarintError(DecodeError):
    """A malformed, truncated or over-long unsigned varint."""


class CIDError(DecodeError):
    """A CID or multihash that cannot be parsed or is not supported."""


class DagPBError(DecodeError):
    """Bytes that are not strict dag-pb."""


class UnixFSError(DecodeError):
    """A UnixFS Data message, or a DAG shape, that is not valid UnixFS."""


class CarError(DecodeError):
    """A CAR file that cannot be read."""


class CarIndexError(CarError):
    """A CARv2 index that is malformed or disagrees with the data."""


class ManifestError(DecodeError):
    """A ``car pack`` manifest that is malformed, or names a path it may not use."""


class LimitExceededError(DecodeError):
    """A length prefix larger than the configured limit (never allocated)."""


class IntegrityError(PyipldError):
    """Data that does not hash to the CID it was asked for or stored under."""


class ConfigError(PyipldError, ValueError):
    """Invalid parameters: chunker string, CID version, hash name, profile..."""


class UsageError(ConfigError):
    """A command line the CLI cannot accept (kubo prints its short help after these).

    ``command`` is the command path reached before the error (``("add",)``), for the help text.
    """

    command: tuple[str, ...] = ()


class NotFoundError(PyipldError, KeyError):
    """A block, path or index entry that is not there."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BlockUnavailableError(PyipldError, OSError):
    """A block of an existing path (or the root a CID names) that no configured source could supply.

    The message lists each source's reason, as :class:`NotFoundError`'s does (not in a partial
    CAR, gateway down or timing out, no peer sent it…). Raised by the ``ipfs://`` filesystem;
    deliberately neither ``FileNotFoundError`` nor ``KeyError``: fsspec mappers and zarr read
    those as "no such key" and would fill the chunk with zeros instead of failing.

    Attributes:
        path: the path being read, when known.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class PathNotFoundError(NotFoundError):
    """A path segment that names nothing: no such link or map key, or a segment below a file."""


class GatewayRequestError(PyipldError, ValueError):
    """A trustless-gateway request that cannot be answered as asked (HTTP 400).

    A bad ``dag-scope``, ``entity-bytes`` or CAR parameter, or a byte range that
    starts past the end of the file.
    """


class UnsafePathError(PyipldError, ValueError):
    """A DAG entry name that would escape the extraction directory."""


class FileChangedError(PyipldError):
    """An input file changed size while it was being imported (the DAG would not be the file).

    Attributes:
        path: the file, as given.
        size_at_open: its size when the import opened it.
        size_now: the bytes read before EOF (shrunk) or its size at the end (grew).
    """

    def __init__(self, path: str, size_at_open: int, size_now: int) -> None:
        super().__init__(f"file changed during import: {path}: {size_at_open} bytes when opened, "
                         f"{size_now} bytes now")
        self.path, self.size_at_open, self.size_now = path, size_at_open, size_now


class SourceError(PyipldError, OSError):
    """An input behind an fsspec URL (``s3://…``) that cannot be listed or read: credentials
    refused, store unreachable, an object changed while it was read."""


class ProtocolError(PyipldError):
    """A libp2p or bitswap wire-protocol violation."""

    def __init__(self, message: str, *, error_code: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code


class LocalProtocolError(ProtocolError):
    """The caller asked a protocol machine for something illegal in its state."""


class RemoteProtocolError(ProtocolError):
    """The remote peer broke the protocol."""


class PeerTimeoutError(ProtocolError, TimeoutError):
    """A peer did not answer in time."""


class GatewayError(PyipldError):
    """An HTTP gateway or router answered with something we cannot use.

    Raised for a bad status, a wrong ``Content-Type``, a redirect, a body over its
    limit, or (as :attr:`errors`) when every configured gateway failed.

    Attributes:
        url: the request that failed, when there was one.
        status: the HTTP status, when there was a response.
        errors: for "all gateways failed": ``(gateway URL, error)`` per attempt.
        retry_after: seconds from the response's ``Retry-After``, when it had one.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 errors: tuple[tuple[str, Exception], ...] = ()) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.errors = errors
        self.retry_after: float | None = None


class IncompleteResponseError(GatewayError):
    """A ``200`` answer that ended before every block the requested scope needs arrived."""


class GatewayTimeoutError(GatewayError, TimeoutError):
    """A gateway or router did not connect, answer or keep sending in time."""


class RoutingError(GatewayError):
    """A delegated-routing server refused the request or sent an unreadable answer."""


class FilestoreError(IntegrityError):
    """A filestore reference (``add --nocopy``) whose file is gone, unreadable or changed: boxo's
    ``CorruptReferenceError``. Never returned as data: the block is refused.

    Attributes:
        cid: the block's CID (text). path: the referenced file. offset: where the block starts.
        status: boxo's ``filestore.Status`` code (10 error, 11 no-file, 12 changed, 20 other).
        reason: boxo's text (``data in file did not match. PATH offset N``, ``open PATH: …``).
    """

    def __init__(self, message: str, *, cid: str, path: str, offset: int, status: int, reason: str) -> None:
        super().__init__(message)
        self.cid, self.path, self.offset, self.status, self.reason = cid, path, offset, status, reason


class BlockIntegrityError(IntegrityError):
    """A block from a named source that does not hash to the CID it was asked for.

    Attributes:
        cid: the CID asked for (text).
        source: the source that sent the wrong bytes (e.g. ``car:/data/x.car``).
    """

    def __init__(self, message: str, *, cid: str, source: str) -> None:
        super().__init__(message)
        self.cid = cid
        self.source = source
