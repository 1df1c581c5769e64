"""Command line: ``python -m ditkit_robotics.cli data|sample|eval`` (training runs through ``ditkit fit``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ditkit_core.app import App
from ditkit_robotics.envs import DEFAULT_TASKS


def cmd_data(args: argparse.Namespace) -> None:
    from ditkit_robotics.envs import generate_demos

    summary = generate_demos(args.out, args.tasks, args.episodes, args.seed, args.max_steps)
    for task, row in summary.items():
        print(json.dumps({"task": task, **row}))
    print(f"wrote {args.out}")


def load_trained(config: str | None, pretrained: str | None = None, ckpt: str | None = None):
    """The trained policy of a run through :func:`ditkit_core.lightning.load_run` (allow-listed classes only).

    Defaults come from the run's config: ``<trainer.default_root_dir>/pretrained`` when it exists, else the run's
    last checkpoint (:func:`~ditkit_core.lightning.default_checkpoint`). A ``--pretrained`` that is a file is read as
    a checkpoint.

    Raises:
        FileNotFoundError: no weights (the message names the command that makes them).
        DataError: the loaded module is not a :class:`~ditkit_robotics.PolicyModule`, or a malformed file (named).
    """
    from ditkit_core.errors import DataError
    from ditkit_core.lightning import default_checkpoint, load_run, run_dir
    from ditkit_robotics.module import PolicyModule

    if pretrained is not None and Path(pretrained).is_file():
        pretrained, ckpt = None, ckpt or pretrained
    if pretrained is None and ckpt is None:
        if config is None:
            raise FileNotFoundError("eval: pass --config (the run's app YAML), --pretrained or --ckpt")
        folder = run_dir(config) / "pretrained"
        if folder.is_dir():
            pretrained = str(folder)
        else:
            ckpt = str(default_checkpoint(config))
    if pretrained is not None and not Path(pretrained).exists():
        raise FileNotFoundError(f"eval: {pretrained} does not exist (train it first: `make train-policy`)")
    policy = load_run(config, ckpt=ckpt, pretrained=pretrained)
    if not isinstance(policy, PolicyModule):
        raise DataError(
            f"expected a ditkit_robotics.PolicyModule, got {type(policy).__module__}.{type(policy).__qualname__}",
            path=pretrained or ckpt,
        )
    return policy


def _config_defaults(config: str | None) -> tuple[Path | None, str | None]:
    """``(run folder, demonstration store)`` of an app config (None where it does not say)."""
    if config is None:
        return None, None
    from ditkit_core.lightning import read_config, run_dir

    data = (read_config(config).get("data") or {}).get("init_args") or {}
    store = data.get("path") if isinstance(data, dict) else None
    return run_dir(config), store if isinstance(store, str) and store != "synthetic" else None


def cmd_eval(args: argparse.Namespace) -> None:
    import torch

    _check_tag(args.tag)
    torch.set_grad_enabled(False)  # a command-line entry point: nothing here trains
    eval_command(load_trained(args.config, args.pretrained, args.ckpt), args)


def _check_tag(tag: str) -> None:
    if "/" in tag or "\\" in tag:
        raise ValueError(f"eval: --tag={tag!r}: must be a file-name suffix (no path separators)")


def eval_command(policy: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Roll a loaded policy out in Meta-World with fixed seeds; ``eval<tag>.json`` / ``.md`` in ``args.out``.

    ``ditkit policy eval`` calls it as ``(module, args)``: ``args.steps`` None is the policy's ``sampler.steps``,
    ``args.cache`` None is ``auto`` (the policy's ``sampler.cache``).
    """
    import torch

    from ditkit_core.errors import DataError, atomic_write
    from ditkit_robotics.evaluate import calibration_batch, evaluate, resolve_cache
    from ditkit_robotics.module import PolicyModule

    if not isinstance(policy, PolicyModule):
        raise DataError(f"expected a ditkit_robotics.PolicyModule, got {type(policy).__qualname__}")
    _check_tag(args.tag)
    root, store = _config_defaults(args.config)
    data = args.data or store or "data/policy/metaworld_demos.zarr"
    args.steps = policy.sampler.steps if args.steps is None else args.steps
    tasks = _tasks(args.tasks, data)
    if args.out is None and root is None:
        raise ValueError("eval: pass --out or --config (whose trainer.default_root_dir is the output folder)")
    out = Path(args.out) if args.out is not None else root
    cache = resolve_cache(policy, args.cache or "auto")
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        res = evaluate(
            policy,
            tasks,
            episodes=args.episodes,
            seed=args.seed,
            steps=args.steps,
            cache=cache,
            max_steps=args.max_steps,
            expert=not args.no_expert,
            gif=None if args.no_gif else out / f"rollout_{tasks[0]}.gif",
            calib=calibration_batch(data, 32, policy.tokenizer.n_obs_steps, policy.tokenizer.horizon)
            if "block" in cache
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
    return res


def _eval_arguments(e: argparse.ArgumentParser) -> None:
    """The flags of ``eval`` beyond the common ones (config, weights, steps, seed, cache, output)."""
    e.add_argument("--tag", default="", help="suffix of eval<tag>.json / .md")
    e.add_argument("--data", default=None, help="store whose task list to use (default: the config's data path)")
    e.add_argument("--tasks", nargs="*", default=None)
    e.add_argument("--episodes", type=int, default=20, help="rollouts per task")
    e.add_argument("--max-steps", type=int, default=500)
    e.add_argument("--no-expert", action="store_true")
    e.add_argument("--no-gif", action="store_true")
    e.set_defaults(seed=1000)  # the first reset seed: demonstrations use 0..N-1


eval_command.add_arguments = _eval_arguments


def cmd_sample(args: argparse.Namespace) -> None:
    import torch

    torch.set_grad_enabled(False)  # a command-line entry point: nothing here trains
    sample_command(load_trained(args.config, args.pretrained, args.ckpt), args)


def sample_command(policy: Any, args: argparse.Namespace) -> dict[str, Any]:
    """A few rollouts per task with held-out seeds: what the policy does, to look at (``ditkit policy sample``).

    Writes to ``args.out``: ``rollout_<task>.gif`` (the first episode of each task), ``actions.npz`` (every predicted
    chunk: ``actions`` ``[c, horizon, action_dim]``, the observation history it was predicted from ``obs``
    ``[c, n_obs_steps, obs_dim]``, ``task_id`` ``[c]``, ``episode`` ``[c]`` indexing ``sample.json``'s episodes, and
    the ``tasks`` names) and ``sample.json`` (per episode: task, reset seed, success, environment steps, chunks,
    median ms per chunk). Success rates with controls are ``eval``'s job; this is a quick look.

    ``ditkit policy sample`` calls it as ``(module, args)``: ``args.steps`` None is the policy's ``sampler.steps``,
    ``args.cache`` None is the policy's ``sampler.cache``.

    Raises:
        DataError: ``policy`` is not a :class:`~ditkit_robotics.PolicyModule`.
    """
    import numpy as np
    import torch

    from ditkit_core.errors import DataError, atomic_save, atomic_write
    from ditkit_robotics.evaluate import calibration_batch, resolve_cache, sample_rollouts
    from ditkit_robotics.module import PolicyModule

    if not isinstance(policy, PolicyModule):
        raise DataError(f"expected a ditkit_robotics.PolicyModule, got {type(policy).__qualname__}")
    root, store = _config_defaults(args.config)
    data = args.data or store or "data/policy/metaworld_demos.zarr"
    steps = policy.sampler.steps if args.steps is None else args.steps
    tasks = _tasks(args.tasks, data)
    if args.out is None and root is None:
        raise ValueError("sample: pass --out or --config (whose trainer.default_root_dir is the output folder)")
    out = Path(args.out) if args.out is not None else root / "sample"
    cache = resolve_cache(policy, args.cache or "auto")
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        res = sample_rollouts(
            policy,
            tasks,
            episodes=args.episodes,
            seed=args.seed,
            steps=steps,
            cache=cache,
            max_steps=args.max_steps,
            gif_dir=None if args.no_gif else out,
            calib=calibration_batch(data, 32, policy.tokenizer.n_obs_steps, policy.tokenizer.horizon)
            if "block" in cache
            else None,
        )
    arrays = {k: res[k] for k in ("actions", "obs", "task_id", "episode")}
    atomic_save(out / "actions.npz", lambda tmp: np.savez(tmp, tasks=np.asarray(tasks), **arrays), suffix=".npz")
    rows = [{**r, "gif": Path(r["gif"]).name} if "gif" in r else r for r in res["episodes"]]  # beside sample.json
    summary = {"solver_steps": steps, "cache": res["cache"], "episodes": rows}
    with atomic_write(out / "sample.json", "w") as f:
        f.write(json.dumps(summary, indent=2))
    for row in rows:
        print(json.dumps(row))
    print(f"wrote {out / 'actions.npz'} ({len(res['actions'])} chunks) and {out / 'sample.json'}")
    return summary


def _tasks(tasks: list[str] | None, data: str) -> list[str]:
    """The given task names, else the demonstration store's task list, else :data:`DEFAULT_TASKS`."""
    if tasks:
        return list(tasks)
    from ditkit_robotics.data import load_zarr_episodes

    return list(load_zarr_episodes(data)[1]["tasks"]) if Path(data).exists() else list(DEFAULT_TASKS)


def _sample_arguments(s: argparse.ArgumentParser) -> None:
    """The flags of ``sample`` beyond the common ones (config, weights, steps, seed, cache, output)."""
    s.add_argument("--data", default=None, help="store whose task list to use (default: the config's data path)")
    s.add_argument("--tasks", nargs="*", default=None, help="task names (default: the store's, in training order)")
    s.add_argument("--episodes", type=int, default=2, help="rollouts per task")
    s.add_argument("--max-steps", type=int, default=200, help="environment steps per episode")
    s.add_argument("--no-gif", action="store_true", help="skip rendering (GIFs take most of the time)")
    s.set_defaults(seed=1000)  # the first reset seed, as eval's: demonstrations use 0..N-1


sample_command.add_arguments = _sample_arguments


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
    for name, fn, extra, what in (
        ("sample", cmd_sample, _sample_arguments, "a few rollouts per task: GIFs, predicted chunks, sample.json"),
        ("eval", cmd_eval, _eval_arguments, "roll a trained policy out in Meta-World with fixed seeds"),
    ):
        c = sub.add_parser(name, help=what)
        c.add_argument(
            "--config",
            default="apps/policy/configs/default.yaml",
            help="the run's app YAML: weights, demonstrations and output folder default to its paths",
        )
        c.add_argument("--pretrained", default=None, help="pretrained folder (default: <default_root_dir>/pretrained)")
        c.add_argument(
            "--ckpt", default=None, help="Lightning checkpoint (default: <default_root_dir>/checkpoints/last)"
        )
        c.add_argument("--seed", type=int, default=1000, help="first reset seed (demos use 0..N-1)")
        c.add_argument("--steps", type=int, default=10, help="solver steps per chunk")
        c.add_argument("--cache", default="auto", choices=["auto", "none", "expert", "block", "expert+block"])
        here = "<default_root_dir>" + ("/sample" if name == "sample" else "")
        c.add_argument("--out", default=None, help=f"output folder (default: the config's {here})")
        extra(c)
        c.set_defaults(fn=fn)
    args = p.parse_args(argv)
    args.fn(args)


APP = App(
    name="policy",
    help="visuomotor policy: action chunks on Meta-World demonstrations, evaluated by rollouts (ditkit_robotics)",
    config="apps/policy/configs/default.yaml",
    pretrained="apps/policy/pretrained",
    commands={
        "sample": "ditkit_robotics.cli:sample_command",
        "eval": "ditkit_robotics.cli:eval_command",
        "demo": "ditkit_robotics.demo:demo_command",
    },
    bench="benchmarks/policy.py",
)
"""``ditkit policy fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``; rollouts are its samples)."""


if __name__ == "__main__":
    main()
