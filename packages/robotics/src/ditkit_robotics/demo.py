"""``ditkit policy demo``: Meta-World rollouts of the shipped policy on held-out reset seeds, success next to the
scripted expert that made the demonstrations and to a random-action control, with a rollout GIF."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import torch


@torch.no_grad()
def demo_command(module: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Samples + metrics for the ``ditkit demo`` report (see :mod:`ditkit_core.report` for the returned dict)."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    from ditkit_robotics.envs import DEFAULT_TASKS
    from ditkit_robotics.evaluate import evaluate, resolve_cache

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tasks = list(DEFAULT_TASKS)
    cache = resolve_cache(module, "auto")
    cache = "expert" if "block" in cache else cache  # a block cache needs calibration batches from the demos
    steps = module.sampler.steps if args.steps is None else args.steps
    gif = out / f"rollout_{tasks[0]}.gif"
    res = evaluate(module, tasks, episodes=args.episodes, seed=1000 + args.seed, steps=steps, cache=cache, gif=gif)
    per_task = res["tasks"]
    ms = sum(r["chunk_ms"] for r in per_task.values()) / len(per_task)
    metrics = [
        {
            "name": "success rate (mean over tasks)",
            "model": res["mean_success"],
            "controls": {"scripted expert": res.get("mean_expert_success")},
            "goal": "within 5 points of the expert",
            "met": res["mean_success"] >= (res.get("mean_expert_success") or 1.0) - 0.05,
        },
        {"name": "ms per action chunk (16 actions)", "model": ms, "goal": "", "met": None, "check": False},
    ]
    metrics += [
        {
            "name": f"success: {task}",
            "model": r["success"],
            "controls": {"scripted expert": r.get("expert_success")},
            "goal": "",
            "met": None,
        }
        for task, r in per_task.items()
    ]
    return {
        "title": "Robot policy (Meta-World, diffusion-policy style)",
        "summary": f"{args.episodes} rollouts per task on reset seeds never used for demonstrations, {steps} solver "
        f"steps per 16-action chunk (cache: {cache}).",
        "media": [{"path": gif, "caption": f"rollout of {tasks[0]}"}] if gif.exists() else [],
        "metrics": metrics,
    }


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--episodes", type=int, default=2, help="rollouts per task")


demo_command.add_arguments = _demo_arguments
