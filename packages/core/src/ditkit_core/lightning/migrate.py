"""Rewrite app configs of earlier versions: flat module arguments -> ``flow`` / ``optim`` / ``sampler`` groups.

    python -m ditkit_core.lightning.migrate apps/*/configs/*.yaml          # rewrite in place
    python -m ditkit_core.lightning.migrate --check apps/*/configs/*.yaml  # exit 1 if any file needs it

Domain-specific legacy arguments come from the module class's ``LEGACY_ARGS`` (imported only for ditkit classes).
Comments of the file are kept; the model section is re-emitted in block style.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ditkit_core.lightning.config import migrate_module_args
from ditkit_core.lightning.pretrained import is_trusted


def _legacy_args(class_path: str | None) -> dict[str, tuple[str, str]]:
    if not class_path or not is_trusted(class_path):
        return {}
    try:
        from ditkit_core.lightning.pretrained import _import

        return dict(getattr(_import(class_path), "LEGACY_ARGS", {}) or {})
    except Exception:  # noqa: BLE001 - a class that does not import has no extra legacy args to offer
        return {}


def migrate_config(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Migrate a parsed app config; returns the new config and the moved argument names."""
    model = data.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("init_args"), dict):
        return data, []
    args, moved = migrate_module_args(model["init_args"], _legacy_args(model.get("class_path")))
    if not moved:
        return data, []
    return {**data, "model": {**model, "init_args": args}}, moved


def migrate_config_file(path: str | Path) -> tuple[str, list[str]]:
    """The migrated text of a YAML file and the moved names (the text is unchanged when nothing moved)."""
    import yaml

    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        return text, []
    new, moved = migrate_config(data)
    if not moved:
        return text, []
    head = [ln for ln in text.splitlines() if ln.startswith("#")]
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("model:")), None)
    end = next(
        (
            i
            for i in range((start or 0) + 1, len(lines))
            if lines[i] and not lines[i][0].isspace() and not lines[i].startswith("#")
        ),
        len(lines),
    )
    model_text = yaml.safe_dump({"model": new["model"]}, sort_keys=False, default_flow_style=None, width=120)
    if start is None:
        return "\n".join(head) + "\n" + yaml.safe_dump(new, sort_keys=False), moved
    out = lines[:start] + model_text.rstrip("\n").splitlines() + lines[end:]
    return "\n".join(out) + "\n", moved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ditkit_core.lightning.migrate", description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="YAML configs to migrate in place")
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if a file needs migrating")
    a = ap.parse_args(argv)
    needed = 0
    for f in a.files:
        text, moved = migrate_config_file(f)
        if moved:
            needed += 1
            print(f"{f}: {'needs migrating' if a.check else 'migrated'}: {', '.join(moved)}")
            if not a.check:
                Path(f).write_text(text, encoding="utf-8")
    return 1 if (a.check and needed) else 0


if __name__ == "__main__":
    sys.exit(main())
