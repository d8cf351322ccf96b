"""Regenerate tests/vectors/chunkers.json with real kubo (kubo_oracle.py from ../shared/tools).

    KUBO_PY=/work/.venv-kubo/bin/python python -m tests.vectors.gen_chunker_vectors

Every input is rebuilt from a recipe (tests/_inputs.py), written to a temp file and
added by kubo 0.22 (only-hash) with the case's parameters; the CID kubo prints is
recorded with the recipe. Inputs that end exactly on a chunk boundary are found
with pyipld's chunkers and confirmed by kubo's CID for the same bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pyipld.chunker import parse_chunker
from tests._inputs import make_input

HERE = Path(__file__).resolve().parent
SOURCE = "kubo 0.22.0 via kubo_oracle.py"
MiB = 1 << 20

# (chunker, inputs); every input is added as CIDv0 (dag-pb leaves) and CIDv1 (raw leaves).
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
SLOW_SIZE = 8 * MiB  # one large input per main chunker, marked slow
PATTERNS = {
    # buzhash: popcount(T[0x00]) is even -> 128 KiB cuts; T[0x01] odd -> forced 512 KiB cuts.
    "zeros": {"gen": "zeros"},
    "ones": {"gen": "repeat", "pattern": "01"},
    "text": {"gen": "repeat", "pattern": b"The quick brown fox jumps over the lazy dog. ".hex()},
    "period-4096": {"gen": "repeat_random", "seed": "period", "period": 4096},
}
PATTERN_CHUNKERS = ["rabin", "rabin-16384-65536-131072", "rabin-16-64-256", "buzhash"]


def boundary_sizes(chunker: str, seed: str, size: int, count: int) -> list[int]:
    """Sizes at which chacha(seed) ends exactly on one of its first ``count`` cuts."""
    data = make_input({"gen": "chacha", "seed": seed, "size": size})
    ends, pos = [], 0
    for chunk in parse_chunker(chunker).split([data]):
        pos += len(chunk)
        ends.append(pos)
        if len(ends) >= count:
            break
    return ends


def cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, recipe: dict[str, Any], chunker: str, slow: bool = False) -> None:
        for version in (0, 1):
            entry: dict[str, Any] = {
                "name": f"{name}/v{version}",
                "input": recipe,
                "params": {"chunker": chunker, "cid_version": version, "raw_leaves": version == 1},
            }
            if slow:
                entry["slow"] = True
            out.append(entry)

    for chunker, sizes in RANDOM_SIZES.items():
        for size in sizes:
            add(f"{chunker}/chacha-{size}", {"gen": "chacha", "seed": f"chunkers-{size}", "size": size}, chunker)
    for chunker in ("rabin", "rabin-16384-65536-131072", "buzhash", "rabin-16-64-256"):
        big = 3 * MiB if chunker != "rabin-16-64-256" else 30_000
        for size in boundary_sizes(chunker, "boundary", big, 3 if big > MiB else 40)[-2:]:
            add(f"{chunker}/on-boundary-{size}", {"gen": "chacha", "seed": "boundary", "size": size}, chunker)
    for chunker in ("rabin", "buzhash"):
        add(f"{chunker}/chacha-{SLOW_SIZE}", {"gen": "chacha", "seed": "chunkers-big", "size": SLOW_SIZE}, chunker,
            slow=True)
    for chunker in PATTERN_CHUNKERS:
        size = 30_000 if chunker == "rabin-16-64-256" else 2 * MiB + 12_345
        for label, recipe in PATTERNS.items():
            add(f"{chunker}/{label}-{size}", {**recipe, "size": size}, chunker)
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
            lines.append(json.dumps({"input": files[key], "params": entry["params"], "id": i}))
        cases_path = Path(tmp) / "cases.jsonl"
        cases_path.write_text("\n".join(lines) + "\n")
        run = subprocess.run([kubo_py, str(oracle), "batch", str(cases_path)], capture_output=True, text=True,
                             check=False)
        results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    if len(results) != len(entries):
        sys.stderr.write(run.stderr[-4000:])
        raise SystemExit(f"oracle answered {len(results)} of {len(entries)} cases")
    vectors = []
    for result in results:
        entry = entries[result["id"]]
        if "cid" not in result:
            raise SystemExit(f"kubo failed {entry['name']}: {result.get('error')}")
        vectors.append({**entry, "cid": result["cid"], "source": SOURCE})
    (HERE / "chunkers.json").write_text(json.dumps(vectors, indent=1) + "\n")
    print(f"wrote {len(vectors)} vectors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
