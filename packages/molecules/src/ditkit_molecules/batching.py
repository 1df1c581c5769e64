"""Size-bucketed batches for atom sets: less padding, the same data order on a resume.

Molecules are padded to the largest of their batch, and the pair features of the 3D networks cost ``O(a^2)`` per
molecule, so a batch of 48 random NCI molecules (19.5 atoms on average, 33 for the largest) spends most of its pair
work on padding. :class:`SizeBucketBatchSampler` shuffles the training set by ``(seed, epoch)``, cuts the order into
chunks of ``buckets`` batches, sorts each chunk by molecule size, splits it into batches and shuffles the batches:
every epoch still visits every molecule once, batch composition stays random across chunks, and the padded width of
a batch is close to its molecules' own sizes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class SizeBucketBatchSampler(Sampler[list[int]]):
    """Batches of indices of similar sizes (see the module docstring).

    Args:
        sizes: size of every item (atoms).
        batch_size: items per batch.
        seed: seed of the permutations (order depends on ``(seed, epoch)`` only).
        buckets: batches per sorted chunk (1: plain shuffled batches).
        drop_last: drop the last, smaller batch of every chunk walk.

    Under ``torch.distributed`` every rank takes every ``world_size``-th batch.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, seed: int = 0, buckets: int = 8, drop_last: bool = True):
        if batch_size < 1 or buckets < 1:
            raise ValueError(f"SizeBucketBatchSampler: batch_size={batch_size} and buckets={buckets} must be >= 1")
        self.sizes = torch.as_tensor(list(sizes), dtype=torch.long)
        self.batch_size, self.seed, self.buckets, self.drop_last = batch_size, seed, buckets, drop_last
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, k: int) -> None:
        """Drop the first ``k`` batches of the next epoch (resuming from a mid-epoch checkpoint)."""
        self._skip = k

    def _rank(self) -> tuple[int, int]:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def batches(self) -> list[list[int]]:
        """This epoch's batches (all ranks)."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(len(self.sizes), generator=g)
        chunk = self.batch_size * self.buckets
        out: list[list[int]] = []
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            idx = idx[torch.argsort(self.sizes[idx], stable=True)]
            for b in range(0, len(idx), self.batch_size):
                batch = idx[b : b + self.batch_size].tolist()
                if len(batch) == self.batch_size or not self.drop_last:
                    out.append(batch)
        perm = torch.randperm(len(out), generator=g).tolist()
        return [out[i] for i in perm]

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._rank()
        mine = self.batches()[rank::world]
        skip, self._skip = self._skip, 0
        return iter(mine[skip:])

    def __len__(self) -> int:
        full, rest = divmod(len(self.sizes), self.batch_size * self.buckets)
        n = full * self.buckets + (rest // self.batch_size if self.drop_last else -(-rest // self.batch_size))
        rank, world = self._rank()
        return len(range(rank, n, world))
