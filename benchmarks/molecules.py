"""Molecules benchmark: generation throughput on CPU at the default step count, and the metric table.

Prints one JSON line per figure. Throughput is measured for both models (trained checkpoints from
``make train-molecules`` when present, else freshly initialised weights: the cost is the same) as molecules per
wall-clock second (``value``) and per CPU-second of this process (``per_cpu_s``, which other load on the machine
does not change; ``load`` is the 1-minute load average during the run). Metric lines give the model's value next to
the training data's (the ceiling) and need the checkpoints.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/molecules.py [--n-3d 200] [--n-latent 500] [--no-fcd]
        [--throughput-only] [--models 3d,latent]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch

from ditkit_molecules.cli import evaluate, generate, load_run

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "3d": ("apps/molecules/configs/default.yaml", "outputs/molecules/3d/checkpoints/last.ckpt"),
    "latent": ("apps/molecules/configs/latent.yaml", "outputs/molecules/latent/checkpoints/last.ckpt"),
}


def emit(**kw) -> None:
    print(json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in kw.items()}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-3d", type=int, default=200)
    p.add_argument("--n-latent", type=int, default=500)
    p.add_argument("--throughput-n", type=int, default=128)
    p.add_argument("--no-fcd", action="store_true")
    p.add_argument("--throughput-only", action="store_true", help="skip the metric tables")
    p.add_argument("--models", default="3d,latent", help="comma-separated subset of 3d,latent")
    args = p.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.set_grad_enabled(False)
    for name, (config, ckpt) in RUNS.items():
        if name not in args.models.split(","):
            continue
        ckpt_path = ROOT / ckpt
        trained = ckpt_path.exists()
        module, dm = load_run(
            ROOT / config, ckpt_path if trained else None, setup_data=trained and not args.throughput_only
        )
        generate(module, 4, seed=99)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        generate(module, args.throughput_n, seed=1)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        # wall-clock rate, and the rate per CPU-second of this process (insensitive to other load on the machine)
        emit(
            benchmark="molecules",
            figure="molecules_per_s",
            model=name,
            value=args.throughput_n / dt,
            per_cpu_s=args.throughput_n / dc,
            steps=module.sampler.steps,
            method=module.sampler.method,
            threads=torch.get_num_threads(),
            trained=trained,
            device="cpu",
            load=os.getloadavg()[0],
        )
        if args.throughput_only:
            continue
        if not trained:
            emit(
                benchmark="molecules",
                figure="metrics",
                model=name,
                value=None,
                note=f"{ckpt} missing: run `make train-molecules` first",
            )
            continue
        n = args.n_3d if name == "3d" else args.n_latent
        rows = evaluate(module, dm, n, seed=0, with_fcd=not args.no_fcd)
        for metric, value in rows["model"].items():
            if metric in ("n", "molecules_per_s"):
                continue
            emit(
                benchmark="molecules",
                figure=metric,
                model=name,
                value=value,
                training_data=rows["training data"].get(metric),
                held_out_data=rows["held-out data"].get(metric),
                n=n,
            )


if __name__ == "__main__":
    main()
