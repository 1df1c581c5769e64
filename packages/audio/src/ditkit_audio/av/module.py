"""``AVModule``: joint audio-video flow matching; one model does joint generation, video-to-audio, audio-to-video and
continuation, chosen by what is given.

Training draws a task per sample (``task_probs``): which tokens are given (``known_mask``): none (joint), all video
(v2a), all audio (a2v), or everything before a cut time on both streams (continuation). Given values enter every
stream through condition channels ``[given value, known flag]`` (:meth:`condition`); the loss covers only the tokens
to generate. Condition dropout hides the given values and the clip family together, so classifier-free guidance has
an unconditional branch; its scale can differ per stream (``cfg_video`` / ``cfg_audio`` of :meth:`generate`).

``mode: joint`` trains the full two-stream :class:`~ditkit_audio.av.model.AVNetwork`; ``mode: avdit`` freezes a
video-only backbone (a run of this module with ``streams: [video]``, named by ``backbone``) and trains only the
adapters of :class:`~ditkit_audio.av.model.AVAdapterNetwork`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from ditkit_audio.av.model import AVAdapterNetwork, AVNetwork, Layout
from ditkit_audio.av.tokenizer import AVTokenizer
from ditkit_core.flow import drop_conditions, masked_mse
from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig, from_config
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.sampling import branch
from ditkit_core.tokenizers import TokenBatch

TASKS = ("joint", "v2a", "a2v", "continue")
"""Task ids: 0 joint generation, 1 video-to-audio, 2 audio-to-video, 3 continuation."""
MODES = ("joint", "avdit")


class AVModule(FlowMatchingModule):
    """Joint audio-video flow matching on the core JointDiT (see the module docstring).

    Args:
        tokenizer: :class:`~ditkit_audio.av.tokenizer.AVTokenizer`.
        model: shared DiT settings (``rope_axes: 3``: time in seconds, row, col; ``num_classes: 2`` conditions on
            the clip family, 0 for none); widths are derived per stream.
        streams: ``[video, audio]``, or ``[video]`` for the video-only backbone of AV-DiT.
        mode: ``joint`` (every weight trained) or ``avdit`` (frozen backbone + adapters).
        backbone: ``avdit``: checkpoint of a video-only run whose weights become the frozen backbone (loaded at the
            start of training).
        adapter_dim: ``avdit``: bottleneck width of the temporal and audio adapters.
        interaction_at: ``avdit``: block after which the shared interaction block runs (default: the middle).
        bridges: frame-aligned exchange between the streams after every block
            (:class:`~ditkit_audio.av.model.SyncBridge`; a bottleneck of ``adapter_dim`` in ``avdit``); False is the
            plain MMDiT.
        sync: width of the frame-rate synchronisation features between the streams
            (:class:`~ditkit_audio.av.model.FrameSync`: motion features of every video frame at each audio frame's
            time, mel features at each video frame's; trained as an adapter in ``avdit``); 0 for none.
        sync_loss: weight of the auxiliary loss that reads each clip's mel frames off its clean video's sync features
            alone (MSE in token units, logged as ``train/sync``); it teaches the features where and what the sound is,
            which the flow loss alone teaches only through its few near-noise video-to-audio samples.
        cfg_video, cfg_audio: default guidance scale of each stream in :meth:`generate` (None: ``sampler.cfg_scale``);
            chosen on the validation split, they travel with the weights.
        task_probs: task -> probability (``joint``, ``v2a``, ``a2v``, ``continue``); normalised; tasks that need
            a missing stream are dropped.
        continue_range: fraction of the clip given in continuation (drawn uniformly; cut on a tubelet boundary).
        stream_weights: each stream's share of the loss (the loss is balanced per stream, not per number).
        n_write: clips written by :meth:`write_samples`.
        flow, optim, sampler, seed: as in :class:`~ditkit_core.lightning.FlowMatchingModule`.
    """

    def __init__(
        self,
        tokenizer: AVTokenizer,
        model: DiTConfig,
        streams: list[str] | None = None,
        mode: str = "joint",
        backbone: str | None = None,
        adapter_dim: int = 32,
        interaction_at: int | None = None,
        bridges: bool = True,
        sync: int = 0,
        sync_loss: float = 0.0,
        cfg_video: float | None = None,
        cfg_audio: float | None = None,
        task_probs: dict[str, float] | None = None,
        continue_range: tuple[float, float] = (0.25, 0.75),
        stream_weights: dict[str, float] | None = None,
        n_write: int = 2,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
    ):
        if isinstance(tokenizer, dict):
            tokenizer = from_config(tokenizer, "model.tokenizer")
        streams = tuple(streams or ("video", "audio"))
        if streams not in (("video", "audio"), ("video",)):
            raise ConfigError(f"AVModule.streams={list(streams)}: choose [video, audio] or [video]")
        if mode not in MODES:
            raise ConfigError(f"AVModule.mode={mode!r}: choose one of {MODES}")
        if mode == "avdit" and streams != ("video", "audio"):
            raise ConfigError("AVModule.mode='avdit' needs streams [video, audio]")
        if not (isinstance(adapter_dim, int) and adapter_dim >= 4):
            raise ConfigError(f"AVModule.adapter_dim={adapter_dim!r}: must be an integer >= 4")
        lo, hi = (float(v) for v in continue_range)
        if not 0.0 < lo <= hi < 1.0:
            raise ConfigError(f"AVModule.continue_range={continue_range}: need 0 < min <= max < 1")
        probs = dict(task_probs or {"joint": 0.25, "v2a": 0.3, "a2v": 0.2, "continue": 0.25})
        bad = sorted(set(probs) - set(TASKS))
        if bad or any(not (isinstance(v, (int, float)) and v >= 0) for v in probs.values()):
            raise ConfigError(f"AVModule.task_probs={probs}: tasks are {TASKS}, probabilities >= 0")
        allowed = TASKS if "audio" in streams else ("joint", "continue")
        p = torch.tensor([float(probs.get(k, 0.0)) if k in allowed else 0.0 for k in TASKS])
        if p.sum() <= 0:
            raise ConfigError(f"AVModule.task_probs={probs}: no task with probability > 0 among {allowed}")
        weights = dict(stream_weights or {"video": 1.0, "audio": 1.0})
        if set(weights) != {"video", "audio"} or any(
            not (isinstance(v, (int, float)) and v > 0) for v in weights.values()
        ):
            raise ConfigError(f"AVModule.stream_weights={weights}: need video and audio, both > 0")
        self.streams, self.mode, self.backbone = streams, mode, backbone
        self.adapter_dim, self.interaction_at, self.n_write = adapter_dim, interaction_at, n_write
        self.bridges = bool(bridges)
        if not (isinstance(sync, int) and (sync == 0 or (sync >= 4 and sync % 2 == 0))):
            raise ConfigError(f"AVModule.sync={sync!r}: must be 0 (off) or an even integer >= 4")
        self.sync = sync
        if not (isinstance(sync_loss, (int, float)) and sync_loss >= 0 and (sync or not sync_loss)):
            raise ConfigError(f"AVModule.sync_loss={sync_loss!r}: must be >= 0, and needs sync > 0")
        self.sync_loss = float(sync_loss)
        for name, w in (("cfg_video", cfg_video), ("cfg_audio", cfg_audio)):
            if w is not None and not (isinstance(w, (int, float)) and 0 <= w < float("inf")):
                raise ConfigError(f"AVModule.{name}={w!r}: must be a finite number >= 0, or null")
        self.cfg_video, self.cfg_audio = cfg_video, cfg_audio
        self.continue_range, self.task_probs, self.stream_weights = (lo, hi), probs, weights
        flow = self._balanced_flow(flow, tokenizer, weights)
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        self.register_buffer("task_p", p / p.sum(), persistent=False)
        self._stream_cfg: tuple[Tensor, TokenBatch] | None = None
        # per-stream validation losses as weighted means: every rank updates both streams every step (weight 0 when a
        # batch has no token of that stream to generate), so the data-parallel reduction never diverges between ranks
        self.val_stream_loss = nn.ModuleDict({"video": MeanMetric(), "audio": MeanMetric()})

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Checkpoint hyper-parameters -> init arguments (LightningCLI's private ``_class_path`` / ``_instantiator``
        entries are dropped)."""
        args = {k: v for k, v in args.items() if not k.startswith("_")}
        args.setdefault("bridges", False)  # runs written before the option existed have no bridges
        return super().migrate_args(args)

    # ------------------------------------------------------------------ config and network
    @staticmethod
    def _balanced_flow(flow: Any, tok: AVTokenizer, weights: dict[str, float]) -> FlowConfig:
        """Channel weights that give each stream its ``weights`` share of the loss whatever its token count."""
        if isinstance(flow, dict):
            flow = FlowConfig(**flow)
        flow = flow or FlowConfig()
        if flow.channel_weights is not None:
            return flow
        nv, dv, na, da = tok.video_tokens, tok.video_dim, tok.audio_tokens, tok.audio_dim
        wv = weights["video"]
        wa = weights["audio"] * (nv * dv) / (na * da)
        import dataclasses

        return dataclasses.replace(flow, channel_weights=[wv] * dv + [wa] * da)

    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        tok = self.tokenizer
        return self.derive(config, in_dim=tok.token_dim, rope_axes=3)  # rotary axes: time (s), row, col

    def layout(self) -> Layout:
        t = self.tokenizer
        times = torch.arange(t.audio_tokens, dtype=torch.float64) * t.hop / t.sample_rate
        step = (times * t.fps / t.tubelet[0] + 1e-9).floor().clamp(0, t.grid[0] - 1).long()
        return Layout(
            t.video_tokens,
            t.video_dim,
            t.audio_tokens,
            t.audio_dim,
            t.grid,
            tuple(step.tolist()),
            t.tubelet,
            tuple((times * t.fps).tolist()),
        )

    def build_network(self, config: DiTConfig) -> nn.Module:
        foley = self.sync_loss > 0
        if self.mode == "avdit":
            return AVAdapterNetwork(
                config,
                self.layout(),
                self.adapter_dim,
                self.interaction_at,
                bridges=self.bridges,
                sync=self.sync,
                sync_foley=foley,
            )
        return AVNetwork(config, self.layout(), self.streams, bridges=self.bridges, sync=self.sync, sync_foley=foley)

    def parameter_counts(self) -> dict[str, int]:
        """``total`` (unique) and ``trainable`` parameters of the network."""
        ps = list(self.model.parameters())
        return {"total": sum(p.numel() for p in ps), "trainable": sum(p.numel() for p in ps if p.requires_grad)}

    # ------------------------------------------------------------------ tasks
    def task_mask(self, task: Tensor, cut: Tensor | None = None) -> Tensor:
        """Given tokens ``[b, n]`` bool for task ids ``[b]`` (see :data:`TASKS`) and continuation cuts ``[b]`` (s)."""
        tok = self.tokenizer
        stream = tok.stream_of_tokens(task.device)[None]  # [1, n]
        times = tok.token_times().to(task.device)[None]
        b = task.shape[0]
        cut = torch.zeros(b, device=task.device) if cut is None else cut.to(task.device).float().reshape(b)
        known = torch.zeros(b, stream.shape[1], dtype=torch.bool, device=task.device)
        known |= (task[:, None] == 1) & (stream == 0)
        known |= (task[:, None] == 2) & (stream == 1)
        known |= (task[:, None] == 3) & (times < cut[:, None])
        if "audio" not in self.streams:
            known |= stream == 1
        return known

    def draw_tasks(self, b: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Task ids ``[b]`` and continuation cuts ``[b]`` (seconds, on tubelet boundaries)."""
        task = torch.multinomial(self.task_p.cpu(), b, replacement=True, generator=generator)
        lo, hi = self.continue_range
        frac = lo + (hi - lo) * torch.rand(b, generator=generator)
        tok = self.tokenizer
        step = tok.tubelet[0] / tok.fps
        cut = (frac * tok.seconds / step).round().clamp_min(1) * step
        return task.to(self.device), cut.to(self.device)

    def tokenize(self, batch: dict[str, Any]) -> TokenBatch:
        tokens = self.tokenizer.encode(
            {k: (v.to(self.device) if isinstance(v, Tensor) else v) for k, v in batch.items()}
        )
        if not self.config.num_classes:
            tokens = tokens.replace(cond=None)
        b = tokens.batch_size
        if "task" in batch:  # given by the caller (sampling, evaluation)
            task = torch.as_tensor(batch["task"], device=self.device).long().reshape(b)
            cut = torch.as_tensor(batch.get("cut", torch.zeros(b)), device=self.device).float().reshape(b)
        else:
            if self.training:  # seeded by (seed, step, rank) like the noise, on the CPU
                g = torch.Generator().manual_seed(self.rng(17).initial_seed())
            else:  # validation: the same tasks for the same clips every epoch
                idx = batch.get("index")
                s = int(torch.as_tensor(idx).sum()) if idx is not None else 0
                g = torch.Generator().manual_seed(self.seed * 7919 + s)
            task, cut = self.draw_tasks(b, g)
        known = tokens.known_mask | self.task_mask(task, cut)[..., None]
        return tokens.replace(known_mask=known, meta={**tokens.meta, "task": task, "cut": cut})

    def condition(self, tokens: TokenBatch, drop: Tensor | None) -> TokenBatch:
        """Condition channels ``[given values (0 elsewhere), known flag]`` ``[b, n, d_v + d_a + 1]``.

        The DiT zeroes them (and the family label) for dropped samples: the unconditional branch.
        """
        real = self.tokenizer.channel_mask(tokens.batch_size, tokens.x.device)
        given = tokens.known_mask & real if tokens.known_mask is not None else torch.zeros_like(real)
        flag = given.any(-1, keepdim=True).to(tokens.x.dtype)
        return tokens.replace(x_cond=torch.cat([tokens.x * given.to(tokens.x.dtype), flag], -1))

    def sample_noise(self, x_1: Tensor, tokens: TokenBatch, generator: torch.Generator | None = None) -> Tensor:
        """Standard normal on each token's own channels, zero on the padding channels."""
        noise = super().sample_noise(x_1, tokens, generator)
        return noise * self.tokenizer.channel_mask(x_1.shape[0], x_1.device).to(noise.dtype)

    # ------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        tok = self.tokenizer
        for name in ("size", "fps", "seconds", "sample_rate"):
            if dm is not None and hasattr(dm, name) and getattr(dm, name) != getattr(tok, name):
                raise ConfigError(
                    f"AVModule: data.{name}={getattr(dm, name)!r} differs from "
                    f"model.tokenizer.{name}={getattr(tok, name)!r}"
                )
        if self.mode == "avdit" and self.global_step == 0:
            if self.backbone is None:
                warnings.warn(
                    "AVModule: mode 'avdit' without a backbone run: the frozen backbone is random", stacklevel=2
                )
            else:
                self.load_backbone(self.backbone)

    def load_backbone(self, ckpt: str | Path) -> None:
        """Copy the video stream of a video-only run (``streams: [video]``) into the frozen AV-DiT backbone."""
        from ditkit_core.lightning import load_run

        run = load_run(ckpt=ckpt)
        streams = getattr(getattr(getattr(run, "model", None), "joint", None), "streams", None)  # an nn.ModuleDict
        video = streams["video"] if streams is not None and "video" in streams else None
        if video is None:
            raise ConfigError(f"AVModule.backbone={str(ckpt)!r}: not an audio-video run with a video stream")
        self.model.load_backbone(video.to(self.device))

    def auxiliary_losses(self, batch: dict[str, Any], tokens: TokenBatch) -> dict[str, Tensor]:
        """``sync``: the mel frames predicted from the clean video's sync features alone (weight ``sync_loss``)."""
        sync = getattr(self.model, "sync", None)
        if not self.sync_loss or sync is None:
            return {}
        video, audio = self.tokenizer.unpack(tokens.x)
        return {"sync": self.sync_loss * torch.nn.functional.mse_loss(sync.predict_audio(video), audio)}

    def stream_losses(self, tokens: TokenBatch, generator: torch.Generator) -> dict[str, Tensor]:
        """Unweighted flow-matching MSE per stream (same noise draws as ``flow_loss`` for the same generator)."""
        x_1 = tokens.x
        b = x_1.shape[0]
        x_0 = self.sample_noise(x_1, tokens, generator)
        t = self.time_sampler(b, device=x_1.device, generator=generator)
        ps = self.path.sample(x_0, x_1, t)
        drop = drop_conditions(b, self.flow.cond_dropout, x_1.device, generator)
        out = self.model(ps.x_t, t, drop_cond=drop, **self.condition(tokens, drop).model_kwargs())
        target = x_1 if self.flow.prediction == "data" else ps.u_t
        todo = ~tokens.known_mask
        nv = self.tokenizer.video_tokens
        res = {}
        for name, sl in (("video", slice(0, nv)), ("audio", slice(nv, None))):
            if bool(todo[:, sl].any()):
                res[name] = masked_mse(out[:, sl], target[:, sl], todo[:, sl])
        return res

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        fm = super().validation_step(batch, batch_idx)
        g = torch.Generator(device=self.device).manual_seed(self.seed + 10_007 * batch_idx)
        losses = self.stream_losses(self.tokenize(batch), g)
        bs = batch["video"].shape[0]
        for name, metric in self.val_stream_loss.items():
            value = losses.get(name)
            metric.update(torch.zeros((), device=self.device) if value is None else value, 0.0 if value is None else bs)
            self.log(f"val/loss_{name}", metric, batch_size=bs)
        return fm

    # ------------------------------------------------------------------ generation
    def velocity(self, tokens: TokenBatch, x_t: Tensor, t: Tensor, drop: Tensor | None = None) -> Tensor:
        """The solver's velocity; with per-stream guidance active (see :meth:`generate`) the conditional call also
        evaluates the unconditional branch and mixes ``v_u + w_stream (v_c - v_u)``."""
        v = super().velocity(tokens, x_t, t, drop)
        if self._stream_cfg is None or drop is not None:
            return v
        scale, uncond = self._stream_cfg
        with branch("uncond"):  # caches keep one state per branch
            v_u = super().velocity(uncond, x_t, t, torch.ones(x_t.shape[0], dtype=torch.bool, device=x_t.device))
        return v_u + scale.to(v.dtype) * (v - v_u)

    def guidance_scales(
        self, cfg_scale: float | None = None, cfg_video: float | None = None, cfg_audio: float | None = None
    ) -> tuple[float, float]:
        """The (video, audio) guidance scales :meth:`generate` uses for these arguments (see there)."""
        if cfg_scale is not None:
            base_v = base_a = cfg_scale
        else:
            base_v = self.sampler.cfg_scale if self.cfg_video is None else self.cfg_video
            base_a = self.sampler.cfg_scale if self.cfg_audio is None else self.cfg_audio
        return (base_v if cfg_video is None else cfg_video), (base_a if cfg_audio is None else cfg_audio)

    @torch.no_grad()
    def generate(
        self,
        template: TokenBatch,
        *,
        cfg_scale: float | None = None,
        cfg_video: float | None = None,
        cfg_audio: float | None = None,
        **kw: Any,
    ) -> TokenBatch:
        """:meth:`FlowMatchingModule.generate` with classifier-free guidance per stream.

        ``cfg_video`` / ``cfg_audio`` default to ``cfg_scale`` when it is given, else to the module's own
        ``cfg_video`` / ``cfg_audio``, else to ``sampler.cfg_scale``; equal scales use the core guidance unchanged (with
        ``cfg_rescale`` / ``cfg_interval``), different ones mix the two branches per token (without rescale or
        interval).
        """
        wv, wa = self.guidance_scales(cfg_scale, cfg_video, cfg_audio)
        for name, w in (("cfg_video", wv), ("cfg_audio", wa)):
            if not (isinstance(w, (int, float)) and torch.isfinite(torch.tensor(float(w))) and w >= 0):
                raise ValueError(f"generate: {name}={w!r} must be a finite number >= 0")
        if wv == wa or "audio" not in self.streams:
            return super().generate(template, cfg_scale=wv, **kw)
        stream = self.tokenizer.stream_of_tokens(template.x.device)
        scale = torch.where(stream == 0, float(wv), float(wa))[None, :, None]
        drop = torch.ones(template.batch_size, dtype=torch.bool, device=template.x.device)
        self._stream_cfg = (scale, self.condition(template, drop))
        try:
            return super().generate(template, cfg_scale=1.0, **kw)
        finally:
            self._stream_cfg = None

    @torch.no_grad()
    def sample_task(
        self,
        batch: dict[str, Any],
        task: str,
        *,
        cut: float | None = None,
        steps: int | None = None,
        cfg_video: float | None = None,
        cfg_audio: float | None = None,
        generator: torch.Generator | None = None,
        **kw: Any,
    ) -> dict[str, Tensor]:
        """Run one task on a batch of clips (``video`` uint8 ``[b, f, h, w, 3]``, ``mel``, optional ``family``).

        Args:
            task: ``joint`` (the clips give only shapes and family), ``v2a`` (their video is given), ``a2v`` (their
                audio), ``continue`` (both streams before ``cut`` seconds, default half the clip).
            steps, cfg_video, cfg_audio, generator, kw: see :meth:`generate`.

        Returns:
            ``{"video": [b, f, h, w, 3] float in [0, 1], "mel": [b, f_a, n_mels]}``: given parts equal the input.
        """
        if task not in TASKS:
            raise ValueError(f"sample_task: task={task!r}; choose one of {TASKS}")
        if task in ("v2a", "a2v") and "audio" not in self.streams:
            raise ValueError(f"sample_task: task={task!r} needs an audio stream; this model has {list(self.streams)}")
        b = batch["video"].shape[0]
        tok = self.tokenizer
        cut = tok.seconds / 2 if cut is None else float(cut)
        if task == "continue" and not 0 < cut < tok.seconds:
            raise ValueError(f"sample_task: cut={cut} must be inside the clip (0, {tok.seconds}) s")
        was = self.training
        self.eval()
        tokens = self.tokenize({**batch, "task": torch.full((b,), TASKS.index(task)), "cut": torch.full((b,), cut)})
        km = tokens.known_mask
        out = self.generate(
            tokens,
            known=tokens.x * km.to(tokens.x.dtype),
            known_mask=km,
            steps=steps,
            cfg_video=cfg_video,
            cfg_audio=cfg_audio,
            generator=generator,
            **kw,
        )
        self.train(was)
        dec = tok.decode(out)
        return {"video": dec["video"], "mel": dec["mel"]}

    # ------------------------------------------------------------------ samples
    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        """Contact sheets (frames, waveform, mel) of v2a and joint samples of the first validation clips, and (models
        with an audio stream) each sample's sound as a 16-bit WAV (Griffin-Lim of its mel, the waveform the sheet
        draws), which the core's ``SampleWriter`` sends to the loggers as audio."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or getattr(dm, "val", None) is None or not len(dm.val):
            return []
        from ditkit_audio.audio import write_wav
        from ditkit_audio.av.viz import contact_sheet

        n = min(self.n_write, len(dm.val))
        batch = dm.val.batch(list(range(n)))
        g = torch.Generator(device=self.device).manual_seed(0)
        paths = []
        tasks = ("v2a", "joint") if "audio" in self.streams else ("joint",)
        for task in tasks:
            res = self.sample_task(batch, task, generator=g)
            for i in range(n):
                wav = self.tokenizer.to_wav(res["mel"][i].float().cpu())
                paths.append(
                    contact_sheet(
                        Path(out_dir) / f"av_{tag}_{task}_{i}.png",
                        self.tokenizer,
                        rows={"data": (batch["video"][i], batch["mel"][i]), task: (res["video"][i], res["mel"][i])},
                        wavs={task: wav},
                        title=f"{task} {tag} clip {i}",
                    )
                )
                if "audio" in self.streams and bool(torch.isfinite(wav).all()):  # a video-only model has no sound
                    paths.append(write_wav(Path(out_dir) / f"av_{tag}_{task}_{i}.wav", wav, self.tokenizer.sample_rate))
        return paths


__all__ = ["MODES", "TASKS", "AVModule"]
