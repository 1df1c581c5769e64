"""Data-loading helpers that keep resumed runs identical to uninterrupted ones, also from mid-epoch checkpoints.

Data order depends on ``(seed, epoch)`` only (:class:`EpochShuffleSampler`), so a run resumed at epoch k sees the
order an uninterrupted run sees at epoch k. A checkpoint taken in the middle of an epoch is resumed by skipping the
batches of that epoch the run had already trained on (:func:`resume_data_order`, called by
``FlowMatchingModule.on_train_start``): samplers that implement ``skip_batches(k)`` (this module's sampler, or a
domain's batch sampler) drop the first ``k`` batches of the next epoch they yield.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """Shuffles with a permutation derived from ``(seed, epoch)`` only.

    Lightning calls ``set_epoch`` before each epoch, so a run resumed at epoch k sees exactly the order an
    uninterrupted run sees at epoch k (a DataLoader's own generator would restart from its seed).

    Args:
        data: the dataset (its length).
        seed: seed of the permutations.
        shuffle: shuffle (else the natural order).
        batch_size: batch size of the loader, for :meth:`skip_batches`.
    """

    def __init__(self, data: Sized, seed: int = 0, shuffle: bool = True, batch_size: int = 1):
        self.n, self.seed, self.shuffle, self.epoch = len(data), seed, shuffle, 0
        self.batch_size = batch_size
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, k: int) -> None:
        """Drop the first ``k`` batches of the next epoch (resuming from a mid-epoch checkpoint)."""
        self._skip = k * self.batch_size

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        skip, self._skip = self._skip, 0
        return iter(order[skip:])

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
        sampler=EpochShuffleSampler(dataset, seed, shuffle, batch_size=batch_size),
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )


def _skippers(loader: Any) -> list[Any]:
    found = []
    for obj in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if obj is not None and hasattr(obj, "skip_batches"):
            found.append(obj)
        inner = getattr(obj, "sampler", None)  # torch's BatchSampler wraps the index sampler
        if inner is not None and hasattr(inner, "skip_batches") and inner not in found:
            found.append(inner)
    return found[:1]


def resume_data_order(trainer: L.Trainer) -> int:
    """On a resume from a mid-epoch checkpoint, make the train loaders skip the batches already trained on.

    Returns:
        the number of batches skipped (0 when not resuming mid-epoch).
    """
    n = trainer.num_training_batches
    if not isinstance(n, int) or n <= 0 or trainer.accumulate_grad_batches != 1:
        return 0
    done = int(trainer.global_step) - int(trainer.current_epoch) * n
    if done <= 0 or done >= n:
        return 0
    loaders = trainer.train_dataloader
    flat = (
        loaders
        if isinstance(loaders, (list, tuple))
        else list(loaders.values())
        if isinstance(loaders, dict)
        else [loaders]
    )
    for loader in flat:
        for s in _skippers(loader):
            s.skip_batches(done)
    return done


__all__ = ["EpochShuffleSampler", "resume_data_order", "seeded_loader"]
