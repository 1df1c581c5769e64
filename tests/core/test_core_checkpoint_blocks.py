"""Activation checkpointing from outside the model (``CheckpointBlocks``): the same outputs and gradients, every block
recomputed in the backward pass, a pass-through runner outside training, installed only for the fit."""

import contextlib
from pathlib import Path

import lightning as L
import torch

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule
from ditkit_core.lightning import CheckpointBlocks, OptimConfig
from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.testing import perturb_weights, run_config
from ditkit_core.tokenizers import IdentityTokenizer

ROOT = Path(__file__).resolve().parents[2]
DEPTH = 3


def _dit() -> DiT:
    torch.manual_seed(0)
    return perturb_weights(DiT(DiTConfig(in_dim=2, dim=32, depth=DEPTH, heads=2, num_classes=3)), scale=0.05, seed=0)


def _counted(m: DiT) -> list[int]:
    calls = [0]
    for blk in m.blocks:
        blk.register_forward_pre_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))  # pre: recomputes stop early
    return calls


def _grads(m: DiT, checkpointed: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    m.zero_grad()
    calls = _counted(m)
    x, t, y = torch.randn(2, 7, 2, generator=torch.Generator().manual_seed(1)), torch.rand(2), torch.tensor([0, 2])
    with m.runner(CheckpointBlocks.run) if checkpointed else contextlib.nullcontext():
        out = m(x, t, cond=y)
        out.pow(2).sum().backward()
    return out.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}, calls[0]


def test_checkpointed_blocks_give_the_same_outputs_and_gradients_and_recompute_each_block():
    out, grads, calls = _grads(_dit(), checkpointed=False)
    out_c, grads_c, calls_c = _grads(_dit(), checkpointed=True)
    torch.testing.assert_close(out_c, out, rtol=0, atol=0)
    assert grads_c.keys() == grads.keys() and len(grads) > 10
    for k in grads:
        torch.testing.assert_close(grads_c[k], grads[k], rtol=1e-6, atol=1e-7)
    assert calls == DEPTH and calls_c == 2 * DEPTH  # the backward pass ran every block's forward again


def test_runner_passes_through_outside_training():
    m = _dit().eval()
    calls = _counted(m)
    x, t = torch.randn(1, 5, 2), torch.rand(1)
    with torch.no_grad(), m.runner(CheckpointBlocks.run):
        ref = m(x, t)
    assert calls[0] == DEPTH
    torch.testing.assert_close(ref, m(x, t))


def test_callback_installs_the_runner_for_the_fit_only(tmp_path):
    torch.manual_seed(0)
    module = Toy2DModule(IdentityTokenizer(2), DiTConfig(dim=32, depth=2, heads=2), optim=OptimConfig(lr=1e-3))
    seen = []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(list(pl_module.model.runners))

    L.Trainer(
        accelerator="cpu",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        default_root_dir=tmp_path,
        callbacks=[CheckpointBlocks(), Probe()],
    ).fit(module, Toy2DDataModule("moons", points=8, train_sets=16, batch_size=8))
    assert seen == [[CheckpointBlocks.run]] * 2
    assert module.model.runners == []  # removed at the end of the fit


def test_checkpoint_preset_composes_with_an_app_config(tmp_path):
    cli = run_config(
        ROOT / "apps/toy2d/configs/debug.yaml",
        "--config",
        str(ROOT / "shared/trainer/checkpoint.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
    )
    assert "CheckpointBlocks" in [type(c).__name__ for c in cli.trainer.callbacks]
