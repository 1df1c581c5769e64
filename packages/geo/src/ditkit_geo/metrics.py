"""Metrics (MAE / RMSE / CRPS, PSNR / SSIM / spectral angle, F1) and the simple baselines they are compared with.

Cube tensors are ``[N, T, C, H, W]``; masks are bool of the same shape (True = scored / given).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def masked_mae(pred: Tensor, truth: Tensor, mask: Tensor) -> float:
    """Mean absolute error over ``mask``."""
    m = mask & torch.isfinite(truth)
    return float((pred - truth).abs()[m].mean())


def masked_rmse(pred: Tensor, truth: Tensor, mask: Tensor) -> float:
    """Root mean squared error over ``mask``."""
    m = mask & torch.isfinite(truth)
    return float(((pred - truth) ** 2)[m].mean().sqrt())


def crps_ensemble(samples: Tensor, truth: Tensor, mask: Tensor) -> float:
    """Continuous ranked probability score of an ensemble, averaged over ``mask``.

    ``CRPS = E|X - y| - 0.5 E|X - X'|`` with the empirical (sample) distribution ``samples [S, ...]``
    (equals the MAE for ``S = 1``; lower is better).
    """
    m = mask & torch.isfinite(truth)
    s = samples[:, m]  # [S, k]
    y = truth[m]  # [k]
    term1 = (s - y).abs().mean(0)
    term2 = (s[:, None] - s[None]).abs().mean((0, 1))
    return float((term1 - 0.5 * term2).mean())


def psnr(pred: Tensor, truth: Tensor, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)`` over all finite entries."""
    m = torch.isfinite(truth)
    mse = float(((pred - truth) ** 2)[m].mean())
    return 10 * math.log10(data_range**2 / max(mse, 1e-12))


def ssim(pred: Tensor, truth: Tensor, data_range: float, window: int = 7) -> float:
    """Mean structural similarity of images ``[N, C, H, W]`` (uniform ``window`` x ``window``, Wang et al. 2004)."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = pred.flatten(0, 1)[:, None].double(), truth.flatten(0, 1)[:, None].double()  # [N*C, 1, H, W]
    window = min(window, x.shape[-1], x.shape[-2])
    pool = lambda a: F.avg_pool2d(a, window, stride=1)  # noqa: E731
    mx, my = pool(x), pool(y)
    vx, vy, cxy = pool(x * x) - mx**2, pool(y * y) - my**2, pool(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def spectral_angle(pred: Tensor, truth: Tensor, mask: Tensor | None = None, dim: int = -3) -> float:
    """Mean spectral angle in degrees between spectra along ``dim`` (the channel axis), over pixels in ``mask``."""
    cos = F.cosine_similarity(pred, truth, dim=dim, eps=1e-8).clamp(-1, 1)
    ang = torch.rad2deg(torch.acos(cos))
    return float(ang[mask].mean() if mask is not None else ang.mean())


def f1_score(pred: Tensor, truth: Tensor) -> float:
    """F1 of boolean maps."""
    tp = float((pred & truth).sum())
    fp, fn = float((pred & ~truth).sum()), float((~pred & truth).sum())
    return 2 * tp / max(2 * tp + fp + fn, 1e-12)


# ---------------------------------------------------------------------- baselines
def _neighbours(given: Tensor) -> tuple[Tensor, Tensor]:
    """Index of the previous / next given date (``-1`` / ``T`` when none) along dim 1 of ``[N, T, ...]``."""
    t = given.shape[1]
    idx = torch.arange(t).reshape(1, t, *([1] * (given.dim() - 2))).expand_as(given)
    prev = torch.where(given, idx, torch.full_like(idx, -1)).cummax(1).values
    nxt_rev = torch.where(given.flip(1), t - 1 - idx.flip(1), torch.full_like(idx, -1)).cummax(1).values.flip(1)
    nxt = torch.where(nxt_rev < 0, torch.full_like(idx, t), t - 1 - nxt_rev)
    return prev, nxt


def linear_interpolation(observed: Tensor, given: Tensor, days: Tensor, fill: float = 0.0) -> Tensor:
    """Linear temporal interpolation of given values at every date (constant extrapolation at the ends).

    Args:
        observed: ``[N, T, C, H, W]``; only entries with ``given`` are used.
        given: bool like ``observed``.
        days: ``[N, T]`` acquisition days.
        fill: value where a pixel-channel has no given date at all (the normalised mean: 0).
    """
    n, t = days.shape
    obs = torch.where(given, torch.nan_to_num(observed), torch.zeros_like(observed))
    prev, nxt = _neighbours(given)
    d = days.reshape(n, t, *([1] * (observed.dim() - 2))).expand_as(observed).to(observed.dtype)
    pc, nc = prev.clamp(0, t - 1), nxt.clamp(0, t - 1)
    vp, vn = obs.gather(1, pc), obs.gather(1, nc)
    dp, dn = d.gather(1, pc), d.gather(1, nc)
    w = ((d - dp) / (dn - dp).clamp_min(1e-6)).clamp(0, 1)
    out = vp + w * (vn - vp)
    out = torch.where(prev < 0, vn, out)
    out = torch.where(nxt >= t, vp, out)
    out = torch.where((prev < 0) & (nxt >= t), torch.full_like(out, fill), out)
    return torch.where(given, obs, out)


def last_value(observed: Tensor, given: Tensor, fill: float = 0.0) -> Tensor:
    """Carry the last given value forward (backward fill before the first one)."""
    t = observed.shape[1]
    obs = torch.where(given, torch.nan_to_num(observed), torch.zeros_like(observed))
    prev, nxt = _neighbours(given)
    out = torch.where(prev >= 0, obs.gather(1, prev.clamp(0, t - 1)), obs.gather(1, nxt.clamp(0, t - 1)))
    return torch.where((prev < 0) & (nxt >= t), torch.full_like(out, fill), out)


def given_median(observed: Tensor, given: Tensor, fill: float = 0.0) -> Tensor:
    """Per series, channel and pixel: the median of the given dates ``[N, 1, C, H, W]`` (``fill`` when none).

    A level robust to outliers (residual clouds); as a gap filler it is the "pixel median" baseline.
    """
    vals = torch.where(given, observed, torch.full_like(observed, float("nan")))
    med = vals.nanmedian(1, keepdim=True).values
    return torch.nan_to_num(med, nan=fill)


def seasonal_naive(
    observed: Tensor,
    given: Tensor,
    days: Tensor,
    period: float = 365.0,
    tolerance: float = 45.0,
    fallback: Tensor | None = None,
) -> Tensor:
    """Value of the given date closest to one ``period`` earlier (within ``tolerance`` days), else ``fallback``.

    ``fallback`` (like ``observed``) defaults to :func:`last_value` (the classic seasonal-naive forecast).
    """
    n, t = days.shape
    base = last_value(observed, given) if fallback is None else fallback
    obs = torch.where(given, torch.nan_to_num(observed), torch.zeros_like(observed))
    out = base.clone()
    expand = (n, t) + (1,) * (observed.dim() - 2)
    for j in range(t):
        dist = (days - (days[:, j : j + 1] - period)).abs().reshape(expand).expand_as(observed)  # [N, T, ...]
        dist = torch.where(given, dist, torch.full_like(dist, float("inf")))
        best, arg = dist.min(1)  # [N, ...]
        val = obs.gather(1, arg[:, None]).squeeze(1)
        out[:, j] = torch.where(best <= tolerance, val, base[:, j])
    return torch.where(given, obs, out)
