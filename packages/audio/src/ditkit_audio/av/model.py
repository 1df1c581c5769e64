"""Networks of the audio-video module: the joint DiT over packed tokens, and the AV-DiT adapter variant.

Both take and return the packed layout of :class:`~ditkit_audio.av.tokenizer.AVTokenizer` (``x [b, n_v + n_a,
d_v + d_a]``, condition channels ``x_cond [b, n, d_v + d_a + 1]`` = given values + a known flag) and split it into
the streams of a core :class:`~ditkit_core.nn.JointDiT`: each stream has its own weights, one attention runs over all
tokens, and rotary time positions are shared in seconds.

* :class:`AVNetwork` (full training, MMDiT): ``JointDiT({"video": ..., "audio": ...})``; with ``streams=("video",)``
  it is the video-only model whose weights become the frozen AV-DiT backbone.
* :class:`AVAdapterNetwork` (AV-DiT, Wang et al. 2024): both streams run the same frozen backbone blocks (the audio
  stream's blocks, time and label embeddings are the video stream's); trained are only the audio input / output
  projections, a temporal-attention adapter on the video tokens, a bottleneck adapter on the audio tokens and a
  bottleneck :class:`SyncBridge` after every block, and one shared interaction block (a full DiT block over both
  streams' tokens). Every adapter starts as the identity (zero-initialised output), so step 0 computes the frozen
  backbone.
"""

from __future__ import annotations

import dataclasses

import torch
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.nn import BlockInputs, ConfigError, DiTBlock, DiTConfig, JointDiT, RMSNorm, RotaryEmbedding, attention


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where each stream sits in the packed tokens (from the tokenizer)."""

    video_tokens: int
    video_dim: int
    audio_tokens: int
    audio_dim: int
    grid: tuple[int, int, int]
    audio_step: tuple[int, ...] = ()
    """For each audio token, the video time step (tubelet row of the grid) that contains its time."""

    @property
    def token_dim(self) -> int:
        return self.video_dim + self.audio_dim

    def split(self, x: Tensor) -> dict[str, Tensor]:
        nv = self.video_tokens
        return {"video": x[:, :nv, : self.video_dim], "audio": x[:, nv:, self.video_dim : self.token_dim]}

    def split_tokens(self, t: Tensor) -> dict[str, Tensor]:
        """Per-token tensors ``[b, n, ...]`` (masks, positions) -> stream -> its tokens."""
        nv = self.video_tokens
        return {"video": t[:, :nv], "audio": t[:, nv:]}

    def split_cond(self, x_cond: Tensor) -> dict[str, Tensor]:
        """``x_cond [b, n, d_v + d_a + 1]`` -> stream -> ``[given values, known flag]``."""
        parts, flag = self.split(x_cond), x_cond[..., self.token_dim :]
        nv = self.video_tokens
        return {
            "video": torch.cat([parts["video"], flag[:, :nv]], -1),
            "audio": torch.cat([parts["audio"], flag[:, nv:]], -1),
        }

    def pack(self, outs: dict[str, Tensor], like: Tensor) -> Tensor:
        out = like.new_zeros(like.shape[0], self.video_tokens + self.audio_tokens, self.token_dim)
        if "video" in outs:
            out[:, : self.video_tokens, : self.video_dim] = outs["video"].to(out.dtype)
        if "audio" in outs:
            out[:, self.video_tokens :, self.video_dim :] = outs["audio"].to(out.dtype)
        return out


def stream_configs(config: DiTConfig, layout: Layout, streams: tuple[str, ...]) -> dict[str, DiTConfig]:
    """Per-stream DiT configs: the shared ``config`` with each stream's token and condition widths."""
    widths = {"video": layout.video_dim, "audio": layout.audio_dim}
    return {
        s: dataclasses.replace(config, in_dim=widths[s], out_dim=widths[s], cond_channels=widths[s] + 1)
        for s in streams
    }


class SyncBridge(nn.Module):
    """Frame-aligned residual exchange between the streams' hidden states after a joint block.

    Video -> audio: the video tokens of each time step are pooled (mean and max over the patches), projected, and
    added to every audio token whose time falls in that step. Audio -> video: the audio tokens of each step are pooled
    the same way and added to all patches of the step (``width``: through a bottleneck, as an adapter). Both
    projections end at zero, so a fresh bridge is the identity; they give each stream a direct, time-aligned view of
    the other (as frame-aligned synchronisation features do in video-to-audio models), which the joint attention
    otherwise has to discover.
    """

    def __init__(self, dim: int, layout: Layout, width: int | None = None):
        super().__init__()
        if len(layout.audio_step) != layout.audio_tokens:
            raise ConfigError(
                f"SyncBridge: layout.audio_step has {len(layout.audio_step)} entries, "
                f"there are {layout.audio_tokens} audio tokens"
            )
        self.steps = layout.grid[0]
        self.register_buffer("index", torch.tensor(layout.audio_step, dtype=torch.long), persistent=False)
        self.norm_v, self.norm_a = RMSNorm(dim), RMSNorm(dim)

        def proj() -> nn.Module:  # full width, or a bottleneck of ``width`` (adapters)
            return (
                nn.Linear(2 * dim, dim)
                if width is None
                else nn.Sequential(nn.Linear(2 * dim, width), nn.Linear(width, dim))
            )

        self.v2a, self.a2v = proj(), proj()
        for p in (self.v2a, self.a2v):
            last = p if isinstance(p, nn.Linear) else p[-1]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, hv: Tensor, ha: Tensor) -> tuple[Tensor, Tensor]:
        """``hv [b, t s, d]``, ``ha [b, n_a, d]`` -> both with the other stream's time-aligned summary added."""
        b, _, d = hv.shape
        v = rearrange(self.norm_v(hv), "b (t s) d -> b t s d", t=self.steps)
        pv = torch.cat([v.mean(2), v.amax(2)], -1)  # [b, t, 2d]
        a = self.norm_a(ha)
        idx = self.index[None, :, None].expand(b, -1, d)
        total = a.new_zeros(b, self.steps, d).scatter_add(1, idx, a)
        count = torch.bincount(self.index, minlength=self.steps).clamp_min(1).to(a.dtype)[None, :, None]
        peak = a.new_full((b, self.steps, d), float("-inf")).scatter_reduce(1, idx, a, reduce="amax")
        pa = torch.cat([total / count, torch.nan_to_num(peak, neginf=0.0)], -1)  # [b, t, 2d]
        hv = hv + rearrange(self.a2v(pa)[:, :, None].expand(-1, -1, v.shape[2], -1), "b t s d -> b (t s) d")
        return hv, ha + self.v2a(pv)[:, self.index]


class AVNetwork(nn.Module):
    """Joint DiT over the packed audio-video tokens (each stream its own weights, one joint attention).

    Args:
        config: shared settings (width, depth, heads, rotary axes, classes); widths per stream are derived.
        layout: the tokenizer's :class:`Layout`.
        streams: ``("video", "audio")``, or ``("video",)`` for the video-only backbone (audio outputs zero).
        bridges: a :class:`SyncBridge` after every joint block (two streams only); False is the plain MMDiT.
    """

    def __init__(
        self, config: DiTConfig, layout: Layout, streams: tuple[str, ...] = ("video", "audio"), bridges: bool = False
    ):
        super().__init__()
        self.layout, self.stream_names = layout, tuple(streams)
        self.joint = JointDiT(stream_configs(config, layout, self.stream_names))
        use = bridges and self.stream_names == ("video", "audio")
        self.bridges = nn.ModuleList(SyncBridge(config.dim, layout) for _ in range(config.depth)) if use else None
        if use and config.registers:
            raise ConfigError(f"AVNetwork: bridges need DiTConfig.registers=0, got {config.registers}")

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        x_cond: Tensor | None = None,
        cond: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        drop_cond: Tensor | None = None,
    ) -> Tensor:
        """Velocity ``[b, n, d_v + d_a]`` of packed tokens (padding channels 0); arguments as ``DiT.forward``."""
        xs, ps = self.layout.split(x), self.layout.split_tokens(pos)
        ms = self.layout.split_tokens(mask) if mask is not None else {}
        cs = self.layout.split_cond(x_cond) if x_cond is not None else {}
        names = self.stream_names
        if self.bridges is None:
            outs = self.joint(
                {n: xs[n] for n in names},
                t,
                mask={n: ms[n] for n in names} if ms else None,
                pos={n: ps[n] for n in names},
                x_cond={n: cs[n] for n in names} if cs else None,
                cond=cond,
                context=context,
                context_mask=context_mask,
                drop_cond=drop_cond,
            )
            return self.layout.pack(outs, x)
        if ms and not all(bool(ms[n].all()) for n in names):
            raise ValueError("AVNetwork: token padding is not supported with bridges (clips have a fixed length)")
        hs, inps = self.joint.embed(
            xs, t, pos=ps, x_cond=cs, cond=cond, context=context, context_mask=context_mask, drop_cond=drop_cond
        )
        for i, bridge in enumerate(self.bridges):
            hs = self.joint.joint_block(i, hs, inps)
            hs["video"], hs["audio"] = bridge(hs["video"], hs["audio"])
        return self.layout.pack(self.joint.head(hs, inps)[0], x)


class TemporalAdapter(nn.Module):
    """Attention along time at every patch position of the video tokens, in a bottleneck of width ``width``.

    ``h [b, t r c, d] -> [b, t r c, d]``; 1D rotary positions over time; the output projection starts at zero.
    """

    def __init__(self, dim: int, width: int, grid: tuple[int, int, int], heads: int = 2):
        super().__init__()
        if width % (2 * heads):
            raise ConfigError(f"TemporalAdapter: width={width} must be divisible by 2 * heads={2 * heads}")
        self.grid, self.heads = grid, heads
        self.norm = RMSNorm(dim)
        self.qkv = nn.Linear(dim, 3 * width)
        self.out = nn.Linear(width, dim)
        self.rope = RotaryEmbedding(width // heads, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: Tensor) -> Tensor:
        gt, gh, gw = self.grid
        b = h.shape[0]
        x = rearrange(self.norm(h), "b (t s) d -> (b s) t d", t=gt)  # [b * r * c, t, d]
        q, k, v = rearrange(self.qkv(x), "n t (three h e) -> three n h t e", three=3, h=self.heads)
        pos = torch.arange(gt, device=h.device, dtype=torch.float32)[None, :, None].expand(x.shape[0], gt, 1)
        ang = self.rope.angles(pos)
        q, k = RotaryEmbedding.rotate(q, ang), RotaryEmbedding.rotate(k, ang)
        o = rearrange(attention(q, k, v), "n h t e -> n t (h e)")
        return rearrange(self.out(o), "(b s) t d -> b (t s) d", b=b)


class BottleneckAdapter(nn.Module):
    """``h + up(gelu(down(norm h)))`` residual branch (Houlsby-style); ``up`` starts at zero."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.norm = RMSNorm(dim)
        self.down = nn.Linear(dim, width)
        self.up = nn.Linear(width, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.up(torch.nn.functional.gelu(self.down(self.norm(h))))


class AVAdapterNetwork(nn.Module):
    """AV-DiT: a frozen video backbone shared by both streams, plus small trainable adapters.

    Args:
        config: the backbone's shared settings (must match the video-only run that provides the weights).
        layout: the tokenizer's :class:`Layout`.
        adapter_dim: bottleneck width of the temporal and audio adapters.
        interaction_at: the shared interaction block runs after this backbone block (default: the middle one).
        temporal_heads: heads of the temporal adapters.
        bridges: a bottleneck :class:`SyncBridge` (width ``adapter_dim``) after every block.

    The backbone weights are copied in with :meth:`load_backbone` (the module does it from a video-only run before
    training); :meth:`trainable_parameters` counts what the optimiser sees.
    """

    def __init__(
        self,
        config: DiTConfig,
        layout: Layout,
        adapter_dim: int = 32,
        interaction_at: int | None = None,
        temporal_heads: int = 2,
        bridges: bool = True,
    ):
        super().__init__()
        if config.registers:
            raise ConfigError(f"AVAdapterNetwork: DiTConfig.registers={config.registers}: adapters need 0")
        self.layout = layout
        self.stream_names = ("video", "audio")
        self.joint = JointDiT(stream_configs(config, layout, self.stream_names))
        v, a = self.joint.streams["video"], self.joint.streams["audio"]
        # the audio stream runs the video backbone: same blocks, time and label embeddings (one set of weights)
        a.blocks = v.blocks
        a.t_embed = v.t_embed
        if v.label_embed is not None:
            a.label_embed = v.label_embed
        if v.cond_embed is not None:
            a.cond_embed, a.null_cond = v.cond_embed, v.null_cond
        depth = config.depth
        self.interaction_at = depth // 2 if interaction_at is None else int(interaction_at)
        if not 0 <= self.interaction_at < depth:
            raise ConfigError(f"AVAdapterNetwork: interaction_at={interaction_at} must be in [0, depth={depth})")
        self.temporal = nn.ModuleList(
            TemporalAdapter(config.dim, adapter_dim, layout.grid, temporal_heads) for _ in range(depth)
        )
        self.audio_adapters = nn.ModuleList(BottleneckAdapter(config.dim, adapter_dim) for _ in range(depth))
        self.bridges = (
            nn.ModuleList(SyncBridge(config.dim, layout, adapter_dim) for _ in range(depth)) if bridges else None
        )
        self.interaction = DiTBlock(dataclasses.replace(config, in_dim=layout.video_dim, cond_channels=0), 0)
        nn.init.zeros_(self.interaction.adaLN[-1].weight)  # adaLN-Zero: the block starts as the identity
        nn.init.zeros_(self.interaction.adaLN[-1].bias)
        for p in self.backbone_parameters():
            p.requires_grad_(False)

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The frozen parameters: everything of the video stream (shared with the audio stream)."""
        return list(self.joint.streams["video"].parameters())

    def trainable_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    @torch.no_grad()
    def load_backbone(self, video_stream: nn.Module) -> None:
        """Copy a video-only model's stream (a core DiT with this backbone's config) into the frozen backbone."""
        own = self.joint.streams["video"]
        theirs, mine = video_stream.state_dict(), own.state_dict()
        bad = sorted(k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape)
        if bad:
            raise ConfigError(
                f"AVAdapterNetwork.load_backbone: the video-only model does not match this backbone at {bad[:4]} "
                "(train it with the same model settings)"
            )
        own.load_state_dict(theirs, strict=True)

    def forward(
        self,
        x: Tensor,
        t: Tensor | float,
        *,
        mask: Tensor | None = None,
        pos: Tensor | None = None,
        x_cond: Tensor | None = None,
        cond: Tensor | None = None,
        context: Tensor | None = None,
        context_mask: Tensor | None = None,
        drop_cond: Tensor | None = None,
    ) -> Tensor:
        """Velocity ``[b, n, d_v + d_a]`` of packed tokens; arguments as :meth:`AVNetwork.forward` (no padding
        masks: clips have a fixed length)."""
        if mask is not None and not bool(mask.all()):
            raise ValueError("AVAdapterNetwork: token padding is not supported (clips have a fixed length)")
        xs, ps = self.layout.split(x), self.layout.split_tokens(pos)
        cs = self.layout.split_cond(x_cond) if x_cond is not None else {}
        hs, inps = self.joint.embed(
            xs, t, pos=ps, x_cond=cs, cond=cond, context=context, context_mask=context_mask, drop_cond=drop_cond
        )
        nv = hs["video"].shape[1]
        for i in range(len(self.temporal)):
            hs = self.joint.joint_block(i, hs, inps)
            hs = {
                "video": hs["video"] + self.temporal[i](hs["video"]),
                "audio": hs["audio"] + self.audio_adapters[i](hs["audio"]),
            }
            if self.bridges is not None:
                hs["video"], hs["audio"] = self.bridges[i](hs["video"], hs["audio"])
            if i == self.interaction_at:
                iv, ia = inps["video"], inps["audio"]
                both = BlockInputs(
                    c=iv.c,
                    temb=iv.temb,
                    mask=None,
                    angles=torch.cat([iv.angles, ia.angles], 1) if iv.angles is not None else None,
                    context=iv.context,
                    context_mask=iv.context_mask,
                    t=iv.t,
                )
                h = self.interaction(torch.cat([hs["video"], hs["audio"]], 1), both)
                hs = {"video": h[:, :nv], "audio": h[:, nv:]}
        outs = self.joint.head(hs, inps)[0]
        return self.layout.pack(outs, x)


__all__ = [
    "AVAdapterNetwork",
    "AVNetwork",
    "BottleneckAdapter",
    "Layout",
    "SyncBridge",
    "TemporalAdapter",
    "stream_configs",
]
