"""kubo's ``ipfs add`` parameters, their defaults and their rules, in one value.

:class:`ImportParams` holds what the user asked for (``None`` = "not set", as
kubo distinguishes an explicit flag from a default); :meth:`ImportParams.resolve`
applies kubo's rules (core/commands/add.go, shared/spec/unixfs-importer.md §2.1,
§7, §8) and returns the concrete settings the importer uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from ..chunker import DEFAULT_CHUNKER, Chunker, parse_chunker
from ..cid import CidBuilder
from ..errors import ConfigError
from ..multihash import SHA2_256, get_hash

__all__ = [
    "DEFAULT_MAX_LINKS",
    "MAX_INLINE_LIMIT",
    "PROFILES",
    "UNIXFS_V0_2015",
    "UNIXFS_V1_2025",
    "ImportParams",
    "ResolvedParams",
    "import_params",
]

Layout = Literal["balanced", "trickle"]
HamtEstimation = Literal["links", "block"]

DEFAULT_MAX_LINKS: Final = 174  # 8192 // 47, boxo importer/helpers/helpers.go
DEFAULT_INLINE_LIMIT: Final = 32  # kubo add.go --inline-limit default
MAX_INLINE_LIMIT: Final = 128  # verifcid.DefaultMaxIdentityDigestSize
DEFAULT_HAMT_THRESHOLD: Final = 262144  # boxo io.HAMTShardingSize
DEFAULT_HAMT_FANOUT: Final = 256  # boxo io.DefaultShardWidth
MAX_HAMT_FANOUT: Final = 1024  # kubo add.go


@dataclass(frozen=True, slots=True)
class ImportParams:
    """What ``ipfs add`` was asked to do. ``None`` means "not set, use kubo's default".

    Attributes:
        cid_version: 0 or 1 (default 0, or 1 when ``hash`` is not sha2-256).
        raw_leaves: raw leaf blocks (default: on iff CIDv1 and no metadata).
        chunker: kubo chunker string (``size-262144``, ``rabin-…``, ``buzhash``).
        layout: ``balanced`` (default) or ``trickle``.
        max_links: children per file node (``--max-file-links``).
        hash: multihash function name (``--hash``).
        inline: identity-hash blocks of at most ``inline_limit`` bytes (``--inline``).
        inline_limit: see ``inline``; at most 128.
        hamt_threshold: directory size estimate above which a directory shards (0: never).
        hamt_estimation: ``links`` (Σ name+CID bytes) or ``block`` (serialized size).
        hamt_threshold_inclusive: shard when the estimate equals the threshold too (kubo < 0.40).
        hamt_fanout: HAMT width (power of two, multiple of 8, ≤ 1024).
        max_directory_links: shard a directory with more entries than this (0: no limit).
        preserve_mode / preserve_mtime: store each file's mode / mtime (``--preserve-*``).
        mode / mtime: fixed mode / mtime (seconds, nanos) for every entry (``--mode``/``--mtime``).
        hidden: include dot-files in recursive adds (``-H``).
        empty_dirs: keep empty sub-directories (``-E``).
    """

    cid_version: int | None = None
    raw_leaves: bool | None = None
    chunker: str = DEFAULT_CHUNKER
    layout: Layout = "balanced"
    max_links: int = DEFAULT_MAX_LINKS
    hash: str = "sha2-256"
    inline: bool = False
    inline_limit: int = DEFAULT_INLINE_LIMIT
    hamt_threshold: int = DEFAULT_HAMT_THRESHOLD
    hamt_estimation: HamtEstimation = "links"
    hamt_threshold_inclusive: bool = False
    hamt_fanout: int = DEFAULT_HAMT_FANOUT
    max_directory_links: int = 0
    preserve_mode: bool = False
    preserve_mtime: bool = False
    mode: int | None = None
    mtime: tuple[int, int] | None = None
    hidden: bool = False
    empty_dirs: bool = True

    def __post_init__(self) -> None:
        # kubo passes --mode / --mtime on only when non-zero (core/commands/add.go), so 0 is "unset".
        if self.mode == 0:
            object.__setattr__(self, "mode", None)
        if self.mtime is not None and self.mtime[0] == 0:
            if self.mtime[1]:
                raise ConfigError('option "mtime-nsecs" requires "mtime" to be provided as well')
            object.__setattr__(self, "mtime", None)
        if self.mtime is not None and not 0 <= self.mtime[1] <= 999_999_999:  # kubo: options.Unixfs.Mtime
            raise ConfigError("mtime nanoseconds must be in range [1, 999999999]")

    @classmethod
    def from_profile(cls, name: str, **overrides: object) -> ImportParams:
        """A profile's parameters with explicit ``overrides`` on top (as kubo's flags do)."""
        try:
            base = PROFILES[name]
        except KeyError:
            raise ConfigError(f"unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}") from None
        return replace(base, **overrides)  # type: ignore[arg-type]

    @property
    def has_metadata(self) -> bool:
        return self.preserve_mode or self.preserve_mtime or self.mode is not None or self.mtime is not None

    def resolve(self) -> ResolvedParams:
        """Apply kubo's rules; raise :class:`ConfigError` where kubo errors."""
        hash_fn = get_hash(self.hash)
        version = self.cid_version
        if version is None:
            version = 0 if hash_fn is SHA2_256 else 1
        if version not in (0, 1):
            raise ConfigError(f"unknown CID version: {version!r}")
        if version == 0 and hash_fn is not SHA2_256:
            raise ConfigError("CIDv0 only supports sha2-256")
        raw_leaves = self.raw_leaves
        if self.has_metadata:
            if raw_leaves:
                raise ConfigError(
                    "raw-leaves can't be used with UnixFS metadata like mode or modification time"
                )
            raw_leaves = False
        elif raw_leaves is None:
            raw_leaves = version == 1
        if self.inline and not 0 <= self.inline_limit <= MAX_INLINE_LIMIT:
            raise ConfigError(f"inline-limit {self.inline_limit} exceeds maximum allowed size of {MAX_INLINE_LIMIT} bytes")
        if self.layout not in ("balanced", "trickle"):
            raise ConfigError(f"unknown layout {self.layout!r}: expected balanced or trickle")
        if self.max_links < 2:
            raise ConfigError(f"max file links must be at least 2, got {self.max_links}")
        fanout = self.hamt_fanout
        if fanout <= 0 or fanout & (fanout - 1) or fanout % 8 or fanout > MAX_HAMT_FANOUT:
            raise ConfigError(f"HAMT fanout must be a power of 2, a multiple of 8 and at most {MAX_HAMT_FANOUT}: got {fanout}")
        if self.hamt_estimation not in ("links", "block"):
            raise ConfigError(f"unknown HAMT size estimation {self.hamt_estimation!r}: expected links or block")
        if self.hamt_threshold < 0 or self.max_directory_links < 0:
            raise ConfigError("HAMT threshold and max directory links must not be negative")
        builder = CidBuilder(version, hash_fn, self.inline_limit if self.inline else None)
        return ResolvedParams(self, builder, raw_leaves, parse_chunker(self.chunker))


@dataclass(frozen=True, slots=True)
class ResolvedParams:
    """Concrete settings after kubo's rules: what the builders read."""

    params: ImportParams
    cid_builder: CidBuilder
    raw_leaves: bool
    chunker: Chunker = field(compare=False)

    @property
    def layout(self) -> Layout:
        return self.params.layout

    @property
    def max_links(self) -> int:
        return self.params.max_links


# IPIP-499 (ipfs/specs src/ipips/ipip-0499.md; kubo config/profile.go).
UNIXFS_V0_2015: Final = ImportParams(
    cid_version=0, raw_leaves=False, chunker="size-262144", max_links=174,
    hamt_threshold=262144, hamt_estimation="links", hamt_fanout=256,
)
UNIXFS_V1_2025: Final = ImportParams(
    cid_version=1, raw_leaves=True, chunker="size-1048576", max_links=1024,
    hamt_threshold=262144, hamt_estimation="block", hamt_fanout=256,
)
PROFILES: Final[dict[str, ImportParams]] = {
    "unixfs-v0-2015": UNIXFS_V0_2015,
    "legacy-cid-v0": UNIXFS_V0_2015,
    "unixfs-v1-2025": UNIXFS_V1_2025,
}


def import_params(params: ImportParams | None) -> ImportParams:
    """``params``, or kubo's defaults for None.

    Raises:
        ConfigError: anything else (a dict of settings is a common first try).
    """
    if params is None:
        return ImportParams()
    if not isinstance(params, ImportParams):
        hint = f": ImportParams(**{dict(params)!r})" if isinstance(params, Mapping) else ""
        raise ConfigError(f"params must be an ImportParams, not a {type(params).__name__}{hint}")
    return params
