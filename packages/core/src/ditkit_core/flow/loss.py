"""Flow-matching losses, condition dropout and minibatch optimal-transport pairing."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mse(pred: Tensor, target: Tensor, mask: Tensor | None = None, weight: Tensor | None = None) -> Tensor:
    """Mean squared error over real tokens only.

    Args:
        pred: ``[b, n, d]`` (or any ``[b, n, ...]``).
        target: like ``pred``.
        mask: ``[b, n]`` bool (True = counts) or a mask shaped like ``pred``.
        weight: optional per-sample weights ``[b]``.

    Returns:
        scalar: sum of squared errors over counted elements / number of counted elements.
    """
    if pred.shape != target.shape:
        raise ValueError(f"masked_mse: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    err = (pred.float() - target.float()) ** 2
    if weight is not None:
        err = err * weight.float().reshape(-1, *([1] * (err.dim() - 1)))
    if mask is None:
        return err.mean()
    m = mask
    while m.dim() < err.dim():
        m = m[..., None]
    m = m.expand_as(err).float()
    return (err * m).sum() / m.sum().clamp_min(1.0)


def drop_conditions(
    b: int, p: float, device: torch.device | str = "cpu", generator: torch.Generator | None = None
) -> Tensor | None:
    """Per-sample bool ``[b]``: True = drop the condition (train the unconditional branch for CFG)."""
    if p <= 0:
        return None
    return torch.rand(b, device=device, generator=generator) < p


def ot_pair(x_0: Tensor, x_1: Tensor, mask: Tensor | None = None) -> Tensor:
    """Re-order noise ``x_0`` to pair with data ``x_1`` by an exact minibatch optimal-transport assignment.

    Pairs minimise the summed squared distance between flattened samples (Tong et al., 2023; Pooladian et al.,
    2023), which straightens the learned flow. Uses the Hungarian algorithm from scipy when available, else a
    greedy assignment.

    Args:
        x_0: noise ``[b, ...]``.
        x_1: data ``[b, ...]``.
        mask: optional ``[b, n]`` token mask; padded tokens do not count in the cost.

    Returns:
        ``x_0`` permuted along the batch dimension.
    """
    a, c = x_0.flatten(1).float(), x_1.flatten(1).float()
    if mask is not None:
        m = mask.reshape(mask.shape[0], mask.shape[1], *([1] * (x_1.dim() - 2))).expand_as(x_1).flatten(1).float()
        cost = ((a[:, None] - c[None]) ** 2 * m[None]).sum(-1)  # [b_noise, b_data], real tokens only
    else:
        cost = torch.cdist(a, c) ** 2  # [b_noise, b_data]
    try:
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        perm = torch.empty(len(cols), dtype=torch.long)
        perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
    except ImportError:
        perm = torch.full((c.shape[0],), -1, dtype=torch.long)
        used = torch.zeros(a.shape[0], dtype=torch.bool)
        for j in range(c.shape[0]):
            col = cost[:, j].clone().cpu()
            col[used] = float("inf")
            i = int(col.argmin())
            perm[j], used[i] = i, True
    return x_0[perm.to(x_0.device)]
