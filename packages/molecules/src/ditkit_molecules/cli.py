"""Command line: sample and evaluate trained molecule models (``python -m ditkit_molecules.cli ...``).

* ``sample --config C --ckpt K --out DIR [--n N]``: SMILES file, SDF of conformers (3D model; for the latent model
  ETKDG + MMFF conformers of the generated SMILES) and a PNG grid drawn with RDKit.
* ``eval --config C --ckpt K [--n N] [--out FILE]``: the metric table, training data (the ceiling) and held-out data
  next to the model, as Markdown and JSON.
* ``export --config C --ckpt K --out DIR``: ``save_pretrained`` (safetensors + JSON) for inference.

``--config`` is the app YAML the checkpoint was trained with: it rebuilds the tokenizer (not pickled in the
checkpoint) and the data module (for novelty and the reference sets; conformers / SELFIES come from the cache).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from ditkit_core.app import App
from ditkit_core.lightning import save_pretrained

LATENT_MODULE = "ditkit_molecules.module_latent.LatentMoleculeModule"


def is_latent_config(config: str | Path) -> bool:
    """Whether an app YAML trains the latent model."""
    from ditkit_core.lightning import read_config

    return (read_config(config).get("model") or {}).get("class_path") == LATENT_MODULE


def load_latent_run(config: str | Path, ckpt: str | Path, *, setup_data: bool = True) -> tuple[Any, Any]:
    """``(module, datamodule)`` of a trained latent run: weights through :func:`ditkit_core.lightning.load_run`, the
    data module from the YAML's ``data`` section (allow-listed classes only)."""
    from ditkit_core.lightning import load_run as core_load_run

    module = core_load_run(config, ckpt)
    return module, datamodule(config, module, setup_data=setup_data)


def datamodule(config: str | Path, module: Any, *, setup_data: bool = True) -> Any:
    """The data module of an app YAML's ``data`` section (allow-listed classes only); set up, it gives ``module``
    its training SMILES (for novelty)."""
    from ditkit_core.errors import DataError
    from ditkit_core.lightning import from_config, read_config

    section = read_config(config).get("data")
    if not isinstance(section, dict) or "class_path" not in section:
        raise DataError("no data section with a class_path", path=config, field="data")
    dm = from_config(section, f"{config}: data")
    if setup_data:
        dm.setup("fit")
        module.train_smiles = set(dm.train_smiles)
    return dm


def load_run(config: str | Path, ckpt: str | Path | None, *, setup_data: bool = True) -> tuple[Any, Any]:
    """``(module, datamodule)`` from an app YAML and a Lightning checkpoint (None: untrained weights); latent runs
    load through :func:`load_latent_run`."""
    import lightning as L

    if ckpt is not None and is_latent_config(config):
        return load_latent_run(config, ckpt, setup_data=setup_data)
    from jsonargparse import ArgumentParser

    cfg = yaml.safe_load(Path(config).read_text())
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")
    parser.add_subclass_arguments(L.LightningDataModule, "data")
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # jsonargparse >= 4.49
    built = instantiate(parser.parse_object({"model": cfg["model"], "data": cfg["data"]}))
    module, dm = built.model, built.data
    if ckpt is not None:  # the run's own hyper-parameters and weights (allow-listed, earlier layouts migrated)
        from ditkit_core.lightning import load_run as core_load_run

        module = core_load_run(config, ckpt)
    module.eval()
    if setup_data:
        dm.setup("fit")
        module.train_smiles = set(dm.train_smiles)
    return module, dm


def is_3d(module: Any) -> bool:
    return hasattr(module, "sample_molecules")


EDM_KEYS = ["edm_atom_stability", "edm_mol_stability", "edm_validity", "edm_uniqueness", "molecules_per_cpu_s"]
"""3D eval columns beside the xyz2mol ones: the EDM protocol (:mod:`ditkit_molecules.edm`) and throughput."""


def check_sampling(
    *,
    n: int = 1,
    steps: int | None = None,
    batch: int = 1,
    props: Tensor | None = None,
    cfg_scale: float | None = None,
) -> None:
    """Validate sampling arguments; the ``ValueError`` names the argument and its value."""
    for name, v in (("n", n), ("batch", batch), ("steps", steps)):
        if v is None and name == "steps":
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}={v!r}: must be an integer >= 1")
    if props is not None:
        p = torch.as_tensor(props, dtype=torch.float32)
        if p.shape != (3,) or not bool(torch.isfinite(p).all()):
            raise ValueError(f"props={props!r}: must be three finite numbers (QED, logP, MW / 100)")
    if cfg_scale is not None and not math.isfinite(float(cfg_scale)):
        raise ValueError(f"cfg_scale={cfg_scale!r}: must be a finite number")


def generate(
    module: Any,
    n: int,
    seed: int = 0,
    steps: int | None = None,
    batch: int = 250,
    props: Tensor | None = None,
    cfg_scale: float | None = None,
) -> list[Any]:
    """``n`` samples: :class:`~ditkit_molecules.geometry.Conformer` s (3D) or SMILES (latent; optionally guided to
    ``props`` = (QED, logP, MW / 100)), in batches.

    Raises:
        ValueError: naming the argument and value: ``n`` / ``batch`` < 1, ``steps`` < 1, ``props`` not three finite
            numbers, ``cfg_scale`` not finite.
    """
    check_sampling(n=n, steps=steps, batch=batch, props=props, cfg_scale=cfg_scale)
    out: list[Any] = []
    for i, start in enumerate(range(0, n, batch)):
        k = min(batch, n - start)
        if is_3d(module):
            out += module.sample_molecules(k, seed=seed + i, steps=steps)
        else:
            out += module.sample_smiles(k, seed=seed + i, steps=steps, props=props, cfg_scale=cfg_scale)
    return out


def cmd_sample(args: argparse.Namespace) -> None:
    module, _ = load_run(args.config, args.ckpt, setup_data=False)
    sample_command(module, args)


def parse_props(text: str | None) -> Tensor | None:
    """``--props`` 'qed,logp,mw100' as a tensor (None: unconditional).

    Raises:
        ValueError: not three comma-separated numbers.
    """
    if not text:
        return None
    try:
        return torch.tensor([float(v) for v in text.split(",")])
    except ValueError:
        raise ValueError(f"props={text!r}: must be three comma-separated numbers 'qed,logp,mw100'") from None


@torch.no_grad()
def sample_command(module: Any, args: argparse.Namespace) -> None:
    """Samples of a loaded run in the folder ``args.out``: SMILES, SDF conformers and (latent) a PNG grid.

    ``ditkit molecules sample`` calls it as ``(module, args)`` (``args.steps`` None: the module's).
    """
    from ditkit_molecules.geometry import Conformer, embed, mol_to_arrays
    from ditkit_molecules.metrics import canonical
    from ditkit_molecules.viz import draw_grid, unwritable, write_3d_outputs, write_sdf, write_smiles

    out = Path(args.out)
    props = parse_props(args.props)
    samples = generate(module, args.n, args.seed, args.steps, props=props, cfg_scale=args.cfg_scale)
    if is_3d(module):
        bad = unwritable(samples)
        if bad:
            print(f"{len(bad)} of {len(samples)} samples are unphysical and left out of the SDF (e.g. {bad[0][1]})")
        paths = write_3d_outputs(samples, out, "molecules3d")
        from ditkit_molecules.metrics import geometry_metrics

        geometry_metrics(samples, set(), None, with_fcd=False)  # fills in the SMILES of the valid samples
        paths.append(write_smiles([m.smiles for m in samples], out / "molecules3d.smi"))
    else:
        paths = [write_smiles(samples, out / "latent.smi"), draw_grid(samples, out / "latent.png")]
        confs = []
        for s in samples:
            c = canonical(s)
            mol = embed(c, args.seed) if c else None
            if mol is not None:
                confs.append(Conformer(c, *mol_to_arrays(mol)))
        paths.append(write_sdf(confs, out / "latent_conformers.sdf"))
    for p in paths:
        print(f"wrote {p}")


def evaluate(
    module: Any, dm: Any, n: int, seed: int = 0, steps: int | None = None, with_fcd: bool = True
) -> dict[str, dict[str, float]]:
    """Metric rows: ``training data`` (ceiling), ``held-out data`` and ``model``; novelty is against training."""
    from ditkit_molecules.metrics import geometry_metrics, smiles_metrics

    train, val = list(dm.train_smiles), list(dm.val_smiles)
    rows: dict[str, dict[str, float]] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    samples = generate(module, n, seed, steps)
    dt = time.perf_counter() - t0
    if is_3d(module):  # plus the EDM protocol (distance-table bonds) and EDM's own QM9 figures
        from ditkit_molecules.edm import edm_metrics, reported_row

        cpu = time.process_time() - c0
        rows["training data"] = geometry_metrics(list(dm.train.items[:n]), train, val, with_fcd)
        rows["held-out data"] = geometry_metrics(list(dm.val.items[:n]), train, val, False)  # FCD = 0 by definition
        rows["model"] = geometry_metrics(samples, train, val, with_fcd)
        for name, mols in (("training data", dm.train.items[:n]), ("held-out data", dm.val.items[:n])):
            rows[name].update(edm_metrics(list(mols)))
        rows["model"].update(edm_metrics(samples))
        rows["model"]["molecules_per_cpu_s"] = n / max(cpu, 1e-9)
        untrained = type(module)(**dict(module.hparams))  # prior-only control: the same sampler, fresh weights
        untrained.size_hist.copy_(module.size_hist)
        control = generate(untrained, n, seed, steps)
        rows["untrained model (same sampler)"] = {
            **geometry_metrics(control, train, val, False),
            **edm_metrics(control),
        }
        rows["EDM on QM9 (reported)"] = reported_row()
    else:
        rows["training data"] = smiles_metrics(train[:n], train, val, with_fcd)
        rows["held-out data"] = smiles_metrics(val[:n], train, val, False)  # it is the FCD reference
        rows["model"] = smiles_metrics(samples, train, val, with_fcd)
    rows["model"]["molecules_per_s"] = n / dt
    return rows


def conditioning_error(module: Any, dm: Any, n: int, seed: int = 0, cfg_scale: float = 2.0) -> dict[str, float]:
    """Property control of the latent model: mean absolute error between the (QED, logP, MW) of molecules generated
    for the properties of ``n`` held-out molecules and those targets, with guidance (``cond_*``) and without
    (``uncond_*``, the same targets compared with unconditional samples). Invalid samples are left out.
    """
    from ditkit_molecules.data import PROPERTY_NAMES, properties

    targets = torch.stack(list(dm.val.props[:n]))  # [n, 3]
    out: dict[str, float] = {}
    for tag, props in (("cond", targets), ("uncond", None)):
        smiles = module.sample_smiles(len(targets), props=props, seed=seed, cfg_scale=cfg_scale)
        errs = [(torch.tensor(p) - t).abs() for s, t in zip(smiles, targets) if s and (p := properties(s)) is not None]
        mae = torch.stack(errs).mean(0) if errs else torch.full((3,), float("nan"))
        for name, v in zip(PROPERTY_NAMES, mae.tolist()):
            out[f"{tag}_{name}_mae"] = v
    return out


def _json_clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cmd_eval_latent(args: argparse.Namespace, module: Any, dm: Any) -> None:
    """The latent model's evaluation with its controls and goals (:mod:`ditkit_molecules.latent_eval`)."""
    from ditkit_molecules.latent_eval import evaluate_latent, format_latent_report
    from ditkit_molecules.metrics import format_table

    result = evaluate_latent(module, dm, args.n, args.seed, args.steps, not args.no_fcd)
    lines = [f"data: {dm.report.summary() if dm.report is not None else ''}"]
    lines += [f"SELFIES: {r.summary()}" for r in dm.selfies_report.values()]
    table = "\n".join(lines) + "\n\n" + format_latent_report(result)
    if module.config.cond_dim:
        ce = conditioning_error(module, dm, min(args.n, len(dm.val)), args.seed)
        result["property control"] = ce
        table += "\n\nproperty control (MAE to held-out targets; QED, logP, MW/100):\n\n" + format_table(
            {
                "guided (cfg 2)": {k[5:]: v for k, v in ce.items() if k.startswith("cond_")},
                "unconditional": {k[7:]: v for k, v in ce.items() if k.startswith("uncond_")},
            }
        )
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(f"{args.config} ({args.ckpt}), n={args.n}\n\n{table}\n")
        out.with_suffix(".json").write_text(json.dumps(_json_clean(result), indent=2))
        print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def cmd_eval(args: argparse.Namespace) -> None:
    module, dm = load_run(args.config, args.ckpt)
    evaluate_run(args, module, dm)


@torch.no_grad()
def eval_command(module: Any, args: argparse.Namespace) -> None:
    """``ditkit molecules eval``: the metric table of a loaded run as ``eval.md`` / ``eval.json`` in ``args.out``."""
    args.out = str(Path(args.out) / "eval")
    evaluate_run(args, module, datamodule(args.config, module))


def evaluate_run(args: argparse.Namespace, module: Any, dm: Any) -> None:
    """The metric table of ``module`` on ``dm`` (printed; ``<args.out>.md`` / ``.json`` when ``args.out`` is set)."""
    from ditkit_molecules.metrics import format_table

    if not is_3d(module):
        return cmd_eval_latent(args, module, dm)
    rows = evaluate(module, dm, args.n, args.seed, args.steps, not args.no_fcd)
    keys = ["validity", "uniqueness", "novelty", "qed", "sa", "int_div", "fcd"]
    if is_3d(module):
        keys = ["atom_stability", "mol_stability", "connected", "rmsd_mmff", *keys, *EDM_KEYS]
    table = format_table(rows, keys)
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".md").write_text(f"{args.config} ({args.ckpt}), n={args.n}\n\n{table}\n")
        clean = {
            k: {m: (None if isinstance(v, float) and math.isnan(v) else v) for m, v in r.items()}
            for k, r in rows.items()
        }
        out.with_suffix(".json").write_text(json.dumps(clean, indent=2))
        print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")


def cmd_export(args: argparse.Namespace) -> None:
    module, _ = load_run(args.config, args.ckpt, setup_data=False)
    print(f"wrote {save_pretrained(module, args.out)}")


def _arguments(s: argparse.ArgumentParser, command: str) -> None:
    """The flags of ``command`` beyond the common ones (config, checkpoint, seed, steps, output)."""
    s.add_argument("--n", type=int, default=200 if command == "eval" else 64, help="molecules")
    s.add_argument("--no-fcd", action="store_true", help="skip FCD")
    s.add_argument("--props", default=None, help="latent model: target 'qed,logp,mw100' for sample")
    s.add_argument("--cfg-scale", type=float, default=2.0, help="guidance scale with --props")


sample_command.add_arguments = lambda p: _arguments(p, "sample")
eval_command.add_arguments = lambda p: _arguments(p, "eval")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="ditkit_molecules.cli", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("sample", "eval", "export"):
        s = sub.add_parser(name)
        s.add_argument("--config", required=True, help="app YAML the checkpoint was trained with")
        s.add_argument(
            "--ckpt", default=None, help="Lightning checkpoint (default: <default_root_dir>/checkpoints/last.ckpt)"
        )
        s.add_argument("--seed", type=int, default=0)
        s.add_argument("--steps", type=int, default=None, help="solver steps (default: the module's)")
        s.add_argument("--out", default=None)
        _arguments(s, name)
    args = p.parse_args(argv)
    if args.ckpt is None:
        from ditkit_core.lightning import default_checkpoint

        args.ckpt = default_checkpoint(args.config)
    if args.cmd in ("sample", "export") and not args.out:
        p.error(f"{args.cmd} needs --out")
    try:
        props = parse_props(args.props)
        check_sampling(n=args.n, steps=args.steps, props=props, cfg_scale=args.cfg_scale)
    except ValueError as e:
        p.error(f"--{e}".replace("cfg_scale=", "cfg-scale="))
    with torch.no_grad():  # scoped: callers (tests, notebooks) keep their grad mode
        {"sample": cmd_sample, "eval": cmd_eval, "export": cmd_export}[args.cmd](args)


APP = App(
    name="molecules",
    help="molecules: 3D conformers (QM9) and latent SMILES / SELFIES generation (ditkit_molecules)",
    config="apps/molecules/configs/default.yaml",
    pretrained="apps/molecules/pretrained",
    commands={
        "sample": "ditkit_molecules.cli:sample_command",
        "eval": "ditkit_molecules.cli:eval_command",
        "demo": "ditkit_molecules.demo:demo_command",
    },
    bench="benchmarks/molecules.py",
)
"""``ditkit molecules fit|sample|eval|distill|bench`` (entry point ``ditkit.apps``)."""


if __name__ == "__main__":
    main()
