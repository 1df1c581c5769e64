"""The 3D and latent models: tokenizers, symmetry handling, learning, checkpoints, debug configs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ditkit_core.lightning import FlowConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import (
    check_module_fits_batch,
    check_pretrained_round_trip,
    check_tokenizer_round_trip,
    config_copy,
    run_config,
)
from ditkit_molecules.autoencoder import LatentTokenizer
from ditkit_molecules.data import ConformerDataset, EnumeratedSmilesDataset, collate_atoms
from ditkit_molecules.geometry import conformers
from ditkit_molecules.module3d import Molecule3DModule, center, random_rotations
from ditkit_molecules.module_latent import LatentMoleculeModule
from ditkit_molecules.pairnet import pairwise
from ditkit_molecules.tokenizer import AtomTokenizer, SelfiesVocab

APP = Path(__file__).resolve().parents[2] / "apps" / "molecules" / "configs"
SMILES = [
    "CCO",
    "CC(=O)O",
    "c1ccccc1",
    "CCN(CC)CC",
    "O=C(O)c1ccccc1",
    "CC(C)Cl",
    "C1CCOC1",
    "CC#N",
    "NC(=O)c1ccncc1",
    "CSC",
    "FC(F)(F)c1ccccc1",
    "OCC(O)CO",
    "C=CC=O",
    "CCOC(C)=O",
    "c1ccoc1",
    "CNC",
]


@pytest.fixture(scope="module")
def atom_batch():
    return collate_atoms([ConformerDataset(conformers(SMILES, seed=0))[i] for i in range(len(SMILES))])


def test_atom_tokenizer_round_trip(atom_batch):
    tok = AtomTokenizer()
    back_mask = atom_batch["numbers"] > 0
    check_tokenizer_round_trip(
        tok,
        atom_batch,
        compare=lambda a, b: (
            torch.testing.assert_close(b["coords"], a["coords"], atol=1e-6, rtol=0),
            torch.testing.assert_close(b["numbers"], a["numbers"]),
            torch.testing.assert_close(b["charges"], a["charges"]),
            torch.testing.assert_close(b["mask"], back_mask),
        ),
    )
    with pytest.raises(ValueError, match="atomic number 35"):
        tok.encode({**atom_batch, "numbers": atom_batch["numbers"].masked_fill(back_mask, 35)})


def test_selfies_vocab_round_trip():
    from ditkit_molecules.metrics import canonical

    vocab = SelfiesVocab(max_len=30)
    for s in SMILES:
        ids = vocab.encode_smiles(s)
        assert ids[0] == vocab.BOS and ids[-1] == vocab.EOS
        assert canonical(vocab.decode_ids(ids)) == canonical(s)
    with pytest.raises(ValueError, match="max_len=30"):
        vocab.encode_smiles("C" * 40)


def test_rotations_and_centering():
    rot = random_rotations(64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rot), torch.ones(64), atol=1e-5, rtol=0)
    x = torch.randn(2, 5, 3)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    c = center(x, mask)
    torch.testing.assert_close(c[0].mean(0), torch.zeros(3), atol=1e-6, rtol=0)
    torch.testing.assert_close(c[1, :3].mean(0), torch.zeros(3), atol=1e-6, rtol=0)
    assert (c[1, 3:] == 0).all()


def _module3d(**kw):
    tok = AtomTokenizer()
    return Molecule3DModule(tok, DiTConfig(in_dim=tok.token_dim, dim=64, depth=2, heads=4), **kw)


def test_geometric_embedding_is_invariant(atom_batch):
    torch.manual_seed(0)
    m = _module3d()
    tokens = m.tokenizer.encode(atom_batch)
    emb = m.model.x_embed
    base = emb(tokens.x) - emb.base(tokens.x)
    rot = random_rotations(tokens.x.shape[0], torch.Generator().manual_seed(1))
    coords = torch.einsum("bij,baj->bai", rot, tokens.x[..., :3]) + 0.3
    moved = tokens.x.clone()
    moved[..., :3] = coords
    torch.testing.assert_close(emb(moved) - emb.base(moved), base, atol=1e-4, rtol=1e-4)


def test_3d_module_learns_and_samples(atom_batch, tmp_path):
    torch.manual_seed(0)
    m = _module3d()
    m.size_hist.zero_()
    m.size_hist[[9, 12]] = 1.0
    check_module_fits_batch(m, atom_batch, steps=30, lr=3e-3, drop=0.3)
    mols = m.sample_molecules(6, seed=0, steps=3)
    assert {len(x.numbers) for x in mols} <= {9, 12}
    for x in mols:
        assert abs(x.coords.mean(0)).max() < 1e-4  # zero centre of mass
        assert set(x.numbers.tolist()) <= set(m.tokenizer.numbers.tolist())
    check_pretrained_round_trip(
        m,
        lambda mod: mod.model(m.tokenizer.encode(atom_batch).x, torch.full((16,), 0.5), mask=atom_batch["numbers"] > 0),
        tmp_path / "p3d",
    )


@pytest.fixture(scope="module")
def smiles_batch():
    ds = EnumeratedSmilesDataset(SMILES, SelfiesVocab(max_len=24), n_enum=4, seed=0)
    torch.manual_seed(0)
    items = [ds[i] for i in range(len(ds))]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _latent_tokenizer():
    return LatentTokenizer(
        max_len=24,
        latent_tokens=2,
        latent_dim=8,
        hidden=64,
        embed=32,
        latent_noise=0.05,
        symbols=SelfiesVocab(24).symbols,
    )


def _fit_autoencoder(tok, batch, lr: float, steps: int = 150):
    """Train the tokenizer's autoencoder on one batch; the first reconstruction loss and the last outputs."""
    opt = torch.optim.Adam(tok.parameters(), lr=lr)
    first = None
    for _ in range(steps):
        out = tok.ae_loss(batch)
        first = first if first is not None else float(out["rec"])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    return first, out


def test_autoencoder_learns_to_reconstruct(smiles_batch):
    from ditkit_molecules.metrics import canonical

    torch.manual_seed(0)
    tok = _latent_tokenizer()
    first, out = _fit_autoencoder(tok, smiles_batch, lr=5e-3)
    assert float(out["rec"]) < 0.1 * first
    tok.eval()
    tok.fit_statistics(smiles_batch["target"], smiles_batch["props"])
    # decode randomised SMILES back to the canonical molecule (enumeration invariance by reconstruction)
    decoded = tok.decode(tok.encode({"enum_a": smiles_batch["enum_b"]}))
    hits = sum(canonical(d) == canonical(s) for d, s in zip(decoded, SMILES))
    assert hits >= 12, decoded


@pytest.mark.parametrize(("group", "dz", "n"), [(1, 4, 25), (4, 16, 7)])
def test_sequence_autoencoder_reconstructs_and_is_enumeration_invariant(smiles_batch, group, dz, n):
    """The sequence-shaped latent (``arch: sequence``; one token per symbol, or per ``group`` symbols) learns to
    reconstruct; it reads the canonical SELFIES, so any SMILES of a molecule has the same latent (the data module
    canonicalises), and the decoder gets molecules back from the latents with the training noise added."""
    from ditkit_molecules.metrics import canonical

    torch.manual_seed(0)
    tok = LatentTokenizer(
        max_len=24,
        arch="sequence",
        latent_dim=dz,
        hidden=32,
        embed=16,
        depth=1,
        heads=2,
        latent_noise=0.3,
        group=group,
        symbols=SelfiesVocab(24).symbols,
    )
    assert tok.latent_tokens == n and tok.input_key == "target"
    first, out = _fit_autoencoder(tok, smiles_batch, lr=3e-3)
    assert float(out["rec"]) < 0.05 * first and float(out["nce"]) == 0.0
    tok.eval()
    tokens = tok.encode({"target": smiles_batch["target"], "enum_a": smiles_batch["enum_b"]})
    assert tokens.x.shape == (16, n, dz) and tokens.pos.shape == (16, n, 1)
    torch.testing.assert_close(tokens.x, tok.encode({"target": smiles_batch["target"]}).x, rtol=0, atol=0)
    z = tok.latents(smiles_batch["target"])
    torch.testing.assert_close(z.mean(-1), torch.zeros(16, n), atol=1e-5, rtol=0)  # layer-normalised tokens
    noisy = z + 0.3 * torch.randn(z.shape, generator=torch.Generator().manual_seed(1))
    hits = sum(canonical(d) == canonical(s) for d, s in zip(tok.decode_latents(noisy), SMILES))
    assert hits >= 12


def test_latent_dit_gets_a_position_per_latent_token():
    """The DiT tells the latent tokens apart: ``learned_pos`` is derived from the tokenizer (a permutation-equivariant
    DiT could only draw exchangeable tokens), and a stated table too small for them is refused."""
    from ditkit_core.nn import ConfigError

    tok = LatentTokenizer(max_len=24, arch="sequence", latent_dim=4, hidden=32, embed=16, depth=1, heads=2)
    m = LatentMoleculeModule(tok, DiTConfig(dim=32, depth=1, heads=2))
    assert (m.config.learned_pos, m.config.in_dim) == (25, 4)
    x = torch.randn(2, 25, 4)
    t = torch.full((2,), 0.5)
    swapped = x.clone()
    swapped[:, [0, 1]] = x[:, [1, 0]]
    from ditkit_core.testing import perturb_weights

    perturb_weights(m.model, seed=0)
    pos = tok.positions(2)
    a, b = m.model(x, t, pos=pos), m.model(swapped, t, pos=pos)
    assert not torch.allclose(a[:, [1, 0]], b[:, :2], atol=1e-4)  # not permutation-equivariant any more
    with pytest.raises(ConfigError, match="learned_pos"):
        LatentMoleculeModule(tok, DiTConfig(dim=32, depth=1, heads=2, learned_pos=8))
    coarse = LatentTokenizer(max_len=24, arch="sequence", group=4)  # ceil(25 / 4) latent tokens
    assert LatentMoleculeModule(coarse, DiTConfig()).config.learned_pos == 7
    with pytest.raises(ValueError, match="group=0"):
        LatentTokenizer(arch="sequence", group=0)


def test_latent_module_dit_phase_learns(smiles_batch, tmp_path):
    torch.manual_seed(0)
    tok = _latent_tokenizer()
    tok.fit_statistics(smiles_batch["target"], smiles_batch["props"])
    m = LatentMoleculeModule(
        tok, DiTConfig(in_dim=8, dim=64, depth=2, heads=4, cond_dim=3), flow=FlowConfig(cond_dropout=0.1), ae_steps=0
    )
    m.stats_ready.fill_(True)
    m.tokenizer.requires_grad_(False)
    check_module_fits_batch(m, smiles_batch, steps=30, lr=3e-3, drop=0.3)
    out = m.sample_smiles(4, props=torch.tensor([0.5, 1.0, 1.5]), steps=2, cfg_scale=2.0)
    assert len(out) == 4 and all(isinstance(s, str) for s in out)
    tokens = m.condition(m.tokenize(smiles_batch), None)
    assert tokens.cond.shape == (16, 3)  # the properties, standardised by the condition hook
    check_pretrained_round_trip(
        m, lambda mod: mod.model(tokens.x, torch.full((16,), 0.3), cond=tokens.cond), tmp_path / "plat"
    )


@pytest.fixture(scope="module", params=["debug.yaml", "debug_latent.yaml"])
def debug_run(request, tmp_path_factory):
    """Each debug app config (3D, latent) trained once under a temporary folder, checkpoint saved."""
    root = tmp_path_factory.mktemp("molecules_debug")
    config = config_copy(
        APP / request.param,
        root / request.param,
        # eval reuses the conformers / SELFIES of the cache
        {"data.init_args.cache_dir": root / "cache", "trainer.default_root_dir": root, "trainer.logger": False},
    )
    run = run_config(config)
    ckpt = root / "last.ckpt"
    run.trainer.save_checkpoint(ckpt)
    return SimpleNamespace(config=config, root=root, ckpt=ckpt, run=run, latent=request.param != "debug.yaml")


def test_debug_configs_run_sample_and_eval(debug_run):
    import json

    from ditkit_molecules import cli as mol_cli

    run, tmp_path = debug_run.run, debug_run.root
    assert run.trainer.global_step == run.trainer.max_steps
    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--n", "4"]
    mol_cli.main(["sample", *common, "--out", str(tmp_path / "samples")])
    suffixes = sorted(p.suffix for p in (tmp_path / "samples").iterdir())
    assert suffixes == [".png", ".sdf", ".smi"]
    mol_cli.main(["eval", *common, "--no-fcd", "--out", str(tmp_path / "eval")])
    rows = json.loads((tmp_path / "eval.json").read_text())
    if not debug_run.latent:
        assert {"training data", "held-out data", "model"} <= set(rows)
        assert rows["training data"]["validity"] == 1.0
        assert rows["training data"]["atom_stability"] > 0.95
    else:  # the controls beside the model, reconstruction, goals, property control (QED, logP, MW errors)
        assert set(rows["rows"]) == {"training data", "held-out data", "model", "decoder only"}
        assert rows["rows"]["training data"]["validity"] == 1.0
        assert set(rows["reconstruction"]) == {
            f"{s} {h}" for s in ("train", "held-out") for h in ("canonical", "enumerated")
        }
        assert len(rows["goals"]) == 8 and len(rows["property control"]) == 6


def test_ditkit_molecules_sample_and_eval_run_on_the_debug_runs(debug_run, tmp_path):
    import json

    from ditkit_molecules.cli import APP as app

    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--n", "3", "--steps", "2"]
    assert app.run(["sample", *common, "--out", str(tmp_path / "s")]) == 0
    smi = tmp_path / "s" / ("latent.smi" if debug_run.latent else "molecules3d.smi")
    assert (tmp_path / "s" / ("latent_conformers.sdf" if debug_run.latent else "molecules3d.sdf")).exists()
    assert len(smi.read_text().splitlines()) <= 3
    if debug_run.latent:  # eval's latent branch is the package command's, run by the test above
        return
    assert app.run(["eval", *common, "--no-fcd", "--out", str(tmp_path / "e")]) == 0
    rows = json.loads((tmp_path / "e" / "eval.json").read_text())
    assert rows["training data"]["validity"] == 1.0 and "model" in rows
    assert (tmp_path / "e" / "eval.md").read_text().startswith(str(debug_run.config))


def test_equivariant_network_symmetries(atom_batch):
    """Coordinates out rotate / reflect with the input, types out are invariant, translation is removed, and padded
    atoms neither change real ones nor move."""
    from ditkit_core.testing import perturb_weights

    torch.manual_seed(0)
    tok = AtomTokenizer()
    m = Molecule3DModule(
        tok,
        DiTConfig(dim=32, depth=2, heads=2),  # in_dim (type + charge channels) derived
        network="equivariant",
        flow={"prediction": "data"},
        pair={"rbf": 8, "pair_dim": 8, "coord_hidden": 16},
    )
    perturb_weights(m.model, 0.2)
    tokens = m.tokenize({k: v[:6] for k, v in atom_batch.items()})
    x = tokens.x.clone()
    x[..., :3] += 0.3 * torch.randn_like(x[..., :3]) * tokens.mask[..., None]
    t = torch.full((6,), 0.7)
    out = m.model(x, t, mask=tokens.mask)
    rot = random_rotations(6, torch.Generator().manual_seed(3))
    rot[0] = -rot[0]  # a reflection too
    moved = x.clone()
    moved[..., :3] = (torch.einsum("bij,baj->bai", rot, x[..., :3]) + torch.randn(6, 1, 3)) * tokens.mask[..., None]
    out2 = m.model(moved, t, mask=tokens.mask)
    torch.testing.assert_close(out2[..., :3], torch.einsum("bij,baj->bai", rot, out[..., :3]), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out2[..., 3:], out[..., 3:], atol=1e-4, rtol=1e-4)
    assert out[..., :3].abs().sum() > 0 and out[..., 3:].abs().sum() > 0
    # padding: extra padded atoms change nothing, and get zero output
    padded = torch.cat([x, 5 * torch.randn(6, 3, x.shape[-1])], 1)
    pmask = torch.cat([tokens.mask, torch.zeros(6, 3, dtype=torch.bool)], 1)
    out3 = m.model(padded, t, mask=pmask)
    torch.testing.assert_close(out3[:, : x.shape[1]], out, atol=1e-4, rtol=1e-4)
    assert (out3[:, x.shape[1] :] == 0).all()


def test_equivariant_module_learns_and_samples(atom_batch, tmp_path):
    torch.manual_seed(0)
    tok = AtomTokenizer()
    m = Molecule3DModule(
        tok,
        DiTConfig(dim=32, depth=2, heads=2),  # in_dim (type + charge channels) derived
        network="equivariant",
        flow={"prediction": "data"},
        type_loss="ce",
        pair={"rbf": 8, "pair_dim": 8, "coord_hidden": 16},
    )
    m.size_hist.zero_()
    m.size_hist[[9, 12]] = 1.0
    check_module_fits_batch(m, atom_batch, steps=30, lr=3e-3, drop=0.3)
    mols = m.sample_molecules(4, seed=0, steps=3)
    for x in mols:
        assert abs(x.coords.mean(0)).max() < 1e-4
        assert set(x.numbers.tolist()) <= set(m.tokenizer.numbers.tolist())
    check_pretrained_round_trip(
        m,
        lambda mod: mod.model(m.tokenizer.encode(atom_batch).x, torch.full((16,), 0.5), mask=atom_batch["numbers"] > 0),
        tmp_path / "peq",
    )


def _distance_module(**kw):
    tok = AtomTokenizer()
    return Molecule3DModule(
        tok,
        DiTConfig(in_dim=tok.token_dim, dim=32, depth=2, heads=2),
        network="distance",
        geometric_features=8,
        pair={"rbf": 8, "pair_dim": 8, "coord_hidden": 16},
        **kw,
    )


def test_distance_network_shapes_permutation_and_padding(atom_batch):
    """``network="distance"``: a fresh model outputs zeros; outputs permute with the atoms; padded atoms neither
    change real ones nor get an output; the self-conditioning input and the distance bias change the output."""
    from ditkit_core.testing import perturb_weights

    torch.manual_seed(0)
    m = _distance_module(self_condition=True)
    tokens = m.tokenize({k: v[:6] for k, v in atom_batch.items()})
    x, mask, t = tokens.x, tokens.mask, torch.full((6,), 0.6)
    assert (m.model(x, t, mask=mask) == 0).all()  # adaLN-Zero and zero-initialised coordinate head
    perturb_weights(m.model, 0.2)
    x_sc = x + 0.1 * torch.randn_like(x) * mask[..., None]
    out = m.model(x, t, mask=mask, x_cond=x_sc)
    assert out.shape == x.shape and out.abs().sum() > 0
    assert not torch.allclose(out, m.model(x, t, mask=mask))  # the estimate is used
    perm = torch.randperm(x.shape[1])
    out_p = m.model(x[:, perm], t, mask=mask[:, perm], x_cond=x_sc[:, perm])
    torch.testing.assert_close(out_p, out[:, perm], atol=1e-4, rtol=1e-4)
    padded = torch.cat([x, torch.zeros(6, 3, x.shape[-1])], 1)  # the module zeroes padded atoms (GeometricEmbed)
    pmask = torch.cat([mask, torch.zeros(6, 3, dtype=torch.bool)], 1)
    out3 = m.model(padded, t, mask=pmask, x_cond=torch.cat([x_sc, torch.randn(6, 3, x.shape[-1])], 1))
    torch.testing.assert_close(out3[:, : x.shape[1]], out, atol=1e-4, rtol=1e-4)
    assert (out3[:, x.shape[1] :] == 0).all()
    # the attention bias reads distances: rescaling the geometry (same tokens otherwise) changes the bias term
    e = m.model.pair_embed(pairwise(x[..., :3])[1])
    e2 = m.model.pair_embed(pairwise(1.2 * x[..., :3])[1])
    pair_proj = m.model.dit.blocks[0].attn.pair_proj
    assert not torch.allclose(pair_proj(e), pair_proj(e2))
    with pytest.raises(ValueError, match="self-conditioning"):
        _distance_module().model(x, t, mask=mask, x_cond=x_sc)
    with pytest.raises(ValueError, match="self_condition"):
        Molecule3DModule(AtomTokenizer(), DiTConfig(in_dim=11, dim=32, depth=1, heads=2), self_condition=True)


@pytest.mark.parametrize("self_condition", [False, True])
def test_distance_module_learns_and_samples(atom_batch, tmp_path, self_condition):
    torch.manual_seed(0)
    m = _distance_module(self_condition=self_condition)
    m.size_hist.zero_()
    m.size_hist[[9, 12]] = 1.0
    check_module_fits_batch(m, atom_batch, steps=30, lr=3e-3, drop=0.3)
    mols = m.sample_molecules(4, seed=0, steps=3, method="heun")
    assert m._sc_state is None and not m._sampling  # sampling state is cleared
    for x in mols:
        assert abs(x.coords.mean(0)).max() < 1e-4
        assert set(x.numbers.tolist()) <= set(m.tokenizer.numbers.tolist())
    check_pretrained_round_trip(
        m,
        lambda mod: mod.model(m.tokenizer.encode(atom_batch).x, torch.full((16,), 0.5), mask=atom_batch["numbers"] > 0),
        tmp_path / "pdist",
    )
