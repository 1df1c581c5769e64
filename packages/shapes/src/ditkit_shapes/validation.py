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


def check_labels(labels: Any, num_classes: int, owner: str, field: str = "labels") -> Tensor | None:
    """Class ids ``[b]`` as a long tensor, each in ``[0, num_classes)`` (``num_classes = 0``: unconditional model).

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
    return t


def check_sampling(owner: str, kw: dict[str, Any]) -> None:
    """Solver keyword arguments of a generation call: ``steps`` (positive int or None), ``cfg_scale`` (finite)."""
    optional_positive_int(kw.get("steps"), "steps", owner)
    if kw.get("cfg_scale") is not None:
        finite_float(kw["cfg_scale"], "cfg_scale", owner)


__all__ = ["check_labels", "check_sampling", "finite_float", "optional_positive_int", "positive_int"]
