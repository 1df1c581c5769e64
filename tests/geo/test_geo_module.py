"""The model: learns a batch, keeps given values, ignores no-data, round-trips checkpoints, runs the debug config."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ditkit_core.lightning import SamplerConfig, load_run
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
        SITSTokenizer("synthetic", patch=8),
        DiTConfig(dim=48, depth=2, heads=2, rope_axes=3),
        sampler=SamplerConfig(steps=4),
    )
    return module, ds


def test_widths_and_fits_a_batch():
    module, ds = small()
    tok = module.tokenizer
    cfg = module.model.config
    assert (cfg.in_dim, cfg.output_dim) == (tok.token_dim, tok.token_dim)
    assert cfg.cond_channels == (2 + len(tok.priors)) * tok.token_dim + tok.feature_dim == tok.cond_channels
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
        # whatever the model predicts at no-data entries, the loss does not change
        hook = module.model.register_forward_hook(lambda mod, inp, out: out + 1e3 * invalid.float())
        try:
            assert torch.equal(module.flow_loss(tb, g())["loss"], base)
            hook.remove()
            hook = module.model.register_forward_hook(lambda mod, inp, out: out + 1e3 * (~invalid).float())
            assert not torch.equal(module.flow_loss(tb, g())["loss"], base)  # the same offset elsewhere counts
        finally:
            hook.remove()


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


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    """The debug app config trained once under a temporary folder, checkpoint kept."""
    root = tmp_path_factory.mktemp("sits_debug")
    config = ROOT / "apps" / "sits" / "configs" / "debug.yaml"
    moved = ("--trainer.default_root_dir", str(root), "--trainer.logger", "false")  # the YAML's loggers: its folder
    cli = run_config(config, *moved, "--trainer.enable_checkpointing", "true")
    (ckpt,) = (root / "checkpoints").glob("*.ckpt")
    return SimpleNamespace(config=config, root=root, ckpt=ckpt, cli=cli)


def test_debug_config_trains_with_the_ema_callback_and_evaluates_from_its_checkpoint(debug_run, capsys):
    from ditkit_geo.cli import main

    config, ckpt = debug_run.config, debug_run.ckpt
    assert debug_run.cli.trainer.global_step == 3
    ck = torch.load(ckpt, weights_only=True)
    # the checkpoint holds the EMA average (raw weights aside for resuming), and inference loads the average
    name = "model.final.linear.weight"
    assert not torch.equal(ck["state_dict"][name], ck["ema"]["raw"][name])
    loaded = load_run(config, ckpt)
    torch.testing.assert_close(loaded.state_dict()[name], ck["state_dict"][name], atol=0, rtol=0)
    capsys.readouterr()
    main(["eval", "--config", str(config), "--ckpt", str(ckpt), "--samples", "2"])
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["task"] for r in recs] == ["reconstruction", "forecast", "cloud_removal", "change"]
    assert all(r["samples"] == 2 and r["sample_steps"] == 2 for r in recs)


def test_ditkit_sits_sample_and_eval_run_on_the_debug_run(debug_run, tmp_path):
    from ditkit_geo.cli import APP

    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--out", str(tmp_path / "o")]
    assert APP.run(["sample", *common]) == 0
    assert len(list((tmp_path / "o").glob("*.png"))) >= 2
    assert APP.run(["eval", *common, "--steps", "1", "--samples", "1"]) == 0
    recs = json.loads((tmp_path / "o" / "eval.json").read_text())
    assert [r["task"] for r in recs] == ["reconstruction", "forecast", "cloud_removal", "change"]
    assert all(r["samples"] == 1 and r["sample_steps"] == 1 for r in recs)
