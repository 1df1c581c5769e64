"""N-D rotary position embeddings (1, 2 or 3 axes) with length-extrapolation scalings.

The head dimension is split into ``k`` equal chunks, one per position axis; each chunk rotates its channel
pairs by ``pos[..., axis] * inv_freq``. Positions may be integers or floats (e.g. seconds or metres).

Scalings for sequences longer than those seen in training (``scale = target length / training length``):

* ``none``: plain RoPE.
* ``pi``: position interpolation, every frequency divided by ``scale``.
* ``ntk``: NTK-aware base change ``theta * scale ** (d / (d - 2))``: high frequencies kept, low ones stretched.
* ``freq_aware``: per-frequency blend (NTK-by-parts): the highest frequencies stay, the lowest are interpolated
  as in ``pi``, with a linear ramp over the frequency index in between.
* ``time_aware``: blends ``pi`` at ``t = 0`` (noise: global layout) into ``freq_aware`` at ``t = 1``
  (data: local detail) in log-frequency, per sample (Lumina-Next's time-aware scaled RoPE).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RotaryEmbedding(nn.Module):
    """Computes rotation angles for ``pos [b, n, k]`` and applies them to ``[b, h, n, head_dim]`` tensors.

    Args:
        head_dim: per-head width, divisible by ``2 * axes``.
        axes: number of position axes ``k``.
        theta: base frequency.
        scaling: one of ``none``, ``pi``, ``ntk``, ``freq_aware``, ``time_aware``.
        scale: extrapolation factor (>= 1).
    """

    def __init__(self, head_dim: int, axes: int, theta: float = 10000.0, scaling: str = "none", scale: float = 1.0):
        super().__init__()
        if head_dim % (2 * axes):
            raise ValueError(f"RotaryEmbedding: head_dim={head_dim} must be divisible by 2 * axes={2 * axes}")
        self.head_dim, self.axes, self.scaling, self.scale = head_dim, axes, scaling, scale
        d = head_dim // axes
        idx = torch.arange(0, d, 2, dtype=torch.float64) / d
        base = theta ** (-idx)  # [d/2]
        pi = base / scale
        ntk = (theta * scale ** (d / max(d - 2, 1))) ** (-idx)
        ramp = torch.linspace(0.0, 1.0, len(idx), dtype=torch.float64)  # 0: highest freq, 1: lowest
        freq_aware = torch.exp((1 - ramp) * base.log() + ramp * pi.log())
        table = {"none": base, "pi": pi, "ntk": ntk, "freq_aware": freq_aware, "time_aware": freq_aware}
        if scaling not in table:
            raise ValueError(f"RotaryEmbedding: unknown scaling {scaling!r}; choose one of {sorted(table)}")
        self.register_buffer("inv_freq", table[scaling].float(), persistent=False)
        self.register_buffer("inv_freq_pi", pi.float(), persistent=False)

    def angles(self, pos: Tensor, t: Tensor | None = None) -> Tensor:
        """Rotation angles ``[b, n, head_dim / 2]`` for positions ``pos [b, n, k]`` (and times ``t [b]``)."""
        if pos.dim() != 3 or pos.shape[-1] != self.axes:
            raise ValueError(f"RotaryEmbedding: pos must be [b, n, {self.axes}], got {tuple(pos.shape)}")
        pos = pos.float()
        if self.scaling == "time_aware" and t is not None:
            w = t.float().clamp(0, 1)[:, None]  # [b, 1]
            inv = torch.exp((1 - w) * self.inv_freq_pi.log() + w * self.inv_freq.log())  # [b, d/2]
            ang = pos[..., :, None] * inv[:, None, None, :]  # [b, n, k, d/2]
        else:
            ang = pos[..., :, None] * self.inv_freq  # [b, n, k, d/2]
        return ang.flatten(-2)  # [b, n, k * d/2] = [b, n, head_dim/2]

    @staticmethod
    def rotate(x: Tensor, angles: Tensor) -> Tensor:
        """Rotate channel pairs ``(x[2i], x[2i+1])`` of ``x [b, h, n, head_dim]`` by ``angles [b, n, head_dim/2]``.

        One complex multiply by ``exp(i angle)`` (a single fused pass) instead of four real products.
        """
        if x.dtype not in (torch.float32, torch.float64):  # complex half is not supported everywhere
            return RotaryEmbedding.rotate(x.float(), angles).to(x.dtype)
        rot = torch.polar(torch.ones_like(angles, dtype=x.dtype), angles.to(x.dtype))[:, None]  # [b, 1, n, hd/2]
        xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))  # [b, h, n, hd/2]
        return torch.view_as_real(xc * rot).flatten(-2)

    @staticmethod
    def rotate_reference(x: Tensor, angles: Tensor) -> Tensor:
        """The same rotation with real arithmetic (reference for tests)."""
        cos, sin = angles.cos()[:, None].to(x.dtype), angles.sin()[:, None].to(x.dtype)  # [b, 1, n, hd/2]
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # [b, h, n, hd/2, 2]
        return out.flatten(-2)
