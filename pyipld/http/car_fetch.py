"""Verified CAR retrieval: a gateway's CAR stream as a :class:`BlockSource` for a traversal.

Theory of operation: a traversal (the same walk a trustless server uses to decide
which blocks to send, :func:`pyipld.http.traversal.iter_scope_blocks`) pulls blocks
with ``get(cid)``. :class:`CarStreamSource` answers each pull by reading the CAR
response forward until that block arrives:

* every section is hash-checked against its CID and refused over 2 MiB, before
  anything else looks at it;
* a block already handed to the traversal is a duplicate and is dropped;
* a block arriving before it is needed (``order=unk``, or extra blocks) is parked:
  in memory up to ``memory_bytes``, then in an anonymous temporary file, so a
  breadth-first 10 GiB answer needs disk, not RAM;
* with ``order=dfs`` the next section is normally the one asked for, so nothing is
  parked and memory stays O(one block);
* if the stream ends, breaks, stalls or lies before the traversal is done, the same
  request goes to the next gateway and reading resumes there (blocks already handed
  over are skipped as duplicates). When no gateway is left:
  :class:`~pyipld.errors.IncompleteResponseError` (a ``200`` that stopped early) or
  the gateway's own typed error.

Completeness therefore needs no trust: the traversal ends only when every block the
requested scope needs was verified. The CAR header roots are ignored (spec §9.3).
Duplicates and unexpected blocks cost at most ``waste_bytes`` (plus what was useful)
per response before the gateway is given up on, so an endless body cannot run forever.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Final, Self

import httpx

from ..cid import CID
from ..errors import (
    CarError,
    GatewayError,
    IncompleteResponseError,
    LimitExceededError,
    NotFoundError,
    PyipldError,
)
from ._car_stream import CarSplitter
from ._request import MAX_BLOCK_BYTES, GatewayRequest, parse_car_content_type
from .client import GatewayClient, combine_errors

__all__ = ["CarStreamSource"]

_MEMORY_BYTES: Final = 32 << 20  # parked blocks held in RAM before the temporary file is used
_CID_ROOM: Final = 128  # a section is CID + block; CIDs are far shorter than this
_RECENT: Final = 64  # delivered blocks kept for a traversal that asks twice


class _Parked:
    """Blocks that arrived early: a dict in RAM, then an append-only temporary file."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self._ram: dict[bytes, bytes] = {}
        self._ram_bytes = 0
        self._disk: dict[bytes, tuple[int, int]] = {}
        self._file: IO[bytes] | None = None
        self._end = 0
        self.peak_ram_bytes = 0  # for tests and benchmarks: the most ever held in RAM
        self.spilled_bytes = 0

    def __contains__(self, cid: bytes) -> bool:
        return cid in self._ram or cid in self._disk

    def put(self, cid: bytes, data: bytes) -> None:
        if self._ram_bytes + len(data) <= self.memory_bytes:
            self._ram[cid] = data
            self._ram_bytes += len(data)
            self.peak_ram_bytes = max(self.peak_ram_bytes, self._ram_bytes)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="pyipld-car-")  # noqa: SIM115 - closed in close()
        os.pwrite(self._file.fileno(), data, self._end)
        self._disk[cid] = (self._end, len(data))
        self._end += len(data)
        self.spilled_bytes += len(data)

    def pop(self, cid: bytes) -> bytes | None:
        data = self._ram.pop(cid, None)
        if data is not None:
            self._ram_bytes -= len(data)
            return data
        where = self._disk.pop(cid, None)
        if where is None or self._file is None:
            return None
        return os.pread(self._file.fileno(), where[1], where[0])

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class CarStreamSource:
    """A :class:`~pyipld.blockstore.BlockSource` fed by one CAR request, resumed across gateways.

    Args:
        client: the gateways.
        request: the CAR request (see :func:`pyipld.http._request.car_request`).
        memory_bytes: early blocks kept in RAM before spilling to a temporary file.
        waste_bytes: duplicate/unexpected bytes allowed per response beyond the useful ones
            (default: the client's ``max_waste_bytes``).

    Use as a context manager (it holds an open response). ``order`` and ``dups`` of
    the current response are in :attr:`order` / :attr:`dups`.
    """

    def __init__(self, client: GatewayClient, request: GatewayRequest, *, memory_bytes: int = _MEMORY_BYTES,
                 waste_bytes: int | None = None, max_block_bytes: int | None = None) -> None:
        self.client = client
        self.request = request
        self.waste_bytes = client.max_waste_bytes if waste_bytes is None else waste_bytes
        self.max_block_bytes = max_block_bytes or client.max_block_bytes or MAX_BLOCK_BYTES
        self.order: str | None = None
        self.dups: bool | None = None
        self.gateway: str | None = None
        self.blocks = 0
        self.useful_bytes = 0
        self.parked = _Parked(memory_bytes)
        self._delivered: set[bytes] = set()
        self._recent: dict[bytes, bytes] = {}
        self._todo = client.ordered_gateways()
        self._errors: list[tuple[str, Exception]] = []
        self._stack: ExitStack | None = None
        self._sections: Iterator[tuple[bytes, bytes]] | None = None
        self._waste = 0

    # -- BlockSource -------------------------------------------------------------------
    def has(self, cid: bytes) -> bool:
        """True for any CID: whether it comes is only known by reading on (``get`` raises if not)."""
        return True

    def get(self, cid: bytes) -> bytes:
        """The block ``cid`` from the stream (verified).

        Raises:
            IncompleteResponseError: every gateway's answer ended without it.
            GatewayError / IntegrityError / LimitExceededError / NotFoundError: no gateway gave a usable answer.
        """
        parsed = CID.from_bytes(cid)
        if parsed.hash_code == 0:  # identity blocks are never sent (spec §2 rule 4)
            return parsed.digest
        data = self._recent.get(cid)
        if data is not None:
            return data
        data = self.parked.pop(cid)
        if data is not None:
            self._waste = max(0, self._waste - len(data))  # parked, then needed: not waste after all
        while data is None:
            got_cid, got = self._next_section(cid)
            if got_cid == cid:
                data = got
            elif got_cid in self._delivered or got_cid in self.parked:
                self._waste += len(got)
            else:
                self.parked.put(got_cid, got)
                self._waste += len(got)
        self._deliver(cid, data)
        return data

    def _deliver(self, cid: bytes, data: bytes) -> None:
        self._delivered.add(cid)
        self.blocks += 1
        self.useful_bytes += len(data)
        self._recent[cid] = data
        if len(self._recent) > _RECENT:
            del self._recent[next(iter(self._recent))]

    # -- the stream --------------------------------------------------------------------
    def _next_section(self, wanted: bytes) -> tuple[bytes, bytes]:
        while True:
            if self._sections is None:
                self._open_next(wanted)
            assert self._sections is not None and self.gateway is not None
            try:
                section = next(self._sections)
                if len(section[1]) > self.max_block_bytes:
                    raise LimitExceededError(f"block {CID.from_bytes(section[0])} is {len(section[1])} bytes > "
                                             f"max_block_bytes={self.max_block_bytes}")
                if self._waste > self.waste_bytes + self.useful_bytes:
                    raise GatewayError(f"{self.gateway}: over {self.waste_bytes} bytes of duplicate or unrequested "
                                       "blocks", url=self.gateway)
                return section
            except StopIteration:
                exc: Exception = IncompleteResponseError(
                    f"{self.gateway}: the CAR ended before block {CID.from_bytes(wanted)} arrived "
                    f"({self.blocks} blocks verified before it)", url=self.gateway)
            except (PyipldError, OSError) as exc2:
                exc = exc2
            self._errors.append((self.gateway, exc))
            self.client.record_failure(self.gateway, exc)
            self._close_response()

    def _open_next(self, wanted: bytes) -> None:
        while self._todo:
            gateway = self._todo.pop(0)
            stack = ExitStack()
            try:
                response = stack.enter_context(self.client.open(gateway, self.request))
                params = parse_car_content_type(response.headers.get("content-type"))
            except (PyipldError, OSError) as exc:
                stack.close()
                self._errors.append((gateway, exc))
                if not isinstance(exc, NotFoundError):
                    self.client.record_failure(gateway, exc)
                continue
            self._stack, self.gateway = stack, gateway
            self.order, self.dups = params.order, params.dups
            self._waste = 0
            self._sections = self._iter_sections(response)
            return
        raise combine_errors(f"CAR {self.request.path_query} (waiting for block {CID.from_bytes(wanted)})",
                             self._errors)

    def _iter_sections(self, response: httpx.Response) -> Iterator[tuple[bytes, bytes]]:
        splitter = CarSplitter(max_header_bytes=1 << 20, max_section_bytes=self.max_block_bytes + _CID_ROOM)
        for chunk in self.client.iter_body(response):
            yield from splitter.feed(chunk)
        try:
            splitter.close()
        except CarError as exc:  # the body ended inside the header or a section
            raise IncompleteResponseError(f"{self.gateway}: the CAR stops in the middle: {exc}",
                                          url=self.gateway) from exc

    def _close_response(self) -> None:
        self._sections = None
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def finished(self) -> None:
        """The traversal is done: this gateway served well."""
        if self.gateway is not None:
            self.client.record_success(self.gateway)

    def close(self) -> None:
        self._close_response()
        self.parked.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

