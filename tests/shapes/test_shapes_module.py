"""The flow-matching module: learning, CFG sampling, completion, pretrained I/O and the debug app config."""

from pathlib import Path

import pytest
import torch

from ditkit_core.nn import DiTConfig
from ditkit_core.testing import check_module_fits_batch, check_pretrained_round_trip, run_config
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
    return ShapesModule(tok, cfg, point_hidden=32, sample_steps=4, sample_points=64, **kw)


def point_module() -> ShapesModule:
    cfg = DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=len(CLASSES))
    return ShapesModule(PointTokenizer(), cfg, sample_steps=4, sample_points=64)


@pytest.mark.parametrize("make", [voxel_module, point_module, lambda: voxel_module(window3d=2)])
def test_module_learns_a_batch(make):
    torch.manual_seed(0)
    check_module_fits_batch(make(), shape_batch(64), steps=40, lr=3e-3, drop=0.2)


def test_configuration_errors_name_the_field():
    with pytest.raises(ValueError, match="window3d needs a VoxelPatchTokenizer"):
        ShapesModule(PointTokenizer(), DiTConfig(in_dim=3, dim=32, depth=1, heads=2), window3d=2)
    with pytest.raises(ValueError, match="token_dim=32 != model.in_dim=3"):
        ShapesModule(VoxelPatchTokenizer(8, 2, 4), DiTConfig(in_dim=3, dim=48, depth=1, heads=2, rope_axes=3))
    with pytest.raises(ValueError, match="must divide the patch grid"):
        voxel_module(window3d=3)


def test_fourier_features_option_learns_and_round_trips(tmp_path):
    cfg = DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=len(CLASSES))
    m = ShapesModule(PointTokenizer(), cfg, sample_steps=4, sample_points=64, fourier_features=6)
    assert isinstance(m.model.x_embed, FourierPointEmbed) and m.model.x_embed.freqs[-1] == pytest.approx(32.0)
    torch.manual_seed(0)
    check_module_fits_batch(m, shape_batch(64), steps=40, lr=3e-3, drop=0.2)
    x, t, lab = torch.randn(2, 40, 3), torch.rand(2), torch.tensor([1, 2])
    loaded = check_pretrained_round_trip(m, lambda mod: mod.model(x, t, cond=lab), tmp_path / "pre")
    assert loaded.fourier_features == 6 and isinstance(loaded.model.x_embed, FourierPointEmbed)
    with pytest.raises(ValueError, match="fourier_features applies to point tokens"):
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


def test_debug_config_runs_through_ditkit_fit(tmp_path):
    cli = run_config(
        ROOT / "apps/shapes/configs/debug.yaml",
        "--trainer.default_root_dir",
        str(tmp_path),
        "--data.init_args.root",
        str(tmp_path / "data"),
    )
    assert cli.trainer.global_step == 3
    assert (tmp_path / "data" / "chair" / "test").is_dir()
    assert cli.model.class_names == list(CLASSES)


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
        sample_steps=2,
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
        sample_steps=16,
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
