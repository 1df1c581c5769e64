"""SELFIES autoencoders whose latent is invariant to SMILES enumeration (LDMol-style), and their tokenizer.

Two architectures (``LatentTokenizer(arch=...)``):

* ``sequence`` (:class:`SequenceAutoencoder`, the shipped one): one latent token per symbol slot of the *canonical*
  SELFIES; every SMILES of a molecule is canonicalised first, so enumeration invariance is exact. Loss:
  ``CE(decode(z + noise), canonical)``.
* ``pooled`` (:class:`SelfiesAutoencoder`): a randomised SMILES pooled into a few latent tokens, described below.

Pooled encoder: symbol embedding -> bi-GRU over the SELFIES of a *randomised* SMILES -> ``latent_tokens`` latent
tokens of width ``latent_dim`` (final states, or attention pooling of all states with one learned query per latent
token). Decoder: autoregressive GRU that writes the *canonical* SELFIES, teacher-forced in training, conditioned on
the latent (initial state and every input step). Training loss:

``CE(decode(z_a), canonical) + CE(decode(z_b), canonical) + w_nce * InfoNCE(z_a, z_b) + w_l2 * |z|^2``

where ``z_a``, ``z_b`` encode two different enumerations of the same molecule; InfoNCE (temperature ``tau``) pulls
enumerations of one molecule together and pushes other molecules of the batch apart. Gaussian noise of std
``latent_noise`` is added to ``z`` before decoding, which makes the decoder robust to the small errors of the latent
flow model. Latents are standardised (per channel, statistics stored as buffers) before the DiT sees them.

The SELFIES symbol set comes from the training data (:class:`~ditkit_molecules.data.SmilesDataModule`); a tokenizer
built without ``symbols`` has no network until :meth:`LatentTokenizer.set_symbols` gives it one (the latent module
does so when training starts and keeps the symbols in its checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

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
        layers: GRU layers (encoder and decoder).
        pool: ``last`` (final encoder states) or ``attention`` (one learned query per latent token over all states).
        dropout: dropout between GRU layers and on the decoder's outputs.
    """

    def __init__(
        self,
        vocab_size: int,
        latent_tokens: int = 4,
        latent_dim: int = 16,
        hidden: int = 256,
        embed: int = 64,
        layers: int = 1,
        pool: str = "last",
        dropout: float = 0.0,
    ):
        super().__init__()
        if pool not in ("last", "attention"):
            raise ValueError(f"SelfiesAutoencoder: pool={pool!r}: must be 'last' or 'attention'")
        self.latent_tokens, self.latent_dim, self.pool, self.layers = latent_tokens, latent_dim, pool, layers
        zdim = latent_tokens * latent_dim
        drop = dropout if layers > 1 else 0.0
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=SelfiesVocab.PAD)
        self.enc = nn.GRU(embed, hidden, num_layers=layers, batch_first=True, bidirectional=True, dropout=drop)
        if pool == "attention":
            self.queries = nn.Parameter(torch.randn(latent_tokens, 2 * hidden) / (2 * hidden) ** 0.5)
            self.to_z = nn.Linear(2 * hidden, latent_dim)
        else:
            self.to_z = nn.Linear(2 * layers * hidden, zdim)
        self.z_to_h = nn.Linear(zdim, layers * hidden)
        self.z_to_in = nn.Linear(zdim, embed)
        self.dec = nn.GRU(2 * embed, hidden, num_layers=layers, batch_first=True, dropout=drop)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, vocab_size)

    def encode(self, ids: Tensor) -> Tensor:
        """``ids [b, T]`` (``<bos> ... <eos> <pad>...``) -> latents ``z [b, L, latent_dim]``."""
        lengths = (ids != SelfiesVocab.PAD).sum(1).clamp_min(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        states, h = self.enc(packed)  # h: [2 * layers, b, hidden]
        if self.pool == "last":
            z = self.to_z(rearrange(h, "lk b h -> b (lk h)"))  # [b, L * dz]
            return rearrange(z, "b (l d) -> b l d", l=self.latent_tokens)
        y, _ = nn.utils.rnn.pad_packed_sequence(states, batch_first=True)  # [b, T', 2 * hidden]
        keep = (ids != SelfiesVocab.PAD)[:, : y.shape[1]]  # [b, T']
        scores = torch.einsum("ld,btd->blt", self.queries, y) / y.shape[-1] ** 0.5
        attn = scores.masked_fill(~keep[:, None], float("-inf")).softmax(-1)  # [b, L, T']
        return self.to_z(torch.einsum("blt,btd->bld", attn, y))

    def _start(self, z: Tensor) -> tuple[Tensor, Tensor]:
        zf = rearrange(z, "b l d -> b (l d)")
        h0 = rearrange(torch.tanh(self.z_to_h(zf)), "b (k h) -> k b h", k=self.layers).contiguous()
        return self.z_to_in(zf)[:, None], h0  # [b, 1, embed], [layers, b, hidden]

    def logits(self, z: Tensor, ids: Tensor) -> Tensor:
        """Teacher-forced next-symbol logits ``[b, T - 1, V]`` for targets ``ids[:, 1:]``."""
        zin, h0 = self._start(z)
        inp = ids[:, :-1]
        x = torch.cat([self.embed(inp), zin.expand(-1, inp.shape[1], -1)], -1)  # [b, T - 1, 2 * embed]
        lengths = (ids[:, 1:] != SelfiesVocab.PAD).sum(1).clamp_min(1).cpu()  # the recurrence stops at <eos>
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y, _ = self.dec(packed, h0)
        y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=inp.shape[1])
        return self.out(self.drop(y))

    @torch.no_grad()
    def generate(
        self, z: Tensor, max_len: int, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode latents ``z [b, L, dz]`` to ids ``[b, <= max_len + 1]`` (greedy when ``temperature == 0``)."""
        zin, h0 = self._start(z)

        def step(prev: Tensor, t: int, h: Tensor) -> tuple[Tensor, Tensor]:
            y, h = self.dec(torch.cat([self.embed(prev[:, None]), zin], -1), h)
            return self.out(y[:, -1]), h

        return decode_symbols(step, h0, z.shape[0], max_len + 1, temperature, generator, z.device)


def grouped_tokens(length: int, group: int, owner: str) -> int:
    """Latent tokens of ``length`` symbol slots at ``group`` slots per token: ``ceil(length / group)``.

    Raises:
        ValueError: ``group`` is not an integer >= 1 (naming ``owner``, the field and the value).
    """
    if not isinstance(group, int) or isinstance(group, bool) or group < 1:
        raise ValueError(f"{owner}: group={group!r}: must be an integer >= 1")
    return -(-length // group)


class SequenceAutoencoder(nn.Module):
    """Sequence-shaped latent autoencoder over canonical SELFIES (LDMol's per-symbol latent, optionally coarser).

    Encoder: symbol + position embedding -> non-causal transformer over the ``length`` symbol slots (symbols,
    ``<eos>``, padding; padded to a multiple of ``group``) -> one latent token of width ``latent_dim`` per ``group``
    adjacent slots, layer-normalised (unit scale, so the decoder's training noise has a fixed meaning). Decoder:
    latent token -> ``group`` slot states -> transformer over all slots (each slot sees the whole molecule) ->
    memory ``m [b, length, dim]``; an autoregressive GRU writes symbol ``t`` from the previous symbol and ``m_t``,
    teacher-forced in training.

    Args:
        vocab_size: number of symbols (incl. specials).
        length: symbol slots = the longest SELFIES + 1 (``<eos>``).
        latent_dim: width of each latent token.
        dim: transformer width.
        depth: transformer layers of the encoder and of the decoder's context.
        heads: attention heads.
        hidden: GRU width.
        embed: decoder symbol-embedding width.
        dropout: dropout in the transformers.
        group: symbol slots per latent token (1: one per symbol; ``ceil(length / group)`` latent tokens).
    """

    def __init__(
        self,
        vocab_size: int,
        length: int,
        latent_dim: int = 8,
        dim: int = 128,
        depth: int = 2,
        heads: int = 4,
        hidden: int = 256,
        embed: int = 64,
        dropout: float = 0.0,
        group: int = 1,
    ):
        super().__init__()
        self.length, self.latent_dim, self.group = length, latent_dim, group
        slots = grouped_tokens(length, group, "SequenceAutoencoder") * group  # symbol slots padded to whole groups

        def stack() -> nn.TransformerEncoder:
            layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

        self.enc_embed = nn.Embedding(vocab_size, dim)
        self.enc_pos = nn.Parameter(0.02 * torch.randn(slots, dim))
        self.encoder = stack()
        self.to_z = nn.Linear(group * dim, latent_dim)
        self.z_norm = nn.LayerNorm(latent_dim, elementwise_affine=False)
        self.from_z = nn.Linear(latent_dim, group * dim)
        self.dec_pos = nn.Parameter(0.02 * torch.randn(slots, dim))
        self.context = stack()
        self.embed = nn.Embedding(vocab_size, embed, padding_idx=SelfiesVocab.PAD)
        self.dec = nn.GRU(embed + dim, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def full(self, ids: Tensor) -> Tensor:
        """Right-pad (or cut) ``ids [b, T]`` to ``[b, length + 1]`` (``<bos>`` + the slots)."""
        n = self.length + 1
        if ids.shape[1] >= n:
            return ids[:, :n]
        return F.pad(ids, (0, n - ids.shape[1]), value=SelfiesVocab.PAD)

    def encode(self, ids: Tensor) -> Tensor:
        """``ids [b, T]`` (``<bos> ... <eos> <pad>...``) -> latents ``z [b, tokens, latent_dim]``."""
        slots = self.full(ids)[:, 1:]  # [b, length]: symbols, <eos>, padding
        slots = F.pad(slots, (0, self.enc_pos.shape[0] - self.length), value=SelfiesVocab.PAD)  # [b, n * g]
        h = self.encoder(self.enc_embed(slots) + self.enc_pos)  # [b, n * g, dim]
        h = rearrange(h, "b (n g) d -> b n (g d)", g=self.group)
        return self.z_norm(self.to_z(h))

    def memory(self, z: Tensor) -> Tensor:
        """Latents ``[b, tokens, latent_dim]`` -> decoder memory ``[b, length, dim]``."""
        h = rearrange(self.from_z(z), "b n (g d) -> b (n g) d", g=self.group)  # [b, n * g, dim]
        return self.context(h + self.dec_pos)[:, : self.length]

    def logits(self, z: Tensor, ids: Tensor) -> Tensor:
        """Teacher-forced logits ``[b, length, V]`` for targets ``full(ids)[:, 1:]``."""
        inp = self.full(ids)[:, :-1]  # [b, length]
        y, _ = self.dec(torch.cat([self.embed(inp), self.memory(z)], -1))
        return self.out(y)

    @torch.no_grad()
    def generate(
        self, z: Tensor, max_len: int, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> Tensor:
        """Decode latents ``z [b, tokens, dz]`` to ids ``[b, <= length]`` (greedy when ``temperature == 0``)."""
        m = self.memory(z)  # [b, length, dim]

        def step(prev: Tensor, t: int, h: Tensor | None) -> tuple[Tensor, Tensor]:
            y, h = self.dec(torch.cat([self.embed(prev), m[:, t]], -1)[:, None], h)
            return self.out(y[:, -1]), h

        return decode_symbols(step, None, z.shape[0], min(max_len + 1, self.length), temperature, generator, z.device)


def decode_symbols(
    step: Callable[[Tensor, int, Any], tuple[Tensor, Any]],
    state: Any,
    b: int,
    steps: int,
    temperature: float,
    generator: torch.Generator | None,
    device: torch.device | str,
) -> Tensor:
    """Autoregressive decoding of ``b`` sequences from ``<bos>`` until ``<eos>`` or ``steps`` symbols.

    Args:
        step: ``(previous ids [b], position, state) -> (logits [b, V], state)``.
        state: the decoder's initial state.
        b, steps: sequences and the most symbols each.
        temperature: sampling temperature (0: greedy).
        generator: RNG for sampling.
        device: where the ids live.

    Returns:
        ids ``[b, <= steps]``, ``<pad>`` after each ``<eos>``.
    """
    prev = torch.full((b,), SelfiesVocab.BOS, dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    out = []
    for t in range(steps):
        logit, state = step(prev, t, state)  # [b, V]
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
        prev = nxt
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
        latent_tokens, latent_dim, hidden, embed, layers, pool, dropout: autoencoder sizes
            (:class:`SelfiesAutoencoder`).
        latent_noise: std of the noise added to latents while training the decoder.
        nce_weight: weight of the enumeration InfoNCE term.
        temperature: InfoNCE temperature.
        l2_weight: weight of the latent L2 penalty.
        rec_views: decode the latents of both enumerations (2) or of the first only (1, half the decoder cost).
        arch: ``pooled`` (:class:`SelfiesAutoencoder`: a randomised SMILES -> ``latent_tokens`` pooled tokens,
            enumeration invariance learned by InfoNCE) or ``sequence`` (:class:`SequenceAutoencoder`: the canonical
            SELFIES -> one latent token per symbol slot, ``latent_tokens = max_len + 1``; enumeration invariance is
            exact, since every SMILES of a molecule is canonicalised first, so no InfoNCE term).
        depth, heads: transformer layers and heads of the ``sequence`` autoencoder (its width is ``hidden``).
        group: symbol slots per latent token of the ``sequence`` autoencoder (``latent_tokens =
            ceil((max_len + 1) / group)``).
        symbols: the SELFIES symbols (None: set later from the training data with :meth:`set_symbols`).
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
        layers: int = 1,
        pool: str = "last",
        dropout: float = 0.0,
        rec_views: int = 2,
        arch: str = "pooled",
        depth: int = 2,
        heads: int = 4,
        group: int = 1,
        symbols: Sequence[str] | None = None,
    ):
        super().__init__()
        self.max_len, self.latent_tokens, self.latent_dim = max_len, latent_tokens, latent_dim
        self.hidden, self.embed, self.latent_noise = hidden, embed, latent_noise
        self.nce_weight, self.temperature, self.l2_weight = nce_weight, temperature, l2_weight
        self.layers, self.pool, self.dropout = layers, pool, dropout
        if rec_views not in (1, 2):
            raise ValueError(f"LatentTokenizer: rec_views={rec_views!r}: must be 1 or 2")
        self.rec_views = rec_views
        if arch not in ("pooled", "sequence"):
            raise ValueError(f"LatentTokenizer: arch={arch!r}: must be 'pooled' or 'sequence'")
        self.arch, self.depth, self.heads = arch, depth, heads
        self.group = group
        tokens = grouped_tokens(max_len + 1, group, "LatentTokenizer")  # checked for either architecture
        if arch == "sequence":
            self.latent_tokens = tokens
        self.token_dim = latent_dim
        self.symbols: list[str] | None = None
        self.vocab: SelfiesVocab | None = None
        self.ae: SelfiesAutoencoder | None = None
        self.register_buffer("z_mean", torch.zeros(latent_dim))
        self.register_buffer("z_std", torch.ones(latent_dim))
        self.register_buffer("prop_mean", torch.zeros(3))
        self.register_buffer("prop_std", torch.ones(3))
        if symbols is not None:
            self.set_symbols(symbols)

    def set_symbols(self, symbols: Sequence[str]) -> None:
        """Fix the SELFIES symbol set and build the autoencoder for it (once).

        Raises:
            ValueError: the tokenizer already has another symbol set (naming the differences).
        """
        symbols = [str(t) for t in symbols]
        if self.symbols is not None:
            if symbols != self.symbols:
                extra, missing = sorted(set(symbols) - set(self.symbols)), sorted(set(self.symbols) - set(symbols))
                raise ValueError(
                    f"LatentTokenizer: the data's SELFIES symbols differ from the tokenizer's (new {extra}, missing "
                    f"{missing}); pass the tokenizer's symbols to the data module (data.symbols)"
                )
            return
        if not symbols or len(set(symbols)) != len(symbols):
            raise ValueError(f"LatentTokenizer: symbols={symbols!r}: must be a non-empty list without repeats")
        self.symbols = symbols
        self.vocab = SelfiesVocab(self.max_len, symbols)
        if self.arch == "sequence":
            self.ae = SequenceAutoencoder(
                len(self.vocab),
                self.max_len + 1,
                self.latent_dim,
                self.hidden,
                self.depth,
                self.heads,
                2 * self.hidden,
                self.embed,
                self.dropout,
                self.group,
            )
            return
        self.ae = SelfiesAutoencoder(
            len(self.vocab),
            self.latent_tokens,
            self.latent_dim,
            self.hidden,
            self.embed,
            self.layers,
            self.pool,
            self.dropout,
        )

    @property
    def input_key(self) -> str:
        """The batch key the encoder reads: ``target`` (canonical SELFIES) or ``enum_a`` (a randomised SMILES)."""
        return "target" if self.arch == "sequence" else "enum_a"

    def _need(self) -> SelfiesAutoencoder | SequenceAutoencoder:
        if self.ae is None:
            raise RuntimeError("LatentTokenizer: no SELFIES symbols yet; call set_symbols (done by the latent module)")
        return self.ae

    def ae_loss(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Autoencoder loss on a batch (``enum_a``, ``enum_b``, ``target``); returns ``loss`` and its parts."""
        ae = self._need()
        if isinstance(ae, SequenceAutoencoder):
            target = batch["target"]
            z = ae.encode(target)  # [b, L, dz]
            noisy = z + self.latent_noise * torch.randn(z.shape, generator=generator, device=z.device)
            logits = ae.logits(noisy, target)  # [b, L, V]
            tgt = ae.full(target)[:, 1:]
            rec = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=SelfiesVocab.PAD)
            keep = tgt != SelfiesVocab.PAD
            acc = ((logits.argmax(-1) == tgt) | ~keep).all(1).float().mean()
            return {"loss": rec, "rec": rec, "nce": torch.zeros_like(rec), "exact": acc}
        ids = trim(batch["enum_a"], batch["enum_b"], batch["target"])
        za, zb = ae.encode(ids[0]), ae.encode(ids[1])  # [b, L, dz] each
        target = ids[2]
        z = torch.cat([za, zb]) if self.rec_views == 2 else za
        noisy = z + self.latent_noise * torch.randn(z.shape, generator=generator, device=z.device)
        tgt = torch.cat([target, target]) if self.rec_views == 2 else target
        logits = ae.logits(noisy, tgt)  # [2b, T - 1, V]
        rec = F.cross_entropy(logits.transpose(1, 2), tgt[:, 1:], ignore_index=SelfiesVocab.PAD)
        nce = info_nce(za.flatten(1), zb.flatten(1), self.temperature)
        l2 = torch.cat([za, zb]).pow(2).mean()
        keep = tgt[:, 1:] != SelfiesVocab.PAD
        acc = ((logits.argmax(-1) == tgt[:, 1:]) | ~keep).all(1).float().mean()
        return {"loss": rec + self.nce_weight * nce + self.l2_weight * l2, "rec": rec, "nce": nce, "exact": acc}

    @torch.no_grad()
    def latents(self, ids: Tensor, batch_size: int = 512) -> Tensor:
        """Raw (unstandardised) latents ``[N, L, latent_dim]`` of id rows ``[N, T]``, in batches."""
        ae = self._need()
        return torch.cat([ae.encode(trim(ids[i : i + batch_size])[0]) for i in range(0, len(ids), batch_size)])

    @torch.no_grad()
    def fit_statistics(self, ids: Tensor, props: Tensor, batch_size: int = 512) -> None:
        """Set the latent and property standardisation from data (``ids [N, T]``, ``props [N, 3]``)."""
        zs = self.latents(ids, batch_size)
        self.z_mean.copy_(zs.mean((0, 1)))
        self.z_std.copy_(zs.std((0, 1)).clamp_min(1e-4))
        self.prop_mean.copy_(props.mean(0))
        self.prop_std.copy_(props.std(0).clamp_min(1e-4))

    def positions(self, b: int, device: torch.device | str | None = None) -> Tensor:
        """Latent token indices ``[b, L, 1]`` (long) for the DiT's learned positions (``learned_pos >= L``)."""
        idx = torch.arange(self.latent_tokens, device=device)
        return idx[None, :, None].expand(b, -1, -1)

    def normalise_props(self, props: Tensor) -> Tensor:
        return (props - self.prop_mean) / self.prop_std

    @torch.no_grad()
    def encode(self, raw: dict[str, Tensor]) -> TokenBatch:
        """Batch -> standardised latents ``x [b, L, latent_dim]``; the raw ``props [b, 3]`` go to ``meta["props"]``
        (the module standardises them into ``cond`` in its ``condition`` hook)."""
        key = self.input_key if self.input_key in raw else "target"
        ids = trim(raw[key])[0]
        z = (self._need().encode(ids) - self.z_mean) / self.z_std  # [b, L, dz]
        meta = {"props": raw["props"]} if "props" in raw else {}
        pos = self.positions(z.shape[0], z.device)
        return TokenBatch(x=z, pos=pos, context=raw.get("context"), context_mask=raw.get("context_mask"), meta=meta)

    @torch.no_grad()
    def decode_latents(
        self, z: Tensor, temperature: float = 0.0, generator: torch.Generator | None = None, batch_size: int = 512
    ) -> list[str]:
        """Raw latents ``[b, L, latent_dim]`` -> SMILES ('' where nothing decodes), in batches."""
        ae, vocab = self._need(), self.vocab
        out: list[str] = []
        for i in range(0, len(z), batch_size):
            ids = ae.generate(z[i : i + batch_size], self.max_len, temperature, generator)
            out += [vocab.decode_ids(row.tolist()) for row in ids]
        return out

    @torch.no_grad()
    def decode(
        self, tokens: TokenBatch, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> list[str]:
        """Standardised latent tokens -> SMILES ('' where nothing decodes)."""
        return self.decode_latents(tokens.x * self.z_std + self.z_mean, temperature, generator)
