"""Building blocks of the DiT: norms, time / condition embedders, MLP and mixture-of-experts MLP."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class _RMSNormFn(torch.autograd.Function):
    """RMS norm with a hand-written backward: two passes each way instead of the decomposed op's six (CPU).

    ``y = x * rstd * w`` with ``rstd = rsqrt(mean(x^2) + eps)``;
    ``dx = rstd * (g w - xhat * mean(g w xhat))``, ``dw = sum(g xhat)`` over all but the last axis.
    Low-precision inputs are normalised in float32 and returned in their dtype.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor | None, eps: float) -> Tensor:  # type: ignore[override]
        xf = x if x.dtype in (torch.float32, torch.float64) else x.float()
        rstd = torch.rsqrt(xf.square().mean(-1, keepdim=True).add_(eps))
        xhat = xf * rstd
        ctx.save_for_backward(xhat, rstd, weight)
        y = xhat if weight is None else xhat * weight.to(xhat.dtype)
        return y.to(x.dtype)

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, None]:  # type: ignore[override]
        xhat, rstd, weight = ctx.saved_tensors
        gf = g.to(xhat.dtype)
        gw = gf if weight is None else gf * weight.to(xhat.dtype)
        dx = rstd * (gw - xhat * (gw * xhat).mean(-1, keepdim=True))
        dw = None
        if weight is not None and ctx.needs_input_grad[1]:
            dw = (gf * xhat).reshape(-1, xhat.shape[-1]).sum(0).to(weight.dtype)
        return dx.to(g.dtype), dw, None


class RMSNorm(nn.Module):
    """Root-mean-square norm over the last dimension, with an optional learned gain.

    On CPU a fused autograd function (:class:`_RMSNormFn`) replaces the decomposed ``F.rms_norm``; on CUDA
    PyTorch's fused kernel runs.
    """

    def __init__(self, dim: int, eps: float = 1e-6, affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        if x.is_cuda or torch.compiler.is_compiling():
            w = self.weight if self.weight is None or self.weight.dtype == x.dtype else self.weight.to(x.dtype)
            return F.rms_norm(x, (self.dim,), w, self.eps)  # same dtype for the fused kernel under autocast
        return _RMSNormFn.apply(x, self.weight, self.eps)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation ``x * (1 + scale) + shift`` with ``x [b, n, d]``, ``shift, scale [b, d]``."""
    return torch.addcmul(shift[:, None], x, 1 + scale[:, None])  # one fused pass


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[b, dim]`` of (already scaled) times ``t [b]``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedder(nn.Module):
    """``t [b]`` in [0, 1] -> ``[b, dim]`` through a sinusoidal table and a 2-layer MLP."""

    def __init__(self, dim: int, freq_dim: int = 256, time_scale: float = 1000.0):
        super().__init__()
        self.freq_dim, self.time_scale = freq_dim, time_scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        emb = timestep_embedding(t * self.time_scale, self.freq_dim)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class Mlp(nn.Module):
    """Two-layer GELU(tanh) MLP as in DiT."""

    def __init__(self, dim: int, hidden: int, out: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, out or dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.drop(F.gelu(self.fc1(x), approximate="tanh")))


class FusedExperts(nn.Module):
    """The shared experts plus a fixed choice of routed experts, fused into one two-layer MLP.

    With routes fixed (MoDE's time-only routing at a known solver time), ``sum_e w_e mlp_e(x)`` over the shared and
    the chosen experts is one MLP of width ``(shared + k) * hidden`` whose second layer carries the route weights:
    two dense matmuls instead of routing and gathering tokens per expert. Exactly equal to the routed MLP.

    Args:
        moe: the :class:`MoEMlp` whose experts are fused.
        idx: chosen routed experts ``[k]`` (long).
        w: their route weights ``[k]``.
    """

    def __init__(self, moe: MoEMlp, idx: Tensor, w: Tensor):
        super().__init__()
        experts = list(moe.shared) + [moe.experts[int(e)] for e in idx]
        weights = [1.0] * len(moe.shared) + [float(v) for v in w]
        self.register_buffer("w1", torch.cat([e.fc1.weight for e in experts], 0).detach())  # [(s+k) h, d]
        self.register_buffer("b1", torch.cat([e.fc1.bias for e in experts], 0).detach())
        self.register_buffer("w2", torch.cat([c * e.fc2.weight for c, e in zip(weights, experts)], 1).detach())
        self.register_buffer("b2", sum(c * e.fc2.bias for c, e in zip(weights, experts)).detach())  # [d]

    def forward(self, x: Tensor) -> Tensor:
        """``x [b, n, d] -> [b, n, d]``."""
        w1, b1, w2, b2 = (p.to(x.dtype) for p in (self.w1, self.b1, self.w2, self.b2))
        return F.linear(F.gelu(F.linear(x, w1, b1), approximate="tanh"), w2, b2)


class MoEMlp(nn.Module):
    """Mixture-of-experts MLP: shared experts + top-k routed experts, with a load-balancing loss.

    The router sees the token (``token``), the token plus the time embedding (``token_time``) or the time
    embedding alone (``time``, MoDE's noise-conditioned routing: every token of a sample takes the same experts,
    so routes depend on ``t`` only and can be fused per sampling time, see :meth:`fuse`).

    After each forward, ``self.balance_loss`` holds the Switch-Transformer balance loss
    ``E * sum_e f_e * p_e`` over real tokens (``f_e``: fraction of assignments to expert e, ``p_e``: mean
    router probability); 1.0 is perfectly balanced.

    Args:
        dim: token width.
        hidden: hidden width of every expert.
        experts: number of routed experts E.
        top_k: experts per token.
        shared: number of always-on shared experts.
        router: ``token``, ``token_time`` or ``time``.
    """

    def __init__(
        self,
        dim: int,
        hidden: int,
        experts: int,
        top_k: int = 2,
        shared: int = 1,
        router: str = "token",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.experts = nn.ModuleList(Mlp(dim, hidden, dropout=dropout) for _ in range(experts))
        self.shared = nn.ModuleList(Mlp(dim, hidden, dropout=dropout) for _ in range(shared))
        self.router = nn.Linear(dim, experts, bias=False)
        self.top_k, self.router_kind, self.num_experts = top_k, router, experts
        self.balance_loss: Tensor = torch.zeros(())

    def route(self, x: Tensor, temb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Router probabilities and top-k choice.

        Args:
            x: tokens ``[b, n, d]``.
            temb: time embedding ``[b, d]``.

        Returns:
            probs ``[b, n|1, E]``, top-k indices ``[b, n|1, k]`` and renormalised weights ``[b, n|1, k]``.
        """
        if self.router_kind == "time":
            logits = self.router(temb)[:, None]  # [b, 1, E]
        elif self.router_kind == "token_time":
            logits = self.router(x + temb[:, None])
        else:
            logits = self.router(x)
        probs = logits.float().softmax(-1)
        w, idx = probs.topk(self.top_k, dim=-1)
        w = w / w.sum(-1, keepdim=True)
        return probs, idx, w.to(x.dtype)

    @torch.no_grad()
    def fuse(self, temb: Tensor) -> list[FusedExperts]:
        """Fused experts for time-only routing at each time embedding ``temb [K, d]`` (one per row).

        Raises:
            ValueError: routing depends on the tokens (``router != "time"``), so routes cannot be fixed per time.
        """
        if self.router_kind != "time":
            raise ValueError(f"MoEMlp.fuse: routes must depend on t only (router='time'), got {self.router_kind!r}")
        _, idx, w = self.route(temb[:, None], temb)  # [K, 1, k]
        return [FusedExperts(self, idx[j, 0], w[j, 0]) for j in range(temb.shape[0])]

    def forward(self, x: Tensor, temb: Tensor, mask: Tensor | None = None, fused: FusedExperts | None = None) -> Tensor:
        """``x [b, n, d]`` with time embedding ``temb [b, d]`` -> ``[b, n, d]``; ``fused`` runs precomputed routes."""
        if fused is not None:
            return fused(x)
        b, n, d = x.shape
        out = sum((e(x) for e in self.shared), torch.zeros_like(x))
        probs, idx, w = self.route(x, temb)
        idx = idx.expand(b, n, self.top_k)
        w = w.expand(b, n, self.top_k)
        out = out + rearrange(
            self.dispatch(
                rearrange(x, "b n d -> (b n) d"), rearrange(idx, "b n k -> (b n) k"), rearrange(w, "b n k -> (b n) k")
            ),
            "(b n) d -> b n d",
            b=b,
        )
        self.balance_loss = self._balance(probs.expand(b, n, -1), idx, mask)
        return out

    def dispatch(self, flat: Tensor, idx: Tensor, w: Tensor) -> Tensor:
        """Batched expert dispatch: every (token, slot) assignment sorted by expert in one pass, each expert run once
        on its contiguous group, results weighted and scattered back in one ``index_add``.

        Args:
            flat: tokens ``[T, d]``.
            idx: chosen experts ``[T, k]``.
            w: route weights ``[T, k]``.

        Returns:
            ``sum_k w[t, k] expert_{idx[t, k]}(flat[t])`` as ``[T, d]``.
        """
        k = idx.shape[1]
        order = torch.argsort(idx.reshape(-1), stable=True)  # [T k] assignments grouped by expert
        counts = torch.bincount(idx.reshape(-1), minlength=self.num_experts).tolist()
        tok = order // k
        grouped = flat[tok]  # [T k, d]
        outs = [expert(chunk) for expert, chunk in zip(self.experts, grouped.split(counts)) if chunk.shape[0]]
        routed = torch.cat(outs, 0) * w.reshape(-1)[order, None]
        return torch.zeros_like(flat).index_add_(0, tok, routed)

    def _balance(self, probs: Tensor, idx: Tensor, mask: Tensor | None) -> Tensor:
        real = torch.ones(probs.shape[:2], dtype=torch.bool, device=probs.device) if mask is None else mask
        weight = real.float()[..., None]  # [b, n, 1]
        count = weight.sum().clamp_min(1.0)
        onehot = F.one_hot(idx, self.num_experts).float().sum(-2)  # [b, n, E]
        frac = (onehot * weight).sum((0, 1)) / (count * self.top_k)
        mean_p = (probs * weight).sum((0, 1)) / count
        return self.num_experts * (frac * mean_p).sum()
