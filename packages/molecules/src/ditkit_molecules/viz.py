"""Writing samples: SMILES files, SDF of conformers (bonds inferred with RDKit) and PNG grids (rdkit.Chem.Draw).

Generated samples can be unphysical (a hydrogen with formal charge +2, NaN coordinates, ...) and RDKit refuses some
of them. The writers never abort on such a sample: it is left out of the SDF / grid, counted, and the count with
the first reason is logged at ``WARNING`` (:func:`unwritable` lists them up front).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ditkit_core.errors import atomic_write
from ditkit_molecules.geometry import Conformer, arrays_to_mol, infer_bonds, sample_problem
from ditkit_molecules.io import _rdkit

log = logging.getLogger(__name__)


def unwritable(mols: list[Conformer]) -> list[tuple[int, str]]:
    """``[(index, reason)]`` of the samples :func:`sample_problem` refuses (the writers leave them out)."""
    out = []
    for i, m in enumerate(mols):
        problem = sample_problem(m.numbers, m.coords, m.charges)
        if problem is not None:
            out.append((i, problem))
    return out


def _warn_skipped(what: str, path: Path, skipped: list[tuple[int, str]], total: int) -> None:
    if skipped:
        i, reason = skipped[0]
        log.warning("%s %s: %d of %d samples left out (e.g. sample %d: %s)", what, path, len(skipped), total, i, reason)


def write_smiles(smiles: list[str], path: Path) -> Path:
    """One SMILES per line (invalid samples are written as empty lines so line i = sample i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(s.replace("\n", " ").replace("\r", " ") for s in smiles) + "\n")
    return path


def _grid(mols: list, legends: list[str], path: Path, per_row: int, size: int) -> Path:
    """Draw a grid of molecules RDKit can prepare for drawing (others left out; a placeholder when none is left)."""
    Chem = _rdkit()
    from rdkit.Chem import Draw
    from rdkit.Chem.Draw import rdMolDraw2D

    shown, names, skipped = [], [], []
    for i, (m, name) in enumerate(zip(mols, legends)):
        try:
            rdMolDraw2D.PrepareMolForDrawing(m, kekulize=False)
        except Exception as e:  # noqa: BLE001 - RDKit raises several types
            skipped.append((i, f"RDKit cannot draw it: {e}".strip()))
            continue
        shown.append(m)
        names.append(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    _warn_skipped("grid", path, skipped, len(mols))
    try:
        img = Draw.MolsToGridImage(
            shown or [Chem.MolFromSmiles("")],
            molsPerRow=per_row,
            subImgSize=(size, size),
            legends=names or ["no valid molecule"],
        )
    except Exception as e:  # noqa: BLE001 - last resort: an empty grid instead of an aborted run
        log.warning("grid %s: RDKit could not draw the samples (%s); writing an empty grid", path, e)
        img = Draw.MolsToGridImage([Chem.MolFromSmiles("")], subImgSize=(size, size), legends=["drawing failed"])
    img.save(str(path))
    return path


def draw_grid(
    smiles: list[str],
    path: Path,
    per_row: int = 4,
    max_mols: int = 16,
    size: int = 250,
    legends: list[str] | None = None,
) -> Path:
    """PNG grid of up to ``max_mols`` valid molecules drawn by RDKit."""
    Chem = _rdkit()
    mols, names = [], []
    for i, s in enumerate(smiles):
        m = Chem.MolFromSmiles(s) if s else None
        if m is not None:
            mols.append(m)
            names.append(legends[i] if legends else Chem.MolToSmiles(m)[:40])
        if len(mols) >= max_mols:
            break
    return _grid(mols, names, path, per_row, size)


def draw_mols(mols: list, legends: list[str], path: Path, per_row: int = 4, size: int = 250) -> Path:
    """PNG grid of RDKit molecules (unsanitised graphs allowed: their property caches are updated leniently; a
    molecule RDKit cannot prepare is left out and counted)."""
    Chem = _rdkit()
    shown, names, skipped = [], [], []
    for i, (m, name) in enumerate(zip(mols, legends)):
        try:
            m = Chem.Mol(m)
            m.UpdatePropertyCache(strict=False)
            shown.append(Chem.RemoveHs(m, sanitize=False))
            names.append(name)
        except Exception as e:  # noqa: BLE001 - RDKit raises several types
            skipped.append((i, str(e).strip()))
    _warn_skipped("grid", path, skipped, len(mols))
    return _grid(shown, names, path, per_row, size)


def write_sdf(mols: list[Conformer], path: Path) -> Path:
    """SD file of 3D samples; bonds are inferred (atoms only when inference fails; ``_Name`` says which).

    Samples that :func:`unwritable` refuses or that RDKit cannot write are left out (``_Name`` keeps the sample
    index, so the records still say which sample they are) and counted in a ``WARNING``. The file is written
    atomically.
    """
    Chem = _rdkit()
    skipped = dict(unwritable(mols))
    blocks = []
    for i, m in enumerate(mols):
        if i in skipped:
            continue
        try:
            b = infer_bonds(m.numbers, m.coords, m.charges)
            mol = b.mol if b.mol is not None else arrays_to_mol(m.numbers, m.coords, m.charges)
            mol.SetProp("_Name", f"sample_{i}" + ("" if b.mol is not None else " (bonds not inferred)"))
            stable = float(b.atom_stable.mean()) if len(b.atom_stable) else 0.0
            blocks.append(Chem.MolToMolBlock(mol) + f">  <atom_stability>  (1) \n{stable:.3f}\n\n$$$$\n")
        except Exception as e:  # noqa: BLE001 - RDKit raises several types
            skipped[i] = f"RDKit cannot write it: {e}".strip()
    with atomic_write(path, "w") as f:
        f.write("".join(blocks))
    _warn_skipped("write_sdf", path, sorted(skipped.items()), len(mols))
    return path


def write_3d_outputs(mols: list[Conformer], out_dir: Path, stem: str) -> list[Path]:
    """SDF of the 3D samples and a PNG grid of their inferred bond graphs (legend: valid or atom stability)."""
    sdf = write_sdf(mols, out_dir / f"{stem}.sdf")
    bad = dict(unwritable(mols[:16]))
    shown, legends = [], []
    for i, m in enumerate(mols[:16]):
        if i in bad:
            continue
        b = infer_bonds(m.numbers, m.coords, m.charges)
        g = b.mol if b.mol is not None else b.graph
        if g is None:
            continue
        shown.append(g)
        stable = float(np.mean(b.atom_stable)) if len(b.atom_stable) else 0.0
        legends.append(f"#{i} " + ("valid" if b.mol is not None else "no bond orders") + f", stable atoms {stable:.0%}")
    return [sdf, draw_mols(shown, legends, out_dir / f"{stem}.png")]
