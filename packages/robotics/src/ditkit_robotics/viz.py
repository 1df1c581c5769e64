"""Figures: sampled vs demonstrated action chunks (PNG) and rollout GIFs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from torch import Tensor


def plot_chunks(pred: Tensor, demo: Tensor, path: Path, n_action_steps: int = 8, title: str = "") -> Path:
    """One panel per sample: each action dimension over the chunk, policy (solid) vs demonstration (dashed).

    Args:
        pred: sampled actions ``[b, horizon, action_dim]``.
        demo: demonstrated actions ``[b, horizon, action_dim]``.
        path: output PNG.
        n_action_steps: executed prefix (shaded).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    b = pred.shape[0]
    fig, axes = plt.subplots(1, b, figsize=(3.2 * b, 2.8), squeeze=False)
    for i, ax in enumerate(axes[0]):
        for d in range(pred.shape[-1]):
            (line,) = ax.plot(np.asarray(pred[i, :, d]), lw=1.5)
            ax.plot(np.asarray(demo[i, :, d]), ls="--", lw=1.0, color=line.get_color())
        ax.axvspan(-0.5, n_action_steps - 0.5, color="0.9", zorder=0)
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("step in chunk")
    axes[0][0].set_ylabel("action (solid: policy, dashed: expert)")
    fig.suptitle(title or "sampled action chunks vs demonstrations (shaded: executed)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_gif(frames: Sequence[np.ndarray], path: Path, fps: int = 20) -> Path:
    """Write ``[H, W, 3]`` uint8 frames as an animated GIF (Pillow)."""
    from PIL import Image

    if not frames:
        raise ValueError(f"write_gif: no frames for {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    return path
