"""Meta-World: scripted-expert demonstrations and receding-horizon evaluation rollouts (``metaworld`` extra).

Environments are ``gymnasium.make("Meta-World/MT1", env_name=task)`` (39-dim state observations, 4-dim actions in
[-1, 1]); ``reset(seed=s)`` fixes the object and goal placement, so every rollout is reproducible from its seed.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_robotics.data import Episode, write_zarr_episodes

DEFAULT_TASKS = ("reach-v3", "push-v3", "drawer-open-v3", "button-press-topdown-v3", "window-open-v3")


def _metaworld():
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # headless rendering; must precede the mujoco import
    try:
        import gymnasium as gym
        import metaworld  # noqa: F401  (registers the Meta-World/* environments)
        from metaworld.policies import ENV_POLICY_MAP
    except ImportError as e:
        raise ImportError("Meta-World is needed: pip install 'ditkit-robotics[metaworld]'") from e
    return gym, ENV_POLICY_MAP


def make_env(task: str, seed: int = 0, render: bool = False, size: int = 224, camera: str = "corner"):
    """A Meta-World MT1 environment for ``task`` (optionally rendering RGB frames)."""
    gym, policies = _metaworld()
    if task not in policies:
        raise ValueError(f"make_env: unknown Meta-World task {task!r}; e.g. {sorted(policies)[:5]}")
    kw: dict[str, Any] = (
        {"render_mode": "rgb_array", "camera_name": camera, "width": size, "height": size} if render else {}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gym.make("Meta-World/MT1", env_name=task, seed=seed, disable_env_checker=True, **kw)


def expert_policy(task: str) -> Callable[[np.ndarray], np.ndarray]:
    """The scripted expert of ``task`` as ``obs [39] -> action [4]`` (clipped to [-1, 1])."""
    _, policies = _metaworld()
    pol = policies[task]()

    def act(obs: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.clip(pol.get_action(obs), -1.0, 1.0).astype(np.float32)

    return act


def expert_episode(
    task: str, task_id: int, seed: int, env=None, max_steps: int = 200, extra_steps: int = 10
) -> Episode:
    """Record one scripted-expert demonstration, stopping ``extra_steps`` after the first success."""
    env = env or make_env(task, seed)
    act = expert_policy(task)
    obs, _ = env.reset(seed=seed)
    obs_l, act_l, success, after = [], [], False, 0
    for _ in range(max_steps):
        a = act(obs)
        obs_l.append(np.asarray(obs, np.float32))
        act_l.append(a)
        obs, _, term, trunc, info = env.step(a)
        success = success or bool(info.get("success", 0.0) > 0)
        after += success
        if after > extra_steps or term or trunc:
            break
    return Episode(np.stack(obs_l), np.stack(act_l), task_id, task, success, seed)


def generate_demos(
    path: str | Path,
    tasks: Sequence[str] = DEFAULT_TASKS,
    episodes_per_task: int = 50,
    seed: int = 0,
    max_steps: int = 200,
) -> dict[str, Any]:
    """Write ``episodes_per_task`` expert demonstrations per task (seeds ``seed .. seed + N - 1``) to a zarr store.

    Returns:
        a summary: episodes, steps and expert success rate per task.
    """
    episodes, summary = [], {}
    for tid, task in enumerate(tasks):
        env = make_env(task, seed)
        eps = [expert_episode(task, tid, seed + i, env, max_steps) for i in range(episodes_per_task)]
        env.close()
        episodes += eps
        summary[task] = {
            "episodes": len(eps),
            "steps": int(sum(len(e) for e in eps)),
            "expert_success": float(np.mean([e.success for e in eps])),
        }
    write_zarr_episodes(
        path,
        episodes,
        tasks=list(tasks),
        action_low=[-1.0] * 4,
        action_high=[1.0] * 4,
        source=f"metaworld scripted experts, MT1, seeds {seed}..{seed + episodes_per_task - 1}",
    )
    return summary


@dataclass
class RolloutResult:
    """Outcome of one evaluation episode."""

    success: bool
    steps: int
    crashed: bool = False
    error: str = ""
    chunk_ms: list[float] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


def rollout(
    env,
    act_chunk: Callable[[np.ndarray], np.ndarray],
    seed: int,
    *,
    n_obs_steps: int = 2,
    n_action_steps: int = 8,
    max_steps: int = 500,
    record: bool = False,
    record_every: int = 2,
    low: float = -1.0,
    high: float = 1.0,
) -> RolloutResult:
    """Receding-horizon control: predict a chunk from the last ``n_obs_steps`` observations, run its first
    ``n_action_steps`` actions (clipped to the bounds), re-plan; stop at success, at the time limit, or when the
    simulator raises (the episode then counts as a crashed failure).

    Args:
        env: a Meta-World env.
        act_chunk: ``obs history [n_obs_steps, obs_dim] -> actions [horizon, action_dim]``.
        seed: reset seed (fixes object / goal placement).
        record: keep every ``record_every``-th rendered frame.
    """
    obs, _ = env.reset(seed=seed)
    hist = deque([obs] * n_obs_steps, maxlen=n_obs_steps)
    res = RolloutResult(success=False, steps=0)
    if record:
        res.frames.append(_frame(env))
    while res.steps < max_steps:
        t0 = time.perf_counter()
        chunk = act_chunk(np.stack(hist).astype(np.float32))
        res.chunk_ms.append(1000 * (time.perf_counter() - t0))
        for a in np.clip(chunk[:n_action_steps], low, high):
            try:
                obs, _, term, trunc, info = env.step(a)
            except Exception as e:  # noqa: BLE001  simulator failures end the rollout and are counted
                res.crashed, res.error = True, f"{type(e).__name__}: {e}"
                return res
            res.steps += 1
            hist.append(obs)
            if record and res.steps % record_every == 0:
                res.frames.append(_frame(env))
            if info.get("success", 0.0) > 0:
                res.success = True
                return res
            if term or trunc or res.steps >= max_steps:
                return res
    return res


def _frame(env) -> np.ndarray:
    return np.ascontiguousarray(np.flipud(env.render()))  # MuJoCo's offscreen buffer is bottom-up


def expert_chunker(task: str, horizon: int = 16) -> Callable[[np.ndarray], np.ndarray]:
    """The scripted expert as a chunk policy (closed loop: ``rollout`` with ``n_action_steps=1``)."""
    act = expert_policy(task)
    return lambda hist: np.repeat(act(hist[-1])[None], horizon, axis=0)
