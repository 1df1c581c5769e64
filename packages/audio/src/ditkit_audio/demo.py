"""``ditkit tts demo``: speech from the shipped weights on sentences drawn fresh from the corpus grammar (a seed the
training corpus did not use), scored by the shipped CTC probe next to espeak-ng's own rendering of the same text, plus
the shipped open-vocabulary model saying everyday sentences."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEMO_CORPUS_SEED = 7919  # the training corpus uses seed 0


def demo_command(module: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Samples + metrics for the ``ditkit demo`` report (see :mod:`ditkit_core.report` for the returned dict)."""
    from ditkit_audio.audio import write_wav
    from ditkit_audio.cli import evaluate, synthesize
    from ditkit_audio.data import synthesize_corpus
    from ditkit_audio.viz import plot_mels

    out = Path(args.out)
    probe = Path(args.pretrained or "") / "asr_probe"
    data = synthesize_corpus(out / "corpus", args.n + 8, seed=DEMO_CORPUS_SEED)  # the data module keeps a train part
    res = evaluate(
        args.config,
        str(data),
        str(probe) if (probe / "config.json").exists() else None,
        module=module,
        n=args.n,
        val_size=args.n,
        steps=args.steps,
    )
    texts = [line.split("|")[1] for line in (data / "metadata.csv").read_text().splitlines()[: args.examples]]
    gen = synthesize(module, texts, steps=args.steps, seed=args.seed)
    media = []
    for i, (text, wav) in enumerate(zip(texts, gen["wavs"])):
        media.append({"path": write_wav(out / f"sample_{i}.wav", wav, module.tokenizer.sample_rate), "caption": text})
    png = plot_mels(gen["mels"], [t[:60] for t in texts], out / "mels.png", title="generated log-mels")
    media.append({"path": png, "caption": "generated log-mel spectrograms"})
    media += open_vocabulary_samples(out, args)
    metrics = []
    if "cer_generated_wav" in res:
        gt = res["cer_ground_truth"]
        metrics.append(
            {
                "name": "probe CER",
                "model": res["cer_generated_wav"],
                "controls": {
                    "espeak-ng ground truth": gt,
                    "ground truth through Griffin-Lim": res.get("cer_ground_truth_griffinlim"),
                },
                "goal": "<= 2x ground truth",
                "met": res["cer_generated_wav"] <= 2 * max(gt, 1e-3),
            }
        )
    metrics += [
        {
            "name": "MCD-DTW (dB)",
            "model": res["mcd_dtw_db"],
            "controls": {"ground truth through Griffin-Lim": res["mcd_dtw_db_griffinlim_gt"]},
            "goal": "",
            "met": None,
        },
        {
            "name": "duration relative error",
            "model": res["duration_predictor"]["rel"],
            "controls": {"characters x mean rate (heuristic)": res["duration_heuristic"]["rel"]},
            "goal": "below the heuristic",
            "met": res["duration_predictor"]["rel"] < res["duration_heuristic"]["rel"],
        },
    ]
    rtf = next(v for k, v in res.items() if k.startswith("rtf"))
    return {
        "title": "Text-to-speech (espeak-ng corpus, Griffin-Lim)",
        "summary": f"{res['utterances']} sentences drawn from the corpus grammar with a seed the training corpus did "
        f"not use, spoken with {res['steps']} solver steps (RTF {rtf} "
        "on one CPU thread); the probe is a small CTC recogniser trained on the ground-truth corpus.",
        "media": media,
        "metrics": metrics,
        "notes": [f"heard by the probe: {res['example']}"] if "example" in res else [],
    }


def open_vocabulary_samples(out: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The shipped open-vocabulary model (``apps/tts/pretrained/open``) saying the first ``args.examples`` lines of
    ``apps/tts/sentences/everyday.txt``: wavs + captions for the report (nothing when either is missing)."""
    import torch

    from ditkit_audio.audio import write_wav
    from ditkit_audio.cli import APP, OPEN_CONFIG, synthesize
    from ditkit_core.lightning import from_pretrained

    folder, lines = Path(APP.shipped_for(OPEN_CONFIG) or ""), Path("apps/tts/sentences/everyday.txt")
    if not (folder / "config.json").exists() or not lines.exists():
        return []
    texts = [t for t in lines.read_text(encoding="utf-8").splitlines() if t.strip()][: args.examples]
    module = from_pretrained(folder).eval().to(torch.device(getattr(args, "device", "cpu")))
    gen = synthesize(module, texts, steps=args.steps, seed=args.seed)
    return [
        {
            "path": write_wav(out / f"open_{i}.wav", wav, module.tokenizer.sample_rate),
            "caption": f"open-vocabulary model ({folder}): {text}",
        }
        for i, (text, wav) in enumerate(zip(texts, gen["wavs"]))
    ]


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n", type=int, default=24, help="sentences scored")
    p.add_argument("--examples", type=int, default=3, help="sentences written as .wav for listening")


demo_command.add_arguments = _demo_arguments
