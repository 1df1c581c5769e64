"""The Lightning loop: a toy model learns, checkpoints round-trip exactly, resumed runs repeat the curve."""

from pathlib import Path

import lightning as L
import pytest
import torch

from ditkit_core.examples.toy2d import Toy2DDataModule, Toy2DModule, sample_points
from ditkit_core.flow import TimeSampler
from ditkit_core.lightning import FlowConfig, FlowMatchingModule, OptimConfig, SamplerConfig, compile_blocks
from ditkit_core.metrics import energy_distance, sliced_wasserstein
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import check_module_fits_batch, check_pretrained_round_trip, perturb_weights, run_config
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch

ROOT = Path(__file__).resolve().parents[2]


def toy_module(**kw) -> Toy2DModule:
    args = dict(
        tokenizer=IdentityTokenizer(2),
        model=DiTConfig(in_dim=2, dim=64, depth=2, heads=4),
        flow=FlowConfig(time_sampler=TimeSampler("uniform")),
        optim=OptimConfig(lr=2e-3, warmup_steps=10),
        sampler=SamplerConfig(steps=16, method="heun"),
    )
    args.update(kw)
    return Toy2DModule(**args)


def trainer(tmp_path, **kw) -> L.Trainer:
    args = dict(
        accelerator="cpu",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        num_sanity_val_steps=0,
    )
    args.update(kw)
    return L.Trainer(**args)


def test_metrics_closed_forms():
    x = torch.randn(500, 2)
    assert energy_distance(x, x).abs() < 1e-2
    assert energy_distance(x, x + 3).item() > 1.0
    assert sliced_wasserstein(x, x) == 0
    # 1D shift: W1 between a sample and its translate is the shift times E|<u, e>| over unit directions (2D: 2/pi)
    assert sliced_wasserstein(x, x + torch.tensor([1.0, 0.0]), projections=4000).item() == pytest.approx(
        2 / 3.14159, abs=0.03
    )


@pytest.mark.parametrize("self_condition", [0.0, 0.5])
def test_toy2d_learns_the_distribution(tmp_path, self_condition):
    torch.manual_seed(0)
    dm = Toy2DDataModule("gaussians8", points=32, train_sets=512, val_sets=16, batch_size=32)
    module = toy_module(flow=FlowConfig(time_sampler=TimeSampler("uniform"), self_condition=self_condition))
    ref = sample_points("gaussians8", 1024, torch.Generator().manual_seed(5))
    before = energy_distance(module.sample_points(32, 32, seed=1), ref)
    trainer(tmp_path, max_epochs=6, limit_val_batches=0).fit(module, dm)
    after = energy_distance(module.sample_points(32, 32, seed=1), ref)
    assert after < 0.15 * before, (before, after)
    assert after < 0.05
    if self_condition:  # the estimate is used
        assert torch.count_nonzero(module.model.self_proj.weight) > 0


def test_fits_one_batch_and_moe_variant():
    batch = {"x": sample_points("moons", 16 * 8, torch.Generator().manual_seed(0)).reshape(8, 16, 2)}
    check_module_fits_batch(toy_module(), batch, steps=40)
    moe = toy_module(model=DiTConfig(in_dim=2, dim=32, depth=2, heads=2, moe_experts=4, moe_router="token_time"))
    check_module_fits_batch(moe, batch, steps=40)


def test_pretrained_round_trip_is_exact(tmp_path):
    module = toy_module(model=DiTConfig(in_dim=2, dim=32, depth=2, heads=2, registers=2, cond_dim=3))
    perturb_weights(module, seed=None)
    x, t, c = torch.randn(2, 6, 2), torch.rand(2), torch.randn(2, 3)
    loaded = check_pretrained_round_trip(module, lambda m: m.model(x, t, cond=c), tmp_path / "toy")
    assert (tmp_path / "toy" / "model.safetensors").exists() and (tmp_path / "toy" / "config.json").exists()
    assert loaded.config == module.config and loaded.optim == module.optim and loaded.sampler == module.sampler


def test_half_precision_export_halves_the_file_and_loads_back_rounded(tmp_path):
    from ditkit_core.lightning.pretrained import from_pretrained, save_pretrained

    module = toy_module(model=DiTConfig(in_dim=2, dim=32, depth=2, heads=2))
    perturb_weights(module, seed=None)
    full = save_pretrained(module, tmp_path / "full") / "model.safetensors"
    half = save_pretrained(module, tmp_path / "half", torch.float16) / "model.safetensors"
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.55
    loaded = from_pretrained(tmp_path / "half")
    for (k, a), b in zip(module.state_dict().items(), loaded.state_dict().values()):
        assert b.dtype == a.dtype, k  # back in the module's own precision
        assert torch.equal(b, a.half().to(a.dtype)), k  # each weight rounded to float16 once


def test_resume_continues_the_same_loss_curve(tmp_path):
    def losses(module):
        class Rec(L.Callback):
            def __init__(self):
                self.values = []

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                self.values.append(float(outputs["loss"]))

        return Rec()

    def dm():
        return Toy2DDataModule("moons", points=16, train_sets=64, val_sets=8, batch_size=16, seed=3)

    torch.manual_seed(0)
    full_m = toy_module(seed=1)
    rec = losses(full_m)
    ck = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True, every_n_epochs=1, save_top_k=-1)
    trainer(tmp_path, max_epochs=3, callbacks=[rec, ck], enable_checkpointing=True).fit(full_m, dm())
    torch.manual_seed(123)  # a different global RNG state must not matter
    resumed = toy_module(seed=1)
    rec2 = losses(resumed)
    first = sorted((tmp_path / "ck").glob("epoch=0*.ckpt"))[0]
    trainer(tmp_path, max_epochs=3, callbacks=[rec2]).fit(resumed, dm(), ckpt_path=first)
    assert len(rec.values) == 12 and len(rec2.values) == 8
    assert rec2.values == pytest.approx(rec.values[4:], rel=1e-5, abs=1e-6)


def test_generate_respects_mask_and_known_values():
    module = toy_module()
    mask = torch.ones(2, 5, dtype=torch.bool)
    mask[1, 3:] = False
    known = torch.randn(2, 5, 2)
    km = torch.zeros(2, 5, 1, dtype=torch.bool)
    km[:, 0] = True
    out = module.generate(TokenBatch(x=torch.zeros(2, 5, 2), mask=mask), steps=4, known=known, known_mask=km)
    assert torch.equal(out.x[1, 3:], torch.zeros(2, 2))
    torch.testing.assert_close(out.x[:, 0], known[:, 0])


def test_debug_config_runs_through_the_cli_and_its_checkpoint_loads(tmp_path):
    cli = run_config(
        ROOT / "apps/toy2d/configs/debug.yaml",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.enable_checkpointing=true",
        "--trainer.logger=false",  # the YAML's loggers write under its own run folder
    )
    assert cli.trainer.global_step == 4
    ckpt = next(tmp_path.rglob("*.ckpt"))
    loaded = Toy2DModule.load_from_checkpoint(ckpt, map_location="cpu")
    x, t = torch.randn(2, 5, 2), torch.rand(2)
    torch.testing.assert_close(loaded.model(x, t), cli.model.model(x, t))


def test_directly_built_module_checkpoint_loads(tmp_path):
    module = toy_module()
    tr = trainer(tmp_path, max_steps=2, enable_checkpointing=True, limit_val_batches=0)
    tr.fit(module, Toy2DDataModule("moons", points=8, train_sets=16, batch_size=8))
    tr.save_checkpoint(tmp_path / "m.ckpt")
    loaded = Toy2DModule.load_from_checkpoint(tmp_path / "m.ckpt", map_location="cpu")
    assert isinstance(loaded.tokenizer, IdentityTokenizer) and loaded.tokenizer.token_dim == 2
    x, t = torch.randn(2, 5, 2), torch.rand(2)
    torch.testing.assert_close(loaded.model(x, t), module.model(x, t))


def test_ema_preset_composes_with_an_app_config(tmp_path):
    cli = run_config(
        ROOT / "apps/toy2d/configs/debug.yaml",
        "--config",
        str(ROOT / "shared/trainer/ema.yaml"),
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",  # the YAML's loggers write under its own run folder
    )
    names = [type(c).__name__ for c in cli.trainer.callbacks]
    assert "EMA" in names


def test_bad_yaml_key_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    text = (ROOT / "apps/toy2d/configs/debug.yaml").read_text().replace("steps: 4", "stepz: 4")
    bad.write_text(text)
    with pytest.raises(SystemExit):
        run_config(bad)
    assert "stepz" in capsys.readouterr().err


def test_module_rejects_mismatched_tokenizer():
    with pytest.raises(ValueError, match="in_dim=2: this module's real in_dim is 3"):
        FlowMatchingModule(IdentityTokenizer(3), DiTConfig(in_dim=2, dim=32, depth=1, heads=2))


@pytest.mark.slow
def test_compiled_blocks_match_eager():
    torch.manual_seed(0)
    from ditkit_core.nn import DiT

    m = perturb_weights(DiT(DiTConfig(in_dim=2, dim=32, depth=2, heads=2)), scale=0.05, seed=None)
    x, t = torch.randn(2, 8, 2), torch.rand(2)
    ref = m(x, t)
    keys = set(m.state_dict())
    assert compile_blocks(m) == 2
    torch.testing.assert_close(m(x, t), ref, atol=1e-5, rtol=1e-4)
    assert set(m.state_dict()) == keys  # regional compile keeps parameter names (checkpoints unchanged)


def test_module_accepts_plain_data_configs():
    m = Toy2DModule(
        tokenizer={"class_path": "ditkit_core.tokenizers.IdentityTokenizer", "init_args": {"token_dim": 2}},
        model={"in_dim": 2, "dim": 32, "depth": 1, "heads": 2},
        flow={"time_sampler": {"kind": "uniform"}},
    )
    assert m.config.dim == 32 and m.time_sampler.kind == "uniform" and m.tokenizer.token_dim == 2


def test_config_copy_replaces_dotted_fields_and_names_a_missing_parent(tmp_path):
    import yaml

    from ditkit_core.testing import config_copy

    src = Path(__file__).resolve().parents[2] / "apps/toy2d/configs/debug.yaml"
    out = config_copy(src, tmp_path / "sub" / "c.yaml", {"trainer.default_root_dir": tmp_path, "trainer.max_steps": 3})
    cfg, orig = yaml.safe_load(out.read_text()), yaml.safe_load(src.read_text())
    assert cfg["trainer"]["default_root_dir"] == str(tmp_path) and cfg["trainer"]["max_steps"] == 3
    orig["trainer"].update(default_root_dir=str(tmp_path), max_steps=3)
    assert cfg == orig  # nothing else changed
    with pytest.raises(KeyError, match="'nowhere' is not a mapping"):
        config_copy(src, tmp_path / "d.yaml", {"nowhere.x": 1})
