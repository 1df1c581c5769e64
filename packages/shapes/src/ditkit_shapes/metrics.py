"""CPU-exact point-cloud distances and the PointFlow evaluation protocol (MMD, COV, 1-NNA).

Definitions (PointFlow, Yang et al. 2019; same conventions as its released code, computed exactly on CPU):

* Chamfer distance ``CD(X, Y) = mean_x min_y |x - y|^2 + mean_y min_x |x - y|^2`` (squared distances, means).
* Earth mover's distance ``EMD(X, Y) = min_sigma (1/p) sum_i |x_i - y_sigma(i)|`` over bijections ``sigma``
  (Euclidean distances), solved exactly by ``scipy.optimize.linear_sum_assignment``. It needs equal point
  counts; with ``emd_points`` both clouds are first reduced to a fixed, seeded subset of that many points
  (a documented approximation for large clouds: assignment costs ``O(p^3)``).
* With ``D_sr [n_s, n_r]`` distances between generated ``S`` and reference ``R``:
  ``MMD = mean_r min_s D(s, r)``; ``COV = |{argmin_r D(s, r) : s in S}| / |R|``;
  ``1-NNA`` = leave-one-out accuracy of the 1-nearest-neighbour classifier on ``S u R`` (labels: which set);
  50 % is ideal for an independent sample of the reference distribution; a generator that copies ``R``
  exactly scores 0 % (each copy's nearest neighbour is its twin); 100 % means the sets are fully separable.

All figures are computed over the full reference set (no per-batch averaging).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).float()


def chamfer(x: Tensor, y: Tensor) -> Tensor:
    """Chamfer distance between clouds ``x [..., p, 3]`` and ``y [..., q, 3]`` (broadcast batch) -> ``[...]``."""
    d = torch.cdist(x, y).square()  # [..., p, q]
    return d.min(-1).values.mean(-1) + d.min(-2).values.mean(-1)


def emd(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    """Exact EMD between two clouds ``[p, 3]`` with the same number of points (mean matched distance)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"emd: clouds need the same shape, got {x.shape} and {y.shape} (use emd_points)")
    cost = np.sqrt(((x[:, None, :] - y[None, :, :]) ** 2).sum(-1))  # [p, p]
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def pairwise_chamfer(
    a: Tensor, b: Tensor, max_elems: int = 2**24, symmetric: bool = False, method: str = "auto"
) -> Tensor:
    """Chamfer distances ``[n_a, n_b]`` between two sets of clouds ``a [n_a, p, 3]``, ``b [n_b, q, 3]``.

    Args:
        method: ``kdtree`` (exact nearest neighbours with one ``scipy.spatial.cKDTree`` per cloud,
            ``O(p log q)`` per pair, fastest on CPU for large clouds), ``torch`` (dense distance blocks of at most
            ``max_elems`` entries; small clouds, accelerators) or ``auto`` (``torch`` when ``p q <= 65536``).
        symmetric: ``a`` and ``b`` are the same set: compute the upper triangle only.
    """
    a, b = _as_tensor(a), _as_tensor(b)
    na, nb, p, q = a.shape[0], b.shape[0], a.shape[1], b.shape[1]
    out = torch.zeros(na, nb)
    if method == "auto":
        method = "torch" if p * q <= 65536 else "kdtree"
    if method == "kdtree":
        from scipy.spatial import cKDTree

        an, bn = a.double().numpy(), b.double().numpy()
        trees_a, trees_b = [cKDTree(x) for x in an], ([cKDTree(x) for x in bn] if not symmetric else None)
        trees_b = trees_b or trees_a
        for i in range(na):
            for j in range(i + 1 if symmetric else 0, nb):
                d_ab, _ = trees_b[j].query(an[i])
                d_ba, _ = trees_a[i].query(bn[j])
                out[i, j] = float((d_ab**2).mean() + (d_ba**2).mean())
    elif method == "torch":
        chunk = max(1, max_elems // (p * q))
        for i in range(na):
            start = i + 1 if symmetric else 0
            for j in range(start, nb, chunk):
                out[i, j : j + chunk] = chamfer(a[i][None], b[j : j + chunk])
    else:
        raise ValueError(f"pairwise_chamfer: unknown method {method!r}; choose auto, kdtree or torch")
    if symmetric:
        out = out + out.T
    return out


def subset_points(clouds: Tensor, points: int | None, seed: int) -> Tensor:
    """A seeded random subset of ``points`` points (without replacement) of every cloud ``[n, p, 3]``."""
    if points is None or points >= clouds.shape[1]:
        return clouds
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(clouds.shape[1], generator=g)[:points] for _ in range(clouds.shape[0])])
    return torch.gather(clouds, 1, idx[..., None].expand(-1, -1, 3))


def pairwise_emd(a: Tensor, b: Tensor, symmetric: bool = False) -> Tensor:
    """Exact EMD ``[n_a, n_b]`` between two sets of clouds with equal point counts."""
    a, b = _as_tensor(a).double().numpy(), _as_tensor(b).double().numpy()
    out = np.zeros((a.shape[0], b.shape[0]))
    for i in range(a.shape[0]):
        for j in range(i + 1 if symmetric else 0, b.shape[0]):
            out[i, j] = emd(a[i], b[j])
    if symmetric:
        out = out + out.T
    return torch.from_numpy(out).float()


def mmd_cov(d_sr: Tensor) -> tuple[float, float]:
    """MMD and COV from generated-to-reference distances ``d_sr [n_s, n_r]``."""
    mmd = float(d_sr.min(0).values.mean())
    cov = float(d_sr.argmin(1).unique().numel() / d_sr.shape[1])
    return mmd, cov


def one_nna(d_ss: Tensor, d_rr: Tensor, d_sr: Tensor) -> float:
    """Leave-one-out 1-NN accuracy on ``S u R`` from the three distance blocks (``[n_s, n_s]``, ``[n_r, n_r]``,
    ``[n_s, n_r]``)."""
    ns, nr = d_ss.shape[0], d_rr.shape[0]
    full = torch.cat([torch.cat([d_ss, d_sr], 1), torch.cat([d_sr.T, d_rr], 1)], 0).clone()  # [n_s+n_r, n_s+n_r]
    full.fill_diagonal_(float("inf"))
    labels = torch.cat([torch.zeros(ns), torch.ones(nr)])
    return float((labels[full.argmin(1)] == labels).float().mean())


def distance_blocks(
    gen: Tensor, ref: Tensor, metric: str, emd_points: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """``(d_ss, d_rr, d_sr)`` for ``metric`` in ``cd`` / ``emd``."""
    gen, ref = _as_tensor(gen), _as_tensor(ref)
    if metric == "cd":
        return (
            pairwise_chamfer(gen, gen, symmetric=True),
            pairwise_chamfer(ref, ref, symmetric=True),
            pairwise_chamfer(gen, ref),
        )
    if metric == "emd":
        gen, ref = subset_points(gen, emd_points, seed), subset_points(ref, emd_points, seed + 1)
        return pairwise_emd(gen, gen, symmetric=True), pairwise_emd(ref, ref, symmetric=True), pairwise_emd(gen, ref)
    raise ValueError(f"distance_blocks: unknown metric {metric!r}; choose cd or emd")


def evaluate_sets(
    gen: Tensor | np.ndarray,
    ref: Tensor | np.ndarray,
    metrics: tuple[str, ...] = ("cd", "emd"),
    emd_points: int | None = 512,
    seed: int = 0,
) -> dict[str, float]:
    """PointFlow protocol between generated clouds ``gen [n_s, p, 3]`` and reference clouds ``ref [n_r, q, 3]``.

    Returns:
        ``{"MMD-CD", "COV-CD", "1-NNA-CD", "MMD-EMD", "COV-EMD", "1-NNA-EMD"}`` (for the metrics asked); COV and
        1-NNA are fractions in [0, 1].
    """
    gen, ref = _as_tensor(gen), _as_tensor(ref)
    for name, s in (("gen", gen), ("ref", ref)):
        if s.dim() != 3 or s.shape[-1] != 3:
            raise ValueError(f"evaluate_sets: {name} must be [n, p, 3], got {tuple(s.shape)}")
        if not torch.isfinite(s).all():
            raise ValueError(f"evaluate_sets: {name} contains NaN/Inf")
    out: dict[str, float] = {}
    for m in metrics:
        d_ss, d_rr, d_sr = distance_blocks(gen, ref, m, emd_points, seed)
        key = m.upper()
        out[f"MMD-{key}"], out[f"COV-{key}"] = mmd_cov(d_sr)
        out[f"1-NNA-{key}"] = one_nna(d_ss, d_rr, d_sr)
    return out
