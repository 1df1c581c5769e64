"""Checks shared by the loaders: numeric cubes, dates, band names, argument ranges and size-checked ``.npy`` reads.

Every check raises :class:`~ditkit_core.errors.DataError` naming the file, the field (with the position of the first
bad entry: series, date, band, row, column) and the value. Sizes declared by a header are checked against
``max_values`` before anything is allocated.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from collections.abc import Sequence
from typing import IO, Any

import numpy as np

from ditkit_core.errors import DataError, naming_file

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Largest finite float32; loaded values beyond it would overflow to infinity."""

MAX_VALUES = 1 << 28
"""Default limit on the numbers one loaded array (or one raster stack) may hold: 2**28, 1 GiB as float32."""

MAX_DAY = float(1 << 24)
"""Largest ``|day|`` accepted: days are stored as float32, exact for integers up to 2**24 (~45,900 years)."""

CUBE_AXES = ("series", "date", "band", "row", "col")
PathLike = str | os.PathLike | None


def number(x: Any) -> float:
    """A scalar as a Python float with the shortest repr of its own precision (float32 3e38 -> 3e+38)."""
    return float(str(x)) if isinstance(x, (np.float32, np.float16)) else float(x)


def _position(shape: tuple[int, ...], flat: int, axes: Sequence[str], bands: Sequence[str] | None) -> str:
    idx = np.unravel_index(flat, shape)
    parts = []
    for name, i in zip(axes, idx):
        parts.append(f"band {bands[int(i)]}" if name == "band" and bands is not None else f"{name} {int(i)}")
    return ", ".join(parts)


def check_real(a: Any, *, path: PathLike, field: str) -> np.ndarray:
    """``a`` as an array of real numbers (bool, int, float); complex and non-numeric dtypes raise DataError."""
    a = np.asarray(a)
    if np.iscomplexobj(a):
        raise DataError(
            f"complex values (dtype {a.dtype}) are not accepted: the imaginary part would be lost",
            path=path,
            field=field,
            value=str(a.dtype),
        )
    if a.dtype.kind not in "biuf":
        raise DataError(f"expected real numbers, got dtype {a.dtype}", path=path, field=field, value=str(a.dtype))
    return a


def check_values(
    a: Any,
    *,
    path: PathLike,
    field: str = "values",
    axes: Sequence[str] = CUBE_AXES,
    bands: Sequence[str] | None = None,
) -> np.ndarray:
    """Observation values -> float32. NaN (missing) is legal; infinity and finite values beyond float32 are not.

    Args:
        a: numeric array, any shape (its axes named by ``axes`` in messages).
        path, field: named in the error.
        axes: one name per axis (``band`` is shown by its name from ``bands``).
        bands: channel names for the ``band`` axis.

    Returns:
        float32 array (no copy when already float32).

    Raises:
        DataError: complex / non-numeric dtype, an infinite value, or a value beyond float32 range; the message
            names the position of the first one.
    """
    a = check_real(a, path=path, field=field)
    if a.dtype.kind == "f" and a.size:
        axes = list(axes)[-a.ndim :] if len(axes) >= a.ndim else [f"axis{i}" for i in range(a.ndim)]
        inf = np.isinf(a)
        if inf.any():
            i = int(inf.argmax())
            where = _position(a.shape, i, axes, bands)
            raise DataError(
                f"{int(inf.sum())} infinite value(s) (NaN marks missing data; infinity is not a measurement)",
                path=path,
                field=f"{field}[{where}]",
                value=number(a.flat[i]),
            )
        if a.dtype.itemsize > 4:
            with np.errstate(invalid="ignore"):
                big = np.abs(a) > FLOAT32_MAX
            if big.any():
                i = int(big.argmax())
                where = _position(a.shape, i, axes, bands)
                raise DataError(
                    f"{int(big.sum())} value(s) beyond float32 range (they would become infinite)",
                    path=path,
                    field=f"{field}[{where}]",
                    value=number(a.flat[i]),
                )
    return a.astype(np.float32, copy=False)


def check_days(
    a: Any,
    *,
    path: PathLike,
    field: str = "days",
    axes: Sequence[str] = ("series", "date"),
    lo: float = -MAX_DAY,
    hi: float = MAX_DAY,
    upper_open: bool = False,
    what: str = "date",
) -> np.ndarray:
    """Dates (days, day of year) -> float64: every entry known (no NaN / inf) and within ``[lo, hi]``.

    ``upper_open`` makes the range ``[lo, hi)``; ``what`` names the quantity in the message (date, coordinate).
    Raises DataError naming the first bad position. The default range keeps integer days exact in float32.
    """
    a = check_real(a, path=path, field=field).astype(np.float64)
    axes = list(axes)[-a.ndim :] if len(axes) >= a.ndim else [f"axis{i}" for i in range(a.ndim)]
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(bad.argmax())
        raise DataError(
            f"{int(bad.sum())} unknown {what}(s) (NaN / inf)" + (": every acquisition needs a date" * (what == "date")),
            path=path,
            field=f"{field}[{_position(a.shape, i, axes, None)}]",
            value=number(a.flat[i]),
        )
    out = (a < lo) | ((a >= hi) if upper_open else (a > hi))
    if out.any():
        i = int(out.argmax())
        rng = f"[{lo:.10g}, {hi:.10g}{')' if upper_open else ']'}"
        raise DataError(
            f"{int(out.sum())} value(s) outside {rng}",
            path=path,
            field=f"{field}[{_position(a.shape, i, axes, None)}]",
            value=number(a.flat[i]),
        )
    return a


def check_labels(
    a: Any, *, path: PathLike, field: str, lo: int, hi: int, axes: Sequence[str] = ("series", "date")
) -> np.ndarray:
    """Integer labels (months, flags) in ``[lo, hi]`` -> int64; NaN, fractions and out-of-range values raise."""
    a = check_real(a, path=path, field=field)
    axes = list(axes)[-a.ndim :] if len(axes) >= a.ndim else [f"axis{i}" for i in range(a.ndim)]
    f = a.astype(np.float64)
    bad = ~np.isfinite(f) | (f != np.round(f)) | (f < lo) | (f > hi)
    if bad.any():
        i = int(bad.argmax())
        raise DataError(
            f"{int(bad.sum())} value(s) that are not integers in [{lo}, {hi}]",
            path=path,
            field=f"{field}[{_position(a.shape, i, axes, None)}]",
            value=a.flat[i].item(),
        )
    return f.astype(np.int64)


def check_mask(a: Any, *, path: PathLike, field: str, axes: Sequence[str]) -> np.ndarray:
    """A 0 / 1 mask (bool, integer or float) -> bool; other values (NaN, 2, 0.5) raise DataError."""
    a = check_real(a, path=path, field=field)
    if a.dtype.kind == "b":
        return a
    return check_labels(a, path=path, field=field, lo=0, hi=1, axes=axes).astype(bool)


def check_bands(names: Any, *, path: PathLike, field: str = "bands", count: int | None = None) -> list[str]:
    """Channel names: strings (bytes must be UTF-8), not empty, distinct, ``count`` of them when given."""
    if isinstance(names, (str, bytes)):
        raise DataError("expected a list of names, got one string", path=path, field=field, value=names)
    if isinstance(names, np.ndarray):
        if names.ndim != 1:
            raise DataError("expected a 1-D list of names", path=path, field=f"{field}.shape", value=names.shape)
        items = names.tolist()
    else:
        items = list(names)
    out = []
    for i, b in enumerate(items):
        if isinstance(b, bytes):
            try:
                b = b.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError("band name is not UTF-8 text", path=path, field=f"{field}[{i}]", value=b) from e
        if not isinstance(b, str) or not b.strip():
            raise DataError("band names must be non-empty strings", path=path, field=f"{field}[{i}]", value=b)
        out.append(b)
    if len(set(out)) != len(out):
        dup = next(b for b in out if out.count(b) > 1)
        raise DataError("band names must be distinct", path=path, field=field, value=dup)
    if count is not None and len(out) != count:
        raise DataError(
            f"{len(out)} band names for {count} channels in the data", path=path, field=field, value=out[:20]
        )
    return out


def check_int(value: Any, *, name: str, lo: int, hi: int | None = None, where: str = "") -> int:
    """An integer argument in ``[lo, hi]``; the error names ``where``, the argument and its value."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{where}: {name}={value!r} must be an integer {rng}")
    return int(value)


def check_float(
    value: Any, *, name: str, lo: float, hi: float | None = None, open_lo: bool = False, where: str = ""
) -> float:
    """A finite real argument in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``); the error names it and its value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    bad = not math.isfinite(v) or isinstance(value, bool) or (v <= lo if open_lo else v < lo)
    if bad or (hi is not None and v > hi):
        rng = f"{'>' if open_lo else '>='} {lo}" + ("" if hi is None else f" and <= {hi}")
        raise ValueError(f"{where}: {name}={value!r} must be a finite number {rng}")
    return v


def _header(f: IO[bytes], *, path: PathLike, field: str) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise DataError(f"unsupported .npy format version {version}", path=path, field=field, value=version)
    return tuple(shape), dtype


def read_npy(f: IO[bytes], *, path: PathLike, field: str, available: int, max_values: int = MAX_VALUES) -> np.ndarray:
    """Read one ``.npy`` stream after checking its header: no Python objects, size within limits, not truncated.

    Args:
        f: seekable binary stream positioned at the start of the ``.npy`` data.
        path, field: named in errors (the file and the array / member).
        available: bytes the stream holds (file size, or a zip member's uncompressed size).
        max_values: the most numbers the header may declare.

    Raises:
        DataError: bad magic or header, object dtype (would unpickle), a hostile size, or a truncated body.
    """
    with naming_file(path, f"cannot read array {field!r}"):
        start = f.tell()
        shape, dtype = _header(f, path=path, field=field)
        body = available - (f.tell() - start)
        if dtype.hasobject:
            raise DataError(
                "holds Python objects (a pickle); refused, loading it could run code", path=path, field=field
            )
        if any(int(s) < 0 for s in shape):
            raise DataError("negative dimension in the header", path=path, field=f"{field}.shape", value=shape)
        count = math.prod(int(s) for s in shape)
        if count > max_values:
            raise DataError(
                f"header declares {count} values, more than the limit max_values={max_values}",
                path=path,
                field=f"{field}.shape",
                value=shape,
            )
        if count * dtype.itemsize > body:
            raise DataError(
                f"truncated: the header declares {count * dtype.itemsize} bytes of data, the file holds {body}",
                path=path,
                field=field,
                value=shape,
            )
        f.seek(start)
        return np.lib.format.read_array(f, allow_pickle=False)


def load_npy(path: str | os.PathLike, *, field: str | None = None, max_values: int = MAX_VALUES) -> np.ndarray:
    """``np.load`` of one ``.npy`` file with the header checks of :func:`read_npy` (errors name the file)."""
    field = field or os.path.splitext(os.path.basename(path))[0]
    with naming_file(path):
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            return read_npy(f, path=path, field=field, available=size, max_values=max_values)


def load_npy_bytes(data: bytes, *, path: PathLike, field: str, max_values: int = MAX_VALUES) -> np.ndarray:
    """:func:`read_npy` on bytes held in memory (an archive member)."""
    return read_npy(io.BytesIO(data), path=path, field=field, available=len(data), max_values=max_values)


def load_npz_members(
    path: str | os.PathLike,
    keys: Sequence[str] | None = None,
    prefix: str | None = None,
    *,
    max_values: int = MAX_VALUES,
    max_members: int = 256,
) -> dict[str, np.ndarray]:
    """Read arrays from an ``.npz`` (zip of ``.npy``) without ``np.load``'s unchecked allocation.

    Args:
        path: the ``.npz`` file.
        keys: array names to read (others are skipped); members whose name starts with ``prefix`` are read too.
        max_values: per-array limit; the arrays read together may hold at most ``4 * max_values`` numbers.
        max_members: the most members the archive may list.

    Returns:
        name -> array for the requested names that are present.
    """
    out: dict[str, np.ndarray] = {}
    with naming_file(path), zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise DataError(f"{len(infos)} members, more than the limit {max_members}", path=path, field="members")
        total = 0
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if not ((keys is not None and name in keys) or (prefix is not None and name.startswith(prefix))):
                continue
            with naming_file(path, f"cannot read array {name!r}"), zf.open(info) as m:
                a = read_npy(m, path=path, field=name, available=info.file_size, max_values=max_values)
            total += a.size
            if total > 4 * max_values:
                raise DataError(f"the arrays hold more than {4 * max_values} values", path=path, field=name)
            out[name] = a
    return out
