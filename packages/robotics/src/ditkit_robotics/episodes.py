"""Demonstration episodes in memory: the :class:`Episode` record, its validation, and the checks loaders share.

Every loader (:mod:`ditkit_robotics.zarr_store`, :mod:`ditkit_robotics.lerobot`) turns each raw episode into an
:class:`Episode` through :func:`validate_episode` and reports bad input as :class:`EpisodeError` (a
:class:`~ditkit_core.errors.DataError`) naming the file, the episode (and the row where there is one), the field
and the value. Sizes read from headers are bounded by the ``MAX_*`` limits below before anything is allocated.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ditkit_core.errors import DataError, LoadReport, read_text

REQUIRED_KEYS = ("obs", "action")

FLOAT32_MAX = float(np.finfo(np.float32).max)  # largest finite float32 (values beyond it are refused)
MAX_STEPS = 1_000_000
"""Steps of one episode (a 10-hour demonstration at 30 Hz)."""
MAX_DIM = 65_536
"""Width of one observation or action vector."""
MAX_ELEMENTS = 1 << 27
"""Values of one array, or of one column of a parquet file (512 MiB as float32)."""
MAX_EPISODES = 10_000_000
"""Episode indices and episode counts."""
MAX_TASKS = 1_000_000
"""Tasks of a dataset."""
MAX_META_BYTES = 256 << 20
"""Size of one JSON / JSON-lines metadata file."""


class EpisodeError(DataError):
    """Bad demonstration data. The message reads ``<file>[ episode <i>][ record <r>]: [<field>=<value>: ]<reason>``.

    Args:
        reason: what is wrong, in words.
        path: the file (or store) that holds the bad data.
        episode: the episode index, where the error belongs to one episode (``on_error="skip"`` can drop it).
        line: line (JSON lines) or row (``record=True``, parquet) number, 1-based.
        field: the key, column or attribute.
        value: the offending value.
        record: say "record" instead of "line".
        kind: a short, stable name of the problem, used to count skipped episodes per reason.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | os.PathLike | None = None,
        episode: int | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
        record: bool = False,
        kind: str | None = None,
    ):
        where = path if episode is None else f"{'' if path is None else path} episode {episode}".strip()
        super().__init__(reason, path=where, line=line, field=field, value=value, record=record)
        self.path, self.episode, self.kind = path, episode, kind or reason


@dataclass
class Episode:
    """One demonstration.

    Attributes:
        obs: observations ``[T, obs_dim]`` float32 (``obs[i]`` is seen before ``action[i]``).
        action: actions ``[T, action_dim]`` float32.
        task_id: index into the dataset's task list.
        task: task name.
        success: whether the demonstration solved the task.
        seed: environment seed of the episode (-1 if unknown).
    """

    obs: np.ndarray
    action: np.ndarray
    task_id: int = 0
    task: str = ""
    success: bool = True
    seed: int = -1

    def __len__(self) -> int:
        return self.obs.shape[0]


# ---------------------------------------------------------------------------------------------- scalars
def as_int(
    value: Any,
    *,
    lo: int,
    hi: int,
    path: str | os.PathLike | None,
    field: str,
    what: str | None = None,
    episode: int | None = None,
    line: int | None = None,
    record: bool = False,
    kind: str | None = None,
) -> int:
    """An integer from a file in ``[lo, hi]`` (booleans, fractions, strings and out-of-range values are errors).

    Raises:
        EpisodeError: naming ``path``, the episode / line, ``field`` and the value.
    """
    if isinstance(value, np.generic):
        value = value.item()  # named in messages as a plain number
    ok = isinstance(value, int) and not isinstance(value, bool)
    if not ok and isinstance(value, float) and np.isfinite(value) and value.is_integer():
        ok = True  # parquet / JSON writers sometimes store integers as floats
    where = {"path": path, "episode": episode, "line": line, "field": field, "value": value, "record": record}
    if not ok:
        raise EpisodeError("expected an integer", kind=kind or f"bad {field}", **where)
    n = int(value)
    if not lo <= n <= hi:
        raise EpisodeError(what or f"outside [{lo}, {hi}]", kind=kind or f"{field} out of range", **where)
    return n


def check_task_id(
    task_id: Any,
    num_tasks: int | None,
    *,
    path: str | os.PathLike | None,
    field: str = "task_id",
    episode: int | None = None,
    line: int | None = None,
    record: bool = False,
) -> int:
    """A task id in ``[0, num_tasks)`` (``num_tasks=None``: the task list is unknown, any id in ``[0, MAX_TASKS)``)."""
    hi = (MAX_TASKS if num_tasks is None else num_tasks) - 1
    what = f"task id outside [0, {hi + 1}) (the dataset lists {num_tasks} task(s))" if num_tasks is not None else None
    return as_int(
        task_id,
        lo=0,
        hi=hi,
        path=path,
        field=field,
        what=what,
        episode=episode,
        line=line,
        record=record,
        kind="task id out of range",
    )


# ---------------------------------------------------------------------------------------------- JSON
def parse_json(text: str, path: str | os.PathLike, line: int | None = None) -> Any:
    """``json.loads`` whose every failure (syntax, nesting depth, huge integers) is a :class:`DataError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON ({e.msg}, column {e.colno})", path=path, line=line or e.lineno) from e
    except (ValueError, RecursionError) as e:
        raise DataError(f"unreadable JSON ({type(e).__name__}: {e})", path=path, line=line) from e


def read_json(path: Path, max_bytes: int = MAX_META_BYTES) -> dict[str, Any]:
    """A UTF-8 JSON file holding one object."""
    data = parse_json(read_text(path, max_bytes), path)
    if not isinstance(data, dict):
        raise DataError(f"expected a JSON object, got {type(data).__name__}", path=path)
    return data


def read_jsonl(path: Path, max_bytes: int = MAX_META_BYTES) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of a UTF-8 JSON-lines file."""
    rows = []
    for n, line in enumerate(read_text(path, max_bytes).splitlines(), 1):
        if line.strip():
            row = parse_json(line, path, line=n)
            if not isinstance(row, dict):
                raise DataError(f"expected a JSON object, got {type(row).__name__}", path=path, line=n)
            rows.append((n, row))
    return rows


# ---------------------------------------------------------------------------------------------- arrays
def _episode_array(value: Any, key: str, index: int, source: str | Path) -> np.ndarray:
    """``[T, dim]`` float32 from raw data: real numbers only, finite and within float32 range."""
    where = {"path": source, "episode": index, "field": key}
    try:
        raw = np.asarray(value)
        if raw.dtype == object:
            raw = raw.astype(np.float64)
    except (ValueError, TypeError) as e:
        raise EpisodeError(f"not a numeric array ({e})", value=type(value).__name__, kind="not numeric", **where) from e
    if np.iscomplexobj(raw):
        raise EpisodeError(
            "complex values are not accepted (the imaginary part would be lost)",
            value=str(raw.dtype),
            kind="complex values",
            **where,
        )
    if raw.dtype.kind not in "biuf":
        raise EpisodeError(
            f"expected numbers, got dtype {raw.dtype}", value=str(raw.dtype), kind="not numeric", **where
        )
    if raw.ndim != 2:
        raise EpisodeError("must be [T, dim]", value=f"shape {raw.shape}", kind="wrong rank", **where)
    if raw.shape[0] == 0 or raw.shape[1] == 0:
        raise EpisodeError("is empty", value=f"shape {raw.shape}", kind="empty episode", **where)
    if raw.dtype.kind == "f":
        wide = raw if raw.dtype.itemsize >= 8 else raw.astype(np.float64)
        bad = ~np.isfinite(wide) | (np.abs(np.nan_to_num(wide, nan=0.0, posinf=0.0, neginf=0.0)) > FLOAT32_MAX)
        if bad.any():
            step, col = (int(v) for v in np.argwhere(bad)[0])
            raise EpisodeError(
                f"{int(bad.sum())} NaN / infinite / beyond-float32 value(s), first at step {step}, column {col}",
                value=float(wide[step, col]),
                kind="non-finite value",
                **where,
            )
    return np.ascontiguousarray(raw, dtype=np.float32)


def _as_bool(value: Any, index: int, source: str | Path) -> bool:
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
        return bool(value)
    raise EpisodeError("expected true / false", path=source, episode=index, field="success", value=value)


def validate_episode(
    data: dict[str, Any], index: int, source: str | Path, num_tasks: int | None = None, tasks: list[str] | None = None
) -> Episode:
    """Check one raw episode and build an :class:`Episode`.

    Args:
        data: mapping with at least ``obs [T, obs_dim]`` and ``action [T, action_dim]``; optional ``task_id``,
            ``task``, ``success``, ``seed``, ``length`` (declared length, checked; ``length_from`` says where it
            was declared).
        index: the episode index (named in errors).
        source: the file / folder it came from (named in errors).
        num_tasks: tasks of the dataset: ``task_id`` must lie in ``[0, num_tasks)`` (None: only ``>= 0``).
        tasks: the dataset's task names; a ``task`` given beside ``task_id`` must equal ``tasks[task_id]``.

    Raises:
        EpisodeError: missing key, wrong rank, complex / non-numeric data, length mismatch, empty episode,
            NaN / inf / beyond-float32 value, task id out of range, task name not matching its id.
    """
    missing = [k for k in REQUIRED_KEYS if k not in data or data[k] is None]
    if missing:
        raise EpisodeError(
            f"missing key(s) {missing}; present keys {sorted(k for k in data if k not in ('file', 'length_from'))}",
            path=source,
            episode=index,
            field=missing[0],
            kind="missing key",
        )
    arrays = {k: _episode_array(data[k], k, index, source) for k in REQUIRED_KEYS}
    T = arrays["obs"].shape[0]
    if T != arrays["action"].shape[0]:
        raise EpisodeError(
            f"length mismatch, obs has {T} steps and action has {arrays['action'].shape[0]}",
            path=source,
            episode=index,
            field="action",
            value=arrays["action"].shape[0],
            kind="length mismatch",
        )
    if "length" in data:
        declared = as_int(data["length"], lo=0, hi=MAX_STEPS, path=source, episode=index, field="length")
        if declared != T:
            origin = f" in {data['length_from']}" if data.get("length_from") else ""
            raise EpisodeError(
                f"length mismatch, declared length {declared}{origin} but the data hold {T} steps",
                path=source,
                episode=index,
                field="length",
                value=declared,
                kind="length mismatch",
            )
    task_id = check_task_id(data.get("task_id", 0), num_tasks, path=source, episode=index)
    task = data.get("task", "")
    if not isinstance(task, str):
        raise EpisodeError("expected a string", path=source, episode=index, field="task", value=task)
    if tasks and task_id < len(tasks):
        if task and task != tasks[task_id]:
            raise EpisodeError(
                f"task name differs from the task list's entry {tasks[task_id]!r} for task_id {task_id}",
                path=source,
                episode=index,
                field="task",
                value=task,
                kind="task name mismatch",
            )
        task = tasks[task_id]
    seed = as_int(data.get("seed", -1), lo=-(1 << 63), hi=(1 << 63) - 1, path=source, episode=index, field="seed")
    return Episode(
        obs=arrays["obs"],
        action=arrays["action"],
        task_id=task_id,
        task=task,
        success=_as_bool(data.get("success", True), index, source),
        seed=seed,
    )


def collect(
    raw: list[tuple[int, dict[str, Any] | EpisodeError]],
    source: str | Path,
    on_error: Literal["raise", "skip"],
    num_tasks: int | None = None,
    tasks: list[str] | None = None,
) -> tuple[list[Episode], LoadReport]:
    """Validate raw episodes (or the errors met while reading them); raise or skip-and-count the bad ones.

    Args:
        raw: ``(episode index, data)`` pairs; ``data`` may be an :class:`EpisodeError` raised while reading; a
            ``"file"`` entry of ``data`` names the episode's own file in errors.
        source: the store / folder (named in errors when the episode has no file of its own, and in the report).
        on_error: ``raise`` the first bad episode, or ``skip`` it (counted per reason in the report, which is
            logged and also issued as one warning).
        num_tasks, tasks: see :func:`validate_episode`.

    Returns:
        ``(episodes, report)``.
    """
    check_on_error(on_error)
    report = LoadReport(str(source))
    good: list[tuple[int, Episode]] = []
    for i, data in raw:
        try:
            if isinstance(data, EpisodeError):
                raise data
            good.append((i, validate_episode(data, i, data.get("file", source), num_tasks, tasks)))
        except EpisodeError as e:
            if on_error == "raise" or e.episode is None:
                raise
            report.skip(e.kind, path=f"{e.path} episode {e.episode}", line=e.line, field=e.field, value=e.value)
    _check_dims(good, source)
    report.kept = len(good)
    if report.skips:
        report.log()
        warnings.warn(f"skipped malformed episodes: {report.summary()}", stacklevel=3)
    if not good:
        report.require_some()
    return [e for _, e in good], report


def check_on_error(on_error: Any) -> None:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")


def _check_dims(episodes: list[tuple[int, Episode]], source: str | Path) -> None:
    if not episodes:
        return
    i0, e0 = episodes[0]
    for i, e in episodes[1:]:
        for k in REQUIRED_KEYS:
            if getattr(e, k).shape[1] != getattr(e0, k).shape[1]:
                raise EpisodeError(
                    f"width differs from episode {i0} ({getattr(e0, k).shape[1]})",
                    path=source,
                    episode=i,
                    field=k,
                    value=getattr(e, k).shape[1],
                )


# ---------------------------------------------------------------------------------------------- writing
@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Build a folder in a temporary sibling and swap it onto ``path`` on success (a killed write leaves the old
    folder, or none, never a half-written one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
