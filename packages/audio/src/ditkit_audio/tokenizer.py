"""Speech tokens: normalised log-mel frames (one token per frame) with text ids carried along for conditioning."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ditkit_audio.audio import LogMel
from ditkit_audio.text import TextTokenizer
from ditkit_core.tokenizers import TokenBatch


class MelTokenizer:
    """Log-mel frames ``[b, f, n_mels]`` <-> tokens ``x = (logmel - mel_mean) / mel_std`` (exact inverse).

    The text of each utterance rides in ``meta`` (``ids [b, L]``, ``text_len [b]``) for the module's text encoder;
    ``pos [b, f, 1]`` holds frame indices for 1D RoPE.

    Args:
        sample_rate, n_fft, hop, n_mels: log-mel settings (see :class:`~ditkit_audio.audio.LogMel`).
        mel_mean, mel_std: normalisation constants (natural-log mel of loudness-normalised speech).
        text_kind: ``chars`` or ``phonemes`` (:class:`~ditkit_audio.text.TextTokenizer`).
        gl_iters: Griffin-Lim iterations of :meth:`to_wav`.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        mel_mean: float = -5.5,
        mel_std: float = 2.5,
        text_kind: str = "chars",
        gl_iters: int = 32,
    ):
        if mel_std <= 0:
            raise ValueError(f"MelTokenizer.mel_std={mel_std}: must be > 0")
        self.sample_rate, self.n_fft, self.hop, self.n_mels = sample_rate, n_fft, hop, n_mels
        self.mel_mean, self.mel_std, self.text_kind, self.gl_iters = mel_mean, mel_std, text_kind, gl_iters
        self.token_dim = n_mels
        self.text = TextTokenizer(text_kind)
        self._logmel: LogMel | None = None

    @property
    def logmel(self) -> LogMel:
        """The feature extractor / Griffin-Lim vocoder (built on first use)."""
        if self._logmel is None:
            self._logmel = LogMel(self.sample_rate, self.n_fft, self.hop, self.n_mels, gl_iters=self.gl_iters)
        return self._logmel

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    def normalize(self, mel: Tensor, mask: Tensor | None = None) -> Tensor:
        """Log-mel ``[..., f, n_mels]`` -> tokens; ``mask`` is for subclasses whose transform mixes frames."""
        return (mel - self.mel_mean) / self.mel_std

    def denormalize(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """Tokens ``[..., f, token_dim]`` -> log-mel ``[..., f, n_mels]``."""
        return x * self.mel_std + self.mel_mean

    def encode(self, raw: dict[str, Any]) -> TokenBatch:
        """``{"mel": [b, f, n_mels], "mask": [b, f], "ids": [b, L], "text_len": [b]}`` -> tokens ``[b, f, n_mels]``."""
        for k in ("mel", "mask"):
            if k not in raw:
                raise KeyError(f"{type(self).__name__}.encode: batch needs key {k!r}, got keys {sorted(raw)}")
        mel, mask = raw["mel"], raw["mask"]
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels:
            raise ValueError(
                f"{type(self).__name__}.encode: mel must be [b, f, n_mels={self.n_mels}], got {tuple(mel.shape)}"
            )
        b, f, _ = mel.shape
        x = self.normalize(mel, mask)
        x = torch.where(mask[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        pos = torch.arange(f, device=mel.device, dtype=torch.float32)[None, :, None].expand(b, f, 1)
        meta = {k: raw[k] for k in ("ids", "text_len", "text") if k in raw}
        return TokenBatch(x=x, mask=mask, pos=pos, meta=meta)

    def decode(self, tokens: TokenBatch) -> dict[str, Any]:
        """Tokens -> ``{"mel": [b, f, n_mels] (0 on padding), "mask": [b, f]}`` (+ the text fields of ``meta``)."""
        mask = (
            tokens.mask
            if tokens.mask is not None
            else torch.ones(tokens.x.shape[:2], dtype=torch.bool, device=tokens.x.device)
        )
        mel = self.denormalize(tokens.x, mask)
        mel = torch.where(mask[..., None], mel, torch.zeros((), dtype=mel.dtype, device=mel.device))
        return {"mel": mel, "mask": mask, **tokens.meta}

    def features(self, wav: Tensor) -> Tensor:
        """Waveform ``[s]`` at ``sample_rate`` -> log-mel ``[f, n_mels]``."""
        return self.logmel(wav)

    def to_wav(self, mel: Tensor, n_iter: int | None = None) -> Tensor:
        """Griffin-Lim: log-mel ``[f, n_mels]`` -> waveform ``[(f - 1) * hop]``."""
        return self.logmel.invert(mel, n_iter)
