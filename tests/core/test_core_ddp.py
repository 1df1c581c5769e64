"""Data-parallel training on CPU (gloo, 2 processes): ranks draw different noise, and the all-reduced gradients
equal one process's gradients of the mean loss over the same per-rank batches and noise."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent


def test_two_process_ddp_draws_per_rank_noise_and_averages_gradients(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE)}
    r = subprocess.run(
        [sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    assert not torch.equal(ranks[0]["noise"], ranks[1]["noise"]), "both ranks drew the same noise"
    assert not torch.equal(ranks[0]["batch"], ranks[1]["batch"]), "both ranks got the same samples"
    for name in ranks[0]["grads"]:  # DDP all-reduced: identical on both ranks
        torch.testing.assert_close(ranks[0]["grads"][name], ranks[1]["grads"][name])

    sys.path.insert(0, str(HERE))
    from ddp_worker import make_module

    from ditkit_core.tokenizers import TokenBatch

    module = make_module()
    module.train()
    losses = []
    for rk in ranks:  # one process, the same per-rank batches with each rank's generator
        rank = rk["rank"]
        g = torch.Generator().manual_seed(module.seed * 1_000_003 + 0 * 7919 + rank * 104_729_731)
        assert torch.equal(torch.randn(4, generator=g), rk["noise"])
        g = torch.Generator().manual_seed(module.seed * 1_000_003 + rank * 104_729_731)
        losses.append(module.flow_loss(TokenBatch(x=rk["batch"]), g)["loss"])
    (sum(losses) / 2).backward()
    for name, p in module.named_parameters():
        if name in ranks[0]["grads"]:
            torch.testing.assert_close(p.grad, ranks[0]["grads"][name], atol=1e-6, rtol=1e-5)


def test_fsdp_preset_wraps_every_dit_block():
    import yaml

    from ditkit_core.lightning import DiTFSDPStrategy
    from ditkit_core.nn import DiTBlock

    cfg = yaml.safe_load((HERE.parents[1] / "shared/trainer/fsdp.yaml").read_text())["trainer"]["strategy"]
    assert cfg["class_path"] == "ditkit_core.lightning.DiTFSDPStrategy"
    s = DiTFSDPStrategy(**cfg["init_args"], checkpoint_blocks=True)
    assert s.kwargs["auto_wrap_policy"]._module_classes == {DiTBlock} and s._activation_checkpointing_kwargs


@pytest.mark.parametrize("declared", [False, True])
def test_ddp_preset_finds_unused_parameters_only_for_modules_that_declare_some(declared, monkeypatch):
    import lightning as L
    from lightning.pytorch.strategies import DDPStrategy

    from ditkit_core.lightning import DiTDDPStrategy, FlowMatchingModule

    assert FlowMatchingModule.UNUSED_PARAMETERS is False  # static bucketing by default
    module = type("Phased", (L.LightningModule,), {"UNUSED_PARAMETERS": declared})()
    wrapped = []
    monkeypatch.setattr(DDPStrategy, "_setup_model", lambda self, m: wrapped.append(dict(self._ddp_kwargs)) or m)
    monkeypatch.setattr(DDPStrategy, "_register_ddp_hooks", lambda self: None)
    strategy = DiTDDPStrategy()
    strategy.connect(module)
    strategy.configure_ddp()
    assert wrapped[0]["find_unused_parameters"] is declared
    explicit = DiTDDPStrategy(find_unused_parameters=False)
    explicit.connect(module)
    explicit.configure_ddp()
    assert wrapped[1]["find_unused_parameters"] is False  # an explicit argument wins
