"""Learned parts around the DiT: F5-style text encoder (embedding + sinusoidal positions + ConvNeXt refiner) and the
sentence-level total-duration predictor."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ditkit_audio.text import FILLER


class ConvNeXtBlock1d(nn.Module):
    """ConvNeXt-V1 block over a sequence: depthwise conv (k=7) -> LayerNorm -> MLP (x4, GELU) -> residual."""

    def __init__(self, dim: int, kernel: int = 7, mult: int = 4):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x [b, n, d]`` (``mask [b, n]`` zeroes padding before the conv) -> ``[b, n, d]``."""
        if mask is not None:
            x = x * mask[..., None].to(x.dtype)
        h = self.dw(x.transpose(1, 2)).transpose(1, 2)  # [b, n, d]
        return x + self.mlp(self.norm(h))


def sinusoidal(n: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Sinusoidal position table ``[n, dim]``."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freqs = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    ang = pos * freqs  # [n, dim/2]
    return torch.cat([ang.sin(), ang.cos()], -1)[:, :dim]


class TextEncoder(nn.Module):
    """Filler-padded text ids ``[b, f]`` (one per mel frame) -> embeddings ``[b, f, dim]`` (F5-TTS TextEmbedding).

    Args:
        vocab: number of ids (pad 0, filler 1, symbols).
        dim: embedding width.
        layers: ConvNeXt refiner blocks.
    """

    def __init__(self, vocab: int, dim: int = 64, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(dim) for _ in range(layers))

    def forward(self, ids: Tensor, drop: Tensor | None = None) -> Tensor:
        """``ids [b, f]``; ``drop [b]`` bool replaces a row by filler tokens (CFG's unconditional branch)."""
        if drop is not None:
            ids = torch.where(drop[:, None], torch.full_like(ids, FILLER), ids)
        h = self.embed(ids) + sinusoidal(ids.shape[1], self.embed.embedding_dim, ids.device)  # [b, f, dim]
        for blk in self.blocks:
            h = blk(h)
        return h


class DurationPredictor(nn.Module):
    """Sentence-level total duration: text ids ``[b, L]`` -> predicted ``log(frames)`` ``[b]`` (SimpleSpeech 2).

    Embedding -> ConvNeXt blocks -> masked mean and ``log(length)`` -> MLP. Trained with MSE on log frames; no
    alignment needed.
    """

    def __init__(self, vocab: int, dim: int = 96, layers: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(dim) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(dim + 1, dim), nn.GELU(), nn.Linear(dim, 1))

    def forward(self, ids: Tensor, text_len: Tensor) -> Tensor:
        mask = torch.arange(ids.shape[1], device=ids.device)[None] < text_len[:, None]  # [b, L]
        h = self.embed(ids)
        for blk in self.blocks:
            h = blk(h, mask)
        m = mask[..., None].to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1)  # [b, dim]
        loglen = text_len.to(h.dtype).clamp_min(1).log()[:, None]
        # predict log frames-per-symbol around a learned offset, plus log length: frames scale with length
        return self.head(torch.cat([pooled, loglen], -1)).squeeze(-1) + loglen.squeeze(-1) + math.log(4.0)
