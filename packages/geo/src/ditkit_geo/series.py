"""The in-memory form every loader returns: a batch of satellite image time series with its masks.

Conventions (shared by loaders, the tokenizer, tasks and metrics):

* ``values [N, T, C, H, W]`` float32: the truth; ``NaN`` where no truth exists (no-data, or a cloud in real data).
  No-data never becomes a training target: the validity mask is ``isfinite(values)``.
* ``observed [N, T, C, H, W]`` float32: what a user would condition on; ``NaN`` where not usable (cloud, shadow,
  no-data). For real data without cloud-free truth ``observed`` is ``values``.
* ``days [N, T]`` float: acquisition day counted from a common origin, strictly increasing per series.
  ``doy [N, T]``: day of year in [0, 365) (season). Pixel series (Presto) are images with ``H = W = 1``.
* ``bands``: channel names; ``change [N, H, W]`` bool ground truth and ``cloud [N, T, H, W]`` bool are optional.

Handling of awkward inputs (documented behaviour, tested):

* every :class:`SITS` is validated when built: values must be real numbers (complex and non-numeric dtypes raise),
  NaN is the only missing marker (infinity and finite values beyond float32 range raise), days and day of year must
  be known (no NaN) and in range, masks must be 0 / 1. Errors are :class:`~ditkit_core.errors.DataError` naming
  ``source``, the field with the position of the first bad entry, and the value.
* unsorted dates are sorted (with every per-date array) by :meth:`SITS.sorted`; repeated dates raise.
* a band-count mismatch between arrays and ``bands`` raises, naming the field and both counts.
* an all-cloud series is kept: it has truth targets (or none) but no optical condition; the model then relies on
  SAR, the other dates and its prior. A series with no finite value at all is dropped by :meth:`SITS.usable`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ditkit_core.errors import DataError
from ditkit_geo.checks import check_days, check_mask, check_values, number


@dataclass
class SITS:
    """A batch of image time series (see the module docstring for the conventions).

    Attributes:
        values: truth ``[N, T, C, H, W]``, NaN = unknown.
        observed: usable observations ``[N, T, C, H, W]``, NaN = missing.
        days: acquisition days ``[N, T]``.
        doy: day of year ``[N, T]``.
        bands: ``C`` channel names.
        change: optional change ground truth ``[N, H, W]`` bool.
        cloud: optional cloud / shadow mask ``[N, T, H, W]`` bool (True = contaminated).
        cloudy: optional raw cloudy observation ``[N, T, C, H, W]`` (for figures).
        source: where the arrays came from (used in error messages).
    """

    values: np.ndarray
    observed: np.ndarray
    days: np.ndarray
    doy: np.ndarray
    bands: list[str]
    change: np.ndarray | None = None
    cloud: np.ndarray | None = None
    cloudy: np.ndarray | None = None
    source: str = "<memory>"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        src, v = self.source, self.values
        if not isinstance(v, np.ndarray) or v.ndim != 5:
            raise DataError("values must be [N, T, C, H, W]", path=src, field="values.shape", value=np.shape(v))
        n, t, c, h, w = v.shape
        if self.observed.shape != v.shape:
            raise DataError(
                f"observed shape differs from values {v.shape}",
                path=src,
                field="observed.shape",
                value=self.observed.shape,
            )
        if len(self.bands) != c:
            raise DataError(
                f"{c} channels in the arrays but {len(self.bands)} band names",
                path=src,
                field="bands",
                value=list(self.bands),
            )
        for name in ("days", "doy"):
            a = getattr(self, name)
            if np.shape(a) != (n, t):
                raise DataError(f"must be [N, T]=({n}, {t})", path=src, field=f"{name}.shape", value=np.shape(a))
        if self.change is not None and self.change.shape != (n, h, w):
            raise DataError(
                f"must be [N, H, W]=({n}, {h}, {w})", path=src, field="change.shape", value=self.change.shape
            )
        if self.cloud is not None and self.cloud.shape != (n, t, h, w):
            raise DataError(
                f"must be [N, T, H, W]=({n}, {t}, {h}, {w})", path=src, field="cloud.shape", value=self.cloud.shape
            )
        if self.cloudy is not None and self.cloudy.shape != v.shape:
            raise DataError(
                f"must be [N, T, C, H, W]={v.shape}", path=src, field="cloudy.shape", value=self.cloudy.shape
            )
        bands = list(self.bands)
        self.values = check_values(self.values, path=src, field="values", bands=bands)
        self.observed = check_values(self.observed, path=src, field="observed", bands=bands)
        if self.cloudy is not None:
            self.cloudy = check_values(self.cloudy, path=src, field="cloudy", bands=bands)
        self.days = check_days(self.days, path=src, field="days").astype(np.float32)
        self.doy = check_days(self.doy, path=src, field="doy", lo=0.0, hi=366.0, upper_open=True).astype(np.float32)
        if self.change is not None:
            self.change = check_mask(self.change, path=src, field="change", axes=("series", "row", "col"))
        if self.cloud is not None:
            self.cloud = check_mask(self.cloud, path=src, field="cloud", axes=("series", "date", "row", "col"))

    @property
    def shape(self) -> tuple[int, int, int, int, int]:
        return tuple(self.values.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.values.shape[0]

    def subset(self, index: np.ndarray | slice) -> SITS:
        """Series selected by ``index`` along N."""
        opt = {
            k: (None if getattr(self, k) is None else getattr(self, k)[index]) for k in ("change", "cloud", "cloudy")
        }
        n = len(self)
        extra = {
            k: (v[index] if isinstance(v, np.ndarray) and v.ndim and len(v) == n else v) for k, v in self.extra.items()
        }  # per-series arrays (is_test, latlon) follow the selection
        return replace(
            self,
            values=self.values[index],
            observed=self.observed[index],
            days=self.days[index],
            doy=self.doy[index],
            extra=extra,
            **opt,
        )

    def sorted(self) -> SITS:
        """Sort every series by acquisition day (all per-date arrays follow); repeated days raise DataError."""
        order = np.argsort(self.days, axis=1, kind="stable")  # [N, T]
        d = np.take_along_axis(self.days, order, 1)
        if (np.diff(d, axis=1) <= 0).any():
            i, j = np.argwhere(np.diff(d, axis=1) <= 0)[0]
            raise DataError(
                "repeated acquisition day (dates must be distinct; merge or drop duplicate acquisitions first)",
                path=self.source,
                field=f"days[series {i}]",
                value=float(d[i, j]),
            )
        if (order == np.arange(order.shape[1])).all():
            return self

        def take(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            idx = order.reshape(order.shape + (1,) * (a.ndim - 2))
            return np.take_along_axis(a, idx, 1)

        return replace(
            self,
            values=take(self.values),
            observed=take(self.observed),
            days=d,
            doy=take(self.doy),
            cloud=take(self.cloud),
            cloudy=take(self.cloudy),
        )

    def usable(self) -> SITS:
        """Drop series that hold no finite value at all (nothing to condition on nor to learn)."""
        keep = np.isfinite(self.values).reshape(len(self), -1).any(1)
        if not keep.any():
            raise DataError("every series is entirely NaN / no-data", path=self.source, field="values")
        return self if keep.all() else self.subset(np.flatnonzero(keep))

    def select_bands(self, bands: list[str]) -> SITS:
        """Reorder / select channels by name; missing names raise with the available ones."""
        missing = [b for b in bands if b not in self.bands]
        if missing:
            raise DataError(f"not found; available: {self.bands}", path=self.source, field="bands", value=missing)
        idx = [self.bands.index(b) for b in bands]
        cloudy = None if self.cloudy is None else self.cloudy[:, :, idx]
        return replace(
            self, values=self.values[:, :, idx], observed=self.observed[:, :, idx], bands=list(bands), cloudy=cloudy
        )


@dataclass
class Normalizer:
    """Per-channel ``(x - mean) / std``; statistics ignore NaN (no-data)."""

    mean: list[float]
    std: list[float]

    def __post_init__(self) -> None:
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        if mean.ndim != 1 or mean.shape != std.shape:
            raise ValueError(f"Normalizer: mean {mean.shape} and std {std.shape} must be lists of equal length")
        if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
            raise ValueError(f"Normalizer: mean={self.mean} and std={self.std} must be finite with std > 0")

    @classmethod
    def fit(cls, data: SITS) -> Normalizer:
        c = data.values.shape[2]
        mean, std = np.zeros(c), np.zeros(c)
        for i in range(c):  # float64 per channel: float32 sums and deviations overflow near the float32 limit
            v = data.values[:, :, i].astype(np.float64)
            with np.errstate(all="ignore"):
                mean[i], std[i] = np.nanmean(v), np.nanstd(v)
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls([float(m) for m in mean], [float(s) for s in std])

    def _ms(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = (1, 1, len(self.mean), 1, 1) if x.ndim == 5 else (len(self.mean), 1, 1)
        return np.asarray(self.mean, np.float32).reshape(shape), np.asarray(self.std, np.float32).reshape(shape)

    def apply(self, data: SITS) -> SITS:
        """Normalised copy of ``data``.

        Raises:
            DataError: a channel count mismatch, or a value whose normalised form overflows float32 (data far
                outside the range the statistics were fitted on), naming the source, field and position.
        """
        if len(self.mean) != data.values.shape[2]:
            raise DataError(
                f"Normalizer has {len(self.mean)} channels", path=data.source, field="bands", value=data.bands
            )
        m, s = self._ms(data.values)

        def norm(x: np.ndarray, field: str) -> np.ndarray:
            with np.errstate(over="ignore"):
                y = (x - m) / s
            if not np.isinf(y).any():  # inputs are finite or NaN (checked by SITS), so inf is an overflow
                return y
            y = (x.astype(np.float64) - m.astype(np.float64)) / s.astype(np.float64)  # x - m may overflow alone
            over = np.abs(y) > np.finfo(np.float32).max
            if over.any():
                i = np.unravel_index(int(over.argmax()), y.shape)
                raise DataError(
                    f"normalised value overflows float32 (channel mean {self.mean[i[2]]:g}, std {self.std[i[2]]:g})",
                    path=data.source,
                    field=f"{field}[series {i[0]}, date {i[1]}, band {data.bands[i[2]]}, row {i[3]}, col {i[4]}]",
                    value=number(x[i]),
                )
            return y.astype(np.float32)

        cloudy = None if data.cloudy is None else norm(data.cloudy, "cloudy")
        return replace(
            data, values=norm(data.values, "values"), observed=norm(data.observed, "observed"), cloudy=cloudy
        )

    def invert(self, x: np.ndarray) -> np.ndarray:
        """Normalised ``[..., C, H, W]`` (5-D or 3-D) back to physical units."""
        m, s = self._ms(x)
        return x * s + m
