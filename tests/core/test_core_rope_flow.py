"""RoPE maths and flow-matching paths, time samplers, losses and OT pairing against closed forms."""

import math

import pytest
import torch

from ditkit_core.flow import (
    CosinePath,
    LinearPath,
    TimeSampler,
    drop_conditions,
    length_shift,
    masked_mse,
    ot_pair,
    shift_time,
)
from ditkit_core.nn.rope import RotaryEmbedding


@pytest.mark.parametrize("axes", [1, 2, 3])
def test_rope_is_a_rotation_and_relative(axes):
    rope = RotaryEmbedding(24, axes)
    q, k = torch.randn(1, 1, 1, 24), torch.randn(1, 1, 1, 24)
    p = torch.randn(1, 1, axes) * 10
    d = torch.randn(1, 1, axes) * 3
    rq = rope.rotate(q, rope.angles(p))
    assert torch.allclose(rq.norm(), q.norm(), atol=1e-5)
    s1 = (rope.rotate(q, rope.angles(p + d)) * rope.rotate(k, rope.angles(p))).sum()
    s2 = (rope.rotate(q, rope.angles(d)) * k).sum()  # depends on the offset only
    assert torch.allclose(s1, s2, atol=1e-4)


def test_rope_scalings():
    pos = torch.arange(8.0)[None, :, None]
    plain, pi = RotaryEmbedding(16, 1), RotaryEmbedding(16, 1, scaling="pi", scale=4.0)
    torch.testing.assert_close(pi.angles(pos * 4), plain.angles(pos))  # interpolation: 4x positions = plain
    ntk = RotaryEmbedding(16, 1, scaling="ntk", scale=4.0)
    assert torch.allclose(ntk.inv_freq[0], plain.inv_freq[0])  # highest frequency kept
    assert ntk.inv_freq[-1] < plain.inv_freq[-1]  # lowest stretched
    ta = RotaryEmbedding(16, 1, scaling="time_aware", scale=4.0)
    fa = RotaryEmbedding(16, 1, scaling="freq_aware", scale=4.0)
    torch.testing.assert_close(ta.angles(pos, torch.zeros(1)), pi.angles(pos))  # t=0: PI
    torch.testing.assert_close(ta.angles(pos, torch.ones(1)), fa.angles(pos))  # t=1: frequency-aware


@pytest.mark.parametrize("path", [LinearPath(), LinearPath(sigma_min=1e-2), CosinePath()])
def test_path_endpoints_and_velocity_is_time_derivative(path):
    x0, x1 = torch.randn(4, 3, 2), torch.randn(4, 3, 2)
    assert torch.allclose(path.sample(x0, x1, torch.zeros(4)).x_t, x0)
    t = torch.rand(4) * 0.8 + 0.1
    h = 1e-3
    fd = (path.sample(x0, x1, t + h).x_t - path.sample(x0, x1, t - h).x_t) / (2 * h)
    ps = path.sample(x0, x1, t)
    assert torch.allclose(ps.u_t, fd, atol=1e-3)
    torch.testing.assert_close(path.velocity_to_x1(ps.x_t, ps.u_t, t), x1, atol=1e-4, rtol=1e-4)


def test_linear_path_is_the_convention():
    x0, x1, t = torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.tensor([0.25, 1.0])
    ps = LinearPath().sample(x0, x1, t)
    torch.testing.assert_close(ps.x_t, (1 - t)[:, None, None] * x0 + t[:, None, None] * x1)
    torch.testing.assert_close(ps.u_t, x1 - x0)
    torch.testing.assert_close(ps.x_t[1], x1[1])


def test_time_samplers_follow_their_distributions():
    g = torch.Generator().manual_seed(0)
    u = TimeSampler("uniform")(20000, generator=g)
    assert abs(u.mean() - 0.5) < 0.01 and u.min() >= 0 and u.max() <= 1
    ln = TimeSampler("logit_normal", loc=0.0, scale=1.0)(20000, generator=g)
    assert abs(ln.median() - 0.5) < 0.01
    logit = torch.log(ln / (1 - ln))
    assert abs(logit.std() - 1.0) < 0.03
    shifted = TimeSampler("logit_normal", shift=3.0)(20000, generator=g)
    assert shifted.median() < 0.3  # shift > 1 moves mass towards noise (t = 0)
    mode = TimeSampler("mode", mode_scale=0.0)(20000, generator=g)
    assert abs(mode.mean() - 0.5) < 0.01  # mode with s = 0 is uniform
    with pytest.raises(ValueError, match="kind"):
        TimeSampler("gaussian")


def test_shift_matches_diffusers_sigma_formula():
    t = torch.linspace(0, 1, 11)
    s = 3.0
    sigma = 1 - t
    sigma_shift = s * sigma / (1 + (s - 1) * sigma)
    torch.testing.assert_close(shift_time(t, s), 1 - sigma_shift)
    assert math.isclose(length_shift(256), 1.0) and math.isclose(length_shift(4096), 3.0)


def test_masked_mse_ignores_padding():
    pred, target = torch.zeros(2, 4, 3), torch.ones(2, 4, 3)
    target[1, 2:] = 1e6
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    w = torch.tensor([1.0, 0.0])
    assert masked_mse(pred, target, None, weight=w).item() == pytest.approx(0.5)


def test_drop_conditions_rate():
    d = drop_conditions(20000, 0.1, generator=torch.Generator().manual_seed(0))
    assert abs(d.float().mean() - 0.1) < 0.01
    assert drop_conditions(4, 0.0) is None


def test_ot_pairing_is_a_permutation_that_lowers_cost():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(32, 4, 2, generator=g), torch.randn(32, 4, 2, generator=g) + 1
    paired = ot_pair(x0, x1)
    assert sorted(paired.flatten(1).sum(1).tolist()) == pytest.approx(sorted(x0.flatten(1).sum(1).tolist()))
    assert ((paired - x1) ** 2).sum() < ((x0 - x1) ** 2).sum()
