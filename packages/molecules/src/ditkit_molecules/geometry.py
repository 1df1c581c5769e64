"""3D conformers (ETKDG + MMFF, cached on disk), bond inference from coordinates and valence-rule stability.

Conventions: a molecule in 3D is ``numbers [a]`` (atomic numbers, hydrogens explicit), ``charges [a]`` (formal
charges) and ``coords [a, 3]`` in Angstrom.

Bonds of generated geometries are inferred with RDKit's ``rdDetermineBonds`` (connectivity from covalent radii,
then xyz2mol bond orders with the total formal charge the model produced). An atom is *stable* when, after bond
orders are assigned, it has no unpaired electron and its bond-order sum is an allowed valence of its element and
formal charge (:data:`VALENCES`, the EDM table extended with common ions); when no bond-order assignment exists at
all, an atom counts as stable only if its number of neighbours is itself an allowed valence (all single bonds).
A molecule is stable when all its atoms are.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_molecules.cache import CacheError, expect, load_cache, save_cache
from ditkit_molecules.io import _rdkit

log = logging.getLogger(__name__)

VALENCES: dict[tuple[str, int], tuple[int, ...]] = {
    ("H", 0): (1,),
    ("C", 0): (4,),
    ("N", 0): (3,),
    ("O", 0): (2,),
    ("F", 0): (1,),
    ("S", 0): (2, 4, 6),
    ("Cl", 0): (1,),
    ("Br", 0): (1,),
    ("I", 0): (1,),
    ("P", 0): (3, 5),
    ("B", 0): (3,),
    ("N", 1): (4,),
    ("N", -1): (2,),
    ("O", 1): (3,),
    ("O", -1): (1,),
    ("C", 1): (3,),
    ("C", -1): (3,),
    ("S", 1): (3,),
    ("S", -1): (1,),
    ("P", 1): (4,),
}
"""Allowed bond-order sums by (element, formal charge)."""

CONFORMER_CACHE_VERSION = 1

BOND_ORDER_MAX_ITERATIONS = 100_000
"""Valence combinations xyz2mol may try per molecule (about a second); the number of combinations grows as 2^n or
3^n along chains of N, O, S or P atoms, so without a bound one hostile geometry hangs a load or an evaluation. A
molecule that needs more counts as having no bond orders."""

MAX_SAMPLE_CHARGE = 8
"""Formal charges beyond +-this make a generated sample unphysical (:func:`sample_problem`)."""


def determine_bond_orders(mol: Any, charge: int = 0, **kw: Any) -> None:
    """``rdDetermineBonds.DetermineBondOrders`` with at most :data:`BOND_ORDER_MAX_ITERATIONS` valence combinations
    (RDKit raises when they run out; older RDKit without the bound runs unbounded)."""
    from rdkit.Chem import rdDetermineBonds

    if "maxIterations" in (rdDetermineBonds.DetermineBondOrders.__doc__ or ""):
        kw.setdefault("maxIterations", BOND_ORDER_MAX_ITERATIONS)
    rdDetermineBonds.DetermineBondOrders(mol, charge=charge, **kw)


def sample_problem(numbers: Any, coords: Any, charges: Any | None = None) -> str | None:
    """Why a generated (or loaded) atom set cannot be handed to RDKit, or None when it can.

    Refused: mismatched or empty arrays, atomic numbers outside 1..118, formal charges beyond
    +-:data:`MAX_SAMPLE_CHARGE` or leaving an element with fewer than zero electrons (H with charge +2: RDKit aborts
    on such atoms when writing), coordinates that are not finite or beyond +-1e4 Angstrom.
    """
    from ditkit_molecules.records import MAX_COORD

    numbers, coords = np.asarray(numbers), np.asarray(coords)
    q = np.zeros(len(numbers), dtype=np.int64) if charges is None else np.asarray(charges)
    if numbers.ndim != 1 or len(numbers) == 0:
        return f"atomic numbers of shape {list(numbers.shape)}, expected [a] with a >= 1"
    if coords.shape != (len(numbers), 3) or q.shape != numbers.shape:
        return f"coords {list(coords.shape)} / charges {list(q.shape)} do not match {len(numbers)} atoms"
    if numbers.dtype.kind not in "iu" or q.dtype.kind not in "iu" or coords.dtype.kind not in "iuf":
        return f"dtypes numbers {numbers.dtype}, charges {q.dtype}, coords {coords.dtype}"
    bad = np.flatnonzero((numbers < 1) | (numbers > 118))
    if bad.size:
        return f"atom {int(bad[0])}: atomic number {int(numbers[bad[0]])} outside 1..118"
    bad = np.flatnonzero((np.abs(q) > MAX_SAMPLE_CHARGE) | (numbers - q < 0))
    if bad.size:
        i = int(bad[0])
        return f"atom {i}: element {int(numbers[i])} with formal charge {int(q[i]):+d}"
    if not np.isfinite(coords).all() or np.abs(coords).max() > MAX_COORD:
        return f"coordinates not finite or beyond +-{MAX_COORD:g} Angstrom"
    return None


@dataclass
class Conformer:
    """One 3D molecule: ``numbers [a]`` int, ``charges [a]`` int, ``coords [a, 3]`` float (Angstrom)."""

    smiles: str
    numbers: np.ndarray
    charges: np.ndarray
    coords: np.ndarray


def embed(smiles: str, seed: int = 0, mmff: bool = True, max_iters: int = 500) -> Any | None:
    """ETKDGv3 conformer (+ MMFF94 relaxation) with explicit hydrogens; None when parsing or embedding fails (RDKit
    errors included)."""
    Chem = _rdkit()
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None:
        return None
    try:
        mol = Chem.AddHs(mol)
        params = AllChem.ETKDGv3()
        params.randomSeed = int(seed)
        if AllChem.EmbedMolecule(mol, params) != 0:
            return None
        if mmff and AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMolecule(mol, maxIters=max_iters)
    except Exception as e:  # noqa: BLE001 - RDKit raises several types; the molecule is reported as not embedded
        log.debug("embed: %s: %s", smiles, e)
        return None
    return mol


def mol_to_arrays(mol: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(numbers [a], charges [a], coords [a, 3])`` of a molecule with a conformer, centred at its mean."""
    numbers = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    charges = np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=np.int64)
    coords = np.asarray(mol.GetConformer().GetPositions(), dtype=np.float32)
    return numbers, charges, coords - coords.mean(0, keepdims=True)


def conformers(
    smiles: list[str], *, seed: int = 0, cache_dir: str | Path | None = None, molblocks: list[str | None] | None = None
) -> list[Conformer]:
    """3D conformers for ``smiles`` (molecules that fail to embed are logged and left out).

    Args:
        smiles: canonical SMILES.
        seed: ETKDG seed.
        cache_dir: where to cache the result as ``conformers_<hash>.npz`` (hash of SMILES, seed, version; written
            atomically, checked when read, rebuilt with a ``WARNING`` naming the file when corrupt).
        molblocks: optional 3D mol blocks (from an SDF) used instead of embedding, aligned with ``smiles``.
    """
    Chem = _rdkit()
    key = hashlib.sha1(json.dumps([CONFORMER_CACHE_VERSION, seed, smiles, molblocks]).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"conformers_{key}.npz" if cache_dir is not None else None
    z = load_cache(path, _CONFORMER_KEYS, lambda a: _check_conformer_cache(a, smiles)) if path is not None else None
    if z is not None:
        out, off = [], 0
        for s, n in zip(z["smiles"].tolist(), z["sizes"].tolist()):
            out.append(
                Conformer(s, z["numbers"][off : off + n], z["charges"][off : off + n], z["coords"][off : off + n])
            )
            off += n
        return out
    out, failed = [], 0
    for i, s in enumerate(smiles):
        block = molblocks[i] if molblocks is not None else None
        try:
            mol = Chem.MolFromMolBlock(block, removeHs=False) if block else embed(s, seed + i)
            arrays = mol_to_arrays(mol) if mol is not None and mol.GetNumConformers() else None
        except Exception as e:  # noqa: BLE001 - RDKit raises several types; the molecule is left out and counted
            log.debug("conformers: %s: %s", s, e)
            arrays = None
        if arrays is None or sample_problem(arrays[0], arrays[2], arrays[1]) is not None:  # (numbers, charges, coords)
            failed += 1
            continue
        out.append(Conformer(s, *arrays))
    if failed:
        log.warning("conformers: %d of %d molecules had no usable conformer and were left out", failed, len(smiles))
    if path is not None and out:
        save_cache(
            path,
            smiles=np.array([c.smiles for c in out]),
            sizes=np.array([len(c.numbers) for c in out]),
            numbers=np.concatenate([c.numbers for c in out]),
            charges=np.concatenate([c.charges for c in out]),
            coords=np.concatenate([c.coords for c in out]),
        )
    return out


_CONFORMER_KEYS = ("smiles", "sizes", "numbers", "charges", "coords")


def _check_conformer_cache(z: dict[str, np.ndarray], smiles: list[str]) -> None:
    """Raise :class:`~ditkit_molecules.cache.CacheError` unless ``z`` is a consistent conformer cache of ``smiles``."""
    from ditkit_molecules.records import MAX_COORD

    names = expect(z, "smiles", "U", (None,))
    sizes = expect(z, "sizes", "iu", (len(names),), lo=1)
    total = int(sizes.sum())
    expect(z, "numbers", "iu", (total,), lo=1, hi=118)
    expect(z, "charges", "iu", (total,), lo=-MAX_SAMPLE_CHARGE, hi=MAX_SAMPLE_CHARGE)
    expect(z, "coords", "f", (total, 3), lo=-MAX_COORD, hi=MAX_COORD)
    unknown = set(names.tolist()) - set(smiles)
    if unknown:
        raise CacheError(f"{len(unknown)} molecule(s) not in the requested list, e.g. {sorted(unknown)[0]!r}")


def arrays_to_mol(numbers: np.ndarray, coords: np.ndarray, charges: np.ndarray | None = None) -> Any:
    """An RDKit molecule with atoms and one conformer, no bonds yet."""
    Chem = _rdkit()
    from rdkit.Geometry import Point3D

    rw = Chem.RWMol()
    for i, z in enumerate(numbers.tolist()):
        a = Chem.Atom(int(z))
        if charges is not None:
            a.SetFormalCharge(int(charges[i]))
        a.SetNoImplicit(True)
        rw.AddAtom(a)
    conf = Chem.Conformer(len(numbers))
    for i, p in enumerate(np.asarray(coords, dtype=np.float64).tolist()):
        conf.SetAtomPosition(i, Point3D(*p))
    rw.AddConformer(conf, assignId=True)
    return rw.GetMol()


@dataclass
class Bonded:
    """Result of bond inference.

    Attributes:
        mol: sanitised molecule with bond orders (None when no valid assignment exists).
        atom_stable: ``[a]`` bool, valence-rule stability of every atom.
        orders_found: whether xyz2mol found bond orders.
        graph: the connectivity-only molecule (single bonds, unsanitised; None if connectivity failed), for drawing.
    """

    mol: Any | None
    atom_stable: np.ndarray
    orders_found: bool
    graph: Any | None = None

    @property
    def stable(self) -> bool:
        return bool(self.atom_stable.all())


def infer_bonds(numbers: np.ndarray, coords: np.ndarray, charges: np.ndarray | None = None) -> Bonded:
    """Infer bonds with ``rdDetermineBonds`` and judge every atom by valence rules (see module docstring).

    Args:
        numbers: atomic numbers ``[a]`` (hydrogens explicit).
        coords: ``[a, 3]`` Angstrom.
        charges: formal charges ``[a]`` (their sum is the molecule's charge; None = neutral).

    Returns:
        :class:`Bonded` with ``mol`` = a sanitised RDKit molecule when bond orders were found and it sanitises; an
        atom set that :func:`sample_problem` refuses (or that RDKit refuses) has no molecule and no stable atom.
    """
    Chem = _rdkit()
    from rdkit.Chem import rdDetermineBonds

    if sample_problem(numbers, coords, charges) is not None:
        return Bonded(None, np.zeros(len(np.atleast_1d(numbers)), dtype=bool), False)
    total = int(np.sum(charges)) if charges is not None else 0
    try:
        mol = arrays_to_mol(numbers, coords)
        rdDetermineBonds.DetermineConnectivity(mol, useHueckel=False)
    except Exception:  # noqa: BLE001 - RDKit raises several types
        return Bonded(None, np.zeros(len(numbers), dtype=bool), False)
    degrees = np.array([a.GetDegree() for a in mol.GetAtoms()])
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    bo = Chem.Mol(mol)
    try:
        determine_bond_orders(bo, charge=total, allowChargedFragments=True, embedChiral=False)
    except Exception:  # noqa: BLE001 - no assignment: all-single-bond fallback
        ok = np.array([d in VALENCES.get((s, 0), ()) for s, d in zip(symbols, degrees)])
        return Bonded(None, ok, False, mol)
    ok = []
    for a in bo.GetAtoms():
        val = sum(b.GetBondTypeAsDouble() for b in a.GetBonds())
        allowed = VALENCES.get((a.GetSymbol(), a.GetFormalCharge()), ())
        ok.append(a.GetNumRadicalElectrons() == 0 and any(abs(val - v) < 1e-6 for v in allowed))
    try:
        Chem.SanitizeMol(bo)
        out = bo
    except Exception:  # noqa: BLE001
        out = None
    return Bonded(out, np.array(ok, dtype=bool), True, mol)


def mmff_rmsd(mol: Any, max_iters: int = 500) -> float | None:
    """RMSD (Angstrom, all atoms, after optimal alignment) between ``mol``'s geometry and its MMFF94 minimum.

    Returns None when MMFF has no parameters for the molecule.
    """
    from rdkit.Chem import AllChem, rdMolAlign

    Chem = _rdkit()
    m = Chem.Mol(mol)
    try:
        if not AllChem.MMFFHasAllMoleculeParams(m):
            return None
        ref = Chem.Mol(m)
        AllChem.MMFFOptimizeMolecule(m, maxIters=max_iters)
        return float(rdMolAlign.AlignMol(m, ref))
    except Exception:  # noqa: BLE001
        return None
