"""Parallelism applied from outside the model: an FSDP strategy that shards every DiT block as its own unit."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import FSDPStrategy

from ditkit_core.nn.dit import DiTBlock


class DiTFSDPStrategy(FSDPStrategy):
    """Lightning's FSDP with an auto-wrap policy over :class:`~ditkit_core.nn.DiTBlock` (and activation
    checkpointing of the same blocks when ``checkpoint_blocks``).

    Args:
        checkpoint_blocks: recompute each block's activations in the backward pass (memory for compute).
        **kwargs: :class:`~lightning.pytorch.strategies.FSDPStrategy` options (``sharding_strategy``, ...).
    """

    def __init__(self, checkpoint_blocks: bool = False, **kwargs: Any):
        kwargs.setdefault("auto_wrap_policy", {DiTBlock})
        if checkpoint_blocks:
            kwargs.setdefault("activation_checkpointing_policy", {DiTBlock})
        super().__init__(**kwargs)


__all__ = ["DiTFSDPStrategy"]
