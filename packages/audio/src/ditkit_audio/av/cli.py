"""Command line of the audio-video app: ``python -m ditkit_audio.av.cli {data,sample,eval,encoder,params}``.

* ``data``: synthesise the procedural splits (``make data-av``) and export some test clips as .mp4 with sound.
* ``sample``: run one task of a trained run on test clips (or on a real .mp4) -> .mp4 with sound + contact sheet.
* ``encoder``: train the feature network used for Frechet distances (on the real training clips).
* ``eval``: every figure of ``make eval-av`` as JSON lines (see :mod:`ditkit_audio.av.evaluate`).
* ``params``: parameter counts of app configs (full vs AV-DiT trainable).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ditkit_core.app import App


def _positive(kind: type, low: float = 1) -> object:
    def parse(text: str) -> object:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.__name__}") from None
        if not np.isfinite(v) or v < low:
            raise argparse.ArgumentTypeError(f"{text!r} must be >= {low}")
        return v

    return parse


def cmd_data(args: argparse.Namespace) -> None:
    from ditkit_audio.av.data import write_splits
    from ditkit_audio.av.media import write_mp4
    from ditkit_audio.av.store import load_clipset
    from ditkit_audio.av.synthetic import ClipSpec

    spec = ClipSpec(size=args.size, fps=args.fps, seconds=args.seconds, pulse_fraction=args.pulse_fraction)
    paths = write_splits(args.out, spec, {"train": args.train, "val": args.val, "test": args.test}, seed=args.seed)
    test = load_clipset(paths["test"])
    mp4 = Path(args.out) / "mp4"
    for i in range(min(args.mp4, len(test))):
        write_mp4(mp4 / f"{test.names[i]}.mp4", test.video[i], test.fps, test.audio[i], test.sample_rate)
    train = load_clipset(paths["train"])
    from ditkit_audio.audio import LogMel

    mel = LogMel(spec.sample_rate)(torch.from_numpy(train.audio[:256]))
    ev = [len(train.clip_events(i)) for i in range(len(train)) if train.family[i] == 0]
    print(
        json.dumps(
            {
                "splits": {k: str(v) for k, v in paths.items()},
                "clips": {"train": args.train, "val": args.val, "test": args.test},
                "pulse_share_train": round(float((train.family == 1).mean()), 3) if len(train) else 0.0,
                "events_per_ball_clip": round(float(np.mean(ev)), 2) if ev else 0.0,
                "mel_mean": round(float(mel.mean()), 3),
                "mel_std": round(float(mel.std()), 3),
                "mp4_examples": str(mp4),
                "spec": spec.to_dict(),
            }
        )
    )


def cmd_sample(args: argparse.Namespace) -> None:
    from ditkit_core.lightning import default_checkpoint, load_run, run_dir

    module = load_run(config=args.config, ckpt=args.ckpt or default_checkpoint(args.config))
    args.out = args.out or str(run_dir(args.config) / "sample")
    sample_command(module, args)


def data_root(config: str | Path, default: str = "outputs/av/data") -> str:
    """The clip folder of an app config (``data.init_args.root``), else ``default``."""
    from ditkit_core.lightning import read_config

    data = read_config(config).get("data") or {}
    root = (data.get("init_args") or {}).get("root") if isinstance(data, dict) else None
    return root if isinstance(root, str) and root else default


def clip_data(config: str | Path, data: str | None, tok: Any) -> Any:
    """The set-up :class:`~ditkit_audio.av.data.AVDataModule` of ``data`` (default: the config's clip folder) with the
    clip geometry of the run's tokenizer ``tok``."""
    from ditkit_audio.av.data import AVDataModule

    dm = AVDataModule(
        root=data or data_root(config),
        size=tok.size,
        fps=tok.fps,
        seconds=tok.seconds,
        sample_rate=tok.sample_rate,
        n_mels=tok.n_mels,
    )
    dm.setup()
    return dm


def small_splits(root: str | Path, tok: Any, val: int, test: int) -> Path:
    """The procedural val / test clips (the same seeds as ``make data-av``, first ``val`` / ``test`` of each) in the
    clip geometry of the run's tokenizer ``tok``, written to ``root`` (two train clips keep the data module whole)."""
    from ditkit_audio.av.data import write_splits
    from ditkit_audio.av.synthetic import ClipSpec

    spec = ClipSpec(size=tok.size, fps=tok.fps, seconds=tok.seconds, sample_rate=tok.sample_rate)
    write_splits(root, spec, {"train": 2, "val": val, "test": test})
    return Path(root)


def sample_command(module: Any, args: argparse.Namespace) -> None:
    """One task of a loaded run on test clips (or ``args.input``) -> .mp4 with sound + contact sheet in ``args.out``.

    ``ditkit audio_video sample`` calls it as ``(module, args)``; ``args.steps`` None: the model's sampler steps,
    ``args.data`` None: the config's clip folder.
    """
    from ditkit_audio.av.media import read_media, write_mp4
    from ditkit_audio.av.viz import contact_sheet

    tok = module.tokenizer
    out = Path(args.out)
    if args.input:
        video, audio = read_media(args.input, fps=tok.fps, size=tok.size, sample_rate=tok.sample_rate)
        nf, ns = tok.frames, tok.samples
        if video.shape[0] < nf or audio.shape[0] < ns:
            raise SystemExit(f"{args.input}: shorter than one clip ({tok.seconds} s)")
        wav = torch.from_numpy(audio[:ns])
        batch = {
            "video": torch.from_numpy(video[:nf])[None],
            "mel": tok.features(wav)[None],
            "family": torch.tensor([2]),
        }
        names = [Path(args.input).stem]
        real_wavs = [wav]
    else:
        root = Path(args.data or data_root(args.config))
        if not (root / "test.npz").exists():  # no clip folder yet: the test split's own clips, made small here
            root = small_splits(out / "clips", tok, val=2, test=args.index + args.n)
            print(f"no clip folder at {args.data or data_root(args.config)}: using {args.n} test clips made in {root}")
        dm = clip_data(args.config, str(root), tok)
        idx = list(range(args.index, min(len(dm.test), args.index + args.n)))
        batch = dm.test.batch(idx)
        names = [str(dm.test.clips.names[i]) for i in idx]
        real_wavs = [torch.from_numpy(dm.test.clips.audio[i]) for i in idx]
    g = torch.Generator().manual_seed(args.seed)
    res = module.sample_task(
        batch,
        args.task,
        cut=args.cut,
        steps=args.steps,
        cfg_video=args.cfg_video,
        cfg_audio=args.cfg_audio,
        generator=g,
    )
    written = []
    for i, name in enumerate(names):
        wav = real_wavs[i] if args.task == "a2v" else tok.to_wav(res["mel"][i])
        base = out / f"{args.task}_{name}"
        written.append(
            write_mp4(
                base.with_suffix(".mp4"),
                res["video"][i].numpy(),
                tok.fps,
                wav.numpy(),
                tok.sample_rate,
                scale=args.scale,
            )
        )
        written.append(
            contact_sheet(
                base.with_suffix(".png"),
                tok,
                rows={"input": (batch["video"][i], batch["mel"][i]), args.task: (res["video"][i], res["mel"][i])},
                wavs={"input": real_wavs[i], args.task: wav},
                title=f"{args.task}: {name}",
            )
        )
    print(json.dumps({"task": args.task, "written": [str(p) for p in written]}))


def _sample_arguments(s: argparse.ArgumentParser) -> None:
    """The flags of ``sample`` beyond the common ones (config, checkpoint, steps, seed, output)."""
    s.add_argument("--task", choices=("joint", "v2a", "a2v", "continue"), default="v2a")
    s.add_argument("--input", default=None, help="a real .mp4 (its first clip) instead of test clips")
    s.add_argument("--data", default=None, help="clip folder (default: the config's data.init_args.root)")
    s.add_argument("--index", type=_positive(int, 0), default=0, help="first test clip")
    s.add_argument("--n", type=_positive(int, 1), default=4, help="test clips")
    s.add_argument("--cut", type=float, default=None, help="continue: seconds given")
    s.add_argument("--cfg-video", type=_positive(float, 0), default=None)
    s.add_argument("--cfg-audio", type=_positive(float, 0), default=None)
    s.add_argument("--scale", type=_positive(int, 1), default=4, help="pixel repetition of the written .mp4")


sample_command.add_arguments = _sample_arguments


def cmd_params(args: argparse.Namespace) -> None:
    from ditkit_core.lightning import FlowCLI

    rows = []
    for cfg in args.configs:
        cli = FlowCLI(args=["--config", cfg, "--trainer.logger", "false"], run=False)
        rows.append({"config": cfg, **cli.model.parameter_counts()})
    print(json.dumps(rows))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="ditkit-av", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="synthesise the procedural splits")
    d.add_argument("--out", default="outputs/av/data")
    d.add_argument("--train", type=_positive(int, 0), default=3000)
    d.add_argument("--val", type=_positive(int, 0), default=200)
    d.add_argument("--test", type=_positive(int, 0), default=200)
    d.add_argument("--size", type=_positive(int, 8), default=32)
    d.add_argument("--fps", type=_positive(int, 1), default=16)
    d.add_argument("--seconds", type=_positive(float, 0.25), default=2.0)
    d.add_argument("--pulse-fraction", type=float, default=0.25)
    d.add_argument("--mp4", type=_positive(int, 0), default=8, help="test clips exported as .mp4")
    d.add_argument("--seed", type=_positive(int, 0), default=0)
    d.set_defaults(fn=cmd_data)
    s = sub.add_parser("sample", help="one task of a trained run -> .mp4 + contact sheet")
    s.add_argument("--config", default="apps/audio_video/configs/default.yaml")
    s.add_argument("--ckpt", default=None)
    s.add_argument("--steps", type=_positive(int, 1), default=16)
    s.add_argument("--seed", type=_positive(int, 0), default=0)
    s.add_argument("--out", default=None)
    _sample_arguments(s)
    s.set_defaults(fn=cmd_sample)
    e = sub.add_parser("eval", help="every figure of make eval-av (JSON lines)")
    e.set_defaults(fn=None)
    k = sub.add_parser("encoder", help="train the Frechet feature network on the real training clips")
    k.set_defaults(fn=None)
    p = sub.add_parser("params", help="parameter counts of app configs")
    p.add_argument("configs", nargs="+")
    p.set_defaults(fn=cmd_params)
    args, rest = ap.parse_known_args(argv)
    if args.cmd == "eval":
        from ditkit_audio.av.evaluate import main as eval_main

        return eval_main(rest)
    if args.cmd == "encoder":
        from ditkit_audio.av.encoder import main as encoder_main

        return encoder_main(rest)
    if rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    args.fn(args)


APP = App(
    name="audio_video",
    help="joint audio-video generation: v2a, a2v, joint and continuation on procedural clips (ditkit_audio.av)",
    config="apps/audio_video/configs/default.yaml",
    pretrained="apps/audio_video/pretrained",
    commands={
        "sample": "ditkit_audio.av.cli:sample_command",
        "eval": "ditkit_audio.av.evaluate:eval_command",
        "demo": "ditkit_audio.av.demo:demo_command",
    },
    bench="benchmarks/av.py",
)
"""``ditkit audio_video fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``)."""


if __name__ == "__main__":
    main(sys.argv[1:])
