"""The flow-matching module: learning, CFG sampling, caches, completion, run loading and the debug app config."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from einops import rearrange

from ditkit_core.flow import TimeSampler
from ditkit_core.nn import ConfigError, DiT, DiTConfig
from ditkit_core.sampling import BlockCache, StepCache, find_dits
from ditkit_core.testing import check_module_fits_batch, check_pretrained_round_trip, config_copy, run_config
from ditkit_shapes.data import normalize_points
from ditkit_shapes.model import FourierPointEmbed
from ditkit_shapes.module import ShapesModule
from ditkit_shapes.procedural import CLASSES, make_shape
from ditkit_shapes.tokenizer import PointTokenizer, VoxelPatchTokenizer

ROOT = Path(__file__).resolve().parents[2]


def shape_batch(points: int = 128, per_class: int = 1) -> dict[str, torch.Tensor]:
    clouds = [
        torch.from_numpy(normalize_points(make_shape(c, points, 10 * i + k), "unit_sphere"))
        for i, c in enumerate(CLASSES)
        for k in range(per_class)
    ]
    return {"points": torch.stack(clouds), "label": torch.arange(len(CLASSES)).repeat_interleave(per_class)}


def voxel_module(**kw) -> ShapesModule:
    tok = VoxelPatchTokenizer(resolution=8, patch=2, channels=4)
    cfg = DiTConfig(in_dim=32, dim=48, depth=2, heads=2, rope_axes=3, num_classes=len(CLASSES))
    return ShapesModule(tok, cfg, point_hidden=32, sampler={"steps": 4, "method": "heun"}, sample_points=64, **kw)


def point_module() -> ShapesModule:
    cfg = DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=len(CLASSES))
    return ShapesModule(PointTokenizer(), cfg, sampler={"steps": 4}, sample_points=64)


@pytest.mark.parametrize("make", [voxel_module, point_module, lambda: voxel_module(window3d=2)])
def test_module_learns_a_batch(make):
    torch.manual_seed(0)
    check_module_fits_batch(make(), shape_batch(64), steps=40, lr=3e-3, drop=0.2)


def test_configuration_errors_name_the_field():
    with pytest.raises(ConfigError, match="window3d needs a VoxelPatchTokenizer"):
        ShapesModule(PointTokenizer(), DiTConfig(in_dim=3, dim=32, depth=1, heads=2), window3d=2)
    with pytest.raises(ConfigError, match=r"DiTConfig.in_dim=3: this module's real in_dim is 32"):
        ShapesModule(VoxelPatchTokenizer(8, 2, 4), DiTConfig(in_dim=3, dim=48, depth=1, heads=2, rope_axes=3))
    with pytest.raises(ConfigError, match="window3d=3 must divide the patch grid 4"):
        voxel_module(window3d=3)
    with pytest.raises(ValueError, match=r"ShapesModule: window_every=0"):
        voxel_module(window3d=2, window_every=0)
    with pytest.raises(ConfigError, match=r"SamplerConfig.steps=0"):
        ShapesModule(PointTokenizer(), DiTConfig(dim=32, depth=1, heads=2), sampler={"steps": 0})


def test_3d_windows_are_config_data_of_one_core_dit():
    """``window3d`` derives the DiT's window grid from the tokenizer; the network holds exactly one DiT."""
    m = voxel_module(window3d=2, window_every=1)
    (dit,) = find_dits(m)
    assert type(dit) is DiT and dit is m.model.dit
    assert (dit.config.window_grid, dit.config.window_size, dit.config.window_every) == ([4] * 3, [2] * 3, 1)
    assert dit.partition.groups == 8 and dit.partition.size == 8
    assert m.hparams["model"]["window_grid"] == [4, 4, 4]  # the resolved config is what a checkpoint keeps
    assert voxel_module().model.dit.partition is None  # window3d 0: global attention everywhere
    again = ShapesModule(m.tokenizer, DiTConfig.from_dict(m.hparams["model"]), window3d=2, window_every=1)
    assert again.config == m.config  # a checkpoint's resolved config is accepted as stated
    with pytest.raises(ConfigError, match="window_every"):
        ShapesModule(m.tokenizer, DiTConfig.from_dict(m.hparams["model"]), window3d=2, window_every=2)


@pytest.mark.parametrize("window_every", [1, 2])
def test_3d_windows_compute_what_the_earlier_window_subclass_computed(window_every):
    """The core's grid partition of the voxel DiT is the earlier ``Window3DDiT`` subclass's einops regrouping
    (tokens ``(x wx y wy z wz)`` -> windows ``(x y z)`` of ``(wx wy wz)``, per-sample inputs repeated per window,
    block ``i`` local when ``(i + 1) % window_every != 0``): same weights and inputs give the same velocity bitwise.

    With these, the training losses of the debug config are bitwise those of the earlier module when both see the
    same batches; the earlier module built and discarded one extra DiT at construction, so its global RNG (which
    draws the per-access training point subsets) stood further on at the start of training."""
    m = voxel_module(window3d=2, window_every=window_every)
    torch.manual_seed(0)
    for p in m.parameters():  # non-trivial blocks
        p.data.add_(torch.randn_like(p) * 0.1)
    dit, tok = m.model.dit, m.tokenizer
    x, t, cond = torch.randn(3, tok.grid**3, 32), torch.rand(3), torch.tensor([0, 2, 5])
    pos = tok.positions(3, x.device)
    g, w = tok.grid // 2, 2

    def split(v):
        return (
            None if v is None else rearrange(v, "b (x i y j z k) ... -> (b x y z) (i j k) ...", x=g, y=g, z=g, i=w, j=w)
        )

    def merge(v, b):
        return rearrange(v, "(b x y z) (i j k) d -> b (x i y j z k) d", b=b, x=g, y=g, z=g, i=w, j=w)

    with torch.no_grad():
        h, inp = dit.embed(x, t, pos=pos, cond=cond)
        rep = lambda v: None if v is None else v.repeat_interleave(g**3, 0)  # noqa: E731
        local = dataclasses.replace(inp, c=rep(inp.c), temb=rep(inp.temb), t=rep(inp.t), angles=split(inp.angles))
        for i, blk in enumerate(dit.blocks):
            windowed = window_every == 1 or (i + 1) % window_every != 0
            h = merge(blk(split(h), local), 3) if windowed else blk(h, inp)
        ref, _ = dit.head(h, inp)
        out = dit(x, t, pos=pos, cond=cond)
    torch.testing.assert_close(out, ref, atol=0, rtol=0)
    assert [dit.config.is_local_block(i) for i in range(2)] == ([True, True] if window_every == 1 else [True, False])


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_caches_that_reuse_nothing_equal_plain_sampling_with_3d_windows(method):
    """``BlockCache(interval=1)`` / ``StepCache(threshold=0)`` drive the windowed blocks through the core's
    ``DiT.block``: sampling the voxel model with them equals plain sampling exactly (CFG branches included)."""
    m = voxel_module(window3d=2)
    torch.manual_seed(0)
    for p in m.parameters():  # non-trivial velocities
        p.data.add_(torch.randn_like(p) * 0.1)
    kw = dict(points=48, seed=3, cfg_scale=2.0, method=method, steps=5)
    ref = m.sample_clouds([0, 4], **kw)
    with StepCache(m.model, threshold=0.0) as sc:
        step = m.sample_clouds([0, 4], **kw)
    with BlockCache(m.model, interval=1) as bc:
        block = m.sample_clouds([0, 4], **kw)
    torch.testing.assert_close(step, ref, atol=0, rtol=0)
    torch.testing.assert_close(block, ref, atol=0, rtol=0)
    evals = 5 * (2 if method == "heun" else 1) * 2  # steps x stages x CFG branches
    assert sc.stats.skipped == bc.stats.skipped == 0
    assert bc.stats.computed == evals * m.config.depth and sc.stats.computed > 0
    assert not torch.allclose(ref, m.sample_clouds([0, 4], **{**kw, "cfg_scale": 1.0}))  # the branches differ


def test_fourier_features_option_learns_and_round_trips(tmp_path):
    cfg = DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=len(CLASSES))
    m = ShapesModule(PointTokenizer(), cfg, sampler={"steps": 4}, sample_points=64, fourier_features=6)
    assert type(m.model) is DiT and isinstance(m.model.x_embed, FourierPointEmbed)
    assert m.model.x_embed.freqs[-1] == pytest.approx(32.0)
    torch.manual_seed(0)
    check_module_fits_batch(m, shape_batch(64), steps=40, lr=3e-3, drop=0.2)
    x, t, lab = torch.randn(2, 40, 3), torch.rand(2), torch.tensor([1, 2])
    loaded = check_pretrained_round_trip(m, lambda mod: mod.model(x, t, cond=lab), tmp_path / "pre")
    assert loaded.fourier_features == 6 and isinstance(loaded.model.x_embed, FourierPointEmbed)
    with pytest.raises(ConfigError, match="fourier_features applies to point tokens"):
        voxel_module(fourier_features=4)


def test_sampling_with_cfg_and_completion_keeps_known_points():
    m = voxel_module()
    torch.manual_seed(0)
    for p in m.model.parameters():  # non-trivial velocities
        p.data.add_(torch.randn_like(p) * 0.05)
    clouds = m.sample_clouds([0, 3], points=80, seed=1, cfg_scale=2.0)
    assert clouds.shape == (2, 80, 3) and torch.isfinite(clouds).all()
    again = m.sample_clouds([0, 3], points=80, seed=1, cfg_scale=2.0)
    torch.testing.assert_close(clouds, again, atol=0, rtol=0)  # seeded
    assert not torch.allclose(clouds, m.sample_clouds([0, 3], points=80, seed=1, cfg_scale=1.0))  # guidance acts
    batch = shape_batch(96)
    full, labels = batch["points"][:2], batch["label"][:2]
    known = full[..., 1] > 0
    done = m.complete(full, known, labels, seed=0)
    torch.testing.assert_close(done[known], full[known], atol=1e-5, rtol=0)
    assert not torch.allclose(done[~known], full[~known])


def test_pretrained_round_trip(tmp_path):
    m = voxel_module(window3d=2)
    torch.manual_seed(0)
    for p in m.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    x, t, lab = torch.randn(2, 40, 3), torch.rand(2), torch.tensor([1, 2])
    loaded = check_pretrained_round_trip(m, lambda mod: mod.model(x, t, cond=lab), tmp_path / "pre")
    assert loaded.window3d == 2 and loaded.tokenizer.resolution == 8
    assert loaded.model.dit.config.window_grid == [4, 4, 4]


def test_old_flat_arguments_migrate_into_the_groups():
    old = {"lr": 2e-3, "sample_steps": 6, "sample_method": "heun", "cfg_scale": 1.5, "cond_dropout": 0.2}
    args = ShapesModule.migrate_args({**old, "window3d": 2, "sample_points": 64})
    assert args["optim"] == {"lr": 2e-3} and args["flow"] == {"cond_dropout": 0.2} and args["window3d"] == 2
    assert args["sampler"] == {"steps": 6, "method": "heun", "cfg_scale": 1.5}
    tok = VoxelPatchTokenizer(resolution=8, patch=2, channels=4)
    m = ShapesModule(tok, DiTConfig(dim=48, depth=2, heads=2, rope_axes=3, num_classes=6), **args)
    assert (m.sampler.steps, m.optim.lr, m.flow.cond_dropout, m.config.in_dim) == (6, 2e-3, 0.2, 32)


def test_checkpoint_of_the_earlier_module_loads_to_the_same_network(tmp_path):
    """Flat hyper-parameters, a typed DiTConfig and no ditkit format marker (the layout before the seams) load
    through ``load_run``: same weights, same windows, the old defaults restated."""
    from ditkit_shapes import cli as shapes_cli

    m = voxel_module(window3d=2)
    torch.manual_seed(0)
    for p in m.parameters():
        p.data.add_(torch.randn_like(p) * 0.05)
    tok = {"class_path": "ditkit_shapes.tokenizer.VoxelPatchTokenizer", "init_args": {"resolution": 8, "patch": 2}}
    tok["init_args"].update(channels=4, class_conditional=True)
    old = {
        "model": DiTConfig(in_dim=32, dim=48, depth=2, heads=2, rope_axes=3, num_classes=len(CLASSES)),
        "tokenizer": tok,
        "window3d": 2,
        "window_every": 2,
        "point_hidden": 32,
        "class_names": list(CLASSES),
        "sample_points": 64,
        "time_sampler": None,
        "lr": 1e-3,
        "warmup_steps": 100,
        "cond_dropout": 0.1,
        "sample_steps": 4,
        "sample_method": "heun",
        "cfg_scale": 1.0,
        "fourier_features": 0,
        "_class_path": "ditkit_shapes.module.ShapesModule",
    }
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": old}, tmp_path / "old.ckpt")
    loaded = shapes_cli.load(tmp_path / "old.ckpt")
    assert loaded.config == m.config and (loaded.sampler.steps, loaded.sampler.method) == (4, "heun")
    assert loaded.time_sampler == TimeSampler() and loaded.flow.cond_dropout == 0.1  # None meant the default
    x, t, lab = torch.randn(2, 40, 3), torch.rand(2), torch.tensor([1, 2])
    torch.testing.assert_close(loaded.model(x, t, cond=lab), m.eval().model(x, t, cond=lab), atol=0, rtol=0)


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    """The debug app config trained once (its dataset generated) under a temporary folder, checkpoint kept."""
    root = tmp_path_factory.mktemp("shapes_debug")
    config = config_copy(
        ROOT / "apps/shapes/configs/debug.yaml",
        root / "debug.yaml",
        {
            "trainer.default_root_dir": root,
            "trainer.enable_checkpointing": True,
            "trainer.logger": False,  # the YAML's loggers write under its own run folder
            "data.init_args.root": root / "data",
        },
    )
    run = run_config(config)
    (ckpt,) = root.rglob("*.ckpt")
    return SimpleNamespace(config=config, root=root, ckpt=ckpt, run=run)


def test_debug_config_runs_through_ditkit_fit_and_its_checkpoint_loads(debug_run):
    from ditkit_shapes import cli as shapes_cli

    run = debug_run.run
    assert run.trainer.global_step == 3
    assert (debug_run.root / "data" / "chair" / "test").is_dir()
    assert run.model.class_names == list(CLASSES)
    loaded = shapes_cli.load(debug_run.ckpt, config=debug_run.config)
    assert loaded.class_names == list(CLASSES) and loaded.model.dit.config.window_grid == [4, 4, 4]
    x, t, lab = torch.randn(2, 40, 3), torch.rand(2), torch.tensor([1, 2])
    trained = run.model.eval()
    torch.testing.assert_close(loaded.model(x, t, cond=lab), trained.model(x, t, cond=lab), atol=0, rtol=0)


def test_ditkit_shapes_sample_and_eval_run_on_the_debug_run(debug_run):
    import json

    from ditkit_shapes.cli import APP, main

    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--steps", "1", "--points", "32"]
    assert APP.run(["sample", *common, "--per-class", "1"]) == 0
    out = debug_run.root / "sample"  # <run folder>/<command>; the dataset root comes from the config
    assert len(list(out.glob("*.ply"))) == len(CLASSES) and (out / "samples.png").exists()
    assert (out / "completion.png").exists()
    args = ["--classes", "mug", "lamp", "--n", "1", "--emd-points", "16", "--metrics", "cd"]
    assert APP.run(["eval", *common, *args]) == 0
    rows = json.loads((debug_run.root / "eval" / "eval.json").read_text())
    assert [r["class"] for r in rows] == ["mug", "lamp"] and all(r["points"] == 32 and r["n"] == 1 for r in rows)
    assert "| mug | generated vs test |" in (debug_run.root / "eval" / "eval.md").read_text()
    main(["eval", *common, *args, "--out", str(debug_run.root / "cli_eval")])  # the package's command
    assert json.loads((debug_run.root / "cli_eval" / "eval.json").read_text())[0]["class"] == "mug"


def test_evaluate_protocol_same_points_and_normalisation(tmp_path, monkeypatch):
    """`eval`: references are normalised on every stored point, then subsampled to the generated count."""
    from ditkit_shapes import cli
    from ditkit_shapes.procedural import write_dataset

    root = write_dataset(tmp_path / "d", classes=("lamp", "mug"), sizes={"train": 3, "test": 3}, points=128)
    seen = []
    monkeypatch.setattr(cli, "evaluate_sets", lambda gen, ref, *a: seen.append((gen, ref)) or {"1-NNA-CD": 0.5})
    m = ShapesModule(
        PointTokenizer(),
        DiTConfig(in_dim=3, dim=32, depth=1, heads=2, num_classes=2),
        class_names=["lamp", "mug"],
        sampler={"steps": 2},
    )
    rows = cli.evaluate(m, str(root), ["mug"], n=2, points=32, stored_points=128, metrics=("cd",))
    assert rows[0]["class"] == "mug" and rows[0]["n"] == 2
    for gen, ref in seen:
        assert gen.shape == ref.shape == (2, 32, 3)
    full = cli.ShapeFolderDataset(root, "test", ["lamp", "mug"], 128, "unit_sphere").class_points(1)[:2]
    ref = seen[0][1]  # generated vs test: every reference point is a point of the normalised full test cloud
    assert (ref[:, :, None] - full[:, None]).norm(dim=-1).amin(-1).max() < 1e-6
    with pytest.raises(ValueError, match="stored_points"):
        cli.evaluate(m, str(root), ["mug"], n=2, points=256, stored_points=128)


@pytest.mark.slow
def test_point_model_learns_one_class_by_the_domain_metric():
    """A small point-token model trained on lamps generates clouds closer to held-out lamps than to mugs."""
    from ditkit_shapes.metrics import pairwise_chamfer

    def clouds(name: str, n: int, offset: int) -> torch.Tensor:
        return torch.stack(
            [torch.from_numpy(normalize_points(make_shape(name, 128, offset + i), "unit_sphere")) for i in range(n)]
        )

    train, test, other = clouds("lamp", 64, 0), clouds("lamp", 16, 1000), clouds("mug", 16, 2000)
    m = ShapesModule(
        PointTokenizer(class_conditional=False),
        DiTConfig(in_dim=3, dim=64, depth=3, heads=4),
        sampler={"steps": 16, "method": "heun"},
        sample_points=128,
    )
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    torch.manual_seed(0)
    for step in range(400):
        idx = torch.randint(0, len(train), (16,))
        loss = m.flow_loss(m.tokenize({"points": train[idx]}), torch.Generator().manual_seed(step))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    gen = m.sample_clouds(None, n=16, points=128, seed=0)
    to_lamps = pairwise_chamfer(gen, test).min(1).values.mean()
    to_mugs = pairwise_chamfer(gen, other).min(1).values.mean()
    data_level = pairwise_chamfer(train[:16], test).min(1).values.mean()
    assert to_lamps < 0.7 * to_mugs and to_lamps < 4 * data_level, (to_lamps, to_mugs, data_level)
