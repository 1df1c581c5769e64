"""Shapes networks around one core DiT: the Fourier point embedding and the DiT-3D point <-> voxel velocity network.

3D window attention is configuration data (``DiTConfig.window_grid`` / ``window_size``, set by
:meth:`ShapesModule.resolve_config <ditkit_shapes.module.ShapesModule.resolve_config>`): the core DiT runs its local
blocks inside the grid's windows, so caches and compiled blocks see the same computation as the plain forward.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ditkit_core.nn import DiT
from ditkit_shapes.tokenizer import VoxelPatchTokenizer, devoxelize, normalize_to_grid, voxelize


class FourierPointEmbed(nn.Module):
    """Point-token input embedding ``Linear(xyz) + Linear([sin(f xyz), cos(f xyz)])`` (random-Fourier-style).

    A linear map of raw coordinates followed by a small network has a strong low-frequency bias, which blurs
    thin surfaces; sin / cos of each coordinate at ``n_freqs`` log-spaced angular frequencies
    ``min_freq .. max_freq`` (rad per coordinate unit) give the DiT high-frequency access to positions. Acts on each
    point separately, so the DiT stays permutation equivariant. Set as ``DiT.x_embed`` (the DiT's input-embedding
    seam; same shapes: ``[b, p, 3] -> [b, p, dim]``) by :meth:`ShapesModule.build_network
    <ditkit_shapes.module.ShapesModule.build_network>`.

    Args:
        base: the DiT's own input projection ``Linear(3, dim)`` (kept: the raw-coordinate term).
        n_freqs: frequencies per coordinate.
        min_freq, max_freq: lowest / highest angular frequency.
    """

    def __init__(self, base: nn.Linear, n_freqs: int = 8, min_freq: float = 1.0, max_freq: float = 32.0):
        super().__init__()
        if n_freqs < 1 or not 0 < min_freq <= max_freq:
            raise ValueError(
                f"FourierPointEmbed: need n_freqs >= 1 and 0 < min_freq <= max_freq, got "
                f"{n_freqs}, {min_freq}, {max_freq}"
            )
        self.base = base
        self.register_buffer(
            "freqs",
            torch.logspace(torch.log10(torch.tensor(min_freq)), torch.log10(torch.tensor(max_freq)), n_freqs),
            persistent=False,
        )
        self.proj = nn.Linear(2 * base.in_features * n_freqs, base.out_features)

    def features(self, x: Tensor) -> Tensor:
        """``[..., c]`` -> ``[..., 2 c n_freqs]`` (sin and cos of every coordinate at every frequency)."""
        ang = x.float()[..., None] * self.freqs  # [..., c, F]
        return torch.cat([ang.sin(), ang.cos()], -1).flatten(-2).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.proj(self.features(x))


class VoxelVelocity(nn.Module):
    """DiT-3D velocity network on points: lift -> voxelise -> patches -> DiT -> devoxelise -> per-point head.

    ``x_t [b, p, 3]`` is lifted to ``C`` channels per point, averaged into the ``R^3`` grid of each cloud's
    normalised coordinates, patchified into ``(R/P)^3`` tokens with 3D positions, run through the DiT (global, or
    3D-windowed when its config has ``window_grid``), unpatchified and trilinearly devoxelised back to the points;
    a point-wise MLP of the devoxelised and lifted features returns the velocity (zero at initialisation, like the
    DiT).

    Args:
        tokenizer: the voxel-patch tokenizer (``channels = C``).
        dit: the DiT (``in_dim = out_dim = C P^3``, ``rope_axes = 3`` recommended).
        hidden: width of the point-wise MLPs.
    """

    def __init__(self, tokenizer: VoxelPatchTokenizer, dit: DiT, hidden: int = 64):
        super().__init__()
        c = tokenizer.channels
        self.tokenizer, self.dit = tokenizer, dit
        self.lift = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, c))
        self.head = nn.Sequential(
            nn.Linear(2 * c + 3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 3)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(
        self,
        x: Tensor,
        t: Tensor,
        *,
        mask: Tensor | None = None,
        cond: Tensor | None = None,
        drop_cond: Tensor | None = None,
        **_: object,
    ) -> Tensor:
        """Velocity ``[b, p, 3]`` of points ``x [b, p, 3]`` at times ``t [b]``."""
        tok = self.tokenizer
        coords = normalize_to_grid(x, mask)  # [b, p, 3] in [-1, 1]
        feats = self.lift(x)  # [b, p, C]
        grid, _ = voxelize(feats, coords, tok.resolution, mask)  # [b, C, R, R, R]
        tokens = tok.patchify(grid)  # [b, n, C P^3]
        out = self.dit(tokens, t, pos=tok.positions(x.shape[0], x.device), cond=cond, drop_cond=drop_cond)
        back = devoxelize(tok.unpatchify(out, tok.channels), coords)  # [b, p, C]
        v = self.head(torch.cat([back, feats, x], -1))
        return v if mask is None else v * mask[..., None].to(v.dtype)
