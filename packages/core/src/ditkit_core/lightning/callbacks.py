"""Callbacks: token throughput and periodic sample media."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import torch


class TokenThroughput(L.Callback):
    """Logs ``train/tokens_per_s`` (real tokens, padding excluded) and ``train/samples_per_s``."""

    def __init__(self, log_every_n_steps: int = 10):
        self.every = log_every_n_steps
        self._t0: float | None = None
        self._tokens = 0
        self._samples = 0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int):
        if self._t0 is None:
            self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        x = batch.get("x") if isinstance(batch, dict) else None
        mask = batch.get("mask") if isinstance(batch, dict) else None
        if isinstance(mask, torch.Tensor):
            self._tokens += int(mask.sum())
            self._samples += mask.shape[0]
        elif isinstance(x, torch.Tensor):
            self._tokens += x.shape[0] * (x.shape[1] if x.dim() > 2 else 1)
            self._samples += x.shape[0]
        if (batch_idx + 1) % self.every == 0 and self._t0 is not None:
            dt = time.perf_counter() - self._t0
            if dt > 0 and self._tokens:
                pl_module.log("train/tokens_per_s", self._tokens / dt)
                pl_module.log("train/samples_per_s", self._samples / dt)
            self._t0, self._tokens, self._samples = time.perf_counter(), 0, 0


class SampleWriter(L.Callback):
    """After every ``every_n_epochs`` validation epochs, asks the module to write viewable samples.

    Calls ``pl_module.write_samples(out_dir, tag)`` (PNG, wav, ply, ... per domain) on the global-zero rank and
    logs the written paths; with a TensorBoard logger, PNGs are also added as images.
    """

    def __init__(self, out_dir: str = "outputs/samples", every_n_epochs: int = 1):
        self.out_dir, self.every = Path(out_dir), every_n_epochs

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not hasattr(pl_module, "write_samples"):
            return
        if (trainer.current_epoch + 1) % self.every:
            return
        tag = f"epoch{trainer.current_epoch:03d}_step{trainer.global_step:06d}"
        paths = pl_module.write_samples(self.out_dir, tag) or []
        for p in paths:
            print(f"[SampleWriter] wrote {p}")
            self._log_image(trainer, Path(p), tag)

    @staticmethod
    def _log_image(trainer: L.Trainer, path: Path, tag: str) -> None:
        """Send PNGs to loggers that take images (TensorBoard's ``add_image``, or a ``log_image`` method)."""
        if path.suffix.lower() != ".png":
            return
        for logger in trainer.loggers:
            exp = getattr(logger, "experiment", None)
            if hasattr(logger, "log_image"):
                logger.log_image(key=f"samples/{path.stem}", images=[str(path)], step=trainer.global_step)
            elif exp is not None and hasattr(exp, "add_image"):
                import matplotlib.image as mpimg

                img = torch.from_numpy(mpimg.imread(str(path))[..., :3]).permute(2, 0, 1)
                exp.add_image(f"samples/{path.stem}", img, trainer.global_step)


class CompileBlocks(L.Callback):
    """Applies ``torch.compile`` from outside the model code: each ``DiTBlock`` of every ``DiT`` is compiled
    separately at the start of fitting (regional compilation, as torchtitan does: short compile times, one graph
    reused by every block).

    Args:
        mode: ``torch.compile`` mode (``default``, ``reduce-overhead``, ``max-autotune``).
        dynamic: allow dynamic shapes (variable sequence lengths) without recompiling.
    """

    def __init__(self, mode: str = "default", dynamic: bool | None = None):
        self.mode, self.dynamic = mode, dynamic

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        from ditkit_core.nn.dit import DiT

        for m in pl_module.modules():
            if isinstance(m, DiT):
                for i, blk in enumerate(m.blocks):
                    m.blocks[i] = torch.compile(blk, mode=self.mode, dynamic=self.dynamic)
