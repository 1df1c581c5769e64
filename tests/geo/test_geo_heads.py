"""Priors carry only given information; the EMA follows its formula; the change-map head learns."""

import torch

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
    assert SITSTokenizer("synthetic", patch=4, priors=[]).input_dim == 3 * d + tok.feature_dim


def test_given_median_ignores_outliers_and_hidden_dates():
    obs = torch.tensor([[1.0, 2.0, 100.0, 3.0, -50.0]])[:, :, None, None, None]
    given = torch.tensor([[1, 1, 1, 1, 0]]).bool()[:, :, None, None, None]
    assert float(given_median(obs, given)) == 2.0  # lower middle of {1, 2, 3, 100}
    assert float(given_median(obs, torch.zeros_like(given))) == 0.0


def test_ema_follows_its_formula_and_serves_evaluation():
    module = SITSModule(
        SITSTokenizer("synthetic", patch=8), DiTConfig(in_dim=1, dim=24, depth=1, heads=2, rope_axes=3), ema_decay=0.9
    )
    w0 = module.model.final.linear.weight.detach().clone()
    with torch.no_grad():
        module.model.final.linear.weight.add_(1.0)
    module.on_train_batch_end(None, None, 0)  # first update: decay min(0.9, 2 / 11)
    torch.testing.assert_close(module.model_ema.final.linear.weight, w0 + (1 - 2 / 11))
    assert module.train().net is module.model and module.eval().net is module.model_ema
    assert not any(p.requires_grad for p in module.model_ema.parameters())


def test_change_head_learns_the_change_maps():
    torch.manual_seed(0)
    b = data(16, seed=3, t=6).batch(range(16))
    truth = b["change"].bool()
    rate = truth.float().mean()
    entropy = float(-(rate * rate.log() + (1 - rate) * (1 - rate).log()))  # BCE of the best constant
    module = SITSModule(
        SITSTokenizer("synthetic", patch=4),
        DiTConfig(in_dim=1, dim=48, depth=1, heads=2, rope_axes=3),
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
