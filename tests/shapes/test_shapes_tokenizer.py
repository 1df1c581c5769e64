"""Tokenizers: exact round trips, voxelisation maths, permutation equivariance, 3D window attention."""

import pytest
import torch

from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.testing import check_tokenizer_round_trip
from ditkit_shapes.model import FourierPointEmbed, VoxelVelocity
from ditkit_shapes.tokenizer import PointTokenizer, VoxelPatchTokenizer, devoxelize, normalize_to_grid, voxelize


def randomize(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (a fresh DiT outputs zeros, which would make equalities trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return module


def test_point_tokenizer_round_trip():
    raw = {"points": torch.randn(2, 50, 3), "label": torch.tensor([1, 4]), "mask": torch.rand(2, 50) > 0.2}
    check_tokenizer_round_trip(PointTokenizer(), raw)
    tokens = PointTokenizer(class_conditional=False).encode(raw)
    assert tokens.cond is None and tokens.x.shape == (2, 50, 3)


def test_voxel_patch_round_trip_is_exact():
    tok = VoxelPatchTokenizer(resolution=8, patch=2, channels=3)
    pts = torch.rand(2, 300, 3) * 2 - 1
    tokens = tok.encode({"points": pts})
    assert tokens.x.shape == (2, 64, 24) and tokens.pos.shape == (2, 64, 3)
    grid, _ = voxelize(tokens.meta["coords"], tokens.meta["coords"], 8)
    torch.testing.assert_close(tok.decode(tokens)["grid"], grid, atol=0, rtol=0)
    torch.testing.assert_close(tok.patchify(tok.unpatchify(tokens.x)), tokens.x, atol=0, rtol=0)
    # token i sits at patch position pos[i]: the voxel (2 * pos) belongs to it
    i = 37
    x, y, z = tokens.pos[0, i].long().tolist()
    torch.testing.assert_close(tokens.x[0, i, :3], grid[0, :, 2 * x, 2 * y, 2 * z])


def test_voxelize_averages_and_devoxelize_is_exact_on_linear_fields():
    r = 5
    coords = torch.tensor([[[-1.0, -1.0, -1.0], [-0.95, -1.0, -1.0], [1.0, 1.0, 1.0]]])
    feats = torch.tensor([[[1.0], [3.0], [7.0]]])
    grid, counts = voxelize(feats, coords, r)
    assert grid[0, 0, 0, 0, 0] == 2.0 and counts[0, 0, 0, 0, 0] == 2 and grid[0, 0, -1, -1, -1] == 7.0
    assert counts.sum() == 3
    # a field linear in the coordinates, stored at voxel centres, is reproduced exactly at any point
    axis = torch.linspace(-1, 1, r)
    gx, gy, gz = torch.meshgrid(axis, axis, axis, indexing="ij")
    field = torch.stack([2 * gx - gy + 0.5, gz, gx + gy + gz])[None]  # [1, 3, r, r, r]
    pts = torch.rand(1, 200, 3) * 2 - 1
    want = torch.stack([2 * pts[..., 0] - pts[..., 1] + 0.5, pts[..., 2], pts.sum(-1)], -1)
    torch.testing.assert_close(devoxelize(field, pts), want, atol=1e-5, rtol=0)


def test_normalize_to_grid_fits_and_respects_mask():
    pts = torch.randn(3, 100, 3) * 5 + 2
    mask = torch.ones(3, 100, dtype=torch.bool)
    mask[:, 90:] = False
    pts[:, 90:] = 1000.0  # padding must not move the normalisation
    c = normalize_to_grid(pts, mask)
    torch.testing.assert_close(c[:, :90].norm(dim=-1).amax(1), torch.ones(3))
    torch.testing.assert_close(c[:, :90], normalize_to_grid(pts[:, :90]))


def test_point_and_voxel_velocities_are_permutation_equivariant():
    x, t, labels = torch.randn(2, 64, 3), torch.rand(2), torch.tensor([0, 2])
    perm = torch.randperm(64)
    dit = randomize(DiT(DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=3)))
    torch.testing.assert_close(dit(x[:, perm], t, cond=labels), dit(x, t, cond=labels)[:, perm], atol=1e-5, rtol=0)
    tok = VoxelPatchTokenizer(resolution=8, patch=2, channels=4)
    vox = randomize(
        VoxelVelocity(tok, DiT(DiTConfig(in_dim=32, dim=48, depth=2, heads=2, rope_axes=3, num_classes=3)), hidden=16)
    )
    torch.testing.assert_close(vox(x[:, perm], t, cond=labels), vox(x, t, cond=labels)[:, perm], atol=1e-5, rtol=0)


def test_fourier_point_embed_shapes_features_and_permutation_equivariance():
    base = torch.nn.Linear(3, 32)
    emb = FourierPointEmbed(base, n_freqs=4, min_freq=1.0, max_freq=8.0)
    torch.testing.assert_close(emb.freqs, torch.tensor([1.0, 2.0, 4.0, 8.0]))
    x = torch.randn(2, 50, 3)
    assert emb(x).shape == (2, 50, 32) and emb.features(x).shape == (2, 50, 24)
    f = emb.features(x)  # layout: coordinate-major, then sin (4 freqs), cos (4 freqs)
    torch.testing.assert_close(f[..., 1 * 8 + 2], torch.sin(4.0 * x[..., 1]))
    torch.testing.assert_close(f[..., 2 * 8 + 4 + 3], torch.cos(8.0 * x[..., 2]))
    torch.testing.assert_close(emb(x) - emb.proj(f), base(x))  # raw-coordinate term kept
    dit = randomize(DiT(DiTConfig(in_dim=3, dim=32, depth=2, heads=2, num_classes=3)))
    dit.x_embed = randomize(FourierPointEmbed(dit.x_embed, n_freqs=6))
    x, t, labels, perm = torch.randn(2, 64, 3), torch.rand(2), torch.tensor([0, 2]), torch.randperm(64)
    torch.testing.assert_close(dit(x[:, perm], t, cond=labels), dit(x, t, cond=labels)[:, perm], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="n_freqs"):
        FourierPointEmbed(base, n_freqs=0)


def test_window3d_single_window_equals_global_and_windows_are_local():
    """3D windows as config data (``window_grid`` / ``window_size``): the core DiT's local blocks attend inside them."""
    cfg = DiTConfig(in_dim=8, dim=48, depth=2, heads=2, rope_axes=3)
    glob = randomize(DiT(cfg))
    tok = VoxelPatchTokenizer(resolution=4, patch=1, channels=8)
    h, t, pos = torch.randn(1, 64, 8), torch.rand(1), tok.positions(1)

    def windowed(window: int, every: int) -> DiT:
        m = DiT(
            DiTConfig(**{**cfg.to_dict(), "window_grid": [4] * 3, "window_size": [window] * 3, "window_every": every})
        )
        m.load_state_dict(glob.state_dict())  # same weights: the partition is data, not parameters
        return m

    torch.testing.assert_close(windowed(4, 1)(h, t, pos=pos), glob(h, t, pos=pos), atol=1e-5, rtol=0)
    local = windowed(2, 1)
    h2 = h.clone()
    h2[0, 0] += 1.0  # token (0, 0, 0): window (0, 0, 0)
    moved = (local(h2, t, pos=pos) - local(h, t, pos=pos)).abs().sum(-1)[0] > 1e-6  # [64]
    in_window = (pos[0] < 2).all(-1)
    assert moved[in_window].any() and not moved[~in_window].any()
    mixed = windowed(2, 2)  # second block is global: information crosses
    assert ((mixed(h2, t, pos=pos) - mixed(h, t, pos=pos)).abs().sum(-1)[0, ~in_window] > 1e-6).any()
