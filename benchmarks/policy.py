"""Policy inference latency per action chunk: dense vs MoE vs MoE + expert caching vs block caching.

The default policy (apps/policy/configs/default.yaml) and its dense twin at equal active parameters
(apps/policy/configs/dense.yaml: mlp_ratio 4, no experts) sample one chunk (batch 1, horizon 16) with 1, 4 and 10
Euler steps through ``PolicyModule.predict_action`` (the core's ``generate``), each with one cache setting:

* ``dense``, ``moe``: ``cache="none"``;
* ``moe+expert_cache``: ``cache="expert"``, MoDE expert caching (the core's ExpertCache: routes precomputed per grid
  time, shared + chosen experts fused);
* ``dense+block_cache``, ``moe+expert_cache+block_cache``: ``cache="block"`` / ``"expert+block"``, block-wise
  adaptive caching (the core's BlockCache, schedule calibrated on demonstration observations with
  ``PolicyModule.calibrate_block_cache``; needs >= 4 steps to skip anything).

* ``student``, ``student+expert_cache``: the few-step student of the MoE policy (``make distill-policy``, else the
  shipped ``apps/policy/pretrained/student``) at the step counts it serves (1, 2, 4), ``cache="none"`` / ``"expert"``
  (its routes depend on the time only, so expert caching stays exact); then ``student+expert_cache+compiled``, the
  same with every DiT block compiled once (``torch.compile``, regional; ``ditkit policy sample --compile``).

Each line reports the median ms per chunk (process CPU time, and wall time), the speed-up over ``dense`` at the same
step count (the peer figure), the fraction of block evaluations skipped, the max |action difference| against the
uncached model of the same kind (0 = exact; the student: against the MoE teacher at its default steps), and the
goal (5 ms per chunk on one thread; the success rate that goes with each setting is measured by
``benchmarks/few_step.py``). Models are loaded with ``ditkit_core.lightning.load_run`` from the ``pretrained``
folder under each config's ``trainer.default_root_dir`` when present, else the shipped weights of the MoE policy;
the dense twin, which is not shipped, otherwise gets random non-zero weights (latency is the same; the block-cache
skip ratio and error are only meaningful for trained weights, see the ``weights`` field).

Usage: python benchmarks/policy.py [--repeats 60] [--steps 1 2 4 10] [--threads 1] [--student DIR] [--no-compile]
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import compare, emit  # noqa: E402

from ditkit_core.lightning import compile_blocks  # noqa: E402
from ditkit_core.nn import DiTConfig  # noqa: E402
from ditkit_robotics import ActionChunkTokenizer, PolicyModule  # noqa: E402
from ditkit_robotics.evaluate import calibration_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def build(config: Path, moe: bool) -> tuple[PolicyModule, str]:
    """The trained policy of ``config`` (its ``<default_root_dir>/pretrained``; the MoE default: else the shipped
    weights), else random non-zero weights."""
    from ditkit_core.lightning import load_run, run_dir

    candidates = [ROOT / run_dir(config) / "pretrained"]
    if moe:
        candidates.append(ROOT / "apps/policy/pretrained")  # the shipped weights are the MoE default's
    for pretrained in candidates:
        if (pretrained / "config.json").exists():
            return load_run(config, pretrained=pretrained), "trained"
    args = copy.deepcopy(yaml.safe_load(config.read_text())["model"]["init_args"])
    tok = ActionChunkTokenizer(**args.pop("tokenizer")["init_args"])
    cfg = DiTConfig(**args.pop("model"))
    assert bool(cfg.moe_experts) == moe, f"{config}: expected a {'MoE' if moe else 'dense'} model"
    torch.manual_seed(0)
    policy = PolicyModule(tok, cfg, **args).eval()
    with torch.no_grad():  # a fresh DiT is exactly zero: give the zero-initialised layers weights
        for name, p in policy.model.named_parameters():
            if "adaLN" in name or "final" in name or "gate" in name:
                p.normal_(0, 0.05)
    return policy, "random"


def load_student(folder: str | None) -> PolicyModule | None:
    """The few-step student: ``folder``, else ``outputs/policy/student/pretrained``, else the shipped one."""
    from ditkit_core.lightning import load_run

    for p in (
        [Path(folder)]
        if folder
        else [ROOT / "outputs/policy/student/pretrained", ROOT / "apps/policy/pretrained/student"]
    ):
        if (p / "config.json").exists():
            return load_run(pretrained=p).eval()
    if folder:
        raise SystemExit(f"--student {folder}: no config.json there (make one: make distill-policy)")
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 10])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--config", default=str(ROOT / "apps/policy/configs/default.yaml"), help="the MoE policy's run")
    ap.add_argument("--dense-config", default=str(ROOT / "apps/policy/configs/dense.yaml"), help="its dense twin")
    ap.add_argument("--student", default=None, help="the student's pretrained folder (default: local, else shipped)")
    ap.add_argument("--no-compile", action="store_true", help="skip the compiled student rows")
    ap.add_argument("--data", default=None, help="demonstrations for calibration (default: the config's data path)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    moe, moe_weights = build(Path(args.config), moe=True)
    dense, dense_weights = build(Path(args.dense_config), moe=False)
    weights = {"moe": moe_weights, "dense": dense_weights}
    tok = moe.tokenizer
    data = Path(args.data or ROOT / yaml.safe_load(Path(args.config).read_text())["data"]["init_args"]["path"])
    if data.exists():
        calib = calibration_batch(data, 16, tok.n_obs_steps, tok.horizon)
    else:
        calib = {"obs": torch.randn(16, tok.n_obs_steps, tok.obs_dim), "task_id": torch.zeros(16, dtype=torch.long)}
    obs, tid = calib["obs"][5:6], calib["task_id"][5:6]
    params = {"dense": dense.num_active_parameters(), "moe": moe.num_active_parameters()}
    student = load_student(args.student)
    if student is not None:
        params["student"] = student.num_active_parameters()
        g = torch.Generator().manual_seed(0)
        teacher_ref = moe.predict_action(obs, tid, generator=g, clip=False, cache="none")  # its default steps

    def run(policy: PolicyModule, cache: str, steps: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        return policy.predict_action(obs, tid, steps=steps, generator=g, clip=False, cache=cache)

    base_ms: dict[int, float] = {}

    def measure(name: str, policy: PolicyModule, cache: str, steps: int, against: torch.Tensor) -> None:
        if "block" in cache:
            policy.calibrate_block_cache(calib["obs"], calib["task_id"], steps)
        t = compare({name: lambda: run(policy, cache, steps)}, args.repeats, 1, 3)[name]
        ms = 1000 * t["s"]
        out = run(policy, cache, steps)
        kind = "moe" if policy is moe else "student" if policy is student else "dense"
        base_ms.setdefault(steps, ms)  # the dense model is measured first at every step count
        emit(
            benchmark="policy_chunk_latency",
            variant=name,
            steps=steps,
            ms_per_chunk=round(ms, 3),
            cpu_ms=round(1000 * t["cpu_s"], 3),
            wall_ms=round(1000 * t["wall_s"], 3),
            spread=round(t["spread"], 3),
            dense_ms_per_chunk=round(base_ms[steps], 3),
            speedup_vs_dense=round(base_ms[steps] / ms, 3),
            skip_ratio=round(policy.last_cache_stats.skip_ratio, 3) if "block" in cache else 0.0,
            max_action_diff=round(float((out - against).abs().max()), 5),
            active_params=params[kind]["dit_active"] + params[kind]["encoder"],
            total_params=params[kind]["dit_total"] + params[kind]["encoder"],
            weights=weights.get(kind, "trained"),
            goal_ms=5.0,
        )

    served = [s for s in args.steps if student is not None and s <= student.sampler.steps]
    for steps in args.steps:
        ref = {"dense": run(dense, "none", steps), "moe": run(moe, "none", steps)}
        measure("dense", dense, "none", steps, ref["dense"])
        measure("moe", moe, "none", steps, ref["moe"])
        measure("moe+expert_cache", moe, "expert", steps, ref["moe"])
        if steps >= 4:  # the block cache skips nothing below 4 steps
            measure("dense+block_cache", dense, "block", steps, ref["dense"])
            measure("moe+expert_cache+block_cache", moe, "expert+block", steps, ref["moe"])
        if steps in served:
            measure("student", student, "none", steps, teacher_ref)
            measure("student+expert_cache", student, "expert", steps, teacher_ref)
    if served and not args.no_compile:  # regional compilation (ditkit <app> sample --compile), in place: last
        compile_blocks(student)
        for steps in served:
            measure("student+expert_cache+compiled", student, "expert", steps, teacher_ref)


if __name__ == "__main__":
    main()
