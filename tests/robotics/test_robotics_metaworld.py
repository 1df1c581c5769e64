"""Meta-World integration (skipped without the ``metaworld`` extra): demos, store schema, expert rollouts."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("metaworld")

from ditkit_robotics.data import load_zarr_episodes  # noqa: E402
from ditkit_robotics.envs import expert_chunker, expert_episode, generate_demos, make_env, rollout  # noqa: E402


def test_generate_demos_store_and_reload(tmp_path):
    summary = generate_demos(tmp_path / "d.zarr", tasks=["reach-v3", "button-press-topdown-v3"], episodes_per_task=2)
    assert all(row["expert_success"] == 1.0 for row in summary.values())
    eps, attrs = load_zarr_episodes(tmp_path / "d.zarr")
    assert attrs["tasks"] == ["reach-v3", "button-press-topdown-v3"] and attrs["obs_dim"] == 39
    assert [e.task_id for e in eps] == [0, 0, 1, 1] and [e.seed for e in eps] == [0, 1, 0, 1]
    assert all(e.obs.shape[1] == 39 and e.action.shape[1] == 4 and np.abs(e.action).max() <= 1 for e in eps)


def test_demos_are_reproducible_from_seed():
    a, b = expert_episode("reach-v3", 0, seed=3), expert_episode("reach-v3", 0, seed=3)
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.action, b.action)


def test_expert_rollout_through_receding_horizon_runner():
    env = make_env("reach-v3", 0)
    r = rollout(env, expert_chunker("reach-v3"), seed=5, n_obs_steps=1, n_action_steps=1, max_steps=200)
    assert r.success and not r.crashed and r.steps < 200


def test_evaluate_pipeline_table_and_caches():
    import torch

    from ditkit_core.lightning import SamplerConfig
    from ditkit_core.nn import DiTConfig
    from ditkit_robotics import ActionChunkTokenizer, PolicyModule
    from ditkit_robotics.evaluate import evaluate

    cfg = DiTConfig(
        in_dim=4,
        dim=32,
        depth=2,
        heads=2,
        mlp_ratio=2.0,
        cond_dim=32,
        context_dim=32,
        learned_pos=16,
        moe_experts=2,
        moe_top_k=1,
        moe_shared=1,
        moe_router="time",
    )
    policy = PolicyModule(ActionChunkTokenizer(), cfg, num_tasks=2, sampler=SamplerConfig(steps=4))
    calib = {"obs": torch.randn(4, 2, 39), "task_id": torch.tensor([0, 1, 0, 1])}
    res = evaluate(
        policy,
        ["reach-v3", "button-press-topdown-v3"],
        episodes=1,
        steps=4,
        cache="expert+block",
        max_steps=16,
        calib=calib,
    )
    assert set(res["tasks"]) == {"reach-v3", "button-press-topdown-v3"} and res["cache"] == "expert+block"
    assert res["crashed"] == 0 and all(r["steps"] == 16 for r in res["tasks"].values())
    assert "| **mean** |" in res["table"] and "scripted expert" in res["table"]
