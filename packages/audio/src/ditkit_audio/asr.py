"""A small CTC speech recogniser used as an intelligibility probe (CER / WER of generated vs ground-truth speech).

Mel input (normalised like the TTS tokens) -> 2 conv layers (time stride 2, or 1 for fast speech: CTC needs at least
one output frame per character plus one between doubled letters) -> transformer encoder -> character logits; CTC loss
from torch. Trained on ground-truth espeak-ng speech for a fixed number of steps. Decoding is greedy, or a
lexicon-constrained beam search with an English word prior (:mod:`ditkit_audio.ctcdecode`) when the probe's config
names one (``decoder``), so every figure read with a probe uses that probe's own decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ditkit_audio.ctcdecode import BeamConfig, LexiconBeamDecoder
from ditkit_audio.data import LengthBucketBatchSampler, mel_batch
from ditkit_audio.model import sinusoidal
from ditkit_audio.text import TextTokenizer


class CTCProbe(nn.Module):
    """Log-mel ``[b, f, n_mels]`` -> CTC log-probs ``[b, ceil(f / stride), vocab]`` (blank = 0).

    Args:
        n_mels: mel bands.
        vocab: output ids (the :class:`TextTokenizer` vocabulary; pad id 0 serves as the CTC blank).
        dim, depth, heads: transformer size.
        mel_mean, mel_std: input normalisation.
        stride: time stride of the first convolution (1 or 2); 2 gives 20 outputs per second at the 40 Hz mel rate,
            fewer than the ~15 characters per second of fast speech plus blanks between doubled letters.
        upsample: CTC outputs per encoder frame (the head predicts ``upsample`` consecutive outputs): ``stride=2,
            upsample=2`` keeps 40 outputs per second at half the encoder's cost of ``stride=1``.
        decoder: ``None`` for greedy decoding, or :class:`ditkit_audio.ctcdecode.BeamConfig` fields (a dict) for the
            lexicon beam search used by :meth:`transcribe`.
    """

    def __init__(
        self,
        n_mels: int = 64,
        vocab: int = 37,
        dim: int = 144,
        depth: int = 3,
        heads: int = 4,
        mel_mean: float = -5.5,
        mel_std: float = 2.5,
        stride: int = 2,
        upsample: int = 1,
        decoder: dict[str, Any] | None = None,
    ):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"CTCProbe: stride={stride!r}; choose 1 or 2")
        if upsample not in (1, 2, 3, 4):
            raise ValueError(f"CTCProbe: upsample={upsample!r}; choose 1 to 4")
        self.upsample = upsample
        self.decoder = None if decoder is None else BeamConfig(**decoder).to_dict()
        self._beam: Any = None  # the LexiconBeamDecoder, built on first use
        self.n_mels, self.vocab, self.dim, self.depth, self.heads = n_mels, vocab, dim, depth, heads
        self.mel_mean, self.mel_std, self.stride = mel_mean, mel_std, stride
        self.conv = nn.Sequential(
            nn.Conv1d(n_mels, dim, 5, stride=stride, padding=2),
            nn.GELU(),
            nn.Conv1d(dim, dim, 5, padding=2),
            nn.GELU(),
        )
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.out = nn.Linear(dim, vocab * upsample)

    def out_lengths(self, frames: Tensor) -> Tensor:
        """CTC output frames for ``frames`` mel frames: ``ceil(frames / stride) * upsample``."""
        return (frames + self.stride - 1) // self.stride * self.upsample

    def forward(self, mel: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Returns log-probs ``[b, t * upsample, vocab]`` and output lengths ``[b]``."""
        x = ((mel - self.mel_mean) / self.mel_std) * mask[..., None]
        h = self.conv(x.transpose(1, 2)).transpose(1, 2)  # [b, t, dim]
        frames = mask.sum(1)
        keep = torch.arange(h.shape[1], device=h.device)[None] < ((frames + self.stride - 1) // self.stride)[:, None]
        h = h + sinusoidal(h.shape[1], self.dim, h.device)
        h = self.encoder(h, src_key_padding_mask=~keep)
        logits = rearrange(self.out(h), "b t (u v) -> b (t u) v", u=self.upsample)
        return logits.log_softmax(-1), self.out_lengths(frames)

    @torch.no_grad()
    def transcribe(
        self, mels: list[Tensor], text: TextTokenizer, batch_size: int = 32, greedy: bool = False
    ) -> list[str]:
        """Transcripts of log-mels ``[f_i, n_mels]``: the probe's decoder (``greedy``: greedy CTC whatever it is)."""
        self.eval()
        beam = None if greedy or self.decoder is None else self.beam_decoder(text)
        out = []
        for k in range(0, len(mels), batch_size):
            mel, mask = mel_batch(mels[k : k + batch_size])
            lp, lens = self(mel, mask)
            for row, n in zip(lp, lens):
                if beam is not None:
                    out.append(beam.decode(row[: int(n)]))
                    continue
                ids = torch.unique_consecutive(row[: int(n)].argmax(-1))
                out.append(text.decode(ids[ids >= 2]))
        return out

    def beam_decoder(self, text: TextTokenizer) -> LexiconBeamDecoder:
        """The probe's :class:`~ditkit_audio.ctcdecode.LexiconBeamDecoder` over ``text``'s symbols (built once)."""
        if self.decoder is None:
            raise ValueError("CTCProbe: this probe decodes greedily (its config has no 'decoder')")
        if self._beam is None or self._beam[0] != text.symbols:
            self._beam = (text.symbols, LexiconBeamDecoder(text.symbols, BeamConfig(**self.decoder)))
        return self._beam[1]


def train_probe(
    items: list[dict[str, Any]],
    text: TextTokenizer,
    *,
    steps: int = 1500,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    bucket: int = 0,
    log_every: int = 100,
    callback: Callable[[int, CTCProbe], None] | None = None,
    callback_every: int = 0,
    **model_kw: Any,
) -> CTCProbe:
    """Train :class:`CTCProbe` on ``[{"mel", "text"}]`` for exactly ``steps`` optimiser steps (one-cycle schedule over
    them; the result depends on the data, ``seed`` and ``steps`` only, never on the machine's speed) with
    SpecAugment-style time/frequency masking and a little Gaussian noise on the log-mel (so it tolerates vocoded /
    generated speech). ``bucket`` > 0 draws batches of similar length (:class:`LengthBucketBatchSampler`, epoch after
    epoch), so long sentences do not pad whole batches; 0 draws ``batch_size`` random utterances per step.
    ``callback(step, model)`` runs after every ``callback_every`` steps (e.g. to score a validation folder; the model
    is put back in training mode afterwards). ``model_kw``: :class:`CTCProbe` settings (``dim``, ``depth``,
    ``heads``, ``stride``, ``upsample``)."""
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"train_probe: steps={steps!r}: must be an integer >= 1")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = CTCProbe(n_mels=items[0]["mel"].shape[1], vocab=text.vocab_size, **model_kw)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    ids = [torch.tensor(text.encode(it["text"])) for it in items]
    batches = _batches(items, batch_size, bucket, seed, g)
    t0 = time.perf_counter()
    model.train()
    for step in range(steps):
        idx = next(batches)
        mel, mask = mel_batch([items[i]["mel"] for i in idx])
        mel = mel + 0.3 * torch.randn(mel.shape, generator=g)
        for b in range(mel.shape[0]):  # two frequency masks and one time mask per utterance
            for _ in range(2):
                f0 = int(torch.randint(0, mel.shape[2] - 8, (1,), generator=g))
                mel[b, :, f0 : f0 + int(torch.randint(0, 8, (1,), generator=g))] = -11.5
            t0_ = int(torch.randint(0, max(1, int(mask[b].sum()) - 10), (1,), generator=g))
            mel[b, t0_ : t0_ + int(torch.randint(0, 10, (1,), generator=g))] = -11.5
        tgt = [ids[i] for i in idx]
        lp, lens = model(mel, mask)
        loss = F.ctc_loss(
            lp.transpose(0, 1), torch.cat(tgt), lens, torch.tensor([len(t) for t in tgt]), blank=0, zero_infinity=True
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if log_every and step % log_every == 0:
            print(f"[asr-probe] step {step} ctc {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        if callback is not None and callback_every and (step + 1) % callback_every == 0 and step + 1 < steps:
            rng = torch.get_rng_state()
            callback(step + 1, model.eval())
            torch.set_rng_state(rng)  # the callback does not change the training run
            model.train()
    return model.eval()


def _batches(items: list[dict[str, Any]], batch_size: int, bucket: int, seed: int, g: torch.Generator) -> Any:
    """Endless index batches: length-bucketed epochs (``bucket`` > 0) or independent random draws."""
    if bucket <= 0:
        while True:
            yield torch.randint(len(items), (batch_size,), generator=g).tolist()
    lengths = [int(it["mel"].shape[0]) for it in items]
    sampler = LengthBucketBatchSampler(lengths, min(batch_size, len(items)), bucket, seed, num_replicas=1, rank=0)
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from iter(sampler)
        epoch += 1


def score_probe(model: CTCProbe, items: list[dict[str, Any]], text: TextTokenizer) -> dict[str, Any]:
    """CER / WER (:func:`ditkit_audio.metrics.error_rate`) of the probe's transcripts of ``[{"mel", "text"}]``
    against their texts, with the utterance count, the decoding and one example ``[reference, heard]``; a probe with
    a beam decoder also gets ``cer_greedy`` / ``wer_greedy`` (the same log-probs decoded greedily) beside them."""
    from ditkit_audio.metrics import error_rate

    refs = [it["text"] for it in items]
    mels = [it["mel"].float() for it in items]
    hyps = model.transcribe(mels, text)
    out: dict[str, Any] = {
        "cer": round(error_rate(refs, hyps), 4),
        "wer": round(error_rate(refs, hyps, "word"), 4),
        "decoder": model.decoder or "greedy",
    }
    if model.decoder is not None:
        greedy = model.transcribe(mels, text, greedy=True)
        out.update(cer_greedy=round(error_rate(refs, greedy), 4), wer_greedy=round(error_rate(refs, greedy, "word"), 4))
    out.update(utterances=len(items), example=[refs[0], hyps[0]] if refs else [])
    return out


def save_probe(model: CTCProbe, directory: str | Path) -> Path:
    """``config.json`` + ``model.safetensors`` of the probe, each written atomically."""
    from ditkit_audio.wavtools import save_weights, write_json

    d = Path(directory)
    keys = ("n_mels", "vocab", "dim", "depth", "heads", "mel_mean", "mel_std", "stride", "upsample", "decoder")
    cfg = {k: getattr(model, k) for k in keys}
    save_weights(model, d / "model.safetensors")
    write_json(d / "config.json", cfg)
    return d


def load_probe(directory: str | Path) -> CTCProbe:
    """A probe saved by :func:`save_probe`; a damaged or mismatched file raises a DataError naming it.

    Raises:
        ModelNotFoundError: the directory lacks ``config.json`` or ``model.safetensors``.
    """
    from ditkit_audio.wavtools import ModelNotFoundError, build_checked, read_json

    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise ModelNotFoundError("config.json or model.safetensors missing (run `make train-asr-probe`)", path=d)
    return build_checked(CTCProbe, read_json(d / "config.json"), d / "config.json", d / "model.safetensors")
