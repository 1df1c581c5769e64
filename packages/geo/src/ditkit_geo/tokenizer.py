"""Tokens over (time, band group, spatial patch) for satellite image time series.

A token holds the values of one band group in one ``patch x patch`` spatial patch at one date, flattened and
zero-padded to the widest group: ``token_dim = max_group_size * patch ** 2``. Tokens are ordered
``(t, g, py, px)``. Beside ``x`` the tokenizer returns, per token, an element mask of valid truth and the condition
channels ``x_cond`` (the DiT's ``cond_channels``): the observed (given) values and their mask, the priors, and fixed
features: a one-hot band group (a learned band-group embedding once
multiplied by the DiT's condition projection) and day-of-year harmonics. ``pos [b, n, 3]`` = (months since the first
date, patch row, patch column) for 3-axis RoPE.

Priors (condition channels computed from the given values only, so they carry no information the model could not
derive itself, but spare it learning the derivation): ``interp``, linear temporal interpolation of the given values
(PriSTI's interpolated conditional input); ``seasonal``, the given value about one year earlier (a DeepAR-style
seasonal lag; the interpolation when there is none); ``median``, the per-pixel, per-band median of the given dates (a
level robust to cloud outliers). Each prior adds ``token_dim`` condition channels.

Level normalisation (``level="median"``, RevIN-style, Kim et al. 2022): every value the model sees or produces
(truth, given values, priors) is taken relative to the per-series, per-band, per-pixel median of the given dates
(``"median_mad"`` also divides by the robust spread of those dates), and :meth:`SITSTokenizer.decode` undoes it.
The model then learns deviations from a pixel's own level, which carries over to places whose level the training
set never showed.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor

from ditkit_core.tokenizers import TokenBatch
from ditkit_geo.metrics import given_median, linear_interpolation, seasonal_naive

PRIORS = ("interp", "seasonal", "median")

GROUP_PRESETS: dict[str, dict[str, list[str]]] = {
    "synthetic": {
        "VIS": ["B2", "B3", "B4"],
        "RE": ["B5", "B6", "B7"],
        "NIR": ["B8", "B8A"],
        "SWIR": ["B11", "B12"],
        "SAR": ["VV", "VH"],
    },
    "presto": {
        "S1": ["VV", "VH"],
        "RGB": ["B2", "B3", "B4"],
        "RE": ["B5", "B6", "B7"],
        "NIR": ["B8", "B8A", "B9"],
        "SWIR": ["B11", "B12"],
        "ERA5": ["temperature_2m", "total_precipitation"],
        "SRTM": ["elevation", "slope"],
        "NDVI": ["NDVI"],
    },
}
STATIC_PRESETS: dict[str, list[str]] = {"synthetic": [], "presto": ["SRTM"]}
OPTICAL_PRESETS: dict[str, list[str]] = {
    "synthetic": ["VIS", "RE", "NIR", "SWIR"],
    "presto": ["RGB", "RE", "NIR", "SWIR", "NDVI"],
}


class SITSTokenizer:
    """Encodes cube batches ``[b, T, C, H, W]`` into (time, band group, patch) tokens and back.

    Args:
        groups: band groups ``{name: [band, ...]}`` in channel order, or a preset name (``synthetic``, ``presto``).
        patch: spatial patch side (must divide ``H`` and ``W``).
        static_groups: groups constant over time (always given when observed; never masked by tasks).
        optical_groups: groups affected by clouds (the cloud-removal task hides these).
        doy_harmonics: number of day-of-year sine/cosine pairs in the token features.
        priors: condition channels derived from the given values (subset of :data:`PRIORS`, see the module
            docstring); ``[]`` gives the plain ``[given values, given mask, features]`` condition channels.
        location: add the series' location (``latlon [b, 2]`` degrees in the batch) to the token features, as the
            3-D unit vector on the sphere (smooth, no seam at the antimeridian).
        level: ``"median"`` for per-pixel level normalisation (see the module docstring), ``"median_mad"`` to also
            divide by the pixel's robust spread (1.4826 x median absolute deviation of the given dates, at least
            0.1), or None.
    """

    def __init__(
        self,
        groups: dict[str, list[str]] | str = "synthetic",
        patch: int = 4,
        static_groups: list[str] | None = None,
        optical_groups: list[str] | None = None,
        doy_harmonics: int = 2,
        priors: list[str] | tuple[str, ...] = PRIORS,
        location: bool = False,
        level: str | None = None,
    ):
        preset = groups if isinstance(groups, str) else None
        if preset is not None and preset not in GROUP_PRESETS:
            raise ValueError(f"SITSTokenizer.groups={preset!r}: unknown preset; choose one of {sorted(GROUP_PRESETS)}")
        self.groups = groups
        self.patch, self.doy_harmonics = int(patch), int(doy_harmonics)
        self.static_groups = static_groups
        self.optical_groups = optical_groups
        table = GROUP_PRESETS[preset] if preset else dict(groups)
        if not table or any(len(v) == 0 for v in table.values()):
            raise ValueError(f"SITSTokenizer.groups: every group needs at least one band, got {table}")
        self.group_table = table
        self.group_names = list(table)
        self.bands = [b for g in table.values() for b in g]
        if len(set(self.bands)) != len(self.bands):
            raise ValueError(f"SITSTokenizer.groups: a band appears in two groups: {table}")
        static = static_groups if static_groups is not None else (STATIC_PRESETS[preset] if preset else [])
        optical = optical_groups if optical_groups is not None else (OPTICAL_PRESETS[preset] if preset else [])
        for name, lst in (("static_groups", static), ("optical_groups", optical)):
            bad = [g for g in lst if g not in table]
            if bad:
                raise ValueError(f"SITSTokenizer.{name}: unknown groups {bad}; groups are {self.group_names}")
        self.static_names, self.optical_names = list(static), list(optical)
        bad = [q for q in priors if q not in PRIORS]
        if bad:
            raise ValueError(f"SITSTokenizer.priors: unknown priors {bad}; choose among {list(PRIORS)}")
        self.priors = list(priors)
        if level not in (None, "median", "median_mad"):
            raise ValueError(f"SITSTokenizer.level={level!r}: must be 'median', 'median_mad' or null")
        self.level = level
        self.min_scale = 0.1  # z-score units: the floor of the "median_mad" scale (static bands have MAD 0)
        self.group_sizes = [len(v) for v in table.values()]
        self.width = max(self.group_sizes)
        self.token_dim = self.width * self.patch**2
        self.num_groups = len(table)
        self.location = bool(location)
        self.feature_dim = self.num_groups + 2 * self.doy_harmonics + (3 if self.location else 0)
        # per-channel index of its group; used by the task masks
        self.channel_group = torch.tensor([gi for gi, g in enumerate(table.values()) for _ in g])

    @property
    def cond_channels(self) -> int:
        """Width of the per-token condition channels ``x_cond``: given values, given mask, priors, features."""
        return (2 + len(self.priors)) * self.token_dim + self.feature_dim

    def group_channel_mask(self, names: list[str]) -> Tensor:
        """``[C]`` bool: channels belonging to the named groups."""
        idx = [self.group_names.index(n) for n in names]
        return torch.isin(self.channel_group, torch.tensor(idx, dtype=torch.long))

    # ------------------------------------------------------------------ cube <-> tokens
    def _to_tokens(self, cube: Tensor) -> Tensor:
        """``[b, T, C, H, W]`` -> ``[b, n, token_dim]`` (zero padding in short groups)."""
        b, t, c, h, w = cube.shape
        if c != len(self.bands):
            raise ValueError(f"SITSTokenizer: got {c} channels, the groups define {len(self.bands)} ({self.bands})")
        p = self.patch
        if h % p or w % p:
            raise ValueError(f"SITSTokenizer: image {h}x{w} is not divisible by patch={p}")
        out, start = [], 0
        for size in self.group_sizes:
            g = cube[:, :, start : start + size]  # [b, t, size, h, w]
            g = rearrange(g, "b t c (py p1) (px p2) -> b t py px (c p1 p2)", p1=p, p2=p)
            pad = self.token_dim - g.shape[-1]
            out.append(torch.nn.functional.pad(g, (0, pad)) if pad else g)
            start += size
        tok = torch.stack(out, 2)  # [b, t, g, py, px, d]
        return rearrange(tok, "b t g py px d -> b (t g py px) d")

    def _to_cube(self, tokens: Tensor, t: int, h: int, w: int) -> Tensor:
        """Inverse of :meth:`_to_tokens`."""
        p = self.patch
        tok = rearrange(tokens, "b (t g py px) d -> b t g py px d", t=t, g=self.num_groups, py=h // p, px=w // p)
        chans = []
        for gi, size in enumerate(self.group_sizes):
            g = tok[:, :, gi, ..., : size * p * p]
            chans.append(rearrange(g, "b t py px (c p1 p2) -> b t c (py p1) (px p2)", c=size, p1=p, p2=p))
        return torch.cat(chans, 2)

    def features(self, doy: Tensor, h: int, w: int, latlon: Tensor | None = None) -> Tensor:
        """Per-token fixed features ``[b, n, G + 2 * harmonics (+ 3)]``: one-hot group, day-of-year harmonics and,
        with ``location``, the unit vector of ``latlon [b, 2]`` (degrees)."""
        b, t = doy.shape
        p = self.patch
        npatch = (h // p) * (w // p)
        onehot = torch.eye(self.num_groups, dtype=torch.float32, device=doy.device)  # [g, g]
        onehot = onehot[None, None, :, None].expand(b, t, -1, npatch, -1)
        k = torch.arange(1, self.doy_harmonics + 1, device=doy.device, dtype=torch.float32)
        ang = 2 * math.pi * doy.float()[..., None] / 365.0 * k  # [b, t, K]
        harm = torch.cat([ang.sin(), ang.cos()], -1)[:, :, None, None].expand(-1, -1, self.num_groups, npatch, -1)
        parts = [onehot, harm]
        if self.location:
            if latlon is None or latlon.shape != (b, 2) or not torch.isfinite(latlon).all():
                got = None if latlon is None else tuple(latlon.shape)
                raise ValueError(
                    f"SITSTokenizer(location=True): the batch needs finite latlon [b, 2]=[{b}, 2] (degrees), got {got}"
                )
            lat, lon = torch.deg2rad(latlon.float()).unbind(-1)
            unit = torch.stack([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()], -1)  # [b, 3]
            parts.append(unit[:, None, None, None].expand(-1, t, self.num_groups, npatch, -1))
        return rearrange(torch.cat(parts, -1), "b t g n f -> b (t g n) f")

    def positions(self, days: Tensor, h: int, w: int) -> Tensor:
        """``[b, n, 3]``: (months since first date, patch row, patch column)."""
        b, t = days.shape
        p = self.patch
        py, px = torch.meshgrid(
            torch.arange(h // p, device=days.device), torch.arange(w // p, device=days.device), indexing="ij"
        )
        months = (days - days[:, :1]).float() / 30.4375  # [b, t]
        tt = months[:, :, None, None].expand(-1, -1, self.num_groups, py.numel())
        yy = py.reshape(1, 1, 1, -1).float().expand_as(tt)
        xx = px.reshape(1, 1, 1, -1).float().expand_as(tt)
        return rearrange(torch.stack([tt, yy, xx], -1), "b t g n k -> b (t g n) k")

    def prior_cubes(self, observed: Tensor, given: Tensor, days: Tensor) -> dict[str, Tensor]:
        """The configured priors from the ``given`` entries of ``observed`` (0 where undefined), each computed once:
        ``interp`` / ``seasonal`` ``[b, T, C, H, W]`` (the seasonal lag falls back on the interpolation) and
        ``median`` ``[b, 1, C, H, W]`` (also the level of ``level`` normalisation)."""
        need = set(self.priors) | ({"median"} if self.level is not None else set())
        out: dict[str, Tensor] = {}
        if need & {"interp", "seasonal"}:
            out["interp"] = linear_interpolation(observed, given, days)
        if "seasonal" in need:
            out["seasonal"] = seasonal_naive(observed, given, days, fallback=out["interp"])
        if "median" in need:
            out["median"] = given_median(observed, given)
        return out

    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        """Cube batch -> tokens.

        Args:
            raw: ``values [b, T, C, H, W]`` (NaN = no truth), ``days [b, T]``, ``doy [b, T]``; optional
                ``observed`` (NaN = missing; default ``values``) and ``given [b, T, C, H, W]`` bool (the task's
                condition mask; default: every observed entry).

        Returns:
            ``TokenBatch`` with ``x`` = truth tokens (0 where unknown), ``pos``, ``known_mask`` = entries that are
            NOT a training target (given, no-data or padding), ``x_cond [b, n, cond_channels]`` = the condition
            channels ``[given values, given mask, priors, features]``, and ``meta``: ``given`` / ``cond`` (given
            values) element tensors like ``x``, ``valid`` (truth exists), ``priors [b, n, len(priors) * token_dim]``,
            ``features``, and the cube shape.
        """
        values = raw["values"].float()
        b, t, c, h, w = values.shape
        observed = raw.get("observed", values).float()
        if observed.shape != values.shape:
            raise ValueError(f"SITSTokenizer: observed {tuple(observed.shape)} != values {tuple(values.shape)}")
        valid = torch.isfinite(values)
        obs_ok = torch.isfinite(observed)
        given = raw.get("given")
        given = obs_ok if given is None else (given.bool() & obs_ok)
        x = self._to_tokens(torch.nan_to_num(values, nan=0.0))
        valid_t = self._to_tokens(valid.float()) > 0.5
        given_t = self._to_tokens(given.float()) > 0.5
        cond = self._to_tokens(torch.where(given, torch.nan_to_num(observed, nan=0.0), torch.zeros_like(observed)))
        target = valid_t & ~given_t
        cubes = self.prior_cubes(observed, given, raw["days"])
        prior = [self._to_tokens(cubes[name].expand_as(observed)) for name in self.priors]
        level = scale = None
        if self.level is not None:
            med = cubes["median"]  # [b, 1, C, H, W]
            level = self._to_tokens(med.expand_as(observed))
            if self.level == "median_mad":
                mad = given_median((observed - med).abs(), given)
                scale = self._to_tokens((1.4826 * mad).clamp_min(self.min_scale).expand_as(observed))
                scale = scale + (scale == 0).to(scale)  # padding slots
            inv = 1.0 if scale is None else 1.0 / scale
            x, cond = (x - level) * inv * valid_t, (cond - level) * inv * given_t
            prior = [(p - level) * inv for p in prior]
        prior = torch.cat(prior, -1) if prior else x.new_zeros(b, x.shape[1], 0)
        features = self.features(raw["doy"], h, w, raw.get("latlon"))
        x_cond = torch.cat([cond, given_t.to(cond.dtype), prior.to(cond.dtype), features.to(cond.dtype)], -1)
        meta = {
            "level": level,
            "scale": scale,
            "given": given_t,
            "cond": cond,
            "valid": valid_t,
            "priors": prior,
            "features": features,
            "shape": (t, h, w),
            "days": raw["days"],
            "doy": raw["doy"],
        }
        return TokenBatch(x=x, pos=self.positions(raw["days"], h, w), known_mask=~target, x_cond=x_cond, meta=meta)

    def decode(self, tokens: TokenBatch) -> dict[str, Tensor]:
        """Tokens -> ``{"values": [b, T, C, H, W]}`` (padding dropped; the level added back when normalised)."""
        t, h, w = tokens.meta["shape"]
        level, scale = tokens.meta.get("level"), tokens.meta.get("scale")
        x = tokens.x if scale is None else tokens.x * scale.to(tokens.x)
        x = x if level is None else x + level.to(x)
        return {"values": self._to_cube(x, t, h, w)}
