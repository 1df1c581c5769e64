import pytest
import torch

from ditkit_audio.audio import LogMel
from ditkit_audio.data import TTSDataModule, collate_tts, load_corpus
from ditkit_audio.inference import synthesize
from ditkit_audio.module import TTSModule
from ditkit_audio.text import TextTokenizer
from ditkit_audio.tokenizer import MelTokenizer
from ditkit_core.lightning import FlowConfig
from ditkit_core.nn import DiTConfig
from ditkit_core.testing import (
    check_module_fits_batch,
    check_pretrained_round_trip,
    check_tokenizer_round_trip,
)


def _module(**kw):
    torch.manual_seed(0)
    return TTSModule(
        MelTokenizer(gl_iters=4),
        DiTConfig(in_dim=64, dim=32, depth=2, heads=2, rope_axes=1),
        text_dim=16,
        text_layers=1,
        duration_dim=16,
        duration_layers=1,
        **kw,
    )


def _batch(corpus, n=4):
    items, _ = load_corpus(corpus, LogMel(), TextTokenizer(), cache=False)
    tok = TextTokenizer()
    return collate_tts(
        [
            {"mel": it["mel"].float(), "ids": torch.tensor(tok.encode(it["text"])), "text": it["text"]}
            for it in items[:n]
        ]
    )


def test_mel_tokenizer_round_trip_is_exact(tiny_corpus):
    batch = _batch(tiny_corpus)
    tok = MelTokenizer()
    tokens = tok.encode(batch)
    assert tokens.x.shape == batch["mel"].shape and tokens.pos.shape == (*batch["mask"].shape, 1)
    assert tokens.x[~batch["mask"]].eq(0).all()
    check_tokenizer_round_trip(tok, batch, atol=1e-5)


def test_span_mask_infills_one_contiguous_span():
    m = _module(mask_range=(0.7, 0.9))
    mask = torch.ones(64, 50, dtype=torch.bool)
    mask[::2, 40:] = False
    known = m.span_mask(mask, torch.Generator().manual_seed(0))
    infill = mask & ~known
    assert not (known & ~mask).any()
    frac = infill.sum(1).float() / mask.sum(1)
    assert frac.min() >= 0.68 and frac.max() <= 0.92
    edges = (infill[:, 1:] != infill[:, :-1]).sum(1)
    assert edges.max() <= 2  # a single run of True


def test_module_learns_batch_and_duration(tiny_corpus):
    batch = _batch(tiny_corpus)
    m = _module(flow=FlowConfig(cond_dropout=0.0))
    check_module_fits_batch(m, batch, steps=40, lr=3e-3, drop=0.2)
    opt = torch.optim.Adam(m.duration.parameters(), 1e-2)
    with torch.no_grad():
        before = float(m.duration_loss(batch))
    for _ in range(60):
        opt.zero_grad()
        m.duration_loss(batch).backward()
        opt.step()
    with torch.no_grad():
        assert float(m.duration_loss(batch)) < 0.3 * before


def test_filler_mode_still_trains_and_samples(tiny_corpus):
    batch = _batch(tiny_corpus)
    m = _module(flow=FlowConfig(cond_dropout=0.0), text_align="filler")
    assert "filled" in m.tokenize(batch).meta
    check_module_fits_batch(m, batch, steps=40, lr=3e-3, drop=0.2)
    res = synthesize(m.eval(), ["A small boat."], steps=2, vocode=False)
    assert torch.isfinite(res["mels"][0]).all()


def test_stretch_text_layout_and_cfg_drop(tiny_corpus):
    batch = _batch(tiny_corpus)
    m = _module().eval()
    tokens = m.tokenize(batch)
    idx, n = tokens.meta["text_index"], batch["mask"].sum(1)
    for i in range(idx.shape[0]):  # every frame of the audio sits on a symbol, in order; padding on none
        row = idx[i, : int(n[i])]
        assert row.min() == 0 and row.max() == int(batch["text_len"][i]) - 1 and (row[1:] >= row[:-1]).all()
        assert idx[i, int(n[i]) :].eq(-1).all()
    with torch.no_grad():
        full = m.text_embedding(tokens)
        drop = torch.tensor([True] + [False] * (idx.shape[0] - 1))
        dropped = m.text_embedding(tokens, drop)
        other = tokens.replace(
            meta={
                **tokens.meta,
                "ids": torch.roll(tokens.meta["ids"], 1, 0),
                "text_len": torch.roll(tokens.meta["text_len"], 1, 0),
            }
        )
    assert torch.allclose(full[1:], dropped[1:]) and not torch.allclose(full[0], dropped[0])
    # the unconditional branch ignores the text: another text gives the same dropped embedding
    with torch.no_grad():
        assert torch.allclose(m.text_embedding(other, drop)[0], dropped[0], atol=1e-6)
    # voice prompt: its 5 symbols cover its 12 frames, the target's 7 symbols the next 20 (fitted weights + tail)
    m.symbol_frames.fill_(2.0)
    m.tail_frames.fill_(4.0)
    ids = torch.arange(2, 14)[None]
    meta = m.text_meta(
        ids,
        torch.tensor([12]),
        40,
        torch.tensor([20]),
        prompt_frames=torch.tensor([12]),
        prompt_text_len=torch.tensor([5]),
    )
    idx = meta["text_index"][0]
    assert set(idx[:12].tolist()) == set(range(5)) and set(idx[12:32].tolist()) == set(range(5, 12))
    assert idx[32:].eq(-1).all() and (idx[:32][1:] >= idx[:32][:-1]).all()
    assert (idx[12:32] == 11).sum() > (idx[12:32] == 10).sum()  # the last symbol also holds the trailing silence


def test_synthesis_prompt_and_long_text(tiny_corpus):
    m = _module().eval()
    batch = _batch(tiny_corpus, 1)
    prompt = batch["mel"][0]
    long = "The red cat sleeps. " * 3 + "Did the dog run away?"
    res = synthesize(m, ["A small boat.", long], steps=2, max_chars=30)
    assert len(res["pieces"][1]) == 4 and len(res["wavs"]) == 2
    assert res["mels"][1].shape[0] == sum(res["frames"][1])
    hop = m.tokenizer.hop
    fade = int(0.05 * m.tokenizer.sample_rate)
    assert res["wavs"][1].shape[0] == sum((f - 1) * hop for f in res["frames"][1]) - 3 * fade
    m.frames_per_symbol.fill_(3.0)
    res_h = synthesize(m, ["A small boat."], steps=2, duration="heuristic", vocode=False)
    assert res_h["frames"][0] == [round(3.0 * len("a small boat."))]
    res_p = synthesize(m, ["A small boat."], steps=2, prompt_mel=prompt, prompt_text=batch["text"][0], vocode=False)
    assert res_p["mels"][0].shape[1] == 64 and torch.isfinite(res_p["mels"][0]).all()


def test_pretrained_round_trip(tmp_path):
    m = _module()
    with torch.no_grad():
        for p in m.model.parameters():
            p.add_(0.01 * torch.randn_like(p))

    def run(mod):
        return synthesize(mod, ["the cat."], steps=2, vocode=False, seed=0)["mels"][0]

    loaded = check_pretrained_round_trip(m, run, tmp_path / "pre")
    assert loaded.tokenizer.hop == m.tokenizer.hop


def test_debug_config_trains_writes_samples_and_its_checkpoint_loads(debug_run):
    from ditkit_audio.cli import load

    assert (debug_run.root / "data" / "metadata.csv").exists()
    assert sorted(p.suffix for p in (debug_run.root / "samples").iterdir()) == [".png", ".wav"]
    # a checkpoint written by `ditkit fit` (with LightningCLI's own hyper-parameter entries) loads through load_run
    m = load(debug_run.config, debug_run.ckpt)
    assert isinstance(m, TTSModule) and not m.training and m.sampler.steps == 2 and m.config.cond_channels == 80
    assert torch.isfinite(synthesize(m, ["A cat."], vocode=False)["mels"][0]).all()


def test_ditkit_tts_sample_and_eval_run_on_the_debug_run(debug_run):
    import json

    from ditkit_audio.cli import APP, main

    common = ["--config", str(debug_run.config), "--ckpt", str(debug_run.ckpt), "--steps", "1"]
    assert APP.run(["sample", *common, "--text", "A small boat.", "--speed", "1.5"]) == 0
    wav = debug_run.root / "sample" / "sample.wav"  # <run folder>/<command>
    assert wav.stat().st_size > 44 and wav.with_suffix(".png").exists()
    assert APP.run(["eval", *common, "--n", "2", "--val-size", "4", "--asr", ""]) == 0
    res = json.loads((debug_run.root / "eval" / "eval.json").read_text())
    assert res["utterances"] == 2 and res["steps"] == 1 and res["mcd_dtw_db"] > 0
    assert "cer_generated_wav" not in res  # --asr '' skips the probe
    data = str(
        debug_run.root / "data"
    )  # --whole: a test folder's own utterances, not its DataModule's validation split
    assert APP.run(["eval", *common, "--n", "3", "--data", data, "--whole", "--asr", ""]) == 0
    res = json.loads((debug_run.root / "eval" / "eval.json").read_text())
    assert res["utterances"] == 3 and res["data"] == data
    # --voice-prompts: each utterance in its reference's espeak-ng voice (speakers.csv), so speaker similarity means it
    assert APP.run(["eval", *common, "--n", "2", "--data", data, "--whole", "--voice-prompts", "--asr", ""]) == 0
    res = json.loads((debug_run.root / "eval" / "eval.json").read_text())
    sim = res["speaker_similarity"]
    assert res["voice_prompts"] and "generated_vs_reference" in sim and "reference_pairs" not in sim  # voice-labelled
    main(["sample", *common, "--text", "A cat.", "--out", str(debug_run.root / "cli.wav")])  # the package's command
    assert (debug_run.root / "cli.wav").exists()


def test_length_buckets_cut_padding_and_follow_the_epoch():
    from ditkit_audio.data import LengthBucketBatchSampler

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 240, (500,), generator=g).tolist()
    s = LengthBucketBatchSampler(lengths, 8, bucket=16, seed=1)
    batches = list(s)
    assert len(batches) == len(s) and all(len(b) == 8 for b in batches)
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == len(flat) and len(flat) >= 500 - 8 * 4
    real = sum(lengths[i] for i in flat)
    padded = sum(8 * max(lengths[i] for i in b) for b in batches)
    assert real / padded > 0.9  # a random batching pads ~40%
    assert list(s) == batches  # deterministic within an epoch
    s.set_epoch(1)
    assert list(s) != batches and s.sampler.epoch == 1  # Lightning sets the epoch on batch_sampler.sampler


def test_length_buckets_resume_mid_epoch_with_the_uninterrupted_batches():
    from types import SimpleNamespace

    from torch.utils.data import DataLoader

    from ditkit_audio.data import LengthBucketBatchSampler
    from ditkit_core.lightning import resume_data_order

    lengths = torch.randint(10, 240, (300,), generator=torch.Generator().manual_seed(3)).tolist()
    for replicas in (1, 2):
        kw = dict(bucket=8, seed=5, num_replicas=replicas, rank=replicas - 1)
        full = LengthBucketBatchSampler(lengths, 4, **kw)
        full.set_epoch(2)
        epoch = list(full)
        loader = DataLoader(lengths, batch_sampler=LengthBucketBatchSampler(lengths, 4, **kw))
        loader.batch_sampler.set_epoch(2)
        n = len(loader)  # a checkpoint 5 batches into epoch 2
        trainer = SimpleNamespace(
            num_training_batches=n,
            accumulate_grad_batches=1,
            global_step=2 * n + 5,
            current_epoch=2,
            train_dataloader=loader,
        )
        assert resume_data_order(trainer) == 5
        assert list(loader.batch_sampler) == epoch[5:]  # not a reshuffle, not a shifted permutation
        assert list(loader.batch_sampler) == epoch  # the skip applies to one epoch only


def test_datamodule_split_and_heuristic(tiny_corpus):
    dm = TTSDataModule(str(tiny_corpus), val_size=3, batch_size=4, cache=False)
    dm.setup()
    assert len(dm.train) == 9 and len(dm.val) == 3 and 1.0 < dm.frames_per_symbol < 6.0
    b = next(iter(dm.train_dataloader()))
    assert b["mel"].shape[0] == 4 and b["ids"].shape[0] == 4
    dm.bucket = 2
    assert next(iter(dm.train_dataloader()))["mel"].shape[0] == 4


def test_cli_sample_with_prompt(tiny_corpus, tmp_path, capsys):
    import json

    from ditkit_audio.cli import main
    from ditkit_core.lightning.pretrained import save_pretrained

    save_pretrained(_module(), tmp_path / "pre")
    wav = sorted((tiny_corpus / "wavs").glob("*.wav"))[0]
    text = (tiny_corpus / "metadata.csv").read_text().splitlines()[0].split("|")[1]
    main(
        [
            "sample",
            "--ckpt",
            str(tmp_path / "pre"),
            "--text",
            "A red cat. A small dog!",
            "--steps",
            "2",
            "--prompt",
            str(wav),
            "--prompt-text",
            text,
            "--out",
            str(tmp_path / "x.wav"),
        ]
    )
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["pieces"] == ["a red cat.", "a small dog!"] and (tmp_path / "x.wav").exists()
    assert (tmp_path / "x.png").exists()


def test_synthesis_arguments_are_checked_by_name_and_value(capsys):
    import pytest

    from ditkit_audio.cli import main

    module = _module()
    for kw, text in (
        ({"speed": 0.0}, r"speed=0\.0: must be a finite number > 0"),
        ({"speed": -1.0}, r"speed=-1\.0"),
        ({"speed": float("nan")}, r"speed=nan"),
        ({"steps": 0}, r"steps=0: must be an integer >= 1"),
        ({"cfg_scale": float("inf")}, r"cfg_scale=inf"),
        ({"max_chars": 0}, r"max_chars=0"),
        ({"duration": "magic"}, r"duration='magic'"),
        ({"prompt_mel": torch.zeros(5, 3), "prompt_text": "a cat"}, r"prompt_mel=\(5, 3\)"),
        ({"speed": 1e-9}, r"speed=1e-09: piece 'a cat.' would last .* the limit is 600 s"),
    ):
        with pytest.raises(ValueError, match=text):
            synthesize(module, ["A cat."], vocode=False, **kw)
    with pytest.raises(ValueError, match=r"texts\[1\]='  ': expected a non-empty string"):
        synthesize(module, ["A cat.", "  "], vocode=False)
    with pytest.raises(ValueError, match=r"texts='A cat\.': expected a non-empty list of strings"):
        synthesize(module, "A cat.", vocode=False)
    for args, text in (
        (["--steps", "0"], "argument --steps: expected an integer >= 1, got '0'"),
        (["--speed", "0"], "argument --speed: expected a number > 0, got '0'"),
        (["--speed", "-2"], "argument --speed: expected a number > 0, got '-2'"),
        (["--cfg", "nan"], "argument --cfg: expected a finite number, got 'nan'"),
    ):
        with pytest.raises(SystemExit):
            main(["sample", "--text", "A cat.", *args])
        assert text in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"^sample: --text ' ' is empty: nothing to speak$"):
        main(["sample", "--text", " "])  # one line, before any model is loaded


def _old_bucket_batches(lengths, batch_size, bucket, seed, epoch, drop_last=True):
    """The single-process order before ranks existed (kept to prove the order did not change)."""
    perm = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()
    g = torch.Generator().manual_seed(seed * 100_003 + epoch + 1)
    out = []
    for k in range(0, len(perm), bucket * batch_size):
        part = sorted(perm[k : k + bucket * batch_size], key=lambda i: lengths[i])
        out += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
        out = [b for b in out if len(b) == batch_size or not drop_last]
    return [out[i] for i in torch.randperm(len(out), generator=g).tolist()]


def test_length_buckets_are_shared_out_across_data_parallel_ranks():
    from ditkit_audio.data import LengthBucketBatchSampler

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 240, (20,), generator=g).tolist()
    one = LengthBucketBatchSampler(lengths, 2, bucket=3, seed=5)
    assert one.num_replicas == 1 and one.rank == 0  # no process group: one process
    for epoch in range(3):
        one.set_epoch(epoch)
        assert list(one) == _old_bucket_batches(lengths, 2, 3, 5, epoch)  # single-process order is unchanged
    ranks = [LengthBucketBatchSampler(lengths, 2, bucket=3, seed=5, num_replicas=2, rank=r) for r in (0, 1)]
    for epoch in range(3):
        for s in ranks:
            s.set_epoch(epoch)
        a, b = (list(s) for s in ranks)
        assert len(a) == len(b) == len(ranks[0]) == 5  # 10 batches of 2: the same count on every rank
        seen_a, seen_b = {i for x in a for i in x}, {i for x in b for i in x}
        assert not seen_a & seen_b and seen_a | seen_b == set(range(20))  # disjoint, together the whole epoch
        one.set_epoch(epoch)
        assert sorted(a + b) == sorted(one)
    # 7 batches over 2 ranks: drop_last drops 1 (a different one each epoch), otherwise one is repeated
    odd = torch.randint(10, 240, (14,), generator=g).tolist()
    for drop_last, per_rank in ((True, 3), (False, 4)):
        shares = [list(LengthBucketBatchSampler(odd, 2, 4, 0, drop_last, num_replicas=2, rank=r)) for r in (0, 1)]
        assert [len(s) for s in shares] == [per_rank, per_rank]
        flat = [i for s in shares for b in s for i in b]
        assert len(set(flat)) == (12 if drop_last else 14)
    with pytest.raises(ValueError, match=r"rank=2: must be in \[0, num_replicas=2\)"):
        LengthBucketBatchSampler(lengths, 2, num_replicas=2, rank=2)


def test_lightning_sampler_injection_under_ddp_keeps_the_rank_share():
    """Under DDP Lightning re-creates a custom batch sampler with a DistributedSampler as ``sampler``: the re-created
    one must take that sampler's rank share of the bucketed batches (it used to read the sampler as ``lengths``)."""
    from lightning.fabric.utilities.data import _replace_dunder_methods
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
    from lightning.pytorch.trainer.states import RunningStage
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import BatchSampler, DataLoader

    from ditkit_audio.data import LengthBucketBatchSampler

    lengths = list(range(40, 0, -1))
    with _replace_dunder_methods(DataLoader, "dataset"), _replace_dunder_methods(BatchSampler):
        dl = DataLoader(list(range(40)), batch_sampler=LengthBucketBatchSampler(lengths, 4, bucket=2, seed=3))
    shares = []
    for rank in (0, 1):
        dist = DistributedSamplerWrapper(dl.sampler, num_replicas=2, rank=rank, shuffle=False)
        new = _update_dataloader(dl, dist, mode=RunningStage.TRAINING)
        assert isinstance(new.batch_sampler, LengthBucketBatchSampler) and new.batch_sampler.rank == rank
        shares.append(list(new.batch_sampler))
        assert shares[-1] == list(LengthBucketBatchSampler(lengths, 4, bucket=2, seed=3, num_replicas=2, rank=rank))
    assert sorted(i for s in shares for b in s for i in b) == list(range(40))


def test_datamodule_settings_are_checked_at_construction():
    for kw, text in (
        ({"val_size": 0}, r"val_size=0: must be an integer >= 1"),
        ({"batch_size": 0}, r"batch_size=0"),
        ({"sample_rate": 16001.5}, r"sample_rate=16001\.5"),
        ({"min_seconds": 2.0, "max_seconds": 1.0}, r"min_seconds=2\.0, max_seconds=1\.0"),
        ({"loudness_db": float("nan")}, r"loudness_db=nan"),
        ({"layout": "zip"}, r"layout='zip'"),
    ):
        with pytest.raises(ValueError, match=text):
            TTSDataModule("x", **kw)


def test_bucket_sampler_reads_rank_and_world_size_from_torch_distributed(monkeypatch):
    from ditkit_audio.data import LengthBucketBatchSampler

    lengths = list(range(1, 33))
    shares = []
    for rank in (0, 1):  # what an initialised 2-process group reports on each rank
        monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
        monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.distributed, "get_world_size", lambda: 2)
        monkeypatch.setattr(torch.distributed, "get_rank", lambda r=rank: r)
        s = LengthBucketBatchSampler(lengths, 4, bucket=2, seed=1)
        assert (s.num_replicas, s.rank) == (2, rank)
        shares.append(list(s))
    assert sorted(i for sh in shares for b in sh for i in b) == list(range(32)) and len(shares[0]) == len(shares[1])


def _tts_yaml(path, root):
    """An app config naming the TTS module (for load_run and the CLI defaults), with its run folder ``root``."""
    import yaml

    path.write_text(
        yaml.safe_dump(
            {
                "trainer": {"default_root_dir": str(root)},
                "model": {"class_path": "ditkit_audio.module.TTSModule", "init_args": {}},
                "data": {"init_args": {"root": str(root / "data")}},
            }
        )
    )
    return path


def test_one_dit_reads_the_reference_and_the_text_as_condition_channels(tiny_corpus):
    from ditkit_core.nn import ConfigError
    from ditkit_core.sampling import find_dits

    m = _module().eval()
    (dit,) = find_dits(m)
    assert (dit.config.in_dim, dit.config.out_dim, dit.config.cond_channels) == (64, 64, 64 + 16)
    assert not dit.config.drop_x_cond and dit.x_embed.in_features == 64 and dit.cond_proj.in_features == 80
    tokens = m.tokenize(_batch(tiny_corpus))
    drop = torch.tensor([True, False, False, False])
    with torch.no_grad():
        c = m.condition(tokens, drop).x_cond
        assert torch.equal(c[..., 64:], m.text_embedding(tokens, drop))
    known = tokens.known_mask[..., None]
    assert torch.equal(c[1:, :, :64], tokens.x[1:] * known[1:]) and c[0, :, :64].eq(0).all()
    assert known.any() and (~known & tokens.mask[..., None]).any()  # the reference holds some frames, not all
    # a YAML stating the earlier joint input width is refused, naming the real width
    with pytest.raises(ConfigError, match=r"DiTConfig.in_dim=144: this module's real in_dim is 64"):
        TTSModule(MelTokenizer(), DiTConfig(in_dim=144, dim=32, depth=1, heads=2, rope_axes=1), text_dim=16)


def test_training_step_adds_the_weighted_duration_loss(tiny_corpus):
    batch = _batch(tiny_corpus)
    m = _module(flow=FlowConfig(cond_dropout=0.2), duration_weight=0.3)
    with torch.no_grad():
        total = m.training_step(batch, 0)
        flow = m.flow_loss(m.tokenize(batch), m.rng())["loss"]
        assert torch.equal(total, flow + 0.3 * m.duration_loss(batch))


def test_checkpoint_of_the_earlier_layout_loads_through_load_run(tiny_corpus, tmp_path):
    """Flat hyper-parameters (``lr``, ``sample_steps``, ``sway``, ...) and the joint ``[x_t, reference, text]`` input
    projection of earlier checkpoints load into today's module and compute the same loss."""
    from ditkit_core.lightning import SamplerConfig, load_run, to_config
    from ditkit_core.testing import perturb_weights

    sampler = SamplerConfig(steps=2, schedule="sway", sway=-0.5)
    m = perturb_weights(_module(flow=FlowConfig(cond_dropout=0.2), sampler=sampler), seed=0).eval()
    state = dict(m.state_dict())
    state["model.x_embed.weight"] = torch.cat([state["model.x_embed.weight"], state.pop("model.cond_proj.weight")], 1)
    hparams = {
        "tokenizer": to_config(m.tokenizer),
        "model": {"in_dim": 64, "dim": 32, "depth": 2, "heads": 2, "rope_axes": 1},
        **{"text_dim": 16, "text_layers": 1, "duration_dim": 16, "duration_layers": 1, "sway": -0.5, "lr": 5e-4},
        **{"cond_dropout": 0.2, "sample_steps": 2, "sample_schedule": "sway", "cfg_scale": 2.0},
    }
    torch.save({"state_dict": state, "hyper_parameters": hparams}, tmp_path / "old.ckpt")
    loaded = load_run(_tts_yaml(tmp_path / "tts.yaml", tmp_path), ckpt=tmp_path / "old.ckpt")
    s = loaded.sampler
    assert (s.steps, s.schedule, s.sway, s.cfg_scale, loaded.optim.lr) == (2, "sway", -0.5, 2.0, 5e-4)
    assert loaded.flow.cond_dropout == 0.2 and loaded.config.cond_channels == 80
    batch = _batch(tiny_corpus)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        a, b = (mod.flow_loss(mod.tokenize(batch), g())["loss"] for mod in (m, loaded))
    assert torch.allclose(a, b, rtol=1e-5)


def test_cli_loads_the_run_of_its_config(tmp_path, capsys):
    """``sample`` / ``eval`` load the config's ``<default_root_dir>/checkpoints/last.ckpt`` through load_run (no
    unpickling) and write under the run folder; a missing run names the command that trains it."""
    import json

    from ditkit_audio.cli import main

    cfg = _tts_yaml(tmp_path / "tts.yaml", tmp_path / "run")
    with pytest.raises(FileNotFoundError, match=r"run/checkpoints/last\.ckpt does not exist .*ditkit fit --config"):
        main(["sample", "--config", str(cfg), "--text", "A cat.", "--steps", "1"])
    m = _module()
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    meta = {"format": 2, "class_path": "ditkit_audio.module.TTSModule"}
    torch.save({"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "ditkit": meta}, ckpt)
    main(["sample", "--config", str(cfg), "--text", "A cat.", "--steps", "1"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["wav"] == str(tmp_path / "run" / "sample.wav") and (tmp_path / "run" / "sample.png").exists()
