"""Fuzz every public geo load path in child processes: hostile files never crash, hang, blow up memory or load silently.

Each test writes a valid file, its hostile variants (``hostile_files``: empty, truncated, random, flipped bytes, NUL,
non-UTF-8, doubled) and hand-made hostile inputs (wrong shape and dtype, NaN / inf / huge values, hostile header
sizes, pickles, path traversal), runs the loader on all of them in one child (``run_cases``) and checks the contract
(``assert_clean``): errors are ValueErrors naming the file, successes hold only finite numbers or NaN (missing).
The hand-made cases must all fail (``expect_error``).
"""

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ditkit_core.testing.fuzz import assert_clean, hostile_files, run_cases
from ditkit_geo.io import save_npz
from ditkit_geo.synthetic import make_synthetic

PRESTO = Path(os.environ.get("DITKIT_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
PRESTO = PRESTO / "presto_algae"
TIMEOUT = 240


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _header_only(shape: tuple, descr: str = "<f8", body: int = 64) -> bytes:
    """A ``.npy`` whose header declares ``shape`` but holds only ``body`` bytes of data."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (64 - (10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * body


def _named(outcomes, names) -> None:
    """Every error names its expected file (for loaders whose case has no single ``path`` key)."""
    bad = [
        f"{n!r} not in {o.message[:300]!r}"
        for o, n in zip(outcomes, names)
        if o.status == "error" and n not in o.message
    ]
    assert not bad, "errors that do not name the file:\n" + "\n".join(bad)


def _split(outcomes, n_valid):
    return outcomes[:n_valid], outcomes[n_valid:]


# .npz cubes ---------------------------------------------------------------------------------------------------------


def test_fuzz_npz(tmp_path):
    d = make_synthetic(2, size=4, t=4, seed=0)
    valid = save_npz(d, tmp_path / "valid.npz").read_bytes()
    base = {"values": d.values, "observed": d.observed, "days": d.days, "doy": d.doy, "bands": np.array(d.bands)}
    variants = [tmp_path / "valid.npz", *hostile_files(valid, tmp_path / "h", ".npz").values()]
    days_nan, days_huge, doy_bad = d.days.astype(np.float64), d.days.astype(np.float64), d.doy.copy()
    days_nan[0, 1], days_huge[1, 2], doy_bad[0, 0] = np.nan, 1e30, 400.0
    inf, big = d.values.copy(), d.values.astype(np.float64)
    inf[1, 2, 3, 0, 0], big[0, 0, 0, 0, 0] = np.inf, 1e39
    cloud = d.cloud.astype(np.int8)
    cloud[0, 0, 0, 0] = 2
    crafted = {
        "complex": {"values": d.values.astype(np.complex64)},
        "inf": {"values": inf},
        "beyond_float32": {"values": big},
        "nan_days": {"days": days_nan},
        "huge_days": {"days": days_huge},
        "doy_out_of_range": {"doy": doy_bad},
        "strings": {"values": np.full(d.values.shape, "x")},
        "three_d": {"values": d.values[:, :, :, 0], "observed": d.observed[:, :, :, 0]},
        "band_count": {"bands": np.array(d.bands[:-1])},
        "duplicate_bands": {"bands": np.array(d.bands[:-1] + d.bands[:1])},
        "latin1_bands": {"bands": np.array([b.encode() for b in d.bands[:-1]] + [b"caf\xe9"])},
        "cloud_mask_2": {"cloud": cloud},
        "days_shape": {"days": d.days[:, :2]},
        "no_values": {"values": None},
    }
    paths = []
    for name, over in crafted.items():
        arrays = {**base, **over}
        arrays = {k: v for k, v in arrays.items() if v is not None}
        np.savez(tmp_path / f"{name}.npz", **arrays)
        paths.append(tmp_path / f"{name}.npz")
    for name, member in (
        ("pickle", _npy(np.array([{"x": 1}], dtype=object))),
        ("huge_header", _header_only((10**6, 10**6, 12, 4, 4))),
        ("negative_shape", _header_only((-1, 4))),
        ("truncated_member", _header_only((2, 4, 12, 4, 4), "<f4", body=16)),
    ):
        buf = io.BytesIO()
        np.savez(buf, **base)
        import zipfile

        with zipfile.ZipFile(tmp_path / f"{name}.npz", "w") as zf:
            for k, v in base.items():
                if k != "values":
                    zf.writestr(f"{k}.npy", _npy(v))
            zf.writestr("values.npy", member)
        paths.append(tmp_path / f"{name}.npz")
    out = run_cases("ditkit_geo.io:load_npz", [{"path": str(p)} for p in variants + paths], timeout=TIMEOUT)
    ok, bad = _split(out, len(variants))
    assert ok[0].status == "ok", ok[0]
    assert_clean(ok, allow_nan=True)
    assert_clean(bad, allow_nan=True, expect_error=True)


# Presto arrays (folder or tar archive) --------------------------------------------------------------------------------


def _presto(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def _presto_files(x: np.ndarray, month: np.ndarray) -> dict[str, bytes]:
    n = x.shape[0]
    lat = np.stack([np.linspace(30, 50, n), np.linspace(-120, -70, n)], 1)
    return {
        "s1_s2_era5_srtm.npy": _npy(x),
        "month.npy": _npy(month),
        "is_test.npy": _npy(np.arange(n) % 2),
        "latlon.npy": _npy(lat),
    }


def _presto_cases(tmp_path: Path, x: np.ndarray, month: np.ndarray) -> tuple[list[Path], list[Path]]:
    good = _presto_files(x, month)
    valid = [_presto(tmp_path / "valid", good)]
    for target in ("s1_s2_era5_srtm.npy", "month.npy", "latlon.npy"):
        for name, p in hostile_files(good[target], tmp_path / f"h_{target}", ".npy").items():
            valid.append(_presto(tmp_path / f"{target[:5]}_{name}", {**good, target: p.read_bytes()}))
    n, t = month.shape
    xf = x.astype(np.float64)
    edits = {
        "inf": ("s1_s2_era5_srtm.npy", lambda: np.where(np.arange(xf.size).reshape(xf.shape) == 7, np.inf, xf)),
        "beyond_float32": (
            "s1_s2_era5_srtm.npy",
            lambda: np.where(np.arange(xf.size).reshape(xf.shape) == 9, 1e39, xf),
        ),
        "complex": ("s1_s2_era5_srtm.npy", lambda: xf + 1j),
        "two_d": ("s1_s2_era5_srtm.npy", lambda: xf[:, 0]),
        "channels_17": ("s1_s2_era5_srtm.npy", lambda: xf[:, :, :17]),
        "pickle": ("s1_s2_era5_srtm.npy", lambda: np.array([{"x": 1}], dtype=object)),
        "month_nan": ("month.npy", lambda: np.where(np.arange(n * t).reshape(n, t) == 5, np.nan, month)),
        "month_12": ("month.npy", lambda: month % 12 + (np.arange(n * t).reshape(n, t) == 3) * 12),
        "month_half": ("month.npy", lambda: month + 0.5),
        "month_shape": ("month.npy", lambda: month[:, :-1]),
        "latlon_nan": ("latlon.npy", lambda: np.full((n, 2), np.nan)),
        "latlon_100": ("latlon.npy", lambda: np.full((n, 2), 100.0)),
        "is_test_2": ("is_test.npy", lambda: np.full(n, 2)),
        "is_test_shape": ("is_test.npy", lambda: np.zeros(n + 1, int)),
    }
    bad = []
    for name, (target, make) in edits.items():
        bad.append(_presto(tmp_path / name, {**good, target: _npy(make())}))
    bad.append(_presto(tmp_path / "huge_header", {**good, "month.npy": _header_only((10**7, 10**7), "<i8")}))
    bad.append(_presto(tmp_path / "no_month", {k: v for k, v in good.items() if k != "month.npy"}))
    bad.append(tmp_path / "does_not_exist")
    # tar archives: a valid one, its hostile variants, traversal, links, duplicates, a hostile declared size
    with tarfile.open(tmp_path / "valid.tar.gz", "w:gz") as tf:
        tf.add(valid[0], arcname="npy")
    valid.append(tmp_path / "valid.tar.gz")
    valid += list(hostile_files((tmp_path / "valid.tar.gz").read_bytes(), tmp_path / "h_tar", ".tar.gz").values())

    def tar(name: str, members: list[tuple[str, bytes | None, bytes]]) -> Path:
        with tarfile.open(tmp_path / name, "w") as tf:
            for arcname, data, kind in members:
                info = tarfile.TarInfo(arcname)
                if kind == tarfile.REGTYPE:
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))
                else:
                    info.type, info.linkname = kind, "/etc/passwd"
                    tf.addfile(info)
        return tmp_path / name

    x_b, m_b = good["s1_s2_era5_srtm.npy"], good["month.npy"]
    bad.append(
        tar("traversal.tar", [("../../s1_s2_era5_srtm.npy", x_b, tarfile.REGTYPE), ("month.npy", m_b, tarfile.REGTYPE)])
    )
    bad.append(
        tar("absolute.tar", [("/tmp/s1_s2_era5_srtm.npy", x_b, tarfile.REGTYPE), ("month.npy", m_b, tarfile.REGTYPE)])
    )
    bad.append(
        tar("symlink.tar", [("s1_s2_era5_srtm.npy", x_b, tarfile.REGTYPE), ("month.npy", None, tarfile.SYMTYPE)])
    )
    bad.append(
        tar("hardlink.tar", [("s1_s2_era5_srtm.npy", x_b, tarfile.REGTYPE), ("month.npy", None, tarfile.LNKTYPE)])
    )
    bad.append(tar("device.tar", [("s1_s2_era5_srtm.npy", x_b, tarfile.REGTYPE), ("month.npy", None, tarfile.CHRTYPE)]))
    bad.append(tar("twice.tar", [("a/month.npy", m_b, tarfile.REGTYPE), ("b/month.npy", m_b, tarfile.REGTYPE)]))
    bad.append(tar("huge_member.tar", [("s1_s2_era5_srtm.npy", _header_only((10**8, 12, 18)), tarfile.REGTYPE)]))
    with tarfile.open(tmp_path / "declared.tar", "w") as tf:
        info = tarfile.TarInfo("s1_s2_era5_srtm.npy")
        info.size = 10**13  # the header claims 10 TB; the archive holds nothing
        tf.addfile(info)
    bad.append(tmp_path / "declared.tar")
    return valid, bad


def _run_presto(valid, bad):
    out = run_cases("ditkit_geo.io:load_presto", [{"root": str(p)} for p in valid + bad], timeout=TIMEOUT)
    ok, err = _split(out, len(valid))
    assert ok[0].status == "ok" and ok[-10].status == "ok", (ok[0], ok[-10])  # the valid folder and archive
    assert_clean(ok, name_key="root", allow_nan=True)
    assert_clean(err, name_key="root", allow_nan=True, expect_error=True)


def test_fuzz_presto_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 12, 18))
    month = np.tile(np.arange(12) % 12, (6, 1)).astype(np.int64)
    _run_presto(*_presto_cases(tmp_path, x, month))


@pytest.mark.skipif(not (PRESTO / "s1_s2_era5_srtm.npy").exists(), reason="shared Presto arrays not present")
def test_fuzz_presto_real_release(tmp_path):
    """The same hostile edits on the first 64 series of the real release (never copied into the repository)."""
    x = np.load(PRESTO / "s1_s2_era5_srtm.npy")[:64]
    month = np.load(PRESTO / "month.npy")[:64]
    _run_presto(*_presto_cases(tmp_path, x, month))


# pixel arrays and the synthetic generator (arguments) ----------------------------------------------------------------


def test_fuzz_pixel_arrays_and_synthetic_arguments():
    good = np.arange(12.0).reshape(2, 3, 2).tolist()
    ok_cases = [
        {"values": good, "days": [0, 1, 2], "bands": ["a", "b"], "source": "ok.npy"},
        {"values": [[[float("nan"), 1.0]] * 3] * 2, "days": [2, 0, 1], "bands": ["a", "b"], "source": "nan.npy"},
        {"values": good, "days": [0, 1, 2], "bands": ["a", "b"], "nodata": 3.0, "source": "nodata.npy"},
    ]
    bad_cases = [
        {"values": [[[float("inf"), 1.0]] * 3] * 2, "days": [0, 1, 2], "bands": ["a", "b"], "source": "inf.npy"},
        {"values": [[[1e39, 1.0]] * 3] * 2, "days": [0, 1, 2], "bands": ["a", "b"], "source": "big.npy"},
        {"values": good, "days": [0, float("nan"), 2], "bands": ["a", "b"], "source": "nanday.npy"},
        {"values": good, "days": [0, 1, 1], "bands": ["a", "b"], "source": "repeat.npy"},
        {"values": good, "days": [0, 1], "bands": ["a", "b"], "source": "dayshape.npy"},
        {"values": good, "days": [0, 1, 2], "doy": [0, 1, 400], "bands": ["a", "b"], "source": "doy.npy"},
        {"values": good, "days": [0, 1, 2], "bands": ["a"], "source": "bands.npy"},
        {"values": good, "days": [0, 1, 2], "bands": ["a", "a"], "source": "dup.npy"},
        {"values": good, "days": [0, 1, 2], "bands": ["a", 3], "source": "nonstr.npy"},
        {"values": [1.0, 2.0], "days": [0, 1], "bands": ["a"], "source": "flat.npy"},
        {"values": [], "days": [], "bands": [], "source": "empty.npy"},
        {"values": [[["x", "y"]] * 3] * 2, "days": [0, 1, 2], "bands": ["a", "b"], "source": "text.npy"},
    ]
    out = run_cases("ditkit_geo.io:load_pixel_arrays", ok_cases + bad_cases, timeout=TIMEOUT)
    ok, bad = _split(out, len(ok_cases))
    assert all(o.status == "ok" for o in ok), ok
    assert_clean(ok, name_key="source", allow_nan=True)
    assert_clean(bad, name_key="source", expect_error=True)

    syn = [{"n": 1, "size": 4, "t": 3}]
    for key, value in (
        ("n", 0), ("n", -3), ("n", 2.5), ("n", "4"), ("n", 10**12), ("size", 0), ("size", 1), ("t", 0), ("t", 2),
        ("years", 0.0), ("years", float("nan")), ("years", float("inf")), ("cloud_rate", -0.1), ("cloud_rate", 2),
        ("p_change", float("nan")), ("looks", 0), ("looks", float("inf")), ("seed", -1), ("seed", 1.5),
    ):  # fmt: skip
        syn.append({"n": 1, "size": 4, "t": 3, key: value})
    out = run_cases("ditkit_geo.synthetic:make_synthetic", syn, timeout=TIMEOUT)
    assert out[0].status == "ok"
    assert_clean(out[:1], name_key=None, allow_nan=True)
    assert_clean(out[1:], name_key=None, expect_error=True)
    for o, case in zip(out[1:], syn[1:]):
        key = next(k for k in case if case[k] != {"n": 1, "size": 4, "t": 3}.get(k, object()))
        assert f"make_synthetic: {key}=" in o.message or "max_values" in o.message, o


# GeoTIFF stacks -------------------------------------------------------------------------------------------------------


def _tif(path: Path, arr: np.ndarray, **kw) -> Path:
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "height": arr.shape[1],
        "width": arr.shape[2],
        "count": arr.shape[0],
        "dtype": str(arr.dtype),
        "crs": "EPSG:32631",
        "transform": from_origin(500000, 4000000, 10, 10),
        **kw,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr)
    return path


def test_fuzz_geotiff_stack(tmp_path):
    pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8)).astype(np.float32)
    first = _tif(tmp_path / "first.tif", a, nodata=-1.0)
    bands = ["B2", "B3", "B4"]

    def case(p, name=None, **kw):
        c = {"paths": [str(first), str(p)], "dates": ["2024-01-01", "2024-02-01"], "bands": bands, **kw}
        return c, name or Path(p).name

    valid = [case(_tif(tmp_path / "second.tif", a[:, ::-1].copy(), nodata=-1.0))]
    valid.append(case(_tif(tmp_path / "u16.tif", (a * 1000).astype(np.uint16), nodata=0)))
    valid.append(case(_tif(tmp_path / "nan.tif", np.where(a > 0.5, np.nan, a).astype(np.float32))))
    valid += [case(p) for p in hostile_files(first.read_bytes(), tmp_path / "h", ".tif").values()]
    inf, big = a.copy(), a.astype(np.float64)
    inf[1, 2, 3], big[2, 0, 1] = np.inf, 1e39
    bad = [
        case(_tif(tmp_path / "inf.tif", inf)),
        case(_tif(tmp_path / "big.tif", big)),
        case(_tif(tmp_path / "complex.tif", a.astype(np.complex64))),
        case(_tif(tmp_path / "two_bands.tif", a[:2])),
        case(_tif(tmp_path / "small.tif", a[:, :4, :4])),
        case(_tif(tmp_path / "crs.tif", a, crs="EPSG:4326")),
        case(_tif(tmp_path / "shifted.tif", a, transform=from_origin(500010, 4000000, 10, 10))),
        case(tmp_path / "missing.tif"),
        case(tmp_path, name=tmp_path.name),
        case(first, name="first.tif", dates=["2024-01-01", "2024-13-45"]),
        case(first, name="first.tif", dates=["2024-01-01", "2024-01-01"]),
        case(first, name="load_geotiff_stack", dates=["2024-01-01"]),
        case(first, name="load_geotiff_stack", bands=["B2", "B2", "B4"]),
        ({"paths": str(first), "dates": ["2024-01-01"], "bands": bands}, "first.tif"),
        ({"paths": [], "dates": [], "bands": bands}, "load_geotiff_stack"),
        case(first, name="cloud.tif", cloud_paths=[str(first), str(_tif(tmp_path / "cloud.tif", a[:1, :4, :4]))]),
        case(first, name="nope.tif", cloud_paths=[str(first), str(tmp_path / "nope.tif")]),
    ]
    with pytest.importorskip("rasterio").open(
        tmp_path / "huge.tif", "w", driver="GTiff", width=10**5, height=10**5, count=3, dtype="float32", tiled=True,
        sparse_ok=True, transform=from_origin(0, 0, 1, 1),
    ):  # fmt: skip
        pass
    bad.append(case(tmp_path / "huge.tif"))
    cases, names = zip(*(valid + bad))
    out = run_cases("ditkit_geo.io:load_geotiff_stack", list(cases), timeout=TIMEOUT)
    ok, err = _split(out, len(valid))
    assert all(o.status == "ok" for o in ok[:3]), ok[:3]
    assert_clean(ok, name_key=None, allow_nan=True)
    assert_clean(err, name_key=None, allow_nan=True, expect_error=True)
    _named(out, names)


# NetCDF / Zarr cubes --------------------------------------------------------------------------------------------------


def test_fuzz_datacube(tmp_path):
    xr = pytest.importorskip("xarray")
    nc = pytest.importorskip("netCDF4")
    rng = np.random.default_rng(0)
    arr = rng.random((3, 2, 4, 4)).astype(np.float32)
    times = np.array(["2023-06-01", "2023-05-01", "2023-07-01"], dtype="datetime64[ns]")

    def cube(name, values=arr, t=times, **attrs):
        da = xr.DataArray(
            values, dims=("time", "band", "y", "x"), coords={"time": t, "band": ["VV", "VH"]}, attrs=attrs
        )
        xr.Dataset({"sar": da}).to_netcdf(tmp_path / name)
        return tmp_path / name

    valid_nc = cube("valid.nc")
    variants = [
        valid_nc,
        cube("nodata.nc", nodata=0.5),
        *hostile_files(valid_nc.read_bytes(), tmp_path / "h", ".nc").values(),
    ]
    inf, big = arr.copy(), arr.astype(np.float64)
    inf[0, 1, 2, 3], big[2, 0, 0, 0] = -np.inf, 1e39
    bad = [cube("inf.nc", inf), cube("big.nc", big), cube("nodata_text.nc", nodata="none")]
    bad.append(cube("nat.nc", t=np.array(["2023-06-01", "NaT", "2023-07-01"], dtype="datetime64[ns]")))
    with nc.Dataset(tmp_path / "raw_time.nc", "w") as ds:  # time without units: not dates
        for dim, n in (("time", 3), ("band", 2), ("y", 4), ("x", 4)):
            ds.createDimension(dim, n)
        ds.createVariable("time", "f8", ("time",))[:] = [1.0, 2.0, 3.0]
        ds.createVariable("sar", "f4", ("time", "band", "y", "x"))[:] = arr
    bad.append(tmp_path / "raw_time.nc")
    with nc.Dataset(tmp_path / "huge.nc", "w") as ds:
        for dim, n in (("time", 1000), ("band", 100), ("y", 10**5), ("x", 10**5)):
            ds.createDimension(dim, n)
        ds.createVariable("sar", "f4", ("time", "band", "y", "x"))
    bad.append(tmp_path / "huge.nc")
    with nc.Dataset(tmp_path / "three_d.nc", "w") as ds:
        for dim, n in (("time", 3), ("y", 4), ("x", 4)):
            ds.createDimension(dim, n)
        ds.createVariable("sar", "f4", ("time", "y", "x"))[:] = arr[:, 0]
    bad.append(tmp_path / "three_d.nc")
    bad.append(tmp_path / "missing.nc")
    cases = [{"path": str(p), "variable": "sar"} for p in variants + bad]
    cases.append({"path": str(valid_nc), "variable": "nope"})
    cases.append({"path": str(valid_nc), "variable": "sar", "bands": ["a", "b", "c"]})
    n_valid = len(variants)
    pytest.importorskip("zarr")
    ds = xr.Dataset({"sar": xr.DataArray(arr, dims=("time", "band", "y", "x"), coords={"time": times})})
    ds.to_zarr(tmp_path / "valid.zarr", consolidated=False)
    zcases = [{"path": str(tmp_path / "valid.zarr"), "variable": "sar"}]
    for name, edit in (
        ("meta_random.zarr", lambda m: os.urandom(200)),
        ("meta_latin1.zarr", lambda m: m.replace(b'"sar"', b'"s\xe9r"') + b"\xff"),
        ("meta_negative.zarr", lambda m: json.dumps({**json.loads(m), "shape": [-3, 2, 4, 4]}).encode()),
    ):
        shutil.copytree(tmp_path / "valid.zarr", tmp_path / name)
        meta = tmp_path / name / "sar" / "zarr.json"
        meta.write_bytes(edit(meta.read_bytes()))
        zcases.append({"path": str(tmp_path / name), "variable": "sar"})
    shutil.copytree(tmp_path / "valid.zarr", tmp_path / "huge.zarr")  # every array consistently huge, chunks absent
    huge = {"time": 10**6, "band": 10**3, "y": 10**4, "x": 10**4}
    for meta in (tmp_path / "huge.zarr").glob("*/zarr.json"):
        m = json.loads(meta.read_text())
        m["shape"] = [huge[d] for d in m["dimension_names"]]
        meta.write_text(json.dumps(m))
    zcases.append({"path": str(tmp_path / "huge.zarr"), "variable": "sar"})
    shutil.copytree(tmp_path / "valid.zarr", tmp_path / "chunk.zarr")
    for chunk in (p for p in (tmp_path / "chunk.zarr" / "sar").rglob("*") if p.is_file() and p.name != "zarr.json"):
        chunk.write_bytes(hostile_files(chunk.read_bytes(), tmp_path / "hc", ".bin")["flipped"].read_bytes())
    zcases.append({"path": str(tmp_path / "chunk.zarr"), "variable": "sar"})
    out = run_cases("ditkit_geo.io:load_datacube", cases + zcases, timeout=TIMEOUT)
    ok, err = out[:n_valid] + out[len(cases) : len(cases) + 1], out[n_valid : len(cases)] + out[len(cases) + 1 :]
    assert ok[0].status == "ok" and ok[-1].status == "ok", (ok[0], ok[-1])
    assert_clean(ok, allow_nan=True)
    assert_clean([o for o in err if o.case["path"].endswith("chunk.zarr")], allow_nan=True)  # may decode or fail
    assert_clean([o for o in err if not o.case["path"].endswith("chunk.zarr")], allow_nan=True, expect_error=True)


# bigger sweeps (slow): mutation fuzzing of every format ---------------------------------------------------------------


def _mutants(valid: bytes, n: int, seed: int) -> list[bytes]:
    """``n`` mutated copies: bytes overwritten (anywhere or in the first 512), truncated, random bytes inserted."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        b = bytearray(valid)
        kind = i % 4
        if kind in (0, 1):
            hi = len(b) if kind == 0 else min(len(b), 512)
            for pos in rng.integers(0, hi, int(rng.integers(1, 9))):
                b[pos] = int(rng.integers(0, 256))
        elif kind == 2:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            pos = int(rng.integers(0, len(b)))
            b[pos:pos] = rng.bytes(int(rng.integers(1, 64)))
        out.append(bytes(b))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["npz", "npy", "tar", "tif", "nc"])
def test_fuzz_sweep_mutations(tmp_path, fmt):
    d = make_synthetic(2, size=4, t=4, seed=0)
    if fmt == "npz":
        valid, target, key = save_npz(d, tmp_path / "v.npz").read_bytes(), "ditkit_geo.io:load_npz", "path"
    elif fmt == "npy":
        valid, target, key = (
            _npy(np.random.default_rng(0).normal(size=(6, 12, 18))),
            "ditkit_geo.checks:load_npy",
            "path",
        )
    elif fmt == "tar":
        root = _presto(tmp_path / "rel", _presto_files(np.ones((4, 12, 18)), np.tile(np.arange(12), (4, 1))))
        with tarfile.open(tmp_path / "v.tar.gz", "w:gz") as tf:
            tf.add(root, arcname="npy")
        valid, target, key = (tmp_path / "v.tar.gz").read_bytes(), "ditkit_geo.io:load_presto", "root"
    elif fmt == "tif":
        valid = _tif(tmp_path / "v.tif", np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)).read_bytes()
        target, key = "ditkit_geo.io:load_geotiff_stack", None
    else:
        xr = pytest.importorskip("xarray")
        pytest.importorskip("netCDF4")
        times = np.array(["2023-06-01", "2023-05-01", "2023-07-01"], dtype="datetime64[ns]")
        da = xr.DataArray(np.random.default_rng(1).random((3, 2, 4, 4)), dims=("time", "band", "y", "x"))
        xr.Dataset({"sar": da.assign_coords(time=times, band=["VV", "VH"])}).to_netcdf(tmp_path / "v.nc")
        valid, target, key = (tmp_path / "v.nc").read_bytes(), "ditkit_geo.io:load_datacube", "path"
    suffix = {"tar": ".tar.gz"}.get(fmt, f".{fmt}")
    paths = []
    for seed in range(1, 6):
        paths += list(hostile_files(valid, tmp_path / f"h{seed}", suffix, seed=seed).values())
    for i, b in enumerate(_mutants(valid, 300, seed=7)):
        (tmp_path / f"m{i}{suffix}").write_bytes(b)
        paths.append(tmp_path / f"m{i}{suffix}")
    if fmt == "tif":
        cases = [{"paths": [str(p)], "dates": ["2024-01-01"], "bands": ["a", "b", "c"]} for p in paths]
    elif fmt == "nc":
        cases = [{"path": str(p), "variable": "sar"} for p in paths]
    else:
        cases = [{key: str(p)} for p in paths]
    out = run_cases(target, cases, timeout=600)
    assert_clean(out, name_key=key, allow_nan=True)
    if key is None:
        _named(out, [p.name for p in paths])
