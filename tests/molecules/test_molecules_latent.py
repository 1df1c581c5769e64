"""The latent model on the core seams: legacy arguments and checkpoints, loading through ``load_run``."""

from __future__ import annotations

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
    """A checkpoint of the flat-argument version (``lr``, ``cond_dropout``, ``sample_steps`` ...; no format tag) loads
    through ``load_run`` with the values in the option groups and the weights unchanged."""
    torch.manual_seed(0)
    m = _small_module(ae_steps=7)
    hp = {k: v for k, v in m.hparams.items() if k not in ("flow", "optim", "sampler")}
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
