"""Metrics (MAE / RMSE / CRPS, PSNR / SSIM / spectral angle, F1) and the simple baselines they are compared with.

PSNR, SSIM and the spectral angle are computed by torchmetrics.

Cube tensors are ``[N, T, C, H, W]``; masks are bool of the same shape (True = scored / given).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    spectral_angle_mapper,
    structural_similarity_index_measure,
)


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
    """Peak signal-to-noise ratio in dB, ``10 log10(range^2 / MSE)`` over all entries with a finite ``truth``.

    torchmetrics' ``peak_signal_noise_ratio`` on those entries (the squared errors in float64; it holds ``log(range)``
    and ``log(10)`` in float32, about 1e-6 dB of rounding); ``inf`` when they match exactly.

    Args:
        pred: any shape.
        truth: like ``pred``; non-finite entries are left out.
        data_range: the peak value range (no clamping).
    """
    m = torch.isfinite(truth)
    return float(peak_signal_noise_ratio(pred[m].double(), truth[m].double(), data_range=data_range))


def ssim(pred: Tensor, truth: Tensor, data_range: float, sigma: float = 1.5) -> float:
    """Mean structural similarity of images ``[N, C, H, W]`` with the published Gaussian window (Wang et al. 2004).

    torchmetrics' ``structural_similarity_index_measure`` (float64): a Gaussian window of standard deviation
    ``sigma`` (1.5: 11 x 11 taps), ``K1 = 0.01``, ``K2 = 0.03``, each channel on its own, the borders reflect-padded,
    the SSIM map averaged over every pixel, channel and image.

    Args:
        pred: ``[N, C, H, W]``.
        truth: like ``pred``.
        data_range: the dynamic range ``L`` in ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2`` (no clamping).
        sigma: standard deviation of the window in pixels; the window has ``2 int(3.5 sigma + 0.5) + 1`` taps.

    Raises:
        ValueError: if ``H`` or ``W`` is not larger than the window's half-width (5 for ``sigma = 1.5``).
    """
    half = int(3.5 * sigma + 0.5)
    if pred.dim() != 4 or min(pred.shape[-2:]) <= half:
        raise ValueError(f"ssim: expected images [N, C, H, W] with H, W > {half}, got {tuple(pred.shape)}")
    x, y = pred.double(), truth.double()
    return float(
        structural_similarity_index_measure(
            x, y, gaussian_kernel=True, sigma=sigma, kernel_size=2 * half + 1, data_range=data_range, k1=0.01, k2=0.03
        )
    )


def spectral_angle(pred: Tensor, truth: Tensor, mask: Tensor | None = None, dim: int = -3) -> float:
    """Mean spectral angle in degrees between spectra along ``dim`` (the channel axis), over pixels in ``mask``.

    The per-pixel angles ``arccos(<p, t> / (|p| |t|))`` come from torchmetrics' ``spectral_angle_mapper`` (float64,
    ``reduction="none"``); torchmetrics cannot mask, so their mean under ``mask`` is taken here. A zero spectrum has
    no angle (``nan``).

    Args:
        pred: spectra along ``dim`` (at least 2 channels).
        truth: like ``pred``.
        mask: bool, the shape of ``pred`` without ``dim`` (True = scored); None: every pixel.
        dim: the channel axis.
    """
    shape = pred.movedim(dim, -1).shape[:-1]
    p, t = (rearrange(a.movedim(dim, -1).double(), "... c -> (...) c 1 1") for a in (pred, truth))
    ang = torch.rad2deg(spectral_angle_mapper(p, t, reduction="none")).reshape(shape)
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
