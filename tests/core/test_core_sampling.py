"""Solvers reach their textbook order on a closed-form flow; guidance, schedules, known values, caches."""

import math

import pytest
import torch

from ditkit_core import DiT, DiTConfig
from ditkit_core.sampling import BlockCache, StepCache, guided, sample, time_grid
from ditkit_core.testing import perturb_weights

MU, S = 2.0, 0.5


def gaussian_velocity(x, t):
    """Exact marginal velocity of the linear path from N(0, 1) to N(MU, S^2)."""
    t = t.reshape(-1, *([1] * (x.dim() - 1)))
    var = (1 - t) ** 2 + t**2 * S**2
    return MU + ((t * S**2 - (1 - t)) / var) * (x - t * MU)


def exact(x0):
    return MU + S * x0  # the flow maps x0 to MU + S x0


@pytest.mark.parametrize("method, order", [("euler", 1), ("midpoint", 2), ("heun", 2), ("rk4", 4)])
def test_solver_order_of_accuracy(method, order):
    """Halving the step size divides the error by 2^order on dx/dt = -2 t x^2 (x(1) = x0 / (1 + x0))."""
    x0 = torch.rand(64, 3, dtype=torch.float64) + 0.5
    errs = []
    for steps in (8, 16, 32, 64):
        x = sample(lambda x, t: -2 * t[:, None] * x**2, x0, steps=steps, method=method)
        errs.append((x - x0 / (1 + x0)).abs().max().item())
    for a, b in zip(errs, errs[1:]):
        assert math.log2(a / b) == pytest.approx(order, abs=0.3)


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun", "rk4"])
def test_solvers_transport_gaussian_flow_exactly_in_the_limit(method):
    x0 = torch.randn(64, 3, dtype=torch.float64)
    errs = [
        (sample(lambda x, t: gaussian_velocity(x, t), x0, steps=s, method=method) - exact(x0)).abs().max()
        for s in (16, 256)
    ]
    assert errs[1] < errs[0] and errs[1] < 2e-2


@pytest.mark.parametrize("method", ["heun", "rk4"])
def test_euler_at_end_keeps_a_data_prediction_finite_and_changes_only_the_last_step(method):
    """A data prediction's velocity (x1 - x) / (1 - t) is singular at t = 1: the corrector there explodes; an Euler last
    step lands exactly on the prediction, and every earlier step is the method's own."""
    target = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    calls = []

    def v(x, t):  # a model whose data prediction drifts a little with t (as a network's does)
        calls.append(float(t[0]))
        x1 = target + 0.01 * t.reshape(-1, 1)
        return (x1 - x) / (1 - t.reshape(-1, 1)).clamp_min(1e-4)

    x0 = torch.zeros(1, 2, dtype=torch.float64)
    plain = sample(v, x0, steps=4, method=method)
    assert (plain - target).abs().max() > 1.0  # the corrector at t = 1 amplifies the drift by 1 / 1e-4
    calls.clear()
    out, traj = sample(v, x0, steps=4, method=method, euler_at_end=True, return_trajectory=True)
    torch.testing.assert_close(out, target + 0.01 * calls[-1])  # Euler from the last state lands on the prediction
    assert max(calls) < 1.0  # nothing evaluated at t = 1
    early = sample(v, x0, steps=4, method=method, return_trajectory=True)[1]
    torch.testing.assert_close(traj[:-1], early[:-1])  # the earlier steps are unchanged


def test_adaptive_solver():
    pytest.importorskip("torchdiffeq")
    x0 = torch.randn(16, 2, dtype=torch.float64)
    x = sample(lambda x, t: gaussian_velocity(x, t.double()), x0, method="dopri5", atol=1e-8, rtol=1e-8)
    assert (x - exact(x0)).abs().max() < 1e-5


@pytest.mark.parametrize("schedule", ["uniform", "shift", "sigmoid", "sway"])
def test_time_grids_are_monotone_from_noise_to_data(schedule):
    g = time_grid(10, schedule)
    assert g[0] == 0 and g[-1] == 1 and (g[1:] > g[:-1]).all()
    if schedule in ("shift", "sway"):  # both spend more steps near noise
        assert g[5] < 0.5


def test_known_values_are_kept_exactly():
    x0 = torch.randn(4, 6, 2)
    known = torch.randn(4, 6, 2)
    km = torch.zeros(4, 6, 1, dtype=torch.bool)
    km[:, :3] = True
    x, traj = sample(
        lambda x, t: gaussian_velocity(x, t),
        x0,
        steps=8,
        method="heun",
        known=known,
        known_mask=km,
        return_trajectory=True,
    )
    torch.testing.assert_close(x[:, :3], known[:, :3])
    assert len(traj) == 9
    torch.testing.assert_close(traj[4][:, :3], 0.5 * x0[:, :3] + 0.5 * known[:, :3])


def test_classifier_free_guidance_combination():
    def fn(x, t, cond_drop):
        return torch.zeros_like(x) if cond_drop else torch.ones_like(x)

    x, t = torch.randn(3, 4), torch.full((3,), 0.5)
    torch.testing.assert_close(guided(fn, 3.0)(x, t), torch.full_like(x, 3.0))
    outside = guided(fn, 3.0, cfg_interval=(0.7, 1.0))(x, t)
    torch.testing.assert_close(outside, torch.ones_like(x))  # outside the interval: conditional only
    resc = guided(lambda x, t, d: (0.5 if d else 1.0) * x, 4.0, cfg_rescale=1.0)(x, t)
    torch.testing.assert_close(resc.std(dim=1), x.std(dim=1))  # rescaled to the conditional std
    out = sample(fn, torch.zeros(2, 3), steps=4, cfg_scale=2.0)
    torch.testing.assert_close(out, torch.full((2, 3), 2.0))


def test_errors():
    with pytest.raises(ValueError, match="unknown method"):
        sample(gaussian_velocity, torch.zeros(2, 2), method="rk5")
    with pytest.raises(ValueError, match="unknown schedule"):
        time_grid(4, "cosine")
    with pytest.raises(ValueError, match="together"):
        sample(gaussian_velocity, torch.zeros(2, 2), known=torch.zeros(2, 2))


def _trained_like_dit():
    torch.manual_seed(0)
    return perturb_weights(DiT(DiTConfig(in_dim=2, dim=32, depth=4, heads=2)), scale=0.05, seed=None).eval()


def test_caches_exact_when_disabled_and_restore_the_model():
    m = _trained_like_dit()
    x0 = torch.randn(3, 5, 2)
    fn = lambda x, t: m(x, t)  # noqa: E731
    ref = sample(fn, x0, steps=10)
    with StepCache(m, threshold=0.0) as sc:
        a = sample(fn, x0, steps=10)
    with BlockCache(m, interval=1) as bc:
        b = sample(fn, x0, steps=10)
    torch.testing.assert_close(a, ref)
    torch.testing.assert_close(b, ref)
    assert sc.stats.skipped == 0 and bc.stats.skipped == 0
    assert m.runners == []  # runner removed on exit


def test_caches_skip_work_with_bounded_error():
    m = _trained_like_dit()
    x0 = torch.randn(3, 5, 2)
    fn = lambda x, t: m(x, t)  # noqa: E731
    ref = sample(fn, x0, steps=20)
    scale = (ref - x0).abs().mean()
    with StepCache(m, threshold=0.3) as sc:
        a = sample(fn, x0, steps=20)
    assert sc.stats.skip_ratio > 0.2
    assert (a - ref).abs().mean() < 0.1 * scale
    for order in (0, 1):
        with BlockCache(m, interval=2, order=order) as bc:
            b = sample(fn, x0, steps=20)
        assert bc.stats.skip_ratio == pytest.approx(0.45, abs=0.06)
        assert (b - ref).abs().mean() < 0.1 * scale
    cal = BlockCache.calibrate(m, lambda: sample(fn, x0, steps=20), threshold=0.2)
    assert set(cal.schedule) == set(range(4))
    with cal:
        c = sample(fn, x0, steps=20)
    assert cal.stats.skip_ratio > 0
    assert (c - ref).abs().mean() < 0.1 * scale


def test_cache_keeps_cfg_branches_apart():
    m = perturb_weights(DiT(DiTConfig(in_dim=2, dim=32, depth=2, heads=2, num_classes=3)), scale=0.05, seed=None).eval()
    labels = torch.tensor([0, 1])

    def fn(x, t, cond_drop):
        return m(x, t, cond=labels, drop_cond=torch.full((2,), cond_drop))

    x0 = torch.randn(2, 4, 2)
    ref = sample(fn, x0, steps=6, cfg_scale=3.0)
    with BlockCache(m, interval=1):
        out = sample(fn, x0, steps=6, cfg_scale=3.0)
    torch.testing.assert_close(out, ref)


def test_one_cache_context_serves_many_sampling_runs():
    m = _trained_like_dit()
    fn = lambda x, t: m(x, t)  # noqa: E731
    x0s = [torch.randn(2, 5, 2) for _ in range(3)]
    with BlockCache(m, interval=2) as bc:
        outs = [sample(fn, x0, steps=8) for x0 in x0s]
    for x0, out in zip(x0s, outs):  # each run behaves like a fresh cache
        with BlockCache(m, interval=2):
            torch.testing.assert_close(out, sample(fn, x0, steps=8))
    assert bc.stats.skip_ratio == pytest.approx(0.5)
