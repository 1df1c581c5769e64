"""Datasets and LightningDataModules: 3D conformers (atom sets) and SELFIES enumerations with properties.

Default data (no path given): RDKit's own ``Data/NCI/first_5K.smi`` (4,991 NCI molecules), standardised by
:func:`ditkit_molecules.io.standardise` and filtered to small molecules so a CPU trains in minutes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ditkit_core.errors import DataError
from ditkit_core.errors import LoadReport as SkipReport
from ditkit_core.lightning.data import seeded_loader
from ditkit_molecules.cache import CacheError, expect, load_cache, save_cache
from ditkit_molecules.geometry import Conformer, conformers
from ditkit_molecules.io import DRUG_ELEMENTS, LoadReport, MolRecord, default_smiles_path, load_molecules, split_records
from ditkit_molecules.tokenizer import SelfiesVocab

log = logging.getLogger(__name__)


def load_records(
    path: str | Path | None,
    *,
    column: str | int | None = None,
    elements: Sequence[str] = DRUG_ELEMENTS,
    min_heavy_atoms: int = 2,
    max_heavy_atoms: int = 1000,
    limit: int | None = None,
) -> tuple[list[MolRecord], LoadReport]:
    """Load and standardise molecules from ``path`` (default: RDKit's ``first_5K.smi``); keep at most ``limit``.

    The report is logged by the loader (``WARNING`` when records were skipped, so a training run shows it at the
    default log level).

    Raises:
        DataError: an unreadable file or no usable record (the message lists the reasons with counts).
    """
    records, report = load_molecules(
        path or default_smiles_path(),
        column=column,
        elements=tuple(elements),
        min_heavy_atoms=min_heavy_atoms,
        max_heavy_atoms=max_heavy_atoms,
    )
    return (records[:limit] if limit else records), report


def check_args(owner: str, **args: Any) -> None:
    """Validate data-module arguments at construction; the error names the argument and its value.

    Known names: ``batch_size``, ``max_heavy_atoms``, ``max_atoms``, ``n_enum``, ``max_len`` (integers >= 1; 2 for
    ``max_heavy_atoms``), ``limit`` (None or >= 1), ``seed`` (integer), ``val_fraction`` (in [0, 1)), ``column``
    (None, a 0-based index or a header name), ``elements`` (non-empty element symbols), ``path`` / ``cache_dir``
    (None or a path).
    """
    minimum = {"batch_size": 1, "max_atoms": 1, "n_enum": 1, "max_len": 1, "max_heavy_atoms": 2, "limit": 1}
    for name, v in args.items():
        bad = None
        if name in minimum:
            integer = isinstance(v, int) and not isinstance(v, bool)
            ok = (v is None and name == "limit") or (integer and v >= minimum[name])
            if not ok:
                bad = f"must be an integer >= {minimum[name]}" + (" or None" if name == "limit" else "")
        elif name == "seed":
            bad = None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer"
        elif name == "val_fraction":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= float(v) < 1.0
            bad = None if ok else "must be a number in [0, 1)"
        elif name == "column":
            ok = v is None or (isinstance(v, str) and v) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            bad = None if ok else "must be None, a 0-based column index or a header name"
        elif name == "elements":
            ok = isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(e, str) and e for e in v)
            bad = None if ok else "must be a non-empty list of element symbols"
        elif name in ("path", "cache_dir"):
            bad = None if v is None or isinstance(v, (str, os.PathLike)) else "must be None or a path"
        if bad:
            raise ValueError(f"{owner}: {name}={v!r}: {bad}")


# --------------------------------------------------------------------------------------------------- 3D
class ConformerDataset(Dataset):
    """Conformers as ``{"numbers" [a], "coords" [a, 3], "charges" [a]}`` tensors (variable ``a``)."""

    def __init__(self, items: list[Conformer]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        c = self.items[i]
        return {
            "numbers": torch.as_tensor(c.numbers, dtype=torch.long),
            "coords": torch.as_tensor(c.coords, dtype=torch.float32),
            "charges": torch.as_tensor(c.charges, dtype=torch.long),
        }


def collate_atoms(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Pad atom sets to the batch's largest: ``numbers [b, a]`` (0 = padding), ``coords [b, a, 3]``, ``charges``."""
    a = max(len(it["numbers"]) for it in items)
    b = len(items)
    numbers = torch.zeros(b, a, dtype=torch.long)
    coords = torch.zeros(b, a, 3)
    charges = torch.zeros(b, a, dtype=torch.long)
    for i, it in enumerate(items):
        n = len(it["numbers"])
        numbers[i, :n], coords[i, :n], charges[i, :n] = it["numbers"], it["coords"], it["charges"]
    return {"numbers": numbers, "coords": coords, "charges": charges}


class Conformer3DDataModule(L.LightningDataModule):
    """Small molecules with one ETKDG + MMFF conformer each (hydrogens explicit), cached on disk.

    Args:
        path: ``.smi`` / ``.csv`` / ``.sdf`` (SDF records with 3D coordinates keep them), a QM9 ``.xyz`` file, a
            folder of them (e.g. the extracted ``dsgdb9nsd.xyz.tar.bz2``) or the tar archive itself (their
            geometries are kept, see :func:`ditkit_molecules.io.read_xyz`); None = RDKit's ``first_5K.smi``.
        column: SMILES column for ``.smi`` (int) / ``.csv`` (header).
        elements: allowed heavy elements (the tokenizer's element list must cover them plus H).
        max_heavy_atoms: size filter (12 keeps 1,558 molecules of the default set).
        max_atoms: molecules with more atoms (incl. H) are left out.
        val_fraction: held-out fraction (split on unique SMILES).
        batch_size: molecules per batch.
        seed: split / embedding / shuffling seed.
        cache_dir: conformer cache directory (None: no cache).
        limit: use at most this many molecules (tests).
        size_buckets: training batches of similar sizes: chunks of this many batches are sorted by molecule size
            (:class:`~ditkit_molecules.batching.SizeBucketBatchSampler`; 0: plain shuffled batches).
    """

    def __init__(
        self,
        path: str | None = None,
        column: str | int | None = None,
        elements: Sequence[str] = ("C", "N", "O", "F", "S", "Cl"),
        max_heavy_atoms: int = 12,
        max_atoms: int = 40,
        val_fraction: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
        cache_dir: str | None = "outputs/molecules/cache",
        limit: int | None = None,
        size_buckets: int = 0,
    ):
        super().__init__()
        check_args(
            "Conformer3DDataModule",
            path=path,
            column=column,
            elements=elements,
            max_heavy_atoms=max_heavy_atoms,
            max_atoms=max_atoms,
            val_fraction=val_fraction,
            batch_size=batch_size,
            seed=seed,
            cache_dir=cache_dir,
            limit=limit,
        )
        self.path, self.column, self.elements = path, column, tuple(elements)
        self.max_heavy_atoms, self.max_atoms, self.val_fraction = max_heavy_atoms, max_atoms, val_fraction
        self.batch_size, self.seed, self.cache_dir, self.limit = batch_size, seed, cache_dir, limit
        self.report: LoadReport | None = None
        if isinstance(size_buckets, bool) or not isinstance(size_buckets, int) or size_buckets < 0:
            raise ValueError(f"Conformer3DDataModule: size_buckets={size_buckets!r}: must be an integer >= 0")
        self.size_buckets = size_buckets

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train", None) is not None:
            return
        records, self.report = load_records(
            self.path,
            column=self.column,
            elements=self.elements,
            max_heavy_atoms=self.max_heavy_atoms,
            limit=self.limit,
        )
        train, val = split_records(records, self.val_fraction, self.seed)
        self.train_smiles = [r.smiles for r in train]
        self.val_smiles = [r.smiles for r in val]
        too_big = 0

        def confs(recs: list[MolRecord], seed: int) -> list[Conformer]:
            nonlocal too_big
            cs = conformers(
                [r.smiles for r in recs], seed=seed, cache_dir=self.cache_dir, molblocks=[r.molblock for r in recs]
            )
            kept = [c for c in cs if len(c.numbers) <= self.max_atoms]
            too_big += len(cs) - len(kept)
            return kept

        self.train = ConformerDataset(confs(train, self.seed))
        self.val = ConformerDataset(confs(val, self.seed + 1_000_000))
        source = self.path or default_smiles_path()
        if too_big:
            log.warning(
                "Conformer3DDataModule: %s: %d molecule(s) with more than max_atoms=%d atoms (hydrogens included) "
                "left out",
                source,
                too_big,
                self.max_atoms,
            )
        if not len(self.train):
            raise DataError(
                f"no training molecule left: {len(records)} loaded, {too_big} over the atom limit, the rest without "
                "a usable conformer",
                path=source,
                field="max_atoms",
                value=self.max_atoms,
            )
        sizes = np.array([len(c.numbers) for c in self.train.items])
        self.size_hist = torch.as_tensor(
            np.bincount(sizes, minlength=self.max_atoms + 1)[: self.max_atoms + 1], dtype=torch.float32
        )

    def train_dataloader(self):
        drop_last = len(self.train) > self.batch_size
        if self.size_buckets:
            from torch.utils.data import DataLoader

            from ditkit_molecules.batching import SizeBucketBatchSampler

            sizes = [len(c.numbers) for c in self.train.items]
            sampler = SizeBucketBatchSampler(sizes, self.batch_size, self.seed, self.size_buckets, drop_last)
            return DataLoader(self.train, batch_sampler=sampler, collate_fn=collate_atoms)
        return seeded_loader(
            self.train, self.batch_size, shuffle=True, seed=self.seed, collate_fn=collate_atoms, drop_last=drop_last
        )

    def val_dataloader(self):
        return seeded_loader(self.val, self.batch_size, shuffle=False, collate_fn=collate_atoms)


# --------------------------------------------------------------------------------------------------- latent
def properties(smiles: str) -> tuple[float, float, float] | None:
    """``(QED, Crippen logP, molecular weight / 100)`` of a SMILES (None when it does not parse)."""
    from rdkit import Chem
    from rdkit.Chem import QED, Crippen, Descriptors

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    return float(QED.qed(mol)), float(Crippen.MolLogP(mol)), float(Descriptors.MolWt(mol)) / 100.0


PROPERTY_NAMES = ("qed", "logp", "mw100")


SKIP_REASONS = ("invalid_smiles", "selfies_constraint", "selfies_round_trip", "unknown_symbol", "too_long")
"""Why a molecule can be left out of the SELFIES data (each one is reported with its reason)."""


def _reason(e: ValueError) -> str:
    head = str(e).split(":", 1)[0]
    return head if head in SKIP_REASONS else "selfies_constraint"


def _encode_symbols(smiles: list[str], n_enum: int, seed: int) -> tuple[list[Any], list[tuple[int, str, str]]]:
    """Per molecule ``(index, canonical symbols, [enumeration symbols], props)`` and the skipped ``(index, reason,
    message)``. The canonical SMILES is the first enumeration; an enumeration SELFIES cannot encode is left out."""
    from rdkit import Chem

    from ditkit_molecules.tokenizer import selfies_symbols

    out, skipped = [], []
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        p = properties(s)
        if mol is None or p is None:
            skipped.append((i, "invalid_smiles", f"{s!r} does not parse"))
            continue
        try:
            target = selfies_symbols(s)
        except ValueError as e:
            skipped.append((i, _reason(e), str(e)))
            continue
        enums = [target]
        for r in dict.fromkeys(Chem.MolToRandomSmilesVect(mol, n_enum, randomSeed=_rdkit_seed(seed + i))):
            try:
                enums.append(selfies_symbols(r))
            except ValueError:
                log.debug("EnumeratedSmilesDataset: enumeration %r of %r left out", r, s)
        out.append((i, target, enums, p))
    return out, skipped


def selfies_alphabet_of(encoded: list[Any]) -> list[str]:
    """The sorted symbol set of encoded molecules (canonical forms and enumerations), see :func:`_encode_symbols`."""
    return sorted({t for _, target, enums, _ in encoded for seq in (target, *enums) for t in seq})


class EnumeratedSmilesDataset(Dataset):
    """Per molecule: canonical SELFIES ids, the SELFIES ids of the canonical and ``n_enum`` randomised SMILES, and
    properties.

    ``__getitem__`` returns ``{"target" [T], "enum_a" [T], "enum_b" [T], "props" [3], "index", "enum_index"}`` with
    two different enumerations (drawn with torch's global RNG, which Lightning seeds; ``enum_index`` is the row of
    ``enum_a`` in :attr:`enums`). SELFIES are encoded under SELFIES' robust
    semantic constraints and checked to decode to the same molecule. Without ``vocab`` the symbol set is built from
    these molecules (:attr:`vocab`); with one, a molecule using another symbol is skipped as ``unknown_symbol``.
    Every skipped molecule is in :attr:`report` with its reason (:data:`SKIP_REASONS`), logged at ``WARNING``.
    Encoding is cached in ``cache_dir`` as ``selfies_<hash>.npz``, written atomically; a corrupt cache is named in a
    ``WARNING`` and rebuilt.

    Args:
        smiles: canonical SMILES.
        vocab: the vocabulary, or None to build its symbols from ``smiles`` (then ``max_len`` sets its length).
        n_enum: randomised SMILES per molecule.
        seed: enumeration seed.
        cache_dir: cache folder (None: no cache).
        max_len: symbols per molecule when ``vocab`` is None.
        source: name of the data in the report.
    """

    def __init__(
        self,
        smiles: list[str],
        vocab: SelfiesVocab | None,
        n_enum: int = 8,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        max_len: int = 64,
        source: str = "SELFIES",
    ):
        given = None if vocab is None else [vocab.itos, vocab.max_len]
        key = hashlib.sha1(json.dumps([3, smiles, n_enum, seed, given, max_len]).encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"selfies_{key}.npz" if cache_dir is not None else None
        z = None
        if path is not None:
            z = load_cache(path, _SELFIES_KEYS, lambda a: _check_selfies_cache(a, smiles))
        if z is not None:
            self.smiles = z["smiles"].tolist()
            self.vocab = SelfiesVocab(int(z["max_len"]), z["symbols"].tolist())
            skipped = list(zip(z["skip_index"].tolist(), z["skip_reason"].tolist(), z["skip_message"].tolist()))
            targets, enums, props, counts = (torch.as_tensor(z[k]) for k in ("targets", "enums", "props", "counts"))
        else:
            encoded, skipped = _encode_symbols(smiles, n_enum, seed)
            self.vocab = vocab if vocab is not None else SelfiesVocab(max_len, selfies_alphabet_of(encoded))
            self.smiles, targets, enums, props, counts = self._ids(smiles, encoded, skipped)
            if path is not None and self.smiles:
                save_cache(
                    path,
                    smiles=np.array(self.smiles),
                    symbols=np.array(self.vocab.symbols),
                    max_len=np.array(self.vocab.max_len),
                    skip_index=np.array([k[0] for k in skipped], dtype=np.int64),
                    skip_reason=np.array([k[1] for k in skipped], dtype=str),
                    skip_message=np.array([k[2] for k in skipped], dtype=str),
                    targets=targets.numpy(),
                    enums=enums.numpy(),
                    props=props.numpy(),
                    counts=counts.numpy(),
                )
        self.report = SkipReport(source=source, kept=len(self.smiles))
        for i, reason, msg in sorted(skipped):
            self.report.skip(reason, line=i + 1, field="smiles", value=msg.split(": ", 1)[-1])
        if self.report.skipped:
            self.report.log(log)
        self.targets = list(targets)  # [T] each
        off = torch.cumsum(counts, 0) - counts
        self.enums = [enums[o : o + c] for o, c in zip(off.tolist(), counts.tolist())]  # [k, T] each
        self.props = list(props)  # [3] each

    @property
    def skipped(self) -> int:
        return self.report.skipped

    def _ids(self, smiles: list[str], encoded: list[Any], skipped: list[tuple[int, str, str]]) -> tuple[Any, ...]:
        vocab, kept, targets, enums, props, counts = self.vocab, [], [], [], [], []
        for i, target, enum_syms, p in encoded:
            bad = sorted({t for t in target if t not in vocab.stoi})
            if bad:
                skipped.append((i, "unknown_symbol", f"{smiles[i]!r} uses {bad}, not in the training alphabet"))
                continue
            if len(target) > vocab.max_len:
                msg = f"{smiles[i]!r} has {len(target)} symbols > max_len={vocab.max_len}"
                skipped.append((i, "too_long", msg))
                continue
            ok = [e for e in enum_syms if len(e) <= vocab.max_len and all(t in vocab.stoi for t in e)]
            kept.append(smiles[i])
            targets.append([vocab.BOS, *(vocab.stoi[t] for t in target), vocab.EOS])
            enums.extend([vocab.BOS, *(vocab.stoi[t] for t in e), vocab.EOS] for e in ok)
            counts.append(len(ok))
            props.append(p)
        if not kept:
            t = torch.zeros(0, vocab.max_len + 2, dtype=torch.long)
            return kept, t, t, torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)
        return (
            kept,
            vocab.pad(targets),
            vocab.pad(enums),
            torch.tensor(props, dtype=torch.float32),
            torch.tensor(counts, dtype=torch.long),
        )

    def __len__(self) -> int:
        return len(self.smiles)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        e = self.enums[i]
        j = torch.randperm(len(e))[:2].tolist() if len(e) > 1 else [0, 0]
        return {
            "target": self.targets[i],
            "enum_a": e[j[0]],
            "enum_b": e[j[-1]],
            "props": self.props[i],
            "index": torch.tensor(i),
            "enum_index": torch.tensor(j[0]),
        }


def _rdkit_seed(seed: int) -> int:
    """A positive 32-bit RDKit ``randomSeed`` for ``seed``: RDKit leaves its generator unseeded for ``randomSeed <= 0``,
    which made the first molecule's enumerations (``seed + 0 = 0``) differ from run to run and from the cache."""
    return 1 + (seed - 1) % (2**31 - 1)  # identity on [1, 2^31 - 1], every other int mapped into it


_SELFIES_KEYS = (
    "smiles",
    "symbols",
    "max_len",
    "skip_index",
    "skip_reason",
    "skip_message",
    "targets",
    "enums",
    "props",
    "counts",
)


def _check_selfies_cache(z: dict[str, np.ndarray], smiles: list[str]) -> None:
    """Raise :class:`~ditkit_molecules.cache.CacheError` unless ``z`` is a consistent SELFIES cache of ``smiles``."""
    names = expect(z, "smiles", "U", (None,))
    symbols = expect(z, "symbols", "U", (None,))
    max_len = int(expect(z, "max_len", "iu", (), lo=1))
    m, width, n_ids = len(names), max_len + 2, len(symbols) + 3
    skipped = len(expect(z, "skip_index", "iu", (None,), lo=0, hi=max(len(smiles) - 1, 0)))
    expect(z, "skip_reason", "U", (skipped,))
    expect(z, "skip_message", "U", (skipped,))
    if m + skipped != len(smiles):
        raise CacheError(f"{m} kept + {skipped} skipped molecules, expected {len(smiles)}")
    counts = expect(z, "counts", "iu", (m,), lo=1)
    expect(z, "targets", "iu", (m, width), lo=0, hi=n_ids - 1)
    expect(z, "enums", "iu", (int(counts.sum()), width), lo=0, hi=n_ids - 1)
    expect(z, "props", "f", (m, 3))
    unknown = set(names.tolist()) - set(smiles)
    if unknown:
        raise CacheError(f"{len(unknown)} molecule(s) not in the requested list, e.g. {sorted(unknown)[0]!r}")


RDKIT_PREFIX = "rdkit:"


def rdkit_data_path(path: str | None) -> str | None:
    """``rdkit:<relative path>`` -> that file inside RDKit's ``Data`` folder (e.g.
    ``rdkit:Pains/test_data/wehi_mols.csv``, 10,000 WEHI screening compounds); other paths unchanged.

    Raises:
        DataError: the relative path leaves the folder or the file is not in this RDKit install.
    """
    if path is None or not str(path).startswith(RDKIT_PREFIX):
        return path
    from rdkit import RDConfig

    from ditkit_core.errors import safe_join

    p = safe_join(RDConfig.RDDataDir, str(path)[len(RDKIT_PREFIX) :])
    if not Path(p).is_file():
        raise DataError("not a file of this RDKit install's Data folder", path=p, field="path", value=path)
    return str(p)


class SmilesDataModule(L.LightningDataModule):
    """Drug-like molecules as SELFIES enumerations with QED / logP / MW for the latent model.

    Args:
        path: ``.smi`` / ``.csv`` / ``.sdf``, or ``rdkit:<path>`` for a file of RDKit's ``Data`` folder
            (:func:`rdkit_data_path`); None = RDKit's ``first_5K.smi``.
        column: SMILES column.
        elements: allowed elements.
        max_heavy_atoms: size filter.
        max_len: SELFIES symbols per molecule (must equal the tokenizer's ``max_len``).
        n_enum: randomised SMILES per molecule.
        val_fraction: held-out fraction (split on unique SMILES).
        batch_size: molecules per batch.
        seed: split / enumeration / shuffling seed.
        cache_dir: SELFIES encoding cache (None: no cache).
        limit: use at most this many molecules (tests).
        symbols: the SELFIES symbol set; None builds it from the training molecules (canonical forms and their
            enumerations), so no chemotype of the training data is dropped for its symbols.
        tuning: keep the held-out molecules out entirely and hold out a validation split of the training molecules
            instead (same ``val_fraction``): settings are chosen with ``tuning: true``, the held-out figures are
            measured once with ``tuning: false``.

    Molecules SELFIES cannot take are skipped with their reason (:data:`SKIP_REASONS`) in
    :attr:`selfies_report` (``{"train": ..., "val": ...}``), logged at ``WARNING``; held-out molecules with a symbol
    the training molecules never use are ``unknown_symbol``.
    """

    def __init__(
        self,
        path: str | None = None,
        column: str | int | None = None,
        elements: Sequence[str] = DRUG_ELEMENTS,
        max_heavy_atoms: int = 25,
        max_len: int = 48,
        n_enum: int = 8,
        val_fraction: float = 0.1,
        batch_size: int = 128,
        seed: int = 0,
        cache_dir: str | None = "outputs/molecules/cache",
        limit: int | None = None,
        symbols: list[str] | None = None,
        tuning: bool = False,
    ):
        super().__init__()
        if symbols is not None and (
            not isinstance(symbols, (list, tuple)) or not all(isinstance(t, str) for t in symbols)
        ):
            raise ValueError(f"SmilesDataModule: symbols={symbols!r}: must be None or a list of SELFIES symbols")
        check_args(
            "SmilesDataModule",
            path=path,
            column=column,
            elements=elements,
            max_heavy_atoms=max_heavy_atoms,
            max_len=max_len,
            n_enum=n_enum,
            val_fraction=val_fraction,
            batch_size=batch_size,
            seed=seed,
            cache_dir=cache_dir,
            limit=limit,
        )
        self.path, self.column, self.elements, self.max_heavy_atoms = path, column, tuple(elements), max_heavy_atoms
        self.max_len, self.n_enum, self.val_fraction = max_len, n_enum, val_fraction
        self.batch_size, self.seed, self.limit, self.cache_dir = batch_size, seed, limit, cache_dir
        self.symbols, self.tuning = (list(symbols) if symbols is not None else None), bool(tuning)
        self.report: LoadReport | None = None

    def setup(self, stage: str | None = None) -> None:
        if getattr(self, "train", None) is not None:
            return
        records, self.report = load_records(
            rdkit_data_path(self.path),
            column=self.column,
            elements=self.elements,
            max_heavy_atoms=self.max_heavy_atoms,
            limit=self.limit,
        )
        train, val = split_records(records, self.val_fraction, self.seed)
        if self.tuning:
            train, val = split_records(train, self.val_fraction, self.seed + 1)
        vocab = None if self.symbols is None else SelfiesVocab(self.max_len, self.symbols)
        name = Path(str(self.path or default_smiles_path())).name
        self.train = EnumeratedSmilesDataset(
            [r.smiles for r in train], vocab, self.n_enum, self.seed, self.cache_dir, self.max_len, f"{name} (train)"
        )
        self.symbols = self.train.vocab.symbols
        self.val = EnumeratedSmilesDataset(
            [r.smiles for r in val],
            self.train.vocab,
            self.n_enum,
            self.seed + 1_000_000,
            self.cache_dir,
            source=f"{name} ({'validation' if self.tuning else 'held-out'})",
        )
        if not len(self.train):
            raise DataError(
                f"none of the {len(train)} training molecules fits the SELFIES vocabulary within max_len symbols "
                f"({self.train.report.counts()})",
                path=self.path or default_smiles_path(),
                field="max_len",
                value=self.max_len,
            )
        self.selfies_report = {"train": self.train.report, "val": self.val.report}
        self.train_smiles, self.val_smiles = self.train.smiles, self.val.smiles

    def train_dataloader(self):
        return seeded_loader(
            self.train, self.batch_size, shuffle=True, seed=self.seed, drop_last=len(self.train) > self.batch_size
        )

    def val_dataloader(self):
        return seeded_loader(self.val, self.batch_size, shuffle=False)
