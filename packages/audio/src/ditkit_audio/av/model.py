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

import numpy as np
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
    tubelet: tuple[int, int, int] = (1, 1, 1)
    """Video frames, rows and columns per video token."""
    audio_frame: tuple[float, ...] = ()
    """For each audio token, its time in video frames (frame ``k`` shows the instant ``k / fps``)."""

    @property
    def frames(self) -> int:
        return self.grid[0] * self.tubelet[0]

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


def resample_matrix(src: np.ndarray, dst: np.ndarray) -> Tensor:
    """Linear interpolation from samples at sorted coordinates ``src [n]`` to ``dst [m]`` as a matrix ``[m, n]``
    (clamped at the ends): ``values_dst = M @ values_src``."""
    eye = np.eye(len(src))
    return torch.tensor(np.stack([np.interp(dst, src, eye[k]) for k in range(len(src))], 1), dtype=torch.float32)


class FrameSync(nn.Module):
    """Frame-rate synchronisation features between the streams, computed from what each stream currently shows.

    Video -> audio: every video frame goes through a small CNN together with its two neighbours (so a change of
    direction, the instant of a collision, is visible in one input), a temporal convolution runs over the frames,
    and the features are interpolated to each audio frame's time and added to the audio tokens before every block
    (a zero-initialised projection per block). Audio -> video: a temporal convolution over the mel frames, averaged
    over the audio frames nearest to each video frame; each video token gets its own frames' features (in order, so
    the instant within the tubelet is kept), added to all its patches.

    This is the role of frame-aligned synchronisation features in video-to-audio models: the timing of the given
    stream reaches the generated one directly, where a joint attention over tubelet tokens has to discover it. A
    fresh module adds zero. :meth:`predict_audio` reads the mel frames off the video features alone, for an auxiliary
    loss that teaches the features what the sound needs (as the sync encoders of video-to-audio models are trained
    for synchrony before they condition the generator).

    Args:
        dim: hidden width of the DiT.
        layout: the tokenizer's :class:`Layout` (``tubelet`` and ``audio_frame`` set).
        depth: blocks (one projection per block and direction).
        width: feature width.
        foley: build the head of :meth:`predict_audio`.
    """

    def __init__(self, dim: int, layout: Layout, depth: int, width: int = 64, foley: bool = False):
        super().__init__()
        if len(layout.audio_frame) != layout.audio_tokens:
            raise ConfigError(
                f"FrameSync: layout.audio_frame has {len(layout.audio_frame)} entries, "
                f"there are {layout.audio_tokens} audio tokens"
            )
        self.layout = layout
        f = layout.frames
        frames, audio = np.arange(f, dtype=np.float64), np.asarray(layout.audio_frame, np.float64)
        self.register_buffer("to_audio", resample_matrix(frames, audio), persistent=False)  # [n_a, f]
        nearest = np.clip(np.round(audio), 0, f - 1).astype(np.int64)  # each audio frame -> its nearest video frame
        pool = np.zeros((f, len(audio)))
        pool[nearest, np.arange(len(audio))] = 1.0
        pool /= np.maximum(pool.sum(1, keepdims=True), 1.0)
        self.register_buffer("to_video", torch.tensor(pool, dtype=torch.float32), persistent=False)  # [f, n_a] means
        self.cnn = nn.Sequential(
            nn.Conv2d(9, width // 2, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width // 2, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(16 * width, width),
        )
        self.video_time = nn.Sequential(
            nn.Conv1d(width, width, 5, padding=2), nn.GELU(), nn.Conv1d(width, width, 3, padding=1)
        )
        self.audio_time = nn.Sequential(
            nn.Conv1d(layout.audio_dim, width, 3, padding=1), nn.GELU(), nn.Conv1d(width, width, 3, padding=1)
        )
        self.foley = (
            nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, layout.audio_dim)) if foley else None
        )
        pf = layout.tubelet[0]
        self.v2a = nn.ModuleList(nn.Linear(width, dim) for _ in range(depth))
        self.a2v = nn.ModuleList(nn.Linear(pf * width, dim) for _ in range(depth))
        for p in (*self.v2a, *self.a2v):
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    @staticmethod
    def current_view(x: Tensor, given: Tensor | None, drop_cond: Tensor | None) -> Tensor:
        """What a stream shows the sync features: its given values where known (``given`` = ``[values, flag]``;
        not for samples whose condition is dropped), else the noisy state ``x``."""
        if given is None:
            return x
        flag = given[..., -1:]
        if drop_cond is not None:
            flag = flag * (~drop_cond.bool()).to(flag.dtype)[:, None, None]
        return flag * given[..., :-1] + (1 - flag) * x

    def stream_features(
        self, xs: dict[str, Tensor], given: dict[str, Tensor], drop_cond: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """:meth:`features` of what each stream currently shows (:meth:`current_view`), from the streams' noisy
        tokens ``xs`` and condition channels ``given`` (``Layout.split`` / ``Layout.split_cond``; empty: none)."""
        views = {n: self.current_view(xs[n], given.get(n), drop_cond) for n in ("video", "audio")}
        return self.features(views["video"], views["audio"])

    def features(self, video: Tensor, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Stream values (given where known, else the noisy state) -> sync features.

        Args:
            video: ``[b, n_v, d_v]`` tubelets.
            audio: ``[b, n_a, d_a]`` mel frames.

        Returns:
            ``(for the audio tokens [b, n_a, width], for the video steps [b, t, pf * width])``.
        """
        return self.video_features(video), self.audio_features(audio)

    def predict_audio(self, video: Tensor) -> Tensor:
        """The mel frames ``[b, n_a, d_a]`` read off the video features alone (the sync loss of
        :class:`~ditkit_audio.av.module.AVModule` trains the features to carry what the sound needs)."""
        if self.foley is None:
            raise ConfigError("FrameSync.predict_audio: built with foley=False")
        return self.foley(self.video_features(video))

    def video_features(self, video: Tensor) -> Tensor:
        """Tubelets ``[b, n_v, d_v]`` -> motion features at each audio frame's time ``[b, n_a, width]``."""
        gt, gh, gw = self.layout.grid
        pf, ph, pw = self.layout.tubelet
        frames = rearrange(
            video, "b (t r c) (pf ph pw ch) -> b (t pf) ch (r ph) (c pw)", t=gt, r=gh, c=gw, pf=pf, ph=ph, pw=pw
        )
        prev = torch.cat([frames[:, :1], frames[:, :-1]], 1)
        nxt = torch.cat([frames[:, 1:], frames[:, -1:]], 1)
        b = frames.shape[0]
        x = rearrange(torch.cat([prev, frames, nxt], 2), "b f ch h w -> (b f) ch h w")
        fv = rearrange(self.cnn(x), "(b f) w -> b w f", b=b)  # [b, width, f]
        fv = self.video_time(fv)
        return torch.einsum("af,bwf->baw", self.to_audio.to(fv.dtype), fv)

    def audio_features(self, audio: Tensor) -> Tensor:
        """Mel frames ``[b, n_a, d_a]`` -> features of each video step's frames, in order ``[b, t, pf * width]``."""
        fa = self.audio_time(rearrange(audio, "b n d -> b d n"))  # [b, width, n_a]
        per_frame = torch.einsum("fa,bwa->bfw", self.to_video.to(fa.dtype), fa)
        return rearrange(per_frame, "b (t pf) w -> b t (pf w)", pf=self.layout.tubelet[0])

    def inject(self, i: int, hv: Tensor, ha: Tensor, feats: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """Add block ``i``'s projections of the features to ``hv [b, t s, d]`` and ``ha [b, n_a, d]``."""
        for_audio, for_video = feats
        gt = self.layout.grid[0]
        add_v = self.a2v[i](for_video)[:, :, None]  # [b, t, 1, d]
        hv = rearrange(rearrange(hv, "b (t s) d -> b t s d", t=gt) + add_v, "b t s d -> b (t s) d")
        return hv, ha + self.v2a[i](for_audio)


class AVNetwork(nn.Module):
    """Joint DiT over the packed audio-video tokens (each stream its own weights, one joint attention).

    Args:
        config: shared settings (width, depth, heads, rotary axes, classes); widths per stream are derived.
        layout: the tokenizer's :class:`Layout`.
        streams: ``("video", "audio")``, or ``("video",)`` for the video-only backbone (audio outputs zero).
        bridges: a :class:`SyncBridge` after every joint block (two streams only); False is the plain MMDiT.
        sync: width of the :class:`FrameSync` features added before every block (two streams only); 0 for none.
        sync_foley: give the sync features the head of :meth:`FrameSync.predict_audio` (for an auxiliary loss).
    """

    def __init__(
        self,
        config: DiTConfig,
        layout: Layout,
        streams: tuple[str, ...] = ("video", "audio"),
        bridges: bool = False,
        sync: int = 0,
        sync_foley: bool = False,
    ):
        super().__init__()
        self.layout, self.stream_names = layout, tuple(streams)
        self.joint = JointDiT(stream_configs(config, layout, self.stream_names))
        two = self.stream_names == ("video", "audio")
        use = bridges and two
        self.bridges = nn.ModuleList(SyncBridge(config.dim, layout) for _ in range(config.depth)) if use else None
        self.sync = FrameSync(config.dim, layout, config.depth, sync, sync_foley) if sync and two else None
        if (use or self.sync is not None) and config.registers:
            raise ConfigError(f"AVNetwork: bridges and sync need DiTConfig.registers=0, got {config.registers}")

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
        if self.bridges is None and self.sync is None:
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
        feats = self.sync.stream_features(xs, cs, drop_cond) if self.sync is not None else None
        for i in range(len(self.joint.streams["video"].blocks)):
            if feats is not None:
                hs["video"], hs["audio"] = self.sync.inject(i, hs["video"], hs["audio"], feats)
            hs = self.joint.joint_block(i, hs, inps)
            if self.bridges is not None:
                hs["video"], hs["audio"] = self.bridges[i](hs["video"], hs["audio"])
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
        sync: width of trainable :class:`FrameSync` features (0 for none).
        sync_foley: as :class:`AVNetwork`.

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
        sync: int = 0,
        sync_foley: bool = False,
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
        self.sync = FrameSync(config.dim, layout, depth, sync, sync_foley) if sync else None
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
        feats = self.sync.stream_features(xs, cs, drop_cond) if self.sync is not None else None
        for i in range(len(self.temporal)):
            if feats is not None:
                hs["video"], hs["audio"] = self.sync.inject(i, hs["video"], hs["audio"], feats)
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
    "FrameSync",
    "Layout",
    "SyncBridge",
    "TemporalAdapter",
    "resample_matrix",
    "stream_configs",
]
