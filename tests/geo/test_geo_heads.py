"""Priors carry only given information; conditions enter as condition channels; old checkpoints (own EMA copy,
joint input projection) load with the averaged weights; the change-map head learns."""

import torch
import yaml

from ditkit_core.lightning import load_run
from ditkit_core.nn import DiTConfig
from ditkit_geo.data import SITSDataset
from ditkit_geo.metrics import f1_score, given_median, linear_interpolation, seasonal_naive
from ditkit_geo.module import SITSModule
from ditkit_geo.series import Normalizer
from ditkit_geo.synthetic import make_synthetic
from ditkit_geo.tokenizer import SITSTokenizer


def data(n=8, seed=0, size=8, t=8):
    d = make_synthetic(n, size=size, t=t, seed=seed)
    return SITSDataset(Normalizer.fit(d).apply(d))


def test_priors_are_the_baselines_of_the_given_values_only():
    b = data(4).batch(range(4))
    tok = SITSTokenizer("synthetic", patch=4)
    obs, days = b["observed"], b["days"]
    given = torch.isfinite(obs) & (torch.rand(obs.shape, generator=torch.Generator().manual_seed(0)) > 0.3)
    tb = tok.encode({**b, "given": given})
    d = tok.token_dim
    assert tb.meta["priors"].shape == tb.x.shape[:2] + (3 * d,)
    lin = linear_interpolation(obs, given, days)
    expect = [lin, seasonal_naive(obs, given, days, fallback=lin), given_median(obs, given).expand_as(obs)]
    for k, cube in enumerate(expect):
        torch.testing.assert_close(tok._to_cube(tb.meta["priors"][..., k * d : (k + 1) * d], 8, 8, 8), cube)
    # what is not given cannot leak into the priors
    scrambled = torch.where(given, obs, torch.randn_like(obs) * 100)
    tb2 = tok.encode({**b, "observed": scrambled, "given": given})
    torch.testing.assert_close(tb2.meta["priors"], tb.meta["priors"])
    assert SITSTokenizer("synthetic", patch=4, priors=[]).cond_channels == 2 * d + tok.feature_dim


def test_given_values_mask_priors_and_features_are_the_condition_channels():
    b = data(2).batch(range(2))
    module = SITSModule(SITSTokenizer("synthetic", patch=4), DiTConfig(dim=24, depth=1, heads=2, rope_axes=3))
    given = torch.isfinite(b["observed"]) & (torch.arange(8) % 3 > 0)[None, :, None, None, None]
    tb = module.tokenize({**b, "given": given})
    m = tb.meta
    expect = torch.cat([m["cond"], m["given"].float(), m["priors"], m["features"]], -1)
    torch.testing.assert_close(tb.x_cond, expect, atol=0, rtol=0)
    assert tb.x_cond.shape[-1] == module.model.config.cond_channels
    # the noisy tokens are the DiT input; the given values reach it only through x_cond
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
        t = torch.full((2,), 0.5)
        out = module.velocity(tb, tb.x, t)
        assert not torch.allclose(out, module.velocity(tb.replace(x_cond=torch.zeros_like(tb.x_cond)), tb.x, t))
        # condition dropout (off in geo's configs) never hides the given values: the sampler clamps them
        drop = torch.ones(2, dtype=torch.bool)
        torch.testing.assert_close(module.velocity(tb, tb.x, t, drop), out, atol=0, rtol=0)


def _old_layout(module: SITSModule, raw_offset: float) -> dict:
    """The state dict an earlier version wrote: a joint ``[x_t, conditions]`` input projection, raw weights under
    ``model.*`` and its own EMA copy (here: ``module``'s weights) under ``model_ema.*``."""
    new = {k: v.clone() for k, v in module.state_dict().items()}
    dit = {k[len("model.") :]: v for k, v in new.items() if k.startswith("model.")}
    dit["x_embed.weight"] = torch.cat([dit["x_embed.weight"], dit.pop("cond_proj.weight")], 1)
    old = {f"model_ema.{k}": v for k, v in dit.items()}
    old.update({f"model.{k}": v + raw_offset for k, v in dit.items()})
    old.update({k: v for k, v in new.items() if not k.startswith("model.")})
    old["ema_updates"] = torch.tensor(7)
    return old


def test_old_checkpoint_loads_the_averaged_weights_with_the_input_projection_split(tmp_path):
    torch.manual_seed(0)
    tok = SITSTokenizer("synthetic", patch=8)
    module = SITSModule(tok, DiTConfig(dim=24, depth=1, heads=2, rope_axes=3), change_head=True)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hparams = {  # as LightningCLI stored them: flat base arguments, a placeholder in_dim, the module's own EMA
        "_class_path": "ditkit_geo.module.SITSModule",
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
        "model": {"in_dim": 1, "dim": 24, "depth": 1, "heads": 2, "rope_axes": 3, "out_dim": None},
        "tokenizer": {
            "class_path": "ditkit_geo.tokenizer.SITSTokenizer",
            "init_args": {"groups": "synthetic", "patch": 8},
        },
        "ema_decay": 0.99,
        "change_head": True,
        "time_sampler": None,
        "lr": 1e-3,
        "sample_steps": 2,
    }
    torch.save({"state_dict": _old_layout(module, raw_offset=1.0), "hyper_parameters": hparams}, tmp_path / "old.ckpt")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"model": {"class_path": "ditkit_geo.module.SITSModule"}}))
    loaded = load_run(config, tmp_path / "old.ckpt")
    assert loaded.sampler.steps == 2 and loaded.optim.lr == 1e-3 and loaded.flow.time_sampler is not None
    for k, v in module.state_dict().items():  # the averaged weights, split exactly
        torch.testing.assert_close(loaded.state_dict()[k], v, atol=0, rtol=0, msg=k)
    b = data(2).batch(range(2))
    tb = module.tokenize({**b, "given": torch.isfinite(b["observed"])})
    with torch.no_grad():
        t = torch.full((2,), 0.3)
        torch.testing.assert_close(loaded.velocity(tb, tb.x, t), module.eval().velocity(tb, tb.x, t), atol=0, rtol=0)


def test_given_median_ignores_outliers_and_hidden_dates():
    obs = torch.tensor([[1.0, 2.0, 100.0, 3.0, -50.0]])[:, :, None, None, None]
    given = torch.tensor([[1, 1, 1, 1, 0]]).bool()[:, :, None, None, None]
    assert float(given_median(obs, given)) == 2.0  # lower middle of {1, 2, 3, 100}
    assert float(given_median(obs, torch.zeros_like(given))) == 0.0


def test_change_head_learns_the_change_maps():
    torch.manual_seed(0)
    b = data(16, seed=3, t=6).batch(range(16))
    truth = b["change"].bool()
    rate = truth.float().mean()
    entropy = float(-(rate * rate.log() + (1 - rate) * (1 - rate).log()))  # BCE of the best constant
    module = SITSModule(
        SITSTokenizer("synthetic", patch=4),
        DiTConfig(dim=48, depth=1, heads=2, rope_axes=3),
        change_head=True,
    )
    tokens = module.tokenizer.encode({**b, "given": torch.isfinite(b["observed"])})
    opt = torch.optim.Adam(module.parameters(), lr=3e-3)
    module.train()
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(module.change_logits(tokens), b["change"])
        loss.backward()
        opt.step()
    assert float(loss) < 0.5 * entropy, (float(loss), entropy)
    prob = module.change_map(b)
    assert prob.shape == truth.shape and ((prob >= 0) & (prob <= 1)).all()
    assert f1_score(prob > 0.5, truth) > 0.6
