"""``ditkit-sits``: write the synthetic data, sample figures from a trained run, evaluate every task.

    python -m ditkit_geo.cli data   --out <folder>
    python -m ditkit_geo.cli sample --config apps/sits/configs/default.yaml [--ckpt <file.ckpt>] [--out <folder>]
    python -m ditkit_geo.cli eval   --config apps/sits/configs/default.yaml [--ckpt <file.ckpt>]

Runs are loaded with :func:`ditkit_core.lightning.load_run`; the checkpoint defaults to the config's
``<trainer.default_root_dir>/checkpoints/last.ckpt`` and figures go to ``<trainer.default_root_dir>/samples``.
``eval`` prints one JSON line per task: the model's figures and the baselines on the same series and masks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ditkit_core.app import App
from ditkit_core.errors import DataError, atomic_write, read_text
from ditkit_core.lightning import default_checkpoint, from_config, load_run, read_config, run_dir


def data_module(config: str | Path) -> Any:
    """The set-up DataModule an app config describes (its ``data`` section; allow-listed classes only)."""
    read_text(config)  # a missing or non-UTF-8 config names the file and line before YAML parses it
    section = read_config(config).get("data")
    if not isinstance(section, dict) or "class_path" not in section:
        raise DataError("no data section with a class_path", path=config, field="data")
    dm = from_config(section, f"{config}: data")
    dm.setup("fit")
    return dm


def train_from_config(config: str | Path, steps: int, **trainer: Any) -> tuple[Any, Any]:
    """Train in-process from an app config for ``steps`` steps without checkpoints, sample figures or validation.

    The config's EMA callback is kept (the returned module holds the averaged weights, as a checkpoint would).
    Returns the trained module (eval mode) and its set-up DataModule. ``trainer`` overrides trainer fields.
    """
    import tempfile

    import yaml

    from ditkit_core.testing import run_config

    cfg = yaml.safe_load(read_text(config))
    ema = [c for c in cfg["trainer"].get("callbacks") or [] if c.get("class_path") == "ditkit_core.lightning.EMA"]
    with tempfile.TemporaryDirectory() as tmp:
        cfg["trainer"].update(
            max_steps=steps,
            callbacks=ema,
            enable_checkpointing=False,
            logger=False,
            default_root_dir=tmp,
            enable_progress_bar=False,
            val_check_interval=None,
            limit_val_batches=0,
            **trainer,
        )
        cfg["trainer"].pop("check_val_every_n_epoch", None)
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cli = run_config(path)
    return cli.model.eval(), cli.datamodule


def evaluate_all(
    module: Any,
    dm: Any,
    *,
    samples: int | None = None,
    steps: int | None = None,
    ratio: float = 0.3,
    horizon: int = 4,
    tasks: tuple[str, ...] | None = None,
) -> list[dict[str, Any]]:
    """Every task the data allow, on the test split; returns one record per task.

    ``samples`` / ``steps`` default to the module's ``eval_samples`` / ``sampler.steps`` (set in the app config).
    """
    samples = module.eval_samples if samples is None else samples
    steps = module.sampler.steps if steps is None else steps
    from ditkit_geo.evaluate import evaluate_change, evaluate_cloud_removal, evaluate_forecast, evaluate_reconstruction

    ds, raw = dm.splits["test"], dm.raw["test"]
    data = dm.source
    tasks = tasks or (
        ("reconstruction", "forecast", "cloud_removal", "change")
        if raw.cloud is not None
        else ("reconstruction", "forecast")
    )
    out = []
    for task in tasks:
        if task == "reconstruction":
            rec = evaluate_reconstruction(module, ds, ratio=ratio, samples=samples, steps=steps)
            rec = {"masked_dates": ratio, **rec}
        elif task == "forecast":
            rec = {"horizon": horizon, **evaluate_forecast(module, ds, horizon=horizon, samples=samples, steps=steps)}
        elif task == "cloud_removal":
            rec = evaluate_cloud_removal(module, ds, dm.normalizer, samples=samples, steps=steps)
        elif task == "change":
            if raw.change is None:
                continue
            rec = evaluate_change(module, ds, raw.change, samples=samples, steps=steps)
        else:
            raise ValueError(f"evaluate_all: unknown task {task!r}")
        out.append(
            {
                "task": task,
                "data": data,
                "series": len(ds),
                "samples": samples,
                "sample_steps": steps,
                **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()},
            }
        )
    return out


def _positive(text: str) -> int:
    """argparse type: an integer >= 1 (0 would silently fall back to the config's default)."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 1")
    return v


def _count(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return v


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ditkit-sits", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="write the synthetic train/val/test cubes as .npz")
    d.add_argument("--out", required=True, help="folder of the .npz files")
    d.add_argument("--n", type=_positive, default=512)
    d.add_argument("--seed", type=_count, default=0)
    for name in ("sample", "eval"):
        s = sub.add_parser(name)
        s.add_argument("--config", required=True, help="the app YAML the run was trained with")
        s.add_argument("--ckpt", default=None, help="checkpoint (default: <default_root_dir>/checkpoints/last.ckpt)")
        s.add_argument("--pretrained", default=None, help="a save_pretrained folder instead of a checkpoint")
        s.add_argument("--out", default=None, help="figure folder (default: <default_root_dir>/samples)")
        s.add_argument("--steps", type=_positive, default=None, help="Euler steps per draw (default: sampler.steps)")
        _arguments(s)
    a = p.parse_args(argv)
    if a.cmd == "data":
        from ditkit_geo.io import save_npz
        from ditkit_geo.synthetic import make_synthetic

        for split, n, off in (("train", a.n, 0), ("val", max(8, a.n // 16), 1), ("test", max(16, a.n // 8), 2)):
            path = save_npz(make_synthetic(n, seed=a.seed + off), Path(a.out) / f"synthetic_{split}.npz")
            print(f"wrote {path} ({n} scenes)")
        return
    read_text(a.config)
    ckpt = a.ckpt if (a.ckpt is not None or a.pretrained is not None) else default_checkpoint(a.config)
    try:
        module = load_run(a.config, ckpt, pretrained=a.pretrained)
    except FileNotFoundError as e:
        raise SystemExit(f"ditkit-sits {a.cmd}: {e}") from e
    if a.cmd == "sample":
        a.out = a.out if a.out is not None else str(run_dir(a.config) / "samples")
        return sample_command(module, a)
    eval_command(module, a)


def sample_command(module: Any, a: argparse.Namespace) -> None:
    """Figures of every task of a loaded run on the config's data, in ``a.out`` (``ditkit sits sample``)."""
    from ditkit_geo.viz import write_task_figures

    for path in write_task_figures(module, data_module(a.config), Path(a.out), "final", n=3):
        print(f"wrote {path}")


def eval_command(module: Any, a: argparse.Namespace) -> list[dict[str, Any]]:
    """:func:`evaluate_all` of a loaded run on the config's data: one JSON line per task, and ``<a.out>/eval.json``
    when ``a.out`` is set (``ditkit sits eval``; ``a.steps`` / ``a.samples`` None: the module's)."""
    recs = evaluate_all(module, data_module(a.config), samples=a.samples, steps=a.steps)
    for rec in recs:
        print(json.dumps(rec))
    if a.out is not None:
        with atomic_write(Path(a.out) / "eval.json", "w") as f:
            f.write(json.dumps(recs, indent=1))
    return recs


def _arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``sample`` / ``eval`` beyond the common ones (config, weights, steps, output)."""
    p.add_argument("--samples", type=_positive, default=None, help="draws per series (default: eval_samples)")


sample_command.add_arguments = _arguments
eval_command.add_arguments = _arguments


APP = App(
    name="sits",
    help="satellite image time series: reconstruction, forecast, cloud removal and change (ditkit_geo)",
    config="apps/sits/configs/default.yaml",
    pretrained="apps/sits/pretrained",
    commands={
        "sample": "ditkit_geo.cli:sample_command",
        "eval": "ditkit_geo.cli:eval_command",
        "demo": "ditkit_geo.demo:demo_command",
    },
    bench="benchmarks/sits.py",
)
"""``ditkit sits fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``)."""


if __name__ == "__main__":
    main()
