"""Episode stores: exact round trips, rejection of malformed episodes by index, windowing semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditkit_robotics.data import (
    Episode,
    EpisodeError,
    PolicyDataModule,
    load_episodes,
    load_zarr_episodes,
    make_windows,
    synthetic_episodes,
    write_zarr_episodes,
)


def _write(path, episodes):
    return write_zarr_episodes(path, episodes, tasks=["task0", "task1"], action_low=[-1, -1], action_high=[1, 1])


def test_zarr_round_trip_exact(tmp_path):
    eps = synthetic_episodes(n=4, length=10)
    _write(tmp_path / "d.zarr", eps)
    back, attrs = load_episodes(tmp_path / "d.zarr")
    assert attrs["tasks"] == ["task0", "task1"] and attrs["action_low"] == [-1, -1]
    assert len(back) == 4
    for a, b in zip(eps, back):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.action, b.action)
        assert (a.task_id, a.task, a.success, a.seed) == (b.task_id, b.task, b.success, b.seed)


def _corrupt(tmp_path, how: str):
    import zarr

    eps = synthetic_episodes(n=5, length=10)
    path = _write(tmp_path / f"{how}.zarr", eps)
    g = zarr.open_group(str(path), mode="a")["episodes/000003"]
    if how == "nan":
        obs = g["obs"][:]
        obs[4, 1] = np.nan
        g["obs"][:] = obs
    elif how == "length":
        del g["action"]
        g.create_array("action", data=np.zeros((7, 2), np.float32))
    elif how == "missing":
        del g["action"]
    return path


@pytest.mark.parametrize(
    "how, words",
    [("nan", ["NaN", "step 4", "column 1"]), ("length", ["length mismatch"]), ("missing", ["missing key", "action"])],
)
def test_malformed_episode_rejected_with_index(tmp_path, how, words):
    path = _corrupt(tmp_path, how)
    with pytest.raises(EpisodeError) as err:
        load_zarr_episodes(path)
    msg = str(err.value)
    assert "episode 3" in msg and str(path) in msg
    for w in words:
        assert w in msg
    with pytest.warns(UserWarning, match="episode 3"):
        eps, _ = load_zarr_episodes(path, on_error="skip")
    assert len(eps) == 4


def test_lerobot_folder_round_trip_and_rejection(tmp_path):
    pytest.importorskip("pyarrow")
    from ditkit_robotics.data import write_lerobot_episodes

    eps = synthetic_episodes(n=3, length=12)
    root = write_lerobot_episodes(tmp_path / "lr", eps, tasks=["task0", "task1"])
    back, attrs = load_episodes(root)
    assert attrs["tasks"] == ["task0", "task1"]
    for a, b in zip(eps, back):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.action, b.action)
        assert a.task_id == b.task_id
    # declared length in meta/episodes.jsonl disagrees with the parquet rows of episode 1
    lines = (root / "meta" / "episodes.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace('"length": 12', '"length": 11')
    (root / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(EpisodeError, match=r"episode_000001.parquet episode 1: length=11: length mismatch") as err:
        load_episodes(root)
    assert "episodes.jsonl line 2" in str(err.value)


def test_nonfinite_and_empty_rejected_in_memory(tmp_path):
    from ditkit_robotics.data import validate_episode

    with pytest.raises(EpisodeError, match="mem episode 7: action=inf: 1 NaN / infinite"):
        validate_episode({"obs": np.zeros((3, 2)), "action": np.array([[0, 0], [np.inf, 0], [0, 0]])}, 7, "mem")
    with pytest.raises(EpisodeError, match="empty"):
        validate_episode({"obs": np.zeros((0, 2)), "action": np.zeros((0, 2))}, 0, "mem")


def test_windows_pad_like_diffusion_policy():
    obs = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # obs[i] = i
    act = 10 + np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    w = make_windows([Episode(obs, act, task_id=1)], n_obs_steps=2, horizon=4)
    assert w["obs"].shape == (5, 2, 3) and w["action"].shape == (5, 4, 2)
    assert w["obs"][0, :, 0].tolist() == [0, 0]  # first observation repeated
    assert w["obs"][3, :, 0].tolist() == [2, 3]
    assert w["action"][3, :, 0].tolist() == [13, 14, 14, 14]  # last action repeated
    assert torch.equal(w["task_id"], torch.ones(5, dtype=torch.long))


def test_datamodule_split_and_stats(tmp_path):
    _write(tmp_path / "d.zarr", synthetic_episodes(n=10, length=8))
    dm = PolicyDataModule(str(tmp_path / "d.zarr"), horizon=4, val_episodes=2, batch_size=8)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 80 and len(dm.val_set) == 16
    s = dm.stats()
    assert s["action_min"].shape == (2,) and bool((s["action_min"] >= -1).all())
    batch = next(iter(dm.train_dataloader()))
    assert batch["obs"].shape == (8, 2, 6) and batch["action"].shape == (8, 4, 2)
