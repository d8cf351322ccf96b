"""CARv1: header bytes, reading every fixture, corrupt inputs, push == pull, writer round trips."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyipld.car.reader import CarFile
from pyipld.car.v1 import (
    PLACEHOLDER_ROOT,
    CarEnded,
    CarV1Decoder,
    CarV1Reader,
    CarV1Writer,
    HeaderRead,
    Section,
    decode_header,
    encode_header,
)
from pyipld.cid import CID, RAW
from pyipld.errors import (
    CarError,
    ConfigError,
    DecodeError,
    IntegrityError,
    LimitExceededError,
)
from pyipld.multihash import SHA2_256
from tests._shared import shared_path

R128 = "bafy2bzaced4ueelaegfs5fqu4tzsh6ywbbpfk3cxppupmxfdhbpbhzawfw5oy"


def gocar(name: str) -> bytes:
    return shared_path("fixtures", "go-car", name).read_bytes()


def raw_cid(data: bytes) -> bytes:
    return b"\x01" + bytes([RAW]) + SHA2_256.multihash(data)


def read_all(data: bytes, **kw: object) -> tuple[CarV1Reader, list[Section]]:
    reader = CarV1Reader(io.BytesIO(data), **kw)  # type: ignore[arg-type]
    return reader, list(reader)


# -- header ----------------------------------------------------------------------------------


def test_header_without_roots_is_go_car_bytes() -> None:
    # go-car v2/reader_test.go: 11 a2 65 "roots" 80 67 "version" 01
    assert encode_header([]) == bytes.fromhex("11a265726f6f7473806776657273696f6e01")


def test_header_of_sample_v1_is_byte_identical() -> None:
    data = gocar("sample-v1.car")
    assert encode_header([R128]) == data[:61]


def test_decode_header_is_strict() -> None:
    with pytest.raises(CarError, match="invalid car version: 42"):
        decode_header(gocar("sample-rootless-v42.car")[1:])
    with pytest.raises(CarError):  # extra key
        decode_header(bytes.fromhex("a365726f6f7473806776657273696f6e0163666f6f01"))
    with pytest.raises(CarError):  # not a map
        decode_header(b"\x01")
    with pytest.raises(CarError):  # roots not a list
        decode_header(bytes.fromhex("a265726f6f7473f66776657273696f6e01"))
    assert decode_header(bytes.fromhex("a16776657273696f6e02")).version == 2  # the CARv2 pragma


# -- fixtures --------------------------------------------------------------------------------

EXPECT = ["sample-v1.car", "sample-v1-noidentity.car", "sample-unixfs-v2.car", "sample-rw-bs-v2.car",
          "sample-wrapped-v2.car", "sample-v2-indexless.car"]


@pytest.mark.parametrize("name", EXPECT)
def test_valid_fixture_blocks_match_js_car(name: str) -> None:
    expectations = json.loads(shared_path("fixtures", "go-car", "js-car-expectations.json").read_text())
    want = expectations["expectations"][name]
    with CarFile(shared_path("fixtures", "go-car", name)) as car:
        assert car.version == want["version"]
        cids = [str(CID.from_bytes(s.cid)) for s in car.iter_sections(verify=True)]
    assert cids == want["cids"]


def test_manifest_roots_and_counts() -> None:
    cases = {
        "sample-v1.car": ([R128], 1049),
        "simple-unixfs.car": (["QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"], 22),
        "simple-unixfs-missing-blocks.car": (["QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"], 17),
        "wikipedia-cryptographic-hash-function.car": (["bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze"], 5),
        "sample-rw-bs-v2.car": ([
            "bafkreifuosuzujyf4i6psbneqtwg2fhplc2wxptc5euspa2gn3bwhnihfu",
            "bafkreifc4hca3inognou377hfhvu2xfchn2ltzi7yu27jkaeujqqqdbjju",
            "bafkreig5lvr4l6b4fr3un4xvzeyt3scevgsqjgrhlnwxw2unwbn5ro276u"], 3),
        "sample-unixfs-v2.car": (["bafybeiakgrehdxxgy5kca72znt6jllrj2sqkehtqeojfuxlbeuqg3vfkwq"], 3),
    }
    for name, (roots, count) in cases.items():
        with CarFile(shared_path("fixtures", "go-car", name)) as car:
            assert [str(r) for r in car.roots] == roots, name
            assert sum(1 for _ in car.iter_sections()) == count, name


@pytest.mark.parametrize("name", ["carv1-basic", "carv2-basic"])
def test_ipld_spec_fixture_offsets(name: str) -> None:
    spec = json.loads(shared_path("fixtures", "ipld-specs", f"{name}.json").read_text())
    with CarFile(shared_path("fixtures", "ipld-specs", f"{name}.car")) as car:
        sections = list(car.iter_sections())
        base = car.payload_offset
    assert len(sections) == len(spec["blocks"])
    for s, b in zip(sections, spec["blocks"], strict=True):
        assert str(CID.from_bytes(s.cid)) == b["cid"]["/"]
        assert base + s.offset == b["offset"]
        assert base + s.data_offset == b["blockOffset"]
        assert len(s.data) == b["blockLength"]
        assert s.data_offset + len(s.data) - s.offset == b["length"]


def test_kubo_fixtures_with_odd_roots() -> None:
    base = ("fixtures", "kubo", "t0054-dag-car-import-export")
    with CarFile(shared_path(*base, "lotus_devnet_genesis_shuffled_noroots.car")) as car:
        assert car.roots == () and sum(1 for _ in car.iter_sections()) == 149
    with CarFile(shared_path(*base, "lotus_devnet_genesis_shuffled_nulroot.car")) as car:
        assert [str(r) for r in car.roots] == ["bafkqaaa"]
    with CarFile(shared_path(*base, "combined_naked_roots_genesis_and_128.car")) as car:
        assert len(car.roots) == 2 and list(car.iter_sections()) == []


def test_zero_length_section() -> None:
    data = gocar("sample-v1-with-zero-len-section.car")
    with pytest.raises(CarError, match="null padding"):
        read_all(data)
    _, sections = read_all(data, zero_length_section_as_eof=True)
    _, plain = read_all(gocar("sample-v1.car"))
    assert [s.cid for s in sections] == [s.cid for s in plain]
    reader, sections2 = read_all(gocar("sample-v1-with-zero-len-section2.car"), zero_length_section_as_eof=True)
    assert [str(r) for r in reader.roots] == ["bafykbzaceapvx4wxbe3bfc5neit43wl22pruy2ysk7wv763iuyyxcffj3te56"]
    assert len(sections2) == 20


def test_truncated_last_section() -> None:
    reader = CarV1Reader(io.BytesIO(gocar("sample-v1-tailing-corrupt-section.car")))
    got = []
    with pytest.raises(CarError, match="unexpected EOF") as info:
        got.extend(reader)
    assert len(got) > 1000
    assert info.value.offset is not None


@pytest.mark.parametrize(("name", "error", "match"), [
    ("sample-corrupt-pragma.car", CarError, "unexpected EOF"),
    ("sample-rootless-v42.car", CarError, "invalid car version: 42"),
    ("sample-v2-corrupt-data-and-index.car", CarError, "invalid data payload offset"),
    ("badheaderlength.car", LimitExceededError, "invalid header data"),
    ("badsectionlength.car", LimitExceededError, "invalid section data"),
])
def test_corrupt_fixtures_give_typed_errors(name: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match), CarFile(shared_path("fixtures", "go-car", name)) as car:
        list(car.iter_sections())


def _hex_vectors() -> dict[str, object]:
    return json.loads(shared_path("fixtures", "go-car", "inspect-hex-vectors.json").read_text())  # type: ignore[no-any-return]


def test_inspect_hex_vectors() -> None:
    vectors = _hex_vectors()
    for case in vectors["inspect_errors"]:  # type: ignore[attr-defined]
        data = bytes.fromhex(case["hex"])
        verify = bool(case.get("validate", True))

        def run(data: bytes = data, verify: bool = verify) -> None:
            with CarFile(io.BytesIO(data)) as car:
                list(car.iter_sections(verify=verify))

        if case.get("inspect_error") is None and "open_error" not in case:
            run()
            continue
        expected: tuple[type[Exception], ...] = (DecodeError,)
        if str(case.get("inspect_error", "")).startswith("mismatch in content integrity"):
            expected = (IntegrityError,)
        with pytest.raises(expected) as info:
            run()
        msg = str(info.value)
        go = case.get("inspect_error") or case.get("open_error")
        # BadCidV0/BadSectionLength2 have a header with CBOR tag 48: not dag-cbor, refused earlier here
        if case["name"] in ("BadHeaderLength", "BadSectionLength", "BadBlockHash"):
            assert go.split(",")[0].split(":")[0] in msg  # same go-car wording
    for case in vectors["inspect_ok"]:  # type: ignore[attr-defined]
        with CarFile(io.BytesIO(bytes.fromhex(case["hex"]))) as car:
            sections = list(car.iter_sections(verify=False))
            assert [str(r) for r in car.roots] == case["expected_stats"]["Roots"]
        assert len(sections) == case["expected_stats"]["BlockCount"]


def test_identity_cid_with_empty_block_message() -> None:
    case = next(c for c in _hex_vectors()["inspect_errors"] if c["name"] == "IdentityCID")  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError) as info:
        read_all(bytes.fromhex(case["hex"]))
    assert "expected: baguqeaaupmrgszdfnz2gs5dzei5ceytmn5rwwit5, got: baguqeaaa" in str(info.value)


def test_bad_block_hash_message_names_both_cids() -> None:
    case = next(c for c in _hex_vectors()["inspect_errors"] if c["name"] == "BadBlockHash")  # type: ignore[attr-defined]
    with pytest.raises(IntegrityError) as info:
        read_all(bytes.fromhex(case["hex"]))
    assert "bafkreiab2rek7wjiazkfrt3hbnqpljmu24226alszdlh6ivic2abgjubzi" in str(info.value)
    assert "bafkreiaaqoxrddiyuy6gxnks6ioqytxhq5a7tchm2mm5htigznwiljukmm" in str(info.value)


def test_every_prefix_of_a_car_reads_cleanly_or_fails_typed() -> None:
    data = shared_path("fixtures", "ipld-specs", "carv1-basic.car").read_bytes()
    _, full = read_all(data)
    ends = {s.data_offset + len(s.data) for s in full}
    for n in range(len(data)):
        try:
            _, got = read_all(data[:n])
        except DecodeError:
            assert n not in ends
            continue
        assert n in ends or n == 100  # a cut exactly between sections is a valid shorter CAR
        assert got == full[: len(got)]


# -- limits: never allocate from an untrusted length -------------------------------------------


class RecordingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.largest = 0

    def read(self, n: int | None = -1) -> bytes:
        if n is not None and n > self.largest:
            self.largest = n
        return super().read(n)


def test_length_prefixes_are_checked_before_reading() -> None:
    huge = bytes.fromhex("ffffffffff0f")  # 2**39 - 1
    stream = RecordingStream(huge + b"\x00" * 64)
    with pytest.raises(LimitExceededError):
        CarV1Reader(stream)
    assert stream.largest <= 1
    body = encode_header([]) + huge + b"\x00" * 64
    stream = RecordingStream(body)
    with pytest.raises(LimitExceededError, match="max_section_bytes"):
        list(CarV1Reader(stream))
    assert stream.largest < 64
    stream = RecordingStream(encode_header([]) + b"\x80\x80\x80\x04" + b"\x01" * 10)  # 8 MiB: allowed, but truncated
    with pytest.raises(CarError, match="unexpected EOF"):
        list(CarV1Reader(stream, max_section_bytes=8 << 20))


def test_custom_limits() -> None:
    data = gocar("sample-v1.car")
    with pytest.raises(LimitExceededError):
        read_all(data, max_header_bytes=59)
    with pytest.raises(LimitExceededError):
        read_all(data, max_section_bytes=1000)


# -- push decoder ---------------------------------------------------------------------------------


def _push(data: bytes, cuts: list[int], **kw: object) -> list[object]:
    dec = CarV1Decoder(**kw)  # type: ignore[arg-type]
    events: list[object] = []
    last = 0
    for cut in sorted(set(cuts)) + [len(data)]:
        dec.receive_data(data[last:cut])
        last = cut
        while (ev := dec.next_event()) is not None:
            events.append(ev)
    dec.receive_data(b"")
    while (ev := dec.next_event()) is not None:
        events.append(ev)
    return events


@given(st.lists(st.integers(min_value=1, max_value=714), max_size=20))
def test_push_decoder_equals_pull_reader_in_any_fragmentation(cuts: list[int]) -> None:
    data = shared_path("fixtures", "ipld-specs", "carv1-basic.car").read_bytes()
    reader, sections = read_all(data)
    events = _push(data, cuts)
    assert isinstance(events[0], HeaderRead) and events[0].header == reader.header
    assert events[1:-1] == sections
    assert events[-1] == CarEnded(len(data))


def test_push_decoder_errors() -> None:
    with pytest.raises(CarError, match="null padding"):
        _push(gocar("sample-v1-with-zero-len-section2.car"), [])
    events = _push(gocar("sample-v1-with-zero-len-section2.car"), [100], zero_length_section_as_eof=True)
    assert sum(isinstance(e, Section) for e in events) == 20
    with pytest.raises(CarError, match="unexpected EOF"):
        _push(gocar("sample-v1-tailing-corrupt-section.car"), [])
    with pytest.raises(LimitExceededError):
        _push(gocar("badsectionlength.car"), [])


# -- writer -------------------------------------------------------------------------------------

blocks_strategy = st.lists(st.binary(max_size=300), max_size=12)


@given(blocks_strategy, st.integers(min_value=0, max_value=3))
def test_write_then_read_round_trip(datas: list[bytes], nroots: int) -> None:
    blocks = [(raw_cid(d), d) for d in datas]
    # identity CIDs are blocks too (go-car sample-v1 has six)
    blocks.append((b"\x01\x55\x00\x05hello", b"hello"))
    roots = [CID.from_bytes(c) for c, _ in blocks[:nroots]]
    out = io.BytesIO()
    with CarV1Writer(out, roots) as w:
        for cid, data in blocks:
            w.put(cid, data)
    reader, sections = read_all(out.getvalue())
    assert list(reader.roots) == roots
    unique = list(dict(blocks).items())
    assert [(s.cid, s.data) for s in sections] == unique  # de-duplicated, first seen kept in order


@given(blocks_strategy)
def test_deferred_roots_seekable_and_pipe_give_same_bytes(datas: list[bytes]) -> None:
    blocks = [(raw_cid(d), d) for d in datas] or [(raw_cid(b""), b"")]
    root = CID.from_bytes(blocks[-1][0])
    direct = io.BytesIO()
    with CarV1Writer(direct, [root]) as w:
        for c, d in blocks:
            w.put(c, d)

    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    outputs = []
    for out in (io.BytesIO(), Pipe()):
        w = CarV1Writer(out)
        for c, d in blocks:
            w.put(c, d)
        w.set_roots([root])
        w.close()
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1] == direct.getvalue()


def test_placeholder_of_another_length_shifts_the_body() -> None:
    data = b"x" * 1000
    v0_root = CID(0, 0x70, SHA2_256.multihash(b"node"))
    out = io.BytesIO(b"PREFIX")
    out.seek(6)
    w = CarV1Writer(out, record_offsets=True)
    w.put(raw_cid(data), data)
    assert len(PLACEHOLDER_ROOT.bytes) != len(v0_root.bytes)
    w.set_roots([v0_root])
    w.close()
    raw = out.getvalue()
    assert raw[:6] == b"PREFIX"
    reader, sections = read_all(raw[6:])
    assert reader.roots == (v0_root,) and sections[0].data == data
    assert w.index_records() == [(raw_cid(data), sections[0].offset)]


def test_close_without_roots_fails() -> None:
    w = CarV1Writer(io.BytesIO())
    with pytest.raises(ConfigError):
        w.close()
    done = CarV1Writer(io.BytesIO(), [])
    done.close()
    with pytest.raises(CarError):
        done.put(raw_cid(b"a"), b"a")


# -- fuzz: decoders return or raise DecodeError, nothing else ----------------------------------------


def _fuzz_targets(data: bytes) -> None:
    for target in (
        lambda: list(CarV1Reader(io.BytesIO(data), verify=False)),
        lambda: _push(data, [len(data) // 2], verify=False),
        lambda: list(CarFile(io.BytesIO(data)).iter_sections(verify=False)),
        lambda: list(CarFile(io.BytesIO(data)).iter_heads()),
        lambda: decode_header(data),
    ):
        try:
            target()
        except DecodeError:
            pass


@given(st.binary(max_size=400))
def test_fuzz_binary(data: bytes) -> None:
    _fuzz_targets(data)


@given(st.binary(max_size=200))
def test_fuzz_after_valid_header(tail: bytes) -> None:
    _fuzz_targets(encode_header([R128]) + tail)
    try:  # with verification, a well-formed section may also be an integrity failure
        list(CarV1Reader(io.BytesIO(encode_header([]) + tail)))
    except (DecodeError, IntegrityError):
        pass


def test_go_car_fuzz_regressions() -> None:
    cases = json.loads(shared_path("fixtures", "go-car", "fuzz-regressions.json").read_text())["cases"]
    for case in cases:
        for hex_input in case["inputs_hex"]:
            _fuzz_targets(bytes.fromhex(hex_input))


@given(st.binary(max_size=300))
def test_fuzz_v2_paths_and_link_scanner(data: bytes) -> None:
    from pyipld.car.export import iter_links
    from pyipld.car.v2 import PRAGMA, decode_v2_header

    for target in (
        lambda: decode_v2_header(data),
        lambda: list(CarFile(io.BytesIO(PRAGMA + data)).iter_heads()),
        lambda: CarFile(io.BytesIO(PRAGMA + data)).read_index(),
        lambda: list(iter_links(b"\x01\x71\x12\x20" + bytes(32), data)),
        lambda: list(iter_links(b"\x01\x70\x12\x20" + bytes(32), data)),
    ):
        try:
            target()
        except DecodeError:
            pass


def test_background_writer_same_bytes_and_errors_surface() -> None:
    blocks = [(raw_cid(bytes([i]) * 5000), bytes([i]) * 5000) for i in range(50)]
    outs = []
    for background in (False, True):
        out = io.BytesIO()
        w = CarV1Writer(out, background=background)
        for c, d in blocks:
            w.put(c, d)
        w.set_roots([CID.from_bytes(blocks[0][0])])
        w.close()
        outs.append(out.getvalue())
    assert outs[0] == outs[1]

    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            if self.tell() > 20_000:
                raise OSError(28, "No space left on device")
            return super().write(data)  # type: ignore[arg-type]

    w = CarV1Writer(Full(), [], background=True)
    with pytest.raises(OSError, match="No space"):
        for c, d in blocks * 20:
            w.put(c + b"", d)
        w.close()
    w.abort()  # idempotent after the thread stopped


ROOTS = {  # from shared/fixtures/MANIFEST.md
    "codec-fixtures/fixtures.car": ([], 273),
    "commp/go-data-segment/cat.png.car": (["bafk2bzaceanulxrrjjec5e6r7vskb6cqgueh2w6bnge6ja5u3la7aygjizwku"], 1),
    "commp/go-data-segment/Verifiable_Data_Aggregation.png.car": (
        ["bafk2bzacecul64ojb2rl7szydmytaaqqfvbceueaooclsshi5ennuyhsgzt2m"], None),
    "gateway-conformance/dir_listing-fixtures.car": (
        ["bafybeig6ka5mlwkl4subqhaiatalkcleo4jgnr3hqwvpmsqfca27cijp3i"], 10),
    "gateway-conformance/gateway-cache-fixtures.car": (
        ["bafybeib3ffl2teiqdncv3mkz4r23b5ctrwkzrrhctdbne6iboayxuxk5ui"], 5),
    "gateway-conformance/gateway-raw-block.car": (["bafybeie72edlprgtlwwctzljf6gkn2wnlrddqjbkxo3jomh4n7omwblxly"], 3),
    "gateway-conformance/path_gateway_dag-dag-cbor-traversal.car": (
        ["bafyreibs4utpgbn7uqegmd2goqz4bkyflre2ek2iwv743fhvylwi4zeeim"], 3),
    "gateway-conformance/path_gateway_dag-dag-json-traversal.car": (
        ["baguqeeram5ujjqrwheyaty3w5gdsmoz6vittchvhk723jjqxk7hakxkd47xq"], 3),
    "gateway-conformance/path_gateway_dag-gateway-json-cbor.car": (
        ["bafybeiafyvqlazbbbtjnn6how5d6h6l6rxbqc4qgpbmteaiskjrffmyy4a"], 11),
    "gateway-conformance/trustless-dir-with-dag-cbor-with-links.car": (
        ["bafybeia264q44a3kmfc2otctzu4egp2k235o3t7mslz2yjraymp4nv6asi"], 9),
    "gateway-conformance/trustless-file-3k-and-3-blocks-missing-block.car": (
        ["QmYhmPjhFjYFyaoiuNzYv8WGavpSRDwdHWe5B4M5du5Rtk"], 3),
    "gateway-conformance/tooling-hello_ipfs.car": (["bafkreidfdrlkeq4m4xnxuyx6iae76fdm4wgl5d4xzsb77ixhyqwumhz244"], 1),
    "kubo/cli/TestDagStat.car": (["bafyreifrm6uf5o4dsaacuszf35zhibyojlqclabzrms7iak67pf62jygaq"], 4),
    "kubo/cli/t0400-api-no-gateway-fixtures.car": (["QmNYERzV2LfD2kkfahtfv44ocHzEFK1sLBaE7zdcYT2GAZ"], None),
    "kubo/t0054-dag-car-import-export/lotus_devnet_genesis.car": (
        ["bafy2bzaceaxm23epjsmh75yvzcecsrbavlmkcxnva66bkdebdcnyw3bjrc74u"], 149),
    "kubo/t0054-dag-car-import-export/lotus_testnet_export_128_v2.car": ([R128], 1049),
    "kubo/t0054-dag-car-import-export/partial-dag-scope-entity.car": (
        ["QmPDC11yLAbVw3dX5jMeEuSdk4BiVjSd9X87zaYRdVjzW3"], 1),
}


@pytest.mark.parametrize("rel", sorted(ROOTS))
def test_more_manifest_fixtures(rel: str) -> None:
    roots, count = ROOTS[rel]
    with CarFile(shared_path("fixtures", *rel.split("/"))) as car:
        assert [str(r) for r in car.roots] == roots
        n = car.verify_blocks()
        if count is not None:
            assert n == count
