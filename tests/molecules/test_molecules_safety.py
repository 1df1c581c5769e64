"""Regression tests of the hardening: caches, oversized fields, header-less CSV, SDF faults, visible reports, empty
loads, unphysical samples, QM9 fields, argument validation."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ditkit_core.errors import DataError
from ditkit_molecules.geometry import Conformer
from ditkit_molecules.io import load_molecules, read_csv, read_sdf, read_smi

SMILES = ["CCO", "CC(=O)N", "c1ccncc1"]


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


# ------------------------------------------------------------------------------------------------ 1. caches
def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(len(data)))
    else:  # a complete zip whose arrays are wrong: NaN coordinates, a pickled object array, a wrong shape
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        key = "coords" if "coords" in arrays else "props"
        if how == "nan":
            arrays[key] = np.full_like(arrays[key], np.nan)
        elif how == "pickled":
            arrays[key] = np.array([object()] * len(arrays[key]), dtype=object)
        else:
            arrays[key] = arrays[key][:, :2]
        with open(path, "wb") as f:
            np.savez(f, **arrays)


@pytest.mark.parametrize("how", ["truncated", "garbage", "nan", "pickled", "shape"])
def test_corrupt_conformer_cache_is_named_and_rebuilt(tmp_path, caplog, how):
    from ditkit_molecules.geometry import conformers

    first = conformers(SMILES, seed=0, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("conformers_*.npz")
    _corrupt(cache, how)
    again = conformers(SMILES, seed=0, cache_dir=tmp_path)
    (msg,) = _warnings(caplog, "corrupt cache")
    assert cache.name in msg and "rebuilding" in msg
    assert [c.smiles for c in again] == [c.smiles for c in first]
    for a, b in zip(first, again):
        np.testing.assert_allclose(a.coords, b.coords, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.name]  # rebuilt in place, no temporary left
    caplog.clear()
    conformers(SMILES, seed=0, cache_dir=tmp_path)  # the rebuilt cache reads back without a warning
    assert not _warnings(caplog, "corrupt cache")


@pytest.mark.parametrize("how", ["truncated", "nan", "shape"])
def test_corrupt_selfies_cache_is_named_and_rebuilt(tmp_path, caplog, how):
    import torch

    from ditkit_molecules.data import EnumeratedSmilesDataset
    from ditkit_molecules.tokenizer import SelfiesVocab

    first = EnumeratedSmilesDataset(SMILES, SelfiesVocab(30), n_enum=2, seed=0, cache_dir=tmp_path)
    (cache,) = tmp_path.glob("selfies_*.npz")
    _corrupt(cache, how)
    again = EnumeratedSmilesDataset(SMILES, SelfiesVocab(30), n_enum=2, seed=0, cache_dir=tmp_path)
    (msg,) = _warnings(caplog, "corrupt cache")
    assert cache.name in msg
    assert again.smiles == first.smiles
    torch.testing.assert_close(torch.stack(again.targets), torch.stack(first.targets))
    torch.testing.assert_close(torch.stack(again.props), torch.stack(first.props))


def test_selfies_enumerations_do_not_depend_on_rdkit_global_state():
    import torch
    from rdkit import Chem

    from ditkit_molecules.data import EnumeratedSmilesDataset
    from ditkit_molecules.tokenizer import SelfiesVocab

    def enums():
        Chem.MolToRandomSmilesVect(Chem.MolFromSmiles("CCOc1ccccc1"), 5, randomSeed=0)  # moves RDKit's global RNG
        return EnumeratedSmilesDataset(["CC(=O)Nc1ccc(O)cc1", "CCO"], SelfiesVocab(30), n_enum=4, seed=0).enums[0]

    torch.testing.assert_close(enums(), enums())  # molecule 0 used randomSeed=0, i.e. an unseeded generator


def test_cache_write_killed_midway_leaves_no_file(tmp_path, monkeypatch):
    from ditkit_molecules.geometry import conformers

    def killed(path, **arrays):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", killed)
    with pytest.raises(KeyboardInterrupt):
        conformers(SMILES[:1], seed=0, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither a truncated cache nor a temporary file


# ------------------------------------------------------------------------------------------------ 2, 3. CSV
@pytest.mark.parametrize("width", [120_000, 200_000])  # over our SMILES limit / over the csv module's field limit
def test_csv_huge_field_is_skipped_with_its_line(tmp_path, width):
    p = tmp_path / "big.csv"
    p.write_text("smiles,id\nCCO,a\n" + "C" * width + ",b\nCCN,c\n")
    recs, rep = read_csv(p, name_column="id")
    assert [(r.smiles, r.name) for r in recs] == [("CCO", "a"), ("CCN", "c")]
    (issue,) = rep.issues
    assert (issue.kind, issue.action, issue.line, issue.record) == ("too_long", "skipped", 3, 2)
    assert "big.csv:3" in str(issue)


def test_csv_without_header_is_read_by_column_index(tmp_path):
    p = tmp_path / "nohead.csv"
    p.write_text("CCO,ethanol\nCCN,ethylamine\n")
    recs, rep = load_molecules(p, column=0)
    assert [r.smiles for r in recs] == ["CCO", "CCN"] and rep.read == 2
    assert [r.smiles for r in load_molecules(p, column="0")[0]] == ["CCO", "CCN"]  # `--data.init_args.column 0`
    recs, _ = read_csv(p, column=0, name_column=1)
    assert [r.name for r in recs] == ["ethanol", "ethylamine"]
    with pytest.raises(DataError, match="2 x invalid_smiles .e.g. nohead.csv line 1: SMILES syntax error in 'ethanol'"):
        load_molecules(p, column=1)  # the names are not SMILES: nothing usable, and the error says why
    with pytest.raises(DataError, match="nohead.csv line 1: column='smiles': not in the header"):
        load_molecules(p)
    with pytest.raises(DataError, match="column=-1"):
        load_molecules(p, column=-1)


def test_smiles_with_inner_whitespace_is_skipped_not_truncated(tmp_path):
    p = tmp_path / "blanks.csv"
    p.write_text('smiles,id\n"CC\nO",a\nCCN,b\n"CC O",c\n')  # RDKit alone would read "CC" and drop the rest
    recs, rep = read_csv(p, name_column="id")
    assert [(r.smiles, r.name) for r in recs] == [("CCN", "b")]
    assert [(i.line, i.kind) for i in rep.issues] == [(2, "invalid_smiles"), (5, "invalid_smiles")]
    assert "whitespace inside the SMILES 'CC\\nO'" in rep.issues[0].detail


# ------------------------------------------------------------------------------------------------ 4, 5. SDF
def _block(smiles: str, name: str) -> str:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    mol.SetProp("_Name", name)
    return Chem.MolToMolBlock(mol)


def test_sdf_missing_delimiter_is_reported_and_both_records_read(tmp_path):
    a, b = _block("CCO", "ethanol"), _block("CC#N", "acetonitrile")
    p = tmp_path / "joined.sdf"
    p.write_text(a + ">  <id>\n1\n\n" + b + "$$$$\n")  # no $$$$ after the first record's data item
    recs, rep = read_sdf(p)
    assert [(r.smiles, r.name, r.record) for r in recs] == [("CCO", "ethanol", 1), ("CC#N", "acetonitrile", 2)]
    (issue,) = rep.issues
    second = a.count("\n") + 3 + 1  # first line of the second mol block
    assert (issue.kind, issue.action, issue.record, issue.line) == ("missing_delimiter", "kept", 2, second)
    assert rep.counts() == {"missing_delimiter/kept": 1}


@pytest.mark.parametrize(
    ("edit", "offset", "field", "words"),
    [
        (lambda ls: ls.__setitem__(4, "   abc" + ls[4][6:]), 4, "atom 1 x", "non-numeric coordinate"),
        (lambda ls: ls.__setitem__(5, ls[5][:10] + "       nan" + ls[5][20:]), 5, "atom 2 y", "not finite"),
        (lambda ls: ls.__setitem__(3, "abc" + ls[3][3:]), 3, "atom count", "not a non-negative integer"),
        (lambda ls: ls.__setitem__(13, ls[13][:3] + " 99" + ls[13][6:]), 13, "bond 1 second atom", "outside [1, 9]"),
        (
            lambda ls: ls.__delitem__(slice(6, None)),
            6,
            "atom 3",
            "ends inside the atom block (9 atoms declared, 2 read)",
        ),
    ],
)
def test_sdf_malformed_block_names_line_and_field(tmp_path, edit, offset, field, words):
    lines = _block("CCO", "ethanol").splitlines()  # 9 atoms with H: atom lines 5-13, bonds from line 14
    edit(lines)
    good = _block("CCN", "ethylamine")
    p = tmp_path / "bad.sdf"
    p.write_text(good + "$$$$\n" + "\n".join(lines) + "\n$$$$\n")
    recs, rep = read_sdf(p)
    assert [r.name for r in recs] == ["ethylamine"]
    (issue,) = rep.issues
    start = good.count("\n") + 2
    assert (issue.kind, issue.record, issue.field) == ("broken_record", 2, field)
    assert issue.line == start + offset and words in issue.detail and f"record starting at line {start}" in issue.detail


# ------------------------------------------------------------------------------------------------ 6, 7. reports
HALF_GARBAGE = "\n".join(["CCO", "CCN", "CCC", "OCC=O", "CC(C)O", "C1CC1", "CC(=O)N", "FCC", "COC", "C=CC"])
HALF_GARBAGE += "\n" + "\n".join(f"C1CC(garbage{i}" for i in range(10)) + "\n"


def test_skipped_records_are_logged_at_warning_by_the_data_module(tmp_path, caplog):
    from ditkit_molecules.data import Conformer3DDataModule

    p = tmp_path / "half.smi"
    p.write_text(HALF_GARBAGE)
    dm = Conformer3DDataModule(path=str(p), val_fraction=0.2, batch_size=4, cache_dir=None)
    dm.setup("fit")  # no log level set anywhere: WARNING passes the root logger's default level
    assert len(dm.train) + len(dm.val) == 10
    (msg,) = _warnings(caplog, "half.smi")
    assert "read 20, kept 10, skipped 10 (invalid_smiles/skipped: 10)" in msg
    assert "half.smi:11 (record 11) invalid_smiles" in msg  # the first examples name their lines


def test_skipped_records_reach_stderr_without_logging_setup(tmp_path):
    p = tmp_path / "half.smi"
    p.write_text(HALF_GARBAGE)
    code = f"from ditkit_molecules.io import load_molecules; load_molecules({str(p)!r})"
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stderr
    assert "half.smi: read 20, kept 10, skipped 10" in err


def test_no_usable_record_raises_with_counts_per_reason(tmp_path):
    p = tmp_path / "junk.smi"
    p.write_text("C1CC(\nxx\n[Se]\n[CH2]C\n\n")
    with pytest.raises(DataError) as e:
        load_molecules(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: no usable molecule among 4 record(s): 2 x invalid_smiles (e.g. junk.smi line 1:")
    assert "1 x unsupported_element" in msg and "1 x radical (e.g. junk.smi line 4:" in msg
    (tmp_path / "empty.smi").write_text("# nothing\n")
    with pytest.raises(DataError, match="empty.smi: no usable molecule: the input holds no record"):
        load_molecules(tmp_path / "empty.smi")


def test_bad_lines_are_counted_not_fatal(tmp_path):
    p = tmp_path / "mixed.smi"
    p.write_bytes(b"CCO a\nCC\xe9O b\n" + b"C" * (1 << 20) + b"CC\nC\x00C c\n" + b"C" * 20_000 + b" chain\nCCN d\n")
    recs, rep = read_smi(p)
    assert [r.smiles for r in recs] == ["CCO", "CCN"]
    by_line = {i.line: (i.kind, i.field) for i in rep.issues}
    assert by_line == {
        2: ("encoding", "line"),
        3: ("too_long", "line"),
        4: ("invalid_smiles", "smiles"),
        5: ("size", None),  # 20,000 atoms: skipped before RDKit's SMILES writer could overflow its stack
    }
    assert "byte 0xe9 at column 3" in next(i.detail for i in rep.issues if i.line == 2)


# ------------------------------------------------------------------------------------------------ 8. samples
def _bad_samples() -> list[Conformer]:
    from ditkit_molecules.geometry import embed, mol_to_arrays

    ethanol = Conformer("CCO", *mol_to_arrays(embed("CCO", 0)))
    two = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0]], dtype=np.float32)
    return [
        ethanol,
        Conformer("", np.array([1, 6]), np.array([2, 0]), two),  # H with formal charge +2: RDKit aborts writing it
        Conformer("", np.array([6, 6]), np.array([0, 0]), two * np.nan),  # NaN coordinates
        Conformer("", np.array([6, 8]), np.array([-(2**40), 0]), two),  # a diverged charge channel
    ]


def test_unphysical_samples_are_skipped_and_counted(tmp_path, caplog):
    from ditkit_molecules.metrics import geometry_metrics, stability_metrics
    from ditkit_molecules.viz import unwritable, write_3d_outputs

    mols = _bad_samples()
    assert [i for i, _ in unwritable(mols)] == [1, 2, 3]
    sdf, png = write_3d_outputs(mols, tmp_path, "s")
    assert png.exists() and [m.GetProp("_Name") for m in read_sdf_mols(sdf)] == ["sample_0"]
    assert any(
        "3 of 4 samples left out (e.g. sample 1: atom 0: element 1 with formal charge +2)" in m for m in caplog.messages
    )
    m = geometry_metrics(mols, {"CCO"}, None, with_fcd=False)
    assert m["rejected"] == 3 and m["validity"] == 0.25 and m["mol_stability"] == 0.25
    assert stability_metrics(mols)["rejected"] == 3


def read_sdf_mols(path: Path) -> list:
    from rdkit import Chem

    return [m for m in Chem.SDMolSupplier(str(path), removeHs=False) if m is not None]


def test_sample_writer_callback_survives_unphysical_samples(tmp_path, monkeypatch):
    from ditkit_core.lightning.callbacks import SampleWriter
    from ditkit_core.nn import DiTConfig
    from ditkit_molecules.module3d import Molecule3DModule
    from ditkit_molecules.tokenizer import AtomTokenizer

    tok = AtomTokenizer()
    module = Molecule3DModule(tok, DiTConfig(in_dim=tok.token_dim, dim=16, depth=1, heads=2))
    monkeypatch.setattr(module, "sample_molecules", lambda n, seed=0, **kw: _bad_samples())
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=True, current_epoch=0, global_step=7, loggers=[], strategy=None
    )
    SampleWriter(str(tmp_path)).on_validation_epoch_end(trainer, module)  # used to abort fit with a RuntimeError
    (sdf,) = tmp_path.glob("*.sdf")
    assert len(read_sdf_mols(sdf)) == 1 and len(list(tmp_path.glob("*.png"))) == 1


def test_sampling_arguments_are_validated():
    import torch

    from ditkit_molecules.cli import check_sampling, main

    for kw, words in [
        ({"n": 0}, "n=0"),
        ({"steps": 0}, "steps=0"),
        ({"props": torch.tensor([0.5, float("nan"), 3.0])}, "props="),
        ({"props": [0.5, 1.0]}, "props="),
        ({"cfg_scale": float("inf")}, "cfg_scale=inf"),
    ]:
        with pytest.raises(ValueError, match=words):
            check_sampling(**kw)
    with pytest.raises(SystemExit):
        main(["sample", "--config", "c.yaml", "--ckpt", "k.ckpt", "--out", "o", "--steps", "0"])


def test_data_module_arguments_are_validated():
    from ditkit_molecules.data import Conformer3DDataModule, SmilesDataModule

    for kw, words in [
        ({"batch_size": 0}, "batch_size=0"),
        ({"val_fraction": 1.0}, "val_fraction=1.0"),
        ({"val_fraction": float("nan")}, "val_fraction=nan"),
        ({"column": -1}, "column=-1"),
        ({"max_atoms": 0}, "max_atoms=0"),
        ({"limit": 0}, "limit=0"),
        ({"elements": []}, "elements=\\[\\]"),
    ]:
        with pytest.raises(ValueError, match=f"Conformer3DDataModule: {words}"):
            Conformer3DDataModule(**kw)
    with pytest.raises(ValueError, match="SmilesDataModule: n_enum=0"):
        SmilesDataModule(n_enum=0)


# ------------------------------------------------------------------------------------------------ 9. QM9 xyz
@pytest.mark.parametrize(
    ("edit", "line", "field", "words"),
    [
        (lambda ls: ls[:5], 5, None, "file ends inside the atom block (5 atoms declared, 3 read)"),
        (lambda ls: [ls[0], ls[1], "C\t0.1\tabc\t0.2\t0.0", *ls[3:]], 3, "atom 1 y", "non-numeric coordinate"),
        (lambda ls: ["1000000000", *ls[1:]], 1, "atom count", "number of atoms outside [1, 5000]"),
        (lambda ls: [*ls[:3], "H\tnan\t0\t0\t0.1", *ls[4:]], 4, "atom 2 x", "coordinate not finite"),
        (lambda ls: [*ls[:3], "H\t1e300\t0\t0\t0.1", *ls[4:]], 4, "atom 2 x", "beyond +-10000"),
        (lambda ls: [*ls[:4], "H\t1\t0\t0\tinf", *ls[5:]], 5, "atom 3 mulliken", "charge not finite"),
        (lambda ls: [ls[0], ls[1].replace("-40.47893", "NaN"), *ls[2:]], 2, "U0", "QM9 property not finite"),
    ],
)
def test_qm9_hostile_fields_name_file_line_and_field(tmp_path, methane_xyz, edit, line, field, words):
    from ditkit_molecules.xyz import XyzParseError, parse_xyz_record, read_xyz

    lines = edit(methane_xyz.splitlines())
    d = tmp_path / "qm9"
    d.mkdir()
    (d / "a_good.xyz").write_text(methane_xyz)
    (d / "b_bad.xyz").write_text("\n".join(lines) + "\n")
    with pytest.raises(XyzParseError) as e:
        parse_xyz_record(lines, path="b_bad.xyz")
    assert isinstance(e.value, DataError) and str(e.value).startswith(f"b_bad.xyz line {line}: ")
    assert e.value.field == field and words in str(e.value)
    recs, rep = read_xyz(d)
    assert [r.name for r in recs] == ["gdb 1"]
    (issue,) = rep.issues
    assert (issue.source, issue.line, issue.kind, issue.field) == ("b_bad.xyz", line, "broken_record", field)
    with pytest.raises(DataError, match="b_bad.xyz: no usable molecule among 1 record.*1 x broken_record"):
        read_xyz(d / "b_bad.xyz")
