"""Georeferenced formats: GeoTIFF stacks (rasterio) and NetCDF / Zarr cubes (xarray), read and written.

Loaders keep the grid: ``SITS.extra["geo"]`` holds ``crs`` (WKT, ``""`` when the file has none), ``transform``
(the six affine coefficients ``a, b, c, d, e, f`` of rasterio / GDAL's ``x = a col + b row + c``,
``y = d col + e row + f``), ``height``, ``width`` and ``origin`` (ISO date of day 0). The writers put a series
(for example a reconstruction, after :meth:`~ditkit_geo.series.Normalizer.invert`) back on that grid:
:func:`save_geotiff_stack` (one multi-band GeoTIFF per date) and :func:`save_datacube` (NetCDF, CF grid mapping
readable by GDAL and rioxarray). Files are written atomically (temporary file, then rename).
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import inspect
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_core.errors import DataError, atomic_save, naming_file
from ditkit_geo.checks import MAX_VALUES, check_bands, check_real, check_values
from ditkit_geo.series import SITS


def _need(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"ditkit_geo.io needs {module!r}: pip install 'ditkit-geo[io]'") from e


def _parse_date(s: Any, where: str, field: str = "date") -> dt.date:
    if isinstance(s, np.datetime64):
        if np.isnat(s):
            raise DataError("missing date (NaT)", path=where, field=field, value=str(s))
        return s.astype("datetime64[D]").astype(dt.date)
    if isinstance(s, dt.datetime):
        return s.date()
    if isinstance(s, dt.date):
        return s
    try:
        return dt.date.fromisoformat(str(s)[:10])
    except ValueError as e:
        value = s.item() if isinstance(s, np.generic) else s
        raise DataError("cannot parse the date (use ISO YYYY-MM-DD)", path=where, field=field, value=value) from e


def _days(dates: Sequence[dt.date]) -> tuple[np.ndarray, np.ndarray, dt.date]:
    d0 = min(dates)
    days = np.array([(d - d0).days for d in dates], np.float64)
    doy = np.array([d.timetuple().tm_yday - 1 for d in dates], np.float64)
    return days, doy, d0


def _geo(crs: str, transform: Sequence[float], height: int, width: int, origin: dt.date) -> dict[str, Any]:
    return {
        "crs": crs,
        "transform": [float(v) for v in transform][:6],
        "height": int(height),
        "width": int(width),
        "origin": origin.isoformat(),
    }


def _files(paths: Any, what: str) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        raise ValueError(f"load_geotiff_stack: {what} must be a list of files, got the single path {paths!r}")
    return [Path(p) for p in paths]


def _open_checked(rasterio: Any, p: Path, total: int, max_values: int) -> Any:
    """Open a raster and check its declared size and dtype before any pixel is read."""
    src = rasterio.open(p)
    try:
        n = src.count * src.height * src.width
        if total + n > max_values:
            raise DataError(
                f"raster of {src.count} x {src.height} x {src.width} values; the stack would exceed "
                f"max_values={max_values}",
                path=p,
                field="size",
                value=(src.count, src.height, src.width),
            )
        complex_ = [d for d in src.dtypes if "complex" in d]
        if complex_:
            raise DataError(
                "complex rasters are not accepted: the imaginary part would be lost",
                path=p,
                field="dtype",
                value=complex_[0],
            )
    except BaseException:
        src.close()
        raise
    return src


def load_geotiff_stack(
    paths: Sequence[str | Path],
    dates: Sequence[str | dt.date],
    bands: Sequence[str],
    *,
    cloud_paths: Sequence[str | Path] | None = None,
    max_values: int = MAX_VALUES,
) -> SITS:
    """One multi-band GeoTIFF per acquisition -> one series ``[1, T, C, H, W]`` on the files' common grid.

    Pixels equal to each file's ``nodata`` (raster metadata) or NaN become missing and are never targets.
    Optional single-band cloud masks (non-zero or NaN = cloud) remove pixels from ``observed`` only. Dates need not
    be sorted (they are sorted here); repeated dates raise. ``extra["geo"]`` keeps the CRS and transform.

    Args:
        paths: ``T`` raster files.
        dates: their acquisition dates (ISO strings or dates).
        bands: ``C`` channel names (every file holds ``C`` bands in this order).
        cloud_paths: optional ``T`` single-band cloud masks on the same grid.
        max_values: the most numbers the whole stack may hold (checked from the headers before reading).

    Raises:
        DataError: naming the file: unreadable or corrupt, band count or raster size or CRS / transform differing
            from the first file, complex pixels, infinite values or values beyond float32 range, a bad date.
    """
    rasterio = _need("rasterio")
    paths = _files(paths, "paths")
    if not paths:
        raise ValueError("load_geotiff_stack: paths is empty (one GeoTIFF per date)")
    if len(paths) != len(dates):
        raise ValueError(f"load_geotiff_stack: {len(paths)} files but {len(dates)} dates")
    bands = check_bands(bands, path="load_geotiff_stack")
    parsed = [_parse_date(d, str(p)) for p, d in zip(paths, dates)]
    frames: list[np.ndarray] = []
    ref: dict[str, Any] = {}
    total = 0
    for p in paths:
        with naming_file(p), _open_checked(rasterio, p, total, max_values) as src:
            if src.count != len(bands):
                raise DataError(
                    f"{src.count} bands in the file, expected {len(bands)} ({bands})",
                    path=p,
                    field="band count",
                    value=src.count,
                )
            grid = {
                "shape": (src.height, src.width),
                "crs": src.crs.to_wkt() if src.crs else "",
                "transform": list(src.transform)[:6],
            }
            raw = src.read()  # [C, H, W]
            nodata = src.nodata
        total += raw.size
        if ref:
            for key in ("shape", "crs"):
                if grid[key] != ref[key]:
                    raise DataError(
                        f"differs from {paths[0].name}: {ref[key]}", path=p, field=f"raster {key}", value=grid[key]
                    )
            if not np.allclose(grid["transform"], ref["transform"], rtol=1e-9, atol=0.0):
                raise DataError(
                    f"differs from {paths[0].name}: {ref['transform']}",
                    path=p,
                    field="raster transform",
                    value=grid["transform"],
                )
        else:
            ref = grid
        a = raw.astype(np.float64 if raw.dtype.itemsize > 4 else np.float32)
        if nodata is not None and not math.isnan(nodata):
            a[raw == nodata] = np.nan
        frames.append(check_values(a, path=p, field="pixel", axes=("band", "row", "col"), bands=bands))
    values = np.stack(frames)[None]  # [1, T, C, H, W]
    observed = values.copy()
    cloud = None
    if cloud_paths is not None:
        cloud_paths = _files(cloud_paths, "cloud_paths")
        if len(cloud_paths) != len(paths):
            raise ValueError(f"load_geotiff_stack: {len(cloud_paths)} cloud masks for {len(paths)} rasters")
        masks = []
        for p in cloud_paths:
            with naming_file(p), _open_checked(rasterio, p, 0, max_values) as src:
                if (src.height, src.width) != ref["shape"]:
                    raise DataError(
                        f"cloud mask size differs from the rasters {ref['shape']}",
                        path=p,
                        field="raster shape",
                        value=(src.height, src.width),
                    )
                m = check_real(src.read(1), path=p, field="cloud")
            masks.append((m != 0) | np.isnan(m) if m.dtype.kind == "f" else m != 0)  # unknown counts as cloud
        cloud = np.stack(masks)[None]  # [1, T, H, W]
        observed = np.where(cloud[:, :, None], np.nan, observed)
    days, doy, d0 = _days(parsed)
    return SITS(
        values=values,
        observed=observed,
        days=days[None],
        doy=doy[None],
        bands=bands,
        cloud=cloud,
        source=str(paths[0]),
        extra={"geo": _geo(ref["crs"], ref["transform"], *ref["shape"], d0)},
    ).sorted()


def acquisition_dates(data: SITS, series: int = 0) -> list[str]:
    """ISO dates of one series' acquisitions (from ``extra["geo"]["origin"]`` and ``days``)."""
    geo = data.extra.get("geo") or {}
    if "origin" not in geo:
        raise ValueError(f"{data.source}: no date origin (extra['geo']['origin']); the data were not loaded with dates")
    d0 = dt.date.fromisoformat(str(geo["origin"]))
    return [(d0 + dt.timedelta(days=round(float(d)))).isoformat() for d in data.days[series]]


def _grid(data: SITS, geo: dict[str, Any] | None) -> dict[str, Any]:
    geo = geo if geo is not None else data.extra.get("geo")
    if not geo or "transform" not in geo:
        raise ValueError(f"{data.source}: no CRS / transform (extra['geo']); pass geo={{'crs': ..., 'transform': ...}}")
    t = [float(v) for v in geo["transform"]]
    if len(t) < 6 or not all(math.isfinite(v) for v in t[:6]):
        raise ValueError(f"{data.source}: geo['transform']={geo['transform']!r} must be six finite numbers")
    return {**geo, "transform": t[:6], "crs": geo.get("crs") or ""}


def save_geotiff_stack(
    data: SITS, directory: str | Path, *, series: int = 0, geo: dict[str, Any] | None = None, prefix: str = ""
) -> list[Path]:
    """Write one float32 multi-band GeoTIFF per date of one series (NaN = no-data), on the input's grid.

    Args:
        data: cube ``[N, T, C, H, W]`` in physical units (``values`` are written).
        directory: output folder; files are ``<prefix><YYYY-MM-DD>.tif`` (``<prefix><k>.tif`` without dates).
        series: which series.
        geo: grid (``crs``, ``transform``); defaults to ``data.extra["geo"]`` from the loader.
        prefix: file name prefix.

    Returns:
        the written paths in date order (load them back with :func:`load_geotiff_stack` and
        :func:`acquisition_dates`).
    """
    rasterio = _need("rasterio")
    from rasterio.transform import Affine

    grid = _grid(data, geo)
    values = data.values[series]  # [T, C, H, W]
    t, c, h, w = values.shape
    try:
        names = acquisition_dates(data, series)
    except ValueError:
        names = [f"{k:03d}" for k in range(t)]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": c,
        "dtype": "float32",
        "nodata": float("nan"),
        "crs": grid["crs"] or None,
        "transform": Affine(*grid["transform"]),
    }
    out = []
    for k in range(t):

        def write(tmp: str, k: int = k) -> None:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(values[k].astype(np.float32))
                for i, b in enumerate(data.bands, 1):
                    dst.set_band_description(i, b)

        out.append(atomic_save(directory / f"{prefix}{names[k]}.tif", write, suffix=".tif"))
    return out


def _gdal_transform(attrs: dict[str, Any]) -> list[float] | None:
    gt = attrs.get("GeoTransform")
    if gt is None:
        return None
    try:
        c, a, b, f, d, e = (float(v) for v in str(gt).split())
    except ValueError:
        return None
    return [a, b, c, d, e, f]


def _coord_transform(ds: Any, y_dim: str, x_dim: str) -> list[float] | None:
    if x_dim not in ds.variables or y_dim not in ds.variables:
        return None
    x, y = np.asarray(ds[x_dim].values, np.float64), np.asarray(ds[y_dim].values, np.float64)
    if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
        return None
    dx, dy = np.diff(x), np.diff(y)
    if not (np.allclose(dx, dx[0]) and np.allclose(dy, dy[0]) and np.isfinite([x[0], y[0], dx[0], dy[0]]).all()):
        return None
    return [float(dx[0]), 0.0, float(x[0] - dx[0] / 2), 0.0, float(dy[0]), float(y[0] - dy[0] / 2)]


def _grid_mapping(ds: Any, var: str | None) -> tuple[str, list[float] | None]:
    name = ds[var].attrs.get("grid_mapping") if var is not None else None
    for cand in (name, "spatial_ref", "crs"):
        if cand is not None and cand in ds.variables:
            attrs = ds[cand].attrs
            crs = str(attrs.get("crs_wkt") or attrs.get("spatial_ref") or "")
            return crs, _gdal_transform(attrs)
    return "", None


def _is_grid_mapping(v: Any) -> bool:
    return v.ndim == 0 or any(k in v.attrs for k in ("grid_mapping_name", "crs_wkt", "spatial_ref"))


def load_datacube(
    path: str | Path,
    *,
    variable: str | None = None,
    bands: Sequence[str] | None = None,
    time_dim: str = "time",
    band_dim: str = "band",
    y_dim: str = "y",
    x_dim: str = "x",
    max_values: int = MAX_VALUES,
) -> SITS:
    """A NetCDF (``.nc``) or Zarr (``.zarr``) cube -> one series ``[1, T, C, H, W]``.

    Either one variable with a band dimension (``variable`` set, dims ``time, band, y, x``), or one 3-D variable
    ``(time, y, x)`` per band (``bands`` names them; default: every data variable that is not a grid mapping).
    ``_FillValue`` / ``missing_value`` are masked to NaN by xarray (CF decoding); the ``nodata`` attribute is
    honoured too. The CF grid mapping (``crs_wkt`` / ``GeoTransform``, else regular ``x`` / ``y`` coordinates)
    goes to ``extra["geo"]``.

    Raises:
        DataError: naming the file: unreadable or corrupt, missing variable or dimension, sizes beyond
            ``max_values`` (checked from the metadata before reading), complex, infinite or out-of-float32 values,
            missing or unparsable times, bad band names.
    """
    xr = _need("xarray")
    path = Path(path)
    with naming_file(path):
        zarr = path.suffix == ".zarr" or path.is_dir()
        opener = xr.open_zarr if zarr else xr.open_dataset
        lazy = "create_default_indexes" in inspect.signature(opener).parameters  # recent xarray only
        # without default indexes no coordinate is read before the sizes are checked
        ds = opener(path, create_default_indexes=False) if lazy else opener(path)
        try:
            arr, names, geo_var = _read_cube(ds, path, variable, bands, (time_dim, band_dim, y_dim, x_dim), max_values)
            if time_dim not in ds.variables:
                raise DataError("no time coordinate", path=path, field=time_dim)
            times = np.atleast_1d(ds[time_dim].values)
            crs, transform = _grid_mapping(ds, geo_var)
            transform = transform or _coord_transform(ds, y_dim, x_dim) or [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        finally:
            ds.close()
    if len(times) != arr.shape[0]:
        raise DataError(f"{len(times)} times for {arr.shape[0]} dates in the data", path=path, field=time_dim)
    dates = [_parse_date(t, str(path), time_dim) for t in times]
    days, doy, d0 = _days(dates)
    return SITS(
        values=arr[None],
        observed=arr[None].copy(),
        days=days[None],
        doy=doy[None],
        bands=names,
        source=str(path),
        extra={"geo": _geo(crs, transform, arr.shape[2], arr.shape[3], d0)},
    ).sorted()


def _read_cube(
    ds: Any, path: Path, variable: str | None, bands: Sequence[str] | None, dims: tuple[str, ...], max_values: int
) -> tuple[np.ndarray, list[str], str | None]:
    time_dim, band_dim, y_dim, x_dim = dims

    def size_ok(da: Any, field: str, n_vars: int = 1) -> None:
        n = math.prod(int(s) for s in da.shape) * n_vars
        if n > max_values:
            raise DataError(
                f"{n} values, more than the limit max_values={max_values}", path=path, field=field, value=da.shape
            )
        check_real(np.empty(0, da.dtype), path=path, field=field)

    if variable is not None:
        if variable not in ds.data_vars:
            raise DataError(
                f"no such variable (found {list(ds.data_vars)})", path=path, field="variable", value=variable
            )
        da = ds[variable]
        if set(da.dims) != {time_dim, band_dim, y_dim, x_dim} or da.ndim != 4:
            raise DataError(
                f"dims must be ({time_dim}, {band_dim}, {y_dim}, {x_dim})", path=path, field=variable, value=da.dims
            )
        size_ok(da, variable)
        da = da.transpose(time_dim, band_dim, y_dim, x_dim)
        c = int(da.sizes[band_dim])
        if bands is not None:
            names = check_bands(bands, path=path)
            if len(names) != c:
                raise DataError(f"{c} bands but {len(names)} names given", path=path, field=variable, value=names)
        elif band_dim in da.coords:
            names = check_bands(
                [str(b) if not isinstance(b, bytes) else b for b in da[band_dim].values.tolist()],
                path=path,
                field=band_dim,
            )
        else:
            names = [f"band{i}" for i in range(c)]
        arr = np.asarray(da.values)
        nod = da.attrs.get("nodata")
        geo_var = variable
    else:
        if bands is None:
            names = [str(v) for v in ds.data_vars if not _is_grid_mapping(ds[v])]
        else:
            names = list(bands)
        names = check_bands(names, path=path)
        missing = [b for b in names if b not in ds.data_vars]
        if missing:
            raise DataError(
                f"band variables not found (found {list(ds.data_vars)})", path=path, field="bands", value=missing
            )
        for b in names:
            if set(ds[b].dims) != {time_dim, y_dim, x_dim} or ds[b].ndim != 3:
                raise DataError(f"dims must be ({time_dim}, {y_dim}, {x_dim})", path=path, field=b, value=ds[b].dims)
            size_ok(ds[b], b, len(names))
        arr = np.stack([np.asarray(ds[b].transpose(time_dim, y_dim, x_dim).values) for b in names], 1)
        nod, geo_var = None, names[0]
    arr = check_real(arr, path=path, field=geo_var)
    arr = arr.astype(np.float64 if arr.dtype.itemsize > 4 else np.float32)
    if nod is not None:
        try:
            nod = float(nod)
        except (TypeError, ValueError) as e:
            raise DataError("nodata attribute must be a number", path=path, field="nodata", value=nod) from e
        if not math.isnan(nod):
            arr[arr == nod] = np.nan
    arr = check_values(arr, path=path, field=geo_var, axes=("date", "band", "row", "col"), bands=names)
    return arr, names, geo_var


def save_datacube(
    data: SITS,
    path: str | Path,
    *,
    series: int = 0,
    variable: str = "values",
    geo: dict[str, Any] | None = None,
    origin: str | dt.date | None = None,
) -> Path:
    """Write one series as a NetCDF cube ``variable (time, band, y, x)`` with a CF grid mapping (``spatial_ref``).

    Args:
        data: cube ``[N, T, C, H, W]`` in physical units (``values`` are written; NaN = missing).
        path: ``.nc`` file (written atomically; needs netCDF4 or h5netcdf).
        series: which series.
        geo: grid (``crs``, ``transform``); defaults to ``data.extra["geo"]``.
        origin: date of day 0 (default ``geo["origin"]``).

    Returns:
        ``path``; :func:`load_datacube` ``(path, variable=variable)`` reads it back with the same grid.
    """
    xr = _need("xarray")
    grid = _grid(data, geo)
    origin = origin or grid.get("origin")
    if origin is None:
        raise ValueError(f"{data.source}: no date origin; pass origin='YYYY-MM-DD'")
    d0 = np.datetime64(_parse_date(origin, "save_datacube", "origin"), "ns")
    days = data.days[series].astype(np.float64)
    times = d0 + np.round(days * 86400).astype("timedelta64[s]").astype("timedelta64[ns]")
    v = data.values[series]  # [T, C, H, W]
    a, b, c, d, e, f = grid["transform"]
    coords: dict[str, Any] = {"time": times, "band": list(data.bands)}
    if b == 0 and d == 0:
        coords["x"] = c + a * (np.arange(v.shape[3]) + 0.5)
        coords["y"] = f + e * (np.arange(v.shape[2]) + 0.5)
    da = xr.DataArray(v, dims=("time", "band", "y", "x"), coords=coords, attrs={"grid_mapping": "spatial_ref"})
    ref = xr.DataArray(
        0,
        attrs={
            "crs_wkt": grid["crs"],
            "spatial_ref": grid["crs"],
            "GeoTransform": f"{c!r} {a!r} {b!r} {f!r} {d!r} {e!r}",
        },
    )
    ds = xr.Dataset({variable: da, "spatial_ref": ref})
    engine = next((m for m in ("netCDF4", "h5netcdf") if importlib.util.find_spec(m)), None)
    if engine is None:
        raise ImportError("save_datacube needs netCDF4 or h5netcdf: pip install 'ditkit-geo[io]'")
    return atomic_save(path, lambda tmp: ds.to_netcdf(tmp, engine=engine.lower()), suffix=".nc")
