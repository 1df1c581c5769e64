"""Loaders for real on-disk formats; each returns a :class:`~ditkit_geo.series.SITS`.

* :func:`load_presto`: the Presto pixel time-series arrays (``s1_s2_era5_srtm.npy``, ``month.npy``, ...).
* :func:`load_pixel_arrays`: any ``[N, T, C]`` ``.npy`` + dates.
* :func:`load_npz` / :func:`save_npz`: the package's own cube format (what ``make data-sits`` writes).
* :func:`load_geotiff_stack`: one multi-band GeoTIFF per date (rasterio; no-data from the raster metadata).
* :func:`load_datacube`: NetCDF / Zarr cubes with dims ``(time, band, y, x)`` (xarray; ``_FillValue`` masked).

rasterio and xarray are optional: ``pip install ditkit-geo[io]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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


def _need(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"ditkit_geo.io needs {module!r}: pip install 'ditkit-geo[io]'") from e


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
        values: ``[N, T, C]`` raw values; ``nodata`` and non-finite values become NaN (never a target).
        days: ``[N, T]`` or ``[T]`` acquisition days (sorted here if needed).
        bands: ``C`` channel names.
        doy: day of year ``[N, T]`` (default ``days % 365``).
        nodata: value that marks missing data.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise ValueError(f"{source}: pixel values must be [N, T, C], got shape {values.shape}")
    if values.shape[2] != len(bands):
        raise ValueError(f"{source}: {values.shape[2]} channels but {len(bands)} band names")
    n, t, _ = values.shape
    days = np.broadcast_to(np.asarray(days, np.float64), (n, t)).copy()
    doy = days % 365.0 if doy is None else np.broadcast_to(np.asarray(doy, np.float64), (n, t)).copy()
    if nodata is not None:
        values = np.where(values == nodata, np.nan, values)
    values = np.where(np.isfinite(values), values, np.nan)
    cube = values.transpose(0, 1, 2)[..., None, None].astype(np.float32)  # [N, T, C, 1, 1]
    return SITS(values=cube, observed=cube.copy(), days=days, doy=doy, bands=list(bands), source=source).sorted()


def load_presto(root: str | Path) -> SITS:
    """The Presto algae-bloom arrays (see their README): 18 channels, 12 monthly steps, ``H = W = 1``.

    The 12 steps are consecutive ~monthly composites: step ``k`` is placed at day ``30.44 * k`` (the release's
    month labels repeat or skip a month in 149 of the 1122 series, so they cannot serve as dates); ``doy`` is the
    mid-day of each step's month label (season).
    ``extra["is_test"]`` holds the original held-out split, ``extra["latlon"]`` the coordinates.
    """
    root = Path(root)
    for name in ("s1_s2_era5_srtm.npy", "month.npy"):
        if not (root / name).exists():
            raise FileNotFoundError(f"load_presto: {root / name} is missing")
    x = np.load(root / "s1_s2_era5_srtm.npy")
    month = np.load(root / "month.npy").astype(np.float64)  # [N, T]
    if x.shape[:2] != month.shape:
        raise ValueError(f"load_presto: values {x.shape} and month {month.shape} disagree on [N, T]")
    days = np.broadcast_to(np.arange(month.shape[1]) * 30.4375, month.shape)
    doy = (month + 0.5) * 30.4375
    data = load_pixel_arrays(x, days, PRESTO_BANDS, doy=doy, source=str(root / "s1_s2_era5_srtm.npy"))
    for name in ("is_test", "latlon"):
        if (root / f"{name}.npy").exists():
            data.extra[name] = np.load(root / f"{name}.npy")
    return data


def save_npz(data: SITS, path: str | Path) -> Path:
    """Write a :class:`SITS` as a compressed ``.npz`` (optional fields only when present)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
        arrays[f"extra_{k}"] = np.asarray(v)
    np.savez_compressed(path, **arrays)
    return path


def load_npz(path: str | Path) -> SITS:
    """Read a cube written by :func:`save_npz` (or any ``.npz`` with ``values``, ``days``, ``bands``)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as z:
        for k in ("values", "days", "bands"):
            if k not in z:
                raise KeyError(f"{path}: missing array {k!r} (found {sorted(z.files)})")
        values = z["values"]
        observed = z["observed"] if "observed" in z else values.copy()
        doy = z["doy"] if "doy" in z else z["days"] % 365.0
        opt = {k: (z[k] if k in z else None) for k in ("change", "cloud", "cloudy")}
        extra = {k[6:]: z[k] for k in z.files if k.startswith("extra_")}
        return SITS(
            values=values,
            observed=observed,
            days=z["days"],
            doy=doy,
            bands=[str(b) for b in z["bands"]],
            source=str(path),
            extra=extra,
            **opt,
        ).sorted()


def _parse_date(s: str | dt.date | np.datetime64, where: str) -> dt.date:
    if isinstance(s, np.datetime64):
        return s.astype("datetime64[D]").astype(dt.date)
    if isinstance(s, dt.datetime):
        return s.date()
    if isinstance(s, dt.date):
        return s
    try:
        return dt.date.fromisoformat(str(s)[:10])
    except ValueError as e:
        raise ValueError(f"{where}: cannot parse date {s!r} (use ISO YYYY-MM-DD)") from e


def _days(dates: Sequence[dt.date]) -> tuple[np.ndarray, np.ndarray]:
    d0 = min(dates)
    days = np.array([(d - d0).days for d in dates], np.float64)
    doy = np.array([d.timetuple().tm_yday - 1 for d in dates], np.float64)
    return days, doy


def load_geotiff_stack(
    paths: Sequence[str | Path],
    dates: Sequence[str | dt.date],
    bands: Sequence[str],
    *,
    cloud_paths: Sequence[str | Path] | None = None,
) -> SITS:
    """One multi-band GeoTIFF per acquisition -> one series ``[1, T, C, H, W]``.

    Pixels equal to each file's ``nodata`` (raster metadata) or non-finite become NaN and are never targets.
    Optional single-band cloud masks (non-zero = cloud) remove pixels from ``observed`` only. Dates need not be
    sorted (they are sorted here); repeated dates raise.

    Raises:
        ValueError: a file's band count differs from ``len(bands)``, or its size from the first file's.
    """
    rasterio = _need("rasterio")
    if len(paths) != len(dates):
        raise ValueError(f"load_geotiff_stack: {len(paths)} files but {len(dates)} dates")
    frames = []
    for p in paths:
        with rasterio.open(p) as src:
            if src.count != len(bands):
                raise ValueError(f"{p}: {src.count} bands in the file, expected {len(bands)} ({list(bands)})")
            a = src.read().astype(np.float32)  # [C, H, W]
            if src.nodata is not None:
                a[a == src.nodata] = np.nan
            a[~np.isfinite(a)] = np.nan
        if frames and a.shape != frames[0].shape:
            raise ValueError(f"{p}: raster shape {a.shape} differs from {paths[0]}: {frames[0].shape}")
        frames.append(a)
    values = np.stack(frames)[None]  # [1, T, C, H, W]
    observed = values.copy()
    cloud = None
    if cloud_paths is not None:
        masks = []
        for p in cloud_paths:
            with rasterio.open(p) as src:
                masks.append(src.read(1) != 0)
        cloud = np.stack(masks)[None]  # [1, T, H, W]
        if cloud.shape[2:] != values.shape[3:]:
            raise ValueError(f"load_geotiff_stack: cloud masks {cloud.shape[2:]} vs rasters {values.shape[3:]}")
        observed = np.where(cloud[:, :, None], np.nan, observed)
    days, doy = _days([_parse_date(d, "load_geotiff_stack") for d in dates])
    return SITS(
        values=values,
        observed=observed,
        days=days[None],
        doy=doy[None],
        bands=list(bands),
        cloud=cloud,
        source=str(paths[0]),
    ).sorted()


def load_datacube(
    path: str | Path,
    *,
    variable: str | None = None,
    bands: Sequence[str] | None = None,
    time_dim: str = "time",
    band_dim: str = "band",
    y_dim: str = "y",
    x_dim: str = "x",
) -> SITS:
    """A NetCDF (``.nc``) or Zarr (``.zarr``) cube -> one series ``[1, T, C, H, W]``.

    Either one variable with a band dimension (``variable`` set, dims ``time, band, y, x``), or one 3-D variable
    ``(time, y, x)`` per band (``bands`` names them). ``_FillValue`` / ``missing_value`` are masked to NaN by
    xarray (CF decoding); the ``nodata`` attribute is honoured too.
    """
    xr = _need("xarray")
    path = Path(path)
    ds = xr.open_zarr(path) if path.suffix == ".zarr" or path.is_dir() else xr.open_dataset(path)
    try:
        if variable is not None:
            if variable not in ds:
                raise KeyError(f"{path}: no variable {variable!r} (found {list(ds.data_vars)})")
            da = ds[variable].transpose(time_dim, band_dim, y_dim, x_dim)
            names = [str(b) for b in da[band_dim].values] if band_dim in da.coords else list(bands or [])
            if bands is not None and len(bands) != da.sizes[band_dim]:
                raise ValueError(f"{path}:{variable}: {da.sizes[band_dim]} bands but {len(bands)} names given")
            names = list(bands) if bands is not None else names
            arr = da.values.astype(np.float32)
            nod = da.attrs.get("nodata")
        else:
            names = list(bands) if bands is not None else [str(v) for v in ds.data_vars]
            missing = [b for b in names if b not in ds]
            if missing:
                raise KeyError(f"{path}: band variables {missing} not found (found {list(ds.data_vars)})")
            arr = np.stack([ds[b].transpose(time_dim, y_dim, x_dim).values for b in names], 1).astype(np.float32)
            nod = None
        if nod is not None:
            arr[arr == nod] = np.nan
        arr[~np.isfinite(arr)] = np.nan
        times = ds[time_dim].values
    finally:
        ds.close()
    dates = [_parse_date(t, str(path)) for t in np.atleast_1d(times)]
    days, doy = _days(dates)
    return SITS(
        values=arr[None], observed=arr[None].copy(), days=days[None], doy=doy[None], bands=names, source=str(path)
    ).sorted()
