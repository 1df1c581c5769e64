"""``make eval-av``: every figure of the audio-video app, each printed next to its controls, as JSON lines.

Per task (on held-out clips of one split; the detector thresholds are chosen on the validation split's real clips):

* ``v2a``: onsets of the generated audio vs the true collisions (F1 within one video frame, median offset), the
  pitch of each matched onset vs the colour of the ball that hit, and (pulse clips) the correlation of the generated
  loudness with the given shape's size.
* ``a2v``: collisions tracked in the generated video vs the true collisions of the given audio; (pulse) generated
  size vs given loudness.
* ``joint``: collisions tracked in the generated video vs onsets of the generated audio of the same sample; (pulse)
  size vs loudness within the sample; distributions vs real clips (ball count, speed, pitch histograms, frame and mel
  statistics, Frechet distances on :mod:`~ditkit_audio.av.encoder` features).
* ``continue``: the generated second half: video collisions and audio onsets vs the truth (the physics is
  deterministic), and their mutual synchrony.

Controls beside each figure: ``ceiling`` = the same detector on the real clips (the data's own score); ``baseline``
= the real stream of a different clip (mismatched pairs: no model, the prior), chance for pitch, random latents for
the Frechet distances, and the data's own score (validation vs test clips); ``classical`` (v2a, joint) = rule-based
Foley, no learning: the collisions tracked in the given frames rendered with the data's sound rule
(:func:`~ditkit_audio.av.metrics.rule_foley`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ditkit_audio.av import metrics as M
from ditkit_audio.av.metrics import DetectorSettings, SyncCounts

TASKS = ("v2a", "a2v", "joint", "continue")


def emit(out: list[dict], **fields: Any) -> None:
    print(json.dumps(fields), flush=True)
    out.append(fields)


def calibrate(data: Any, tok: Any, n: int = 100) -> DetectorSettings:
    """Detector thresholds maximising F1 against the truth on real clips (the validation split)."""
    idx = [i for i in range(len(data)) if data.clips.family[i] == 0][:n]
    tol = 1.0 / tok.fps
    refs = []
    for i in idx:
        ev = data.clips.clip_events(i)
        refs.append(M.merge_events(ev[:, 0], tol)[0])
    best_v, best_a = (-1.0, 0.4), (-1.0, 30.0, 0.0)
    for vj in (0.25, 0.3, 0.35, 0.4, 0.5, 0.6):
        c = SyncCounts()
        for k, i in enumerate(idx):
            c.add(
                M.merge_events(M.video_events(data.video[i], tok.fps, DetectorSettings(velocity_jump=vj))[:, 0], tol)[
                    0
                ],
                refs[k],
                tol,
            )
        best_v = max(best_v, (c.summary()["f1"], vj))
    for fl in (15.0, 20.0, 30.0, 40.0, 60.0):
        c = SyncCounts()
        for k, i in enumerate(idx):
            c.add(M.audio_onsets(data.mel[i], tok.frame_rate, DetectorSettings(flux=fl))[:, 0], refs[k], tol)
        s = c.summary()
        best_a = max(best_a, (s["f1"], fl, s["median_offset_ms"] / 1000))
    return DetectorSettings(velocity_jump=best_v[1], flux=best_a[1], onset_offset=best_a[2])


def detect(video: Any, mel: Any, tok: Any, s: DetectorSettings, bands: list[int]) -> dict[str, Any]:
    """Video collisions, audio onsets (with pitch colours), merged within one frame."""
    tol = 1.0 / tok.fps
    ve = M.video_events(video, tok.fps, s)
    on = M.audio_onsets(mel, tok.frame_rate, s)
    cols = M.onset_colors(mel, on[:, 1], bands) if len(on) else np.zeros(0, np.int64)
    return {
        "video": M.merge_events(ve[:, 0], tol)[0],
        "audio": on[:, 0],
        "audio_colors": cols,
        "tracks": M.ball_tracks(video, s),
    }


def truth(clips: Any, i: int, tol: float) -> tuple[np.ndarray, list[set]]:
    ev = clips.clip_events(i)
    return M.merge_events(ev[:, 0], tol, [int(c) for c in ev[:, 1]])


def after(times: np.ndarray, cut: float) -> np.ndarray:
    return times[times >= cut]


def sync_block(pairs: list[tuple[np.ndarray, np.ndarray]], tol: float) -> dict:
    c = SyncCounts()
    for det, ref in pairs:
        c.add(det, ref, tol)
    return c.summary()


def pitch_block(items: list[tuple[np.ndarray, np.ndarray, np.ndarray, list[set]]], tol: float) -> dict:
    """Share of matched onsets whose pitch colour is among the colours of the true event."""
    ok = n = 0
    for det, cols, ref, refc in items:
        for a, r in M.match_events(det, ref, tol):
            ok += int(cols[a] in refc[r])
            n += 1
    return {"accuracy": round(ok / n, 4) if n else float("nan"), "matched_onsets": n}


def generate(
    module: Any, data: Any, idx: list[int], task: str, steps: int, cfg: dict, seed: int, batch: int = 16
) -> dict:
    vids, mels, secs = [], [], 0.0
    for s in range(0, len(idx), batch):
        b = data.batch(idx[s : s + batch])
        g = torch.Generator().manual_seed(seed + s)
        t0 = time.perf_counter()
        res = module.sample_task(b, task, steps=steps, generator=g, **cfg)
        secs += time.perf_counter() - t0
        vids.append(res["video"])
        mels.append(res["mel"])
    return {"video": torch.cat(vids), "mel": torch.cat(mels), "seconds": secs}


def speeds(tracks: dict[int, np.ndarray], fps: float) -> list[float]:
    return [float(np.median(np.linalg.norm(np.diff(p, axis=0), axis=1)) * fps) for p in tracks.values()]


def distribution_block(
    gen: list[dict],
    real: list[dict],
    gen_mel: torch.Tensor,
    real_mel: torch.Tensor,
    gen_video: torch.Tensor,
    real_video: torch.Tensor,
    fps: float,
) -> dict:
    count_bins = np.arange(-0.5, 5.5)
    speed_bins = np.arange(0, 64, 4.0)
    pitch_bins = np.arange(-0.5, 4.5)

    def stats(d: list[dict]) -> tuple[list, list, list]:
        return (
            [len(x["tracks"]) for x in d],
            [v for x in d for v in speeds(x["tracks"], fps)],
            [int(c) for x in d for c in x["audio_colors"]],
        )

    gc, gs, gp = stats(gen)
    rc, rs, rp = stats(real)

    def frame_stats(v: torch.Tensor) -> dict:
        f = v.float() / 255 if v.dtype == torch.uint8 else v.float()
        bg = torch.tensor(M.BACKGROUND)
        return {
            "mean_rgb": [round(float(x), 4) for x in f.mean((0, 1, 2, 3))],
            "foreground_share": round(float(((f - bg).norm(dim=-1) > 0.2).float().mean()), 4),
        }

    return {
        "ball_count_tvd": round(M.histogram_distance(gc, rc, count_bins), 4),
        "speed_tvd": round(M.histogram_distance(gs, rs, speed_bins), 4),
        "pitch_tvd": round(M.histogram_distance(gp, rp, pitch_bins), 4),
        "ball_count_mean": [round(float(np.mean(gc)), 3), round(float(np.mean(rc)), 3)],
        "speed_median_px_s": [round(float(np.median(gs)), 2) if gs else None, round(float(np.median(rs)), 2)],
        "frames": {"generated": frame_stats(gen_video), "real": frame_stats(real_video)},
        "mel_mean_std": [
            [round(float(gen_mel.mean()), 3), round(float(gen_mel.std()), 3)],
            [round(float(real_mel.mean()), 3), round(float(real_mel.std()), 3)],
        ],
        "mel_band_mean_l1": round(float((gen_mel.mean((0, 1)) - real_mel.mean((0, 1))).abs().mean()), 4),
    }


def frechet_block(
    enc: Any, gen_video: torch.Tensor, gen_mel: torch.Tensor, real: Any, other: Any, idx: list[int], tok: Any
) -> dict:
    """Frechet distances (video / audio / joint features) of generated vs real clips, with the data's own score
    (another split's real clips vs these) and random latents (trivial baseline)."""
    fr = enc.features(real.video[idx], real.mel[idx])
    fg = enc.features((gen_video * 255).round().to(torch.uint8), gen_mel)
    jdx = list(range(min(len(other), len(idx))))
    fo = enc.features(other.video[jdx], other.mel[jdx])
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(len(idx), tok.video_tokens + tok.audio_tokens, tok.token_dim, generator=g)
    v_rand, a_rand = tok.unpack(noise)
    frand = enc.features((tok.tokens_to_video(v_rand) * 255).round().to(torch.uint8), tok.tokens_to_mel(a_rand))
    shuffled = enc.features(real.video[idx], real.mel[idx].roll(1, 0))
    out = {}
    for k in ("video", "audio", "joint"):
        out[k] = {
            "generated": round(M.frechet_distance(fg[k], fr[k]), 3),
            "data_own_score": round(M.frechet_distance(fo[k], fr[k]), 3),
            "random_latents": round(M.frechet_distance(frand[k], fr[k]), 3),
            "mismatched_real_pairs": round(M.frechet_distance(shuffled[k], fr[k]), 3),
        }
    return out


def run(args: argparse.Namespace, module: Any | None = None) -> list[dict]:
    """Every figure of ``args.tasks`` (JSON lines; ``<out>/eval_<split>.json``) of ``module`` (default: the run of
    ``args.config`` / ``args.ckpt``)."""
    from ditkit_audio.av.cli import clip_data
    from ditkit_core.lightning import default_checkpoint, load_run, run_dir

    out: list[dict] = []
    if module is None:
        module = load_run(config=args.config, ckpt=args.ckpt or default_checkpoint(args.config))
    tok = module.tokenizer
    root = Path(args.out) if args.out else run_dir(args.config) / "eval"
    dm = clip_data(args.config, args.data, tok)
    data = {"val": dm.val, "test": dm.test}[args.split]
    other = dm.val if args.split == "test" else dm.test
    settings = calibrate(dm.val, tok)
    bands = M.pitch_bands(tok.logmel.mel.mel_scale.fb, tok.sample_rate)
    tol = 1.0 / tok.fps
    emit(out, figure="detector", settings=vars(settings), chosen_on="val", split=args.split)
    balls = [i for i in range(len(data)) if data.clips.family[i] == 0][: args.n]
    pulse = [i for i in range(len(data)) if data.clips.family[i] == 1][: args.n_pulse]
    idx = balls + pulse
    nb = len(balls)
    real = {i: detect(data.video[i], data.mel[i], tok, settings, bands) for i in idx}
    refs = {i: truth(data.clips, i, tol) for i in balls}
    mism = {i: balls[(k + 1) % nb] for k, i in enumerate(balls)}  # another clip of the same family
    mism_p = {i: pulse[(k + 1) % len(pulse)] for k, i in enumerate(pulse)} if pulse else {}
    wv, wa = module.guidance_scales(None, args.cfg_video, args.cfg_audio)
    cfg = {"cfg_video": wv, "cfg_audio": wa}
    emit(
        out,
        figure="setup",
        split=args.split,
        ball_clips=nb,
        pulse_clips=len(pulse),
        steps=args.steps,
        **cfg,
        params=module.parameter_counts(),
    )
    fr = tok.frame_rate
    corr = lambda v, m: M.size_loudness_correlation(v, m, fr, tok.fps)  # noqa: E731
    foley: dict[int, dict] = {}  # classical video-to-audio: the tracker's collisions rendered with the sound rule
    if "audio" in module.streams and ({"v2a", "joint"} & set(args.tasks)):
        for i in balls:
            wav = M.rule_foley(data.video[i], tok.fps, tok.sample_rate, settings, seed=i)
            foley[i] = detect(data.video[i], tok.features(torch.from_numpy(wav)), tok, settings, bands)
    for task in args.tasks:
        if task in ("v2a", "a2v") and "audio" not in module.streams:
            continue
        gen = generate(module, data, idx, task, args.steps, cfg, args.seed)
        det = [detect(gen["video"][k], gen["mel"][k], tok, settings, bands) for k in range(len(idx))]
        gsec = gen["seconds"] / len(idx) / tok.seconds
        if task == "v2a":
            emit(out, figure="v2a_video_reliance", task=task, rows=video_reliance(module, data, balls[:32]))
            emit(
                out,
                figure="v2a_onset_sync",
                task=task,
                model=sync_block([(det[k]["audio"], refs[i][0]) for k, i in enumerate(balls)], tol),
                ceiling_real_audio=sync_block([(real[i]["audio"], refs[i][0]) for i in balls], tol),
                baseline_other_clip_audio=sync_block([(real[mism[i]]["audio"], refs[i][0]) for i in balls], tol),
                classical_rule_foley=sync_block([(foley[i]["audio"], refs[i][0]) for i in balls], tol),
                goal="f1 >= 0.85 and |median offset| <= 62.5 ms",
            )
            emit(
                out,
                figure="v2a_pitch_colour",
                task=task,
                model=pitch_block(
                    [(det[k]["audio"], det[k]["audio_colors"], *refs[i]) for k, i in enumerate(balls)], tol
                ),
                ceiling_real_audio=pitch_block(
                    [(real[i]["audio"], real[i]["audio_colors"], *refs[i]) for i in balls], tol
                ),
                baseline_chance=0.25,
                classical_rule_foley=pitch_block(
                    [(foley[i]["audio"], foley[i]["audio_colors"], *refs[i]) for i in balls], tol
                ),
                goal="accuracy >= 0.8",
            )
            if pulse:
                emit(
                    out,
                    figure="v2a_size_loudness_corr",
                    task=task,
                    model=round(
                        float(np.mean([corr(data.video[i], gen["mel"][nb + k]) for k, i in enumerate(pulse)])), 4
                    ),
                    ceiling_real=round(float(np.mean([corr(data.video[i], data.mel[i]) for i in pulse])), 4),
                    baseline_other_clip=round(
                        float(np.mean([corr(data.video[i], data.mel[mism_p[i]]) for i in pulse])), 4
                    ),
                )
        elif task == "a2v":
            emit(
                out,
                figure="a2v_collision_sync",
                task=task,
                model=sync_block([(det[k]["video"], refs[i][0]) for k, i in enumerate(balls)], tol),
                ceiling_real_video=sync_block([(real[i]["video"], refs[i][0]) for i in balls], tol),
                baseline_other_clip_video=sync_block([(real[mism[i]]["video"], refs[i][0]) for i in balls], tol),
            )
            if pulse:
                emit(
                    out,
                    figure="a2v_size_loudness_corr",
                    task=task,
                    model=round(
                        float(np.mean([corr(gen["video"][nb + k], data.mel[i]) for k, i in enumerate(pulse)])), 4
                    ),
                    ceiling_real=round(float(np.mean([corr(data.video[i], data.mel[i]) for i in pulse])), 4),
                    baseline_other_clip=round(
                        float(np.mean([corr(data.video[mism_p[i]], data.mel[i]) for i in pulse])), 4
                    ),
                )
        elif task == "joint":
            if "audio" in module.streams:  # a video-only model has no sound to synchronise
                emit(
                    out,
                    figure="joint_av_sync",
                    task=task,
                    model=sync_block([(det[k]["audio"], det[k]["video"]) for k in range(nb)], tol),
                    ceiling_real=sync_block([(real[i]["audio"], real[i]["video"]) for i in balls], tol),
                    baseline_mismatched_real=sync_block(
                        [(real[mism[i]]["audio"], real[i]["video"]) for i in balls], tol
                    ),
                    classical_real_video_rule_foley=sync_block(
                        [(foley[i]["audio"], real[i]["video"]) for i in balls], tol
                    ),
                    goal="f1 >= 0.85 and |median offset| <= 62.5 ms",
                )
                if pulse:
                    emit(
                        out,
                        figure="joint_size_loudness_corr",
                        task=task,
                        model=round(
                            float(np.mean([corr(gen["video"][nb + k], gen["mel"][nb + k]) for k in range(len(pulse))])),
                            4,
                        ),
                        ceiling_real=round(float(np.mean([corr(data.video[i], data.mel[i]) for i in pulse])), 4),
                        baseline_mismatched_real=round(
                            float(np.mean([corr(data.video[mism_p[i]], data.mel[i]) for i in pulse])), 4
                        ),
                    )
            other_idx = [i for i in range(len(other)) if other.clips.family[i] == 0][:nb]
            other_det = [detect(other.video[i], other.mel[i], tok, settings, bands) for i in other_idx]
            emit(
                out,
                figure="joint_distributions",
                task=task,
                model=distribution_block(
                    det[:nb],
                    [real[i] for i in balls],
                    gen["mel"][:nb],
                    data.mel[balls],
                    gen["video"][:nb],
                    data.video[balls],
                    tok.fps,
                ),
                data_own_score=distribution_block(
                    other_det,
                    [real[i] for i in balls],
                    other.mel[other_idx],
                    data.mel[balls],
                    other.video[other_idx],
                    data.video[balls],
                    tok.fps,
                ),
            )
            if args.encoder and Path(args.encoder, "config.json").exists():
                from ditkit_audio.av.encoder import load_encoder

                emit(
                    out,
                    figure="joint_frechet",
                    task=task,
                    **frechet_block(load_encoder(args.encoder), gen["video"], gen["mel"], data, other, idx, tok),
                )
        elif task == "continue":
            cut = tok.seconds / 2
            emit(
                out,
                figure="continue_sync",
                task=task,
                cut_s=cut,
                video_vs_truth=sync_block(
                    [(after(det[k]["video"], cut + tol), after(refs[i][0], cut + tol)) for k, i in enumerate(balls)],
                    tol,
                ),
                audio_vs_truth=sync_block(
                    [(after(det[k]["audio"], cut + tol), after(refs[i][0], cut + tol)) for k, i in enumerate(balls)],
                    tol,
                ),
                video_vs_audio=sync_block(
                    [(after(det[k]["audio"], cut + tol), after(det[k]["video"], cut + tol)) for k in range(nb)], tol
                ),
                ceiling_real_audio=sync_block(
                    [(after(real[i]["audio"], cut + tol), after(refs[i][0], cut + tol)) for i in balls], tol
                ),
                baseline_other_clip_audio=sync_block(
                    [(after(real[mism[i]]["audio"], cut + tol), after(refs[i][0], cut + tol)) for i in balls], tol
                ),
            )
        emit(out, figure="generation_time", task=task, seconds_per_clip_second=round(gsec, 4), steps=args.steps)
        write_examples(root / task, module, data, idx[: args.examples], gen, refs, task)
    root.mkdir(parents=True, exist_ok=True)
    (root / f"eval_{args.split}.json").write_text(json.dumps(out, indent=1))
    return out


@torch.no_grad()
def video_reliance(
    module: Any, data: Any, idx: list[int], times: tuple[float, ...] = (0.02, 0.1, 0.3, 0.6, 0.9), seed: int = 1
) -> list[dict]:
    """How much the audio prediction of the v2a task reads the given video.

    At fixed times ``t`` (same noise for every variant) the network's audio output is compared with the clean audio
    (mean squared error over the audio channels, in normalised mel units) when the clips come with their own video,
    with another clip's video (rolled by one), and with the condition dropped. A model that times its sound from
    the frames has a clearly lower error with the clip's own video near noise (small ``t``).

    Args:
        module: an audio-video module with an audio stream.
        data: a dataset with ``batch(indices)``.
        idx: clips to use.
        times: flow times (0 = noise, 1 = data).
        seed: seed of the noise.

    Returns:
        One row per time: ``{"t", "own_video", "other_video", "no_condition"}``.
    """
    from ditkit_audio.av.module import TASKS

    was = module.training
    module.eval()
    tok = module.tokenizer
    n = len(idx)
    own = data.batch(idx)
    other = {**own, "video": own["video"].roll(1, 0)}
    nv = tok.video_tokens
    rows = []
    for t in times:
        row: dict[str, float] = {"t": t}
        variants = (("own_video", own, False), ("other_video", other, False), ("no_condition", own, True))
        for name, batch, drop in variants:
            tokens = module.tokenize({**batch, "task": torch.full((n,), TASKS.index("v2a")), "cut": torch.zeros(n)})
            x_1, known = tokens.x, tokens.known_mask
            x_0 = module.sample_noise(x_1, tokens, torch.Generator().manual_seed(seed))
            tt = torch.full((n,), float(t))
            x_t = torch.where(known, x_1, (1 - tt[:, None, None]) * x_0 + tt[:, None, None] * x_1)
            d = torch.full((n,), drop, dtype=torch.bool)
            out = module.model(x_t, tt, drop_cond=d, **module.condition(tokens, d).model_kwargs())
            if module.flow.prediction != "data":  # velocity -> clean data along the straight path
                out = x_t + (1 - tt[:, None, None]) * out
            mask = (~known[:, nv:]) & tok.channel_mask(n, x_1.device)[:, nv:]
            err = ((out[:, nv:] - x_1[:, nv:]) ** 2 * mask).sum() / mask.sum()
            row[name] = round(float(err), 4)
        rows.append(row)
    module.train(was)
    return rows


def write_examples(out: Path, module: Any, data: Any, idx: list[int], gen: dict, refs: dict, task: str) -> None:
    from ditkit_audio.av.media import write_mp4
    from ditkit_audio.av.viz import contact_sheet

    tok = module.tokenizer
    for k, i in enumerate(idx):
        ev = {"data": list(refs[i][0])} if i in refs else {}
        wav = tok.to_wav(gen["mel"][k])
        contact_sheet(
            out / f"{task}_{k}.png",
            tok,
            rows={"data": (data.video[i], data.mel[i]), task: (gen["video"][k], gen["mel"][k])},
            wavs={"data": torch.from_numpy(data.clips.audio[i])},
            events=ev,
            title=f"{task}: {data.clips.names[i]}",
        )
        write_mp4(out / f"{task}_{k}.mp4", gen["video"][k].numpy(), tok.fps, wav.numpy(), tok.sample_rate, scale=4)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The flags of ``eval`` beyond the common ones (config, checkpoint, steps, seed, output)."""
    ap.add_argument("--data", default=None, help="clip folder (default: the config's data.init_args.root)")
    ap.add_argument("--split", choices=("val", "test"), default="test")
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks")
    ap.add_argument("--n", type=int, default=64, help="balls clips")
    ap.add_argument("--n-pulse", type=int, default=16, help="pulse clips")
    ap.add_argument("--cfg-video", type=float, default=None)
    ap.add_argument("--cfg-audio", type=float, default=None)
    ap.add_argument("--encoder", default="outputs/av/encoder", help="Frechet feature network (skipped if missing)")
    ap.add_argument("--examples", type=int, default=2, help="example clips written per task")


def check(args: argparse.Namespace) -> str | None:
    """Parse ``args.tasks`` into a list; the problem with the flags, or None."""
    if isinstance(args.tasks, str):
        args.tasks = [t for t in args.tasks.split(",") if t]
    bad = [t for t in args.tasks if t not in TASKS]
    if bad:
        return f"--tasks: unknown {bad}; choose from {TASKS}"
    if args.n < 2 or (args.steps is not None and args.steps < 1):
        return "--n must be >= 2 and --steps >= 1"
    return None


def eval_command(module: Any, args: argparse.Namespace) -> list[dict]:
    """``ditkit audio_video eval``: :func:`run` on a loaded module (``args.steps`` None: its sampler steps)."""
    problem = check(args)
    if problem:
        raise SystemExit(f"ditkit audio_video eval: {problem}")
    if args.steps is None:
        args.steps = module.sampler.steps
    return run(args, module)


eval_command.add_arguments = add_arguments


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(prog="ditkit-av eval")
    ap.add_argument("--config", default="apps/audio_video/configs/default.yaml")
    ap.add_argument("--ckpt", default=None)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    add_arguments(ap)
    args = ap.parse_args(argv)
    problem = check(args)
    if problem:
        ap.error(problem)
    return run(args)


__all__ = ["add_arguments", "calibrate", "detect", "eval_command", "main", "run", "video_reliance"]
