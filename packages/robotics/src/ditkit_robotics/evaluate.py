"""Policy evaluation in Meta-World: success per task next to the scripted expert (the ceiling), latency, GIF."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ditkit_core.lightning import CacheConfig
from ditkit_core.sampling import BlockCache
from ditkit_robotics.caching import CACHES
from ditkit_robotics.envs import expert_chunker, make_env, rollout
from ditkit_robotics.inputs import MAX_SOLVER_STEPS, check_int, check_steps
from ditkit_robotics.metrics import success_table
from ditkit_robotics.module import PolicyModule
from ditkit_robotics.viz import write_gif


def policy_chunker(
    policy: PolicyModule, task_id: int, steps: int, seed: int = 0, cache: CacheConfig | str | None = None
):
    """``obs history [n_obs, obs_dim] -> actions [horizon, action_dim]`` (numpy) for ``rollout``.

    Every chunk is sampled by :meth:`PolicyModule.predict_action` under ``cache`` (None: the policy's
    ``sampler.cache``); a block cache starts afresh per chunk, the expert cache is built once.
    """
    if policy.num_tasks > 1:
        check_int("policy_chunker: task_id", task_id, 0, policy.num_tasks - 1)
    check_steps("policy_chunker: steps", steps)
    g = torch.Generator().manual_seed(check_int("policy_chunker: seed", seed, 0, 2**63 - 1))
    tid = torch.tensor([task_id]) if policy.num_tasks > 1 else None

    def act(hist: np.ndarray) -> np.ndarray:
        obs = torch.from_numpy(hist)[None]
        return policy.predict_action(obs, tid, steps=steps, generator=g, cache=cache)[0].cpu().numpy()

    return act


def calibrate_block_cache(
    policy: PolicyModule,
    obs: torch.Tensor,
    task_id: torch.Tensor | None,
    steps: int,
    threshold: float = 0.15,
    max_gap: int = 3,
) -> BlockCache:
    """Block-wise adaptive caching: per-block recompute steps chosen on a calibration batch of observations.

    The policy keeps the schedule for ``steps``: ``cache="block"`` / ``"expert+block"`` sample with it.
    """
    check_steps("calibrate_block_cache: steps", steps)
    check_int("calibrate_block_cache: max_gap", max_gap, 1, MAX_SOLVER_STEPS)
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 <= threshold < float("inf"):
        raise ValueError(f"calibrate_block_cache: threshold={threshold!r}: expected a finite number >= 0")
    return policy.calibrate_block_cache(obs, task_id, steps, threshold=threshold, max_gap=max_gap)


def resolve_cache(policy: PolicyModule, cache: str) -> str:
    """``auto`` -> the policy's ``sampler.cache`` kind; other names of :data:`CACHES` are returned as given."""
    if cache != "auto":
        return cache
    kind = policy.sampler.cache.kind
    return kind if kind in CACHES else "none"


def evaluate(
    policy: PolicyModule,
    tasks: Sequence[str],
    episodes: int = 20,
    seed: int = 1000,
    steps: int = 10,
    cache: str = "auto",
    max_steps: int = 500,
    expert: bool = True,
    gif: Path | None = None,
    gif_task: str | None = None,
    calib: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Roll the policy out ``episodes`` times per task with seeds ``seed + i`` (never used for demonstrations).

    Args:
        policy: a trained :class:`PolicyModule` (its ``num_tasks`` task ids follow ``tasks``' order).
        tasks: Meta-World task names, in the training store's order.
        episodes: rollouts per task.
        seed: first reset seed.
        steps: solver steps per chunk.
        cache: ``auto`` (the policy's ``sampler.cache``), or one of :data:`CACHES`.
        max_steps: environment steps per episode.
        expert: also roll out the scripted expert on the same seeds.
        gif: write a GIF of the first rollout of ``gif_task`` (default: the first task) here.
        calib: ``{"obs": [b, n_obs, obs_dim], "task_id": [b]}`` demonstration observations to calibrate block caching.

    Returns:
        ``{"tasks": {task: {"success", "expert_success", "crashed", "steps", "chunk_ms"}}, "mean_success", ...}``.
    """
    _check_evaluate_args(policy, tasks, episodes, seed, steps, cache, max_steps, gif_task)
    policy.eval()
    cache = resolve_cache(policy, cache)
    tok = policy.tokenizer
    low, high = float(min(tok.action_low)), float(max(tok.action_high))
    out: dict[str, Any] = {"tasks": {}, "episodes": episodes, "seed": seed, "steps": steps, "cache": cache}
    t_start = time.perf_counter()
    if "block" in cache:
        if calib is None:
            raise ValueError("evaluate: block caching needs calibration observations (calib)")
        block = calibrate_block_cache(policy, calib["obs"], calib.get("task_id"), steps)
        out["block_schedule"] = {str(k): sorted(v) for k, v in block.schedule.items()}
    for tid, task in enumerate(tasks):
        env = make_env(task, seed)
        res = [
            rollout(
                env,
                policy_chunker(policy, tid, steps, seed + i, cache),
                seed + i,
                n_obs_steps=tok.n_obs_steps,
                n_action_steps=policy.n_action_steps,
                max_steps=max_steps,
                low=low,
                high=high,
            )
            for i in range(episodes)
        ]
        env.close()
        row = {
            "success": float(np.mean([r.success for r in res])),
            "crashed": int(sum(r.crashed for r in res)),
            "steps": float(np.mean([r.steps for r in res])),
            "chunk_ms": float(np.median([m for r in res for m in r.chunk_ms])),
        }
        if expert:
            env = make_env(task, seed)
            ex = [
                rollout(
                    env,
                    expert_chunker(task, tok.horizon),
                    seed + i,
                    n_obs_steps=1,
                    n_action_steps=1,
                    max_steps=max_steps,
                )
                for i in range(episodes)
            ]
            env.close()
            row["expert_success"] = float(np.mean([r.success for r in ex]))
            row["expert_crashed"] = int(sum(r.crashed for r in ex))
        out["tasks"][task] = row
        print(
            f"[eval] {task}: success {row['success']:.2f} (expert {row.get('expert_success', float('nan')):.2f})"
            f", crashed {row['crashed']}, {row['chunk_ms']:.1f} ms/chunk",
            flush=True,
        )
    if gif is not None:
        task = gif_task or tasks[0]
        env = make_env(task, seed, render=True, size=160)
        r = rollout(
            env,
            policy_chunker(policy, list(tasks).index(task), steps, seed, cache),
            seed,
            n_obs_steps=tok.n_obs_steps,
            n_action_steps=policy.n_action_steps,
            max_steps=min(max_steps, 200),
            record=True,
            record_every=2,
        )
        env.close()
        out["gif"] = str(write_gif(r.frames, Path(gif)))
        out["gif_success"] = r.success
    rows = out["tasks"].values()
    out["mean_success"] = float(np.mean([r["success"] for r in rows]))
    if expert:
        out["mean_expert_success"] = float(np.mean([r["expert_success"] for r in rows]))
    out["crashed"] = int(sum(r["crashed"] for r in rows))
    out["wall_s"] = time.perf_counter() - t_start
    out["table"] = success_table(out)
    return out


def sample_rollouts(
    policy: PolicyModule,
    tasks: Sequence[str],
    episodes: int = 2,
    seed: int = 1000,
    steps: int = 10,
    cache: str = "auto",
    max_steps: int = 200,
    gif_dir: Path | None = None,
    size: int = 128,
    record_every: int = 4,
    calib: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Roll the policy out ``episodes`` times per task (reset seeds ``seed + i``), keeping every predicted chunk.

    The environments are made as :func:`evaluate` makes them (one per task, created with ``seed``), so episode ``i``
    of a task is episode ``i`` of ``evaluate`` with the same arguments. With ``gif_dir``, the first episode of each
    task is rendered (every ``record_every``-th step, ``size`` pixels square) to ``gif_dir/rollout_<task>.gif``.

    Args:
        policy: a trained :class:`PolicyModule` (its task ids follow ``tasks``' order).
        tasks: Meta-World task names, in the training store's order.
        episodes: rollouts per task.
        seed: first reset seed (demonstrations use ``0 .. N-1``).
        steps: solver steps per chunk.
        cache: ``auto`` (the policy's ``sampler.cache``), or one of :data:`CACHES`.
        max_steps: environment steps per episode.
        gif_dir: folder of the GIFs (None: no rendering).
        size: GIF frame size in pixels.
        record_every: keep every ``record_every``-th frame.
        calib: demonstration observations to calibrate block caching (see :func:`evaluate`).

    Returns:
        ``{"episodes": [{"task", "task_id", "seed", "success", "crashed", "steps", "chunks", "chunk_ms"[, "gif"]}],
        "actions": [c, horizon, action_dim], "obs": [c, n_obs_steps, obs_dim], "task_id": [c], "episode": [c],
        "cache": str}`` with ``c`` chunks over all episodes (numpy float32 / int64 arrays), ``episode`` indexing
        ``episodes``.
    """
    _check_evaluate_args(policy, tasks, episodes, seed, steps, cache, max_steps, None)
    check_int("sample_rollouts: size", size, 16, 1024)
    check_int("sample_rollouts: record_every", record_every, 1, 10**6)
    policy.eval()
    cache = resolve_cache(policy, cache)
    tok = policy.tokenizer
    low, high = float(min(tok.action_low)), float(max(tok.action_high))
    if "block" in cache:
        if calib is None:
            raise ValueError("sample_rollouts: block caching needs calibration observations (calib)")
        calibrate_block_cache(policy, calib["obs"], calib.get("task_id"), steps)
    rows: list[dict[str, Any]] = []
    obs_l: list[np.ndarray] = []
    act_l: list[np.ndarray] = []
    index: list[tuple[int, int]] = []
    for tid, task in enumerate(tasks):
        env = make_env(task, seed, render=gif_dir is not None, size=size)
        for i in range(episodes):
            act = policy_chunker(policy, tid, steps, seed + i, cache)

            def recorded(hist: np.ndarray, act=act, tid=tid) -> np.ndarray:
                chunk = act(hist)
                obs_l.append(np.array(hist, np.float32))
                act_l.append(np.array(chunk, np.float32))
                index.append((tid, len(rows)))
                return chunk

            record = gif_dir is not None and i == 0
            r = rollout(
                env,
                recorded,
                seed + i,
                n_obs_steps=tok.n_obs_steps,
                n_action_steps=policy.n_action_steps,
                max_steps=max_steps,
                low=low,
                high=high,
                record=record,
                record_every=record_every,
            )
            row = {
                "task": task,
                "task_id": tid,
                "seed": seed + i,
                "success": bool(r.success),
                "crashed": bool(r.crashed),
                "steps": r.steps,
                "chunks": len(r.chunk_ms),
                "chunk_ms": float(np.median(r.chunk_ms)) if r.chunk_ms else float("nan"),
            }
            if r.error:
                row["error"] = r.error
            if record and r.frames:
                row["gif"] = str(write_gif(r.frames, Path(gif_dir) / f"rollout_{task}.gif"))
            rows.append(row)
        env.close()
    ids = np.asarray(index, np.int64).reshape(-1, 2)
    return {
        "episodes": rows,
        "actions": np.stack(act_l),
        "obs": np.stack(obs_l),
        "task_id": ids[:, 0],
        "episode": ids[:, 1],
        "cache": cache,
    }


def _check_evaluate_args(
    policy: PolicyModule,
    tasks: Sequence[str],
    episodes: int,
    seed: int,
    steps: int,
    cache: str,
    max_steps: int,
    gif_task: str | None,
) -> None:
    """Every argument of :func:`evaluate`, before an environment is built; errors name the argument."""
    if isinstance(tasks, str) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise ValueError(f"evaluate: tasks={tasks!r}: expected a non-empty list of task names")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"evaluate: tasks={list(tasks)!r}: a task is listed twice")
    if policy.num_tasks > 1 and len(tasks) > policy.num_tasks:
        raise ValueError(
            f"evaluate: tasks lists {len(tasks)} tasks, so task ids would run past the policy's "
            f"num_tasks={policy.num_tasks} (task id {len(tasks) - 1} is out of range)"
        )
    check_int("evaluate: episodes", episodes, 1, 100_000)
    check_int("evaluate: seed", seed, 0, 2**32 - 1 - episodes)
    check_int("evaluate: steps", steps, 1, MAX_SOLVER_STEPS)
    check_int("evaluate: max_steps", max_steps, 1, 10**7)
    if cache != "auto" and cache not in CACHES:
        raise ValueError(f"evaluate: cache={cache!r}: choose 'auto' or one of {CACHES}")
    if gif_task is not None and gif_task not in tasks:
        raise ValueError(f"evaluate: gif_task={gif_task!r} is not one of tasks {list(tasks)}")


def calibration_batch(
    store: str | Path, n: int = 32, n_obs_steps: int = 2, horizon: int = 16
) -> dict[str, torch.Tensor]:
    """``n`` evenly spaced (obs history, task id) windows of a demonstration store, for block-cache calibration."""
    from ditkit_robotics.data import load_episodes, make_windows

    check_int("calibration_batch: n", n, 1, 1_000_000)
    eps, _ = load_episodes(store)
    w = make_windows(eps, n_obs_steps, horizon)
    idx = torch.linspace(0, w["obs"].shape[0] - 1, n).long()
    return {"obs": w["obs"][idx], "task_id": w["task_id"][idx]}
