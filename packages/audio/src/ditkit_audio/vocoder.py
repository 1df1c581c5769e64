"""A small trainable neural vocoder (Vocos-style): log-mel frames -> ConvNeXt backbone -> iSTFT head that predicts
the STFT magnitude and phase of every frame, inverted by ``torch.istft`` (no upsampling convolutions).

Trained by :class:`VocoderModule` (``make train-vocoder``, or ``ditkit fit --config apps/tts/configs/vocoder.yaml``)
on aligned crops of the speech corpus's waveforms with a multi-resolution STFT loss (spectral convergence +
log-magnitude L1) plus an L1 loss on the log-mel of the output; no discriminator. The mel settings (``sample_rate``,
``n_fft``, ``hop``, ``n_mels``, ``mel_mean``, ``mel_std``) are stated in the config, checked at fit start against the
TTS config the corpus comes from (:func:`~ditkit_audio.wavtools.mel_settings_from_config`), stored with the weights
(the core's pretrained format) and checked against the tokenizer it is used with (:meth:`Vocoder.check_compatible`), so
a vocoder is never silently applied to mels it was not trained on.
The iSTFT head uses the mel's own ``n_fft`` / ``hop`` (one STFT frame per mel frame), so ``f`` mel frames give
``(f - 1) * hop`` samples, the length Griffin-Lim gives.

Shared with :mod:`ditkit_audio.codec`: the ConvNeXt backbone (:class:`Backbone`); data, save / load and metric helpers
live in :mod:`ditkit_audio.wavtools`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ditkit_audio.melfit import MelModelModule, fit, trained_probe
from ditkit_audio.wavtools import MEL_KEYS, MelModule, audio_report, check_mel_settings, load_model, save_model
from ditkit_core.lightning import OptimConfig


# ---------------------------------------------------------------------- layers
class ConvNeXtBlock(nn.Module):
    """Vocos ConvNeXt block on ``[b, dim, t]``: depthwise conv (k=7) -> LayerNorm -> MLP -> layer scale -> residual.

    ``mask [b, t]`` zeroes padding before the depthwise conv, so a padded batch gives the same output on real frames
    as each sequence on its own (the conv zero-pads the ends).
    """

    def __init__(self, dim: int, intermediate: int, layer_scale: float, kernel: int = 7):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(dim, intermediate), nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is not None:
            x = x * mask[:, None].to(x.dtype)
        h = self.dw(x).transpose(1, 2)  # [b, t, dim]
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + (self.gamma * h).transpose(1, 2)


class Backbone(nn.Module):
    """``[b, t, in_dim]`` -> conv embedding (k=7) -> LayerNorm -> ConvNeXt blocks -> LayerNorm -> ``[b, t, dim]``."""

    def __init__(self, in_dim: int, dim: int, intermediate: int, layers: int):
        super().__init__()
        self.embed = nn.Conv1d(in_dim, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, intermediate, 1.0 / max(layers, 1)) for _ in range(layers))
        self.final_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        h = self.norm(self.embed(x.transpose(1, 2)).transpose(1, 2)).transpose(1, 2)  # [b, dim, t]
        for blk in self.blocks:
            h = blk(h, mask)
        return self.final_norm(h.transpose(1, 2))


class ISTFTHead(nn.Module):
    """Per-frame linear layer -> log-magnitude and phase of ``n_fft // 2 + 1`` bins -> ``torch.istft`` (Hann window,
    centred frames, the layout of ``torch.stft`` / torchaudio's ``MelSpectrogram``).

    ``f`` frames give ``(f - 1) * hop`` samples: sample ``n`` is the sample ``n`` of the signal whose centred STFT the
    frames are, so :meth:`synthesize` of a true STFT reproduces the signal.
    """

    def __init__(self, dim: int, n_fft: int, hop: int, max_log_mag: float = math.log(100.0)):
        super().__init__()
        self.n_fft, self.hop, self.max_log_mag = n_fft, hop, max_log_mag
        self.bins = n_fft // 2 + 1
        self.out = nn.Linear(dim, 2 * self.bins)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def stft(self, wav: Tensor) -> Tensor:
        """Complex centred STFT ``[..., f, bins]`` of ``[..., s]`` with this head's window."""
        spec = torch.stft(
            wav,
            self.n_fft,
            self.hop,
            window=self.window.to(wav.device),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        return spec.transpose(-1, -2)

    def synthesize(self, mag: Tensor, phase: Tensor) -> Tensor:
        """Magnitude and phase ``[b, f, bins]`` -> waveform ``[b, (f - 1) * hop]``."""
        if mag.shape != phase.shape or mag.shape[-1] != self.bins or mag.dim() != 3:
            raise ValueError(
                f"ISTFTHead.synthesize: magnitude and phase must both be [b, f, {self.bins}], got "
                f"{tuple(mag.shape)} and {tuple(phase.shape)}"
            )
        f = mag.shape[1]
        if f < 2:
            raise ValueError(f"ISTFTHead.synthesize: need >= 2 frames, got {f}")
        spec = torch.complex(mag * torch.cos(phase), mag * torch.sin(phase)).transpose(1, 2)  # [b, bins, f]
        return torch.istft(
            spec, self.n_fft, self.hop, window=self.window.to(mag.device), center=True, length=(f - 1) * self.hop
        )

    def forward(self, h: Tensor) -> Tensor:
        """Features ``[b, f, dim]`` -> waveform ``[b, (f - 1) * hop]``."""
        log_mag, phase = self.out(h).float().chunk(2, dim=-1)
        return self.synthesize(log_mag.clamp(max=self.max_log_mag).exp(), phase)


class Vocoder(MelModule):
    """Log-mel ``[b, f, n_mels]`` (natural log, as :class:`~ditkit_audio.audio.LogMel`) -> waveform
    ``[b, (f - 1) * hop]``.

    Args:
        sample_rate, n_fft, hop, n_mels: the mel settings it is trained on (checked at use).
        mel_mean, mel_std: input normalisation.
        dim, intermediate, layers: ConvNeXt backbone size.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        mel_mean: float = -5.5,
        mel_std: float = 2.5,
        dim: int = 192,
        intermediate: int = 576,
        layers: int = 6,
    ):
        super().__init__()
        self.set_mel_settings(sample_rate, n_fft, hop, n_mels, mel_mean, mel_std)
        self.dim, self.intermediate, self.layers = dim, intermediate, layers
        self.backbone = Backbone(n_mels, dim, intermediate, layers)
        self.head = ISTFTHead(dim, n_fft, hop)

    def get_config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*MEL_KEYS, "dim", "intermediate", "layers")}

    def check_compatible(self, tokenizer: Any, what: str = "this tokenizer") -> None:
        """Raise ``ValueError`` if ``tokenizer`` (or a dict) has other sample_rate / n_fft / hop / n_mels."""
        check_mel_settings(self.mel_settings, tokenizer, "Vocoder", what)

    def forward(self, logmel: Tensor, mask: Tensor | None = None) -> Tensor:
        """``[b, f, n_mels]`` (``mask [b, f]`` marks real frames of a padded batch) -> ``[b, (f - 1) * hop]``."""
        if logmel.dim() != 3 or logmel.shape[-1] != self.n_mels:
            raise ValueError(f"Vocoder: log-mel must be [b, f, n_mels={self.n_mels}], got {tuple(logmel.shape)}")
        if logmel.shape[1] < 2:
            raise ValueError(f"Vocoder: need >= 2 frames, got {logmel.shape[1]}")
        x = (logmel.float() - self.mel_mean) / self.mel_std
        return self.head(self.backbone(x, mask))

    @torch.no_grad()
    def vocode(self, logmel: Tensor) -> Tensor:
        """One log-mel ``[f, n_mels]`` -> waveform ``[(f - 1) * hop]`` (a drop-in for Griffin-Lim's ``to_wav``)."""
        if logmel.dim() != 2:
            raise ValueError(f"Vocoder.vocode: log-mel must be [f, n_mels={self.n_mels}], got {tuple(logmel.shape)}")
        dev = next(self.parameters()).device
        return self(logmel[None].to(dev))[0].cpu()

    @torch.no_grad()
    def vocode_batch(self, mels: list[Tensor]) -> list[Tensor]:
        """Many log-mels ``[f_i, n_mels]`` in one padded batch -> waveforms ``[(f_i - 1) * hop]`` (the same samples as
        :meth:`vocode` of each, up to float rounding)."""
        f = max(m.shape[0] for m in mels)
        dev = next(self.parameters()).device
        x = torch.zeros(len(mels), f, self.n_mels, device=dev)
        mask = torch.zeros(len(mels), f, dtype=torch.bool, device=dev)
        for i, m in enumerate(mels):
            x[i, : m.shape[0]], mask[i, : m.shape[0]] = m.to(dev).float(), True
        h = self.backbone((x - self.mel_mean) / self.mel_std, mask)  # [b, f, dim]
        # the iSTFT per sequence: overlap-add would otherwise mix padding frames into the last real samples
        return [self.head(h[i : i + 1, : m.shape[0]])[0].cpu() for i, m in enumerate(mels)]


# ---------------------------------------------------------------------- save / load
def save_vocoder(model: Vocoder, directory: str | Path, report: dict[str, Any] | None = None) -> Path:
    """The vocoder in the core's pretrained format (``config.json`` + ``model.safetensors``), written atomically."""
    return save_model(model, directory, report)


def load_vocoder(directory: str | Path) -> Vocoder:
    """A trained :class:`Vocoder` from a directory written by :func:`save_vocoder` (``make train-vocoder``)."""
    return load_model(directory, Vocoder, "train-vocoder")


# ---------------------------------------------------------------------- losses
class MultiResolutionSTFTLoss(nn.Module):
    """Mean over resolutions ``(n_fft, hop)`` of spectral convergence + L1 of log magnitudes (Parallel WaveGAN)."""

    def __init__(self, resolutions: tuple[tuple[int, int], ...] = ((256, 64), (512, 128), (1024, 256), (2048, 512))):
        super().__init__()
        self.resolutions = tuple(tuple(r) for r in resolutions)
        for n, _ in self.resolutions:
            self.register_buffer(f"win{n}", torch.hann_window(n), persistent=False)

    def forward(self, y_hat: Tensor, y: Tensor) -> Tensor:
        if y_hat.shape != y.shape:
            raise ValueError(f"MultiResolutionSTFTLoss: shapes differ, {tuple(y_hat.shape)} vs {tuple(y.shape)}")
        total = y.new_zeros(())
        for n, hop in self.resolutions:
            w = getattr(self, f"win{n}")
            a = torch.stft(y_hat, n, hop, window=w, return_complex=True).abs().clamp_min(1e-7)
            b = torch.stft(y, n, hop, window=w, return_complex=True).abs().clamp_min(1e-7)
            sc = torch.linalg.norm(b - a) / torch.linalg.norm(b).clamp_min(1e-7)
            total = total + sc + (a.log() - b.log()).abs().mean()
        return total / len(self.resolutions)


def differentiable_logmel(settings: dict[str, Any]) -> nn.Module:
    """``[..., s]`` -> natural-log mel ``[..., f, n_mels]`` with gradients (the transform of ``LogMel``)."""
    from ditkit_audio.audio import LogMel

    lm = LogMel(settings["sample_rate"], settings["n_fft"], settings["hop"], settings["n_mels"])

    class _M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mel = lm.mel

        def forward(self, wav: Tensor) -> Tensor:
            return self.mel(wav).clamp_min(1e-5).log().transpose(-1, -2)

    return _M()


# ---------------------------------------------------------------------- training
VOCODER_OPTIM = OptimConfig(lr=1e-3, weight_decay=0.01, betas=(0.8, 0.99), warmup_steps=100, min_lr_ratio=0.05)
"""Optimiser defaults of :class:`VocoderModule`."""


class VocoderModule(MelModelModule):
    """Trains a :class:`Vocoder` (``ditkit fit --config apps/tts/configs/vocoder.yaml``): loss
    :class:`MultiResolutionSTFTLoss` + ``mel_weight`` x L1 of the output's log-mel vs the input log-mel on aligned
    crops (:class:`~ditkit_audio.melfit.MelCropDataModule` with ``crop: aligned``); AdamW (betas 0.8 / 0.99), warm-up
    then cosine decay; gradient clipping from the trainer. At the end of fitting the vocoder and its held-out figures
    vs Griffin-Lim go to ``trainer.default_root_dir`` (:class:`~ditkit_audio.melfit.MelModelModule`).

    Args:
        sample_rate, n_fft, hop, n_mels, mel_mean, mel_std: the mel settings (those of the TTS tokenizer; checked
            against the data's TTS config at fit start).
        dim, intermediate, layers: ConvNeXt backbone size.
        mel_weight: weight of the log-mel L1.
        optim: AdamW settings (default :data:`VOCODER_OPTIM`: lr 1e-3, weight decay 0.01, betas 0.8 / 0.99,
            100 warm-up steps, cosine to 5 %).
        export, asr, eval_n, log_every: see :class:`~ditkit_audio.melfit.MelModelModule`.
    """

    tag = "vocoder"

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        mel_mean: float = -5.5,
        mel_std: float = 2.5,
        dim: int = 192,
        intermediate: int = 576,
        layers: int = 6,
        mel_weight: float = 1.0,
        optim: OptimConfig | None = None,
        export: bool = True,
        asr: str | None = None,
        eval_n: int = 64,
        log_every: int = 200,
    ):
        super().__init__(optim, VOCODER_OPTIM, export, asr, eval_n, log_every)
        settings = {"sample_rate": sample_rate, "n_fft": n_fft, "hop": hop, "n_mels": n_mels}
        self.vocoder = Vocoder(
            **settings, mel_mean=mel_mean, mel_std=mel_std, dim=dim, intermediate=intermediate, layers=layers
        )
        self.stft_loss, self.mel_fn = MultiResolutionSTFTLoss(), differentiable_logmel(settings)
        self.mel_weight = float(mel_weight)

    @property
    def net(self) -> Vocoder:
        return self.vocoder

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Crops ``{"mel": [b, f, n_mels], "wav": [b, (f - 1) hop]}`` -> ``loss``, ``stft_loss``, ``mel_l1``."""
        mel, wav = batch["mel"], batch["wav"]
        y = self.vocoder(mel)
        l_stft = self.stft_loss(y, wav)
        l_mel = (self.mel_fn(y) - mel).abs().mean()
        return {"loss": l_stft + self.mel_weight * l_mel, "stft_loss": l_stft, "mel_l1": l_mel}

    def evaluate(self, items: list[dict]) -> dict[str, Any]:
        probe, text = trained_probe(self.asr)
        res = evaluate_vocoder(self.vocoder, items, probe=probe, text=text)
        res["asr_probe"] = str(self.asr) if probe is not None else None
        return res


def train_vocoder(
    items: list[dict],
    settings: dict[str, Any],
    *,
    steps: int = 4000,
    batch_size: int = 16,
    segment_frames: int = 24,
    lr: float = 1e-3,
    warmup: int = 100,
    mel_weight: float = 1.0,
    max_seconds: float | None = None,
    seed: int = 0,
    log_every: int = 200,
    **model_kw: Any,
) -> tuple[Vocoder, dict[str, Any]]:
    """Train a :class:`Vocoder` on aligned (log-mel, waveform) crops of ``items`` (:func:`load_wav_split`) with
    :class:`VocoderModule` in one process (the weights start from ``torch.manual_seed(seed)``, the crops from
    ``seed``); stops after ``steps`` or ``max_seconds``; writes nothing.

    Returns:
        the model (eval mode) and a log ``{"steps", "seconds", "stft_loss_first", "stft_loss_last", ...}``.
    """
    torch.manual_seed(seed)
    module = VocoderModule(
        **{k: settings[k] for k in MEL_KEYS},
        **model_kw,
        mel_weight=mel_weight,
        optim=dataclasses.replace(VOCODER_OPTIM, lr=lr, warmup_steps=warmup),
        export=False,
        log_every=log_every,
    )
    fit(
        module,
        items,
        steps=steps,
        batch_size=batch_size,
        segment_frames=segment_frames,
        seed=seed,
        crop="aligned",
        hop=settings["hop"],
        max_seconds=max_seconds,
    )
    return module.vocoder.eval(), module.train_log()


def evaluate_vocoder(
    vocoder: Vocoder, items: list[dict], *, probe: Any = None, text: Any = None, gl_iters: int = 32
) -> dict[str, Any]:
    """Held-out figures of the neural vocoder vs Griffin-Lim on ground-truth log-mels: mel L1, MCD (frame-aligned
    and DTW), SI-SNR vs the original waveform, probe CER / WER (and the probe on the ground-truth mels), RTF."""
    from ditkit_audio.audio import LogMel
    from ditkit_audio.metrics import error_rate

    s = vocoder.mel_settings
    lm = LogMel(s["sample_rate"], s["n_fft"], s["hop"], s["n_mels"], gl_iters=gl_iters)
    mels = [it["mel"].float() for it in items]
    secs = sum((m.shape[0] - 1) * s["hop"] for m in mels) / s["sample_rate"]
    t0 = time.perf_counter()
    neural = [vocoder.vocode(m) for m in mels]
    t_neural = time.perf_counter() - t0
    t0 = time.perf_counter()
    gl = [lm.invert(m) for m in mels]
    t_gl = time.perf_counter() - t0
    out: dict[str, Any] = {
        "figure": "tts_vocoder",
        "utterances": len(items),
        "audio_s": round(secs, 2),
        "threads": torch.get_num_threads(),
        "griffinlim_iters": gl_iters,
        "rtf_neural": round(t_neural / secs, 5),
        "rtf_griffinlim": round(t_gl / secs, 5),
    }
    out.update(audio_report("neural", items, neural, mels, lm, probe, text))
    out.update(audio_report("griffinlim", items, gl, mels, lm, probe, text))
    if probe is not None:
        texts = [it["text"] for it in items]
        hyps = probe.transcribe(mels, text)
        out["ground_truth_cer"] = round(error_rate(texts, hyps), 4)
        out["ground_truth_wer"] = round(error_rate(texts, hyps, "word"), 4)
    return out


# ---------------------------------------------------------------------- use
def resolve_vocoder(vocoder: Vocoder | str | Path | None, tokenizer: Any = None) -> Vocoder | None:
    """``None`` / ``""`` / ``"griffinlim"`` -> None (Griffin-Lim); a directory -> :func:`load_vocoder`; a
    :class:`Vocoder` as is. Checked against ``tokenizer``'s mel settings when given."""
    if vocoder is None or (isinstance(vocoder, str) and vocoder.lower() in ("", "griffinlim", "griffin-lim", "gl")):
        return None
    v = load_vocoder(vocoder) if isinstance(vocoder, (str, Path)) else vocoder
    if not isinstance(v, Vocoder):
        raise TypeError(f"resolve_vocoder: expected a Vocoder or its directory, got {type(v).__name__}")
    if tokenizer is not None:
        v.check_compatible(tokenizer, f"the TTS tokenizer ({type(tokenizer).__name__})")
    return v
