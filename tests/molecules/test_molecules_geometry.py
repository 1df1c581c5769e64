"""Conformers, bond inference and valence-rule stability, MMFF RMSD."""

from __future__ import annotations

import numpy as np

from ditkit_molecules.geometry import conformers, embed, infer_bonds, mmff_rmsd, mol_to_arrays
from ditkit_molecules.metrics import canonical


def test_bond_inference_recovers_molecules():
    from rdkit import Chem

    for smi in ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(Cl)cc1", "C[N+](=O)[O-]", "O=S(=O)(N)c1ccccc1"]:
        numbers, charges, coords = mol_to_arrays(embed(smi, seed=1))
        b = infer_bonds(numbers, coords, charges)
        assert b.stable, smi
        assert canonical(Chem.MolToSmiles(Chem.RemoveHs(b.mol))) == canonical(smi)


def test_broken_geometry_is_unstable():
    numbers, charges, coords = mol_to_arrays(embed("CCCC", seed=0))
    squashed = infer_bonds(numbers, coords * 0.55, charges)  # carbons get too many neighbours
    assert not squashed.stable and not squashed.atom_stable[numbers == 6].any()
    far = coords * 3.0  # no bonds at all
    assert not infer_bonds(numbers, far, charges).atom_stable.any()


def test_mmff_rmsd_is_zero_at_the_minimum_and_positive_off_it():
    mol = embed("CCOC(=O)C", seed=0)
    assert mmff_rmsd(mol) < 0.05
    rng = np.random.default_rng(0)
    conf = mol.GetConformer()
    for i in range(mol.GetNumAtoms()):
        p = conf.GetAtomPosition(i)
        conf.SetAtomPosition(i, (p.x + rng.normal(0, 0.2), p.y + rng.normal(0, 0.2), p.z + rng.normal(0, 0.2)))
    assert mmff_rmsd(mol) > 0.1


def test_conformer_cache_round_trip(tmp_path):
    smiles = ["CCO", "CCN", "c1ccccc1"]
    first = conformers(smiles, seed=3, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("conformers_*.npz"))) == 1
    again = conformers(smiles, seed=3, cache_dir=tmp_path)
    for a, b in zip(first, again):
        assert a.smiles == b.smiles
        np.testing.assert_array_equal(a.numbers, b.numbers)
        np.testing.assert_allclose(a.coords, b.coords)
        np.testing.assert_allclose(a.coords.mean(0), 0, atol=1e-5)  # centred
    assert [int((c.numbers == 1).sum()) for c in first] == [6, 7, 6]  # explicit hydrogens
