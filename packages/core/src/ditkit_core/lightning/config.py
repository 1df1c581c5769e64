"""Typed option groups of :class:`~ditkit_core.lightning.FlowMatchingModule`: flow, optimiser, sampler (+ cache).

Every domain module takes the same three groups, so every option is settable from every app's YAML::

    model:
      class_path: ditkit_audio.module.TTSModule
      init_args:
        flow: {cond_dropout: 0.2, time_sampler: {kind: logit_normal}}
        optim: {lr: 3.0e-3, warmup_steps: 100}
        sampler: {steps: 16, schedule: sway, cfg_scale: 3.0, cache: {kind: block, interval: 2}}

Values are validated at construction; errors name the field and the value. :func:`migrate_module_args` maps the
flat arguments of earlier versions (``lr``, ``sample_steps``, ...) onto the groups (configs and checkpoints).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from ditkit_core.flow import TimeSampler
from ditkit_core.nn.config import ConfigError
from ditkit_core.sampling.solvers import METHODS, SCHEDULES


def _need(obj: Any, cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ConfigError(f"{type(obj).__name__}.{name}={getattr(obj, name)!r}: {msg}")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass
class FlowConfig:
    """What is learned: the probability path, training times, condition dropout and the prediction target."""

    time_sampler: TimeSampler = field(default_factory=TimeSampler)
    """Distribution of training times."""
    sigma_min: float = 0.0
    """Noise floor of the linear path at t = 1."""
    cond_dropout: float = 0.0
    """Probability of dropping the condition per sample (classifier-free guidance training)."""
    ot_pairing: bool = False
    """Pair noise with data by exact minibatch optimal transport."""
    prediction: Literal["velocity", "data"] = "velocity"
    """``velocity``: the network predicts ``x_1 - x_0``; ``data``: it predicts ``x_1`` (loss on ``x_1``, the solver
    gets the implied velocity)."""
    channel_weights: list[float] | None = None
    """Per-channel weights of the token width in the loss (None: all 1)."""
    self_condition: float = 0.0
    """Self-conditioning (Chen et al., Analog Bits): with this probability per sample, training first estimates the
    clean tokens without an estimate (no gradient) and feeds that estimate back through ``DiTConfig.self_cond``;
    sampling feeds each step's estimate to the next (0: off; 0.5 is usual)."""

    def __post_init__(self) -> None:
        if self.time_sampler is None:  # earlier configs wrote None for "the default sampler"
            self.time_sampler = TimeSampler()
        elif isinstance(self.time_sampler, dict):
            self.time_sampler = TimeSampler(**self.time_sampler)
        _need(self, _number(self.sigma_min) and 0.0 <= self.sigma_min < 1.0, "sigma_min", "must be in [0, 1)")
        _need(self, _number(self.cond_dropout) and 0.0 <= self.cond_dropout < 1.0, "cond_dropout", "must be in [0, 1)")
        _need(self, self.prediction in ("velocity", "data"), "prediction", "must be 'velocity' or 'data'")
        _need(
            self,
            _number(self.self_condition) and 0.0 <= self.self_condition < 1.0,
            "self_condition",
            "must be in [0, 1)",
        )
        if self.channel_weights is not None:
            self.channel_weights = [float(w) for w in self.channel_weights]
            _need(
                self,
                all(math.isfinite(w) and w >= 0 for w in self.channel_weights)
                and any(w > 0 for w in self.channel_weights),
                "channel_weights",
                "must be finite, >= 0, not all 0",
            )


@dataclass
class OptimConfig:
    """AdamW with linear warm-up and cosine decay (no decay on norms, biases, embeddings, gates)."""

    lr: float = 3e-4
    """Peak learning rate."""
    weight_decay: float = 0.0
    """Decoupled weight decay."""
    betas: tuple[float, float] = (0.9, 0.99)
    """AdamW betas."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    max_steps: int | None = None
    """Cosine horizon; None uses the trainer's estimated stepping batches."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of ``lr``."""

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        _need(self, _number(self.lr) and self.lr > 0, "lr", "must be a positive number")
        _need(self, _number(self.weight_decay) and self.weight_decay >= 0, "weight_decay", "must be >= 0")
        _need(
            self,
            len(self.betas) == 2 and all(0.0 <= b < 1.0 for b in self.betas),
            "betas",
            "must be two numbers in [0, 1)",
        )
        _need(
            self,
            isinstance(self.warmup_steps, int) and self.warmup_steps >= 0,
            "warmup_steps",
            "must be an integer >= 0",
        )
        _need(
            self,
            self.max_steps is None or (isinstance(self.max_steps, int) and self.max_steps > 0),
            "max_steps",
            "must be a positive integer or None",
        )
        _need(self, _number(self.min_lr_ratio) and 0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")


CACHE_KINDS = ("none", "block", "step", "expert")


@dataclass
class CacheConfig:
    """Training-free sampling cache (see :mod:`ditkit_core.sampling.cache`)."""

    kind: Literal["none", "block", "step", "expert"] = "none"
    """``none``, ``block`` (BlockCache), ``step`` (StepCache, threshold calibrated per model), ``expert``
    (ExpertCache for time-routed MoE)."""
    interval: int = 2
    """``block``: recompute every block every ``interval`` evaluations."""
    order: int = 1
    """``block``: 0 reuses residuals, 1 extrapolates them linearly in t."""
    skip_ratio: float = 0.5
    """``step``: fraction of evaluations to skip; the threshold is calibrated on the first sampling run."""
    max_skip: int = 4
    """``step``: at most this many consecutive skipped evaluations."""

    def __post_init__(self) -> None:
        _need(self, self.kind in CACHE_KINDS, "kind", f"must be one of {CACHE_KINDS}")
        _need(self, isinstance(self.interval, int) and self.interval >= 1, "interval", "must be an integer >= 1")
        _need(self, self.order in (0, 1), "order", "must be 0 or 1")
        _need(self, _number(self.skip_ratio) and 0.0 <= self.skip_ratio < 1.0, "skip_ratio", "must be in [0, 1)")
        _need(self, isinstance(self.max_skip, int) and self.max_skip >= 0, "max_skip", "must be an integer >= 0")


@dataclass
class SamplerConfig:
    """Default settings of :meth:`FlowMatchingModule.generate`."""

    steps: int = 32
    """Solver steps."""
    method: str = "euler"
    """Solver: euler, midpoint, heun, rk4 or dopri5."""
    schedule: str = "uniform"
    """Time grid: uniform, shift, sigmoid or sway."""
    shift: float = 3.0
    """Shift factor of the ``shift`` schedule."""
    sway: float = -1.0
    """Coefficient of the ``sway`` schedule, in [-1, 1]."""
    cfg_scale: float = 1.0
    """Classifier-free guidance weight (1: off)."""
    cfg_rescale: float = 0.0
    """Guidance rescale factor in [0, 1]."""
    cfg_interval: tuple[float, float] | None = None
    """Apply guidance only for t in this interval."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    """Training-free cache used while sampling."""

    def __post_init__(self) -> None:
        if isinstance(self.cache, dict):
            self.cache = CacheConfig(**self.cache)
        _need(
            self,
            isinstance(self.steps, int) and not isinstance(self.steps, bool) and self.steps >= 1,
            "steps",
            "must be an integer >= 1",
        )
        _need(self, self.method in METHODS, "method", f"must be one of {METHODS}")
        _need(self, self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}")
        _need(self, _number(self.shift) and self.shift > 0, "shift", "must be > 0")
        _need(self, _number(self.sway) and -1.0 <= self.sway <= 1.0, "sway", "must be in [-1, 1]")
        _need(self, _number(self.cfg_scale) and self.cfg_scale >= 0, "cfg_scale", "must be a number >= 0")
        _need(self, _number(self.cfg_rescale) and 0.0 <= self.cfg_rescale <= 1.0, "cfg_rescale", "must be in [0, 1]")
        if self.cfg_interval is not None:
            self.cfg_interval = tuple(float(v) for v in self.cfg_interval)
            _need(
                self,
                len(self.cfg_interval) == 2 and 0.0 <= self.cfg_interval[0] <= self.cfg_interval[1] <= 1.0,
                "cfg_interval",
                "must be (lo, hi) with 0 <= lo <= hi <= 1",
            )


# flat argument of earlier versions -> (group, field)
LEGACY_ARGS: dict[str, tuple[str, str]] = {
    "time_sampler": ("flow", "time_sampler"),
    "sigma_min": ("flow", "sigma_min"),
    "cond_dropout": ("flow", "cond_dropout"),
    "ot_pairing": ("flow", "ot_pairing"),
    "lr": ("optim", "lr"),
    "weight_decay": ("optim", "weight_decay"),
    "betas": ("optim", "betas"),
    "warmup_steps": ("optim", "warmup_steps"),
    "max_steps": ("optim", "max_steps"),
    "min_lr_ratio": ("optim", "min_lr_ratio"),
    "sample_steps": ("sampler", "steps"),
    "sample_method": ("sampler", "method"),
    "sample_schedule": ("sampler", "schedule"),
    "cfg_scale": ("sampler", "cfg_scale"),
}


def migrate_module_args(
    args: dict[str, Any], extra: dict[str, tuple[str, str]] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Map flat module arguments of earlier versions onto the ``flow`` / ``optim`` / ``sampler`` groups.

    Args:
        args: a module's init arguments (a YAML ``init_args`` or checkpoint hyper-parameters).
        extra: a domain's own legacy arguments (e.g. TTS ``sway -> sampler.sway``).

    Returns:
        the migrated arguments and the names that were moved.
    """
    table = {**LEGACY_ARGS, **(extra or {})}
    out, moved = dict(args), []
    for name, (group, key) in table.items():
        if name in out:
            value = out.pop(name)
            grp = dict(out.get(group) or {})
            if dataclasses.is_dataclass(grp):
                grp = dataclasses.asdict(grp)
            grp.setdefault(key, value)
            out[group] = grp
            moved.append(name)
    return out, moved


def plain(value: Any) -> Any:
    """Configs as plain JSON-able data (dataclasses -> dicts, tuples -> lists) for hyper-parameters."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


__all__ = ["CacheConfig", "FlowConfig", "LEGACY_ARGS", "OptimConfig", "SamplerConfig", "migrate_module_args", "plain"]
