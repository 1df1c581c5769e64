"""Writing samples: SMILES files, SDF of conformers (bonds inferred with RDKit) and PNG grids (rdkit.Chem.Draw)."""

from __future__ import annotations

from pathlib import Path

from ditkit_molecules.geometry import Conformer, arrays_to_mol, infer_bonds
from ditkit_molecules.io import _rdkit


def write_smiles(smiles: list[str], path: Path) -> Path:
    """One SMILES per line (invalid samples are written as empty lines so line i = sample i)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(smiles) + "\n")
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
    from rdkit.Chem import Draw

    mols, names = [], []
    for i, s in enumerate(smiles):
        m = Chem.MolFromSmiles(s) if s else None
        if m is not None:
            mols.append(m)
            names.append(legends[i] if legends else Chem.MolToSmiles(m)[:40])
        if len(mols) >= max_mols:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    if not mols:
        mols, names = [Chem.MolFromSmiles("")], ["no valid molecule"]
    img = Draw.MolsToGridImage(mols, molsPerRow=per_row, subImgSize=(size, size), legends=names)
    img.save(str(path))
    return path


def draw_mols(mols: list, legends: list[str], path: Path, per_row: int = 4, size: int = 250) -> Path:
    """PNG grid of RDKit molecules (unsanitised graphs allowed: their property caches are updated leniently)."""
    Chem = _rdkit()
    from rdkit.Chem import Draw

    shown = []
    for m in mols:
        m = Chem.Mol(m)
        m.UpdatePropertyCache(strict=False)
        shown.append(Chem.RemoveHs(m, sanitize=False))
    path.parent.mkdir(parents=True, exist_ok=True)
    Draw.MolsToGridImage(shown, molsPerRow=per_row, subImgSize=(size, size), legends=legends).save(str(path))
    return path


def write_sdf(mols: list[Conformer], path: Path) -> Path:
    """SD file of 3D samples; bonds are inferred (atoms only when inference fails; ``_Name`` says which)."""
    Chem = _rdkit()
    path.parent.mkdir(parents=True, exist_ok=True)
    with Chem.SDWriter(str(path)) as w:
        for i, m in enumerate(mols):
            b = infer_bonds(m.numbers, m.coords, m.charges)
            mol = b.mol if b.mol is not None else arrays_to_mol(m.numbers, m.coords, m.charges)
            mol.SetProp("_Name", f"sample_{i}" + ("" if b.mol is not None else " (bonds not inferred)"))
            mol.SetProp("atom_stability", f"{float(b.atom_stable.mean()):.3f}")
            w.write(mol)
    return path


def write_3d_outputs(mols: list[Conformer], out_dir: Path, stem: str) -> list[Path]:
    """SDF of the 3D samples and a PNG grid of their inferred bond graphs (legend: valid or atom stability)."""
    sdf = write_sdf(mols, out_dir / f"{stem}.sdf")
    shown, legends = [], []
    for i, m in enumerate(mols[:16]):
        b = infer_bonds(m.numbers, m.coords, m.charges)
        g = b.mol if b.mol is not None else b.graph
        if g is None:
            continue
        shown.append(g)
        legends.append(
            f"#{i} "
            + ("valid" if b.mol is not None else "no bond orders")
            + f", stable atoms {b.atom_stable.mean():.0%}"
        )
    return [sdf, draw_mols(shown, legends, out_dir / f"{stem}.png")]
