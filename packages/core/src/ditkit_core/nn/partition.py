"""Token partitions: groups of tokens that local blocks attend within (3D grid windows, 1D chunks).

A :class:`TokenPartition` is data: an index ``[g, s]`` that splits ``n = g * s`` tokens into ``g`` groups of ``s``.
:meth:`DiT.block <ditkit_core.nn.DiT.block>` runs a local block on ``partition.split(h)`` (groups folded into the
batch) and merges the result back, so every feature that runs blocks through ``DiT.block`` (plain forward, caches,
compiled blocks) sees the same computation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn


class TokenPartition(nn.Module):
    """A partition of ``n`` tokens into ``g`` equal groups of ``s`` tokens.

    Args:
        index: ``[g, s]`` long, every token index in ``[0, n)`` exactly once.
    """

    def __init__(self, index: Tensor):
        super().__init__()
        if index.dim() != 2:
            raise ValueError(f"TokenPartition: index must be [groups, size], got {tuple(index.shape)}")
        flat = index.reshape(-1)
        if not torch.equal(flat.sort().values, torch.arange(flat.numel())):
            raise ValueError("TokenPartition: index must hold every token index exactly once")
        self.register_buffer("index", index.long(), persistent=False)
        self.register_buffer("inverse", torch.argsort(flat), persistent=False)

    @property
    def groups(self) -> int:
        return self.index.shape[0]

    @property
    def size(self) -> int:
        return self.index.shape[1]

    @property
    def tokens(self) -> int:
        return self.index.numel()

    @classmethod
    def grid(cls, grid: list[int] | tuple[int, ...], window: list[int] | tuple[int, ...]) -> TokenPartition:
        """Non-overlapping windows of shape ``window`` over tokens laid out on ``grid`` in raster order.

        Example: ``grid=[8, 8, 8]``, ``window=[4, 4, 4]`` gives 8 groups of 64 tokens (DiT-3D's window attention).
        """
        if len(grid) != len(window) or any(g % w for g, w in zip(grid, window)):
            raise ValueError(f"TokenPartition.grid: window {list(window)} must divide grid {list(grid)} per axis")
        k = len(grid)
        ids = torch.arange(math.prod(grid)).reshape(*[v for g, w in zip(grid, window) for v in (g // w, w)])
        # axes (o0, w0, o1, w1, ...) -> (o0, o1, ..., w0, w1, ...)
        perm = [2 * a for a in range(k)] + [2 * a + 1 for a in range(k)]
        return cls(ids.permute(*perm).reshape(math.prod(g // w for g, w in zip(grid, window)), math.prod(window)))

    @classmethod
    def chunks(cls, n: int, size: int) -> TokenPartition:
        """Consecutive 1D chunks of ``size`` tokens (``size`` divides ``n``)."""
        if n % size:
            raise ValueError(f"TokenPartition.chunks: size {size} must divide n={n}")
        return cls(torch.arange(n).reshape(n // size, size))

    def _check(self, n: int) -> None:
        if n != self.tokens:
            raise ValueError(
                f"TokenPartition: expected {self.tokens} tokens ({self.groups} groups of {self.size}), got {n}"
            )

    def split(self, x: Tensor | None) -> Tensor | None:
        """``[b, n, ...] -> [b * g, s, ...]``."""
        if x is None:
            return None
        self._check(x.shape[1])
        return rearrange(x[:, self.index], "b g s ... -> (b g) s ...")

    def merge(self, x: Tensor, b: int) -> Tensor:
        """``[b * g, s, ...] -> [b, n, ...]`` (inverse of :meth:`split`)."""
        return rearrange(x, "(b g) s ... -> b (g s) ...", b=b)[:, self.inverse]

    def split_pair(self, pair: Tensor | None) -> Tensor | None:
        """Pair features ``[b, n, n, p] -> [b * g, s, s, p]`` (pairs inside each group)."""
        if pair is None:
            return None
        self._check(pair.shape[1])
        sub = pair[:, self.index[:, :, None], self.index[:, None, :]]  # [b, g, s, s, p]
        return rearrange(sub, "b g s r ... -> (b g) s r ...")

    def repeat(self, v: Tensor | None) -> Tensor | None:
        """Per-sample tensors ``[b, ...] -> [b * g, ...]`` (each group keeps its sample's value)."""
        return None if v is None else v.repeat_interleave(self.groups, 0)

    def split_inputs(self, inp: Any) -> Any:
        """Split a :class:`~ditkit_core.nn.dit.BlockInputs`: per-token fields split, per-sample fields repeated."""
        return dataclasses.replace(
            inp,
            c=self.repeat(inp.c),
            temb=self.repeat(inp.temb),
            t=self.repeat(inp.t),
            mask=self.split(inp.mask),
            angles=self.split(inp.angles),
            context=self.repeat(inp.context),
            context_mask=self.repeat(inp.context_mask),
            pair=self.split_pair(inp.pair),
        )


__all__ = ["TokenPartition"]
