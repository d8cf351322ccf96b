"""The links of a block, in traversal order, by its CID's codec: dag-pb, dag-cbor (tag 42),
dag-json (``{"/": CID}``); raw, cbor and json blocks have none.

Shared by DAG export (:mod:`pyipld.car.export`), the bitswap DAG fetch and the gateway's
traversals; a module of its own so the latter two need not load the CAR writers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .cid import CID, DAG_CBOR, DAG_PB, RAW
from .dagpb import decode_pbnode
from .errors import DecodeError

__all__ = ["DAG_JSON", "iter_links"]

DAG_JSON = 0x0129
_NO_LINKS = {RAW, 0x51, 0x0200}  # raw, cbor, json: no link semantics


def _cbor_head(data: bytes, i: int) -> tuple[int, int, int]:
    """``(major, argument, next offset)`` of the CBOR item head at ``i``."""
    if i >= len(data):
        raise DecodeError(f"truncated dag-cbor at offset {i}", offset=i)
    ib = data[i]
    major, info = ib >> 5, ib & 0x1F
    if info < 24:
        return major, info, i + 1
    if info > 27:
        raise DecodeError(f"unsupported CBOR additional info {info} at offset {i} (indefinite lengths are "
                          "not dag-cbor)", offset=i)
    n = 1 << (info - 24)
    if i + 1 + n > len(data):
        raise DecodeError(f"truncated dag-cbor at offset {i}", offset=i)
    return major, int.from_bytes(data[i + 1 : i + 1 + n], "big"), i + 1 + n


def _cbor_links(data: bytes) -> Iterator[bytes]:
    """Tag-42 CIDs of a dag-cbor block in encoded order.

    A structural scan rather than a full decode: go-ipld-prime accepts strings that
    are not UTF-8 (Lotus exports have them) and only the links matter here.
    """
    i = 0
    pending = 1  # items still to read at the current nesting level
    stack: list[int] = []
    while True:
        while pending == 0:
            if not stack:
                if i != len(data):
                    raise DecodeError(f"{len(data) - i} trailing bytes after dag-cbor", offset=i)
                return
            pending = stack.pop()
        pending -= 1
        major, arg, i = _cbor_head(data, i)
        if major in (2, 3):  # byte/text string
            if arg > len(data) - i:
                raise DecodeError(f"dag-cbor string runs past the end at offset {i}", offset=i)
            i += arg
        elif major in (4, 5):  # array, map
            count = arg * (2 if major == 5 else 1)
            if count > len(data) - i:
                raise DecodeError(f"dag-cbor container of {arg} items is larger than the block", offset=i)
            stack.append(pending)
            pending = count
        elif major == 6:
            if arg == 42:
                m2, length, j = _cbor_head(data, i)
                if m2 != 2 or length < 1 or length > len(data) - j or data[j] != 0:
                    raise DecodeError(f"dag-cbor tag 42 is not a CID byte string at offset {i}", offset=i)
                yield data[j + 1 : j + length]
                i = j + length
            else:
                raise DecodeError(f"dag-cbor allows only tag 42, found tag {arg}", offset=i)
        # majors 0, 1, 7 (ints, simple values, floats): the head is the whole item


def _json_links(obj: Any) -> Iterator[bytes]:
    stack: list[Iterator[Any]] = [iter((obj,))]
    while stack:
        try:
            item = next(stack[-1])
        except StopIteration:
            stack.pop()
            continue
        if isinstance(item, dict):
            if len(item) == 1 and isinstance(item.get("/"), str):
                yield CID.decode(item["/"]).bytes
            elif not (len(item) == 1 and isinstance(item.get("/"), dict)):  # {"/": {"bytes": …}} is bytes
                stack.append(iter(item.values()))
        elif isinstance(item, list):
            stack.append(iter(item))


def iter_links(cid: bytes, data: bytes) -> Iterator[bytes]:
    """Binary CIDs a block links to, in traversal order.

    Raises:
        DecodeError: the block does not decode with its CID's codec, or the codec is unknown.
    """
    codec = CID.from_bytes(cid).codec
    if codec == DAG_PB:
        for link in decode_pbnode(data).links:
            yield link.cid
    elif codec == DAG_CBOR:
        yield from _cbor_links(data)
    elif codec == DAG_JSON:
        try:
            obj = json.loads(data)
        except ValueError as exc:
            raise DecodeError(f"block {CID.from_bytes(cid)} is not valid dag-json: {exc}") from exc
        except RecursionError:  # the C decoder recurses per level and stops at the interpreter's limit
            raise DecodeError(f"block {CID.from_bytes(cid)}: dag-json nested too deeply to decode") from None
        yield from _json_links(obj)
    elif codec in _NO_LINKS:
        return
    else:
        raise DecodeError(f"no decoder for codec 0x{codec:x} (block {CID.from_bytes(cid)})")
