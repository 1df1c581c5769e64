"""Metrics against closed forms; baselines on series whose answer is known."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure

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


def ssim_by_hand(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """SSIM of two images ``[H, W]``: 11-tap Gaussian window (sigma 1.5), K1 0.01, K2 0.03, reflected borders."""
    r = 5
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / 1.5) ** 2)
    w = np.outer(k, k) / k.sum() ** 2
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    xp, yp = np.pad(x, r, mode="reflect"), np.pad(y, r, mode="reflect")
    vals = []
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            a, b = xp[i : i + 2 * r + 1, j : j + 2 * r + 1], yp[i : i + 2 * r + 1, j : j + 2 * r + 1]
            mx, my = (w * a).sum(), (w * b).sum()
            vx, vy, cxy = (w * a * a).sum() - mx**2, (w * b * b).sum() - my**2, (w * a * b).sum() - mx * my
            vals.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_closed_forms_and_the_gaussian_window():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=g)
    y = (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert ssim(x, x, 1.0) == pytest.approx(1.0)
    assert ssim(y, x, 1.0) < 0.9
    # constant images: no variance, SSIM = (2ab + C1) / (a^2 + b^2 + C1) whatever the window
    a, b, c1 = 0.3, 0.5, 0.01**2
    const = ssim(
        torch.full((1, 1, 8, 8), a, dtype=torch.float64), torch.full((1, 1, 8, 8), b, dtype=torch.float64), 1.0
    )
    assert const == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    # the published window, by hand per image and channel, then averaged
    hand = np.mean(
        [ssim_by_hand(y[i, c].double().numpy(), x[i, c].double().numpy(), 2.0) for i in range(2) for c in range(3)]
    )
    assert ssim(y, x, 2.0) == pytest.approx(hand, rel=1e-9)
    # torchmetrics' default call is that window; its uniform 7 x 7 window (the earlier ditkit one) gives another value
    assert ssim(y, x, 1.0) == pytest.approx(
        float(structural_similarity_index_measure(y.double(), x.double(), data_range=1.0))
    )
    uniform = float(structural_similarity_index_measure(y, x, data_range=1.0, gaussian_kernel=False, kernel_size=7))
    assert abs(ssim(y, x, 1.0) - uniform) > 1e-3
    with pytest.raises(ValueError, match="H, W > 5"):
        ssim(x[..., :5, :5], x[..., :5, :5], 1.0)


def test_psnr_closed_forms():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
    # MSE 0.01; torchmetrics holds log(range) and log(10) in float32: ~1e-6 dB of rounding
    assert psnr(x + 0.1, x, 1.0) == pytest.approx(20.0, abs=1e-5)
    assert psnr(x - 0.1, x, 2.0) == pytest.approx(10 * math.log10(4 / 0.01), abs=1e-5)
    truth = x.clone()
    truth[0, 0] = float("nan")
    pred = x + 0.1
    pred[0, 0] = 50.0  # not scored: the truth is unknown there
    assert psnr(pred, truth, 1.0) == pytest.approx(20.0, abs=1e-5)
    assert psnr(x, x, 1.0) == math.inf


def test_spectral_angle_closed_forms():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 16, 16, generator=g) + 0.1
    assert spectral_angle(2 * x, x, dim=1) == pytest.approx(0.0, abs=1e-5)  # float32 in, no acos-near-1 floor
    a = torch.zeros(1, 2, 1, 1)
    b = a.clone()
    a[:, 0], b[:, 1] = 1.0, 1.0
    assert spectral_angle(a, b, dim=1) == pytest.approx(90.0)  # orthogonal spectra
    # pixels [N=1, H=1, W=2] with spectra (1, 0) vs (1, 1): 45 deg, and (1, 0) vs (0, 1): 90 deg
    p = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])  # [N, W, C], channel last
    t = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    assert spectral_angle(p, t, dim=-1) == pytest.approx(67.5)
    assert spectral_angle(p, t, mask=torch.tensor([[True, False]]), dim=-1) == pytest.approx(45.0)
    assert spectral_angle(p, t, mask=torch.tensor([[False, True]]), dim=-1) == pytest.approx(90.0)
    assert math.isnan(spectral_angle(torch.zeros(1, 2, 1, 1), b, dim=1))  # a zero spectrum has no angle


def test_f1():
    p = torch.tensor([True, True, False, False])
    t = torch.tensor([True, False, True, False])
    assert f1_score(p, t) == pytest.approx(0.5)
    assert f1_score(t, t) == pytest.approx(1.0)
