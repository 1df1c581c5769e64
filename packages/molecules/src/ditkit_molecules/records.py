"""Records and reports shared by the molecule loaders: :class:`Issue`, :class:`LoadReport`, :class:`MolRecord`,
:func:`standardise` and the line reader every text loader uses (:func:`text_lines`).

The loaders themselves are :mod:`ditkit_molecules.io` (``.smi``, ``.csv``, dispatch), :mod:`ditkit_molecules.sdf` and
:mod:`ditkit_molecules.xyz`; :mod:`ditkit_molecules.io` re-exports the names defined here.
"""

from __future__ import annotations

import codecs
import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ditkit_core.errors import DataError, naming_file

log = logging.getLogger("ditkit_molecules.io")

DRUG_ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")
"""Elements accepted by default (organic subset; metals, B, Si, Se, ... are reported and skipped)."""

MAX_LINE_BYTES = 1 << 20
"""A text line longer than this (1 MiB) is skipped unread as ``too_long``: a file without newlines cannot fill
memory."""

MAX_SMILES_CHARS = 100_000
"""SMILES fields longer than this are skipped as ``too_long`` before RDKit parses them."""

MAX_RECORD_ATOMS = 5_000
"""Records with more atoms are skipped as ``size`` before RDKit canonicalises them (RDKit's SMILES writer recurses once
per atom along a chain and overflows the C stack near 20,000 atoms)."""

MAX_COORD = 1e4
"""Coordinates (Angstrom) beyond +-this in a mol block or an xyz file make the record ``broken_record``."""


def _rdkit() -> Any:
    try:
        from rdkit import Chem, RDLogger
    except ImportError as e:  # pragma: no cover - rdkit is a hard dependency of the package
        raise ImportError("ditkit_molecules needs RDKit: pip install 'ditkit-molecules' (rdkit)") from e
    RDLogger.DisableLog("rdApp.*")
    return Chem


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text`` cut to about ``limit`` characters (messages never quote a whole 100k-character field)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


@dataclass
class Issue:
    """One problem found in one input record.

    Attributes:
        source: file name (or ``"<list>"``).
        record: 1-based record number (data line for ``.smi``/``.csv``, molecule index for ``.sdf``).
        line: 1-based line in the file where the record starts or, for a malformed record, where the fault is.
        kind: ``invalid_smiles``, ``broken_record``, ``unsupported_element``, ``radical``, ``multi_fragment``,
            ``size``, ``empty``, ``encoding`` (not UTF-8), ``too_long``, ``missing_delimiter`` (``.sdf``: no
            ``$$$$`` between two records), ``unreadable`` (a file inside a folder / archive), ``smiles_mismatch``
            (xyz: geometry and the file's SMILES disagree).
        detail: human-readable diagnosis (``field=value: reason`` where a field is at fault).
        action: ``skipped``, ``standardised`` or ``kept`` (noted only).
        field: the field at fault (``smiles``, ``line``, ``atom 3 x``, ...), None when the whole record is.
    """

    source: str
    record: int
    line: int
    kind: str
    detail: str
    action: str
    field: str | None = None

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

    def skip_counts(self) -> dict[str, int]:
        """``{kind: count}`` of the skipped records, most frequent first."""
        return dict(Counter(i.kind for i in self.issues if i.action == "skipped").most_common())

    def summary(self, examples: int = 0) -> str:
        """``<source>: read R, kept K, skipped S (<kind>/<action>: n, ...)``, then up to ``examples`` issues of each
        kind (file, line, record and diagnosis), one per line."""
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.counts().items())) or "no issues"
        head = f"{self.source}: read {self.read}, kept {self.kept}, skipped {self.skipped} ({parts})"
        if examples <= 0 or not self.issues:
            return head
        lines = [head]
        for key in sorted(self.counts()):
            lines += [f"  {i}" for i in self.issues if f"{i.kind}/{i.action}" == key][:examples]
        return "\n".join(lines)

    def log(self, logger: logging.Logger | None = None, examples: int = 3) -> None:
        """Log :meth:`summary`: at ``WARNING`` when a record was skipped (visible at the default log level), else
        ``INFO``."""
        level = logging.WARNING if self.skipped else logging.INFO
        (logger or log).log(level, "%s", self.summary(examples))

    def require_some(self, path: str | os.PathLike | None = None) -> None:
        """Raise :class:`~ditkit_core.errors.DataError` listing the skip reasons (count and first example each)
        when no record was kept."""
        if self.kept:
            return
        if not self.read:
            raise DataError("no usable molecule: the input holds no record", path=path or self.source)
        reasons = []
        for kind, n in self.skip_counts().items():
            first = next(i for i in self.issues if i.kind == kind and i.action == "skipped")
            reasons.append(f"{n} x {kind} (e.g. {first.source} line {first.line}: {first.detail})")
        raise DataError(
            f"no usable molecule among {self.read} record(s): " + "; ".join(reasons), path=path or self.source
        )

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
        return f"SMILES syntax error in {_short(smiles)}"
    problems = Chem.DetectChemistryProblems(raw)
    if problems:
        return f"{_short(smiles)}: " + "; ".join(p.Message() for p in problems)
    return f"RDKit could not sanitise {_short(smiles)}"


_STD_KEYS = ("elements", "min_heavy_atoms", "max_heavy_atoms", "keep_largest_fragment", "neutralise")


def _check_std(std: dict[str, Any]) -> dict[str, Any]:
    """Validate :func:`standardise` options once per load (not per record); errors name the option and value."""
    unknown = sorted(set(std) - set(_STD_KEYS))
    if unknown:
        raise TypeError(f"unknown standardise option(s) {unknown}; known: {list(_STD_KEYS)}")
    lo, hi = std.get("min_heavy_atoms", 1), std.get("max_heavy_atoms", 1000)
    for key, v in (("min_heavy_atoms", lo), ("max_heavy_atoms", hi)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{key}={v!r}: must be a non-negative integer")
    if hi < lo:
        raise ValueError(f"max_heavy_atoms={hi!r}: must be >= min_heavy_atoms={lo!r}")
    elements = std.get("elements", DRUG_ELEMENTS)
    if isinstance(elements, str) or not all(isinstance(e, str) and e for e in elements):
        raise ValueError(f"elements={elements!r}: must be a sequence of element symbols")
    return std


def _check_column(value: Any, name: str, *, allow_str: bool, path: str | os.PathLike | None = None) -> int | str | None:
    """A column argument: a 0-based index (int >= 0) or, where ``allow_str``, a header name."""
    if value is None or (allow_str and isinstance(value, str) and value):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        kinds = "a 0-based column index or a header name" if allow_str else "a 0-based column index"
        raise DataError(f"must be {kinds}", path=path, field=name, value=value)
    return value


def text_lines(path: str | os.PathLike, max_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str | None, str, str]]:
    """Lines of a text file, read in binary so that one bad line never stops a load.

    Yields:
        ``(line number, text, kind, problem)``: ``text`` without its line ending (a UTF-8 BOM on line 1 removed),
        or None with ``kind`` ``encoding`` (not UTF-8) / ``too_long`` (over ``max_bytes``, skipped unread) and
        ``problem`` saying why.

    Raises:
        DataError: the file cannot be opened or read, or is not a regular file (a FIFO or ``/dev/zero`` would block
            or never end), naming it.
    """
    with naming_file(path):
        regular = os.path.isfile(path)
    if not regular:
        raise DataError("not a regular file", path=path)
    with naming_file(path):
        f = open(path, "rb")  # noqa: SIM115 - closed below; the generator yields between reads
    with f:
        lineno = 0
        while True:
            with naming_file(path):
                raw = f.readline(max_bytes + 1)
            if not raw:
                return
            lineno += 1
            if len(raw) > max_bytes and not raw.endswith(b"\n"):
                with naming_file(path):
                    while raw and not raw.endswith(b"\n"):
                        raw = f.readline(1 << 20)
                yield lineno, None, "too_long", f"line longer than {max_bytes} bytes (skipped unread)"
                continue
            raw = raw.rstrip(b"\r\n")
            if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, "encoding", f"not UTF-8 text (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
                continue
            yield lineno, text, "", ""


class _Collector:
    def __init__(self, source: str, std_kwargs: dict[str, Any], path: str | os.PathLike | None = None):
        self.report = LoadReport(source)
        self.records: list[MolRecord] = []
        self.kw = _check_std(std_kwargs)
        self.path = path if path is not None else source
        self.source: str | None = None  # file inside a folder / archive (issues and records name it)

    def issue(
        self, record: int, line: int, kind: str, detail: str, action: str = "skipped", field: str | None = None
    ) -> None:
        self.report.issues.append(Issue(self.source or self.report.source, record, line, kind, detail, action, field))

    def skip_line(self, record: int, line: int, kind: str, problem: str) -> None:
        """A record that could not be read as text (``text_lines`` problem)."""
        self.report.read += 1
        self.issue(record, line, kind, problem, field="line")

    def add(self, mol: Any, name: str, record: int, line: int, molblock: str | None = None) -> None:
        Chem = _rdkit()
        if mol.GetNumAtoms() > MAX_RECORD_ATOMS:
            self.issue(record, line, "size", f"{mol.GetNumAtoms()} atoms exceed the limit of {MAX_RECORD_ATOMS}")
            return
        try:
            mol, notes = standardise(mol, **self.kw)
            smiles = Chem.MolToSmiles(mol) if mol is not None else ""
        except Exception as e:  # noqa: BLE001 - RDKit raises several types; the record is skipped, not the load
            self.issue(record, line, "broken_record", f"RDKit could not standardise the molecule: {e}".strip())
            return
        for kind, detail, action in notes:
            self.issue(record, line, kind, detail, action)
        if mol is None:
            return
        if molblock is not None and notes:  # coordinates of a changed molecule no longer match: drop them
            molblock = None
        self.records.append(MolRecord(smiles, name, self.source or self.report.source, record, molblock))
        self.report.kept += 1

    def add_smiles(self, smiles: str, name: str, record: int, line: int, field: str = "smiles") -> None:
        Chem = _rdkit()
        self.report.read += 1
        smiles = smiles.strip()
        if not smiles:
            self.issue(record, line, "empty", "empty SMILES field", field=field)
            return
        if len(smiles) > MAX_SMILES_CHARS:
            detail = f"{len(smiles)} characters exceed the limit of {MAX_SMILES_CHARS}"
            self.issue(record, line, "too_long", detail, field=field)
            return
        if any(ch.isspace() for ch in smiles):  # RDKit would read up to the first blank and drop the rest silently
            self.issue(record, line, "invalid_smiles", f"whitespace inside the SMILES {_short(smiles)}", field=field)
            return
        try:
            mol = Chem.MolFromSmiles(smiles)
            detail = _diagnose_smiles(smiles) if mol is None else ""
        except Exception as e:  # noqa: BLE001 - RDKit raises for a few inputs instead of returning None
            mol, detail = None, f"RDKit could not parse {_short(smiles)}: {e}".strip()
        if mol is None:
            self.issue(record, line, "invalid_smiles", detail, field=field)
            return
        self.add(mol, name, record, line)

    def finish(self, require: bool = True) -> tuple[list[MolRecord], LoadReport]:
        """Log the report (``WARNING`` when anything was skipped); with ``require``, raise when nothing was kept."""
        self.report.log(log)
        if require:
            self.report.require_some(self.path)
        return self.records, self.report
