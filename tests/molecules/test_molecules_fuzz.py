"""Fuzzing every molecule load path in child processes: ``.smi``, ``.csv``, ``.sdf``, ``.xyz`` files, QM9 folders and
tar archives, the data modules and the conformer / SELFIES caches, with hostile variants of valid files and hand-made
hostile inputs. Contract (``assert_clean``): no crash, hang or memory blow-up; every error is a ``DataError`` naming
the file; every successful load holds only finite numbers."""

from __future__ import annotations

import io
import os
import random
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ditkit_core.testing.fuzz import assert_clean, hostile_files, run_cases

HERE = Path(__file__).resolve().parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
SMILES = ["CCO", "CC(=O)N", "c1ccncc1"]


def _mol_block(smiles: str, seed: int = 0) -> str:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=seed)
    mol.SetProp("_Name", smiles)
    return Chem.MolToMolBlock(mol)


def _xyz_block(smiles: str) -> str:
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    AllChem.EmbedMolecule(mol, randomSeed=0)
    AllChem.MMFFOptimizeMolecule(mol)
    return Chem.MolToXYZBlock(mol)


def _tar(path: Path, members: dict[str, bytes], mode: str) -> Path:
    with tarfile.open(path, mode) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def _chain_xyz(symbol: str, n: int, spacing: float) -> str:
    """A zig-zag chain whose xyz2mol valence combinations grow as 2^n (N) or 3^n (S)."""
    ang = np.radians(110)
    rows = [
        f"{symbol} {i * spacing * np.sin(ang / 2):.4f} {(i % 2) * spacing * np.cos(ang / 2):.4f} 0.0" for i in range(n)
    ]
    return f"{n}\nchain\n" + "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, bytes]:
    """Valid content per suffix."""
    xyz = (_xyz_block("CCO") + _xyz_block("CC#N")).encode()
    d = tmp_path_factory.mktemp("valid")
    return {
        ".smi": b"CCO ethanol\nc1ccccc1 benzene\nCC(=O)O acid\nCC(C)N amine\n",
        ".csv": b"smiles,id\nCCO,a\nc1ccccc1,b\nCC(=O)O,c\nCC(C)N,d\n",
        ".sdf": "".join(_mol_block(s) + "$$$$\n" for s in ("CCO", "CC#N", "OCC=O")).encode(),
        ".xyz": xyz,
        ".tar.bz2": _tar(
            d / "a.tar.bz2", {"q/a.xyz": xyz, "q/b.xyz": _xyz_block("CCN").encode()}, "w:bz2"
        ).read_bytes(),
        ".tar.gz": _tar(d / "a.tar.gz", {"a.xyz": xyz}, "w:gz").read_bytes(),
    }


def _hand_made(d: Path, methane: str) -> list[dict]:
    """Hostile inputs no byte-level mutation would produce, as ``load`` cases."""
    d.mkdir(parents=True, exist_ok=True)
    blk = _mol_block("CCO")
    lines = blk.splitlines()

    def w(name: str, data: bytes | str) -> str:
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return str(p)

    cases = [
        {"path": w("huge_field.csv", "smiles\nCCO\n" + "C" * 200_000 + "\nCCN\n")},
        {"path": w("nul.csv", b"smiles\nC\x00C\nCCO\n\x00\x00\x00\n")},
        {"path": w("wrong_column.csv", "id,smi\n1,CCO\n"), "column": "smiles"},
        {"path": w("no_header.csv", "CCO,a\nCCN,b\n"), "column": 0},
        {"path": w("header_only.csv", "smiles\n")},
        {"path": w("bad_header.csv", b"smil\xe9s\nCCO\n")},
        {"path": w("multiline.csv", 'smiles,id\n"CC\nO",a\nCCN,"b\n\nc"\n')},
        {"path": w("ragged.csv", "smiles,id\nCCO\n,,,,\nCCN,b,c,d\n")},
        {"path": w("column.smi", "CCO a\n"), "column": 5},
        {"path": w("strcolumn.smi", "CCO a\n"), "column": "SMILES"},
        {"path": w("boolcolumn.smi", "CCO a\n"), "column": True},
        {"path": w("no_newline.smi", b"C" * (2 << 20))},
        {"path": w("chain.smi", "C" * 20_000 + "\nCCO\n")},
        {"path": w("branches.smi", "C(" * 20_000 + "C" + ")" * 20_000 + "\nCCO\n")},
        {"path": w("salts.smi", "[Na+]." * 6000 + "C\nCCO\n")},
        {"path": w("crlf_bom.smi", b"\xef\xbb\xbfCCO a\r\nCCN b\r\n")},
        {"path": w("utf16.smi", "CCO a\nCCN b\n".encode("utf-16"))},
        {"path": w("counts.sdf", "x\n\n\n999999  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n" + blk + "$$$$\n")},
        {
            "path": w(
                "v3000.sdf",
                "x\n\n\n  0  0  0     0  0            999 V3000\nM  V30 BEGIN CTAB\n"
                "M  V30 COUNTS 100000000 100000000 0 0 0\nM  V30 BEGIN ATOM\nM  V30 END ATOM\nM  END\n$$$$\n",
            )
        },
        {"path": w("nan.sdf", "\n".join([*lines[:4], "       nan" + lines[4][10:], *lines[5:]]) + "\n$$$$\n")},
        {"path": w("big.sdf", "\n".join([*lines[:4], "     1e+30" + lines[4][10:], *lines[5:]]) + "\n$$$$\n")},
        {"path": w("joined.sdf", blk + blk + "$$$$\n")},
        {"path": w("no_end.sdf", "\n".join(line for line in lines if not line.startswith("M  END")) + "\n$$$$\n")},
        {"path": w("dollars.sdf", "$$$$\n$$$$\n\n$$$$\n")},
        {"path": w("count.xyz", "99999999999999999999\nx\nC 0 0 0\n")},
        {"path": w("negative.xyz", "-5\nx\nC 0 0 0\n")},
        {"path": w("nan.xyz", methane.replace("-0.0126981359", "nan") + methane)},
        {"path": w("inf_prop.xyz", methane.replace("6.469", "inf"))},
        {"path": w("truncated.xyz", "\n".join(methane.splitlines()[:4]))},
        {"path": w("unknown.xyz", "2\nx\nXx 0 0 0\nC 1.5 0 0\n")},
        {"path": w("n_chain.xyz", _chain_xyz("N", 24, 1.45))},  # xyz2mol would try 2^24 valence combinations
        {"path": w("s_chain.xyz", _chain_xyz("S", 20, 2.05))},  # 3^20
        {"path": w("blank.xyz", "\n\n\n")},
        {"path": str(d / "missing.smi")},
        {"path": w("unknown.json", "{}")},
        {"path": str(d / "nul\x00name.smi")},
    ]
    # special files: reading them would block (FIFO) or never end (/dev/zero); inside a folder too
    os.mkfifo(d / "fifo.csv")
    (d / "zero.smi").symlink_to("/dev/zero")
    cases += [{"path": str(d / "fifo.csv")}, {"path": str(d / "zero.smi")}]
    # folders: empty, a symlink loop and a link leaving the folder next to good files, a non-UTF-8 file
    (d / "empty_dir").mkdir()
    cases.append({"path": str(d / "empty_dir")})
    q = d / "qm9"
    (q / "sub").mkdir(parents=True)
    (q / "a.xyz").write_text(methane)
    (q / "b.xyz").write_bytes(b"5\ngdb 2 caf\xe9\n")
    (q / "sub" / "loop").symlink_to(q, target_is_directory=True)
    outside = d / "outside.xyz"
    outside.write_text(methane)
    (q / "link.xyz").symlink_to(outside)
    os.mkfifo(q / "fifo.xyz")
    cases.append({"path": str(q)})
    # archives: a traversal member name (read, never extracted), a member whose header overstates its size
    cases.append({"path": str(_tar(d / "evil.tar.gz", {"../../evil.xyz": methane.encode()}, "w:gz"))})
    info = tarfile.TarInfo("big.xyz")
    info.size = 1 << 40
    body = methane.encode()
    liar = info.tobuf(tarfile.GNU_FORMAT) + body + b"\0" * (-len(body) % 512)
    cases.append({"path": w("liar.tar", liar)})
    return cases


def _cache_cases(tmp_path: Path, target: str) -> list[dict]:
    """A clean build (first case), then one case per hostile variant of the cache file (same name, own folder)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("molecules_fuzz_targets", HERE / "molecules_fuzz_targets.py")
    targets = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(targets)
    clean = tmp_path / "clean"
    getattr(targets, target)(SMILES, str(clean))
    (cache,) = clean.glob("*.npz")
    variants = dict(hostile_files(cache.read_bytes(), tmp_path / "variants", ".npz"))
    with np.load(cache) as z:
        arrays = {k: z[k] for k in z.files}
    key = "coords" if "coords" in arrays else "props"
    for name, value in {
        "nan": np.full_like(arrays[key], np.nan),
        "huge": np.full(arrays[key].shape, 1e38, dtype=np.float32),
        "complex": arrays[key].astype(np.complex64),
        "pickled": np.array([{"x": 1}] * len(arrays[key]), dtype=object),
        "shape": arrays[key].reshape(-1)[:5],
    }.items():
        p = tmp_path / "variants" / f"{name}.npz"
        with open(p, "wb") as f:
            np.savez(f, **{**arrays, key: value})
        variants[name] = p
    cases = [{"target": target, "smiles": SMILES, "cache_dir": str(tmp_path / "fresh")}]
    for name, p in variants.items():
        folder = tmp_path / "cases" / name
        folder.mkdir(parents=True)
        (folder / cache.name).write_bytes(p.read_bytes())
        cases.append({"target": target, "smiles": SMILES, "cache_dir": str(folder)})
    return cases


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory, valid, methane_xyz) -> dict[str, list]:
    """Every fast case, run in one child process (it pays the torch / RDKit import once): outcomes by group."""
    tmp = tmp_path_factory.mktemp("fuzz")
    groups: dict[str, list[dict]] = {"load": [], "read": [], "datamodule": []}
    for suffix, data in valid.items():
        groups["load"] += [{"path": str(p)} for p in hostile_files(data, tmp / suffix.strip("."), suffix).values()]
        for reader in ("read_smi", "read_csv", "read_sdf", "read_xyz"):  # every reader on every format's valid file
            p = tmp / "cross" / f"{reader}{suffix}"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(data)
            groups["read"].append({"reader": reader, "path": str(p)})
    groups["load"] += _hand_made(tmp / "hand", methane_xyz)
    files = hostile_files(valid[".smi"], tmp / "dm", ".smi")
    for name, kind in (("empty", "3d"), ("random", "latent"), ("latin1", "3d"), ("flipped", "latent")):
        groups["datamodule"].append({"path": str(files[name]), "kind": kind})
    for target in ("conformer_cache", "selfies_cache"):
        groups[target] = _cache_cases(tmp / target, target)
    cases = [{"target": g, **c} if "target" not in c else c for g, cs in groups.items() for c in cs]
    out = run_cases("molecules_fuzz_targets:call", cases, timeout=400, env=ENV)
    result, k = {}, 0
    for g, cs in groups.items():
        result[g], k = out[k : k + len(cs)], k + len(cs)
    result["root"] = [tmp]
    return result


def test_loaders_survive_hostile_files(fuzzed):
    out = fuzzed["load"]
    assert_clean(out, name_key="path")
    by_name = {Path(o.case["path"]).name: o for o in out}
    for name in ("empty.smi", "random.csv", "nul.sdf", "empty.xyz", "random.tar.bz2", "count.xyz", "missing.smi"):
        assert by_name[name].status == "error", by_name[name]
    for name in ("doubled.smi", "latin1.csv", "doubled.sdf", "doubled.xyz", "huge_field.csv", "no_header.csv"):
        assert by_name[name].status == "ok", by_name[name]  # a hostile line is a counted skip, the rest loads
    for name in ("n_chain.xyz", "s_chain.xyz"):  # bounded xyz2mol search: an error, not a hang
        assert "Max Iterations Exceeded" in by_name[name].message, by_name[name]
    assert by_name["chain.smi"].summary["items"]["report"]["items"]["kept"]["kind"] == "int"
    assert by_name["qm9"].status == "ok" and by_name["evil.tar.gz"].status == "ok"
    root = fuzzed["root"][0]
    assert not (root.parent / "evil.xyz").exists() and not (root / "evil.xyz").exists()  # members are never extracted


def test_readers_survive_other_formats(fuzzed):
    out = fuzzed["read"]
    assert_clean(out, name_key="path")
    ok = {(o.case["reader"], Path(o.case["path"]).suffix) for o in out if o.status == "ok"}
    assert {("read_smi", ".smi"), ("read_csv", ".csv"), ("read_sdf", ".sdf"), ("read_xyz", ".xyz")} <= ok


def test_data_modules_survive_hostile_files(fuzzed):
    out = fuzzed["datamodule"]
    assert_clean(out, name_key="path")
    assert [o.status for o in out[:2]] == ["error", "error"]  # empty and random: no usable molecule, named


@pytest.mark.parametrize("target", ["conformer_cache", "selfies_cache"])
def test_caches_survive_corruption(fuzzed, target):
    clean, *out = fuzzed[target]
    assert clean.status == "ok", clean
    assert_clean(out, name_key=None)
    for o in out:  # a corrupt cache is rebuilt: the same molecules, shapes and finite values as a clean build
        assert o.status == "ok" and o.summary == clean.summary, o


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 9))
def test_loaders_survive_random_mutations(tmp_path, valid, seed):
    """Bigger sweep: hostile variants with other seeds, plus random line-level splices of the valid files."""
    rng = random.Random(seed)
    cases = []
    for suffix, data in valid.items():
        cases += [
            {"path": str(p)} for p in hostile_files(data, tmp_path / f"{suffix.strip('.')}", suffix, seed).values()
        ]
        if suffix.startswith(".tar"):
            continue
        lines = data.split(b"\n")
        for k in range(6):
            mutated = list(lines)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(mutated))
                op = rng.choice(["drop", "dup", "junk", "digits", "swap"])
                if op == "drop":
                    mutated.pop(i)
                elif op == "dup":
                    mutated.insert(i, mutated[i])
                elif op == "junk":
                    mutated[i] = bytes(rng.randrange(256) for _ in range(rng.randint(0, 80)))
                elif op == "digits":
                    mutated[i] = str(rng.choice([0, -1, 2**31, 10**30])).encode()
                else:
                    j = rng.randrange(len(mutated))
                    mutated[i], mutated[j] = mutated[j], mutated[i]
            p = tmp_path / "splice" / f"{k}{suffix}"
            p.parent.mkdir(exist_ok=True)
            p.write_bytes(b"\n".join(mutated))
            cases.append({"path": str(p)})
    assert_clean(run_cases("molecules_fuzz_targets:load", cases, timeout=600, env=ENV), name_key="path")


# ------------------------------------------------------------------------------------- property tests (in-process)
# The pure-Python parsers cannot crash the interpreter, so hypothesis drives them directly.

_NUMBER = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["nan", "-inf", "1*^-3", "2.5*^400", "", "x", "1e", "--1", "\x00"]),
)
_ATOM = st.tuples(st.sampled_from(["C", "H", "N", "Xx", ""]), _NUMBER, _NUMBER, _NUMBER, _NUMBER).map(
    lambda t: "\t".join(t)
)
_LINES = st.lists(
    st.one_of(
        _ATOM, st.integers(-5, 10**12).map(str), st.text(max_size=40), st.just("gdb 1 " + " ".join(["1.0"] * 15))
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(lines=_LINES)
def test_xyz_parser_raises_only_named_errors(lines):
    from ditkit_core.errors import DataError
    from ditkit_molecules.records import MAX_COORD
    from ditkit_molecules.xyz import XyzParseError, parse_xyz_record

    try:
        rec = parse_xyz_record(lines, path="h.xyz")
    except XyzParseError as e:
        assert isinstance(e, DataError) and str(e).startswith("h.xyz line ") and 1 <= e.line <= max(len(lines), 1)
        return
    assert len(rec.symbols) == len(rec.coords) == int(lines[0]) and 2 + len(rec.symbols) <= rec.lines <= len(lines)
    assert np.isfinite(rec.coords).all() and np.abs(rec.coords).max() <= MAX_COORD
    assert all(np.isfinite(v) for v in rec.properties.values())


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(
        st.one_of(st.text(max_size=50), st.sampled_from(["M  END", "  2  1  0  0  0  0  0  0  0  0999 V2000"])),
        max_size=14,
    )
)
def test_molblock_diagnosis_never_raises(lines):
    from ditkit_molecules.sdf import diagnose_molblock

    fault = diagnose_molblock(lines)
    assert fault is None or (0 <= fault[0] <= len(lines) and isinstance(fault[1], str) and fault[3])


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300))
def test_line_reader_reports_every_line(tmp_path_factory, data):
    from ditkit_molecules.records import text_lines

    p = tmp_path_factory.mktemp("lines") / "x.txt"
    p.write_bytes(data)
    rows = list(text_lines(p, max_bytes=64))
    assert [n for n, *_ in rows] == list(range(1, len(rows) + 1))  # every line accounted for, in order
    for _, text, kind, problem in rows:
        assert (text is None) == bool(problem) and kind in ("", "encoding", "too_long")
        assert text is None or "\n" not in text
