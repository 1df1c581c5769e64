"""Regression tests of the hardening: one per defect found by the hostile-input audit.

Task ids out of range, loader errors that did not name the file, NaN / inf / huge / complex values, hostile sizes in
headers, LeRobot v3 folders, atomic store writes and argument checks of inference and evaluation.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ditkit_core.errors import DataError
from ditkit_core.lightning import SamplerConfig
from ditkit_core.nn import DiTConfig
from ditkit_robotics import ActionChunkTokenizer, PolicyModule
from ditkit_robotics.data import (
    EpisodeError,
    PolicyDataModule,
    load_episodes,
    make_windows,
    synthetic_episodes,
    write_zarr_episodes,
)
from ditkit_robotics.evaluate import calibrate_block_cache, evaluate, policy_chunker

pytest.importorskip("pyarrow")

EP1 = "episodes/000001"


def _policy(num_tasks: int = 2) -> PolicyModule:
    torch.manual_seed(0)
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8, n_obs_steps=2)
    cfg = DiTConfig(in_dim=2, dim=16, depth=1, heads=2, cond_dim=16, context_dim=16, learned_pos=8)
    return PolicyModule(tok, cfg, num_tasks=num_tasks, n_action_steps=4, sampler=SamplerConfig(steps=2)).eval()


# ------------------------------------------------------------------------------ 1. task ids out of range
def test_lerobot_v2_task_index_minus_one_is_rejected_not_the_last_task(tmp_path, fx):
    root = fx.lerobot_folder(tmp_path / "lr")
    f = root / "data/chunk-000/episode_000001.parquet"
    fx.edit_parquet(f, lambda c: c.update(task_index=[-1] * len(c["task_index"])))
    with pytest.raises(EpisodeError) as err:
        load_episodes(root)
    msg = str(err.value)
    assert "episode_000001.parquet episode 1 record 1: task_index=-1: task id outside [0, 2)" in msg
    with pytest.warns(UserWarning, match="task id out of range"):
        eps, attrs = load_episodes(root, on_error="skip")
    assert len(eps) == 2 and attrs["skipped"] == {"task id out of range": 1}


def test_lerobot_v3_task_index_past_the_task_list_names_file_and_row(tmp_path, fx):
    root = fx.lerobot_folder(tmp_path / "lr3", version="v3.0")
    f = root / "data/chunk-000/file-001.parquet"  # episode 2 alone (2 episodes per file)

    def bump(c):
        c["task_index"][3] = 2  # row 4 of episode 2

    fx.edit_parquet(f, bump)
    with pytest.raises(
        EpisodeError, match=r"file-001.parquet episode 2 record 4: task_index=2: task id outside \[0, 2\)"
    ):
        load_episodes(root)


def test_zarr_task_id_out_of_range_and_mismatched_name(tmp_path, fx):
    store = fx.zarr_store(tmp_path / "s.zarr")
    fx.set_zarr_attr(store, EP1, task_id=-1)
    with pytest.raises(EpisodeError, match=r"000001 episode 1: task_id=-1: task id outside \[0, 2\)"):
        load_episodes(store)
    fx.set_zarr_attr(store, EP1, task_id=0, task="task1")  # name of task 1, id of task 0
    with pytest.raises(EpisodeError, match=r"episode 1: task='task1': task name differs"):
        load_episodes(store)


def test_predict_action_rejects_bad_task_ids():
    p = _policy(num_tasks=2)
    obs = torch.zeros(2, 2, 6)
    with pytest.raises(ValueError, match=r"predict_action: task_id\[1\]=2: task id outside \[0, 2\)"):
        p.predict_action(obs, torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"predict_action: task_id\[0\]=-1"):
        p.predict_action(obs, torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="predict_action: task_id: a policy of 2 tasks needs task ids"):
        p.predict_action(obs, None)
    with pytest.raises(ValueError, match="predict_action: task_id: expected integer task ids"):
        p.predict_action(obs, torch.tensor([0.0, 1.0]))
    assert p.predict_action(obs, torch.tensor([0, 1])).shape == (2, 8, 2)


def test_evaluation_arguments_name_the_bad_task():
    p = _policy(num_tasks=2)
    with pytest.raises(ValueError, match="task id 2 is out of range"):
        evaluate(p, ["reach-v3", "push-v3", "drawer-open-v3"], episodes=1)
    with pytest.raises(ValueError, match=r"policy_chunker: task_id=2: expected an integer in \[0, 1\]"):
        policy_chunker(p, 2, steps=2)
    with pytest.raises(ValueError, match="evaluate: gif_task='push-v3'"):
        evaluate(p, ["reach-v3"], gif_task="push-v3")
    for kw, name in [({"steps": 0}, "steps"), ({"episodes": 0}, "episodes"), ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=f"evaluate: {name}="):
            evaluate(p, ["reach-v3"], **kw)


# ------------------------------------------------------------------------------ 2. every loader error names the file
def test_lerobot_metadata_errors_name_the_file_and_line(tmp_path, fx):
    base = fx.lerobot_folder(tmp_path / "base")
    cases = {
        "info.json": (b'{"fps": 80,', r"meta/info.json line 1: invalid JSON"),
        "tasks.jsonl": (
            b'{"task_index": 0, "task": "a"}\n{"task_index": 1}\n',
            r"tasks.jsonl line 2: task=None: missing",
        ),
        "episodes.jsonl": (
            b'{"episode_index": 0, "length": 6}\n{"episode_index": 1, "length": "six"}\n',
            r"episodes.jsonl line 2: length='six': expected an integer",
        ),
    }
    for name, (content, pattern) in cases.items():
        root = fx.copy(base, tmp_path / name)
        (root / "meta" / name).write_bytes(content)
        with pytest.raises(DataError, match=pattern):
            load_episodes(root)
    root = fx.copy(base, tmp_path / "utf8")
    (root / "meta/episodes.jsonl").write_bytes(
        b'{"episode_index": 0, "length": 6}\n{"episode_index": 1, "tasks": ["caf\xe9"]}\n'
    )
    with pytest.raises(DataError, match=r"episodes.jsonl line 2: not UTF-8"):
        load_episodes(root)
    root = fx.copy(base, tmp_path / "types")
    fx.edit_json(root / "meta/info.json", lambda d: d.update(fps="fast"))
    with pytest.raises(DataError, match=r"info.json: fps='fast'"):
        load_episodes(root)
    fx.edit_json(root / "meta/info.json", lambda d: [1, 2])
    with pytest.raises(DataError, match=r"info.json: expected a JSON object, got list"):
        load_episodes(root)


def test_corrupt_parquet_and_zarr_files_are_named(tmp_path, fx):
    root = fx.lerobot_folder(tmp_path / "lr")
    f = root / "data/chunk-000/episode_000002.parquet"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(EpisodeError, match=r"episode_000002.parquet episode 2: cannot read parquet"):
        load_episodes(root)
    store = fx.zarr_store(tmp_path / "s.zarr")
    chunk = store / EP1 / "obs/c/0/0"
    chunk.write_bytes(b"\x28\xb5\x2f\xfd garbage")  # a zstd magic number, then garbage
    with pytest.raises(EpisodeError, match=r"000001/obs episode 1: obs=None: cannot read"):
        load_episodes(store)
    store = fx.zarr_store(tmp_path / "t.zarr")
    (store / EP1 / "zarr.json").write_bytes(b'{"attributes": {"task": "caf\xe9"}}')
    with pytest.raises(EpisodeError, match=r"000001/zarr.json episode 1 line 1: not UTF-8"):
        load_episodes(store)
    store = fx.zarr_store(tmp_path / "v2.zarr", zarr_format=2)
    assert len(load_episodes(store)[0]) == 3
    (store / EP1 / "obs/.zarray").write_bytes(b'{"shape": [6, 6], "dtype": "<f\xe94"}')
    with pytest.raises(EpisodeError, match=r"obs/.zarray episode 1 line 1: not UTF-8"):
        load_episodes(store)


def test_damaged_chunks_are_detected_not_read_as_garbage(tmp_path, fx):
    # format 2, blosc: numcodecs' decoder reads past the end of a truncated frame; the frame header is checked first
    store = fx.zarr_store(tmp_path / "v2.zarr", zarr_format=2)
    chunk = store / EP1 / "action/0.0"
    chunk.write_bytes(chunk.read_bytes()[:32])
    with pytest.raises(
        EpisodeError, match=r"action/0.0 episode 1: action=None: blosc frame of 64 bytes declared, the file holds 32"
    ):
        load_episodes(store)
    # format 3 as written: zstd frames with a checksum, so a flipped bit is an error, not a changed value
    store = fx.zarr_store(tmp_path / "v3.zarr")
    chunk = store / EP1 / "obs/c/0/0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x10
    chunk.write_bytes(bytes(data))
    with pytest.raises(EpisodeError, match=r"000001/obs episode 1: obs=None: cannot read"):
        load_episodes(store)
    root = fx.lerobot_folder(tmp_path / "lr")
    (root / "meta/tasks.jsonl").write_text("")
    with pytest.raises(DataError, match=r"tasks.jsonl: lists no task"):
        load_episodes(root)


# ------------------------------------------------------------------------------ 3. NaN / inf / huge / complex values
def test_predict_action_rejects_nonfinite_and_huge_observations():
    p = _policy(num_tasks=0)
    obs = torch.zeros(1, 2, 6)
    obs[0, 1, 3] = float("nan")
    with pytest.raises(
        ValueError, match=r"predict_action: obs: 1 NaN / infinite / beyond-float32 value\(s\), first obs\[0, 1, 3\]=nan"
    ):
        p.predict_action(obs)
    big = torch.zeros(1, 2, 6, dtype=torch.float64)
    big[0, 0, 0] = 1e300
    with pytest.raises(ValueError, match=r"obs\[0, 0, 0\]=1e\+300"):
        p.predict_action(big)
    with pytest.raises(ValueError, match="predict_action: obs: expected real numbers"):
        p.predict_action(torch.zeros(1, 2, 6, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"predict_action: obs: expected shape \[b >= 1, 2, 6\], got \(1, 6\)"):
        p.predict_action(torch.zeros(1, 6))
    with pytest.raises(ValueError, match="predict_action: steps=0"):
        p.predict_action(torch.zeros(1, 2, 6), steps=0)
    assert torch.isfinite(p.predict_action(torch.zeros(1, 2, 6), steps=1)).all()


@pytest.mark.parametrize(
    "value, words",
    [
        (np.full((6, 6), 1e300), ["obs=1e+300", "beyond-float32"]),
        (np.full((6, 6), np.inf, np.float32), ["obs=inf", "step 0, column 0"]),
        (np.ones((6, 6), np.complex64), ["complex values", "obs/zarr.json", "data_type='complex64'"]),
        (np.zeros((6, 6, 1), np.float32), ["must be [T, dim]"]),
    ],
)
def test_zarr_values_that_would_be_silently_wrong_are_rejected(tmp_path, fx, value, words):
    store = fx.zarr_store(tmp_path / "s.zarr")
    fx.set_zarr_array(store, f"{EP1}/obs", value)
    with pytest.raises(EpisodeError) as err:
        load_episodes(store)
    assert "episode 1" in str(err.value) and "000001" in str(err.value)
    for w in words:
        assert w in str(err.value)


def test_lerobot_nonfinite_action_and_ragged_rows(tmp_path, fx):
    root = fx.lerobot_folder(tmp_path / "lr")
    f = root / "data/chunk-000/episode_000000.parquet"

    def poison(c):
        c["action"][2] = [float("inf"), 0.0]

    fx.edit_parquet(f, poison)
    with pytest.raises(EpisodeError, match=r"episode_000000.parquet episode 0: action=inf: 1 NaN / infinite"):
        load_episodes(root)
    fx.edit_parquet(f, lambda c: c["action"].__setitem__(2, [0.0]))
    with pytest.raises(EpisodeError, match=r"episode_000000.parquet episode 0 record 3: action=1: ragged vectors"):
        load_episodes(root)


# ------------------------------------------------------------------------------ 4. hostile sizes in headers
def test_hostile_sizes_are_refused_before_allocating(tmp_path, fx):
    store = fx.zarr_store(tmp_path / "s.zarr")
    fx.edit_json(store / EP1 / "obs/zarr.json", lambda d: d.update(shape=[10**12, 6]))
    with pytest.raises(EpisodeError, match=r"obs/zarr.json episode 1: shape\[0\]=1000000000000: outside"):
        load_episodes(store)
    store = fx.zarr_store(tmp_path / "c.zarr")
    fx.edit_json(
        store / EP1 / "action/zarr.json",
        lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[1 << 20, 1 << 20]),
    )
    with pytest.raises(EpisodeError, match=r"action/zarr.json episode 1: chunks=\[1048576, 1048576\]: chunks exceed"):
        load_episodes(store)
    root = fx.lerobot_folder(tmp_path / "lr")
    fx.edit_json(root / "meta/info.json", lambda d: d["features"]["observation.state"].update(shape=[10**9]))
    with pytest.raises(DataError, match=r"info.json: features.observation.state.shape=1000000000: outside"):
        load_episodes(root)
    root = fx.lerobot_folder(tmp_path / "lr2")
    (root / "meta/episodes.jsonl").write_text(json.dumps({"episode_index": 0, "length": 10**12}) + "\n")
    with pytest.raises(DataError, match=r"episodes.jsonl line 1: length=1000000000000: outside"):
        load_episodes(root)


def test_synthetic_and_window_arguments_are_bounded():
    with pytest.raises(ValueError, match=r"synthetic_episodes: n=0: expected an integer in \[1, 100000\]"):
        synthetic_episodes(n=0)
    with pytest.raises(ValueError, match=r"synthetic_episodes: obs_dim=3: expected an integer in \[4, "):
        synthetic_episodes(obs_dim=3, action_dim=2)
    with pytest.raises(ValueError, match="values exceed"):
        synthetic_episodes(n=100_000, length=100_000)
    with pytest.raises(ValueError, match="make_windows: horizon=0"):
        make_windows(synthetic_episodes(n=1), 2, 0)
    with pytest.raises(ValueError, match="window values exceed"):
        make_windows(synthetic_episodes(n=2, length=1000), 2, 1_000_000)
    with pytest.raises(ValueError, match="PolicyDataModule: batch_size=0"):
        PolicyDataModule("synthetic", batch_size=0)
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        PolicyDataModule("synthetic", on_error="ignore")


# ------------------------------------------------------------------------------ 5. LeRobot v3, and v2 next to it
@pytest.mark.parametrize("version", ["v2.1", "v3.0"])
def test_lerobot_round_trip_exact(tmp_path, fx, version):
    eps = synthetic_episodes(n=5, length=7)
    from ditkit_robotics.data import write_lerobot_episodes

    root = write_lerobot_episodes(tmp_path / "lr", eps, fx.TASKS, version=version, episodes_per_file=2)
    if version == "v3.0":
        assert len(list(root.glob("data/chunk-000/file-*.parquet"))) == 3 and (root / "meta/tasks.parquet").exists()
    back, attrs = load_episodes(root)
    assert attrs["codebase_version"] == version and attrs["tasks"] == fx.TASKS and attrs["fps"] == 80
    assert [(e.task_id, e.task) for e in back] == [(e.task_id, e.task) for e in eps]
    for a, b in zip(eps, back):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.action, b.action)


def test_lerobot_v3_metadata_checks(tmp_path, fx):
    base = fx.lerobot_folder(tmp_path / "base", version="v3.0")
    root = fx.copy(base, tmp_path / "escape")
    fx.edit_json(root / "meta/info.json", lambda d: d.update(data_path="../../{chunk_index}/{file_index}.parquet"))
    with pytest.raises(DataError, match=r"info.json: data_path='../../0/0.parquet': leaves the data folder"):
        load_episodes(root)
    fx.edit_json(root / "meta/info.json", lambda d: d.update(data_path="data/{chunk_index.__class__}.parquet"))
    with pytest.raises(DataError, match="info.json: data_path=.*may only use"):
        load_episodes(root)
    root = fx.copy(base, tmp_path / "length")
    f = root / "meta/episodes/chunk-000/file-000.parquet"
    fx.edit_parquet(f, lambda c: c["length"].__setitem__(1, 5))
    pattern = r"file-000.parquet episode 1: length=5: length mismatch, declared length 5 in .*file-000.parquet record 2"
    with pytest.raises(EpisodeError, match=pattern):
        load_episodes(root)
    root = fx.copy(base, tmp_path / "frames")
    fx.edit_parquet(root / "data/chunk-000/file-000.parquet", lambda c: c["frame_index"].__setitem__(3, 7))
    with pytest.raises(EpisodeError, match=r"file-000.parquet episode 0 record 4: frame_index=7: frames must run"):
        load_episodes(root)
    root = fx.copy(base, tmp_path / "tasks")
    fx.edit_parquet(root / "meta/tasks.parquet", lambda c: c["task_index"].__setitem__(1, 5))
    with pytest.raises(DataError, match=r"tasks.parquet: task_index=1: task indices must run 0..1"):
        load_episodes(root)


# ------------------------------------------------------------------------------ atomic writes, truncation, skips
def test_zarr_write_is_atomic_and_truncated_stores_are_detected(tmp_path, fx):
    store = fx.zarr_store(tmp_path / "s.zarr", n=5)
    bad = synthetic_episodes(n=2)
    bad[1].action = "not numbers"  # the writer fails on the second episode
    with pytest.raises(ValueError):
        write_zarr_episodes(store, bad, tasks=fx.TASKS, action_low=[-1, -1], action_high=[1, 1])
    assert len(load_episodes(store)[0]) == 5  # the old store is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no temporary folder left behind
    import shutil

    shutil.rmtree(store / "episodes/000004")
    with pytest.raises(DataError, match=r"s.zarr/zarr.json: num_episodes=5: the store holds 4 episode group\(s\)"):
        load_episodes(store)


def test_skipped_episodes_are_counted_by_reason(tmp_path, fx, caplog):
    store = fx.zarr_store(tmp_path / "s.zarr", n=5)
    fx.set_zarr_array(store, f"{EP1}/obs", np.full((6, 6), np.nan, np.float32))
    fx.set_zarr_attr(store, "episodes/000003", task_id=7)
    with caplog.at_level(logging.WARNING, logger="ditkit"), pytest.warns(UserWarning, match="skipped 2"):
        eps, attrs = load_episodes(store, on_error="skip")
    assert len(eps) == 3 and attrs["skipped"] == {"non-finite value": 1, "task id out of range": 1}
    assert "000001 episode 1: obs=nan" in caplog.text and "000003 episode 3: task_id=7" in caplog.text


def test_block_cache_calibration_checks_its_observations():
    p = _policy(num_tasks=0)
    with pytest.raises(ValueError, match="calibrate_block_cache: obs: 2 NaN"):
        calibrate_block_cache(p, torch.tensor([[[float("nan")] + [0.0] * 5] * 2]), None, steps=2)
    with pytest.raises(ValueError, match="calibrate_block_cache: threshold=-1"):
        calibrate_block_cache(p, torch.zeros(1, 2, 6), None, steps=2, threshold=-1)
