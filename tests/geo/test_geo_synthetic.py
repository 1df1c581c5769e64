"""The synthetic generator: closed-form phenology, physical consistency of bands, clouds, SAR and changes."""

import numpy as np
import pytest

from ditkit_geo.synthetic import BANDS, CLASSES, double_logistic, make_synthetic, ndvi


@pytest.fixture(scope="module")
def data():
    return make_synthetic(24, size=16, t=16, seed=3)


def test_double_logistic_closed_form():
    d = np.array([-1e4, 150.0, 1e4])
    v = double_logistic(d, 0.1, 0.8, 150.0, 1e4 / 2, 0.1, 0.1)
    np.testing.assert_allclose(v, [0.1, 0.1 + 0.8 * 0.5, 0.1], atol=1e-6)  # base, half-rise at sos, base after eos


def test_shapes_dates_and_determinism(data):
    n, t, c, h, w = data.shape
    assert (n, t, c, h, w) == (24, 16, len(BANDS), 16, 16)
    assert (np.diff(data.days, axis=1) > 0).all() and (data.days[:, 0] == 0).all()
    gaps = np.diff(data.days, axis=1)
    assert gaps.std() > 5  # irregular acquisitions
    assert ((data.doy >= 0) & (data.doy < 365)).all()
    again = make_synthetic(24, size=16, t=16, seed=3)
    np.testing.assert_array_equal(again.values, data.values)


def test_clouds_hide_optical_only_and_persist(data):
    nan = np.isnan(data.observed)
    assert not nan[:, :, 10:].any()  # SAR is never cloudy
    np.testing.assert_array_equal(nan[:, :, :10], np.broadcast_to(data.cloud[:, :, None], nan[:, :, :10].shape))
    assert np.isfinite(data.values).all()  # the truth is cloud-free
    cover = data.cloud.mean((2, 3))  # [N, T]
    assert 0.05 < cover.mean() < 0.7
    # persistence: cloud cover of consecutive dates is positively correlated
    a, b = cover[:, :-1].ravel(), cover[:, 1:].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.1
    # clouds brighten the blue band on average
    blue = data.cloudy[:, :, 0][data.cloud] - data.values[:, :, 0][data.cloud]
    assert blue.mean() > 0.05


def test_vegetation_drives_ndvi_and_sar(data):
    b = BANDS
    nd = ndvi(data.values[:, :, b.index("B8")], data.values[:, :, b.index("B4")])
    classes = data.extra["classes"]
    water = np.broadcast_to(classes[:, None] == CLASSES.index("water"), nd.shape)
    forest = np.broadcast_to(classes[:, None] == CLASSES.index("forest"), nd.shape)
    assert nd[water].mean() < 0 < 0.5 < nd[forest].mean()
    veg = ~np.isin(classes, [CLASSES.index("water"), CLASSES.index("urban")])
    veg = np.broadcast_to(veg[:, None], nd.shape) & ~np.broadcast_to(data.change[:, None], nd.shape)
    vh = data.values[:, :, b.index("VH")]
    assert np.corrcoef(nd[veg], vh[veg])[0, 1] > 0.4  # SAR cross-pol follows green cover


def test_changes_have_ground_truth(data):
    has = data.change.any((1, 2))
    assert 0 < has.sum() < len(has)
    i = int(np.flatnonzero(has)[0])
    m = data.change[i]
    first, last = data.values[i, 0][:, m], data.values[i, -1][:, m]
    assert np.abs(first - last).mean() > 0.01 or np.abs(data.values[i, 2][:, m] - last).mean() > 0.01
