"""Parallelism applied from outside the model: DDP that follows the module's declared unused parameters, and FSDP that
shards every DiT block as its own unit."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

from ditkit_core.nn.dit import DiTBlock


class DiTDDPStrategy(DDPStrategy):
    """Lightning's DDP that finds unused parameters exactly for modules that declare some.

    A module whose class sets ``UNUSED_PARAMETERS = True`` (see :class:`~ditkit_core.lightning.FlowMatchingModule`;
    e.g. a model trained in phases) gets ``find_unused_parameters=True``; every other module keeps DDP's static
    gradient bucketing.

    Args:
        find_unused_parameters: None follows the module's ``UNUSED_PARAMETERS``; True / False force it.
        **kwargs: :class:`~lightning.pytorch.strategies.DDPStrategy` options.
    """

    def __init__(self, find_unused_parameters: bool | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.find_unused_parameters = find_unused_parameters

    def configure_ddp(self) -> None:
        find = self.find_unused_parameters
        if find is None:
            find = bool(getattr(self.lightning_module, "UNUSED_PARAMETERS", False))
        self._ddp_kwargs["find_unused_parameters"] = find
        super().configure_ddp()


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


__all__ = ["DiTDDPStrategy", "DiTFSDPStrategy"]
