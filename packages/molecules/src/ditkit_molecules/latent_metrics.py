"""Distribution metrics of generated SMILES against a reference set (MOSES-style) and chemistry sanity rates.

Definitions (MOSES, Polykovskiy et al. 2020, unless stated), all over the *valid* generated molecules (duplicates
kept: they are part of the distribution):

* ``snn``: mean over generated molecules of the largest Tanimoto similarity to a reference molecule (Morgan
  fingerprints, radius 2, 1024 bits);
* ``frag``: cosine similarity of the BRICS-fragment count vectors (RDKit's ``FragmentOnBRICSBonds``, fragments as SMILES
  with their dummy atoms);
* ``scaf``: cosine similarity of the Bemis-Murcko scaffold count vectors (scaffolds with at least ``min_rings``
  rings, MOSES' default 2; molecules with fewer rings do not count);
* ``w1_<property>``: Wasserstein-1 distance between the generated and the reference distribution of MW, logP
  (Crippen), QED, SA (Ertl's scorer) and ``rings`` (number of SSSR rings);
* sanity rates (fractions of molecules): ``macrocycle`` (a ring of more than 8 atoms), ``acyclic_polyene`` (a
  conjugated C=C-C=C whose three bonds are all outside rings: aromatic rings "opened" into chains),
  ``enol`` (O-H on a C=C carbon, ``[OX2H1][#6X3]=[#6X3]``; phenols are aromatic and do not match) and
  ``no_aromatic`` (no aromatic atom).

Reconstruction (:func:`tanimoto`): Tanimoto similarity of Morgan fingerprints (radius 2, 2048 bits) between an input
molecule and what the autoencoder gave back (0 for an invalid output).
"""

from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np

from ditkit_molecules.io import _rdkit

PROPERTIES = ("mw", "logp", "qed", "sa", "rings")
SANITY = ("macrocycle", "acyclic_polyene", "enol", "no_aromatic")
MACROCYCLE = 8  # a ring with more atoms than this is a macrocycle


def mols_of(smiles: list[str]) -> list[Any]:
    """RDKit molecules of the valid, non-empty SMILES (invalid ones are left out)."""
    Chem = _rdkit()
    out = []
    for s in smiles:
        m = Chem.MolFromSmiles(s) if s else None
        if m is not None and m.GetNumAtoms() > 0:
            out.append(m)
    return out


def morgan(mols: list[Any], bits: int = 1024, radius: int = 2) -> list[Any]:
    """Morgan bit-vector fingerprints."""
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    return [gen.GetFingerprint(m) for m in mols]


def snn(gen: list[Any], ref: list[Any]) -> float:
    """Mean nearest-neighbour Tanimoto similarity of generated molecules to the reference (nan without both)."""
    from rdkit import DataStructs

    if not gen or not ref:
        return float("nan")
    rf = morgan(ref)
    return float(np.mean([max(DataStructs.BulkTanimotoSimilarity(fp, rf)) for fp in morgan(gen)]))


def fragments(mols: list[Any]) -> Counter:
    """BRICS fragment counts (MOSES ``compute_fragments``)."""
    Chem = _rdkit()
    counts: Counter = Counter()
    for m in mols:
        counts.update(Chem.MolToSmiles(Chem.FragmentOnBRICSBonds(m)).split("."))
    return counts


def scaffolds(mols: list[Any], min_rings: int = 2) -> Counter:
    """Bemis-Murcko scaffold counts over molecules whose scaffold has at least ``min_rings`` rings."""
    Chem = _rdkit()
    from rdkit.Chem.Scaffolds import MurckoScaffold

    counts: Counter = Counter()
    for m in mols:
        try:
            scaf = MurckoScaffold.GetScaffoldForMol(m)
        except Exception:  # noqa: BLE001 - RDKit raises several types on odd molecules
            continue
        if scaf.GetRingInfo().NumRings() >= min_rings:
            counts[Chem.MolToSmiles(scaf)] += 1
    return counts


def cosine(a: Counter, b: Counter) -> float:
    """Cosine similarity of two count vectors (nan when either is empty)."""
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    if na == 0 or nb == 0:
        return float("nan")
    return sum(v * b.get(k, 0) for k, v in a.items()) / (na * nb)


def properties(mols: list[Any]) -> dict[str, np.ndarray]:
    """Per-molecule MW, logP, QED, SA and ring count (molecules a scorer refuses are left out of that property)."""
    from rdkit.Chem import QED, Crippen, Descriptors

    from ditkit_molecules.metrics import sa_score

    fns = {
        "mw": Descriptors.MolWt,
        "logp": Crippen.MolLogP,
        "qed": QED.qed,
        "sa": sa_score,
        "rings": lambda m: m.GetRingInfo().NumRings(),
    }
    out = {}
    for name, fn in fns.items():
        vals = []
        for m in mols:
            try:
                vals.append(float(fn(m)))
            except Exception:  # noqa: BLE001 - a scorer may refuse an odd molecule
                continue
        out[name] = np.asarray(vals, dtype=np.float64)
    return out


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Wasserstein-1 distance between two empirical 1D distributions (nan when either is empty)."""
    from scipy.stats import wasserstein_distance

    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(wasserstein_distance(a, b))


@lru_cache(maxsize=1)
def _patterns() -> dict[str, Any]:
    Chem = _rdkit()
    return {
        "acyclic_polyene": Chem.MolFromSmarts("[#6]=!@[#6]-!@[#6]=!@[#6]"),
        "enol": Chem.MolFromSmarts("[OX2H1][#6X3]=[#6X3]"),
    }


def sanity(mol: Any) -> dict[str, bool]:
    """The sanity flags of one molecule (see the module docstring)."""
    pats = _patterns()
    rings = mol.GetRingInfo().AtomRings()
    return {
        "macrocycle": any(len(r) > MACROCYCLE for r in rings),
        "acyclic_polyene": mol.HasSubstructMatch(pats["acyclic_polyene"]),
        "enol": mol.HasSubstructMatch(pats["enol"]),
        "no_aromatic": not any(a.GetIsAromatic() for a in mol.GetAtoms()),
    }


def sanity_rates(mols: list[Any]) -> dict[str, float]:
    """Fractions of molecules with each sanity flag (nan without molecules)."""
    if not mols:
        return {k: float("nan") for k in SANITY}
    flags = [sanity(m) for m in mols]
    return {k: float(np.mean([f[k] for f in flags])) for k in SANITY}


class Reference:
    """A reference set with its fingerprints, fragment / scaffold counts and properties computed once.

    Args:
        smiles: reference SMILES (invalid ones are left out).
    """

    def __init__(self, smiles: list[str]):
        self.mols = mols_of(smiles)
        self.frags = fragments(self.mols)
        self.scafs = scaffolds(self.mols)
        self.props = properties(self.mols)

    def compare(self, smiles: list[str]) -> dict[str, float]:
        """``snn``, ``frag``, ``scaf``, ``w1_<property>`` and the sanity rates of ``smiles`` against this set."""
        mols = mols_of(smiles)
        out = {"snn": snn(mols, self.mols), "frag": cosine(fragments(mols), self.frags)}
        out["scaf"] = cosine(scaffolds(mols), self.scafs)
        props = properties(mols)
        out.update({f"w1_{k}": wasserstein(props[k], self.props[k]) for k in PROPERTIES})
        out.update(sanity_rates(mols))
        return out


def tanimoto(a: str, b: str) -> float:
    """Tanimoto similarity (Morgan radius 2, 2048 bits) of two SMILES; 0 when either is invalid."""
    from rdkit import DataStructs

    ms = mols_of([a, b])
    if len(ms) != 2 or not a or not b:
        return 0.0
    fa, fb = morgan(ms, bits=2048)
    return float(DataStructs.TanimotoSimilarity(fa, fb))
