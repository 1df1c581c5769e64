"""On-disk ``.npz`` caches (conformers, SELFIES encodings): written atomically, checked when read, rebuilt when corrupt.

A cache is written to a temporary file next to its final name and renamed (:func:`ditkit_core.errors.atomic_save`),
so a run killed mid-write never leaves a truncated cache. A cache found on disk is read without pickles and checked
(:func:`load_cache`: every array present with the expected shape, dtype and range); an unreadable or inconsistent
cache is named in a ``WARNING`` and the caller rebuilds it, overwriting the bad file.
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ditkit_core.errors import atomic_save

log = logging.getLogger(__name__)

MAX_CACHE_BYTES = 4 << 30
"""Caches whose arrays would take more than this (4 GiB, from the zip directory) are refused before reading."""


class CacheError(ValueError):
    """A cache array fails its check (raised by the checks, caught by :func:`load_cache`)."""


def expect(
    arrays: dict[str, np.ndarray],
    key: str,
    kinds: str,
    shape: tuple[int | None, ...],
    lo: float | None = None,
    hi: float | None = None,
) -> np.ndarray:
    """``arrays[key]`` if its dtype kind is in ``kinds``, its shape matches ``shape`` (None: any length) and its
    values are finite and within ``[lo, hi]``; else :class:`CacheError` naming the array."""
    a = arrays[key]
    if a.dtype.kind not in kinds:
        raise CacheError(f"array {key!r} has dtype {a.dtype}, expected kind {kinds!r}")
    if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, a.shape)):
        raise CacheError(f"array {key!r} has shape {list(a.shape)}, expected {list(shape)}")
    if a.dtype.kind in "iuf" and a.size:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise CacheError(f"array {key!r} holds NaN or infinite values")
        if (lo is not None and a.min() < lo) or (hi is not None and a.max() > hi):
            raise CacheError(f"array {key!r} has values outside [{lo}, {hi}]")
    return a


def load_cache(
    path: str | os.PathLike, keys: tuple[str, ...], check: Callable[[dict[str, np.ndarray]], None]
) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file, or None when it is absent or corrupt (a ``WARNING`` names the file and the
    fault; the caller rebuilds the cache).

    Args:
        path: the ``.npz`` file.
        keys: arrays it must hold.
        check: raises :class:`CacheError` (or any ``ValueError`` / ``KeyError``) when the arrays are inconsistent.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            size = sum(i.file_size for i in zf.infolist())
        if size > MAX_CACHE_BYTES:
            raise CacheError(f"arrays of {size} bytes exceed the {MAX_CACHE_BYTES}-byte limit")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise CacheError(f"arrays {missing} missing")
            arrays = {k: z[k] for k in keys}
        check(arrays)
    except MemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - truncated zip, bad header, pickled arrays, failed checks: all rebuild
        log.warning("corrupt cache %s (%s: %s): rebuilding it", path, type(e).__name__, e)
        return None
    return arrays


def save_cache(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` as a compressed ``.npz``, atomically (temporary file + rename)."""
    return atomic_save(path, lambda tmp: np.savez_compressed(tmp, **arrays), suffix=".npz")
