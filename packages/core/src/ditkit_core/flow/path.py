"""Probability paths between noise (t = 0) and data (t = 1)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


def _bcast(t: Tensor, x: Tensor) -> Tensor:
    """``t [b]`` -> ``[b, 1, ..., 1]`` matching ``x``'s rank."""
    return t.reshape(t.shape[0], *([1] * (x.dim() - 1))).to(x.dtype)


@dataclass
class PathSample:
    """A point on the path: ``x_t`` and the velocity target ``u_t`` at time ``t``."""

    t: Tensor  # [b]
    x_0: Tensor  # noise, like x_1
    x_1: Tensor  # data [b, ...]
    x_t: Tensor
    u_t: Tensor


class AffinePath:
    """``x_t = alpha(t) x_1 + sigma(t) x_0``; target ``u_t = alpha'(t) x_1 + sigma'(t) x_0``.

    Subclasses define ``alpha``, ``sigma`` and their derivatives. ``t = 0`` must give pure noise
    (alpha = 0, sigma = 1) and ``t = 1`` pure data.
    """

    def alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def sigma(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def d_alpha(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def d_sigma(self, t: Tensor) -> Tensor:
        raise NotImplementedError

    def sample(self, x_0: Tensor, x_1: Tensor, t: Tensor) -> PathSample:
        """Interpolate ``x_0`` (noise) and ``x_1`` (data) at times ``t [b]``."""
        if x_0.shape != x_1.shape:
            raise ValueError(f"path: x_0 {tuple(x_0.shape)} and x_1 {tuple(x_1.shape)} differ in shape")
        if t.dim() != 1 or t.shape[0] != x_1.shape[0]:
            raise ValueError(f"path: t must be [b={x_1.shape[0]}], got {tuple(t.shape)}")
        a, s = _bcast(self.alpha(t), x_1), _bcast(self.sigma(t), x_1)
        da, ds = _bcast(self.d_alpha(t), x_1), _bcast(self.d_sigma(t), x_1)
        return PathSample(t=t, x_0=x_0, x_1=x_1, x_t=a * x_1 + s * x_0, u_t=da * x_1 + ds * x_0)

    def x1_to_velocity(self, x_t: Tensor, x_1: Tensor, t: Tensor, min_sigma: float = 1e-4) -> Tensor:
        """Velocity implied by a data prediction ``x_1`` at ``x_t`` (``x_0 = (x_t - alpha x_1) / sigma``)."""
        a, s = _bcast(self.alpha(t), x_t), _bcast(self.sigma(t), x_t).clamp_min(min_sigma)
        da, ds = _bcast(self.d_alpha(t), x_t), _bcast(self.d_sigma(t), x_t)
        return da * x_1 + ds * (x_t - a * x_1) / s

    def velocity_to_x1(self, x_t: Tensor, v: Tensor, t: Tensor) -> Tensor:
        """Data prediction ``x_1`` from a velocity, for any affine path (solves the 2x2 linear system)."""
        a, s = _bcast(self.alpha(t), x_t), _bcast(self.sigma(t), x_t)
        da, ds = _bcast(self.d_alpha(t), x_t), _bcast(self.d_sigma(t), x_t)
        return (s * v - ds * x_t) / (s * da - ds * a)


class LinearPath(AffinePath):
    """Rectified-flow / optimal-transport path ``x_t = (1 - t) x_0 + t x_1``, ``u_t = x_1 - x_0``.

    Args:
        sigma_min: optional floor on the noise scale at t = 1 (Lipman et al.): ``sigma(t) = 1 - (1 - sigma_min) t``.
    """

    def __init__(self, sigma_min: float = 0.0):
        self.sigma_min = sigma_min

    def alpha(self, t: Tensor) -> Tensor:
        return t

    def sigma(self, t: Tensor) -> Tensor:
        return 1 - (1 - self.sigma_min) * t

    def d_alpha(self, t: Tensor) -> Tensor:
        return torch.ones_like(t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return torch.full_like(t, -(1 - self.sigma_min))


class CosinePath(AffinePath):
    """Variance-preserving trigonometric path ``alpha = sin(pi t / 2)``, ``sigma = cos(pi t / 2)``."""

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)
