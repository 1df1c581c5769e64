"""Tokenizers: 3D atoms as a masked set of tokens, and SELFIES strings as integer sequences.

``AtomTokenizer`` (3D model): one token per atom (hydrogens explicit),
``x = [coords / coord_scale (3), one-hot element * type_scale (K), charge * charge_scale (1)]``; padded atoms are
masked. Tokens carry no position: the DiT sees an unordered set (permutation equivariant).

``SelfiesVocab`` (latent model): SELFIES symbols + ``<pad>``, ``<bos>``, ``<eos>``; the latent model builds its
symbol set from its training data (under SELFIES' robust semantic constraints) and keeps it in its checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ditkit_core.tokenizers import TokenBatch

PERIODIC = {"H": 1, "B": 5, "C": 6, "N": 7, "O": 8, "F": 9, "P": 15, "S": 16, "Cl": 17, "Br": 35, "I": 53}


class AtomTokenizer:
    """Atoms <-> tokens ``[b, a, 3 + K + 1]`` (coordinates, element one-hot, formal charge).

    Args:
        elements: element symbols of the one-hot (order matters; hydrogens should be included).
        max_atoms: the largest molecule (atoms incl. H) the model handles.
        coord_scale: coordinates are divided by this (Angstrom; about the data's coordinate std).
        type_scale: magnitude of the element one-hot.
        charge_scale: magnitude of the formal-charge channel.

    ``encode`` takes ``{"numbers": [b, a] long (0 = padding), "coords": [b, a, 3], "charges": [b, a]}``;
    ``decode`` returns the same keys plus ``mask`` (element = argmax, charge rounded).
    """

    def __init__(
        self,
        elements: Sequence[str] = ("H", "C", "N", "O", "F", "S", "Cl"),
        max_atoms: int = 40,
        coord_scale: float = 1.6,
        type_scale: float = 1.0,
        charge_scale: float = 1.0,
    ):
        unknown = [e for e in elements if e not in PERIODIC]
        if unknown:
            raise ValueError(f"AtomTokenizer.elements: unknown element(s) {unknown}; known: {sorted(PERIODIC)}")
        self.elements, self.max_atoms = list(elements), int(max_atoms)
        self.coord_scale, self.type_scale = float(coord_scale), float(type_scale)
        self.charge_scale = float(charge_scale)
        self.numbers = torch.tensor([PERIODIC[e] for e in self.elements])
        self._index = torch.full((max(PERIODIC.values()) + 1,), -1, dtype=torch.long)
        self._index[self.numbers] = torch.arange(len(self.elements))
        self.token_dim = 3 + len(self.elements) + 1

    def type_index(self, numbers: Tensor) -> Tensor:
        """Atomic numbers ``[...]`` -> one-hot indices ``[...]`` (-1 for padding / unknown)."""
        idx = self._index.to(numbers.device)[numbers.clamp(0, len(self._index) - 1)]
        return torch.where(numbers > 0, idx, torch.full_like(idx, -1))

    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        numbers, coords = raw["numbers"], raw["coords"]
        charges = raw.get("charges", torch.zeros_like(numbers))
        mask = numbers > 0  # [b, a]
        idx = self.type_index(numbers)
        bad = mask & (idx < 0)
        if bad.any():
            z = int(numbers[bad][0])
            raise ValueError(f"AtomTokenizer: atomic number {z} is not in elements={self.elements}")
        if numbers.shape[1] > self.max_atoms:
            raise ValueError(f"AtomTokenizer: {numbers.shape[1]} atoms > max_atoms={self.max_atoms}")
        onehot = F.one_hot(idx.clamp_min(0), len(self.elements)).to(coords.dtype) * mask[..., None]  # [b, a, K]
        x = torch.cat(
            [
                coords / self.coord_scale,
                onehot * self.type_scale,
                charges[..., None].to(coords.dtype) * self.charge_scale,
            ],
            -1,
        )  # [b, a, 3 + K + 1]
        return TokenBatch(x=x * mask[..., None], mask=mask)

    def decode(self, tokens: TokenBatch) -> dict[str, Tensor]:
        x = tokens.x
        mask = tokens.mask if tokens.mask is not None else torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        k = len(self.elements)
        coords = x[..., :3] * self.coord_scale
        numbers = self.numbers.to(x.device)[x[..., 3 : 3 + k].argmax(-1)] * mask
        charges = torch.round(x[..., 3 + k] / self.charge_scale).long() * mask
        return {"numbers": numbers, "coords": coords * mask[..., None], "charges": charges, "mask": mask}


def selfies_alphabet() -> list[str]:
    """SELFIES' semantically robust alphabet, sorted (the default symbol set of :class:`SelfiesVocab`)."""
    import selfies as sf

    return sorted(sf.get_semantic_robust_alphabet())


def selfies_symbols(smiles: str) -> list[str]:
    """The SELFIES symbols of a SMILES under SELFIES' default (robust) semantic constraints.

    Raises:
        ValueError: ``"selfies_constraint: ..."`` when the molecule breaks the constraints (a hypervalent atom, an
            unsupported charge state) or SELFIES cannot encode it; ``"selfies_round_trip: ..."`` when decoding the
            symbols gives another molecule than ``smiles``.
    """
    import selfies as sf
    from rdkit import Chem

    try:
        text = sf.encoder(smiles, strict=True)
    except Exception as e:  # noqa: BLE001 - selfies raises EncoderError and others
        raise ValueError(f"selfies_constraint: {smiles!r}: {e}") from e
    if not text:
        raise ValueError(f"selfies_constraint: {smiles!r}: SELFIES returned nothing")
    back = Chem.MolFromSmiles(sf.decoder(text) or "")
    ref = Chem.MolFromSmiles(smiles)
    if back is None or ref is None or Chem.MolToSmiles(back) != Chem.MolToSmiles(ref):
        raise ValueError(f"selfies_round_trip: {smiles!r} decodes to {sf.decoder(text)!r}")
    return list(sf.split_selfies(text))


class SelfiesVocab:
    """SMILES <-> SELFIES symbol ids with ``<pad>`` = 0, ``<bos>`` = 1, ``<eos>`` = 2.

    Args:
        max_len: symbols per molecule, ``<bos>``/``<eos>`` excluded; longer molecules are rejected.
        symbols: the symbol set, e.g. built from training data (:func:`ditkit_molecules.data.selfies_alphabet_of`);
            default :func:`selfies_alphabet`.
    """

    PAD, BOS, EOS = 0, 1, 2

    def __init__(self, max_len: int = 48, symbols: Sequence[str] | None = None):
        self.max_len = int(max_len)
        self.symbols = list(symbols) if symbols is not None else selfies_alphabet()
        self.itos = ["<pad>", "<bos>", "<eos>", *self.symbols]
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode_smiles(self, smiles: str) -> list[int]:
        """SMILES -> ``[<bos>, ids..., <eos>]``.

        Raises:
            ValueError: its message starts with the reason: ``selfies_constraint`` / ``selfies_round_trip`` (see
                :func:`selfies_symbols`), ``unknown_symbol`` (a symbol outside the vocabulary, named) or ``too_long``
                (more than ``max_len`` symbols); then the SMILES.
        """
        syms = selfies_symbols(smiles)
        missing = [t for t in syms if t not in self.stoi]
        if missing:
            raise ValueError(f"unknown_symbol: {smiles!r} uses {sorted(set(missing))}, not in the vocabulary")
        if len(syms) > self.max_len:
            raise ValueError(f"too_long: {smiles!r} has {len(syms)} symbols > max_len={self.max_len}")
        return [self.BOS, *(self.stoi[t] for t in syms), self.EOS]

    def pad(self, seqs: Sequence[Sequence[int]]) -> Tensor:
        """Right-pad id lists to ``[b, max_len + 2]``."""
        out = torch.full((len(seqs), self.max_len + 2), self.PAD, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
        return out

    def decode_ids(self, ids: Sequence[int]) -> str:
        """Ids (with or without ``<bos>``; stops at ``<eos>``) -> SMILES ('' when nothing decodes)."""
        import selfies as sf

        syms = []
        for i in ids:
            i = int(i)
            if i == self.EOS:
                break
            if i in (self.PAD, self.BOS):
                continue
            syms.append(self.itos[i])
        try:
            return sf.decoder("".join(syms)) or ""
        except Exception:  # noqa: BLE001
            return ""
