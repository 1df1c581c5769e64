"""Fuzzing of every robotics load path in child processes (``ditkit_core.testing.fuzz``).

Each public path is hit with hostile files: the byte-level variants of :func:`hostile_files` (empty, truncated,
random, flipped, NUL, non-UTF-8, doubled) of every metadata, chunk and parquet file of a valid store, and semantic
cases (NaN / inf / huge / complex values, wrong shapes and dtypes, out-of-range task ids, hostile sizes in headers,
path traversal). Contract: no crash, hang or memory blow-up; every failure a ``ValueError`` naming the store; every
success finite; every semantically invalid case refused. The synthetic generator's arguments and
``predict_action``'s inputs are swept the same way.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ditkit_core.testing.fuzz import assert_clean, hostile_files, run_cases

pytest.importorskip("pyarrow")

LOAD = "ditkit_robotics.data:load_episodes"
EP1 = "episodes/000001"


def _variants(base: Path, rel: str, out: Path, tag: str, seed: int = 0) -> list[dict]:
    """A copy of ``base`` per hostile variant of its file ``rel``; alternate raise / skip modes."""
    src = base / rel
    cases = []
    for k, (name, p) in enumerate(hostile_files(src.read_bytes(), out / f"_{tag}", src.suffix, seed=seed).items()):
        dst = out / f"{tag}-{name}{'.zarr' if base.suffix == '.zarr' else ''}"
        shutil.copytree(base, dst)
        shutil.copyfile(p, dst / rel)
        cases.append({"path": str(dst), "on_error": "skip" if k % 2 else "raise"})
    return cases


def _zarr_hostile(fx, out: Path) -> list[dict]:
    v3 = fx.zarr_store(out / "base3.zarr")
    v2 = fx.zarr_store(out / "base2.zarr", zarr_format=2)
    files3 = ["zarr.json", "episodes/zarr.json", f"{EP1}/zarr.json", f"{EP1}/obs/zarr.json", f"{EP1}/obs/c/0/0"]
    files2 = [".zattrs", f"{EP1}/.zattrs", f"{EP1}/action/.zarray", f"{EP1}/action/0.0"]
    cases = []
    for base, files in ((v3, files3), (v2, files2)):
        for j, rel in enumerate(files):
            cases += _variants(base, rel, out, f"{base.stem}-{j}")
    return cases


def _lerobot_hostile(fx, out: Path) -> list[dict]:
    v2 = fx.lerobot_folder(out / "lr2")
    v3 = fx.lerobot_folder(out / "lr3", version="v3.0")
    files2 = ["meta/info.json", "meta/tasks.jsonl", "meta/episodes.jsonl", "data/chunk-000/episode_000001.parquet"]
    files3 = [
        "meta/info.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
    ]
    cases = []
    for base, files in ((v2, files2), (v3, files3)):
        for j, rel in enumerate(files):
            cases += _variants(base, rel, out, f"{base.name}-{j}")
    return cases


def _zarr_invalid(fx, out: Path) -> list[dict]:
    """Stores that are each wrong in one way; every one must be refused."""
    arrays = {
        "nan": np.full((6, 6), np.nan, np.float32),
        "inf": np.full((6, 6), -np.inf, np.float32),
        "huge64": np.full((6, 6), 1e300),
        "complex": np.ones((6, 6), np.complex128),
        "rank1": np.zeros(6, np.float32),
        "rank3": np.zeros((6, 6, 2), np.float32),
        "empty": np.zeros((0, 6), np.float32),
        "short": np.zeros((5, 6), np.float32),
        "strings": np.array([["a"] * 6] * 6),
    }
    attrs = {
        "task_neg": {"task_id": -1},
        "task_past": {"task_id": 2},
        "task_str": {"task_id": "x"},
        "task_frac": {"task_id": 1.5},
        "task_big": {"task_id": 10**30},
        "success_str": {"success": "yes"},
        "seed_str": {"seed": "s"},
        "task_name": {"task": 3},
    }
    headers = {
        "shape_huge": lambda d: d.update(shape=[10**12, 6]),
        "shape_wide": lambda d: d.update(shape=[6, 10**9]),
        "shape_neg": lambda d: d.update(shape=[-1, 6]),
        "shape_str": lambda d: d.update(shape="6x6"),
        "chunks_huge": lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[1 << 30, 1 << 30]),
        "chunks_zero": lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[0, 6]),
        "dtype_obj": lambda d: d.update(data_type="object"),
        "format_7": lambda d: d.update(zarr_format=7),
        "grid_list": lambda d: d.update(chunk_grid={"name": "regular", "configuration": [6, 6]}),
        "chunks_float": lambda d: d["chunk_grid"]["configuration"].update(chunk_shape=[2.5, 6]),
        "blosc_claim": lambda d: d["codecs"][1].update(name="blosc", configuration={"cname": "lz4", "clevel": 5}),
        "node_group": lambda d: d.update(node_type="group"),
        "as_list": lambda d: [d],
    }
    roots = {
        "format": {"format": "other"},
        "version": {"version": 2},
        "tasks": {"tasks": "task0"},
        "obs_dim": {"obs_dim": 7},
        "low_nan": {"action_low": [float("nan"), 0.0]},
        "low_high": {"action_low": [2.0, 2.0]},
        "num_episodes": {"num_episodes": 99},
    }
    base = fx.zarr_store(out / "zbase.zarr")
    cases = []

    def case(name: str) -> Path:
        dst = shutil.copytree(base, out / f"z-{name}.zarr")
        cases.append({"path": str(dst), "on_error": "raise"})
        return Path(dst)

    for name, value in arrays.items():
        fx.set_zarr_array(case(name), f"{EP1}/obs", value)
    for name, value in attrs.items():
        fx.set_zarr_attr(case(name), EP1, **value)
    for name, fn in headers.items():
        fx.edit_json(case(name) / EP1 / "obs/zarr.json", fn)
    for name, value in roots.items():
        fx.edit_json(case(name) / "zarr.json", lambda d, v=value: d["attributes"].update(v))
    shutil.rmtree(case("missing_action") / EP1 / "action")
    shutil.copytree(base / EP1, case("bad_name") / "episodes/abc")
    shutil.copytree(base / EP1, case("dup_group") / "episodes/1")
    fx.edit_json(case("attrs_list") / "zarr.json", lambda d: d.update(attributes=[1]))
    fx.edit_json(case("ep_attrs_list") / EP1 / "zarr.json", lambda d: d.update(attributes="x"))
    (case("deep_json") / EP1 / "zarr.json").write_text("[" * 100_000)
    (case("big_int") / EP1 / "zarr.json").write_text('{"attributes": {"task_id": ' + "1" * 5000 + "}}")
    (out / "file.zarr").write_bytes(b"not a folder")
    cases.append({"path": str(out / "file.zarr"), "on_error": "raise"})
    return cases


def _lerobot_invalid(fx, out: Path) -> list[dict]:
    v2, v3 = fx.lerobot_folder(out / "b2"), fx.lerobot_folder(out / "b3", version="v3.0")
    f2, f3 = "data/chunk-000/episode_000001.parquet", "data/chunk-000/file-000.parquet"
    cases = []

    def case(base: Path, name: str) -> Path:
        dst = shutil.copytree(base, out / f"{base.name}-{name}")
        cases.append({"path": str(dst), "on_error": "raise"})
        return Path(dst)

    def rows(name: str, col: str, fn, base: Path = v2, rel: str = f2) -> None:
        fx.edit_parquet(case(base, name) / rel, lambda c: c.__setitem__(col, fn(c[col])))

    for base, rel in ((v2, f2), (v3, f3)):
        t = base.name
        rows(f"{t}-task_neg", "task_index", lambda v: [-1] * len(v), base, rel)
        rows(f"{t}-task_past", "task_index", lambda v: [2] * len(v), base, rel)
        rows(f"{t}-task_varies", "task_index", lambda v: [0] * (len(v) - 1) + [1], base, rel)
        rows(f"{t}-nan", "observation.state", lambda v: [[float("nan")] * len(v[0])] + v[1:], base, rel)
        rows(f"{t}-inf", "action", lambda v: v[:-1] + [[float("inf")] * len(v[0])], base, rel)
        rows(f"{t}-huge", "action", lambda v: [[1e300] * len(v[0])] + v[1:], base, rel)
        rows(f"{t}-ragged", "action", lambda v: [v[0][:1]] + v[1:], base, rel)
        rows(f"{t}-null_row", "action", lambda v: [None] + v[1:], base, rel)
        rows(f"{t}-null_value", "action", lambda v: [[None] * len(v[0])] + v[1:], base, rel)
        rows(f"{t}-strings", "observation.state", lambda v: [["x"] * len(r) for r in v], base, rel)
        rows(f"{t}-frame_gap", "frame_index", lambda v: [x + (x > 2) for x in v], base, rel)
        rows(f"{t}-frame_order", "frame_index", lambda v: v[::-1], base, rel)
        rows(f"{t}-task_float", "task_index", lambda v: [0.5] * len(v), base, rel)
    rows("ep_mismatch", "episode_index", lambda v: [7] * len(v))
    os.rename(case(v2, "bad_name") / f2, out / "b2-bad_name" / "data/chunk-000/episode_abc.parquet")
    shutil.rmtree(case(v2, "no_data") / "data")
    escape = case(v2, "symlink")
    shutil.copyfile(escape / f2, out / "outside.parquet")
    (escape / f2).unlink()
    (escape / f2).symlink_to(out / "outside.parquet")
    info = {
        "fps_nan": lambda d: d.update(fps=float("nan")),
        "fps_neg": lambda d: d.update(fps=-1),
        "shape_huge": lambda d: d["features"]["action"].update(shape=[10**9]),
        "shape_str": lambda d: d["features"]["action"].update(shape="2"),
        "shape_wrong": lambda d: d["features"]["action"].update(shape=[3]),
        "version": lambda d: d.update(codebase_version="v9.0"),
        "features_list": lambda d: d.update(features=[]),
        "total_neg": lambda d: d.update(total_episodes=-3),
    }
    for name, fn in info.items():
        fx.edit_json(case(v2, f"info-{name}") / "meta/info.json", fn)
    lines = {
        "tasks.jsonl": {
            "dup": '{"task_index": 0, "task": "a"}\n{"task_index": 0, "task": "b"}\n',
            "gap": '{"task_index": 0, "task": "a"}\n{"task_index": 2, "task": "b"}\n',
            "not_str": '{"task_index": 0, "task": 5}\n{"task_index": 1, "task": "b"}\n',
            "list": "[0, 1]\n",
            "neg": '{"task_index": -1, "task": "a"}\n',
            "deep": "[" * 100_000 + "\n",
            "big_int": '{"task_index": ' + "9" * 5000 + ', "task": "a"}\n',
        },
        "episodes.jsonl": {
            "neg_len": '{"episode_index": 1, "length": -5}\n',
            "huge_len": '{"episode_index": 1, "length": 1000000000000}\n',
            "str_index": '{"episode_index": "a", "length": 6}\n',
            "wrong_len": '{"episode_index": 1, "length": 4}\n',
            "dup": '{"episode_index": 1, "length": 6}\n{"episode_index": 1, "length": 6}\n',
        },
    }
    for fname, variants in lines.items():
        for name, text in variants.items():
            (case(v2, f"{fname}-{name}") / "meta" / fname).write_text(text)
    v3info = {
        "escape": "../../{chunk_index}/{file_index}.parquet",
        "absolute": "/etc/{chunk_index}.parquet",
        "attribute": "data/{chunk_index.__class__}.parquet",
        "positional": "data/{}.parquet",
        "conversion": "data/{chunk_index!r}.parquet",
        "unbalanced": "data/{chunk_index.parquet",
    }
    for name, template in v3info.items():
        fx.edit_json(case(v3, f"path-{name}") / "meta/info.json", lambda d, t=template: d.update(data_path=t))
    meta = "meta/episodes/chunk-000/file-000.parquet"
    rows("meta-chunk_neg", "data/chunk_index", lambda v: [-1] + v[1:], v3, meta)
    rows("meta-file_missing", "data/file_index", lambda v: [9] + v[1:], v3, meta)
    rows("meta-len", "length", lambda v: [5] + v[1:], v3, meta)
    rows("meta-dup", "episode_index", lambda v: [0] * len(v), v3, meta)
    rows("meta-extra", "episode_index", lambda v: v[:-1] + [42], v3, meta)
    rows("tasks-dup", "task_index", lambda v: [0] * len(v), v3, "meta/tasks.parquet")
    rows("tasks-str", "task", lambda v: [1] * len(v), v3, "meta/tasks.parquet")
    rows("data-ep_neg", "episode_index", lambda v: [-1] * len(v), v3, f3)
    rows("data-ep_other", "episode_index", lambda v: [2] * len(v), v3, f3)  # episode 2 is in file-001 too
    return cases


@pytest.mark.filterwarnings("ignore:The data type")  # zarr warns when writing the string-array case
def test_every_load_path_survives_hostile_files(tmp_path, fx):
    hostile = _zarr_hostile(fx, tmp_path / "z") + _lerobot_hostile(fx, tmp_path / "l")
    invalid = _zarr_invalid(fx, tmp_path / "zi") + _lerobot_invalid(fx, tmp_path / "li")
    valid = [
        {"path": str(fx.zarr_store(tmp_path / "ok.zarr")), "on_error": "raise"},
        {"path": str(fx.lerobot_folder(tmp_path / "ok3", version="v3.0")), "on_error": "raise"},
    ]
    out = run_cases(LOAD, valid + hostile + invalid, timeout=300)
    assert [o.status for o in out[:2]] == ["ok", "ok"], [str(o) for o in out[:2]]
    assert_clean(out[: 2 + len(hostile)], name_key="path")
    assert_clean(out[2 + len(hostile) :], name_key="path", expect_error=True)
    # the errors are loader errors (DataError), not incidental ValueErrors
    errors = [o for o in out if o.status == "error"]
    assert len(errors) > len(invalid) and all("DataError" in o.mro for o in errors), [
        str(o) for o in errors if "DataError" not in o.mro
    ][:3]


def test_synthetic_generator_arguments():
    bad = [
        {"n": 0},
        {"n": -1},
        {"n": 10**9},
        {"n": 2.5},
        {"n": "3"},
        {"n": None},
        {"n": True},
        {"length": 0},
        {"length": 10**12},
        {"obs_dim": 1},
        {"action_dim": 0},
        {"action_dim": 10**6},
        {"tasks": 0},
        {"seed": -1},
        {"seed": 2**70},
        {"n": 100_000, "length": 100_000},
    ]
    out = run_cases("ditkit_robotics.data:synthetic_episodes", [{"n": 3, "length": 5}, *bad], timeout=120)
    assert out[0].status == "ok" and out[0].summary["len"] == 3
    assert_clean(out[1:], name_key=None, expect_error=True)
    for o, case in zip(out[1:], bad):
        assert f"{next(iter(case))}=" in o.message, o


def test_predict_action_input_sweep():
    """Random shapes, dtypes and values: a ValueError naming the argument, or finite actions."""
    from ditkit_core.lightning import SamplerConfig
    from ditkit_core.nn import DiTConfig
    from ditkit_robotics import ActionChunkTokenizer, PolicyModule

    torch.manual_seed(0)
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8, n_obs_steps=2)
    cfg = DiTConfig(in_dim=2, dim=16, depth=1, heads=2, cond_dim=16, context_dim=16, learned_pos=8)
    policy = PolicyModule(tok, cfg, num_tasks=3, sampler=SamplerConfig(steps=2)).eval()
    rng = np.random.default_rng(0)
    specials = [np.nan, np.inf, -np.inf, 1e39, 1e300, -1e308, 0.0]
    n_ok = 0
    for _ in range(120):
        b = int(rng.integers(0, 3))
        bad_shapes = [(b, 6), (b, 3, 6), (b, 2, 7), (b, 2, 6, 1)]
        shape = (b, 2, 6) if rng.random() < 0.5 else bad_shapes[int(rng.integers(0, 4))]
        dtype = [np.float32, np.float64, np.int64, np.complex64, np.bool_][int(rng.integers(0, 5))]
        obs = rng.standard_normal(shape).astype(dtype)
        if obs.size and dtype in (np.float32, np.float64) and rng.random() < 0.5:
            with np.errstate(over="ignore"):  # 1e39 and beyond overflow float32 on purpose
                obs.flat[int(rng.integers(0, obs.size))] = specials[int(rng.integers(0, len(specials)))]
        tids = [None, rng.integers(0, 3, size=b), rng.integers(-2, 5, size=b), rng.integers(0, 3, size=b) * 1.0, 1, 7]
        tid = tids[int(rng.integers(0, len(tids)))]
        if isinstance(tid, np.ndarray) and rng.random() < 0.5:
            tid = torch.from_numpy(tid)
        obs_arg = torch.from_numpy(obs) if rng.random() < 0.5 else obs
        steps = [None, 0, 1, 2, -1][int(rng.integers(0, 5))]
        try:
            act = policy.predict_action(obs_arg, tid, steps=steps)
        except ValueError as e:
            assert str(e).startswith("predict_action: "), e
            assert any(k in str(e) for k in ("obs", "task_id", "steps")), e
            continue
        n_ok += 1
        assert act.shape == (b, 8, 2) and torch.isfinite(act).all()
    assert n_ok > 0


@pytest.mark.slow
def test_random_byte_damage_sweep(tmp_path, fx):
    """Many seeds of byte damage on the chunk and parquet files of every layout."""
    bases = [
        (fx.zarr_store(tmp_path / "s.zarr"), f"{EP1}/obs/c/0/0"),
        (fx.zarr_store(tmp_path / "s2.zarr", zarr_format=2), f"{EP1}/obs/0.0"),
        (fx.lerobot_folder(tmp_path / "v2"), "data/chunk-000/episode_000001.parquet"),
        (fx.lerobot_folder(tmp_path / "v3", version="v3.0"), "data/chunk-000/file-000.parquet"),
        (fx.lerobot_folder(tmp_path / "v3m", version="v3.0"), "meta/episodes/chunk-000/file-000.parquet"),
    ]
    cases = []
    for seed in range(1, 13):
        for j, (base, rel) in enumerate(bases):
            cases += _variants(base, rel, tmp_path / f"d{seed}", f"{j}-{base.name}", seed=seed)
    assert_clean(run_cases(LOAD, cases, timeout=600), name_key="path")


def test_fixture_files_are_json_where_expected(tmp_path, fx):
    """The fuzz bases hold the files the cases damage (a renamed file would make the cases vacuous)."""
    z, lr3 = fx.zarr_store(tmp_path / "s.zarr"), fx.lerobot_folder(tmp_path / "v3", version="v3.0")
    for rel in ["zarr.json", "episodes/zarr.json", f"{EP1}/zarr.json", f"{EP1}/obs/zarr.json", f"{EP1}/obs/c/0/0"]:
        assert (z / rel).is_file(), rel
    assert json.loads((lr3 / "meta/info.json").read_text())["codebase_version"] == "v3.0"
    for rel in ["meta/tasks.parquet", "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet"]:
        assert (lr3 / rel).is_file(), rel
