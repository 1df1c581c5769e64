"""``python -m ditkit_audio.cli {data,sample,train-asr,eval,...}``: corpus synthesis, speaking text, the ASR probe, the
evaluation behind ``make eval-tts`` and the vocoder / codec commands.

Trained runs are loaded with :func:`ditkit_core.lightning.load_run` (weights-only checkpoints, allow-listed classes,
earlier layouts migrated); every default path comes from the app config: the checkpoint is
``<trainer.default_root_dir>/checkpoints/last.ckpt``, the corpus is ``data.init_args.root`` and the ASR probe sits
next to the corpus (``<corpus>/../asr_probe``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ditkit_audio.speak import (
    add_sample_arguments,
    finite_float,
    positive_float,
    positive_int,
    read_texts,
    sample_command,
)
from ditkit_core.app import App

DEFAULT_CONFIG = "apps/tts/configs/default.yaml"
OPEN_CONFIG = "apps/tts/configs/open.yaml"
"""The open-vocabulary recipe; its shipped weights are ``apps/tts/pretrained/open``."""


def is_default(config: str | Path) -> bool:
    """Whether ``config`` is the app's default YAML, the one the shipped weights and probe were trained with."""
    return Path(config).resolve() == Path(DEFAULT_CONFIG).resolve()


def load(config: str | Path, ckpt: str | Path | None = None) -> Any:
    """A trained :class:`~ditkit_audio.module.TTSModule` (eval mode) through :func:`ditkit_core.lightning.load_run`:
    ``ckpt`` a Lightning checkpoint or a ``save_pretrained`` folder; None: the config's default checkpoint."""
    from ditkit_core.lightning import default_checkpoint, load_run

    path = Path(ckpt) if ckpt else default_checkpoint(config)
    shipped = Path(APP.shipped_for(config) or "")
    if not ckpt and not path.exists() and (shipped / "config.json").exists():
        print(f"[tts] no local run at {path}: using the shipped weights {shipped}", file=sys.stderr)
        path = shipped
    if path.is_dir():
        return load_run(config, pretrained=path)
    return load_run(config, ckpt=path)


def corpus_root(config: str | Path) -> Path:
    """The corpus folder of an app config (``data.init_args.root``)."""
    from ditkit_core.errors import DataError
    from ditkit_core.lightning import read_config

    data = read_config(config).get("data") or {}
    root = (data.get("init_args") or {}).get("root") if isinstance(data, dict) else None
    if not isinstance(root, str) or not root:
        raise DataError("no corpus folder (data.init_args.root)", path=config, field="data.init_args.root")
    return Path(root)


def probe_dir(config: str | Path) -> Path:
    """The CTC probe of an app config's corpus: ``<corpus>/../asr_probe`` (``make train-asr-probe``)."""
    return corpus_root(config).parent / "asr_probe"


def heldout(
    module: Any, data: str, val_size: int = 64, seed: int = 0, whole: bool = False, max_seconds: float = 6.0
) -> tuple[Any, list[dict[str, Any]]]:
    """The validation split of the training DataModule (same settings and seed as ``configs/default.yaml``);
    ``whole``: every utterance of ``data`` (a test folder nobody trained on), in the DataModule's seeded order;
    utterances longer than ``max_seconds`` are left out."""
    from ditkit_audio.data import TTSDataModule

    tok = module.tokenizer
    dm = TTSDataModule(
        data,
        sample_rate=tok.sample_rate,
        n_fft=tok.n_fft,
        hop=tok.hop,
        n_mels=tok.n_mels,
        text_kind=tok.text_kind,
        val_size=1 if whole else val_size,
        max_seconds=max_seconds,
        seed=seed,
    )
    dm.setup()
    return dm, (dm.val.items + dm.train.items) if whole else dm.heldout()


def cmd_data(a: argparse.Namespace) -> None:
    from ditkit_audio.data import synthesize_corpus

    t = time.perf_counter()
    out = synthesize_corpus(a.out or corpus_root(a.config), a.n, seed=a.seed)
    print(f"wrote {a.n} utterances to {out} ({time.perf_counter() - t:.0f} s)")


def cmd_sample(a: argparse.Namespace) -> None:
    """``sample``: the texts are read and checked before the model loads; ``--out`` is the wav (``--text``, default
    ``<default_root_dir>/sample.wav``) or the folder (``--text-file``, default ``<default_root_dir>/sample``)."""
    texts = read_texts(a)  # nothing to speak fails before the model loads
    if a.dry_run:
        sample_command(None, a, texts=texts)
        return
    from ditkit_core.lightning import run_dir

    target = Path(a.out) if a.out else run_dir(a.config) / ("sample" if a.text_file else "sample.wav")
    sample_command(load(a.config, a.ckpt or None), a, target, texts=texts)


def synthesize(*args: Any, **kw: Any) -> dict[str, Any]:
    from ditkit_audio.inference import synthesize as _s

    return _s(*args, **kw)


def corpus_items(root: str | Path, max_seconds: float = 20.0) -> list[dict[str, Any]]:
    """Every usable utterance of a corpus folder as ``{"mel", "text"}`` (the DataModule's default features and
    loudness, its feature cache; utterances up to ``max_seconds``)."""
    from ditkit_audio.audio import LogMel
    from ditkit_audio.data import load_corpus
    from ditkit_audio.text import TextTokenizer

    items, report = load_corpus(
        root,
        LogMel(16000, 1024, 400, 64),
        TextTokenizer("chars"),
        min_seconds=0.3,
        max_seconds=max_seconds,
        loudness_db=-23.0,
    )
    if report.skips:
        report.log()
    return items


def cmd_train_asr(a: argparse.Namespace) -> None:
    """``train-asr``: the CTC probe trained for exactly ``--steps`` steps; held-out figures of its own corpus and,
    with ``--test DIR``, its ground-truth CER / WER on every utterance of that corpus folder."""
    import torch

    from ditkit_audio.asr import save_probe, score_probe, train_probe
    from ditkit_audio.data import TTSDataModule

    data = a.data or corpus_root(a.config)
    dm = TTSDataModule(str(data), val_size=a.val_size, seed=a.seed, max_seconds=a.max_audio_seconds)
    dm.setup()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    monitor = corpus_items(a.monitor, a.max_audio_seconds)[:100] if a.monitor else []

    def report(step: int, model: Any) -> None:
        res = score_probe(model, monitor, dm.text)
        print(json.dumps({"step": step, "monitor": a.monitor, "cer": res["cer"], "wer": res["wer"]}), flush=True)

    t = time.perf_counter()
    model = train_probe(
        dm.train.items,
        dm.text,
        steps=a.steps,
        batch_size=a.batch_size,
        lr=a.lr,
        seed=a.seed,
        bucket=a.bucket,
        dim=a.dim,
        depth=a.depth,
        heads=a.heads,
        stride=a.stride,
        upsample=a.upsample,
        callback=report if monitor else None,
        callback_every=a.monitor_every,
        decoder=_decoder(a),
    )
    out = a.out or Path(data).parent / "asr_probe"
    save_probe(model, out)
    res: dict[str, Any] = {"asr_probe": str(out), "steps": a.steps, "train_seconds": round(time.perf_counter() - t)}
    val = score_probe(model, dm.val.items, dm.text)
    res.update(heldout_cer=val["cer"], heldout_wer=val["wer"], example=val["example"])
    if a.test:
        res["test"] = {"data": a.test, **score_probe(model, corpus_items(a.test, a.max_audio_seconds), dm.text)}
    print(json.dumps(res))


def _decoder(a: argparse.Namespace) -> dict[str, Any] | None:
    """The probe's decoding from ``--lexicon N --beam --lm-weight --word-score`` (``N`` = 0: greedy)."""
    if not a.lexicon:
        return None
    from ditkit_audio.ctcdecode import BeamConfig

    return BeamConfig(a.lexicon, a.beam, a.lm_weight, a.word_score).to_dict()


def cmd_eval_probe(a: argparse.Namespace) -> None:
    """``eval-probe``: a probe's CER / WER on the ground-truth audio of every utterance of a corpus folder."""
    from ditkit_audio.asr import load_probe, score_probe
    from ditkit_audio.text import TextTokenizer

    items = corpus_items(a.data, a.max_audio_seconds)[: a.n] if a.n else corpus_items(a.data, a.max_audio_seconds)
    res = score_probe(load_probe(a.asr), items, TextTokenizer("chars"))
    print(json.dumps({"figure": "probe_ground_truth", "asr_probe": a.asr, "data": a.data, **res}))


def cmd_data_open(a: argparse.Namespace) -> None:
    """``data-open``: the open-vocabulary corpus (one folder per split) and its ``stats.json``."""
    from ditkit_audio.opencorpus import synthesize_open_corpus

    t = time.perf_counter()
    sizes = {"train": a.train, "val": a.val, "test": a.test}
    stats = synthesize_open_corpus(a.out, sizes, seed=a.seed, heldout_share=a.heldout_share, workers=a.workers)
    print(json.dumps({"corpus": a.out, "seconds": round(time.perf_counter() - t), **stats}))


def cmd_data_probe(a: argparse.Namespace) -> None:
    """``data-probe``: the recogniser's own open-vocabulary corpus (training forms, another seed)."""
    from ditkit_audio.opencorpus import corpus_hours, synthesize_probe_corpus

    t = time.perf_counter()
    out = synthesize_probe_corpus(a.out, a.n, seed=a.seed, free_share=a.free_share, workers=a.workers)
    print(
        json.dumps(
            {
                "corpus": str(out),
                "sentences": a.n,
                "hours": round(corpus_hours(out), 3),
                "seconds": round(time.perf_counter() - t),
            }
        )
    )


def cmd_data_text(a: argparse.Namespace) -> None:
    """``data-text``: espeak-ng's reading of every line of a text file as a corpus folder (a test set of one's own)."""
    from ditkit_audio.opencorpus import OpenSentence, corpus_hours, speak_sentences
    from ditkit_audio.speak import read_text_file

    sentences = [OpenSentence(t.text, t.spoken, -1, "text") for t in read_text_file(a.text_file, who="data-text")]
    if (Path(a.out) / "wavs").is_dir() and any((Path(a.out) / "wavs").iterdir()):
        raise SystemExit(f"data-text: {a.out} already holds wavs (of other lines?); choose a new or empty folder")
    out = speak_sentences(a.out, sentences, seed=a.seed, prefix="TX")
    print(json.dumps({"corpus": str(out), "sentences": len(sentences), "hours": round(corpus_hours(out), 4)}))


def cmd_eval(a: argparse.Namespace) -> None:
    print(json.dumps(_evaluate_args(a, ckpt=a.ckpt or None)))


def _evaluate_args(a: argparse.Namespace, **kw: Any) -> dict[str, Any]:
    """:func:`evaluate` with the flags of ``eval`` (corpus and probe default to the config's); ``kw``: the run."""
    data = a.data or str(corpus_root(a.config))
    asr = a.asr if a.asr is not None else str(probe_dir(a.config))
    shipped = Path(APP.pretrained or "") / "asr_probe"
    if (
        a.asr is None
        and is_default(a.config)
        and not (Path(asr) / "config.json").exists()
        and (shipped / "config.json").exists()
    ):
        print(f"[tts] no probe at {asr}: using the shipped probe {shipped}", file=sys.stderr)
        asr = str(shipped)
    return evaluate(
        a.config,
        data,
        asr or None,
        n=a.n,
        steps=a.steps,
        val_size=a.val_size,
        vocoder=a.vocoder or None,
        whole=a.whole,
        voice_prompts=a.voice_prompts,
        cfg_scale=a.cfg,
        max_seconds=a.max_seconds,
        **kw,
    )


def eval_command(module: Any, a: argparse.Namespace) -> None:
    """``ditkit tts eval``: :func:`evaluate` of a loaded module, printed and written to ``<a.out>/eval.json``."""
    res = _evaluate_args(a, module=module)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res))


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``eval`` beyond the common ones (config, checkpoint, steps)."""
    p.add_argument("--data", default="", help="corpus folder (default: the config's)")
    p.add_argument("--asr", default=None, help="probe folder (default: <corpus>/../asr_probe; '' skips CER / WER)")
    p.add_argument("--n", type=positive_int, default=32, help="held-out utterances")
    p.add_argument("--val-size", type=positive_int, default=64)
    p.add_argument("--whole", action="store_true", help="--data is a test folder: score its utterances, not a split")
    p.add_argument(
        "--voice-prompts", action="store_true", help="prompt each utterance with its reference's espeak-ng voice"
    )
    p.add_argument("--vocoder", default="", help="trained neural vocoder directory (default: Griffin-Lim)")
    p.add_argument("--cfg", type=finite_float, default=None, help="guidance scale (default: the model's)")
    p.add_argument(
        "--max-seconds", type=positive_float, default=6.0, help="leave out utterances longer than this (seconds)"
    )


eval_command.add_arguments = _eval_arguments


def _fit_overrides(a: argparse.Namespace) -> list[str]:
    """``ditkit fit`` overrides of ``--steps`` / ``--out`` (the run folder, where its CSV log then goes too) and,
    for the vocoder, ``--tts-config`` / ``--asr`` (the corpus it trains on and the probe of its figures)."""
    out = []
    if a.steps is not None:
        out += ["--trainer.max_steps", str(a.steps)]
    if a.out:
        csv_log = {"save_dir": a.out, "name": "logs", "version": "csv"}
        logger = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": csv_log}
        out += ["--trainer.default_root_dir", a.out, "--trainer.logger", json.dumps(logger)]
    if getattr(a, "tts_config", ""):
        out += ["--data.init_args.tts_config", a.tts_config]
    if getattr(a, "asr", ""):
        out += ["--model.init_args.asr", a.asr]
    return out


def cmd_train_vocoder(a: argparse.Namespace) -> None:
    from ditkit_audio.melfit import fit_config

    print(json.dumps(fit_config(a.config, *_fit_overrides(a))))


def cmd_train_codec(a: argparse.Namespace) -> None:
    from ditkit_audio.melfit import fit_config

    extra = ["--model.init_args.vocoder", a.vocoder] if a.vocoder else []
    print(json.dumps(fit_config(a.config, *_fit_overrides(a), *extra)))


def cmd_eval_codec(a: argparse.Namespace) -> None:
    from ditkit_audio.codec import evaluate_from_config

    print(json.dumps(evaluate_from_config(a.config, codec=a.codec or None, vocoder=a.vocoder or None)))


def synthesize_by_length(module: Any, texts: list[str], batch: int = 32, **kw: Any) -> dict[str, list[Any]]:
    """:func:`~ditkit_audio.inference.synthesize` in batches of ``batch`` texts of similar length (little padding),
    results in the texts' order: ``{"mels": [...], "wavs": [...]}`` (``wavs`` empty when ``vocode=False``)."""
    from ditkit_audio.inference import synthesize_groups

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return synthesize_groups(module, texts, ((order[k : k + batch], kw) for k in range(0, len(order), batch)))


def evaluate(
    config: str,
    data: str,
    asr: str | None,
    *,
    ckpt: str | None = None,
    module: Any | None = None,
    n: int = 32,
    steps: int | None = 16,
    val_size: int = 64,
    cfg_scale: float | None = None,
    vocoder: str | None = None,
    whole: bool = False,
    voice_prompts: bool = False,
    max_seconds: float = 6.0,
) -> dict[str, Any]:
    """Intelligibility (probe CER/WER of generated vs ground-truth audio), MCD-DTW, duration errors, RTF of the run
    of ``config`` (``ckpt``: its checkpoint or a ``save_pretrained`` folder; default the config's last checkpoint).

    ``vocoder``: a trained neural vocoder directory used instead of Griffin-Lim for the generated speech (the
    ground truth is then also scored through it, ``cer_ground_truth_vocoder``). ``module``: an already loaded
    module (then ``ckpt`` is not read); ``steps`` None: the module's ``sampler.steps``; ``whole``: the first ``n``
    utterances of the whole ``data`` folder (a test split) instead of the validation items of its DataModule;
    ``voice_prompts``: every utterance is prompted by espeak-ng's reading of a fixed sentence in its reference's voice
    (``speakers.csv``), so ``speaker_similarity`` measures how well the model follows a voice.
    """
    import torch

    from ditkit_audio.asr import load_probe
    from ditkit_audio.metrics import duration_error, error_rate, mcd_dtw

    module = load(config, ckpt) if module is None else module
    steps = module.sampler.steps if steps is None else steps
    tok = module.tokenizer
    _, items = heldout(module, data, val_size, whole=whole, max_seconds=max_seconds)
    items = items[:n]
    texts = [it["text"] for it in items]
    gt = [it["mel"].float() for it in items]
    t = time.perf_counter()
    voices = _voice_labels(data, items)
    kw = dict(steps=steps, cfg_scale=cfg_scale, seed=0, max_chars=10_000, vocoder=vocoder)
    if voice_prompts:
        from ditkit_audio.speak import synthesize_in_voices

        if voices is None:
            raise SystemExit(f"eval --voice-prompts: {data} has no speakers.csv naming every utterance's voice")
        res = synthesize_in_voices(module, texts, voices, config, **kw)
    else:
        res = synthesize_by_length(module, texts, **kw)
    dt = time.perf_counter() - t
    gen_mels = res["mels"]
    gen_wavs = res["wavs"]
    secs = sum(w.shape[0] for w in gen_wavs) / tok.sample_rate
    ids, lens = tok.text.batch(texts)
    true_frames = torch.tensor([m.shape[0] for m in gt])
    out: dict[str, Any] = {
        "figure": "tts_eval",
        "data": data if whole else f"{data} (validation items)",
        "voice_prompts": voice_prompts,
        "utterances": len(items),
        "steps": steps,
        "cfg_scale": module.sampler.cfg_scale if cfg_scale is None else cfg_scale,
        "max_seconds": max_seconds,
        f"rtf_cpu_{'neural' if vocoder or getattr(tok, 'vocoder', None) else 'griffinlim'}": round(dt / secs, 4),
        "vocoder": vocoder or getattr(tok, "vocoder", None) or "griffinlim",
        "threads": torch.get_num_threads(),
    }
    out["duration_predictor"] = duration_error(module.predict_frames(ids, lens, "predictor"), true_frames)
    out["duration_heuristic"] = duration_error(module.predict_frames(ids, lens, "heuristic"), true_frames)
    # the lengths synthesis used (the predictor's, or espeak-ng's timing for stretch_weights="espeak")
    out["duration_generated"] = duration_error(torch.tensor([m.shape[0] for m in gen_mels]), true_frames)
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
    if len(items) >= 2:
        from ditkit_audio.metrics import speaker_similarity

        out["speaker_similarity"] = speaker_similarity(gt, gen_mels, voices)
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


def _voice_labels(data: str, items: list[dict[str, Any]]) -> list[str] | None:
    """Each item's voice: ``<data>/speakers.csv`` (``id|voice|rate|pitch``, the espeak-ng corpora), else the loader's
    ``speaker`` (VCTK / LibriTTS folders); None when any is unknown."""
    try:
        rows = (Path(data) / "speakers.csv").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        rows = []
    voice = {r.split("|")[0]: r.split("|")[1] for r in rows if r.count("|") >= 1}
    labels = [voice.get(Path(it.get("path", "")).stem) or it.get("speaker") or None for it in items]
    return None if None in labels else labels  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ditkit-tts", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    cfg_help = "the TTS app config (default paths come from it)"
    ckpt_help = "a checkpoint or a save_pretrained folder (default: <default_root_dir>/checkpoints/last.ckpt)"
    d = sub.add_parser("data", help="synthesise the espeak-ng corpus (LJSpeech layout)")
    d.add_argument("--config", default=DEFAULT_CONFIG, help=cfg_help)
    d.add_argument("--out", default="", help="corpus folder (default: the config's data.init_args.root)")
    d.add_argument("--n", type=positive_int, default=2000)
    d.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("sample", help="speak a text or a file of texts (in a corpus voice or continuing a prompt)")
    s.add_argument("--config", default=DEFAULT_CONFIG, help=cfg_help)
    s.add_argument("--ckpt", default="", help=ckpt_help)
    s.add_argument("--steps", type=positive_int, default=16)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--out",
        default="",
        help="wav path (default: <default_root_dir>/sample.wav); with --text-file a folder (default: .../sample)",
    )
    add_sample_arguments(s)
    r = sub.add_parser("train-asr", help="train the CTC probe recogniser on a ground-truth corpus (fixed steps)")
    r.add_argument("--config", default=DEFAULT_CONFIG, help=cfg_help)
    r.add_argument("--data", default="", help="corpus folder (default: the config's)")
    r.add_argument("--out", default="", help="probe folder (default: <corpus>/../asr_probe)")
    r.add_argument(
        "--steps", type=positive_int, default=2000, help="optimiser steps (the run stops after exactly these)"
    )
    r.add_argument("--batch-size", type=positive_int, default=16)
    r.add_argument("--lr", type=positive_float, default=1e-3)
    r.add_argument("--bucket", type=int, default=32, help="length-bucketed batches (chunks of N batches); 0: random")
    r.add_argument("--dim", type=positive_int, default=144)
    r.add_argument("--depth", type=positive_int, default=3)
    r.add_argument("--heads", type=positive_int, default=4)
    r.add_argument("--stride", type=int, choices=(1, 2), default=2, help="time stride of the input convolution")
    r.add_argument("--upsample", type=int, choices=(1, 2, 3, 4), default=1, help="CTC outputs per encoder frame")
    r.add_argument("--max-audio-seconds", type=positive_float, default=6.0, help="longest utterance used")
    r.add_argument("--val-size", type=positive_int, default=64)
    r.add_argument("--test", default="", help="a corpus folder scored on its ground truth at the end (every utterance)")
    r.add_argument("--monitor", default="", help="a validation corpus folder scored (100 utterances) during training")
    r.add_argument("--monitor-every", type=positive_int, default=1000, help="steps between --monitor scores")
    r.add_argument(
        "--lexicon",
        type=int,
        default=0,
        help="decode by beam search over the N most frequent English words with their unigram prior, stored in the "
        "probe (0: greedy CTC)",
    )
    r.add_argument("--beam", type=positive_int, default=200, help="beam size (with --lexicon)")
    r.add_argument("--lm-weight", type=float, default=2.0, help="weight of the word prior (with --lexicon)")
    r.add_argument("--word-score", type=float, default=1.0, help="score per word (with --lexicon)")
    r.add_argument("--seed", type=int, default=0)
    ep = sub.add_parser("eval-probe", help="CER / WER of the CTC probe on the ground truth of a corpus folder")
    ep.add_argument("--asr", required=True, help="probe folder")
    ep.add_argument("--data", required=True, help="corpus folder (LJSpeech layout)")
    ep.add_argument("--n", type=int, default=0, help="first N utterances (0: all)")
    ep.add_argument("--max-audio-seconds", type=positive_float, default=20.0)
    do = sub.add_parser("data-open", help="synthesise the open-vocabulary corpus (train / val / test folders)")
    do.add_argument("--out", default="outputs/tts/open")
    do.add_argument("--train", type=positive_int, default=4000)
    do.add_argument("--val", type=positive_int, default=200)
    do.add_argument("--test", type=positive_int, default=300)
    do.add_argument("--heldout-share", type=float, default=0.2, help="share of words only val / test say")
    do.add_argument("--seed", type=int, default=0)
    do.add_argument("--workers", type=positive_int, default=1)
    dx = sub.add_parser("data-text", help="espeak-ng ground truth of the lines of a text file (a test folder)")
    dx.add_argument("--text-file", required=True, help="UTF-8 text, one sentence per line (written form)")
    dx.add_argument("--out", required=True, help="corpus folder (LJSpeech layout)")
    dx.add_argument("--seed", type=int, default=0, help="draws each line's voice, rate and pitch")
    dp = sub.add_parser("data-probe", help="synthesise the probe recogniser's own open-vocabulary corpus")
    dp.add_argument("--out", default="outputs/tts/probe_data")
    dp.add_argument("--n", type=positive_int, default=12000)
    dp.add_argument("--seed", type=int, default=1)
    dp.add_argument("--free-share", type=float, default=0.0, help="share of grammar-free word strings")
    dp.add_argument("--workers", type=positive_int, default=1)
    e = sub.add_parser("eval", help="CER/WER, MCD-DTW, duration error, RTF on held-out sentences")
    e.add_argument("--config", default=DEFAULT_CONFIG, help=cfg_help)
    e.add_argument("--ckpt", default="", help=ckpt_help)
    e.add_argument("--steps", type=positive_int, default=16)
    _eval_arguments(e)
    v = sub.add_parser("train-vocoder", help="train the Vocos-style neural vocoder (+ held-out figures vs Griffin-Lim)")
    v.add_argument("--config", default="apps/tts/configs/vocoder.yaml")
    v.add_argument("--steps", type=positive_int, default=None, help="override trainer.max_steps of the config")
    v.add_argument("--out", default="", help="output folder (default: the config's trainer.default_root_dir)")
    v.add_argument("--tts-config", default="", help="TTS config whose corpus it trains on (default: the config's)")
    v.add_argument("--asr", default="", help="probe folder for its CER figures (default: the config's)")
    c = sub.add_parser("train-codec", help="train the SQ-codec (+ held-out reconstruction figures)")
    c.add_argument("--config", default="apps/tts/configs/sqcodec.yaml")
    c.add_argument("--steps", type=positive_int, default=None, help="override trainer.max_steps of the config")
    c.add_argument("--out", default="", help="output folder (default: the config's trainer.default_root_dir)")
    c.add_argument("--vocoder", default="", help="vocoder directory for the waveform figures (default: config's)")
    ec = sub.add_parser("eval-codec", help="held-out figures of a trained SQ-codec (through the vocoder if trained)")
    ec.add_argument("--config", default="apps/tts/configs/sqcodec.yaml")
    ec.add_argument("--codec", default="", help="codec directory (default: the config's trainer.default_root_dir)")
    ec.add_argument("--vocoder", default="", help="vocoder directory (default: the config's)")
    a = p.parse_args(argv)
    {
        "data": cmd_data,
        "sample": cmd_sample,
        "train-asr": cmd_train_asr,
        "eval-probe": cmd_eval_probe,
        "data-open": cmd_data_open,
        "data-probe": cmd_data_probe,
        "data-text": cmd_data_text,
        "eval": cmd_eval,
        "train-vocoder": cmd_train_vocoder,
        "train-codec": cmd_train_codec,
        "eval-codec": cmd_eval_codec,
    }[a.cmd](a)


APP = App(
    name="tts",
    help="text-to-speech: F5-style mel infilling on an espeak-ng corpus (ditkit_audio)",
    config=DEFAULT_CONFIG,
    pretrained="apps/tts/pretrained",
    shipped={OPEN_CONFIG: "apps/tts/pretrained/open"},
    commands={
        "sample": "ditkit_audio.speak:sample_command",
        "eval": "ditkit_audio.cli:eval_command",
        "demo": "ditkit_audio.demo:demo_command",
    },
    bench="benchmarks/tts.py",
)
"""``ditkit tts fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``)."""


if __name__ == "__main__":
    main()
