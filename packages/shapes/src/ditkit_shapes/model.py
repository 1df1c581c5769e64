"""DiT-3D backbone pieces: 3D window attention over voxel patches and the point <-> voxel velocity network."""

from __future__ import annotations

from dataclasses import replace

import torch
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.nn.dit import BlockInputs
from ditkit_shapes.tokenizer import VoxelPatchTokenizer, devoxelize, normalize_to_grid, voxelize


class FourierPointEmbed(nn.Module):
    """Point-token input embedding ``Linear(xyz) + Linear([sin(f xyz), cos(f xyz)])`` (random-Fourier-style).

    A linear map of raw coordinates followed by a small network has a strong low-frequency bias, which blurs
    thin surfaces; sin / cos of each coordinate at ``n_freqs`` log-spaced angular frequencies
    ``min_freq .. max_freq`` (rad per coordinate unit) give the DiT high-frequency access to positions. Acts on each
    point separately, so the DiT stays permutation equivariant. Replaces ``DiT.x_embed`` (same shapes:
    ``[b, p, 3] -> [b, p, dim]``).

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


class Window3DDiT(DiT):
    """A :class:`DiT` whose selected blocks attend inside non-overlapping ``w^3`` windows of the patch grid.

    Tokens must be the ``g^3`` voxel patches in raster order (x, y, z), as :class:`VoxelPatchTokenizer` emits.
    Window blocks regroup the tokens into ``(g / w)^3`` window batches (DiT-3D's 3D window attention), the other
    blocks stay global, so information still travels across windows. Block ``i`` is windowed when
    ``(i + 1) % window_every != 0`` (``window_every = 1``: every block).

    Args:
        config: the DiT configuration (``registers`` must be 0; 1D ``window`` must be unset).
        grid: patches per axis ``g``.
        window: window size per axis ``w`` (divides ``g``).
        window_every: every ``window_every``-th block is global.
    """

    def __init__(self, config: DiTConfig, grid: int, window: int, window_every: int = 2):
        super().__init__(config)
        if grid % window:
            raise ValueError(f"Window3DDiT: window={window} must divide the patch grid {grid}")
        if config.registers or config.window is not None:
            raise ValueError("Window3DDiT: use registers=0 and window=None (1D windows) with 3D windows")
        self.grid, self.window, self.window_every = grid, window, window_every

    def is_window_block(self, index: int) -> bool:
        return self.window_every == 1 or (index + 1) % self.window_every != 0

    def _split(self, x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        g, w = self.grid // self.window, self.window
        return rearrange(x, "b (x wx y wy z wz) ... -> (b x y z) (wx wy wz) ...", x=g, y=g, z=g, wx=w, wy=w, wz=w)

    def _merge(self, x: Tensor, b: int) -> Tensor:
        g, w = self.grid // self.window, self.window
        return rearrange(x, "(b x y z) (wx wy wz) d -> b (x wx y wy z wz) d", b=b, x=g, y=g, z=g, wx=w, wy=w, wz=w)

    def run_blocks(self, h: Tensor, inp: BlockInputs) -> Tensor:
        b, n = h.shape[:2]
        if n != self.grid**3:
            raise ValueError(f"Window3DDiT: expected {self.grid}^3 = {self.grid**3} tokens, got {n}")
        nw = (self.grid // self.window) ** 3
        rep = lambda v: None if v is None else v.repeat_interleave(nw, 0)  # noqa: E731
        local = replace(
            inp,
            c=rep(inp.c),
            temb=rep(inp.temb),
            t=rep(inp.t),
            mask=self._split(inp.mask),
            angles=self._split(inp.angles),
            context=rep(inp.context),
            context_mask=rep(inp.context_mask),
        )
        for i, blk in enumerate(self.blocks):
            if self.is_window_block(i):
                h = self._merge(blk(self._split(h), local), b)  # [b * nw, w^3, d] inside
            else:
                h = blk(h, inp)
        return h


class VoxelVelocity(nn.Module):
    """DiT-3D velocity network on points: lift -> voxelise -> patches -> DiT -> devoxelise -> per-point head.

    ``x_t [b, p, 3]`` is lifted to ``C`` channels per point, averaged into the ``R^3`` grid of each cloud's
    normalised coordinates, patchified into ``(R/P)^3`` tokens with 3D positions, run through the DiT (global or
    3D-windowed), unpatchified and trilinearly devoxelised back to the points; a point-wise MLP of the
    devoxelised and lifted features returns the velocity (zero at initialisation, like the DiT).

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

    def aux_loss(self) -> Tensor:
        return self.dit.aux_loss()
