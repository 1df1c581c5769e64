"""Command line: ``python -m ditkit_robotics.cli data|eval`` (training runs through ``ditkit fit``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ditkit_robotics.envs import DEFAULT_TASKS


def cmd_data(args: argparse.Namespace) -> None:
    from ditkit_robotics.envs import generate_demos

    summary = generate_demos(args.out, args.tasks, args.episodes, args.seed, args.max_steps)
    for task, row in summary.items():
        print(json.dumps({"task": task, **row}))
    print(f"wrote {args.out}")


def cmd_eval(args: argparse.Namespace) -> None:
    import torch

    from ditkit_core.errors import atomic_write
    from ditkit_robotics.data import load_zarr_episodes
    from ditkit_robotics.evaluate import calibration_batch, evaluate, load_policy

    if "/" in args.tag or "\\" in args.tag:
        raise ValueError(f"eval: --tag={args.tag!r}: must be a file-name suffix (no path separators)")
    torch.set_grad_enabled(False)  # a command-line entry point: nothing here trains
    policy = load_policy(args.pretrained, args.config)
    tasks = args.tasks
    if not tasks:
        _, attrs = load_zarr_episodes(args.data) if Path(args.data).exists() else (None, {"tasks": DEFAULT_TASKS})
        tasks = list(attrs["tasks"])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = evaluate(
        policy,
        tasks,
        episodes=args.episodes,
        seed=args.seed,
        steps=args.steps,
        cache=args.cache,
        max_steps=args.max_steps,
        expert=not args.no_expert,
        gif=None if args.no_gif else out / f"rollout_{tasks[0]}.gif",
        calib=calibration_batch(args.data, 32, policy.tokenizer.n_obs_steps, policy.tokenizer.horizon)
        if "block" in args.cache
        else None,
    )
    with atomic_write(out / f"eval{args.tag}.json", "w") as f:
        f.write(json.dumps(res, indent=2))
    with atomic_write(out / f"eval{args.tag}.md", "w") as f:
        f.write(res["table"] + "\n")
    print(res["table"])
    print(
        json.dumps(
            {
                "metric": "policy_mean_success",
                "value": res["mean_success"],
                "expert": res.get("mean_expert_success"),
                "crashed": res["crashed"],
                "episodes_per_task": args.episodes,
                "steps": args.steps,
                "cache": res["cache"],
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ditkit-robotics", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="scripted-expert Meta-World demonstrations -> zarr")
    d.add_argument("--out", default="data/policy/metaworld_demos.zarr")
    d.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS))
    d.add_argument("--episodes", type=int, default=50, help="episodes per task")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--max-steps", type=int, default=200)
    d.set_defaults(fn=cmd_data)
    e = sub.add_parser("eval", help="roll a trained policy out in Meta-World with fixed seeds")
    e.add_argument("--pretrained", default="outputs/policy/pretrained", help="pretrained folder or a .ckpt")
    e.add_argument("--config", default=None, help="run config.yaml for a .ckpt (default: found above it)")
    e.add_argument("--tag", default="", help="suffix of eval<tag>.json / .md")
    e.add_argument("--data", default="data/policy/metaworld_demos.zarr", help="store whose task list to use")
    e.add_argument("--tasks", nargs="*", default=None)
    e.add_argument("--episodes", type=int, default=20, help="rollouts per task")
    e.add_argument("--seed", type=int, default=1000, help="first reset seed (demos use 0..N-1)")
    e.add_argument("--steps", type=int, default=10, help="solver steps per chunk")
    e.add_argument("--cache", default="auto", choices=["auto", "none", "expert", "block", "expert+block"])
    e.add_argument("--max-steps", type=int, default=500)
    e.add_argument("--out", default="outputs/policy")
    e.add_argument("--no-expert", action="store_true")
    e.add_argument("--no-gif", action="store_true")
    e.set_defaults(fn=cmd_eval)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
