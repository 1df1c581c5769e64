"""``EMA``: an exponential moving average of the trainable weights, as a callback (the one EMA of ditkit).

The average starts from the weights at ``start_step`` (never from the random initial weights), optionally with the
warm-up ``decay_k = min(decay, (1 + k) / (10 + k))`` after ``k`` updates so that early weights are forgotten quickly.
Validation runs on the averaged weights; checkpoints store the average in ``state_dict`` (so every loader gets the
averaged weights for inference) and the raw weights under ``checkpoint["ema"]``, from which a resumed run restores
both exactly. At the end of training the module keeps the averaged weights.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor


class EMA(L.Callback):
    """Exponential moving average of every trainable parameter of the LightningModule.

    Args:
        decay: the EMA decay (per update).
        start_step: first optimizer step (0-based) that updates the average; the first update copies the weights.
        warmup: ramp the decay as ``min(decay, (1 + k) / (10 + k))`` over the first updates.
        every_n_steps: update every this many optimizer steps.
    """

    def __init__(self, decay: float = 0.999, start_step: int = 0, warmup: bool = False, every_n_steps: int = 1):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA.decay={decay!r}: must be in (0, 1)")
        if start_step < 0 or every_n_steps < 1:
            raise ValueError(f"EMA: start_step={start_step} must be >= 0 and every_n_steps={every_n_steps} >= 1")
        self.decay, self.start_step, self.warmup, self.every = float(decay), int(start_step), warmup, every_n_steps
        self.shadow: dict[str, Tensor] | None = None
        self.updates = 0
        self._swapped: dict[str, Tensor] | None = None
        self._raw_at_end: dict[str, Tensor] | None = None  # raw weights set aside when training ends

    @staticmethod
    def _params(pl_module: L.LightningModule) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in pl_module.named_parameters() if p.requires_grad}

    def decay_at(self, k: int) -> float:
        """Decay of the ``k``-th update (1-based)."""
        return min(self.decay, (1 + k) / (10 + k)) if self.warmup else self.decay

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._raw_at_end = None  # a further fit in the same process trains on

    @torch.no_grad()
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step - 1  # index of the optimizer step just taken
        if step < self.start_step or (step - self.start_step) % self.every:
            return
        params = self._params(pl_module)
        if self.shadow is None:
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
            self.updates = 1
            return
        self.updates += 1
        w = 1.0 - self.decay_at(self.updates)
        for n, p in params.items():
            self.shadow[n].lerp_(p.detach(), w)

    @torch.no_grad()
    def _swap_in(self, pl_module: L.LightningModule) -> None:
        if self.shadow is None or self._swapped is not None:
            return
        params = self._params(pl_module)
        self._swapped = {n: params[n].detach().clone() for n in self.shadow}
        for n, v in self.shadow.items():
            params[n].copy_(v)

    @torch.no_grad()
    def _swap_out(self, pl_module: L.LightningModule) -> None:
        if self._swapped is None:
            return
        params = self._params(pl_module)
        for n, v in self._swapped.items():
            params[n].copy_(v)
        self._swapped = None

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_in(pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swap_out(pl_module)

    @torch.no_grad()
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Leave the averaged weights in the module (what sampling and export should use); the raw weights stay set
        aside, so a checkpoint written after this point (``ModelCheckpoint`` saves ``last`` at train end) still records
        them for resuming."""
        if self.shadow is None:
            return
        params = self._params(pl_module)
        self._raw_at_end = {n: params[n].detach().clone() for n in self.shadow}
        for n, v in self.shadow.items():
            params[n].copy_(v)

    def state_dict(self) -> dict[str, Any]:
        return {"updates": self.updates}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.updates = int(state_dict.get("updates", 0))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.shadow is None:
            return
        state = checkpoint["state_dict"]
        raw = {}
        for n, v in self.shadow.items():
            if n in state:
                # saved during validation (averages swapped in), the module holds the average: the raw weights are
                # the ones set aside by the swap
                aside = self._swapped if self._swapped is not None else self._raw_at_end
                raw[n] = aside[n].clone() if aside is not None else state[n]
                state[n] = v.detach().clone()
        checkpoint["ema"] = {"raw": raw, "updates": self.updates}

    @torch.no_grad()
    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        ema = checkpoint.get("ema")
        if not ema:
            return
        params = self._params(pl_module)
        # the module was loaded with the averaged weights: keep them as the shadow, restore the raw weights
        self.shadow = {n: params[n].detach().clone() for n in ema["raw"] if n in params}
        for n, v in ema["raw"].items():
            if n in params:
                params[n].copy_(v)
        self.updates = int(ema["updates"])


__all__ = ["EMA"]
