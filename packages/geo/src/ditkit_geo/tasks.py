"""Task masks: which observed entries are given to the model (the rest of the valid truth is the target).

One model serves every task; the task is only the ``given [b, T, C, H, W]`` mask:

* ``reconstruct``: every non-static group hidden at a random fraction of dates (missing acquisitions).
* ``cloud``: optical groups hidden at a fraction of dates over random spatial blobs (synthetic clouds on top
  of the real ones already missing from ``observed``); SAR and other groups stay given.
* ``forecast``: every non-static group hidden at the last ``k`` dates.
* ``random``: CSDI-style element-wise hiding of observed entries.
"""

from __future__ import annotations

import torch
from torch import Tensor

TASKS = ("reconstruct", "cloud", "forecast", "random")


def date_mask(b: int, t: int, ratio: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``[b, T]`` bool: ``round(ratio * T)`` (>= 1) random dates per series (``ratio [b]``)."""
    k = (ratio * t).round().clamp(1, t - 1).long()  # [b]
    order = torch.rand(b, t, generator=generator).argsort(1).argsort(1)  # random rank per date
    return order < k[:, None]


def forecast_mask(b: int, t: int, horizon: Tensor) -> Tensor:
    """``[b, T]`` bool: the last ``horizon[i]`` dates."""
    return torch.arange(t)[None] >= (t - horizon)[:, None]


def blob_mask(b: int, t: int, h: int, w: int, cover: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``[b, T, H, W]`` bool smooth blobs covering about ``cover [b, T]`` of each image."""
    coarse = torch.randn(b * t, 1, 3, 3, generator=generator)
    field = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=True)
    field = field.reshape(b, t, h * w)
    rank = ((1 - cover.clamp(0, 1)) * (h * w - 1)).round().long()[..., None]  # [b, t, 1]
    thr = field.sort(-1).values.gather(-1, rank)  # [b, t, 1]: empirical quantile 1 - cover
    return (field > thr).reshape(b, t, h, w)


def sample_given(
    observed_ok: Tensor,
    channel_group: Tensor,
    static: Tensor,
    optical: Tensor,
    *,
    probs: dict[str, float],
    ratio: tuple[float, float] = (0.1, 0.6),
    max_horizon: float = 0.34,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, list[str]]:
    """Draw one task per series and return its ``given`` mask.

    Args:
        observed_ok: ``[b, T, C, H, W]`` bool, entries actually observed.
        channel_group: ``[C]`` long group of each channel (unused beyond documentation of the layout).
        static: ``[C]`` bool, channels of static groups (never hidden).
        optical: ``[C]`` bool, channels hidden by the ``cloud`` task.
        probs: task -> probability (normalised here); keys among :data:`TASKS`.
        ratio: range of hidden-date fractions for ``reconstruct`` / ``cloud`` / ``random``.
        max_horizon: largest forecast horizon as a fraction of ``T``.
        generator: CPU RNG.

    Returns:
        ``given [b, T, C, H, W]`` bool (subset of ``observed_ok``) and the task name of each series.
    """
    bad = [k for k in probs if k not in TASKS]
    if bad:
        raise ValueError(f"sample_given: unknown tasks {bad}; choose among {TASKS}")
    b, t, c, h, w = observed_ok.shape
    names = list(probs)
    p = torch.tensor([float(probs[k]) for k in names])
    if p.sum() <= 0:
        raise ValueError(f"sample_given: task probabilities must sum to > 0, got {probs}")
    task = torch.multinomial(p / p.sum(), b, replacement=True, generator=generator)  # [b]
    r = ratio[0] + (ratio[1] - ratio[0]) * torch.rand(b, generator=generator)
    dyn = ~static  # [C]
    hide = torch.zeros(b, t, c, h, w, dtype=torch.bool)
    dates = date_mask(b, t, r, generator)  # [b, T]
    horizon = (torch.rand(b, generator=generator) * max_horizon * t).ceil().clamp(1, t - 1).long()
    fut = forecast_mask(b, t, horizon)
    cover = torch.rand(b, t, generator=generator) * 0.8 + 0.2
    blobs = blob_mask(b, t, h, w, cover, generator) if h * w > 1 else torch.ones(b, t, h, w, dtype=torch.bool)
    elem = torch.rand(b, t, c, h, w, generator=generator) < r[:, None, None, None, None]
    for i, name in enumerate(names):
        sel = task == i
        if not sel.any():
            continue
        if name == "reconstruct":
            m = dates[:, :, None, None, None] & dyn[None, None, :, None, None]
        elif name == "forecast":
            m = fut[:, :, None, None, None] & dyn[None, None, :, None, None]
        elif name == "cloud":
            m = (dates[:, :, None, None] & blobs)[:, :, None] & optical[None, None, :, None, None]
        else:
            m = elem & dyn[None, None, :, None, None]
        hide = torch.where(sel[:, None, None, None, None], m.expand_as(hide), hide)
    return observed_ok.to(hide.device) & ~hide, [names[int(k)] for k in task]
