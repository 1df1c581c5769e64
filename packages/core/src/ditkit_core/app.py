"""Apps for the ``ditkit`` command: one set of commands and flags for every domain.

A domain package declares its apps as entry points (group ``ditkit.apps``, e.g. ``tts = "ditkit_audio.cli:APP"``),
each an :class:`App`: a name, a one-line help, its default YAML, its shipped weights and the functions behind
``sample`` / ``eval`` (and any extra command), named as ``"module:function"`` strings so nothing heavy is imported
until a command runs. Every app then has the same commands with the same flags::

    ditkit <app> fit     [--config C] [--trainer.* ...]      train (LightningCLI; extra arguments pass through)
    ditkit <app> sample  [--config C] [--pretrained P | --ckpt K] [--out O] [--steps N] [--device D] [--seed S]
                         [--cache none|block|step|expert] [--compile]
    ditkit <app> eval    (same flags)                        metrics next to their controls, JSON + markdown
    ditkit <app> distill (same flags) [--method shortcut|reflow] [--student-steps 1 2 4] [--max-steps N]
    ditkit <app> export  (same flags) [--out DIR] [--half]    the run as a pretrained folder (+ its training loss log)
    ditkit <app> demo    (same flags)                        samples + quick metrics from the shipped weights, for
                                                             the report of ``ditkit demo`` (``demo.json`` in --out)
    ditkit <app> bench   [args ...]                          the app's benchmark script (JSON lines)

Weights come from ``--pretrained`` or ``--ckpt``, else from the config's run folder
(``<trainer.default_root_dir>/checkpoints/last.ckpt``), else from the app's shipped weights (said on stderr).
A missing run gives a one-line error naming the command that makes it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COMMON = ("sample", "eval")
BUILTIN = ("distill", "export")


def _load(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class App:
    """One app of the ``ditkit`` command (see the module docstring).

    Args:
        name: the app's name (``ditkit <name> ...``).
        help: one line for ``ditkit --help``.
        config: default YAML (relative to the working directory, as in the repository).
        pretrained: shipped weights folder (``save_pretrained`` format), used when no local run exists.
        commands: command -> ``"module:function"``; ``sample`` / ``eval`` functions take ``(module, args)``, other
            commands take ``(argv)``. A function may carry ``add_arguments(parser)`` for its own flags.
        bench: benchmark script for ``ditkit <app> bench``.
        shipped: further YAMLs with their own shipped weights (``{config: folder}``); ``--config`` one of them
            falls back to its folder instead of ``pretrained`` (:meth:`shipped_for`).
    """

    name: str
    help: str
    config: str
    pretrained: str | None = None
    commands: dict[str, str] = field(default_factory=dict)
    bench: str | None = None
    shipped: dict[str, str] = field(default_factory=dict)

    def shipped_for(self, config: str | Path) -> str | None:
        """The shipped weights trained with ``config``: ``pretrained`` for the default YAML, its entry in
        ``shipped`` for another one, else None."""
        want = Path(config).resolve()
        for cfg, folder in {self.config: self.pretrained, **self.shipped}.items():
            if Path(cfg).resolve() == want:
                return folder
        return None

    # ------------------------------------------------------------------ parsing
    def parser(self, command: str) -> argparse.ArgumentParser:
        p = argparse.ArgumentParser(prog=f"ditkit {self.name} {command}", description=self.help)
        p.add_argument("--config", default=self.config, help=f"app YAML (default: {self.config})")
        if command in ("fit", "bench"):
            return p
        p.add_argument("--pretrained", help="a pretrained folder (model.safetensors + config.json)")
        p.add_argument(
            "--ckpt",
            help="a Lightning checkpoint of a run (default: the config's run folder, then the shipped weights)",
        )
        p.add_argument("--out", help="output folder (default: <run folder>/<command>)")
        p.add_argument("--steps", type=int, help="solver steps (default: the model's sampler.steps)")
        p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
        p.add_argument("--seed", type=int, default=0, help="random seed of the noise")
        p.add_argument(
            "--cache",
            choices=("none", "block", "step", "expert"),
            help="training-free sampling cache (default: the model's sampler.cache)",
        )
        p.add_argument(
            "--compile",
            action="store_true",
            help="compile every DiT block once (torch.compile, regional); the first call pays the compilation",
        )
        if command == "export":
            p.add_argument("--half", action="store_true", help="store the weights in float16 (half the size)")
        if command == "distill":
            p.add_argument("--method", choices=("shortcut", "reflow"), default="shortcut", help="distillation method")
            p.add_argument("--student-steps", type=int, nargs="+", default=[1, 2, 4], help="student step counts")
            p.add_argument("--teacher-steps", type=int, default=32, help="teacher solver steps")
            p.add_argument("--batches", type=int, default=64, help="training batches sampled by the teacher")
            p.add_argument("--max-steps", type=int, default=2000, help="student optimisation steps")
        fn = self.commands.get(command)
        if fn is not None:
            extra = getattr(_load(fn), "add_arguments", None)
            if extra is not None:
                extra(p)
        return p

    def commands_help(self) -> str:
        names = ["fit", *sorted(set(COMMON) | set(self.commands)), *BUILTIN] + (["bench"] if self.bench else [])
        return ", ".join(dict.fromkeys(names))

    # ------------------------------------------------------------------ running
    def run(self, argv: list[str]) -> int:
        if not argv or argv[0] in ("-h", "--help"):
            print(
                f"usage: ditkit {self.name} {{{self.commands_help()}}} [flags]\n\n{self.help}\n\n"
                f"Run `ditkit {self.name} <command> --help` for the flags of a command."
            )
            return 0
        command, rest = argv[0], argv[1:]
        if command == "fit":
            return self._fit(rest)
        if command == "bench":
            return self._bench(rest)
        if command not in (*COMMON, *BUILTIN, *self.commands):
            print(
                f"ditkit {self.name}: unknown command {command!r}; choose one of {self.commands_help()}",
                file=sys.stderr,
            )
            return 2
        args = self.parser(command).parse_args(rest)
        if command == "distill":
            return self._distill(args)
        if command == "export":
            return self._export(args)
        if command == "demo" and args.pretrained is None and args.ckpt is None and self.pretrained:
            args.pretrained = self.pretrained  # the demo shows the shipped weights unless told otherwise
        if command not in self.commands:
            print(f"ditkit {self.name}: this app has no {command!r} command", file=sys.stderr)
            return 2
        if args.out is None:
            args.out = str(self.run_dir(args.config) / command)
        fn = _load(self.commands[command])
        # a function that trains its own model (the toy demo) sets ``trains = True`` and gets no module
        try:
            module = None if getattr(fn, "trains", False) else self.load(args)
            result = fn(module, args)
        except FileNotFoundError as e:  # missing data / weights: the message names the command that makes them
            if os.environ.get("DITKIT_TRACEBACK"):
                raise
            print(f"ditkit {self.name} {command}: {e}", file=sys.stderr)
            return 2
        if command == "demo":
            from ditkit_core.lightning.pretrained import LOG_NAME
            from ditkit_core.report import write_manifest

            shipped_log = Path(args.pretrained or "") / LOG_NAME
            if isinstance(result, dict) and not result.get("log") and args.pretrained and shipped_log.exists():
                result["log"] = shipped_log  # the loss curve the shipped weights were trained with

            print(f"wrote {write_manifest(result, args.out, app=self.name, help=self.help)}")
            return 0
        return 0 if result is None or result is True or not isinstance(result, int) else result

    def _fit(self, rest: list[str]) -> int:
        from ditkit_core.lightning.cli import FlowCLI

        args = list(rest)
        if "--config" not in args and not any(a.startswith("--config=") for a in args):
            args = ["--config", self.config, *args]
        FlowCLI(args=["fit", *args])
        return 0

    def _bench(self, rest: list[str]) -> int:
        import runpy

        if not self.bench:
            print(f"ditkit {self.name}: no benchmark", file=sys.stderr)
            return 2
        sys.argv = [self.bench, *rest]
        runpy.run_path(self.bench, run_name="__main__")
        return 0

    def _distill(self, args: argparse.Namespace) -> int:
        from ditkit_core.lightning.distill import main as distill

        ckpt, pretrained = self.weights(args)
        out = args.out or str(self.run_dir(args.config) / "student")
        argv = [
            "--config",
            args.config,
            "--method",
            args.method,
            "--teacher-steps",
            str(args.teacher_steps),
            "--student-steps",
            *map(str, args.student_steps),
            "--batches",
            str(args.batches),
            "--max-steps",
            str(args.max_steps),
            "--seed",
            str(args.seed),
            "--out",
            out,
        ]
        argv += ["--pretrained", str(pretrained)] if pretrained else ["--ckpt", str(ckpt)]
        distill(argv)
        return 0

    def _export(self, args: argparse.Namespace) -> int:
        import torch

        from ditkit_core.lightning.pretrained import export_run

        ckpt, _ = self.weights(args)
        out = Path(args.out or self.run_dir(args.config) / "pretrained")
        logs = sorted(ckpt.parent.parent.rglob("metrics.csv"), key=lambda q: q.stat().st_mtime) if ckpt else []
        export_run(self.load(args), out, logs, torch.float16 if args.half else None)
        print(f"wrote {out}")
        return 0

    @staticmethod
    def run_dir(config: str) -> Path:
        from ditkit_core.lightning.load import run_dir

        return run_dir(config)

    def weights(self, args: argparse.Namespace) -> tuple[Path | None, Path | None]:
        """``(ckpt, pretrained)`` to load: the flags, else the run folder, else the shipped weights."""
        if args.pretrained:
            return None, Path(args.pretrained)
        if args.ckpt:
            return Path(args.ckpt), None
        from ditkit_core.lightning.load import default_checkpoint

        ckpt = default_checkpoint(args.config)
        if ckpt.exists():
            return ckpt, None
        shipped = self.shipped_for(args.config) or self.pretrained
        if shipped and (Path(shipped) / "config.json").exists():
            print(f"[ditkit {self.name}] no local run at {ckpt}: using the shipped weights {shipped}", file=sys.stderr)
            return None, Path(shipped)
        raise SystemExit(
            f"ditkit {self.name}: no trained model at {ckpt} and no shipped weights; train one with "
            f"`ditkit {self.name} fit --config {args.config}` (or `make train-{self.name}`)"
        )

    def load(self, args: argparse.Namespace) -> Any:
        """The trained module for ``sample`` / ``eval`` (see :meth:`weights`), on ``--device``, seeded."""
        import torch

        from ditkit_core.lightning.load import load_run

        ckpt, pretrained = self.weights(args)
        torch.manual_seed(args.seed)
        module = load_run(args.config, ckpt=ckpt, pretrained=pretrained, map_location=args.device)
        if args.steps is not None:
            if args.steps < 1:
                raise SystemExit(f"ditkit {self.name}: --steps={args.steps} must be >= 1")
            module.sampler.steps = args.steps
        if args.cache is not None:
            from ditkit_core.lightning.config import CacheConfig

            module.sampler.cache = CacheConfig(kind=args.cache)
        if getattr(args, "compile", False):
            from ditkit_core.lightning.callbacks import compile_blocks

            compile_blocks(module)
        return module


__all__ = ["App"]
