"""`pyipld commp` and the helpers for `add --car --commp`."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest

from pyipld._cli.commp import commp_of_car, commp_tap
from pyipld.car.v1 import CarV1Writer
from pyipld.car.v2 import CarV2Writer
from pyipld.cid import CID, CidBuilder
from pyipld.cli import main
from pyipld.filecoin.commp import commp_bytes
from tests._shared import shared_path


def test_commp_cli_known_answer(capsys: pytest.CaptureFixture[str]) -> None:
    car = shared_path("fixtures", "commp", "go-data-segment", "cat.png.car")
    assert main(["commp", str(car)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "CommPCid: baga6ea4seaqae5ysjdbsr4b5jhotaz5ooh62jrrdbxwygfpkkfjz44kvywycmgy"
    assert out[1].startswith("PieceCIDv2: bafkzcib")
    assert out[2].split() == ["Payload:", "392375", "bytes"]
    assert out[3].split() == ["Unpadded", "piece:", "520192", "bytes"]
    assert out[4].split() == ["Padded", "piece:", "524288", "bytes"]


def test_commp_cli_json_and_piece_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x"
    f.write_bytes(bytes(1016))
    assert main(["commp", str(f), "--json", "--piece-size", "4KiB"]) == 0
    doc = json.loads(capsys.readouterr().out)
    info = commp_bytes(bytes(1016), piece_size=4096)
    assert doc == {"piece_cid": str(info.cid_v1), "piece_cid_v2": str(info.cid_v2), "payload_size": 1016,
                   "unpadded_piece_size": 4064, "padded_piece_size": 4096}


def test_commp_cli_stdin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x"
    f.write_bytes(bytes(127))
    with open(f, "rb") as fh:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(fh))
        assert main(["commp", "-", "-q"]) == 0
    assert "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy" in capsys.readouterr().out


@pytest.mark.parametrize("size", ["1000", "3MiB", "512"])
def test_commp_cli_bad_piece_size(tmp_path: Path, size: str, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "x"
    f.write_bytes(bytes(600))
    assert main(["commp", str(f), "--piece-size", size]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: ") and len(err.strip().splitlines()) == 1


def test_commp_cli_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["commp", str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().err.startswith("Error: ")


def _blocks() -> list[tuple[bytes, bytes]]:
    builder = CidBuilder.create(1)
    data = [random.Random(i).randbytes(300_000 + i) for i in range(3)]
    return [(builder.cid_bytes(0x55, d), d) for d in data]


def test_tap_and_commp_of_car(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks()
    v1 = tmp_path / "a.car"
    with open(v1, "w+b") as f:
        tap = commp_tap(f, jobs=1)
        w = CarV1Writer(tap)  # type: ignore[arg-type]
        for cid, d in blocks:
            w.put(cid, d)
        w.set_roots([CID.from_bytes(blocks[0][0])])
        w.close()
        info = tap.digest()
    assert info == commp_bytes(v1.read_bytes()) == commp_of_car(v1)
    v2 = tmp_path / "a2.car"
    with open(v2, "w+b") as f:
        w2 = CarV2Writer(f, [CID.from_bytes(blocks[0][0])])
        for cid, d in blocks:
            w2.put(cid, d)
        w2.close()
    assert commp_of_car(v2) == info  # deals are over the inner CARv1
    assert main(["commp", str(v2)]) == 0
    assert "CARv2" in capsys.readouterr().err
