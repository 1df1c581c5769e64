"""Caching vs fewer steps at equal block evaluations, with each domain's own metric.

For every app, from its shipped weights (``apps/<app>/pretrained``), the same items and seeds are scored under four
settings:

* ``plain``: the model's default ``sampler.steps`` N, no cache (the reference);
* ``half_steps``: N // 2 steps, no cache (the simple way to halve the cost);
* ``block``: N steps under ``BlockCache(interval=2, order=1)`` (every block recomputed every other evaluation,
  extrapolated linearly in t in between: about half the block evaluations);
* ``step``: N steps under ``StepCache`` with its threshold calibrated on this model for a 0.5 skip ratio (the
  calibration run is counted and timed apart, ``calib_*``).

Block evaluations are **counted**, not assumed: a forward hook on every block of every DiT of the module counts
the blocks actually run (``block_evals``). Time is that of ``generate`` only (the metric's own work excluded): wall
and process CPU seconds. ``deviation`` is the relative RMS distance of each setting's samples to the plain run's
(same noise, same items; policy: the first action chunk of every episode, where the observations still agree), a
noise-free measure of how far the cheap sampler strays. One JSON line per (app, setting), then one ``summary`` line
per app: does a cache lose less metric than halving the steps at no more block evaluations?

Metrics (direction in ``higher_is_better``): TTS probe CER of the generated speech (+ MCD-DTW), shapes 1-NNA-CD
(%, 50 is ideal, lower is better), policy Meta-World success rate, sits masked reconstruction MAE.

    python benchmarks/cache_vs_steps.py [--apps tts shapes policy sits] [--tts-n 64] [--shapes-n 16]
        [--policy-episodes 10] [--sits-samples 32] [--no-step] [--steps policy=2 tts=8]

Data: TTS reads a corpus (``python -m ditkit_audio.cli data --n 300 --out outputs/tts/data``) and the shipped
probe; shapes reads ``python -m ditkit_shapes.cli data --config apps/shapes/configs/default.yaml``; sits makes its
synthetic series itself; policy needs Meta-World only.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit  # noqa: E402

from ditkit_core.lightning import CacheConfig  # noqa: E402
from ditkit_core.sampling import find_dits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
APPS = ("tts", "shapes", "policy", "sits")


# ---------------------------------------------------------------------- settings and counting
@dataclass(frozen=True)
class Setting:
    """One way of sampling: solver steps and the cache it runs under."""

    name: str
    steps: int
    cache: CacheConfig


def settings(steps: int, step_cache: bool = True) -> list[Setting]:
    """The compared settings at the model's default ``steps`` N (see the module docstring).

    Raises:
        ValueError: ``steps`` < 2 (there is nothing to halve).
    """
    if not isinstance(steps, int) or steps < 2:
        raise ValueError(f"settings: steps={steps!r} must be an integer >= 2 to compare against N // 2 steps")
    out = [
        Setting("plain", steps, CacheConfig(kind="none")),
        Setting("half_steps", steps // 2, CacheConfig(kind="none")),
        Setting("block", steps, CacheConfig(kind="block", interval=2, order=1)),
    ]
    if step_cache:
        out.append(Setting("step", steps, CacheConfig(kind="step", skip_ratio=0.5)))
    return out


@dataclass
class EvalMeter:
    """Counts the DiT blocks a module actually runs and times its ``generate`` calls, inside a ``with`` block.

    Every block of every :class:`~ditkit_core.nn.DiT` in ``module`` gets a forward hook, so a block skipped or
    extrapolated by a cache is not counted and every computed one is, whatever path ran it. ``generate`` and
    ``make_cache`` are wrapped on the instance (removed on exit): work done while a cache calibrates itself (a
    StepCache's first run) is counted in ``calib_*`` and left out of ``block_evals`` and the times. The sampled
    tokens of every call are kept in ``outputs`` (for :func:`deviation`).
    """

    module: Any
    block_evals: int = 0
    generate_calls: int = 0
    cpu_s: float = 0.0
    wall_s: float = 0.0
    calib_block_evals: int = 0
    calib_cpu_s: float = 0.0
    calib_wall_s: float = 0.0
    outputs: list[torch.Tensor] = field(default_factory=list)
    _count: int = 0
    _handles: list[Any] = field(default_factory=list)

    def _hook(self, *_: Any) -> None:
        self._count += 1

    def __enter__(self) -> EvalMeter:
        dits = find_dits(self.module)
        if not dits:
            raise ValueError(f"EvalMeter: {type(self.module).__name__} contains no ditkit_core.nn.DiT")
        self._handles = [blk.register_forward_hook(self._hook) for d in dits for blk in d.blocks]
        generate, make_cache = self.module.generate, self.module.make_cache

        def timed_generate(*args: Any, **kw: Any) -> Any:
            n0, c0, w0 = self._count, time.process_time(), time.perf_counter()
            cb, cc, cw = self.calib_block_evals, self.calib_cpu_s, self.calib_wall_s
            try:
                out = generate(*args, **kw)
                x = out[0].x if isinstance(out, tuple) else out.x
                self.outputs.append(x.detach().float().cpu())
                return out
            finally:
                self.generate_calls += 1
                self.block_evals += self._count - n0 - (self.calib_block_evals - cb)
                self.cpu_s += time.process_time() - c0 - (self.calib_cpu_s - cc)
                self.wall_s += time.perf_counter() - w0 - (self.calib_wall_s - cw)

        def metered_make_cache(*args: Any, **kw: Any) -> Any:
            n0, c0, w0 = self._count, time.process_time(), time.perf_counter()
            try:
                return make_cache(*args, **kw)
            finally:
                self.calib_block_evals += self._count - n0
                self.calib_cpu_s += time.process_time() - c0
                self.calib_wall_s += time.perf_counter() - w0

        # instance attributes shadow the class's methods for every caller (predict_action, sample_clouds, ...)
        object.__setattr__(self.module, "generate", timed_generate)
        object.__setattr__(self.module, "make_cache", metered_make_cache)
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        for name in ("generate", "make_cache"):
            self.module.__dict__.pop(name, None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "block_evals": self.block_evals,
            "generate_calls": self.generate_calls,
            "cpu_s": round(self.cpu_s, 3),
            "wall_s": round(self.wall_s, 3),
            "calib_block_evals": self.calib_block_evals,
            "calib_cpu_s": round(self.calib_cpu_s, 3),
        }


def deviation(outputs: list[torch.Tensor], reference: list[torch.Tensor]) -> float:
    """Relative RMS distance of matched samples to the reference's: ``sqrt(sum |x - r|^2 / sum |r|^2)``.

    Samples drawn from the same noise and items by two samplers of one model are matched one to one; the distance
    measures how far a cheaper sampler strays from the reference sampler (0: identical), free of the sampling noise
    that the domain metric carries.

    Raises:
        ValueError: different numbers of samples, or a pair of different shapes.
    """
    if len(outputs) != len(reference) or not reference:
        raise ValueError(f"deviation: {len(outputs)} samples vs {len(reference)} reference samples")
    num = den = 0.0
    for x, r in zip(outputs, reference):
        if x.shape != r.shape:
            raise ValueError(f"deviation: sample of shape {tuple(x.shape)} vs reference {tuple(r.shape)}")
        num += float((x.double() - r.double()).pow(2).sum())
        den += float(r.double().pow(2).sum())
    return (num / max(den, 1e-30)) ** 0.5


def verdict(rows: dict[str, dict[str, Any]], higher_is_better: bool, tolerance: float = 0.02) -> dict[str, Any]:
    """Does a cache lose less metric than halving the steps, at no more block evaluations?

    Args:
        rows: setting name -> ``{"metric": float, "block_evals": int}``; needs ``plain`` and ``half_steps``.
        higher_is_better: the metric's direction.
        tolerance: a cache may run this fraction more block evaluations than ``half_steps`` and still count as equal.

    Returns:
        ``{"loss": {setting: metric lost vs plain (positive = worse)}, "evals_vs_half": {cache: ratio},
        "winners": [caches that lose strictly less at equal evaluations], "cache_beats_halving": bool,
        "closer_to_plain": [caches at equal evaluations whose samples stray less than half_steps' (``deviation``)],
        "best": the setting with the smallest loss among half_steps and the caches at equal evaluations (half_steps
        on a tie), "plainly": one sentence}``.
    """
    for need in ("plain", "half_steps"):
        if need not in rows:
            raise KeyError(f"verdict: no {need!r} row (got {sorted(rows)})")
    sign = -1.0 if higher_is_better else 1.0
    ref = rows["plain"]["metric"]
    loss = {k: sign * (r["metric"] - ref) for k, r in rows.items() if k != "plain"}
    half = rows["half_steps"]
    caches = [k for k in rows if k not in ("plain", "half_steps")]
    ratio = {k: rows[k]["block_evals"] / max(half["block_evals"], 1) for k in caches}
    fair = [k for k in caches if ratio[k] <= 1.0 + tolerance]
    winners = [k for k in fair if loss[k] < loss["half_steps"]]
    best = min(["half_steps", *fair], key=lambda k: (loss[k], k != "half_steps"))
    if winners:
        plainly = f"cache wins ({', '.join(winners)} lose less than halving the steps)"
    elif any(loss[k] == loss["half_steps"] for k in fair):
        plainly = "tie (a cache loses exactly as much as halving the steps, which is simpler)"
    else:
        plainly = "steps win (halving the steps loses less than every cache)"
    closer = [k for k in fair if "deviation" in rows[k] and rows[k]["deviation"] < half.get("deviation", -1.0)]
    return {
        "closer_to_plain": closer,
        "loss": {k: round(v, 5) + 0.0 for k, v in loss.items()},
        "evals_vs_half": {k: round(v, 3) for k, v in ratio.items()},
        "winners": winners,
        "cache_beats_halving": bool(winners),
        "best": best,
        "plainly": plainly,
    }


# ---------------------------------------------------------------------- the apps
@dataclass
class AppRun:
    """How to score one app: its config, weights, metric and a function ``(module, steps) -> metrics``."""

    name: str
    config: str
    metric: str
    higher_is_better: bool
    score: Callable[[Any, int], dict[str, float]]
    sizes: dict[str, Any]
    matched: Callable[[EvalMeter], list[torch.Tensor]] | None = None
    """The samples matched one to one across settings (default: every ``generate`` output)."""


def load(app: str) -> Any:
    from ditkit_core.lightning import load_run

    return load_run(pretrained=ROOT / "apps" / app / "pretrained")


def tts_run(a: argparse.Namespace) -> AppRun:
    from ditkit_audio.cli import evaluate

    data = Path(a.tts_data)
    if not data.is_dir():
        raise SystemExit(f"tts: no corpus at {data}; make one: python -m ditkit_audio.cli data --n 300 --out {data}")

    def score(module: Any, steps: int) -> dict[str, float]:
        r = evaluate("apps/tts/configs/default.yaml", str(data), a.tts_probe, module=module, n=a.tts_n, steps=steps)
        return {"cer": r["cer_generated_wav"], "mcd_dtw_db": r["mcd_dtw_db"], "cer_ground_truth": r["cer_ground_truth"]}

    return AppRun("tts", "apps/tts/configs/default.yaml", "cer", False, score, {"utterances": a.tts_n})


def shapes_run(a: argparse.Namespace) -> AppRun:
    from ditkit_shapes.cli import checked, evaluate

    data = Path(a.shapes_data)
    if not data.is_dir():
        raise SystemExit(
            f"shapes: no dataset at {data}; make it: python -m ditkit_shapes.cli data --config "
            "apps/shapes/configs/default.yaml"
        )

    def score(module: Any, steps: int) -> dict[str, float]:
        module = checked(module, data)
        rows = evaluate(
            module, str(data), None, a.shapes_n, module.sample_points, "unit_sphere", None, steps, 0, ("cd",)
        )
        nna = [r["model"]["1-NNA-CD"] for r in rows]
        mmd = [r["model"]["MMD-CD"] for r in rows]
        return {"nna_cd_pct": 100 * sum(nna) / len(nna), "mmd_cd": sum(mmd) / len(mmd)}

    return AppRun(
        "shapes", "apps/shapes/configs/default.yaml", "nna_cd_pct", False, score, {"clouds_per_class": a.shapes_n}
    )


def policy_run(a: argparse.Namespace) -> AppRun:
    import numpy as np

    from ditkit_robotics.envs import DEFAULT_TASKS, make_env, rollout
    from ditkit_robotics.evaluate import policy_chunker

    first_chunks: list[torch.Tensor] = []  # the first chunk of every episode: same observation in every setting

    def first_chunk(chunker: Callable[[Any], Any]) -> Callable[[Any], Any]:
        seen = []

        def act(hist: Any) -> Any:
            out = chunker(hist)
            if not seen:
                seen.append(True)
                first_chunks.append(torch.as_tensor(out, dtype=torch.float32))
            return out

        return act

    def score(policy: Any, steps: int) -> dict[str, float]:
        tok = policy.tokenizer
        low, high = float(min(tok.action_low)), float(max(tok.action_high))
        success, env_steps = [], []
        first_chunks.clear()
        for tid, task in enumerate(DEFAULT_TASKS[: policy.num_tasks]):
            env = make_env(task, a.policy_seed)
            for i in range(a.policy_episodes):
                r = rollout(
                    env,
                    first_chunk(policy_chunker(policy, tid, steps, a.policy_seed + i, None)),  # None: sampler.cache
                    a.policy_seed + i,
                    n_obs_steps=tok.n_obs_steps,
                    n_action_steps=policy.n_action_steps,
                    max_steps=a.policy_max_steps,
                    low=low,
                    high=high,
                )
                success.append(float(r.success))
                env_steps.append(r.steps)
            env.close()
        return {"success": float(np.mean(success)), "env_steps": float(np.mean(env_steps))}

    sizes = {"episodes_per_task": a.policy_episodes, "tasks": 5, "max_env_steps": a.policy_max_steps}
    return AppRun(
        "policy", "apps/policy/configs/default.yaml", "success", True, score, sizes, lambda _: list(first_chunks)
    )


def sits_run(a: argparse.Namespace) -> AppRun:
    from ditkit_geo.cli import data_module, evaluate_all

    dm = data_module(ROOT / "apps/sits/configs/default.yaml")  # the config's synthetic test split
    series = len(dm.splits["test"])

    def score(module: Any, steps: int) -> dict[str, float]:
        rec = evaluate_all(module, dm, samples=a.sits_samples, steps=steps, tasks=("reconstruction",))[0]
        return {"mae": rec["model_mae"], "crps": rec["model_crps"], "linear_mae": rec["linear_mae"]}

    return AppRun(
        "sits", "apps/sits/configs/default.yaml", "mae", False, score, {"series": series, "draws": a.sits_samples}
    )


RUNS = {"tts": tts_run, "shapes": shapes_run, "policy": policy_run, "sits": sits_run}


def measure(run: AppRun, module: Any, steps: int) -> tuple[dict[str, float], EvalMeter, list[torch.Tensor]]:
    """Score ``module`` at ``steps`` (seeded, no gradients) under an :class:`EvalMeter`: ``(metrics, meter, samples
    matched one to one across settings)``."""
    torch.manual_seed(0)
    with torch.no_grad(), EvalMeter(module) as meter:
        metrics = run.score(module, steps)
    return metrics, meter, run.matched(meter) if run.matched is not None else meter.outputs


def metric_label(name: str) -> str:
    """A metric's column label in the Markdown tables."""
    return "1-NNA-CD %" if name == "nna_cd_pct" else name


def read_jsonl(files: list[str]) -> list[dict[str, Any]]:
    """The JSON lines of saved benchmark runs (other output lines skipped)."""
    import json

    return [json.loads(t) for f in files for t in Path(f).read_text().splitlines() if t.startswith("{")]


def add_data_arguments(p: argparse.ArgumentParser, sits_samples: int = 32) -> None:
    """The flags that size and locate each app's evaluation data (read by the ``*_run`` functions)."""
    p.add_argument("--tts-n", type=int, default=64, help="held-out utterances")
    p.add_argument("--tts-data", default="outputs/tts/data", help="TTS corpus folder")
    p.add_argument("--tts-probe", default="apps/tts/pretrained/asr_probe", help="CTC probe folder")
    p.add_argument("--shapes-n", type=int, default=16, help="generated and reference clouds per class (6 classes)")
    p.add_argument("--shapes-data", default="outputs/shapes/data")
    p.add_argument("--policy-episodes", type=int, default=10, help="rollouts per task (5 tasks)")
    p.add_argument("--policy-max-steps", type=int, default=300, help="environment steps per episode")
    p.add_argument("--policy-seed", type=int, default=1000, help="first reset seed (demonstrations use 0..N-1)")
    p.add_argument("--sits-samples", type=int, default=sits_samples, help="draws per series")


def bench_app(run: AppRun, step_cache: bool, steps: int | None = None) -> dict[str, Any]:
    """Score every setting of one app (a fresh module each, same seeds and items) and emit one line each."""
    n = steps or load(run.name).sampler.steps
    rows: dict[str, dict[str, Any]] = {}
    reference: list[torch.Tensor] = []
    for s in settings(n, step_cache):  # plain first: the reference of ``deviation``
        module = load(run.name)
        module.sampler.cache = s.cache
        module.sampler.steps = s.steps
        t0 = time.perf_counter()
        metrics, meter, matched = measure(run, module, s.steps)
        if s.name == "plain":
            reference = matched
        row = {
            "metric": metrics[run.metric],
            "metric_name": run.metric,
            "deviation": round(deviation(matched, reference), 5),
            **meter.as_dict(),
            "metrics": {k: round(v, 5) for k, v in metrics.items()},
        }
        stats = getattr(module, "last_cache_stats", None)
        if stats is not None and s.cache.kind != "none":
            row["cache_peak_MiB"] = stats.as_dict()["peak_MiB"]
        rows[s.name] = row
        emit(
            bench="cache_vs_steps",
            app=run.name,
            setting=s.name,
            steps=s.steps,
            cache=s.cache.kind,
            **row,
            sizes=run.sizes,
            total_wall_s=round(time.perf_counter() - t0, 1),
            threads=torch.get_num_threads(),
        )
    v = verdict(rows, run.higher_is_better)
    emit(
        bench="cache_vs_steps",
        app=run.name,
        summary=True,
        metric_name=run.metric,
        higher_is_better=run.higher_is_better,
        steps=n,
        **v,
    )
    return v


def markdown(lines: list[dict[str, Any]]) -> str:
    """The Markdown table of this script's JSON lines: one row per (app, steps, setting), then the verdicts."""
    head = (
        "| app | metric | setting | steps | block evals | metric value | lost vs plain | deviation from plain "
        "| CPU s | cache peak MiB |\n|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows, verdicts = [], []
    plain: dict[str, float] = {}  # the app's latest plain run: each pass emits it first
    direction: dict[str, bool] = {}
    for d in lines:
        if d.get("summary") is True:
            direction[d["app"]] = d["higher_is_better"]
    for d in lines:
        if "setting" in d:
            if d["setting"] == "plain":
                plain[d["app"]] = d["metric"]
            sign = -1.0 if direction.get(d["app"], False) else 1.0
            lost = sign * (d["metric"] - plain.get(d["app"], d["metric"])) + 0.0
            rows.append(
                f"| {d['app']} | {metric_label(d['metric_name'])} | {d['setting']} | {d['steps']} | {d['block_evals']} "
                f"| {d['metric']:.4g} | {lost:+.4g} | {d['deviation']:.4f} | {d['cpu_s']:.1f} "
                f"| {d.get('cache_peak_MiB', '-')} |"
            )
        elif d.get("summary") is True:
            verdicts.append(f"* {d['app']} at {d['steps']} steps: {d['plainly']}")
    return head + "\n".join(rows) + "\n\n" + "\n".join(verdicts) + "\n"


def app_steps(text: str) -> tuple[str, int]:
    """argparse type of ``--steps``: ``APP=N`` with a known app and an integer N >= 2."""
    app, _, n = text.partition("=")
    if app not in APPS or not n.isdigit() or int(n) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected APP=N with APP in {APPS} and an integer N >= 2")
    return app, int(n)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--apps", nargs="+", choices=APPS, default=list(APPS))
    p.add_argument("--no-step", action="store_true", help="skip the calibrated StepCache setting")
    add_data_arguments(p)
    p.add_argument(
        "--steps",
        nargs="+",
        type=app_steps,
        default=[],
        metavar="APP=N",
        help="compare at N steps instead of the model's sampler.steps, e.g. policy=2 tts=8",
    )
    p.add_argument("--table", nargs="+", default=None, metavar="JSONL", help="print the Markdown table of saved runs")
    a = p.parse_args(argv)
    if a.table:
        print(markdown(read_jsonl(a.table)), end="")
        return
    torch.set_num_threads(1)
    steps = dict(a.steps)
    won = []
    for app in a.apps:
        if bench_app(RUNS[app](a), not a.no_step, steps.get(app))["cache_beats_halving"]:
            won.append(app)
    emit(bench="cache_vs_steps", summary="all", apps=a.apps, cache_wins_in=won, goal_met=len(won) >= 3)


if __name__ == "__main__":
    main()
