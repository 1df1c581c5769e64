"""``python -m ditkit_audio.cli {data,sample,train-asr,eval}``: corpus synthesis, speaking text, the ASR probe and
the evaluation behind ``make eval-tts``."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch


def load_module(ckpt: str | Path) -> Any:
    """A trained :class:`~ditkit_audio.module.TTSModule` from a Lightning checkpoint or a ``save_pretrained`` dir."""
    from ditkit_audio.module import TTSModule
    from ditkit_core.errors import naming_file

    p = Path(ckpt)
    if p.is_dir():
        from ditkit_core.lightning.pretrained import from_pretrained

        with naming_file(p, "cannot load the pretrained TTS model"):
            return from_pretrained(p).eval()
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist (run `make train-tts` first)")
    with naming_file(p, "cannot load the TTS checkpoint"):
        return TTSModule.load_from_checkpoint(str(p), map_location="cpu").eval()


def heldout(module: Any, data: str, val_size: int = 64, seed: int = 0) -> tuple[Any, list[dict[str, Any]]]:
    """The validation split of the training DataModule (same settings and seed as ``configs/default.yaml``)."""
    from ditkit_audio.data import TTSDataModule

    tok = module.tokenizer
    dm = TTSDataModule(
        data,
        sample_rate=tok.sample_rate,
        n_fft=tok.n_fft,
        hop=tok.hop,
        n_mels=tok.n_mels,
        text_kind=tok.text_kind,
        val_size=val_size,
        seed=seed,
    )
    dm.setup()
    return dm, dm.heldout()


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option and value on failure)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return v


def _finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    v = _finite_float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return v


def _text(text: str) -> str:
    """argparse type: a text with something to say."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a non-empty text, got {text!r}")
    return text


def cmd_data(a: argparse.Namespace) -> None:
    from ditkit_audio.data import synthesize_corpus

    t = time.perf_counter()
    out = synthesize_corpus(a.out, a.n, seed=a.seed)
    print(f"wrote {a.n} utterances to {out} ({time.perf_counter() - t:.0f} s)")


def cmd_sample(a: argparse.Namespace) -> None:
    from ditkit_audio.audio import normalize_loudness, read_wav, write_wav
    from ditkit_audio.viz import plot_mels

    module = load_module(a.ckpt)
    tok = module.tokenizer
    prompt_mel = None
    if a.prompt:
        if not a.prompt_text:
            raise SystemExit("sample: --prompt needs --prompt-text (the transcript of the prompt)")
        prompt_mel = tok.features(normalize_loudness(read_wav(a.prompt, sample_rate=tok.sample_rate, stereo="mix")))
    t = time.perf_counter()
    res = synthesize(
        module,
        [a.text],
        steps=a.steps,
        cfg_scale=a.cfg,
        duration=a.duration,
        prompt_mel=prompt_mel,
        prompt_text=a.prompt_text or None,
        seed=a.seed,
        speed=a.speed,
        vocoder=a.vocoder or None,
    )
    dt = time.perf_counter() - t
    wav = res["wavs"][0]
    out = write_wav(a.out, wav, tok.sample_rate)
    plot_mels([res["mels"][0]], ["generated"], Path(a.out).with_suffix(".png"), title=a.text[:100])
    secs = wav.shape[0] / tok.sample_rate
    print(
        json.dumps({"wav": str(out), "pieces": res["pieces"][0], "seconds": round(secs, 2), "rtf": round(dt / secs, 3)})
    )


def synthesize(*args: Any, **kw: Any) -> dict[str, Any]:
    from ditkit_audio.inference import synthesize as _s

    return _s(*args, **kw)


def cmd_train_asr(a: argparse.Namespace) -> None:
    from ditkit_audio.asr import save_probe, train_probe
    from ditkit_audio.data import TTSDataModule
    from ditkit_audio.metrics import error_rate

    dm = TTSDataModule(a.data, val_size=a.val_size, seed=a.seed)
    dm.setup()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = train_probe(dm.train.items, dm.text, steps=a.steps, max_seconds=a.max_seconds, seed=a.seed)
    save_probe(model, a.out)
    refs = [it["text"] for it in dm.val.items]
    hyps = model.transcribe([it["mel"].float() for it in dm.val.items], dm.text)
    print(
        json.dumps(
            {
                "asr_probe": str(a.out),
                "heldout_cer": round(error_rate(refs, hyps), 4),
                "heldout_wer": round(error_rate(refs, hyps, "word"), 4),
                "example": [refs[0], hyps[0]],
            }
        )
    )


def cmd_eval(a: argparse.Namespace) -> None:
    print(
        json.dumps(
            evaluate(a.ckpt, a.data, a.asr, n=a.n, steps=a.steps, val_size=a.val_size, vocoder=a.vocoder or None)
        )
    )


def cmd_train_vocoder(a: argparse.Namespace) -> None:
    from ditkit_audio.vocoder import train_from_config

    print(json.dumps(train_from_config(a.config, steps=a.steps, out=a.out or None)))


def cmd_train_codec(a: argparse.Namespace) -> None:
    from ditkit_audio.codec import train_from_config

    print(json.dumps(train_from_config(a.config, steps=a.steps, out=a.out or None, vocoder=a.vocoder or None)))


def cmd_eval_codec(a: argparse.Namespace) -> None:
    from ditkit_audio.codec import evaluate_from_config

    print(json.dumps(evaluate_from_config(a.config, codec=a.codec or None, vocoder=a.vocoder or None)))


def evaluate(
    ckpt: str,
    data: str,
    asr: str | None,
    *,
    n: int = 32,
    steps: int = 16,
    val_size: int = 64,
    cfg_scale: float | None = None,
    vocoder: str | None = None,
) -> dict[str, Any]:
    """Intelligibility (probe CER/WER of generated vs ground-truth audio), MCD-DTW, duration errors, RTF.

    ``vocoder``: a trained neural vocoder directory used instead of Griffin-Lim for the generated speech (the
    ground truth is then also scored through it, ``cer_ground_truth_vocoder``).
    """
    from ditkit_audio.asr import load_probe
    from ditkit_audio.metrics import duration_error, error_rate, mcd_dtw

    module = load_module(ckpt)
    tok = module.tokenizer
    _, items = heldout(module, data, val_size)
    items = items[:n]
    texts = [it["text"] for it in items]
    gt = [it["mel"].float() for it in items]
    t = time.perf_counter()
    res = synthesize(module, texts, steps=steps, cfg_scale=cfg_scale, seed=0, max_chars=10_000, vocoder=vocoder)
    dt = time.perf_counter() - t
    gen_mels = res["mels"]
    gen_wavs = res["wavs"]
    secs = sum(w.shape[0] for w in gen_wavs) / tok.sample_rate
    ids, lens = tok.text.batch(texts)
    true_frames = torch.tensor([m.shape[0] for m in gt])
    out: dict[str, Any] = {
        "figure": "tts_eval",
        "utterances": len(items),
        "steps": steps,
        f"rtf_cpu_{'neural' if vocoder or getattr(tok, 'vocoder', None) else 'griffinlim'}": round(dt / secs, 4),
        "vocoder": vocoder or getattr(tok, "vocoder", None) or "griffinlim",
        "threads": torch.get_num_threads(),
    }
    out["duration_predictor"] = duration_error(module.predict_frames(ids, lens, "predictor"), true_frames)
    out["duration_heuristic"] = duration_error(module.predict_frames(ids, lens, "heuristic"), true_frames)
    out["mcd_dtw_db"] = round(sum(mcd_dtw(g, m) for g, m in zip(gt, gen_mels)) / len(gt), 3)
    from ditkit_audio.audio import normalize_loudness, read_wav
    from ditkit_audio.metrics import f0_rmse_dtw

    f0s = [
        f0_rmse_dtw(
            g, m, normalize_loudness(read_wav(it["path"], sample_rate=tok.sample_rate)), w, tok.sample_rate, tok.hop
        )
        for g, m, w, it in zip(gt, gen_mels, gen_wavs, items)
    ]
    vals = [f["f0_rmse_hz"] for f in f0s if f["f0_rmse_hz"] == f["f0_rmse_hz"]]
    out["f0_rmse_hz"] = round(sum(vals) / max(len(vals), 1), 2)
    out["voicing_error"] = round(sum(f["voicing_error"] for f in f0s) / len(f0s), 4)
    out["mcd_dtw_db_griffinlim_gt"] = round(sum(mcd_dtw(g, tok.features(tok.to_wav(g))) for g in gt) / len(gt), 3)
    if asr:
        probe = load_probe(asr)
        from ditkit_audio.text import TextTokenizer

        probe_text = TextTokenizer("chars")  # the probe's output vocabulary (the model may read phonemes)
        regen = [tok.features(w) for w in gen_wavs]
        gl_gt = [tok.features(tok.to_wav(g)) for g in gt]
        extra: tuple = ()
        if vocoder:
            from ditkit_audio.vocoder import resolve_vocoder

            voc_gt = resolve_vocoder(vocoder, tok).vocode_batch(gt)
            extra = (("ground_truth_vocoder", [tok.features(w) for w in voc_gt]),)
        for name, mels in (
            ("ground_truth", gt),
            ("ground_truth_griffinlim", gl_gt),
            ("generated_wav", regen),
            ("generated_mel", gen_mels),
            *extra,
        ):
            hyps = probe.transcribe(mels, probe_text)
            out[f"cer_{name}"] = round(error_rate(texts, hyps), 4)
            out[f"wer_{name}"] = round(error_rate(texts, hyps, "word"), 4)
            if name == "generated_wav":
                out["example"] = {"text": texts[0], "heard": hyps[0]}
        out["cer_ratio_generated_vs_gt"] = round(out["cer_generated_wav"] / max(out["cer_ground_truth"], 1e-3), 2)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ditkit-tts", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="synthesise the espeak-ng corpus (LJSpeech layout)")
    d.add_argument("--out", default="outputs/tts/data")
    d.add_argument("--n", type=_positive_int, default=2000)
    d.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sample", help="speak a text (optionally continuing a voice prompt)")
    s.add_argument("--ckpt", default="outputs/tts/checkpoints/last.ckpt")
    s.add_argument("--text", type=_text, required=True)
    s.add_argument("--prompt", default="")
    s.add_argument("--prompt-text", default="")
    s.add_argument("--steps", type=_positive_int, default=16)
    s.add_argument("--cfg", type=_finite_float, default=None)
    s.add_argument("--speed", type=_positive_float, default=1.0, help="> 1 speaks faster")
    s.add_argument("--duration", choices=["predictor", "heuristic"], default="predictor")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="outputs/tts/sample.wav")
    s.add_argument("--vocoder", default="", help="trained neural vocoder directory (default: Griffin-Lim)")
    r = sub.add_parser("train-asr", help="train the CTC probe recogniser on the ground-truth corpus")
    r.add_argument("--data", default="outputs/tts/data")
    r.add_argument("--out", default="outputs/tts/asr_probe")
    r.add_argument("--steps", type=_positive_int, default=2000)
    r.add_argument("--max-seconds", type=_positive_float, default=240.0)
    r.add_argument("--val-size", type=_positive_int, default=64)
    r.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("eval", help="CER/WER, MCD-DTW, duration error, RTF on held-out sentences")
    e.add_argument("--ckpt", default="outputs/tts/checkpoints/last.ckpt")
    e.add_argument("--data", default="outputs/tts/data")
    e.add_argument("--asr", default="outputs/tts/asr_probe")
    e.add_argument("--n", type=_positive_int, default=32)
    e.add_argument("--steps", type=_positive_int, default=16)
    e.add_argument("--val-size", type=_positive_int, default=64)
    e.add_argument("--vocoder", default="", help="trained neural vocoder directory (default: Griffin-Lim)")
    v = sub.add_parser("train-vocoder", help="train the Vocos-style neural vocoder (+ held-out figures vs Griffin-Lim)")
    v.add_argument("--config", default="apps/tts/configs/vocoder.yaml")
    v.add_argument("--steps", type=_positive_int, default=None, help="override train.steps of the config")
    v.add_argument("--out", default="")
    c = sub.add_parser("train-codec", help="train the SQ-codec (+ held-out reconstruction figures)")
    c.add_argument("--config", default="apps/tts/configs/sqcodec.yaml")
    c.add_argument("--steps", type=_positive_int, default=None, help="override train.steps of the config")
    c.add_argument("--out", default="")
    c.add_argument("--vocoder", default="", help="vocoder directory for the waveform figures (default: config's)")
    ec = sub.add_parser("eval-codec", help="held-out figures of a trained SQ-codec (through the vocoder if trained)")
    ec.add_argument("--config", default="apps/tts/configs/sqcodec.yaml")
    ec.add_argument("--codec", default="", help="codec directory (default: the config's out)")
    ec.add_argument("--vocoder", default="", help="vocoder directory (default: the config's)")
    a = p.parse_args(argv)
    {
        "data": cmd_data,
        "sample": cmd_sample,
        "train-asr": cmd_train_asr,
        "eval": cmd_eval,
        "train-vocoder": cmd_train_vocoder,
        "train-codec": cmd_train_codec,
        "eval-codec": cmd_eval_codec,
    }[a.cmd](a)


if __name__ == "__main__":
    main()
