"""JointDiT: per-stream weights, one attention over all streams (tested like the core DiT)."""

import pytest
import torch

from ditkit_core.nn import ConfigError, DiT, DiTConfig, JointDiT
from ditkit_core.testing import perturb_weights

CFG = dict(dim=48, depth=2, heads=2, rope_axes=3)


def net(**streams) -> JointDiT:
    torch.manual_seed(0)
    return JointDiT({k: DiTConfig(**{**CFG, **v}) for k, v in streams.items()})


def grid_pos(b, n, fps):
    t = torch.arange(n, dtype=torch.float32) / fps  # seconds on the first axis
    return torch.stack([t * 16, torch.zeros(n), torch.zeros(n)], -1)[None].expand(b, n, 3)


def test_fresh_joint_dit_outputs_zero_for_every_stream():
    m = net(video=dict(in_dim=12), audio=dict(in_dim=8, out_dim=4, cond_channels=3))
    x = {"video": torch.randn(2, 5, 12), "audio": torch.randn(2, 7, 8)}
    out = m(
        x,
        torch.rand(2),
        pos={"video": grid_pos(2, 5, 4), "audio": grid_pos(2, 7, 8)},
        x_cond={"audio": torch.randn(2, 7, 3)},
    )
    assert out["video"].shape == (2, 5, 12) and out["audio"].shape == (2, 7, 4)
    assert all(bool((o == 0).all()) for o in out.values())


def test_one_stream_equals_the_plain_dit():
    torch.manual_seed(0)
    dit = perturb_weights(DiT(DiTConfig(in_dim=6, num_classes=3, registers=2, **CFG)), scale=0.05, seed=1)
    m = JointDiT({"only": dit.config})
    m.streams["only"].load_state_dict(dit.state_dict())
    x, t, pos, y = torch.randn(2, 9, 6), torch.rand(2), grid_pos(2, 9, 8), torch.tensor([0, 2])
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    torch.testing.assert_close(
        m({"only": x}, t, pos={"only": pos}, mask={"only": mask}, cond=y)["only"],
        dit(x, t, pos=pos, mask=mask, cond=y),
        atol=0,
        rtol=0,
    )


def test_two_streams_with_the_same_weights_equal_one_dit_over_both():
    torch.manual_seed(0)
    dit = perturb_weights(DiT(DiTConfig(in_dim=6, **CFG)), scale=0.05, seed=2)
    m = JointDiT({"a": dit.config, "b": dit.config})
    for s in m.streams.values():
        s.load_state_dict(dit.state_dict())
    xa, xb, t = torch.randn(2, 4, 6), torch.randn(2, 5, 6), torch.rand(2)
    pa, pb = grid_pos(2, 4, 4), grid_pos(2, 5, 5)
    out = m({"a": xa, "b": xb}, t, pos={"a": pa, "b": pb})
    ref = dit(torch.cat([xa, xb], 1), t, pos=torch.cat([pa, pb], 1))
    torch.testing.assert_close(torch.cat([out["a"], out["b"]], 1), ref, atol=1e-5, rtol=1e-5)


def test_streams_see_each_other_and_padding_is_invisible_per_stream():
    m = perturb_weights(net(video=dict(in_dim=12), audio=dict(in_dim=8)), scale=0.05, seed=3)
    x = {"video": torch.randn(2, 5, 12), "audio": torch.randn(2, 7, 8)}
    pos = {"video": grid_pos(2, 5, 4), "audio": grid_pos(2, 7, 8)}
    t = torch.rand(2)
    base = m(x, t, pos=pos)
    other = m({**x, "audio": torch.randn(2, 7, 8)}, t, pos=pos)
    assert (base["video"] - other["video"]).abs().max() > 1e-4  # joint attention: audio changes the video output
    mask = {"audio": torch.ones(2, 7, dtype=torch.bool)}
    mask["audio"][:, 5:] = False
    noisy = {**x, "audio": x["audio"].clone()}
    noisy["audio"][:, 5:] = 50.0
    a = m(x, t, pos=pos, mask=mask)
    b = m(noisy, t, pos=pos, mask=mask)
    torch.testing.assert_close(a["video"], b["video"])
    torch.testing.assert_close(a["audio"][:, :5], b["audio"][:, :5])
    assert bool((b["audio"][:, 5:] == 0).all())


def test_same_instant_gets_the_same_temporal_angle_across_frame_rates():
    m = net(video=dict(in_dim=4), audio=dict(in_dim=4))
    pv, pa = grid_pos(1, 8, 16), grid_pos(1, 20, 40)  # 16 fps video, 40 Hz audio frames
    av, aa = m.streams["video"].rope.angles(pv), m.streams["audio"].rope.angles(pa)
    torch.testing.assert_close(av[:, 4], aa[:, 10])  # both at t = 0.25 s
    assert (av[:, 4] - aa[:, 11]).abs().max() > 1e-3
    with pytest.raises(ConfigError, match="streams.audio.dim=36 differs"):
        JointDiT({"video": DiTConfig(in_dim=4, **CFG), "audio": DiTConfig(in_dim=4, **{**CFG, "dim": 36})})
