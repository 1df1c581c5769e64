"""Errors and checks for untrusted input: every loader reports bad data by file, line, field and value.

* :class:`DataError` is the one exception type a loader raises for bad input. Its message always starts with the
  file (and the line or record where there is one), then the field and the offending value.
* :class:`LoadReport` counts records a loader skipped, per reason, with the first examples named; its
  :meth:`LoadReport.log` is visible at the default log level.
* :func:`naming_file` turns any exception raised while reading a file (a library's ``OSError``,
  ``UnicodeDecodeError``, ``BadZipFile``, ...) into a :class:`DataError` that names the file.
* :func:`atomic_write` writes caches so that a killed run never leaves a truncated file behind.
* :func:`check_array`, :func:`check_count`, :func:`safe_join` and :func:`read_text` are the checks that loaders share:
  numeric range and dtype, hostile header counts, path traversal, non-UTF-8 text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

log = logging.getLogger("ditkit")

FLOAT32_MAX = float(np.finfo(np.float32).max)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataError(ValueError):
    """Bad input data. The message reads ``<path>[:<line>]: [<field>=<value>: ]<reason>``.

    Args:
        reason: what is wrong, in words.
        path: the file (or folder) that holds the bad data.
        line: 1-based line number, or record number where ``record`` is set.
        field: the field, column or key.
        value: the offending value (shortened in the message).
        record: say "record" instead of "line" (binary formats, SDF blocks).
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
        record: bool = False,
    ):
        self.reason, self.path, self.line, self.field, self.value = reason, path, line, field, value
        where = "" if path is None else str(path)
        if line is not None:
            unit = "record" if record else "line"
            where = f"{where} {unit} {line}" if where else f"{unit} {line}"
        what = "" if field is None else f"{field}={_short(value)}: "
        super().__init__(f"{where}: {what}{reason}" if where else f"{what}{reason}")


@contextlib.contextmanager
def naming_file(path: str | os.PathLike, what: str = "cannot read") -> Iterator[None]:
    """Re-raise any exception from the block as a :class:`DataError` naming ``path`` (``DataError`` passes through).

    Example:
        >>> with naming_file(p):
        ...     arr = np.load(p)
    """
    try:
        yield
    except DataError:
        raise
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - the point is to name the file for any library error
        raise DataError(f"{what}: {type(e).__name__}: {e}", path=path) from e


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success it is flushed, synced and renamed onto ``path``.

    A run killed mid-write (or a full disk) leaves ``path`` either absent or complete, never truncated; the
    temporary file is removed on error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save(path: str | os.PathLike, writer: Any, suffix: str | None = None) -> Path:
    """Call ``writer(tmp_path)`` (a library writer that wants a file name) and rename the result onto ``path``.

    ``suffix`` keeps the file extension some writers require (``np.savez`` adds ``.npz`` otherwise).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def check_array(
    value: Any,
    *,
    path: str | os.PathLike | None,
    field: str,
    allow_nan: bool = True,
    allow_inf: bool = False,
    float32: bool = True,
    line: int | None = None,
) -> np.ndarray:
    """Validate a numeric array from a file: real dtype, finite (or NaN where allowed), within float32 range.

    Args:
        value: array-like from the file.
        path, field, line: named in the error.
        allow_nan: NaN marks missing values in this field.
        allow_inf: infinities are legal values.
        float32: reject finite values beyond float32 range (they would become inf after conversion).

    Returns:
        the array as ``np.ndarray`` (dtype unchanged).

    Raises:
        DataError: complex, non-numeric, NaN / inf where not allowed, or values beyond float32 range.
    """
    arr = np.asarray(value)
    if np.iscomplexobj(arr):
        raise DataError(
            f"complex values (dtype {arr.dtype}) are not accepted; the imaginary part would be lost",
            path=path,
            field=field,
            value=arr.dtype,
            line=line,
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(f"expected numbers, got dtype {arr.dtype}", path=path, field=field, value=arr.dtype, line=line)
    if arr.dtype.kind == "f" and arr.size:
        nan = np.isnan(arr)
        if not allow_nan and nan.any():
            raise DataError(f"{int(nan.sum())} NaN value(s)", path=path, field=field, value=float("nan"), line=line)
        inf = np.isinf(arr)
        if not allow_inf and inf.any():
            bad = arr[inf].flat[0]
            raise DataError(f"{int(inf.sum())} infinite value(s)", path=path, field=field, value=float(bad), line=line)
        if float32:
            finite = arr[np.isfinite(arr)]
            if finite.size and float(np.abs(finite).max()) > FLOAT32_MAX:
                big = float(finite.flat[int(np.abs(finite).argmax())])
                raise DataError(
                    "value beyond float32 range (would become inf)", path=path, field=field, value=big, line=line
                )
    return arr


def check_count(
    n: Any, limit: int, *, path: str | os.PathLike | None, field: str, minimum: int = 0, line: int | None = None
) -> int:
    """A count read from a header: an integer in ``[minimum, limit]``, so hostile sizes never allocate."""
    try:
        value = int(n)
        ok = value == n if isinstance(n, float) else True
    except (TypeError, ValueError, OverflowError):
        ok, value = False, 0
    if not ok:
        raise DataError("expected an integer count", path=path, field=field, value=n, line=line)
    if not minimum <= value <= limit:
        raise DataError(f"count outside [{minimum}, {limit}]", path=path, field=field, value=value, line=line)
    return value


def safe_join(
    root: str | os.PathLike,
    name: str,
    *,
    path: str | os.PathLike | None = None,
    field: str = "path",
    line: int | None = None,
) -> Path:
    """``root / name`` for a name read from a file, refusing absolute names and names that leave ``root``."""
    root = Path(root)
    if not name or os.path.isabs(name) or "\x00" in name:
        raise DataError("must be a relative name inside the data folder", path=path, field=field, value=name, line=line)
    full = (root / name).resolve()
    if full != root.resolve() and root.resolve() not in full.parents:
        raise DataError(f"leaves the data folder {root}", path=path, field=field, value=name, line=line)
    return root / name


def read_text(path: str | os.PathLike, max_bytes: int = 1 << 30) -> str:
    """Read a UTF-8 text file; a decoding error names the line and byte. A BOM is accepted."""
    path = Path(path)
    with naming_file(path):
        size = path.stat().st_size
        if size > max_bytes:
            raise DataError(f"file of {size} bytes exceeds the {max_bytes}-byte limit for text", path=path)
        data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})", path=path, line=line) from e


@dataclass
class Skip:
    """One skipped record."""

    reason: str
    path: str
    line: int | None = None
    field: str | None = None
    value: Any = None

    def __str__(self) -> str:
        return str(DataError(self.reason, path=self.path, line=self.line, field=self.field, value=self.value))


@dataclass
class LoadReport:
    """What a loader kept and skipped, per reason (records it could not use are never dropped silently).

    Args:
        source: what was loaded (a file or folder), named in the summary.
    """

    source: str
    kept: int = 0
    skips: list[Skip] = field(default_factory=list)

    def skip(
        self,
        reason: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        """Record one skipped record."""
        self.skips.append(Skip(reason, str(path if path is not None else self.source), line, field, value))

    @property
    def skipped(self) -> int:
        return len(self.skips)

    def counts(self) -> dict[str, int]:
        """Skipped records per reason, most frequent first."""
        return dict(Counter(s.reason for s in self.skips).most_common())

    def summary(self, examples: int = 3) -> str:
        """One paragraph: kept / skipped counts, the reasons and the first examples of each."""
        head = f"{self.source}: kept {self.kept}, skipped {self.skipped}"
        if not self.skips:
            return head
        lines = [head + ":"]
        for reason, n in self.counts().items():
            ex = [str(s) for s in self.skips if s.reason == reason][:examples]
            lines.append(f"  {n} x {reason} (e.g. {'; '.join(ex)})")
        return "\n".join(lines)

    def log(self, logger: logging.Logger | None = None) -> None:
        """Log the summary: WARNING when anything was skipped (visible by default), INFO otherwise."""
        (logger or log).log(logging.WARNING if self.skips else logging.INFO, self.summary())

    def require_some(self) -> None:
        """Raise :class:`DataError` listing the reasons when no record was usable."""
        if self.kept == 0:
            reasons = "; ".join(f"{n} x {r}" for r, n in self.counts().items()) or "the input is empty"
            raise DataError(f"no usable record ({reasons})", path=self.source)


__all__ = [
    "DataError",
    "LoadReport",
    "Skip",
    "atomic_save",
    "atomic_write",
    "check_array",
    "check_count",
    "naming_file",
    "read_text",
    "safe_join",
]
