"""Audio-video networks: the joint DiT over packed tokens and the AV-DiT adapter variant."""

import numpy as np
import pytest
import torch

from ditkit_audio.av.model import AVAdapterNetwork, AVNetwork, FrameSync, Layout, SyncBridge, resample_matrix
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
    frame = [j * TOK.hop / TOK.sample_rate * TOK.fps for j in range(TOK.audio_tokens)]
    n = (TOK.video_tokens, TOK.video_dim, TOK.audio_tokens, TOK.audio_dim)
    return Layout(*n, TOK.grid, tuple(step), TOK.tubelet, tuple(frame))


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


def test_resample_matrix_is_linear_interpolation():
    src = np.array([0.0, 0.4, 0.8, 1.2, 1.6, 2.0])
    dst = np.array([-1.0, 0.0, 0.1, 1.0, 1.7, 3.0])
    values = np.random.default_rng(0).normal(size=6)
    got = resample_matrix(src, dst).double().numpy() @ values
    np.testing.assert_allclose(got, np.interp(dst, src, values), rtol=1e-6, atol=1e-6)


def test_fresh_frame_sync_is_the_identity_and_features_follow_the_given_stream():
    torch.manual_seed(0)
    plain = perturb_weights(AVNetwork(CFG, layout(), bridges=True), scale=0.05, seed=5)
    synced = AVNetwork(CFG, layout(), bridges=True, sync=8)
    synced.load_state_dict(plain.state_dict(), strict=False)
    x, kw = inputs()
    t = torch.rand(2)
    torch.testing.assert_close(synced(x, t, **kw), plain(x, t, **kw))
    # the view: given values where the known flag is set (not for dropped samples), else the noisy state
    v, _ = TOK.unpack(x)
    given = torch.cat([torch.ones_like(v) * 0.5, torch.ones(*v.shape[:2], 1)], -1)
    view = FrameSync.current_view(v, given, torch.tensor([False, True]))
    assert bool((view[0] == 0.5).all()) and torch.equal(view[1], v[1])
    # trained, the audio output depends on the given video through the sync path, which the plain network lacks
    net = perturb_weights(synced, scale=0.05, seed=6)
    x_cond = kw["x_cond"].clone()
    nv = TOK.video_tokens
    x_cond[:, :nv, : TOK.video_dim] = v
    x_cond[:, :nv, -1] = 1.0
    other = x_cond.clone()
    other[:, :nv, : TOK.video_dim] = torch.randn_like(v)
    a1 = net(x, t, **{**kw, "x_cond": x_cond})[:, nv:]
    a2 = net(x, t, **{**kw, "x_cond": other})[:, nv:]
    assert (a1 - a2).abs().max() > 1e-4


def test_frame_sync_features_are_local_in_time():
    torch.manual_seed(0)
    sync = perturb_weights(FrameSync(CFG.dim, layout(), CFG.depth, width=8), scale=0.1, seed=7)
    frames = torch.rand(1, TOK.frames, TOK.size, TOK.size, 3) * 0.5
    v = TOK.video_to_tokens(frames)
    a = torch.randn(1, TOK.audio_tokens, TOK.audio_dim)
    fa, fv = sync.features(v, a)
    frames[:, 0] += 0.5  # change frame 0 only
    fa2, _ = sync.features(TOK.video_to_tokens(frames), a)
    changed = (fa - fa2).abs().amax(-1)[0] > 1e-6
    times = np.asarray(layout().audio_frame)
    reach = 1 + 2 + 1 + 1  # neighbour frames, the two temporal convolutions, interpolation
    assert changed.any() and bool((~changed[torch.from_numpy(times > reach)]).all())
    a2 = a.clone()
    a2[:, -1] += 1.0  # the last audio frame reaches only the last video step
    _, fv2 = sync.features(v, a2)
    steps_changed = (fv - fv2).abs().amax(-1)[0] > 1e-6
    assert bool(steps_changed[-1]) and not bool(steps_changed[0])
