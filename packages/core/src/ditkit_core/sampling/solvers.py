"""ODE sampling from noise (t = 0) to data (t = 1): solvers, step schedules, guidance and known values."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ditkit_core.flow.time import shift_time
from ditkit_core.sampling.protocol import branch, solver_call, solver_run

VelocityFn = Callable[..., Tensor]
METHODS = ("euler", "midpoint", "heun", "rk4", "dopri5")
SCHEDULES = ("uniform", "shift", "sigmoid", "sway")
# Velocity evaluations per step of each fixed-step method.
EVALS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}


def time_grid(
    steps: int,
    schedule: str = "uniform",
    *,
    shift: float = 3.0,
    sway: float = -1.0,
    sigmoid_k: float = 6.0,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Monotone grid of ``steps + 1`` times from 0 (noise) to 1 (data).

    Args:
        steps: number of intervals.
        schedule: ``uniform``; ``shift`` (:func:`~ditkit_core.flow.shift_time` with ``shift``, > 1 spends more steps
            near noise); ``sigmoid`` (denser at both ends, slope ``sigmoid_k``); ``sway`` (F5-TTS sway sampling
            ``t = u + s (cos(pi u / 2) - 1 + u)`` with coefficient ``sway`` in [-1, 1]; negative = denser near noise).

    Returns:
        ``[steps + 1]`` float tensor, ``grid[0] = 0``, ``grid[-1] = 1``.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"time_grid: steps must be a positive int, got {steps!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"time_grid: unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    u = torch.linspace(0, 1, steps + 1, dtype=torch.float64)
    if schedule == "shift":
        t = shift_time(u, shift)
    elif schedule == "sigmoid":
        s = torch.sigmoid(sigmoid_k * (u - 0.5))
        t = (s - s[0]) / (s[-1] - s[0])
    elif schedule == "sway":
        if not -1.0 <= sway <= 1.0:
            raise ValueError(f"time_grid: sway coefficient must be in [-1, 1], got {sway}")
        t = u + sway * (torch.cos(math.pi / 2 * u) - 1 + u)
    else:
        t = u
    t[0], t[-1] = 0.0, 1.0
    return t.to(device=device, dtype=torch.float32)


def guided(
    velocity_fn: VelocityFn,
    cfg_scale: float = 1.0,
    cfg_rescale: float = 0.0,
    cfg_interval: tuple[float, float] | None = None,
) -> VelocityFn:
    """Wrap a velocity with classifier-free guidance.

    ``v = v_u + w (v_c - v_u)``; with ``cfg_rescale = phi`` the guided velocity is rescaled to the per-sample
    standard deviation of ``v_c`` and mixed ``phi * rescaled + (1 - phi) * v`` (Lin et al., 2024). Inside
    ``cfg_interval = (lo, hi)`` guidance applies, outside only the conditional branch runs (Kynkaanniemi et al.).

    Args:
        velocity_fn: ``velocity_fn(x, t, cond_drop: bool) -> v``.
    """
    if cfg_scale == 1.0:
        return lambda x, t: velocity_fn(x, t, False)

    def fn(x: Tensor, t: Tensor) -> Tensor:
        v_c = velocity_fn(x, t, False)
        if cfg_interval is not None:
            lo, hi = cfg_interval
            if not bool(((t >= lo) & (t <= hi)).any()):
                return v_c
        with branch("uncond"):  # caches keep one state per branch
            v_u = velocity_fn(x, t, True)
        v = v_u + cfg_scale * (v_c - v_u)
        if cfg_rescale > 0:
            dims = tuple(range(1, v.dim()))
            ratio = v_c.std(dim=dims, keepdim=True) / v.std(dim=dims, keepdim=True).clamp_min(1e-8)
            v = cfg_rescale * v * ratio + (1 - cfg_rescale) * v
        if cfg_interval is not None:
            inside = ((t >= cfg_interval[0]) & (t <= cfg_interval[1])).reshape(-1, *([1] * (v.dim() - 1)))
            v = torch.where(inside, v, v_c)
        return v

    return fn


def _step(fn: Callable[[Tensor, Tensor], Tensor], method: str, x: Tensor, t0: Tensor, t1: Tensor, step: int) -> Tensor:
    """One solver step; every evaluation is announced to caches (step, stage, evaluation index)."""
    b = x.shape[0]
    h = (t1 - t0).to(x.dtype)
    per_step = EVALS_PER_STEP[method]

    dt = float(t1 - t0)

    def f(stage: int, x: Tensor, t: Tensor) -> Tensor:
        with solver_call(step, stage, step * per_step + stage, dt):
            return fn(x, t.expand(b))  # time as [b]

    if method == "euler":
        return x + h * f(0, x, t0)
    if method == "midpoint":
        k1 = f(0, x, t0)
        return x + h * f(1, x + 0.5 * h * k1, t0 + 0.5 * (t1 - t0))
    if method == "heun":
        k1 = f(0, x, t0)
        k2 = f(1, x + h * k1, t1)
        return x + 0.5 * h * (k1 + k2)
    # classical RK4
    tm = t0 + 0.5 * (t1 - t0)
    k1 = f(0, x, t0)
    k2 = f(1, x + 0.5 * h * k1, tm)
    k3 = f(2, x + 0.5 * h * k2, tm)
    k4 = f(3, x + h * k3, t1)
    return x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


@torch.no_grad()
def sample(
    velocity_fn: VelocityFn,
    x_0: Tensor,
    *,
    steps: int = 32,
    method: Literal["euler", "midpoint", "heun", "rk4", "dopri5"] = "euler",
    schedule: Literal["uniform", "shift", "sigmoid", "sway"] = "uniform",
    shift: float = 3.0,
    sway: float = -1.0,
    cfg_scale: float = 1.0,
    cfg_rescale: float = 0.0,
    cfg_interval: tuple[float, float] | None = None,
    known: Tensor | None = None,
    known_mask: Tensor | None = None,
    return_trajectory: bool = False,
    progress: bool = False,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    euler_at_end: bool = False,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    """Integrate ``dx/dt = v(x, t)`` from noise ``x_0`` at t = 0 to a sample at t = 1.

    Args:
        velocity_fn: ``velocity_fn(x, t) -> v`` with ``t [b]``; with ``cfg_scale != 1`` it is called as
            ``velocity_fn(x, t, cond_drop)`` with ``cond_drop`` a bool (True = unconditional branch).
        x_0: noise ``[b, ...]``.
        steps: number of solver steps (for ``dopri5``: ignored; adaptive, needs torchdiffeq).
        method: ``euler`` (order 1), ``midpoint``, ``heun`` (order 2), ``rk4`` (order 4), ``dopri5`` (adaptive).
        schedule: time grid, see :func:`time_grid`; ``shift`` and ``sway`` parametrise it.
        cfg_scale: classifier-free guidance weight (1 = off).
        cfg_rescale: guidance rescale factor phi in [0, 1].
        cfg_interval: ``(t_lo, t_hi)``: guidance only for ``t`` inside.
        known: values to keep ``[b, ...]`` like ``x_0`` (infilling, imputation, voice prompts).
        known_mask: bool, broadcastable to ``x_0``; True where ``known`` holds. Known entries follow the
            path ``(1 - t) x_0 + t known`` exactly, so the sample equals ``known`` there.
        return_trajectory: also return the list of states at every grid time.
        progress: show a tqdm progress bar.
        atol, rtol: tolerances of ``dopri5``.
        euler_at_end: the methods that evaluate at the end of a step (``heun``, ``rk4``) take an Euler step instead
            on the step that ends at t = 1. A velocity implied by a data prediction, ``(x_1 - x_t) / (1 - t)``, is
            undefined there (EDM's Heun sampler ends with an Euler step for the same reason); a corrector at t = 1
            multiplies the last change of the prediction by ``1 / min_sigma``.

    Returns:
        the sample at t = 1 ``[b, ...]`` (and the trajectory).
    """
    if method not in METHODS:
        raise ValueError(f"sample: unknown method {method!r}; choose one of {METHODS}")
    if method != "dopri5" and (not isinstance(steps, int) or isinstance(steps, bool) or steps < 1):
        raise ValueError(f"sample: steps={steps!r} must be a positive integer")
    if not (isinstance(cfg_scale, (int, float)) and math.isfinite(cfg_scale)):
        raise ValueError(f"sample: cfg_scale={cfg_scale!r} must be a finite number")
    if not 0.0 <= cfg_rescale <= 1.0:
        raise ValueError(f"sample: cfg_rescale={cfg_rescale!r} must be in [0, 1]")
    if (known is None) != (known_mask is None):
        raise ValueError("sample: known and known_mask must be given together")
    if known is not None and known.shape != x_0.shape:
        raise ValueError(f"sample: known {tuple(known.shape)} must match x_0 {tuple(x_0.shape)}")
    fn = guided(velocity_fn, cfg_scale, cfg_rescale, cfg_interval) if cfg_scale != 1.0 else velocity_fn
    if known is not None:
        km = known_mask.to(torch.bool).expand_as(x_0)

        def clamp(x: Tensor, t: Tensor | float) -> Tensor:
            t = torch.as_tensor(t, device=x.device, dtype=x.dtype)
            return torch.where(km, (1 - t) * x_0 + t * known, x)
    else:
        clamp = None

    with solver_run():
        if method == "dopri5":
            return _adaptive(fn, x_0, clamp, return_trajectory, atol, rtol)
        grid = time_grid(steps, schedule, shift=shift, sway=sway, device=x_0.device).to(x_0.dtype)
        x = x_0 if clamp is None else clamp(x_0, 0.0)
        traj = [x] if return_trajectory else []
        for i in tqdm(range(steps), disable=not progress, desc=f"sampling ({method}, {steps} steps)", leave=False):
            end = euler_at_end and method in ("heun", "rk4") and float(grid[i + 1]) >= 1.0
            x = _step(fn, "euler" if end else method, x, grid[i], grid[i + 1], i)
            if clamp is not None:
                x = clamp(x, grid[i + 1])
            if return_trajectory:
                traj.append(x)
    return (x, traj) if return_trajectory else x


def _adaptive(
    fn: Callable[[Tensor, Tensor], Tensor],
    x_0: Tensor,
    clamp: Callable | None,
    return_trajectory: bool,
    atol: float,
    rtol: float,
) -> Tensor | tuple[Tensor, list[Tensor]]:
    try:
        from torchdiffeq import odeint
    except ImportError as e:
        raise ImportError("sample(method='dopri5') needs torchdiffeq: pip install 'ditkit-core[adaptive]'") from e
    b = x_0.shape[0]
    count = itertools.count()

    def rhs(t: Tensor, x: Tensor) -> Tensor:
        i = next(count)  # adaptive steps: every evaluation is its own step
        with solver_call(i, 0, i):
            return fn(x if clamp is None else clamp(x, t), t.expand(b))

    ts = torch.tensor([0.0, 1.0], device=x_0.device)
    out = odeint(rhs, x_0, ts, method="dopri5", atol=atol, rtol=rtol)
    x = out[-1] if clamp is None else clamp(out[-1], 1.0)
    return (x, list(out)) if return_trajectory else x
