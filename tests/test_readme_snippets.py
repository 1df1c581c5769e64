"""Every ```python block of the READMEs (at the start of a line) runs as written, from a folder where the
repository's ``apps/`` is visible, so the user guides' examples cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]


def snippets() -> list[tuple[str, str]]:
    out = []
    for readme in READMES:
        for i, m in enumerate(re.finditer(r"^```python\n(.*?)^```", readme.read_text(), re.S | re.M)):
            out.append((f"{readme.relative_to(ROOT)}#{i}", m.group(1)))
    return out


def test_every_package_readme_has_a_python_example():
    have = {name.split("#")[0] for name, _ in snippets()}
    assert {str(p.relative_to(ROOT)) for p in READMES} <= have


@pytest.mark.parametrize("name,code", snippets(), ids=[n for n, _ in snippets()])
def test_readme_snippet_runs(name, code, tmp_path, monkeypatch):
    (tmp_path / "apps").symlink_to(ROOT / "apps")
    monkeypatch.chdir(tmp_path)  # files the example writes land here
    exec(compile(code, name, "exec"), {"__name__": "__readme__"})
