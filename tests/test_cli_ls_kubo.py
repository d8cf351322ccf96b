"""``pyipld ls`` against kubo 0.22's ``ipfs ls`` rules.

The oracle cannot run ``ipfs ls``, so these cases follow kubo v0.22.0's source:
``core/commands/ls.go`` (entries of each directory sorted by name, ``--size`` on by
default, children resolved when ``--size`` or ``--resolve-type``) and
``core/coreapi/unixfs.go`` ``processLink`` (a raw child: type file, size = the link's
Tsize, block not loaded; a dag-pb child: size = ``FSNode.FileSize()``, the UnixFS
``filesize`` field, so 0 for a symlink; ``Ls`` of a node that is not a directory lists
that node's links, e.g. a file's chunks with empty names).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyipld.blockstore import DirectoryBlockstore
from pyipld.cid import CID
from pyipld.cli import main
from pyipld.dagpb import decode_pbnode


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    out, _ = capsys.readouterr()
    return code, out.splitlines()


def _add(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, lines = _run(capsys, "add", "-Q", *argv)
    assert code == 0
    return lines[-1]


def test_hamt_listing_is_sorted_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    names = [f"n{i}" for i in range(60)]
    for n in names:
        (d / n).write_bytes(n.encode())
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--blockstore", bs, "--hamt-threshold", "1", "--max-hamt-fanout", "8", str(d))
    code, lines = _run(capsys, "ls", "--blockstore", bs, root)
    assert code == 0
    assert [line.split()[-1] for line in lines] == sorted(names)  # kubo: sort.Slice by Name


def test_symlink_size_is_its_filesize_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_bytes(b"hello")
    os.symlink("f-target-name", d / "link")
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--blockstore", bs, str(d))
    code, lines = _run(capsys, "ls", "--blockstore", bs, root)
    assert code == 0
    rows = {line.split()[-1]: line.split() for line in lines}
    assert rows["link"][1] == "0"       # FSNode.FileSize() of a symlink (no filesize field)
    assert rows["f"][1] == "5"


def test_raw_child_uses_link_tsize_without_loading_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "f").write_bytes(b"hello world")
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--cid-version", "1", "--blockstore", bs, str(d))
    link = decode_pbnode(DirectoryBlockstore(bs, create=False).get(CID.decode(root).bytes)).links[0]
    leaf = [p for p in Path(bs).rglob("*") if p.is_file() and p.read_bytes() == b"hello world"]
    assert len(leaf) == 1
    leaf[0].unlink()
    code, lines = _run(capsys, "ls", "--blockstore", bs, root)
    assert code == 0, lines                # kubo never fetches a raw child
    assert lines[0].split() == [CID.from_bytes(link.cid).encode(), "11", "f"]


def test_file_lists_its_chunk_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "f"
    f.write_bytes(bytes(range(256)) * 2)
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-s", "size-100", "--raw-leaves", "--blockstore", bs, str(f))
    store = DirectoryBlockstore(bs, create=False)
    links = decode_pbnode(store.get(CID.decode(root).bytes)).links
    code, lines = _run(capsys, "ls", "--blockstore", bs, root)
    assert code == 0
    assert [line.split() for line in lines] == [[CID.from_bytes(x.cid).encode(), str(x.tsize)] for x in links]
    one = _add(capsys, "--blockstore", bs, str(tmp_path / "f"), "-s", "size-1000")
    assert _run(capsys, "ls", "--blockstore", bs, one) == (0, [])  # one block: no links, nothing listed


def test_resolve_type_false_still_resolves_for_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "f").write_bytes(b"abc")
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--blockstore", bs, str(d))
    _, default = _run(capsys, "ls", "--blockstore", bs, root)
    _, untyped = _run(capsys, "ls", "--blockstore", bs, "--resolve-type=false", root)
    assert untyped == default              # --size (default true) resolves the children anyway
    _, bare = _run(capsys, "ls", "--blockstore", bs, "--resolve-type=false", "--size=false", "-v", root)
    assert [line.split() for line in bare] == [["Hash", "Name"], [default[0].split()[0], "f"],
                                               [default[1].split()[0], "sub"]]
    _, nosize = _run(capsys, "ls", "--blockstore", bs, "--size=false", root)
    assert [line.split()[1] for line in nosize] == ["f", "sub/"]


def test_cat_takes_an_ipfs_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ipfs cat`` takes an IPFS path (``CID/name``, ``/ipfs/CID/name``), not only a CID."""
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f.txt").write_bytes(b"deep bytes")
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--blockstore", bs, str(d))
    for path in (f"{root}/sub/f.txt", f"/ipfs/{root}/sub/f.txt"):
        code = main(["cat", "--blockstore", bs, "-o", "5", path])
        out = capsys.readouterr()
        assert (code, out.out, out.err) == (0, "bytes", "")
    code = main(["cat", "--blockstore", bs, f"{root}/sub/nope"])
    assert code == 1 and "nope" in capsys.readouterr().err


def test_paths_are_read_as_boxo_parse_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """kubo 0.22 reads an ``ipfs-path`` with boxo v0.11 ``path/path.go``: ``ParsePath`` (L87-131: a
    leading ``/`` needs ``/ipfs/CID``, else ``invalid ipfs path`` / ``unknown namespace``) and
    ``Segments`` (L35-46: ``path.Clean``, so ``.`` and ``..`` are resolved before the walk)."""
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "x").write_bytes(b"abc")
    (d / "f").write_bytes(b"hello")
    bs = str(tmp_path / "bs")
    root = _add(capsys, "-r", "--blockstore", bs, str(d))
    for path, data in ((f"{root}/sub/./x", "abc"), (f"{root}/sub/../f", "hello"), (f"/ipfs/{root}//sub/x", "abc")):
        assert main(["cat", "--blockstore", bs, path]) == 0
        assert capsys.readouterr().out == data
    assert _run(capsys, "ls", "--blockstore", bs, f"{root}/sub/..") == _run(capsys, "ls", "--blockstore", bs, root)
    for path, error in ((f"/{root}", f'invalid path "/{root}": invalid ipfs path'),
                        (f"/foo/{root}", f'invalid path "/foo/{root}": unknown namespace "foo"'),
                        ("/ipfs/", 'invalid path "/ipfs/": not enough path components'),
                        (f"{root}/..", f'invalid path "{root}/..": empty')):
        for verb in ("ls", "cat"):
            assert main([verb, "--blockstore", bs, path]) == 1
            out, err = capsys.readouterr()
            assert (out, err) == ("", f"Error: {error}\n")
