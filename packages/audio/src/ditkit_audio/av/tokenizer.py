"""Audio-video tokens: spatio-temporal tubelets of the frames and log-mel frames of the soundtrack, in one sequence.

Layout of ``TokenBatch.x [b, n_v + n_a, d_v + d_a]``: the first ``n_v`` tokens are video tubelets
(``tubelet = (frames, rows, cols)`` pixels, raster order over (time, row, col)) whose values fill channels
``[0, d_v)``; the last ``n_a`` tokens are log-mel frames (the TTS package's :class:`~ditkit_audio.audio.LogMel`
settings: 16 kHz, n_fft 1024, hop 400 = 40 frames/s, 64 bands) filling channels ``[d_v, d_v + d_a)``. The other
channels of each token are padding: always zero, marked known in ``known_mask``, never seen by the network (it
slices each stream's channels) and given zero noise by the module, so they never enter the loss.

Positions ``pos [b, n, 3]``: (time, row, col). Time is the token's centre in seconds times ``time_unit`` on both
streams, so a 16 fps video frame and a 40 Hz audio frame at the same instant get the same temporal angle; audio
tokens sit at the centre of the patch grid.
"""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import Tensor

from ditkit_audio.audio import LogMel
from ditkit_core.tokenizers import TokenBatch

STREAMS = ("video", "audio")


class AVTokenizer:
    """Frames ``[b, f, h, w, 3]`` + log-mel ``[b, f_a, n_mels]`` <-> one packed token sequence (exact inverse).

    Args:
        size: frame height = width (pixels).
        fps: video frame rate.
        seconds: clip duration.
        tubelet: ``(frames, rows, cols)`` pixels per video token; must divide the clip's frames and ``size``.
        sample_rate, n_fft, hop, n_mels: log-mel settings (as :class:`~ditkit_audio.tokenizer.MelTokenizer`).
        mel_mean, mel_std: normalisation of the natural-log mel.
        time_unit: rotary positions per second on the time axis.
        gl_iters: Griffin-Lim iterations of :meth:`to_wav`.
    """

    def __init__(
        self,
        size: int = 32,
        fps: int = 16,
        seconds: float = 2.0,
        tubelet: tuple[int, int, int] = (2, 8, 8),
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop: int = 400,
        n_mels: int = 64,
        mel_mean: float = -8.0,
        mel_std: float = 3.0,
        time_unit: float = 16.0,
        gl_iters: int = 32,
    ):
        self.size, self.fps, self.seconds = int(size), int(fps), float(seconds)
        self.tubelet = tuple(int(v) for v in tubelet)
        self.sample_rate, self.n_fft, self.hop, self.n_mels = int(sample_rate), int(n_fft), int(hop), int(n_mels)
        self.mel_mean, self.mel_std, self.time_unit, self.gl_iters = (
            float(mel_mean),
            float(mel_std),
            time_unit,
            gl_iters,
        )
        if len(self.tubelet) != 3 or min(self.tubelet) < 1:
            raise ValueError(f"AVTokenizer.tubelet={tubelet!r}: must be three positive integers (frames, rows, cols)")
        tf, th, tw = self.tubelet
        if self.frames < 1 or self.frames % tf or self.size % th or self.size % tw:
            raise ValueError(
                f"AVTokenizer.tubelet={self.tubelet}: must divide the clip's {self.frames} frames and size={self.size}"
            )
        if self.mel_std <= 0:
            raise ValueError(f"AVTokenizer.mel_std={mel_std}: must be > 0")
        if not (isinstance(time_unit, (int, float)) and time_unit > 0):
            raise ValueError(f"AVTokenizer.time_unit={time_unit!r}: must be > 0")
        self.video_dim = tf * th * tw * 3
        self.audio_dim = self.n_mels
        self.token_dim = self.video_dim + self.audio_dim
        self._logmel: LogMel | None = None

    # ------------------------------------------------------------------ geometry
    @property
    def frames(self) -> int:
        return int(round(self.fps * self.seconds))

    @property
    def samples(self) -> int:
        return int(round(self.sample_rate * self.seconds))

    @property
    def audio_frames(self) -> int:
        """Mel frames kept per clip: ``seconds * sample_rate / hop`` (the centred STFT's last frame is dropped)."""
        return int(round(self.seconds * self.sample_rate / self.hop))

    @property
    def grid(self) -> tuple[int, int, int]:
        """Video token grid ``(time, rows, cols)``."""
        tf, th, tw = self.tubelet
        return self.frames // tf, self.size // th, self.size // tw

    @property
    def video_tokens(self) -> int:
        g = self.grid
        return g[0] * g[1] * g[2]

    @property
    def audio_tokens(self) -> int:
        return self.audio_frames

    @property
    def frame_rate(self) -> float:
        """Mel frames per second."""
        return self.sample_rate / self.hop

    @property
    def logmel(self) -> LogMel:
        """The feature extractor / Griffin-Lim vocoder (built on first use)."""
        if self._logmel is None:
            self._logmel = LogMel(self.sample_rate, self.n_fft, self.hop, self.n_mels, gl_iters=self.gl_iters)
        return self._logmel

    def layout(self) -> dict[str, tuple[int, int, int, int]]:
        """stream -> ``(first token, tokens, first channel, channels)`` in the packed sequence."""
        nv = self.video_tokens
        return {
            "video": (0, nv, 0, self.video_dim),
            "audio": (nv, self.audio_tokens, self.video_dim, self.audio_dim),
        }

    def positions(self, b: int = 1, device: torch.device | str = "cpu") -> Tensor:
        """``pos [b, n_v + n_a, 3]``: (time in seconds x ``time_unit``, row, col)."""
        gt, gh, gw = self.grid
        tf = self.tubelet[0]
        t_v = (torch.arange(gt, dtype=torch.float32) * tf + (tf - 1) / 2) / self.fps
        tv, rv, cv = torch.meshgrid(t_v, torch.arange(gh).float(), torch.arange(gw).float(), indexing="ij")
        pv = torch.stack([tv.flatten() * self.time_unit, rv.flatten(), cv.flatten()], -1)
        t_a = torch.arange(self.audio_frames, dtype=torch.float32) * self.hop / self.sample_rate
        pa = torch.stack(
            [t_a * self.time_unit, torch.full_like(t_a, (gh - 1) / 2), torch.full_like(t_a, (gw - 1) / 2)], -1
        )
        return torch.cat([pv, pa])[None].expand(b, -1, -1).to(device)

    def token_times(self) -> Tensor:
        """Centre time (s) of every token ``[n_v + n_a]``."""
        return self.positions()[0, :, 0] / self.time_unit

    # ------------------------------------------------------------------ streams
    def video_to_tokens(self, video: Tensor) -> Tensor:
        """Frames ``[b, f, h, w, 3]`` (uint8, or float in [0, 1]) -> tubelets ``[b, n_v, d_v]`` in [-1, 1]."""
        if video.dim() != 5 or tuple(video.shape[1:]) != (self.frames, self.size, self.size, 3):
            raise ValueError(
                f"AVTokenizer: video must be [b, {self.frames}, {self.size}, {self.size}, 3], got {tuple(video.shape)}"
            )
        v = video.float() / 255.0 if video.dtype == torch.uint8 else video.float()
        tf, th, tw = self.tubelet
        return rearrange(2 * v - 1, "b (t pf) (r ph) (c pw) ch -> b (t r c) (pf ph pw ch)", pf=tf, ph=th, pw=tw)

    def tokens_to_video(self, tokens: Tensor) -> Tensor:
        """Tubelets ``[b, n_v, d_v]`` -> frames ``[b, f, h, w, 3]`` float in [0, 1] (clamped)."""
        gt, gh, gw = self.grid
        tf, th, tw = self.tubelet
        v = rearrange(
            tokens, "b (t r c) (pf ph pw ch) -> b (t pf) (r ph) (c pw) ch", t=gt, r=gh, c=gw, pf=tf, ph=th, pw=tw
        )
        return ((v + 1) / 2).clamp(0, 1)

    def mel_to_tokens(self, mel: Tensor) -> Tensor:
        """Log-mel ``[b, >= f_a, n_mels]`` -> normalised tokens ``[b, f_a, n_mels]`` (extra frames dropped)."""
        if mel.dim() != 3 or mel.shape[-1] != self.n_mels or mel.shape[1] < self.audio_frames:
            raise ValueError(
                f"AVTokenizer: mel must be [b, >= {self.audio_frames}, {self.n_mels}], got {tuple(mel.shape)}"
            )
        return (mel[:, : self.audio_frames].float() - self.mel_mean) / self.mel_std

    def tokens_to_mel(self, tokens: Tensor) -> Tensor:
        return tokens * self.mel_std + self.mel_mean

    def features(self, wav: Tensor) -> Tensor:
        """Waveform ``[..., s]`` -> log-mel ``[..., f_a, n_mels]`` (the clip's kept frames)."""
        return self.logmel(wav)[..., : self.audio_frames, :]

    def to_wav(self, mel: Tensor, n_iter: int | None = None) -> Tensor:
        """Griffin-Lim: log-mel ``[f, n_mels]`` -> waveform ``[samples]`` (zero-padded / cut to the clip)."""
        wav = self.logmel.invert(mel, n_iter)
        out = torch.zeros(*wav.shape[:-1], self.samples, dtype=wav.dtype)
        k = min(self.samples, wav.shape[-1])
        out[..., :k] = wav[..., :k]
        return out

    # ------------------------------------------------------------------ packing
    def pack(self, video_tokens: Tensor, audio_tokens: Tensor) -> Tensor:
        """Per-stream tokens -> the packed ``x [b, n_v + n_a, d_v + d_a]`` (padding channels zero)."""
        b = video_tokens.shape[0]
        x = video_tokens.new_zeros(b, self.video_tokens + self.audio_tokens, self.token_dim)
        x[:, : self.video_tokens, : self.video_dim] = video_tokens
        x[:, self.video_tokens :, self.video_dim :] = audio_tokens
        return x

    def unpack(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Packed ``x`` -> (video tokens ``[b, n_v, d_v]``, audio tokens ``[b, n_a, d_a]``)."""
        nv = self.video_tokens
        return x[:, :nv, : self.video_dim], x[:, nv:, self.video_dim :]

    def channel_mask(self, b: int = 1, device: torch.device | str = "cpu") -> Tensor:
        """bool like ``x``: True on each token's own channels (False = padding)."""
        m = torch.zeros(b, self.video_tokens + self.audio_tokens, self.token_dim, dtype=torch.bool, device=device)
        m[:, : self.video_tokens, : self.video_dim] = True
        m[:, self.video_tokens :, self.video_dim :] = True
        return m

    def stream_of_tokens(self, device: torch.device | str = "cpu") -> Tensor:
        """``[n]`` long: 0 for video tokens, 1 for audio tokens."""
        s = torch.zeros(self.video_tokens + self.audio_tokens, dtype=torch.long, device=device)
        s[self.video_tokens :] = 1
        return s

    def encode(self, raw: dict[str, Any]) -> TokenBatch:
        """``{"video": [b, f, h, w, 3], "mel": [b, f_a, n_mels], "family": [b] (optional)}`` -> packed tokens.

        ``known_mask`` marks the padding channels; ``cond`` carries the clip family where given.
        """
        for k in ("video", "mel"):
            if k not in raw:
                raise KeyError(f"AVTokenizer.encode: batch needs key {k!r}, got keys {sorted(raw)}")
        v = self.video_to_tokens(raw["video"])
        a = self.mel_to_tokens(raw["mel"]).to(v.device)
        if a.shape[0] != v.shape[0]:
            raise ValueError(f"AVTokenizer.encode: {v.shape[0]} videos but {a.shape[0]} mels")
        b = v.shape[0]
        x = self.pack(v, a)
        cond = raw.get("family")
        if cond is not None:
            cond = torch.as_tensor(cond, device=x.device).long().reshape(b)
        return TokenBatch(
            x=x,
            pos=self.positions(b, x.device),
            cond=cond,
            known_mask=~self.channel_mask(b, x.device),
            meta={k: raw[k] for k in ("index", "events", "family") if k in raw},
        )

    def decode(self, tokens: TokenBatch) -> dict[str, Any]:
        """Tokens -> ``{"video": [b, f, h, w, 3] float in [0, 1], "mel": [b, f_a, n_mels]}`` (+ ``meta``)."""
        v, a = self.unpack(tokens.x)
        return {"video": self.tokens_to_video(v), "mel": self.tokens_to_mel(a), **tokens.meta}


__all__ = ["STREAMS", "AVTokenizer"]
