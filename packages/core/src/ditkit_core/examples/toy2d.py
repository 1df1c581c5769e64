"""Toy 2D distributions: every sample is a set of 2D points (tokens); the DiT learns the point distribution.

Proves the whole loop (data -> tokens -> flow matching -> sampling -> metric -> PNG) on a CPU in a minute.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.lightning.data import seeded_loader
from ditkit_core.lightning.module import FlowMatchingModule
from ditkit_core.metrics import energy_distance, sliced_wasserstein
from ditkit_core.tokenizers import TokenBatch

Distribution = Literal["checkerboard", "moons", "gaussians8"]


def sample_points(name: str, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` points ``[n, 2]`` from a named 2D distribution, scaled to roughly unit variance."""
    g = generator
    if name == "checkerboard":
        x1 = torch.rand(n, generator=g) * 4 - 2
        x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
        x2 = x2 + torch.floor(x1) % 2
        pts = torch.stack([x1, x2], 1)
    elif name == "moons":
        k = torch.randint(0, 2, (n,), generator=g)
        a = torch.rand(n, generator=g) * math.pi
        upper = torch.stack([torch.cos(a), torch.sin(a)], 1)
        lower = torch.stack([1 - torch.cos(a), 0.5 - torch.sin(a)], 1)
        pts = torch.where(k[:, None] == 0, upper, lower) + 0.05 * torch.randn(n, 2, generator=g)
        pts = (pts - torch.tensor([0.5, 0.25])) * 1.5
    elif name == "gaussians8":
        k = torch.randint(0, 8, (n,), generator=g).float()
        centers = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1) * 2
        pts = centers + 0.15 * torch.randn(n, 2, generator=g)
    else:
        raise ValueError(f"toy2d: unknown distribution {name!r}; choose checkerboard, moons or gaussians8")
    return pts.float()


def in_support(points: Tensor, name: str) -> float:
    """Share of ``points [n, 2]`` inside the distribution's support (checkerboard squares only; NaN otherwise).

    The data scores 100 %, standard normal noise (an untrained model) ~45 %; blurred blobs fall in between.
    """
    if name != "checkerboard":
        return float("nan")
    x1, x2 = points[:, 0], points[:, 1]
    inside = (x1.abs() <= 2) & (x2.abs() <= 2) & ((torch.floor(x1) + torch.floor(x2)) % 2 == 0)
    return float(inside.float().mean())


class PointSetDataset(Dataset):
    """``size`` sets of ``points`` 2D points each, generated once from a seed."""

    def __init__(self, distribution: str, size: int, points: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        self.data = sample_points(distribution, size * points, g).reshape(size, points, 2)

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {"x": self.data[i]}


class Toy2DDataModule(L.LightningDataModule):
    """Sets of 2D points from ``checkerboard``, ``moons`` or ``gaussians8``.

    Args:
        distribution: which distribution.
        points: points per set (tokens per sample).
        train_sets: number of training sets.
        val_sets: number of validation sets.
        batch_size: sets per batch.
        seed: data seed (validation uses ``seed + 1``).
    """

    def __init__(
        self,
        distribution: Distribution = "checkerboard",
        points: int = 64,
        train_sets: int = 2048,
        val_sets: int = 64,
        batch_size: int = 64,
        seed: int = 0,
    ):
        super().__init__()
        self.distribution, self.points, self.batch_size, self.seed = distribution, points, batch_size, seed
        self.train_sets, self.val_sets = train_sets, val_sets

    def setup(self, stage: str | None = None) -> None:
        self.train = PointSetDataset(self.distribution, self.train_sets, self.points, self.seed)
        self.val = PointSetDataset(self.distribution, self.val_sets, self.points, self.seed + 1)

    def train_dataloader(self):
        return seeded_loader(self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=True)

    def val_dataloader(self):
        return seeded_loader(self.val, self.batch_size, shuffle=False)


class Toy2DModule(FlowMatchingModule):
    """``FlowMatchingModule`` that also measures and plots samples against the data distribution."""

    distribution: str = "checkerboard"

    def sample_points(self, n_sets: int, points: int, seed: int = 0, **kw) -> Tensor:
        """Generate ``[n_sets * points, 2]`` points."""
        g = torch.Generator(device=self.device).manual_seed(seed)
        template = TokenBatch(x=torch.zeros(n_sets, points, 2, device=self.device))
        return self.generate(template, generator=g, **kw).x.reshape(-1, 2)

    def on_validation_epoch_end(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or self.trainer.sanity_checking:
            return
        gen = self.sample_points(max(2048 // dm.points, 1), dm.points, seed=123)
        ref = sample_points(dm.distribution, gen.shape[0], torch.Generator().manual_seed(7)).to(gen.device)
        # sliced W1 on 2048 points: >= 0 and falls with sample quality (the data's own floor is ~0.02)
        self.log("val/sliced_w1", sliced_wasserstein(gen, ref), prog_bar=True)

    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        dist = dm.distribution if dm is not None else self.distribution
        points = dm.points if dm is not None else 64
        gen = self.sample_points(32, points, seed=0).cpu()
        ref = sample_points(dist, gen.shape[0], torch.Generator().manual_seed(1))
        return [
            plot_samples(
                gen,
                ref,
                Path(out_dir) / f"toy2d_{dist}_{tag}.png",
                title=f"{dist} {tag}: energy distance {float(energy_distance(gen, ref)):.4f}",
            )
        ]


def plot_samples(gen: Tensor, ref: Tensor, path: Path, title: str = "") -> Path:
    """Side-by-side scatter of data and generated points, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
    for ax, pts, name in zip(axes, (ref, gen), ("data", "ditkit samples")):
        p = np.asarray(pts)
        ax.scatter(p[:, 0], p[:, 1], s=1.5, alpha=0.6)
        ax.set_title(name)
        ax.set_aspect("equal")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate(
    module: Toy2DModule, distribution: str, points: int = 64, sets: int = 64, seed: int = 0, steps: int | None = None
) -> dict[str, float]:
    """Sliced Wasserstein and energy distance of ``sets * points`` samples to held-out data, next to controls.

    Controls: the data's own score (two independent data samples of the same size: the floor a perfect model
    reaches) and the source distribution (standard normal noise: what an untrained model gives).
    """
    return score(module.sample_points(sets, points, seed=seed, steps=steps).cpu(), distribution, seed)


def score(gen: Tensor, distribution: str, seed: int = 0) -> dict[str, float]:
    """The metrics of :func:`evaluate` for generated points ``gen [n, 2]``, next to the data and noise controls."""
    n = gen.shape[0]
    ref = sample_points(distribution, n, torch.Generator().manual_seed(10_000 + seed))
    data2 = sample_points(distribution, n, torch.Generator().manual_seed(20_000 + seed))
    noise = torch.randn(n, 2, generator=torch.Generator().manual_seed(30_000 + seed))
    out = {}
    for name, pts in (("model", gen), ("data_vs_data", data2), ("noise", noise)):
        out[f"{name}_sliced_w1"] = float(sliced_wasserstein(pts, ref))
        out[f"{name}_energy"] = float(energy_distance(pts, ref))
        out[f"{name}_in_support"] = in_support(pts, distribution)
    return out


def sample_command(module: Toy2DModule, args) -> None:
    """``ditkit toy2d sample``: a PNG of samples next to the data."""
    gen = module.sample_points(args.sets, args.points, seed=args.seed).cpu()
    ref = sample_points(args.distribution, gen.shape[0], torch.Generator().manual_seed(1))
    png = plot_samples(
        gen,
        ref,
        Path(args.out) / f"toy2d_{args.distribution}.png",
        title=f"{args.distribution}: sliced W1 {float(sliced_wasserstein(gen, ref)):.4f}",
    )
    print(f"wrote {png}")


def eval_command(module: Toy2DModule, args) -> None:
    """``ditkit toy2d eval``: metrics next to their controls, as JSON (stdout and ``<out>/eval.json``)."""
    import json

    res = {
        "distribution": args.distribution,
        "steps": module.sampler.steps,
        **evaluate(module, args.distribution, args.points, args.sets, args.seed),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


def _toy_arguments(p) -> None:
    p.add_argument("--distribution", default="checkerboard", help="checkerboard, moons or gaussians8")
    p.add_argument("--sets", type=int, default=64, help="point sets to sample")
    p.add_argument("--points", type=int, default=64, help="points per set")


sample_command.add_arguments = _toy_arguments
eval_command.add_arguments = _toy_arguments


def demo_command(module: None, args) -> dict:
    """``ditkit toy2d demo``: the shipped weights sampled and scored, and the small demo config trained briefly here
    (its loss and validation curves show training working end to end), both against the data and noise controls."""
    from ditkit_core.lightning.cli import FlowCLI
    from ditkit_core.lightning.load import load_run
    from ditkit_core.lightning.pretrained import from_pretrained

    out = Path(args.out)
    run = out / "run"
    FlowCLI(args=["fit", "--config", args.train_config, "--trainer.default_root_dir", str(run)])
    models = {"trained here": load_run(args.train_config, ckpt=run / "checkpoints" / "last.ckpt")}
    if args.pretrained and (Path(args.pretrained) / "config.json").exists():
        models = {"shipped weights": from_pretrained(args.pretrained).eval(), **models}
    media, scores = [], {}
    for name, m in models.items():
        gen = m.sample_points(args.sets, args.points, seed=args.seed).cpu()
        scores[name] = score(gen, args.distribution, args.seed)
        ref = sample_points(args.distribution, gen.shape[0], torch.Generator().manual_seed(1))
        tag = name.replace(" ", "_")
        title = f"{name}: {m.sampler.steps} {m.sampler.method} steps, {100 * scores[name]['model_in_support']:.1f} % on"
        media.append(
            {"path": plot_samples(gen, ref, out / f"{tag}.png", title=f"{title} the squares"), "caption": name}
        )
    first = next(iter(scores.values()))
    controls = {"data vs data": first["data_vs_data_in_support"], "noise (untrained)": first["noise_in_support"]}
    logs = sorted(run.rglob("metrics.csv"), key=lambda q: q.stat().st_mtime)
    return {
        "title": "Toy 2D flow matching",
        "summary": f"Sets of 2D points from a {args.distribution}: {args.sets * args.points} sampled points per model "
        f"against held-out data. The loss curve is the brief run trained here ({args.train_config}).",
        "media": media,
        "metrics": [
            {
                "name": f"share of samples on the squares ({name})",
                "model": sc["model_in_support"],
                "controls": controls,
                "goal": ">= 90 %" if name == "shipped weights" else "",
                "met": sc["model_in_support"] >= 0.9 if name == "shipped weights" else None,
            }
            for name, sc in scores.items()
        ]
        + [
            {
                "name": f"sliced W1 to held-out data ({name})",
                "model": sc["model_sliced_w1"],
                "controls": {"data vs data": sc["data_vs_data_sliced_w1"], "noise (untrained)": sc["noise_sliced_w1"]},
                "goal": "",
                "met": None,
            }
            for name, sc in scores.items()
        ],
        "log": logs[-1] if logs else None,
    }


def _demo_arguments(p) -> None:
    _toy_arguments(p)
    p.set_defaults(sets=32)
    p.add_argument("--train-config", default="apps/toy2d/configs/demo.yaml", help="the config trained by the demo")


demo_command.trains = True
demo_command.add_arguments = _demo_arguments
