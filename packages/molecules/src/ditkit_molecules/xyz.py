"""QM9 extended-xyz reader: one ``.xyz`` file, a folder of them or the tar archive (``dsgdb9nsd.xyz.tar.bz2``).

A QM9 record is: the atom count; ``gdb <index>`` and 15 properties (:data:`QM9_PROPERTIES`, Mathematica ``*^``
exponents allowed); one ``symbol x y z mulliken`` line per atom (Angstrom); a line of harmonic frequencies; the GDB-17
and B3LYP-relaxed SMILES; the two InChIs. Plain xyz records (count, comment, ``symbol x y z``) are read too, and a
file may hold several records. Molecules keep their geometry (a mol block with explicit hydrogens) so the 3D model
trains on it; everything goes through :func:`ditkit_molecules.io.standardise` and is reported like the other
loaders (:class:`ditkit_molecules.io.LoadReport`, with the file inside the folder / archive and the line).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ditkit_core.errors import DataError, naming_file
from ditkit_molecules.geometry import determine_bond_orders
from ditkit_molecules.records import MAX_COORD, MAX_RECORD_ATOMS, LoadReport, MolRecord, _Collector, _rdkit

QM9_PROPERTIES = ("A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv")
"""The 15 scalar properties on the second line of a QM9 ``.xyz`` file, after the ``gdb <index>`` tag."""

XYZ_ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz")

MAX_XYZ_ATOMS = MAX_RECORD_ATOMS
"""Largest atom count a record may declare (checked before anything is read for it)."""

MAX_XYZ_FILE_BYTES = 256 << 20
"""Largest ``.xyz`` file (or archive member) read: 256 MiB (a QM9 file is about 1 KiB)."""


def _qm9_float(text: str) -> float:
    """A QM9 number: plain float or Mathematica's ``2.1*^-6`` exponent notation."""
    return float(text.replace("*^", "e"))


class XyzParseError(DataError):
    """A malformed ``.xyz`` record; ``offset`` is the 0-based line (within the record) at fault.

    The message names the file (when known), the line, the field (``atom count``, ``atom 3 x``, ``U0``, ...) and
    the value.
    """

    def __init__(
        self,
        offset: int,
        reason: str,
        *,
        path: str | os.PathLike | None = None,
        line: int | None = None,
        field: str | None = None,
        value: Any = None,
    ):
        super().__init__(reason, path=path, line=line, field=field, value=value)
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


def _number(text: str, err: Any, offset: int, field: str, what: str, bound: float | None = None) -> float:
    try:
        v = _qm9_float(text)
    except ValueError:
        raise err(offset, f"non-numeric {what}", field, text[:40]) from None
    if not math.isfinite(v) or (bound is not None and abs(v) > bound):
        limit = f" or beyond +-{bound:g}" if bound is not None else ""
        raise err(offset, f"{what} not finite{limit}", field, text[:40])
    return v


def parse_xyz_record(lines: list[str], start: int = 0, *, path: str | os.PathLike | None = None) -> XyzRecord:
    """Parse one xyz / QM9 extended-xyz record beginning at ``lines[start]``.

    Layout: atom count; comment (QM9: ``gdb N`` + 15 properties); ``symbol x y z [mulliken]`` per atom; then, in
    QM9 files, a line of harmonic frequencies, a line of two SMILES and a line of two InChIs. Numbers may use
    ``*^`` exponents. A following record is recognised by a line holding a single integer. Coordinates must be
    finite and within +-:data:`~ditkit_molecules.records.MAX_COORD` Angstrom, properties and charges finite.

    Args:
        lines: the file's lines.
        start: index of the record's count line.
        path: the file, named in errors.

    Raises:
        XyzParseError: naming ``path``, the line (1-based, in the file), the field and the value.
    """

    def err(offset: int, reason: str, field: str | None = None, value: Any = None) -> XyzParseError:
        return XyzParseError(offset, reason, path=path, line=start + offset + 1, field=field, value=value)

    head = lines[start].strip() if start < len(lines) else ""
    try:
        n = int(head)
    except ValueError:
        raise err(0, "expected the number of atoms", "atom count", head[:40]) from None
    if not 1 <= n <= MAX_XYZ_ATOMS:
        raise err(0, f"number of atoms outside [1, {MAX_XYZ_ATOMS}]", "atom count", n)
    if start + 2 + n > len(lines):
        have = max(len(lines) - start - 2, 0)
        reason = f"file ends inside the atom block ({n} atoms declared, {have} read)"
        raise err(min(len(lines) - start - 1, 1 + n), reason)
    comment = lines[start + 1].strip()
    props: dict[str, float] = {}
    words = comment.split()
    name = words[0] if words else ""
    if len(words) >= 2 + len(QM9_PROPERTIES) and words[0] == "gdb":
        name = f"gdb {words[1]}"
        props = {k: _number(v, err, 1, k, "QM9 property") for k, v in zip(QM9_PROPERTIES, words[2:])}
    symbols, coords, charges = [], [], []
    for k in range(n):
        fields = lines[start + 2 + k].split()
        if len(fields) < 4:
            raise err(2 + k, "atom line needs 'symbol x y z'", f"atom {k + 1}", lines[start + 2 + k].strip()[:60])
        xyz = tuple(
            _number(v, err, 2 + k, f"atom {k + 1} {ax}", "coordinate", MAX_COORD) for ax, v in zip("xyz", fields[1:4])
        )
        q = _number(fields[4], err, 2 + k, f"atom {k + 1} mulliken", "charge") if len(fields) > 4 else None
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
    return s.isascii() and s.isdigit()


def _xyz_to_mol(rec: XyzRecord) -> Any:
    """RDKit molecule with explicit hydrogens, the record's conformer and bonds from the geometry.

    Bonds come from ``rdDetermineBonds`` (connectivity by covalent radii, xyz2mol bond orders, neutral molecule,
    at most :data:`~ditkit_molecules.geometry.BOND_ORDER_MAX_ITERATIONS` valence combinations), the same inference
    the 3D metrics use.

    Raises:
        XyzParseError: an unknown element (offset of its atom line) or no bond assignment (offset 0).
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDetermineBonds
    from rdkit.Geometry import Point3D

    rw = Chem.RWMol()
    pt = Chem.GetPeriodicTable()
    for k, s in enumerate(rec.symbols):
        try:
            z = pt.GetAtomicNumber(s.capitalize() if len(s) <= 2 else s)
        except Exception:  # noqa: BLE001 - RDKit raises a RuntimeError for unknown symbols
            z = 0
        if z <= 0:
            raise XyzParseError(2 + k, "unknown element symbol", field=f"atom {k + 1} symbol", value=s[:20])
        rw.AddAtom(Chem.Atom(z))
    conf = Chem.Conformer(len(rec.symbols))
    for i, p in enumerate(rec.coords):
        conf.SetAtomPosition(i, Point3D(*p))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    try:
        if mol.GetNumAtoms() > 1:
            rdDetermineBonds.DetermineConnectivity(mol)
            determine_bond_orders(mol, charge=0, embedChiral=False)
        Chem.SanitizeMol(mol)
    except Exception as e:  # noqa: BLE001 - RDKit raises several types
        reason = str(e).strip()[:120] or type(e).__name__
        raise XyzParseError(0, f"no bond assignment for the geometry (xyz2mol): {reason}") from e
    return mol


def _decode(data: bytes, path: str) -> list[str]:
    """UTF-8 lines of a file's bytes; raises :class:`DataError` naming the line of the first bad byte."""
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"not UTF-8 text (byte 0x{data[e.start]:02x})", path=path, line=line) from None


def _xyz_sources(path: Path) -> Iterator[tuple[str, list[str] | DataError]]:
    """``(file name, lines or the DataError that made it unreadable)`` for an ``.xyz`` file, a folder of them
    (recursive, sorted; symbolic links that leave the folder are refused) or a tar archive (archive order; members
    are read, never extracted).

    Raises:
        DataError: no ``.xyz`` file in the folder / archive, or an unreadable archive.
    """
    name = path.name.lower()
    if path.is_dir():
        root = path.resolve()
        files = []
        for d, dirs, names in os.walk(path):
            dirs.sort()
            files += [Path(d) / f for f in sorted(names) if f.lower().endswith(".xyz")]
        if not files:
            raise DataError("no .xyz file in the folder", path=path)
        for p in files:
            rel = str(p.relative_to(path))
            try:
                with naming_file(p):
                    real = p.resolve()
                    if root not in real.parents:
                        raise DataError("symbolic link leaves the data folder", path=rel, field="target", value=real)
                    size = p.stat().st_size
                    if not p.is_file():
                        raise DataError("not a regular file", path=rel)
                if size > MAX_XYZ_FILE_BYTES:
                    raise DataError(f"file of {size} bytes exceeds the {MAX_XYZ_FILE_BYTES}-byte limit", path=rel)
                with naming_file(p):
                    data = p.read_bytes()
                yield rel, _decode(data, rel)
            except DataError as e:
                yield rel, e
        return
    if any(name.endswith(s) for s in XYZ_ARCHIVES):
        import tarfile

        found = False
        if not path.is_file():
            raise DataError("not a regular file", path=path)
        with naming_file(path, "cannot read the archive"):
            tar = tarfile.open(path)
        with tar:
            members = iter(tar)
            while True:
                with naming_file(path, "cannot read the archive"):
                    m = next(members, None)
                if m is None:
                    break
                if not (m.isfile() and m.name.lower().endswith(".xyz")):
                    continue
                found = True
                try:
                    if m.size > MAX_XYZ_FILE_BYTES:
                        reason = f"member of {m.size} bytes exceeds the {MAX_XYZ_FILE_BYTES}-byte limit"
                        raise DataError(reason, path=m.name)
                    with naming_file(f"{path}:{m.name}"):
                        f = tar.extractfile(m)
                        data = f.read() if f is not None else b""
                    yield m.name, _decode(data, m.name)
                except DataError as e:
                    yield m.name, e
        if not found:
            raise DataError("no .xyz member in the archive", path=path)
        return
    with naming_file(path):
        size, regular = path.stat().st_size, path.is_file()
    if not regular:
        raise DataError("not a regular file", path=path)
    if size > MAX_XYZ_FILE_BYTES:
        raise DataError(f"file of {size} bytes exceeds the {MAX_XYZ_FILE_BYTES}-byte limit", path=path)
    with naming_file(path):
        data = path.read_bytes()
    try:
        yield path.name, _decode(data, path.name)
    except DataError as e:
        yield path.name, e


def _compare_smiles(mol: Any, given: str) -> tuple[str, str]:
    """Canonical SMILES (no stereo) of the geometry's molecule and of the file's SMILES; equal when the file's SMILES
    cannot be read (nothing to compare with)."""
    Chem = _rdkit()
    try:
        ref = Chem.MolFromSmiles(given) if len(given) <= 1000 else None
        if ref is None:
            return "", ""
        Chem.RemoveStereochemistry(ref)
        ours = Chem.RemoveHs(mol)
        Chem.RemoveStereochemistry(ours)
        return Chem.MolToSmiles(ours), Chem.MolToSmiles(ref)
    except Exception:  # noqa: BLE001 - RDKit raises several types
        return "", ""


def _detail(e: DataError) -> str:
    return f"{e.field}={e.value!r}: {e.reason}" if e.field else e.reason


def read_xyz(path: str | os.PathLike, *, check_smiles: bool = True, **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Read (QM9 extended) xyz molecules from a file, a folder of files (e.g. the extracted
    ``dsgdb9nsd.xyz.tar.bz2``) or the tar archive itself.

    Each record becomes a molecule with explicit hydrogens and its given geometry (kept as a mol block for the 3D
    model), bonds inferred from the geometry (:func:`_xyz_to_mol`), then :func:`standardise` d. Issues carry the
    file name (inside the folder / archive) and the line where the record or the fault is:

    * ``broken_record`` (skipped): bad or hostile atom count, short atom block (truncated file), non-numeric,
      infinite or NaN field (the message names the field: ``atom 3 x``, ``U0``, ...), unknown element, or a
      geometry without a valid bond assignment;
    * ``unreadable`` (skipped): a file of the folder / archive that is not UTF-8 (with its line), too big, or a
      symbolic link leaving the folder;
    * ``smiles_mismatch`` (kept): with ``check_smiles``, the geometry's molecule differs from the B3LYP-relaxed
      SMILES on the record's SMILES line (QM9 lists ~3k such molecules; the geometry is what the model learns);
    * all :func:`standardise` kinds.

    A record that cannot be parsed makes the reader skip to the next line holding a single integer.

    Raises:
        DataError: an unreadable file or archive, a folder / archive without ``.xyz`` files, or no usable record
            (listing the reasons).
    """
    path = Path(path)
    c = _Collector(path.name, std, path)
    Chem = _rdkit()
    for fname, lines in _xyz_sources(path):
        c.source = fname
        if isinstance(lines, DataError):
            c.report.read += 1
            c.issue(1, lines.line or 1, "unreadable", lines.reason, field=lines.field)
            continue
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
                c.issue(record, i + 1 + e.offset, "broken_record", _detail(e), field=e.field)
                i += 1
                while i < len(lines) and not _is_count(lines[i]):
                    i += 1
                continue
            line, i = i + 1, i + rec.lines
            try:
                mol = _xyz_to_mol(rec)
            except XyzParseError as e:
                detail = f"{rec.name or 'record'}: {_detail(e)}"
                c.issue(record, line + e.offset, "broken_record", detail, field=e.field)
                continue
            if check_smiles and len(rec.smiles) >= 2:
                a, b = _compare_smiles(mol, rec.smiles[1])
                if a != b:
                    c.issue(record, line, "smiles_mismatch", f"{rec.name}: geometry gives {a}, file says {b}", "kept")
            for k, v in rec.properties.items():
                mol.SetDoubleProp(k, v)
            try:
                molblock = Chem.MolToMolBlock(mol)
                heavy = Chem.RemoveHs(mol)
            except Exception as e:  # noqa: BLE001 - RDKit raises several types
                c.issue(record, line, "broken_record", f"{rec.name or 'record'}: RDKit: {e}".strip())
                continue
            c.add(heavy, rec.name, record, line, molblock)
    c.source = None
    return c.finish()
