"""Self-conditioning: the DiT's ``x_self`` input (maths of the projection, init, dropout) and the module's use of it in
training (a detached estimate for a fraction of samples) and sampling (each step's estimate fed to the next). That a
self-conditioned toy model learns is in ``test_core_lightning``."""

import pytest
import torch

from ditkit_core.examples.toy2d import Toy2DModule
from ditkit_core.flow import TimeSampler
from ditkit_core.lightning import FlowConfig, OptimConfig, SamplerConfig
from ditkit_core.nn import ConfigError, DiT, DiTConfig
from ditkit_core.testing import check_pretrained_round_trip, perturb_weights
from ditkit_core.tokenizers import IdentityTokenizer, TokenBatch

BASE = dict(in_dim=3, dim=32, depth=2, heads=2, cond_dim=2)


def test_dit_self_conditioning_input_is_a_zero_initialised_projection():
    torch.manual_seed(0)
    plain = DiT(DiTConfig(**BASE))
    torch.manual_seed(0)
    model = DiT(DiTConfig(**BASE, self_cond=True))
    # the extra projection draws no random numbers: every other weight is the plain model's
    for name, p in plain.state_dict().items():
        assert torch.equal(p, model.state_dict()[name]), name
    assert torch.count_nonzero(model.self_proj.weight) == 0
    x, est, t, cond = torch.randn(2, 5, 3), torch.randn(2, 5, 3), torch.rand(2), torch.randn(2, 2)
    perturb_weights(plain, scale=0.05, seed=3)
    state = plain.state_dict()
    model.load_state_dict({**state, "self_proj.weight": model.self_proj.weight}, strict=True)
    # before training the estimate changes nothing
    torch.testing.assert_close(model(x, t, cond=cond, x_self=est), plain(x, t, cond=cond), rtol=0, atol=0)
    w = torch.randn_like(model.self_proj.weight)
    with torch.no_grad():
        model.self_proj.weight.copy_(w)
    h, _ = model.embed(x, t, cond=cond, x_self=est)
    h0, _ = model.embed(x, t, cond=cond)
    torch.testing.assert_close(h - h0, est @ w.T, atol=1e-5, rtol=1e-5)  # W_x x + W_s x_self
    # condition dropout does not hide the estimate
    drop = torch.tensor([True, True])
    out = model(x, t, cond=cond, drop_cond=drop, x_self=est)
    assert not torch.allclose(out, model(x, t, cond=cond, drop_cond=drop, x_self=torch.zeros_like(est)))
    with pytest.raises(ValueError, match="x_self needs self_cond=True"):
        plain(x, t, cond=cond, x_self=est)
    with pytest.raises(ValueError, match=r"\(2, 5, 3\)"):
        model(x, t, cond=cond, x_self=est[:, :4])


def toy(p: float = 0.5, **flow) -> Toy2DModule:
    return Toy2DModule(
        tokenizer=IdentityTokenizer(2),
        model=DiTConfig(in_dim=2, dim=64, depth=2, heads=4),
        flow=FlowConfig(time_sampler=TimeSampler("uniform"), self_condition=p, **flow),
        optim=OptimConfig(lr=2e-3, warmup_steps=10),
        sampler=SamplerConfig(steps=16, method="heun"),
    )


def record(module) -> list[tuple[dict, torch.Tensor, bool]]:
    """Every network call's keyword arguments, output and whether autograd was on."""
    calls = []

    def hook(_, args, kwargs, out):
        calls.append(({"x": args[0], "t": args[1], **kwargs}, out.detach(), torch.is_grad_enabled()))

    module.model.register_forward_hook(hook, with_kwargs=True)
    return calls


def test_config_switches_the_network_input_and_is_validated(tmp_path):
    assert toy().config.self_cond and not toy(0.0).config.self_cond
    with pytest.raises(ConfigError, match="self_condition=1.0"):
        FlowConfig(self_condition=1.0)
    module = perturb_weights(toy(), scale=0.05, seed=0)
    with torch.no_grad():
        module.model.self_proj.weight.normal_(std=0.1)
    loaded = check_pretrained_round_trip(
        module,
        lambda m: m.generate(TokenBatch(x=torch.zeros(2, 4, 2)), generator=torch.Generator().manual_seed(0)).x,
        tmp_path,
    )
    assert loaded.config.self_cond and loaded.flow.self_condition == 0.5


def test_training_feeds_a_detached_estimate_to_a_fraction_of_samples():
    module = perturb_weights(toy(0.5, prediction="velocity"), scale=0.05, seed=0)
    calls = record(module)
    x_1 = torch.randn(64, 4, 2)
    module.flow_loss(TokenBatch(x=x_1), torch.Generator().manual_seed(0))
    (first, est, grad0), (second, _, grad1) = calls
    assert not grad0 and grad1  # the estimate carries no gradient
    assert torch.count_nonzero(first["x_self"]) == 0
    x1_hat = module.path.velocity_to_x1(first["x"], est, first["t"])
    used = second["x_self"].flatten(1).abs().sum(1) > 0
    assert 16 < int(used.sum()) < 48  # about half the samples
    torch.testing.assert_close(second["x_self"][used], x1_hat[used])
    assert torch.count_nonzero(second["x_self"][~used]) == 0
    calls.clear()
    module.flow.self_condition = 0.0  # off: one call, no estimate
    module.flow_loss(TokenBatch(x=x_1), torch.Generator().manual_seed(0))
    assert len(calls) == 1 and "x_self" not in calls[0][0]


def test_sampling_feeds_each_estimate_to_the_next_step():
    module = perturb_weights(toy(), scale=0.05, seed=0)
    with torch.no_grad():
        module.model.self_proj.weight.normal_(std=0.1)
    calls = record(module)
    module.generate(TokenBatch(x=torch.zeros(3, 4, 2)), steps=4, method="euler", generator=torch.Generator())
    assert len(calls) == 4 and torch.count_nonzero(calls[0][0]["x_self"]) == 0
    for (prev, out, _), (cur, _, _) in zip(calls, calls[1:]):
        torch.testing.assert_close(cur["x_self"], module.path.velocity_to_x1(prev["x"], out, prev["t"]))
