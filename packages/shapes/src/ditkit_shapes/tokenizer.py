"""Tokenizers for point clouds behind the core ``Tokenizer`` protocol.

* :class:`PointTokenizer`: one token per point. The DiT sees no positions, so it is permutation equivariant
  (and the flow permutation invariant); a ``[b, p]`` mask supports clouds with different point counts.
* :class:`VoxelPatchTokenizer` (DiT-3D): per-point features are averaged into a ``R^3`` voxel grid
  (PVCNN-style, after normalising each cloud into the grid), cut into ``P^3`` patches (tokens of width
  ``C P^3`` with integer 3D patch positions for 3D RoPE), and brought back to every point by trilinear
  devoxelisation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from ditkit_core.tokenizers import TokenBatch


class PointTokenizer:
    """One token per point: ``{"points": [b, p, 3], "label": [b], "mask": [b, p], "known_mask": [b, p]}``.

    Args:
        class_conditional: put ``label`` into ``TokenBatch.cond`` (class-conditional DiT, ``num_classes > 0``).
    """

    token_dim = 3

    def __init__(self, class_conditional: bool = True):
        self.class_conditional = class_conditional

    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        if "points" not in raw:
            raise KeyError(f"PointTokenizer.encode: batch needs key 'points', got keys {sorted(raw)}")
        pts = raw["points"]
        if pts.dim() != 3 or pts.shape[-1] != 3:
            raise ValueError(f"PointTokenizer.encode: points must be [b, p, 3], got {tuple(pts.shape)}")
        cond = raw.get("label") if self.class_conditional else None
        return TokenBatch(x=pts.float(), mask=raw.get("mask"), cond=cond, known_mask=raw.get("known_mask"))

    def decode(self, tokens: TokenBatch) -> dict[str, Tensor]:
        out = {"points": tokens.x}
        for key, value in (("mask", tokens.mask), ("label", tokens.cond), ("known_mask", tokens.known_mask)):
            if value is not None:
                out[key] = value
        return out


def normalize_to_grid(points: Tensor, mask: Tensor | None = None, eps: float = 1e-6) -> Tensor:
    """PVCNN normalisation: centre each cloud ``[b, p, 3]`` at its mean and scale it into ``[-1, 1]^3``."""
    w = torch.ones_like(points[..., :1]) if mask is None else mask[..., None].to(points.dtype)
    center = (points * w).sum(1, keepdim=True) / w.sum(1, keepdim=True).clamp_min(1)
    centered = (points - center) * w
    scale = centered.norm(dim=-1).amax(1).clamp_min(eps)[:, None, None]
    return centered / scale


def voxelize(feats: Tensor, coords: Tensor, resolution: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Average point features into voxels.

    Args:
        feats: per-point features ``[b, p, c]``.
        coords: point coordinates in ``[-1, 1]^3`` ``[b, p, 3]`` (voxel centres at ``-1 + 2 i / (R - 1)``).
        resolution: ``R``.
        mask: ``[b, p]`` bool, True = real point.

    Returns:
        ``grid [b, c, R, R, R]`` (axes x, y, z; empty voxels 0) and ``counts [b, 1, R, R, R]``.
    """
    b, p, c = feats.shape
    r = resolution
    idx = ((coords.clamp(-1, 1) + 1) / 2 * (r - 1)).round().long()  # [b, p, 3]
    flat = (idx[..., 0] * r + idx[..., 1]) * r + idx[..., 2]  # [b, p]
    w = torch.ones(b, p, 1, dtype=feats.dtype, device=feats.device) if mask is None else mask[..., None].to(feats.dtype)
    sums = feats.new_zeros(b, r**3, c).scatter_add_(1, flat[..., None].expand(b, p, c), feats * w)
    counts = feats.new_zeros(b, r**3, 1).scatter_add_(1, flat[..., None], w)
    grid = sums / counts.clamp_min(1)
    shape = "b (x y z) c -> b c x y z"
    return rearrange(grid, shape, x=r, y=r), rearrange(counts, shape, x=r, y=r)


def devoxelize(grid: Tensor, coords: Tensor) -> Tensor:
    """Trilinear interpolation of ``grid [b, c, R, R, R]`` at ``coords [b, p, 3]`` in ``[-1, 1]^3`` -> ``[b, p, c]``.

    Exact for fields linear in the coordinates (tested).
    """
    # grid_sample on [b, c, D, H, W] reads sample coordinates as (W, H, D) = (z, y, x) here.
    g = coords.clamp(-1, 1).flip(-1)[:, :, None, None, :]  # [b, p, 1, 1, 3]
    out = F.grid_sample(grid, g.to(grid.dtype), mode="bilinear", align_corners=True)  # [b, c, p, 1, 1]
    return rearrange(out, "b c p 1 1 -> b p c")


class VoxelPatchTokenizer:
    """DiT-3D tokenizer: point features -> ``R^3`` voxels -> ``(R / P)^3`` patch tokens of width ``C P^3``.

    ``encode({"points": [b, p, 3], "features": [b, p, C] (default: the normalised coordinates, C = 3),
    "label": [b]})`` returns tokens ``x [b, (R/P)^3, C P^3]`` with integer patch positions ``pos [b, n, 3]`` and
    ``meta["coords"]`` (the normalised point coordinates); ``decode`` returns ``{"grid": [b, C, R, R, R]}``
    exactly (patchify / unpatchify is a bijection) and, with ``meta["coords"]``, the trilinearly devoxelised
    per-point features ``{"features": [b, p, C]}``.

    Args:
        resolution: voxels per axis ``R``.
        patch: patch size ``P`` (divides ``R``).
        channels: feature channels ``C``.
        class_conditional: keep ``label`` as ``cond``.
    """

    def __init__(self, resolution: int = 16, patch: int = 2, channels: int = 3, class_conditional: bool = True):
        if resolution % patch:
            raise ValueError(f"VoxelPatchTokenizer: patch={patch} must divide resolution={resolution}")
        self.resolution, self.patch, self.channels = resolution, patch, channels
        self.class_conditional = class_conditional
        self.token_dim = channels * patch**3

    @property
    def grid(self) -> int:
        """Patches per axis ``R / P``."""
        return self.resolution // self.patch

    def patchify(self, grid: Tensor) -> Tensor:
        """``[b, C, R, R, R] -> [b, (R/P)^3, P^3 C]`` (raster order x, y, z)."""
        p = self.patch
        return rearrange(grid, "b c (x px) (y py) (z pz) -> b (x y z) (px py pz c)", px=p, py=p, pz=p)

    def unpatchify(self, tokens: Tensor, channels: int | None = None) -> Tensor:
        """Inverse of :meth:`patchify` (``channels`` for tokens of another width, e.g. the DiT output)."""
        g, p = self.grid, self.patch
        c = channels or tokens.shape[-1] // p**3
        return rearrange(tokens, "b (x y z) (px py pz c) -> b c (x px) (y py) (z pz)", x=g, y=g, px=p, py=p, pz=p, c=c)

    def positions(self, batch: int, device: torch.device | str = "cpu") -> Tensor:
        """Integer 3D patch positions ``[b, (R/P)^3, 3]`` in the token order of :meth:`patchify`."""
        r = torch.arange(self.grid, device=device, dtype=torch.float32)
        pos = torch.stack(torch.meshgrid(r, r, r, indexing="ij"), -1).reshape(-1, 3)
        return pos[None].expand(batch, -1, -1)

    def encode(self, raw: dict[str, Any]) -> TokenBatch:
        pts = raw["points"]
        if pts.dim() != 3 or pts.shape[-1] != 3:
            raise ValueError(f"VoxelPatchTokenizer.encode: points must be [b, p, 3], got {tuple(pts.shape)}")
        coords = normalize_to_grid(pts.float(), raw.get("mask"))
        feats = raw.get("features", coords)
        if feats.shape[-1] != self.channels:
            raise ValueError(
                f"VoxelPatchTokenizer.encode: features have {feats.shape[-1]} channels, "
                f"expected channels={self.channels}"
            )
        grid, _ = voxelize(feats, coords, self.resolution, raw.get("mask"))
        cond = raw.get("label") if self.class_conditional else None
        x = self.patchify(grid)
        return TokenBatch(x=x, pos=self.positions(x.shape[0], x.device), cond=cond, meta={"coords": coords})

    def decode(self, tokens: TokenBatch) -> dict[str, Tensor]:
        grid = self.unpatchify(tokens.x)
        out = {"grid": grid}
        if "coords" in tokens.meta:
            out["features"] = devoxelize(grid, tokens.meta["coords"])
        return out
