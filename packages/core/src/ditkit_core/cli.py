"""``ditkit``: one command for every app (``ditkit <app> fit|sample|eval|distill|bench``) and for any config.

    ditkit --help                     the apps installed (entry points ``ditkit.apps``) and the generic commands
    ditkit <app> <command> --help     the flags of a command (the same flags in every app)
    ditkit fit --config C [...]       train any LightningCLI config (generic; extra arguments pass through)
    ditkit validate --config C --ckpt_path K
    ditkit migrate FILE...            rewrite configs of earlier versions (flat module arguments -> groups)
    ditkit demo [--apps A ...]        every app's demo from its shipped weights -> outputs/demo/index.html

Imports stay lazy: ``ditkit --help`` reads the entry points' names only and answers without importing torch.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

GENERIC = {
    "fit": "train any config: ditkit fit --config apps/<app>/configs/default.yaml [--trainer.* ...]",
    "validate": "validate a checkpoint: ditkit validate --config C --ckpt_path K",
    "migrate": "rewrite app configs of earlier versions: ditkit migrate FILE...",
    "demo": "every app's samples and metrics from its shipped weights -> outputs/demo/index.html",
}


def _apps() -> dict[str, object]:
    return {ep.name: ep for ep in sorted(entry_points(group="ditkit.apps"), key=lambda e: e.name)}


def _help(apps: dict[str, object]) -> str:
    lines = [
        "usage: ditkit <app> {fit,sample,eval,distill,bench} [flags]",
        "       ditkit {fit,validate,migrate} ...",
        "",
        "apps:",
    ]
    lines += [f"  {name:<14} ditkit {name} --help" for name in apps] or ["  (none installed)"]
    lines += ["", "generic commands:"] + [f"  {k:<14} {v}" for k, v in GENERIC.items()]
    lines += ["", "Every app command takes --config, --pretrained, --ckpt, --out, --steps, --device, --seed, --cache."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    apps = _apps()
    if not argv or argv[0] in ("-h", "--help"):
        print(_help(apps))
        return 0
    head, rest = argv[0], argv[1:]
    if head in ("fit", "validate"):
        from ditkit_core.lightning.cli import FlowCLI

        FlowCLI(args=[head, *rest])
        return 0
    if head == "demo":
        from ditkit_core.demo import main as demo

        return demo(rest)
    if head == "migrate":
        from ditkit_core.lightning.migrate import main as migrate

        return migrate(rest)
    if head not in apps:
        print(
            f"ditkit: unknown app or command {head!r}; apps: {', '.join(apps) or 'none'}; "
            f"commands: {', '.join(GENERIC)}",
            file=sys.stderr,
        )
        return 2
    return apps[head].load().run(rest)


if __name__ == "__main__":
    sys.exit(main())
