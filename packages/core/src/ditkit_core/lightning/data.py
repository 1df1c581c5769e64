"""Data-loading helpers that keep resumed runs identical to uninterrupted ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation derived from ``(seed, epoch)`` only.

    Lightning calls ``set_epoch`` before each epoch, so a run resumed at epoch k sees exactly the order an
    uninterrupted run sees at epoch k (a DataLoader's own generator would restart from its seed).
    """

    def __init__(self, data: Sized, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = len(data), seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def seeded_loader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool,
    seed: int = 0,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose order depends on ``(seed, epoch)`` only (see :class:`EpochShuffleSampler`)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(dataset, seed, shuffle),
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
