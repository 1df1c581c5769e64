"""Run by tests/core/test_core_ddp.py: one training step of the toy module under 2-process CPU DDP (gloo).

Each rank saves its batch, its first noise draw and the all-reduced gradients to ``<out>/rank<r>.pt``.
"""

import sys
from pathlib import Path

import lightning as L
import torch

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule
from ditkit_core.lightning import OptimConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import perturb_weights
from ditkit_core.tokenizers import IdentityTokenizer

OUT = Path(sys.argv[1])


def make_module() -> Toy2DModule:
    torch.manual_seed(0)
    m = Toy2DModule(IdentityTokenizer(2), DiTConfig(dim=32, depth=2, heads=2), optim=OptimConfig(lr=1e-3), seed=5)
    return perturb_weights(m, scale=0.05, seed=0)


class Capture(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch = batch["x"].detach().clone()
        self.noise = torch.randn(4, generator=pl_module.rng())

    def on_after_backward(self, trainer, pl_module):
        grads = {n: p.grad.detach().clone() for n, p in pl_module.named_parameters() if p.grad is not None}
        torch.save(
            {"batch": self.batch, "noise": self.noise, "grads": grads, "rank": trainer.global_rank},
            OUT / f"rank{trainer.global_rank}.pt",
        )


if __name__ == "__main__":
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[Capture()],
    )
    trainer.fit(make_module(), Toy2DDataModule("moons", points=8, train_sets=32, batch_size=4, seed=3))
