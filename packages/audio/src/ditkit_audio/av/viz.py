"""Contact sheets of audio-video clips: a strip of frames with the waveform and the log-mel under it, per row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _frames01(video: Tensor | np.ndarray) -> np.ndarray:
    v = torch.as_tensor(video)
    v = v.float() / 255.0 if v.dtype == torch.uint8 else v.float()
    return v.clamp(0, 1).cpu().numpy()


def frame_strip(video: Tensor | np.ndarray, every: int = 2, gap: int = 1) -> np.ndarray:
    """Frames ``[f, h, w, 3]`` -> one image ``[h, k (w + gap), 3]`` of every ``every``-th frame."""
    v = _frames01(video)[::every]
    f, h, w, _ = v.shape
    out = np.ones((h, f * (w + gap) - gap, 3), np.float32)
    for i, fr in enumerate(v):
        out[:, i * (w + gap) : i * (w + gap) + w] = fr
    return out


def contact_sheet(
    path: str | Path,
    tokenizer: Any,
    rows: dict[str, tuple[Tensor, Tensor]],
    *,
    wavs: dict[str, Tensor] | None = None,
    events: dict[str, list[float]] | None = None,
    title: str = "",
    every: int = 2,
) -> Path:
    """Write a PNG: for each row name, the frames (every ``every``-th), the waveform and the mel, on one time axis.

    Args:
        path: output PNG.
        tokenizer: the :class:`~ditkit_audio.av.tokenizer.AVTokenizer` (fps, mel settings, Griffin-Lim).
        rows: name -> ``(video [f, h, w, 3], log-mel [f_a, n_mels])``.
        wavs: name -> waveform ``[s]`` (default: Griffin-Lim of the row's mel).
        events: name -> event times (s) drawn as ticks on the waveform and mel.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secs = tokenizer.seconds
    n = len(rows)
    fig, axes = plt.subplots(
        3 * n, 1, figsize=(10, 3.4 * n), gridspec_kw={"height_ratios": [1.1, 0.6, 1.0] * n}, squeeze=False
    )
    for r, (name, (video, mel)) in enumerate(rows.items()):
        ax_f, ax_w, ax_m = axes[3 * r, 0], axes[3 * r + 1, 0], axes[3 * r + 2, 0]
        strip = frame_strip(video, every)
        ax_f.imshow(strip, extent=(0, secs, 0, secs * strip.shape[0] / strip.shape[1]), interpolation="nearest")
        ax_f.set_yticks([])
        ax_f.set_title(f"{name}: frames (every {every}), waveform, log-mel", fontsize=9, loc="left")
        m = torch.as_tensor(mel).float().cpu()
        wav = (wavs or {}).get(name)
        if wav is None:
            wav = tokenizer.to_wav(m)
        w = torch.as_tensor(wav).float().cpu().numpy()
        ax_w.plot(np.arange(w.shape[0]) / tokenizer.sample_rate, w, lw=0.4, color="k")
        ax_w.set_xlim(0, secs)
        ax_w.set_yticks([])
        ax_m.imshow(m.T.numpy(), origin="lower", aspect="auto", extent=(0, secs, 0, m.shape[1]), cmap="magma")
        ax_m.set_ylabel("mel", fontsize=8)
        for t in (events or {}).get(name, []):
            for ax in (ax_w, ax_m):
                ax.axvline(t, color="c", lw=0.8, alpha=0.8)
        for ax in (ax_f, ax_w):
            ax.set_xticks([])
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["contact_sheet", "frame_strip"]
