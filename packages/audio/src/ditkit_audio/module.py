"""``TTSModule``: F5-TTS-style flow matching on mel frames with a DiT backbone from ditkit_core.

One core DiT: its input is the noisy frames ``x_t`` (``in_dim = token_dim``); the reference mel on the known frames
and the refined text embedding enter as condition channels (``TokenBatch.x_cond [b, f, token_dim + text_dim]``,
``DiTConfig.cond_channels``, both derived), filled by :meth:`TTSModule.condition`, where the text encoder runs. 1D
RoPE over frames. The text reaches the frames either stretched over them (``text_align="stretch"``, the default: a
symbol-level ConvNeXt encoder, then each frame takes the symbol at its position when the symbols are spread in
proportion to expected per-symbol durations fitted to sentence totals, or over espeak-ng's own phoneme timings
(``stretch_weights="espeak"``, :mod:`ditkit_audio.timing`), plus its fractional position inside it, then a
frame-level ConvNeXt refiner) or F5-TTS style (``text_align="filler"``: text then filler tokens, the DiT finds the
alignment itself). Training infills a random contiguous span (70-100% of the frames by default) given the rest
(``known_mask``), with the text and the reference dropped together for CFG: :meth:`TTSModule.condition` builds the
unconditional channels itself (reference zeroed, text replaced by filler tokens), so the DiT's own zeroing of dropped
condition channels is off (``drop_x_cond: false``). A sentence-level duration predictor (trained jointly, an
auxiliary loss) gives the total number of frames (espeak-ng's timing does with ``stretch_weights="espeak"``); no
trained aligner is used. Sampling goes through
:meth:`~ditkit_core.lightning.FlowMatchingModule.generate` (:func:`ditkit_audio.inference.synthesize`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ditkit_audio.model import DurationPredictor, TextEncoder
from ditkit_audio.text import fill_to_frames, stretch_to_frames
from ditkit_audio.tokenizer import MelTokenizer
from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.tokenizers import TokenBatch


class TTSModule(FlowMatchingModule):
    """Flow-matching text-to-speech on log-mel frames (see the module docstring).

    Args:
        tokenizer: :class:`~ditkit_audio.tokenizer.MelTokenizer` (or the SQ-codec's
            :class:`~ditkit_audio.codec.CodecTokenizer`).
        model: DiT configuration; ``in_dim`` / ``out_dim`` (the token width) and ``cond_channels``
            (``token_dim + text_dim``) are derived (state them only with their real values); ``drop_x_cond`` is
            always False. Use ``rope_axes: 1`` for rotary positions over frames.
        flow, optim, sampler, seed: as in :class:`~ditkit_core.lightning.FlowMatchingModule` (the TTS recipe sets
            ``flow.cond_dropout`` for CFG and ``sampler.schedule: sway`` with ``sampler.sway``).
        text_dim: width of the text embedding in the condition channels of each frame.
        text_layers: frame-level ConvNeXt blocks refining the text embedding.
        text_align: ``stretch`` (uniform text-to-frame stretching, see :class:`~ditkit_audio.model.TextEncoder`) or
            ``filler`` (F5-TTS filler padding).
        symbol_layers: symbol-level ConvNeXt blocks before stretching (``stretch`` only).
        stretch_weights: ``fitted`` spreads the text in proportion to expected frames per symbol plus a trailing
            silence, fitted to the training corpus's sentence durations at fit start
            (:func:`~ditkit_audio.text.fit_symbol_frames`, no alignment); ``uniform`` gives every symbol the same
            share; ``espeak`` gives each symbol its frames from espeak-ng's phoneme timings (training: the
            recording's own, ``TTSDataModule(timing=True)``; synthesis: espeak-ng's prosody for the text, which
            also sets the total length; :mod:`ditkit_audio.timing`).
        duration_dim, duration_layers: size of the duration predictor.
        duration_weight: weight of the duration loss (MSE on log frames) in the total loss.
        mask_range: fraction of frames in the infilled span during training (min, max).
        n_write: utterances synthesised by :meth:`write_samples`.
    """

    LEGACY_ARGS: ClassVar[dict[str, tuple[str, str]]] = {"sway": ("sampler", "sway")}
    """TTS's own flat arguments of earlier versions (the base ones, ``lr``, ``sample_steps``, ..., are migrated by
    the core)."""

    def __init__(
        self,
        tokenizer: MelTokenizer,
        model: DiTConfig,
        flow: FlowConfig | None = None,
        optim: OptimConfig | None = None,
        sampler: SamplerConfig | None = None,
        seed: int = 0,
        text_dim: int = 64,
        text_layers: int = 2,
        text_align: str = "stretch",
        symbol_layers: int = 2,
        stretch_weights: str = "fitted",
        duration_dim: int = 96,
        duration_layers: int = 2,
        duration_weight: float = 0.1,
        mask_range: tuple[float, float] = (0.7, 1.0),
        n_write: int = 3,
    ):
        if not 0.0 < mask_range[0] <= mask_range[1] <= 1.0:
            raise ValueError(f"TTSModule.mask_range={mask_range}: need 0 < min <= max <= 1")
        if stretch_weights not in ("fitted", "uniform", "espeak"):
            raise ValueError(f"TTSModule.stretch_weights={stretch_weights!r}: choose 'fitted', 'uniform' or 'espeak'")
        if isinstance(text_dim, bool) or not isinstance(text_dim, int) or text_dim < 1:
            raise ValueError(f"TTSModule.text_dim={text_dim!r}: must be an integer >= 1")
        self.text_dim = text_dim  # read by resolve_config
        super().__init__(tokenizer, model, flow=flow, optim=optim, sampler=sampler, seed=seed)
        vocab = self.tokenizer.text.vocab_size
        self.text_align, self.stretch_weights = text_align, stretch_weights
        self.text_encoder = TextEncoder(vocab, text_dim, text_layers, text_align, symbol_layers)
        self.duration = DurationPredictor(vocab, duration_dim, duration_layers)
        self.duration_weight, self.mask_range, self.n_write = duration_weight, tuple(mask_range), n_write
        # frames per text symbol of the training corpus: the character-rate duration heuristic (set at fit start)
        self.register_buffer("frames_per_symbol", torch.tensor(4.0))
        # expected frames per symbol id and trailing silence (stretch_weights="fitted"; set at fit start)
        self.register_buffer("symbol_frames", torch.ones(vocab))
        self.register_buffer("tail_frames", torch.tensor(0.0))
        if stretch_weights == "espeak":  # seconds a recording runs past espeak-ng's last phoneme (set at fit start)
            self.register_buffer("timing_tail", torch.tensor(0.0))

    @classmethod
    def migrate_args(cls, args: dict[str, Any]) -> dict[str, Any]:
        """Hyper-parameters of earlier versions (flat arguments into groups, ``sway`` included), without
        LightningCLI's own entries (``_class_path``, ``_instantiator``) that every ``ditkit fit`` checkpoint holds."""
        return super().migrate_args({k: v for k, v in args.items() if not k.startswith("_")})

    def resolve_config(self, config: DiTConfig) -> DiTConfig:
        """``in_dim`` / ``out_dim`` = token width, ``cond_channels`` = token width + ``text_dim``; ``drop_x_cond``
        False (:meth:`condition` builds the unconditional channels, see the module docstring)."""
        m = int(self.tokenizer.token_dim)  # n_mels for MelTokenizer, latent_dim for the SQ-codec's CodecTokenizer
        config = self.derive(config, in_dim=m, out_dim=m, cond_channels=m + self.text_dim)
        return dataclasses.replace(config, drop_x_cond=False)

    # ------------------------------------------------------------------ tokens and conditions
    def span_mask(self, mask: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Known frames ``[b, f]`` bool: all real frames except one random span of ``mask_range`` of their length."""
        b, f = mask.shape
        n = mask.sum(1).float()  # [b]
        lo, hi = self.mask_range
        frac = lo + (hi - lo) * torch.rand(b, generator=generator, device=mask.device)
        span = (frac * n).round().clamp_min(1)
        start = (torch.rand(b, generator=generator, device=mask.device) * (n - span + 1)).floor()
        idx = torch.arange(f, device=mask.device)[None].float()
        infill = (idx >= start[:, None]) & (idx < (start + span)[:, None])
        return mask & ~infill

    def text_meta(
        self,
        ids: Tensor,
        text_len: Tensor,
        total: int,
        frames: Tensor,
        prompt_frames: Tensor | None = None,
        prompt_text_len: Tensor | None = None,
        durations: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Per-frame text layout for :meth:`condition`: ids ``[b, L]`` (``text_len [b]``) over ``frames [b]`` of
        ``total`` frames. With a voice prompt the first ``prompt_text_len`` symbols are spread over the first
        ``prompt_frames`` frames and the rest over the following ``frames``. ``durations [b, L]`` (frames per
        symbol, the prompt's included; each segment is scaled to its frames) are required with
        ``stretch_weights="espeak"``."""
        if self.text_align == "filler":
            return {"filled": fill_to_frames(ids, text_len, total)}
        w, tail = None, 0.0
        valid = torch.arange(ids.shape[1], device=ids.device)[None] < text_len[:, None]
        if self.stretch_weights == "fitted":
            w, tail = self.symbol_frames[ids] * valid, self.tail_frames
        elif self.stretch_weights == "espeak":
            if durations is None:
                raise ValueError(
                    "TTSModule(stretch_weights='espeak') needs per-symbol durations: TTSDataModule(timing=True) "
                    "for training, ditkit_audio.inference.synthesize for sampling"
                )
            w = durations.to(ids.device).float() * valid
        if prompt_frames is None:
            index, frac = stretch_to_frames(text_len, frames, total, weights=w, tail=tail)
        else:
            i0, f0 = stretch_to_frames(prompt_text_len, prompt_frames, total, weights=w, tail=tail)
            i1, f1 = stretch_to_frames(
                text_len - prompt_text_len,
                frames,
                total,
                text_start=prompt_text_len,
                frame_start=prompt_frames,
                weights=w,
                tail=tail,
            )
            index, frac = torch.where(i0 >= 0, i0, i1), torch.where(i0 >= 0, f0, f1)
        return {"ids": ids, "text_len": text_len, "text_index": index, "text_frac": frac}

    def text_embedding(self, tokens: TokenBatch, drop_cond: Tensor | None = None) -> Tensor:
        """Refined text embedding per frame ``[b, f, text_dim]`` from the layout of :meth:`text_meta`."""
        m = tokens.meta
        if self.text_align == "filler":
            return self.text_encoder(m["filled"], drop_cond)
        return self.text_encoder(
            m["ids"], drop_cond, index=m["text_index"], frac=m["text_frac"], text_len=m["text_len"], mask=tokens.mask
        )

    def tokenize(self, batch: dict[str, Any]) -> TokenBatch:
        """Mel tokens with the text layout in ``meta`` and the known frames (all but one random span) as
        ``known_mask`` (training: drawn per step from :meth:`rng`; validation: fixed per length)."""
        tokens = self.tokenizer.encode(batch)
        f = tokens.x.shape[1]
        meta = dict(tokens.meta)
        meta.update(self.text_meta(batch["ids"], batch["text_len"], f, tokens.mask.sum(1), durations=batch.get("dur")))
        if self.training:
            g = self.rng(offset=17)
        else:
            g = torch.Generator(device=self.device).manual_seed(self.seed + 31 * f)
        return tokens.replace(known_mask=self.span_mask(tokens.mask, g), meta=meta)

    def condition(self, tokens: TokenBatch, drop: Tensor | None) -> TokenBatch:
        """Condition channels ``x_cond [b, f, token_dim + text_dim]``: the reference frames on the known frames
        (``tokens.x * known_mask``, 0 elsewhere) and the refined text embedding. Dropped samples (``drop [b]``) get
        a zero reference and filler text: the unconditional branch of CFG."""
        x = tokens.x
        known = tokens.known_mask
        ref = x * known[..., None].to(x.dtype) if known is not None else torch.zeros_like(x)
        if drop is not None:
            ref = ref * (~drop)[:, None, None].to(x.dtype)
        text = self.text_embedding(tokens, drop)  # [b, f, text_dim]
        return tokens.replace(x_cond=torch.cat([ref, text.to(x.dtype)], -1))

    # ------------------------------------------------------------------ duration
    def duration_loss(self, batch: dict[str, Any]) -> Tensor:
        """MSE of the predicted log total frames against the true ones (unweighted)."""
        frames = batch["mask"].sum(1).float()
        return F.mse_loss(self.duration(batch["ids"], batch["text_len"]), frames.log())

    def auxiliary_losses(self, batch: dict[str, Any], tokens: TokenBatch) -> dict[str, Tensor]:
        """``duration_weighted``: ``duration_weight`` x :meth:`duration_loss` (also logs the unweighted
        ``train/duration``)."""
        dur = self.duration_loss(batch)
        self.log("train/duration", dur, prog_bar=True, batch_size=tokens.batch_size)
        return {"duration_weighted": self.duration_weight * dur}

    @torch.no_grad()
    def predict_frames(self, ids: Tensor, text_len: Tensor, method: str = "predictor") -> Tensor:
        """Total frames ``[b]`` for padded ids ``[b, L]``: ``predictor`` or ``heuristic`` (frames per symbol)."""
        if method == "predictor":
            return self.duration(ids, text_len).exp().round().long().clamp_min(2)
        if method == "heuristic":
            return (text_len.float() * self.frames_per_symbol).round().long().clamp_min(2)
        raise ValueError(f"predict_frames: method={method!r}; choose predictor or heuristic")

    # ------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None:
            return
        tok = self.tokenizer
        for name in ("sample_rate", "n_fft", "hop", "n_mels", "text_kind"):
            if hasattr(dm, name) and getattr(dm, name) != getattr(tok, name):
                raise ValueError(
                    f"TTSModule: data.{name}={getattr(dm, name)!r} differs from "
                    f"model.tokenizer.{name}={getattr(tok, name)!r}"
                )
        if getattr(dm, "frames_per_symbol", None):
            self.frames_per_symbol.fill_(dm.frames_per_symbol)
        if self.stretch_weights != "uniform" and getattr(dm, "symbol_frames", None) is not None:
            self.symbol_frames.copy_(dm.symbol_frames.to(self.symbol_frames))
            self.tail_frames.fill_(float(dm.tail_frames))
        if self.stretch_weights == "espeak":
            if not getattr(dm, "timing", False):
                raise ValueError("TTSModule(stretch_weights='espeak'): set data.timing: true")
            self.timing_tail.fill_(float(dm.timing_tail))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        fm = super().validation_step(batch, batch_idx)
        frames = batch["mask"].sum(1).float()
        pred = self.predict_frames(batch["ids"], batch["text_len"]).float()
        heur = self.predict_frames(batch["ids"], batch["text_len"], "heuristic").float()
        bs = frames.shape[0]
        self.log("val/duration_rel_err", ((pred - frames).abs() / frames).mean(), batch_size=bs)
        self.log("val/heuristic_rel_err", ((heur - frames).abs() / frames).mean(), batch_size=bs)
        return fm

    # ------------------------------------------------------------------ samples
    def write_samples(self, out_dir: Path, tag: str) -> list[Path]:
        from ditkit_audio.audio import write_wav
        from ditkit_audio.inference import synthesize
        from ditkit_audio.viz import plot_mels

        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None or getattr(dm, "val", None) is None:
            return []
        items = dm.val.items[: self.n_write]
        texts = [it["text"] for it in items]
        res = synthesize(self, texts, seed=0)
        out, paths = Path(out_dir), []
        for i, (it, mel, wav) in enumerate(zip(items, res["mels"], res["wavs"])):
            paths.append(write_wav(out / f"tts_{tag}_{i}.wav", wav, self.tokenizer.sample_rate))
            paths.append(
                plot_mels(
                    [it["mel"].float(), mel],
                    ["ground truth", "generated"],
                    out / f"tts_{tag}_{i}.png",
                    title=it["text"],
                )
            )
        return paths
