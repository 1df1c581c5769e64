"""Loaders: every bad record is reported with its line / record number and never stops a load."""

from __future__ import annotations

import pytest

from ditkit_core.errors import DataError
from ditkit_molecules.io import default_smiles_path, load_molecules, read_csv, read_sdf, read_smi, split_records


def test_smi_reports_each_problem_with_its_line(tmp_path):
    p = tmp_path / "mix.smi"
    p.write_text(
        "# comment\n"
        "CCO ethanol\n"  # line 2 ok
        "C1CC( broken\n"  # line 3 syntax error
        "CN(C)(C)(C)C five\n"  # line 4 valence error
        "\n"
        "CC[Se]C selenide\n"  # line 6 unsupported element
        "[CH2]C radical\n"  # line 7 radical
        "CC(=O)[O-].[Na+] salt\n"  # line 8 salt -> acetic acid
        "c1ccccc1 benzene\n"
    )  # line 9 ok
    recs, rep = read_smi(p)
    assert [r.smiles for r in recs] == ["CCO", "CC(=O)O", "c1ccccc1"]
    assert [r.name for r in recs] == ["ethanol", "salt", "benzene"]
    assert rep.read == 7 and rep.kept == 3 and rep.skipped == 4
    by_line = {i.line: (i.kind, i.action) for i in rep.issues}
    assert by_line == {
        3: ("invalid_smiles", "skipped"),
        4: ("invalid_smiles", "skipped"),
        6: ("unsupported_element", "skipped"),
        7: ("radical", "skipped"),
        8: ("multi_fragment", "standardised"),
    }
    assert "valence" in next(i.detail for i in rep.issues if i.line == 4).lower()
    assert "mix.smi:6" in str(next(i for i in rep.issues if i.line == 6))
    assert rep.counts()["invalid_smiles/skipped"] == 2


def test_size_filter_and_no_salts_option(tmp_path):
    p = tmp_path / "a.smi"
    p.write_text("CCCCCCCCCC\nC\nCC.O\nCCO\n")
    recs, rep = read_smi(p, name_column=None, min_heavy_atoms=2, max_heavy_atoms=5, keep_largest_fragment=False)
    assert [r.smiles for r in recs] == ["CCO"]
    assert sorted(i.kind for i in rep.issues) == ["multi_fragment", "size", "size"]


def test_csv_column_option(tmp_path):
    p = tmp_path / "moses.csv"
    p.write_text("ID,SMILES,SPLIT\nm1,CCN,train\nm2,xx,train\nm3,c1ccncc1,test\n")
    recs, rep = read_csv(p, column="SMILES", name_column="ID")
    assert [(r.smiles, r.name, r.record) for r in recs] == [("CCN", "m1", 1), ("c1ccncc1", "m3", 3)]
    assert rep.issues[0].line == 3 and rep.issues[0].kind == "invalid_smiles"
    with pytest.raises(
        DataError, match=r"moses.csv line 1: column='smi': not in the header \['ID', 'SMILES', 'SPLIT'\]"
    ):
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
    assert issue.kind == "broken_record" and issue.record == 2 and issue.field == "atom 1 x"
    start = text[: text.index("junk")].count("\n") + 1
    assert issue.line == start + 4  # the atom line, named with the field and value
    assert f"atom 1 x='not an ato': non-numeric coordinate (record starting at line {start})" in issue.detail


def test_default_data_and_split():
    path = default_smiles_path()
    assert path.name == "first_5K.smi" and path.exists()
    recs, rep = read_smi(path, max_heavy_atoms=9)
    assert rep.read == 4999 and rep.kept == len(recs) > 300
    train, val = split_records(recs, 0.1, seed=0)
    assert not {r.smiles for r in train} & {r.smiles for r in val}
    assert abs(len(val) - 0.1 * (len(train) + len(val))) <= 1


# ------------------------------------------------------------------------------------------------ QM9 xyz
QM9_PROPS = (
    "157.7118 157.70997 157.70699 0. 13.21 -0.3877 0.1171 0.5048 35.3641 0.044749 -40.47893 -40.476062 "
    "-40.475117 -40.498597 6.469".replace(" ", "\t")
)
METHANE = f"""5
gdb 1\t{QM9_PROPS}\t
C\t-0.0126981359\t 1.0858041578\t 0.0080009958\t-0.535689
H\t 2.150416*^-3\t-0.0060313176\t 0.0019761204\t 0.133921
H\t 1.0117308433\t 1.4637511618\t 0.0002765748\t 0.133922
H\t-0.540815069\t 1.4475266138\t-0.8766437152\t 0.133923
H\t-0.5238136345\t 1.4379326443\t 0.9063972942\t 0.133923
1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078
C\tC\t
InChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4
"""


def qm9_record(smiles: str, index: int, given_smiles: str | None = None) -> str:
    """A QM9-format record (ETKDG + MMFF geometry, fake properties / charges, ``*^`` exponents)."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=index)
    AllChem.MMFFOptimizeMolecule(mol)
    pos = mol.GetConformer().GetPositions()
    props = "\t".join(["1.5", "2.5*^-1", "3.25"] + [f"{0.1 * k:.4f}" for k in range(12)])
    atoms = "\n".join(
        f"{a.GetSymbol()}\t{x:.10f}\t{y:.10f}\t{z:.10f}\t{0.01 * i:.6f}*^0"
        for i, (a, (x, y, z)) in enumerate(zip(mol.GetAtoms(), pos))
    )
    s = given_smiles or smiles
    return (
        f"{mol.GetNumAtoms()}\ngdb {index}\t{props}\t\n{atoms}\n"
        + "\t".join(["1000.0"] * 3)
        + f"\n{s}\t{s}\t\nInChI=1S/x\tInChI=1S/x\n"
    )


@pytest.fixture()
def qm9_folder(tmp_path):
    d = tmp_path / "dsgdb9nsd"
    d.mkdir()
    (d / "dsgdb9nsd_000001.xyz").write_text(METHANE)
    (d / "dsgdb9nsd_000002.xyz").write_text(qm9_record("CCO", 2))
    (d / "dsgdb9nsd_000003.xyz").write_text(qm9_record("CC#N", 3, given_smiles="CC=N"))  # SMILES line disagrees
    bad = qm9_record("CCN", 4).splitlines()
    bad[3] = "C\t0.1\tnot-a-number\t0.2\t0.0"  # line 4: broken coordinate
    (d / "dsgdb9nsd_000004.xyz").write_text("\n".join(bad) + "\n")
    far = qm9_record("CO", 5).splitlines()
    far[2] = "C\t40.0\t40.0\t40.0\t0.0"  # the carbon flies away: no valid bond assignment
    (d / "sub").mkdir()
    (d / "sub" / "dsgdb9nsd_000005.xyz").write_text("\n".join(far) + "\n")
    return d


def test_qm9_xyz_folder(qm9_folder):
    from ditkit_molecules.xyz import parse_xyz_record, read_xyz

    recs, rep = load_molecules(qm9_folder)
    assert [r.smiles for r in recs] == ["C", "CCO", "CC#N"]
    assert [r.name for r in recs] == ["gdb 1", "gdb 2", "gdb 3"]
    assert all(r.molblock is not None for r in recs)
    assert recs[0].source == "dsgdb9nsd_000001.xyz"
    assert rep.read == 5 and rep.kept == 3 and rep.skipped == 2
    by_file = {(i.source, i.line): (i.kind, i.action) for i in rep.issues}
    assert by_file == {
        ("dsgdb9nsd_000003.xyz", 1): ("smiles_mismatch", "kept"),
        ("dsgdb9nsd_000004.xyz", 4): ("broken_record", "skipped"),
        ("sub/dsgdb9nsd_000005.xyz", 1): ("broken_record", "skipped"),
    }
    assert "non-numeric" in str(next(i for i in rep.issues if i.line == 4))
    # the geometry is kept exactly, *^ exponents included
    from rdkit import Chem

    mol = Chem.MolFromMolBlock(recs[0].molblock, removeHs=False)
    assert mol.GetNumAtoms() == 5
    assert mol.GetConformer().GetAtomPosition(1).x == pytest.approx(2.150416e-3, abs=1e-4)
    rec = parse_xyz_record(METHANE.splitlines())
    assert rec.name == "gdb 1" and rec.properties["U0"] == -40.47893 and rec.properties["Cv"] == 6.469
    assert rec.charges[0] == -0.535689 and rec.smiles == ["C", "C"] and rec.lines == 10
    recs2, rep2 = read_xyz(qm9_folder, check_smiles=False)
    assert len(recs2) == 3 and "smiles_mismatch/kept" not in rep2.counts()


def test_qm9_tarball_and_concatenated_file(qm9_folder, tmp_path):
    import tarfile

    tar = tmp_path / "dsgdb9nsd.xyz.tar.bz2"
    with tarfile.open(tar, "w:bz2") as t:
        for p in sorted(qm9_folder.rglob("*.xyz")):
            t.add(p, arcname=str(p.relative_to(qm9_folder)))
    recs, rep = load_molecules(tar)
    assert [r.smiles for r in recs] == ["C", "CCO", "CC#N"] and rep.skipped == 2
    # several records in one file: a broken record (atom block too short) does not hide the next one
    one = tmp_path / "many.xyz"
    one.write_text("4\ncomment\nC 0 0 0\nH 0 0 1.09\n" + METHANE + "3\nwater\nO 0 0 0\nH 0.96 0 0\nH -0.24 0.93 0\n")
    recs, rep = load_molecules(one)
    assert [r.smiles for r in recs] == ["C", "O"]
    (issue,) = rep.issues
    assert issue.kind == "broken_record" and issue.record == 1 and issue.line == 5  # where the atom block breaks


def test_qm9_folder_feeds_the_3d_data_module(qm9_folder):
    import numpy as np
    import torch

    from ditkit_molecules.data import Conformer3DDataModule

    dm = Conformer3DDataModule(path=str(qm9_folder), val_fraction=0.0, batch_size=2, cache_dir=None)
    dm.setup("fit")
    assert sorted(dm.train_smiles) == ["CC#N", "CCO"]  # methane: below the 2-heavy-atom minimum
    assert dm.report.counts()["size/skipped"] == 1
    ethanol = next(c for c in dm.train.items if c.smiles == "CCO")
    lines = (qm9_folder / "dsgdb9nsd_000002.xyz").read_text().splitlines()[2:11]
    ref = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines])
    assert ethanol.coords.mean(0) == pytest.approx(np.zeros(3), abs=1e-5)  # the file's geometry, centred
    dist = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(np.sort(dist(ethanol.coords).ravel()), np.sort(dist(ref).ravel()), atol=1e-4)
    batch = next(iter(dm.train_dataloader()))
    assert batch["numbers"].shape[0] == 2 and torch.all(batch["charges"] == 0)


def test_qm9_folder_trains_the_3d_model_from_yaml(tmp_path):
    """``data.init_args.path`` in the app YAML points the 3D model at a QM9 folder."""
    from pathlib import Path

    import yaml

    from ditkit_core.testing import run_config

    d = tmp_path / "qm9"
    d.mkdir()
    for i, s in enumerate(["CCO", "CC#N", "CCN", "OCC=O", "CC(C)O", "C1CC1", "CC(=O)N", "FCC", "COC", "C=CC"], 1):
        (d / f"dsgdb9nsd_{i:06d}.xyz").write_text(qm9_record(s, i))
    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "apps/molecules/configs/debug.yaml").read_text())
    cfg["data"]["init_args"].update(path=str(d), val_fraction=0.2)
    cfg["trainer"].update(default_root_dir=str(tmp_path), logger=False)  # the YAML's loggers: its own run folder
    path = tmp_path / "qm9.yaml"
    path.write_text(yaml.safe_dump(cfg))
    run = run_config(path)
    assert run.trainer.global_step == run.trainer.max_steps
    assert len(run.datamodule.train) == 8 and len(run.datamodule.val) == 2
