"""Shared fixtures for the molecules tests (small files written to tmp_path; nothing downloaded)."""

from __future__ import annotations

import pytest

pytest.importorskip("rdkit")


QM9_PROPS = "\t".join(["157.7", "157.7", "157.7", "0.", "13.21", "-0.3877", "0.1171", "0.5048", "35.36", "0.0447"])
QM9_PROPS += "\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469"


@pytest.fixture(scope="session")
def methane_xyz() -> str:
    """A QM9 extended-xyz record of methane (``*^`` exponent included; 10 lines)."""
    return f"""5
gdb 1\t{QM9_PROPS}
C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689
H\t 2.150416*^-3\t-0.0060313176\t 0.0019761204\t 0.133921
H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922
H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923
H\t-0.5238136345\t 1.4379326443\t 0.9063972942\t 0.133923
1341.307\t1341.3284\t1341.365
C\tC
InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4
"""
