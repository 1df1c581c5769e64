"""The 3D model on the core seams: one core DiT inside each network, checkpoints of the forked-block layout, the
distance-geometry loss and the EDM evaluation protocol."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditkit_core.lightning import load_run, to_config
from ditkit_core.nn import DiT, DiTConfig
from ditkit_core.sampling import find_dits
from ditkit_molecules.edm import atom_stability, bond_order, edm_metrics
from ditkit_molecules.geometry import Conformer, embed, mol_to_arrays
from ditkit_molecules.module3d import Molecule3DModule, random_rotations
from ditkit_molecules.tokenizer import AtomTokenizer

PAIR = {"rbf": 8, "coord_hidden": 16}


def _module(network: str = "distance", **kw) -> Molecule3DModule:
    torch.manual_seed(0)
    return Molecule3DModule(
        AtomTokenizer(),
        DiTConfig(dim=32, depth=2, heads=2, pair_dim=8, attn_backend="sdpa"),
        network=network,
        pair=dict(PAIR),
        geometric_features=8 if network == "distance" else 16,
        **kw,
    )


def _inputs(m: Molecule3DModule, b: int = 3, a: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    mask = torch.arange(a)[None] < torch.tensor([a, a - 2, 4])[:b, None]
    x = torch.randn(b, a, m.tokenizer.token_dim, generator=g) * mask[..., None]
    return x, torch.rand(b, generator=g), mask


@pytest.mark.parametrize("network", ["distance", "equivariant"])
def test_pair_networks_compose_one_core_dit(network):
    """Caches and compile find the DiT (it is the only one), and the YAML's attention backend reaches it."""
    m = _module(network)
    (dit,) = find_dits(m.model)
    assert isinstance(dit, DiT) and dit.config.pair_dim == 8
    assert all(blk.attn.backend == "sdpa" and blk.attn.pair_proj is not None for blk in dit.blocks)
    if network == "equivariant":  # invariant features in, neighbourhood embedding as condition channels
        assert dit.config.in_dim == 8 and dit.config.cond_channels == 8 * 8


def test_block_cache_drives_the_distance_network():
    from ditkit_core.lightning import CacheConfig

    m = _module()
    m.size_hist.zero_()
    m.size_hist[9] = 1.0
    for p in m.parameters():  # leave the zero initialisation so the blocks do something
        p.data.add_(0.05 * torch.randn_like(p))
    plain = m.sample_molecules(3, seed=0, steps=4)
    same = m.sample_molecules(3, seed=0, steps=4, cache=CacheConfig(kind="block", interval=1))
    for a, b in zip(plain, same):
        np.testing.assert_allclose(a.coords, b.coords, atol=1e-5)
    m.sample_molecules(3, seed=0, steps=4, cache=CacheConfig(kind="block", interval=2))
    assert m.last_cache_stats.skipped > 0


# ------------------------------------------------------------------ checkpoints of the forked-block layout
_ATTN = ("qkv", "q_norm", "k_norm", "proj")


def _old_key(key: str) -> str:
    """Today's key -> the key of the networks that forked their own DiT block (the inverse of the migration)."""
    k = key.removeprefix("model.")
    parts = k.split(".")
    if parts[0] == "dit":
        parts = parts[1:]
        if parts[0] == "blocks" and parts[2] == "attn":
            i, rest = parts[1], parts[3:]
            return "model." + (
                f"bias.{i}.{'.'.join(rest[1:])}" if rest[0] == "pair_proj" else f"blocks.{i}." + ".".join(rest)
            )
        if parts[0] == "final":
            return "model." + ("final_adaLN." if parts[1] == "adaLN" else "final.") + ".".join(parts[2:])
        if parts[0] == "cond_proj":
            return "model.neigh_embed." + ".".join(parts[1:])
        return "model." + ".".join(parts)
    if parts[0] == "pair_embed":
        return "model.pair_embed." + ".".join(parts[2:])
    return key


def test_forked_block_checkpoint_loads_through_load_run(tmp_path):
    """A checkpoint of the earlier layout (flat arguments, ``pair.pair_dim``, PairBiasBlock weights, no format tag)
    loads through the core's load_run and computes exactly what the same weights compute today."""
    m = _module()
    for p in m.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    old_state = {_old_key(k): v.clone() for k, v in m.state_dict().items()}
    assert "model.blocks.0.qkv.weight" in old_state and "model.bias.1.weight" in old_state
    assert "model.final_adaLN.1.weight" in old_state and "model.pair_embed.0.weight" in old_state
    model = {k: v for k, v in vars(m.config).items() if k not in ("pair_dim", "cond_channels")}
    hparams = {
        "tokenizer": to_config(m.tokenizer),
        "model": model,
        "network": "distance",
        "pair": {**PAIR, "pair_dim": 8},
        "geometric_features": 8,
        "lr": 1e-3,
        "sample_steps": 7,
        "coord_weight": 8.0,
    }
    ckpt = tmp_path / "old.ckpt"
    torch.save({"state_dict": old_state, "hyper_parameters": hparams}, ckpt)
    cfg = tmp_path / "c.yaml"  # the checkpoint does not name its class: the config does
    cfg.write_text("model:\n  class_path: ditkit_molecules.module3d.Molecule3DModule\n")
    loaded = load_run(cfg, ckpt)
    assert loaded.optim.lr == 1e-3 and loaded.sampler.steps == 7 and loaded.config.pair_dim == 8
    x, t, mask = _inputs(m)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x, t, mask=mask), m.eval().model(x, t, mask=mask), atol=0, rtol=0)


def test_equivariant_migration_folds_the_neighbourhood_bias():
    """The earlier equivariant network summed two linears (tokens, neighbourhood); the migration moves the second
    into the DiT's condition projection and adds its bias to the input projection's: the same function."""
    m = _module("equivariant", flow={"prediction": "data"})
    for p in m.parameters():
        p.data.add_(0.1 * torch.randn_like(p))
    state = {_old_key(k): v.clone() for k, v in m.state_dict().items()}
    extra = torch.randn(m.config.dim)
    state["model.neigh_embed.bias"] = extra
    state["model.x_embed.bias"] = state["model.x_embed.bias"] - extra
    new = m.migrate_state_dict(state)
    assert set(new) == set(m.state_dict())
    torch.testing.assert_close(new["model.dit.x_embed.bias"], m.state_dict()["model.dit.x_embed.bias"])
    assert m.migrate_state_dict(m.state_dict()).keys() == m.state_dict().keys()  # today's layout: unchanged


# ------------------------------------------------------------------ distance-geometry loss
def test_distance_loss_closed_form_and_invariance():
    m = _module(distance_weight=1.0, distance_cutoff=2.0)
    s = 1.0 / m.tokenizer.coord_scale  # 1 Angstrom in coordinate units
    target = torch.tensor([[[0.0, 0, 0], [1.5 * s, 0, 0], [0, 5.0 * s, 0]]])  # one pair within 2 Angstrom
    pred = target.clone()
    pred[0, 1, 0] = 1.2 * s  # the near pair shrinks by 0.3 Angstrom; the far atom does not count
    mask = torch.ones(1, 3, dtype=torch.bool)
    t = torch.tensor([0.5])
    assert float(m.distance_loss(target, target, mask, t)) == 0.0
    torch.testing.assert_close(m.distance_loss(pred, target, mask, t), torch.tensor((0.3 * s) ** 2))
    rot = random_rotations(1, torch.Generator().manual_seed(0))
    turned = torch.einsum("bij,baj->bai", rot, pred) + 0.7
    torch.testing.assert_close(m.distance_loss(turned, target, mask, t), m.distance_loss(pred, target, mask, t))


def test_distance_loss_enters_the_training_loss():
    batch = {
        "numbers": torch.tensor([[6, 8, 1, 1, 1, 1]]),
        "coords": torch.tensor(mol_to_arrays(embed("CO", seed=0))[2])[None],
        "charges": torch.zeros(1, 6, dtype=torch.long),
    }
    with_term, without = _module(distance_weight=5.0), _module()
    without.load_state_dict(with_term.state_dict())
    tokens = without.tokenize(batch)
    a = with_term.flow_loss(tokens, torch.Generator().manual_seed(0))
    b = without.flow_loss(tokens, torch.Generator().manual_seed(0))
    assert a["fm"].item() == b["fm"].item() and a["loss"].item() > b["loss"].item()


# ------------------------------------------------------------------ EDM protocol
def test_edm_bond_orders_closed_form():
    # C-C: single below 154 + 10 pm, double below 134 + 5, triple below 120 + 3
    assert [bond_order("C", "C", d) for d in (1.65, 1.63, 1.38, 1.22)] == [0, 1, 2, 3]
    assert bond_order("C", "H", 1.09) == 1 and bond_order("H", "C", 1.19) == 0
    assert bond_order("H", "H", 0.5) == 1  # no double H-H in the table
    assert bond_order("C", "Xx", 1.0) == 0  # pairs without a table are not bonded


def test_edm_metrics_on_conformers():
    mols = []
    for smi in ["CCO", "CCO", "CC#N"]:
        numbers, charges, coords = mol_to_arrays(embed(smi, seed=0))
        mols.append(Conformer(smi, numbers, charges, coords))
    r = edm_metrics(mols)
    assert r["edm_atom_stability"] == 1.0 and r["edm_mol_stability"] == 1.0
    assert r["edm_validity"] == 1.0 and r["edm_uniqueness"] == pytest.approx(2 / 3)
    squashed = [Conformer("", m.numbers, m.charges, m.coords * 0.6) for m in mols]
    bad = edm_metrics(squashed)
    assert bad["edm_mol_stability"] == 0.0 and bad["edm_atom_stability"] < 0.75
    numbers = mols[0].numbers
    assert not atom_stability(numbers, mols[0].coords * 0.6)[numbers == 6].any()  # carbons over-bonded


def test_3d_eval_rows_carry_the_controls_and_the_edm_protocol(tmp_path):
    from ditkit_molecules.cli import EDM_KEYS, evaluate
    from ditkit_molecules.data import Conformer3DDataModule
    from ditkit_molecules.edm import EDM_QM9_REPORTED

    dm = Conformer3DDataModule(max_heavy_atoms=6, batch_size=4, limit=30, cache_dir=str(tmp_path))
    dm.setup("fit")
    m = _module()
    m.size_hist.copy_(dm.size_hist[: len(m.size_hist)])
    rows = evaluate(m, dm, 4, seed=0, steps=2, with_fcd=False)
    assert set(rows) == {
        "training data",
        "held-out data",
        "model",
        "untrained model (same sampler)",
        "EDM on QM9 (reported)",
    }
    assert set(EDM_KEYS) - {"molecules_per_cpu_s"} <= set(rows["model"]) and rows["model"]["molecules_per_cpu_s"] > 0
    assert rows["EDM on QM9 (reported)"]["edm_mol_stability"] == EDM_QM9_REPORTED["mol_stability"]
    assert rows["training data"]["atom_stability"] > 0.95  # the ceiling


def test_size_bucket_batches_cover_the_epoch_with_less_padding():
    from ditkit_molecules.batching import SizeBucketBatchSampler

    sizes = torch.randint(5, 37, (1000,), generator=torch.Generator().manual_seed(0)).tolist()
    s = SizeBucketBatchSampler(sizes, 48, seed=3, buckets=8, drop_last=False)
    batches = list(s)
    assert len(batches) == len(s) and sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == list(s) and all(len(b) <= 48 for b in batches)  # the order depends on (seed, epoch) only
    s.set_epoch(1)
    assert list(s) != batches
    padded = sum(max(sizes[i] for i in b) * len(b) for b in batches) / 1000
    plain = sum(max(sizes[i] for i in b) * len(b) for b in SizeBucketBatchSampler(sizes, 48, 3, 1, False)) / 1000
    assert padded < 0.8 * plain  # padded width close to the molecules' own
    s.set_epoch(0)
    s.skip_batches(5)  # resuming mid-epoch: the rest of the same epoch
    assert list(s) == batches[5:] and list(s) == batches
    dropped = SizeBucketBatchSampler(sizes, 48, 3, 8, drop_last=True)
    assert len(list(dropped)) == len(dropped) and all(len(b) == 48 for b in dropped)


@pytest.mark.parametrize("prediction", ["velocity", "data"])
def test_cross_entropy_types_give_a_categorical_clean_estimate(prediction):
    """With ``type_loss="ce"`` the implied clean element channels are a probability vector per atom, whether the
    coordinates are velocities or clean data, and the loss trains."""
    from ditkit_core.testing import check_module_fits_batch, perturb_weights

    m = _module(type_loss="ce", flow={"prediction": prediction})
    perturb_weights(m.model, 0.2)
    x, t, mask = _inputs(m)
    tokens = m.tokenizer.encode(
        {"numbers": torch.where(mask, 6, 0), "coords": x[..., :3] * m.tokenizer.coord_scale, "charges": 0 * mask}
    )
    with torch.no_grad():
        est = m.clean_estimate(m.predict(tokens, x, t), x, t)
    k = len(m.tokenizer.elements)
    torch.testing.assert_close(est[..., 3 : 3 + k].sum(-1)[mask], torch.ones(int(mask.sum())))
    assert (est[..., 3 : 3 + k] >= -1e-6).all()
    batch = {"numbers": torch.where(mask, 6, 0), "coords": x[..., :3] * 1.6, "charges": torch.zeros_like(mask).long()}
    check_module_fits_batch(m, batch, steps=20, lr=3e-3, drop=0.2)
