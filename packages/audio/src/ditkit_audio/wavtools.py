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
from torchmetrics.functional.audio import scale_invariant_signal_noise_ratio

from ditkit_audio.corpus import read_cache, write_cache
from ditkit_core.errors import DataError, atomic_save, atomic_write, naming_file, read_text

MEL_KEYS = ("sample_rate", "n_fft", "hop", "n_mels", "mel_mean", "mel_std")
MEL_DEFAULTS = {"sample_rate": 16000, "n_fft": 1024, "hop": 400, "n_mels": 64, "mel_mean": -5.5, "mel_std": 2.5}
CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"
MAX_CONFIG_INT = 1 << 20
"""Largest integer a model ``config.json`` may hold (widths, rates); layer counts are also bounded by the number of
tensors in the weights file. Beyond this a hostile config would allocate or build without end."""


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
    """A YAML config (``yaml.safe_load``: no code runs); a parse error is a DataError naming the file."""
    import yaml

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    text = read_text(p, max_bytes=1 << 24)
    with naming_file(p, "not valid YAML"):
        cfg = yaml.safe_load(text) or {}
    if not isinstance(cfg, dict):
        raise DataError(f"expected a mapping at the top, got {type(cfg).__name__}", path=p)
    return cfg


def mel_settings_from_config(tts_config: str | Path) -> dict[str, Any]:
    """Mel settings of a TTS LightningCLI config (``model.init_args.tokenizer.init_args``; missing keys take the
    :class:`~ditkit_audio.tokenizer.MelTokenizer` defaults) plus its ``text_kind`` and data settings under ``data``.
    """
    cfg = load_yaml(tts_config)
    try:
        tok = cfg["model"]["init_args"]["tokenizer"]
    except (KeyError, TypeError):
        raise DataError("no model.init_args.tokenizer (expected a TTS config)", path=tts_config) from None

    def mapping(obj: Any, field: str) -> dict[str, Any]:
        if obj is None:
            return {}
        if not isinstance(obj, dict):
            raise DataError("expected a mapping", path=tts_config, field=field, value=obj)
        return dict(obj)

    args = mapping(mapping(tok, "model.init_args.tokenizer").get("init_args"), "model.init_args.tokenizer.init_args")
    out = {k: args.get(k, v) for k, v in MEL_DEFAULTS.items()}
    for k in ("sample_rate", "n_fft", "hop", "n_mels"):
        if isinstance(out[k], bool) or not isinstance(out[k], int) or not 1 <= out[k] <= MAX_CONFIG_INT:
            raise DataError(f"expected an integer in [1, {MAX_CONFIG_INT}]", path=tts_config, field=k, value=out[k])
    for k in ("mel_mean", "mel_std"):
        if isinstance(out[k], bool) or not isinstance(out[k], (int, float)) or not math.isfinite(out[k]):
            raise DataError("expected a finite number", path=tts_config, field=k, value=out[k])
    out["text_kind"] = args.get("text_kind", "chars")
    out["data"] = mapping(mapping(cfg.get("data"), "data").get("init_args"), "data.init_args")
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
class ModelNotFoundError(DataError, FileNotFoundError):
    """A model directory without its files (a :class:`~ditkit_core.errors.DataError` and a ``FileNotFoundError``)."""


def save_model(model: nn.Module, directory: str | Path, report: dict[str, Any] | None = None) -> Path:
    """The core's pretrained format (:func:`ditkit_core.lightning.save_pretrained`: ``config.json`` with
    ``class_path`` / ``init_args`` from ``get_config()``, and ``model.safetensors``), plus ``report.json``.

    Written into a temporary folder beside ``directory`` and renamed into place file by file (weights first), so a
    killed run never leaves a half-written file under the final names.
    """
    import os
    import shutil
    import tempfile

    from ditkit_core.lightning import save_pretrained

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".save-", dir=d))
    try:
        save_pretrained(model, tmp)
        for name in (WEIGHTS_NAME, CONFIG_NAME):
            os.replace(tmp / name, d / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if report is not None:
        write_json(d / "report.json", report)
    return d


def write_json(path: Path, obj: Any) -> None:
    """``json.dumps(obj)`` written atomically (temporary file + rename)."""
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=1).encode())


def save_weights(model: nn.Module, path: Path) -> None:
    """The model's ``state_dict`` as safetensors, written atomically."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save(path, lambda tmp: save_file(state, tmp))


def read_json(path: Path, max_bytes: int = 1 << 20) -> Any:
    """A small JSON file; any decoding problem is a :class:`~ditkit_core.errors.DataError` naming it."""
    text = read_text(path, max_bytes=max_bytes)
    with naming_file(path, "not valid JSON"):
        return json.loads(text)


def _check_config(config: Any, path: Path, n_tensors: int, prefix: str = "") -> dict[str, Any]:
    """``config`` if it is an object of numbers, strings, booleans, nulls and objects of them (one level deep, e.g.
    a probe's ``decoder``), with integers in range; otherwise a DataError naming the file, field and value."""
    if not isinstance(config, dict):
        raise DataError(
            "expected an object of settings", path=path, field=prefix or "config", value=type(config).__name__
        )
    for k, v in config.items():
        if isinstance(v, bool) or v is None or isinstance(v, str):
            continue
        if isinstance(v, dict) and not prefix:
            _check_config(v, path, n_tensors, prefix=f"{k}.")
            continue
        k = prefix + k
        if isinstance(v, int):
            limit = n_tensors if k in ("layers", "depth") else MAX_CONFIG_INT
            if not -MAX_CONFIG_INT <= v <= limit:
                raise DataError(f"outside [{-MAX_CONFIG_INT}, {limit}]", path=path, field=k, value=v)
        elif isinstance(v, float):
            if not math.isfinite(v) or abs(v) > 1e12:
                raise DataError("expected a finite number", path=path, field=k, value=v)
        else:
            raise DataError("expected a number, string or boolean", path=path, field=k, value=v)
    return config


def build_checked(cls: type, config: Any, config_path: Path, weights_path: Path) -> Any:
    """``cls(**config)`` with the weights of ``weights_path``, refusing (with a DataError naming the file, tensor and
    shapes) configs whose model does not match the weights before anything large is allocated (the model is first
    built on the ``meta`` device) and weights with NaN / infinite values."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with naming_file(weights_path, "not a safetensors file"):
        with safe_open(str(weights_path), "pt") as f:
            shapes = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    config = _check_config(config, config_path, len(shapes))
    with naming_file(config_path, f"settings do not build a {cls.__name__}"):
        with torch.device("meta"):
            expected = {k: list(v.shape) for k, v in cls(**config).state_dict().items()}
    if expected != shapes:
        key = sorted(set(expected) ^ set(shapes)) or sorted(k for k in expected if expected[k] != shapes[k])
        k = key[0]
        raise DataError(
            f"weights do not match {config_path.name} (file {shapes.get(k)}, config {expected.get(k)})",
            path=weights_path,
            field=k,
            value=shapes.get(k),
        )
    with naming_file(weights_path, "cannot read the weights"):
        state = load_file(str(weights_path))
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise DataError("NaN or infinite weights", path=weights_path, field=k)
    model = cls(**config)
    model.load_state_dict(state)
    return model.eval()


def class_path(cls: type) -> str:
    """``module.Class`` of ``cls`` (the ``class_path`` a saved model directory names)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def load_model(directory: str | Path, cls: type, make: str) -> Any:
    """A model saved by :func:`save_model`: ``config.json`` checked (class, settings) and matched against the weights
    (:func:`build_checked`); every problem is a :class:`~ditkit_core.errors.DataError` naming the file.

    ``config.json`` must name exactly ``cls`` (nothing else is imported or built); directories of earlier versions
    (``{"class": name, "config": settings}``) load the same way.

    Raises:
        ModelNotFoundError: the directory lacks ``config.json`` or ``model.safetensors``.
        DataError: a damaged, hostile or mismatched file.
    """
    d = Path(directory)
    cfg_path, weights_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    if not cfg_path.is_file() or not weights_path.is_file():
        raise ModelNotFoundError(f"no config.json + model.safetensors here (run `make {make}` first)", path=d)
    blob = read_json(cfg_path)
    if isinstance(blob, dict) and "class_path" in blob:
        name, want, keys, settings = blob["class_path"], class_path(cls), {"class_path", "init_args"}, "init_args"
    elif isinstance(blob, dict) and "class" in blob:  # the layout of earlier versions
        name, want, keys, settings = blob["class"], cls.__name__, {"class", "config"}, "config"
    else:
        raise DataError("expected an object with class_path and init_args", path=cfg_path)
    if name != want:
        raise DataError(f"holds a {name!r}, not a {want}", path=cfg_path, field="class_path", value=name)
    if set(blob) - keys:
        raise DataError(f"unexpected keys {sorted(set(blob) - keys)}", path=cfg_path)
    if settings not in blob:
        raise DataError(f"no {settings} (the settings of the {cls.__name__})", path=cfg_path, field=settings)
    return build_checked(cls, blob[settings], cfg_path, weights_path)


# ---------------------------------------------------------------------- metrics
def si_snr(est: Tensor, ref: Tensor) -> float:
    """Scale-invariant signal-to-noise ratio (dB) of ``est`` vs ``ref``, both ``[s]`` (cut to the shorter).

    torchmetrics' ``scale_invariant_signal_noise_ratio`` in float64: both signals zero-mean, ``est`` projected on
    ``ref``, ``10 log10(|proj|^2 / |est - proj|^2)``, with float64's machine epsilon added to the projection
    coefficient and to both energies (so a silent ``ref`` gives a very negative finite value, not ``nan``).
    """
    n = min(est.shape[-1], ref.shape[-1])
    return float(scale_invariant_signal_noise_ratio(est[..., :n].double(), ref[..., :n].double()))


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


def _check_wav_cache(obj: Any, path: Path, frames: dict[str, int], hop: int) -> dict[str, Tensor]:
    """A waveform cache ``{wav path: int16 [s]}`` holding every item, each giving its mel's frame count."""
    if not isinstance(obj, dict):
        raise DataError(f"expected a dict of waveforms, got {type(obj).__name__}", path=path)
    for name, f in frames.items():
        w = obj.get(name)
        if not (isinstance(w, Tensor) and w.dtype == torch.int16 and w.dim() == 1):
            raise DataError("missing or not an int16 waveform [s]", path=path, field=name, value=type(w).__name__)
        if w.shape[0] // hop + 1 != f:
            raise DataError(
                f"{w.shape[0]} samples do not give the {f} frames of the mel at hop {hop}",
                path=path,
                field=name,
                value=w.shape[0],
            )
    return obj


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
    files = [[it["path"], Path(it["path"]).stat().st_mtime_ns] for it in all_items]
    key = json.dumps(files + [s["sample_rate"], loud, "v2"])
    path = Path(root) / ".ditkit_cache" / f"wavs_{hashlib.sha1(key.encode()).hexdigest()[:16]}.pt"
    frames = {it["path"]: it["mel"].shape[0] for it in all_items}
    wavs = read_cache(path, lambda obj, p: _check_wav_cache(obj, p, frames, s["hop"]), "waveform cache")
    wavs = wavs if cache else None
    if wavs is None:
        t0 = time.perf_counter()
        wavs = {}
        for it in all_items:
            w = read_wav(it["path"], sample_rate=s["sample_rate"])
            wavs[it["path"]] = _wav_int16(normalize_loudness(w, loud) if loud is not None else w)
        print(f"[wavs] read {len(wavs)} waveforms ({time.perf_counter() - t0:.0f} s)", flush=True)
        _check_wav_cache(wavs, Path(root), frames, s["hop"])  # the waveforms must match the cached mels
        if cache:
            write_cache(path, wavs)

    def attach(items: list[dict]) -> list[dict]:
        return [{**it, "wav": wavs[it["path"]].float() / 32767} for it in items]

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
