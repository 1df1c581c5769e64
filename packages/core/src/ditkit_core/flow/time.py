"""Training-time samplers of ``t`` in [0, 1] (0 = noise, 1 = data)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor


def shift_time(t: Tensor, shift: float) -> Tensor:
    """Shift times towards noise (``shift > 1``) as SD3 does for longer sequences / higher resolutions.

    In diffusers' sigma convention ``sigma' = s sigma / (1 + (s - 1) sigma)`` with ``sigma = 1 - t``;
    here ``t' = 1 - sigma'`` = ``t / (t + s (1 - t))``.
    """
    return t / (t + shift * (1 - t))


def length_shift(
    n_tokens: int, base_tokens: int = 256, base_shift: float = 1.0, max_tokens: int = 4096, max_shift: float = 3.0
) -> float:
    """Length/resolution-dependent shift: ``log(shift)`` linear in ``n`` between two anchors (SD3 / Flux rule)."""
    if max_tokens == base_tokens:
        return base_shift
    m = (math.log(max_shift) - math.log(base_shift)) / (max_tokens - base_tokens)
    return math.exp(math.log(base_shift) + m * (n_tokens - base_tokens))


@dataclass
class TimeSampler:
    """Draws training times.

    Args:
        kind: ``uniform``; ``logit_normal`` (``t = sigmoid(N(loc, scale))``, SD3); ``mode`` (SD3's mode sampling
            with heavy-tail parameter ``mode_scale``); ``cosine`` (``t = 1 - cos(pi u / 2)`` ... mapped).
        loc: mean of the logit-normal.
        scale: std of the logit-normal.
        mode_scale: the ``s`` of mode sampling (0 = uniform).
        shift: shift applied after sampling (1 = none), see :func:`shift_time`.
        eps: times are clamped to ``[eps, 1 - eps]``.
    """

    kind: Literal["uniform", "logit_normal", "mode", "cosine"] = "logit_normal"
    loc: float = 0.0
    scale: float = 1.0
    mode_scale: float = 1.29
    shift: float = 1.0
    eps: float = 1e-5

    def __post_init__(self) -> None:
        kinds = ("uniform", "logit_normal", "mode", "cosine")
        if self.kind not in kinds:
            raise ValueError(f"TimeSampler.kind={self.kind!r}: must be one of {kinds}")
        if self.shift <= 0:
            raise ValueError(f"TimeSampler.shift={self.shift!r}: must be > 0")

    def __call__(self, b: int, device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> Tensor:
        """Return ``t [b]``."""
        if self.kind == "uniform":
            t = torch.rand(b, device=device, generator=generator)
        elif self.kind == "logit_normal":
            t = torch.sigmoid(self.loc + self.scale * torch.randn(b, device=device, generator=generator))
        elif self.kind == "mode":
            u = torch.rand(b, device=device, generator=generator)
            s = 1 - u - self.mode_scale * (torch.cos(math.pi / 2 * u) ** 2 - 1 + u)  # sigma, SD3 eq. 20
            t = 1 - s
        else:
            u = torch.rand(b, device=device, generator=generator)
            t = 1 - torch.cos(math.pi / 2 * u)
        if self.shift != 1.0:
            t = shift_time(t, self.shift)
        return t.clamp(self.eps, 1 - self.eps)


def uniform() -> TimeSampler:
    return TimeSampler("uniform")


def logit_normal(loc: float = 0.0, scale: float = 1.0) -> TimeSampler:
    return TimeSampler("logit_normal", loc=loc, scale=scale)


def mode(scale: float = 1.29) -> TimeSampler:
    return TimeSampler("mode", mode_scale=scale)
