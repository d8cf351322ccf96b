"""Gaps of issue 9's audit: go-car's ``cmd/car/testdata/script`` get-dag, filter, get-block, root and
index-create scripts (go-car@d891b59) and the go-car flag names pyipld lacked; kubo's global options,
``-h``, ``ls --enc=json`` and ``get``'s refused TAR options (kubo v0.22.0, 3f884d3).

Each assertion names the script line it comes from. Every test failed on the code before the fix except
``test_get_block_root_and_index_create_scripts``, which puts scripts already passing under test.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from pyipld._cli.argv import parse
from pyipld.car.reader import CarFile
from pyipld.cid import CID
from pyipld.cli import build_parser, main
from tests._shared import fixture_path

SAMPLE_ROOT = "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy"  # root.txt v1root.txt
FILTERED = ["bafy2bzacebohz654namrgmwjjx4qmtwgxixsd7pn4tlanyrc3g3hwj75hlxrw",  # filter.txt filteredcids.txt
            "bafy2bzaceaqtiesyfqd2jibmofz22oolguzf5wscwh73rmeypglfu2xhkptri",
            "bafy2bzacebct3dm7izgyauijzkaf3yd7ylni725k66rq7dfp3jr5ywhpprj3k"]


def _car(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["car", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_get_dag_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """get-dag.txt L1-6: ``car get-dag sample-v1.car CID out.car`` is silent; the DAG is one block here."""
    cid = "bafy2bzaceaycv7jhaegckatnncu5yugzkrnzeqsppzegufr35lroxxnsnpspu"
    out = tmp_path / "out.car"
    assert _car(capsys, "get-dag", str(fixture_path("go-car", "sample-v1.car")), cid, str(out)) == (0, "", "")
    code, listed, err = _car(capsys, "list", str(out))
    assert code == 0 and err == "" and len(re.findall(rf"(?m)^{cid}$", listed)) == 1
    with CarFile(str(out)) as car:  # go-car's default --version is 2
        assert car.version == 2 and [str(r) for r in car.roots] == [cid]


def test_get_dag_defaults_follow_go_car(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """go-car cmd/car/get.go GetCarDag: the root CID is optional (the CAR's only root), a missing block
    is skipped unless --strict, a selector other than the default is refused here, version 1 or 2."""
    simple = str(fixture_path("go-car", "simple-unixfs.car"))
    missing = str(fixture_path("go-car", "simple-unixfs-missing-blocks.car"))
    two, three = tmp_path / "two.car", tmp_path / "three.car"
    with CarFile(simple) as car:
        (root,) = car.roots
    assert _car(capsys, "get-dag", "--version=1", simple, str(two))[0] == 0
    assert _car(capsys, "gd", "-version", "1", simple, str(root), str(three))[0] == 0
    assert two.read_bytes() == three.read_bytes()
    code, _, err = _car(capsys, "get-dag", missing, str(tmp_path / "m.car"))
    assert code == 0 and err == ""
    code, _, err = _car(capsys, "get-dag", "--strict", missing, str(tmp_path / "s.car"))
    assert code == 1 and re.fullmatch(r"Error: block was not found locally \(offline\): ipld: could not find \S+\n",
                                      err)
    assert not (tmp_path / "s.car").exists()
    code, _, err = _car(capsys, "get-dag", "-s", "{}", simple, str(tmp_path / "x.car"))
    assert code == 1 and err.startswith("Error: --selector is not supported")
    code, _, err = _car(capsys, "get-dag", "--version", "3", simple, str(tmp_path / "x.car"))
    assert code == 1 and err == "Error: invalid CAR version 3\n"
    absent = "bafkreifoybygix7fh3r3g5rqle3wcnhqldgdg4shzf4k3ulyw3gn7mabt4"
    code, _, err = _car(capsys, "get-dag", simple, absent, str(tmp_path / "x.car"))
    assert code == 1 and err.endswith(f"could not find {absent}\n") and not (tmp_path / "x.car").exists()


def test_filter_script(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """filter.txt L1-22: filter by stdin CIDs, by the root, then ``-append`` the first three."""
    import io
    import sys

    wrapped = str(fixture_path("go-car", "sample-wrapped-v2.car"))
    out = str(tmp_path / "out.car")

    def stdin(lines: list[str]) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(lines).encode())))

    stdin(FILTERED)
    code, said, err = _car(capsys, "filter", wrapped, out)
    assert code == 0 and "warning: no roots defined after filtering" in err
    assert said == f"filtering to {len(FILTERED)} cids\n"  # go-car cmd/car/filter.go prints it on stdout
    code, listed, err = _car(capsys, "list", out)
    assert (code, err, listed) == (0, "", "".join(c + "\n" for c in FILTERED))
    stdin([SAMPLE_ROOT])
    assert _car(capsys, "filter", wrapped, out) == (0, "filtering to 1 cids\n", "")
    assert _car(capsys, "list", out) == (0, SAMPLE_ROOT + "\n", "")
    stdin(FILTERED)
    assert _car(capsys, "filter", "-append", wrapped, out) == (0, f"filtering to {len(FILTERED)} cids\n", "")
    code, listed, _ = _car(capsys, "list", out)
    assert code == 0 and len(re.findall(r"(?m)^bafy", listed)) == 4
    with CarFile(out) as car:  # go-car's default --version 2; the appended file keeps its root
        assert car.version == 2 and [str(r) for r in car.roots] == [SAMPLE_ROOT]
    stdin(FILTERED)
    code, _, err = _car(capsys, "filter", "--append", "--version=1", wrapped, out)
    assert code == 1 and err == "Error: can only append to version 2 car files\n"
    stdin(FILTERED)
    code, said, _ = _car(capsys, "filter", "--inverse", wrapped, str(tmp_path / "inv.car"))
    assert (code, said) == (0, f"filtering out {len(FILTERED)} cids\n")


def test_get_block_root_and_index_create_scripts(tmp_path: Path,
                                                 capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    """get-block.txt L4-21, root.txt L1-5, index-create.txt L1-3."""
    v1, wrapped = str(fixture_path("go-car", "sample-v1.car")), str(fixture_path("go-car", "sample-wrapped-v2.car"))
    cid = FILTERED[0]
    block = fixture_path("go-car", f"{cid}.block").read_bytes()
    assert main(["car", "get-block", v1, cid, str(tmp_path / "out.block")]) == 0
    assert (tmp_path / "out.block").read_bytes() == block
    assert main(["car", "gb", v1, cid]) == 0
    assert capsysbinary.readouterr().out == block
    assert main(["car", "get-block", v1, cid[:-5] + "xxxxx"]) == 1
    assert "ipld: could not find" in capsysbinary.readouterr().err.decode()
    for car in (v1, wrapped):
        assert main(["car", "root", car]) == 0
        assert capsysbinary.readouterr() == ((SAMPLE_ROOT + "\n").encode(), b"")
    assert main(["car", "index", "create", v1, str(tmp_path / "a.idx")]) == 0
    assert main(["car", "detach-index", wrapped, str(tmp_path / "b.idx")]) == 0
    assert (tmp_path / "a.idx").read_bytes() == (tmp_path / "b.idx").read_bytes()


def test_go_car_flag_aliases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """go-car cmd/car/car.go: extract's -f has the aliases input and i; index's codec has c."""
    simple = str(fixture_path("go-car", "simple-unixfs.car"))
    for i, flag in enumerate(("-i", "--input", "-input")):
        dest = tmp_path / f"x{i}"
        dest.mkdir()
        code, _, err = _car(capsys, "extract", flag, simple, "-o", str(dest))
        assert code == 0 and "extracted 9 file(s)" in err
    v1 = str(fixture_path("go-car", "sample-v1.car"))
    assert _car(capsys, "index", "-c", "car-multihash-index-sorted", v1, str(tmp_path / "o.car"))[0] == 0
    with CarFile(str(tmp_path / "o.car")) as car:
        assert car.version == 2


def _ns(argv: list[str]) -> argparse.Namespace:
    parsed = parse(build_parser(), argv, lambda path: "goflag" if path[:1] == ["car"] else "cmds")
    return parsed.namespace


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30.0), ("1m30s", 90.0), ("250ms", 0.25), ("5", 5.0),
                                                ("0.5", 0.5)])
def test_fetch_timeout_takes_go_durations(text: str, seconds: float) -> None:
    """kubo's --timeout is a Go duration (t0276-cidv0v1.sh L111: ``--timeout=2s cat``); bare seconds stay."""
    for verb in ("cat", "get"):
        assert _ns([verb, f"--timeout={text}", "QmX"]).timeout == seconds
        assert _ns([f"--timeout={text}", verb, "QmX"]).timeout == seconds


@pytest.mark.parametrize("text", ["5x", "nan", "inf", "", "s"])
def test_bad_fetch_timeout_is_gos_message(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cat", f"--timeout={text}", "--blockstore=x", "QmX"]) == 1
    assert capsys.readouterr().err.startswith(f'Error: time: invalid duration "{text}"\n')


def test_global_options_before_the_verb() -> None:
    """kubo root.go: --cid-base, --upgrade-cidv0-in-output, --enc/--encoding and --timeout are global;
    before the verb they parse as the verb declares them (value words included)."""
    ns = _ns(["--cid-base", "base32", "--enc", "json", "--timeout", "3s", "--upgrade-cidv0-in-output=false",
              "add", "f"])
    assert (ns.cid_base, ns.enc, ns.timeout, ns.upgrade_cids, ns.paths) == ("base32", "json", "3s", False, ["f"])
    assert _ns(["--cid-base=base36", "ls", "QmX"]).cid_base == "base36"
    with pytest.raises(Exception, match='multiple values for option "cid-base"'):
        _ns(["--cid-base=base32", "add", "--cid-base=base36", "f"])
    with pytest.raises(Exception, match="flag provided but not defined: -timeout"):
        _ns(["--timeout=1s", "car", "verify", "x.car"])
    with pytest.raises(Exception, match='unknown option "nope"'):
        _ns(["--nope", "add", "f"])


def test_help_is_a_boolean(capsys: pytest.CaptureFixture[str]) -> None:
    """kubo: h and help are Bool options, so ``-h`` never takes the next word and ``-h=false`` is off."""
    for argv in (["add", "-h"], ["ls", "-h"], ["cat", "-h"], ["get", "-h"], ["-h", "add"]):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        verb = argv[0] if argv[0] != "-h" else argv[1]
        assert out.startswith(f"usage: pyipld {verb} "), argv
    assert main(["add", "-h=false", "--help=0", "-Q", "-n", str(fixture_path("go-car", "sample-v1.car"))]) == 0
    assert capsys.readouterr().out.startswith("Qm")


def test_get_refuses_tar_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo get.go: -a/--archive, -C/--compress, -l/--compression-level parse as kubo's; pyipld refuses them
    with a reason before anything is written (they were unknown options)."""
    f = tmp_path / "f"
    f.write_bytes(b"x\n")
    bs = str(tmp_path / "bs")
    assert main(["add", "-Q", f"--blockstore={bs}", str(f)]) == 0
    cid = capsys.readouterr().out.strip()
    for flags in (["-a"], ["-C"], ["-l", "5"], ["-aC"], ["--archive=true"]):
        assert main(["get", f"--blockstore={bs}", *flags, cid, "-o", str(tmp_path / "o")]) == 1, flags
        assert capsys.readouterr() == ("", ("Error: TAR/gzip output (-a/--archive, -C/--compress, -l/--compression-level) "
                                           "is not supported: get writes the files, or a CAR with --car OUT.car\n"))
        assert not (tmp_path / "o").exists()
    assert main(["get", f"--blockstore={bs}", "--archive=false", "-q", cid, "-o", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o").read_bytes() == b"x\n"


def test_ls_json_symlink_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo coreapi processLink: a resolved symlink is TSymlink (unixfs type 4) with its Target."""
    import json
    import os

    d = tmp_path / "d"
    d.mkdir()
    os.symlink("some/where", d / "ln")
    bs = str(tmp_path / "bs")
    assert main(["add", "-rQ", f"--blockstore={bs}", str(d)]) == 0
    root = capsys.readouterr().out.strip()
    assert main(["ls", f"--blockstore={bs}", "--enc=json", root]) == 0
    (obj,) = json.loads(capsys.readouterr().out)["Objects"]
    (link,) = obj["Links"]
    assert (obj["Hash"], link["Name"], link["Type"], link["Target"], link["Size"]) == (root, "ln", 4, "some/where", 0)


@pytest.mark.parametrize(("flag", "message"), [
    ("--cid-version=4294967297", 'strconv.ParseInt: parsing "4294967297": value out of range'),  # IntOption: 32 bits
    ("--inline-limit=2147483648", 'strconv.ParseInt: parsing "2147483648": value out of range'),
    ("--max-file-links=-2147483649", 'strconv.ParseInt: parsing "-2147483649": value out of range'),
    ("--mtime-nsecs=-1", 'strconv.ParseUint: parsing "-1": invalid syntax'),  # UintOption
    ("--mode=+0644", 'strconv.ParseUint: parsing "+0644": invalid syntax'),
    ("--mode=4294967296", 'strconv.ParseUint: parsing "4294967296": value out of range'),
    ("--mode=0x", 'strconv.ParseUint: parsing "0x": invalid syntax'),
])
def test_kubo_int_and_uint_options(flag: str, message: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """go-ipfs-cmds option.go converters: IntOption is strconv.ParseInt(v, 0, 32), UintOption
    strconv.ParseUint(v, 0, 32) (kubo add.go declares cid-version, inline-limit, max-file-links as Int,
    mode and mtime-nsecs as Uint); the error is Go's, a usage error before anything is read."""
    f = tmp_path / "f"
    f.write_bytes(b"x")
    assert main(["add", flag, "--mtime=1", str(f)]) == 1
    assert capsys.readouterr().err.startswith(f"Error: {message}\n\nUSAGE\n")


def test_mtime_nsecs_of_a_second_or_more_is_kubos_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    assert main(["add", "-Q", "--mtime=1", "--mtime-nsecs=2000000000", str(f)]) == 1
    assert capsys.readouterr().err == "Error: mtime nanoseconds must be in range [1, 999999999]\n"


def test_kubo_uint_values() -> None:
    from pyipld._cli.argv import go_int32, go_uint32

    assert go_uint32("0644") == 0o644 and go_uint32("0o755") == 0o755 and go_uint32("4294967295") == 2**32 - 1
    assert go_int32("-2147483648") == -(2**31) and go_int32("0x1") == 1 and go_int32("1_0") == 10


def test_inspect_reads_stdin_without_an_argument(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """go-car cmd/car/inspect.go: ``inStream := os.Stdin`` unless a file is named; inspect.txt's v1 report."""
    import io
    import sys

    data = fixture_path("go-car", "sample-v1.car").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, err = _car(capsys, "inspect")
    assert (code, err) == (0, "")
    assert out.startswith(f"Version: 1\nRoots: {SAMPLE_ROOT}\nRoot blocks present in data: Yes\nBlock count: 1049\n")


def test_ls_unixfs_is_go_cars_walk(capsys: pytest.CaptureFixture[str]) -> None:
    """go-car cmd/car/list.go printUnixFSNode: every root's directory links in link order, depth first,
    ``path.Join``-ed names; ``--unixfs-blocks`` puts each link's CID first. simple-unixfs.car's tree is in
    tests/fixtures/MANIFEST.md (a/1/A.txt … c/9/I.txt). Coverage: this already passed before the audit."""
    car = str(fixture_path("go-car", "simple-unixfs.car"))
    expected = [p for d, files in (("a", "1A 2B 3C"), ("b", "4D 5E 6F"), ("c", "7G 8H 9I"))
                for p in [d] + [q for nf in files.split() for q in (f"{d}/{nf[0]}", f"{d}/{nf[0]}/{nf[1]}.txt")]]
    assert _car(capsys, "ls", "--unixfs", car) == (0, "".join(p + "\n" for p in expected), "")
    code, out, _ = _car(capsys, "ls", "--unixfs-blocks", car)
    assert code == 0 and [line.split(" ", 1)[1] for line in out.splitlines()] == expected
    assert out.startswith("QmSL6Qo3cnpAe5azJhj4zTF38Dv5ZWrNMnoHqw6D6R7fBn a\n")  # a's link in the root (ls -v)


def test_ls_takes_kubos_global_timeout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo's --timeout is global (root.go), so ``ipfs ls --timeout=10s CID`` parses; ls refused it."""
    src = tmp_path / "d"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    bs = str(tmp_path / "bs")
    assert main(["add", "-r", "-Q", f"--blockstore={bs}", str(src)]) == 0
    root = capsys.readouterr().out.strip()
    assert main(["ls", "--timeout=10s", f"--blockstore={bs}", root]) == 0
    listed = capsys.readouterr().out
    assert main(["--timeout", "1m", "ls", f"--blockstore={bs}", root]) == 0
    assert capsys.readouterr().out == listed and listed.endswith(" a\n")
    assert main(["ls", "--timeout=0s", f"--blockstore={bs}", root]) == 1  # a Go context expires at once
    assert capsys.readouterr().err == "Error: context deadline exceeded\n"
    assert main(["ls", "--timeout=soon", f"--blockstore={bs}", root]) == 1
    assert capsys.readouterr().err == 'Error: time: invalid duration "soon"\n'


def test_filter_to_stdout_keeps_the_car_clean(tmp_path: Path) -> None:
    """``car filter IN -`` (pyipld writes `-` to stdout): go-car's "filtering to N cids" line goes to
    stderr then, or it would be the first bytes of the CAR (it was)."""
    import io
    import subprocess
    import sys

    wrapped = str(fixture_path("go-car", "sample-wrapped-v2.car"))
    done = subprocess.run([sys.executable, "-m", "pyipld", "car", "filter", "--version", "1", wrapped, "-"],
                          input="\n".join(FILTERED).encode(), capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode() == f"filtering to {len(FILTERED)} cids\nwarning: no roots defined after filtering\n"
    with CarFile(io.BytesIO(done.stdout)) as car:  # the CAR alone: the blocks asked for, in file order
        assert [str(CID.from_bytes(h.cid)) for h in car.iter_heads()] == FILTERED


def test_get_reads_its_path_and_names_its_output_as_kubo(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: ``get CID/sub/../sub/f`` failed with a Python bytes repr, and ``-p``/``--progress``
    (kubo v0.22.0 core/commands/get.go L57, a BoolOption defaulting to true) was an unknown option.
    kubo reads the path with boxo's ParsePath (cleaned segments) and names DEST with getOutPath
    (get.go L178-186: the argument's last element as typed, trailing ``/`` trimmed, cleaned)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "f").write_bytes(b"hello")
    bs = str(tmp_path / "bs")
    assert main(["add", "-r", "-Q", "--blockstore", bs, str(src)]) == 0
    root = capsys.readouterr().out.strip()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert main(["get", "--blockstore", bs, f"{root}/sub/../sub/f"]) == 0
    assert capsys.readouterr().out == "Saving file(s) to f\n" and (work / "f").read_bytes() == b"hello"
    assert main(["get", "-p=false", "--blockstore", bs, f"/ipfs/{root}/sub/"]) == 0
    assert capsys.readouterr().out == "Saving file(s) to sub\n" and (work / "sub" / "f").read_bytes() == b"hello"
    assert main(["get", "-p", "--blockstore", bs, "-o", "g", f"{root}/./sub/f"]) == 0
    assert (work / "g").read_bytes() == b"hello" and capsys.readouterr().out == "Saving file(s) to g\n"
    assert main(["get", "--blockstore", bs, f"/{root}"]) == 1
    assert capsys.readouterr().err == f'Error: invalid path "/{root}": invalid ipfs path\n'
