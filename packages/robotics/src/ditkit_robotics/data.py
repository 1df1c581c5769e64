"""Demonstration episodes: the on-disk schemas, validation, windowing into (observation, action-chunk) pairs.

Two on-disk formats are read:

**ditkit zarr episodes** (written by ``make data-policy``; :func:`write_zarr_episodes`)::

    demos.zarr/
      .attrs: format="ditkit-episodes", version=1, obs_dim, action_dim, action_low [A], action_high [A],
              tasks [names; task_id indexes it], source (free text)
      episodes/000000/            one group per episode, 6-digit zero-padded index
        obs     float32 [T, obs_dim]     observation before each action
        action  float32 [T, action_dim]  action taken at that step (already inside the env bounds)
        .attrs: task (str), task_id (int), success (bool), seed (int)

**LeRobot-style episode folders** (v2 layout; :func:`load_lerobot_episodes`, needs the ``lerobot`` extra)::

    root/meta/info.json          {"fps": ..., "features": {...}}            (optional)
    root/meta/tasks.jsonl        {"task_index": 0, "task": "push-v3"} per line
    root/meta/episodes.jsonl     {"episode_index": 0, "length": T, ...} per line (optional; lengths checked)
    root/data/chunk-000/episode_000000.parquet
        columns: observation.state (list[float]), action (list[float]), episode_index, frame_index, task_index

Every episode is validated on load (:func:`validate_episode`): missing keys, wrong ranks, obs / action
length mismatch, empty episodes and NaN / inf values raise :class:`EpisodeError` naming the file and the
episode index (``on_error="skip"`` drops such episodes with a warning instead).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.lightning.data import seeded_loader

FORMAT, VERSION = "ditkit-episodes", 1
REQUIRED_KEYS = ("obs", "action")


class EpisodeError(ValueError):
    """An episode is malformed; the message names the source file and the episode index."""


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


def validate_episode(data: dict[str, Any], index: int, source: str | Path) -> Episode:
    """Check one raw episode and build an :class:`Episode`.

    Args:
        data: mapping with at least ``obs [T, obs_dim]`` and ``action [T, action_dim]``; optional ``task_id``,
            ``task``, ``success``, ``seed``, ``length`` (declared length, checked).
        index: the episode index (named in errors).
        source: the file / folder it came from (named in errors).

    Raises:
        EpisodeError: missing key, wrong rank, length mismatch, empty episode, non-finite value.
    """
    where = f"{source}: episode {index}"
    missing = [k for k in REQUIRED_KEYS if k not in data or data[k] is None]
    if missing:
        raise EpisodeError(f"{where}: missing key(s) {missing}; present keys {sorted(data)}")
    arrays = {}
    for k in REQUIRED_KEYS:
        a = np.asarray(data[k], dtype=np.float32)
        if a.ndim != 2:
            raise EpisodeError(f"{where}: '{k}' must be [T, dim], got shape {a.shape}")
        if a.shape[0] == 0:
            raise EpisodeError(f"{where}: '{k}' is empty (T=0)")
        bad = ~np.isfinite(a)
        if bad.any():
            step, col = np.argwhere(bad)[0]
            raise EpisodeError(
                f"{where}: '{k}' has {int(bad.sum())} NaN/inf value(s), first at step {step}, column {col}"
            )
        arrays[k] = a
    if arrays["obs"].shape[0] != arrays["action"].shape[0]:
        raise EpisodeError(
            f"{where}: length mismatch, obs has {arrays['obs'].shape[0]} steps and action has "
            f"{arrays['action'].shape[0]}"
        )
    if "length" in data and int(data["length"]) != arrays["obs"].shape[0]:
        raise EpisodeError(
            f"{where}: length mismatch, declared length {int(data['length'])} but the data hold "
            f"{arrays['obs'].shape[0]} steps"
        )
    return Episode(
        obs=arrays["obs"],
        action=arrays["action"],
        task_id=int(data.get("task_id", 0)),
        task=str(data.get("task", "")),
        success=bool(data.get("success", True)),
        seed=int(data.get("seed", -1)),
    )


def _check_dims(episodes: list[tuple[int, Episode]], source: str | Path) -> None:
    if not episodes:
        return
    i0, e0 = episodes[0]
    for i, e in episodes[1:]:
        for k in REQUIRED_KEYS:
            if getattr(e, k).shape[1] != getattr(e0, k).shape[1]:
                raise EpisodeError(
                    f"{source}: episode {i}: '{k}' width {getattr(e, k).shape[1]} differs from "
                    f"episode {i0} ({getattr(e0, k).shape[1]})"
                )


def _collect(
    raw: list[tuple[int, dict[str, Any]]], source: str | Path, on_error: Literal["raise", "skip"]
) -> list[Episode]:
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    good: list[tuple[int, Episode]] = []
    for i, data in raw:
        try:
            good.append((i, validate_episode(data, i, source)))
        except EpisodeError as e:
            if on_error == "raise":
                raise
            warnings.warn(f"skipping malformed episode: {e}", stacklevel=3)
    _check_dims(good, source)
    return [e for _, e in good]


# ---------------------------------------------------------------------------------------------- zarr
def write_zarr_episodes(
    path: str | Path,
    episodes: Sequence[Episode],
    *,
    tasks: Sequence[str],
    action_low: Sequence[float],
    action_high: Sequence[float],
    source: str = "",
) -> Path:
    """Write episodes in the ditkit zarr schema (see the module docstring); overwrites ``path``."""
    import zarr

    if not episodes:
        raise ValueError("write_zarr_episodes: no episodes to write")
    root = zarr.open_group(str(path), mode="w")
    root.attrs.update(
        {
            "format": FORMAT,
            "version": VERSION,
            "obs_dim": int(episodes[0].obs.shape[1]),
            "action_dim": int(episodes[0].action.shape[1]),
            "action_low": [float(v) for v in action_low],
            "action_high": [float(v) for v in action_high],
            "tasks": list(tasks),
            "source": source,
        }
    )
    eps = root.create_group("episodes")
    for i, ep in enumerate(episodes):
        g = eps.create_group(f"{i:06d}")
        g.create_array("obs", data=np.asarray(ep.obs, dtype=np.float32))
        g.create_array("action", data=np.asarray(ep.action, dtype=np.float32))
        g.attrs.update({"task": ep.task, "task_id": int(ep.task_id), "success": bool(ep.success), "seed": int(ep.seed)})
    return Path(path)


def load_zarr_episodes(
    path: str | Path, on_error: Literal["raise", "skip"] = "raise"
) -> tuple[list[Episode], dict[str, Any]]:
    """Read a ditkit zarr episode store.

    Args:
        path: the ``.zarr`` directory.
        on_error: ``raise`` (default) or ``skip`` malformed episodes.

    Returns:
        ``(episodes, attrs)`` with the root attributes (tasks, action bounds, dims).

    Raises:
        FileNotFoundError: no store at ``path``.
        EpisodeError: a malformed store or episode (file and episode index named).
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_zarr_episodes: {path} does not exist (run `make data-policy`)")
    root = zarr.open_group(str(path), mode="r")
    attrs = dict(root.attrs)
    if attrs.get("format") != FORMAT:
        raise EpisodeError(f"{path}: attribute format={attrs.get('format')!r}, expected {FORMAT!r}")
    if "episodes" not in root:
        raise EpisodeError(f"{path}: missing group 'episodes'")
    group = root["episodes"]
    raw = []
    for name in sorted(group.group_keys()):
        g = group[name]
        data: dict[str, Any] = {k: g[k][:] for k in g.array_keys()}
        data.update(dict(g.attrs))
        raw.append((int(name), data))
    return _collect(raw, path, on_error), attrs


# ---------------------------------------------------------------------------------------------- LeRobot
def _parquet_libs():
    try:
        import pandas as pd
        import pyarrow  # noqa: F401
    except ImportError as e:
        raise ImportError("LeRobot-style folders need pandas + pyarrow: pip install 'ditkit-robotics[lerobot]'") from e
    return pd


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise EpisodeError(f"{path}:{n}: invalid JSON ({e.msg})") from e
    return rows


def write_lerobot_episodes(root: str | Path, episodes: Sequence[Episode], tasks: Sequence[str], fps: int = 80) -> Path:
    """Write episodes as a LeRobot-style (v2) folder; used by tests and for export."""
    pd = _parquet_libs()
    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "tasks.jsonl").write_text(
        "".join(json.dumps({"task_index": i, "task": t}) + "\n" for i, t in enumerate(tasks))
    )
    (root / "meta" / "episodes.jsonl").write_text(
        "".join(
            json.dumps({"episode_index": i, "tasks": [ep.task], "length": len(ep)}) + "\n"
            for i, ep in enumerate(episodes)
        )
    )
    (root / "meta" / "info.json").write_text(
        json.dumps(
            {
                "fps": fps,
                "total_episodes": len(episodes),
                "features": {
                    "observation.state": {"dtype": "float32", "shape": [int(episodes[0].obs.shape[1])]},
                    "action": {"dtype": "float32", "shape": [int(episodes[0].action.shape[1])]},
                },
            }
        )
    )
    for i, ep in enumerate(episodes):
        d = root / "data" / f"chunk-{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        T = len(ep)
        df = pd.DataFrame(
            {
                "observation.state": list(ep.obs.astype(np.float32)),
                "action": list(ep.action.astype(np.float32)),
                "episode_index": [i] * T,
                "frame_index": np.arange(T),
                "timestamp": np.arange(T) / fps,
                "task_index": [ep.task_id] * T,
            }
        )
        df.to_parquet(d / f"episode_{i:06d}.parquet")
    return root


def load_lerobot_episodes(
    root: str | Path,
    *,
    obs_key: str = "observation.state",
    action_key: str = "action",
    on_error: Literal["raise", "skip"] = "raise",
) -> tuple[list[Episode], dict[str, Any]]:
    """Read a LeRobot-style (v2) episode folder of parquet files.

    Args:
        root: folder with ``meta/`` and ``data/chunk-*/episode_*.parquet``.
        obs_key: column holding the state vector.
        action_key: column holding the action vector.
        on_error: ``raise`` (default) or ``skip`` malformed episodes.

    Returns:
        ``(episodes, attrs)``; attrs hold ``tasks`` (names by task index) and ``fps``.
    """
    pd = _parquet_libs()
    root = Path(root)
    files = sorted(root.glob("data/*/episode_*.parquet"))
    if not files:
        raise FileNotFoundError(f"load_lerobot_episodes: no data/*/episode_*.parquet under {root}")
    tasks: list[str] = []
    if (root / "meta" / "tasks.jsonl").exists():
        rows = sorted(_read_jsonl(root / "meta" / "tasks.jsonl"), key=lambda r: r["task_index"])
        tasks = [r["task"] for r in rows]
    lengths: dict[int, int] = {}
    if (root / "meta" / "episodes.jsonl").exists():
        lengths = {
            int(r["episode_index"]): int(r["length"])
            for r in _read_jsonl(root / "meta" / "episodes.jsonl")
            if "length" in r
        }
    info = json.loads((root / "meta" / "info.json").read_text()) if (root / "meta" / "info.json").exists() else {}
    raw = []
    for f in files:
        index = int(f.stem.split("_")[-1])
        df = pd.read_parquet(f)
        data: dict[str, Any] = {}
        for key, col in (("obs", obs_key), ("action", action_key)):
            if col in df.columns:
                try:
                    data[key] = np.stack([np.asarray(v, dtype=np.float32) for v in df[col]])
                except ValueError as e:
                    data[key] = np.zeros((0,), np.float32)  # ragged rows: rejected as a wrong rank below
                    warnings.warn(f"{f}: ragged column {col!r}: {e}", stacklevel=2)
        if "task_index" in df.columns and len(df):
            data["task_id"] = int(df["task_index"].iloc[0])
            data["task"] = tasks[data["task_id"]] if data["task_id"] < len(tasks) else str(data["task_id"])
        if index in lengths:
            data["length"] = lengths[index]  # declared in meta/episodes.jsonl; checked by validate_episode
        raw.append((index, data))
    return _collect(raw, root, on_error), {"tasks": tasks, "fps": info.get("fps")}


def load_episodes(path: str | Path, on_error: Literal["raise", "skip"] = "raise") -> tuple[list[Episode], dict]:
    """Load a ditkit zarr store (``*.zarr`` or a folder with ``zarr.json``) or a LeRobot-style folder."""
    path = Path(path)
    if path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return load_zarr_episodes(path, on_error)
    return load_lerobot_episodes(path, on_error=on_error)


# ---------------------------------------------------------------------------------------------- windows
def make_windows(episodes: Sequence[Episode], n_obs_steps: int, horizon: int) -> dict[str, Tensor]:
    """Cut every episode into training samples, one per step (Diffusion-Policy padding).

    Sample ``i`` of an episode sees observations ``i - n_obs_steps + 1 .. i`` (the first observation repeated
    before the start) and predicts actions ``i .. i + horizon - 1`` (the last action repeated after the end).

    Returns:
        ``obs [N, n_obs_steps, obs_dim]``, ``action [N, horizon, action_dim]``, ``task_id [N]`` long.
    """
    obs, act, task = [], [], []
    for ep in episodes:
        T = len(ep)
        steps = np.arange(T)
        oi = np.clip(steps[:, None] + np.arange(-n_obs_steps + 1, 1)[None], 0, T - 1)  # [T, n_obs]
        ai = np.clip(steps[:, None] + np.arange(horizon)[None], 0, T - 1)  # [T, horizon]
        obs.append(ep.obs[oi])
        act.append(ep.action[ai])
        task.append(np.full(T, ep.task_id))
    return {
        "obs": torch.from_numpy(np.concatenate(obs)).float(),
        "action": torch.from_numpy(np.concatenate(act)).float(),
        "task_id": torch.from_numpy(np.concatenate(task)).long(),
    }


class ChunkDataset(Dataset):
    """(observation history, action chunk, task id) samples from episodes, precomputed as tensors."""

    def __init__(self, episodes: Sequence[Episode], n_obs_steps: int = 2, horizon: int = 16):
        if not episodes:
            raise ValueError("ChunkDataset: no episodes")
        self.data = make_windows(episodes, n_obs_steps, horizon)

    def __len__(self) -> int:
        return self.data["obs"].shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.data.items()}


def synthetic_episodes(
    n: int = 8, length: int = 24, obs_dim: int = 6, action_dim: int = 2, tasks: int = 2, seed: int = 0
) -> list[Episode]:
    """Tiny reaching demonstrations for tests: a point moves towards a goal with ``action = clip(goal - pos)``.

    ``obs = [pos, goal, 0...]`` (``action_dim`` each, zero padded to ``obs_dim``); the goal depends on the task.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        task = i % tasks
        goal = np.full(action_dim, 0.5 if task == 0 else -0.5) + 0.1 * rng.standard_normal(action_dim)
        pos = rng.uniform(-1, 1, action_dim)
        obs, act = [], []
        for _ in range(length):
            a = np.clip(2.0 * (goal - pos), -1, 1)
            o = np.zeros(obs_dim)
            o[:action_dim], o[action_dim : 2 * action_dim] = pos, goal
            obs.append(o)
            act.append(a)
            pos = pos + 0.2 * a
        out.append(Episode(np.asarray(obs, np.float32), np.asarray(act, np.float32), task, f"task{task}", True, i))
    return out


class PolicyDataModule(L.LightningDataModule):
    """Demonstrations -> (obs history, action chunk) batches; episodes split by index into train / val.

    Args:
        path: a ditkit zarr store or a LeRobot-style folder; ``"synthetic"`` uses :func:`synthetic_episodes`.
        n_obs_steps: observation history length.
        horizon: action chunk length.
        val_episodes: episodes held out for validation (every k-th episode, k = n / val_episodes).
        batch_size: samples per batch.
        only_success: drop unsuccessful demonstrations.
        on_error: ``raise`` or ``skip`` malformed episodes.
        seed: shuffle seed.
    """

    def __init__(
        self,
        path: str = "data/policy/metaworld_demos.zarr",
        n_obs_steps: int = 2,
        horizon: int = 16,
        val_episodes: int = 5,
        batch_size: int = 256,
        only_success: bool = True,
        on_error: Literal["raise", "skip"] = "raise",
        seed: int = 0,
    ):
        super().__init__()
        self.path, self.n_obs_steps, self.horizon = path, n_obs_steps, horizon
        self.val_episodes, self.batch_size, self.only_success = val_episodes, batch_size, only_success
        self.on_error, self.seed = on_error, seed
        self.attrs: dict[str, Any] = {}
        self.episodes: list[Episode] = []

    def load(self) -> None:
        if self.episodes:
            return
        if self.path == "synthetic":
            self.episodes = synthetic_episodes()
            self.attrs = {"tasks": ["task0", "task1"], "action_low": [-1.0] * 2, "action_high": [1.0] * 2}
        else:
            self.episodes, self.attrs = load_episodes(self.path, self.on_error)
        if self.only_success:
            self.episodes = [e for e in self.episodes if e.success]
        if len(self.episodes) < 2:
            raise ValueError(f"PolicyDataModule: {self.path} holds {len(self.episodes)} usable episode(s), need >= 2")

    def setup(self, stage: str | None = None) -> None:
        self.load()
        n = len(self.episodes)
        k = max(2, n // max(1, self.val_episodes)) if self.val_episodes else n + 1
        val_idx = set(range(k - 1, n, k)) if self.val_episodes else set()
        train = [e for i, e in enumerate(self.episodes) if i not in val_idx]
        val = [e for i, e in enumerate(self.episodes) if i in val_idx] or train[:1]
        self.train_set = ChunkDataset(train, self.n_obs_steps, self.horizon)
        self.val_set = ChunkDataset(val, self.n_obs_steps, self.horizon)

    def stats(self) -> dict[str, Tensor]:
        """Per-dimension min / max of observations and actions over the training samples."""
        d = self.train_set.data
        obs, act = d["obs"].flatten(0, 1), d["action"].flatten(0, 1)
        return {
            "obs_min": obs.min(0).values,
            "obs_max": obs.max(0).values,
            "action_min": act.min(0).values,
            "action_max": act.max(0).values,
        }

    def train_dataloader(self):
        return seeded_loader(self.train_set, self.batch_size, shuffle=True, seed=self.seed, drop_last=True)

    def val_dataloader(self):
        return seeded_loader(self.val_set, self.batch_size, shuffle=False)
