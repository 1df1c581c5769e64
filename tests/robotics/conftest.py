"""Small demonstration stores for the robotics tests: ditkit zarr (formats 3 and 2) and LeRobot v2 / v3 folders,
plus helpers that edit one file of a store (JSON metadata, a zarr array, a parquet table)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from ditkit_robotics.data import synthetic_episodes, write_zarr_episodes

TASKS = ["task0", "task1"]


def zarr_store(path: Path, n: int = 3, length: int = 6, zarr_format: int = 3) -> Path:
    """A valid ditkit store of ``n`` synthetic episodes (zarr format 3 through the writer, or format 2)."""
    eps = synthetic_episodes(n=n, length=length)
    if zarr_format == 3:
        return write_zarr_episodes(path, eps, tasks=TASKS, action_low=[-1, -1], action_high=[1, 1])
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    root.attrs.update({"format": "ditkit-episodes", "version": 1, "obs_dim": 6, "action_dim": 2, "tasks": TASKS})
    g = root.create_group("episodes")
    for i, ep in enumerate(eps):
        e = g.create_group(f"{i:06d}")
        e.create_array("obs", data=ep.obs)
        e.create_array("action", data=ep.action)
        e.attrs.update({"task": ep.task, "task_id": ep.task_id, "success": True, "seed": i})
    return path


def lerobot_folder(path: Path, version: str = "v2.1", n: int = 3, length: int = 6, per_file: int = 2) -> Path:
    """A valid LeRobot folder (v2.1: a file per episode; v3.0: ``per_file`` episodes per data file)."""
    from ditkit_robotics.data import write_lerobot_episodes

    eps = synthetic_episodes(n=n, length=length)
    return write_lerobot_episodes(path, eps, TASKS, version=version, episodes_per_file=per_file)


def copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def edit_json(file: Path, fn: Callable[[Any], Any]) -> None:
    """Replace the JSON in ``file`` by ``fn(json)`` (``fn`` may edit in place and return None)."""
    data = json.loads(file.read_text())
    out = fn(data)
    file.write_text(json.dumps(data if out is None else out))


def set_zarr_array(store: Path, key: str, value: np.ndarray) -> None:
    """Replace ``key`` (e.g. ``episodes/000001/obs``) of a store by ``value`` (any dtype)."""
    import zarr

    root = zarr.open_group(str(store), mode="a")
    group, name = key.rsplit("/", 1)
    del root[group][name]
    root[group].create_array(name, data=value)


def set_zarr_attr(store: Path, group: str, **attrs: Any) -> None:
    import zarr

    zarr.open_group(str(store), mode="a")[group].attrs.update(attrs)


def edit_parquet(file: Path, fn: Callable[[dict[str, list]], None]) -> None:
    """Rewrite a parquet file from ``fn(columns)`` where ``columns`` maps names to Python lists (edited in place)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = pq.read_table(file).to_pydict()
    fn(cols)
    pq.write_table(pa.table(cols), file)


@pytest.fixture(scope="session")
def fx() -> SimpleNamespace:
    """The builders and editors above."""
    return SimpleNamespace(
        zarr_store=zarr_store,
        lerobot_folder=lerobot_folder,
        copy=copy,
        edit_json=edit_json,
        set_zarr_array=set_zarr_array,
        set_zarr_attr=set_zarr_attr,
        edit_parquet=edit_parquet,
        TASKS=TASKS,
    )
