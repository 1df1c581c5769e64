"""Molecule loaders for ``.smi``, ``.csv``, ``.sdf`` and QM9 ``.xyz`` with per-record reports; no bad record stops a
load.

Every input record goes through :func:`standardise`:

1. parse (SMILES or a mol block); unparsable records are skipped as ``invalid_smiles`` / ``broken_record`` with
   RDKit's diagnosis (e.g. ``Explicit valence for atom # 1 N, 4, is greater than permitted``) or, for a mol block,
   the line and field at fault;
2. salts / mixtures (several fragments): the largest organic fragment is kept (RDKit's
   ``LargestFragmentChooser``), reported as ``multi_fragment`` with action ``standardised``;
3. charges are neutralised where a neutral form exists (RDKit's ``Uncharger``; zwitterions and nitro groups stay);
4. stereochemistry and isotopes are removed (the models here are 2D-graph / 3D-geometry models without chirality
   tokens);
5. radicals (unpaired electrons), elements outside ``elements`` and molecules outside the heavy-atom range are
   skipped as ``radical`` / ``unsupported_element`` / ``size``.

Records keep their 1-based line number (``.smi`` / ``.csv``) or record number and line (``.sdf``, ``.xyz``; for a
folder or archive of ``.xyz`` files, also the file inside it), so every skipped or changed input can be found.
:class:`LoadReport` counts them by kind and is logged at ``WARNING`` when anything was skipped.

Safety: text is read line by line in binary; a line that is not UTF-8 is skipped as ``encoding`` and a line longer
than :data:`MAX_LINE_BYTES` (or a SMILES longer than :data:`MAX_SMILES_CHARS`) as ``too_long``, both with their line.
Records with more than :data:`MAX_RECORD_ATOMS` atoms are skipped as ``size`` before RDKit canonicalises them. A file
without any usable record raises :class:`~ditkit_core.errors.DataError` listing the reasons.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ditkit_core.errors import DataError, naming_file
from ditkit_molecules.records import (
    DRUG_ELEMENTS,
    MAX_COORD,
    MAX_LINE_BYTES,
    MAX_RECORD_ATOMS,
    MAX_SMILES_CHARS,
    Issue,
    LoadReport,
    MolRecord,
    _check_column,
    _Collector,
    _rdkit,  # noqa: F401 - re-exported for the metrics, geometry and writers
    standardise,
    text_lines,
)

__all__ = [
    "DRUG_ELEMENTS",
    "MAX_COORD",
    "MAX_LINE_BYTES",
    "MAX_RECORD_ATOMS",
    "MAX_SMILES_CHARS",
    "Issue",
    "LoadReport",
    "MolRecord",
    "default_smiles_path",
    "load_molecules",
    "read_csv",
    "read_sdf",
    "read_smi",
    "read_smiles_list",
    "split_records",
    "standardise",
    "text_lines",
]


def read_smiles_list(smiles: list[str], *, source: str = "<list>", **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Standardise a list of SMILES strings (record = position + 1). ``std``: :func:`standardise` options.

    Unlike the file readers, an empty result is returned (with its report), not raised.
    """
    c = _Collector(source, std)
    for i, s in enumerate(smiles, 1):
        c.add_smiles(s, "", i, i)
    return c.finish(require=False)


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

    Raises:
        DataError: a bad argument (naming it), an unreadable file, or no usable record (listing the reasons).
    """
    path = Path(path)
    column = _check_column(column, "column", allow_str=False, path=path)
    name_column = _check_column(name_column, "name_column", allow_str=False, path=path)
    if delimiter is not None and (not isinstance(delimiter, str) or not delimiter):
        raise DataError(
            "must be None (whitespace) or a non-empty string", path=path, field="delimiter", value=delimiter
        )
    c = _Collector(path.name, std, path)
    record = 0
    for lineno, line, kind, problem in text_lines(path):
        if line is not None and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if header:
            header = False
            continue
        record += 1
        if line is None:
            c.skip_line(record, lineno, kind, problem)
            continue
        fields = line.split(delimiter)
        if column >= len(fields):
            c.report.read += 1
            c.issue(record, lineno, "invalid_smiles", f"line has {len(fields)} field(s), no column {column}", "skipped")
            continue
        name = fields[name_column].strip() if name_column is not None and name_column < len(fields) else ""
        c.add_smiles(fields[column], name, record, lineno)
    return c.finish()


def read_csv(
    path: str | os.PathLike,
    *,
    column: str | int = "smiles",
    name_column: str | int | None = None,
    header: bool | None = None,
    **std: Any,
) -> tuple[list[MolRecord], LoadReport]:
    """Read a CSV file (MOSES-style ``SMILES,SPLIT`` files included), with or without a header row.

    Args:
        path: ``.csv`` file.
        column: header of the SMILES column (matched case-insensitively) or its 0-based index.
        name_column: optional identifier column (header or index).
        header: whether the first row is a header; None: it is when ``column`` is a name, not when it is an index.
        **std: :func:`standardise` options.

    A row the ``csv`` module cannot split (e.g. a field over its 131,072-character limit) is skipped and counted with
    its line, and so are lines that are not UTF-8; the rest of the file loads.

    Raises:
        DataError: ``column`` / ``name_column`` not in the header (the message lists the header), an unreadable
            header row, an unreadable file or no usable record (listing the reasons).
    """
    path = Path(path)
    column = _check_column(column, "column", allow_str=True, path=path)
    name_column = _check_column(name_column, "name_column", allow_str=True, path=path)
    if header is None:
        header = isinstance(column, str)
    if not header and (isinstance(column, str) or isinstance(name_column, str)):
        raise DataError(
            "a column name needs a header row; pass a 0-based index", path=path, field="column", value=column
        )
    c = _Collector(path.name, std, path)
    rows_lines: list[int] = []  # physical lines the csv reader consumed for the current row
    bad: list[tuple[int, str, str]] = []  # lines text_lines could not decode, not yet reported

    def feed() -> Iterator[str]:
        for lineno, text, kind, problem in text_lines(path):
            if text is None:
                bad.append((lineno, kind, problem))
                continue
            rows_lines.append(lineno)
            yield text + "\n"  # a quoted field spanning lines keeps its line break

    reader = csv.reader(feed())
    record = 0

    def flush_bad() -> None:
        nonlocal record
        for lineno, kind, problem in bad:
            record += 1
            c.skip_line(record, lineno, kind, problem)
        bad.clear()

    ci, ni = column, name_column
    if header:
        try:
            head = next(reader, [])
        except csv.Error as e:
            raise DataError(f"unreadable header row: {e}", path=path, line=rows_lines[0] if rows_lines else 1) from e
        if bad and (not rows_lines or bad[0][0] < rows_lines[0]):
            raise DataError(f"unreadable header row: {bad[0][2]}", path=path, line=bad[0][0])
        lower = [h.strip().lower() for h in head]
        for name in (column, name_column):
            if isinstance(name, str) and name.lower() not in lower:
                raise DataError(
                    f"not in the header {head[:20]}; pass column=<one of them> or a 0-based index",
                    path=path,
                    line=rows_lines[0] if rows_lines else 1,
                    field="column" if name is column else "name_column",
                    value=name,
                )
        ci = lower.index(column.lower()) if isinstance(column, str) else column
        ni = lower.index(name_column.lower()) if isinstance(name_column, str) else name_column
    while True:
        rows_lines.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # e.g. "field larger than field limit": skip the row, keep reading
            flush_bad()
            record += 1
            c.report.read += 1
            kind = "too_long" if "field limit" in str(e) else "broken_record"
            c.issue(record, rows_lines[0] if rows_lines else 0, kind, f"CSV row: {e}", field="row")
            continue
        flush_bad()
        if not row or not any(f.strip() for f in row):
            continue
        record += 1
        lineno = rows_lines[0] if rows_lines else reader.line_num
        if ci >= len(row):
            c.report.read += 1
            c.issue(record, lineno, "invalid_smiles", f"row has {len(row)} field(s), no column {column!r}", "skipped")
            continue
        c.add_smiles(row[ci], row[ni] if ni is not None and ni < len(row) else "", record, lineno)
    flush_bad()
    return c.finish()


def read_sdf(path: str | os.PathLike, **std: Any) -> tuple[list[MolRecord], LoadReport]:
    """Read an SD file record by record; see :func:`ditkit_molecules.sdf.read_sdf`."""
    from ditkit_molecules.sdf import read_sdf as _read_sdf

    return _read_sdf(path, **std)


def load_molecules(
    path: str | os.PathLike, *, column: str | int | None = None, **std: Any
) -> tuple[list[MolRecord], LoadReport]:
    """Dispatch on the suffix: ``.smi``/``.smiles``/``.txt``, ``.csv``, ``.sdf``/``.sd``, ``.xyz`` (QM9 extended
    xyz), a folder of ``.xyz`` files or a tar archive of them (:func:`ditkit_molecules.xyz.read_xyz`).

    Args:
        path: the file or folder.
        column: SMILES column: 0-based index for ``.smi`` (default 0); header name (default ``"smiles"``) or 0-based
            index of a ``.csv`` without a header row; a string of digits (as a command line gives it) is an index.
            Not used by the other formats (an error if given).
        **std: :func:`standardise` options.

    Raises:
        DataError: missing path, unknown suffix, a bad ``column``, an unreadable file or no usable record (the
            message lists the skip reasons with a count and an example each).
    """
    from ditkit_molecules.xyz import XYZ_ARCHIVES, read_xyz

    path = Path(path)
    with naming_file(path, "cannot access"):  # e.g. a NUL byte in the name
        exists, is_dir = path.exists(), path.is_dir()
    if not exists:
        raise DataError("no such file or folder", path=path)
    if not is_dir and not path.is_file():
        raise DataError("not a regular file or folder", path=path)
    suffix = path.suffix.lower()
    is_xyz = is_dir or suffix == ".xyz" or any(path.name.lower().endswith(s) for s in XYZ_ARCHIVES)
    if column is not None and (is_xyz or suffix in (".sdf", ".sd")):
        raise DataError("only .smi and .csv files have a SMILES column", path=path, field="column", value=column)
    if is_xyz:
        return read_xyz(path, **std)
    if isinstance(column, str) and column.isascii() and column.isdigit():
        column = int(column)  # an index given on a command line arrives as text
    if suffix in (".smi", ".smiles", ".txt"):
        if isinstance(column, str):
            raise DataError(".smi columns are 0-based indices", path=path, field="column", value=column)
        return read_smi(path, column=0 if column is None else column, **std)
    if suffix == ".csv":
        return read_csv(path, column="smiles" if column is None else column, **std)
    if suffix in (".sdf", ".sd"):
        return read_sdf(path, **std)
    raise DataError(
        f"unknown suffix {suffix!r}; use .smi, .csv, .sdf, .xyz, a folder of .xyz files or a tar archive of them",
        path=path,
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
