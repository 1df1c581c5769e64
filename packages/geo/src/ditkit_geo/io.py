"""Loaders for real on-disk formats; each returns a :class:`~ditkit_geo.series.SITS`.

* :func:`load_presto`: the Presto pixel time-series arrays (``s1_s2_era5_srtm.npy``, ``month.npy``, ...), from their
  folder or from a ``.tar`` / ``.tar.gz`` archive of it (read in memory, never extracted).
* :func:`load_pixel_arrays`: any ``[N, T, C]`` array + dates (:func:`load_npy` reads a ``.npy`` with size checks).
* :func:`load_npz` / :func:`save_npz`: the package's own cube format (what ``make data-sits`` writes).
* :func:`load_geotiff_stack` / :func:`save_geotiff_stack`: one multi-band GeoTIFF per date (rasterio; no-data,
  CRS and transform from the raster metadata).
* :func:`load_datacube` / :func:`save_datacube`: NetCDF / Zarr cubes with dims ``(time, band, y, x)`` (xarray;
  ``_FillValue`` masked, CF grid mapping kept).

Every loader raises :class:`~ditkit_core.errors.DataError` naming the file, the field and the value for bad input
(see "Safety" in the package README). rasterio and xarray are optional: ``pip install ditkit-geo[io]``.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_core.errors import DataError, atomic_save, naming_file
from ditkit_geo.checks import (
    MAX_VALUES,
    check_bands,
    check_days,
    check_labels,
    check_real,
    check_values,
    load_npy,
    load_npy_bytes,
    load_npz_members,
)
from ditkit_geo.raster import (
    acquisition_dates,
    load_datacube,
    load_geotiff_stack,
    save_datacube,
    save_geotiff_stack,
)
from ditkit_geo.series import SITS

PRESTO_BANDS = [
    "VV",
    "VH",
    "B2",
    "B3",
    "B4",
    "B5",
    "B6",
    "B7",
    "B8",
    "B8A",
    "B9",
    "B11",
    "B12",
    "temperature_2m",
    "total_precipitation",
    "elevation",
    "slope",
    "NDVI",
]
PRESTO_FILES = ("s1_s2_era5_srtm.npy", "month.npy", "is_test.npy", "latlon.npy")
MAX_MEMBERS = 10_000
"""The most members :func:`load_presto` scans in an archive."""


def load_pixel_arrays(
    values: np.ndarray,
    days: np.ndarray,
    bands: Sequence[str],
    *,
    doy: np.ndarray | None = None,
    nodata: float | None = None,
    source: str = "<arrays>",
) -> SITS:
    """Pixel series ``[N, T, C]`` -> :class:`SITS` with ``H = W = 1``.

    Args:
        values: ``[N, T, C]`` raw values; ``nodata`` and NaN mark missing data (never a target).
        days: ``[N, T]`` or ``[T]`` acquisition days (sorted here if needed).
        bands: ``C`` channel names.
        doy: day of year ``[N, T]`` or ``[T]`` in ``[0, 366)`` (default ``days % 365``).
        nodata: value that marks missing data.
        source: the file the arrays came from, named in errors.

    Raises:
        DataError: naming ``source``, the field and the first bad position: wrong shape, complex or non-numeric
            values, an infinite value or one beyond float32 range, an unknown (NaN) or out-of-range date.
    """
    bands = check_bands(bands, path=source)
    values = check_real(values, path=source, field="values")
    if values.ndim != 3:
        raise DataError("pixel values must be [N, T, C]", path=source, field="values.shape", value=values.shape)
    n, t, c = values.shape
    if n == 0 or t == 0:
        raise DataError("no series or no dates", path=source, field="values.shape", value=values.shape)
    if c != len(bands):
        raise DataError(f"{c} channels but {len(bands)} band names", path=source, field="bands", value=bands)

    def per_date(a: Any, field: str, **kw: Any) -> np.ndarray:
        a = check_days(a, path=source, field=field, **kw)
        if a.shape not in ((t,), (n, t)):
            raise DataError(f"must be [N, T]=({n}, {t}) or [T]", path=source, field=f"{field}.shape", value=a.shape)
        return np.broadcast_to(a, (n, t)).copy()

    days = per_date(days, "days")
    doy = days % 365.0 if doy is None else per_date(doy, "doy", lo=0.0, hi=366.0, upper_open=True)
    if nodata is not None:
        values = np.where(values == float(nodata), np.nan, values)
    cube = check_values(values, path=source, field="values", axes=("series", "date", "band"), bands=bands)
    cube = cube[..., None, None]  # [N, T, C, 1, 1]
    return SITS(values=cube, observed=cube.copy(), days=days, doy=doy, bands=bands, source=source).sorted()


def _presto_tar(root: Path, max_values: int) -> dict[str, tuple[str, np.ndarray]]:
    found: dict[str, tuple[str, np.ndarray]] = {}
    limit = max_values * 16 + (1 << 16)  # bytes of the largest acceptable array (16-byte items) and its header
    with naming_file(root, "cannot read the archive"), tarfile.open(root, "r:*") as tf:
        scanned = 0
        for k, m in enumerate(tf):
            if k >= MAX_MEMBERS:
                raise DataError(f"more than {MAX_MEMBERS} members", path=root, field="members")
            scanned += m.size
            if m.size > limit or scanned > 8 * limit:
                raise DataError(
                    f"member of {m.size} bytes beyond the size limit", path=root, field="member", value=m.name
                )
            base = posixpath.basename(m.name)
            if base not in PRESTO_FILES:
                continue
            where = f"{root}[{m.name}]"
            if m.name.startswith("/") or ".." in m.name.split("/"):
                raise DataError(
                    "member name leaves the archive folder; refused", path=root, field="member", value=m.name
                )
            if not m.isfile():
                raise DataError(
                    "not a regular file (link, device or folder); refused", path=root, field="member", value=m.name
                )
            if base in found:
                raise DataError(f"{base} appears twice in the archive", path=root, field="member", value=m.name)
            f = tf.extractfile(m)
            data = f.read(m.size) if f is not None else b""
            if len(data) != m.size:
                raise DataError(f"truncated: {len(data)} of {m.size} bytes", path=root, field="member", value=m.name)
            # numpy would read a tar member through the archive's file descriptor: parse the bytes instead
            found[base] = (where, load_npy_bytes(data, path=where, field=base[:-4], max_values=max_values))
    return found


def _presto_arrays(root: Path, max_values: int) -> dict[str, tuple[str, np.ndarray]]:
    if root.is_dir():
        found = {}
        for name in PRESTO_FILES:
            if (root / name).exists():
                found[name] = (str(root / name), load_npy(root / name, field=name[:-4], max_values=max_values))
    elif root.is_file():
        found = _presto_tar(root, max_values)
    else:
        raise DataError("no such folder or archive", path=root)
    for name in PRESTO_FILES[:2]:
        if name not in found:
            raise DataError(f"missing {name} (the release needs s1_s2_era5_srtm.npy and month.npy)", path=root)
    return found


def check_latlon(a: Any, n: int, *, path: str) -> np.ndarray:
    """``[N, 2]`` latitude / longitude in degrees: finite, ``|lat| <= 90``, ``|lon| <= 360``."""
    a = check_real(a, path=path, field="latlon")
    if a.shape != (n, 2):
        raise DataError(f"must be [N, 2]=({n}, 2)", path=path, field="latlon.shape", value=a.shape)
    check_days(a[:, 0], path=path, field="latitude", axes=("series",), lo=-90.0, hi=90.0, what="coordinate")
    check_days(a[:, 1], path=path, field="longitude", axes=("series",), lo=-360.0, hi=360.0, what="coordinate")
    return a.astype(np.float64)


def check_is_test(a: Any, n: int, *, path: str) -> np.ndarray:
    """``[N]`` split flags: integers 0 / 1."""
    a = check_labels(a, path=path, field="is_test", lo=0, hi=1, axes=("series",))
    if a.shape != (n,):
        raise DataError(f"must be [N]=({n},)", path=path, field="is_test.shape", value=a.shape)
    return a


def load_presto(root: str | Path, *, max_values: int = MAX_VALUES) -> SITS:
    """The Presto algae-bloom arrays (see their README): 18 channels, 12 monthly steps, ``H = W = 1``.

    The 12 steps are consecutive ~monthly composites: step ``k`` is placed at day ``30.44 * k`` (the release's
    month labels repeat or skip a month in 149 of the 1122 series, so they cannot serve as dates); ``doy`` is the
    mid-day of each step's month label (season).
    ``extra["is_test"]`` holds the original held-out split, ``extra["latlon"]`` the coordinates.

    Args:
        root: the release folder, or a ``.tar`` / ``.tar.gz`` archive holding its files (at any depth).
        max_values: the most numbers one array may hold (checked from its header before reading).

    Raises:
        DataError: naming the file (``archive[member]`` inside an archive), field and value: a missing or corrupt
            file, a pickled array, a hostile size, values that are infinite or beyond float32 range, months that
            are not integers in 0..11 (NaN included), split flags other than 0 / 1, impossible coordinates.
    """
    root = Path(root)
    found = _presto_arrays(root, max_values)
    src_x, x = found["s1_s2_era5_srtm.npy"]
    src_m, month = found["month.npy"]
    x = check_real(x, path=src_x, field="values")
    if x.ndim != 3:
        raise DataError("must be [N, T, C]", path=src_x, field="values.shape", value=x.shape)
    month = check_labels(month, path=src_m, field="month", lo=0, hi=11)
    if x.shape[:2] != month.shape:
        raise DataError(
            f"disagrees with the values' [N, T]={x.shape[:2]}", path=src_m, field="month.shape", value=month.shape
        )
    days = np.broadcast_to(np.arange(month.shape[1]) * 30.4375, month.shape)
    doy = (month + 0.5) * 30.4375
    data = load_pixel_arrays(x, days, PRESTO_BANDS, doy=doy, source=src_x)
    if "is_test.npy" in found:
        where, a = found["is_test.npy"]
        data.extra["is_test"] = check_is_test(a, len(data), path=where)
    if "latlon.npy" in found:
        where, a = found["latlon.npy"]
        data.extra["latlon"] = check_latlon(a, len(data), path=where)
    return data


def save_npz(data: SITS, path: str | Path) -> Path:
    """Write a :class:`SITS` as a compressed ``.npz``, atomically (optional fields only when present).

    ``extra`` entries are written as arrays (``extra_<k>``), dictionaries as JSON text (``extrajson_<k>``).
    """
    arrays = {
        "values": data.values,
        "observed": data.observed,
        "days": data.days,
        "doy": data.doy,
        "bands": np.array(data.bands),
    }
    for k in ("change", "cloud", "cloudy"):
        if getattr(data, k) is not None:
            arrays[k] = getattr(data, k)
    for k, v in data.extra.items():
        if isinstance(v, dict):
            arrays[f"extrajson_{k}"] = np.array(json.dumps(v))
            continue
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise ValueError(f"save_npz: extra[{k!r}] holds Python objects ({type(v).__name__}); not writable")
        arrays[f"extra_{k}"] = a
    return atomic_save(path, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")


def load_npz(path: str | Path, *, max_values: int = MAX_VALUES) -> SITS:
    """Read a cube written by :func:`save_npz` (or any ``.npz`` with ``values``, ``days``, ``bands``).

    Raises:
        DataError: naming the file and array: not a zip of ``.npy``, a missing array, a pickled array, a hostile
            size (checked from each header before reading), complex / infinite / out-of-float32 values, unknown
            (NaN) dates, masks other than 0 / 1, band names that are not UTF-8 text.
    """
    path = Path(path)
    keys = ("values", "observed", "days", "doy", "bands", "change", "cloud", "cloudy")
    z = load_npz_members(path, keys, prefix="extra", max_values=max_values)
    for k in ("values", "days", "bands"):
        if k not in z:
            raise DataError(f"missing array (found {sorted(z)})", path=path, field=k)
    days = check_days(z["days"], path=path, field="days")
    extra: dict[str, Any] = {}
    for k, v in z.items():
        if k.startswith("extrajson_"):
            if v.dtype.kind != "U" or v.ndim != 0:
                raise DataError("expected a JSON text scalar", path=path, field=k, value=str(v.dtype))
            with naming_file(path, f"cannot parse {k}"):
                extra[k[10:]] = json.loads(str(v))
        elif k.startswith("extra_"):
            extra[k[6:]] = v
    n = z["values"].shape[0] if z["values"].ndim else 0
    if "latlon" in extra:
        extra["latlon"] = check_latlon(extra["latlon"], n, path=str(path))
    if "is_test" in extra:
        extra["is_test"] = check_is_test(extra["is_test"], n, path=str(path))
    return SITS(
        values=z["values"],
        observed=z["observed"] if "observed" in z else z["values"].copy(),
        days=days,
        doy=z["doy"] if "doy" in z else days % 365.0,
        bands=check_bands(z["bands"], path=path),
        change=z.get("change"),
        cloud=z.get("cloud"),
        cloudy=z.get("cloudy"),
        source=str(path),
        extra=extra,
    ).sorted()


__all__ = [
    "MAX_VALUES",
    "PRESTO_BANDS",
    "acquisition_dates",
    "check_is_test",
    "check_latlon",
    "load_datacube",
    "load_geotiff_stack",
    "load_npy",
    "load_npz",
    "load_pixel_arrays",
    "load_presto",
    "save_datacube",
    "save_geotiff_stack",
    "save_npz",
]
