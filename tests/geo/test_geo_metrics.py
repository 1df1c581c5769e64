"""Metrics against closed forms; baselines on series whose answer is known."""

import math

import pytest
import torch

from ditkit_geo.metrics import (
    crps_ensemble,
    f1_score,
    last_value,
    linear_interpolation,
    masked_mae,
    masked_rmse,
    psnr,
    seasonal_naive,
    spectral_angle,
    ssim,
)


def cube(series):  # [N, T] -> [N, T, 1, 1, 1]
    return torch.as_tensor(series, dtype=torch.float32)[:, :, None, None, None]


def test_linear_interpolation_is_exact_on_lines_and_flat_at_the_ends():
    days = torch.tensor([[0.0, 10.0, 30.0, 40.0, 70.0]])
    truth = cube(2.0 * days + 1.0)
    given = cube([[0, 1, 0, 1, 0]]).bool()
    out = linear_interpolation(truth, given, days)
    torch.testing.assert_close(out[0, 1:4].flatten(), truth[0, 1:4].flatten())
    assert float(out[0, 0]) == pytest.approx(21.0) and float(out[0, 4]) == pytest.approx(81.0)
    none = linear_interpolation(truth, torch.zeros_like(given), days, fill=-5.0)
    assert (none == -5.0).all()


def test_last_value_and_seasonal_naive():
    days = torch.tensor([[0.0, 100.0, 200.0, 365.0, 465.0, 565.0]])
    vals = cube([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    given = cube([[1, 1, 1, 1, 0, 0]]).bool()
    lv = last_value(vals, given)
    assert lv[0, 4:].flatten().tolist() == [4.0, 4.0]
    sn = seasonal_naive(vals, given, days)
    assert sn[0, 4:].flatten().tolist() == [2.0, 3.0]  # one year earlier


def test_crps_closed_forms():
    y = torch.tensor([0.0, 1.0])
    m = torch.ones(2, dtype=torch.bool)
    one = torch.tensor([[1.0, 3.0]])
    assert crps_ensemble(one, y, m) == pytest.approx(masked_mae(one[0], y, m))
    two = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # y=0: E|X-y| = 1, E|X-X'| = 1 -> 0.5; y=1: 1 - 0.5 = 0.5
    assert crps_ensemble(two, y, m) == pytest.approx(0.5)
    assert masked_rmse(torch.tensor([3.0, 1.0]), y, m) == pytest.approx(math.sqrt(4.5))


def test_image_metrics():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g)
    assert ssim(x, x, 1.0) == pytest.approx(1.0)
    assert ssim(x + 0.3 * torch.randn(x.shape, generator=g), x, 1.0) < 0.9
    assert psnr(x + 0.1, x, 1.0) == pytest.approx(20.0, abs=1e-4)
    assert spectral_angle(2 * x, x, dim=1) == pytest.approx(0.0, abs=0.05)
    a = torch.zeros(1, 2, 1, 1)
    b = a.clone()
    a[:, 0], b[:, 1] = 1.0, 1.0
    assert spectral_angle(a, b, dim=1) == pytest.approx(90.0)


def test_f1():
    p = torch.tensor([True, True, False, False])
    t = torch.tensor([True, False, True, False])
    assert f1_score(p, t) == pytest.approx(0.5)
    assert f1_score(t, t) == pytest.approx(1.0)
