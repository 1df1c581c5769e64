"""Molecule metrics: validity, uniqueness, novelty, QED, SA, internal diversity, FCD, stability, MMFF RMSD.

Definitions (MOSES / EDM conventions):

* validity: fraction of generated strings (or 3D samples) that give a sanitisable RDKit molecule (non-empty);
  for 3D samples the molecule comes from :func:`~ditkit_molecules.geometry.infer_bonds`, its largest fragment is
  scored (``connected`` reports the fraction that is one fragment);
* uniqueness: unique canonical SMILES / valid; novelty: unique valid not in the training set / unique valid;
* QED, SA (Ertl & Schuffenhauer's scorer from RDKit's Contrib, 1 = easy .. 10 = hard), logP, MW: means (and
  standard deviations) over unique valid molecules;
* internal diversity (IntDiv1): ``1 - mean pairwise Tanimoto`` of Morgan fingerprints (radius 2, 2048 bits);
* FCD: Frechet ChemNet Distance to a reference set (``fcd_torch``, optional extra ``[fcd]``);
* atom / molecule stability and RMSD after MMFF relaxation: see :mod:`ditkit_molecules.geometry`.

A sample RDKit refuses (an unphysical atom such as H with formal charge +2, NaN coordinates, a molecule a property
scorer cannot handle) never aborts a metric: it counts as invalid (or is left out of a property mean) and the number
of such samples is reported as ``rejected``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ditkit_molecules.geometry import Conformer, infer_bonds, mmff_rmsd, sample_problem
from ditkit_molecules.io import _rdkit

log = logging.getLogger(__name__)


def _try(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None when RDKit (or a scorer) raises."""
    try:
        return fn(*args)
    except Exception:  # noqa: BLE001 - RDKit raises several types
        return None


@lru_cache(maxsize=1)
def _sascorer() -> Any:
    from rdkit import RDConfig

    path = Path(RDConfig.RDContribDir) / "SA_Score" / "sascorer.py"
    if not path.exists():
        raise ImportError(f"SA scorer not found at {path}; it ships with RDKit's Contrib directory")
    spec = importlib.util.spec_from_file_location("ditkit_sascorer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def sa_score(mol: Any) -> float:
    """Synthetic accessibility score (1 easy .. 10 hard) of an RDKit molecule."""
    return float(_sascorer().calculateScore(mol))


def canonical(smiles: str) -> str | None:
    """Canonical SMILES of ``smiles`` (None when invalid or empty)."""
    Chem = _rdkit()
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return Chem.MolToSmiles(mol)


def internal_diversity(smiles: list[str], max_mols: int = 1000) -> float:
    """IntDiv1 = 1 - mean pairwise Tanimoto similarity (Morgan r=2, 2048 bits) over up to ``max_mols``."""
    Chem = _rdkit()
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    mols = [Chem.MolFromSmiles(s) for s in smiles[:max_mols]]
    fps = [fp for fp in (_try(gen.GetFingerprint, m) for m in mols if m is not None) if fp is not None]
    if len(fps) < 2:
        return float("nan")
    sims = [s for i in range(1, len(fps)) for s in DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])]
    return 1.0 - float(np.mean(sims))


def fcd_available() -> bool:
    return importlib.util.find_spec("fcd_torch") is not None


def fcd(generated: list[str], reference: list[str]) -> float:
    """Frechet ChemNet Distance between two SMILES lists (needs the ``[fcd]`` extra: ``fcd_torch``)."""
    try:
        from fcd_torch import FCD
    except ImportError as e:
        raise ImportError("FCD needs fcd_torch: pip install 'ditkit-molecules[fcd]'") from e
    if len(generated) < 2 or len(reference) < 2:
        return float("nan")
    return float(FCD(device="cpu", n_jobs=1, batch_size=256)(generated, reference))


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return float(np.mean(values)), float(np.std(values))


def smiles_metrics(
    generated: list[str], train: list[str] | set[str], reference: list[str] | None = None, with_fcd: bool = True
) -> dict[str, float]:
    """MOSES-style metrics of generated SMILES.

    Args:
        generated: generated SMILES (invalid / empty strings count against validity).
        train: training SMILES (canonical) for novelty.
        reference: held-out SMILES for FCD (skipped when None or fcd_torch is missing).
        with_fcd: compute FCD when possible.

    Returns:
        ``n, validity, uniqueness, novelty, qed, qed_std, sa, sa_std, logp, mw, int_div, fcd`` (nan when undefined)
        and ``rejected``: valid molecules a property scorer could not handle (left out of the means).
    """
    from rdkit.Chem import QED, Crippen, Descriptors

    Chem = _rdkit()
    n = max(len(generated), 1)
    valid = [c for c in (_try(canonical, s) for s in generated) if c is not None]
    uniq = list(dict.fromkeys(valid))
    train_set = set(train)
    novel = [s for s in uniq if s not in train_set]
    mols = [Chem.MolFromSmiles(s) for s in uniq]
    scores = [(_try(QED.qed, m), _try(sa_score, m), _try(Crippen.MolLogP, m), _try(Descriptors.MolWt, m)) for m in mols]
    rejected = sum(1 for s in scores if None in s)
    scores = [s for s in scores if None not in s]
    qed, qed_std = _mean_std([s[0] for s in scores])
    sa, sa_std = _mean_std([s[1] for s in scores])
    out = {
        "n": float(len(generated)),
        "validity": len(valid) / n,
        "uniqueness": len(uniq) / len(valid) if valid else float("nan"),
        "novelty": len(novel) / len(uniq) if uniq else float("nan"),
        "qed": qed,
        "qed_std": qed_std,
        "sa": sa,
        "sa_std": sa_std,
        "logp": _mean_std([s[2] for s in scores])[0],
        "mw": _mean_std([s[3] for s in scores])[0],
        "int_div": internal_diversity(uniq),
        "fcd": float("nan"),
        "rejected": float(rejected),
    }
    if rejected:
        log.warning(
            "smiles_metrics: %d of %d unique valid molecules could not be scored (left out)", rejected, len(uniq)
        )
    if with_fcd and reference and fcd_available() and len(valid) >= 2:
        out["fcd"] = fcd(valid, list(reference))
    return out


def _rejected(mols: list[Conformer]) -> int:
    """Samples RDKit cannot take (:func:`~ditkit_molecules.geometry.sample_problem`); logged at ``WARNING``."""
    bad = [(i, p) for i, m in enumerate(mols) if (p := sample_problem(m.numbers, m.coords, m.charges)) is not None]
    if bad:
        log.warning(
            "%d of %d samples are unphysical and count as unstable (e.g. sample %d: %s)", len(bad), len(mols), *bad[0]
        )
    return len(bad)


def stability_metrics(mols: list[Conformer]) -> dict[str, float]:
    """Atom stability (stable atoms / atoms), molecule stability (all-stable molecules / molecules) and ``rejected``
    (unphysical samples, counted as unstable)."""
    atoms = stable_atoms = stable_mols = 0
    for m in mols:
        b = infer_bonds(m.numbers, m.coords, m.charges)
        atoms += len(m.numbers)
        stable_atoms += int(b.atom_stable.sum())
        stable_mols += int(b.stable) if len(b.atom_stable) else 0
    return {
        "atom_stability": stable_atoms / max(atoms, 1),
        "mol_stability": stable_mols / max(len(mols), 1),
        "rejected": float(_rejected(mols)),
    }


def geometry_metrics(
    mols: list[Conformer],
    train: list[str] | set[str],
    reference: list[str] | None = None,
    with_fcd: bool = True,
    rmsd_max: int = 200,
) -> dict[str, float]:
    """3D metrics: stability, validity of inferred bonds, connectivity, RMSD to the MMFF minimum, plus
    :func:`smiles_metrics` of the largest fragments of the valid molecules (validity over all samples).

    Fills in ``Conformer.smiles`` of the valid samples. Unphysical samples count as invalid and unstable; their
    number is ``rejected`` (together with samples whose molecule RDKit could not process).
    """
    Chem = _rdkit()
    from rdkit.Chem.MolStandardize import rdMolStandardize

    atoms = stable_atoms = stable_mols = connected = 0
    smiles, rmsds = [], []
    chooser = rdMolStandardize.LargestFragmentChooser()
    rejected = _rejected(mols)
    for m in mols:
        b = infer_bonds(m.numbers, m.coords, m.charges)
        atoms += len(m.numbers)
        stable_atoms += int(b.atom_stable.sum())
        stable_mols += int(b.stable) if len(b.atom_stable) else 0
        if b.mol is None:
            smiles.append("")
            continue
        try:
            frags = Chem.GetMolFrags(b.mol)
            heavy = Chem.RemoveHs(chooser.choose(b.mol), sanitize=False)
            smi = Chem.MolToSmiles(heavy)
        except Exception:  # noqa: BLE001 - RDKit raises several types: the sample counts as invalid
            rejected += 1
            smiles.append("")
            continue
        connected += int(len(frags) == 1)
        if len(rmsds) < rmsd_max and len(frags) == 1:
            r = mmff_rmsd(b.mol)
            if r is not None and math.isfinite(r):
                rmsds.append(r)
        m.smiles = smi
        smiles.append(m.smiles)
    out = smiles_metrics(smiles, train, reference, with_fcd)
    out.update(
        {
            "atom_stability": stable_atoms / max(atoms, 1),
            "mol_stability": stable_mols / max(len(mols), 1),
            "connected": connected / max(len(mols), 1),
            "rmsd_mmff": float(np.mean(rmsds)) if rmsds else float("nan"),
            "rejected": float(rejected + out["rejected"]),
        }
    )
    return out


def format_table(rows: dict[str, dict[str, float]], keys: list[str] | None = None) -> str:
    """A Markdown table: one row per entry of ``rows`` (e.g. ``{"training data": ..., "model": ...}``)."""
    keys = keys or list(next(iter(rows.values())).keys())
    lines = ["| | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r.get(k, float('nan')):.3f}" for k in keys) + " |")
    return "\n".join(lines)
