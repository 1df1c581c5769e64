"""Waveform utilities: checked wav I/O (soundfile), resampling, loudness normalisation, log-mel features and the
Griffin-Lim baseline vocoder (torchaudio transforms), crossfaded concatenation."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ditkit_core.errors import DataError, atomic_save

MIN_RATE, MAX_RATE = 1000, 768_000
"""Sample rates accepted from a wav header (Hz); anything else is a damaged or hostile header."""
MAX_SAMPLES = 1 << 27
"""Most samples (all channels, before and after resampling) one file may hold: about 47 min of 48 kHz mono, 512 MB
as float32. A header claiming more is refused before anything is allocated."""
MAX_PEAK = 100.0
"""Largest sample magnitude accepted: float wavs hold [-1, 1]; beyond 40 dB over full scale the file is broken (e.g.
integers stored as floats, or 1e30) and would turn into a silent or non-finite mel after loudness normalisation."""
MAX_KERNEL = 1 << 22
"""Most elements of a sinc resampling kernel: rates whose ratio has no small common divisor (16001 Hz -> 16000 Hz)
would need gigabytes, so they are refused."""


class AudioError(DataError):
    """A wav file cannot be used; ``reason`` is a short key (corrupt, empty, stereo, rate, range, nonfinite, ...).

    The message reads ``<path>: [<field>=<value>: ]<reason>: <detail>`` (a :class:`~ditkit_core.errors.DataError`).
    """

    def __init__(self, path: str | Path, reason: str, detail: str, *, field: str | None = None, value: Any = None):
        super().__init__(f"{reason}: {detail}", path=path, field=field, value=value)
        self.path, self.reason, self.detail = str(path), reason, detail


@dataclass(frozen=True)
class WavInfo:
    """What a wav header says: ``sample_rate`` (Hz), ``frames`` (samples per channel) and ``channels``."""

    sample_rate: int
    frames: int
    channels: int


def wav_info(path: str | Path) -> WavInfo:
    """Read and check a wav header (nothing else is read).

    Raises:
        AudioError: ``missing``, ``corrupt`` (undecodable header, not a file), ``rate`` (outside
            [:data:`MIN_RATE`, :data:`MAX_RATE`]) or ``too_large`` (more than :data:`MAX_SAMPLES` samples).
    """
    import soundfile as sf

    path = Path(path)
    try:
        exists, is_file = path.exists(), path.is_file()
    except OSError as e:  # a name too long for the file system, a loop of links, ...
        raise AudioError(path, "missing", f"cannot stat ({e})") from None
    if not exists:
        raise AudioError(path, "missing", "file does not exist")
    if not is_file:
        raise AudioError(path, "corrupt", "not a regular file")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError on bad headers
        raise AudioError(path, "corrupt", f"cannot decode ({e})") from None
    sr, frames, ch = int(info.samplerate), int(info.frames), int(info.channels)
    if not MIN_RATE <= sr <= MAX_RATE:
        raise AudioError(
            path, "rate", f"sample rate outside [{MIN_RATE}, {MAX_RATE}] Hz", field="sample_rate", value=sr
        )
    if ch < 1 or frames < 0:
        raise AudioError(path, "corrupt", f"{ch} channels, {frames} frames in the header")
    if frames * ch > MAX_SAMPLES:
        raise AudioError(
            path, "too_large", f"header claims more than {MAX_SAMPLES} samples", field="samples", value=frames * ch
        )
    return WavInfo(sr, frames, ch)


def check_resample(orig: int, new: int, path: str | Path = "<wav>", frames: int = 0) -> None:
    """Refuse a resampling from ``orig`` to ``new`` Hz whose sinc kernel or output would be huge (see
    :data:`MAX_KERNEL`, :data:`MAX_SAMPLES`) with an :class:`AudioError` (``reason="rate"`` / ``"too_large"``)."""
    if orig == new:
        return
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    width = math.ceil(6 * o / (min(o, n) * 0.99))  # torchaudio's kernel: lowpass width 6, rolloff 0.99
    if n * (2 * width + o) > MAX_KERNEL:
        raise AudioError(
            path,
            "rate",
            f"cannot resample to {new} Hz: the ratio {o}/{n} needs a kernel of {n * (2 * width + o)} taps "
            f"(limit {MAX_KERNEL})",
            field="sample_rate",
            value=orig,
        )
    if frames * new // orig > MAX_SAMPLES:
        raise AudioError(
            path,
            "too_large",
            f"resampling to {new} Hz gives more than {MAX_SAMPLES} samples",
            field="samples",
            value=frames * new // orig,
        )


def load_wav(
    path: str | Path, *, sample_rate: int | None = None, resample: bool = True, stereo: str = "error"
) -> tuple[Tensor, int]:
    """:func:`read_wav` that also returns the file's own sample rate: ``(wav [s], rate in the header)``."""
    import soundfile as sf

    if stereo not in ("error", "mix"):
        raise ValueError(f"read_wav: stereo={stereo!r}; choose 'error' or 'mix'")
    path = Path(path)
    info = wav_info(path)
    sr = info.sample_rate
    if sample_rate is not None and sr != sample_rate:
        if not resample:
            raise AudioError(path, "rate", f"sample rate {sr} Hz, expected {sample_rate} Hz")
        check_resample(sr, sample_rate, path, info.frames)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [s, c]
    except MemoryError:
        raise
    except Exception as e:  # a header that decodes but data that does not
        raise AudioError(path, "corrupt", f"cannot decode ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty", "no samples")
    if data.shape[1] > 1:
        if stereo != "mix":
            raise AudioError(path, "stereo", f"{data.shape[1]} channels (pass stereo='mix' to downmix)")
        data = data.mean(axis=1, keepdims=True)
    finite = np.isfinite(data)
    if not finite.all():
        raise AudioError(
            path,
            "nonfinite",
            f"{int((~finite).sum())} NaN or infinite samples (or float64 samples beyond float32 range)",
            field="samples",
            value=float(data[~finite][0]),
        )
    peak = float(np.abs(data).max())
    if peak > MAX_PEAK:
        shown = float(f"{peak:.4g}")  # the level, not float32 noise
        raise AudioError(
            path, "range", f"peak sample beyond {MAX_PEAK:g} (a float wav holds [-1, 1])", field="peak", value=shown
        )
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if sample_rate is not None and sr != sample_rate:
        wav = resample_wav(wav, sr, sample_rate)
    return wav, int(sr)


def read_wav(
    path: str | Path, *, sample_rate: int | None = None, resample: bool = True, stereo: str = "error"
) -> Tensor:
    """Read a mono wav as float32 ``[s]`` (finite, peak <= :data:`MAX_PEAK`).

    Args:
        path: the file.
        sample_rate: required rate; a file at another rate is resampled (``resample=True``) or rejected.
        resample: allow resampling.
        stereo: ``"error"`` rejects multi-channel files, ``"mix"`` averages the channels.

    Raises:
        AudioError: with ``reason`` ``missing``, ``corrupt``, ``empty``, ``stereo``, ``rate`` (outside the accepted
            range, or a ratio that cannot be resampled with a bounded kernel), ``too_large``, ``nonfinite`` or
            ``range`` (peak beyond :data:`MAX_PEAK`); the message names the file.
    """
    return load_wav(path, sample_rate=sample_rate, resample=resample, stereo=stereo)[0]


def write_wav(path: str | Path, wav: Tensor, sample_rate: int) -> Path:
    """Write mono float ``[s]`` as 16-bit PCM (clipped to [-1, 1]), atomically (temporary file + rename).

    Raises:
        ValueError: NaN / infinite samples or a sample rate outside [:data:`MIN_RATE`, :data:`MAX_RATE`].
    """
    import soundfile as sf

    path = Path(path)
    data = wav.detach().float().cpu()
    if not torch.isfinite(data).all():
        raise ValueError(f"write_wav: {path}: {int((~torch.isfinite(data)).sum())} NaN or infinite samples")
    if not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise ValueError(f"write_wav: {path}: sample_rate={sample_rate}: outside [{MIN_RATE}, {MAX_RATE}] Hz")
    audio = data.clamp(-1, 1).numpy()
    fmt = None if path.suffix else "WAV"  # the format follows the extension, as with soundfile itself
    atomic_save(path, lambda tmp: sf.write(tmp, audio, int(sample_rate), subtype="PCM_16", format=fmt))
    return path


def resample_wav(wav: Tensor, orig: int, new: int) -> Tensor:
    """Band-limited (sinc) resampling ``[..., s]`` from ``orig`` Hz to ``new`` Hz.

    Raises:
        AudioError: a rate ratio whose kernel would be huge (:func:`check_resample`).
    """
    if orig == new:
        return wav
    check_resample(orig, new, frames=wav.shape[-1])
    return _resampler(orig, new)(wav)


@functools.lru_cache(maxsize=8)
def _resampler(orig: int, new: int) -> nn.Module:
    """A cached ``torchaudio.transforms.Resample`` (its sinc kernel is built once per rate pair)."""
    import torchaudio.transforms as T

    return T.Resample(orig, new)


def normalize_loudness(wav: Tensor, target_db: float = -23.0, peak: float = 0.95) -> Tensor:
    """Scale ``[s]`` so its RMS level over voiced samples is ``target_db`` dBFS, then limit the peak.

    RMS over samples above 1% of the peak approximates a speech-activity-gated loudness (not ITU-R BS.1770 K-weighted
    LUFS). Silent input is returned unchanged.
    """
    a = wav.abs()
    if float(a.max()) <= 0:
        return wav
    active = wav[a > 0.01 * a.max()]
    rms = active.pow(2).mean().sqrt().clamp_min(1e-8)
    out = wav * (10 ** (target_db / 20) / rms)
    m = float(out.abs().max())
    return out * (peak / m) if m > peak else out


def crossfade_concat(pieces: list[Tensor], sample_rate: int, fade_s: float = 0.05) -> Tensor:
    """Join waveforms ``[s_i]`` with equal-power crossfades of ``fade_s`` seconds."""
    if not pieces:
        raise ValueError("crossfade_concat: no pieces")
    out = pieces[0]
    n = int(fade_s * sample_rate)
    for p in pieces[1:]:
        k = min(n, out.shape[0], p.shape[0])
        if k == 0:
            out = torch.cat([out, p])
            continue
        w = torch.linspace(0, 1, k, dtype=out.dtype)
        fade_in, fade_out = torch.sin(w * torch.pi / 2), torch.cos(w * torch.pi / 2)
        mid = out[-k:] * fade_out + p[:k] * fade_in
        out = torch.cat([out[:-k], mid, p[k:]])
    return out


class LogMel(nn.Module):
    """Log-mel spectrogram ``[s] -> [f, n_mels]`` (natural log, floor ``1e-5``) and its Griffin-Lim inverse.

    Args:
        sample_rate: Hz.
        n_fft: FFT size (= window length).
        hop: hop length in samples (frames per second = ``sample_rate / hop``).
        n_mels: mel bands.
        f_max: highest mel frequency (default ``sample_rate / 2``).
        gl_iters: Griffin-Lim iterations of :meth:`invert`.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        f_max: float | None = None,
        gl_iters: int = 32,
    ):
        super().__init__()
        import torchaudio.transforms as T

        self.sample_rate, self.n_fft, self.hop, self.n_mels, self.gl_iters = sample_rate, n_fft, hop, n_mels, gl_iters
        self.f_max = f_max
        fm = f_max or sample_rate / 2
        self.mel = T.MelSpectrogram(
            sample_rate,
            n_fft=n_fft,
            hop_length=hop,
            n_mels=n_mels,
            f_max=fm,
            power=1.0,
            norm="slaney",
            mel_scale="slaney",
        )
        self.gl = T.GriffinLim(n_fft=n_fft, hop_length=hop, power=1.0, n_iter=gl_iters)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def frames(self, samples: int) -> int:
        """Frames produced for ``samples`` samples (centred STFT)."""
        return samples // self.hop + 1

    @torch.no_grad()
    def forward(self, wav: Tensor) -> Tensor:
        """``[..., s]`` -> log-mel ``[..., f, n_mels]``."""
        m = self.mel(wav.float())  # [..., n_mels, f]
        return m.clamp_min(1e-5).log().transpose(-1, -2)

    @torch.no_grad()
    def invert(self, logmel: Tensor, n_iter: int | None = None) -> Tensor:
        """Griffin-Lim vocoder: log-mel ``[..., f, n_mels]`` -> waveform ``[..., (f - 1) * hop]``.

        The mel filterbank is inverted by least squares (non-negative pseudo-inverse, then Griffin-Lim phase).
        """
        mag_mel = logmel.float().exp().transpose(-1, -2)  # [..., n_mels, f]
        fb = self.mel.mel_scale.fb  # [freq, n_mels]
        pinv = torch.linalg.pinv(fb.T)  # [freq, n_mels]
        spec = torch.einsum("fm,...mt->...ft", pinv, mag_mel).clamp_min(0)  # [..., freq, f]
        if n_iter is not None and n_iter != self.gl.n_iter:
            import torchaudio.transforms as T

            return T.GriffinLim(n_fft=self.n_fft, hop_length=self.hop, power=1.0, n_iter=n_iter)(spec)
        return self.gl(spec)
