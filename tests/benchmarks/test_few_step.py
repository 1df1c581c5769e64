"""benchmarks/few_step.py: the relative loss and its direction, where students are found, and one app's pass end to
end on a small module whose untrained student (zero step embedding) must reproduce the teacher's Euler samples."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from ditkit_core.lightning import FlowMatchingModule, build_student, save_pretrained
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import perturb_weights
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    path = ROOT / "benchmarks" / "few_step.py"
    spec = importlib.util.spec_from_file_location("few_step", path)
    mod = importlib.util.module_from_spec(spec)
    saved = list(sys.path)
    try:  # the script puts benchmarks/ first on sys.path; benchmarks/av.py would then shadow PyAV
        spec.loader.exec_module(mod)
    finally:
        sys.path[:] = saved
    return mod


bench = _load_script()
DEPTH = 2


def test_relative_loss_has_the_metric_direction():
    assert bench.relative_loss(0.105, 0.1, higher_is_better=False) == pytest.approx(0.05)  # CER up 5 %: worse
    assert bench.relative_loss(0.095, 0.1, higher_is_better=False) == pytest.approx(-0.05)
    assert bench.relative_loss(0.9, 1.0, higher_is_better=True) == pytest.approx(0.1)  # success down: worse
    with pytest.raises(ValueError, match="reference metric is 0"):
        bench.relative_loss(0.1, 0.0, higher_is_better=False)


def test_student_dir_prefers_the_pattern_then_names_the_make_target(tmp_path):
    (tmp_path / "tts").mkdir()
    (tmp_path / "tts" / "config.json").write_text("{}")
    assert bench.student_dir("tts", str(tmp_path / "{app}")) == tmp_path / "tts"
    assert bench.student_dir("sits", str(tmp_path / "{app}")) == ROOT / "apps/sits/pretrained/student"  # shipped
    with pytest.raises(SystemExit, match="make distill-toy2d"):  # no local and no shipped student
        bench.student_dir("toy2d", str(tmp_path / "{app}"))


def _teacher() -> FlowMatchingModule:
    torch.manual_seed(0)
    m = FlowMatchingModule(
        IdentityTokenizer(2), DiTConfig(in_dim=2, dim=32, depth=DEPTH, heads=2), sampler={"steps": 8, "method": "euler"}
    )
    perturb_weights(m.model, scale=0.05, seed=0)
    return m.eval()


def _score(module, steps: int) -> dict[str, float]:
    template = TokenBatch(x=torch.zeros(3, 5, 2))
    x = module.generate(template, steps=steps, generator=torch.Generator().manual_seed(0)).x
    return {"energy": float(x.pow(2).mean())}


def test_one_app_pass_scores_teacher_and_student_on_the_same_noise(tmp_path, capsys):
    teacher = _teacher()
    save_pretrained(teacher, tmp_path / "teacher")
    save_pretrained(build_student(teacher, step_conditioning=True, steps=4), tmp_path / "student")
    run = bench.AppRun("toy", "-", "energy", False, _score, {"sets": 3})
    summary = bench.bench_app(run, tmp_path / "teacher", tmp_path / "student", 8, [1, 2, 4], tolerance=0.05)
    lines = [json.loads(t) for t in capsys.readouterr().out.splitlines() if t.startswith("{")]
    rows = {(d["setting"], d["steps"]): d for d in lines if "setting" in d}
    assert sorted(rows) == sorted([("teacher", 8)] + [(k, s) for k in ("teacher_fewer", "student") for s in (1, 2, 4)])
    assert rows[("teacher", 8)]["deviation"] == 0.0 and rows[("teacher", 8)]["lost_rel"] == 0.0
    for s in (1, 2, 4):
        # an untrained student is the teacher (zero step embedding, Euler, no guidance): identical samples
        assert rows[("student", s)]["metric"] == rows[("teacher_fewer", s)]["metric"]
        assert rows[("student", s)]["block_evals"] == s * DEPTH  # one evaluation per step, every block counted
        assert rows[("student", s)]["deviation"] > 0.0  # fewer steps stray from the 8-step samples
    lost4 = rows[("student", 4)]["lost_rel"]
    assert summary["student_lost_rel"]["4"] == pytest.approx(lost4)
    assert summary["goal_met"] == (lost4 <= 0.05)
    assert summary["student_beats_teacher_fewer"] == []  # equal, not better
    table = bench.markdown(lines)
    assert table.count("\n| toy | energy |") == 7 and "* toy: student at 4 steps within 5% of the teacher at 8" in table
