"""LeRobot-style episode folders, v2 and v3 layouts (needs ``pyarrow``: the ``lerobot`` extra).

**v2** (``codebase_version`` "v2.x", or no ``info.json``): one parquet file per episode::

    root/meta/info.json          {"codebase_version": "v2.1", "fps": ..., "features": {...}}   (optional)
    root/meta/tasks.jsonl        {"task_index": 0, "task": "push-v3"} per line
    root/meta/episodes.jsonl     {"episode_index": 0, "length": T, ...} per line (optional; lengths checked)
    root/data/chunk-000/episode_000000.parquet
        columns: observation.state (list[float]), action (list[float]), episode_index, frame_index, task_index

**v3** (``codebase_version`` "v3.x"): many episodes per parquet file::

    root/meta/info.json          {"codebase_version": "v3.0", "data_path": "data/chunk-{chunk_index:03d}/...", ...}
    root/meta/tasks.parquet      columns task (name), task_index
    root/meta/episodes/chunk-000/file-000.parquet
        columns: episode_index, length, data/chunk_index, data/file_index, (tasks, dataset_from_index, ...)
    root/data/chunk-000/file-000.parquet   the rows of many episodes (same columns as v2)

Only the needed columns are read. Every metadata value is checked (types, task ids contiguous from 0, counts
bounded); parquet footers are checked for hostile row and value counts before the columns are read; the data path
template of ``info.json`` may only use ``{chunk_index}`` / ``{file_index}`` and must stay inside the folder. Rows of
an episode must have ``frame_index`` 0..T-1 in order and one ``task_index`` inside the task list.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ditkit_core.errors import DataError, safe_join
from ditkit_robotics.episodes import (
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_EPISODES,
    MAX_STEPS,
    MAX_TASKS,
    Episode,
    EpisodeError,
    as_int,
    atomic_dir,
    check_on_error,
    collect,
    read_json,
    read_jsonl,
)
from ditkit_robotics.parquet import episode_rows, int_column, pyarrow_modules, read_parquet

V3_DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
V3_EPISODES_GLOB = "meta/episodes/chunk-*/file-*.parquet"


# ---------------------------------------------------------------------------------------------- metadata
def _read_info(root: Path, keys: tuple[str, str]) -> dict[str, Any]:
    """``meta/info.json`` checked: fps, version, counts, the declared widths of the obs / action features."""
    f = root / "meta" / "info.json"
    if not f.exists():
        return {}
    info = read_json(f)
    out: dict[str, Any] = {"file": f, "widths": {}}
    fps = info.get("fps")
    if fps is not None and not (
        isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and 0 < fps <= 1e6
    ):
        raise DataError("expected a frame rate in (0, 1e6]", path=f, field="fps", value=fps)
    out["fps"] = fps
    version = info.get("codebase_version", "")
    if not isinstance(version, str) or (version and not re.fullmatch(r"v[23]\.\d+", version)):
        raise DataError("expected 'v2.x' or 'v3.x'", path=f, field="codebase_version", value=version)
    out["codebase_version"] = version
    for key, hi in (("total_episodes", MAX_EPISODES), ("total_frames", MAX_ELEMENTS), ("total_tasks", MAX_TASKS)):
        if key in info:
            out[key] = as_int(info[key], lo=0, hi=hi, path=f, field=key)
    data_path = info.get("data_path", V3_DATA_PATH)
    if not isinstance(data_path, str):
        raise DataError("expected a path template", path=f, field="data_path", value=data_path)
    out["data_path"] = data_path
    features = info.get("features", {})
    if not isinstance(features, dict):
        raise DataError("expected a JSON object", path=f, field="features", value=features)
    for key in keys:
        feat = features.get(key)
        if feat is None:
            continue
        shape = feat.get("shape") if isinstance(feat, dict) else None
        field = f"features.{key}.shape"
        if not isinstance(shape, list) or not shape:
            raise DataError("expected a list of sizes", path=f, field=field, value=shape)
        dims = [as_int(s, lo=1, hi=MAX_DIM, path=f, field=field) for s in shape]
        if math.prod(dims) > MAX_DIM:
            raise DataError(f"more than {MAX_DIM} values per frame", path=f, field=field, value=shape)
        out["widths"][key] = math.prod(dims)
    return out


def _tasks_from_rows(rows: list[tuple[int, Any, Any]], f: Path, record: bool) -> list[str]:
    """``(line, task_index, task)`` rows -> names by index; indices must be exactly 0..n-1."""
    if len(rows) > MAX_TASKS:
        raise DataError(f"more than {MAX_TASKS} tasks", path=f)
    names: dict[int, str] = {}
    for line, idx, name in rows:
        i = as_int(idx, lo=0, hi=MAX_TASKS - 1, path=f, line=line, field="task_index", record=record)
        if not isinstance(name, str):
            raise DataError("expected a string", path=f, line=line, field="task", value=name, record=record)
        if i in names:
            raise DataError("duplicate task index", path=f, line=line, field="task_index", value=i, record=record)
        names[i] = name
    if not names:
        raise DataError("lists no task (every episode names a task index)", path=f)
    if sorted(names) != list(range(len(names))):
        gap = min(set(range(len(names))) - set(names))
        raise DataError(
            f"task indices must run 0..{len(names) - 1}; index {gap} is missing", path=f, field="task_index", value=gap
        )
    return [names[i] for i in range(len(names))]


def _tasks_jsonl(f: Path) -> list[str]:
    rows = []
    for line, r in read_jsonl(f):
        for key in ("task_index", "task"):
            if key not in r:
                raise DataError(f"missing key {key!r}; keys {sorted(r)}", path=f, line=line, field=key)
        rows.append((line, r["task_index"], r["task"]))
    return _tasks_from_rows(rows, f, record=False)


def _episodes_jsonl(f: Path) -> dict[int, tuple[int, str]]:
    """Declared ``episode index -> (length, where declared)``."""
    lengths: dict[int, int] = {}
    where: dict[int, str] = {}
    for line, r in read_jsonl(f):
        if "episode_index" not in r:
            raise DataError(f"missing key 'episode_index'; keys {sorted(r)}", path=f, line=line, field="episode_index")
        i = as_int(r["episode_index"], lo=0, hi=MAX_EPISODES, path=f, line=line, field="episode_index")
        if i in lengths:
            raise DataError("duplicate episode index", path=f, line=line, field="episode_index", value=i)
        lengths[i] = as_int(r["length"], lo=0, hi=MAX_STEPS, path=f, line=line, field="length") if "length" in r else -1
        where[i] = f"{f} line {line}"
    return {i: (n, where[i]) for i, n in lengths.items() if n >= 0}


# ---------------------------------------------------------------------------------------------- v2
def _load_v2(root: Path, info: dict[str, Any], keys: tuple[str, str], on_error: str):
    tasks = _tasks_jsonl(root / "meta" / "tasks.jsonl") if (root / "meta" / "tasks.jsonl").exists() else []
    lengths = _episodes_jsonl(root / "meta" / "episodes.jsonl") if (root / "meta" / "episodes.jsonl").exists() else {}
    files = sorted(root.glob("data/*/episode_*.parquet"))
    if not files:
        raise DataError("no data/*/episode_*.parquet files (an empty or non-LeRobot folder)", path=root)
    if len(files) > MAX_EPISODES:
        raise DataError(f"more than {MAX_EPISODES} episode files", path=root / "data")
    raw: list[tuple[int, Any]] = []
    seen: dict[int, Path] = {}
    for f in files:
        safe_join(root, f.relative_to(root).as_posix(), path=f, field="file")  # a link may not leave the folder
        m = re.fullmatch(r"episode_(\d{1,9})", f.stem)
        if m is None:
            raise DataError("episode files are named episode_<index>.parquet", path=f, field="name", value=f.name)
        index = as_int(int(m.group(1)), lo=0, hi=MAX_EPISODES, path=f, field="episode index")
        if index in seen:
            raise DataError(f"episode {index} also in {seen[index]}", path=f, field="episode_index", value=index)
        seen[index] = f
        try:
            table = read_parquet(f, [*keys, "episode_index", "frame_index", "task_index"])
            data = episode_rows(table, f, index, keys, len(tasks) or None)
        except EpisodeError as e:
            raw.append((index, e))
            continue
        except DataError as e:  # an unreadable file holds exactly this episode
            raw.append((index, EpisodeError(e.reason, path=f, episode=index, kind="unreadable file")))
            continue
        if index in lengths:  # declared in meta/episodes.jsonl; checked by validate_episode
            data["length"], data["length_from"] = lengths[index]
        raw.append((index, {**data, "file": f}))
    return raw, tasks


# ---------------------------------------------------------------------------------------------- v3
def _format_path(template: str, root: Path, info_file: Path | None, **values: int) -> Path:
    """Fill ``{chunk_index}`` / ``{file_index}`` of a path template from ``info.json`` and keep it inside ``root``."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise DataError(f"malformed path template ({e})", path=info_file, field="data_path", value=template) from e
    for _, name, spec, conv in parts:
        if name is None:
            continue
        if name not in values or conv or not re.fullmatch(r"0?\d{0,2}d?", spec or ""):
            allowed = ", ".join("{" + k + "}" for k in values)
            raise DataError(
                f"path templates may only use {allowed} (with a width)",
                path=info_file,
                field="data_path",
                value=template,
            )
    return safe_join(root, template.format(**values), path=info_file, field="data_path")


def _tasks_parquet(f: Path) -> list[str]:
    table = read_parquet(f, ["task_index", "task", "__index_level_0__"])
    name_col = "task" if "task" in table.column_names else "__index_level_0__"
    for col in ("task_index", name_col):
        if col not in table.column_names:
            raise DataError(f"missing column 'task'; columns {table.column_names}", path=f, field="task")
    idx = int_column(table, "task_index", f)
    names = table.column(name_col).to_pylist()
    return _tasks_from_rows([(r + 1, int(i), n) for r, (i, n) in enumerate(zip(idx, names))], f, record=True)


def _load_v3(root: Path, info: dict[str, Any], keys: tuple[str, str], on_error: str):
    tasks = _tasks_parquet(root / "meta" / "tasks.parquet") if (root / "meta" / "tasks.parquet").exists() else []
    num_tasks = len(tasks) or None
    lengths: dict[int, int] = {}
    declared_at: dict[int, str] = {}
    locations: set[tuple[int, int]] = set()
    for f in sorted(root.glob(V3_EPISODES_GLOB)):
        cols = ["episode_index", "length", "data/chunk_index", "data/file_index"]
        table = read_parquet(f, cols)
        if "episode_index" not in table.column_names:
            raise DataError(f"missing column 'episode_index'; columns {table.column_names}", path=f)
        ep = int_column(table, "episode_index", f)
        got = {c: int_column(table, c, f) for c in cols[1:] if c in table.column_names}
        for r, i in enumerate(ep):
            i = as_int(i, lo=0, hi=MAX_EPISODES, path=f, line=r + 1, record=True, field="episode_index")
            if i in lengths:
                raise DataError(
                    "duplicate episode index", path=f, line=r + 1, record=True, field="episode_index", value=i
                )
            n = got.get("length")
            declared_at[i] = f"{f} record {r + 1}"
            lengths[i] = (
                as_int(n[r], lo=0, hi=MAX_STEPS, path=f, line=r + 1, record=True, field="length")
                if n is not None
                else -1
            )
            if "data/chunk_index" in got and "data/file_index" in got:
                loc = tuple(
                    as_int(got[c][r], lo=0, hi=MAX_EPISODES, path=f, line=r + 1, record=True, field=c)
                    for c in ("data/chunk_index", "data/file_index")
                )
                locations.add(loc)  # type: ignore[arg-type]
    if locations:
        files = [
            _format_path(info["data_path"], root, info.get("file"), chunk_index=c, file_index=i)
            for c, i in sorted(locations)
        ]
    else:
        files = sorted(root.glob("data/*/*.parquet"))
    if not files:
        raise DataError("no data/*/*.parquet files (an empty or non-LeRobot folder)", path=root)
    raw: list[tuple[int, Any]] = []
    seen: dict[int, Path] = {}
    for f in files:
        if not f.is_file():
            raise DataError("data file listed in meta/episodes is missing", path=f)
        table = read_parquet(f, [*keys, "episode_index", "frame_index", "task_index"])
        if "episode_index" not in table.column_names:
            raise DataError(f"missing column 'episode_index'; columns {table.column_names}", path=f)
        ep = int_column(table, "episode_index", f)
        order = np.argsort(ep, kind="stable")
        uniq, starts = np.unique(ep[order], return_index=True)
        for k, index in enumerate(uniq):
            index = as_int(
                index, lo=0, hi=MAX_EPISODES, path=f, field="episode_index", line=int(order[starts[k]]) + 1, record=True
            )
            if index in seen:
                raise DataError(f"episode {index} also in {seen[index]}", path=f, field="episode_index", value=index)
            seen[index] = f
            rows = order[starts[k] : starts[k + 1] if k + 1 < len(starts) else len(order)]
            try:
                data = episode_rows(table.take(rows), f, index, keys, num_tasks, rows)
            except EpisodeError as e:
                raw.append((index, e))
                continue
            if lengths.get(index, -1) >= 0:
                data["length"], data["length_from"] = lengths[index], declared_at[index]
            raw.append((index, {**data, "file": f}))
    for index in sorted(set(lengths) - set(seen)):
        raw.append(
            (
                index,
                EpisodeError(
                    "listed in meta/episodes but has no rows", path=root, episode=index, kind="missing episode"
                ),
            )
        )
    return sorted(raw, key=lambda r: r[0]), tasks


def load_lerobot_episodes(
    root: str | Path,
    *,
    obs_key: str = "observation.state",
    action_key: str = "action",
    on_error: Literal["raise", "skip"] = "raise",
) -> tuple[list[Episode], dict[str, Any]]:
    """Read a LeRobot-style episode folder (v2: a parquet file per episode; v3: many episodes per file).

    Args:
        root: folder with ``meta/`` and ``data/``; the layout follows ``meta/info.json``'s ``codebase_version``
            (v2 when absent).
        obs_key: column holding the state vector.
        action_key: column holding the action vector.
        on_error: ``raise`` (default) on the first malformed episode, or ``skip`` malformed episodes (counted per
            reason in ``attrs["skipped"]``, logged and warned). Bad metadata, and in v3 an unreadable data file,
            always raise.

    Returns:
        ``(episodes, attrs)``; attrs hold ``tasks`` (names by task index), ``fps``, ``codebase_version`` and
        ``skipped``.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        EpisodeError / DataError: bad data, naming the file, the episode / line / row, the field and the value.
    """
    check_on_error(on_error)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"load_lerobot_episodes: {root} does not exist")
    if not root.is_dir():
        raise DataError("a LeRobot dataset is a folder, got a file", path=root)
    keys = (obs_key, action_key)
    info = _read_info(root, keys)
    version = info.get("codebase_version") or "v2.1"
    raw, tasks = (_load_v3 if version.startswith("v3") else _load_v2)(root, info, keys, on_error)
    episodes, report = collect(raw, root, on_error, num_tasks=len(tasks) or None, tasks=tasks or None)
    for key, col in zip(("obs", "action"), keys):
        width = info.get("widths", {}).get(col)
        if episodes and width is not None and getattr(episodes[0], key).shape[1] != width:
            raise DataError(
                f"the data hold {getattr(episodes[0], key).shape[1]} values per frame",
                path=info["file"],
                field=f"features.{col}.shape",
                value=width,
            )
    attrs = {"tasks": tasks, "fps": info.get("fps"), "codebase_version": version, "skipped": report.counts()}
    return episodes, attrs


# ---------------------------------------------------------------------------------------------- writing
def _vectors(x: np.ndarray, fixed: bool):
    pa, _, _ = pyarrow_modules()
    x = np.ascontiguousarray(x, dtype=np.float32)
    values = pa.array(x.reshape(-1))
    if fixed:
        return pa.FixedSizeListArray.from_arrays(values, x.shape[1])
    return pa.ListArray.from_arrays(pa.array(np.arange(0, x.size + 1, x.shape[1], dtype=np.int32)), values)


def _frames(episodes: Sequence[Episode], ids: Sequence[int], fps: float, start: int, fixed: bool):
    pa, _, _ = pyarrow_modules()
    lens = [len(episodes[i]) for i in ids]
    return pa.table(
        {
            "observation.state": _vectors(np.concatenate([episodes[i].obs for i in ids]), fixed),
            "action": _vectors(np.concatenate([episodes[i].action for i in ids]), fixed),
            "timestamp": pa.array(np.concatenate([np.arange(n) / fps for n in lens]).astype(np.float32)),
            "frame_index": pa.array(np.concatenate([np.arange(n) for n in lens]).astype(np.int64)),
            "episode_index": pa.array(np.repeat(np.asarray(ids, np.int64), lens)),
            "index": pa.array(np.arange(start, start + sum(lens), dtype=np.int64)),
            "task_index": pa.array(np.repeat(np.asarray([episodes[i].task_id for i in ids], np.int64), lens)),
        }
    )


def write_lerobot_episodes(
    root: str | Path,
    episodes: Sequence[Episode],
    tasks: Sequence[str],
    fps: int = 80,
    *,
    version: Literal["v2.1", "v3.0"] = "v2.1",
    episodes_per_file: int = 1000,
) -> Path:
    """Write episodes as a LeRobot-style folder (v2.1: a file per episode; v3.0: ``episodes_per_file`` per file).

    The folder is built next to ``root`` and renamed onto it when complete; an existing non-empty ``root`` is
    refused (``FileExistsError``).
    """
    pa, _, pq = pyarrow_modules()
    import json

    root = Path(root)
    if not episodes:
        raise ValueError("write_lerobot_episodes: no episodes to write")
    if version not in ("v2.1", "v3.0"):
        raise ValueError(f"write_lerobot_episodes: version must be 'v2.1' or 'v3.0', got {version!r}")
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"write_lerobot_episodes: {root} exists and is not empty")
    feats = {
        "observation.state": {"dtype": "float32", "shape": [int(episodes[0].obs.shape[1])]},
        "action": {"dtype": "float32", "shape": [int(episodes[0].action.shape[1])]},
    }
    info: dict[str, Any] = {"codebase_version": version, "fps": fps, "total_episodes": len(episodes)}
    info.update({"total_frames": int(sum(len(e) for e in episodes)), "total_tasks": len(tasks), "features": feats})
    with atomic_dir(root) as tmp:
        (tmp / "meta").mkdir()
        if version == "v2.1":
            info["data_path"] = "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
            (tmp / "meta" / "tasks.jsonl").write_text(
                "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
            )
            (tmp / "meta" / "episodes.jsonl").write_text(
                "".join(
                    json.dumps({"episode_index": i, "tasks": [ep.task], "length": len(ep)}) + "\n"
                    for i, ep in enumerate(episodes)
                )
            )
            start = 0
            for i, ep in enumerate(episodes):
                d = tmp / "data" / f"chunk-{i // 1000:03d}"
                d.mkdir(parents=True, exist_ok=True)
                pq.write_table(_frames(episodes, [i], fps, start, fixed=False), d / f"episode_{i:06d}.parquet")
                start += len(ep)
        else:
            info["data_path"] = V3_DATA_PATH
            pq.write_table(
                pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(list(tasks))}),
                tmp / "meta" / "tasks.parquet",
            )
            meta_rows: dict[str, list[Any]] = {k: [] for k in ("episode_index", "tasks", "length")}
            meta_rows.update({"data/chunk_index": [], "data/file_index": [], "dataset_from_index": []})
            start = 0
            for n_file, first in enumerate(range(0, len(episodes), episodes_per_file)):
                ids = list(range(first, min(first + episodes_per_file, len(episodes))))
                f = tmp / V3_DATA_PATH.format(chunk_index=n_file // 1000, file_index=n_file % 1000)
                f.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(_frames(episodes, ids, fps, start, fixed=True), f)
                for i in ids:
                    for k, v in zip(
                        meta_rows, (i, [episodes[i].task], len(episodes[i]), n_file // 1000, n_file % 1000, start)
                    ):
                        meta_rows[k].append(v)
                    start += len(episodes[i])
            meta_rows["dataset_to_index"] = [
                a + n for a, n in zip(meta_rows["dataset_from_index"], meta_rows["length"])
            ]
            (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
            pq.write_table(pa.table(meta_rows), tmp / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return root


__all__ = ["load_lerobot_episodes", "write_lerobot_episodes"]
