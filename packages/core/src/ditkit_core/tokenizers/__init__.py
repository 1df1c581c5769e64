"""The tokenizer protocol: the only domain-specific part of a DiT besides its conditioning."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@dataclass
class TokenBatch:
    """A batch of tokens and everything the DiT is conditioned on.

    Attributes:
        x: tokens ``[b, n, d]`` (the flow-matching target lives here).
        mask: ``[b, n]`` bool, True = real token (None = all real).
        pos: positions ``[b, n, k]`` for RoPE / learned positions.
        context: cross-attention tokens ``[b, m, c]``.
        context_mask: ``[b, m]`` bool.
        cond: global condition ``[b, c]`` float or class labels ``[b]`` long.
        known_mask: bool like ``x`` (or ``[b, n]``): entries given as conditions (infilling); the loss skips them.
        x_cond: per-token condition channels ``[b, n, c]`` (reference frames, given values, priors, features).
        pair: pair features ``[b, n, n, p]`` (an additive attention bias in every block).
        meta: anything the decoder needs to get back to raw data (original lengths, scales, names, ...).
    """

    x: Tensor
    mask: Tensor | None = None
    pos: Tensor | None = None
    context: Tensor | None = None
    context_mask: Tensor | None = None
    cond: Tensor | None = None
    known_mask: Tensor | None = None
    x_cond: Tensor | None = None
    pair: Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.x.dim() != 3:
            raise ValueError(f"TokenBatch.x must be [b, n, d], got {tuple(self.x.shape)}")
        b, n = self.x.shape[:2]
        if self.mask is not None and (self.mask.dtype != torch.bool or tuple(self.mask.shape) != (b, n)):
            raise ValueError(
                f"TokenBatch.mask must be bool [b, n]=({b}, {n}), got {self.mask.dtype} {tuple(self.mask.shape)}"
            )
        if self.pos is not None and tuple(self.pos.shape[:2]) != (b, n):
            raise ValueError(f"TokenBatch.pos must be [b, n, k]=({b}, {n}, k), got {tuple(self.pos.shape)}")
        if self.context is not None and self.context.shape[0] != b:
            raise ValueError(f"TokenBatch.context must have batch {b}, got {tuple(self.context.shape)}")
        if self.cond is not None and self.cond.shape[0] != b:
            raise ValueError(f"TokenBatch.cond must have batch {b}, got {tuple(self.cond.shape)}")
        if self.x_cond is not None and (self.x_cond.dim() != 3 or tuple(self.x_cond.shape[:2]) != (b, n)):
            raise ValueError(f"TokenBatch.x_cond must be [b, n, c]=({b}, {n}, c), got {tuple(self.x_cond.shape)}")
        if self.pair is not None and (self.pair.dim() != 4 or tuple(self.pair.shape[:3]) != (b, n, n)):
            raise ValueError(f"TokenBatch.pair must be [b, n, n, p]=({b}, {n}, {n}, p), got {tuple(self.pair.shape)}")

    @property
    def batch_size(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> TokenBatch:
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        kw = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in kw.items()}
        return TokenBatch(**kw)

    def replace(self, **changes: Any) -> TokenBatch:
        return replace(self, **changes)

    def model_kwargs(self) -> dict[str, Tensor | None]:
        """Keyword arguments for ``DiT.forward`` (everything but ``x``)."""
        kw = {
            "mask": self.mask,
            "pos": self.pos,
            "context": self.context,
            "context_mask": self.context_mask,
            "cond": self.cond,
        }
        if self.x_cond is not None:
            kw["x_cond"] = self.x_cond
        if self.pair is not None:
            kw["pair"] = self.pair
        return kw


@runtime_checkable
class Tokenizer(Protocol):
    """Turns raw domain data into a :class:`TokenBatch` and back.

    ``encode(raw)`` takes whatever the domain's DataModule yields for a batch; ``decode(tokens)`` inverts it
    (exactly, where the representation allows: round trips are tested). ``token_dim`` is the width ``d`` of ``x``.
    Tokenizers with learned parts are ``nn.Module`` s too.
    """

    token_dim: int

    def encode(self, raw: Any) -> TokenBatch: ...

    def decode(self, tokens: TokenBatch) -> Any: ...


class IdentityTokenizer:
    """Raw data already are token batches: ``{"x": [b, n, d], "mask": ..., "cond": ...}`` dicts."""

    def __init__(self, token_dim: int):
        self.token_dim = token_dim

    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        if "x" not in raw:
            raise KeyError(f"IdentityTokenizer.encode: batch needs key 'x', got keys {sorted(raw)}")
        if raw["x"].shape[-1] != self.token_dim:
            raise ValueError(f"IdentityTokenizer: x has width {raw['x'].shape[-1]}, expected {self.token_dim}")
        known = {f.name for f in fields(TokenBatch)}
        return TokenBatch(**{k: v for k, v in raw.items() if k in known})

    def decode(self, tokens: TokenBatch) -> dict[str, Tensor]:
        out = {"x": tokens.x}
        if tokens.mask is not None:
            out["mask"] = tokens.mask
        return out


__all__ = ["IdentityTokenizer", "TokenBatch", "Tokenizer"]
