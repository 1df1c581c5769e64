"""Checks of inference and configuration arguments: a bad value raises ``ValueError`` naming the field and value.

Nothing here replaces a bad value by a default: ``points=0`` or ``steps=0`` is an error, not "use the default"
(``None`` is the only way to ask for the default).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor


def positive_int(value: Any, field: str, owner: str, minimum: int = 1) -> int:
    """``value`` as an ``int >= minimum``; booleans, floats and strings are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {field}={value!r}: must be an integer >= {minimum}")
    return int(value)


def optional_positive_int(value: Any, field: str, owner: str) -> int | None:
    """``None`` (use the default) or a positive ``int``."""
    return None if value is None else positive_int(value, field, owner)


def finite_float(value: Any, field: str, owner: str, minimum: float | None = None) -> float:
    """``value`` as a finite float (``>= minimum`` when given)."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {field}={value!r}: must be a finite number") from None
    if isinstance(value, bool) or not math.isfinite(out) or (minimum is not None and out < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{owner}: {field}={value!r}: must be a finite number{bound}")
    return out


def check_labels(
    labels: Any, num_classes: int, owner: str, field: str = "labels", device: torch.device | str | None = None
) -> Tensor | None:
    """Class ids ``[b]`` as a long tensor on ``device``, each in ``[0, num_classes)`` (0 classes: unconditional).

    Raises:
        ValueError: non-integer ids, wrong shape, or an id outside the model's classes (the id is named).
    """
    if labels is None:
        return None
    t = torch.as_tensor(labels)
    if t.ndim != 1:
        raise ValueError(f"{owner}: {field} must be a 1-D list of class ids, got shape {tuple(t.shape)}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        if t.dtype == torch.bool or t.is_complex() or not torch.equal(t, t.round()):
            raise ValueError(f"{owner}: {field}={t.tolist()!r}: class ids must be integers")
    t = t.long()
    if num_classes and t.numel():
        bad = (t < 0) | (t >= num_classes)
        if bad.any():
            v = int(t[bad][0])
            raise ValueError(f"{owner}: {field} contains class id {v}, outside [0, {num_classes}) of this model")
    return t.to(device) if device is not None else t


def check_sampling(owner: str, kw: dict[str, Any]) -> None:
    """Solver keyword arguments of a generation call: ``steps`` (positive int or None), ``cfg_scale`` (finite)."""
    optional_positive_int(kw.get("steps"), "steps", owner)
    if kw.get("cfg_scale") is not None:
        finite_float(kw["cfg_scale"], "cfg_scale", owner)


def check_module_args(
    sample_points: Any, window3d: Any, window_every: Any, point_hidden: Any, fourier_features: Any
) -> None:
    """The module's own arguments: positive point count, window and MLP widths; non-negative window / feature counts.

    (Solver steps and guidance are checked by the core's ``SamplerConfig``.)
    """
    positive_int(sample_points, "sample_points", "ShapesModule")
    positive_int(window3d, "window3d", "ShapesModule", minimum=0)
    positive_int(window_every, "window_every", "ShapesModule")
    positive_int(point_hidden, "point_hidden", "ShapesModule")
    positive_int(fourier_features, "fourier_features", "ShapesModule", minimum=0)


def check_completion(partial: Tensor, known_mask: Tensor, kw: dict[str, Any]) -> None:
    """Inputs of a completion call: finite ``partial [b, p, 3]``, boolean ``known_mask [b, p]``, solver arguments."""
    owner = "complete"
    if partial.ndim != 3 or partial.shape[-1] != 3:
        raise ValueError(f"{owner}: partial must have shape [b, p, 3], got {tuple(partial.shape)}")
    if tuple(known_mask.shape) != tuple(partial.shape[:2]):
        raise ValueError(
            f"{owner}: known_mask shape {tuple(known_mask.shape)} != partial [b, p] {tuple(partial.shape[:2])}"
        )
    if known_mask.dtype != torch.bool:
        raise ValueError(f"{owner}: known_mask must be boolean, got dtype {known_mask.dtype}")
    if not torch.isfinite(partial[known_mask]).all():
        raise ValueError(f"{owner}: partial has NaN/Inf coordinates at known points")
    check_sampling(owner, kw)


__all__ = [
    "check_completion",
    "check_labels",
    "check_module_args",
    "check_sampling",
    "finite_float",
    "optional_positive_int",
    "positive_int",
]
