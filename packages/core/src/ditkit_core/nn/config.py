"""Typed configuration of the DiT backbone, with validation that names the field and the value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

ATTENTION_BACKENDS = ("auto", "math", "sdpa", "flex", "flash")
ROPE_SCALINGS = ("none", "ntk", "pi", "freq_aware", "time_aware")
ROUTERS = ("token", "token_time", "time")

# Widths of the DiT paper's S/B/L models (Peebles & Xie, 2023); depth and heads as published.
PRESETS: dict[str, dict[str, Any]] = {
    "debug": {"dim": 64, "depth": 2, "heads": 4},
    "S": {"dim": 384, "depth": 12, "heads": 6},
    "B": {"dim": 768, "depth": 12, "heads": 12},
    "L": {"dim": 1024, "depth": 24, "heads": 16},
}


class ConfigError(ValueError):
    """A configuration field holds an invalid value; the message names the field and the value."""


@dataclass
class DiTConfig:
    """Configuration of :class:`ditkit_core.nn.DiT`.

    Every field is validated in ``__post_init__``; invalid values raise :class:`ConfigError`
    naming the field and the value.
    """

    in_dim: int = 0
    """Width of the input tokens ``x [b, n, in_dim]``. 0: resolved by the Lightning module from its tokenizer."""
    dim: int = 384
    """Hidden width of the transformer."""
    depth: int = 12
    """Number of DiT blocks."""
    heads: int = 6
    """Attention heads; must divide ``dim``."""
    out_dim: int | None = None
    """Width of the output (velocity) tokens; defaults to ``in_dim``."""
    mlp_ratio: float = 4.0
    """Hidden width of the MLP as a multiple of ``dim``."""
    cond_dim: int = 0
    """Width of a continuous global condition ``cond [b, cond_dim]`` (0: none)."""
    num_classes: int = 0
    """Number of class labels for ``cond [b]`` long (0: none). Index ``num_classes`` is the null class."""
    context_dim: int = 0
    """Width of cross-attention context ``[b, m, context_dim]`` (0: no cross-attention)."""
    cond_channels: int = 0
    """Width of per-token condition channels ``x_cond [b, n, cond_channels]`` (reference frames, given values,
    priors, features): a bias-free projection added to the input embedding (0: none)."""
    drop_x_cond: bool = True
    """Condition dropout (``drop_cond``) zeroes the condition channels of dropped samples. Set False when the module's
    ``condition`` hook builds its own unconditional channels."""
    self_cond: bool = False
    """Self-conditioning input: the network also takes its own previous estimate of the clean tokens
    ``x_self [b, n, out_dim]`` through a zero-initialised bias-free projection added to the input embedding (never
    dropped by ``drop_cond``). :class:`~ditkit_core.lightning.FlowMatchingModule` sets it from
    ``FlowConfig.self_condition``."""
    pair_dim: int = 0
    """Width of pair features ``pair [b, n, n, pair_dim]``; each block projects them to a per-head additive
    attention bias (0: none)."""
    qk_norm: bool = True
    """RMS-normalise queries and keys per head (stabilises bf16 training)."""
    sandwich_norm: bool = False
    """Also normalise the output of attention / MLP before the gated residual (CogView / Lumina style)."""
    rope_axes: int = 0
    """Number of position axes k in ``pos [b, n, k]`` for rotary embeddings (0: no RoPE)."""
    rope_theta: float = 10000.0
    """RoPE base frequency."""
    rope_scaling: Literal["none", "ntk", "pi", "freq_aware", "time_aware"] = "none"
    """Length-extrapolation scaling of RoPE frequencies (see :mod:`ditkit_core.nn.rope`)."""
    rope_scale: float = 1.0
    """Extrapolation factor (target length / training length) used by ``rope_scaling``."""
    learned_pos: int = 0
    """If > 0, a learned absolute position table of this size indexed by ``pos[..., 0]`` (long)."""
    registers: int = 0
    """Number of learned register tokens prepended to the sequence (dropped from the output)."""
    moe_experts: int = 0
    """Routed experts in the MLP (0: dense MLP)."""
    moe_top_k: int = 2
    """Experts used per token (or per sample when routing depends on time only)."""
    moe_shared: int = 1
    """Always-on shared experts added to the routed ones."""
    moe_router: Literal["token", "token_time", "time"] = "token"
    """Router input: the token, the token plus the time embedding, or the time embedding alone (MoDE)."""
    moe_balance_weight: float = 0.01
    """Weight of the load-balancing loss returned by ``DiT.aux_loss()``."""
    window: int | None = None
    """Local attention window (tokens on each side) for the blocks selected by ``window_every``."""
    window_every: int = 2
    """With ``window`` or ``window_grid`` set, every ``window_every``-th block is global, the others local
    (1: all local)."""
    window_grid: list[int] | None = None
    """Token grid shape (e.g. ``[8, 8, 8]`` patches, tokens in raster order) for grid-window blocks."""
    window_size: list[int] | None = None
    """Window shape on ``window_grid`` (divides it per axis): local blocks attend inside these windows only."""
    window_min_tokens: int = 0
    """Local blocks fall back to global attention on sequences of at most this many tokens (where windows
    do not pay)."""
    attn_backend: Literal["auto", "math", "sdpa", "flex", "flash"] = "auto"
    """Attention backend, see :func:`ditkit_core.nn.attention.attention`."""
    step_conditioning: bool = False
    """Also embed the solver's step size (few-step students: shortcut-style distillation). The embedding's last layer
    starts at zero, so a teacher's weights load unchanged; the step size comes from the solver (see
    :func:`ditkit_core.sampling.protocol.current_step_size`), 0 outside one."""
    dropout: float = 0.0
    """Dropout in attention outputs and MLP."""
    time_scale: float = 1000.0
    """``t`` in [0, 1] is multiplied by this before the sinusoidal embedding."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form metadata kept with the checkpoint (not read by the model)."""

    def __post_init__(self) -> None:
        def need(cond: bool, name: str, msg: str) -> None:
            if not cond:
                raise ConfigError(f"DiTConfig.{name}={getattr(self, name)!r}: {msg}")

        for name in ("dim", "depth", "heads"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v > 0, name, "must be a positive integer")
        need(self.dim % self.heads == 0, "heads", f"must divide dim={self.dim}")
        need(self.out_dim is None or (isinstance(self.out_dim, int) and self.out_dim > 0), "out_dim", "must be > 0")
        need(self.mlp_ratio > 0, "mlp_ratio", "must be > 0")
        need(
            isinstance(self.in_dim, int) and not isinstance(self.in_dim, bool) and self.in_dim >= 0,
            "in_dim",
            "must be an integer >= 0 (0: resolved from the tokenizer)",
        )
        for name in (
            "cond_dim",
            "num_classes",
            "context_dim",
            "rope_axes",
            "registers",
            "learned_pos",
            "cond_channels",
            "pair_dim",
            "window_min_tokens",
        ):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 0, name, "must be an integer >= 0")
        need(self.attn_backend in ATTENTION_BACKENDS, "attn_backend", f"must be one of {ATTENTION_BACKENDS}")
        need(self.rope_scaling in ROPE_SCALINGS, "rope_scaling", f"must be one of {ROPE_SCALINGS}")
        need(self.rope_scale >= 1.0, "rope_scale", "must be >= 1")
        need(self.moe_router in ROUTERS, "moe_router", f"must be one of {ROUTERS}")
        if self.rope_axes:
            head_dim = self.dim // self.heads
            need(
                head_dim % (2 * self.rope_axes) == 0,
                "rope_axes",
                f"head dim {head_dim} must be divisible by 2 * rope_axes",
            )
        if self.moe_experts:
            need(0 < self.moe_top_k <= self.moe_experts, "moe_top_k", f"must be in [1, moe_experts={self.moe_experts}]")
        need(self.window is None or self.window > 0, "window", "must be a positive integer or None")
        need(self.window_every >= 1, "window_every", "must be >= 1")
        need(
            (self.window_grid is None) == (self.window_size is None),
            "window_size",
            f"window_grid={self.window_grid} and window_size must be given together",
        )
        if self.window_grid is not None:
            need(self.window is None, "window", "use either 1D windows (window) or grid windows (window_grid)")
            need(
                len(self.window_grid) == len(self.window_size) and len(self.window_grid) > 0,
                "window_size",
                f"needs one size per axis of window_grid={self.window_grid}",
            )
            need(
                all(w > 0 and g % w == 0 for g, w in zip(self.window_grid, self.window_size)),
                "window_size",
                f"must divide window_grid={self.window_grid} per axis",
            )
            need(self.registers == 0, "registers", "grid windows need registers=0")
        need(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def output_dim(self) -> int:
        return self.out_dim if self.out_dim is not None else self.in_dim

    def is_local_block(self, index: int) -> bool:
        """Whether block ``index`` uses local (1D or grid) window attention."""
        if self.window is None and self.window_grid is None:
            return False
        return self.window_every == 1 or (index + 1) % self.window_every != 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> DiTConfig:
        """Build a config from a size preset (``debug``, ``S``, ``B``, ``L``) and overrides.

        Args:
            name: preset name.
            **overrides: any other field, ``in_dim`` included.

        Raises:
            ConfigError: for an unknown preset name or field.
        """
        if name not in PRESETS:
            raise ConfigError(f"DiTConfig.preset: unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiTConfig:
        """Build from a plain dict, rejecting unknown keys by name."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"DiTConfig: unknown field(s) {unknown}; known fields are {sorted(known)}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
