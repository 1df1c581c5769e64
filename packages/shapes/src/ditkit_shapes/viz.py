"""Headless renders of point clouds: matplotlib 3D scatter grids (always available) and open3d offscreen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def render_grid(
    clouds: torch.Tensor | np.ndarray,
    path: str | Path,
    titles: list[str] | None = None,
    cols: int = 4,
    point_size: float = 1.0,
    elev: float = 20.0,
    azim: float = -60.0,
) -> Path:
    """Write a PNG grid of 3D scatter renders of ``clouds [n, p, 3]`` (y-up coordinates) and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clouds = np.asarray(clouds.detach().cpu() if isinstance(clouds, torch.Tensor) else clouds)
    n = len(clouds)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = plt.figure(figsize=(2.6 * cols, 2.6 * rows))
    lim = float(np.abs(clouds).max()) if n else 1.0
    for i, pts in enumerate(clouds):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        ax.scatter(pts[:, 0], pts[:, 2], pts[:, 1], s=point_size, c=pts[:, 1], cmap="viridis", linewidths=0)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_zlim(-lim, lim)
        ax.set_box_aspect((1, 1, 1), zoom=1.4)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        if titles:
            ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render_open3d(pts: torch.Tensor | np.ndarray, path: str | Path, size: int = 384) -> Path:
    """Render one cloud offscreen with open3d (needs EGL/OSMesa); raises RuntimeError where unavailable."""
    try:
        import open3d as o3d
    except ImportError as e:  # pragma: no cover
        raise ImportError("render_open3d needs open3d: pip install 'ditkit-shapes[open3d]'") from e
    pts = np.asarray(pts.detach().cpu() if isinstance(pts, torch.Tensor) else pts, dtype=np.float64)
    renderer = o3d.visualization.rendering.OffscreenRenderer(size, size)
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    mat = o3d.visualization.rendering.MaterialRecord()
    mat.shader, mat.point_size = "defaultUnlit", 3.0
    renderer.scene.set_background([1, 1, 1, 1])
    renderer.scene.add_geometry("pcd", pcd, mat)
    center = pts.mean(0)
    renderer.setup_camera(60.0, center, center + np.array([1.5, 1.0, 2.0]), [0, 1, 0])
    img = renderer.render_to_image()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    o3d.io.write_image(str(path), img)
    return path
