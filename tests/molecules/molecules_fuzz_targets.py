"""Entry points the molecule fuzz suite calls in child processes (``run_cases`` imports ``module:function``).

Each takes JSON-able keyword arguments and returns what the loader returned (or a summary of it), so the harness can
check that successful loads hold only finite numbers.
"""

from __future__ import annotations

from typing import Any


def load(path: str, **kw: Any) -> Any:
    """:func:`ditkit_molecules.io.load_molecules` plus the coordinates of the kept mol blocks (as arrays)."""
    import numpy as np
    from rdkit import Chem

    from ditkit_molecules.io import load_molecules

    records, report = load_molecules(path, **kw)
    coords = []
    for r in records:
        if r.molblock is not None:
            mol = Chem.MolFromMolBlock(r.molblock, removeHs=False)
            coords.append(np.asarray(mol.GetConformer().GetPositions()))
    return {"records": records, "report": report, "coords": coords}


def conformer_cache(smiles: list[str], cache_dir: str) -> Any:
    """Conformers through the (possibly corrupt) cache in ``cache_dir``."""
    from ditkit_molecules.geometry import conformers

    return conformers(smiles, seed=0, cache_dir=cache_dir)


def selfies_cache(smiles: list[str], cache_dir: str) -> Any:
    """SELFIES encodings through the (possibly corrupt) cache in ``cache_dir``."""
    import torch

    from ditkit_molecules.data import EnumeratedSmilesDataset
    from ditkit_molecules.tokenizer import SelfiesVocab

    ds = EnumeratedSmilesDataset(smiles, SelfiesVocab(30), n_enum=2, seed=0, cache_dir=cache_dir)
    return {"smiles": ds.smiles, "targets": torch.stack(ds.targets), "props": torch.stack(ds.props)}


def datamodule(path: str, kind: str = "3d") -> Any:
    """A data module's ``setup`` on ``path``: the first training batch."""
    from ditkit_molecules.data import Conformer3DDataModule, SmilesDataModule

    cls = Conformer3DDataModule if kind == "3d" else SmilesDataModule
    dm = cls(path=path, val_fraction=0.0, batch_size=4, cache_dir=None)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))


def read(reader: str, path: str, **kw: Any) -> Any:
    """One reader called directly (``read_smi``, ``read_csv``, ``read_sdf``, ``read_xyz``), whatever the file holds."""
    from ditkit_molecules import io, xyz

    fn = {"read_smi": io.read_smi, "read_csv": io.read_csv, "read_sdf": io.read_sdf, "read_xyz": xyz.read_xyz}[reader]
    return fn(path, **kw)


def call(target: str, **kw: Any) -> Any:
    """Dispatch to one of the entry points above by name, so that one child process serves every kind of case
    (each child pays the torch / RDKit import once)."""
    targets = {"load": load, "read": read, "datamodule": datamodule}
    return {**targets, "conformer_cache": conformer_cache, "selfies_cache": selfies_cache}[target](**kw)
