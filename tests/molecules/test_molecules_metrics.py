"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from ditkit_molecules.geometry import conformers
from ditkit_molecules.metrics import (
    fcd_available,
    format_table,
    geometry_metrics,
    internal_diversity,
    sa_score,
    smiles_metrics,
)


def test_validity_uniqueness_novelty_exact():
    gen = ["CCO", "OCC", "c1ccccc1", "C1CC(", "", "CCN", "CCN", "CCCl"]
    m = smiles_metrics(gen, train={"CCO", "c1ccccc1"}, with_fcd=False)
    assert m["validity"] == 6 / 8  # the broken and the empty string are invalid
    assert m["uniqueness"] == 4 / 6  # CCO == OCC, CCN twice
    assert m["novelty"] == 2 / 4  # CCN and CCCl are new
    assert 0 < m["qed"] < 1 and 1 <= m["sa"] <= 10


def test_sa_and_diversity_orders():
    from rdkit import Chem

    easy, hard = (
        sa_score(Chem.MolFromSmiles("c1ccccc1")),
        sa_score(Chem.MolFromSmiles("CC1(C)C2CCC1(C)C(=O)C2")),
    )  # camphor
    assert easy < hard
    assert internal_diversity(["CCO", "CCO"]) == 0.0
    assert internal_diversity(["CCO", "c1ccc2ccccc2c1"]) > 0.8
    assert math.isnan(internal_diversity(["CCO"]))


@pytest.mark.skipif(not fcd_available(), reason="fcd_torch (extra [fcd]) not installed")
def test_fcd_small_for_same_distribution():
    a = ["CCO", "CCN", "CCC", "c1ccccc1", "CC(=O)O", "CCOC", "c1ccncc1", "CCCl"] * 2
    b = [
        "c1ccc2ccccc2c1",
        "O=C(O)c1ccccc1C(=O)O",
        "CCCCCCCCCCCC",
        "FC(F)(F)F",
        "ClC(Cl)(Cl)Cl",
        "N#Cc1ccccc1",
        "O=[N+]([O-])c1ccccc1",
        "CC(C)(C)C",
    ] * 2
    same = smiles_metrics(a, train=[], reference=a)["fcd"]
    other = smiles_metrics(a, train=[], reference=b)["fcd"]
    assert same < 1e-3 < other


def test_geometry_metrics_on_real_conformers_is_the_ceiling():
    mols = conformers(["CCO", "c1ccccc1O", "CC(=O)N", "CCS"], seed=0)
    m = geometry_metrics(mols, train=["CCO"], with_fcd=False)
    assert m["atom_stability"] == 1.0 and m["mol_stability"] == 1.0 and m["validity"] == 1.0
    assert m["connected"] == 1.0 and m["novelty"] == 0.75 and m["rmsd_mmff"] < 0.05
    assert [x.smiles for x in mols] == ["CCO", "Oc1ccccc1", "CC(N)=O", "CCS"]
    table = format_table({"data": m}, ["validity", "atom_stability"])
    assert table.splitlines()[2] == "| data | 1.000 | 1.000 |"
