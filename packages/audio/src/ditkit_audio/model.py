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
    """Text ids -> one embedding per mel frame ``[b, f, dim]``, in one of two alignment-free layouts.

    ``align="filler"`` (F5-TTS TextEmbedding): the ids are already laid out per frame (text then filler tokens,
    :func:`~ditkit_audio.text.fill_to_frames`); embedding + sinusoidal frame positions + ConvNeXt refiner. The DiT
    has to discover the text-to-speech alignment itself.

    ``align="stretch"``: the symbol sequence ``[b, L]`` is first encoded at symbol level (embedding + sinusoidal
    positions + ``symbol_layers`` ConvNeXt blocks, so every symbol knows its neighbours), then spread uniformly over
    the frames (:func:`~ditkit_audio.text.stretch_to_frames`: frame -> symbol index and the fractional position
    inside the symbol), and refined at frame level by ``layers`` ConvNeXt blocks. This hands the DiT a rough
    alignment for free; it only has to correct local timing.

    Args:
        vocab: number of ids (pad 0, filler 1, symbols).
        dim: embedding width.
        layers: frame-level ConvNeXt refiner blocks.
        align: ``stretch`` or ``filler``.
        symbol_layers: symbol-level ConvNeXt blocks (``stretch`` only).
    """

    def __init__(self, vocab: int, dim: int = 64, layers: int = 2, align: str = "filler", symbol_layers: int = 2):
        super().__init__()
        if align not in ("filler", "stretch"):
            raise ValueError(f"TextEncoder.align={align!r}: choose 'filler' or 'stretch'")
        self.align = align
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(ConvNeXtBlock1d(dim) for _ in range(layers))
        if align == "stretch":
            self.symbol_blocks = nn.ModuleList(ConvNeXtBlock1d(dim) for _ in range(symbol_layers))
            self.frac = nn.Linear(2, dim)

    def forward(
        self,
        ids: Tensor,
        drop: Tensor | None = None,
        index: Tensor | None = None,
        frac: Tensor | None = None,
        text_len: Tensor | None = None,
        mask: Tensor | None = None,
    ) -> Tensor:
        """``filler``: per-frame ids ``[b, f]``. ``stretch``: symbol ids ``[b, L]`` with ``text_len [b]``, the
        frame -> symbol ``index [b, f]`` (-1: no symbol) and ``frac [b, f]``; ``mask [b, f]`` marks real frames.
        ``drop [b]`` bool replaces a row's text by filler tokens (CFG's unconditional branch)."""
        if drop is not None:
            ids = torch.where(drop[:, None], torch.full_like(ids, FILLER), ids)
        d = self.embed.embedding_dim
        if self.align == "filler":
            h = self.embed(ids) + sinusoidal(ids.shape[1], d, ids.device)  # [b, f, dim]
            for blk in self.blocks:
                h = blk(h)
            return h
        if index is None or frac is None or text_len is None:
            raise ValueError("TextEncoder(align='stretch') needs index, frac and text_len")
        smask = torch.arange(ids.shape[1], device=ids.device)[None] < text_len[:, None]  # [b, L]
        s = self.embed(ids) + sinusoidal(ids.shape[1], d, ids.device)
        for blk in self.symbol_blocks:
            s = blk(s, smask)
        on = index >= 0  # [b, f]
        if drop is not None:
            on = on & ~drop[:, None]
        g = torch.gather(s, 1, index.clamp_min(0)[..., None].expand(-1, -1, d))  # [b, f, dim]
        h = torch.where(on[..., None], g, self.embed.weight[FILLER].to(g.dtype))
        ang = math.pi * frac
        feat = torch.stack([ang.sin(), ang.cos()], -1).to(h.dtype) * on[..., None].to(h.dtype)
        h = h + self.frac(feat)
        for blk in self.blocks:
            h = blk(h, mask)
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
