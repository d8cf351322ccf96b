"""Issue 10 point 6 (and 7's header): hostile input gives one `Error:` line, never a traceback.

Each test failed on the old code (RecursionError, UnicodeEncodeError/UnicodeDecodeError, nine
exception types from a malformed manifest, a manifest opening any path as a CAR).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyipld import cli
from pyipld.blockstore import DirectoryBlockstore, MemoryBlockstore
from pyipld.car.export import DAG_JSON
from pyipld.car.v1 import CarV1Writer
from pyipld.cid import CID, DAG_PB, CidBuilder
from pyipld.dagpb import PBLink, encode_pbnode
from pyipld.errors import DecodeError
from pyipld.unixfs.data import DataType, UnixFSData, encode_unixfs_data
from pyipld.unixfs.importer import import_bytes

B = CidBuilder()
ROOT = Path(__file__).resolve().parents[1]


def _write_car(path: Path, roots: list[bytes], blocks: dict[bytes, bytes]) -> Path:
    with open(path, "wb") as f:
        w = CarV1Writer(f, [CID.from_bytes(r) for r in roots])
        for cid, data in blocks.items():
            w.put(cid, data)
        w.close()
    return path


def _one_error_line(err: str) -> None:
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err[-600:]


# -- deeply nested dag-json -----------------------------------------------------------------------


def _deep_json() -> tuple[bytes, bytes]:
    data = b"[" * 20_000 + b"]" * 20_000  # 40 KB
    return CidBuilder(version=1).cid_bytes(DAG_JSON, data), data


def test_deep_dag_json_get_dag_and_get_car(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cid, data = _deep_json()
    car = _write_car(tmp_path / "deep.car", [cid], {cid: data})
    text = str(CID.from_bytes(cid))
    assert cli.main(["car", "get-dag", str(car), text, str(tmp_path / "out.car")]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "nested too deeply" in err
    assert not (tmp_path / "out.car").exists()
    store = DirectoryBlockstore(tmp_path / "blocks")
    store.put(cid, data)
    assert cli.main(["get", text, "--car", str(tmp_path / "o2.car"), "--blockstore", str(tmp_path / "blocks")]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "nested too deeply" in err


def test_deep_dag_json_links_for_bitswap_fetch() -> None:
    """`get --peer` parses each fetched block's links with block_links: a DecodeError (which the
    client turns into 'do not follow'), not a RecursionError that kills the command."""
    from pyipld.bitswap.client import block_links

    cid, data = _deep_json()
    with pytest.raises(DecodeError, match="nested too deeply"):
        block_links(cid, data)


# -- names that are not UTF-8, under a UTF-8 locale ---------------------------------------------------


def _utf8_run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "PYTHONIOENCODING", "PYTHONUTF8"))}
    # a UTF-8 locale such as en_US.UTF-8 gives a strict stdout (C.UTF-8 would be lenient: surrogateescape)
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run([sys.executable, "-m", "pyipld", *argv], capture_output=True, env=env, cwd=ROOT,
                          timeout=120, check=False, **kw)  # type: ignore[call-overload]


def test_car_ls_unixfs_non_utf8_name(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    f = import_bytes(b"x", None, store)
    block = encode_pbnode([PBLink(f.cid.bytes, b"caf\xe9.txt", f.tsize)],
                          encode_unixfs_data(UnixFSData(DataType.DIRECTORY)))
    root = B.cid_bytes(DAG_PB, block)
    store.put(root, block)
    car = _write_car(tmp_path / "n.car", [root], {c: store.get(c) for c in store})
    proc = _utf8_run(["car", "ls", "--unixfs", str(car)])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-600:]
    assert b"caf\xe9.txt" in proc.stdout


@pytest.fixture()
def packed(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"alpha")
    (src / os.fsdecode(b"caf\xe9.bin")).write_bytes(b"bytes")
    out = tmp_path / "pack"
    assert cli.main(["car", "pack", str(src), "--target-size", "1MiB", "-o", str(out), "-q"]) == 0
    return out


def test_car_unpack_non_utf8_name(packed: Path, tmp_path: Path) -> None:
    proc = _utf8_run(["car", "unpack", str(packed), "-o", str(tmp_path / "dest")])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-600:]
    assert b"caf\xe9.bin" in proc.stdout
    assert (tmp_path / "dest").exists()


def _mutations(doc: dict, packed: Path) -> dict[str, object]:
    car0 = doc["cars"][0]["name"]
    os.mkfifo(packed / "fifo.car")
    os.symlink(packed / car0, packed / "link.car")

    def with_car(name: str) -> dict:
        return {**doc, "cars": [{**doc["cars"][0], "name": name}]}

    def with_part(**part: object) -> dict:
        f0 = doc["files"][0]
        return {**doc, "files": [{**f0, "parts": [{**f0["parts"][0], **part}]}]}

    return {
        "not json": b"{nope",
        "not utf-8": b'{"format": "\xff"}',
        "a list": [],
        "deeply nested": b"[" * 100_000 + b"]" * 100_000,
        "cars not a list": {**doc, "cars": {"0": 1}},
        "car is a string": {**doc, "cars": ["x"]},
        "car name absolute": with_car("/etc/passwd"),
        "car name traversal": with_car("../" + car0),
        "car name a fifo": with_car("fifo.car"),
        "car name a symlink": with_car("link.car"),
        "car index a string": with_part(car="0"),
        "car index out of range": with_part(car=7),
        "car index negative": with_part(car=-1),
        "car index a bool": with_part(car=True),
        "cid not a string": with_part(cid=5),
        "cid garbage": with_part(cid="notacid"),
        "file path absolute": {**doc, "files": [{**doc["files"][0], "path": "/tmp/evil"}]},
        "file path traversal": {**doc, "files": [{**doc["files"][0], "path": "../evil"}]},
        "file is null": {**doc, "files": [None]},
        "parts missing": {**doc, "files": [{"path": "x"}]},
        "empty dir not a string": {**doc, "empty_dirs": [1]},
    }


def test_car_unpack_malformed_manifests(packed: Path, tmp_path: Path,
                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    manifest = packed / "manifest.json"
    good = manifest.read_bytes()
    doc = json.loads(good)
    for what, bad in _mutations(doc, packed).items():
        manifest.write_bytes(bad if isinstance(bad, bytes) else json.dumps(bad).encode())
        start = time.monotonic()
        assert cli.main(["car", "unpack", str(packed), "-o", str(tmp_path / "d" / what)]) == 1, what
        assert time.monotonic() - start < 10, what  # a FIFO must not be waited on
        _one_error_line(capsysbinary.readouterr().err.decode("utf-8", "replace"))
        assert not (tmp_path / "evil").exists() and not Path("/tmp/evil").exists()
    manifest.write_bytes(good)
    assert cli.main(["car", "unpack", str(packed), "-o", str(tmp_path / "ok")]) == 0
    assert (tmp_path / "ok" / "src" / "a.txt").read_bytes() == b"alpha"


def test_car_filter_cid_file_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = import_bytes(b"x", ImportParams_v1())
    car = _write_car(tmp_path / "in.car", [f.cid.bytes], {f.cid.bytes: b"x"})
    cids = tmp_path / "cids.txt"
    cids.write_bytes(str(f.cid).encode() + b"\n\xff\xfe\n")
    assert cli.main(["car", "filter", str(car), str(tmp_path / "out.car"), "--cid-file", str(cids)]) == 1
    _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out.car").exists()


def ImportParams_v1():
    from pyipld.unixfs.params import ImportParams

    return ImportParams(cid_version=1, raw_leaves=True)


@pytest.mark.parametrize("argv", [["commp", "-"], ["chunk", "-"], ["add"], ["car", "ls", "-"],
                                  ["car", "extract", "-f", "-", "-o", "OUT"]])
def test_closed_stdin_is_an_error_line(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: run with descriptor 0 closed (``<&-``), Python's sys.stdin is None and every ``-``
    input ended in an AttributeError traceback."""
    monkeypatch.setattr(sys, "stdin", None)
    assert cli.main([str(tmp_path / a) if a == "OUT" else a for a in argv]) == 1
    err = capsys.readouterr().err
    _one_error_line(err)
    assert "Bad file descriptor" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize(("verb", "listen"), [("gateway", "127.0.0.1:0"), ("serve", "/ip4/127.0.0.1/tcp/0")])
def test_serving_a_named_pipe_is_an_error_not_a_hang(verb: str, listen: str, tmp_path: Path) -> None:
    """Regression: ``gateway --car FIFO`` waited in open() for a writer forever (and with one, failed
    at the first seek): serving needs random access."""
    fifo = tmp_path / "x.car"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "pyipld", verb, "--car", str(fifo), "--listen", listen],
                          capture_output=True, cwd=ROOT, timeout=30, check=False, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and done.stdout == b""
    _one_error_line(done.stderr.decode())
    assert "named pipe" in done.stderr.decode()
