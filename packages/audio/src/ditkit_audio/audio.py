"""Waveform utilities: checked wav I/O (soundfile), resampling, loudness normalisation, log-mel features and the
Griffin-Lim baseline vocoder (torchaudio transforms), crossfaded concatenation."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn


class AudioError(ValueError):
    """A wav file cannot be used; ``reason`` is a short key (corrupt, empty, stereo, rate, silent, ...)."""

    def __init__(self, path: str | Path, reason: str, detail: str):
        super().__init__(f"{path}: {reason}: {detail}")
        self.path, self.reason, self.detail = str(path), reason, detail


def read_wav(
    path: str | Path, *, sample_rate: int | None = None, resample: bool = True, stereo: str = "error"
) -> Tensor:
    """Read a mono wav as float32 ``[s]`` in [-1, 1].

    Args:
        path: the file.
        sample_rate: required rate; a file at another rate is resampled (``resample=True``) or rejected.
        resample: allow resampling.
        stereo: ``"error"`` rejects multi-channel files, ``"mix"`` averages the channels.

    Raises:
        AudioError: with ``reason`` ``missing``, ``corrupt``, ``empty``, ``stereo``, ``rate`` or ``nonfinite``.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(path, "missing", "file does not exist")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)  # [s, c]
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError on bad headers
        raise AudioError(path, "corrupt", f"cannot decode ({e})") from None
    if data.shape[0] == 0:
        raise AudioError(path, "empty", "no samples")
    if data.shape[1] > 1:
        if stereo != "mix":
            raise AudioError(path, "stereo", f"{data.shape[1]} channels (pass stereo='mix' to downmix)")
        data = data.mean(axis=1, keepdims=True)
    if not np.isfinite(data).all():
        raise AudioError(path, "nonfinite", "NaN or inf samples")
    wav = torch.from_numpy(np.ascontiguousarray(data[:, 0]))
    if sample_rate is not None and sr != sample_rate:
        if not resample:
            raise AudioError(path, "rate", f"sample rate {sr} Hz, expected {sample_rate} Hz")
        wav = resample_wav(wav, sr, sample_rate)
    return wav


def write_wav(path: str | Path, wav: Tensor, sample_rate: int) -> Path:
    """Write mono float ``[s]`` as 16-bit PCM (clipped to [-1, 1])."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), wav.detach().float().clamp(-1, 1).cpu().numpy(), sample_rate, subtype="PCM_16")
    return path


def resample_wav(wav: Tensor, orig: int, new: int) -> Tensor:
    """Band-limited (sinc) resampling ``[..., s]`` from ``orig`` Hz to ``new`` Hz."""
    if orig == new:
        return wav
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
