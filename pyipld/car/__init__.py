"""CAR (Content Addressable aRchive) v1 and v2: read, write, index, export, serve blocks.

See docs/car.md. Modules: :mod:`.v1` (header, reader, writer), :mod:`.v2` (pragma,
header, wrap/extract, one-pass writer), :mod:`.index` (go-car index formats),
:mod:`.reader` (open any CAR), :mod:`.blockstore` (BlockSource over a CAR),
:mod:`.export` (``ipfs dag export`` order), :mod:`.sink` (atomic CAR output),
:mod:`.stream` (read a CAR in order from a pipe).
"""

# ruff: noqa: TC004 - the names in TYPE_CHECKING are exported lazily (lazy_package)
from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_package
from .._moved import register_moved_modules as _register_moved_modules

if TYPE_CHECKING:  # the public names, loaded on first use by lazy_package below
    from .blockstore import CarBlockstore
    from .export import ExportStats, export_dag, iter_dag, iter_links
    from .index import (
        INDEX_SORTED,
        MULTIHASH_INDEX_SORTED,
        CarIndex,
        build_index,
        decode_index,
        encode_index,
    )
    from .reader import CarFile, open_car, sniff_version
    from .sink import CarSink, atomic_output, open_car_sink, placeholder_root_for
    from .stream import open_car_stream
    from .v1 import (
        CarHeader,
        CarV1Decoder,
        CarV1Reader,
        CarV1Writer,
        Section,
        SectionHead,
        decode_header,
        encode_header,
        iter_blocks,
    )
    from .v2 import PRAGMA, CarV2Header, CarV2Writer, extract_v1, wrap_v1

__all__ = [
    "INDEX_SORTED",
    "MULTIHASH_INDEX_SORTED",
    "PRAGMA",
    "CarBlockstore",
    "CarFile",
    "CarHeader",
    "CarIndex",
    "CarSink",
    "CarV1Decoder",
    "CarV1Reader",
    "CarV1Writer",
    "CarV2Header",
    "CarV2Writer",
    "ExportStats",
    "Section",
    "SectionHead",
    "atomic_output",
    "build_index",
    "decode_header",
    "decode_index",
    "encode_header",
    "encode_index",
    "export_dag",
    "extract_v1",
    "iter_blocks",
    "iter_dag",
    "iter_links",
    "open_car",
    "open_car_sink",
    "open_car_stream",
    "placeholder_root_for",
    "sniff_version",
    "wrap_v1",
]

lazy_package(__name__, {
    "CarBlockstore": "blockstore",
    "ExportStats": "export",
    "export_dag": "export",
    "iter_dag": "export",
    "iter_links": "export",
    "INDEX_SORTED": "index",
    "MULTIHASH_INDEX_SORTED": "index",
    "CarIndex": "index",
    "build_index": "index",
    "decode_index": "index",
    "encode_index": "index",
    "CarFile": "reader",
    "open_car": "reader",
    "sniff_version": "reader",
    "CarSink": "sink",
    "atomic_output": "sink",
    "open_car_sink": "sink",
    "placeholder_root_for": "sink",
    "open_car_stream": "stream",
    "CarHeader": "v1",
    "CarV1Decoder": "v1",
    "CarV1Reader": "v1",
    "CarV1Writer": "v1",
    "Section": "v1",
    "SectionHead": "v1",
    "decode_header": "v1",
    "encode_header": "v1",
    "iter_blocks": "v1",
    "PRAGMA": "v2",
    "CarV2Header": "v2",
    "CarV2Writer": "v2",
    "extract_v1": "v2",
    "wrap_v1": "v2",
})  # each loads on first use: start-up time
_register_moved_modules()  # the old car.commp / car.pack paths (now pyipld.filecoin) keep importing
