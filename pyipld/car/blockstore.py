"""A read-only :class:`~pyipld.blockstore.BlockSource` over one CAR file.

An indexed CARv2 is used through its index; a CARv1 (or a CARv2 without a usable
index) is indexed on open by one scan of section heads — lengths and CIDs, the
block data is skipped with ``seek``. ``get`` then reads just the one block.

The index is only a hint: every ``get`` re-parses the section at the indexed
offset, checks that its CID carries the requested multihash, and (by default)
hash-verifies the data. A lying index can make a block unfindable, never wrong.
:meth:`CarBlockstore.get_view` gives a block as a read-only view: of one read by default,
of the mapped file (no copy) only with ``PYIPLD_MMAP=1`` — a mapped file that another process
truncates kills this one with SIGBUS, which Python cannot turn into an error.
Call :meth:`CarBlockstore.verify_index` to check a CARv2 index completely.
"""

from __future__ import annotations

import io
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Self

from .._io import use_mmap
from .._varint import decode_varint
from ..cid import CID
from ..errors import CarError, CarIndexError, DecodeError, NotFoundError
from .index import CarIndex, decode_index
from .reader import CarFile
from .v1 import DEFAULT_MAX_SECTION_BYTES, Section, SectionHead, _verify_or_raise

__all__ = ["CarBlockstore"]


_TRIM_BYTES: Final = 16 << 20  # views handed out between two trims of the mapping's resident pages


class CarBlockstore:
    """Blocks of a CAR file by CID (``get``/``has``), reading only what is asked.

    Args:
        source: path or seekable binary file.
        verify: hash-check every block returned (default on).
        use_index: use a CARv2's own index (checked per lookup); ``False`` scans instead.
        verify_index: check the index against a full scan on open.
        index: a detached index (``car index create`` output, or a :class:`CarIndex`) to use
            instead of the file's own; offsets are relative to the CARv1 payload.
        zero_length_section_as_eof / max_section_bytes: reader options.

    Raises:
        CarError: the file is not a readable CAR. CarIndexError: with
            ``verify_index``, the index disagrees with the data.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | IO[bytes],
        *,
        verify: bool = True,
        use_index: bool = True,
        verify_index: bool = False,
        index: CarIndex | str | os.PathLike[str] | None = None,
        zero_length_section_as_eof: bool = False,
        max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES,
    ) -> None:
        self.car = CarFile(source, zero_length_section_as_eof=zero_length_section_as_eof,
                           max_section_bytes=max_section_bytes)
        self.verify = verify
        self._lock = threading.RLock()
        self.index: CarIndex | None = None
        self.index_error: CarIndexError | None = None
        self._scan: dict[bytes, list[int]] | None = None
        self._map: mmap.mmap | None = None
        self._map_view: memoryview | None = None
        self._map_tried = False
        self._viewed = 0
        try:
            if index is not None:
                self.index = index if isinstance(index, CarIndex) else decode_index(Path(index).read_bytes())
                if verify_index:
                    self.car.verify_index(self.index)
            elif use_index and self.car.has_index:
                try:
                    self.index = self.car.read_index()
                except CarIndexError as exc:
                    self.index_error = exc  # unusable index: fall back to a scan
                if self.index is not None and verify_index:
                    self.car.verify_index(self.index)
            if self.index is None:
                self._build_scan()
        except BaseException:
            self.car.close()
            raise

    def _build_scan(self) -> None:
        scan: dict[bytes, list[int]] = {}
        for head in self.car.iter_heads():
            mh = CID.from_bytes(head.cid).multihash
            scan.setdefault(mh, []).append(head.offset)
        self._scan = scan

    @property
    def roots(self) -> tuple[CID, ...]:
        return self.car.roots

    def _candidates(self, parsed: CID) -> list[int]:
        if self._scan is not None:
            return self._scan.get(parsed.multihash, [])
        assert self.index is not None
        return self.index.find(parsed)

    def _locate(self, parsed: CID) -> SectionHead | None:
        for offset in self._candidates(parsed):
            try:
                head = self.car.read_section_at(offset, data=False)
            except DecodeError:
                if self._scan is not None:
                    raise
                continue  # a bad index entry: not trusted, not fatal
            assert isinstance(head, SectionHead)
            if CID.from_bytes(head.cid).multihash == parsed.multihash:
                return head
        return None

    def get(self, cid: bytes | CID) -> bytes:
        """The block's bytes (identity CIDs answer from the CID itself). Thread-safe.

        Raises:
            NotFoundError: not in this CAR. IntegrityError: data does not match (with ``verify``).
        """
        parsed = CID.parse(cid)
        if parsed.hash_code == 0:
            return parsed.digest
        with self._lock:  # one file position shared by every lookup
            head = self._locate(parsed)
            if head is None:
                raise NotFoundError(f"ipld: could not find {parsed}")
            data = self.car.read_data(head.data_offset, head.data_length)
        if self.verify:
            _verify_or_raise(parsed.bytes, parsed.hash_code, parsed.digest, data,
                             self.car.payload_offset + head.offset)
        return data

    def get_view(self, cid: bytes | CID) -> memoryview:
        """:meth:`get` as a read-only view: of the block read by :meth:`get`, or, with
        ``PYIPLD_MMAP=1``, of the file mapped once, read-only (no copy; the file must then not
        shrink while open: a truncated mapping kills the process with SIGBUS).

        Mapped, a section stored under exactly these CID bytes is found from the mapping alone
        (no lock, no read call); anything else (the other CID version, an odd index
        entry) goes through the same lookup as :meth:`get`. After every 16 MiB of views
        the mapping's pages are dropped from this process (``MADV_DONTNEED``: they stay
        in the page cache and fault back in when read), so resident memory stays flat in
        the file size. A file that cannot be mapped gives a view of a copy. The view
        stays valid after :meth:`close`.

        Raises:
            NotFoundError / IntegrityError: as :meth:`get`.
        """
        parsed = CID.parse(cid)
        if parsed.hash_code == 0:
            return memoryview(parsed.digest)
        with self._lock:
            mapped = self._mapped()
            if mapped is None:
                return memoryview(self.get(parsed))
            candidates = self._candidates(parsed)
        span = next((span for offset in candidates if (span := self._mapped_data(mapped, offset, parsed.bytes))),
                    None)
        if span is None:
            with self._lock:
                head = self._locate(parsed)
            if head is None:
                raise NotFoundError(f"ipld: could not find {parsed}")
            first = self.car.payload_offset + head.data_offset
            span = (first, first + head.data_length)
        view = mapped[span[0] : span[1]]
        if len(view) != span[1] - span[0]:
            raise CarError(f"unexpected EOF reading block data at offset {span[0]}", offset=span[0])
        with self._lock:
            self._viewed += len(view)
            trim = self._viewed >= _TRIM_BYTES and self._map is not None
            if trim:
                self._viewed = 0
                self._map.madvise(mmap.MADV_DONTNEED)  # type: ignore[union-attr]
        if self.verify:
            _verify_or_raise(parsed.bytes, parsed.hash_code, parsed.digest, view, span[0])
        return view

    def _mapped_data(self, mapped: memoryview, offset: int, cid: bytes) -> tuple[int, int] | None:
        """File span of the data of the section at payload ``offset`` if it is stored under ``cid``."""
        car = self.car
        if offset < car.header_length or offset >= car.payload_length:
            return None
        start = car.payload_offset + offset
        try:
            length, n = decode_varint(mapped, start)
        except DecodeError:
            return None
        if length < len(cid) or length > car.max_section_bytes or offset + n + length > car.payload_length:
            return None
        body = start + n
        if mapped[body : body + len(cid)] != cid:  # a CID is prefix-free: equal bytes, same CID
            return None
        return body + len(cid), body + length

    def _mapped(self) -> memoryview | None:
        """The file mapped read-only (once), or None (not asked for, not a real file, empty,
        closed); under the lock."""
        if not self._map_tried:
            self._map_tried = True
            if not use_mmap():
                return None
            try:
                self._map = mmap.mmap(self.car._f.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError, io.UnsupportedOperation, AttributeError):
                self._map = None
            else:
                if not hasattr(self._map, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
                    self._map.close()  # cannot keep resident memory flat: read copies instead
                    self._map = None
                else:
                    self._map_view = memoryview(self._map)
        return self._map_view

    def has(self, cid: bytes | CID) -> bool:
        parsed = CID.parse(cid)
        if parsed.hash_code == 0:
            return True
        with self._lock:
            return self._locate(parsed) is not None

    def get_section(self, cid: bytes | CID) -> Section:
        """The section (CID as stored, data, offsets) holding ``cid``'s multihash."""
        parsed = CID.parse(cid)
        with self._lock:
            head = self._locate(parsed)
            if head is None:
                raise NotFoundError(f"ipld: could not find {parsed}")
            section = self.car.read_section_at(head.offset, verify=self.verify)
        assert isinstance(section, Section)
        return section

    def iter_cids(self) -> Iterator[bytes]:
        """Every CID in payload order (a scan of heads)."""
        for head in self.car.iter_heads():
            yield head.cid

    def verify_index(self) -> None:
        """Check the CARv2 index (if used) against the data; raises :class:`CarIndexError`."""
        if self.index is not None:
            self.car.verify_index(self.index)

    def verify_all(self) -> int:
        """Hash-check every block; returns the count. Raises IntegrityError on the first bad one."""
        return self.car.verify_blocks()

    def close(self) -> None:
        with self._lock:
            self._map_tried = True
            mapped, self._map = self._map, None
            if self._map_view is not None:
                self._map_view.release()  # views sliced from it are independent of this one
                self._map_view = None
        if mapped is not None:
            try:
                mapped.close()
            except BufferError:
                pass  # views still in use keep the mapping; it goes with the last of them
        self.car.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

