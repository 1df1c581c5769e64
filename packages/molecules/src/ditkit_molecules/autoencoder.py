"""SELFIES autoencoder whose latent is invariant to SMILES enumeration (LDMol-style), and its tokenizer.

Encoder: embedding -> bidirectional GRU over the SELFIES of a *randomised* SMILES -> ``latent_tokens`` latent
tokens of width ``latent_dim``. Decoder: autoregressive GRU that writes the *canonical* SELFIES, conditioned on the
latent (initial state and every input step). Training loss:

``CE(decode(z_a), canonical) + CE(decode(z_b), canonical) + w_nce * InfoNCE(z_a, z_b) + w_l2 * |z|^2``

where ``z_a``, ``z_b`` encode two different enumerations of the same molecule; InfoNCE (temperature ``tau``) pulls
enumerations of one molecule together and pushes other molecules of the batch apart. Gaussian noise of std
``latent_noise`` is added to ``z`` before decoding, which makes the decoder robust to the small errors of the latent
flow model. Latents are standardised (per channel, statistics stored as buffers) before the DiT sees them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_core.tokenizers import TokenBatch
from ditkit_molecules.tokenizer import SelfiesVocab


class SelfiesAutoencoder(nn.Module):
    """GRU encoder / decoder over SELFIES ids (see the module docstring).

    Args:
        vocab_size: number of symbols (incl. specials).
        latent_tokens: latent tokens ``L``.
        latent_dim: width of each latent token.
        hidden: GRU width.
        embed: symbol embedding width.
    """

    def __init__(
        self, vocab_size: int, latent_tokens: int = 4, latent_dim: int = 16, hidden: int = 256, embed: int = 64
    ):
        super().__init__()
        self.latent_tokens, self.latent_dim = latent_tokens, latent_dim
        zdim = latent_tokens * latent_dim
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=SelfiesVocab.PAD)
        self.enc = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.to_z = nn.Linear(2 * hidden, zdim)
        self.z_to_h = nn.Linear(zdim, hidden)
        self.z_to_in = nn.Linear(zdim, embed)
        self.dec = nn.GRU(2 * embed, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def encode(self, ids: Tensor) -> Tensor:
        """``ids [b, T]`` (``<bos> ... <eos> <pad>...``) -> latents ``z [b, L, latent_dim]``."""
        lengths = (ids != SelfiesVocab.PAD).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.enc(packed)  # h: [2, b, hidden]
        z = self.to_z(rearrange(h, "two b h -> b (two h)"))  # [b, L * dz]
        return rearrange(z, "b (l d) -> b l d", l=self.latent_tokens)

    def logits(self, z: Tensor, ids: Tensor) -> Tensor:
        """Teacher-forced next-symbol logits ``[b, T - 1, V]`` for targets ``ids[:, 1:]``."""
        zf = rearrange(z, "b l d -> b (l d)")
        inp = ids[:, :-1]
        zin = self.z_to_in(zf)[:, None].expand(-1, inp.shape[1], -1)  # [b, T - 1, embed]
        h0 = torch.tanh(self.z_to_h(zf))[None]  # [1, b, hidden]
        y, _ = self.dec(torch.cat([self.embed(inp), zin], -1), h0)
        return self.out(y)

    @torch.no_grad()
    def generate(
        self, z: Tensor, max_len: int, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode latents ``z [b, L, dz]`` to ids ``[b, max_len + 1]`` (greedy when ``temperature == 0``)."""
        b = z.shape[0]
        zf = rearrange(z, "b l d -> b (l d)")
        zin = self.z_to_in(zf)[:, None]  # [b, 1, embed]
        h = torch.tanh(self.z_to_h(zf))[None]
        tok = torch.full((b, 1), SelfiesVocab.BOS, dtype=torch.long, device=z.device)
        out = []
        done = torch.zeros(b, dtype=torch.bool, device=z.device)
        for _ in range(max_len + 1):
            y, h = self.dec(torch.cat([self.embed(tok), zin], -1), h)
            logit = self.out(y[:, -1])  # [b, V]
            logit[:, SelfiesVocab.PAD] = -float("inf")
            logit[:, SelfiesVocab.BOS] = -float("inf")
            if temperature > 0:
                nxt = torch.multinomial(F.softmax(logit / temperature, -1), 1, generator=generator)[:, 0]
            else:
                nxt = logit.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, SelfiesVocab.PAD), nxt)
            out.append(nxt)
            done |= nxt == SelfiesVocab.EOS
            if done.all():
                break
            tok = nxt[:, None]
        return torch.stack(out, 1)


def trim(*ids: Tensor) -> list[Tensor]:
    """Cut id batches ``[b, T]`` to the longest non-padded length among them (saves recurrent steps)."""
    n = max(int((x != SelfiesVocab.PAD).sum(1).max()) for x in ids)
    return [x[:, : max(n, 2)] for x in ids]


def info_nce(a: Tensor, b: Tensor, tau: float) -> Tensor:
    """Symmetric InfoNCE between paired rows of ``a [n, k]`` and ``b [n, k]`` (cosine similarity / ``tau``)."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / tau  # [n, n]
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class LatentTokenizer(nn.Module):
    """Batches of SELFIES ids <-> standardised latent tokens ``[b, L, latent_dim]`` through the autoencoder.

    ``encode`` takes a :class:`~ditkit_molecules.data.SmilesDataModule` batch (uses ``enum_a``, the randomised
    SMILES, and ``props``) and returns tokens with the raw properties in ``meta["props"]``; ``decode`` returns
    SMILES.

    Args:
        max_len: SELFIES symbols per molecule (the data module's ``max_len``).
        latent_tokens, latent_dim, hidden, embed: autoencoder sizes.
        latent_noise: std of the noise added to latents while training the decoder.
        nce_weight: weight of the enumeration InfoNCE term.
        temperature: InfoNCE temperature.
        l2_weight: weight of the latent L2 penalty.
    """

    def __init__(
        self,
        max_len: int = 48,
        latent_tokens: int = 4,
        latent_dim: int = 16,
        hidden: int = 256,
        embed: int = 64,
        latent_noise: float = 0.1,
        nce_weight: float = 0.5,
        temperature: float = 0.1,
        l2_weight: float = 1e-3,
    ):
        super().__init__()
        self.max_len, self.latent_tokens, self.latent_dim = max_len, latent_tokens, latent_dim
        self.hidden, self.embed, self.latent_noise = hidden, embed, latent_noise
        self.nce_weight, self.temperature, self.l2_weight = nce_weight, temperature, l2_weight
        self.vocab = SelfiesVocab(max_len)
        self.ae = SelfiesAutoencoder(len(self.vocab), latent_tokens, latent_dim, hidden, embed)
        self.token_dim = latent_dim
        self.register_buffer("z_mean", torch.zeros(latent_dim))
        self.register_buffer("z_std", torch.ones(latent_dim))
        self.register_buffer("prop_mean", torch.zeros(3))
        self.register_buffer("prop_std", torch.ones(3))

    def ae_loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Autoencoder loss on a batch (``enum_a``, ``enum_b``, ``target``); returns ``loss`` and its parts."""
        ids = trim(batch["enum_a"], batch["enum_b"], batch["target"])
        za, zb = self.ae.encode(ids[0]), self.ae.encode(ids[1])  # [b, L, dz] each
        target = ids[2]
        z = torch.cat([za, zb])
        noisy = z + self.latent_noise * torch.randn(z.shape, generator=generator, device=z.device)
        tgt = torch.cat([target, target])
        logits = self.ae.logits(noisy, tgt)  # [2b, T - 1, V]
        rec = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=SelfiesVocab.PAD)
        nce = info_nce(za.flatten(1), zb.flatten(1), self.temperature)
        l2 = z.pow(2).mean()
        keep = tgt[:, 1:] != SelfiesVocab.PAD
        acc = ((logits.argmax(-1) == tgt[:, 1:]) | ~keep).all(1).float().mean()
        return {"loss": rec + self.nce_weight * nce + self.l2_weight * l2, "rec": rec, "nce": nce, "exact": acc}

    @torch.no_grad()
    def fit_statistics(self, ids: Tensor, props: Tensor, batch_size: int = 512) -> None:
        """Set the latent and property standardisation from data (``ids [N, T]``, ``props [N, 3]``)."""
        zs = torch.cat([self.ae.encode(trim(ids[i : i + batch_size])[0]) for i in range(0, len(ids), batch_size)])
        self.z_mean.copy_(zs.mean((0, 1)))
        self.z_std.copy_(zs.std((0, 1)).clamp_min(1e-4))
        self.prop_mean.copy_(props.mean(0))
        self.prop_std.copy_(props.std(0).clamp_min(1e-4))

    def normalise_props(self, props: Tensor) -> Tensor:
        return (props - self.prop_mean) / self.prop_std

    @torch.no_grad()
    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        """Batch -> standardised latents ``x [b, L, latent_dim]``; the raw ``props [b, 3]`` go to ``meta["props"]``
        (the module standardises them into ``cond`` in its ``condition`` hook)."""
        ids = trim(raw["enum_a"] if "enum_a" in raw else raw["target"])[0]
        z = (self.ae.encode(ids) - self.z_mean) / self.z_std  # [b, L, dz]
        meta = {"props": raw["props"]} if "props" in raw else {}
        return TokenBatch(x=z, context=raw.get("context"), context_mask=raw.get("context_mask"), meta=meta)

    @torch.no_grad()
    def decode(
        self, tokens: TokenBatch, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> list[str]:
        z = tokens.x * self.z_std + self.z_mean
        ids = self.ae.generate(z, self.max_len, temperature, generator)
        return [self.vocab.decode_ids(row.tolist()) for row in ids]
