import math

import pytest
import torch
import yaml

from ditkit_audio.tokenizer import MelTokenizer
from ditkit_audio.vocoder import (
    ISTFTHead,
    MultiResolutionSTFTLoss,
    Vocoder,
    differentiable_logmel,
    load_vocoder,
    resolve_vocoder,
    save_vocoder,
    train_vocoder,
)
from ditkit_audio.wavtools import MEL_DEFAULTS, load_wav_split, mel_settings_from_config, random_segments, si_snr


def _vocoder(**kw):
    torch.manual_seed(0)
    return Vocoder(**{**MEL_DEFAULTS, **kw}, dim=32, intermediate=64, layers=2)


def tiny_config(tmp_path, corpus):
    """A TTS config pointing at the tiny corpus (the vocoder / codec read mel settings and the corpus from it)."""
    p = tmp_path / "tts.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "model": {"init_args": {"tokenizer": {"init_args": {"n_mels": 64}}}},
                "data": {"init_args": {"root": str(corpus)}},
            }
        )
    )
    return p


def test_istft_head_reproduces_a_wav_from_its_true_stft():
    head = ISTFTHead(8, n_fft=1024, hop=400)
    t = torch.arange(16000) / 16000
    wav = torch.stack([torch.sin(2 * math.pi * 220 * t) * 0.5, 0.1 * torch.randn(16000)])
    spec = head.stft(wav)  # [2, f, 513]
    f = spec.shape[1]
    assert f == 16000 // 400 + 1
    out = head.synthesize(spec.abs(), spec.angle())
    assert out.shape == (2, (f - 1) * 400)
    assert torch.allclose(out, wav[:, : out.shape[1]], atol=1e-5)
    with pytest.raises(ValueError, match="magnitude and phase"):
        head.synthesize(spec.abs()[..., :100], spec.angle()[..., :100])


def test_vocoder_shapes_padding_and_clear_errors():
    v = _vocoder().eval()
    mels = [torch.randn(12, 64) - 5, torch.randn(7, 64) - 5]
    assert v(mels[0][None]).shape == (1, 11 * 400)
    batched = v.vocode_batch(mels)  # padded batch == each on its own
    for m, w in zip(mels, batched):
        assert torch.allclose(w, v.vocode(m), atol=1e-5)
    with pytest.raises(ValueError, match="n_mels=64"):
        v(torch.randn(1, 10, 80))
    with pytest.raises(ValueError, match=">= 2 frames"):
        v(torch.randn(1, 1, 64))
    with pytest.raises(ValueError, match="hop=256"):
        v.check_compatible(MelTokenizer(hop=256))
    with pytest.raises(ValueError, match="sample_rate=22050"):
        resolve_vocoder(v, MelTokenizer(sample_rate=22050))
    assert resolve_vocoder("griffinlim") is None and resolve_vocoder(v, MelTokenizer()) is v


def test_mel_settings_come_from_the_tts_config(tmp_path):
    p = tmp_path / "tts.yaml"
    p.write_text(yaml.safe_dump({"model": {"init_args": {"tokenizer": {"init_args": {"hop": 256, "n_mels": 80}}}}}))
    s = mel_settings_from_config(p)
    assert (s["hop"], s["n_mels"], s["n_fft"], s["sample_rate"]) == (256, 80, 1024, 16000)
    p.write_text(yaml.safe_dump({"trainer": {}}))
    with pytest.raises(ValueError, match="tokenizer"):
        mel_settings_from_config(p)


def test_si_snr_closed_form():
    torch.manual_seed(0)
    x = torch.randn(8000)
    n = torch.randn(8000)
    n = n - (n @ (x - x.mean())) / (x - x.mean()).pow(2).sum() * (x - x.mean())  # orthogonal to x
    n = n - n.mean()
    expect = 10 * math.log10(float((x - x.mean()).pow(2).sum() / n.pow(2).sum()))
    assert abs(si_snr(3.0 * x + n * 3.0, x) - expect) < 1e-3  # scale invariant
    assert abs(si_snr(x + n + 7.0, x - 2.0) - expect) < 1e-3  # offsets removed (zero-mean convention)
    xc = x - x.mean()
    tenth = n * (0.1 * xc.norm() / n.norm())  # noise energy 1 % of the signal's: exactly 20 dB
    assert si_snr(xc + tenth, xc) == pytest.approx(20.0, abs=1e-4)
    assert si_snr(torch.cat([xc + tenth, torch.randn(50)]), xc) == pytest.approx(20.0, abs=1e-4)  # cut to the shorter
    assert si_snr(-0.5 * x, x) > 120.0  # a scaled copy: no noise left
    assert isinstance(si_snr(x, x), float)


def test_vocoder_loss_falls_on_a_tiny_overfit(tiny_corpus, tmp_path):
    tr, va, s = load_wav_split(tiny_config(tmp_path, tiny_corpus), val_size=2, cache=False)
    assert len(tr) == 10 and len(va) == 2 and tr[0]["wav"].shape[0] // 400 + 1 == tr[0]["mel"].shape[0]
    mel, wav = random_segments(tr, 4, 12, s["hop"], torch.Generator().manual_seed(0))
    assert mel.shape == (4, 12, 64) and wav.shape == (4, 11 * 400)
    # the crop is aligned: the mel of the crop's waveform matches the cached frames away from the edges
    inner = differentiable_logmel(s)(wav[0])[2:-2]
    assert (inner - mel[0, 2:-2]).abs().mean() < 0.05
    v = _vocoder()
    loss_fn, mel_fn = MultiResolutionSTFTLoss(), differentiable_logmel(s)
    opt = torch.optim.Adam(v.parameters(), 3e-3)

    def loss():
        y = v(mel)
        return loss_fn(y, wav) + (mel_fn(y) - mel).abs().mean()

    with torch.no_grad():
        before = float(loss())
    for _ in range(40):
        opt.zero_grad()
        loss().backward()
        opt.step()
    with torch.no_grad():
        assert float(loss()) < 0.7 * before


def test_train_save_load_and_synthesize_with_vocoder(tiny_corpus, tmp_path):
    from ditkit_audio.inference import synthesize
    from ditkit_audio.module import TTSModule
    from ditkit_core.nn import DiTConfig

    tr, _, s = load_wav_split(tiny_config(tmp_path, tiny_corpus), val_size=2, cache=False)
    v, log = train_vocoder(
        tr, s, steps=3, batch_size=2, segment_frames=8, log_every=0, dim=16, intermediate=32, layers=1
    )
    assert log["steps"] == 3
    save_vocoder(v, tmp_path / "voc")
    w = load_vocoder(tmp_path / "voc")
    m = torch.randn(9, 64) - 5
    assert torch.equal(w.vocode(m), v.vocode(m))
    with pytest.raises(FileNotFoundError, match="train-vocoder"):
        load_vocoder(tmp_path / "nothing")
    torch.manual_seed(0)
    tts = TTSModule(
        MelTokenizer(gl_iters=2),
        DiTConfig(in_dim=64, dim=32, depth=1, heads=2, rope_axes=1),
        text_dim=16,
        text_layers=1,
        duration_dim=16,
        duration_layers=1,
    ).eval()
    res = synthesize(tts, ["A red cat."], steps=2, vocoder=str(tmp_path / "voc"))
    assert res["wavs"][0].shape[0] == (res["mels"][0].shape[0] - 1) * 400
    assert torch.allclose(res["wavs"][0], w.vocode(res["mels"][0]), atol=1e-5)
    from ditkit_audio.audio import read_wav
    from ditkit_audio.cli import main
    from ditkit_core.lightning.pretrained import save_pretrained

    save_pretrained(tts, tmp_path / "pre")
    main(
        [
            "sample",
            "--ckpt",
            str(tmp_path / "pre"),
            "--text",
            "A red cat.",
            "--steps",
            "2",
            "--vocoder",
            str(tmp_path / "voc"),
            "--out",
            str(tmp_path / "x.wav"),
        ]
    )
    assert read_wav(tmp_path / "x.wav").shape == res["wavs"][0].shape


def test_truncated_waveform_cache_is_named_and_rebuilt(tiny_corpus, tmp_path, caplog):
    import logging
    import shutil

    root = shutil.copytree(tiny_corpus, tmp_path / "corpus", ignore=shutil.ignore_patterns(".ditkit_cache"))
    cfg = tiny_config(tmp_path, root)
    tr, va, _ = load_wav_split(cfg, val_size=2)
    (cache,) = (root / ".ditkit_cache").glob("wavs_*.pt")
    cache.write_bytes(cache.read_bytes()[:1000])  # a run killed while writing it
    with caplog.at_level(logging.WARNING, logger="ditkit"):
        tr2, va2, _ = load_wav_split(cfg, val_size=2)
    assert str(cache) in caplog.text and "rebuilding" in caplog.text
    assert all(torch.equal(a["wav"], b["wav"]) for a, b in zip(tr + va, tr2 + va2))
    assert torch.load(cache, weights_only=True)["payload"].keys() == {it["path"] for it in tr + va}
    assert sorted(p.name for p in cache.parent.iterdir() if p.name.startswith(".")) == []  # no temporary files


def test_model_directories_refuse_hostile_files_by_name(tmp_path):
    import json

    from ditkit_core.errors import DataError

    d = tmp_path / "voc"
    save_vocoder(_vocoder(), d)
    cfg = json.loads((d / "config.json").read_text())
    weights = (d / "model.safetensors").read_bytes()

    def load_with(config=None, data=None):
        (d / "config.json").write_text(json.dumps(config or cfg))
        (d / "model.safetensors").write_bytes(data if data is not None else weights)
        return load_vocoder(d)

    assert cfg["class_path"] == "ditkit_audio.vocoder.Vocoder"  # the core's pretrained format
    huge = {**cfg, "init_args": {**cfg["init_args"], "dim": 1 << 40}}  # would allocate terabytes
    with pytest.raises(DataError, match=r"config\.json: dim=1099511627776: outside"):
        load_with(huge)
    deep = {**cfg, "init_args": {**cfg["init_args"], "layers": 10**6}}
    with pytest.raises(DataError, match=r"config\.json: layers=1000000"):
        load_with(deep)
    wide = {**cfg, "init_args": {**cfg["init_args"], "dim": 48}}  # a config that does not describe these weights
    with pytest.raises(DataError, match=r"model\.safetensors: .*weights do not match config\.json"):
        load_with(wide)
    with pytest.raises(DataError, match=r"model\.safetensors: not a safetensors file"):
        load_with(data=weights[: len(weights) // 2])
    with pytest.raises(DataError, match=r"config\.json: settings do not build a Vocoder: .*mel_std=0\.0"):
        load_with({**cfg, "init_args": {**cfg["init_args"], "mel_std": 0.0}})
    with pytest.raises(DataError, match=r"config\.json: class_path='subprocess\.Popen': holds a 'subprocess\.Popen'"):
        load_with({**cfg, "class_path": "subprocess.Popen"})  # only the Vocoder class is ever built
    with pytest.raises(DataError, match=r"config\.json: init_args=None: no init_args"):
        load_with({"class_path": cfg["class_path"]})
    (d / "config.json").write_bytes(b'{"class_path": "ditkit_audio.vocoder.Vocoder",\n "init_args": "caf\xe9"}')
    with pytest.raises(DataError, match=r"config\.json line 2: not UTF-8"):
        load_vocoder(d)
    bad = _vocoder()
    with torch.no_grad():
        next(bad.parameters())[0] = float("nan")
    save_vocoder(bad, d)
    with pytest.raises(DataError, match=r"model\.safetensors: .*=.*NaN or infinite weights"):
        load_vocoder(d)
    assert sorted(p.name for p in d.iterdir()) == ["config.json", "model.safetensors"]  # atomic: no temporaries


def test_vocoder_folders_use_the_core_format_and_earlier_folders_still_load(tmp_path):
    import json

    from ditkit_core.lightning import from_pretrained

    v = _vocoder().eval()
    save_vocoder(v, tmp_path / "voc")
    m = torch.randn(9, 64) - 5
    assert torch.equal(from_pretrained(tmp_path / "voc").eval().vocode(m), v.vocode(m))  # the core reads it too
    cfg = json.loads((tmp_path / "voc" / "config.json").read_text())
    (tmp_path / "voc" / "config.json").write_text(json.dumps({"class": "Vocoder", "config": cfg["init_args"]}))
    assert torch.equal(load_vocoder(tmp_path / "voc").vocode(m), v.vocode(m))  # the layout of earlier versions


def test_vocoder_training_through_lightning_equals_the_plain_loop(tiny_corpus, tmp_path):
    """The Lightning module reproduces the earlier plain loop (initial weights, crops, AdamW betas 0.8 / 0.99,
    warm-up + cosine to 5 %, clipping), so the vocoder figures measured with the loop still describe
    ``make train-vocoder``."""
    tr, _, s = load_wav_split(tiny_config(tmp_path, tiny_corpus), val_size=2, cache=False)
    kw = {"dim": 16, "intermediate": 32, "layers": 1}
    steps, warmup, seed = 5, 2, 1
    new, log = train_vocoder(
        tr,
        s,
        steps=steps,
        batch_size=2,
        segment_frames=8,
        lr=2e-3,
        warmup=warmup,
        mel_weight=5.0,
        seed=seed,
        log_every=0,
        **kw,
    )
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    old = Vocoder(**{k: s[k] for k in MEL_DEFAULTS}, **kw)
    stft_loss, mel_fn = MultiResolutionSTFTLoss(), differentiable_logmel(s)
    opt = torch.optim.AdamW(old.parameters(), lr=2e-3, betas=(0.8, 0.99), weight_decay=0.01)

    def f(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, steps - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    for _ in range(steps):
        mel, wav = random_segments(tr, 2, 8, s["hop"], g)
        y = old(mel)
        loss = stft_loss(y, wav) + 5.0 * (mel_fn(y) - mel).abs().mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(old.parameters(), 1.0)
        opt.step()
        sched.step()
    assert log["steps"] == steps and set(log) >= {"stft_loss_first", "stft_loss_last", "mel_l1_first", "mel_l1_last"}
    for (name, a), b in zip(new.state_dict().items(), old.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
