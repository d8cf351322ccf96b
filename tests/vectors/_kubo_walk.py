"""Per-entry CIDs of what kubo built (runs with the kubo venv's interpreter).

Used by gen_kubo_vectors.py. For each JSON line ``{"input", "params", "wrap", "fanout"}``
on stdin it adds the input with the shared oracle's ``Kubo`` class, *storing* the blocks,
then walks the DAG from the root block by block and prints one JSON line::

    {"cid": ROOT, "root_type": "directory"|"hamt-shard"|"file"|"symlink"|"raw",
     "entries": [[path, cid, type], ...] | null,   # every node below the root, parents first
     "entry_count": N, "shard_nodes": M, "max_shard_depth": D}

Paths are relative to the root, '/'-joined, as text (names are decoded with
surrogateescape and re-encoded as hex when not UTF-8: ``"hex:…"``). HAMT shards are
walked through: an entry's path is its real name (the link name without the hex slot
prefix). ``entries`` is null when there are more than ``--max-entries`` nodes.

Must run inside an isolated network namespace (the generator starts it under
``unshare -n``); the oracle refuses otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

TYPES = {0: "raw-unixfs", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "hamt-shard"}


def _uvarint(b: bytes, i: int) -> tuple[int, int]:
    x = shift = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << shift
        if c < 0x80:
            return x, i
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int, object]]:
    """(field number, wire type, value) of a protobuf message (varint and length-delimited)."""
    out: list[tuple[int, int, object]] = []
    i = 0
    while i < len(buf):
        key, i = _uvarint(buf, i)
        wt = key & 7
        if wt == 0:
            v, i = _uvarint(buf, i)
            out.append((key >> 3, wt, v))
        elif wt == 2:
            n, i = _uvarint(buf, i)
            out.append((key >> 3, wt, buf[i:i + n]))
            i += n
        elif wt == 5:
            out.append((key >> 3, wt, buf[i:i + 4]))
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
    return out


def decode_dagpb(block: bytes) -> tuple[list[tuple[bytes, bytes, int]], bytes | None]:
    """Links as (cid bytes, name bytes, tsize) and the Data field."""
    links, data = [], None
    for num, _wt, val in _fields(block):
        if num == 2:
            cid, name, tsize = b"", b"", 0
            for n2, _w2, v2 in _fields(val):  # type: ignore[arg-type]
                if n2 == 1:
                    cid = v2  # type: ignore[assignment]
                elif n2 == 2:
                    name = v2  # type: ignore[assignment]
                elif n2 == 3:
                    tsize = v2  # type: ignore[assignment]
            links.append((cid, name, tsize))
        elif num == 1:
            data = val  # type: ignore[assignment]
    return links, data


def unixfs_fields(data: bytes | None) -> dict[str, int]:
    out = {}
    for num, _wt, val in _fields(data or b""):
        if num == 1:
            out["type"] = val
        elif num == 6:
            out["fanout"] = val
    return out  # type: ignore[return-value]


def show_name(name: bytes) -> str:
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + name.hex()


def walk(k, oracle, root: str, max_entries: int) -> dict:
    entries: list[list[str]] = []
    stats = {"entry_count": 0, "shard_nodes": 0, "max_shard_depth": 0}

    def kind_of(cidb: bytes) -> tuple[str, bytes | None]:
        info = oracle.parse_cid(cidb)
        if info["codec"] != "dag-pb":
            return "raw", None
        block = k.get_block(cidb)
        return TYPES.get(unixfs_fields(decode_dagpb(block)[1]).get("type", -1), "unknown"), block

    def visit_dir(block: bytes, kind: str, prefix: str, depth: int) -> None:
        links, data = decode_dagpb(block)
        if kind == "hamt-shard":
            stats["shard_nodes"] += 1
            stats["max_shard_depth"] = max(stats["max_shard_depth"], depth)
            width = len(format(unixfs_fields(data)["fanout"] - 1, "X"))
        for cidb, name, _tsize in links:
            ckind, cblock = kind_of(cidb)
            if kind == "hamt-shard":
                if len(name) == width:            # a child shard: no entry of its own
                    assert ckind == "hamt-shard", (name, ckind)
                    visit_dir(cblock, ckind, prefix, depth + 1)
                    continue
                name = name[width:]
            path = prefix + show_name(name)
            stats["entry_count"] += 1
            if len(entries) <= max_entries:
                entries.append([path, oracle.cid_str(cidb), ckind])
            if ckind in ("directory", "hamt-shard"):
                visit_dir(cblock, ckind, path + "/", 1)

    rootb = oracle.cid_bytes(root)
    rkind, rblock = kind_of(rootb)
    if rkind in ("directory", "hamt-shard"):
        visit_dir(rblock, rkind, "", 1)
    out = {"cid": root, "root_type": rkind, **stats}
    out["entries"] = entries if stats["entry_count"] <= max_entries else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--oracle-dir", required=True)
    ap.add_argument("--max-entries", type=int, default=200)
    a = ap.parse_args()
    sys.path.insert(0, a.oracle_dir)
    import kubo_oracle as oracle

    if not oracle.netns_is_isolated():
        sys.exit("_kubo_walk: run me inside `unshare -n` (loopback only)")
    k = oracle.Kubo()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            case = json.loads(line)
            params = oracle.AddParams.from_dict(case.get("params", {}))
            try:
                root = k.add(case["input"], params, only_hash=False, wrap=bool(case.get("wrap")))
                print(json.dumps(walk(k, oracle, root, a.max_entries)), flush=True)
            except Exception as e:  # noqa: BLE001 - reported per case
                print(json.dumps({"error": str(e)}), flush=True)
    finally:
        k.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
