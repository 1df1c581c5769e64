"""AVModule: tasks chosen by what is given, condition channels, per-stream guidance, training and loading."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ditkit_audio.av.module import TASKS, AVModule
from ditkit_audio.av.synthetic import ClipSpec, make_clip
from ditkit_audio.av.tokenizer import AVTokenizer
from ditkit_core.nn import ConfigError, DiTConfig
from ditkit_core.testing import (
    check_module_fits_batch,
    check_pretrained_round_trip,
    config_copy,
    perturb_weights,
    run_config,
)

ROOT = Path(__file__).resolve().parents[2]


def module(**kw):
    torch.manual_seed(0)
    tok = AVTokenizer(size=16, fps=8, seconds=1.0, tubelet=(2, 8, 8), gl_iters=2)
    return AVModule(tok, DiTConfig(dim=24, depth=1, heads=2, num_classes=2), **kw)


def batch(m, b=2, seed=0):
    tok = m.tokenizer
    g = torch.Generator().manual_seed(seed)
    return {
        "video": torch.randint(0, 256, (b, tok.frames, tok.size, tok.size, 3), generator=g, dtype=torch.uint8),
        "mel": torch.randn(b, tok.audio_frames, tok.n_mels, generator=g) * 1.3 - 6.3,
        "family": torch.tensor([0, 1][:b]),
    }


def clip_batch(m, b=2):
    """Procedural clips of the module's geometry (structured data, unlike :func:`batch`)."""
    tok = m.tokenizer
    spec = ClipSpec(size=tok.size, fps=tok.fps, seconds=tok.seconds, radius=2.0)
    clips = [make_clip(spec, i, family=i % 2) for i in range(b)]
    return {
        "video": torch.from_numpy(np.stack([c.video for c in clips])),
        "mel": tok.features(torch.from_numpy(np.stack([c.audio for c in clips]))),
        "family": torch.tensor([c.family for c in clips]),
    }


def test_task_masks_give_the_right_tokens():
    m = module()
    tok = m.tokenizer
    nv = tok.video_tokens
    known = m.task_mask(torch.tensor([0, 1, 2, 3]), torch.tensor([0.0, 0.0, 0.0, 0.5]))
    assert not known[0].any()
    assert known[1, :nv].all() and not known[1, nv:].any()
    assert known[2, nv:].all() and not known[2, :nv].any()
    times = tok.token_times()
    assert bool((known[3] == (times < 0.5)).all()) and 0 < known[3].sum() < known.shape[1]
    video_only = module(streams=["video"])
    assert video_only.task_mask(torch.tensor([0]))[0, nv:].all()  # no audio stream: audio never generated
    assert set(video_only.task_p.nonzero().flatten().tolist()) == {TASKS.index("joint"), TASKS.index("continue")}


def test_condition_channels_carry_exactly_the_given_values():
    m = module()
    b = batch(m)
    tokens = m.tokenize({**b, "task": torch.tensor([1, 3]), "cut": torch.tensor([0.0, 0.5])})
    xc = m.condition(tokens, None).x_cond
    given = tokens.known_mask & m.tokenizer.channel_mask(2)
    d = tokens.x.shape[-1]
    torch.testing.assert_close(xc[..., :d], tokens.x * given)
    assert bool((xc[..., d] == given.any(-1)).all())


def test_video_outputs_get_no_gradient_when_the_video_is_given():
    m = perturb_weights(module(flow={"cond_dropout": 0.0}), scale=0.05, seed=1)
    tokens = m.tokenize({**batch(m), "task": torch.tensor([1, 1])})  # v2a: every video token given
    m.flow_loss(tokens, torch.Generator().manual_seed(0))["loss"].backward()
    head = m.model.joint.streams["video"].final.linear
    assert head.weight.grad is not None and bool((head.weight.grad == 0).all())
    assert m.model.joint.streams["audio"].final.linear.weight.grad.abs().sum() > 0


def test_loss_is_balanced_between_streams():
    m = module()
    tok = m.tokenizer
    w = torch.tensor(m.flow.channel_weights)
    video_total = w[: tok.video_dim].sum() * tok.video_tokens
    audio_total = w[tok.video_dim :].sum() * tok.audio_tokens
    torch.testing.assert_close(video_total, audio_total)


def test_given_parts_are_kept_and_per_stream_guidance_matches_the_core_per_stream():
    m = perturb_weights(module(), scale=0.05, seed=2)
    b = batch(m)
    out = m.sample_task(b, "v2a", steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["video"], b["video"].float() / 255, atol=1e-6, rtol=0)
    out = m.sample_task(b, "a2v", steps=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out["mel"], b["mel"], atol=1e-5, rtol=0)
    # one Euler step from the same noise: each stream's part equals the core guidance with that stream's scale
    run = lambda **kw: m.sample_task(b, "joint", steps=1, generator=torch.Generator().manual_seed(1), **kw)  # noqa: E731
    mixed, uni_v, uni_a = (
        run(cfg_video=1.0, cfg_audio=3.0),
        run(cfg_video=1.0, cfg_audio=1.0),
        run(cfg_video=3.0, cfg_audio=3.0),
    )
    torch.testing.assert_close(mixed["video"], uni_v["video"], atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed["mel"], uni_a["mel"], atol=1e-4, rtol=0)
    assert (uni_v["mel"] - uni_a["mel"]).abs().max() > 1e-3  # guidance does change the audio
    with pytest.raises(ValueError, match="cfg_audio"):
        run(cfg_audio=float("nan"))


def test_module_fits_a_batch_and_round_trips(tmp_path):
    m = module()
    check_module_fits_batch(m, clip_batch(m), steps=30, lr=5e-3, drop=0.2)
    b = batch(m)

    def inputs(mod):
        tokens = mod.condition(mod.tokenize({**b, "task": torch.tensor([1, 2])}), None)
        return mod.model(tokens.x, torch.tensor([0.3, 0.6]), **tokens.model_kwargs())

    loaded = check_pretrained_round_trip(m, inputs, tmp_path / "pretrained")
    assert loaded.streams == m.streams and loaded.flow.channel_weights == m.flow.channel_weights


def test_checkpoints_without_the_bridge_option_load_as_the_plain_network():
    args = AVModule.migrate_args({"_class_path": "x", "mode": "joint"})
    assert args == {"mode": "joint", "bridges": False}
    assert module(bridges=False).model.bridges is None and module().model.bridges is not None


def test_sync_loss_teaches_the_video_features_the_sound():
    m = module(sync=8, sync_loss=1.0)
    assert module(sync=8).model.sync.foley is None  # no loss, no head (no parameter without a gradient)
    b = clip_batch(m, b=4)
    tokens = m.tokenize(b)
    loss = m.auxiliary_losses(b, tokens)["sync"]
    loss.backward()
    sync = m.model.sync
    grads = {n for n, p in m.model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads and all(n.startswith(("sync.cnn", "sync.video_time", "sync.foley")) for n in grads)
    # the loss reads the clip's own mel off its video: fitting it beats the best constant (each mel bin's mean)
    opt = torch.optim.Adam(sync.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        m.auxiliary_losses(b, tokens)["sync"].backward()
        opt.step()
    _, audio = m.tokenizer.unpack(tokens.x)
    constant = float(((audio - audio.mean((0, 1), keepdim=True)) ** 2).mean())
    assert float(m.auxiliary_losses(b, tokens)["sync"]) < 0.5 * constant


def test_guidance_scales_come_from_the_call_then_the_module_then_the_sampler():
    m = module(cfg_video=1.0, cfg_audio=4.0)
    assert m.guidance_scales() == (1.0, 4.0)
    assert m.guidance_scales(cfg_audio=3.0) == (1.0, 3.0)
    assert m.guidance_scales(cfg_scale=2.5) == (2.5, 2.5)
    plain = module()
    assert plain.guidance_scales() == (plain.sampler.cfg_scale,) * 2
    with pytest.raises(ConfigError, match="cfg_audio"):
        module(cfg_audio=-1.0)


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="sync_loss"):
        module(sync_loss=1.0)
    with pytest.raises(ConfigError, match="streams"):
        module(streams=["audio"])
    with pytest.raises(ConfigError, match="task_probs"):
        module(task_probs={"v2a": 0.0, "joint": 0.0})
    with pytest.raises(ConfigError, match="rope_axes"):  # three rotary axes: the head width splits in 6
        AVModule(AVTokenizer(size=16, fps=8, seconds=1.0), DiTConfig(dim=32, depth=1, heads=4))
    with pytest.raises(ValueError, match="task="):
        module().sample_task(batch(module()), "dance")


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    """The debug app config trained once (its clips synthesised) under a temporary folder, checkpoint saved."""
    root = tmp_path_factory.mktemp("av_debug")
    config = config_copy(
        ROOT / "apps/audio_video/configs/debug.yaml",
        root / "debug.yaml",
        {"trainer.default_root_dir": root, "data.init_args.root": root / "data"},
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        cli = run_config(config)
    ckpt = root / "run.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    return SimpleNamespace(config=config, root=root, ckpt=ckpt, cli=cli)


def test_debug_config_trains_and_its_checkpoint_loads(debug_run):
    from ditkit_core.lightning import load_run

    assert list((debug_run.root / "samples").glob("*.png"))
    cli = debug_run.cli
    loaded = load_run(config=debug_run.config, ckpt=debug_run.ckpt)
    b = cli.datamodule.val.batch([0, 1])
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(
        loaded.sample_task(b, "v2a", steps=2, generator=g())["mel"],
        cli.model.sample_task(b, "v2a", steps=2, generator=g())["mel"],
    )


def test_validation_samples_reach_tensorboard_as_figures_and_sound(debug_run):
    """Each v2a / joint validation sample is written as a contact sheet and a 16-bit WAV of the sound it draws; the
    debug YAML's TensorBoard logger (its relative folder, under the fixture's working directory) holds both."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ditkit_core.lightning.callbacks import read_pcm_wav

    samples = debug_run.root / "samples"
    pngs, wavs = sorted(samples.glob("*.png")), sorted(samples.glob("*.wav"))
    assert [p.stem for p in pngs] == [p.stem for p in wavs]
    assert {p.stem.split("_")[-2] for p in wavs} == {"v2a", "joint"}
    tok = debug_run.cli.model.tokenizer
    wav, rate = read_pcm_wav(wavs[0])
    assert rate == tok.sample_rate and wav.shape == (tok.samples,)
    logs = debug_run.root / "outputs" / "av_debug" / "logs" / "tensorboard"
    acc = EventAccumulator(str(logs), size_guidance={"audio": 0, "images": 0}).Reload()
    assert sorted(acc.Tags()["audio"]) == [f"samples/{p.stem}" for p in wavs]
    assert sorted(acc.Tags()["images"]) == [f"samples/{p.stem}" for p in pngs]
    assert acc.Audio(f"samples/{wavs[0].stem}")[0].length_frames == tok.samples


def test_ditkit_audio_video_sample_and_eval_run_on_the_debug_run(debug_run, tmp_path, monkeypatch):
    import json

    from ditkit_audio.av.cli import APP

    monkeypatch.chdir(tmp_path)  # nothing is written next to the working directory
    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--steps", "1"]
    assert APP.run(["sample", *common, "--task", "joint", "--n", "1", "--scale", "1"]) == 0
    out = debug_run.root / "sample"  # <run folder>/<command>; the clips come from the config's data root
    assert sorted(p.suffix for p in out.iterdir()) == [".mp4", ".png"]
    args = ["--tasks", "v2a", "--n", "2", "--n-pulse", "0", "--examples", "1", "--encoder", ""]
    assert APP.run(["eval", *common, *args]) == 0
    figures = json.loads((debug_run.root / "eval" / "eval_test.json").read_text())
    assert figures[0]["figure"] == "detector" and {"setup", "generation_time"} <= {f["figure"] for f in figures}
    assert all(f.get("steps", 1) == 1 for f in figures)
    assert not list(tmp_path.iterdir())


def test_eval_prints_every_figure_with_its_controls_on_the_debug_run(debug_run, tmp_path):
    from ditkit_audio.av.evaluate import main as eval_main

    figures = eval_main(
        [
            "--config",
            str(debug_run.config),
            "--ckpt",
            str(debug_run.ckpt),
            "--data",
            str(debug_run.root / "data"),
            "--split",
            "val",
            "--n",
            "2",
        ]
        + ["--n-pulse", "1", "--steps", "2", "--examples", "0", "--out", str(tmp_path / "eval"), "--encoder", ""]
    )
    by = {f["figure"]: f for f in figures}
    for name in ("v2a_onset_sync", "v2a_pitch_colour", "a2v_collision_sync", "joint_av_sync", "continue_sync"):
        assert name in by
    controls = by["v2a_onset_sync"]
    for key in ("model", "ceiling_real_audio", "baseline_other_clip_audio", "classical_rule_foley"):
        assert 0.0 <= controls[key]["f1"] <= 1.0
    assert "classical_real_video_rule_foley" in by["joint_av_sync"]
    rows = by["v2a_video_reliance"]["rows"]
    assert [r["t"] for r in rows] == [0.02, 0.1, 0.3, 0.6, 0.9]
    assert all(r[k] >= 0 for r in rows for k in ("own_video", "other_video", "no_condition"))
    assert (tmp_path / "eval" / "eval_val.json").exists()


def test_avdit_backbone_loads_from_a_video_only_run(tmp_path, monkeypatch):
    """The AV-DiT start: the video stream of a trained video-only checkpoint is copied into the frozen backbone."""
    monkeypatch.chdir(tmp_path)
    cfg = ROOT / "apps/audio_video/configs/debug.yaml"
    cli = run_config(
        cfg,
        "--trainer.default_root_dir",
        str(tmp_path),
        "--data.init_args.root",
        str(tmp_path / "data"),
        "--model.init_args.streams",
        "[video]",
        "--model.init_args.task_probs",
        "{joint: 0.5, continue: 0.5}",
    )
    assert list((tmp_path / "samples").glob("*.png")) and not list((tmp_path / "samples").glob("*.wav"))  # no sound
    ckpt = tmp_path / "video_only.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    m = module(mode="avdit", backbone=str(ckpt))
    m.load_backbone(ckpt)
    theirs = cli.model.model.joint.streams["video"].state_dict()
    mine = m.model.joint.streams["video"].state_dict()
    assert theirs.keys() == mine.keys()
    for k in theirs:
        torch.testing.assert_close(mine[k], theirs[k])
