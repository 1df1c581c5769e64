"""Task evaluations with their baselines computed on the same series and masks (``make eval-sits``, benchmark).

All value metrics are in normalised units (per-channel z-scores of the training split) unless stated; the
model's point prediction is the per-entry median of ``samples`` draws, its CRPS uses all draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ditkit_geo.checks import check_float, check_int
from ditkit_geo.data import SITSDataset
from ditkit_geo.metrics import (
    crps_ensemble,
    f1_score,
    given_median,
    last_value,
    linear_interpolation,
    masked_mae,
    masked_rmse,
    psnr,
    seasonal_naive,
    spectral_angle,
    ssim,
)
from ditkit_geo.series import Normalizer
from ditkit_geo.tasks import date_mask


def _complete(
    module: Any, ds: SITSDataset, given: Tensor, samples: int, steps: int | None, chunk: int = 64, seed: int = 0
) -> Tensor:
    """``[S, N, T, C, H, W]`` draws for the whole dataset, in chunks."""
    outs = []
    for start in range(0, len(ds), chunk):
        idx = list(range(start, min(len(ds), start + chunk)))
        batch = ds.batch(idx)
        outs.append(module.complete(batch, given[idx], samples=samples, steps=steps, seed=seed + start).cpu())
    return torch.cat(outs, 1)


def _check_draws(where: str, samples: int, steps: int | None) -> None:
    check_int(samples, name="samples", lo=1, where=where)
    if steps is not None:
        check_int(steps, name="steps", lo=1, where=where)


def _value_metrics(prefix: str, draws: Tensor, truth: Tensor, mask: Tensor) -> dict[str, float]:
    med = draws.median(0).values
    return {
        f"{prefix}_mae": masked_mae(med, truth, mask),
        f"{prefix}_rmse": masked_rmse(med, truth, mask),
        f"{prefix}_crps": crps_ensemble(draws, truth, mask),
    }


def evaluate_reconstruction(
    module: Any, ds: SITSDataset, *, ratio: float = 0.3, samples: int = 4, steps: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Hide ``ratio`` of the dates (every non-static group) and reconstruct them.

    Baselines: linear interpolation (the goal's reference) and the per-pixel median of the given dates.
    """
    _check_draws("evaluate_reconstruction", samples, steps)
    check_float(ratio, name="ratio", lo=0.0, hi=1.0, open_lo=True, where="evaluate_reconstruction")
    tok = module.tokenizer
    v, obs, days = ds.values, ds.observed, ds.days
    n, t = days.shape
    ok = torch.isfinite(obs)
    hidden_dates = date_mask(n, t, torch.full((n,), ratio), torch.Generator().manual_seed(seed))
    dyn = ~tok.group_channel_mask(tok.static_names)
    hide = hidden_dates[:, :, None, None, None] & dyn[None, None, :, None, None]
    given = ok & ~hide
    target = hide & torch.isfinite(v)
    draws = _complete(module, ds, given, samples, steps, seed=seed)
    lin = linear_interpolation(obs, given, days)
    out = _value_metrics("model", draws, v, target)
    out.update(
        linear_mae=masked_mae(lin, v, target),
        linear_rmse=masked_rmse(lin, v, target),
        pixel_median_mae=masked_mae(given_median(obs, given).expand_as(v), v, target),
    )
    opt = tok.group_channel_mask(tok.optical_names)[None, None, :, None, None] & target
    if opt.any():
        med = draws.median(0).values
        out.update(model_optical_mae=masked_mae(med, v, opt), linear_optical_mae=masked_mae(lin, v, opt))
    out["mae_improvement_vs_linear"] = 1 - out["model_mae"] / out["linear_mae"]
    return out


def evaluate_forecast(
    module: Any, ds: SITSDataset, *, horizon: int = 4, samples: int = 4, steps: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Hide the last ``horizon`` dates and forecast them; baselines: last value and seasonal-naive (365 days)."""
    _check_draws("evaluate_forecast", samples, steps)
    tok = module.tokenizer
    v, obs, days = ds.values, ds.observed, ds.days
    n, t = days.shape
    check_int(horizon, name="horizon", lo=1, hi=t - 1, where="evaluate_forecast")
    ok = torch.isfinite(obs)
    dyn = ~tok.group_channel_mask(tok.static_names)
    hide = (torch.arange(t) >= t - horizon)[None, :, None, None, None] & dyn[None, None, :, None, None]
    hide = hide.expand_as(ok)
    given = ok & ~hide
    target = hide & torch.isfinite(v)
    draws = _complete(module, ds, given, samples, steps, seed=seed)
    out = _value_metrics("model", draws, v, target)
    lv, sn = last_value(obs, given), seasonal_naive(obs, given, days)
    out.update(
        last_value_mae=masked_mae(lv, v, target),
        seasonal_naive_mae=masked_mae(sn, v, target),
        seasonal_naive_rmse=masked_rmse(sn, v, target),
    )
    out["mae_improvement_vs_seasonal_naive"] = 1 - out["model_mae"] / out["seasonal_naive_mae"]
    return out


def evaluate_cloud_removal(
    module: Any, ds: SITSDataset, normalizer: Normalizer, *, samples: int = 4, steps: int | None = None, seed: int = 0
) -> dict[str, float]:
    """Fill the optical values under real clouds/shadows (SAR and clear dates given); baseline: linear interpolation.

    PSNR / SSIM / spectral angle are measured on reflectance images of the cloud-affected dates (clear pixels
    keep their observation in both the model's and the baseline's composite); MAE / CRPS on cloudy entries.
    """
    _check_draws("evaluate_cloud_removal", samples, steps)
    tok = module.tokenizer
    v, obs, days = ds.values, ds.observed, ds.days
    opt = tok.group_channel_mask(tok.optical_names)
    ok = torch.isfinite(obs)
    target = ~ok & torch.isfinite(v) & opt[None, None, :, None, None]
    if not target.any():
        raise ValueError("evaluate_cloud_removal: the data have no cloudy optical entries with known truth")
    draws = _complete(module, ds, ok, samples, steps, seed=seed)
    med = draws.median(0).values
    lin = linear_interpolation(obs, ok, days)
    out = _value_metrics("model", draws, v, target)
    out.update(linear_mae=masked_mae(lin, v, target), linear_rmse=masked_rmse(lin, v, target))
    cloudy_dates = target.any(2).flatten(2).float().mean(-1) > 0.05  # [N, T]
    o = opt.nonzero().flatten()
    truth_r = torch.from_numpy(normalizer.invert(v.numpy()))[:, :, o][cloudy_dates]  # [k, C_opt, H, W]
    rng = float(truth_r.max())
    for name, pred in (("model", med), ("linear", lin)):
        pr = torch.from_numpy(normalizer.invert(pred.numpy()))[:, :, o][cloudy_dates]
        out[f"{name}_psnr"] = psnr(pr, truth_r, rng)
        out[f"{name}_ssim"] = ssim(pr, truth_r, rng)
        out[f"{name}_sam_deg"] = spectral_angle(pr, truth_r, dim=1)
    return out


def _split_f1(score: Tensor, truth: Tensor) -> float:
    """F1 on the second half of the scenes at the threshold that maximises F1 on the first half."""
    half = score.shape[0] // 2
    cand = torch.quantile(score[:half].flatten().float(), torch.linspace(0.5, 0.995, 100))
    f1s = [f1_score(score[:half] > c, truth[:half]) for c in cand]
    return f1_score(score[half:] > cand[int(np.argmax(f1s))], truth[half:])


def evaluate_change(
    module: Any,
    ds: SITSDataset,
    change: np.ndarray,
    *,
    horizon: int | None = None,
    samples: int = 4,
    steps: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Change detection: the change-map head, and a generated continuation compared with the observed one.

    ``model_head_f1`` (when the module has a change head): its per-pixel probability on the whole observed series.
    ``model_residual_f1``: the last ``horizon`` dates are generated from the earlier ones; a pixel's score is its
    mean absolute residual (observed - median draw) over the clear hidden entries. Every score is thresholded at
    the value maximising F1 on the first half of the scenes and F1 is reported on the second half. Baseline: the
    residual score with the seasonal-naive continuation. ``model_f1`` is the head's F1 when there is a head.
    """
    _check_draws("evaluate_change", samples, steps)
    obs, days = ds.observed, ds.days
    n, t = days.shape
    horizon = (
        t // 3 + 1 if horizon is None else check_int(horizon, name="horizon", lo=1, hi=t - 1, where="evaluate_change")
    )
    if change.shape != (n, *obs.shape[3:]):
        raise ValueError(f"evaluate_change: change map shape {change.shape} != [N, H, W]={(n, *obs.shape[3:])}")
    ok = torch.isfinite(obs)
    hide = (torch.arange(t) >= t - horizon)[None, :, None, None, None].expand_as(ok)
    given = ok & ~hide
    scored = hide & ok
    draws = _complete(module, ds, given, samples, steps, seed=seed)
    truth = torch.from_numpy(change).bool()
    out: dict[str, float] = {}
    if getattr(module, "change_head", None) is not None:
        prob = torch.cat([module.change_map(ds.batch(list(range(s, min(n, s + 64))))).cpu() for s in range(0, n, 64)])
        out["model_head_f1"] = _split_f1(prob, truth)
    for name, pred in (
        ("model_residual", draws.median(0).values),
        ("seasonal_naive", seasonal_naive(obs, given, days)),
    ):
        res = torch.where(scored, (torch.nan_to_num(obs) - pred).abs(), torch.zeros_like(pred))
        score = res.sum((1, 2)) / scored.sum((1, 2)).clamp_min(1)  # [N, H, W]
        out[f"{name}_f1"] = _split_f1(score, truth)
    out["model_f1"] = out.get("model_head_f1", out["model_residual_f1"])
    return out
