"""SD file reader: records split at ``$$$$``, a broken record reported with the line and field at fault.

A record is a mol block (3-line header, counts line, atom block, bond block, ``M  END``), optional data items and a
``$$$$`` line. Malformed records are skipped as ``broken_record``; for V2000 blocks :func:`diagnose_molblock` names
the line and field (``atom count``, ``atom 3 x``, ``bond 2 second atom``, ...) and the value. A record that holds a
second mol block because a ``$$$$`` line is missing is split and reported as ``missing_delimiter``. Coordinates that
are not finite or beyond :data:`~ditkit_molecules.records.MAX_COORD` make the record ``broken_record``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ditkit_molecules.records import MAX_COORD, MAX_RECORD_ATOMS, LoadReport, MolRecord, _Collector, _rdkit, text_lines

MAX_RECORD_CHARS = 16 << 20
"""An SD record (mol block and data items) longer than this (16 Mi characters) is skipped as ``too_long``."""

_COUNTS = re.compile(r"V[23]000\s*$")
_FIELDS_XYZ = (("x", 0, 10), ("y", 10, 20), ("z", 20, 30))


def diagnose_molblock(lines: list[str]) -> tuple[int, str, str, str] | None:
    """First format fault of a V2000 mol block: ``(0-based line offset, field, value, reason)``, None if none found.

    Checks the header and counts line, every atom line (coordinates numeric, finite and within
    :data:`~ditkit_molecules.records.MAX_COORD`, a symbol), every bond line (atom indices in range, a bond type) and the
    ``M  END`` line. V3000 blocks are not diagnosed (None).
    """
    if len(lines) < 4:
        return len(lines), "counts line", "", f"record ends after {len(lines)} line(s), before the counts line"
    counts = lines[3]
    if "V3000" in counts:
        return None
    values = []
    for name, a, b in (("atom count", 0, 3), ("bond count", 3, 6)):
        text = counts[a:b]
        if not (text.strip().isascii() and text.strip().isdigit()):
            return 3, name, text.strip(), f"not a non-negative integer (columns {a + 1}-{b} of the counts line)"
        values.append(int(text))
    n_atoms, n_bonds = values
    for i in range(n_atoms):
        off = 4 + i
        if off >= len(lines) or lines[off].startswith("M  "):
            return off, f"atom {i + 1}", "", f"record ends inside the atom block ({n_atoms} atoms declared, {i} read)"
        line = lines[off]
        for name, a, b in _FIELDS_XYZ:
            text = line[a:b].strip()
            try:
                v = float(text)
            except ValueError:
                return off, f"atom {i + 1} {name}", text, "non-numeric coordinate"
            if not math.isfinite(v) or abs(v) > MAX_COORD:
                return off, f"atom {i + 1} {name}", text, f"coordinate not finite or beyond +-{MAX_COORD:g} Angstrom"
        if not line[31:34].strip():
            return off, f"atom {i + 1} symbol", line[31:34], "no element symbol (columns 32-34)"
    for j in range(n_bonds):
        off = 4 + n_atoms + j
        if off >= len(lines) or lines[off].startswith("M  "):
            return off, f"bond {j + 1}", "", f"record ends inside the bond block ({n_bonds} bonds declared, {j} read)"
        line = lines[off]
        for name, a, b in (("first atom", 0, 3), ("second atom", 3, 6), ("type", 6, 9)):
            text = line[a:b].strip()
            if not (text.isascii() and text.isdigit()):
                return off, f"bond {j + 1} {name}", text, "not a non-negative integer"
            if name != "type" and not 1 <= int(text) <= n_atoms:
                return off, f"bond {j + 1} {name}", text, f"atom index outside [1, {n_atoms}]"
    if not any(ln.startswith("M  END") for ln in lines[4 + n_atoms + n_bonds :]):
        return len(lines), "M  END", "", "record ends without an 'M  END' line"
    return None


def _blocks(path: Path) -> Iterator[tuple[int, list[str], str, str]]:
    """``(first line, lines, kind, problem)`` per ``$$$$``-separated block; ``problem`` is set (and the lines may be
    incomplete) when a line was unreadable or the block too long."""
    block: list[str] = []
    first, kind, problem, size = 0, "", "", 0
    for lineno, text, line_kind, line_problem in text_lines(path):
        if text is not None and text.strip() == "$$$$":
            yield first or lineno, block, kind, problem
            block, first, kind, problem, size = [], 0, "", "", 0
            continue
        first = first or lineno
        if text is None:
            if not problem:
                kind, problem = line_kind, f"line {lineno}: {line_problem}"
            text = ""
        size += len(text) + 1
        if size > MAX_RECORD_CHARS:
            if not problem:
                kind, problem = "too_long", f"record longer than {MAX_RECORD_CHARS} characters"
            continue
        block.append(text)
    if block:
        yield first, block, kind, problem


def _split(block: list[str]) -> list[int]:
    """Offsets where the records of a block start: more than one when a ``$$$$`` line is missing (a counts line
    follows an ``M  END`` line)."""
    starts, last_end = [0], None
    for i, line in enumerate(block):
        if line.startswith("M  END"):
            last_end = i
        elif i >= 3 and _COUNTS.search(line) and last_end is not None and i - 3 > last_end:
            starts.append(i - 3)
            last_end = None
    return starts


def _parse(c: _Collector, block: list[str], first: int, record: int) -> None:
    """Parse one mol block (``first``: its first line in the file) and hand it to the collector."""
    Chem = _rdkit()
    import numpy as np

    text = "\n".join(block)
    try:
        mol = Chem.MolFromMolBlock(text, removeHs=False)
    except Exception:  # noqa: BLE001 - RDKit raises for some malformed blocks instead of returning None
        mol = None
    coords_ok = True
    if mol is not None and mol.GetNumConformers():
        pos = mol.GetConformer().GetPositions()
        coords_ok = bool(np.isfinite(pos).all() and (np.abs(pos) <= MAX_COORD).all())
    if mol is None or not coords_ok:
        fault = diagnose_molblock(block)
        if fault is not None:
            off, field, value, reason = fault
            what = f"{field}={value!r}" if value else field
            detail = f"{what}: {reason} (record starting at line {first})"
            c.issue(record, first + off, "broken_record", detail, field=field)
            return
        if not coords_ok:
            c.issue(record, first, "broken_record", f"coordinates not finite or beyond +-{MAX_COORD:g} Angstrom")
            return
        raw = None
        try:
            raw = Chem.MolFromMolBlock(text, sanitize=False, removeHs=False)
            problems = "; ".join(p.Message() for p in Chem.DetectChemistryProblems(raw)) if raw is not None else ""
        except Exception:  # noqa: BLE001
            problems = ""
        detail = problems or ("RDKit could not sanitise the record" if raw is not None else "unparsable mol block")
        c.issue(record, first, "broken_record", detail)
        return
    if mol.GetNumAtoms() > MAX_RECORD_ATOMS:
        c.issue(record, first, "size", f"{mol.GetNumAtoms()} atoms exceed the limit of {MAX_RECORD_ATOMS}")
        return
    try:
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        has3d = mol.GetNumConformers() > 0 and mol.GetConformer().Is3D()
        molblock = Chem.MolToMolBlock(Chem.AddHs(mol, addCoords=True)) if has3d else None
        heavy = Chem.RemoveHs(mol, sanitize=True)
    except Exception as e:  # noqa: BLE001
        c.issue(record, first, "broken_record", f"RDKit could not process the record: {e}".strip())
        return
    c.add(heavy, name, record, first, molblock)


def read_sdf(path: str | os.PathLike, **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Read an SD file record by record (split at ``$$$$``); a broken record is reported and skipped.

    Records with a 3D conformer (and unchanged by standardisation) keep their mol block with explicit hydrogens
    so the 3D model can train on the given geometry. Issues: ``broken_record`` (with the line and field at fault for
    V2000 blocks), ``missing_delimiter`` (kept: two mol blocks without ``$$$$`` between them are read as two records),
    ``encoding`` / ``too_long`` (an unreadable line or an oversized record) and the :func:`standardise` kinds.

    Raises:
        DataError: an unreadable file or no usable record (listing the reasons).
    """
    path = Path(path)
    c = _Collector(path.name, std, path)
    record = 0
    for first, block, kind, problem in _blocks(path):
        if problem:
            record += 1
            c.report.read += 1
            c.issue(record, first, kind, problem, field="line" if kind == "encoding" else None)
            continue
        if not any(line.strip() for line in block):
            continue
        starts = _split(block)
        for k, start in enumerate(starts):
            record += 1
            c.report.read += 1
            sub = block[start : starts[k + 1] if k + 1 < len(starts) else len(block)]
            if k:
                c.issue(
                    record,
                    first + start,
                    "missing_delimiter",
                    f"no '$$$$' line before this mol block (line {first + start}): read as a separate record",
                    "kept",
                )
            _parse(c, sub, first + start, record)
    return c.finish()
