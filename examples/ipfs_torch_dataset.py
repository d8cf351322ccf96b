"""A PyTorch Dataset over the files of a directory CID, read through ipfs:// (docs/fsspec.md).

    from examples.ipfs_torch_dataset import IPFSFilesDataset
    ds = IPFSFilesDataset("bafy…/train", cars=["train.car"], cache="~/.cache/pyipld-blocks")
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=4)

The dataset keeps only the filesystem's constructor options; each DataLoader worker (a fork
or a spawn) gets its own file handles and connections, and the shared ``cache`` directory
means an epoch read twice fetches each block once.
"""

from __future__ import annotations

from typing import Any

import fsspec
import torch
from torch.utils.data import Dataset


class IPFSFilesDataset(Dataset):  # type: ignore[type-arg]
    """Item ``i`` is the bytes of the i-th file under ``root`` as a uint8 tensor (sorted by path)."""

    def __init__(self, root: str, **storage_options: Any) -> None:
        self.fs = fsspec.filesystem("ipfs", **storage_options)
        self.paths = sorted(self.fs.find(root))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        data = bytearray(self.fs.cat_file(self.paths[i]))
        return torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)
