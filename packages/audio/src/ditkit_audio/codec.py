"""A learned scalar-quantised latent codec (SimpleSpeech-style SQ-codec) and the audio tokenizer built on it.

Design (SimpleSpeech's SQ-codec works on the waveform; this one works on log-mel frames and is decoded to a waveform
through the neural vocoder of :mod:`ditkit_audio.vocoder`, or Griffin-Lim when none is given): an encoder (conv
embedding + ConvNeXt blocks + linear to ``latent_dim``) maps each normalised log-mel frame to ``tanh`` values in
(-1, 1); the scalar quantiser rounds them to the fixed grid ``{-1, -(S-1)/S, ..., 0, ..., 1}`` (``2 S + 1`` levels,
``S = scale``) with a straight-through estimator; a mirror-image decoder maps the grid values back to log-mel frames.
There is no codebook and no commitment loss: training (:class:`CodecModule`, ``make train-codec`` or
``ditkit fit --config apps/tts/configs/sqcodec.yaml``) is plain mel L1 + MSE on random crops.

Why mel rather than waveform: a waveform autoencoder has to learn phase as well and needs far more than the CPU
budget here (minutes on one core) to sound clean, while the mel autoencoder converges in minutes and the phase is left
to the vocoder that the mel path needs anyway. The latent keeps the mel frame rate (``sample_rate / hop`` = 40 Hz),
so the TTS module's durations, masks and infilling spans work on codec tokens unchanged.

``CodecTokenizer`` exposes the codec behind the core Tokenizer protocol: ``encode`` (a DataModule batch of mels, or
``{"wav": ...}`` waveforms) -> latent tokens ``[b, f, latent_dim]`` on the grid; ``decode`` -> mels; ``encode_wav`` /
``decode_wav`` for single waveforms. Set it as ``model.init_args.tokenizer`` of a TTS config
(``apps/tts/configs/codec.yaml``) to train the DiT on codec tokens. It states its latent width and mel settings, so a
TTS module is built from the config alone; the codec weights are read at first use (a missing codec names
``make train-codec``) and checked against what the tokenizer states.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ditkit_audio.melfit import MelModelModule, fit, trained_probe
from ditkit_audio.tokenizer import MelTokenizer
from ditkit_audio.vocoder import Backbone
from ditkit_audio.wavtools import MEL_KEYS, MelModule, check_mel_settings, load_model, save_model
from ditkit_core.lightning import OptimConfig
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
    """The codec in the core's pretrained format (``config.json`` + ``model.safetensors``), written atomically."""
    return save_model(model, directory, report)


def load_codec(directory: Any) -> SQCodec:
    """A trained :class:`SQCodec` from a directory written by :func:`save_codec` (``make train-codec``)."""
    return load_model(directory, SQCodec, "train-codec")


# ---------------------------------------------------------------------- training / evaluation
CODEC_OPTIM = OptimConfig(lr=2e-3, weight_decay=0.01, betas=(0.9, 0.999), warmup_steps=100, min_lr_ratio=0.05)
"""Optimiser defaults of :class:`CodecModule`."""


class CodecModule(MelModelModule):
    """Trains an :class:`SQCodec` (``ditkit fit --config apps/tts/configs/sqcodec.yaml``) on padded log-mel crops
    (:class:`~ditkit_audio.melfit.MelCropDataModule` with ``crop: padded``): L1 + ``mse_weight`` x MSE of the
    reconstruction on normalised mels (padding masked out); AdamW, warm-up then cosine decay; gradient clipping from
    the trainer. At the end of fitting the codec and its held-out figures (through the neural vocoder of ``vocoder``
    when trained, else Griffin-Lim) go to ``trainer.default_root_dir``.

    Args:
        sample_rate, n_fft, hop, n_mels, mel_mean, mel_std: the mel settings (those of the TTS tokenizer; checked
            against the data's TTS config at fit start).
        latent_dim, scale, dim, intermediate, layers: the codec (see :class:`SQCodec`).
        mse_weight: weight of the MSE term.
        vocoder: vocoder folder for the waveform figures (Griffin-Lim when it is not trained).
        optim: AdamW settings (default :data:`CODEC_OPTIM`: lr 2e-3, weight decay 0.01, betas 0.9 / 0.999, 100
            warm-up steps, cosine to 5 %).
        export, asr, eval_n, log_every: see :class:`~ditkit_audio.melfit.MelModelModule`.
    """

    tag = "codec"

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
        mse_weight: float = 1.0,
        vocoder: str | None = None,
        optim: OptimConfig | None = None,
        export: bool = True,
        asr: str | None = None,
        eval_n: int = 64,
        log_every: int = 250,
    ):
        super().__init__(optim, CODEC_OPTIM, export, asr, eval_n, log_every)
        self.codec = SQCodec(
            sample_rate,
            n_fft,
            hop,
            n_mels,
            mel_mean,
            mel_std,
            latent_dim=latent_dim,
            scale=scale,
            dim=dim,
            intermediate=intermediate,
            layers=layers,
        )
        self.mse_weight, self.vocoder = float(mse_weight), vocoder

    @property
    def net(self) -> SQCodec:
        return self.codec

    def on_fit_start(self) -> None:
        super().on_fit_start()
        c = self.codec
        print(
            f"[codec] {c.bitrate:.0f} bit/s ({c.latent_dim} x {c.frame_rate:g} Hz x {c.quantizer.levels} levels)",
            flush=True,
        )

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Crops ``{"mel": [b, f, n_mels], "mask": [b, f]}`` -> ``loss``, ``l1_norm``, ``mse_norm``."""
        mel, mask = batch["mel"], batch["mask"]
        rec, _ = self.codec(mel, mask)
        err = ((rec - mel) / self.codec.mel_std)[mask]
        l1, mse = err.abs().mean(), err.pow(2).mean()
        return {"loss": l1 + self.mse_weight * mse, "l1_norm": l1, "mse_norm": mse}

    def evaluate(self, items: list[dict]) -> dict[str, Any]:
        return codec_report(self.codec, items, self.vocoder, self.asr)


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
    """Train an :class:`SQCodec` on random log-mel crops of ``items`` (``{"mel": [f, n_mels]}``) with
    :class:`CodecModule` in one process (weights from ``torch.manual_seed(seed)``, crops from ``seed``); stops after
    ``steps`` or ``max_seconds``; writes nothing. Utterances shorter than the crop are zero-padded (masked out of the
    loss).

    Returns:
        the model (eval mode) and a log ``{"steps", "seconds", "l1_norm_first", "l1_norm_last", ...}``.
    """
    torch.manual_seed(seed)
    module = CodecModule(
        **{k: settings[k] for k in MEL_KEYS},
        **model_kw,
        mse_weight=mse_weight,
        optim=dataclasses.replace(CODEC_OPTIM, lr=lr, warmup_steps=warmup),
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
        crop="padded",
        hop=settings["hop"],
        max_seconds=max_seconds,
    )
    return module.codec.eval(), module.train_log()


def codec_report(codec: SQCodec, items: list[dict], vocoder: str | None, asr: str | None) -> dict[str, Any]:
    """:func:`evaluate_codec` through the vocoder of ``vocoder`` (when trained; checked against the codec's mel
    settings) and the probe of ``asr`` (when trained), naming both in the result."""
    from ditkit_audio.vocoder import load_vocoder

    voc = load_vocoder(vocoder) if vocoder and (Path(vocoder) / "config.json").exists() else None
    if voc is not None:
        voc.check_compatible(codec.mel_settings, "this codec's mel settings")
    probe, text = trained_probe(asr)
    res = evaluate_codec(codec, items, vocoder=voc, probe=probe, text=text)
    res["vocoder_dir"] = str(vocoder) if voc is not None else None
    res["asr_probe"] = str(asr) if probe is not None else None
    return res


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

    Same interface as :class:`~ditkit_audio.tokenizer.MelTokenizer`, with ``normalize`` / ``denormalize`` being the
    codec's encoder / decoder, so the TTS module, its data and its inference run unchanged on codec tokens;
    ``token_dim`` is the stated ``latent_dim``. The codec (and the optional vocoder) are frozen and not part of the TTS
    module's parameters or checkpoint: they are read from their directories at first use (so a TTS module and its
    config build without them) and checked against the latent width and mel settings stated here.

    Args:
        codec: directory of a trained codec (``make train-codec``).
        vocoder: optional directory of a trained vocoder (``make train-vocoder``) used by :meth:`to_wav`; Griffin-Lim
            when None.
        latent_dim: the codec's values per frame (the token width).
        sample_rate, n_fft, hop, n_mels: the codec's mel settings.
        text_kind: ``chars`` or ``phonemes``.
        gl_iters: Griffin-Lim iterations when there is no vocoder.
        quantize_output: round generated latents to the grid before decoding (SimpleSpeech does).
    """

    def __init__(
        self,
        codec: str = "outputs/tts/codec",
        vocoder: str | None = None,
        latent_dim: int = 16,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        text_kind: str = "chars",
        gl_iters: int = 32,
        quantize_output: bool = True,
    ):
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"CodecTokenizer.latent_dim={latent_dim!r}: must be an integer >= 1")
        super().__init__(sample_rate, n_fft, hop, n_mels, text_kind=text_kind, gl_iters=gl_iters)
        self.codec, self.vocoder, self.quantize_output = str(codec), vocoder, quantize_output
        self.latent_dim = self.token_dim = latent_dim
        self._codec: SQCodec | None = None
        self._vocoder: Any = None

    @property
    def codec_model(self) -> SQCodec:
        """The frozen codec, read from :attr:`codec` at first use and checked against the stated latent width and
        mel settings (``ModelNotFoundError`` naming ``make train-codec`` when it is not trained)."""
        if self._codec is None:
            model = load_codec(self.codec)
            check_mel_settings(model.mel_settings, self, f"SQCodec in {self.codec}", "this CodecTokenizer")
            if model.latent_dim != self.latent_dim:
                raise ValueError(
                    f"CodecTokenizer.latent_dim={self.latent_dim}: the codec in {self.codec} has latent_dim="
                    f"{model.latent_dim} (state its real width)"
                )
            for p in model.parameters():
                p.requires_grad_(False)
            self._codec = model
        return self._codec

    @property
    def vocoder_model(self) -> Any:
        """The frozen neural vocoder of :attr:`vocoder` (None: Griffin-Lim), read at first use and checked against
        the mel settings."""
        if self._vocoder is None and self.vocoder:
            from ditkit_audio.vocoder import load_vocoder

            voc = load_vocoder(self.vocoder)
            voc.check_compatible(self, f"the codec tokens of {self.codec}")
            self._vocoder = voc
        return self._vocoder

    @property
    def bitrate(self) -> float:
        return self.codec_model.bitrate

    def _on(self, x: Tensor) -> SQCodec:
        model = self.codec_model
        if next(model.parameters()).device != x.device:
            model.to(x.device)
        return model

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
        if self.vocoder and n_iter is None:
            return self.vocoder_model.vocode(mel)
        return super().to_wav(mel, n_iter)


# ---------------------------------------------------------------------- command
def evaluate_from_config(
    config: Any, *, codec: str | None = None, vocoder: str | None = None, eval_n: int | None = None
) -> dict[str, Any]:
    """``make eval-codec``: held-out figures of a trained codec (``codec`` or the config's run folder,
    ``trainer.default_root_dir``), e.g. again after the vocoder is trained; the data, vocoder, probe and
    ``eval_n`` come from the config (``apps/tts/configs/sqcodec.yaml``). Updates ``<codec>/report.json`` (keeping
    its training log)."""
    from ditkit_audio.melfit import MelCropDataModule
    from ditkit_audio.wavtools import read_json, write_json
    from ditkit_core.errors import DataError
    from ditkit_core.lightning import read_config, run_dir

    cfg = read_config(config)
    args = {}
    for part in ("model", "data"):
        section = cfg.get(part)
        init = section.get("init_args") if isinstance(section, dict) else None
        if not isinstance(init, dict):
            raise DataError("expected a mapping", path=config, field=f"{part}.init_args")
        args[part] = init
    d = Path(codec or run_dir(config))
    model = load_codec(d)
    dm = MelCropDataModule(**args["data"])
    dm.setup()
    n = int(eval_n or args["model"].get("eval_n", 64))
    res = codec_report(model, dm.val_items[:n], vocoder or args["model"].get("vocoder"), args["model"].get("asr"))
    old = read_json(d / "report.json", max_bytes=1 << 26) if (d / "report.json").exists() else {}
    report = {"config": str(config), "train": old.get("train") if isinstance(old, dict) else None, **res}
    write_json(d / "report.json", report)
    return report
