"""Sample a trained toy2d checkpoint and write a PNG of samples vs data.

Usage:
    python apps/toy2d/sample.py --ckpt outputs/toy2d/checkpoints/last.ckpt [--steps 32] [--method heun]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ditkit_core.examples.toy2d import plot_samples, sample_points
from ditkit_core.lightning import load_run, save_pretrained
from ditkit_core.metrics import energy_distance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ckpt", type=Path, default=Path("outputs/toy2d/checkpoints/last.ckpt"))
    ap.add_argument("--distribution", default="checkerboard")
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--method", default="heun")
    ap.add_argument("--sets", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("outputs/toy2d"))
    args = ap.parse_args()
    if not args.ckpt.exists():
        raise SystemExit(f"no checkpoint at {args.ckpt}: run `make train-toy2d` first")
    module = load_run(ckpt=args.ckpt)  # weights-only load, allow-listed classes
    gen = module.sample_points(args.sets, 64, seed=0, steps=args.steps, method=args.method)
    ref = sample_points(args.distribution, gen.shape[0], torch.Generator().manual_seed(1))
    ed = float(energy_distance(gen, ref))
    png = plot_samples(
        gen,
        ref,
        args.out / f"samples_{args.method}{args.steps}.png",
        title=f"{args.distribution}: {args.method} x{args.steps}, energy distance {ed:.4f}",
    )
    save_pretrained(module, args.out / "pretrained")
    print(f"energy distance {ed:.4f}; wrote {png} and {args.out / 'pretrained'}")


if __name__ == "__main__":
    main()
