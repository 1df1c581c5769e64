"""Loaders: every bad record is reported with its line / record number and never stops a load."""

from __future__ import annotations

import pytest

from ditkit_molecules.io import default_smiles_path, load_molecules, read_csv, read_sdf, read_smi, split_records


def test_smi_reports_each_problem_with_its_line(tmp_path):
    p = tmp_path / "mix.smi"
    p.write_text("# comment\n"
                 "CCO ethanol\n"            # line 2 ok
                 "C1CC( broken\n"           # line 3 syntax error
                 "CN(C)(C)(C)C five\n"      # line 4 valence error
                 "\n"
                 "CC[Se]C selenide\n"       # line 6 unsupported element
                 "[CH2]C radical\n"         # line 7 radical
                 "CC(=O)[O-].[Na+] salt\n"  # line 8 salt -> acetic acid
                 "c1ccccc1 benzene\n")      # line 9 ok
    recs, rep = read_smi(p)
    assert [r.smiles for r in recs] == ["CCO", "CC(=O)O", "c1ccccc1"]
    assert [r.name for r in recs] == ["ethanol", "salt", "benzene"]
    assert rep.read == 7 and rep.kept == 3 and rep.skipped == 4
    by_line = {i.line: (i.kind, i.action) for i in rep.issues}
    assert by_line == {3: ("invalid_smiles", "skipped"), 4: ("invalid_smiles", "skipped"),
                       6: ("unsupported_element", "skipped"), 7: ("radical", "skipped"),
                       8: ("multi_fragment", "standardised")}
    assert "valence" in next(i.detail for i in rep.issues if i.line == 4).lower()
    assert "mix.smi:6" in str(next(i for i in rep.issues if i.line == 6))
    assert rep.counts()["invalid_smiles/skipped"] == 2


def test_size_filter_and_no_salts_option(tmp_path):
    p = tmp_path / "a.smi"
    p.write_text("CCCCCCCCCC\nC\nCC.O\n")
    recs, rep = read_smi(p, name_column=None, min_heavy_atoms=2, max_heavy_atoms=5, keep_largest_fragment=False)
    assert recs == []
    assert sorted(i.kind for i in rep.issues) == ["multi_fragment", "size", "size"]


def test_csv_column_option(tmp_path):
    p = tmp_path / "moses.csv"
    p.write_text("ID,SMILES,SPLIT\nm1,CCN,train\nm2,xx,train\nm3,c1ccncc1,test\n")
    recs, rep = read_csv(p, column="SMILES", name_column="ID")
    assert [(r.smiles, r.name, r.record) for r in recs] == [("CCN", "m1", 1), ("c1ccncc1", "m3", 3)]
    assert rep.issues[0].line == 3 and rep.issues[0].kind == "invalid_smiles"
    with pytest.raises(KeyError, match="no column 'smi'"):
        read_csv(p, column="smi")
    recs2, _ = load_molecules(p, column="smiles")  # case-insensitive header match
    assert len(recs2) == 2


def test_sdf_broken_record_is_skipped_and_3d_kept(tmp_path):
    from rdkit import Chem
    from rdkit.Chem import AllChem

    good = Chem.AddHs(Chem.MolFromSmiles("CCO"))
    AllChem.EmbedMolecule(good, randomSeed=0)
    good.SetProp("_Name", "ethanol")
    flat = Chem.MolFromSmiles("c1ccccc1")
    flat.SetProp("_Name", "benzene")
    broken = "junk\n  header\n\n  2  1  0  0  0  0  0  0  0  0999 V2000\nnot an atom line\n$$$$\n"
    text = Chem.MolToMolBlock(good) + "$$$$\n" + broken + Chem.MolToMolBlock(flat) + "$$$$\n"
    p = tmp_path / "mols.sdf"
    p.write_text(text)
    recs, rep = read_sdf(p)
    assert [r.smiles for r in recs] == ["CCO", "c1ccccc1"]
    assert [r.record for r in recs] == [1, 3]
    assert recs[0].molblock is not None and recs[1].molblock is None  # 3D coordinates kept only when present
    (issue,) = rep.issues
    assert issue.kind == "broken_record" and issue.record == 2
    assert issue.line == text[: text.index("junk")].count("\n") + 1


def test_default_data_and_split():
    path = default_smiles_path()
    assert path.name == "first_5K.smi" and path.exists()
    recs, rep = read_smi(path, max_heavy_atoms=9)
    assert rep.read == 4999 and rep.kept == len(recs) > 300
    train, val = split_records(recs, 0.1, seed=0)
    assert not {r.smiles for r in train} & {r.smiles for r in val}
    assert abs(len(val) - 0.1 * (len(train) + len(val))) <= 1
