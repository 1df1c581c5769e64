"""Demonstration episodes: loading (ditkit zarr stores, LeRobot-style v2 / v3 folders), windowing into
(observation, action-chunk) pairs, the synthetic default, and the Lightning DataModule.

* :mod:`ditkit_robotics.episodes`: the :class:`Episode` record, :func:`validate_episode`, :class:`EpisodeError`.
* :mod:`ditkit_robotics.zarr_store`: the ditkit zarr schema (``make data-policy``).
* :mod:`ditkit_robotics.lerobot`: LeRobot-style folders (``lerobot`` extra).

Every episode is validated on load: missing keys, wrong ranks, complex or non-numeric data, obs / action length
mismatch, empty episodes, NaN / inf / beyond-float32 values and task ids outside the task list raise
:class:`EpisodeError` naming the file, the episode (and row), the field and the value (``on_error="skip"`` drops
such episodes and counts them per reason instead). Sizes in headers are bounded before anything is allocated.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.lightning.data import seeded_loader
from ditkit_robotics.episodes import (
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_STEPS,
    REQUIRED_KEYS,
    Episode,
    EpisodeError,
    check_on_error,
    validate_episode,
)
from ditkit_robotics.lerobot import load_lerobot_episodes, write_lerobot_episodes
from ditkit_robotics.zarr_store import FORMAT, VERSION, load_zarr_episodes, write_zarr_episodes

__all__ = [
    "FORMAT",
    "REQUIRED_KEYS",
    "VERSION",
    "ChunkDataset",
    "Episode",
    "EpisodeError",
    "PolicyDataModule",
    "load_episodes",
    "load_lerobot_episodes",
    "load_zarr_episodes",
    "make_windows",
    "synthetic_episodes",
    "validate_episode",
    "write_lerobot_episodes",
    "write_zarr_episodes",
]


def load_episodes(path: str | Path, on_error: Literal["raise", "skip"] = "raise") -> tuple[list[Episode], dict]:
    """Load a ditkit zarr store (``*.zarr`` or a folder with ``zarr.json`` / ``.zgroup``) or a LeRobot-style folder.

    Raises:
        FileNotFoundError: nothing at ``path``.
        EpisodeError / DataError: bad data, naming the file, episode, field and value.
    """
    check_on_error(on_error)
    path = Path(path)
    if path.suffix == ".zarr" or (path / "zarr.json").exists() or (path / ".zgroup").exists():
        return load_zarr_episodes(path, on_error)
    return load_lerobot_episodes(path, on_error=on_error)


def _positive(name: str, value: Any, hi: int, lo: int = 1) -> int:
    """An integer argument in ``[lo, hi]``; the error names the argument and the value."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r}: expected an integer in [{lo}, {hi}]")
    return int(value)


# ---------------------------------------------------------------------------------------------- windows
def make_windows(episodes: Sequence[Episode], n_obs_steps: int, horizon: int) -> dict[str, Tensor]:
    """Cut every episode into training samples, one per step (Diffusion-Policy padding).

    Sample ``i`` of an episode sees observations ``i - n_obs_steps + 1 .. i`` (the first observation repeated
    before the start) and predicts actions ``i .. i + horizon - 1`` (the last action repeated after the end).

    Returns:
        ``obs [N, n_obs_steps, obs_dim]``, ``action [N, horizon, action_dim]``, ``task_id [N]`` long.
    """
    n_obs_steps = _positive("make_windows: n_obs_steps", n_obs_steps, MAX_STEPS)
    horizon = _positive("make_windows: horizon", horizon, MAX_STEPS)
    if not episodes:
        raise ValueError("make_windows: no episodes")
    total = sum(len(ep) * (n_obs_steps * ep.obs.shape[1] + horizon * ep.action.shape[1]) for ep in episodes)
    if total > 4 * MAX_ELEMENTS:
        raise ValueError(
            f"make_windows: {total} window values exceed {4 * MAX_ELEMENTS} (n_obs_steps={n_obs_steps}, "
            f"horizon={horizon}); use shorter windows"
        )
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

    Args:
        n: episodes, in ``[1, 100000]``.
        length: steps per episode, in ``[1, MAX_STEPS]``.
        obs_dim: observation width, at least ``2 * action_dim``.
        action_dim: action width, in ``[1, 1024]``.
        tasks: tasks (episode ``i`` has task ``i % tasks``), in ``[1, 1000]``.
        seed: RNG seed, ``>= 0``.

    Raises:
        ValueError: an argument outside its range (named with its value), or more than ``MAX_ELEMENTS`` values.
    """
    n = _positive("synthetic_episodes: n", n, 100_000)
    length = _positive("synthetic_episodes: length", length, MAX_STEPS)
    action_dim = _positive("synthetic_episodes: action_dim", action_dim, 1024)
    obs_dim = _positive("synthetic_episodes: obs_dim", obs_dim, MAX_DIM, lo=2 * action_dim)
    tasks = _positive("synthetic_episodes: tasks", tasks, 1000)
    seed = _positive("synthetic_episodes: seed", seed, 2**63 - 1, lo=0)
    if n * length * (obs_dim + action_dim) > MAX_ELEMENTS:
        raise ValueError(
            f"synthetic_episodes: n={n} x length={length} x (obs_dim + action_dim)={obs_dim + action_dim} "
            f"values exceed {MAX_ELEMENTS}"
        )
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
        on_error: ``raise`` or ``skip`` malformed episodes (skips are counted in ``attrs["skipped"]``).
        seed: shuffle seed.

    Raises:
        ValueError: an argument outside its range (named with its value).
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
        if not isinstance(path, (str, Path)) or not str(path):
            raise ValueError(f"PolicyDataModule: path={path!r}: expected a store path or 'synthetic'")
        n_obs_steps = _positive("PolicyDataModule: n_obs_steps", n_obs_steps, 1024)
        horizon = _positive("PolicyDataModule: horizon", horizon, 1024)
        val_episodes = _positive("PolicyDataModule: val_episodes", val_episodes, 10**6, lo=0)
        batch_size = _positive("PolicyDataModule: batch_size", batch_size, 10**6)
        seed = _positive("PolicyDataModule: seed", seed, 2**63 - 1, lo=0)
        check_on_error(on_error)
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
