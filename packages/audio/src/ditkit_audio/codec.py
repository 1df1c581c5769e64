"""A learned scalar-quantised latent codec (SimpleSpeech-style SQ-codec) and the audio tokenizer built on it.

Design (SimpleSpeech's SQ-codec works on the waveform; this one works on log-mel frames and is decoded to a waveform
through the neural vocoder of :mod:`ditkit_audio.vocoder`, or Griffin-Lim when none is given): an encoder (conv
embedding + ConvNeXt blocks + linear to ``latent_dim``) maps each normalised log-mel frame to ``tanh`` values in
(-1, 1); the scalar quantiser rounds them to the fixed grid ``{-1, -(S-1)/S, ..., 0, ..., 1}`` (``2 S + 1`` levels,
``S = scale``) with a straight-through estimator; a mirror-image decoder maps the grid values back to log-mel frames.
There is no codebook and no commitment loss: training is plain mel L1 + MSE on random crops.

Why mel rather than waveform: a waveform autoencoder has to learn phase as well and needs far more than the CPU
budget here (minutes on one core) to sound clean, while the mel autoencoder converges in minutes and the phase is left
to the vocoder that the mel path needs anyway. The latent keeps the mel frame rate (``sample_rate / hop`` = 40 Hz),
so the TTS module's durations, masks and infilling spans work on codec tokens unchanged.

``CodecTokenizer`` exposes the codec behind the core Tokenizer protocol: ``encode`` (a DataModule batch of mels, or
``{"wav": ...}`` waveforms) -> latent tokens ``[b, f, latent_dim]`` on the grid; ``decode`` -> mels; ``encode_wav`` /
``decode_wav`` for single waveforms. Set it as ``model.init_args.tokenizer`` of a TTS config
(``apps/tts/configs/codec.yaml``) to train the DiT on codec tokens.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import Tensor, nn

from ditkit_audio.tokenizer import MelTokenizer
from ditkit_audio.vocoder import Backbone
from ditkit_audio.wavtools import MEL_KEYS, MelModule, load_model, save_model
from ditkit_core.tokenizers import TokenBatch


# ---------------------------------------------------------------------- quantiser
class ScalarQuantizer(nn.Module):
    """``tanh`` then rounding to the grid ``k / scale`` for integer ``k`` in ``[-scale, scale]`` (SimpleSpeech SQ).

    The forward value is exactly on the grid; the gradient is that of ``tanh`` (straight-through estimator on the
    rounding).
    """

    def __init__(self, scale: int = 4):
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ValueError(f"ScalarQuantizer.scale={scale}: must be a positive integer")
        self.scale = int(scale)

    @property
    def levels(self) -> int:
        return 2 * self.scale + 1

    @property
    def bits(self) -> float:
        """Bits per latent value (``log2`` of the number of levels)."""
        return math.log2(self.levels)

    def round(self, h: Tensor) -> Tensor:
        """Values in [-1, 1] (clamped) -> nearest grid point (no gradient)."""
        return torch.round(h.clamp(-1, 1) * self.scale) / self.scale

    def forward(self, z: Tensor) -> Tensor:
        h = torch.tanh(z)
        return h + (self.round(h) - h).detach()

    def indices(self, q: Tensor) -> Tensor:
        """Grid values -> integer symbols ``0 .. 2 scale`` (for entropy / bitrate figures)."""
        return (torch.round(q * self.scale) + self.scale).long()


# ---------------------------------------------------------------------- codec
class SQCodec(MelModule):
    """Log-mel ``[b, f, n_mels]`` <-> scalar-quantised latent ``[b, f, latent_dim]`` on the grid of
    :class:`ScalarQuantizer`.

    Args:
        sample_rate, n_fft, hop, n_mels, mel_mean, mel_std: the mel settings it is trained on (checked at use).
        latent_dim: values per frame.
        scale: quantiser scale ``S`` (``2 S + 1`` levels per value).
        dim, intermediate, layers: ConvNeXt size of the encoder and of the decoder.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        mel_mean: float = -5.5,
        mel_std: float = 2.5,
        latent_dim: int = 16,
        scale: int = 4,
        dim: int = 128,
        intermediate: int = 384,
        layers: int = 3,
    ):
        super().__init__()
        self.set_mel_settings(sample_rate, n_fft, hop, n_mels, mel_mean, mel_std)
        self.latent_dim, self.scale, self.dim, self.intermediate, self.layers = (
            latent_dim,
            scale,
            dim,
            intermediate,
            layers,
        )
        self.encoder = Backbone(n_mels, dim, intermediate, layers)
        self.to_latent = nn.Linear(dim, latent_dim)
        self.quantizer = ScalarQuantizer(scale)
        self.decoder = Backbone(latent_dim, dim, intermediate, layers)
        self.to_mel = nn.Linear(dim, n_mels)

    def get_config(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (*MEL_KEYS, "latent_dim", "scale", "dim", "intermediate", "layers")}

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    @property
    def bitrate(self) -> float:
        """Bits per second at the fixed grid: ``latent_dim * frame_rate * log2(2 scale + 1)``."""
        return self.latent_dim * self.frame_rate * self.quantizer.bits

    def _check(self, x: Tensor, width: int, what: str) -> None:
        if x.dim() != 3 or x.shape[-1] != width:
            raise ValueError(f"SQCodec.{what}: expected [b, f, {width}], got {tuple(x.shape)}")

    def encode(self, logmel: Tensor, mask: Tensor | None = None) -> Tensor:
        """Natural-log mel ``[b, f, n_mels]`` -> latent ``[b, f, latent_dim]`` on the grid (0 on padding)."""
        self._check(logmel, self.n_mels, "encode (log-mel)")
        x = (logmel.float() - self.mel_mean) / self.mel_std
        q = self.quantizer(self.to_latent(self.encoder(x, mask)))
        return q * mask[..., None].to(q.dtype) if mask is not None else q

    def decode(self, latent: Tensor, mask: Tensor | None = None, quantize: bool = True) -> Tensor:
        """Latent ``[b, f, latent_dim]`` -> log-mel ``[b, f, n_mels]``; ``quantize`` first rounds (clamped) values to
        the grid, so continuous outputs of a generative model decode like codec tokens."""
        self._check(latent, self.latent_dim, "decode (latent)")
        if quantize:
            latent = self.quantizer.round(latent)
        return self.to_mel(self.decoder(latent.float(), mask)) * self.mel_std + self.mel_mean

    def forward(self, logmel: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Reconstruction ``[b, f, n_mels]`` (gradients flow through the straight-through quantiser) and latent."""
        q = self.encode(logmel, mask)
        return self.decode(q, mask, quantize=False), q


def save_codec(model: SQCodec, directory: Any, report: dict[str, Any] | None = None) -> Any:
    return save_model(model, directory, report)


def load_codec(directory: Any) -> SQCodec:
    """A trained :class:`SQCodec` from a directory written by :func:`save_codec` (``make train-codec``)."""
    return load_model(directory, SQCodec, "train-codec")


# ---------------------------------------------------------------------- training / evaluation
def train_codec(
    items: list[dict],
    settings: dict[str, Any],
    *,
    steps: int = 3000,
    batch_size: int = 32,
    segment_frames: int = 64,
    lr: float = 2e-3,
    warmup: int = 100,
    mse_weight: float = 1.0,
    max_seconds: float | None = None,
    seed: int = 0,
    log_every: int = 250,
    **model_kw: Any,
) -> tuple[SQCodec, dict[str, Any]]:
    """Train an :class:`SQCodec` on random log-mel crops of ``items`` (``{"mel": [f, n_mels]}``).

    Loss on normalised mels: L1 + ``mse_weight`` * MSE. AdamW with warm-up and cosine decay; stops after ``steps``
    or ``max_seconds``. Utterances shorter than the crop are zero-padded (masked out of the loss).
    """
    from ditkit_audio.wavtools import _cosine

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = SQCodec(**{k: settings[k] for k in MEL_KEYS}, **model_kw)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = _cosine(opt, steps, warmup)
    print(
        f"[codec] {sum(p.numel() for p in model.parameters())} parameters, {model.bitrate:.0f} bit/s "
        f"({model.latent_dim} x {model.frame_rate:g} Hz x {model.quantizer.levels} levels)",
        flush=True,
    )
    t0, hist = time.perf_counter(), []
    model.train()
    for step in range(steps):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            print(f"[codec] stopping at step {step}: max_seconds={max_seconds} reached", flush=True)
            break
        mel = torch.zeros(batch_size, segment_frames, settings["n_mels"])
        mask = torch.zeros(batch_size, segment_frames, dtype=torch.bool)
        for b in range(batch_size):
            it = items[int(torch.randint(len(items), (1,), generator=g))]
            f = it["mel"].shape[0]
            k = int(torch.randint(max(1, f - segment_frames + 1), (1,), generator=g))
            crop = it["mel"][k : k + segment_frames].float()
            mel[b, : crop.shape[0]], mask[b, : crop.shape[0]] = crop, True
        rec, _ = model(mel, mask)
        err = ((rec - mel) / settings["mel_std"])[mask]
        l1, mse = err.abs().mean(), err.pow(2).mean()
        loss = l1 + mse_weight * mse
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        hist.append(l1.item())
        if log_every and step % log_every == 0:
            print(
                f"[codec] step {step} l1 {l1.item():.4f} mse {mse.item():.4f} ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    n = min(50, len(hist))
    log = {
        "steps": len(hist),
        "seconds": round(time.perf_counter() - t0, 1),
        "batch_size": batch_size,
        "segment_frames": segment_frames,
        "l1_norm_first": round(sum(hist[:n]) / n, 4),
        "l1_norm_last": round(sum(hist[-n:]) / n, 4),
    }
    return model.eval(), log


@torch.no_grad()
def evaluate_codec(
    codec: SQCodec, items: list[dict], *, vocoder: Any = None, probe: Any = None, text: Any = None, gl_iters: int = 32
) -> dict[str, Any]:
    """Held-out reconstruction figures of the codec.

    Mel domain: L1 (natural-log units) and MCD of the decoded mel vs the input mel, probe CER / WER on the decoded
    mel. Waveform domain (codec -> vocoder, and the vocoder alone on the input mel as the reference): mel L1 / MCD of
    the re-analysed waveform, SI-SNR vs the original waveform, probe CER / WER. Plus frame rate, bitrate at the fixed
    grid and the empirical entropy bitrate of the latent symbols.
    """
    from ditkit_audio.audio import LogMel
    from ditkit_audio.metrics import error_rate
    from ditkit_audio.wavtools import audio_report, mcd_aligned, mel_l1

    s = codec.mel_settings
    mels = [it["mel"].float() for it in items]
    lat = [codec.encode(m[None])[0] for m in mels]
    rec = [codec.decode(z[None])[0] for z in lat]
    sym = torch.cat([codec.quantizer.indices(z) for z in lat])  # [N, latent_dim]
    ent = 0.0
    for d in range(sym.shape[1]):
        p = torch.bincount(sym[:, d], minlength=codec.quantizer.levels).double() / sym.shape[0]
        ent += float(-(p[p > 0] * p[p > 0].log2()).sum())
    on_grid = all(bool((z * codec.scale - torch.round(z * codec.scale)).abs().max() < 1e-5) for z in lat)
    out: dict[str, Any] = {
        "figure": "tts_codec",
        "utterances": len(items),
        "frame_rate_hz": codec.frame_rate,
        "latent_dim": codec.latent_dim,
        "levels": codec.quantizer.levels,
        "bitrate_bps": round(codec.bitrate, 1),
        "entropy_bitrate_bps": round(ent * codec.frame_rate, 1),
        "latent_on_grid": on_grid,
        "mel_l1": round(sum(mel_l1(r, m) for r, m in zip(rec, mels)) / len(mels), 4),
        "mel_mcd_db": round(sum(mcd_aligned(m, r) for r, m in zip(rec, mels)) / len(mels), 4),
    }
    texts = [it["text"] for it in items]
    if probe is not None:
        for name, ms in (("ground_truth", mels), ("codec_mel", rec)):
            hyps = probe.transcribe(ms, text)
            out[f"{name}_cer"] = round(error_rate(texts, hyps), 4)
            out[f"{name}_wer"] = round(error_rate(texts, hyps, "word"), 4)
    lm = LogMel(s["sample_rate"], s["n_fft"], s["hop"], s["n_mels"], gl_iters=gl_iters)
    vocode = vocoder.vocode if vocoder is not None else lm.invert
    out["vocoder"] = "neural" if vocoder is not None else f"griffinlim{gl_iters}"
    out.update(audio_report("codec_wav", items, [vocode(r) for r in rec], mels, lm, probe, text))
    out.update(audio_report("vocoder_only_wav", items, [vocode(m) for m in mels], mels, lm, probe, text))
    return out


# ---------------------------------------------------------------------- tokenizer
class CodecTokenizer(MelTokenizer):
    """Speech tokens = SQ-codec latents ``[b, f, latent_dim]`` on the quantiser grid (one per mel frame).

    Same interface as :class:`~ditkit_audio.tokenizer.MelTokenizer` (the mel settings are the codec's), with
    ``normalize`` / ``denormalize`` being the codec's encoder / decoder, so the TTS module, its data and its inference
    run unchanged on codec tokens; ``token_dim`` is ``latent_dim``. The codec (and the optional vocoder) are frozen
    and not part of the TTS module's parameters or checkpoint: they are reloaded from their directories.

    Args:
        codec: directory of a trained codec (``make train-codec``).
        vocoder: optional directory of a trained vocoder (``make train-vocoder``) used by :meth:`to_wav`; Griffin-Lim
            when None.
        text_kind: ``chars`` or ``phonemes``.
        gl_iters: Griffin-Lim iterations when there is no vocoder.
        quantize_output: round generated latents to the grid before decoding (SimpleSpeech does).
    """

    def __init__(
        self,
        codec: str = "outputs/tts/codec",
        vocoder: str | None = None,
        text_kind: str = "chars",
        gl_iters: int = 32,
        quantize_output: bool = True,
    ):
        model = load_codec(codec)
        for p in model.parameters():
            p.requires_grad_(False)
        s = model.mel_settings
        super().__init__(**s, text_kind=text_kind, gl_iters=gl_iters)
        self.codec, self.vocoder, self.quantize_output = str(codec), vocoder, quantize_output
        self.model = model
        self.token_dim = model.latent_dim
        self._vocoder = None
        if vocoder:
            from ditkit_audio.vocoder import load_vocoder

            self._vocoder = load_vocoder(vocoder)
            self._vocoder.check_compatible(s, f"the codec in {codec}")

    @property
    def bitrate(self) -> float:
        return self.model.bitrate

    def _on(self, x: Tensor) -> SQCodec:
        if next(self.model.parameters()).device != x.device:
            self.model.to(x.device)
        return self.model

    @torch.no_grad()
    def normalize(self, mel: Tensor, mask: Tensor | None = None) -> Tensor:
        """Log-mel ``[f, n_mels]`` or ``[b, f, n_mels]`` -> latent ``[..., f, latent_dim]`` on the grid."""
        squeeze = mel.dim() == 2
        z = self._on(mel).encode(mel[None] if squeeze else mel, mask)
        return z[0] if squeeze else z

    @torch.no_grad()
    def denormalize(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Latent ``[f, latent_dim]`` or ``[b, f, latent_dim]`` -> log-mel ``[..., f, n_mels]``."""
        squeeze = x.dim() == 2
        m = self._on(x).decode(x[None] if squeeze else x, mask, quantize=self.quantize_output)
        return m[0] if squeeze else m

    def encode(self, raw: dict[str, Any]) -> TokenBatch:
        """``{"mel": [b, f, n_mels], "mask": [b, f], ...}`` (a TTS DataModule batch) or ``{"wav": [b, s] or list of
        [s_i], ...}`` -> latent tokens ``[b, f, latent_dim]`` (0 on padding) with the text fields in ``meta``."""
        if "mel" not in raw and "wav" in raw:
            raw = {**raw, **self._wav_batch(raw["wav"])}
        if "mel" not in raw:
            raise KeyError(f"CodecTokenizer.encode: batch needs key 'mel' (or 'wav'), got keys {sorted(raw)}")
        return super().encode(raw)

    def _wav_batch(self, wav: Tensor | list[Tensor]) -> dict[str, Tensor]:
        wavs = list(wav) if isinstance(wav, (list, tuple)) or wav.dim() == 2 else None
        if wavs is None:
            raise ValueError(f"CodecTokenizer.encode: 'wav' must be [b, s] or a list of [s], got {tuple(wav.shape)}")
        mels = [self.features(w) for w in wavs]
        f = max(m.shape[0] for m in mels)
        mel = torch.zeros(len(mels), f, self.n_mels)
        mask = torch.zeros(len(mels), f, dtype=torch.bool)
        for i, m in enumerate(mels):
            mel[i, : m.shape[0]], mask[i, : m.shape[0]] = m, True
        return {"mel": mel, "mask": mask}

    def features(self, wav: Tensor) -> Tensor:
        """Mono waveform ``[s]`` at ``sample_rate`` -> log-mel ``[f, n_mels]``."""
        if wav.dim() != 1:
            raise ValueError(
                f"CodecTokenizer: waveform must be mono [s] at {self.sample_rate} Hz, got "
                f"{tuple(wav.shape)} (downmix with read_wav(..., stereo='mix'))"
            )
        return super().features(wav)

    def encode_wav(self, wav: Tensor, sample_rate: int | None = None) -> Tensor:
        """Mono waveform ``[s]`` -> latent ``[s // hop + 1, latent_dim]``; ``sample_rate`` (if given) must match."""
        if sample_rate is not None and sample_rate != self.sample_rate:
            raise ValueError(
                f"CodecTokenizer.encode_wav: waveform at {sample_rate} Hz, the codec expects "
                f"{self.sample_rate} Hz (resample with ditkit_audio.audio.resample_wav)"
            )
        return self.normalize(self.features(wav))

    def decode_wav(self, latent: Tensor) -> Tensor:
        """Latent ``[f, latent_dim]`` -> waveform ``[(f - 1) * hop]`` (codec decoder, then :meth:`to_wav`)."""
        if latent.dim() != 2 or latent.shape[-1] != self.token_dim:
            raise ValueError(
                f"CodecTokenizer.decode_wav: latent must be [f, {self.token_dim}], got {tuple(latent.shape)}"
            )
        return self.to_wav(self.denormalize(latent))

    def to_wav(self, mel: Tensor, n_iter: int | None = None) -> Tensor:
        """Log-mel ``[f, n_mels]`` -> waveform: the neural vocoder if one is set, else Griffin-Lim."""
        if self._vocoder is not None and n_iter is None:
            return self._vocoder.vocode(mel)
        return super().to_wav(mel, n_iter)


# ---------------------------------------------------------------------- command
def _split(cfg: dict[str, Any]) -> tuple[list[dict], list[dict], dict[str, Any]]:
    from ditkit_audio.wavtools import load_wav_split

    return load_wav_split(
        cfg.get("tts_config", "apps/tts/configs/default.yaml"),
        root=cfg.get("data"),
        val_size=int(cfg.get("val_size", 64)),
        seed=int(cfg.get("seed", 0)),
    )


def _evaluate(
    model: SQCodec, val: list[dict], cfg: dict[str, Any], vocoder: str | None, eval_n: int | None
) -> dict[str, Any]:
    from pathlib import Path

    from ditkit_audio.vocoder import load_vocoder

    voc_dir = vocoder or cfg.get("vocoder")
    voc = load_vocoder(voc_dir) if voc_dir and (Path(voc_dir) / "config.json").exists() else None
    if voc is not None:
        voc.check_compatible(model.mel_settings, "this codec's mel settings")
    probe = text = None
    asr = cfg.get("asr")
    if asr and (Path(asr) / "config.json").exists():
        from ditkit_audio.asr import load_probe
        from ditkit_audio.text import TextTokenizer

        probe, text = load_probe(asr), TextTokenizer(cfg.get("text_kind", "chars"))
    res = evaluate_codec(model, val[: int(eval_n or cfg.get("eval_n", 64))], vocoder=voc, probe=probe, text=text)
    res["vocoder_dir"] = str(voc_dir) if voc is not None else None
    res["asr_probe"] = str(asr) if probe is not None else None
    return res


def train_from_config(
    config: Any,
    *,
    steps: int | None = None,
    out: str | None = None,
    max_seconds: float | None = None,
    eval_n: int | None = None,
    vocoder: str | None = None,
) -> dict[str, Any]:
    """``make train-codec``: read ``config`` (``apps/tts/configs/sqcodec.yaml``), train on the corpus' training split,
    save to ``out`` and write held-out figures (through the neural vocoder when ``vocoder`` / the config's
    ``vocoder`` directory exists, else Griffin-Lim) to ``out/report.json``; returns the report."""
    from ditkit_audio.wavtools import load_yaml

    cfg = load_yaml(config)
    torch.set_num_threads(int(cfg.get("threads", 1)))
    train_kw = dict(cfg.get("train") or {})
    if steps is not None:
        train_kw["steps"] = steps
    if max_seconds is not None:
        train_kw["max_seconds"] = max_seconds
    out = out or cfg.get("out", "outputs/tts/codec")
    tr, va, settings = _split(cfg)
    print(f"[codec] mel settings {settings}", flush=True)
    model, log = train_codec(tr, settings, **train_kw, **(cfg.get("model") or {}))
    save_codec(model, out)
    report = {"config": str(config), "train": log, **_evaluate(model, va, cfg, vocoder, eval_n)}
    save_codec(model, out, report)
    return report


def evaluate_from_config(
    config: Any, *, codec: str | None = None, vocoder: str | None = None, eval_n: int | None = None
) -> dict[str, Any]:
    """``make eval-codec``: held-out figures of a trained codec (``codec`` or the config's ``out``), e.g. again after
    the vocoder is trained; updates ``<codec>/report.json`` (keeping its training log)."""
    from pathlib import Path

    from ditkit_audio.wavtools import load_yaml, read_json, write_json

    cfg = load_yaml(config)
    torch.set_num_threads(int(cfg.get("threads", 1)))
    d = Path(codec or cfg.get("out", "outputs/tts/codec"))
    model = load_codec(d)
    _, va, _ = _split(cfg)
    res = _evaluate(model, va, cfg, vocoder, eval_n)
    old = read_json(d / "report.json", max_bytes=1 << 26) if (d / "report.json").exists() else {}
    report = {"config": str(config), "train": old.get("train") if isinstance(old, dict) else None, **res}
    write_json(d / "report.json", report)
    return report
