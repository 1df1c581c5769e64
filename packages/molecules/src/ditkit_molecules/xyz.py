"""QM9 extended-xyz reader: one ``.xyz`` file, a folder of them or the tar archive (``dsgdb9nsd.xyz.tar.bz2``).

A QM9 record is: the atom count; ``gdb <index>`` and 15 properties (:data:`QM9_PROPERTIES`, Mathematica ``*^``
exponents allowed); one ``symbol x y z mulliken`` line per atom (Angstrom); a line of harmonic frequencies; the GDB-17
and B3LYP-relaxed SMILES; the two InChIs. Plain xyz records (count, comment, ``symbol x y z``) are read too, and a
file may hold several records. Molecules keep their geometry (a mol block with explicit hydrogens) so the 3D model
trains on it; everything goes through :func:`ditkit_molecules.io.standardise` and is reported like the other
loaders (:class:`ditkit_molecules.io.LoadReport`, with the file inside the folder / archive and the line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ditkit_molecules.io import LoadReport, MolRecord, _Collector, _rdkit

QM9_PROPERTIES = ("A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")
"""The 15 scalar properties on the second line of a QM9 ``.xyz`` file, after the ``gdb <index>`` tag."""

XYZ_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz")


def _qm9_float(text: str) -> float:
    """A QM9 number: plain float or Mathematica's ``2.1*^-6`` exponent notation."""
    return float(text.replace("*^", "e"))


class XyzParseError(ValueError):
    """A malformed ``.xyz`` record; ``offset`` is the 0-based line (within the record) at fault."""

    def __init__(self, offset: int, message: str):
        super().__init__(message)
        self.offset = offset


@dataclass
class XyzRecord:
    """One parsed (extended) xyz molecule.

    Attributes:
        symbols: element symbols ``[a]``.
        coords: ``[a, 3]`` Angstrom.
        comment: the second line (for QM9: ``gdb <index>`` and 15 properties).
        properties: QM9 properties by :data:`QM9_PROPERTIES` name (empty when the comment line is not QM9's).
        name: ``gdb <index>`` for QM9, else the first word of the comment line.
        charges: Mulliken partial charges (5th column) when present.
        smiles: SMILES given after the atom block (QM9: GDB-17 and B3LYP-relaxed), possibly empty.
        lines: number of lines the record spans.
    """

    symbols: list[str]
    coords: list[tuple[float, float, float]]
    comment: str
    properties: dict[str, float]
    name: str
    charges: list[float] | None
    smiles: list[str]
    lines: int


def parse_xyz_record(lines: list[str], start: int = 0) -> XyzRecord:
    """Parse one xyz / QM9 extended-xyz record beginning at ``lines[start]``.

    Layout: atom count; comment (QM9: ``gdb N`` + 15 properties); ``symbol x y z [mulliken]`` per atom; then, in
    QM9 files, a line of harmonic frequencies, a line of two SMILES and a line of two InChIs. Numbers may use
    ``*^`` exponents. A following record is recognised by a line holding a single integer.

    Raises:
        XyzParseError: with the offending line's offset from ``start``.
    """
    head = lines[start].strip() if start < len(lines) else ""
    try:
        n = int(head)
    except ValueError:
        raise XyzParseError(0, f"expected the number of atoms, got {head[:40]!r}") from None
    if n <= 0:
        raise XyzParseError(0, f"number of atoms must be positive, got {n}")
    if start + 2 + n > len(lines):
        raise XyzParseError(min(len(lines) - start - 1, 1 + n), f"file ends inside the atom block ({n} atoms declared)")
    comment = lines[start + 1].strip()
    props: dict[str, float] = {}
    words = comment.split()
    name = words[0] if words else ""
    if len(words) >= 2 + len(QM9_PROPERTIES) and words[0] == "gdb":
        name = f"gdb {words[1]}"
        try:
            props = {k: _qm9_float(v) for k, v in zip(QM9_PROPERTIES, words[2 : 2 + len(QM9_PROPERTIES)])}
        except ValueError:
            raise XyzParseError(1, f"unreadable QM9 property in {comment[:60]!r}") from None
    symbols, coords, charges = [], [], []
    for k in range(n):
        fields = lines[start + 2 + k].split()
        if len(fields) < 4:
            raise XyzParseError(2 + k, f"atom line needs 'symbol x y z', got {lines[start + 2 + k].strip()[:60]!r}")
        try:
            xyz = tuple(_qm9_float(v) for v in fields[1:4])
            q = _qm9_float(fields[4]) if len(fields) > 4 else None
        except ValueError:
            raise XyzParseError(2 + k, f"non-numeric coordinate in {lines[start + 2 + k].strip()[:60]!r}") from None
        symbols.append(fields[0])
        coords.append(xyz)  # type: ignore[arg-type]
        charges.append(q)
    used = 2 + n
    smiles: list[str] = []
    if props:  # QM9 trailer: frequencies, SMILES pair, InChI pair (any of them may be missing in a broken file)
        trailer = []
        while start + used < len(lines) and len(trailer) < 3 and not _is_count(lines[start + used]):
            trailer.append(lines[start + used])
            used += 1
        if len(trailer) >= 2:
            smiles = trailer[1].split()
    else:  # plain xyz: skip to the next count line
        while start + used < len(lines) and not _is_count(lines[start + used]):
            used += 1
    return XyzRecord(
        symbols, coords, comment, props, name, None if any(q is None for q in charges) else charges, smiles, used
    )  # type: ignore[arg-type]


def _is_count(line: str) -> bool:
    s = line.strip()
    return s.isdigit()


def _xyz_to_mol(rec: XyzRecord) -> Any:
    """RDKit molecule with explicit hydrogens, the record's conformer and bonds from the geometry.

    Bonds come from ``rdDetermineBonds`` (connectivity by covalent radii, xyz2mol bond orders, neutral molecule),
    the same inference the 3D metrics use. Raises ``ValueError`` with the reason when no assignment exists.
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDetermineBonds
    from rdkit.Geometry import Point3D

    rw = Chem.RWMol()
    pt = Chem.GetPeriodicTable()
    for s in rec.symbols:
        try:
            z = pt.GetAtomicNumber(s.capitalize() if len(s) <= 2 else s)
        except Exception:  # noqa: BLE001 - RDKit raises a RuntimeError for unknown symbols
            z = 0
        if z <= 0:
            raise ValueError(f"unknown element symbol {s!r}")
        rw.AddAtom(Chem.Atom(z))
    conf = Chem.Conformer(len(rec.symbols))
    for i, p in enumerate(rec.coords):
        conf.SetAtomPosition(i, Point3D(*p))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    try:
        rdDetermineBonds.DetermineBonds(mol, charge=0, embedChiral=False)
        Chem.SanitizeMol(mol)
    except Exception as e:  # noqa: BLE001 - RDKit raises several types
        reason = str(e).strip()[:120] or type(e).__name__
        raise ValueError(f"no bond assignment for the geometry (xyz2mol): {reason}") from e
    return mol


def _xyz_sources(path: Path) -> list[tuple[str, list[str]]]:
    """``[(file name, lines)]`` for an ``.xyz`` file, a folder of them (recursive, sorted) or a tar archive."""
    name = path.name.lower()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".xyz")
        if not files:
            raise FileNotFoundError(f"load_molecules: no .xyz file under {path}")
        return [(str(p.relative_to(path)), p.read_text(encoding="utf-8", errors="replace").splitlines()) for p in files]
    if any(name.endswith(s) for s in XYZ_ARCHIVES):
        import tarfile

        out = []
        with tarfile.open(path) as tar:
            for m in sorted(
                (m for m in tar.getmembers() if m.isfile() and m.name.lower().endswith(".xyz")), key=lambda m: m.name
            ):
                f = tar.extractfile(m)
                if f is not None:
                    out.append((m.name, f.read().decode("utf-8", errors="replace").splitlines()))
        if not out:
            raise FileNotFoundError(f"load_molecules: no .xyz member in {path}")
        return out
    return [(path.name, path.read_text(encoding="utf-8", errors="replace").splitlines())]


def read_xyz(path: str | os.PathLike, *, check_smiles: bool = True, **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Read (QM9 extended) xyz molecules from a file, a folder of files (e.g. the extracted
    ``dsgdb9nsd.xyz.tar.bz2``) or the tar archive itself.

    Each record becomes a molecule with explicit hydrogens and its given geometry (kept as a mol block for the 3D
    model), bonds inferred from the geometry (:func:`_xyz_to_mol`), then :func:`standardise` d. Issues carry the
    file name (inside the folder / archive) and the line where the record or the fault is:

    * ``broken_record`` (skipped): bad atom count, short atom block, non-numeric field, unknown element, or a
      geometry without a valid bond assignment;
    * ``smiles_mismatch`` (kept): with ``check_smiles``, the geometry's molecule differs from the B3LYP-relaxed
      SMILES on the record's SMILES line (QM9 lists ~3k such molecules; the geometry is what the model learns);
    * all :func:`standardise` kinds.

    A record that cannot be parsed makes the reader skip to the next line holding a single integer.
    """
    path = Path(path)
    c = _Collector(path.name, std)
    Chem = _rdkit()
    for fname, lines in _xyz_sources(path):
        c.source = fname
        i, record = 0, 0
        while i < len(lines):
            if not lines[i].strip():
                i += 1
                continue
            record += 1
            c.report.read += 1
            try:
                rec = parse_xyz_record(lines, i)
            except XyzParseError as e:
                c.issue(record, i + 1 + e.offset, "broken_record", str(e))
                i += 1
                while i < len(lines) and not _is_count(lines[i]):
                    i += 1
                continue
            line, i = i + 1, i + rec.lines
            try:
                mol = _xyz_to_mol(rec)
            except ValueError as e:
                c.issue(record, line, "broken_record", f"{rec.name or 'record'}: {e}")
                continue
            if check_smiles and len(rec.smiles) >= 2:
                given = Chem.MolFromSmiles(rec.smiles[1])
                if given is not None:
                    Chem.RemoveStereochemistry(given)
                    ours = Chem.RemoveHs(mol)
                    Chem.RemoveStereochemistry(ours)
                    a, b = Chem.MolToSmiles(ours), Chem.MolToSmiles(given)
                    if a != b:
                        c.issue(
                            record, line, "smiles_mismatch", f"{rec.name}: geometry gives {a}, file says {b}", "kept"
                        )
            for k, v in rec.properties.items():
                mol.SetDoubleProp(k, v)
            molblock = Chem.MolToMolBlock(mol)
            c.add(Chem.RemoveHs(mol), rec.name, record, line, molblock)
    c.source = None
    return c.finish()
