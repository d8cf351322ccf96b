"""Regenerate tests/vectors/import_params.json with real kubo (kubo_oracle.py from ../shared/tools).

    KUBO_PY=/work/.venv-kubo/bin/python python -m tests.vectors.gen_import_params_vectors

Trickle layouts (1, 2 and many layers; dag-pb and raw leaves), every hash function
pyipld.multihash knows and kubo 0.22 accepts, inline CIDs around the limit, max-links
and the IPIP-499 profiles' parameter sets. ``params`` use ImportParams field names
(``profile`` means ImportParams.from_profile with the other keys as overrides); the
oracle gets the equivalent ``ipfs add`` flags. Cases kubo refuses are left out and
listed in ``import_params_refused.json`` (kubo's error text) for reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pyipld.multihash import hash_names
from pyipld.unixfs.params import PROFILES
from tests._inputs import make_input

HERE = Path(__file__).resolve().parent
SOURCE = "kubo 0.22.0 via kubo_oracle.py"
MiB = 1 << 20


def chacha(size: int, seed: str = "params") -> dict[str, Any]:
    return {"gen": "chacha", "seed": f"{seed}-{size}", "size": size}


def oracle_params(params: dict[str, Any]) -> dict[str, Any]:
    """ImportParams fields (maybe with a profile) -> kubo_oracle AddParams."""
    merged = dict(params)
    if "profile" in merged:
        base = PROFILES[merged.pop("profile")]
        merged = {"cid_version": base.cid_version, "raw_leaves": base.raw_leaves, "chunker": base.chunker,
                  "max_links": base.max_links, **merged}
    out: dict[str, Any] = {}
    for key, value in merged.items():
        if key == "layout":
            out["trickle"] = value == "trickle"
        else:
            out[key] = value
    return out


def cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, recipe: dict[str, Any], params: dict[str, Any]) -> None:
        out.append({"name": name, "input": recipe, "params": params})

    leaf_modes = {"v0": {"cid_version": 0}, "v1": {"cid_version": 1}, "v1-pbleaves": {"cid_version": 1,
                  "raw_leaves": False}, "v0-rawleaves": {"cid_version": 0, "raw_leaves": True}}
    # Trickle: 1 leaf; one layer; exactly full direct leaves; 2 layers; many layers.
    for mode, extra in leaf_modes.items():
        for size in (0, 100, 1024, 1025, 174 * 1024, 174 * 1024 + 1, 200_000, 2_000_000):
            add(f"trickle/size-1024/{size}/{mode}", chacha(size), {"layout": "trickle", "chunker": "size-1024", **extra})
        for leaves in (1, 3, 4, 5, 9, 17, 50, 200, 700):
            add(f"trickle/max-links-3/{leaves}-leaves/{mode}", chacha(leaves * 256 - 7 * (leaves > 1)),
                {"layout": "trickle", "chunker": "size-256", "max_links": 3, **extra})
    for chunker in ("rabin", "buzhash", "rabin-16384-65536-131072"):
        for mode in ("v0", "v1"):
            add(f"trickle/{chunker}/3MiB/{mode}", chacha(3 * MiB + 11), {"layout": "trickle", "chunker": chunker,
                **leaf_modes[mode]})
    # Balanced with small max-links (deep trees), both leaf kinds.
    for mode in ("v0", "v1"):
        for leaves in (2, 3, 4, 10, 27, 28, 100):
            add(f"balanced/max-links-3/{leaves}-leaves/{mode}", chacha(leaves * 256),
                {"chunker": "size-256", "max_links": 3, **leaf_modes[mode]})
    # Every hash: one chunk and several chunks (dag-pb root), CIDv1 (forced by kubo for non-sha2-256).
    for name in hash_names():
        sizes = (10,) if name == "identity" else (10, 700_000)
        for size in sizes:
            add(f"hash/{name}/{size}", chacha(size, "hash"), {"hash": name})
            if name != "identity":
                add(f"hash/{name}/{size}/trickle-pbleaves", chacha(size, "hash"),
                    {"hash": name, "raw_leaves": False, "layout": "trickle", "chunker": "size-262144"})
    # Inline: blocks at, just under and just over the limit; leaves inlined under a real root.
    for limit in (8, 16, 32, 33, 64, 100, 128):
        for size in sorted({max(limit - 12, 0), limit - 9, limit - 8, limit - 1, limit, limit + 1}):
            if size < 0:
                continue
            for mode in ("v0", "v1"):
                add(f"inline/{limit}/{size}/{mode}", chacha(size, "inline"),
                    {"inline": True, "inline_limit": limit, **leaf_modes[mode]})
        for mode in ("v0", "v1"):
            add(f"inline/{limit}/multi-leaf/{mode}", chacha(5 * limit, "inline"),
                {"inline": True, "inline_limit": limit, "chunker": f"size-{limit}", **leaf_modes[mode]})
            add(f"inline/{limit}/trickle/{mode}", chacha(7 * limit, "inline"),
                {"inline": True, "inline_limit": limit, "chunker": f"size-{limit}", "layout": "trickle",
                 "max_links": 3, **leaf_modes[mode]})
    # IPIP-499 parameter sets (kubo 0.22 has no profiles: the oracle gets the expanded flags).
    for profile in ("unixfs-v0-2015", "unixfs-v1-2025"):
        for size in (1, 262_144, 262_145, MiB, MiB + 1, 5 * MiB + 3):
            add(f"profile/{profile}/{size}", chacha(size, "profile"), {"profile": profile})
        add(f"profile/{profile}/trickle", chacha(3 * MiB, "profile"), {"profile": profile, "layout": "trickle"})
    return out


def main() -> int:
    kubo_py = os.environ.get("KUBO_PY", "/work/.venv-kubo/bin/python")
    oracle = Path(os.environ.get("PYIPLD_SHARED", "/work/shared")) / "tools" / "kubo_oracle.py"
    entries = cases()
    with tempfile.TemporaryDirectory() as tmp:
        lines, files = [], {}
        for i, entry in enumerate(entries):
            key = json.dumps(entry["input"], sort_keys=True)
            if key not in files:
                path = Path(tmp) / f"in{len(files)}.bin"
                path.write_bytes(make_input(entry["input"]))
                files[key] = str(path)
            lines.append(json.dumps({"input": files[key], "params": oracle_params(entry["params"]), "id": i}))
        cases_path = Path(tmp) / "cases.jsonl"
        cases_path.write_text("\n".join(lines) + "\n")
        run = subprocess.run([kubo_py, str(oracle), "batch", str(cases_path)], capture_output=True, text=True,
                             check=False)
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if len(results) != len(entries):
        raise SystemExit(f"oracle answered {len(results)} of {len(entries)} cases: {run.stderr[-2000:]}")
    vectors, refused = [], []
    for result in results:
        entry = entries[result["id"]]
        if "cid" in result:
            vectors.append({**entry, "cid": result["cid"], "source": SOURCE})
        else:
            refused.append({**entry, "kubo_error": result.get("error"), "source": SOURCE})
    (HERE / "import_params.json").write_text(json.dumps(vectors, indent=1) + "\n")
    (HERE / "import_params_refused.json").write_text(json.dumps(refused, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors, {len(refused)} refused by kubo")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
