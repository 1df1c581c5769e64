"""``ditkit sits demo``: gap filling, cloud removal and forecasts of synthetic scenes from the shipped weights, each
scored next to its classical baseline (linear interpolation, seasonal naive)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

BASELINES = {
    "reconstruction": ("linear_mae", "linear interpolation"),
    "cloud_removal": ("linear_mae", "linear interpolation"),
    "forecast": ("seasonal_naive_mae", "seasonal naive"),
}


@torch.no_grad()
def demo_command(module: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Samples + metrics for the ``ditkit demo`` report (see :mod:`ditkit_core.report` for the returned dict)."""
    from ditkit_geo.cli import data_module, evaluate_all
    from ditkit_geo.viz import write_task_figures

    out = Path(args.out)
    dm = data_module(args.config)
    figures = write_task_figures(module, dm, out, "demo", n=2)
    recs = evaluate_all(module, dm, samples=args.samples, steps=args.steps, tasks=tuple(BASELINES))
    metrics = []
    for rec in recs:
        key, name = BASELINES[rec["task"]]
        extra = {"pixel median": rec["pixel_median_mae"]} if "pixel_median_mae" in rec else {}
        metrics.append(
            {
                "name": f"{rec['task'].replace('_', ' ')} MAE",
                "model": rec["model_mae"],
                "controls": {name: rec[key], **extra},
                "goal": f"below {name}",
                "met": rec["model_mae"] < rec[key],
            }
        )
    series = recs[0]["series"] if recs else 0
    return {
        "title": "Satellite image time series (synthetic scenes)",
        "summary": f"{series} held-out synthetic pixel series per task, {args.samples} draws each; the figures show "
        "cloudy input, the filled frames and the truth (RGB / NDVI), and forecast curves.",
        "media": [{"path": p, "caption": Path(p).stem.replace("_", " ")} for p in figures],
        "metrics": metrics,
    }


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--samples", type=int, default=2, help="draws per series")


demo_command.add_arguments = _demo_arguments
