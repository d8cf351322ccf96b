"""CAR (Content Addressable aRchive) v1 and v2: read, write, index, export, serve blocks.

See docs/car.md. Modules: :mod:`.v1` (header, reader, writer), :mod:`.v2` (pragma,
header, wrap/extract, one-pass writer), :mod:`.index` (go-car index formats),
:mod:`.reader` (open any CAR), :mod:`.blockstore` (BlockSource over a CAR),
:mod:`.export` (``ipfs dag export`` order), :mod:`.sink` (atomic CAR output).
"""

from __future__ import annotations

from .._moved import register_moved_modules as _register_moved_modules
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
    "placeholder_root_for",
    "sniff_version",
    "wrap_v1",
]

_register_moved_modules()  # the old car.commp / car.pack paths (now pyipld.filecoin) keep importing
