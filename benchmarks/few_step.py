"""Few-step students against their teacher, with each domain's own metric.

For every app, the teacher (the shipped weights, ``apps/<app>/pretrained``) and its few-step student (made by
``ditkit <app> distill`` / ``make distill-<app>``, a shortcut student that serves 1, 2 and 4 steps) are scored on the
same items and seeds:

* ``teacher``: the teacher with its own solver and guidance at ``--teacher-steps`` (32): the reference;
* ``teacher_fewer``: the teacher at 1, 2 and 4 steps (its own solver): what simply cutting the steps gives;
* ``student``: the student at 1, 2 and 4 Euler steps, one evaluation per step (guidance is distilled in).

Block evaluations are counted by forward hooks (:class:`cache_vs_steps.EvalMeter`), and ``generate`` is timed by
process CPU time and wall time. ``deviation`` is the relative RMS distance of a setting's samples to the teacher's
at 32 steps from the same noise. The goal per app: the student at 4 steps within ``--tolerance`` (5 %) of the teacher
at 32, relative to the teacher's metric, in the metric's bad direction. One JSON line per (app, setting), one summary
line per app, one overall line (goal: met in >= 3 domains).

    python benchmarks/few_step.py [--apps tts policy sits shapes] [--students outputs/{app}/student/pretrained]
        [--teacher-steps 32] [--student-steps 1 2 4] [--table runs.jsonl ...]

Students: ``make distill-tts distill-policy distill-sits distill-shapes`` (``outputs/<app>/student``); the shipped
ones (``apps/<app>/pretrained/student``) are used where no local student exists. Data as for
``benchmarks/cache_vs_steps.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import emit  # noqa: E402
from cache_vs_steps import (  # noqa: E402
    ROOT,
    RUNS,
    AppRun,
    add_data_arguments,
    deviation,
    measure,
    metric_label,
    read_jsonl,
)

APPS = ("tts", "policy", "sits", "shapes")


def student_dir(app: str, pattern: str) -> Path:
    """The student's pretrained folder: ``pattern`` with ``{app}`` filled in, else the shipped student.

    Raises:
        SystemExit: neither exists (names the command that makes one).
    """
    for p in (Path(pattern.format(app=app)), ROOT / "apps" / app / "pretrained" / "student"):
        if (p / "config.json").exists():
            return p
    raise SystemExit(f"{app}: no student at {pattern.format(app=app)}; make one: make distill-{app}")


def relative_loss(metric: float, reference: float, higher_is_better: bool) -> float:
    """Metric lost against the reference, relative to it (positive = worse; 0.05 = 5 % worse).

    Raises:
        ValueError: a zero reference (no relative scale).
    """
    if reference == 0:
        raise ValueError("relative_loss: the reference metric is 0, so a relative loss is undefined")
    sign = -1.0 if higher_is_better else 1.0
    return sign * (metric - reference) / abs(reference) + 0.0


def bench_app(
    run: AppRun, teacher_dir: Path, student: Path, teacher_steps: int, few: list[int], tolerance: float
) -> dict[str, Any]:
    """Score the teacher (a pretrained folder) at ``teacher_steps`` and ``few`` steps and the student at ``few``
    steps; emit one JSON line per setting and a summary line, and return the summary."""
    from ditkit_core.lightning import load_run

    plan = [("teacher", teacher_dir, teacher_steps)]
    plan += [("teacher_fewer", teacher_dir, s) for s in few]
    plan += [("student", student, s) for s in few]
    reference: list[torch.Tensor] = []
    ref_metric = 0.0
    rows: dict[tuple[str, int], float] = {}
    for name, folder, steps in plan:
        module = load_run(pretrained=folder)  # a fresh module per setting
        t0 = time.perf_counter()
        metrics, meter, matched = measure(run, module, steps)
        if name == "teacher":
            reference, ref_metric = matched, metrics[run.metric]
        rows[(name, steps)] = metrics[run.metric]
        emit(
            bench="few_step",
            app=run.name,
            setting=name,
            steps=steps,
            method=module.sampler.method,
            cfg_scale=getattr(module.sampler, "cfg_scale", 1.0),
            metric=metrics[run.metric],
            metric_name=run.metric,
            higher_is_better=run.higher_is_better,
            lost_rel=round(relative_loss(metrics[run.metric], ref_metric, run.higher_is_better), 5),
            deviation=round(deviation(matched, reference), 5),
            **meter.as_dict(),
            metrics={k: round(v, 5) for k, v in metrics.items()},
            sizes=run.sizes,
            weights=str(folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder),
            total_wall_s=round(time.perf_counter() - t0, 1),
            threads=torch.get_num_threads(),
        )
    best = max(few)
    lost = {s: relative_loss(rows[("student", s)], ref_metric, run.higher_is_better) for s in few}
    lost_teacher = {s: relative_loss(rows[("teacher_fewer", s)], ref_metric, run.higher_is_better) for s in few}
    met = lost[best] <= tolerance
    summary = {
        "student_lost_rel": {str(s): round(v, 5) for s, v in lost.items()},
        "teacher_fewer_lost_rel": {str(s): round(v, 5) for s, v in lost_teacher.items()},
        "goal": f"student at {best} steps within {tolerance:.0%} of the teacher at {teacher_steps}",
        "goal_met": met,
        "student_beats_teacher_fewer": [s for s in few if lost[s] < lost_teacher[s]],
    }
    emit(bench="few_step", app=run.name, summary=True, metric_name=run.metric, **summary)
    return summary


def markdown(lines: list[dict[str, Any]]) -> str:
    """The Markdown table of this script's JSON lines: one row per (app, setting, steps), then the verdicts."""
    head = (
        "| app | metric | setting | steps | block evals | metric value | lost vs teacher@32 | deviation "
        "| CPU s |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    rows, verdicts = [], []
    for d in lines:
        if "setting" in d:
            rows.append(
                f"| {d['app']} | {metric_label(d['metric_name'])} | {d['setting']} | {d['steps']} | {d['block_evals']} "
                f"| {d['metric']:.4g} | {100 * d['lost_rel']:+.1f} % | {d['deviation']:.4f} | {d['cpu_s']:.1f} |"
            )
        elif d.get("summary") is True:
            lost = ", ".join(f"{s} steps {100 * v:+.1f} %" for s, v in d["student_lost_rel"].items())
            verdicts.append(f"* {d['app']}: {d['goal']}: {'met' if d['goal_met'] else 'not met'} (student {lost})")
    return head + "\n".join(rows) + "\n\n" + "\n".join(verdicts) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--apps", nargs="+", choices=APPS, default=list(APPS))
    p.add_argument("--students", default="outputs/{app}/student/pretrained", help="student folder pattern")
    p.add_argument("--teacher-steps", type=int, default=32, help="the teacher's reference step count")
    p.add_argument("--student-steps", type=int, nargs="+", default=[1, 2, 4], help="few-step counts")
    p.add_argument("--tolerance", type=float, default=0.05, help="relative metric loss allowed at the most steps")
    add_data_arguments(p, sits_samples=16)
    p.add_argument("--table", nargs="+", default=None, metavar="JSONL", help="print the Markdown table of saved runs")
    a = p.parse_args(argv)
    if a.table:
        print(markdown([d for d in read_jsonl(a.table) if d.get("bench") == "few_step"]), end="")
        return
    if any(s < 1 for s in a.student_steps) or a.teacher_steps < max(a.student_steps):
        p.error(f"--student-steps {a.student_steps} must be >= 1 and at most --teacher-steps {a.teacher_steps}")
    torch.set_num_threads(1)
    met = []
    for app in a.apps:
        student = student_dir(app, a.students)
        teacher = ROOT / "apps" / app / "pretrained"
        if bench_app(RUNS[app](a), teacher, student, a.teacher_steps, sorted(a.student_steps), a.tolerance)["goal_met"]:
            met.append(app)
    emit(bench="few_step", summary="all", apps=a.apps, goal_met_in=met, goal_met=len(met) >= 3)


if __name__ == "__main__":
    main()
