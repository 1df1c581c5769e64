"""Loaders: Presto arrays (skipped when absent), .npz round trip, pixel arrays, GeoTIFF (rasterio), NetCDF/Zarr."""

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from ditkit_geo.io import (
    PRESTO_BANDS,
    load_datacube,
    load_geotiff_stack,
    load_npz,
    load_pixel_arrays,
    load_presto,
    save_npz,
)
from ditkit_geo.series import SITS, Normalizer
from ditkit_geo.synthetic import make_synthetic

PRESTO = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "presto_algae"


@pytest.mark.skipif(not (PRESTO / "s1_s2_era5_srtm.npy").exists(), reason="shared Presto arrays not present")
def test_presto_loader():
    d = load_presto(PRESTO)
    assert d.shape == (1122, 12, 18, 1, 1) and d.bands == PRESTO_BANDS
    assert np.isfinite(d.values).all() and (np.diff(d.days, axis=1) > 0).all()
    assert int(d.extra["is_test"].sum()) == 345
    month = np.load(PRESTO / "month.npy")
    np.testing.assert_allclose(d.doy, (month + 0.5) * 30.4375)


def test_npz_round_trip_is_exact(tmp_path):
    d = make_synthetic(3, size=8, t=6, seed=1)
    back = load_npz(save_npz(d, tmp_path / "x.npz"))
    for k in ("values", "observed", "days", "doy", "change", "cloud", "cloudy"):
        np.testing.assert_array_equal(getattr(back, k), getattr(d, k), err_msg=k)
    assert back.bands == d.bands
    np.testing.assert_array_equal(back.extra["classes"], d.extra["classes"])


def test_subset_keeps_per_series_extras_aligned():
    d = make_synthetic(5, size=8, t=4, seed=2)
    d.extra["latlon"] = np.arange(10.0).reshape(5, 2)
    d.extra["note"] = "kept"
    sub = d.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.extra["latlon"], [[6.0, 7.0], [2.0, 3.0]])
    assert sub.extra["note"] == "kept" and len(sub) == 2


def test_pixel_arrays_nodata_unsorted_dates_and_errors():
    x = np.arange(2 * 3 * 2, dtype=float).reshape(2, 3, 2)
    x[0, 1, 0] = -9999
    d = load_pixel_arrays(x, days=[20.0, 0.0, 10.0], bands=["a", "b"], nodata=-9999)
    assert d.days[0].tolist() == [0.0, 10.0, 20.0]
    np.testing.assert_array_equal(d.values[1, :, 1, 0, 0], x[1, [1, 2, 0], 1])  # reordered with the dates
    assert np.isnan(d.values[0, 0, 0, 0, 0])  # the no-data value (date 0 after sorting)
    with pytest.raises(ValueError, match="3 channels but 2 band names|2 channels but 3 band names"):
        load_pixel_arrays(x, days=[0, 1, 2], bands=["a", "b", "c"])
    with pytest.raises(ValueError, match="repeated acquisition day"):
        load_pixel_arrays(x, days=[0, 1, 1], bands=["a", "b"])


def test_sits_validation_and_all_nan_series():
    v = np.zeros((2, 3, 2, 1, 1), np.float32)
    with pytest.raises(ValueError, match="band names"):
        SITS(values=v, observed=v, days=np.zeros((2, 3)), doy=np.zeros((2, 3)), bands=["a"])
    v[1] = np.nan
    s = SITS(values=v, observed=v.copy(), days=np.tile(np.arange(3.0), (2, 1)), doy=np.zeros((2, 3)), bands=["a", "b"])
    assert len(s.usable()) == 1
    n = Normalizer.fit(s)
    assert np.isfinite(n.mean).all() and np.isfinite(n.std).all()


def _write_tif(path, arr, nodata, rasterio):
    from rasterio.transform import from_origin

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=arr.shape[1],
        width=arr.shape[2],
        count=arr.shape[0],
        dtype="float32",
        nodata=nodata,
        transform=from_origin(0, 0, 10, 10),
        crs="EPSG:32631",
    ) as dst:
        dst.write(arr.astype(np.float32))


def test_geotiff_stack(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    rng = np.random.default_rng(0)
    frames = [rng.random((3, 4, 4)) for _ in range(3)]
    frames[1][2, 1, 1] = -1.0  # no-data in metadata
    paths = []
    for i, f in enumerate(frames):
        _write_tif(tmp_path / f"t{i}.tif", f, -1.0, rasterio)
        paths.append(tmp_path / f"t{i}.tif")
    dates = ["2024-03-01", "2024-01-01", "2024-02-01"]  # unsorted on purpose
    d = load_geotiff_stack(paths, dates, ["B2", "B3", "B4"])
    assert d.shape == (1, 3, 3, 4, 4)
    assert d.days[0].tolist() == [0.0, 31.0, 60.0]
    np.testing.assert_allclose(
        d.values[0, 0], frames[1].astype(np.float32)[[0, 1, 2]] * np.where(np.isnan(d.values[0, 0]), np.nan, 1)
    )
    assert np.isnan(d.values[0, 0, 2, 1, 1]) and np.isfinite(d.values).sum() == 3 * 3 * 16 - 1
    assert d.doy[0, 0] == 0.0
    _write_tif(tmp_path / "bad.tif", rng.random((2, 4, 4)), None, rasterio)
    with pytest.raises(ValueError, match="bad.tif: band count=2: 2 bands in the file, expected 3"):
        load_geotiff_stack([paths[0], tmp_path / "bad.tif"], dates[:2], ["B2", "B3", "B4"])


def test_netcdf_and_zarr_cubes(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    rng = np.random.default_rng(1)
    arr = rng.random((3, 2, 4, 4)).astype(np.float32)
    arr[2, 0, 0, 0] = np.nan
    times = np.array(["2023-06-01", "2023-05-01", "2023-07-01"], dtype="datetime64[ns]")
    da = xr.DataArray(arr, dims=("time", "band", "y", "x"), coords={"time": times, "band": ["VV", "VH"]})
    ds = xr.Dataset({"sar": da})
    ds.to_netcdf(tmp_path / "c.nc", encoding={"sar": {"_FillValue": -9999.0}})
    d = load_datacube(tmp_path / "c.nc", variable="sar")
    assert d.shape == (1, 3, 2, 4, 4) and d.bands == ["VV", "VH"]
    assert d.days[0].tolist() == [0.0, 31.0, 61.0]
    np.testing.assert_array_equal(d.values[0, 0], arr[1])  # 2023-05-01 first after sorting
    assert np.isnan(d.values[0, 2, 0, 0, 0])
    with pytest.raises(ValueError, match="2 bands but 3 names"):
        load_datacube(tmp_path / "c.nc", variable="sar", bands=["a", "b", "c"])
    pytest.importorskip("zarr")
    ds.to_zarr(tmp_path / "c.zarr")
    z = load_datacube(tmp_path / "c.zarr", variable="sar")
    np.testing.assert_array_equal(np.nan_to_num(z.values), np.nan_to_num(d.values))
    assert dt.date(2023, 5, 1).timetuple().tm_yday - 1 == d.doy[0, 0]
