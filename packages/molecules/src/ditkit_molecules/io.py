"""Molecule loaders for ``.smi``, ``.csv``, ``.sdf`` and QM9 ``.xyz`` with per-record reports; nothing bad stops a
load.

Every input record goes through :func:`standardise`:

1. parse (SMILES or a mol block); unparsable records are skipped as ``invalid_smiles`` / ``broken_record`` with
   RDKit's diagnosis (e.g. ``Explicit valence for atom # 1 N, 4, is greater than permitted``);
2. salts / mixtures (several fragments): the largest organic fragment is kept (RDKit's
   ``LargestFragmentChooser``), reported as ``multi_fragment`` with action ``standardised``;
3. charges are neutralised where a neutral form exists (RDKit's ``Uncharger``; zwitterions and nitro groups stay);
4. stereochemistry and isotopes are removed (the models here are 2D-graph / 3D-geometry models without chirality
   tokens);
5. radicals (unpaired electrons), elements outside ``elements`` and molecules outside the heavy-atom range are
   skipped as ``radical`` / ``unsupported_element`` / ``size``.

Records keep their 1-based line number (``.smi`` / ``.csv``) or record number and first line (``.sdf``, ``.xyz``;
for a folder or archive of ``.xyz`` files, also the file inside it), so every skipped or changed input can be found.
:class:`LoadReport` counts them by kind.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DRUG_ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
"""Elements accepted by default (organic subset; metals, B, Si, Se, ... are reported and skipped)."""


def _rdkit() -> Any:
    try:
        from rdkit import Chem, RDLogger
    except ImportError as e:  # pragma: no cover - rdkit is a hard dependency of the package
        raise ImportError("ditkit_molecules needs RDKit: pip install 'ditkit-molecules' (rdkit)") from e
    RDLogger.DisableLog("rdApp.*")
    return Chem


@dataclass
class Issue:
    """One problem found in one input record.

    Attributes:
        source: file name (or ``"<list>"``).
        record: 1-based record number (data line for ``.smi``/``.csv``, molecule index for ``.sdf``).
        line: 1-based line in the file where the record starts.
        kind: ``invalid_smiles``, ``broken_record``, ``unsupported_element``, ``radical``, ``multi_fragment``,
            ``size``, ``empty``, ``smiles_mismatch`` (xyz: geometry and the file's SMILES disagree).
        detail: human-readable diagnosis.
        action: ``skipped``, ``standardised`` or ``kept`` (noted only).
    """

    source: str
    record: int
    line: int
    kind: str
    detail: str
    action: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line} (record {self.record}) {self.kind} [{self.action}]: {self.detail}"


@dataclass
class LoadReport:
    """What a loader read, kept, skipped and changed."""

    source: str
    read: int = 0
    kept: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(1 for i in self.issues if i.action == "skipped")

    def counts(self) -> dict[str, int]:
        """``{"<kind>/<action>": count}`` over all issues."""
        return dict(Counter(f"{i.kind}/{i.action}" for i in self.issues))

    def summary(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts().items())) or "no issues"
        return f"{self.source}: read {self.read}, kept {self.kept}, skipped {self.skipped} ({parts})"

    def merge(self, other: LoadReport) -> LoadReport:
        return LoadReport(
            f"{self.source}+{other.source}", self.read + other.read, self.kept + other.kept, self.issues + other.issues
        )


@dataclass
class MolRecord:
    """A standardised molecule and where it came from.

    Attributes:
        smiles: canonical SMILES (no stereo, no isotopes) of the kept fragment.
        name: identifier from the file (second ``.smi`` column, ``_Name`` of an SDF record, ...).
        source: file name.
        record: 1-based record number.
        molblock: the record's mol block with 3D coordinates when it came from an ``.sdf`` with a 3D conformer.
    """

    smiles: str
    name: str = ""
    source: str = ""
    record: int = 0
    molblock: str | None = None


def standardise(
    mol: Any,
    *,
    elements: tuple[str, ...] = DRUG_ELEMENTS,
    min_heavy_atoms: int = 1,
    max_heavy_atoms: int = 1000,
    keep_largest_fragment: bool = True,
    neutralise: bool = True,
) -> tuple[Any | None, list[tuple[str, str, str]]]:
    """Apply the documented standardisation to an RDKit molecule.

    Args:
        mol: a sanitised RDKit ``Mol``.
        elements: allowed element symbols (hydrogen is always allowed).
        min_heavy_atoms, max_heavy_atoms: inclusive heavy-atom range.
        keep_largest_fragment: keep the largest fragment of salts / mixtures (else skip them).
        neutralise: neutralise charges where possible.

    Returns:
        ``(mol or None, [(kind, detail, action), ...])``; ``None`` means the record is skipped.
    """
    Chem = _rdkit()
    from rdkit.Chem.MolStandardize import rdMolStandardize

    notes: list[tuple[str, str, str]] = []
    if mol.GetNumAtoms() == 0:
        return None, [("empty", "no atoms", "skipped")]
    frags = Chem.GetMolFrags(mol, asMols=False)
    if len(frags) > 1:
        if not keep_largest_fragment:
            return None, [("multi_fragment", f"{len(frags)} fragments", "skipped")]
        before = Chem.MolToSmiles(mol)
        mol = rdMolStandardize.LargestFragmentChooser(preferOrganic=True).choose(mol)
        notes.append(
            ("multi_fragment", f"{len(frags)} fragments in {before}: kept {Chem.MolToSmiles(mol)}", "standardised")
        )
    if neutralise:
        mol = rdMolStandardize.Uncharger().uncharge(mol)
    bad = sorted({a.GetSymbol() for a in mol.GetAtoms() if a.GetSymbol() not in elements and a.GetAtomicNum() != 1})
    if bad:
        return None, notes + [("unsupported_element", f"element(s) {bad} not in {list(elements)}", "skipped")]
    rad = [a.GetIdx() for a in mol.GetAtoms() if a.GetNumRadicalElectrons()]
    if rad:
        return None, notes + [("radical", f"unpaired electrons on atom(s) {rad}", "skipped")]
    n = mol.GetNumHeavyAtoms()
    if not min_heavy_atoms <= n <= max_heavy_atoms:
        return None, notes + [("size", f"{n} heavy atoms outside [{min_heavy_atoms}, {max_heavy_atoms}]", "skipped")]
    for a in mol.GetAtoms():
        a.SetIsotope(0)
    Chem.RemoveStereochemistry(mol)
    return mol, notes


def _diagnose_smiles(smiles: str) -> str:
    Chem = _rdkit()
    raw = Chem.MolFromSmiles(smiles, sanitize=False)
    if raw is None:
        return f"SMILES syntax error in {smiles!r}"
    problems = Chem.DetectChemistryProblems(raw)
    if problems:
        return f"{smiles!r}: " + "; ".join(p.Message() for p in problems)
    return f"RDKit could not sanitise {smiles!r}"


class _Collector:
    def __init__(self, source: str, std_kwargs: dict[str, Any]):
        self.report = LoadReport(source)
        self.records: list[MolRecord] = []
        self.kw = std_kwargs
        self.source: str | None = None  # file inside a folder / archive (issues and records name it)

    def issue(self, record: int, line: int, kind: str, detail: str, action: str = "skipped") -> None:
        self.report.issues.append(Issue(self.source or self.report.source, record, line, kind, detail, action))

    def add(self, mol: Any, name: str, record: int, line: int, molblock: str | None = None) -> None:
        Chem = _rdkit()
        mol, notes = standardise(mol, **self.kw)
        for kind, detail, action in notes:
            self.issue(record, line, kind, detail, action)
        if mol is None:
            return
        if molblock is not None and notes:  # coordinates of a changed molecule no longer match: drop them
            molblock = None
        self.records.append(MolRecord(Chem.MolToSmiles(mol), name, self.source or self.report.source, record, molblock))
        self.report.kept += 1

    def add_smiles(self, smiles: str, name: str, record: int, line: int) -> None:
        Chem = _rdkit()
        self.report.read += 1
        smiles = smiles.strip()
        if not smiles:
            self.issue(record, line, "empty", "empty SMILES field")
            return
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            self.issue(record, line, "invalid_smiles", _diagnose_smiles(smiles))
            return
        self.add(mol, name, record, line)

    def finish(self) -> tuple[list[MolRecord], LoadReport]:
        log.info(self.report.summary())
        return self.records, self.report


def read_smiles_list(smiles: list[str], *, source: str = "<list>", **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Standardise a list of SMILES strings (record = position + 1). ``std``: :func:`standardise` options."""
    c = _Collector(source, std)
    for i, s in enumerate(smiles, 1):
        c.add_smiles(s, "", i, i)
    return c.finish()


def read_smi(
    path: str | os.PathLike,
    *,
    column: int = 0,
    name_column: int | None = 1,
    delimiter: str | None = None,
    header: bool = False,
    **std: Any,
) -> tuple[list[MolRecord], LoadReport]:
    """Read a whitespace- (or ``delimiter``-) separated SMILES file.

    Args:
        path: ``.smi`` file; blank lines and lines starting with ``#`` are ignored.
        column: 0-based column holding the SMILES.
        name_column: 0-based column holding a name (None: no names).
        delimiter: field separator (None: any whitespace).
        header: skip the first non-comment line.
        **std: :func:`standardise` options.
    """
    path = Path(path)
    c = _Collector(path.name, std)
    record = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if header:
                header = False
                continue
            record += 1
            fields = line.rstrip("\n").split(delimiter)
            if column >= len(fields):
                c.report.read += 1
                c.issue(record, lineno, "invalid_smiles", f"line has {len(fields)} field(s), no column {column}")
                continue
            name = fields[name_column].strip() if name_column is not None and name_column < len(fields) else ""
            c.add_smiles(fields[column], name, record, lineno)
    return c.finish()


def read_csv(
    path: str | os.PathLike, *, column: str = "smiles", name_column: str | None = None, **std: Any
) -> tuple[list[MolRecord], LoadReport]:
    """Read a CSV with a header (MOSES-style ``SMILES,SPLIT`` files included).

    Args:
        path: ``.csv`` file.
        column: header of the SMILES column (matched case-insensitively).
        name_column: optional header of an identifier column.
        **std: :func:`standardise` options.

    Raises:
        KeyError: when ``column`` is not in the header (the message lists the header).
    """
    path = Path(path)
    c = _Collector(path.name, std)
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f)
        head = next(reader, [])
        lower = [h.strip().lower() for h in head]
        if column.lower() not in lower:
            raise KeyError(f"{path}:1: no column {column!r} in header {head}; pass column=<one of them>")
        ci = lower.index(column.lower())
        ni = lower.index(name_column.lower()) if name_column and name_column.lower() in lower else None
        for record, row in enumerate(reader, 1):
            lineno = reader.line_num
            if not row:
                continue
            if ci >= len(row):
                c.report.read += 1
                c.issue(record, lineno, "invalid_smiles", f"row has {len(row)} field(s), no column {column!r}")
                continue
            c.add_smiles(row[ci], row[ni] if ni is not None and ni < len(row) else "", record, lineno)
    return c.finish()


def read_sdf(path: str | os.PathLike, **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Read an SD file record by record (split at ``$$$$``); a broken record is reported and skipped.

    Records with a 3D conformer (and unchanged by standardisation) keep their mol block with explicit hydrogens
    so the 3D model can train on the given geometry.
    """
    Chem = _rdkit()
    path = Path(path)
    c = _Collector(path.name, std)
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    start, record = 0, 0
    for i, line in enumerate(lines + ["$$$$"]):
        if line.strip() != "$$$$":
            continue
        block = "\n".join(lines[start:i])
        first = start + 1
        start = i + 1
        if not block.strip():
            continue
        record += 1
        c.report.read += 1
        mol = Chem.MolFromMolBlock(block, removeHs=False)
        if mol is None:
            raw = Chem.MolFromMolBlock(block, sanitize=False, removeHs=False)
            detail = (
                "unparsable mol block"
                if raw is None
                else "; ".join(p.Message() for p in Chem.DetectChemistryProblems(raw))
                or "RDKit could not sanitise the record"
            )
            c.issue(record, first, "broken_record", detail)
            continue
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        has3d = mol.GetNumConformers() > 0 and mol.GetConformer().Is3D()
        molblock = Chem.MolToMolBlock(Chem.AddHs(mol, addCoords=True)) if has3d else None
        c.add(Chem.RemoveHs(mol, sanitize=True), name, record, first, molblock)
    return c.finish()


def load_molecules(
    path: str | os.PathLike, *, column: str | int | None = None, **std: Any
) -> tuple[list[MolRecord], LoadReport]:
    """Dispatch on the suffix: ``.smi``/``.smiles``/``.txt``, ``.csv``, ``.sdf``/``.sd``, ``.xyz`` (QM9 extended
    xyz), a folder of ``.xyz`` files or a tar archive of them (:func:`ditkit_molecules.xyz.read_xyz`).

    Args:
        path: the file or folder.
        column: SMILES column (int index for ``.smi``, header name for ``.csv``).
        **std: :func:`standardise` options.
    """
    from ditkit_molecules.xyz import XYZ_ARCHIVES, read_xyz

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_molecules: {path} does not exist")
    if path.is_dir() or path.suffix.lower() == ".xyz" or any(path.name.lower().endswith(s) for s in XYZ_ARCHIVES):
        return read_xyz(path, **std)
    suffix = path.suffix.lower()
    if suffix in (".smi", ".smiles", ".txt"):
        return read_smi(path, column=int(column or 0), **std)
    if suffix == ".csv":
        return read_csv(path, column=str(column or "smiles"), **std)
    if suffix in (".sdf", ".sd"):
        return read_sdf(path, **std)
    raise ValueError(
        f"load_molecules: {path}: unknown suffix {suffix!r}; use .smi, .csv, .sdf, .xyz, a folder of "
        ".xyz files or a tar archive of them"
    )


def default_smiles_path() -> Path:
    """``first_5K.smi`` shipped inside RDKit (4,991 NCI molecules): the embedded default data set."""
    from rdkit import RDConfig

    p = Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing from this RDKit install; pass a data path instead")
    return p


def split_records(records: list[MolRecord], val_fraction: float, seed: int) -> tuple[list[MolRecord], list[MolRecord]]:
    """Deterministic split on unique canonical SMILES (duplicates never straddle the split)."""
    import random

    uniq = sorted({r.smiles for r in records})
    random.Random(seed).shuffle(uniq)
    n_val = int(round(len(uniq) * val_fraction))
    first: dict[str, MolRecord] = {}
    for r in records:
        first.setdefault(r.smiles, r)
    return [first[s] for s in uniq[n_val:]], [first[s] for s in uniq[:n_val]]
