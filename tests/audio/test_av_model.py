"""Audio-video networks: the joint DiT over packed tokens and the AV-DiT adapter variant."""

import pytest
import torch

from ditkit_audio.av.model import AVAdapterNetwork, AVNetwork, Layout, SyncBridge
from ditkit_audio.av.tokenizer import AVTokenizer
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.testing import perturb_weights

TOK = AVTokenizer(size=16, fps=8, seconds=1.0, tubelet=(2, 8, 8))
CFG = DiTConfig(dim=24, depth=2, heads=2, rope_axes=3, num_classes=2)


def layout():
    step = [
        min(TOK.grid[0] - 1, int(j * TOK.hop / TOK.sample_rate * TOK.fps / TOK.tubelet[0]))
        for j in range(TOK.audio_tokens)
    ]
    return Layout(TOK.video_tokens, TOK.video_dim, TOK.audio_tokens, TOK.audio_dim, TOK.grid, tuple(step))


def inputs(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = TOK.pack(
        torch.randn(b, TOK.video_tokens, TOK.video_dim, generator=g),
        torch.randn(b, TOK.audio_tokens, TOK.audio_dim, generator=g),
    )
    x_cond = torch.cat([x * 0, torch.zeros(b, x.shape[1], 1)], -1)
    return x, {"pos": TOK.positions(b), "x_cond": x_cond, "cond": torch.tensor([0, 1][:b])}


def test_fresh_network_outputs_zero_and_padding_channels_stay_zero():
    torch.manual_seed(0)
    net = AVNetwork(CFG, layout())
    x, kw = inputs()
    assert bool((net(x, torch.rand(2), **kw) == 0).all())
    out = perturb_weights(net, scale=0.05, seed=1)(x, torch.rand(2), **kw)
    assert bool((out[~TOK.channel_mask(2)] == 0).all()) and out[TOK.channel_mask(2)].abs().max() > 0


def test_streams_see_each_other_through_the_joint_attention():
    torch.manual_seed(0)
    net = perturb_weights(AVNetwork(CFG, layout()), scale=0.05, seed=2)
    x, kw = inputs()
    t = torch.rand(2)
    v, a = TOK.unpack(x)
    other = TOK.pack(v, torch.randn_like(a))
    base, changed = net(x, t, **kw), net(other, t, **kw)
    nv = TOK.video_tokens
    assert (base[:, :nv] - changed[:, :nv]).abs().max() > 1e-4  # new audio changes the video velocity


def test_fresh_bridges_are_the_identity_and_exchange_only_within_a_time_step():
    torch.manual_seed(0)
    plain = perturb_weights(AVNetwork(CFG, layout()), scale=0.05, seed=5)
    bridged = AVNetwork(CFG, layout(), bridges=True)
    bridged.joint.load_state_dict(plain.joint.state_dict())
    x, kw = inputs()
    t = torch.rand(2)
    torch.testing.assert_close(bridged(x, t, **kw), plain(x, t, **kw))
    bridge = perturb_weights(SyncBridge(CFG.dim, layout()), scale=0.1, seed=6)
    gt, gh, gw = TOK.grid
    hv, ha = torch.randn(1, TOK.video_tokens, CFG.dim), torch.randn(1, TOK.audio_tokens, CFG.dim)
    hv2 = hv.clone()
    hv2[:, gh * gw : 2 * gh * gw] += 1.0  # change the video of time step 1 only
    (_, a1), (_, a2) = bridge(hv, ha), bridge(hv2, ha)
    changed = (a1 - a2).abs().amax(-1)[0] > 1e-6
    assert bool((changed == (bridge.index == 1)).all()) and changed.any()  # exactly the audio frames of step 1


def test_video_only_network_ignores_audio():
    torch.manual_seed(0)
    net = perturb_weights(AVNetwork(CFG, layout(), streams=("video",)), scale=0.05, seed=3)
    x, kw = inputs()
    t = torch.rand(2)
    v, a = TOK.unpack(x)
    out = net(x, t, **kw)
    assert bool((out[:, TOK.video_tokens :] == 0).all())
    torch.testing.assert_close(out, net(TOK.pack(v, a * 5), t, **kw))


def adapter_net(seed=4):
    torch.manual_seed(0)
    backbone = perturb_weights(AVNetwork(CFG, layout(), streams=("video",)), scale=0.05, seed=seed)
    net = AVAdapterNetwork(CFG, layout(), adapter_dim=8)
    net.load_backbone(backbone.joint.streams["video"])
    return net, backbone


def test_adapters_start_as_identity_on_the_shared_frozen_backbone():
    net, backbone = adapter_net()
    x, kw = inputs()
    t = torch.rand(2)
    lay = layout()
    xs, ps, cs = lay.split(x), lay.split_tokens(kw["pos"]), lay.split_cond(kw["x_cond"])
    ref = net.joint(xs, t, pos=ps, x_cond=cs, cond=kw["cond"])  # the frozen joint model, no adapters
    out = net(x, t, **kw)
    torch.testing.assert_close(out, lay.pack(ref, x))
    # the video stream is the backbone's, and the audio stream runs the same block weights
    v_only = backbone(x, t, **kw)[:, : TOK.video_tokens]
    assert net.joint.streams["audio"].blocks is net.joint.streams["video"].blocks
    assert v_only.abs().max() > 0


def test_only_adapters_train_and_they_are_a_small_share():
    net, _ = adapter_net()
    full = AVNetwork(CFG, layout())
    n_full = sum(p.numel() for p in full.parameters())
    assert 0 < net.trainable_parameters() < 0.35 * n_full  # tiny test widths; the app config is below 20 %
    x, kw = inputs()
    net(x, torch.rand(2), **kw).square().mean().backward()
    frozen = {id(p) for p in net.backbone_parameters()}
    for name, p in net.named_parameters():
        if id(p) in frozen:
            assert not p.requires_grad and p.grad is None, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.interaction.parameters())


def test_backbone_of_another_shape_is_refused():
    net = AVAdapterNetwork(CFG, layout(), adapter_dim=8)
    other = AVNetwork(DiTConfig(dim=36, depth=2, heads=2, rope_axes=3, num_classes=2), layout(), streams=("video",))
    with pytest.raises(ConfigError, match="does not match this backbone"):
        net.load_backbone(other.joint.streams["video"])
