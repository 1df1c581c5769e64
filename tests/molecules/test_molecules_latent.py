"""The latent model on the core seams: legacy arguments and checkpoints, loading through ``load_run``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ditkit_core.lightning import load_run
from ditkit_core.nn import DiTConfig
from ditkit_molecules.autoencoder import LatentTokenizer
from ditkit_molecules.module_latent import LatentMoleculeModule
from ditkit_molecules.tokenizer import selfies_alphabet

SYMBOLS = selfies_alphabet()


def _small_module(**kw) -> LatentMoleculeModule:
    tok = LatentTokenizer(max_len=24, latent_tokens=2, latent_dim=8, hidden=32, embed=16, symbols=SYMBOLS)
    return LatentMoleculeModule(tok, DiTConfig(in_dim=8, dim=32, depth=1, heads=2, cond_dim=3), **kw)


def test_legacy_flat_checkpoint_loads_into_groups(tmp_path):
    """A checkpoint of the flat-argument version (``lr``, ``cond_dropout``, ``sample_steps`` ...; no format tag; a
    tokenizer without ``symbols``, the fixed vocabulary then) loads through ``load_run`` with the values in the option
    groups and the weights unchanged."""
    torch.manual_seed(0)
    m = _small_module(ae_steps=7)
    hp = {k: v for k, v in m.hparams.items() if k not in ("flow", "optim", "sampler")}
    hp["tokenizer"] = {**hp["tokenizer"], "init_args": dict(hp["tokenizer"]["init_args"])}
    del hp["tokenizer"]["init_args"]["symbols"]
    hp.update(lr=1e-3, warmup_steps=5, cond_dropout=0.2, sample_steps=9, cfg_scale=1.5)
    hp["_class_path"] = "ditkit_molecules.module_latent.LatentMoleculeModule"
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": hp}, path)
    back = load_run(None, path)
    assert isinstance(back, LatentMoleculeModule) and back.ae_steps == 7
    assert (back.optim.lr, back.optim.warmup_steps) == (1e-3, 5)
    assert (back.flow.cond_dropout, back.sampler.steps, back.sampler.cfg_scale) == (0.2, 9, 1.5)
    for k, v in m.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0)


def test_condition_standardises_properties_and_drops_them_for_unconditional_models():
    m = _small_module()
    m.tokenizer.prop_mean.copy_(torch.tensor([0.5, 2.0, 3.0]))
    m.tokenizer.prop_std.copy_(torch.tensor([0.25, 1.0, 2.0]))
    tokens = m.tokenize({"target": torch.tensor([[1, 5, 6, 2, 0]] * 2), "props": torch.tensor([[1.0, 3.0, 7.0]] * 2)})
    cond = m.condition(tokens, None).cond
    torch.testing.assert_close(cond, torch.tensor([[2.0, 1.0, 2.0]] * 2))
    tok = LatentTokenizer(max_len=24, latent_tokens=2, latent_dim=8, hidden=32, embed=16, symbols=SYMBOLS)
    uncond = LatentMoleculeModule(tok, DiTConfig(in_dim=8, dim=32, depth=1, heads=2))
    assert uncond.condition(tokens, None).cond is None


def test_stated_width_must_be_real():
    from ditkit_core.nn import ConfigError

    tok = LatentTokenizer(max_len=24, latent_tokens=2, latent_dim=8, hidden=32, embed=16, symbols=SYMBOLS)
    with pytest.raises(ConfigError, match="in_dim"):
        LatentMoleculeModule(tok, DiTConfig(in_dim=16, dim=32, depth=1, heads=2))


# ------------------------------------------------------------------ SELFIES alphabet from the data
def test_alphabet_is_built_from_the_training_data_and_every_drop_has_a_reason():
    """Aromatic N-H (indole: ``[NH1]``, outside SELFIES' robust alphabet) is kept; a held-out molecule with a symbol
    the training molecules never use, one over ``max_len`` and a hypervalent one are skipped, each with its reason."""
    from ditkit_molecules.data import EnumeratedSmilesDataset

    train = EnumeratedSmilesDataset(["c1ccc2[nH]ccc2c1", "CCO", "CC(=O)O"], None, n_enum=2, seed=0, max_len=20)
    assert "[NH1]" in train.vocab.symbols and "[NH1]" not in SYMBOLS
    assert len(train) == 3 and train.skipped == 0
    held = EnumeratedSmilesDataset(["CCCl", "CCCCCCCCCCCCCCCCCCCCCCCC", "FI(F)F", "CC(C)O"], train.vocab, n_enum=2)
    assert held.smiles == ["CC(C)O"]
    assert held.report.counts() == {"unknown_symbol": 1, "too_long": 1, "selfies_constraint": 1}
    assert [s.line for s in held.report.skips] == [1, 2, 3]  # the position of each molecule in the list
    ids = held.targets[0]
    assert held.vocab.decode_ids(ids.tolist()) == "CC(C)O"


def test_selfies_symbols_round_trip_and_name_the_reason():
    from ditkit_molecules.tokenizer import selfies_symbols

    assert selfies_symbols("c1ccncc1")[:2] == ["[C]", "[=C]"]  # kekulised
    with pytest.raises(ValueError, match="^selfies_constraint"):
        selfies_symbols("FI(F)F")


def test_tokenizer_symbols_are_fixed_once_and_kept_by_the_module(tmp_path):
    tok = LatentTokenizer(max_len=24, latent_tokens=2, latent_dim=8, hidden=32, embed=16)
    with pytest.raises(RuntimeError, match="no SELFIES symbols"):
        tok.ae_loss({})
    tok.set_symbols(["[C]", "[O]"])
    assert tok.ae.embed.num_embeddings == 5
    tok.set_symbols(["[C]", "[O]"])  # the same set again is fine
    with pytest.raises(ValueError, match=r"new \['\[N\]'\]"):
        tok.set_symbols(["[C]", "[N]", "[O]"])


# ------------------------------------------------------------------ MOSES-style metrics and sanity rates
def test_sanity_flags_on_known_molecules():
    from ditkit_molecules.latent_metrics import mols_of, sanity, sanity_rates

    flags = {s: sanity(m) for s, m in zip(SANITY_CASES, mols_of(list(SANITY_CASES)))}
    for smiles, expected in SANITY_CASES.items():
        assert {k for k, v in flags[smiles].items() if v} == expected, smiles
    rates = sanity_rates(mols_of(["C1CCCCCCCCC1", "c1ccccc1", "CCO", "C=CC=CC"]))
    assert rates == {"macrocycle": 0.25, "acyclic_polyene": 0.25, "enol": 0.0, "no_aromatic": 0.75}


SANITY_CASES = {
    "C1CCCCCCCC1": {"macrocycle", "no_aromatic"},  # a 9-ring
    "C1CCCCCCC1": {"no_aromatic"},  # an 8-ring is not a macrocycle
    "C=CC=CC": {"acyclic_polyene", "no_aromatic"},
    "C1=CC=CCC1": {"no_aromatic"},  # a ring diene is not an open chain
    "C=Cc1ccccc1": set(),  # styrene: one acyclic C=C only
    "OC(C)=CC": {"enol", "no_aromatic"},
    "Oc1ccccc1": set(),  # phenol is not an enol
    "CC(=O)O": {"no_aromatic"},
}


def test_distribution_metrics_against_hand_values():
    from collections import Counter

    from ditkit_molecules.latent_metrics import Reference, cosine, mols_of, scaffolds, wasserstein

    assert cosine(Counter(a=1, b=1), Counter(a=1)) == pytest.approx(2**-0.5)
    assert wasserstein(np.array([0.0, 1.0]), np.array([1.0, 2.0])) == pytest.approx(1.0)
    # naphthalene's scaffold has 2 rings (counted), benzene's 1 (not counted under MOSES' min_rings=2)
    assert scaffolds(mols_of(["Cc1ccc2ccccc2c1", "Cc1ccccc1"])) == Counter({"c1ccc2ccccc2c1": 1})
    ref = Reference(["CCO", "c1ccccc1C(=O)O", "CCN"])
    same = ref.compare(["CCO", "c1ccccc1C(=O)O", "CCN"])
    assert same["snn"] == pytest.approx(1.0) and same["frag"] == pytest.approx(1.0)
    assert all(same[f"w1_{k}"] == pytest.approx(0.0, abs=1e-9) for k in ("mw", "logp", "qed", "sa", "rings"))
    other = ref.compare(["CCCCCCCC"])
    assert other["snn"] < 0.5 and other["w1_rings"] == pytest.approx(1 / 3)
    assert other["w1_mw"] == pytest.approx(np.mean(np.abs(114.232 - np.array([46.069, 122.123, 45.085]))), abs=0.01)
