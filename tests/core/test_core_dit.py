"""DiT contracts: zero init, padding invariance, conditioning, config and shape errors."""

import pytest
import torch

from ditkit_core import DiT, DiTConfig
from ditkit_core.nn import ConfigError
from ditkit_core.testing import perturb_weights as perturb

FULL = dict(
    in_dim=3,
    dim=48,
    depth=3,
    heads=4,
    rope_axes=1,
    registers=2,
    moe_experts=4,
    moe_top_k=2,
    context_dim=8,
    num_classes=5,
    window=3,
    window_every=2,
    sandwich_norm=True,
)


@pytest.mark.parametrize("extra", [{}, FULL])
def test_fresh_model_outputs_exact_zeros(extra):
    cfg = DiTConfig(**{**dict(in_dim=3, dim=32, depth=2, heads=4), **extra})
    m = DiT(cfg)
    kw = {}
    if cfg.rope_axes:
        kw["pos"] = torch.arange(7.0)[None, :, None].expand(2, 7, 1)
    if cfg.context_dim:
        kw["context"] = torch.randn(2, 4, 8)
    out = m(torch.randn(2, 7, 3), torch.rand(2), **kw)
    assert out.shape == (2, 7, 3)
    assert torch.equal(out, torch.zeros_like(out))


@pytest.mark.parametrize("backend", ["math", "sdpa", "flex"])
def test_padding_never_changes_real_tokens(backend):
    torch.manual_seed(0)
    m = perturb(DiT(DiTConfig(**FULL, attn_backend=backend))).eval()
    n, extra = 9, 5
    x = torch.randn(2, n, 3)
    pos = torch.arange(float(n))[None, :, None].expand(2, n, 1)
    ctx, cmask = torch.randn(2, 4, 8), torch.tensor([[True, True, False, False], [True] * 4])
    t, labels = torch.rand(2), torch.tensor([1, 3])
    xp = torch.cat([x, 1e3 * torch.randn(2, extra, 3)], 1)
    pp = torch.cat([pos, 100 * torch.rand(2, extra, 1)], 1)
    mask = torch.cat([torch.ones(2, n, dtype=torch.bool), torch.zeros(2, extra, dtype=torch.bool)], 1)
    with torch.set_grad_enabled(backend != "flex"):  # flex: forward only on CPU
        ref = m(x, t, mask=torch.ones(2, n, dtype=torch.bool), pos=pos, context=ctx, context_mask=cmask, cond=labels)
        out = m(xp, t, mask=mask, pos=pp, context=ctx, context_mask=cmask, cond=labels)
    assert ref.abs().max() > 1e-3  # the model is not trivially zero
    torch.testing.assert_close(out[:, :n], ref, atol=2e-5, rtol=1e-4)
    assert torch.equal(out[:, n:], torch.zeros_like(out[:, n:]))


def test_condition_paths_change_output_and_drop_cond_matches_null():
    m = perturb(DiT(DiTConfig(in_dim=2, dim=32, depth=2, heads=2, cond_dim=3, context_dim=4))).eval()
    x, t = torch.randn(2, 5, 2), torch.rand(2)
    c1, c2 = torch.randn(2, 3), torch.randn(2, 3)
    ctx = torch.randn(2, 6, 4)
    assert not torch.allclose(m(x, t, cond=c1, context=ctx), m(x, t, cond=c2, context=ctx))
    dropped = m(x, t, cond=c1, context=ctx, drop_cond=torch.tensor([True, True]))
    uncond = m(x, t, context=ctx, context_mask=torch.zeros(2, 6, dtype=torch.bool))
    torch.testing.assert_close(dropped, uncond)
    m2 = perturb(DiT(DiTConfig(in_dim=2, dim=32, depth=2, heads=2, num_classes=3))).eval()
    null = m2(x, t, cond=torch.tensor([0, 1]), drop_cond=torch.tensor([True, True]))
    torch.testing.assert_close(null, m2(x, t))


def test_moe_balance_loss_and_active_parameters():
    cfg = DiTConfig(in_dim=2, dim=32, depth=2, heads=2, moe_experts=4, moe_top_k=1, moe_router="time")
    m = perturb(DiT(cfg))
    m(torch.randn(3, 6, 2), torch.rand(3))
    assert m.aux_loss() > 0
    assert m.num_parameters(active_only=True) < m.num_parameters()


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(in_dim=3, dim=30, heads=4), "heads"),
        (dict(in_dim=3, dim=32, heads=4, attn_backend="fast"), "attn_backend"),
        (dict(in_dim=-1), "in_dim"),
        (dict(in_dim=3, dim=32, heads=4, rope_axes=3), "rope_axes"),
        (dict(in_dim=3, moe_experts=2, moe_top_k=3), "moe_top_k"),
    ],
)
def test_config_errors_name_field_and_value(kw, field):
    with pytest.raises(ConfigError, match=field):
        DiTConfig(**kw)


def test_unknown_field_and_preset_are_named():
    with pytest.raises(ConfigError, match="dimm"):
        DiTConfig.from_dict({"in_dim": 2, "dimm": 3})
    with pytest.raises(ConfigError, match="XL"):
        DiTConfig.preset("XL", in_dim=2)
    assert DiTConfig.preset("B", in_dim=4).dim == 768


def test_shape_and_dtype_errors():
    m = DiT(DiTConfig.preset("debug", in_dim=3))
    with pytest.raises(ValueError, match="in_dim=3"):
        m(torch.randn(2, 5, 4), torch.rand(2))
    with pytest.raises(ValueError, match="mask"):
        m(torch.randn(2, 5, 3), torch.rand(2), mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="t must be"):
        m(torch.randn(2, 5, 3), torch.rand(3))
    with pytest.raises(TypeError, match="floating"):
        m(torch.ones(2, 5, 3, dtype=torch.long), torch.rand(2))
    with pytest.raises(ValueError, match="context_dim=0"):
        m(torch.randn(2, 5, 3), torch.rand(2), context=torch.randn(2, 3, 4))
