"""Figures: RGB / NDVI frames before and after cloud removal, forecast curves against the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rgb(cube: np.ndarray, bands: list[str], gain: float = 3.5) -> np.ndarray:
    """``[C, H, W]`` reflectance -> ``[H, W, 3]`` in [0, 1] (B4, B3, B2)."""
    idx = [bands.index(b) for b in ("B4", "B3", "B2")]
    return np.clip(np.moveaxis(cube[idx], 0, -1) * gain, 0, 1)


def _ndvi(cube: np.ndarray, bands: list[str]) -> np.ndarray:
    b8, b4 = np.clip(cube[bands.index("B8")], 0.01, 1), np.clip(cube[bands.index("B4")], 0.01, 1)
    return (b8 - b4) / (b8 + b4)


def plot_cloud_removal(
    cloudy: np.ndarray,
    filled: np.ndarray,
    truth: np.ndarray,
    bands: list[str],
    path: Path,
    dates: list[int],
    title: str = "",
) -> Path:
    """Rows: cloudy RGB, filled RGB, true RGB, filled NDVI, true NDVI; columns: ``dates`` (cubes ``[T, C, H, W]``)."""
    plt = _plt()
    rows = [
        ("cloudy RGB", cloudy, "rgb"),
        ("ditkit RGB (median)", filled, "rgb"),
        ("truth RGB", truth, "rgb"),
        ("ditkit NDVI (median)", filled, "ndvi"),
        ("truth NDVI", truth, "ndvi"),
    ]
    fig, axes = plt.subplots(len(rows), len(dates), figsize=(1.8 * len(dates), 1.8 * len(rows)), squeeze=False)
    for r, (name, cube, kind) in enumerate(rows):
        for c, d in enumerate(dates):
            ax = axes[r, c]
            if kind == "rgb":
                ax.imshow(_rgb(np.nan_to_num(cube[d]), bands), interpolation="nearest")
            else:
                ax.imshow(
                    _ndvi(np.nan_to_num(cube[d]), bands), vmin=-0.2, vmax=0.9, cmap="YlGn", interpolation="nearest"
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r == 0:
                ax.set_title(f"date {d}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_forecast(
    days: np.ndarray,
    truth: np.ndarray,
    draws: np.ndarray,
    baseline: np.ndarray,
    split: int,
    path: Path,
    title: str = "",
    ylabel: str = "NDVI",
) -> Path:
    """Curves of one quantity: truth, model draws (median and range) and a baseline; ``split`` = first hidden date."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(days, truth, "k.-", label="truth")
    ax.fill_between(days[split:], draws[:, split:].min(0), draws[:, split:].max(0), alpha=0.3, label="ditkit range")
    ax.plot(days[split:], np.median(draws[:, split:], 0), "C0o-", label="ditkit median")
    ax.plot(days[split:], baseline[split:], "C3s--", label="seasonal naive")
    ax.axvline(days[split] - 0.5 * (days[split] - days[split - 1]), color="gray", lw=0.8)
    ax.set_xlabel("day")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_task_figures(module: Any, dm: Any, out_dir: Path, tag: str, n: int = 2, samples: int = 3) -> list[Path]:
    """Cloud-removal frames and forecast curves for the first ``n`` validation series (synthetic or Presto)."""
    from ditkit_geo.metrics import seasonal_naive

    ds = dm.splits["val"]
    norm, bands = dm.normalizer, dm.bands
    idx = list(range(min(n, len(ds))))
    batch = ds.batch(idx)
    obs, v, days = batch["observed"], batch["values"], batch["days"]
    ok = torch.isfinite(obs)
    paths: list[Path] = []
    t = days.shape[1]
    h = max(1, t // 4)
    hide = (torch.arange(t) >= t - h)[None, :, None, None, None].expand_as(ok)
    given = ok & ~hide
    draws = module.complete(batch, given, samples=samples, seed=1).cpu()  # [S, b, T, C, H, W]
    sn = seasonal_naive(obs, given, days)

    def series(a: torch.Tensor) -> np.ndarray:  # [..., C, H, W] normalised -> NDVI averaged over the image
        x = norm.invert(a.numpy())
        if "NDVI" in bands:
            return x[..., bands.index("NDVI"), :, :].mean((-1, -2))
        b8 = np.clip(x[..., bands.index("B8"), :, :], 0.01, 1.0)  # generated reflectance can dip below 0
        b4 = np.clip(x[..., bands.index("B4"), :, :], 0.01, 1.0)
        return ((b8 - b4) / (b8 + b4)).mean((-1, -2))

    for i in idx:
        tr = series(torch.nan_to_num(v[i]))
        dr = np.stack([series(d[i]) for d in draws])
        paths.append(
            plot_forecast(
                days[i].numpy(),
                tr,
                dr,
                series(sn[i]),
                t - h,
                out_dir / f"sits_forecast_{i}_{tag}.png",
                title=f"forecast of the last {h} dates",
            )
        )
    if v.shape[-1] > 1 and "B4" in bands:  # images: cloud removal frames
        draws_c = module.complete(batch, ok, samples=samples, seed=2).cpu().median(0).values  # median of the draws
        raw = dm.raw["val"]
        for i in idx:
            frac = (~ok[i]).float().mean((1, 2, 3)).numpy()
            dates = [int(d) for d in np.argsort(-frac)[:4]]
            cloudy = raw.cloudy[i] if raw.cloudy is not None else norm.invert(np.nan_to_num(obs[i].numpy()))
            paths.append(
                plot_cloud_removal(
                    cloudy,
                    norm.invert(draws_c[i].numpy()),
                    raw.values[i],
                    bands,
                    out_dir / f"sits_cloud_removal_{i}_{tag}.png",
                    sorted(dates),
                    title="cloud removal (SAR + clear dates given)",
                )
            )
    return paths
