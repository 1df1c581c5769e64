"""sits benchmark: one JSON line per task with the model's figures and the baselines of the same run.

Uses each config's checkpoint (``<trainer.default_root_dir>/checkpoints/last.ckpt``) when it exists
(``make train-sits``, ``make train-sits-presto``), else trains a model in-process from the app config for ``--steps``
steps (no checkpoints or sample figures written). Presto lines are skipped when ``../shared/data/presto_algae`` is
absent.

    python benchmarks/sits.py [--steps N] [--samples 32] [--sample-steps 2] [--retrain] [--only presto]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESTO = ROOT / ".." / "shared" / "data" / "presto_algae"


def trained(config: Path, steps: int | None, retrain: bool):
    """(module, datamodule, how) from the config's checkpoint, or trained now for ``steps`` steps."""
    from ditkit_core.lightning import default_checkpoint, load_run
    from ditkit_geo.cli import data_module, train_from_config

    ckpt = ROOT / default_checkpoint(config)
    if ckpt.exists() and not retrain:
        return load_run(config, ckpt), data_module(config), f"checkpoint {ckpt.relative_to(ROOT)}"
    if steps is None:
        import yaml

        steps = int(yaml.safe_load(config.read_text())["trainer"]["max_steps"])
    t0 = time.perf_counter()
    module, dm = train_from_config(config, steps)
    return module, dm, f"trained {steps} steps in-process ({time.perf_counter() - t0:.0f} s)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=None, help="training steps when no checkpoint exists (default: config)")
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="draws per series (CRPS, median prediction; default: the config's eval_samples)",
    )
    p.add_argument("--sample-steps", type=int, default=None, help="solver steps (default: the config's)")
    p.add_argument("--retrain", action="store_true", help="ignore existing checkpoints")
    p.add_argument("--only", choices=["synthetic", "presto"], default=None)
    a = p.parse_args()
    from ditkit_geo.cli import evaluate_all

    runs = [
        ("synthetic", ROOT / "apps/sits/configs/default.yaml"),
        ("presto", ROOT / "apps/sits/configs/presto.yaml"),
    ]
    for name, config in runs:
        if a.only and name != a.only:
            continue
        if name == "presto" and not (PRESTO / "s1_s2_era5_srtm.npy").exists():
            print(json.dumps({"benchmark": "sits", "data": "presto", "skipped": f"{PRESTO} not found"}))
            continue
        module, dm, how = trained(config, a.steps, a.retrain)
        t0 = time.perf_counter()
        for rec in evaluate_all(module, dm, samples=a.samples, steps=a.sample_steps):
            print(json.dumps({"benchmark": "sits", **rec, "model": how}), flush=True)
        print(json.dumps({"benchmark": "sits", "data": name, "eval_seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
