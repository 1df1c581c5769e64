"""Parquet columns of demonstration episodes (pyarrow), read defensively.

:func:`read_parquet` checks the footer (row and value counts, uncompressed size) before reading only the named
columns; :func:`matrix_column` / :func:`int_column` turn columns into numpy arrays, rejecting nulls, ragged vectors
and non-numbers by file, row and column; :func:`episode_rows` builds one raw episode from its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_core.errors import DataError, naming_file
from ditkit_robotics.episodes import MAX_ELEMENTS, EpisodeError, check_task_id

MAX_PARQUET_BYTES = 1 << 30
"""Uncompressed bytes of the columns read from one parquet file."""


def pyarrow_modules():
    """``(pyarrow, pyarrow.compute, pyarrow.parquet)``, or an ImportError naming the extra."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError("LeRobot-style folders need pyarrow: pip install 'ditkit-robotics[lerobot]'") from e
    return pa, pc, pq


def read_parquet(f: Path, columns: Sequence[str]):
    """The named columns (those present) of a parquet file; hostile row / value counts are refused from the
    footer before any column is read, and any library error names the file."""
    pa, _, pq = pyarrow_modules()
    with naming_file(f, "cannot read parquet"):
        with pq.ParquetFile(f, memory_map=False) as pf:
            md = pf.metadata
            if md.num_rows > MAX_ELEMENTS:
                raise DataError(f"more than {MAX_ELEMENTS} rows", path=f, field="num_rows", value=md.num_rows)
            present = [c for c in columns if c in pf.schema_arrow.names]
            values = dict.fromkeys(present, 0)
            nbytes = 0
            for g in range(md.num_row_groups):
                rg = md.row_group(g)
                for j in range(rg.num_columns):
                    col = rg.column(j)
                    top = next(
                        (c for c in present if col.path_in_schema == c or col.path_in_schema.startswith(c + ".")),
                        None,
                    )
                    if top is not None:
                        values[top] += col.num_values
                        nbytes += col.total_uncompressed_size
            for c, n in values.items():
                if n > MAX_ELEMENTS:
                    raise DataError(f"more than {MAX_ELEMENTS} values", path=f, field=c, value=n)
            if nbytes > MAX_PARQUET_BYTES:
                raise DataError(
                    f"columns of {nbytes} bytes exceed {MAX_PARQUET_BYTES}", path=f, field="size", value=nbytes
                )
            return pf.read(columns=present) if present else pa.table({})


def int_column(table, col: str, f: Path, episode: int | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """An integer column without nulls as int64 (integral floats accepted)."""
    pa, _, _ = pyarrow_modules()
    arr = table.column(col).combine_chunks()
    where = {"path": f, "episode": episode, "field": col, "record": True}
    if arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise EpisodeError("missing value (null)", line=_row(rows, row), kind=f"bad {col}", **where)
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise EpisodeError(f"expected integers, got {arr.type}", value=str(arr.type), kind=f"bad {col}", **where)
    v = arr.to_numpy(zero_copy_only=False)
    if v.dtype.kind == "f":
        bad = ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) > 2**62)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise EpisodeError(
                "expected an integer", line=_row(rows, row), value=float(v[row]), kind=f"bad {col}", **where
            )
    return v.astype(np.int64)


def _row(rows: np.ndarray | None, i: int) -> int:
    """1-based row number in the file of row ``i`` of a (sub)table."""
    return int(rows[i]) + 1 if rows is not None else i + 1


def matrix_column(table, col: str, f: Path, episode: int, rows: np.ndarray | None) -> np.ndarray:
    """A numeric column as ``[T, d]`` (scalar columns give d = 1); nulls, ragged rows, non-numbers are errors."""
    pa, pc, _ = pyarrow_modules()
    arr = table.column(col).combine_chunks()
    where = {"path": f, "episode": episode, "field": col, "record": True}
    if arr.null_count:
        row = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise EpisodeError("missing value (null)", line=_row(rows, row), kind="missing value", **where)
    t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        vals = arr.flatten()
        if not (pa.types.is_integer(vals.type) or pa.types.is_floating(vals.type) or pa.types.is_boolean(vals.type)):
            raise EpisodeError(f"expected lists of numbers, got {t}", value=str(t), kind="not numeric", **where)
        if vals.null_count:
            raise EpisodeError("missing value (null) inside a vector", value=None, kind="missing value", **where)
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths != lengths[0]).any():
            row = int(np.flatnonzero(lengths != lengths[0])[0])
            raise EpisodeError(
                f"ragged vectors: row has {int(lengths[row])} values, the first row {int(lengths[0])}",
                line=_row(rows, row),
                value=int(lengths[row]),
                kind="ragged rows",
                **where,
            )
        d = int(lengths[0]) if len(lengths) else 0
        out = vals.to_numpy(zero_copy_only=False)
        return out.reshape(len(lengths), d)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return arr.to_numpy(zero_copy_only=False).reshape(-1, 1)
    raise EpisodeError(f"expected numbers, got {t}", value=str(t), kind="not numeric", **where)


def episode_rows(
    table, f: Path, index: int, keys: tuple[str, str], num_tasks: int | None, rows: np.ndarray | None = None
) -> dict[str, Any]:
    """The raw episode held by ``table`` (all rows of one episode); row numbers in errors are file rows."""
    data: dict[str, Any] = {}
    for key, col in zip(("obs", "action"), keys):
        if col in table.column_names:
            data[key] = matrix_column(table, col, f, index, rows)
    T = table.num_rows
    if "episode_index" in table.column_names:
        ep = int_column(table, "episode_index", f, index, rows)
        if (ep != index).any():
            row = int(np.flatnonzero(ep != index)[0])
            raise EpisodeError(
                "row belongs to another episode", path=f, episode=index, line=_row(rows, row), record=True,
                field="episode_index", value=int(ep[row]), kind="episode index mismatch",
            )  # fmt: skip
    if "frame_index" in table.column_names:
        fr = int_column(table, "frame_index", f, index, rows)
        bad = np.flatnonzero(fr != np.arange(T))
        if bad.size:
            raise EpisodeError(
                f"frames must run 0..{T - 1} in order", path=f, episode=index, line=_row(rows, int(bad[0])),
                record=True, field="frame_index", value=int(fr[bad[0]]), kind="frames out of order",
            )  # fmt: skip
    if "task_index" in table.column_names and T:
        tid = int_column(table, "task_index", f, index, rows)
        for r in (int(np.argmin(tid)), int(np.argmax(tid))):  # the extremes: any out-of-range id is one of them
            check_task_id(tid[r], num_tasks, path=f, field="task_index", episode=index, line=_row(rows, r), record=True)
        if (tid != tid[0]).any():
            row = int(np.flatnonzero(tid != tid[0])[0])
            raise EpisodeError(
                f"one task per episode expected; the first row has task_index {int(tid[0])}", path=f, episode=index,
                line=_row(rows, row), record=True, field="task_index", value=int(tid[row]), kind="several tasks",
            )  # fmt: skip
        data["task_id"] = int(tid[0])
    return data


__all__ = ["MAX_PARQUET_BYTES", "episode_rows", "int_column", "matrix_column", "pyarrow_modules", "read_parquet"]
