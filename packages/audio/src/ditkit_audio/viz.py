"""Mel spectrogram figures."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor


def plot_mels(mels: list[Tensor], titles: list[str], path: str | Path, title: str = "") -> Path:
    """Stack log-mels ``[f, n_mels]`` vertically (time on x) in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(mels), 1, figsize=(8, 2.2 * len(mels)), squeeze=False)
    vmin = min(float(m.min()) for m in mels)
    vmax = max(float(m.max()) for m in mels)
    for ax, m, t in zip(axes[:, 0], mels, titles):
        ax.imshow(m.detach().cpu().float().T.numpy(), origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="magma")
        ax.set_title(t, fontsize=9)
        ax.set_ylabel("mel")
    axes[-1, 0].set_xlabel("frame")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
