"""Standard formats keep the grid: GeoTIFF / NetCDF in, reconstruction out with the input's CRS and transform."""

from dataclasses import replace

import numpy as np
import pytest

from ditkit_geo.io import (
    acquisition_dates,
    load_datacube,
    load_geotiff_stack,
    load_npz,
    save_datacube,
    save_geotiff_stack,
    save_npz,
)

rasterio = pytest.importorskip("rasterio")
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402

BANDS = ["B2", "B3", "B4"]
TRANSFORM = from_origin(500000.0, 4000000.0, 10.0, 10.0)


def _stack(tmp_path):
    rng = np.random.default_rng(0)
    paths, dates = [], ["2024-03-01", "2024-01-01", "2024-02-01"]
    for i in range(3):
        a = rng.random((3, 5, 6)).astype(np.float32)
        a[1, 2, 3] = -1.0 if i == 2 else a[1, 2, 3]  # one no-data pixel
        p = tmp_path / f"in{i}.tif"
        profile = dict(driver="GTiff", height=5, width=6, count=3, dtype="float32", nodata=-1.0)
        with rasterio.open(p, "w", **profile, crs="EPSG:32631", transform=TRANSFORM) as dst:
            dst.write(a)
        paths.append(p)
    return load_geotiff_stack(paths, dates, BANDS)


def _reconstruct(d):
    """A stand-in for a model's reconstruction: the gaps filled with the pixel's mean over dates."""
    fill = np.nanmean(d.values, axis=1, keepdims=True)
    v = np.where(np.isnan(d.values), fill, d.values) + np.float32(0.25)
    return replace(d, values=v, observed=v.copy())


def test_geotiff_keeps_crs_and_transform_and_round_trips(tmp_path):
    d = _stack(tmp_path)
    geo = d.extra["geo"]
    assert CRS.from_wkt(geo["crs"]) == CRS.from_epsg(32631)
    assert geo["transform"] == list(TRANSFORM)[:6] and (geo["height"], geo["width"]) == (5, 6)
    assert geo["origin"] == "2024-01-01" and acquisition_dates(d) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    assert np.isnan(d.values[0, 1, 1, 2, 3]) and np.isfinite(d.values).sum() == d.values.size - 1
    rec = _reconstruct(d)
    paths = save_geotiff_stack(rec, tmp_path / "out", prefix="rec_")
    assert [p.name for p in paths] == ["rec_2024-01-01.tif", "rec_2024-02-01.tif", "rec_2024-03-01.tif"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary file left
    with rasterio.open(paths[2]) as src:
        assert src.crs == CRS.from_epsg(32631) and src.transform == TRANSFORM
        assert list(src.descriptions) == BANDS and src.dtypes[0] == "float32"
    back = load_geotiff_stack(paths, acquisition_dates(rec), BANDS)
    np.testing.assert_array_equal(back.values, rec.values)
    np.testing.assert_array_equal(back.days, rec.days)
    assert back.extra["geo"] == geo


def test_netcdf_round_trip_keeps_the_grid(tmp_path):
    pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    d = _stack(tmp_path)
    path = save_datacube(d, tmp_path / "cube.nc", variable="reflectance")
    back = load_datacube(path, variable="reflectance")
    np.testing.assert_array_equal(back.values, d.values)  # NaN where no-data, in the same places
    np.testing.assert_array_equal(back.days, d.days)
    np.testing.assert_array_equal(back.doy, d.doy)
    assert back.bands == BANDS
    assert back.extra["geo"] == d.extra["geo"]
    rec = _reconstruct(back)
    again = load_datacube(save_datacube(rec, tmp_path / "rec.nc"), variable="values")
    np.testing.assert_array_equal(again.values, rec.values)


def test_netcdf_grid_from_coordinates_and_gdal_reads_our_grid(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    arr = np.random.default_rng(1).random((2, 1, 3, 4)).astype(np.float32)
    x = 100.0 + 20.0 * (np.arange(4) + 0.5)
    y = 900.0 - 20.0 * (np.arange(3) + 0.5)
    times = np.array(["2023-01-01", "2023-01-11"], dtype="datetime64[ns]")
    da = xr.DataArray(arr, dims=("time", "band", "y", "x"), coords={"time": times, "band": ["VV"], "y": y, "x": x})
    xr.Dataset({"sar": da}).to_netcdf(tmp_path / "plain.nc")
    d = load_datacube(tmp_path / "plain.nc", variable="sar")
    assert d.extra["geo"]["transform"] == [20.0, 0.0, 100.0, 0.0, -20.0, 900.0] and d.extra["geo"]["crs"] == ""
    g = _stack(tmp_path).extra["geo"]
    path = save_datacube(d, tmp_path / "ours.nc", geo={**g, "transform": d.extra["geo"]["transform"]})
    try:
        src = rasterio.open(f'NETCDF:"{path}":values')
    except rasterio.errors.RasterioIOError:
        pytest.skip("GDAL here has no netCDF driver")
    with src:
        assert src.crs == CRS.from_epsg(32631)
        assert src.transform.almost_equals(from_origin(100.0, 900.0, 20.0, 20.0))


def test_grid_survives_the_npz_cache(tmp_path):
    d = _stack(tmp_path)
    back = load_npz(save_npz(d, tmp_path / "c.npz"))
    assert back.extra["geo"] == d.extra["geo"]
    assert [p.name for p in save_geotiff_stack(back, tmp_path / "o")] == [f"{s}.tif" for s in acquisition_dates(d)]
    with pytest.raises(ValueError, match="no CRS / transform"):
        save_geotiff_stack(replace(d, extra={}), tmp_path / "x")


def test_netcdf_one_variable_per_band_skips_the_grid_mapping(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("netCDF4")
    rng = np.random.default_rng(2)
    times = np.array(["2023-01-01", "2023-02-01"], dtype="datetime64[ns]")
    wkt = CRS.from_epsg(3857).to_wkt()
    ds = xr.Dataset(
        {
            b: xr.DataArray(rng.random((2, 3, 3)), dims=("time", "y", "x"), attrs={"grid_mapping": "spatial_ref"})
            for b in ("VV", "VH")
        }
    )
    ds["spatial_ref"] = xr.DataArray(0, attrs={"crs_wkt": wkt, "GeoTransform": "10 2 0 50 0 -2"})
    ds.assign_coords(time=times).to_netcdf(tmp_path / "bands.nc")
    d = load_datacube(tmp_path / "bands.nc")
    assert d.bands == ["VV", "VH"] and d.shape == (1, 2, 2, 3, 3)
    np.testing.assert_allclose(d.values[0, :, 1], ds["VH"].values.astype(np.float32))
    assert CRS.from_wkt(d.extra["geo"]["crs"]) == CRS.from_epsg(3857)
    assert d.extra["geo"]["transform"] == [2.0, 0.0, 10.0, 0.0, -2.0, 50.0]
