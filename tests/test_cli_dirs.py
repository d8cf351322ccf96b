"""CLI: ``add -r`` (kubo's output), ``ls`` and ``get`` with a directory blockstore."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld.cli import main


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "mars.txt").write_bytes(b"Hello Mars!\n")
    (root / "venus.txt").write_bytes(b"Hello Venus!\n")
    (root / "sub" / "deep.txt").write_bytes(b"deep")
    (root / ".secret").write_bytes(b"s")
    os.symlink("mars.txt", root / "link")
    return root


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def test_add_recursive_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _tree(tmp_path / "planets")
    code, lines, _ = _run(capsys, "add", "-r", str(d))
    assert code == 0
    paths = [line.split(" ", 2)[2] for line in lines]
    assert paths == ["planets/link", "planets/mars.txt", "planets/sub/deep.txt", "planets/venus.txt",
                     "planets/sub", "planets"]
    assert lines[1] == "added QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN planets/mars.txt"
    code, q, _ = _run(capsys, "add", "-r", "-q", str(d))
    assert q == [line.split()[1] for line in lines]
    code, qq, _ = _run(capsys, "add", "-r", "-Q", str(d))
    assert qq == [lines[-1].split()[1]]
    code, hidden, _ = _run(capsys, "add", "-r", "-Q", "-H", str(d))
    assert hidden != qq


def test_add_directory_without_r_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "add", str(_tree(tmp_path / "d")))
    assert code == 1 and "-r" in err and err.startswith("Error:")


def test_add_wrap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _tree(tmp_path / "d")
    _, lines, _ = _run(capsys, "add", "-w", str(d / "mars.txt"), str(d / "venus.txt"))
    assert lines[-1] == "added QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY "  # kubo: empty wrapper name


def test_add_hamt_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "mars.txt").write_bytes(b"Hello Mars!\n")
    (d / "venus.txt").write_bytes(b"Hello Venus!\n")
    # links estimate = 8+34 + 9+34 = 85
    _, at, _ = _run(capsys, "add", "-r", "-Q", "--hamt-threshold", "85", str(d))
    _, incl, _ = _run(capsys, "add", "-r", "-Q", "--hamt-threshold", "85", "--hamt-threshold-inclusive", str(d))
    assert at == ["QmWSgS32xQEcXMeqd3YPJLrNBLSdsfYCep2U7CFkyrjXwY"] and incl != at
    _, fan, _ = _run(capsys, "add", "-r", "-Q", "--hamt-threshold", "1", "--max-hamt-fanout", "16", str(d))
    _, blk, _ = _run(capsys, "add", "-r", "-Q", "--hamt-threshold", "100", "--hamt-estimation", "block", str(d))
    _, links, _ = _run(capsys, "add", "-r", "-Q", "--max-directory-links", "1", str(d))
    assert fan != incl and blk != at and links == incl
    code, _, err = _run(capsys, "add", "-r", "--max-hamt-fanout", "100", str(d))
    assert code == 1 and "fanout" in err


def test_empty_dirs_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _tree(tmp_path / "d")
    (d / "empty").mkdir()
    _, with_empty, _ = _run(capsys, "add", "-r", str(d))
    _, without, _ = _run(capsys, "add", "-r", "-E=false", str(d))
    assert any(line.endswith(" d/empty") for line in with_empty)
    assert not any(line.endswith(" d/empty") for line in without)


def test_ls_and_get(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _tree(tmp_path / "d")
    bs = str(tmp_path / "bs")
    _, lines, _ = _run(capsys, "add", "-r", "-H", "--blockstore", bs, "--hamt-threshold", "1", str(d))
    root = lines[-1].split()[1]
    code, listing, _ = _run(capsys, "ls", "--blockstore", bs, root)
    assert code == 0
    rows = {line.split()[-1]: line.split() for line in listing}
    assert set(rows) == {".secret", "link", "mars.txt", "sub/", "venus.txt"}
    assert rows["mars.txt"][:2] == ["QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN", "12"]
    _, sub, _ = _run(capsys, "ls", "--blockstore", bs, "-l", f"{root}/sub")
    assert sub[0].split()[0] == "file" and sub[0].endswith("deep.txt")
    out = tmp_path / "out"
    code, _, err = _run(capsys, "get", "--blockstore", bs, root, "-o", str(out))
    assert code == 0 and "4 files" in err
    assert (out / "sub" / "deep.txt").read_bytes() == b"deep" and os.readlink(out / "link") == "mars.txt"
    code, _, _ = _run(capsys, "get", "--blockstore", bs, f"{root}/sub/deep.txt", "-o", str(tmp_path / "one"))
    assert (tmp_path / "one").read_bytes() == b"deep"
    code, _, err = _run(capsys, "get", "--blockstore", bs, f"{root}/nope", "-o", str(tmp_path / "x"))
    assert code == 1 and "no link named" in err


def test_list_path_api(tmp_path: Path) -> None:
    from pyipld._cli.ls import list_path
    from pyipld.blockstore import MemoryBlockstore
    from pyipld.unixfs.params import ImportParams
    from pyipld.unixfs.tree import import_directory

    store = MemoryBlockstore()
    d = _tree(tmp_path / "d")
    root = import_directory(d, ImportParams(max_directory_links=1), store)  # a HAMT root
    listed = {e.name: (e.kind, e.size) for e in list_path(store, str(root.cid))}
    # kubo 0.22 processLink: size = FSNode.FileSize(), 0 for a symlink and a directory
    assert listed == {b"link": ("symlink", 0), b"mars.txt": ("file", 12), b"sub": ("directory", 0),
                      b"venus.txt": ("file", 13)}
    assert list(list_path(store, f"{root.cid}/sub/deep.txt")) == []  # a one-block file has no links to list
    quick = {e.name: e.kind for e in list_path(store, str(root.cid), resolve_type=False)}
    assert set(quick.values()) == {"other"}


def test_stdin_wrap_with_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    (tmp_path / "mars.txt").write_bytes(b"Hello Mars!\n")
    _, from_file, _ = _run(capsys, "add", "-w", str(tmp_path / "mars.txt"))

    class _Stdin:
        buffer = io.BytesIO(b"Hello Mars!\n")

    monkeypatch.setattr(sys, "stdin", _Stdin)
    _, from_stdin, _ = _run(capsys, "add", "-w", "--stdin-name", "mars.txt")
    assert from_stdin == from_file
    assert from_stdin[0] == "added QmPrrHqJzto9m7SyiRzarwkqPcCSsKR2EB1AyqJfe8L8tN mars.txt"


def _with_stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    import io
    import sys

    class _Stdin:
        buffer = io.BytesIO(data)

    monkeypatch.setattr(sys, "stdin", _Stdin)


# kubo 0.22 (shared/tools/kubo_oracle.py cid DIR) of the trees {a: {b: "hello\n"}} and, with
# --cid-version 1, {a: {c: {b: "hello\n"}}}: what `ipfs add -w --stdin-name a/b` wraps (coreunix
# addNode joins the name into the wrapper and mfs.Mkdir's its parents).
@pytest.mark.parametrize(("name", "extra", "expected"), [
    ("a/b", [], ["added QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN a/b",
                 "added QmSURpgzHJHuDUjLgL2Au8ddSAs4SPHoWSRA21RGVwzSGa a",
                 "added QmVEi6ieoiUFSQn37rcqUQbtqWud6RLLr1sYcMTNVyEuqj "]),
    ("/a//c/./b", ["--cid-version", "1"],
     ["added bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am a/c/b",
      "added bafybeie6kkkybfrlzyntzkain75zng2kslnarmkepzvvutczon4finkqee a/c",
      "added bafybeiboqisshykrxbm2k2xakeav67l7oww6r5xtfxpy4edxr2c546ekqe a",
      "added bafybeifte6vpr7mdf6c2fgbwh4tvxmi3sononprs4bqxuvvgknuhqzbvyq "]),
])
def test_stdin_wrap_with_a_nested_name(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       name: str, extra: list[str], expected: list[str]) -> None:
    """Regression: `add -w --stdin-name a/b` printed the file's line, then failed with
    "invalid directory entry name b'a/b'"."""
    _with_stdin(monkeypatch, b"hello\n")
    code, out, err = _run(capsys, "add", "-w", "--stdin-name", name, *extra)
    assert (code, out, err) == (0, expected, "")


@pytest.mark.parametrize(("argv", "message"), [
    (["--stdin-name", "../b"], "Error: --stdin-name '../b' with -w names no entry inside the wrapping directory"),
    (["--stdin-name", "/"], "Error: --stdin-name '/' with -w names no entry inside the wrapping directory"),
    (["--stdin-name", "a/b", "-", "OTHER"],
     ("Error: -w with stdin among other paths takes a --stdin-name without '/' "
      "(a nested name is made only when stdin is added alone)")),
])
def test_stdin_wrap_names_refused_before_any_output(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                    message: str) -> None:
    (tmp_path / "other").write_bytes(b"x")
    _with_stdin(monkeypatch, b"hello\n")
    code, out, err = _run(capsys, "add", "-w", *[str(tmp_path / "other") if a == "OTHER" else a for a in argv])
    assert (code, out, err.strip()) == (1, [], message)


@pytest.mark.parametrize(("first_stdin", "kind", "message"), [
    (True, "file", "Error: directory already has entry by that name"),  # boxo mfs Directory.AddChild
    (False, "file", "Error: directory already has entry by that name"),
    (True, "dir", "Error: file already exists"),  # boxo mfs Mkdir over a file: os.ErrExist
])
def test_stdin_wrap_name_clash_gives_kubos_mfs_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch, first_stdin: bool,
                                                      kind: str, message: str) -> None:
    """`add -w --stdin-name N - PATH` with PATH also named N: kubo adds the first (argv order, names
    sorted stably) and fails on the second with boxo v0.11.0 mfs's error; pyipld said "duplicate name"."""
    other = tmp_path / "n"
    if kind == "dir":
        other.mkdir()
        (other / "g").write_bytes(b"3\n")
    else:
        other.write_bytes(b"1\n")
    _with_stdin(monkeypatch, b"hi\n")
    paths = ["-", str(other)] if first_stdin else [str(other), "-"]
    code, out, err = _run(capsys, "add", "-w", "-r", "--stdin-name", "n", *paths)
    first = ("added QmZLRFWaz9Kypt2ACNMDzA5uzACDRiCqwdkNSP1UZsu56D n" if first_stdin  # echo hi | ipfs add
             else "added QmdytmR4wULMd3SLo6ePF4s3WcRHWcpnJZ7bHhoj3QB13v n")  # echo 1 | ipfs add
    assert (code, out, err.strip()) == (1, [first], message)
