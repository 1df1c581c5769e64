"""``JointDiT``: several token streams (video, audio, ...) with their own weights and one joint attention (MMDiT).

Each stream is a full :class:`~ditkit_core.nn.DiT` (its own input / condition projections, norms, adaLN modulation,
attention projections, MLP and final layer; its own ``in_dim`` / ``out_dim`` / ``cond_channels``). Block ``i`` of
every stream computes its queries, keys and values (:meth:`DiTBlock.attention_inputs`), one attention runs over the
concatenation of all streams' tokens with per-stream key padding, and each stream finishes its block with its own
output projection, cross-attention and MLP (:meth:`DiTBlock.finish`). The streams share the time embedding input
``t``, the global condition and the rotary axes: with positions in seconds on the first axis, a video frame and an
audio frame at the same instant get the same temporal angle whatever their frame rates.

With one stream, a ``JointDiT`` computes exactly what its ``DiT`` computes (tested).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.nn.attention import attention
from ditkit_core.nn.config import ConfigError, DiTConfig
from ditkit_core.nn.dit import BlockInputs, DiT

SHARED = (
    "dim",
    "depth",
    "heads",
    "rope_axes",
    "rope_theta",
    "rope_scaling",
    "rope_scale",
    "qk_norm",
    "attn_backend",
    "time_scale",
)


class JointDiT(nn.Module):
    """Multi-stream DiT with joint self-attention over all streams.

    Args:
        streams: stream name -> its :class:`DiTConfig`. The fields in ``SHARED`` (width, depth, heads, rotary
            settings, QK-norm, attention backend) must agree; windows, registers and pair features are per stream
            only where they do not enter attention (windows and pair features are not supported in joint blocks).

    Example:
        >>> net = JointDiT({"video": DiTConfig(in_dim=96, rope_axes=3, dim=96, depth=4, heads=4),
        ...                 "audio": DiTConfig(in_dim=64, rope_axes=3, dim=96, depth=4, heads=4)})
        >>> out = net({"video": v, "audio": a}, t, pos={"video": pv, "audio": pa})  # {"video": [b, nv, 96], ...}
    """

    def __init__(self, streams: dict[str, DiTConfig]):
        super().__init__()
        if not streams:
            raise ConfigError("JointDiT: needs at least one stream")
        streams = {k: DiTConfig.from_dict(v) if isinstance(v, dict) else v for k, v in streams.items()}
        first_name, first = next(iter(streams.items()))
        for name, cfg in streams.items():
            for f in SHARED:
                if getattr(cfg, f) != getattr(first, f):
                    raise ConfigError(
                        f"JointDiT: streams.{name}.{f}={getattr(cfg, f)!r} differs from "
                        f"streams.{first_name}.{f}={getattr(first, f)!r}; joint attention needs them equal"
                    )
            if cfg.window is not None or cfg.window_grid is not None or cfg.pair_dim:
                raise ConfigError(
                    f"JointDiT: streams.{name}: windows and pair features are not supported in joint attention"
                )
        self.configs = streams
        self.streams = nn.ModuleDict({name: DiT(cfg) for name, cfg in streams.items()})

    @property
    def names(self) -> list[str]:
        return list(self.streams)

    def joint_block(self, i: int, hs: dict[str, Tensor], inps: dict) -> dict[str, Tensor]:
        """Block ``i`` of every stream with one attention over all streams' tokens."""
        names = self.names
        parts = {n: self.streams[n].blocks[i].attention_inputs(hs[n], inps[n]) for n in names}
        lens = [hs[n].shape[1] for n in names]
        q = torch.cat([parts[n][0] for n in names], 2)  # [b, h, sum n, d]
        k = torch.cat([parts[n][1] for n in names], 2)
        v = torch.cat([parts[n][2] for n in names], 2)
        mask = None
        if any(inps[n].mask is not None for n in names):
            mask = torch.cat(
                [
                    inps[n].mask
                    if inps[n].mask is not None
                    else torch.ones(hs[n].shape[:2], dtype=torch.bool, device=hs[n].device)
                    for n in names
                ],
                1,
            )
        out = attention(q, k, v, mask=mask, backend=self.configs[names[0]].attn_backend)
        new = {}
        for n, o in zip(names, out.split(lens, dim=2)):
            blk = self.streams[n].blocks[i]
            o = blk.attn.drop(blk.attn.proj(rearrange(o, "b h n d -> b n (h d)")))
            new[n] = blk.finish(hs[n], o, inps[n], parts[n][3])
        return new

    def forward(
        self,
        x: dict[str, Tensor],
        t: Tensor | float,
        *,
        mask: dict[str, Tensor | None] | None = None,
        pos: dict[str, Tensor | None] | None = None,
        x_cond: dict[str, Tensor | None] | None = None,
        cond: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        drop_cond: Tensor | None = None,
        return_hidden: bool = False,
    ) -> dict[str, Tensor] | tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Velocities of every stream.

        Args:
            x: stream -> tokens ``[b, n_s, in_dim_s]`` (every stream of the config).
            t: times ``[b]`` (or a scalar).
            mask, pos, x_cond: stream -> the per-token input of that stream (see :meth:`DiT.forward`).
            cond, context, context_mask, drop_cond: shared by all streams.
            return_hidden: also return each stream's last hidden states.

        Returns:
            stream -> ``[b, n_s, out_dim_s]`` (and stream -> ``[b, n_s, dim]``).
        """
        missing = sorted(set(self.names) - set(x))
        if missing:
            raise ValueError(f"JointDiT: missing stream(s) {missing}; streams are {self.names}")
        hs, inps = self.embed(
            x,
            t,
            mask=mask,
            pos=pos,
            x_cond=x_cond,
            cond=cond,
            context=context,
            context_mask=context_mask,
            drop_cond=drop_cond,
        )
        for i in range(self.configs[self.names[0]].depth):
            hs = self.joint_block(i, hs, inps)
        outs, hidden = self.head(hs, inps)
        return (outs, hidden) if return_hidden else outs

    def embed(
        self,
        x: dict[str, Tensor],
        t: Tensor | float,
        *,
        mask: dict[str, Tensor | None] | None = None,
        pos: dict[str, Tensor | None] | None = None,
        x_cond: dict[str, Tensor | None] | None = None,
        cond: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        drop_cond: Tensor | None = None,
    ) -> tuple[dict[str, Tensor], dict[str, BlockInputs]]:
        """Every stream's :meth:`DiT.embed` (arguments as :meth:`forward`): stream -> hidden states ``[b, n_s, dim]``
        and stream -> its block inputs, for callers that run :meth:`joint_block` themselves."""
        mask, pos, x_cond = mask or {}, pos or {}, x_cond or {}
        hs, inps = {}, {}
        for n in self.names:
            hs[n], inps[n] = self.streams[n].embed(
                x[n],
                t,
                mask=mask.get(n),
                pos=pos.get(n),
                x_cond=x_cond.get(n),
                cond=cond,
                context=context,
                context_mask=context_mask,
                drop_cond=drop_cond,
            )
        return hs, inps

    def head(self, hs: dict[str, Tensor], inps: dict[str, BlockInputs]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Every stream's :meth:`DiT.head`: stream -> output ``[b, n_s, out_dim_s]`` and stream -> last hidden
        states ``[b, n_s, dim]``."""
        outs, hidden = {}, {}
        for n in self.names:
            outs[n], hidden[n] = self.streams[n].head(hs[n], inps[n])
        return outs, hidden

    def aux_loss(self) -> Tensor:
        """Sum of the streams' MoE balance losses."""
        return sum((d.aux_loss() for d in self.streams.values()), torch.zeros(()))


__all__ = ["JointDiT"]
