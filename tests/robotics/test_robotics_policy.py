"""The policy learns (closed-loop success on a synthetic reaching task) and the debug app config runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ditkit_core.lightning import SamplerConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import config_copy, run_config
from ditkit_robotics import ActionChunkTokenizer, PolicyModule
from ditkit_robotics.cli import load_trained
from ditkit_robotics.data import ChunkDataset, PolicyDataModule, synthetic_episodes
from ditkit_robotics.envs import rollout
from ditkit_robotics.inputs import check_task_count

ROOT = Path(__file__).resolve().parents[2]


class ReachEnv:
    """The synthetic demonstrations' dynamics as an env: ``pos += 0.2 * clip(a)``; success within 0.1 of the goal."""

    def __init__(self, task: int):
        self.task = task
        self.actions: list[np.ndarray] = []

    def reset(self, seed: int):
        rng = np.random.default_rng(seed)
        self.goal = np.full(2, 0.5 if self.task == 0 else -0.5) + 0.1 * rng.standard_normal(2)
        self.pos = rng.uniform(-1, 1, 2)
        return self._obs(), {}

    def _obs(self):
        return np.concatenate([self.pos, self.goal, np.zeros(2)]).astype(np.float32)

    def step(self, a):
        self.actions.append(np.asarray(a))
        self.pos = self.pos + 0.2 * np.clip(a, -1, 1)
        success = float(np.linalg.norm(self.pos - self.goal) < 0.1)
        return self._obs(), 0.0, False, False, {"success": success}


def test_policy_learns_synthetic_reaching():
    torch.manual_seed(0)
    eps = synthetic_episodes(n=32, length=16, seed=0)
    data = ChunkDataset(eps, n_obs_steps=2, horizon=8).data
    tok = ActionChunkTokenizer(action_dim=2, obs_dim=6, horizon=8, n_obs_steps=2)
    flat_obs, flat_act = data["obs"].flatten(0, 1), data["action"].flatten(0, 1)
    tok.fit(
        {
            "obs_min": flat_obs.min(0).values,
            "obs_max": flat_obs.max(0).values,
            "action_min": flat_act.min(0).values,
            "action_max": flat_act.max(0).values,
        }
    )
    cfg = DiTConfig(
        in_dim=2,
        dim=48,
        depth=2,
        heads=2,
        mlp_ratio=2.0,
        cond_dim=48,
        context_dim=48,
        learned_pos=8,
        moe_experts=4,
        moe_top_k=1,
        moe_shared=1,
        moe_router="time",
    )
    policy = PolicyModule(tok, cfg, num_tasks=2, n_action_steps=4, sampler=SamplerConfig(steps=4))
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    n = data["obs"].shape[0]
    for _ in range(300):
        idx = torch.randint(0, n, (64,), generator=g)
        loss = policy.flow_loss(policy.tokenize({k: v[idx] for k, v in data.items()}), g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    results = []
    for seed in range(100, 110):
        env = ReachEnv(task=seed % 2)
        tid = torch.tensor([seed % 2])

        def act(hist, tid=tid):
            return policy.predict_action(torch.from_numpy(hist)[None], tid, steps=4, cache="expert")[0].numpy()

        results.append(rollout(env, act, seed, n_obs_steps=2, n_action_steps=4, max_steps=40))
        assert np.abs(np.stack(env.actions)).max() <= 1.0  # clipped to the env bounds
    assert policy.expert_cache(4).hits > 0 and policy.expert_cache(4).misses == 0
    success = np.mean([r.success for r in results])
    assert success >= 0.8, f"closed-loop success {success:.2f} < 0.8"


class CrashingEnv(ReachEnv):
    def step(self, a):
        if len(self.actions) >= 3:
            raise RuntimeError("MuJoCo warning: simulation unstable")
        return super().step(a)


def test_crashed_step_ends_rollout_and_is_counted():
    env = CrashingEnv(task=0)
    r = rollout(env, lambda hist: np.full((8, 2), 5.0, np.float32), seed=0, n_action_steps=8, max_steps=40)
    assert r.crashed and not r.success and r.steps == 3 and "unstable" in r.error
    assert np.abs(np.stack(env.actions)).max() == 1.0  # 5.0 was clipped to the bound


def _debug_config(tmp_path: Path, trainer: dict | None = None, **init_args) -> Path:
    """The debug app config writing under ``tmp_path`` (optionally with other trainer and module arguments)."""
    updates = {"trainer.default_root_dir": tmp_path / "run", "trainer.logger": False}  # the YAML's loggers: its folder
    updates.update({f"trainer.{k}": v for k, v in (trainer or {}).items()})
    updates.update({f"model.init_args.{k}": v for k, v in init_args.items()})
    return config_copy(ROOT / "apps/policy/configs/debug.yaml", tmp_path / "debug.yaml", updates)


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    """The debug app config trained once under a temporary folder, with its last checkpoint."""
    root = tmp_path_factory.mktemp("policy_debug")
    last = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}}
    config = _debug_config(root, trainer={"enable_checkpointing": True, "callbacks": [last]})
    run_config(config)
    return SimpleNamespace(config=config, root=root / "run")


def test_debug_config_runs_and_the_eval_loader_finds_its_weights(debug_run, tmp_path):
    config = debug_run.config
    assert (debug_run.root / "pretrained" / "model.safetensors").exists()
    policy = load_trained(str(config))  # <default_root_dir>/pretrained of the config, through load_run
    assert isinstance(policy, PolicyModule) and not policy.training and policy.sampler.steps == 2
    assert bool(policy.tokenizer.fitted) and policy.num_tasks == 2
    obs = torch.zeros(2, 2, 6)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    ref = policy.predict_action(obs, torch.tensor([0, 1]), generator=g())
    again = load_trained(None, pretrained=str(debug_run.root / "pretrained"))
    torch.testing.assert_close(again.predict_action(obs, torch.tensor([0, 1]), generator=g()), ref)
    # the run's checkpoint as written by `ditkit fit` (hyper-parameters with LightningCLI's entries), same weights
    ckpt = debug_run.root / "checkpoints" / "last.ckpt"
    from_ckpt = load_trained(str(config), ckpt=str(ckpt))
    assert from_ckpt.sampler == policy.sampler and from_ckpt.optim == policy.optim
    torch.testing.assert_close(from_ckpt.predict_action(obs, torch.tensor([0, 1]), generator=g()), ref)
    with pytest.raises(FileNotFoundError, match=r"checkpoints/last.ckpt does not exist"):
        load_trained(str(_debug_config(tmp_path / "other")))  # nothing trained there: the run's checkpoint path


class ClosableReachEnv(ReachEnv):
    def close(self) -> None:
        pass


def test_ditkit_policy_eval_runs_on_the_debug_run(debug_run, monkeypatch):
    """``ditkit policy eval`` on the run's last checkpoint (found from the config), rolled out in the synthetic
    reaching env (the debug policy reads the synthetic demonstrations' 6-d observations, not Meta-World's)."""
    import json

    from ditkit_robotics import evaluate as ev
    from ditkit_robotics.cli import APP

    made = []
    monkeypatch.setattr(ev, "make_env", lambda task, seed, **kw: made.append(task) or ClosableReachEnv(int(task[-1])))
    args = ["--config", str(debug_run.config), "--tasks", "task0", "task1", "--episodes", "2", "--max-steps", "8"]
    assert APP.run(["eval", *args, "--no-expert", "--no-gif", "--tag", "_app"]) == 0
    res = json.loads((debug_run.root / "eval" / "eval_app.json").read_text())
    assert made == ["task0", "task1"] and set(res["tasks"]) == {"task0", "task1"}
    assert res["seed"] == 1000 and res["steps"] == 2 and res["episodes"] == 2  # reset seeds past the demos'
    assert res["cache"] == "expert" and res["crashed"] == 0  # the config's sampler cache


class RenderedReachEnv(ClosableReachEnv):
    """Draws the position (red) and goal (green) on a 24 x 24 frame; the blue row counts the steps taken."""

    def render(self) -> np.ndarray:
        img = np.zeros((24, 24, 3), np.uint8)
        for p, c in ((self.pos, 0), (self.goal, 1)):
            i, j = np.clip(((np.asarray(p) + 1.5) / 3 * 24).astype(int), 0, 23)
            img[i, j, c] = 255
        img[0, :, 2] = len(self.actions) % 256
        return img


def test_ditkit_policy_sample_writes_a_gif_per_task_the_predicted_chunks_and_a_summary(
    debug_run, monkeypatch, tmp_path
):
    """``ditkit policy sample`` on the debug run: the chunks in actions.npz are the ones the env executed (their first
    ``n_action_steps`` actions, episode after episode), and each task's GIF has a frame per recorded step."""
    import json

    from PIL import Image

    from ditkit_robotics import evaluate as ev
    from ditkit_robotics.cli import APP

    envs: dict[str, RenderedReachEnv] = {}
    renders = []

    def make_env(task, seed, **kw):
        renders.append(kw.get("render"))
        return envs.setdefault(task, RenderedReachEnv(int(task[-1])))

    monkeypatch.setattr(ev, "make_env", make_env)
    out = tmp_path / "sample"
    args = ["--config", str(debug_run.config), "--tasks", "task0", "task1", "--episodes", "2", "--max-steps", "12"]
    assert APP.run(["sample", *args, "--out", str(out)]) == 0
    summary = json.loads((out / "sample.json").read_text())
    eps = summary["episodes"]
    assert [(e["task"], e["seed"]) for e in eps] == [("task0", 1000), ("task0", 1001), ("task1", 1000), ("task1", 1001)]
    assert summary["solver_steps"] == 2 and summary["cache"] == "expert" and renders == [True, True]
    assert all(1 <= e["steps"] <= 12 and e["chunks"] == -(-e["steps"] // 4) and e["chunk_ms"] > 0 for e in eps)
    with np.load(out / "actions.npz") as npz:
        d = {k: npz[k] for k in npz.files}
    assert d["actions"].shape == (sum(e["chunks"] for e in eps), 8, 2) and d["actions"].dtype == np.float32
    assert d["obs"].shape == (len(d["actions"]), 2, 6) and list(d["tasks"]) == ["task0", "task1"]
    assert np.bincount(d["episode"]).tolist() == [e["chunks"] for e in eps]
    assert d["task_id"].tolist() == [e["task_id"] for e in eps for _ in range(e["chunks"])]
    for task, env in envs.items():
        executed = [
            d["actions"][d["episode"] == k][:, :4].reshape(-1, 2)[: e["steps"]]  # n_action_steps 4 of each chunk
            for k, e in enumerate(eps)
            if e["task"] == task
        ]
        np.testing.assert_allclose(np.concatenate(executed), np.stack(env.actions), atol=1e-6)
        first = eps[[e["task"] for e in eps].index(task)]
        assert first["gif"] == f"rollout_{task}.gif"
        with Image.open(out / first["gif"]) as gif:
            assert gif.size == (24, 24) and gif.n_frames == 1 + first["steps"] // 4  # reset frame + every 4th step
    assert "gif" not in eps[1] and "gif" not in eps[3]  # the first episode of each task only


@pytest.mark.parametrize("num_tasks", [3, 0])
def test_task_count_of_the_data_must_match_num_tasks(tmp_path, num_tasks):
    with pytest.raises(ValueError, match=rf"num_tasks={num_tasks} but synthetic holds 2 task\(s\)"):
        run_config(_debug_config(tmp_path, num_tasks=num_tasks))
    dm = PolicyDataModule("synthetic", n_obs_steps=2, horizon=8, val_episodes=2)
    dm.setup("fit")
    assert check_task_count(2, dm) == 2
    dm.train_set.data["task_id"][-1] = 2  # an id past the store's task list never reaches the embedding
    with pytest.raises(ValueError, match=r"task ids 0\.\.2"):
        check_task_count(2, dm)
