import math
from pathlib import Path

import pytest
import torch
import yaml

from ditkit_audio.codec import CodecTokenizer, ScalarQuantizer, SQCodec, load_codec, save_codec, train_codec
from ditkit_audio.wavtools import MEL_DEFAULTS, load_wav_split

ROOT = Path(__file__).resolve().parents[2]


def _codec(**kw):
    torch.manual_seed(0)
    return SQCodec(**{**MEL_DEFAULTS, "latent_dim": 8, "scale": 4, "dim": 32, "intermediate": 64, "layers": 1, **kw})


def _split(tmp_path, corpus):
    p = tmp_path / "tts.yaml"
    p.write_text(
        yaml.safe_dump(
            {"model": {"init_args": {"tokenizer": {"init_args": {}}}}, "data": {"init_args": {"root": str(corpus)}}}
        )
    )
    return load_wav_split(p, val_size=2, cache=False)


@pytest.mark.parametrize("scale", [1, 4, 9])
def test_quantizer_values_on_grid_and_straight_through_gradient(scale):
    sq = ScalarQuantizer(scale)
    z = (3 * torch.randn(4, 50, 8)).requires_grad_()
    q = sq(z)
    k = q.detach() * scale
    assert (k - k.round()).abs().max() < 1e-5 and q.abs().max() <= 1.0  # on {-1, .., -1/S, 0, 1/S, .., 1}
    assert torch.equal(sq.round(q.detach()), q.detach())  # idempotent
    assert sq.indices(q.detach()).min() >= 0 and sq.indices(q.detach()).max() <= 2 * scale
    assert set(sq.indices(q.detach()).unique().tolist()) <= set(range(sq.levels))
    q.sum().backward()
    assert torch.allclose(z.grad, 1 - torch.tanh(z.detach()) ** 2, atol=1e-6)  # d tanh / dz: the rounding is skipped
    assert sq.bits == pytest.approx(math.log2(2 * scale + 1))
    with pytest.raises(ValueError, match="positive integer"):
        ScalarQuantizer(0)


def test_codec_shapes_padding_bitrate_and_errors():
    c = _codec().eval()
    mels = torch.randn(2, 30, 64) - 5
    mask = torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    with torch.no_grad():
        z = c.encode(mels, mask)
        assert z.shape == (2, 30, 8) and z[1, 20:].eq(0).all()
        # a padded batch encodes / decodes each sequence as if it were alone
        assert torch.allclose(z[1, :20], c.encode(mels[1:, :20])[0], atol=1e-5)
        rec = c.decode(z, mask)
        assert rec.shape == (2, 30, 64)
        assert torch.allclose(rec[1, :20], c.decode(z[1:, :20])[0], atol=1e-4)
        # continuous latents (a DiT's output) decode like their nearest grid point
        assert torch.allclose(c.decode(z + 0.02), c.decode(z), atol=1e-5)
    assert c.bitrate == pytest.approx(8 * 40 * math.log2(9))
    with pytest.raises(ValueError, match=r"\[b, f, 64\]"):
        c.encode(torch.randn(2, 30, 80))
    with pytest.raises(ValueError, match=r"\[b, f, 8\]"):
        c.decode(torch.randn(30, 8))


def test_codec_loss_falls_on_a_tiny_overfit(tiny_corpus, tmp_path):
    tr, _, s = _split(tmp_path, tiny_corpus)
    kw = {"latent_dim": 8, "dim": 32, "intermediate": 64, "layers": 1}
    torch.manual_seed(0)
    c0 = SQCodec(**{k: s[k] for k in MEL_DEFAULTS}, **kw)  # the initial weights of train_codec(seed=0)
    c, log = train_codec(tr[:2], s, steps=80, batch_size=4, segment_frames=32, lr=3e-3, warmup=5, log_every=0, **kw)
    mel = torch.stack([tr[0]["mel"][:32].float(), tr[1]["mel"][:32].float()])
    with torch.no_grad():
        before, after = ((m(mel)[0] - mel).abs().mean() for m in (c0.eval(), c))
    assert log["steps"] == 80 and after < 0.5 * before
    save_codec(c, tmp_path / "codec")
    d = load_codec(tmp_path / "codec")
    m = tr[0]["mel"].float()[None]
    with torch.no_grad():
        assert torch.equal(d.encode(m), c.encode(m))


def test_codec_tokenizer_round_trip_and_tts_trains_on_codec_tokens(tiny_corpus, tmp_path):
    from ditkit_audio.data import collate_tts
    from ditkit_audio.inference import synthesize
    from ditkit_audio.module import TTSModule
    from ditkit_audio.text import TextTokenizer
    from ditkit_core.lightning.pretrained import from_config, from_pretrained, save_pretrained
    from ditkit_core.nn import DiTConfig
    from ditkit_core.testing import check_module_fits_batch

    tr, _, _ = _split(tmp_path, tiny_corpus)
    save_codec(_codec(), tmp_path / "codec")
    tok = CodecTokenizer(codec=str(tmp_path / "codec"), latent_dim=8, gl_iters=2)
    assert tok.token_dim == 8 and tok.hop == 400 and tok.frame_rate == 40
    text = TextTokenizer()
    batch = collate_tts(
        [{"mel": it["mel"].float(), "ids": torch.tensor(text.encode(it["text"])), "text": it["text"]} for it in tr[:4]]
    )
    tokens = tok.encode(batch)
    x, mask = tokens.x, tokens.mask
    assert x.shape == (*batch["mel"].shape[:2], 8) and x[~mask].eq(0).all()
    assert ((x * 4 - (x * 4).round()).abs() < 1e-5).all() and x.abs().max() <= 1
    out = tok.decode(tokens)
    assert out["mel"].shape == batch["mel"].shape and out["mel"][~mask].eq(0).all()
    # encode from waveforms gives the tokens of their mels (up to a grid step where the float16 feature cache
    # rounded a value across a rounding boundary)
    wt = tok.encode({"wav": [it["wav"] for it in tr[:4]]})
    assert torch.equal(wt.mask, mask) and (wt.x - x).abs().max() <= 0.25 + 1e-6
    assert (wt.x - x).abs().gt(1e-4).float().mean() < 0.02
    assert tok.encode_wav(tr[0]["wav"]).shape == (tr[0]["mel"].shape[0], 8)
    assert tok.decode_wav(tok.encode_wav(tr[0]["wav"])).shape[0] == (tr[0]["mel"].shape[0] - 1) * 400
    with pytest.raises(ValueError, match="22050 Hz"):
        tok.encode_wav(tr[0]["wav"], sample_rate=22050)
    with pytest.raises(ValueError, match="mono"):
        tok.encode_wav(torch.stack([tr[0]["wav"], tr[0]["wav"]]).T.contiguous())
    # the codec is read at first use: a tokenizer of an untrained codec builds, and its first use names the command
    missing = CodecTokenizer(codec=str(tmp_path / "missing"), latent_dim=8)
    assert missing.token_dim == 8
    with pytest.raises(FileNotFoundError, match="train-codec"):
        missing.encode(batch)
    with pytest.raises(ValueError, match=r"latent_dim=16: the codec in .* has latent_dim=8"):
        CodecTokenizer(codec=str(tmp_path / "codec"), latent_dim=16).encode(batch)
    with pytest.raises(ValueError, match="hop=256"):  # stated mel settings are checked against the codec's
        CodecTokenizer(codec=str(tmp_path / "codec"), latent_dim=8, hop=256).encode(batch)
    from ditkit_audio.vocoder import Vocoder, save_vocoder

    save_vocoder(Vocoder(hop=256, dim=8, intermediate=8, layers=1), tmp_path / "voc256")
    with pytest.raises(ValueError, match="hop=400"):  # a vocoder trained on other mels is refused
        CodecTokenizer(codec=str(tmp_path / "codec"), vocoder=str(tmp_path / "voc256"), latent_dim=8).decode_wav(
            tok.encode_wav(tr[0]["wav"])
        )

    # apps/tts/configs/codec.yaml builds a TTS module on codec tokens; it trains on one batch and speaks
    cfg = yaml.safe_load((ROOT / "apps/tts/configs/codec.yaml").read_text())
    assert cfg["model"]["init_args"]["tokenizer"]["class_path"] == "ditkit_audio.codec.CodecTokenizer"
    init = dict(cfg["model"]["init_args"])
    init["tokenizer"]["init_args"].update(codec=str(tmp_path / "codec"), vocoder=None, latent_dim=8)
    init["model"] = DiTConfig(**{**init["model"], "in_dim": 8, "dim": 32, "depth": 1, "heads": 2})
    torch.manual_seed(0)
    m = from_config({"class_path": cfg["model"]["class_path"], "init_args": init})
    assert isinstance(m, TTSModule) and m.config.out_dim == 8 and m.config.cond_channels == 8 + init["text_dim"]
    assert not any(p.requires_grad for p in m.tokenizer.codec_model.parameters())
    assert not any(n.startswith("tokenizer") for n, _ in m.named_parameters())  # the codec is not trained here
    check_module_fits_batch(m, batch, steps=30, lr=3e-3, drop=0.2)
    res = synthesize(m.eval(), ["A red cat."], steps=2)
    assert res["mels"][0].shape[1] == 64 and res["wavs"][0].shape[0] == (res["mels"][0].shape[0] - 1) * 400
    save_pretrained(m, tmp_path / "pre")  # the tokenizer is stored by its codec directory
    again = from_pretrained(tmp_path / "pre")
    assert again.tokenizer.codec == str(tmp_path / "codec") and again.tokenizer.token_dim == 8
    assert torch.equal(synthesize(again.eval(), ["A red cat."], steps=2)["mels"][0], res["mels"][0])


def _app_config(name: str, tmp_path: Path, tts: Path, out: Path, model: dict, data: dict, steps: int) -> Path:
    """The app's ``name`` YAML, shrunk to a few steps of a tiny model on the tiny corpus."""
    cfg = yaml.safe_load((ROOT / "apps/tts/configs" / name).read_text())
    cfg["trainer"].update(max_steps=steps, default_root_dir=str(out), logger=False)  # the YAML's loggers: its folder
    cfg["model"]["init_args"].update(asr=str(tmp_path / "no_probe"), eval_n=2, log_every=0, **model)
    cfg["data"]["init_args"].update(tts_config=str(tts), val_size=2, **data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_train_vocoder_train_codec_and_eval_codec(tiny_corpus, tmp_path, capsys):
    """``make train-vocoder`` / ``train-codec`` / ``eval-codec`` run the app YAMLs through ``ditkit fit`` and write the
    model folders (core pretrained format) with their held-out reports."""
    import json

    from ditkit_audio.cli import main
    from ditkit_core.lightning import from_pretrained

    tts = tmp_path / "tts.yaml"
    tts.write_text(
        yaml.safe_dump(
            {
                "model": {"init_args": {"tokenizer": {"init_args": {}}}},
                "data": {"init_args": {"root": str(tiny_corpus)}},
            }
        )
    )
    small = {"dim": 16, "intermediate": 32, "layers": 1}
    voc = _app_config("vocoder.yaml", tmp_path, tts, tmp_path / "voc", small, {"batch_size": 2, "segment_frames": 8}, 2)
    main(["train-vocoder", "--config", str(voc)])
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["train"]["steps"] == 2 and rep["utterances"] == 2 and "griffinlim_mcd_db" in rep
    assert {"config.json", "model.safetensors", "report.json"} <= {p.name for p in (tmp_path / "voc").iterdir()}
    assert type(from_pretrained(tmp_path / "voc")).__name__ == "Vocoder"  # the core's format
    # --out moves the run and its CSV log; --tts-config picks the corpus, --asr the probe of its figures
    main(
        [
            "train-vocoder",
            "--config",
            str(voc),
            "--steps",
            "1",
            "--out",
            str(tmp_path / "voc2"),
            "--tts-config",
            str(tts),
        ]
    )
    rep2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep2["train"]["steps"] == 1 and (tmp_path / "voc2" / "logs" / "csv").is_dir()
    assert (tmp_path / "voc2" / "model.safetensors").exists()
    codec = _app_config(
        "sqcodec.yaml",
        tmp_path,
        tts,
        tmp_path / "codec",
        {**small, "latent_dim": 4, "vocoder": str(tmp_path / "voc")},
        {"batch_size": 2, "segment_frames": 16},
        3,
    )
    main(["train-codec", "--config", str(codec), "--steps", "2"])
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["train"]["steps"] == 2 and rep["vocoder"] == "neural" and rep["latent_on_grid"]
    assert rep["bitrate_bps"] == pytest.approx(4 * 40 * math.log2(9), abs=0.1)
    assert rep["entropy_bitrate_bps"] <= rep["bitrate_bps"] + 1e-6
    main(["eval-codec", "--config", str(codec), "--vocoder", "griffinlim"])
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["vocoder"] == "griffinlim32" and rep["train"]["steps"] == 2
    bad = yaml.safe_load(voc.read_text())
    bad["model"]["init_args"]["hop"] = 256  # mel settings other than the TTS config's are refused at fit start
    voc.write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match=r"model.init_args.hop=256 differs from the TTS config's hop=400"):
        main(["train-vocoder", "--config", str(voc)])


def _old_codec_loop(items, settings, steps, batch_size, frames, lr, warmup, seed, **kw):
    """The plain training loop the codec had before it trained through Lightning (kept to prove equality)."""
    from ditkit_audio.melfit import padded_segments

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = SQCodec(**{k: settings[k] for k in MEL_DEFAULTS}, **kw)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)

    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    for _ in range(steps):
        mel, mask = padded_segments(items, batch_size, frames, settings["n_mels"], g)
        rec, _ = model(mel, mask)
        err = ((rec - mel) / settings["mel_std"])[mask]
        loss = err.abs().mean() + err.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model


def test_codec_training_through_lightning_equals_the_plain_loop(tiny_corpus, tmp_path):
    """The Lightning module reproduces the earlier plain loop (same initial weights, crops, optimiser, schedule and
    clipping), so the codec figures measured with the loop still describe ``make train-codec``."""
    tr, _, s = _split(tmp_path, tiny_corpus)
    kw = {"latent_dim": 4, "dim": 16, "intermediate": 32, "layers": 1}
    args = {"steps": 6, "batch_size": 3, "lr": 3e-3, "warmup": 2, "seed": 1}
    new, log = train_codec(tr, s, segment_frames=20, log_every=0, **args, **kw)
    old = _old_codec_loop(tr, s, frames=20, **args, **kw)
    assert log["steps"] == 6
    for (name, a), b in zip(new.state_dict().items(), old.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
