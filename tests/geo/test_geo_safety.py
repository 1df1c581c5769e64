"""Regression tests of the hostile-input audit: each bad input gets a DataError naming file, field and value."""

import ast
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ditkit_core.errors import DataError
from ditkit_geo.checks import load_npy
from ditkit_geo.io import PRESTO_BANDS, load_npz, load_pixel_arrays, load_presto, save_npz
from ditkit_geo.series import SITS, Normalizer
from ditkit_geo.synthetic import make_synthetic


def _presto_dir(root: Path, x=None, month=None, n: int = 4, t: int = 12) -> Path:
    """A folder shaped like the Presto release: values [N, T, 18] float64 and months [N, T] int64."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(root / "s1_s2_era5_srtm.npy", rng.normal(size=(n, t, 18)) if x is None else x)
    np.save(root / "month.npy", np.tile(np.arange(t) % 12, (n, 1)) if month is None else month)
    return root


def _npz(path: Path, **override) -> Path:
    d = make_synthetic(2, size=4, t=4, seed=0)
    arrays = {"values": d.values, "observed": d.observed, "days": d.days, "doy": d.doy, "bands": np.array(d.bands)}
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def _npy_with_header(path: Path, shape: tuple, descr: str = "<f8", body: bytes = b"\0" * 64) -> Path:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body)
    assert ast.literal_eval(header.decode("latin1").strip())["shape"] == shape
    return path


# 1. silent numeric corruption at load ---------------------------------------------------------------------------


def test_float64_beyond_float32_is_rejected_not_turned_into_inf(tmp_path):
    x = np.random.default_rng(0).normal(size=(4, 12, 18))
    x[2, 5, 4] = 1e39  # B4: becomes inf in float32
    root = _presto_dir(tmp_path / "p", x=x)
    with pytest.raises(DataError) as e:
        load_presto(root)
    msg = str(e.value)
    assert "s1_s2_era5_srtm.npy" in msg and "values[series 2, date 5, band B4]=1e+39" in msg
    assert "beyond float32 range" in msg


def test_normaliser_keeps_channels_finite_near_the_float32_limit():
    v = np.zeros((3, 4, 2, 1, 1), np.float32)
    v[:, :, 0] = 3e38  # a legal float32 value whose float32 sum overflows
    v[0, 0, 0] = -3e38
    s = SITS(values=v, observed=v.copy(), days=np.tile(np.arange(4.0), (3, 1)), doy=np.zeros((3, 4)), bands=["a", "b"])
    norm = Normalizer.fit(s)
    assert np.isfinite(norm.mean).all() and np.isfinite(norm.std).all()
    assert norm.mean[0] == pytest.approx(3e38 * 10 / 12, rel=1e-6)
    out = norm.apply(s).values
    assert np.isfinite(out).all() and np.abs(out).max() < 10  # no channel mapped to +-3.4e38
    big = SITS(values=v * 0 + 3e38, observed=v * 0 + 3e38, days=s.days, doy=s.doy, bands=["a", "b"], source="val.npz")
    with pytest.raises(DataError, match=r"val.npz: values\[series 0, date 0, band b, row 0, col 0\]=3e\+38"):
        Normalizer([0.0, 0.0], [1.0, 1e-3]).apply(big)  # overflows float32 after normalisation


def test_complex_values_are_rejected_not_truncated(tmp_path):
    d = make_synthetic(2, size=4, t=4, seed=0)
    path = _npz(tmp_path / "c.npz", values=d.values.astype(np.complex64) + 1j)
    with pytest.raises(DataError, match=r"c.npz: values='complex64': complex values.*imaginary part would be lost"):
        load_npz(path)
    with pytest.raises(DataError, match="arr.npy: values='complex128'"):
        load_pixel_arrays(np.ones((2, 3, 1), complex), [0, 1, 2], ["a"], source="arr.npy")


def test_nan_days_and_months_are_rejected(tmp_path):
    d = make_synthetic(2, size=4, t=4, seed=0)
    days = d.days.astype(np.float64)
    days[1, 2] = np.nan
    with pytest.raises(DataError, match=r"d.npz: days\[series 1, date 2\]=nan: 1 unknown date"):
        load_npz(_npz(tmp_path / "d.npz", days=days))
    month = np.tile(np.arange(12.0), (4, 1))
    month[3, 7] = np.nan
    with pytest.raises(DataError, match=r"month.npy: month\[series 3, date 7\]=nan: .*not integers in \[0, 11\]"):
        load_presto(_presto_dir(tmp_path / "p", month=month))
    month[3, 7] = 12  # out-of-range label
    with pytest.raises(DataError, match=r"month\[series 3, date 7\]=12.0"):
        load_presto(_presto_dir(tmp_path / "q", month=month))


def test_inf_is_rejected_but_nan_stays_the_missing_marker():
    x = np.ones((2, 3, 2))
    x[0, 1, 0] = np.nan
    d = load_pixel_arrays(x, [0, 1, 2], ["a", "b"], source="px.npy")
    assert np.isnan(d.values[0, 1, 0, 0, 0]) and np.isfinite(d.values).sum() == 11
    x[1, 2, 1] = -np.inf
    with pytest.raises(DataError, match=r"px.npy: values\[series 1, date 2, band b\]=-inf: 1 infinite value"):
        load_pixel_arrays(x, [0, 1, 2], ["a", "b"], source="px.npy")
    x[1, 2, 1] = -9999
    assert np.isnan(load_pixel_arrays(x, [0, 1, 2], ["a", "b"], nodata=-9999).values[1, 2, 1, 0, 0])


def test_masks_and_split_flags_must_be_zero_or_one(tmp_path):
    d = make_synthetic(2, size=4, t=4, seed=0)
    cloud = d.cloud.astype(np.float32)
    cloud[0, 1, 2, 3] = np.nan  # astype(bool) would have made it a cloud silently
    with pytest.raises(DataError, match=r"m.npz: cloud\[series 0, date 1, row 2, col 3\]=nan"):
        load_npz(_npz(tmp_path / "m.npz", cloud=cloud))
    root = _presto_dir(tmp_path / "p")
    np.save(root / "is_test.npy", np.array([0, 1, 2, 0]))
    with pytest.raises(DataError, match=r"is_test.npy: is_test\[series 2\]=2"):
        load_presto(root)


# 2. every loader error names the file ---------------------------------------------------------------------------


def test_corrupt_files_are_named(tmp_path):
    junk = bytes(range(256)) * 4
    for name in ("x.npz", "x.tif", "x.nc", "x.tar"):
        (tmp_path / name).write_bytes(junk)
    with pytest.raises(DataError, match=r"x.npz: cannot read: BadZipFile"):
        load_npz(tmp_path / "x.npz")
    with pytest.raises(DataError, match=r"x.tar: cannot read the archive: ReadError"):
        load_presto(tmp_path / "x.tar")
    if pytest.importorskip("rasterio"):
        from ditkit_geo.io import load_geotiff_stack

        with pytest.raises(DataError, match=r"x.tif: cannot read: RasterioIOError"):
            load_geotiff_stack([tmp_path / "x.tif"], ["2024-01-01"], ["a"])
    pytest.importorskip("xarray")
    from ditkit_geo.io import load_datacube

    with pytest.raises(DataError, match=r"x.nc: cannot read"):
        load_datacube(tmp_path / "x.nc", variable="v")


def test_non_utf8_band_names_and_config_are_named(tmp_path):
    path = _npz(tmp_path / "b.npz", bands=np.array([b"B2", b"B\xe93"] + [b"x%d" % i for i in range(10)]))
    with pytest.raises(DataError, match=r"b.npz: bands\[1\]=b'B\\xe93': band name is not UTF-8"):
        load_npz(path)
    from ditkit_geo.cli import data_module, main

    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"model:\n  init_args: {}\n# caf\xe9\n")
    with pytest.raises(DataError, match=r"c.yaml line 3: not UTF-8"):
        data_module(cfg)
    with pytest.raises(DataError, match=r"c.yaml line 3: not UTF-8"):
        main(["eval", "--config", str(cfg)])


def test_pickled_npy_is_refused_without_running_it(tmp_path):
    np.save(tmp_path / "s1_s2_era5_srtm.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "month.npy", np.zeros((1, 1), np.int64))
    with pytest.raises(DataError, match=r"s1_s2_era5_srtm.npy: .*Python objects \(a pickle\); refused"):
        load_presto(tmp_path)


def test_tar_archive_is_read_in_memory_and_hostile_members_refused(tmp_path):
    root = _presto_dir(tmp_path / "p")
    ref = load_presto(root)
    with tarfile.open(tmp_path / "ok.tar.gz", "w:gz") as tf:
        tf.add(root, arcname="release/npy")
    back = load_presto(tmp_path / "ok.tar.gz")
    np.testing.assert_array_equal(back.values, ref.values)
    assert back.source.endswith("ok.tar.gz[release/npy/s1_s2_era5_srtm.npy]")
    with tarfile.open(tmp_path / "up.tar", "w") as tf:
        tf.add(root / "s1_s2_era5_srtm.npy", arcname="../s1_s2_era5_srtm.npy")
        tf.add(root / "month.npy", arcname="month.npy")
    with pytest.raises(DataError, match=r"up.tar: member='../s1_s2_era5_srtm.npy': member name leaves"):
        load_presto(tmp_path / "up.tar")
    with tarfile.open(tmp_path / "link.tar", "w") as tf:
        info = tarfile.TarInfo("month.npy")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match=r"link.tar: member='month.npy': not a regular file"):
        load_presto(tmp_path / "link.tar")
    with pytest.raises(DataError, match=r"nothing: no such folder or archive"):
        load_presto(tmp_path / "nothing")


# 3. hostile sizes are rejected before allocating -----------------------------------------------------------------


def test_npy_header_declaring_terabytes_is_rejected_before_reading(tmp_path):
    big = _npy_with_header(tmp_path / "big.npy", (10**6, 10**6, 18))
    with pytest.raises(DataError, match=r"big.npy: big.shape=\(1000000, 1000000, 18\): header declares 18000000000000"):
        load_npy(big)
    short = _npy_with_header(tmp_path / "short.npy", (100, 3))
    with pytest.raises(DataError, match=r"short.npy: short=\(100, 3\): truncated: the header declares 2400 bytes"):
        load_npy(short)
    root = _presto_dir(tmp_path / "p")
    _npy_with_header(root / "month.npy", (10**7, 10**7))
    with pytest.raises(DataError, match=r"month.npy: month.shape=.*max_values"):
        load_presto(root)
    d = make_synthetic(1, size=4, t=4, seed=0)
    save_npz(d, tmp_path / "x.npz")
    with pytest.raises(DataError, match=r"x.npz: values.shape=\(1, 4, 12, 4, 4\): header declares 768 values"):
        load_npz(tmp_path / "x.npz", max_values=100)


def test_hostile_raster_and_cube_sizes_are_rejected_from_the_header(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    from ditkit_geo.io import load_datacube, load_geotiff_stack

    path = tmp_path / "huge.tif"  # 3 x 200000 x 200000 float32 (480 GB) declared, sparse file of a few KB
    profile = dict(driver="GTiff", width=200_000, height=200_000, count=3, dtype="float32", tiled=True)
    with rasterio.open(path, "w", **profile, sparse_ok=True, transform=from_origin(0, 0, 1, 1)):
        pass
    assert path.stat().st_size < 10**7
    with pytest.raises(DataError, match=r"huge.tif: size=\(3, 200000, 200000\): raster of 3 x 200000 x 200000"):
        load_geotiff_stack([path], ["2024-01-01"], ["a", "b", "c"])
    nc = pytest.importorskip("netCDF4")
    with nc.Dataset(tmp_path / "huge.nc", "w") as ds:  # 10**12 values declared, nothing written
        for dim, n in (("time", 10), ("band", 10), ("y", 10**5), ("x", 10**5)):
            ds.createDimension(dim, n)
        ds.createVariable("v", "f4", ("time", "band", "y", "x"))
    with pytest.raises(DataError, match=r"huge.nc: v=\(10, 10, 100000, 100000\): 1000000000000 values"):
        load_datacube(tmp_path / "huge.nc", variable="v")


def test_synthetic_arguments_are_validated():
    for kwargs, field in (
        ({"n": 0}, "n=0"),
        ({"t": 2}, "t=2"),
        ({"size": 1}, "size=1"),
        ({"cloud_rate": float("nan")}, "cloud_rate=nan"),
        ({"p_change": 1.5}, "p_change=1.5"),
        ({"looks": 0}, "looks=0"),
        ({"years": float("inf")}, "years=inf"),
        ({"seed": -1}, "seed=-1"),
        ({"n": 10**9}, "max_values"),
    ):
        with pytest.raises(ValueError, match=f"make_synthetic: .*{field}"):
            make_synthetic(**kwargs)


def test_datamodule_and_cli_arguments_are_validated(tmp_path):
    from ditkit_geo.cli import main
    from ditkit_geo.data import SITSDataModule

    with pytest.raises(ValueError, match="SITSDataModule: batch_size=0 must be an integer >= 1"):
        SITSDataModule(batch_size=0)
    with pytest.raises(ValueError, match="source='tiff'"):
        SITSDataModule(source="tiff")
    with pytest.raises(ValueError, match="needs path"):
        SITSDataModule(source="npz")
    save_npz(make_synthetic(3, size=4, t=4, seed=0), tmp_path / "few.npz")
    dm = SITSDataModule(source="npz", path=str(tmp_path / "few.npz"), batch_size=8)
    with pytest.raises(DataError, match=r"few.npz: batch_size=8: the training split holds 1 series"):
        dm.setup()
    debug = str(Path(__file__).resolve().parents[2] / "apps/sits/configs/debug.yaml")
    with pytest.raises(SystemExit):
        main(["eval", "--config", debug, "--samples", "0"])  # 0 used to fall back silently to the config's draws
    # no checkpoint: the default path comes from the config's default_root_dir and is named
    with pytest.raises(SystemExit, match=r"outputs/sits_debug/checkpoints/last.ckpt does not exist"):
        main(["eval", "--config", debug])


def test_npz_geo_extras_round_trip_as_json(tmp_path):
    d = make_synthetic(1, size=4, t=4, seed=0)
    d.extra["geo"] = {"crs": "EPSG:32631", "transform": [10.0, 0.0, 5.0, 0.0, -10.0, 7.0], "origin": "2024-01-01"}
    back = load_npz(save_npz(d, tmp_path / "g.npz"))
    assert back.extra["geo"] == json.loads(json.dumps(d.extra["geo"]))
    assert not list(tmp_path.glob(".*"))  # the atomic write left no temporary file
    assert PRESTO_BANDS[4] == "B4"
