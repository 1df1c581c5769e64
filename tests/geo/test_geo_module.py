"""The model: learns a batch, keeps given values, ignores no-data, round-trips checkpoints, runs the debug config."""

from pathlib import Path

import torch

from ditkit_core.nn import DiTConfig
from ditkit_core.testing import check_module_fits_batch, check_pretrained_round_trip, run_config
from ditkit_geo.data import SITSDataset
from ditkit_geo.module import SITSModule
from ditkit_geo.series import Normalizer
from ditkit_geo.synthetic import make_synthetic
from ditkit_geo.tokenizer import SITSTokenizer

ROOT = Path(__file__).resolve().parents[2]


def small(seed=0):
    d = make_synthetic(8, size=16, t=6, seed=seed)
    ds = SITSDataset(Normalizer.fit(d).apply(d))
    module = SITSModule(
        SITSTokenizer("synthetic", patch=8), DiTConfig(in_dim=1, dim=48, depth=2, heads=2, rope_axes=3), sample_steps=4
    )
    return module, ds


def test_input_width_and_fits_a_batch():
    module, ds = small()
    tok = module.tokenizer
    assert module.model.config.in_dim == (3 + len(tok.priors)) * tok.token_dim + tok.feature_dim
    assert module.model.config.output_dim == tok.token_dim
    check_module_fits_batch(module, ds.batch(range(8)), steps=25, lr=3e-3, drop=0.2)


def test_nodata_is_zero_filled_and_never_a_target():
    module, ds = small()
    b = ds.batch(range(4))
    values = b["values"].clone()
    values[:, 1, :3] = float("nan")  # no-data at one date, three bands
    tb = module.tokenize({**b, "values": values})
    invalid = ~tb.meta["valid"]
    assert invalid.any() and (tb.x[invalid] == 0).all() and tb.known_mask[invalid].all()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        base = module.flow_loss(tb, g())["loss"]
        velocity = module.velocity
        # whatever the model predicts at no-data entries, the loss does not change
        module.velocity = lambda *a, **k: velocity(*a, **k) + 1e3 * invalid.float()
        assert torch.equal(module.flow_loss(tb, g())["loss"], base)
        module.velocity = velocity


def test_complete_keeps_given_values_and_handles_all_cloud_series():
    module, ds = small()
    b = ds.batch(range(3))
    ok = torch.isfinite(b["observed"])
    ok[1, :, :10] = False  # an all-cloud series: only SAR is given
    draws = module.complete(b, ok, samples=2, steps=3)
    assert draws.shape == (2,) + tuple(b["values"].shape)
    assert torch.isfinite(draws).all()
    torch.testing.assert_close(draws[0][ok], b["observed"][ok], atol=1e-5, rtol=0)


def test_pretrained_round_trip(tmp_path):
    module, ds = small()
    b = ds.batch(range(2))
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.01 * torch.randn_like(p))

    def run(m):
        tb = m.tokenize({**b, "given": torch.isfinite(b["observed"])})
        return m.velocity(tb, tb.x, torch.full((2,), 0.5))

    loaded = check_pretrained_round_trip(module, run, tmp_path / "pre")
    assert loaded.tokenizer.group_names == module.tokenizer.group_names


def test_debug_config_runs(tmp_path):
    cli = run_config(ROOT / "apps" / "sits" / "configs" / "debug.yaml", "--trainer.default_root_dir", str(tmp_path))
    assert cli.trainer.global_step == 3
