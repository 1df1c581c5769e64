"""Window attention at 4k tokens: training time and validation loss after the same budget, windows vs global.

The shapes voxel backbone (`apps/shapes/configs/voxel.yaml`) at 32^3 voxels with 2^3-voxel patches is 4,096 tokens
per cloud. Two runs train from the same seed, data, batches and steps:

* ``window``: 3D windows of ``--window``^3 patches (``window3d``); every ``--every``-th block stays global;
* ``global`` (the peer): the same model with global attention in every block.

Each run is one ``ditkit fit`` in a fresh subprocess (one thread). Reported: process CPU seconds per training step
after the first 5 (start-up and validation excluded), and the validation loss at the end (the mean over
``--val-batches`` fixed batches, same noise in both runs). The goal: the windowed run >= 1.5x faster at no higher
validation loss.

Usage: python benchmarks/long_windows.py [--steps 300] [--batch 2] [--dim 96] [--depth 4] [--every 4] [--window 4]
Data: `make data-shapes` (outputs/shapes/data).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARM = 5  # steps before the clock starts

CHILD = r"""
import json, time
import lightning as L
import torch
torch.set_num_threads(1)

class Clock(L.Callback):
    # process CPU time of the training steps after the first {warm} (start-up and validation excluded)
    def __init__(self):
        self.val, self.c0 = 0.0, None
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == {warm} and self.c0 is None:
            self.c0, self.val = time.process_time(), 0.0
    def on_validation_start(self, trainer, pl_module):
        self.v0 = time.process_time()
    def on_validation_end(self, trainer, pl_module):
        self.val += time.process_time() - self.v0
    def on_train_end(self, trainer, pl_module):
        self.train = time.process_time() - self.c0 - self.val

from ditkit_core.lightning.cli import FlowCLI
clock = Clock()
cli = FlowCLI(args=["--config", {config!r}, *{overrides!r}], run=False)
cli.trainer.callbacks.append(clock)
cli.trainer.fit(cli.model, cli.datamodule)
loss = float(cli.trainer.callback_metrics["val/loss"])
print(json.dumps(dict(train_cpu_s=clock.train, val_loss=loss, steps=cli.trainer.global_step - {warm})))
"""


def run(name: str, args: argparse.Namespace, root: Path) -> dict:
    overrides = [
        f"--trainer.default_root_dir={root / name}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
        "--trainer.enable_progress_bar=false",
        f"--trainer.max_steps={args.steps}",
        "--trainer.max_epochs=-1",
        f"--trainer.val_check_interval={args.steps}",
        "--trainer.check_val_every_n_epoch=null",
        f"--trainer.limit_val_batches={args.val_batches}",
        "--trainer.num_sanity_val_steps=0",
        "--model.init_args.tokenizer.init_args.resolution=32",
        "--model.init_args.tokenizer.init_args.patch=2",
        "--model.init_args.model.in_dim=64",
        f"--model.init_args.model.dim={args.dim}",
        f"--model.init_args.model.depth={args.depth}",
        f"--model.init_args.window3d={args.window if name == 'window' else 0}",
        f"--model.init_args.window_every={args.every}",
        f"--data.init_args.batch_size={args.batch}",
        f"--data.init_args.root={args.data}",
    ]
    code = CHILD.format(config=str(ROOT / "apps/shapes/configs/voxel.yaml"), overrides=overrides, warm=WARM)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(f"{name}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dim", type=int, default=96)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--every", type=int, default=4, help="every N-th block stays global (4: 3 of 4 windowed)")
    ap.add_argument("--window", type=int, default=4, help="window edge in patches (4: 64-token windows)")
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--data", default="outputs/shapes/data")
    args = ap.parse_args()
    if not (ROOT / args.data).is_dir() and not Path(args.data).is_dir():
        raise SystemExit(f"no dataset at {args.data}; make it: make data-shapes")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _util import emit

    with tempfile.TemporaryDirectory() as tmp:
        res = {name: run(name, args, Path(tmp)) for name in ("window", "global")}
    w, g = res["window"], res["global"]
    speedup = (g["train_cpu_s"] / g["steps"]) / (w["train_cpu_s"] / w["steps"])
    emit(
        bench="long_windows",
        tokens=4096,
        steps=args.steps,
        batch=args.batch,
        dim=args.dim,
        depth=args.depth,
        window=f"{args.window}^3 patches; every {args.every}-th block global",
        s_per_step=round(w["train_cpu_s"] / w["steps"], 4),
        val_loss=round(w["val_loss"], 5),
        peer="same model, global attention in every block",
        peer_s_per_step=round(g["train_cpu_s"] / g["steps"], 4),
        peer_val_loss=round(g["val_loss"], 5),
        speedup=round(speedup, 3),
        goal_met=bool(speedup >= 1.5 and w["val_loss"] <= g["val_loss"]),
    )


if __name__ == "__main__":
    main()
