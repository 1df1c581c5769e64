"""Layering: the core imports no domain package; a domain imports the core and never a sibling."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p.name for p in (ROOT / "packages").iterdir() if (p / "src").is_dir())
DOMAINS = [p for p in PACKAGES if p != "core"]


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_respect_layers(package):
    allowed_ditkit = {f"ditkit_{package}"} | ({"ditkit_core"} if package != "core" else set())
    bad = []
    for f in (ROOT / "packages" / package / "src").rglob("*.py"):
        for root in imported_roots(f):
            if root.startswith("ditkit_") and root not in allowed_ditkit:
                bad.append(f"{f.relative_to(ROOT)} imports {root}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_core_import_is_light():
    import subprocess
    import sys

    code = "import sys, ditkit_core; print(sorted(m for m in ('lightning', 'matplotlib', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"import ditkit_core pulled in {out}"


def _core_all(module: str) -> set[str] | None:
    import importlib

    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    return set(names) if names is not None else None


@pytest.mark.parametrize("package", DOMAINS)
def test_domains_import_only_public_core_names(package):
    """``from ditkit_core.x import Name`` in a domain: ``Name`` is listed in ``ditkit_core.x.__all__``."""
    bad = []
    for f in (ROOT / "packages" / package / "src").rglob("*.py"):
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ditkit_core"):
                public = _core_all(node.module)
                for alias in node.names:
                    is_module = importlib_util_find(f"{node.module}.{alias.name}")
                    if not is_module and (public is None or alias.name not in public):
                        bad.append(f"{f.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}")
    assert not bad, "private core names used by a domain:\n" + "\n".join(bad)


def importlib_util_find(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@pytest.mark.parametrize("package", DOMAINS)
def test_domains_extend_the_core_through_seams_only(package):
    """No domain overrides the block loop, patches a forward, registers a forward hook or re-assigns self.model."""
    import re

    pattern = re.compile(r"def run_blocks|\.forward = |register_forward_hook|register_forward_pre_hook")
    bad = []
    for f in (ROOT / "packages" / package / "src").rglob("*.py"):
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if pattern.search(line) or re.search(r"\bself\.model\s*=", line):
                bad.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not bad, "seams bypassed:\n" + "\n".join(bad)
