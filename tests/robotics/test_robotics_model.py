"""Tokenizer round trip, MoDE expert caching exactness, block caching, dense vs MoE parity, pretrained I/O."""

from __future__ import annotations

import pytest
import torch

from ditkit_core.lightning import CacheConfig, SamplerConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.sampling import EVALS_PER_STEP
from ditkit_core.testing import check_module_fits_batch, check_pretrained_round_trip, check_tokenizer_round_trip
from ditkit_robotics import ActionChunkTokenizer, ExpertCache, PolicyModule, solver_times
from ditkit_robotics.data import ChunkDataset, synthetic_episodes


def _cfg(moe: bool, router: str = "time", dim: int = 32) -> DiTConfig:
    kw = dict(moe_experts=4, moe_top_k=1, moe_shared=1, moe_router=router, mlp_ratio=2.0) if moe else {}
    return DiTConfig(in_dim=2, dim=dim, depth=2, heads=2, cond_dim=dim, context_dim=dim, learned_pos=8, **kw)


def _policy(moe: bool = True, router: str = "time", perturb: bool = True, method: str = "euler") -> PolicyModule:
    torch.manual_seed(0)
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8, n_obs_steps=2)
    sampler = SamplerConfig(steps=4, method=method)
    p = PolicyModule(tok, _cfg(moe, router), num_tasks=2, n_action_steps=4, sampler=sampler)
    if perturb:  # a fresh DiT outputs exactly zero; give every zero-initialised layer weights
        with torch.no_grad():
            for name, prm in p.model.named_parameters():
                if "adaLN" in name or "final" in name or "gate" in name:
                    prm.normal_(0, 0.05)
    return p.eval()


def _batch(n: int = 16):
    data = ChunkDataset(synthetic_episodes(n=4, length=16), n_obs_steps=2, horizon=8).data
    return {k: v[:n] for k, v in data.items()}


def test_tokenizer_round_trip_and_clip():
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8, action_low=[-0.5, -1], action_high=[0.5, 1])
    tok.fit(
        {
            "obs_min": -torch.ones(6) * 3,
            "obs_max": torch.ones(6) * 2,
            "action_min": torch.tensor([-2.0, 0.0]),
            "action_max": torch.tensor([2.0, 4.0]),
        }
    )
    raw = {"action": torch.rand(3, 8, 2) * 4 - 1}
    check_tokenizer_round_trip(tok, raw, atol=1e-6)
    x = tok.encode(raw).x
    assert x.shape == (3, 8, 2)
    torch.testing.assert_close(tok.normalize_action(torch.tensor([[2.0, 4.0]])), torch.tensor([[1.0, 1.0]]))
    clipped = tok.decode(tok.encode({"action": torch.full((1, 8, 2), 3.0)}), clip=True)["action"]
    assert torch.equal(clipped[0, 0], torch.tensor([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"action must be \[b, 8, 2\]"):
        tok.encode({"action": torch.zeros(1, 7, 2)})


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_expert_cache_is_exact(method):
    p = _policy(method=method)
    obs, tid = _batch(5)["obs"], _batch(5)["task_id"]

    def act(cache, steps=4):
        g = torch.Generator().manual_seed(1)
        return p.predict_action(obs, tid, steps=steps, generator=g, clip=False, cache=cache)

    ref = act("none")
    out = act("expert")
    cache = p.expert_cache(4)
    assert cache.misses == 0 and cache.hits == 4 * EVALS_PER_STEP[method]  # one runner call per evaluation
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    # another step count gets its own grid (no miss), and the same grid is not rebuilt
    act("expert", steps=3)
    assert p.expert_cache(3).misses == 0 and p.expert_cache(3).hits == 3 * EVALS_PER_STEP[method]
    assert p.expert_cache(4) is cache
    # off-grid times fall back to routing (still exact) and the runners are removed on exit
    with ExpertCache(p, solver_times(3, method)) as off:
        out = act("none")
    assert off.misses > 0
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert p.model.runners == []


def test_expert_cache_is_rebuilt_when_weights_change():
    p = _policy()
    obs, tid = _batch(3)["obs"], _batch(3)["task_id"]

    def act(cache):
        return p.predict_action(obs, tid, generator=torch.Generator().manual_seed(0), clip=False, cache=cache)

    before = p.expert_cache()
    act("expert")
    with torch.no_grad():
        for blk in p.model.blocks:  # every routed expert's output changes: stale fused weights would show
            for e in blk.mlp.experts:
                e.fc2.weight.add_(0.5)
    assert p.expert_cache() is not before
    torch.testing.assert_close(act("expert"), act("none"), atol=1e-5, rtol=1e-5)


def test_expert_cache_needs_time_routing():
    with pytest.raises(ValueError, match="moe_router='token'"):
        ExpertCache(_policy(router="token"), solver_times(4))
    with pytest.raises(ValueError, match="no MoE"):
        _policy(moe=False).predict_action(_batch(1)["obs"], _batch(1)["task_id"], cache="expert")
    with pytest.raises(ValueError, match=r"predict_action: cache='fast': choose one of \('none', 'expert'"):
        _policy().predict_action(_batch(1)["obs"], _batch(1)["task_id"], cache="fast")


def test_sampler_cache_config_picks_the_cache():
    p = _policy()
    p.sampler.cache = CacheConfig(kind="expert")
    b = _batch(2)
    p.predict_action(b["obs"], b["task_id"])
    assert p.expert_cache().hits == 4  # one per solver evaluation: the config's cache ran without being asked
    p.sampler.cache = CacheConfig(kind="block", interval=2, order=0)
    p.predict_action(b["obs"], b["task_id"])
    assert p.last_cache_stats.skipped == 2 * 2  # evaluations 1 and 3 of 4 reuse both blocks


def test_dense_and_moe_have_equal_active_parameters():
    dense, moe = _policy(moe=False, perturb=False), _policy(moe=True, perturb=False)
    d, m = dense.num_active_parameters(), moe.num_active_parameters()
    router = sum(b.mlp.router.weight.numel() for b in moe.model.blocks)
    extra_bias = 2 * 32  # shared + routed expert each have an output bias: one extra [dim] per block
    assert m["dit_active"] - router - extra_bias == d["dit_active"]
    assert m["dit_total"] > d["dit_total"]


def test_block_cache_every_step_is_exact_and_calibration_skips():
    p = _policy()
    obs, tid = _batch(4)["obs"], _batch(4)["task_id"]

    def run(cache):
        return p.predict_action(obs, tid, steps=10, generator=torch.Generator().manual_seed(2), clip=False, cache=cache)

    ref = run("none")
    torch.testing.assert_close(run(CacheConfig(kind="block", interval=1)), ref)
    calibrated = p.calibrate_block_cache(obs, tid, steps=10, threshold=0.5)
    out = run("block")  # the calibrated schedule of this grid
    stats = p.last_cache_stats
    assert stats.skip_ratio > 0
    assert stats.per_block == {i: len(calibrated.schedule[i]) for i in range(2)}
    assert (out - ref).abs().max() < 0.5
    both = run("expert+block")  # the expert cache feeds the block cache: same blocks skipped, same actions
    assert p.last_cache_stats.per_block == stats.per_block and p.expert_cache(10).hits > 0
    torch.testing.assert_close(both, out, atol=1e-5, rtol=1e-5)


def test_module_fits_batch_dense_and_moe():
    for moe in (False, True):
        p = _policy(moe=moe, perturb=False).train()
        check_module_fits_batch(p, _batch(32), steps=30, lr=3e-3, drop=0.3)


def test_pretrained_round_trip(tmp_path):
    p = _policy()
    p.tokenizer.fit(
        {
            "obs_min": -torch.ones(6),
            "obs_max": torch.ones(6) * 2,
            "action_min": -torch.ones(2) * 0.5,
            "action_max": torch.ones(2),
        }
    )
    b = _batch(3)
    loaded = check_pretrained_round_trip(
        p, lambda m: m.predict_action(b["obs"], b["task_id"], generator=torch.Generator().manual_seed(0)), tmp_path
    )
    assert bool(loaded.tokenizer.fitted) and torch.equal(loaded.tokenizer.act_min, p.tokenizer.act_min)


def test_bad_config_named():
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8)
    with pytest.raises(ValueError, match="learned_pos=4"):
        PolicyModule(tok, DiTConfig(in_dim=2, dim=32, depth=1, heads=2, cond_dim=32, learned_pos=4))
    with pytest.raises(ValueError, match="cond_dim=0"):
        PolicyModule(tok, DiTConfig(in_dim=2, dim=32, depth=1, heads=2, learned_pos=8))
