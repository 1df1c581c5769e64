"""Sample-quality distances between point sets (used by the toy app and by domains as generic checks)."""

from __future__ import annotations

import torch
from torch import Tensor


def energy_distance(x: Tensor, y: Tensor) -> Tensor:
    """Energy distance ``2 E|X-Y| - E|X-X'| - E|Y-Y'|`` between samples ``x [n, d]`` and ``y [m, d]`` (>= 0).

    Zero iff the distributions are equal (Szekely & Rizzo). Uses the unbiased within-set means.
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"energy_distance: need [n, d] and [m, d], got {tuple(x.shape)} and {tuple(y.shape)}")
    x, y = x.double(), y.double()
    n, m = x.shape[0], y.shape[0]
    xy = torch.cdist(x, y).mean()
    xx = torch.cdist(x, x).sum() / (n * (n - 1))
    yy = torch.cdist(y, y).sum() / (m * (m - 1))
    return (2 * xy - xx - yy).float()


def sliced_wasserstein(x: Tensor, y: Tensor, projections: int = 256, seed: int = 0) -> Tensor:
    """Sliced 1-Wasserstein distance between equal-size samples ``x, y [n, d]`` (random directions, fixed seed)."""
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"sliced_wasserstein: need equal [n, d] shapes, got {tuple(x.shape)} and {tuple(y.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    px, _ = (x.double().cpu() @ dirs).sort(dim=0)
    py, _ = (y.double().cpu() @ dirs).sort(dim=0)
    return (px - py).abs().mean().float()
