"""The helpers of benchmarks/cache_vs_steps.py: block evaluations are counted as run, and the verdict's logic."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from ditkit_core.lightning import CacheConfig, FlowMatchingModule
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import perturb_weights
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch

ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    path = ROOT / "benchmarks" / "cache_vs_steps.py"
    spec = importlib.util.spec_from_file_location("cache_vs_steps", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["cache_vs_steps"] = mod
    saved = list(sys.path)
    try:  # the script puts benchmarks/ first on sys.path for its helpers; benchmarks/av.py would then shadow PyAV
        spec.loader.exec_module(mod)
    finally:
        sys.path[:] = saved
    return mod


bench = _load_script()
DEPTH = 3


def _module(cfg_scale: float = 1.0) -> FlowMatchingModule:
    torch.manual_seed(0)
    m = FlowMatchingModule(
        IdentityTokenizer(2), DiTConfig(in_dim=2, dim=32, depth=DEPTH, heads=2, num_classes=2), sampler={"steps": 8}
    )
    m.sampler.cfg_scale = cfg_scale
    perturb_weights(m.model, scale=0.05, seed=0)  # adaLN-zero blocks would otherwise add nothing to reuse
    return m.eval()


def _generate(m: FlowMatchingModule, steps: int, cache: CacheConfig, seed: int = 0) -> torch.Tensor:
    template = TokenBatch(x=torch.zeros(2, 5, 2), cond=torch.tensor([0, 1]))
    return m.generate(template, steps=steps, cache=cache, generator=torch.Generator().manual_seed(seed)).x


def test_meter_counts_every_block_of_a_plain_run_and_halves_under_block_cache():
    m = _module()
    with bench.EvalMeter(m) as plain:
        _generate(m, 8, CacheConfig(kind="none"))
        _generate(m, 8, CacheConfig(kind="none"), seed=1)
    assert plain.generate_calls == 2
    assert plain.block_evals == 2 * 8 * DEPTH  # two runs, 8 Euler evaluations, every block
    with bench.EvalMeter(m) as block:
        _generate(m, 8, CacheConfig(kind="block", interval=2, order=1))
    assert block.block_evals == 4 * DEPTH  # evaluations 0, 2, 4, 6 recompute; the others extrapolate
    assert block.block_evals == m.last_cache_stats.computed  # agrees with the cache's own bookkeeping
    # the meter leaves the module as it found it: no hooks, the class's own methods
    assert "generate" not in m.__dict__ and "make_cache" not in m.__dict__
    with bench.EvalMeter(m) as after:
        pass
    _generate(m, 4, CacheConfig(kind="none"))
    assert after.block_evals == 0


def test_meter_counts_both_guidance_branches():
    m = _module(cfg_scale=2.0)
    with bench.EvalMeter(m) as meter:
        _generate(m, 4, CacheConfig(kind="none"))
    assert meter.block_evals == 2 * 4 * DEPTH


def test_meter_books_step_cache_calibration_apart():
    m = _module()
    with bench.EvalMeter(m) as meter:
        _generate(m, 8, CacheConfig(kind="step", skip_ratio=0.5))
    assert meter.calib_block_evals == 8 * DEPTH  # the calibration run computes everything
    assert meter.block_evals == m.last_cache_stats.computed < 8 * DEPTH
    assert meter.block_evals + m.last_cache_stats.skipped == 8 * DEPTH


def test_meter_refuses_a_module_without_dit():
    with pytest.raises(ValueError, match="no ditkit_core.nn.DiT"):
        bench.EvalMeter(torch.nn.Linear(2, 2)).__enter__()


def test_settings_halve_the_steps_and_use_the_measured_block_cache():
    s = {x.name: x for x in bench.settings(16)}
    assert (s["plain"].steps, s["half_steps"].steps, s["block"].steps) == (16, 8, 16)
    assert (s["block"].cache.interval, s["block"].cache.order) == (2, 1)
    assert s["step"].cache.kind == "step" and s["step"].cache.skip_ratio == 0.5
    assert [x.name for x in bench.settings(2, step_cache=False)] == ["plain", "half_steps", "block"]
    with pytest.raises(ValueError, match="steps=1"):
        bench.settings(1)


def _rows(half: float, block: float, block_evals: int = 50) -> dict:
    return {
        "plain": {"metric": 1.0, "block_evals": 100},
        "half_steps": {"metric": half, "block_evals": 50},
        "block": {"metric": block, "block_evals": block_evals},
    }


def test_verdict_lower_is_better():
    v = bench.verdict(_rows(half=1.3, block=1.1), higher_is_better=False)
    assert v["loss"] == {"half_steps": pytest.approx(0.3), "block": pytest.approx(0.1)}
    assert v["cache_beats_halving"] and v["winners"] == ["block"] and v["best"] == "block"
    v = bench.verdict(_rows(half=1.1, block=1.3), higher_is_better=False)
    assert not v["cache_beats_halving"] and v["best"] == "half_steps" and v["plainly"].startswith("steps win")


def test_verdict_higher_is_better_and_ties():
    v = bench.verdict(_rows(half=0.7, block=0.9), higher_is_better=True)  # success: block keeps more
    assert v["winners"] == ["block"]
    v = bench.verdict(_rows(half=0.9, block=0.9), higher_is_better=True)
    assert not v["cache_beats_halving"] and v["best"] == "half_steps" and v["plainly"].startswith("tie")


def test_verdict_ignores_a_cache_that_ran_more_block_evaluations():
    v = bench.verdict(_rows(half=1.3, block=1.0, block_evals=60), higher_is_better=False)
    assert v["evals_vs_half"]["block"] == pytest.approx(1.2)
    assert not v["cache_beats_halving"] and v["best"] == "half_steps"
    with pytest.raises(KeyError, match="half_steps"):
        bench.verdict({"plain": {"metric": 1.0, "block_evals": 1}}, higher_is_better=False)


def test_steps_flag_names_app_and_count():
    import argparse

    assert bench.app_steps("policy=2") == ("policy", 2)
    for bad in ("policy=1", "nope=4", "tts=x", "tts"):
        with pytest.raises(argparse.ArgumentTypeError, match="APP=N"):
            bench.app_steps(bad)


def test_deviation_is_relative_rms_distance_of_matched_samples():
    ref = [torch.tensor([[3.0, 0.0]]), torch.tensor([0.0, 4.0])]
    assert bench.deviation(ref, ref) == 0.0
    assert bench.deviation([torch.zeros(1, 2), torch.zeros(2)], ref) == pytest.approx(1.0)
    assert bench.deviation([torch.tensor([[3.0, 1.0]]), ref[1]], ref) == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="1 samples vs 2"):
        bench.deviation(ref[:1], ref)
    with pytest.raises(ValueError, match="shape"):
        bench.deviation([ref[1], ref[0]], ref)


def test_meter_keeps_the_samples_and_block_cache_strays_from_plain():
    m = _module()
    with bench.EvalMeter(m) as plain:
        _generate(m, 8, CacheConfig(kind="none"))
    with bench.EvalMeter(m) as again:
        _generate(m, 8, CacheConfig(kind="none"))
    with bench.EvalMeter(m) as block:
        _generate(m, 8, CacheConfig(kind="block", interval=2, order=1))
    assert plain.outputs[0].shape == (2, 5, 2)
    assert bench.deviation(again.outputs, plain.outputs) == 0.0  # same seed, same sampler: the same samples
    assert bench.deviation(block.outputs, plain.outputs) > 0.0


def test_verdict_names_caches_closer_to_plain():
    rows = _rows(half=1.3, block=1.3)
    rows["half_steps"]["deviation"], rows["block"]["deviation"] = 0.2, 0.1
    v = bench.verdict(rows, higher_is_better=False)
    assert v["closer_to_plain"] == ["block"] and not v["cache_beats_halving"]


def test_markdown_table_has_one_row_per_setting_and_the_verdict():
    lines = [
        {"app": "sits", "setting": s, "steps": n, "metric": v, "metric_name": "mae", "block_evals": e, "deviation": dv}
        | {"cpu_s": 1.0}
        for s, n, v, e, dv in (("plain", 2, 0.25, 8, 0.0), ("half_steps", 1, 0.30, 4, 0.2), ("block", 2, 0.27, 4, 0.1))
    ]
    lines.append({"app": "sits", "summary": True, "higher_is_better": False, "steps": 2, "plainly": "cache wins"})
    table = bench.markdown(lines)
    assert "| sits | mae | half_steps | 1 | 4 | 0.3 | +0.05 | 0.2000 |" in table
    assert "| sits | mae | block | 2 | 4 | 0.27 | +0.02 | 0.1000 |" in table
    assert table.count("\n| sits |") == 3 and "* sits at 2 steps: cache wins" in table
