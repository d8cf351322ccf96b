"""Issue 10 audit: hostile inputs on code paths that landed after the first hardening pass.

Each test failed on the code before its fix (noted per test).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pyipld import cli
from pyipld.errors import ManifestError
from pyipld.filecoin.pack import pack
from pyipld.filecoin.pack_parallel import pack_parallel


def _one_error_line(err: str) -> None:
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-600:]


# -- car pack: the manifest a previous run left in OUTDIR is input too ---------------------------


@pytest.fixture
def packed(tmp_path: Path) -> tuple[Path, Path, dict[str, Any]]:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_bytes(bytes([i]) * 3000)
    out = tmp_path / "out"
    pack([str(src)], out, target_size=1 << 20)
    return src, out, json.loads((out / "manifest.json").read_bytes())


def _resume_mutations(doc: dict[str, Any]) -> dict[str, object]:
    partial = {**doc, "complete": False}
    return {
        "not json": b"garbage",
        "not utf-8": b"\xff\xfe{}",
        "deep": b"[" * 100_000 + b"]" * 100_000,
        "a list": [1, 2],
        "no cars": {k: v for k, v in doc.items() if k != "cars"},
        "cars not a list": {**doc, "cars": {"name": "x"}},
        "car not a dict": {**doc, "cars": ["pack-00000.car"]},
        "car name traversal": {**doc, "cars": [{**doc["cars"][0], "name": "../../etc/passwd"}]},
        "car size a string": {**doc, "cars": [{**doc["cars"][0], "car_size": "1"}]},
        "file not a dict": {**doc, "files": [None]},
        "resume missing": {**partial, "resume": None},
        "resume not ints": {**partial, "resume": {"file": "0", "item": 0}},
        "resume past the inputs": {**partial, "resume": {"file": 99, "item": 0}},
        "resume negative": {**partial, "resume": {"file": 0, "item": -1}},
        "resume item past the file": {**partial, "resume": {"file": 0, "item": 99}},
    }


def test_car_pack_on_a_malformed_manifest_is_one_error_line(packed: tuple[Path, Path, dict[str, Any]],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Before: JSONDecodeError, TypeError, KeyError, UnicodeDecodeError, RecursionError tracebacks,
    # and a resume item past the end of a file was silently skipped.
    src, out, doc = packed
    manifest = out / "manifest.json"
    good = manifest.read_bytes()
    for what, bad in _resume_mutations(doc).items():
        manifest.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
        rc = cli.main(["car", "pack", "--target-size", "1MiB", "-q", "-o", str(out), str(src)])
        err = capsys.readouterr().err
        assert rc == 1, (what, err)
        _one_error_line(err)
        assert "manifest.json" in err, (what, err)
    manifest.write_bytes(good)
    assert cli.main(["car", "pack", "--target-size", "1MiB", "-q", "-o", str(out), str(src)]) == 0


def test_distributed_pack_checks_the_manifest_too(packed: tuple[Path, Path, dict[str, Any]]) -> None:
    src, out, doc = packed
    manifest = out / "manifest.json"
    with ThreadPoolExecutor(2) as pool:
        for what, bad in _resume_mutations(doc).items():
            manifest.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
            with pytest.raises(ManifestError):
                pack_parallel([str(src)], out, pool, target_size=1 << 20)
                pytest.fail(what)
