"""The latent model's evaluation: the model next to its controls, every time.

Rows (each ``n`` molecules, scored against the held-out molecules of the data module):

* ``training data``: ``n`` training molecules (the data's own score: what a perfect model of the training
  distribution reaches; its FCD is the data's own FCD, training vs held-out);
* ``held-out data``: the reference itself (sanity rates only; the comparisons are trivial);
* ``model``: ``n`` samples of the latent DiT, decoded greedily;
* ``decoder only``: ``n`` latents drawn from N(0, I) in the DiT's standardised latent space, decoded the same way
  (the prior without the DiT: what the DiT has to beat).

Columns: validity, uniqueness, novelty (:func:`~ditkit_molecules.metrics.smiles_metrics`), FCD (``fcd_torch``'s
ChemNet; nan without it), MOSES-style SNN / fragment / scaffold similarity and property Wasserstein distances, and
sanity rates (:mod:`ditkit_molecules.latent_metrics`). Autoencoder reconstruction is measured on training and
held-out molecules from their canonical SMILES and from a randomised SMILES (greedy decoding; exact = same canonical
SMILES). :data:`GOALS` are checked on every run and printed as met / not met.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from ditkit_core.tokenizers import TokenBatch
from ditkit_molecules.latent_metrics import Reference, mols_of, sanity_rates, tanimoto
from ditkit_molecules.metrics import canonical, fcd_available, smiles_metrics

ROWS = ("training data", "held-out data", "model", "decoder only")
COLUMNS = (
    "validity",
    "uniqueness",
    "novelty",
    "fcd",
    "snn",
    "frag",
    "scaf",
    "w1_mw",
    "w1_logp",
    "w1_qed",
    "w1_sa",
    "w1_rings",
    "macrocycle",
    "acyclic_polyene",
    "enol",
    "no_aromatic",
    "qed",
    "sa",
    "int_div",
)
GOALS = (
    ("held-out exact reconstruction >= 0.90", "recon_heldout_exact", ">=", 0.90),
    ("FCD(model) <= 2 x FCD(train, held-out)", "fcd_model_over_data", "<=", 2.0),
    ("FCD(model) <= 0.7 x FCD(decoder only)", "fcd_model_over_decoder", "<=", 0.7),
    ("macrocycle rate <= 2 x the training data's", "macrocycle_over_data", "<=", 2.0),
    ("acyclic polyene rate <= 2 x the training data's", "polyene_over_data", "<=", 2.0),
    ("validity >= 0.95", "validity", ">=", 0.95),
    ("uniqueness >= 0.95", "uniqueness", ">=", 0.95),
    ("novelty >= 0.5", "novelty", ">=", 0.5),
)


class FCDScorer:
    """FCD against one reference set, its ChemNet statistics computed once (nan without ``fcd_torch``)."""

    def __init__(self, reference: list[str]):
        self.fcd = None
        if fcd_available() and len(reference) >= 2:
            from fcd_torch import FCD

            self.fcd = FCD(device="cpu", n_jobs=1, batch_size=256)
            self.ref = self.fcd.precalc(list(reference))

    def __call__(self, smiles: list[str]) -> float:
        valid = [c for c in (canonical(s) for s in smiles) if c]
        if self.fcd is None or len(valid) < 2:
            return float("nan")
        return float(self.fcd.metric(self.ref, self.fcd.precalc(valid)))


@torch.no_grad()
def reconstruction(tokenizer: Any, dataset: Any, n: int | None = None, enumerated: bool = False) -> dict[str, float]:
    """Greedy reconstruction of the first ``n`` molecules of an :class:`EnumeratedSmilesDataset`.

    Args:
        tokenizer: the :class:`~ditkit_molecules.autoencoder.LatentTokenizer`.
        dataset: the molecules (their canonical SMILES are the reference).
        n: how many (None: all).
        enumerated: encode a randomised SMILES (the dataset's first enumeration other than the canonical one)
            instead of the canonical SMILES. An encoder of the canonical SELFIES (``arch: sequence``) gets the
            canonical form of that SMILES, as :meth:`LatentTokenizer.encode` does, so both rows agree there.

    Returns:
        ``exact`` (fraction decoded to the same canonical SMILES), ``tanimoto`` (mean Morgan Tanimoto, 0 for invalid
        outputs) and ``n``.
    """
    k = len(dataset) if n is None else min(n, len(dataset))
    if k == 0:
        return {"exact": float("nan"), "tanimoto": float("nan"), "n": 0.0}
    canonical_in = tokenizer.input_key == "target"
    rows = [
        dataset.enums[i][1 if enumerated and not canonical_in and len(dataset.enums[i]) > 1 else 0] for i in range(k)
    ]
    was = tokenizer.training
    tokenizer.eval()
    decoded = tokenizer.decode_latents(tokenizer.latents(torch.stack(rows)))
    tokenizer.train(was)
    ref = dataset.smiles[:k]
    exact = sum(canonical(d) == s for d, s in zip(decoded, ref)) / k
    return {"exact": exact, "tanimoto": sum(tanimoto(d, s) for d, s in zip(decoded, ref)) / k, "n": float(k)}


@torch.no_grad()
def decoder_only(module: Any, n: int, seed: int = 0, batch: int = 250) -> list[str]:
    """``n`` SMILES decoded from N(0, I) latents in the DiT's standardised latent space (no DiT)."""
    tok = module.tokenizer
    g = torch.Generator().manual_seed(seed + 7_919)
    out: list[str] = []
    for start in range(0, n, batch):
        k = min(batch, n - start)
        z = torch.randn(k, tok.latent_tokens, tok.latent_dim, generator=g).to(module.device)
        out += tok.decode(TokenBatch(x=z), module.decode_temperature, g)
    return out


def _row(smiles: list[str], train: list[str], ref: Reference, fcd: FCDScorer | None) -> dict[str, float]:
    row = smiles_metrics(smiles, train, None, with_fcd=False)
    row.update(ref.compare(smiles))
    row["fcd"] = fcd(smiles) if fcd is not None else float("nan")
    return row


def _ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return float("nan")
    if b == 0:
        return 0.0 if a == 0 else float("inf")
    return a / b


def evaluate_latent(
    module: Any,
    dm: Any,
    n: int = 500,
    seed: int = 0,
    steps: int | None = None,
    with_fcd: bool = True,
    recon_n: int | None = None,
) -> dict[str, Any]:
    """Every figure of the latent model with its controls (see the module docstring).

    Args:
        module: a trained :class:`~ditkit_molecules.module_latent.LatentMoleculeModule`.
        dm: its set-up :class:`~ditkit_molecules.data.SmilesDataModule`.
        n: molecules per row.
        seed: sampling seed.
        steps: solver steps (default: the module's).
        with_fcd: compute FCD (needs ``fcd_torch``).
        recon_n: molecules per reconstruction figure (None: all held-out, ``n`` training molecules).

    Returns:
        ``rows`` (name -> metrics), ``reconstruction`` (``train`` / ``held-out`` x ``canonical`` / ``enumerated``),
        ``data_rates`` (sanity rates of all training molecules), ``goals`` (name -> value, threshold, met) and
        ``timing`` (seconds).
    """
    from ditkit_molecules.cli import generate

    train, val = list(dm.train_smiles), list(dm.val_smiles)
    ref = Reference(val)
    fcd = FCDScorer(val) if with_fcd else None
    t0 = time.perf_counter()
    samples = generate(module, n, seed, steps)
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    prior = decoder_only(module, n, seed)
    t_prior = time.perf_counter() - t0
    rows = {
        "training data": _row(train[:n], train, ref, fcd),
        "held-out data": {**smiles_metrics(val[:n], train, None, with_fcd=False), **sanity_rates(mols_of(val))},
        "model": _row(samples, train, ref, fcd),
        "decoder only": _row(prior, train, ref, fcd),
    }
    rows["model"]["molecules_per_s"] = n / t_model
    rows["decoder only"]["molecules_per_s"] = n / t_prior
    tok = module.tokenizer
    recon = {}
    for split, ds, k in (("train", dm.train, recon_n or n), ("held-out", dm.val, recon_n)):
        for how in ("canonical", "enumerated"):
            recon[f"{split} {how}"] = reconstruction(tok, ds, k, enumerated=how == "enumerated")
    data_rates = sanity_rates(mols_of(train))
    m = rows["model"]
    values = {
        "recon_heldout_exact": recon["held-out canonical"]["exact"],
        "fcd_model_over_data": _ratio(m["fcd"], rows["training data"]["fcd"]),
        "fcd_model_over_decoder": _ratio(m["fcd"], rows["decoder only"]["fcd"]),
        "macrocycle_over_data": _ratio(m["macrocycle"], data_rates["macrocycle"]),
        "polyene_over_data": _ratio(m["acyclic_polyene"], data_rates["acyclic_polyene"]),
        "validity": m["validity"],
        "uniqueness": m["uniqueness"],
        "novelty": m["novelty"],
    }
    goals = {}
    for name, key, op, thr in GOALS:
        v = values[key]
        met = (not math.isnan(v)) and (v >= thr if op == ">=" else v <= thr)
        goals[name] = {"value": v, "threshold": thr, "met": bool(met)}
    return {"rows": rows, "reconstruction": recon, "data_rates": data_rates, "goals": goals}


def format_latent_report(result: dict[str, Any]) -> str:
    """The evaluation as Markdown: metric table, reconstruction table, data sanity rates and goals."""
    from ditkit_molecules.metrics import format_table

    lines = [format_table(result["rows"], list(COLUMNS)), "", "autoencoder reconstruction (greedy):", ""]
    lines.append(
        format_table(
            {
                k: {"exact": v["exact"], "tanimoto": v["tanimoto"], "n": v["n"]}
                for k, v in result["reconstruction"].items()
            }
        )
    )
    rates = ", ".join(f"{k} {v:.4f}" for k, v in result["data_rates"].items())
    lines += ["", f"sanity rates of all training molecules: {rates}", "", "goals:", ""]
    for name, g in result["goals"].items():
        lines.append(f"- {name}: {g['value']:.3f} -> {'met' if g['met'] else 'NOT met'}")
    return "\n".join(lines)
