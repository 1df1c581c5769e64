"""Datasets and the Lightning DataModule: synthetic scenes, Presto pixel series, or a saved ``.npz`` cube."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.errors import DataError
from ditkit_core.lightning.data import seeded_loader
from ditkit_geo.checks import check_int
from ditkit_geo.io import load_npz, load_presto
from ditkit_geo.series import SITS, Normalizer
from ditkit_geo.synthetic import make_synthetic

Source = Literal["synthetic", "presto", "npz"]


def default_presto_path() -> Path:
    """``<checkout>/../shared/data/presto_algae`` (the shared data folder beside the repository)."""
    return Path(__file__).resolve().parents[4] / ".." / "shared" / "data" / "presto_algae"


class SITSDataset(Dataset):
    """Items ``{"values", "observed": [T, C, H, W], "days", "doy": [T], "index"}`` of a normalised :class:`SITS`.

    When the data carry ground-truth change maps, items also hold ``change [H, W]`` (float 0 / 1); when they carry
    ``extra["latlon"] [N, 2]`` (Presto), items hold ``latlon [2]`` (degrees).
    """

    def __init__(self, data: SITS):
        self.data = data
        self.values = torch.from_numpy(data.values)
        self.observed = torch.from_numpy(data.observed)
        self.days = torch.from_numpy(data.days)
        self.doy = torch.from_numpy(data.doy)
        self.change = None if data.change is None else torch.from_numpy(data.change.astype("float32"))
        ll = data.extra.get("latlon")
        self.latlon = None if ll is None else torch.as_tensor(np.asarray(ll, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        item = {
            "values": self.values[i],
            "observed": self.observed[i],
            "days": self.days[i],
            "doy": self.doy[i],
            "index": torch.tensor(i),
        }
        if self.change is not None:
            item["change"] = self.change[i]
        if self.latlon is not None:
            item["latlon"] = self.latlon[i]
        return item

    def batch(self, index: np.ndarray | list[int]) -> dict[str, Tensor]:
        """Stacked items (for evaluation without a DataLoader)."""
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        out = {
            "values": self.values[idx],
            "observed": self.observed[idx],
            "days": self.days[idx],
            "doy": self.doy[idx],
            "index": idx,
        }
        if self.change is not None:
            out["change"] = self.change[idx]
        if self.latlon is not None:
            out["latlon"] = self.latlon[idx]
        return out


def load_source(
    source: Source, path: str | None = None, *, n: int = 512, size: int = 16, t: int = 16, seed: int = 0
) -> SITS:
    """Raw (unnormalised) data of a source."""
    if source == "synthetic":
        return make_synthetic(n, size=size, t=t, seed=seed)
    if source == "presto":
        return load_presto(path or default_presto_path())
    if source == "npz":
        if path is None:
            raise ValueError("SITSDataModule(source='npz') needs path=<file.npz>")
        return load_npz(path)
    raise ValueError(f"SITSDataModule.source={source!r}: choose synthetic, presto or npz")


class SITSDataModule(L.LightningDataModule):
    """Train / val / test splits of one source, normalised per channel with training statistics.

    Args:
        source: ``synthetic`` (generated, see :mod:`ditkit_geo.synthetic`), ``presto`` (the shared Presto arrays;
            train/val from the original training split, test = ``is_test``) or ``npz`` (a saved cube).
        path: folder (presto) or file (npz); presto defaults to :func:`default_presto_path`.
        n_train, n_val, n_test: synthetic scene counts (``npz``: fractions follow these proportions).
        size, t: synthetic image side and number of dates.
        batch_size: series per batch.
        seed: data seed (synthetic val/test use ``seed + 1`` / ``seed + 2``).
    """

    def __init__(
        self,
        source: Source = "synthetic",
        path: str | None = None,
        n_train: int = 512,
        n_val: int = 32,
        n_test: int = 64,
        size: int = 16,
        t: int = 16,
        batch_size: int = 16,
        seed: int = 0,
    ):
        super().__init__()
        where = "SITSDataModule"
        if source not in ("synthetic", "presto", "npz"):
            raise ValueError(f"{where}: source={source!r}: choose synthetic, presto or npz")
        if source == "npz" and path is None:
            raise ValueError(f"{where}: source='npz' needs path=<file.npz>")
        for name, value, lo in (("n_train", n_train, 1), ("n_val", n_val, 1), ("n_test", n_test, 1)):
            check_int(value, name=name, lo=lo, where=where)
        check_int(size, name="size", lo=2, where=where)
        check_int(t, name="t", lo=3, where=where)
        check_int(batch_size, name="batch_size", lo=1, where=where)
        check_int(seed, name="seed", lo=0, where=where)
        self.source, self.path = source, path
        self.n_train, self.n_val, self.n_test, self.size, self.t = n_train, n_val, n_test, size, t
        self.batch_size, self.seed = batch_size, seed
        self.raw: dict[str, SITS] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.raw:
            return
        if self.source == "synthetic":
            self.raw = {
                "train": load_source("synthetic", n=self.n_train, size=self.size, t=self.t, seed=self.seed),
                "val": load_source("synthetic", n=self.n_val, size=self.size, t=self.t, seed=self.seed + 1),
                "test": load_source("synthetic", n=self.n_test, size=self.size, t=self.t, seed=self.seed + 2),
            }
        else:
            full = load_source(self.source, self.path).usable()
            if "is_test" in full.extra:
                test_idx = np.flatnonzero(full.extra["is_test"] == 1)
                rest = np.flatnonzero(full.extra["is_test"] != 1)
            else:
                perm = np.random.default_rng(self.seed).permutation(len(full))
                k = max(1, int(len(full) * self.n_test / (self.n_train + self.n_val + self.n_test)))
                test_idx, rest = np.sort(perm[:k]), np.sort(perm[k:])
            nv = max(1, int(len(rest) * 0.1))
            self.raw = {"train": full.subset(rest[:-nv]), "val": full.subset(rest[-nv:]), "test": full.subset(test_idx)}
        n_train = len(self.raw["train"])
        if n_train < self.batch_size:
            raise DataError(
                f"the training split holds {n_train} series, fewer than batch_size={self.batch_size} (no full batch)",
                path=self.path or self.source,
                field="batch_size",
                value=self.batch_size,
            )
        self.normalizer = Normalizer.fit(self.raw["train"])
        self.splits = {k: SITSDataset(self.normalizer.apply(v)) for k, v in self.raw.items()}
        self.bands = self.raw["train"].bands

    @property
    def train(self) -> SITSDataset:
        return self.splits["train"]

    def train_dataloader(self):
        return seeded_loader(self.splits["train"], self.batch_size, shuffle=True, seed=self.seed, drop_last=True)

    def val_dataloader(self):
        return seeded_loader(self.splits["val"], self.batch_size, shuffle=False)

    def test_dataloader(self):
        return seeded_loader(self.splits["test"], self.batch_size, shuffle=False)
