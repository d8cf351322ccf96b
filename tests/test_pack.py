"""car pack: CARs fit the piece, reassembly gives the files back, determinism, resume."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld._cli.car_pack import register_pack
from pyipld.car.blockstore import CarBlockstore
from pyipld.car.v1 import CarV1Reader
from pyipld.cid import CID
from pyipld.errors import ConfigError
from pyipld.filecoin.commp import commp_bytes
from pyipld.filecoin.pack import MANIFEST_NAME, pack, reassemble
from pyipld.unixfs.importer import import_file
from pyipld.unixfs.params import ImportParams

PARAMS = ImportParams(cid_version=1, chunker="size-2048", max_links=8)
TARGET = 32 << 10  # 32 KiB pieces: a 100 KB file must be split


def _tree(root: Path, sizes: dict[str, int], seed: int = 0) -> None:
    rnd = random.Random(seed)
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rnd.randbytes(size))


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


SIZES = {"big.bin": 100_000, "sub/a.txt": 5_000, "sub/deeper/b": 3, "empty": 0, "z/medium": 20_000}


@pytest.fixture()
def dataset(tmp_path: Path) -> Path:
    src = tmp_path / "data"
    _tree(src, SIZES)
    return src


def _check_pack(out: Path, src: Path, tmp: Path) -> dict[str, object]:
    doc = json.loads((out / MANIFEST_NAME).read_text())
    assert doc["complete"] is True
    capacity = TARGET // 128 * 127
    for car in doc["cars"]:
        data = (out / car["name"]).read_bytes()
        assert len(data) == car["car_size"] <= capacity
        info = commp_bytes(data)
        assert str(info.cid_v1) == car["piece_cid"]
        assert str(info.cid_v2) == car["piece_cid_v2"]
        assert info.padded_size == car["padded_piece_size"] <= TARGET
        # every root is a complete DAG inside this CAR
        with CarBlockstore(out / car["name"]) as store:
            assert [str(r) for r in store.roots] == car["roots"]
            for root in car["roots"]:
                todo = [CID.decode(root).bytes]
                while todo:
                    cid = todo.pop()
                    block = store.get(cid)
                    if CID.from_bytes(cid).codec == 0x70:
                        from pyipld.dagpb import decode_pbnode
                        todo.extend(link.cid for link in decode_pbnode(block).links)
    # file roots are the CIDs `ipfs add` gives for each file
    for entry in doc["files"]:
        expected = import_file(src.parent / entry["path"], PARAMS)
        assert entry["root"] == str(expected.cid)
        assert sum(p["length"] for p in entry["parts"]) == entry["size"]
    back = tmp / "back"
    reassemble(out, back)
    assert _digests(back / src.name) == _digests(src)
    return doc


def test_pack_and_reassemble(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = pack([dataset], out, target_size=TARGET, params=PARAMS)
    doc = _check_pack(out, dataset, tmp_path)
    assert result.cars_written == len(doc["cars"]) >= 4  # type: ignore[arg-type]
    big = next(f for f in doc["files"] if f["path"] == "data/big.bin")  # type: ignore[attr-defined]
    assert len(big["parts"]) > 1 and big["spine_car"] is not None
    small = next(f for f in doc["files"] if f["path"] == "data/sub/a.txt")  # type: ignore[attr-defined]
    assert small["parts"] == [{"car": small["parts"][0]["car"], "cid": small["root"], "offset": 0, "length": 5000}]


def test_pack_twice_is_byte_identical(dataset: Path, tmp_path: Path) -> None:
    pack([dataset], tmp_path / "o1", target_size=TARGET, params=PARAMS)
    pack([dataset], tmp_path / "o2", target_size=TARGET, params=PARAMS, jobs=2)
    names = sorted(p.name for p in (tmp_path / "o1").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "o2").iterdir())
    for name in names:
        assert (tmp_path / "o1" / name).read_bytes() == (tmp_path / "o2" / name).read_bytes(), name


class _Stop(Exception):
    pass


@pytest.mark.parametrize("stop_after", [1, 2, 4])
def test_resume_after_interruption(dataset: Path, tmp_path: Path, stop_after: int) -> None:
    full = tmp_path / "full"
    pack([dataset], full, target_size=TARGET, params=PARAMS)
    out = tmp_path / "out"
    seen: list[str] = []

    def stop(entry: dict[str, object]) -> None:
        seen.append(str(entry["name"]))
        if len(seen) == stop_after:
            raise _Stop

    with pytest.raises(_Stop):
        pack([dataset], out, target_size=TARGET, params=PARAMS, on_car=stop)
    doc = json.loads((out / MANIFEST_NAME).read_text())
    assert doc["complete"] is False and len(doc["cars"]) == stop_after
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("pack-*.car")}
    again: list[str] = []
    result = pack([dataset], out, target_size=TARGET, params=PARAMS, on_car=lambda e: again.append(str(e["name"])))
    assert result.cars_skipped == stop_after
    assert not set(again) & set(seen)  # finished CARs were not rewritten
    for name, mtime in mtimes.items():
        assert (out / name).stat().st_mtime_ns == mtime
    for p in full.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    assert not (out / ".pack-tmp").exists()


def test_completed_pack_is_not_redone(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = pack([dataset], out, target_size=TARGET, params=PARAMS)
    second = pack([dataset], out, target_size=TARGET, params=PARAMS)
    assert second.cars_written == 0 and second.files_imported == 0
    assert second.manifest == first.manifest


def test_outdir_inside_an_input_is_left_out(dataset: Path, tmp_path: Path) -> None:
    """Regression: OUTDIR inside an input was packed (an empty directory, then its own CARs), so the
    same command run again failed with "another inputs" instead of finding the pack done."""
    out = dataset / "packed"
    first = pack([dataset], out, target_size=TARGET, params=PARAMS)
    assert not any(str(name).endswith("packed") for name in first.manifest["empty_dirs"])
    second = pack([dataset], out, target_size=TARGET, params=PARAMS)
    assert second.cars_written == 0 and second.manifest == first.manifest
    with pytest.raises(ConfigError, match="cannot be an input"):
        pack([out], out, target_size=TARGET, params=PARAMS)


def test_resume_refuses_other_inputs(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    pack([dataset], out, target_size=TARGET, params=PARAMS)
    (dataset / "new").write_bytes(b"x")
    with pytest.raises(ConfigError, match="another inputs"):
        pack([dataset], out, target_size=TARGET, params=PARAMS)
    with pytest.raises(ConfigError):
        pack([dataset], tmp_path / "out", target_size=TARGET * 2, params=PARAMS)


def test_bad_targets(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        pack([dataset], tmp_path / "o", target_size=3 << 20, params=PARAMS)
    # a 2 KiB leaf cannot fit a 1 KiB piece
    with pytest.raises(ConfigError, match="larger --target-size"):
        pack([dataset], tmp_path / "o2" / "sub", target_size=1024, params=PARAMS)
    assert not (tmp_path / "o2").exists()  # the failed run removed the directories it made
    # the smallest piece: the room left for blocks is none, not a negative size
    with pytest.raises(ConfigError, match=r"room for 0 bytes of blocks: use a larger --target-size"):
        pack([dataset], tmp_path / "o4", target_size=128, params=PARAMS)
    (tmp_path / "o3").mkdir()
    (tmp_path / "o3" / "other").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        pack([dataset], tmp_path / "o3", target_size=TARGET, params=PARAMS)


def test_symlinks_skipped(dataset: Path, tmp_path: Path) -> None:
    os.symlink(dataset / "big.bin", dataset / "link")
    out = tmp_path / "out"
    doc = pack([dataset], out, target_size=TARGET, params=PARAMS).manifest
    assert doc["skipped"] == ["data/link"]
    assert "data/link" not in {f["path"] for f in doc["files"]}


@settings(max_examples=8, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(0, 70_000), min_size=1, max_size=5), seed=st.integers(0, 1000))
def test_pack_reassemble_property(tmp_path: Path, sizes: list[int], seed: int) -> None:
    case = tmp_path / f"case-{seed}-{len(sizes)}-{sum(sizes)}"
    if case.exists():
        return
    src = case / "in"
    _tree(src, {f"f{i}": s for i, s in enumerate(sizes)}, seed)
    out = case / "out"
    pack([src], out, target_size=TARGET, params=PARAMS)
    doc = json.loads((out / MANIFEST_NAME).read_text())
    for car in doc["cars"]:
        assert car["car_size"] <= TARGET // 128 * 127
        with open(out / car["name"], "rb") as f:
            assert [str(r) for r in CarV1Reader(f).roots] == car["roots"]
    reassemble(out, case / "back")
    assert _digests(case / "back" / "in") == _digests(src)


def test_cli_pack_unpack(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    register_pack(sub)
    out = tmp_path / "out"
    args = parser.parse_args(["pack", str(dataset), "--target-size", "32KiB", "-o", str(out),
                              "--cid-version", "1", "-s", "size-2048", "--max-file-links", "8"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("pack-00000.car baga6ea4sea")
    assert "CARs" in lines[-1]
    args = parser.parse_args(["unpack", str(out), "-o", str(tmp_path / "back")])
    assert args.func(args) == 0
    assert _digests(tmp_path / "back" / "data") == _digests(dataset)


def test_each_car_has_a_directory_root_that_extracts(dataset: Path, tmp_path: Path) -> None:
    from pyipld import cli
    from pyipld.unixfs.extract import extract

    (dataset / "nothing" / "inner").mkdir(parents=True)  # empty directories are recorded
    (dataset / "only-link").mkdir()
    os.symlink("../big.bin", dataset / "only-link" / "l")  # skipped: its directory is empty in the pack
    out = tmp_path / "out"
    doc = pack([dataset], out, target_size=TARGET, params=PARAMS).manifest
    assert doc["empty_dirs"] == ["data/nothing/inner", "data/only-link"]
    src = {rel: (dataset.parent / rel).read_bytes() for rel in (f["path"] for f in doc["files"])}
    whole: list[str] = []
    parts: dict[str, dict[int, bytes]] = {}
    dirs: set[str] = set()
    for car in doc["cars"]:
        assert len(car["roots"]) == 1 and car["dag_roots"]  # one root: the CAR's directory
        dest = tmp_path / "x" / car["name"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        with CarBlockstore(out / car["name"]) as store:
            extract(store, car["roots"][0], dest)  # the unixfs extractor: complete, usable tree
        other = tmp_path / "y" / car["name"]
        assert cli.main(["car", "extract", "-f", str(out / car["name"]), "-o", str(other)]) == 0  # go-car style
        for p in sorted(dest.rglob("*")):
            rel = "data/" + str(p.relative_to(dest / "data")) if p != dest / "data" else "data"
            if p.is_dir():
                dirs.add(rel)
                assert (other / p.relative_to(dest)).is_dir()
                continue
            assert (other / p.relative_to(dest)).read_bytes() == p.read_bytes()
            name, sep, offset = rel.rpartition(".part-")
            if sep and name in src:
                parts.setdefault(name, {})[int(offset)] = p.read_bytes()
            else:
                whole.append(rel)
                assert p.read_bytes() == src[rel]
    assert sorted(whole + list(parts)) == sorted(src)  # every file is in the CARs, once
    for name, pieces in parts.items():  # the parts of a split file concatenate back to it
        assert len(pieces) > 1 and b"".join(pieces[k] for k in sorted(pieces)) == src[name]
    assert {"data/nothing/inner", "data/only-link"} <= dirs
    reassemble(out, tmp_path / "back")
    assert (tmp_path / "back" / "data" / "nothing" / "inner").is_dir()
    expected = _digests(dataset)
    del expected["only-link/l"]  # a symlink: skipped, listed in the manifest
    assert _digests(tmp_path / "back" / "data") == expected


def test_a_manifest_that_is_not_a_plain_file_is_refused_not_read(tmp_path: Path) -> None:
    """Regression: manifest.json as a symlink to /dev/zero was read until memory ran out (4.8 GB
    by ``car unpack``, 5.2 GB by a resumed ``car pack``), and a FIFO blocked forever."""
    from pyipld.errors import ManifestError

    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"hello")
    out = tmp_path / "out"
    pack([src], out, target_size=1 << 20)
    manifest = out / MANIFEST_NAME
    real = manifest.read_bytes()
    for make in (lambda: os.symlink("/dev/zero", manifest), lambda: os.mkfifo(manifest)):
        manifest.unlink()
        make()
        with pytest.raises(ManifestError, match="symlink|plain file"):
            reassemble(out, tmp_path / "dest")
        with pytest.raises(ManifestError, match="symlink|plain file"):
            pack([src], out, target_size=1 << 20)
    manifest.unlink()
    manifest.write_bytes(real)
    assert reassemble(out, tmp_path / "dest") == ["src/a"]
