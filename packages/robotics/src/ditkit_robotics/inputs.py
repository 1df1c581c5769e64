"""Checks of inference and evaluation arguments: a bad argument is an error naming it and its value, never a NaN
action, a silently used default or an out-of-range task embedding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from ditkit_core.lightning import CacheConfig
from ditkit_core.sampling import METHODS
from ditkit_robotics.caching import CACHES
from ditkit_robotics.episodes import FLOAT32_MAX

MAX_SOLVER_STEPS = 10_000


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """An integer argument in ``[lo, hi]`` (booleans and fractions refused); the error names ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r}: expected an integer in [{lo}, {hi}]")
    return int(value)


def check_steps(name: str, steps: Any) -> int | None:
    """Solver steps: None (the policy's default) or an integer in ``[1, MAX_SOLVER_STEPS]``."""
    return None if steps is None else check_int(name, steps, 1, MAX_SOLVER_STEPS)


def check_obs(name: str, obs: Any, n_obs_steps: int, obs_dim: int) -> Tensor:
    """Raw observations ``[b, n_obs_steps, obs_dim]``: real, finite, within float32 range; returned as float32.

    Raises:
        ValueError: naming ``name``: wrong type, shape, complex / non-numeric dtype, NaN / inf / huge values.
    """
    if isinstance(obs, np.ndarray):
        if obs.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected real numbers, got dtype {obs.dtype}")
        obs = torch.from_numpy(np.ascontiguousarray(obs))
    if not isinstance(obs, Tensor):
        raise ValueError(f"{name}: expected a tensor [b, {n_obs_steps}, {obs_dim}], got {type(obs).__name__}")
    if obs.is_complex() or obs.dtype == torch.bool:
        raise ValueError(f"{name}: expected real numbers, got dtype {obs.dtype}")
    if obs.dim() != 3 or obs.shape[0] < 1 or tuple(obs.shape[1:]) != (n_obs_steps, obs_dim):
        raise ValueError(f"{name}: expected shape [b >= 1, {n_obs_steps}, {obs_dim}], got {tuple(obs.shape)}")
    if obs.is_floating_point():
        wide = obs.detach().double()
        bad = ~torch.isfinite(wide) | (wide.abs() > FLOAT32_MAX)
        if bool(bad.any()):
            b, s, d = (int(v) for v in bad.nonzero()[0])
            raise ValueError(
                f"{name}: {int(bad.sum())} NaN / infinite / beyond-float32 value(s), first obs[{b}, {s}, {d}]="
                f"{float(wide[b, s, d])}"
            )
    return obs.float()


def check_task_ids(name: str, task_id: Any, b: int, num_tasks: int) -> Tensor | None:
    """Task ids ``[b]`` in ``[0, num_tasks)`` for a multi-task policy (``num_tasks > 1``); None otherwise.

    A single-task policy has no task embedding and ignores ``task_id``.

    Raises:
        ValueError: naming ``name``: missing for a multi-task policy, wrong shape, non-integer, out of range.
    """
    if num_tasks <= 1:
        return None
    if task_id is None:
        raise ValueError(f"{name}: a policy of {num_tasks} tasks needs task ids [b={b}] in [0, {num_tasks})")
    if isinstance(task_id, (int, np.integer)) and not isinstance(task_id, (bool, np.bool_)):
        task_id = torch.full((b,), int(task_id), dtype=torch.long)
    elif isinstance(task_id, np.ndarray):
        task_id = torch.from_numpy(np.ascontiguousarray(task_id))
    if not isinstance(task_id, Tensor):
        raise ValueError(f"{name}: expected an integer tensor [b={b}], got {type(task_id).__name__}")
    if task_id.is_floating_point() or task_id.is_complex() or task_id.dtype == torch.bool:
        raise ValueError(f"{name}: expected integer task ids, got dtype {task_id.dtype}")
    if tuple(task_id.shape) != (b,):
        raise ValueError(f"{name}: expected shape [b={b}], got {tuple(task_id.shape)}")
    bad = (task_id < 0) | (task_id >= num_tasks)
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"{name}[{i}]={int(task_id[i])}: task id outside [0, {num_tasks}) (the policy's num_tasks)")
    return task_id.long()


def check_policy_inputs(
    policy: Any,
    obs: Any,
    task_id: Any,
    steps: Any,
    method: Any,
    where: str = "predict_action",
    cache: Any = None,
) -> tuple[Tensor, Tensor | None]:
    """All arguments of :meth:`PolicyModule.predict_action`; returns ``(obs float32, task_id long or None)``."""
    tok = policy.tokenizer
    obs = check_obs(f"{where}: obs", obs, tok.n_obs_steps, tok.obs_dim)
    task_id = check_task_ids(f"{where}: task_id", task_id, obs.shape[0], int(policy.num_tasks))
    check_steps(f"{where}: steps", steps)
    if method is not None and method not in METHODS:
        raise ValueError(f"{where}: method={method!r}: choose one of {METHODS}")
    if cache is not None and not isinstance(cache, CacheConfig) and (not isinstance(cache, str) or cache not in CACHES):
        raise ValueError(f"{where}: cache={cache!r}: choose one of {CACHES} or pass a CacheConfig")
    return obs, task_id


def check_task_count(num_tasks: int, datamodule: Any) -> int:
    """The data's task count must be the policy's ``num_tasks`` (0 and 1 both mean one task).

    Reads the store's task list (``datamodule.attrs["tasks"]``) and the task ids of its windows, so an id outside
    the policy's task embedding never reaches it.

    Returns:
        the data's task count.

    Raises:
        ValueError: naming both counts (and the store), when they differ or a task id is out of range.
    """
    tasks = list((getattr(datamodule, "attrs", None) or {}).get("tasks") or [])
    ids = [
        ds.data["task_id"]
        for ds in (getattr(datamodule, "train_set", None), getattr(datamodule, "val_set", None))
        if ds is not None and ds.data["task_id"].numel()
    ]
    top = max((int(i.max()) for i in ids), default=-1)
    low = min((int(i.min()) for i in ids), default=0)
    n_data = len(tasks) or top + 1
    expected = max(1, int(num_tasks))
    where = getattr(datamodule, "path", "the data")
    if n_data != expected or top >= expected or low < 0:
        named = f" {tasks}" if tasks else ""
        raise ValueError(
            f"PolicyModule: num_tasks={num_tasks} but {where} holds {n_data} task(s){named} (task ids {low}..{top}); "
            f"set model.init_args.num_tasks: {n_data}"
        )
    return n_data


__all__ = [
    "MAX_SOLVER_STEPS",
    "check_int",
    "check_obs",
    "check_policy_inputs",
    "check_steps",
    "check_task_count",
    "check_task_ids",
]
