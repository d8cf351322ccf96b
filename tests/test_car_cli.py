"""``pyipld car …`` end to end through ``cli.main`` (go-car's testscript cases where they exist)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path

import pytest

from pyipld import cli
from pyipld.unixfs.params import ImportParams
from tests._deterministic import chacha_bytes
from tests._shared import shared_path

# go-car cmd/car/testdata/script/inspect.txt (v1inspect.txt / v2inspect.txt)
V1_INSPECT = """Version: 1
Roots: bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy
Root blocks present in data: Yes
Block count: 1049
Min / average / max block length (bytes): 1 / 417 / 1342
Min / average / max CID length (bytes): 14 / 37 / 38
Block count per codec:
\traw: 6
\tdag-cbor: 1043
CID count per multihash:
\tidentity: 6
\tblake2b-256: 1043
"""
V2_INSPECT = """Version: 2
Characteristics: 00000000000000000000000000000000
Data offset: 51
Data (payload) length: 479907
Index offset: 479958
Index type: car-multihash-index-sorted
""" + V1_INSPECT.split("\n", 1)[1]


def gocar(name: str) -> str:
    return str(shared_path("fixtures", "go-car", name))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["car", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("argv", "expected"), [
    (["inspect", "sample-v1.car"], V1_INSPECT),
    (["inspect", "--full", "sample-v1.car"], V1_INSPECT),
    (["inspect", "sample-wrapped-v2.car"], V2_INSPECT),
    (["inspect", "--full", "sample-wrapped-v2.car"], V2_INSPECT),
    (["roots", "sample-wrapped-v2.car"], "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy\n"),
])
def test_text_output(capsys: pytest.CaptureFixture[str], argv: list[str], expected: str) -> None:
    code, out, _ = run(capsys, *argv[:-1], gocar(argv[-1]))
    assert code == 0
    assert out == expected


@pytest.mark.parametrize(("name", "message"), [
    ("badheaderlength.car", "invalid header data"), ("badsectionlength.car", "invalid section data"),
])
def test_inspect_errors_are_one_line(capsys: pytest.CaptureFixture[str], name: str, message: str) -> None:
    code, out, err = run(capsys, "inspect", gocar(name))
    assert code == 1 and out == ""
    assert message in err and err.count("\n") == 1 and err.startswith("Error: ")


def test_ls(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "ls", gocar("sample-v1.car"))
    lines = out.splitlines()
    assert code == 0 and len(lines) == 1049
    assert sum(x.startswith("bafy") for x in lines) == 1043 and sum(x.startswith("bafk") for x in lines) == 6
    code, out, _ = run(capsys, "ls", "--unixfs", gocar("simple-unixfs.car"))
    # go-car printUnixFSNode: every entry, directories too, relative, depth first in link order
    expected = []
    for d, files in (("a", [(1, "A"), (2, "B"), (3, "C")]), ("b", [(4, "D"), (5, "E"), (6, "F")]),
                     ("c", [(7, "G"), (8, "H"), (9, "I")])):
        expected.append(d)
        for n, f in files:
            expected += [f"{d}/{n}", f"{d}/{n}/{f}.txt"]
    assert out.splitlines() == expected


def test_verify(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "verify", gocar("sample-wrapped-v2.car"))[0] == 0
    code, _, err = run(capsys, "verify", gocar("sample-v1-tailing-corrupt-section.car"))
    assert code == 1 and "unexpected EOF" in err
    code, _, err = run(capsys, "verify", gocar("simple-unixfs-missing-blocks.car"))
    assert code == 0  # the root is present; missing leaves are not verify's business


def test_verify_rejects_missing_root_and_bad_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(Path(gocar("sample-v1.car")).read_bytes())
    data[1000] ^= 1
    bad = tmp_path / "bad.car"
    bad.write_bytes(bytes(data))
    code, _, err = run(capsys, "verify", str(bad))
    assert code == 1 and "mismatch in content integrity" in err
    shuffled = shared_path("fixtures", "kubo", "t0054-dag-car-import-export", "lotus_devnet_genesis_shuffled_noroots.car")
    code, _, err = run(capsys, "verify", str(shuffled))
    assert code == 1 and "no roots" in err


def test_get_block(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cid = "bafy2bzacebohz654namrgmwjjx4qmtwgxixsd7pn4tlanyrc3g3hwj75hlxrw"
    out = tmp_path / "b"
    assert run(capsys, "get-block", gocar("sample-v1.car"), cid, str(out))[0] == 0
    assert out.read_bytes() == Path(gocar(f"{cid}.block")).read_bytes()
    code, _, err = run(capsys, "get-block", gocar("sample-v1.car"),
                       "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4")
    assert code == 1 and "could not find" in err


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_extract_simple_unixfs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, _, err = run(capsys, "extract", "-f", gocar("simple-unixfs.car"), "-o", str(out))
    assert code == 0 and "extracted 9 file(s)" in err
    assert _files(out) == {f"{d}/{n}/{f}.txt": f"{d}{n}{f}\n" for d, n, f in
                           [("a", 1, "A"), ("a", 2, "B"), ("a", 3, "C"), ("b", 4, "D"), ("b", 5, "E"),
                            ("b", 6, "F"), ("c", 7, "G"), ("c", 8, "H"), ("c", 9, "I")]}


@pytest.mark.parametrize(("paths", "count"), [(["b"], 3), (["/a/2/B.txt"], 1), (["/a", "b/6", "/c/7/G.txt"], 5)])
def test_extract_filters(tmp_path: Path, capsys: pytest.CaptureFixture[str], paths: list[str], count: int) -> None:
    out = tmp_path / "out"
    assert run(capsys, "extract", "-f", gocar("simple-unixfs.car"), "-o", str(out), *paths)[0] == 0
    assert len(_files(out)) == count


def test_extract_missing_blocks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "extract", "-f", gocar("simple-unixfs-missing-blocks.car"), "-o", str(tmp_path / "o"))
    assert code == 0 and len(_files(tmp_path / "o")) == 6
    for missing in ("/b/4", "/b/5/E.txt", "/b/6"):
        assert f"data for entry not found: {missing} (skipping...)" in err
    code, _, err = run(capsys, "extract", "-f", gocar("simple-unixfs-missing-blocks.car"), "-o",
                       str(tmp_path / "o2"), "b")
    assert code == 1 and "no files extracted" in err


def test_extract_sharded_partial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys, "extract", "-f", gocar("wikipedia-cryptographic-hash-function.car"), "-o",
                     str(tmp_path), "wiki/Cryptographic_hash_function")
    assert code == 0
    text = (tmp_path / "wiki" / "Cryptographic_hash_function").read_text()
    assert "  <title>Cryptographic hash function</title>" in text


def test_extract_refuses_to_leave_the_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    car = shared_path("fixtures", "gateway-conformance", "path_gateway_tar-outside-root.car")
    code, _, err = run(capsys, "extract", str(car), "-o", str(out))
    assert code == 1 and "unsafe entry name '../foo'" in err
    assert os.listdir(tmp_path) == []  # nothing outside, and the failed run removed the empty OUT it made
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_extract_never_follows_symlinks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").symlink_to(outside)
    code, _, err = run(capsys, "extract", "-f", gocar("simple-unixfs.car"), "-o", str(out))
    assert code == 1 and "not a directory" in err
    assert list(outside.iterdir()) == []
    # a symlink where a file goes is replaced, not written through
    out2 = tmp_path / "out2"
    (out2 / "a" / "1").mkdir(parents=True)
    target = tmp_path / "victim"
    target.write_text("keep")
    (out2 / "a" / "1" / "A.txt").symlink_to(target)
    assert run(capsys, "extract", "-f", gocar("simple-unixfs.car"), "-o", str(out2))[0] == 0
    assert target.read_text() == "keep"
    assert (out2 / "a" / "1" / "A.txt").read_text() == "a1A\n" and not (out2 / "a" / "1" / "A.txt").is_symlink()


def test_cat(capsys: pytest.CaptureFixture[bytes]) -> None:
    car = shared_path("fixtures", "gateway-conformance", "dir_listing-fixtures.car")
    code = cli.main(["car", "cat", str(car),
                     "bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i/ą/ę/file-źł.txt"])
    out = capsys.readouterr().out
    assert code == 0 and out == "I am a txt file on path with utf8\n"
    code = cli.main(["car", "cat", str(car), "/ą/ę/file-źł.txt", "--offset", "7", "--length", "3"])
    assert capsys.readouterr().out == "txt"


def test_index_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v2.car"
    assert run(capsys, "index", gocar("sample-v1.car"), str(out))[0] == 0
    # go-car's `car index` includes identity CIDs: kubo's lotus_testnet_export_128_v2.car was made so
    assert out.read_bytes() == shared_path(
        "fixtures", "kubo", "t0054-dag-car-import-export", "lotus_testnet_export_128_v2.car").read_bytes()
    idx = tmp_path / "x.idx"
    assert run(capsys, "index", "create", gocar("sample-v1.car"), str(idx))[0] == 0
    want = Path(gocar("sample-multihash-index-sorted.carindex")).read_bytes()
    assert idx.read_bytes() == want
    det = tmp_path / "d.idx"
    assert run(capsys, "detach-index", gocar("sample-wrapped-v2.car"), str(det))[0] == 0
    assert det.read_bytes() == want
    v1 = tmp_path / "v1.car"
    assert run(capsys, "index", "--version", "1", gocar("sample-wrapped-v2.car"), str(v1))[0] == 0
    assert v1.read_bytes() == Path(gocar("sample-v1.car")).read_bytes()
    code, out_text, _ = run(capsys, "detach-index", "list", str(det))
    assert code == 0 and len(out_text.splitlines()) == 1043
    code, _, err = run(capsys, "detach-index", gocar("sample-v1.car"), str(tmp_path / "none"))
    assert code == 1 and "no index present" in err and not (tmp_path / "none").exists()


@pytest.mark.parametrize("version", ["1", "2"])
def test_create_then_read(tmp_path: Path, capsys: pytest.CaptureFixture[str], version: str) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(chacha_bytes("pyipld-car-export", 1234567))
    out = tmp_path / "o.car"
    code, _, stderr = run(capsys, "create", "--no-progress", "--no-wrap", "-f", str(out), "--version", version,
                          "--cid-version", "1", "--chunker", "size-65536", str(src))
    stdout = stderr  # go-car prints nothing on stdout; the root goes to stderr
    assert code == 0
    assert stdout.strip() == "bafybeieq2yez5dybuszsg5umzto6iw4eeru7lip344mpyzjlvrczo6smd4"  # kubo 0.22 (oracle)
    assert run(capsys, "verify", str(out))[0] == 0
    assert run(capsys, "roots", str(out))[1].strip() == stdout.strip()
    again = tmp_path / "again.car"
    assert run(capsys, "create", "--no-progress", "--no-wrap", "-f", str(again), "--version", version,
               "--cid-version", "1", "--chunker", "size-65536", str(src))[0] == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic
    # get-dag re-orders into `ipfs dag export` order: the oracle's bytes
    exported = tmp_path / "e.car"
    assert run(capsys, "get-dag", "--version=1", str(out), stdout.strip(), str(exported))[0] == 0
    import hashlib
    assert hashlib.sha256(exported.read_bytes()).hexdigest() == (
        "f321127403e31c0f017bad1fa3ba1dc11fd981b0d78da185fae96332fe8aded9")


def test_create_failure_leaves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "create", "-f", str(tmp_path / "o.car"), str(tmp_path / "missing.bin"))
    assert code == 1 and err.startswith("Error: ")
    assert os.listdir(tmp_path) == []
    code, _, _ = run(capsys, "create", "-f", str(tmp_path / "o.car"), "--chunker", "bogus", str(tmp_path))
    assert code == 1 and os.listdir(tmp_path) == []


def test_cat_range_of_a_large_file(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    data = chacha_bytes("pyipld-car-export", 1234567)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    out = tmp_path / "o.car"
    assert cli.main(["car", "create", "--no-progress", "--no-wrap", "-f", str(out), "--chunker", "size-1000",
                     "--max-file-links", "4", str(src)]) == 0
    root = capsysbinary.readouterr().err.decode().strip()
    assert cli.main(["car", "cat", str(out), root]) == 0
    assert capsysbinary.readouterr().out == data
    for offset, length in [(0, 1), (999, 2), (123456, 54321), (1234000, 10000), (5000000, 3)]:
        assert cli.main(["car", "cat", str(out), root, "--offset", str(offset), "--length", str(length)]) == 0
        assert capsysbinary.readouterr().out == data[offset : offset + length]


def test_create_directory_when_the_tree_importer_is_present(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from pyipld.unixfs import tree

    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello\n")
    (src / "sub" / "b.bin").write_bytes(chacha_bytes("dir", 300_000))
    out = tmp_path / "d.car"
    code, stdout, stderr = run(capsys, "create", "--no-progress", "-f", str(out), str(src))
    assert code == 0 and stdout == ""
    # go-car wraps by default: the root is a directory holding `src`
    v1 = ImportParams(cid_version=1)  # go-car's builder: CIDv1, raw leaves
    assert stderr.strip() == str(tree.import_paths([str(src)], v1, wrap=True).cid)
    dest = tmp_path / "x"
    assert run(capsys, "extract", "-f", str(out), "-o", str(dest))[0] == 0
    assert (dest / "src" / "a.txt").read_bytes() == b"hello\n"
    assert (dest / "src" / "sub" / "b.bin").read_bytes() == chacha_bytes("dir", 300_000)
    # create -> extract -> create gives the same bytes (go-car create-extract.txt)
    again = tmp_path / "again.car"
    assert run(capsys, "create", "--no-progress", "-f", str(again), str(dest / "src"))[0] == 0
    assert again.read_bytes() == out.read_bytes()
    # --no-wrap: the directory itself is the root
    code, _, stderr = run(capsys, "create", "--no-progress", "--no-wrap", "-f", str(tmp_path / "n.car"), str(src))
    assert code == 0 and stderr.strip() == str(tree.import_paths([str(src)], v1).cid)


def test_add_car_helpers(tmp_path: Path) -> None:
    import argparse

    from pyipld._cli.car_output import add_car_arguments, car_sink_for
    from pyipld.car.blockstore import CarBlockstore
    from pyipld.unixfs.importer import import_file
    from pyipld.unixfs.params import ImportParams

    parser = argparse.ArgumentParser()
    add_car_arguments(parser)
    params = ImportParams()
    with car_sink_for(parser.parse_args([]), params) as none:
        assert none is None
    src = tmp_path / "f"
    src.write_bytes(chacha_bytes("add", 700_000))
    out = tmp_path / "o.car"
    args = parser.parse_args(["--car", str(out), "--car-version", "2"])
    with car_sink_for(args, params) as car:
        root = import_file(str(src), params, car).cid
        car.set_roots([root])
    with CarBlockstore(out, verify_index=True) as bs:
        assert bs.car.version == 2 and bs.roots == (root,)


def test_filter_warns_of_a_duplicate_cid_like_go_car(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """go-car's parseCIDS prints ``duplicate cid: C`` (C in its canonical form) on stderr for a CID
    listed twice, and filters as if it were listed once."""
    car = gocar("simple-unixfs.car")
    cids = run(capsys, "ls", car)[1].split()
    cid_file = tmp_path / "cids"
    cid_file.write_text(f"{cids[3]}\n{cids[4]}\n{cids[3]}\n")
    code, out, err = run(capsys, "filter", "--cid-file", str(cid_file), car, str(tmp_path / "kept.car"))
    assert code == 0 and out == "filtering to 2 cids\n"
    assert err.splitlines()[0] == f"duplicate cid: {cids[3]}"
    assert run(capsys, "ls", str(tmp_path / "kept.car"))[1].split() == cids[3:5]


def test_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    car = gocar("simple-unixfs.car")
    cids = run(capsys, "ls", car)[1].split()
    cid_file = tmp_path / "cids"
    cid_file.write_text("\n".join(cids[3:5]) + "\n")
    out = tmp_path / "kept.car"
    code, _, err = run(capsys, "filter", "--cid-file", str(cid_file), car, str(out))
    assert code == 0 and "no roots defined after filtering" in err  # go-car's warning
    assert run(capsys, "ls", str(out))[1].split() == cids[3:5]
    inv = tmp_path / "inv.car"
    assert run(capsys, "filter", "--inverse", "--cid-file", str(cid_file), car, str(inv))[0] == 0
    listed = run(capsys, "ls", str(inv))[1].split()
    assert len(listed) == 20 and listed == cids[:3] + cids[5:]
    assert run(capsys, "roots", str(inv))[1].strip() == "QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"


def test_create_refuses_a_negative_jobs_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: ``car create -j -1 DIR`` ended in an IndexError traceback from the tree
    scheduler (and a single file was accepted); add, car pack and commp refuse it."""
    from pyipld.errors import ConfigError
    from pyipld.unixfs.importer import import_file
    from pyipld.unixfs.tree import import_paths

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x")
    for src in (tmp_path / "d", tmp_path / "d" / "f"):
        code, _, err = run(capsys, "create", "-f", str(tmp_path / "o.car"), "-j", "-1", str(src))
        assert (code, err) == (1, "Error: --jobs must be at least 1, got -1\n")
    assert not (tmp_path / "o.car").exists()
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        import_paths([tmp_path / "d"], recursive=True, jobs=-1)
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        import_file(tmp_path / "d" / "f", jobs=-2)


def test_index_version_and_codec_are_checked_like_go_car(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: ``car index --version N`` accepted any N (writing a CARv2), and ``--version 1``
    with an index codec. go-car cmd/car/index.go: 'invalid CAR version N'; for a v1 output
    "'none' is the only supported codec for a v1 car" when --codec is given."""
    src = str(shared_path("fixtures", "go-car", "sample-v1.car"))
    out = tmp_path / "o.car"
    for version in ("0", "3", "-1"):
        assert run(capsys, "index", "--version", version, src, str(out)) == (
            1, "", f"Error: invalid CAR version {version}\n")
    assert run(capsys, "index", "--version", "1", "--codec", "car-index-sorted", src, str(out)) == (
        1, "", "Error: 'none' is the only supported codec for a v1 car\n")
    assert not out.exists()
    assert run(capsys, "index", "--version", "1", "--codec", "none", src, str(out))[0] == 0
    assert run(capsys, "index", "--version", "1", src, str(tmp_path / "p.car"))[0] == 0  # codec not set
    assert out.read_bytes() == (tmp_path / "p.car").read_bytes()
    assert run(capsys, "index", src, str(tmp_path / "v2.car"))[0] == 0
    assert (tmp_path / "v2.car").read_bytes()[:11] == bytes.fromhex("0aa16776657273696f6e02")


class _EndlessZeros:
    """stdin that never ends (like /dev/zero); reading past ``limit`` bytes fails the test."""

    def __init__(self, limit: int = 64 << 20) -> None:
        self.read_bytes = 0
        self.limit = limit

    def read(self, n: int = -1) -> bytes:
        n = 1 << 20 if n is None or n < 0 else n
        self.read_bytes += n
        if self.read_bytes > self.limit:
            raise AssertionError(f"read {self.read_bytes} bytes of an endless stdin")
        return bytes(n)


@pytest.mark.parametrize("argv", [["ls"], ["inspect"], ["roots", "-"], ["verify", "-"]])
def test_endless_garbage_on_stdin_is_refused_at_its_first_bytes(argv: list[str], capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a CAR on stdin was copied to a temporary file until EOF before its header was
    looked at: ``car ls < /dev/zero`` ran until the disk was full. Same message as the file."""
    import types

    zeros = _EndlessZeros()
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=zeros))
    code, _, err = run(capsys, *argv)
    assert code == 1 and err.startswith("Error: invalid header data at offset 0"), err
    assert zeros.read_bytes <= 16


def test_a_car_on_stdin_is_read_whole(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import types

    for name in ("sample-v1.car", "sample-wrapped-v2.car"):
        data = shared_path("fixtures", "go-car", name).read_bytes()
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data)))
        code, out, _ = run(capsys, "ls")
        assert code == 0 and len(out.splitlines()) == 1049


def test_extract_of_a_symlink_with_an_empty_target_is_a_clear_error(tmp_path: Path) -> None:
    """Regression: the message was the raw ``[Errno 2] … b'' -> b'…/.s.pyipld-….tmp'`` (bytes and
    the internal temporary name); ``get`` says what is wrong with the DAG."""
    from pyipld._cli.car import _write_symlink
    from pyipld.errors import UnsafePathError

    with pytest.raises(UnsafePathError, match="^symlink 's' has an empty or NUL-containing target$"):
        _write_symlink(str(tmp_path), "s", b"")
    assert list(tmp_path.iterdir()) == []
    _write_symlink(str(tmp_path), "t", b"elsewhere")
    assert os.readlink(tmp_path / "t") == "elsewhere"


class _CarThenEndless(_EndlessZeros):
    """A CAR's bytes, then zeros for ever (a live stream, or a CARv2's index that never ends)."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = data

    def read(self, n: int = -1) -> bytes:
        if self.data:
            n = len(self.data) if n is None or n < 0 else n
            part, self.data = self.data[:n], self.data[n:]
            return part
        return super().read(n)


@pytest.mark.parametrize(("name", "argv", "lines"), [
    ("sample-v1.car", ["roots", "-"], 1),
    ("sample-wrapped-v2.car", ["roots", "-"], 1),
    ("sample-wrapped-v2.car", ["ls"], 1049),
    ("sample-wrapped-v2.car", ["ls", "-v", "-"], None),
])
def test_ls_and_roots_read_stdin_as_it_comes(name: str, argv: list[str], lines: int | None,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: ``roots`` and ``ls`` copied all of stdin to a temporary file before answering, so
    ``car roots -`` of a stream that has not ended never printed, and a CARv2 followed by more
    bytes than the disk holds filled it. Now they read what they need, as go-car's block reader:
    the header for ``roots``, a CARv2's data payload for ``ls``; the output is the file's."""
    import types

    path = gocar(name)
    data = Path(path).read_bytes()
    stream = _CarThenEndless(data)
    monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=stream))
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert stream.read_bytes == 0 if argv[0] == "ls" else stream.read_bytes <= 16
    assert out == run(capsys, *[path if a == "-" else a for a in argv], *([] if "-" in argv else [path]))[1]
    if lines is not None:
        assert len(out.splitlines()) == lines


def test_a_truncated_car_v2_on_stdin_is_an_error(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Read as a stream, a cut CARv2 fails where its bytes end (go-car's block reader: the blocks
    before the cut are listed), in one line."""
    import io
    import types

    data = Path(gocar("sample-wrapped-v2.car")).read_bytes()
    for cut, message in [(30, "Error: unexpected EOF in CARv2 header at offset 11"),
                         (52, "Error: unexpected EOF"), (5000, "Error: unexpected EOF")]:
        monkeypatch.setattr(sys, "stdin", types.SimpleNamespace(buffer=io.BytesIO(data[:cut])))
        code, _, err = run(capsys, "ls")
        assert code == 1 and err.startswith(message) and len(err.splitlines()) == 1, (cut, err)


def _feed_fifo(path: Path, data: bytes) -> threading.Thread:
    def write() -> None:
        with contextlib.suppress(BrokenPipeError), open(path, "wb") as f:
            f.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("argv", [["roots"], ["ls"], ["ls", "--unixfs"], ["verify"], ["inspect"],
                                  ["extract", "-o", "OUT", "-f"], ["get-dag", "CAR", "OUT/x.car"]])
def test_a_pipe_is_read_as_a_stream(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Regression: ``car ls <(cat x.car)`` or a FIFO path failed with "File or stream is not seekable";
    it is read like ``-`` (go-car reads any file it can open)."""
    car = gocar("simple-unixfs.car")
    fifo = tmp_path / "pipe.car"
    os.mkfifo(fifo)

    def argv_for(source: str, out: Path) -> list[str]:
        out.mkdir()
        words = [source if a == "CAR" else a.replace("OUT", str(out)) for a in argv]
        return words if "CAR" in argv else [*words, source]

    want = run(capsys, *argv_for(car, tmp_path / "want"))
    writer = _feed_fifo(fifo, Path(car).read_bytes())
    got = run(capsys, *argv_for(str(fifo), tmp_path / "got"))
    writer.join(10)
    assert got[0] == want[0] == 0 and got[1] == want[1]
    tree = {p.relative_to(tmp_path / "want"): p.read_bytes() for p in (tmp_path / "want").rglob("*") if p.is_file()}
    assert tree == {p.relative_to(tmp_path / "got"): p.read_bytes() for p in (tmp_path / "got").rglob("*") if p.is_file()}


@pytest.mark.parametrize("argv", [["-f", "MISSING"], ["-f", "CAR", "no/such/path"]])
def test_failed_extract_leaves_no_new_output_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 argv: list[str]) -> None:
    """Regression: DIR (and its parents) was made first and stayed behind when the CAR was missing
    or unreadable, or nothing matched."""
    names = {"MISSING": str(tmp_path / "missing.car"), "CAR": gocar("simple-unixfs.car")}
    code, _, err = run(capsys, "extract", "-o", str(tmp_path / "new" / "dir"), *[names.get(a, a) for a in argv])
    assert code == 1 and err.startswith("Error: ")
    assert list(tmp_path.iterdir()) == []
