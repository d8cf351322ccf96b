"""Regenerate tests/vectors/chunkers.json and import_params.json with real kubo 0.22.

    python tests/vectors/gen_chunker_vectors.py [--only chunkers,import_params]

Same machinery and format as gen_kubo_vectors.py (format-1 files, recipes from
tests/_recipes.py, oracle parameter names, provenance block); every vector also
carries ``source``. Inputs that end exactly on a content-defined boundary are
located with pyipld's chunkers and confirmed by kubo's CID for the same bytes.

chunkers.json: rabin (default, rabin-AVG, MIN-AVG-MAX with and without labels,
tiny, MIN < 16) and buzhash on random data of sizes around min/avg/max and several
MB, on all-zero, constant-byte, text and 512-byte-periodic data, and on inputs
ending on a boundary; CIDv0 (dag-pb leaves) and CIDv1 (raw leaves) each.
import_params.json: what params.json/files.json do not already cover — trickle over
the content-defined chunkers in all four leaf modes, hashes and inline CIDs over
content-defined chunks, and the IPIP-499 parameter sets with trickle.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pyipld.chunker import parse_chunker
from tests._deterministic import chacha_bytes
from tests.vectors.gen_kubo_vectors import generate, oracle_info

SOURCE = "kubo 0.22.0 via kubo_oracle.py"
MiB = 1 << 20
Case = dict[str, Any]

RANDOM_SIZES: dict[str, list[int]] = {
    "rabin": [1, 1000, 50_000, 87_380, 87_381, 87_382, 262_144, 393_216, 393_217, 1_000_000, 3 * MiB + 7],
    "rabin-65536": [21_845, 21_846, 98_304, 98_305, 700_000],
    "rabin-16384-65536-131072": [16_383, 16_384, 131_072, 131_073, 1_500_000],
    "rabin-min:1024-avg:4096-max:16384": [1024, 16_384, 16_385, 200_000],
    "rabin-36-512-1024": [36, 1024, 50_000],
    "rabin-16-64-256": [16, 17, 256, 257, 20_000],
    "rabin-30": [1, 1000, 600_000],  # MIN = 10 < 16: kubo never cuts (one leaf)
    "buzhash": [1, 100_000, 131_071, 131_072, 131_073, 262_144, 524_288, 524_289, 1_000_000, 3 * MiB + 7],
}
PATTERN_CHUNKERS = ["rabin", "rabin-16384-65536-131072", "rabin-16-64-256", "buzhash"]
LEAF_MODES: dict[str, dict[str, Any]] = {
    "v0": {}, "v1": {"cid_version": 1}, "v1-pbleaves": {"cid_version": 1, "raw_leaves": False},
    "v0-rawleaves": {"raw_leaves": True},
}


def chacha(seed: str, size: int) -> dict[str, Any]:
    return {"gen": "chacha", "seed": seed, "size": size}


def patterns(size: int) -> dict[str, dict[str, Any]]:
    # buzhash: popcount(T[0x00]) is even -> 128 KiB cuts; T[0x01] is odd -> forced 512 KiB cuts.
    return {
        "zeros": {"gen": "zeros", "size": size},
        "ones": {"gen": "repeat", "hex": "01", "size": size},
        "text": {"gen": "repeat", "text": "The quick brown fox jumps over the lazy dog. ", "size": size},
        "period-512": {"gen": "repeat", "hex": chacha_bytes("period", 512).hex(), "size": size},
    }


def boundary_sizes(chunker: str, seed: str, size: int, count: int) -> list[int]:
    """Offsets of the first ``count`` cuts of chacha(seed, size): inputs ending on a boundary."""
    ends, pos = [], 0
    for chunk in parse_chunker(chunker).split([chacha_bytes(seed, size)]):
        pos += len(chunk)
        ends.append(pos)
        if len(ends) >= count:
            break
    return ends


def chunker_cases() -> list[Case]:
    out: list[Case] = []

    def add(name: str, recipe: dict[str, Any], chunker: str, slow: bool = False) -> None:
        for mode in ("v0", "v1"):
            case: Case = {"name": f"{name}/{mode}", "input": recipe, "params": {"chunker": chunker, **LEAF_MODES[mode]}}
            if slow:
                case["slow"] = True
            out.append(case)

    for chunker, sizes in RANDOM_SIZES.items():
        for size in sizes:
            add(f"{chunker}/chacha-{size}", chacha(f"chunkers-{size}", size), chunker)
    for chunker in ("rabin", "rabin-16384-65536-131072", "buzhash", "rabin-16-64-256"):
        big, count = (30_000, 40) if chunker == "rabin-16-64-256" else (3 * MiB, 3)
        for size in boundary_sizes(chunker, "boundary", big, count)[-2:]:
            add(f"{chunker}/on-boundary-{size}", chacha("boundary", size), chunker)
    for chunker in ("rabin", "buzhash"):
        add(f"{chunker}/chacha-{8 * MiB}", chacha("chunkers-big", 8 * MiB), chunker, slow=True)
    for chunker in PATTERN_CHUNKERS:
        size = 30_000 if chunker == "rabin-16-64-256" else 2 * MiB + 12_345
        for label, recipe in patterns(size).items():
            add(f"{chunker}/{label}-{size}", recipe, chunker)
    return out


def import_params_cases() -> list[Case]:
    out: list[Case] = []
    for chunker in ("rabin", "buzhash", "rabin-16384-65536-131072", "rabin-16-64-256"):
        size = 40_000 if chunker == "rabin-16-64-256" else 3 * MiB + 11
        for mode, extra in LEAF_MODES.items():
            out.append({"name": f"trickle/{chunker}/{size}/{mode}", "input": chacha("trickle-cdc", size),
                        "params": {"trickle": True, "chunker": chunker, **extra}})
        out.append({"name": f"trickle/{chunker}/{size}/max-links-3/v1", "input": chacha("trickle-cdc", size),
                    "params": {"trickle": True, "chunker": chunker, "max_links": 3, "cid_version": 1}})
    for hash_name in ("sha2-512", "sha3-256", "blake2b-256", "blake2s-256", "blake3"):
        for chunker in ("rabin", "buzhash"):
            out.append({"name": f"hash/{hash_name}/{chunker}", "input": chacha("hash-cdc", 1_500_000),
                        "params": {"hash": hash_name, "chunker": chunker}})
            out.append({"name": f"hash/{hash_name}/{chunker}/trickle-pbleaves", "input": chacha("hash-cdc", 1_500_000),
                        "params": {"hash": hash_name, "chunker": chunker, "trickle": True, "raw_leaves": False}})
    for limit in (16, 32, 64, 128):
        for mode in ("v0", "v1"):
            out.append({"name": f"inline/{limit}/rabin-16-64-256/{mode}", "input": chacha("inline-cdc", 3000),
                        "params": {"inline": True, "inline_limit": limit, "chunker": "rabin-16-64-256",
                                   **LEAF_MODES[mode]}})
            out.append({"name": f"inline/{limit}/rabin-16-64-256/trickle/{mode}", "input": chacha("inline-cdc", 3000),
                        "params": {"inline": True, "inline_limit": limit, "chunker": "rabin-16-64-256",
                                   "trickle": True, **LEAF_MODES[mode]}})
    # IPIP-499 file parameters (kubo 0.22 has no profiles: the oracle gets the flags).
    profiles = {"unixfs-v0-2015": {"chunker": "size-262144", "max_links": 174},
                "unixfs-v1-2025": {"cid_version": 1, "raw_leaves": True, "chunker": "size-1048576", "max_links": 1024}}
    for profile, params in profiles.items():
        for size in (MiB + 1, 5 * MiB + 3):
            out.append({"name": f"profile/{profile}/trickle/{size}", "input": chacha("profile", size),
                        "params": {**params, "trickle": True}})
    return out


BUILDERS = {"chunkers": chunker_cases, "import_params": import_params_cases}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="chunkers,import_params")
    ap.add_argument("--kubo-python", default=os.environ.get("PYIPLD_KUBO_PYTHON")
                    or str(ROOT / ".peers" / "kubo-venv" / "bin" / "python"))
    ap.add_argument("--shared", default=os.environ.get("PYIPLD_SHARED") or str(ROOT.parent / "shared"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent))
    a = ap.parse_args(argv)
    oracle = Path(a.shared) / "tools" / "kubo_oracle.py"
    if not oracle.is_file():
        ap.error(f"{oracle} not found: pass --shared or set PYIPLD_SHARED")
    info = oracle_info(a.kubo_python, oracle)
    for kind in a.only.split(","):
        data = generate(kind, BUILDERS[kind](), a.kubo_python, oracle, info, False)
        data["provenance"]["generator"] = "tests/vectors/gen_chunker_vectors.py"
        for vector in data["vectors"]:
            vector["source"] = SOURCE
        path = Path(a.out) / f"{kind}.json"
        tmp = path.with_suffix(".json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
        n_err = sum("error" in v for v in data["vectors"])
        print(f"{path}: {len(data['vectors'])} vectors ({n_err} kubo errors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
