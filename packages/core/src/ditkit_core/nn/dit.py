"""The DiT backbone every ditkit domain composes.

One block (``DiTBlock``): adaLN-Zero modulated self-attention (RMSNorm, QK-norm, N-D RoPE, optional local
window), optional zero-initialised tanh-gated cross-attention to a context, and an MLP or MoE MLP; optional
sandwich norms. ``DiT`` adds the input projection, time / condition embeddings, register tokens and the
adaLN-Zero final layer. A freshly initialised ``DiT`` outputs exactly zero.

Seams (public, so domains compose the DiT instead of subclassing it):

* per-token condition channels ``x_cond [b, n, cond_channels]`` enter through their own bias-free projection added
  to the input embedding (``W [x, c] = W_x x + W_c c``);
* pair features ``pair [b, n, n, pair_dim]`` become a per-head additive attention bias in every block;
* self-conditioning (``self_cond``): the previous estimate of the clean tokens ``x_self [b, n, out_dim]`` enters
  through a zero-initialised bias-free projection added to the input embedding;
* token partitions (grid windows) are data (:class:`~ditkit_core.nn.partition.TokenPartition`) and every block runs
  through :meth:`DiT.block`, which caches, compiled blocks and the plain forward all call;
* block runners (:meth:`DiT.runner`) let training-free caches drive the block loop without patching anything;
* ``forward(..., return_hidden=True)`` also returns the last hidden states for auxiliary heads.

The model is single-device and eager; compile (``torch.compile``), FSDP or DDP are applied from outside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor, nn

from ditkit_core.nn.attention import attention
from ditkit_core.nn.config import DiTConfig
from ditkit_core.nn.layers import FusedExperts, Mlp, MoEMlp, RMSNorm, TimestepEmbedder, modulate
from ditkit_core.nn.partition import TokenPartition
from ditkit_core.nn.rope import RotaryEmbedding


@dataclass
class BlockInputs:
    """Everything a block needs besides the hidden tokens (shared by all blocks of one forward)."""

    c: Tensor  # [b, d] conditioning vector (time + global cond)
    temb: Tensor  # [b, d] time embedding alone (MoE routing)
    mask: Tensor | None  # [b, n] bool
    angles: Tensor | None  # [b, n, head_dim / 2] rotary angles
    context: Tensor | None  # [b, m, context_dim]
    context_mask: Tensor | None  # [b, m] bool
    t: Tensor  # [b]
    pair: Tensor | None = None  # [b, n, n, pair_dim] pair features (attention bias)
    experts: list[FusedExperts] | None = None  # per block: precomputed fused MoE routes (expert caching)


Runner = Callable[["DiT", Tensor, BlockInputs, Callable[[Tensor, BlockInputs], Tensor]], Tensor]


class SelfAttention(nn.Module):
    def __init__(self, cfg: DiTConfig, local: bool):
        super().__init__()
        self.heads, self.backend = cfg.heads, cfg.attn_backend
        self.window = cfg.window if local else None
        self.window_min_tokens = cfg.window_min_tokens
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)
        self.q_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.pair_proj = nn.Linear(cfg.pair_dim, cfg.heads) if cfg.pair_dim else None

    def forward(self, x: Tensor, mask: Tensor | None, angles: Tensor | None, pair: Tensor | None = None) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = self.q_norm(q), self.k_norm(k)
        if angles is not None:
            q, k = RotaryEmbedding.rotate(q, angles), RotaryEmbedding.rotate(k, angles)
        bias = None
        if self.pair_proj is not None and pair is not None:
            bias = rearrange(self.pair_proj(pair), "b q k h -> b h q k")  # [b, h, n, n]
        window = self.window if (self.window is not None and x.shape[1] > self.window_min_tokens) else None
        out = attention(q, k, v, mask=mask, backend=self.backend, window=window, bias=bias)  # [b, h, n, d]
        return self.drop(self.proj(rearrange(out, "b h n d -> b n (h d)")))


class CrossAttention(nn.Module):
    """Cross-attention to a context, added through a zero-initialised tanh gate (starts as identity)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.heads, self.backend = cfg.heads, cfg.attn_backend
        self.norm = RMSNorm(cfg.dim)
        self.q = nn.Linear(cfg.dim, cfg.dim)
        self.kv = nn.Linear(cfg.context_dim, 2 * cfg.dim)
        self.q_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(cfg.head_dim) if cfg.qk_norm else nn.Identity()
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.gate = nn.Parameter(torch.zeros(cfg.dim))

    def forward(self, x: Tensor, context: Tensor, context_mask: Tensor | None) -> Tensor:
        q = rearrange(self.q(self.norm(x)), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(context), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        out = attention(self.q_norm(q), self.k_norm(k), v, mask=context_mask, backend=self.backend)
        return torch.tanh(self.gate) * self.proj(rearrange(out, "b h n d -> b n (h d)"))


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block: ``x + g1 * attn(mod(norm x)) [+ gated cross-attn] + g2 * mlp(mod(norm x))``."""

    def __init__(self, cfg: DiTConfig, index: int):
        super().__init__()
        self.index = index
        self.norm1 = RMSNorm(cfg.dim, affine=False)
        self.attn = SelfAttention(cfg, local=cfg.is_local_block(index) and cfg.window_grid is None)
        self.cross = CrossAttention(cfg) if cfg.context_dim else None
        self.norm2 = RMSNorm(cfg.dim, affine=False)
        hidden = int(cfg.dim * cfg.mlp_ratio)
        if cfg.moe_experts:
            self.mlp: nn.Module = MoEMlp(
                cfg.dim, hidden, cfg.moe_experts, cfg.moe_top_k, cfg.moe_shared, cfg.moe_router, cfg.dropout
            )
        else:
            self.mlp = Mlp(cfg.dim, hidden, dropout=cfg.dropout)
        self.post_attn = RMSNorm(cfg.dim) if cfg.sandwich_norm else nn.Identity()
        self.post_mlp = RMSNorm(cfg.dim) if cfg.sandwich_norm else nn.Identity()
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(cfg.dim, 6 * cfg.dim))

    def forward(self, x: Tensor, inp: BlockInputs) -> Tensor:
        mod = self.adaLN(inp.c).chunk(6, dim=-1)  # 6 x [b, d]: shift1, scale1, gate1, shift2, scale2, gate2
        h = self.attn(modulate(self.norm1(x), mod[0], mod[1]), inp.mask, inp.angles, inp.pair)
        return self.finish(x, h, inp, mod)

    def attention_inputs(self, x: Tensor, inp: BlockInputs) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor, ...]]:
        """First half of the block for joint attention across streams: modulated, normalised, rotated ``q, k, v``
        ``[b, h, n, head_dim]`` and the block's modulation ``(shift1, scale1, gate1, shift2, scale2, gate2)``."""
        mod = self.adaLN(inp.c).chunk(6, dim=-1)
        a = self.attn
        q, k, v = rearrange(
            a.qkv(modulate(self.norm1(x), mod[0], mod[1])), "b n (three h d) -> three b h n d", three=3, h=a.heads
        )
        q, k = a.q_norm(q), a.k_norm(k)
        if inp.angles is not None:
            q, k = RotaryEmbedding.rotate(q, inp.angles), RotaryEmbedding.rotate(k, inp.angles)
        return q, k, v, mod

    def finish(self, x: Tensor, attn_out: Tensor, inp: BlockInputs, mod: tuple[Tensor, ...]) -> Tensor:
        """Second half of the block: gated residual of the attention output ``[b, n, d]`` (after ``attn.proj``),
        cross-attention and the gated MLP."""
        shift2, scale2, gate1, gate2 = mod[3], mod[4], mod[2], mod[5]
        x = torch.addcmul(x, gate1[:, None], self.post_attn(attn_out))
        if self.cross is not None and inp.context is not None:
            x = x + self.cross(x, inp.context, inp.context_mask)
        h = modulate(self.norm2(x), shift2, scale2)
        if isinstance(self.mlp, MoEMlp):
            fused = inp.experts[self.index] if inp.experts is not None else None
            h = self.mlp(h, inp.temb, inp.mask, fused=fused)
        else:
            h = self.mlp(h)
        return torch.addcmul(x, gate2[:, None], self.post_mlp(h))


class FinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = RMSNorm(dim, affine=False)
        self.adaLN = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        shift, scale = self.adaLN(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """Flow-matching Diffusion Transformer over token sets / sequences.

    Args:
        config: a :class:`DiTConfig`.

    Composition seams: ``x_embed`` (any module ``[b, n, in_dim] -> [b, n, dim]``, e.g. a geometric or convolutional
    embedding) may be replaced after construction; ``x_cond`` / ``pair`` inputs (see the module docstring);
    :meth:`block` runs one block (with its token partition) and :meth:`runner` installs a block runner (caches).

    Example:
        >>> model = DiT(DiTConfig.preset("debug", in_dim=3))
        >>> v = model(torch.randn(2, 10, 3), torch.rand(2))  # [2, 10, 3], zeros at init
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        if config.in_dim <= 0:
            raise ValueError(
                f"DiT: DiTConfig.in_dim={config.in_dim} must be set (> 0); a Lightning module resolves 0 "
                "from its tokenizer"
            )
        self.config = cfg = config
        self.cond_proj = None
        if not cfg.cond_channels:
            self.x_embed = nn.Linear(cfg.in_dim, cfg.dim)
        else:  # built as one [x, x_cond] projection and split (same random stream as a joint input)
            joint = nn.Linear(cfg.in_dim + cfg.cond_channels, cfg.dim)
            self.x_embed = nn.utils.skip_init(nn.Linear, cfg.in_dim, cfg.dim)
            self.cond_proj = nn.utils.skip_init(nn.Linear, cfg.cond_channels, cfg.dim, bias=False)
            with torch.no_grad():
                self.x_embed.weight.copy_(joint.weight[:, : cfg.in_dim])
                self.x_embed.bias.copy_(joint.bias)
                self.cond_proj.weight.copy_(joint.weight[:, cfg.in_dim :])
        self.t_embed = TimestepEmbedder(cfg.dim, time_scale=cfg.time_scale)
        self.dt_embed = TimestepEmbedder(cfg.dim, time_scale=cfg.time_scale) if cfg.step_conditioning else None
        self.cond_embed = (
            nn.Sequential(nn.Linear(cfg.cond_dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, cfg.dim))
            if cfg.cond_dim
            else None
        )
        self.null_cond = nn.Parameter(torch.zeros(cfg.dim)) if cfg.cond_dim else None
        self.label_embed = nn.Embedding(cfg.num_classes + 1, cfg.dim) if cfg.num_classes else None
        self.pos_table = nn.Embedding(cfg.learned_pos, cfg.dim) if cfg.learned_pos else None
        self.rope = (
            RotaryEmbedding(cfg.head_dim, cfg.rope_axes, cfg.rope_theta, cfg.rope_scaling, cfg.rope_scale)
            if cfg.rope_axes
            else None
        )
        self.register_tokens = nn.Parameter(torch.zeros(cfg.registers, cfg.dim)) if cfg.registers else None
        self.blocks = nn.ModuleList(DiTBlock(cfg, i) for i in range(cfg.depth))
        self.final = FinalLayer(cfg.dim, cfg.output_dim)
        self.partition = TokenPartition.grid(cfg.window_grid, cfg.window_size) if cfg.window_grid else None
        self.runners: list[Runner] = []
        self.self_proj = nn.utils.skip_init(nn.Linear, cfg.output_dim, cfg.dim, bias=False) if cfg.self_cond else None
        self.initialize_weights()

    # ------------------------------------------------------------------ init
    def initialize_weights(self) -> None:
        """DiT initialisation: Xavier-uniform linears, N(0, 0.02) embeddings, and adaLN-Zero.

        Zeroed: every adaLN modulation (so blocks start as identity), every cross-attention gate and the final
        projection. Consequence (tested): a fresh model outputs exactly zero. The input projection and the
        condition-channel projection are initialised as one Xavier matrix over ``[x, x_cond]`` and split, so
        splitting the input does not change the initial distribution.
        """

        def base(m: nn.Module) -> None:
            if m is self.cond_proj or m is self.self_proj:
                return
            if m is self.x_embed and self.cond_proj is not None:
                joint = torch.empty(self.config.dim, self.config.in_dim + self.config.cond_channels)
                nn.init.xavier_uniform_(joint)
                with torch.no_grad():
                    m.weight.copy_(joint[:, : self.config.in_dim])
                    self.cond_proj.weight.copy_(joint[:, self.config.in_dim :])
                    nn.init.zeros_(m.bias)
                return
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

        self.apply(base)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        if self.dt_embed is not None:  # zero output at start: a teacher's weights compute the same velocity
            nn.init.normal_(self.dt_embed.mlp[0].weight, std=0.02)
            nn.init.zeros_(self.dt_embed.mlp[2].weight)
            nn.init.zeros_(self.dt_embed.mlp[2].bias)
        for emb in (self.label_embed, self.pos_table):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.02)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.adaLN[-1].weight)
            nn.init.zeros_(blk.adaLN[-1].bias)
            if blk.cross is not None:
                nn.init.zeros_(blk.cross.gate)
        nn.init.zeros_(self.final.adaLN[-1].weight)
        nn.init.zeros_(self.final.adaLN[-1].bias)
        nn.init.zeros_(self.final.linear.weight)
        nn.init.zeros_(self.final.linear.bias)
        if self.self_proj is not None:  # a model that never saw an estimate computes the same as without one
            nn.init.zeros_(self.self_proj.weight)

    # ------------------------------------------------------------------ helpers
    def _check(
        self,
        x: Tensor,
        t: Tensor,
        mask: Tensor | None,
        pos: Tensor | None,
        context: Tensor | None,
        context_mask: Tensor | None,
        cond: Tensor | None,
        x_cond: Tensor | None = None,
        pair: Tensor | None = None,
        x_self: Tensor | None = None,
    ) -> Tensor:
        cfg = self.config
        if x.dim() != 3 or x.shape[-1] != cfg.in_dim:
            raise ValueError(f"DiT: x must be [b, n, in_dim={cfg.in_dim}], got {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"DiT: x must be floating point, got {x.dtype}")
        b, n = x.shape[:2]
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32)
        t = t.expand(b) if t.dim() == 0 else t.reshape(-1)
        if t.shape[0] != b:
            raise ValueError(f"DiT: t must be a scalar or [b={b}], got {tuple(t.shape)}")
        if mask is not None and (mask.dtype != torch.bool or tuple(mask.shape) != (b, n)):
            raise ValueError(f"DiT: mask must be bool [b, n]=({b}, {n}), got {mask.dtype} {tuple(mask.shape)}")
        if cfg.rope_axes and pos is None:
            raise ValueError(f"DiT: rope_axes={cfg.rope_axes} needs pos [b, n, {cfg.rope_axes}]")
        if pos is not None and (pos.dim() != 3 or tuple(pos.shape[:2]) != (b, n)):
            raise ValueError(f"DiT: pos must be [b, n, k]=({b}, {n}, k), got {tuple(pos.shape)}")
        if context is not None:
            if not cfg.context_dim:
                raise ValueError("DiT: context given but DiTConfig.context_dim=0 (no cross-attention)")
            if context.dim() != 3 or context.shape[0] != b or context.shape[-1] != cfg.context_dim:
                raise ValueError(
                    f"DiT: context must be [b={b}, m, context_dim={cfg.context_dim}], got {tuple(context.shape)}"
                )
            if context_mask is not None and tuple(context_mask.shape) != tuple(context.shape[:2]):
                raise ValueError(
                    f"DiT: context_mask must be [b, m]={tuple(context.shape[:2])}, got {tuple(context_mask.shape)}"
                )
        if cond is not None:
            if cfg.num_classes and cond.dtype in (torch.int32, torch.int64):
                if cond.shape != (b,):
                    raise ValueError(f"DiT: class labels must be [b={b}], got {tuple(cond.shape)}")
            elif cfg.cond_dim:
                if tuple(cond.shape) != (b, cfg.cond_dim):
                    raise ValueError(f"DiT: cond must be [b, cond_dim]=({b}, {cfg.cond_dim}), got {tuple(cond.shape)}")
            else:
                raise ValueError("DiT: cond given but the config has neither cond_dim nor num_classes")
        if cfg.cond_channels and x_cond is None:
            raise ValueError(f"DiT: cond_channels={cfg.cond_channels} needs x_cond [b, n, {cfg.cond_channels}]")
        if x_cond is not None and (not cfg.cond_channels or tuple(x_cond.shape) != (b, n, cfg.cond_channels)):
            raise ValueError(
                f"DiT: x_cond must be [b, n, cond_channels]=({b}, {n}, {cfg.cond_channels}), got {tuple(x_cond.shape)}"
            )
        if x_self is not None and (not cfg.self_cond or tuple(x_self.shape) != (b, n, cfg.output_dim)):
            raise ValueError(
                f"DiT: x_self needs self_cond=True and shape [b, n, out_dim]=({b}, {n}, {cfg.output_dim}), got "
                f"self_cond={cfg.self_cond}, {tuple(x_self.shape)}"
            )
        if pair is not None and (not cfg.pair_dim or tuple(pair.shape) != (b, n, n, cfg.pair_dim)):
            raise ValueError(
                f"DiT: pair must be [b, n, n, pair_dim]=({b}, {n}, {n}, {cfg.pair_dim}), got {tuple(pair.shape)}"
            )
        if self.partition is not None and n != self.partition.tokens:
            raise ValueError(f"DiT: window_grid={cfg.window_grid} needs {self.partition.tokens} tokens, got {n}")
        return t

    def embed_condition(self, t: Tensor, cond: Tensor | None, drop_cond: Tensor | None) -> tuple[Tensor, Tensor]:
        """Conditioning vector ``c [b, d]`` = time embedding (+ label / continuous condition embedding)."""
        temb = self.t_embed(t)
        c = temb
        if self.dt_embed is not None:
            from ditkit_core.sampling.protocol import current_step_size

            dt = current_step_size()
            dt = torch.zeros_like(t) if dt is None else torch.as_tensor(dt, dtype=t.dtype, device=t.device).expand_as(t)
            c = c + self.dt_embed(dt)
        if self.label_embed is not None and cond is not None and not cond.is_floating_point():
            labels = cond if drop_cond is None else torch.where(drop_cond, self.config.num_classes, cond)
            c = c + self.label_embed(labels)
        elif self.cond_embed is not None and cond is not None:
            e = self.cond_embed(cond.to(temb.dtype))
            if drop_cond is not None:
                e = torch.where(drop_cond[:, None], self.null_cond.to(e.dtype), e)
            c = c + e
        elif self.label_embed is not None and cond is None:
            c = c + self.label_embed.weight[self.config.num_classes]  # unconditional = null class
        elif self.cond_embed is not None and cond is None:
            c = c + self.null_cond
        return c, temb

    def unconditional_parameters(self) -> list[nn.Parameter]:
        """Parameters used only by dropped / unconditional samples (the learned null condition)."""
        return [self.null_cond] if self.null_cond is not None else []

    def block(self, i: int, h: Tensor, inp: BlockInputs) -> Tensor:
        """Run block ``i`` on hidden tokens ``h [b, n, d]``: inside its token partition when it is a local grid block.

        Every path that evaluates blocks (the plain forward, caches, compiled blocks) goes through here.
        """
        blk = self.blocks[i]
        if self.partition is None or not self.config.is_local_block(i):
            return blk(h, inp)
        part = self.partition
        return part.merge(blk(part.split(h), part.split_inputs(inp)), h.shape[0])

    def run_blocks(self, h: Tensor, inp: BlockInputs) -> Tensor:
        """Apply every block in order, through the installed runners (see :meth:`runner`) if any."""

        def plain(h: Tensor, inp: BlockInputs) -> Tensor:
            for i in range(len(self.blocks)):
                h = self.block(i, h, inp)
            return h

        call = plain
        for fn in reversed(self.runners):  # the first installed runner is called first
            call = (lambda f, nxt: lambda h, inp: f(self, h, inp, nxt))(fn, call)
        return call(h, inp)

    @contextlib.contextmanager
    def runner(self, fn: Runner) -> Iterator[None]:
        """Install a block runner for the duration of the ``with`` block.

        ``fn(dit, h, inputs, proceed)`` replaces the block loop: it may call ``proceed(h, inputs)`` (the next runner,
        or the plain loop over :meth:`block`), call :meth:`block` itself, or reuse cached results. Runners installed
        earlier are called first, so ``with ExpertCache(m), BlockCache(m):`` lets the expert cache feed the block cache.
        """
        self.runners.append(fn)
        try:
            yield
        finally:
            self.runners.remove(fn)

    def aux_loss(self) -> Tensor:
        """Weighted sum of the MoE balance losses of the last forward (0 without MoE)."""
        losses = [b.mlp.balance_loss for b in self.blocks if isinstance(b.mlp, MoEMlp)]
        if not losses:
            return torch.zeros((), device=self.final.linear.weight.device)
        return self.config.moe_balance_weight * torch.stack([loss.float() for loss in losses]).mean()

    # ------------------------------------------------------------------ forward
    def embed(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        cond: Tensor | None = None,
        drop_cond: Tensor | None = None,
        x_cond: Tensor | None = None,
        pair: Tensor | None = None,
        x_self: Tensor | None = None,
    ) -> tuple[Tensor, BlockInputs]:
        """Everything before the blocks: hidden tokens ``[b, r + n, d]`` (registers first) and the block inputs.

        Arguments as in :meth:`forward`. ``forward = head(run_blocks(*embed(...)))``; joint models
        (:class:`~ditkit_core.nn.JointDiT`) call the three parts of each stream's DiT.
        """
        t = self._check(x, t, mask, pos, context, context_mask, cond, x_cond, pair, x_self)
        b, n, _ = x.shape
        h = self.x_embed(x)  # [b, n, d]
        if x_self is not None:
            h = h + self.self_proj(x_self.to(h.dtype))
        if self.cond_proj is not None:
            if drop_cond is not None and self.config.drop_x_cond:
                x_cond = x_cond * (~drop_cond)[:, None, None].to(x_cond.dtype)
            h = h + self.cond_proj(x_cond.to(h.dtype))
        if self.pos_table is not None and pos is not None:
            idx = pos[..., 0].long()
            if idx.min() < 0 or idx.max() >= self.config.learned_pos:
                raise ValueError(f"DiT: learned position index out of range [0, {self.config.learned_pos})")
            h = h + self.pos_table(idx)
        c, temb = self.embed_condition(t, cond, drop_cond)  # [b, d] each
        if context is not None and drop_cond is not None:
            keep = ~drop_cond[:, None]
            context_mask = keep.expand(b, context.shape[1]) if context_mask is None else context_mask & keep
        angles = self.rope.angles(pos, t) if self.rope is not None else None  # [b, n, hd/2]
        r = self.config.registers
        if r:
            h = torch.cat([repeat(self.register_tokens, "r d -> b r d", b=b).to(h.dtype), h], dim=1)  # [b, r+n, d]
            if mask is not None:
                mask = F.pad(mask, (r, 0), value=True)
            if angles is not None:
                angles = F.pad(angles, (0, 0, r, 0))  # registers sit at the origin: no rotation
            if pair is not None:
                pair = F.pad(pair, (0, 0, r, 0, r, 0))  # no bias to or from registers
        inp = BlockInputs(
            c=c, temb=temb, mask=mask, angles=angles, context=context, context_mask=context_mask, t=t, pair=pair
        )
        return h, inp

    def head(self, h: Tensor, inp: BlockInputs) -> tuple[Tensor, Tensor]:
        """After the blocks: ``(out [b, n, out_dim], hidden [b, n, d])`` with registers dropped, padding zeroed."""
        r = self.config.registers
        h = h[:, r:]
        out = self.final(h, inp.c)  # [b, n, out_dim]
        if inp.mask is not None:
            out = out * inp.mask[:, r:, None].to(out.dtype)
        return out, h

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        cond: Tensor | None = None,
        drop_cond: Tensor | None = None,
        x_cond: Tensor | None = None,
        pair: Tensor | None = None,
        x_self: Tensor | None = None,
        return_hidden: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Predict the velocity of every token.

        Args:
            x: noisy tokens ``[b, n, in_dim]``.
            t: times ``[b]`` (or a scalar) in [0, 1]; 0 = noise, 1 = data.
            mask: ``[b, n]`` bool, True = real token. Padded tokens never influence real ones and output 0.
            pos: positions ``[b, n, k]`` for RoPE (``k = rope_axes``) or ``[b, n, 1]`` long for ``learned_pos``.
            context: cross-attention tokens ``[b, m, context_dim]``.
            context_mask: ``[b, m]`` bool, True = real context token.
            cond: global condition ``[b, cond_dim]`` float, or class labels ``[b]`` long.
            drop_cond: ``[b]`` bool; True replaces cond by the learned null condition, hides the context and (with
                ``drop_x_cond``) zeroes the condition channels (classifier-free guidance training and unconditional
                branches).
            x_cond: per-token condition channels ``[b, n, cond_channels]``.
            pair: pair features ``[b, n, n, pair_dim]`` (a per-head attention bias in every block).
            x_self: the previous estimate of the clean tokens ``[b, n, out_dim]`` (``self_cond``; None: no estimate,
                the same as zeros).
            return_hidden: also return the last hidden states ``[b, n, dim]`` (before the final layer).

        Returns:
            velocity ``[b, n, out_dim]`` (and the hidden states with ``return_hidden``).
        """
        h, inp = self.embed(
            x,
            t,
            mask=mask,
            pos=pos,
            context=context,
            context_mask=context_mask,
            cond=cond,
            drop_cond=drop_cond,
            x_cond=x_cond,
            pair=pair,
            x_self=x_self,
        )
        out, h = self.head(self.run_blocks(h, inp), inp)
        return (out, h) if return_hidden else out

    def num_parameters(self, active_only: bool = False) -> int:
        """Parameter count; with ``active_only``, routed experts count ``top_k`` of ``E`` (per token)."""
        total = sum(p.numel() for p in self.parameters())
        if active_only and self.config.moe_experts:
            for blk in self.blocks:
                per = sum(p.numel() for p in blk.mlp.experts[0].parameters())
                total -= per * (self.config.moe_experts - self.config.moe_top_k)
        return total
