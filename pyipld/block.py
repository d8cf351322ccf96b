"""Block: a CID and the bytes it names."""

from __future__ import annotations

from dataclasses import dataclass

from .cid import CID
from .errors import IntegrityError

__all__ = ["Block"]


@dataclass(frozen=True, slots=True)
class Block:
    """An immutable block.

    Attributes:
        cid: binary CID (bytes, for a lean hot path); see :attr:`cid_obj`.
        data: the block bytes.
    """

    cid: bytes
    data: bytes

    @property
    def cid_obj(self) -> CID:
        return CID.from_bytes(self.cid)

    def verify(self) -> None:
        """Raise :class:`IntegrityError` unless ``data`` hashes to ``cid``."""
        cid = self.cid_obj
        if not cid.verify(self.data):
            raise IntegrityError(f"block data does not match its CID {cid}")
