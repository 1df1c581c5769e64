"""Shared by the neural vocoder (:mod:`ditkit_audio.vocoder`) and the SQ-codec (:mod:`ditkit_audio.codec`): mel
settings read from a TTS config, save / load of small models (``config.json`` + ``model.safetensors``), the
train / held-out split of a corpus with its waveforms (cached), aligned (log-mel, waveform) crops, and waveform metrics
(SI-SNR, log-mel L1, frame-aligned MCD)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

MEL_KEYS = ("sample_rate", "n_fft", "hop", "n_mels", "mel_mean", "mel_std")
MEL_DEFAULTS = {"sample_rate": 16000, "n_fft": 1024, "hop": 400, "n_mels": 64, "mel_mean": -5.5, "mel_std": 2.5}


class MelModule(nn.Module):
    """Base of the small mel models (vocoder, codec): holds the mel settings they are trained on (``MEL_KEYS``)."""

    def set_mel_settings(
        self, sample_rate: int, n_fft: int, hop: int, n_mels: int, mel_mean: float, mel_std: float
    ) -> None:
        if mel_std <= 0:
            raise ValueError(f"{type(self).__name__}.mel_std={mel_std}: must be > 0")
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.mel_mean, self.mel_std = mel_mean, mel_std

    @property
    def mel_settings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in MEL_KEYS}


# ---------------------------------------------------------------------- settings
def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    return yaml.safe_load(p.read_text()) or {}


def mel_settings_from_config(tts_config: str | Path) -> dict[str, Any]:
    """Mel settings of a TTS LightningCLI config (``model.init_args.tokenizer.init_args``; missing keys take the
    :class:`~ditkit_audio.tokenizer.MelTokenizer` defaults) plus its ``text_kind`` and data settings under ``data``.
    """
    cfg = load_yaml(tts_config)
    try:
        tok = cfg["model"]["init_args"]["tokenizer"]
    except (KeyError, TypeError):
        raise ValueError(f"{tts_config}: no model.init_args.tokenizer (expected a TTS config)") from None
    args = dict(tok.get("init_args") or {})
    out = {k: args.get(k, v) for k, v in MEL_DEFAULTS.items()}
    out["text_kind"] = args.get("text_kind", "chars")
    out["data"] = dict((cfg.get("data") or {}).get("init_args") or {})
    return out


def check_mel_settings(expected: dict[str, Any], got: Any, who: str, what: str) -> None:
    """Raise ``ValueError`` naming every mel setting of ``got`` (object or dict) that differs from ``expected``."""
    bad = []
    for k in ("sample_rate", "n_fft", "hop", "n_mels"):
        v = got.get(k) if isinstance(got, dict) else getattr(got, k, None)
        if v is not None and v != expected[k]:
            bad.append(f"{k}={v} (trained with {expected[k]})")
    if bad:
        raise ValueError(f"{who} cannot be used with {what}: " + ", ".join(bad))


# ---------------------------------------------------------------------- save / load
def save_model(model: nn.Module, directory: str | Path, report: dict[str, Any] | None = None) -> Path:
    """``config.json`` (``{"class": ..., "config": get_config()}``) + ``model.safetensors`` (+ ``report.json``)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.json").write_text(json.dumps({"class": type(model).__name__, "config": model.get_config()}, indent=1))
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(d / "model.safetensors"))
    if report is not None:
        (d / "report.json").write_text(json.dumps(report, indent=1))
    return d


def load_model(directory: str | Path, cls: type, make: str) -> Any:
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "config.json").exists() or not (d / "model.safetensors").exists():
        raise FileNotFoundError(f"{d}: no config.json + model.safetensors here (run `make {make}` first)")
    blob = json.loads((d / "config.json").read_text())
    if blob.get("class") != cls.__name__:
        raise ValueError(f"{d}: holds a {blob.get('class')!r}, not a {cls.__name__}")
    model = cls(**blob["config"])
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    return model.eval()


# ---------------------------------------------------------------------- metrics
def si_snr(est: Tensor, ref: Tensor, eps: float = 1e-8) -> float:
    """Scale-invariant signal-to-noise ratio (dB) of ``est`` vs ``ref`` (``[s]``, cut to the shorter, zero-mean)."""
    n = min(est.shape[-1], ref.shape[-1])
    e, r = est[..., :n].double(), ref[..., :n].double()
    e, r = e - e.mean(), r - r.mean()
    proj = (e * r).sum() / (r.pow(2).sum() + eps) * r
    noise = e - proj
    return float(10 * torch.log10(proj.pow(2).sum().clamp_min(eps) / noise.pow(2).sum().clamp_min(eps)))


def mel_l1(a: Tensor, b: Tensor) -> float:
    """Mean absolute difference of two natural-log mels ``[f, n_mels]`` over their common frames."""
    n = min(a.shape[0], b.shape[0])
    return float((a[:n].float() - b[:n].float()).abs().mean())


def mcd_aligned(a: Tensor, b: Tensor, n_coeffs: int = 24) -> float:
    """Frame-by-frame mel-cepstral distortion (dB) of two log-mels on the same frames (no DTW)."""
    from ditkit_audio.metrics import mel_cepstrum

    n = min(a.shape[0], b.shape[0])
    ca, cb = mel_cepstrum(a[:n].float(), n_coeffs), mel_cepstrum(b[:n].float(), n_coeffs)
    return float(10.0 / math.log(10.0) * math.sqrt(2.0) * (ca - cb).double().norm(dim=-1).mean())


def audio_report(
    name: str,
    items: list[dict[str, Any]],
    wavs: list[Tensor],
    mels_in: list[Tensor],
    features: Any,
    probe: Any = None,
    text: Any = None,
) -> dict[str, Any]:
    """Mean mel L1 / MCD (frame-aligned and DTW) of ``features(wav)`` vs the reference log-mels, SI-SNR vs the
    reference waveforms, and the probe's CER / WER on ``features(wav)``, as ``{f"{name}_...": value}``."""
    from ditkit_audio.metrics import error_rate, mcd_dtw

    mels = [features(w) for w in wavs]
    out = {
        f"{name}_mel_l1": sum(mel_l1(m, g) for m, g in zip(mels, mels_in)) / len(mels),
        f"{name}_mcd_db": sum(mcd_aligned(g, m) for m, g in zip(mels, mels_in)) / len(mels),
        f"{name}_mcd_dtw_db": sum(mcd_dtw(g, m) for m, g in zip(mels, mels_in)) / len(mels),
        f"{name}_si_snr_db": sum(si_snr(w, it["wav"]) for w, it in zip(wavs, items)) / len(wavs),
    }
    if probe is not None:
        texts = [it["text"] for it in items]
        hyps = probe.transcribe(mels, text)
        out[f"{name}_cer"] = error_rate(texts, hyps)
        out[f"{name}_wer"] = error_rate(texts, hyps, "word")
    return {k: round(v, 4) for k, v in out.items()}


# ---------------------------------------------------------------------- data
def _wav_int16(wav: Tensor) -> Tensor:
    return (wav.clamp(-1, 1) * 32767).round().to(torch.int16)


def load_wav_split(
    tts_config: str | Path = "apps/tts/configs/default.yaml",
    *,
    root: str | None = None,
    val_size: int = 64,
    seed: int = 0,
    cache: bool = True,
) -> tuple[list[dict], list[dict], dict]:
    """The train / held-out split of a TTS config's corpus with waveforms.

    The split is the one of :class:`~ditkit_audio.data.TTSDataModule` with the config's mel and text settings,
    ``val_size`` and ``seed`` (``make eval-tts`` uses 64 / 0, so held-out sentences are never trained on). Each item is
    ``{"mel": [f, n_mels] float16, "wav": [s] float32 (loudness-normalised, at sample_rate), "text", "path"}`` with
    ``f == s // hop + 1``; waveforms are cached as int16 in ``<root>/.ditkit_cache/``.

    Returns:
        ``(train_items, val_items, mel_settings)``.
    """
    from ditkit_audio.audio import normalize_loudness, read_wav
    from ditkit_audio.data import TTSDataModule

    s = mel_settings_from_config(tts_config)
    data = s.pop("data")
    root = root or data.get("root", "outputs/tts/data")
    if not (Path(root) / "metadata.csv").exists() and not any(Path(root).rglob("*.wav")):
        raise FileNotFoundError(f"load_wav_split: no corpus in {root} (run `make data-tts`)")
    kw = {k: data[k] for k in ("layout", "min_seconds", "max_seconds", "loudness_db") if k in data}
    dm = TTSDataModule(
        root,
        sample_rate=s["sample_rate"],
        n_fft=s["n_fft"],
        hop=s["hop"],
        n_mels=s["n_mels"],
        text_kind=s["text_kind"],
        val_size=val_size,
        seed=seed,
        **kw,
    )
    dm.setup()
    loud = dm.loudness_db
    all_items = list(dm.train.items) + list(dm.val.items)
    key = json.dumps([[it["path"], Path(it["path"]).stat().st_mtime_ns] for it in all_items] + [s["sample_rate"], loud])
    path = Path(root) / ".ditkit_cache" / f"wavs_{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"
    if cache and path.exists():
        wavs = torch.load(path, weights_only=True)
    else:
        t0 = time.perf_counter()
        wavs = {}
        for it in all_items:
            w = read_wav(it["path"], sample_rate=s["sample_rate"])
            wavs[it["path"]] = _wav_int16(normalize_loudness(w, loud) if loud is not None else w)
        print(f"[wavs] read {len(wavs)} waveforms ({time.perf_counter() - t0:.0f} s)", flush=True)
        if cache:
            path.parent.mkdir(exist_ok=True)
            torch.save(wavs, path)

    def attach(items: list[dict]) -> list[dict]:
        out = []
        for it in items:
            w = wavs[it["path"]].float() / 32767
            if w.shape[0] // s["hop"] + 1 != it["mel"].shape[0]:
                raise ValueError(
                    f"load_wav_split: {it['path']}: {w.shape[0]} samples do not give "
                    f"{it['mel'].shape[0]} frames at hop {s['hop']} (stale cache? delete "
                    f"{path.parent})"
                )
            out.append({**it, "wav": w})
        return out

    return attach(dm.train.items), attach(dm.val.items), s


def random_segments(
    items: list[dict], batch_size: int, frames: int, hop: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """A batch of aligned random crops: log-mel ``[b, frames, n_mels]`` and waveform ``[b, (frames - 1) * hop]``
    (sample 0 of the crop is the centre of its first frame). Items shorter than ``frames`` are never drawn."""
    mels, wavs = [], []
    while len(mels) < batch_size:
        it = items[int(torch.randint(len(items), (1,), generator=generator))]
        f = it["mel"].shape[0]
        if f < frames:
            continue
        k = int(torch.randint(f - frames + 1, (1,), generator=generator))
        mels.append(it["mel"][k : k + frames].float())
        wavs.append(it["wav"][k * hop : (k + frames - 1) * hop])
    return torch.stack(mels), torch.stack(wavs)


# ---------------------------------------------------------------------- training helpers
def _cosine(opt: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(opt, f)
