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
