"""Real data libraries read ipfs:// offline, each compared with reading the original files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

fsspec = pytest.importorskip("fsspec")
np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from pyipld.fs import IPFSFileSystem, register

from ._fs import build_car, range_server


def _frame(n: int, seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "x": rng.random(n),
        "y": rng.integers(0, 1 << 40, n),
        "label": pd.Series([f"item-{i % 97}" for i in range(n)], dtype="string"),
        "part": np.where(np.arange(n) % 3 == 0, "a", "b"),
    })


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    register()
    base = tmp_path_factory.mktemp("libs")
    src = base / "src"
    (src / "train").mkdir(parents=True)
    for i in range(3):
        _frame(2000, i).to_parquet(src / "train" / f"part-{i}.parquet", index=False)
    _frame(500, 9).to_csv(src / "table.csv", index=False)
    pq.write_to_dataset(pa.Table.from_pandas(_frame(3000, 5), preserve_index=False), src / "partitioned",
                        partition_cols=["part"])
    car = base / "data.car"
    return src, build_car(src, car), car


def _opts(car: Path) -> dict[str, Any]:
    return {"cars": [str(car)], "use_env": False}


def test_pandas_csv(data: tuple[Path, str, Path]) -> None:
    src, root, car = data
    got = pd.read_csv(f"ipfs://{root}/table.csv", storage_options=_opts(car))
    pd.testing.assert_frame_equal(got, pd.read_csv(src / "table.csv"))


def test_pandas_parquet_and_columns(data: tuple[Path, str, Path]) -> None:
    src, root, car = data
    url = f"ipfs://{root}/train/part-1.parquet"
    pd.testing.assert_frame_equal(pd.read_parquet(url, storage_options=_opts(car)),
                                  pd.read_parquet(src / "train" / "part-1.parquet"))
    got = pd.read_parquet(url, columns=["x"], storage_options=_opts(car))
    pd.testing.assert_frame_equal(got, pd.read_parquet(src / "train" / "part-1.parquet", columns=["x"]))


def test_pyarrow_partitioned_dataset(data: tuple[Path, str, Path]) -> None:
    import pyarrow.dataset as ds

    src, root, car = data
    fs = IPFSFileSystem(**_opts(car))
    got = ds.dataset(f"{root}/partitioned", filesystem=fs, format="parquet", partitioning="hive").to_table()
    want = ds.dataset(src / "partitioned", format="parquet", partitioning="hive").to_table()
    assert got.sort_by("id").equals(want.sort_by("id"))
    only_a = ds.dataset(f"{root}/partitioned", filesystem=fs, partitioning="hive").to_table(
        filter=ds.field("part") == "a")
    assert only_a.num_rows == 1000


def test_pandas_to_parquet_writes_a_cid(data: tuple[Path, str, Path], tmp_path: Path) -> None:
    _, _, _ = data
    frame = _frame(1000, 3)
    sink = tmp_path / "out.car"
    opts = {"sink": str(sink), "add": {"cid_version": 1}, "use_env": False}
    frame.to_parquet("ipfs://results/frame.parquet", storage_options=opts, index=False)
    fs = fsspec.filesystem("ipfs", **opts)  # the same instance pandas used (fsspec's instance cache)
    cid = fs.info("results/frame.parquet")["CID"]
    assert str(fs.last_cid) == cid
    root = fs.commit()
    pd.testing.assert_frame_equal(pd.read_parquet(f"ipfs://{cid}", storage_options={"cars": [str(sink)]}), frame)
    pd.testing.assert_frame_equal(
        pd.read_parquet(f"ipfs://{root}/results/frame.parquet", storage_options={"cars": [str(sink)]}), frame)


def test_huggingface_datasets_parquet(data: tuple[Path, str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1 make `datasets` (5.x: one flag) refuse every non-local
    # fsspec URL before opening it, ipfs:// from a local CAR included (file_utils.fsspec_head). The
    # packaged "parquet" builder needs no Hub, so the run stays offline without the flag; telemetry off.
    if os.environ.get("HF_DATASETS_OFFLINE") or os.environ.get("HF_HUB_OFFLINE"):
        pytest.skip("HF offline mode refuses every fsspec URL, ipfs:// included")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    datasets = pytest.importorskip("datasets")
    from datasets import DownloadConfig

    src, root, car = data
    ds = datasets.load_dataset("parquet", data_files=f"ipfs://{root}/train/*.parquet", split="train",
                               storage_options={"ipfs": _opts(car)},
                               download_config=DownloadConfig(storage_options={"ipfs": _opts(car)}),
                               cache_dir=str(tmp_path / "hf" / "datasets"))
    want = pd.concat([pd.read_parquet(src / "train" / f"part-{i}.parquet") for i in range(3)], ignore_index=True)
    got = ds.to_pandas()
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got.sort_values(["id", "x"]).reset_index(drop=True)[["id", "x", "y"]],
                                  want.sort_values(["id", "x"]).reset_index(drop=True)[["id", "x", "y"]])


@pytest.mark.filterwarnings("ignore:The inplace keyword:DeprecationWarning")  # dask 2026.8 on pandas 3.1
@pytest.mark.filterwarnings("ignore:The inplace keyword")
def test_dask_read_parquet_local_cluster(data: tuple[Path, str, Path]) -> None:
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    src, root, car = data
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        ddf = dd.read_parquet(f"ipfs://{root}/train/*.parquet", storage_options=_opts(car))
        got = ddf.compute()
        want = dd.read_parquet(str(src / "train" / "*.parquet")).compute()  # the same files, from disk
    assert ddf.npartitions == 3
    pd.testing.assert_frame_equal(got.sort_values("x").reset_index(drop=True),
                                  want.sort_values("x").reset_index(drop=True))


def _zarr_store(tmp_path: Path) -> tuple[Any, Path, str, Path]:
    zarr = pytest.importorskip("zarr")
    src = tmp_path / "z"
    arr = np.random.default_rng(2).random((300, 300))  # 900 incompressible chunks of 800 bytes
    z = zarr.open_array(str(src / "arr.zarr"), mode="w", shape=arr.shape, chunks=(10, 10), dtype="float64")
    z[:] = arr
    car = tmp_path / "z.car"
    return arr, src, build_car(src, car), car


def test_zarr_array_on_mapper_reads_by_chunk(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    arr, _, root, car = _zarr_store(tmp_path)
    fs = IPFSFileSystem(cars=[str(car)], use_env=False, skip_instance_cache=True)
    z = zarr.open_array(fs.get_mapper(f"{root}/arr.zarr"), mode="r")
    np.testing.assert_array_equal(z[:], arr)
    before = dict(fs.chain.fetched)
    np.testing.assert_array_equal(z[15:18, 22:25], arr[15:18, 22:25])  # inside one chunk
    assert sum(fs.chain.fetched.values()) == sum(before.values())  # already cached: no fetch
    fs.close()


def test_zarr_from_remote_car_fetches_only_one_chunk(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    arr, _, root, car = _zarr_store(tmp_path)
    with range_server(tmp_path) as (url, counter):
        fs = IPFSFileSystem(cars=[f"{url}/z.car"], use_env=False, skip_instance_cache=True)
        z = zarr.open_array(fs.get_mapper(f"{root}/arr.zarr"), mode="r")
        opened = counter["bytes"]
        np.testing.assert_array_equal(z[55, 7], arr[55, 7])
        one_chunk = counter["bytes"] - opened
        fs.close()
    # one 10x10 float64 chunk (~800 bytes) and the directory blocks on its path (c/, c/5/), each in one
    # small window: a few KiB, not the array
    assert one_chunk < 24 << 10, one_chunk
    assert counter["bytes"] < os.path.getsize(car) // 4


def test_remote_parquet_column_projection_bytes(tmp_path: Path) -> None:
    """Reading one column from a remote CAR transfers about that column's bytes, not the file."""
    n = 1_000_000  # 8 MB per column: the two partly used 256 KiB leaves at its ends stay small beside it
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({c: rng.random(n) for c in "abcd"})
    src = tmp_path / "src"
    src.mkdir()
    frame.to_parquet(src / "t.parquet", index=False, compression=None, row_group_size=n)
    meta = pq.ParquetFile(src / "t.parquet").metadata
    col_bytes = meta.row_group(0).column(1).total_compressed_size
    www = tmp_path / "www"
    www.mkdir()
    root = build_car(src, www / "t.car")
    with range_server(www) as (url, counter):
        opts = {"cars": [f"{url}/t.car"], "use_env": False}
        fs = IPFSFileSystem(skip_instance_cache=True, **opts)
        start = counter["bytes"]
        with fsspec.parquet.open_parquet_file(f"{root}/t.parquet", fs=fs, columns=["b"],
                                             footer_sample_size=64 << 10) as f:
            got = pd.read_parquet(f, columns=["b"])
        sent = counter["bytes"] - start
        fs.close()
    pd.testing.assert_series_equal(got["b"], frame["b"])
    assert sent <= 1.2 * col_bytes, (sent, col_bytes)
