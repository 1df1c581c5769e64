"""The lean module: typed option groups, derived widths, legacy migration, safe loading, EMA and run guards."""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule
from ditkit_core.lightning import (
    EMA,
    AtomicCheckpointIO,
    FlowConfig,
    FlowMatchingModule,
    OptimConfig,
    SamplerConfig,
    UntrustedClassError,
    from_pretrained,
    load_run,
    save_pretrained,
)
from ditkit_core.lightning.config import migrate_module_args
from ditkit_core.lightning.migrate import migrate_config_file
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.testing import perturb_weights
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch

ROOT = Path(__file__).resolve().parents[2]


def toy(**kw) -> Toy2DModule:
    args = dict(
        tokenizer=IdentityTokenizer(2),
        model=DiTConfig(dim=32, depth=2, heads=2),
        optim=OptimConfig(lr=2e-3, warmup_steps=5),
        sampler=SamplerConfig(steps=4),
    )
    return Toy2DModule(**{**args, **kw})


def fit(module, tmp_path, dm=None, ckpt_path=None, **kw):
    args = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    tr = L.Trainer(**{**args, **kw})
    tr.fit(module, dm or Toy2DDataModule("moons", points=8, train_sets=32, batch_size=8, seed=3), ckpt_path=ckpt_path)
    return tr


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: OptimConfig(warmup_steps=-10), r"OptimConfig.warmup_steps=-10: must be"),
        (lambda: FlowConfig(cond_dropout=1.5), r"FlowConfig.cond_dropout=1.5: must be in \[0, 1\)"),
        (lambda: SamplerConfig(steps=0), r"SamplerConfig.steps=0: must be an integer >= 1"),
        (lambda: SamplerConfig(method="bogus"), r"SamplerConfig.method='bogus': must be one of"),
        (lambda: OptimConfig(lr=float("nan")), r"OptimConfig.lr=nan"),
        (lambda: toy(flow={"cond_dropot": 0.1}), r"flow: unknown field\(s\) \['cond_dropot'\]"),
        (lambda: toy(model=DiTConfig(in_dim=3, dim=32, depth=1, heads=2)), r"DiTConfig.in_dim=3: .*real in_dim is 2"),
    ],
)
def test_invalid_options_fail_at_construction_naming_field_and_value(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


def test_in_dim_is_derived_and_hparams_are_plain_data():
    m = toy()
    assert m.config.in_dim == 2 and m.model.config.in_dim == 2
    assert m.hparams["model"]["in_dim"] == 2
    assert m.hparams["optim"] == {
        "lr": 2e-3,
        "weight_decay": 0.0,
        "betas": [0.9, 0.99],
        "warmup_steps": 5,
        "max_steps": None,
        "min_lr_ratio": 0.1,
    }
    # cond dropout 0: the null condition is never trained, so it is frozen (no unused parameter under DDP)
    m = toy(model=DiTConfig(dim=32, depth=1, heads=2, cond_dim=3))
    assert not m.model.null_cond.requires_grad
    m = toy(model=DiTConfig(dim=32, depth=1, heads=2, cond_dim=3), flow=FlowConfig(cond_dropout=0.1))
    assert m.model.null_cond.requires_grad


def test_legacy_flat_arguments_migrate_to_groups(tmp_path):
    args, moved = migrate_module_args(
        {"lr": 1e-3, "sample_steps": 8, "cfg_scale": 2.0, "sway": -0.5, "x": 1}, {"sway": ("sampler", "sway")}
    )
    assert args == {"optim": {"lr": 1e-3}, "sampler": {"steps": 8, "cfg_scale": 2.0, "sway": -0.5}, "x": 1}
    assert moved == ["lr", "sample_steps", "cfg_scale", "sway"]
    old = tmp_path / "old.yaml"
    old.write_text(
        "# a comment\nmodel:\n  class_path: ditkit_core.examples.toy2d.Toy2DModule\n  init_args:\n"
        "    lr: 0.002\n    sample_steps: 4\ndata:\n  batch_size: 3\n"
    )
    text, moved = migrate_config_file(old)
    assert moved == ["lr", "sample_steps"] and text.startswith("# a comment\n") and "data:\n  batch_size: 3" in text
    import yaml

    assert yaml.safe_load(text)["model"]["init_args"] == {"optim": {"lr": 0.002}, "sampler": {"steps": 4}}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ditkit_core.lightning.migrate",
            "--check",
            *map(str, sorted(ROOT.glob("apps/*/configs/*.yaml"))),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"repo configs need migrating:\n{r.stdout}"


def test_checkpoint_state_of_a_joint_input_projection_loads_exactly():
    class Cond(FlowMatchingModule):
        def resolve_config(self, config):
            return self.derive(super().resolve_config(config), cond_channels=3)

        def condition(self, tokens, drop):
            return tokens.replace(x_cond=tokens.x.flip(-1).repeat(1, 1, 2)[..., :3])

    m = Cond(IdentityTokenizer(2), DiTConfig(dim=32, depth=1, heads=2))
    perturb_weights(m, seed=0)
    state = dict(m.state_dict())
    old = dict(state)  # the earlier layout: one projection over [x, x_cond]
    old["model.x_embed.weight"] = torch.cat([old["model.x_embed.weight"], old.pop("model.cond_proj.weight")], 1)
    m2 = Cond(IdentityTokenizer(2), DiTConfig(dim=32, depth=1, heads=2))
    m2.load_state_dict(m2.migrate_state_dict(old))
    tok = TokenBatch(x=torch.randn(2, 5, 2))
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(m.flow_loss(tok, g())["loss"], m2.flow_loss(tok, g())["loss"])


def test_loading_never_constructs_untrusted_classes(tmp_path):
    canary = tmp_path / "pwned"
    bad = {"class_path": "subprocess.Popen", "init_args": {"args": ["touch", str(canary)]}}
    module = toy()
    save_pretrained(module, tmp_path / "ok")
    cfg = json.loads((tmp_path / "ok" / "config.json").read_text())
    for name, hostile in {
        "top": bad,
        "tokenizer": {**cfg, "init_args": {**cfg["init_args"], "tokenizer": bad}},
        "nested": {**cfg, "init_args": {**cfg["init_args"], "flow": {"time_sampler": bad}}},
        "path_trick": {**cfg, "class_path": "ditkit_core/../subprocess.Popen"},
    }.items():
        d = tmp_path / name
        d.mkdir()
        (d / "config.json").write_text(json.dumps(hostile))
        (d / "model.safetensors").write_bytes((tmp_path / "ok" / "model.safetensors").read_bytes())
        with pytest.raises((UntrustedClassError, ValueError), match="not allowed|no class|expected"):
            from_pretrained(d)
    # a checkpoint whose hyper-parameters name an untrusted class
    tr = fit(toy(), tmp_path, max_steps=1, enable_checkpointing=False)
    tr.save_checkpoint(tmp_path / "m.ckpt")
    ck = torch.load(tmp_path / "m.ckpt", weights_only=True)
    ck["hyper_parameters"]["tokenizer"] = bad
    torch.save(ck, tmp_path / "evil.ckpt")
    with pytest.raises(UntrustedClassError, match="subprocess.Popen"):
        load_run(ckpt=tmp_path / "evil.ckpt")
    ck["ditkit"]["class_path"] = "os.system"
    torch.save(ck, tmp_path / "evil2.ckpt")
    with pytest.raises(UntrustedClassError, match="os.system"):
        load_run(ckpt=tmp_path / "evil2.ckpt")
    assert not canary.exists()
    ok = load_run(ckpt=tmp_path / "m.ckpt")
    assert isinstance(ok, Toy2DModule) and not ok.training


def test_ema_averages_validates_on_the_average_and_resumes_exactly(tmp_path):
    torch.manual_seed(0)
    m = toy(seed=1)
    ema = EMA(decay=0.9, start_step=2, warmup=True)
    snaps = []

    class Snap(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *a):
            snaps.append({n: p.detach().clone() for n, p in pl_module.named_parameters() if p.requires_grad})

    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", every_n_train_steps=3, save_top_k=-1)
    fit(m, tmp_path, callbacks=[Snap(), ema, ck], max_steps=6, max_epochs=2, enable_checkpointing=True)
    # manual EMA of the raw weights after each step, from step index 2 on
    shadow = {n: v.clone() for n, v in snaps[2].items()}
    for k, s in enumerate(snaps[3:], start=2):
        w = 1 - min(0.9, (1 + k) / (10 + k))
        for n in shadow:
            shadow[n].lerp_(s[n], w)
    for n, p in m.named_parameters():  # the module ends with the averaged weights
        if p.requires_grad:
            torch.testing.assert_close(p.detach(), shadow[n])
    saved = torch.load(tmp_path / "ck" / "epoch=1-step=6.ckpt", weights_only=True)
    assert torch.equal(saved["state_dict"]["model.x_embed.weight"], shadow["model.x_embed.weight"])
    assert torch.equal(saved["ema"]["raw"]["model.x_embed.weight"], snaps[5]["model.x_embed.weight"])


def test_ema_checkpoint_saved_at_train_end_keeps_the_raw_weights(tmp_path):
    """``ModelCheckpoint(save_last=True, save_top_k=0)`` writes ``last`` at train end, after the EMA has put the
    average into the module: the checkpoint must still hold the raw weights for resuming."""
    torch.manual_seed(0)
    m = toy(seed=1)
    snaps = []

    class Snap(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, *a):
            snaps.append({n: p.detach().clone() for n, p in pl_module.named_parameters() if p.requires_grad})

    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, save_top_k=0)
    fit(m, tmp_path, callbacks=[Snap(), EMA(decay=0.9, warmup=True), ck], max_steps=4, enable_checkpointing=True)
    saved = torch.load(tmp_path / "ck" / "last.ckpt", weights_only=True)
    name = "model.x_embed.weight"
    assert torch.equal(saved["ema"]["raw"][name], snaps[-1][name])  # the raw weights of the last step
    assert torch.equal(saved["state_dict"][name], dict(m.named_parameters())[name])  # the average, for inference
    assert not torch.equal(saved["state_dict"][name], saved["ema"]["raw"][name])


def test_unwritable_checkpoint_folder_fails_before_training(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=blocker / "ckpts")
    with pytest.raises(OSError, match="checkpoint folder .*ckpts is not writable"):
        fit(toy(), tmp_path, callbacks=[ck], max_steps=2, enable_checkpointing=True)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()

    def half_then_full_disk(self, checkpoint, path, storage_options=None):
        Path(path).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    from lightning.pytorch.plugins.io import TorchCheckpointIO

    monkeypatch.setattr(TorchCheckpointIO, "save_checkpoint", half_then_full_disk)
    with pytest.raises(OSError, match="No space"):
        io.save_checkpoint({"state_dict": {}}, tmp_path / "last.ckpt")
    assert os.listdir(tmp_path) == []


def test_generate_conditions_once_per_branch():
    calls = []

    class Counting(Toy2DModule):
        def condition(self, tokens, drop):
            calls.append(None if drop is None else bool(drop.all()))
            return tokens

    m = Counting(
        IdentityTokenizer(2),
        DiTConfig(dim=32, depth=1, heads=2, num_classes=2),
        flow=FlowConfig(cond_dropout=0.1),
        sampler=SamplerConfig(steps=5, cfg_scale=2.0),
    )
    m.generate(TokenBatch(x=torch.zeros(2, 3, 2), cond=torch.tensor([0, 1])))
    assert calls == [None, True]


KILL_SCRIPT = r"""
import os, signal, sys, torch, lightning as L
sys.path.insert(0, {tests!r})
from test_core_module import toy, Toy2DDataModule
torch.manual_seed(0)
class Kill(L.Callback):
    def on_train_batch_end(self, trainer, pl_module, *a):
        if trainer.global_step == 7:
            os.kill(os.getpid(), signal.SIGKILL)
ck = L.pytorch.callbacks.ModelCheckpoint(dirpath={ck!r}, every_n_train_steps=5, save_top_k=-1)
L.Trainer(accelerator="cpu", max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
          num_sanity_val_steps=0, limit_val_batches=0, callbacks=[Kill(), ck]).fit(
    toy(seed=1), Toy2DDataModule("moons", points=8, train_sets=32, batch_size=8, seed=3))
"""


def test_sigkill_mid_epoch_then_resume_repeats_the_loss_curve(tmp_path):
    class Rec(L.Callback):
        def __init__(self):
            self.values = []

        def on_train_batch_end(self, trainer, pl_module, outputs, *a):
            self.values.append(float(outputs["loss"]))

    torch.manual_seed(0)
    full = Rec()
    fit(toy(seed=1), tmp_path / "full", callbacks=[full], max_epochs=3)
    assert len(full.values) == 12  # 4 batches per epoch
    ckdir = tmp_path / "ck"
    r = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT.format(tests=str(Path(__file__).parent), ck=str(ckdir))],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == -9, r.stderr[-2000:]
    ckpt = ckdir / "epoch=1-step=5.ckpt"  # saved after step 5: mid-epoch (batch 1 of epoch 1)
    assert ckpt.exists(), sorted(os.listdir(ckdir))
    torch.manual_seed(123)  # the global RNG state must not matter
    resumed = Rec()
    fit(toy(seed=1), tmp_path / "resumed", callbacks=[resumed], max_epochs=3, ckpt_path=ckpt)
    assert resumed.values == pytest.approx(full.values[5:], rel=1e-6, abs=1e-7)


def test_expert_cache_is_built_for_the_grid_of_the_generate_call():
    """A call with other steps than ``sampler.steps`` gets fused experts for its own solver times."""
    torch.manual_seed(0)
    cfg = DiTConfig(dim=32, depth=2, heads=2, moe_experts=3, moe_top_k=1, moe_router="time")
    m = Toy2DModule(IdentityTokenizer(2), cfg, sampler=SamplerConfig(steps=8))
    perturb_weights(m.model, scale=0.05, seed=None)
    built = []
    make_cache = m.make_cache
    m.make_cache = lambda *a, **k: built.append(make_cache(*a, **k)) or built[-1]
    template = TokenBatch(x=torch.zeros(2, 5, 2))
    ref = m.generate(template, steps=3, generator=torch.Generator().manual_seed(0)).x
    out = m.generate(template, steps=3, cache="expert", generator=torch.Generator().manual_seed(0)).x
    assert (built[-1].hits, built[-1].misses) == (3, 0)  # every Euler evaluation used fused experts
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
