"""``python -m ditkit_shapes.cli {data,sample,eval}``: the procedural dataset, samples and the per-class table.

* ``data``: write the procedural dataset (``make data-shapes``) to ``--out`` or to the ``--config``'s data root.
* ``sample``: class-conditional samples of a trained run as ``.ply`` files and a PNG grid, plus one completion
  example (``make sample-shapes``).
* ``eval``: PointFlow-protocol metrics per class (``make eval-shapes``): generated clouds against the *test*
  split, next to the data's own level (train-split clouds against the same test clouds: what an ideal generator
  of the training distribution scores). Train and test never mix: the model only saw the train split.

``sample`` and ``eval`` take the app YAML the run was trained with (``--config``): the run is loaded with
:func:`ditkit_core.lightning.load_run` from ``--ckpt`` / ``--pretrained`` or, by default, from
``<trainer.default_root_dir>/checkpoints/last.ckpt``; outputs go under ``<trainer.default_root_dir>``; the dataset
root, normalisation and stored point count default to the config's ``data`` section.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from ditkit_core.app import App
from ditkit_core.errors import DataError, atomic_write
from ditkit_core.lightning import default_checkpoint, load_run, read_config, run_dir
from ditkit_shapes.data import NORMALIZE_MODES, ShapeFolderDataset, write_ply
from ditkit_shapes.metrics import evaluate_sets, subset_points
from ditkit_shapes.module import ShapesModule
from ditkit_shapes.validation import finite_float, optional_positive_int, positive_int


def load(
    ckpt: str | Path | None = None,
    data: str | Path | None = None,
    config: str | Path | None = None,
    pretrained: str | Path | None = None,
) -> ShapesModule:
    """A trained :class:`ShapesModule` on CPU, in eval mode, loaded by :func:`ditkit_core.lightning.load_run`.

    Args:
        ckpt: a Lightning checkpoint (default: the ``config``'s ``<default_root_dir>/checkpoints/last.ckpt``).
        data: dataset root; a checkpoint without label names gets its sorted class folders (the loader's label
            order) when their number matches the model's classes.
        config: the app YAML the run was trained with.
        pretrained: a ``save_pretrained`` folder instead of a checkpoint.

    Raises:
        FileNotFoundError: no weights. DataError: an unreadable checkpoint or one of another module, named.
    """
    if ckpt is None and pretrained is None and config is not None:
        ckpt = default_checkpoint(config)
    return checked(load_run(config, ckpt, pretrained=pretrained), data, pretrained or ckpt)


def checked(module: Any, data: str | Path | None = None, source: str | Path | None = None) -> ShapesModule:
    """``module`` if it is a :class:`ShapesModule`; without label names it gets the sorted class folders of ``data``.

    Raises:
        DataError: not a ShapesModule (``source``, the weights, named). ValueError: the class count differs.
    """
    if not isinstance(module, ShapesModule):
        raise DataError(f"holds a {type(module).__name__}, not a ShapesModule", path=source)
    if module.class_names is None and data is not None and Path(data).is_dir():
        names = sorted(p.name for p in Path(data).iterdir() if p.is_dir())
        k = module.config.num_classes
        if k and len(names) != k:
            raise ValueError(f"load: {source} has no class names and {k} classes, but {data} has {len(names)} {names}")
        module.class_names = names
    return module


def data_settings(config: str | Path) -> dict[str, Any]:
    """``root`` / ``normalize`` / ``points`` of the config's ``data.init_args`` (absent keys left out)."""
    args = (read_config(config).get("data") or {}).get("init_args") or {}
    return {k: args[k] for k in ("root", "normalize", "points") if k in args}


def with_data_defaults(a: argparse.Namespace, command: str) -> argparse.Namespace:
    """Fill ``a.data`` / ``a.normalize`` (and ``a.stored_points`` for eval) from the config's ``data`` section.

    Raises:
        ValueError: no dataset root (neither ``--data`` nor the config's ``data.init_args.root``).
    """
    settings = data_settings(a.config)
    a.data = a.data if a.data is not None else settings.get("root")
    if a.data is None:
        raise ValueError(f"{command}: give --data or a --config with data.init_args.root")
    a.normalize = a.normalize or settings.get("normalize", "unit_sphere")
    if command == "eval":
        a.stored_points = a.stored_points or settings.get("points", 2048)
    return a


def cmd_sample(a: argparse.Namespace) -> None:
    sample_command(load(a.ckpt, a.data, a.config, a.pretrained), a)


def sample_command(module: ShapesModule, a: argparse.Namespace) -> None:
    """Class-conditional ``.ply`` samples, their PNG grid and a completion example of a loaded run in ``a.out``.

    ``ditkit shapes sample`` calls it as ``(module, args)``; data settings default to the config's.
    """
    from ditkit_shapes.viz import render_grid

    with_data_defaults(a, "sample")  # keeps the values given
    module = checked(module, a.data, a.ckpt or a.pretrained)
    a.points = module.sample_points if a.points is None else a.points
    names = module.class_names or [str(i) for i in range(module.config.num_classes)]
    labels = torch.arange(len(names)).repeat_interleave(a.per_class)
    clouds = module.sample_clouds(labels, points=a.points, seed=a.seed, steps=a.steps, cfg_scale=a.cfg)
    out = Path(a.out)
    for i, c in enumerate(clouds):
        write_ply(out / f"{names[int(labels[i])]}_{i % a.per_class}.ply", c)
    png = render_grid(clouds, out / "samples.png", titles=[names[int(i)] for i in labels], cols=a.per_class * 2)
    print(f"wrote {len(clouds)} .ply files and {png}")
    # completion: keep the upper half (y > median) of test shapes, generate the rest
    if not Path(a.data).is_dir():
        print(f"completion example skipped: no dataset at {a.data} (make it with `make data-shapes`)")
        return
    ds = ShapeFolderDataset(a.data, "test", names, a.points, a.normalize, seed=a.seed)
    idx = torch.stack([torch.nonzero(ds.labels == c)[0, 0] for c in range(len(names))])
    full, lab = ds.points[idx], ds.labels[idx]
    known = full[..., 1] > full[..., 1].median(dim=1, keepdim=True).values
    done = module.complete(full, known, lab, seed=a.seed, steps=a.steps)
    first = full[torch.arange(len(full)), known.float().argmax(1)][:, None]  # [b, 1, 3] a known point
    grid = torch.cat([torch.where(known[..., None], full, first), done])  # inputs drawn with known points only
    titles = [f"{names[int(c)]} input" for c in lab] + [f"{names[int(c)]} completed" for c in lab]
    print(f"wrote {render_grid(grid, out / 'completion.png', titles=titles, cols=len(names))}")


def evaluate(
    module: ShapesModule,
    data: str,
    classes: list[str] | None = None,
    n: int = 48,
    points: int = 1024,
    normalize: str = "unit_sphere",
    emd_points: int | None = 256,
    steps: int | None = None,
    seed: int = 0,
    metrics: tuple[str, ...] = ("cd", "emd"),
    cfg_scale: float | None = None,
    stored_points: int = 2048,
) -> list[dict]:
    """Per-class rows ``{class, model: {...}, data: {...}}`` of PointFlow metrics against the test split.

    Reference clouds (test, and train for the data's own level) are prepared exactly as the training clouds:
    read at ``stored_points``, normalised on all of them (``normalize``), then a seeded random subset of ``points``
    per cloud. Generated clouds have ``points`` points and are not re-normalised (the model generates in the
    normalised frame). All sets therefore have the same point count and the same normalisation.

    Args:
        module: trained module.
        data: dataset root.
        classes: classes to evaluate (default: the module's).
        n: clouds per class (generated, and reference clouds from the test split).
        points: points per cloud.
        emd_points: EMD on a seeded subset of this many points (exact assignment).
        cfg_scale: classifier-free guidance scale (default: the module's).
        stored_points: points per stored cloud (the training data module's ``points``).
    """
    names = module.class_names or [str(i) for i in range(module.config.num_classes)]
    for field, value in (("n", n), ("points", points), ("stored_points", stored_points)):
        positive_int(value, field, "evaluate")
    optional_positive_int(emd_points, "emd_points", "evaluate")
    optional_positive_int(steps, "steps", "evaluate")
    if cfg_scale is not None:
        finite_float(cfg_scale, "cfg_scale", "evaluate")
    if points > stored_points:
        raise ValueError(f"evaluate: points={points} > stored_points={stored_points}")
    unknown = [c for c in classes or [] if c not in names]
    if unknown:
        raise ValueError(f"evaluate: classes={unknown!r} are not classes of this model; choose from {names}")
    test = ShapeFolderDataset(data, "test", names, stored_points, normalize, seed=seed)
    train = ShapeFolderDataset(data, "train", names, stored_points, normalize, seed=seed)
    rows = []
    for c in classes or names:
        label = names.index(c)
        ref = subset_points(test.class_points(label)[:n], points, seed + 1000 + label)
        t0 = time.perf_counter()
        gen = module.sample_clouds(
            [label] * len(ref), points=points, seed=seed + label, steps=steps, cfg_scale=cfg_scale
        )
        gen_s = time.perf_counter() - t0
        row = {
            "class": c,
            "n": len(ref),
            "points": points,
            "cfg": module.sampler.cfg_scale if cfg_scale is None else cfg_scale,
            "sample_s": round(gen_s, 1),
            "model": evaluate_sets(gen, ref, metrics, emd_points, seed),
            "data": evaluate_sets(
                subset_points(train.class_points(label)[: len(ref)], points, seed + 2000 + label),
                ref,
                metrics,
                emd_points,
                seed,
            ),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown_table(rows: list[dict]) -> str:
    """The per-class table (model vs the train-split level) in Markdown; COV / 1-NNA in %."""
    keys = [k for k in rows[0]["model"]]
    head = "| class | set | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys) + "\n"
    lines = []
    for r in rows:
        for who, label in (("model", "generated vs test"), ("data", "train vs test")):
            vals = [f"{r[who][k] * 100:.1f}" if ("COV" in k or "NNA" in k) else f"{r[who][k]:.4f}" for k in keys]
            lines.append(f"| {r['class']} | {label} | " + " | ".join(vals) + " |")
    return head + "\n".join(lines) + "\n"


def cmd_eval(a: argparse.Namespace) -> None:
    eval_command(load(a.ckpt, a.data, a.config, a.pretrained), a)


def eval_command(module: ShapesModule, a: argparse.Namespace) -> None:
    """The per-class table of a loaded run (:func:`evaluate`) as ``eval.json`` and ``eval.md`` in ``a.out``.

    ``ditkit shapes eval`` calls it as ``(module, args)``; data settings default to the config's.
    """
    with_data_defaults(a, "eval")  # keeps the values given
    module = checked(module, a.data, a.ckpt or a.pretrained)
    rows = evaluate(
        module,
        a.data,
        a.classes,
        a.n,
        module.sample_points if a.points is None else a.points,
        a.normalize,
        a.emd_points,
        a.steps,
        a.seed,
        tuple(a.metrics),
        a.cfg,
        a.stored_points,
    )
    out = Path(a.out)
    table = markdown_table(rows)
    for name, text in (("eval.json", json.dumps(rows, indent=1)), ("eval.md", table)):
        with atomic_write(out / name, "w") as f:
            f.write(text)
    print(table)


def _positive(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _finite(text: str) -> float:
    """argparse type: a finite float."""
    try:
        return finite_float(text, "value", "argument")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}") from None


def _data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default=None, help="dataset root (default: the config's data.init_args.root)")
    p.add_argument("--normalize", default=None, choices=list(NORMALIZE_MODES), help="default: the config's")
    p.add_argument("--points", type=_positive, default=None, help="points per cloud (default: model.sample_points)")
    p.add_argument("--cfg", type=_finite, default=None, help="guidance scale (default: the model's)")


def _sample_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``sample`` beyond the common ones (config, weights, steps, seed, output)."""
    _data_arguments(p)
    p.add_argument("--per-class", type=_positive, default=2, help="samples per class")


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``eval`` beyond the common ones (config, weights, steps, seed, output)."""
    _data_arguments(p)
    p.add_argument("--classes", nargs="*", default=None, help="classes to evaluate (default: all)")
    p.add_argument("--n", type=_positive, default=48, help="clouds per class")
    p.add_argument("--emd-points", type=_positive, default=256)
    p.add_argument("--metrics", nargs="+", default=["cd", "emd"], choices=["cd", "emd"])
    p.add_argument(
        "--stored-points",
        type=_positive,
        default=None,
        help="points per stored cloud (default: the config's data points, else 2048); references are normalised "
        "on all of them, then subsampled",
    )


sample_command.add_arguments = _sample_arguments
eval_command.add_arguments = _eval_arguments


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="ditkit-shapes")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="write the procedural dataset")
    d.add_argument("--out", default=None, help="dataset root (default: the --config's data.init_args.root)")
    d.add_argument("--config", default=None, help="an app YAML whose data root receives the dataset")
    d.add_argument("--seed", type=int, default=0)
    for name in ("sample", "eval"):
        p = sub.add_parser(name)
        p.add_argument("--config", required=True, help="the app YAML the run was trained with")
        p.add_argument("--ckpt", default=None, help="checkpoint (default: <default_root_dir>/checkpoints/last.ckpt)")
        p.add_argument("--pretrained", default=None, help="a save_pretrained folder instead of a checkpoint")
        p.add_argument("--steps", type=_positive, default=None, help="solver steps (default: the model's)")
        p.add_argument("--seed", type=int, default=0)
        where = "samples/final" if name == "sample" else "eval"
        p.add_argument("--out", default=None, help=f"output folder (default: <default_root_dir>/{where})")
        (_sample_arguments if name == "sample" else _eval_arguments)(p)
    a = ap.parse_args(argv)
    if a.cmd == "data":
        from ditkit_shapes.procedural import main as data_main

        out = a.out if a.out is not None else (data_settings(a.config).get("root") if a.config else None)
        if out is None:
            ap.error("data: give --out or a --config with data.init_args.root")
        data_main(["--out", str(out), "--seed", str(a.seed)])
        return
    try:
        with_data_defaults(a, a.cmd)
    except ValueError as e:
        ap.error(str(e))
    if a.out is None:
        a.out = str(run_dir(a.config) / ("samples/final" if a.cmd == "sample" else "eval"))
    (cmd_sample if a.cmd == "sample" else cmd_eval)(a)


APP = App(
    name="shapes",
    help="3D point clouds: class-conditional generation and completion of procedural shapes (ditkit_shapes)",
    config="apps/shapes/configs/default.yaml",
    pretrained="apps/shapes/pretrained",
    commands={
        "sample": "ditkit_shapes.cli:sample_command",
        "eval": "ditkit_shapes.cli:eval_command",
        "demo": "ditkit_shapes.demo:demo_command",
    },
    bench="benchmarks/shapes.py",
)
"""``ditkit shapes fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``)."""


if __name__ == "__main__":
    main()
