"""Synthetic Sentinel-1/2-like image time series with phenology, clouds, shadows and land-cover changes.

Physical picture (every step is a documented formula, so tests can check it):

* Land cover: a Voronoi map of ``CLASSES`` per scene.
* Phenology: each vegetated class has a fractional green cover following a double logistic of the day of year
  ``fc(d) = base + amp * (sigmoid(k1 (d - sos)) - sigmoid(k2 (d - eos)))`` with per-pixel and per-year jitter
  of ``sos``/``eos``. Winter crops wrap around the year.
* Spectra: linear mixing ``rho = fc * VEG + (1 - fc) * b * SOIL`` (soil brightness ``b`` per pixel); water and
  urban have their own spectra. Bands are S2-like: B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 (reflectance).
* SAR: ``VV = -13 + 6 fc``, ``VH = -21 + 8 fc`` dB (water -22 / -28, urban -5 / -12) plus speckle
  (multiplicative gamma noise of ``looks`` looks, converted to dB). SAR is never cloudy.
* Dates: ``T`` irregular acquisitions over ``years`` years (jittered grid), random start day of year.
* Clouds: a smooth random field evolving as AR(1) between dates (correlation ``exp(-gap / 40 days)``), so clouds
  persist, thresholded at a cover fraction ``clip(rate + 0.4 z)`` where ``z`` is AR(1) too (``exp(-gap / 60)``).
  Cloudy pixels blend towards a bright flat spectrum; shadows are the cloud mask shifted by a sun-dependent
  offset, darkening the surface.
* Changes: in a fraction of scenes one Voronoi cell switches (at a date in the last year) to bare soil
  (clearing) or urban; ``change [H, W]`` is the ground truth.
"""

from __future__ import annotations

import numpy as np

from ditkit_geo.checks import MAX_VALUES, check_float, check_int
from ditkit_geo.series import SITS

S2_BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"]
SAR_BANDS = ["VV", "VH"]
BANDS = S2_BANDS + SAR_BANDS
CLASSES = ["water", "urban", "forest", "deciduous", "summer_crop", "winter_crop", "grassland"]

VEG = np.array([0.03, 0.06, 0.03, 0.10, 0.30, 0.38, 0.42, 0.43, 0.20, 0.10], np.float32)
SOIL = np.array([0.10, 0.13, 0.16, 0.19, 0.22, 0.24, 0.26, 0.27, 0.34, 0.28], np.float32)
WATER = np.array([0.06, 0.05, 0.03, 0.02, 0.015, 0.012, 0.01, 0.01, 0.005, 0.003], np.float32)
URBAN = np.array([0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.18, 0.22, 0.20], np.float32)
# double-logistic parameters per class: base, amp, sos, eos, k1, k2 (None: not vegetated)
PHENOLOGY: dict[str, tuple[float, float, float, float, float, float] | None] = {
    "water": None,
    "urban": None,
    "forest": (0.70, 0.15, 110.0, 290.0, 0.06, 0.05),
    "deciduous": (0.15, 0.70, 110.0, 285.0, 0.08, 0.06),
    "summer_crop": (0.05, 0.85, 160.0, 245.0, 0.12, 0.10),
    "winter_crop": (0.10, 0.75, -60.0, 175.0, 0.08, 0.12),
    "grassland": (0.25, 0.45, 90.0, 300.0, 0.06, 0.04),
}


def double_logistic(
    doy: np.ndarray, base: float, amp: float, sos: np.ndarray | float, eos: np.ndarray | float, k1: float, k2: float
) -> np.ndarray:
    """Green cover ``base + amp * (sigmoid(k1 (d - sos)) - sigmoid(k2 (d - eos)))`` (broadcasting)."""
    sig = lambda z: 0.5 * (1 + np.tanh(0.5 * z))  # noqa: E731  logistic without overflow
    return base + amp * (sig(k1 * (doy - sos)) - sig(k2 * (doy - eos)))


def ndvi(b8: np.ndarray, b4: np.ndarray) -> np.ndarray:
    """``(B8 - B4) / (B8 + B4)``."""
    return (b8 - b4) / np.maximum(b8 + b4, 1e-6)


def _smooth_field(rng: np.random.Generator, size: int, coarse: int) -> np.ndarray:
    """Zero-mean unit-variance smooth random field ``[size, size]`` (bilinear upsampling of coarse noise)."""
    g = rng.standard_normal((coarse + 1, coarse + 1))
    u = np.linspace(0, coarse, size)
    i0 = np.clip(np.floor(u).astype(int), 0, coarse - 1)
    f = u - i0
    rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]  # [size, coarse+1]
    out = rows[:, i0] * (1 - f)[None] + rows[:, i0 + 1] * f[None]
    return (out - out.mean()) / (out.std() + 1e-8)


def _voronoi(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    pts = rng.uniform(0, size, (cells, 2))
    yy, xx = np.mgrid[0:size, 0:size]
    d = (yy[..., None] - pts[:, 0]) ** 2 + (xx[..., None] - pts[:, 1]) ** 2
    return d.argmin(-1)  # [size, size] cell index


def _cover(cls: str, doy: np.ndarray, sos_j: np.ndarray, eos_j: np.ndarray) -> np.ndarray:
    p = PHENOLOGY[cls]
    if p is None:
        return np.zeros_like(doy + sos_j)
    base, amp, sos, eos, k1, k2 = p
    # evaluate at doy and doy - 365 / + 365 so that seasons wrap over the new year
    fc = sum(double_logistic(doy + s, 0.0, amp, sos + sos_j, eos + eos_j, k1, k2) for s in (-365.0, 0.0, 365.0))
    return np.clip(base + fc, 0.0, 1.0)


def _scene(
    rng: np.random.Generator, size: int, t: int, years: float, cloud_rate: float, p_change: float, looks: float
) -> dict[str, np.ndarray]:
    n_bands = len(BANDS)
    # dates: jittered regular grid over `years` years
    span = 365.0 * years
    grid = (np.arange(t) + 0.5) * span / t
    days = np.sort(grid + rng.uniform(-0.35, 0.35, t) * span / t)
    days = days - days[0]
    start = rng.uniform(0, 365)
    doy = (start + days) % 365.0
    year = np.floor((start + days) / 365.0).astype(int)
    # land cover
    cells = int(rng.integers(4, 9))
    cell = _voronoi(rng, size, cells)
    cell_cls = rng.integers(0, len(CLASSES), cells)
    cls_map = cell_cls[cell]  # [H, W]
    change = np.zeros((size, size), bool)
    change_t = t + 1
    new_cls = None
    if rng.random() < p_change:
        veg_cells = [c for c in range(cells) if CLASSES[cell_cls[c]] not in ("water", "urban")]
        if veg_cells:
            c = int(rng.choice(veg_cells))
            change = cell == c
            change_t = int(rng.integers(t - max(2, t // 3), t - 1))  # change in the last third, >= 2 post dates
            new_cls = "bare" if rng.random() < 0.7 else "urban"
    bright = rng.uniform(0.8, 1.2, (size, size)).astype(np.float32)
    truth = np.zeros((t, n_bands, size, size), np.float32)
    n_years = int(year.max()) + 1
    for k, cls in enumerate(CLASSES):
        m = cls_map == k
        if not m.any():
            continue
        npx = int(m.sum())
        sos_j = rng.normal(0, 6, (n_years, 1)) + rng.normal(0, 4, (1, npx))  # per year and per pixel
        eos_j = rng.normal(0, 6, (n_years, 1)) + rng.normal(0, 4, (1, npx))
        fc = _cover(cls, doy[:, None], sos_j[year], eos_j[year]) if PHENOLOGY[cls] else np.zeros((t, npx))
        if cls == "water":
            refl = np.broadcast_to(WATER[None, :, None], (t, 10, npx)) * rng.uniform(0.8, 1.2, (1, 1, npx))
            vv, vh = np.full((t, npx), -22.0), np.full((t, npx), -28.0)
        elif cls == "urban":
            refl = np.broadcast_to(URBAN[None, :, None], (t, 10, npx)) * rng.uniform(0.85, 1.15, (1, 1, npx))
            vv, vh = np.full((t, npx), -5.0), np.full((t, npx), -12.0)
        else:
            refl = fc[:, None] * VEG[None, :, None] + (1 - fc[:, None]) * bright[m][None, None] * SOIL[None, :, None]
            vv, vh = -13.0 + 6.0 * fc, -21.0 + 8.0 * fc
        truth[:, :10, m] = refl
        truth[:, 10, m], truth[:, 11, m] = vv, vh
    if new_cls is not None:  # overwrite post-change dates in the changed cell
        post = np.arange(t) >= change_t
        npx = int(change.sum())
        if new_cls == "bare":
            refl = bright[change][None] * SOIL[:, None] * rng.uniform(0.95, 1.1, (1, npx))
            vv, vh = -15.0, -24.0
        else:
            refl, vv, vh = URBAN[:, None] * rng.uniform(0.85, 1.15, (1, npx)), -5.0, -12.0
        for i in np.flatnonzero(post):
            truth[i, :10][:, change] = refl
            truth[i, 10][change], truth[i, 11][change] = vv, vh
    truth[:, :10] += rng.normal(0, 0.004, truth[:, :10].shape)
    speckle = rng.gamma(looks, 1.0 / looks, truth[:, 10:].shape)
    truth[:, 10:] += 10 * np.log10(speckle)
    truth[:, :10] = np.clip(truth[:, :10], 0.0, 1.0)
    # clouds: AR(1) smooth field, thresholded at a per-date cover fraction
    cloud = np.zeros((t, size, size), bool)
    shadow = np.zeros((t, size, size), bool)
    field = _smooth_field(rng, size, 3)
    z = rng.standard_normal()
    dy, dx = rng.integers(1, 4, 2) * rng.choice([-1, 1], 2)
    for i in range(t):
        if i:
            r = np.exp(-(days[i] - days[i - 1]) / 40.0)
            field = r * field + np.sqrt(1 - r * r) * _smooth_field(rng, size, 3)
            rz = np.exp(-(days[i] - days[i - 1]) / 60.0)
            z = rz * z + np.sqrt(1 - rz * rz) * rng.standard_normal()
        cover = float(np.clip(cloud_rate + 0.4 * z, 0.0, 0.95)) if cloud_rate > 0 else 0.0
        if cover > 0.05:
            cloud[i] = field > np.quantile(field, 1 - cover)
            shadow[i] = np.roll(cloud[i], (dy, dx), (0, 1)) & ~cloud[i]
    cloudy = truth.copy()
    opacity = rng.uniform(0.7, 1.0, (t, 1, size, size)).astype(np.float32)
    white = rng.uniform(0.35, 0.6, (t, 1, 1, 1)).astype(np.float32)
    c4 = cloud[:, None]
    cloudy[:, :10] = np.where(c4, (1 - opacity) * truth[:, :10] + opacity * white, cloudy[:, :10])
    cloudy[:, :10] = np.where(shadow[:, None], truth[:, :10] * 0.35, cloudy[:, :10])
    return {
        "truth": truth,
        "cloudy": cloudy,
        "cloud": cloud | shadow,
        "days": days,
        "doy": doy,
        "change": change,
        "classes": cls_map,
    }


def make_synthetic(
    n: int = 256,
    *,
    size: int = 16,
    t: int = 16,
    years: float = 2.0,
    cloud_rate: float = 0.2,
    p_change: float = 0.5,
    looks: float = 8.0,
    seed: int = 0,
    max_values: int = MAX_VALUES,
) -> SITS:
    """Generate ``n`` synthetic scenes.

    Args:
        n: number of scenes.
        size: image side ``H = W`` in pixels.
        t: acquisitions per scene.
        years: time span of each series.
        cloud_rate: mean cloud cover per date (0 disables clouds).
        p_change: fraction of scenes with an injected land-cover change.
        looks: SAR equivalent number of looks (speckle strength).
        seed: RNG seed (the data are a pure function of the arguments).
        max_values: the most numbers one ``[N, T, C, H, W]`` array may hold (``n * t * 12 * size**2``).

    Raises:
        ValueError: an argument out of range (``n >= 1``, ``size >= 2``, ``t >= 3`` so that a change has dates
            before and after it, ``0 < years <= 1000``, ``cloud_rate`` and ``p_change`` in [0, 1], ``looks > 0``,
            ``seed >= 0``, the size limit), naming the argument and its value.

    Returns:
        :class:`SITS` with truth ``values`` (cloud-free), ``observed`` (NaN under clouds/shadows on S2 bands),
        ``cloud [N, T, H, W]``, ``cloudy`` (raw contaminated images), ``change [N, H, W]`` and
        ``extra["classes"] [N, H, W]``.
    """
    where = "make_synthetic"
    n = check_int(n, name="n", lo=1, where=where)
    size = check_int(size, name="size", lo=2, where=where)
    t = check_int(t, name="t", lo=3, where=where)
    check_int(seed, name="seed", lo=0, where=where)
    years = check_float(years, name="years", lo=0.0, hi=1000.0, open_lo=True, where=where)
    cloud_rate = check_float(cloud_rate, name="cloud_rate", lo=0.0, hi=1.0, where=where)
    p_change = check_float(p_change, name="p_change", lo=0.0, hi=1.0, where=where)
    looks = check_float(looks, name="looks", lo=0.0, hi=1e6, open_lo=True, where=where)
    total = n * t * len(BANDS) * size * size
    if total > max_values:
        raise ValueError(
            f"{where}: n={n}, t={t}, size={size} give {total} values per array, more than max_values={max_values}"
        )
    rng = np.random.default_rng(seed)
    scenes = [_scene(rng, size, t, years, cloud_rate, p_change, looks) for _ in range(n)]
    stack = {k: np.stack([s[k] for s in scenes]) for k in scenes[0]}
    observed = stack["truth"].copy()
    observed[:, :, :10] = np.where(stack["cloud"][:, :, None], np.nan, observed[:, :, :10])
    return SITS(
        values=stack["truth"],
        observed=observed,
        days=stack["days"],
        doy=stack["doy"],
        bands=list(BANDS),
        change=stack["change"],
        cloud=stack["cloud"],
        cloudy=stack["cloudy"],
        source=f"synthetic(seed={seed})",
        extra={"classes": stack["classes"]},
    )
