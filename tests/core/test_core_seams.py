"""The seams domains build on: condition channels, pair bias, token partitions, block runners, hidden states,
and the explicit solver/cache protocol (caches that reuse nothing equal the plain forward for every partition)."""

import dataclasses

import pytest
import torch

from ditkit_core.nn import DiT, DiTConfig, TokenPartition, attention
from ditkit_core.nn.attention import BackendUnavailableError
from ditkit_core.sampling import BlockCache, ExpertCache, StepCache, current_call, sample, solver_times
from ditkit_core.testing import perturb_weights

BASE = dict(dim=32, depth=3, heads=2)


def dit(**kw) -> DiT:
    torch.manual_seed(0)
    return perturb_weights(DiT(DiTConfig(**{**BASE, **kw})), scale=0.05, seed=None).eval()


def test_condition_channels_equal_a_joint_input_projection():
    torch.manual_seed(0)
    joint = DiT(DiTConfig(in_dim=3 + 5, out_dim=3, **BASE))
    torch.manual_seed(0)
    split = DiT(DiTConfig(in_dim=3, cond_channels=5, **BASE))
    # the split projections are initialised as one matrix: same initial distribution as the joint layout
    torch.testing.assert_close(torch.cat([split.x_embed.weight, split.cond_proj.weight], 1), joint.x_embed.weight)
    perturb_weights(joint, scale=0.05, seed=1)
    state = dict(joint.state_dict())
    w = state.pop("x_embed.weight")
    state["x_embed.weight"], state["cond_proj.weight"] = w[:, :3], w[:, 3:]
    split.load_state_dict(state)
    x, c, t = torch.randn(2, 7, 3), torch.randn(2, 7, 5), torch.rand(2)
    torch.testing.assert_close(split(x, t, x_cond=c), joint(torch.cat([x, c], -1), t), atol=1e-5, rtol=1e-5)


def test_condition_dropout_zeroes_condition_channels():
    m = dit(in_dim=3, cond_channels=4)
    x, c, t = torch.randn(2, 6, 3), torch.randn(2, 6, 4), torch.rand(2)
    drop = torch.tensor([True, False])
    out = m(x, t, x_cond=c, drop_cond=drop)
    torch.testing.assert_close(out[0], m(x, t, x_cond=torch.zeros_like(c))[0])
    torch.testing.assert_close(out[1], m(x, t, x_cond=c)[1])
    keep = dit(in_dim=3, cond_channels=4, drop_x_cond=False)
    torch.testing.assert_close(keep(x, t, x_cond=c, drop_cond=drop), keep(x, t, x_cond=c))
    with pytest.raises(ValueError, match="needs x_cond"):
        m(x, t)


@pytest.mark.parametrize("backend", ["sdpa", "flex"])
def test_attention_bias_matches_math(backend):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 9, 8) for _ in range(3))
    bias = torch.randn(2, 3, 9, 9)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    for m, b, window in ((None, bias, None), (mask, bias, None), (mask, bias[:, :1], None), (mask, bias, 2)):
        ref = attention(q, k, v, mask=m, bias=b, window=window, backend="math")
        with torch.no_grad():
            out = attention(q, k, v, mask=m, bias=b, window=window, backend=backend)
        torch.testing.assert_close(out, ref, atol=2e-5, rtol=2e-5)
    with pytest.raises(BackendUnavailableError, match="no additive bias"):
        attention(q, k, v, bias=bias, backend="flash")


def test_pair_bias_changes_attention_and_respects_padding():
    m = dit(in_dim=3, pair_dim=4, registers=2)
    x, t = torch.randn(2, 6, 3), torch.rand(2)
    pair = torch.randn(2, 6, 6, 4)
    out = m(x, t, pair=pair)
    assert (out - m(x, t, pair=torch.zeros_like(pair))).abs().max() > 1e-4
    # padded tokens never change real ones, whatever their pair features
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[:, 4:] = False
    x2, pair2 = x.clone(), pair.clone()
    x2[:, 4:] = 9.0
    pair2[:, 4:] = 7.0
    pair2[:, :, 4:] = -7.0
    torch.testing.assert_close(m(x, t, mask=mask, pair=pair)[:, :4], m(x2, t, mask=mask, pair=pair2)[:, :4])


def test_grid_partition_is_window_attention():
    part = TokenPartition.grid([4, 2, 4], [2, 2, 2])
    assert (part.groups, part.size) == (4, 8)
    h = torch.randn(3, 32, 5)
    torch.testing.assert_close(part.merge(part.split(h), 3), h)
    pair = torch.randn(3, 32, 32, 2)
    sub = part.split_pair(pair)
    assert sub.shape == (12, 8, 8, 2)
    g0 = part.index[0]
    torch.testing.assert_close(sub[0], pair[0][g0][:, g0])
    m = dit(in_dim=3, dim=48, rope_axes=3, window_grid=[4, 2, 4], window_size=[2, 2, 2], window_every=2)
    t = torch.rand(2)
    pos = torch.stack(torch.meshgrid(torch.arange(4), torch.arange(2), torch.arange(4), indexing="ij"), -1)
    pos = pos.reshape(1, 32, 3).expand(2, 32, 3).float()
    # a local block of the DiT equals the same block with a dense same-window mask
    h = torch.randn(2, 32, 48)
    c, temb = m.embed_condition(t, None, None)
    from ditkit_core.nn import BlockInputs

    inp = BlockInputs(c=c, temb=temb, mask=None, angles=m.rope.angles(pos, t), context=None, context_mask=None, t=t)
    group = torch.empty(32, dtype=torch.long)
    for gi, idx in enumerate(part.index):
        group[idx] = gi
    dense = (group[:, None] == group[None, :])[None, None].expand(2, 1, 32, 32)
    assert m.config.is_local_block(0) and not m.config.is_local_block(1)
    torch.testing.assert_close(
        m.block(0, h, inp), m.blocks[0](h, dataclasses.replace(inp, mask=dense)), atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(m.block(1, h, inp), m.blocks[1](h, inp))
    with pytest.raises(ValueError, match="needs 32 tokens"):
        m(torch.randn(2, 30, 3), t, pos=pos[:, :30])


def test_hidden_states_are_returned():
    m = dit(in_dim=3, registers=1)
    x, t = torch.randn(2, 5, 3), torch.rand(2)
    out, h = m(x, t, return_hidden=True)
    assert h.shape == (2, 5, 32)
    c, _ = m.embed_condition(t.float(), None, None)
    torch.testing.assert_close(m.final(h, c), out)


KINDS = {
    "global": dict(in_dim=3),
    "window1d": dict(in_dim=3, window=2, window_every=2),
    "grid3d": dict(in_dim=3, dim=48, rope_axes=3, window_grid=[2, 2, 4], window_size=[2, 2, 2], window_every=1),
    "pair": dict(in_dim=3, pair_dim=2),
    "moe": dict(in_dim=3, moe_experts=3, moe_top_k=1, moe_router="time"),
}


def _inputs(kind):
    torch.manual_seed(1)
    kw = {}
    if kind == "grid3d":
        pos = torch.stack(torch.meshgrid(torch.arange(2), torch.arange(2), torch.arange(4), indexing="ij"), -1)
        kw["pos"] = pos.reshape(1, 16, 3).expand(2, 16, 3).float()
    if kind == "pair":
        kw["pair"] = torch.randn(2, 16, 16, 2)
    return torch.randn(2, 16, 3), kw


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("method", ["euler", "heun"])
def test_caches_that_reuse_nothing_equal_the_plain_forward(kind, method):
    m = dit(**KINDS[kind], num_classes=2)
    x0, kw = _inputs(kind)
    labels = torch.tensor([0, 1])

    def fn(x, t, drop=False):
        return m(x, t, cond=labels, drop_cond=torch.full((2,), drop), **kw)

    ref = sample(fn, x0, steps=5, method=method, cfg_scale=2.0)
    with StepCache(m, threshold=0.0) as sc:
        a = sample(fn, x0, steps=5, method=method, cfg_scale=2.0)
    with BlockCache(m, interval=1) as bc:
        b = sample(fn, x0, steps=5, method=method, cfg_scale=2.0)
    torch.testing.assert_close(a, ref, atol=0, rtol=0)
    torch.testing.assert_close(b, ref, atol=0, rtol=0)
    assert sc.stats.skipped == 0 and bc.stats.skipped == 0 and m.runners == []


def test_solver_announces_step_stage_and_branch():
    seen = []

    def fn(x, t, drop=False):
        c = current_call()
        seen.append((c.step, c.stage, c.index, c.branch))
        return -x

    sample(fn, torch.zeros(1, 2), steps=2, method="heun", cfg_scale=2.0)
    assert seen == [
        (0, 0, 0, "cond"),
        (0, 0, 0, "uncond"),
        (0, 1, 1, "cond"),
        (0, 1, 1, "uncond"),
        (1, 0, 2, "cond"),
        (1, 0, 2, "uncond"),
        (1, 1, 3, "cond"),
        (1, 1, 3, "uncond"),
    ]
    assert current_call() is None


def test_heun_with_a_block_cache_keeps_second_stages_apart():
    """Heun's second evaluation shares ``t`` with the next step's first: the cache must not mix them up."""
    m = dit(in_dim=3)
    x0, _ = _inputs("global")
    fn = lambda x, t: m(x, t)  # noqa: E731
    ref = sample(fn, x0, steps=8, method="heun")
    with BlockCache(m, interval=2, order=1) as bc:
        out = sample(fn, x0, steps=8, method="heun")
    assert bc.stats.skip_ratio == pytest.approx(0.5, abs=0.05)
    assert (out - ref).abs().mean() < 0.05 * (ref - x0).abs().mean()


def test_expert_cache_is_exact_and_composes_with_a_block_cache():
    m = dit(**KINDS["moe"])
    x0, _ = _inputs("moe")
    fn = lambda x, t: m(x, t)  # noqa: E731
    ref = sample(fn, x0, steps=4)
    ec = ExpertCache(m, solver_times(4))
    with ec:
        out = sample(fn, x0, steps=4)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert ec.hits == 4 and ec.misses == 0
    with ec, BlockCache(m, interval=1):
        both = sample(fn, x0, steps=4)
    torch.testing.assert_close(both, ref, atol=1e-5, rtol=1e-5)
    assert ec.hits == 8


def test_step_cache_threshold_is_calibrated_per_model():
    m = dit(in_dim=3)
    x0, _ = _inputs("global")
    fn = lambda x, t: m(x, t)  # noqa: E731
    cache = StepCache.calibrate(m, lambda: sample(fn, x0, steps=20), skip_ratio=0.4)
    with cache:
        sample(fn, x0, steps=20)
    assert cache.stats.skip_ratio == pytest.approx(0.4, abs=0.15)  # replayed on the calibration run: approximate
    assert cache.stats.peak_bytes > 0
    assert cache._state == {}  # cached tensors are freed on exit


def test_fused_rms_norm_and_complex_rope_match_their_references():
    import torch.nn.functional as F

    from ditkit_core.nn import RMSNorm, RotaryEmbedding

    torch.manual_seed(0)
    for affine in (True, False):
        norm = RMSNorm(24, affine=affine)
        if affine:
            torch.nn.init.normal_(norm.weight)
        x = torch.randn(3, 5, 24, dtype=torch.float64, requires_grad=True)
        w = None if norm.weight is None else norm.weight.double()
        norm.double()
        assert torch.autograd.gradcheck(norm, (x,))  # the hand-written backward against finite differences
        torch.testing.assert_close(norm(x), F.rms_norm(x, (24,), w, 1e-6))
    x = torch.randn(2, 3, 7, 12, requires_grad=True)
    ang = torch.randn(2, 7, 6)
    a, b = RotaryEmbedding.rotate(x, ang), RotaryEmbedding.rotate_reference(x, ang)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    g = torch.randn_like(a)
    torch.testing.assert_close(torch.autograd.grad(a, x, g)[0], torch.autograd.grad(b, x, g)[0], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(RotaryEmbedding.rotate(x.bfloat16(), ang), b.bfloat16(), atol=2e-2, rtol=2e-2)


def test_batched_expert_dispatch_equals_the_per_token_sum():
    from ditkit_core.nn import MoEMlp

    torch.manual_seed(0)
    moe = MoEMlp(16, 32, experts=5, top_k=2, shared=1, router="token")
    x, temb = torch.randn(3, 7, 16), torch.randn(3, 16)
    _, idx, w = moe.route(x, temb)
    ref = sum(e(x) for e in moe.shared)
    for b in range(3):
        for n in range(7):
            for j in range(2):
                ref[b, n] = ref[b, n] + w[b, n, j] * moe.experts[int(idx[b, n, j])](x[b, n])
    torch.testing.assert_close(moe(x, temb), ref, atol=1e-5, rtol=1e-5)
