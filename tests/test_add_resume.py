"""``pyipld add -r DIR --car OUT`` continued after a kill or a Ctrl-C (pyipld/car/resume.py).

Every test compares with an uninterrupted run byte for byte: the CAR (v1 and v2) and the
``added`` lines. Interruptions: SIGKILL of a subprocess after the N-th block (test hook)
or after N output lines (timing), KeyboardInterrupt in process, and — modelling what a
SIGKILL can leave — the partial CAR and the journal cut at random lengths or damaged.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyipld import cli
from pyipld.car import resume

from ._deterministic import chacha_bytes

ROOT = Path(__file__).resolve().parents[1]
HOOK = "PYIPLD_TEST_ABORT_AFTER_PUTS"


def make_tree(root: Path, seed: str = "resume") -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    for i in range(24):
        (root / f"f{i:02}.bin").write_bytes(chacha_bytes(f"{seed}-{i}", 37 * i * i))
    (root / "sub" / "big.bin").write_bytes(chacha_bytes(f"{seed}-big", 700_000))
    (root / "sub" / "same.bin").write_bytes(chacha_bytes(f"{seed}-big", 700_000))  # all its blocks are dups
    (root / "sub" / "empty").write_bytes(b"")
    (root / "sub" / "deeper" / "x.txt").write_bytes(b"x\n")
    os.symlink("f01.bin", root / "link")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "data")


@pytest.fixture(autouse=True)
def _trust_fresh_files(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files here are seconds old: without this every journal line would be 'racy'
    (re-read and compared instead of skipped — still correct, see the test that keeps it)."""
    monkeypatch.setattr(resume, "RACY_WINDOW_NS", 0)
    monkeypatch.delenv(HOOK, raising=False)


def add(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["add", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def reference(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[bytes, str]:
    out = tmp_path / "reference.car"
    rc, stdout, _ = add(capsys, *argv, "--car", str(out))
    assert rc == 0
    return out.read_bytes(), stdout


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def interrupt_at(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, n: int,
                 *argv: str) -> int:
    monkeypatch.setenv(HOOK, f"{n}:int")
    try:
        rc, _, _ = add(capsys, *argv)
    finally:
        monkeypatch.delenv(HOOK)
    return rc


def temp_and_journal(directory: Path) -> tuple[Path, Path]:
    names = leftovers(directory)
    journal = [n for n in names if n.endswith(resume.JOURNAL_SUFFIX)]
    car = [n for n in names if n.endswith(".pyipld-tmp") and n not in journal]
    assert len(journal) == 1 and len(car) == 1, names
    return directory / car[0], directory / journal[0]


# -- Ctrl-C in process, at every kind of point ----------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_interrupted_then_rerun_equals_an_uninterrupted_run(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path,
        version: str) -> None:
    flags = ["-r", str(tree), "--car-version", version]
    want_car, want_out = reference(capsys, tmp_path, *flags)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "o.car"
    for n in (1, 2, 9, 20, 33):  # header only, first file, mid-tree, inside big.bin, last blocks
        assert interrupt_at(capsys, monkeypatch, n, *flags, "--car", str(target)) == 130
        assert not target.exists()
        rc, stdout, err = add(capsys, *flags, "--car", str(target))
        assert rc == 0, err
        assert target.read_bytes() == want_car and stdout == want_out, n
        assert leftovers(out_dir) == []  # temporary CAR and journal gone
        target.unlink()


def test_a_resumed_run_skips_the_files_it_finished(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 26, "-r", str(tree), "--car", str(target)) == 130
    _, err = capsys.readouterr()
    rc, stdout, err = add(capsys, "-r", str(tree), "--car", str(target))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car
    assert "continued" in err and " 0 files" not in err


def test_interrupted_twice_and_with_a_wrapper(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    flags = ["-r", "-w", str(tree / "sub"), str(tree / "f05.bin"), "--cid-version", "1"]
    want_car, want_out = reference(capsys, tmp_path, *flags)
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 3, *flags, "--car", str(target)) == 130
    assert interrupt_at(capsys, monkeypatch, 2, *flags, "--car", str(target)) == 130  # counts new puts only
    rc, stdout, _ = add(capsys, *flags, "--car", str(target))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car


def test_racy_files_are_read_again_and_the_car_is_still_identical(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    monkeypatch.setattr(resume, "RACY_WINDOW_NS", resume.DEFAULT_RACY_WINDOW_NS)  # files seconds old: all racy
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 26, "-r", str(tree), "--car", str(target)) == 130
    rc, stdout, err = add(capsys, "-r", str(tree), "--car", str(target))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car
    assert "continued" in err and ": 0 files" in err  # nothing trusted, everything compared


# -- what changed between the runs ------------------------------------------------------------------------


def test_a_file_changed_between_runs_is_imported_again(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 30, "-r", str(tree), "--car", str(target)) == 130
    victim = tree / "f03.bin"
    st = victim.stat()
    victim.write_bytes(b"Y" * st.st_size)  # same size, same mtime: only ctime tells
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    (tree / "f04.bin").unlink()
    (tree / "new.bin").write_bytes(b"new")
    rc, stdout, _ = add(capsys, "-r", str(tree), "--car", str(target))
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car


def test_a_new_symlink_early_in_the_tree_is_written_where_it_belongs(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 30, "-r", str(tree), "--car", str(target)) == 130
    os.symlink("f01.bin", tree / "a-link")  # same target as `link`, which comes later
    rc, stdout, _ = add(capsys, "-r", str(tree), "--car", str(target))
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car


@pytest.mark.parametrize("change", [["-s", "size-1000"], ["--cid-version", "1"], ["--car-version", "2"],
                                    ["--hamt-threshold", "1"], ["--raw-leaves"], ["-H"]])
def test_changed_parameters_start_over(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path, tree: Path, change: list[str]) -> None:
    target = tmp_path / "o.car"
    assert interrupt_at(capsys, monkeypatch, 30, "-r", str(tree), "--car", str(target)) == 130
    rc, stdout, err = add(capsys, "-r", str(tree), *change, "--car", str(target))
    assert rc == 0 and "starting" in err and "changed" in err
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree), *change)
    assert stdout == want_out and target.read_bytes() == want_car


def test_an_error_keeps_the_partial_car_unless_no_resume(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                         tree: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "o.car"
    os.mkfifo(tree / "zz-fifo")  # refused when the walk reaches it, after every other file
    rc, _, err = add(capsys, "-r", str(tree), "--car", str(target), "--no-resume")
    assert rc == 1 and "unrecognized file type" in err and leftovers(out_dir) == []
    rc, _, err = add(capsys, "-r", str(tree), "--car", str(target))
    assert rc == 1 and "run the same command again" in err and len(leftovers(out_dir)) == 2
    (tree / "zz-fifo").unlink()
    rc, stdout, err = add(capsys, "-r", str(tree), "--car", str(target))
    assert rc == 0 and "continued" in err
    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    assert stdout == want_out and target.read_bytes() == want_car and leftovers(out_dir) == []
    rc, _, err = add(capsys, "-r", str(tree), "--car", str(target), "--no-resume")
    assert rc == 0 and "continued" not in err and target.read_bytes() == want_car


def test_with_a_blockstore_files_are_read_again_so_the_store_gets_every_block(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    from pyipld.blockstore import DirectoryBlockstore
    from pyipld.car.reader import open_car

    want_car, want_out = reference(capsys, tmp_path, "-r", str(tree))
    target, blocks = tmp_path / "o.car", tmp_path / "blocks"
    assert interrupt_at(capsys, monkeypatch, 26, "-r", str(tree), "--car", str(target),
                        "--blockstore", str(blocks)) == 130
    shutil.rmtree(blocks)  # a store emptied between the runs still ends up complete
    rc, stdout, err = add(capsys, "-r", str(tree), "--car", str(target), "--blockstore", str(blocks))
    assert rc == 0 and stdout == want_out and target.read_bytes() == want_car
    assert "continued" in err and ": 0 files" in err
    store = DirectoryBlockstore(blocks, create=False)
    with open_car(target) as car:
        for section in car.iter_sections():
            assert store.get(section.cid) == bytes(section.data)


def test_a_failure_before_any_file_keeps_nothing(capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a").write_bytes(b"a")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert interrupt_at(capsys, monkeypatch, 1, "-r", str(tmp_path / "in"), "--car", str(out_dir / "o.car")) == 130
    assert leftovers(out_dir) == []


def test_commp_after_a_resume_is_the_cars(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path, tree: Path) -> None:
    target = tmp_path / "o.car"
    rc, _, want_err = add(capsys, "-r", str(tree), "--car", str(tmp_path / "ref.car"), "--commp")
    assert interrupt_at(capsys, monkeypatch, 20, "-r", str(tree), "--car", str(target), "--commp") == 130
    rc, _, err = add(capsys, "-r", str(tree), "--car", str(target), "--commp")
    assert rc == 0
    piece = [line for line in want_err.splitlines() if "baga" in line]
    assert piece and all(line in err for line in piece)


# -- damaged leftovers: start over or continue, never a wrong CAR ------------------------------------------


def _damage_and_rerun(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                      tree: Path, n: int, damage: object, version: str = "1") -> None:
    flags = ["-r", str(tree), "--car-version", version]
    out_dir = tmp_path / "out"
    out_dir.mkdir(exist_ok=True)
    target = out_dir / "o.car"
    assert interrupt_at(capsys, monkeypatch, n, *flags, "--car", str(target)) == 130
    if leftovers(out_dir):
        damage(*temp_and_journal(out_dir))  # type: ignore[operator]
    rc, stdout, err = add(capsys, *flags, "--car", str(target))
    assert rc == 0, err
    want_car, want_out = reference(capsys, tmp_path, *flags)
    assert target.read_bytes() == want_car and stdout == want_out
    target.unlink()


def _cut(path: Path, length: int) -> None:
    with open(path, "r+b") as f:
        f.truncate(min(length, f.seek(0, 2)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 36), car_cut=st.floats(0, 1), journal_cut=st.floats(0, 1), version=st.sampled_from("12"))
def test_any_prefix_of_the_car_and_journal_resumes_to_the_same_car(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
        n: int, car_cut: float, journal_cut: float, version: str) -> None:
    """What a SIGKILL can leave: the CAR's buffered or queued tail lost, a journal line torn."""
    base = tmp_path_factory.mktemp("prefix")
    tree = make_tree(base / "data")

    def damage(car: Path, journal: Path) -> None:
        _cut(car, int(car.stat().st_size * car_cut))
        _cut(journal, int(journal.stat().st_size * journal_cut))

    _damage_and_rerun(capsys, monkeypatch, base, tree, n, damage, version)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kills=st.lists(st.tuples(st.integers(1, 30), st.floats(0.5, 1), st.floats(0.5, 1)), min_size=2, max_size=3),
       version=st.sampled_from("12"))
def test_interrupted_again_while_resuming(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
        kills: list[tuple[int, float, float]], version: str) -> None:
    """Each re-run is itself interrupted (while replaying or after going live), leftovers cut each time."""
    base = tmp_path_factory.mktemp("again")
    tree = make_tree(base / "data")
    flags = ["-r", str(tree), "--car-version", version]
    out_dir = base / "out"
    out_dir.mkdir()
    target = out_dir / "o.car"
    for n, car_cut, journal_cut in kills:
        assert interrupt_at(capsys, monkeypatch, n, *flags, "--car", str(target)) in (0, 130)
        if target.exists():  # nothing new to write before the n-th put: it finished
            target.unlink()
        if leftovers(out_dir):
            car, journal = temp_and_journal(out_dir)
            _cut(car, int(car.stat().st_size * car_cut))
            _cut(journal, int(journal.stat().st_size * journal_cut))
    rc, stdout, _ = add(capsys, *flags, "--car", str(target))
    want_car, want_out = reference(capsys, base, *flags)
    assert rc == 0 and target.read_bytes() == want_car and stdout == want_out


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes_flipped_in_the_journal(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path, tree: Path, seed: int) -> None:
    rnd = random.Random(seed)

    def damage(car: Path, journal: Path) -> None:
        data = bytearray(journal.read_bytes())
        for _ in range(rnd.randint(1, 3)):
            data[rnd.randrange(len(data))] ^= 1 << rnd.randrange(8)
        journal.write_bytes(bytes(data))

    _damage_and_rerun(capsys, monkeypatch, tmp_path, tree, 30, damage)


def _rewrite_lines(journal: Path, edit: object) -> None:
    lines = journal.read_bytes().splitlines(keepends=True)
    out = [lines[0]]
    for line in lines[1:]:
        body = line.rsplit(b"\t", 1)[0]
        body = edit(body)  # type: ignore[operator]
        out.append(body + b"\t%08x\n" % zlib.crc32(body))
    journal.write_bytes(b"".join(out))


def test_a_forged_journal_with_valid_checksums_cannot_change_the_car(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tree: Path) -> None:
    import json

    def forge(field: int, delta: int) -> object:
        def damage(car: Path, journal: Path) -> None:
            def edit(body: bytes) -> bytes:
                doc = json.loads(body)
                doc[field] += delta
                return json.dumps(doc, separators=(",", ":")).encode()
            _rewrite_lines(journal, edit)
        return damage

    for field, delta in ((9, 1), (12, -1), (13, 1), (11, 3)):  # tsize, end, blocks, start
        _damage_and_rerun(capsys, monkeypatch, tmp_path, tree, 30, forge(field, delta))

    def other_cid(car: Path, journal: Path) -> None:  # every file claims the previous file's root
        lines = journal.read_bytes().splitlines(keepends=True)
        docs = [json.loads(line.rsplit(b"\t", 1)[0]) for line in lines[1:]]
        cids = [d[8] for d in docs]
        it = iter(cids[-1:] + cids[:-1])
        _rewrite_lines(journal, lambda body: json.dumps(
            [*json.loads(body)[:8], next(it), *json.loads(body)[9:]], separators=(",", ":")).encode())

    _damage_and_rerun(capsys, monkeypatch, tmp_path, tree, 30, other_cid)


def test_garbage_and_foreign_leftovers_start_over(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  tree: Path) -> None:
    def garbage_car(car: Path, journal: Path) -> None:
        car.write_bytes(os.urandom(5000))

    def garbage_journal(car: Path, journal: Path) -> None:
        journal.write_bytes(b"\x00" * 100)

    def header_only(car: Path, journal: Path) -> None:
        journal.write_bytes(journal.read_bytes().splitlines(keepends=True)[0])

    def journal_is_a_directory(car: Path, journal: Path) -> None:
        journal.unlink()
        journal.mkdir()

    for damage in (garbage_car, garbage_journal, header_only):
        _damage_and_rerun(capsys, monkeypatch, tmp_path, tree, 30, damage)
    target = tmp_path / "out" / "o.car"
    assert interrupt_at(capsys, monkeypatch, 30, "-r", str(tree), "--car", str(target)) == 130
    journal_is_a_directory(*temp_and_journal(tmp_path / "out"))
    rc, _, err = add(capsys, "-r", str(tree), "--car", str(target))
    assert rc == 1 and err.startswith("Error: ") and "Traceback" not in err


# -- real SIGKILLs -----------------------------------------------------------------------------------------


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full.pop(HOOK, None)
    full.update(env or {})
    return subprocess.Popen([sys.executable, "-m", "pyipld", "add", *argv], cwd=ROOT, env=full,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("version", ["1", "2"])
def test_sigkill_at_random_blocks_then_rerun(tmp_path: Path, version: str) -> None:
    """SIGKILL from inside after the N-th block (test hook): the background writer's queue
    and the file buffer are lost, as in a real kill -9."""
    tree = make_tree(tmp_path / "data")
    flags = ["-r", str(tree), "--car-version", version]
    ref = _cli(*flags, "--car", str(tmp_path / "ref.car"))
    want_out, _ = ref.communicate(timeout=120)
    assert ref.returncode == 0
    rnd = random.Random(int(version))
    target = tmp_path / "o.car"
    for n in sorted(rnd.sample(range(1, 37), 2)):
        killed = _cli(*flags, "--car", str(target), env={HOOK: str(n)})
        killed.communicate(timeout=120)
        assert killed.returncode == -signal.SIGKILL
        again = _cli(*flags, "--car", str(target))
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert out == want_out and target.read_bytes() == (tmp_path / "ref.car").read_bytes(), n
        target.unlink()


@pytest.mark.slow
def test_sigkill_after_n_output_lines(tmp_path: Path) -> None:
    """An outside kill -9 at whatever the writer was doing (timing, not a hook)."""
    tree = make_tree(tmp_path / "data")
    flags = ["-r", str(tree), "-s", "size-2048"]  # many blocks: the kill lands mid-file too
    ref = _cli(*flags, "--car", str(tmp_path / "ref.car"))
    want_out, _ = ref.communicate(timeout=120)
    assert ref.returncode == 0
    target = tmp_path / "o.car"
    for lines in (1, 12, 25):
        proc = _cli(*flags, "--car", str(target))
        assert proc.stdout is not None
        for _ in range(lines):
            if not proc.stdout.readline():
                break
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=120)
        again = _cli(*flags, "--car", str(target))
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, err
        assert out == want_out and target.read_bytes() == (tmp_path / "ref.car").read_bytes(), lines
        target.unlink()


def test_a_second_live_run_of_the_same_target_writes_a_plain_car(tmp_path: Path, tree: Path) -> None:
    """The first run holds the fixed temporary name (and its journal): the second one neither
    continues nor disturbs it, and still writes a correct CAR."""
    from pyipld.car.sink import placeholder_root_for
    from pyipld.unixfs.params import ImportParams
    from pyipld.unixfs.tree import import_paths

    params = ImportParams()
    target = tmp_path / "o.car"
    ph = [placeholder_root_for(params)]
    with resume.open_resumable_car_sink(target, key="k", placeholder_roots=ph) as first:
        first_root = import_paths([tree], params, first, journal=first).cid
        with resume.open_resumable_car_sink(target, key="k", placeholder_roots=ph) as second:
            assert second.journal_path == "" and not second.stats.resumed
            second.set_roots([import_paths([tree], params, second, journal=second).cid])
        plain = target.read_bytes()
        first.set_roots([first_root])
    assert target.read_bytes() == plain and leftovers(tmp_path) == []


# -- the replay's section-head parser ---------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(st.tuples(st.sampled_from([(0, "sha2-256"), (1, "sha2-256"), (1, "blake2b-256"),
                                                  (1, "sha2-512"), (1, "identity")]),
                                 st.sampled_from([0x55, 0x70, 0x71]), st.binary(max_size=300)), max_size=12),
       cut=st.integers(0, 4000))
def test_section_head_equals_the_car_reader(tmp_path_factory: pytest.TempPathFactory,
                                            blocks: list[tuple[tuple[int, str], int, bytes]], cut: int) -> None:
    """``section_head`` (one pread per section) finds what CarV1Reader finds, and None past a cut."""
    import io

    from pyipld.car.v1 import CarV1Reader, CarV1Writer
    from pyipld.cid import CidBuilder

    buf = io.BytesIO()
    writer = CarV1Writer(buf, [CID_ROOT])
    for (version, hash_name), codec, data in blocks:
        if hash_name == "identity" and len(data) > 128:
            data = data[:128]
        writer.put(CidBuilder.create(version, hash_name).cid_bytes(codec if version else 0x70, data), data)
    writer.close()
    car = buf.getvalue()
    path = tmp_path_factory.mktemp("heads") / "c.car"
    path.write_bytes(car)
    reader = CarV1Reader(io.BytesIO(car), verify=False)
    size = min(len(car), cut)
    with open(path, "rb") as f:
        pos = reader.header_length
        for head in reader.iter_heads():
            got = resume.section_head(f.fileno(), pos, size)
            end = head.data_offset + head.data_length
            assert got == ((head.cid, head.data_offset, head.data_length) if end <= size else None)
            pos = end
        assert resume.section_head(f.fileno(), pos, size) is None


CID_ROOT = "bafkqaaa"
