"""Text side of TTS: normalisation, character / IPA-phoneme tokenizers with filler padding, a sentence generator for
the embedded corpus, and a sentence splitter for long inputs."""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Sequence

import torch
from torch import Tensor

from ditkit_audio.espeak import check_voice, espeak_ipa

DEFAULT_CHARS = " abcdefghijklmnopqrstuvwxyz'.,?!-;:"
"""Symbols of the character tokenizer (after :func:`normalize_text`)."""
DEFAULT_IPA = " .,?!-;:'abdefhijklmnoprstuvwxzæçðøŋœɐɑɒɔɕəɘɚɛɜɝɞɟɡɣɤɥɨɪɫɬɭɯɰɱɲɳɴɵɸɹɺɻɽɾʀʁʂʃʈʉʊʋʌʍʎʏʐʑʒʔʕʙʜʝʟʡʢʲˈˌːˑ̩̃̆̊θχᵻ‍"
"""Symbols of the phoneme tokenizer: the IPA that espeak-ng prints for English (plus punctuation)."""

PAD, FILLER = 0, 1
"""Index 0 pads text to the batch length; index 1 is F5-TTS's filler token that pads text to the audio length."""


def normalize_text(text: str) -> str:
    """Lower-case, map typographic quotes / dashes to ASCII, collapse whitespace: the tokenizer's own normalisation
    (training and sampling). Written text (digits, abbreviations, markup) is first read out by the front-end,
    :func:`ditkit_audio.normalize.normalize_text`, which synthesis applies before this."""
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2014", "-").replace("\u2013", "-").replace('"', "")
    return re.sub(r"\s+", " ", text).strip()


@functools.lru_cache(maxsize=65536)
def phonemize(text: str, voice: str = "en-us") -> str:
    """IPA phonemes of ``text`` from the espeak-ng command line (sentences joined by ``". "``).

    The text reaches espeak-ng on stdin, never as an argument (:mod:`ditkit_audio.espeak`), so a text that looks
    like an option (``-f/etc/hostname``) is phonemised as text.

    Raises:
        RuntimeError: espeak-ng is not installed or fails.
        ValueError: ``voice`` is not a plain voice name.
    """
    lines = espeak_ipa(text, voice)
    end = text.strip()[-1:] if text.strip()[-1:] in ".?!" else ""
    return ". ".join(lines) + end


class TextTokenizer:
    """Characters or IPA phonemes -> integer ids (0 = pad, 1 = filler, symbols from 2).

    Args:
        kind: ``"chars"`` (normalised characters) or ``"phonemes"`` (espeak-ng IPA of the text).
        symbols: the vocabulary; defaults to :data:`DEFAULT_CHARS` / :data:`DEFAULT_IPA`.
        voice: espeak-ng voice used for phonemisation.
        on_unknown: ``"error"`` raises naming the character and its position, ``"skip"`` drops it.
    """

    def __init__(
        self, kind: str = "chars", symbols: str | None = None, voice: str = "en-us", on_unknown: str = "error"
    ):
        if kind not in ("chars", "phonemes"):
            raise ValueError(f"TextTokenizer.kind={kind!r}: choose 'chars' or 'phonemes'")
        if on_unknown not in ("error", "skip"):
            raise ValueError(f"TextTokenizer.on_unknown={on_unknown!r}: choose 'error' or 'skip'")
        self.kind, self.voice, self.on_unknown = kind, check_voice(voice), on_unknown
        self.symbols = symbols if symbols is not None else (DEFAULT_CHARS if kind == "chars" else DEFAULT_IPA)
        if len(set(self.symbols)) != len(self.symbols):
            raise ValueError("TextTokenizer.symbols contains duplicates")
        self._index = {s: i + 2 for i, s in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        """Number of ids including pad and filler."""
        return len(self.symbols) + 2

    @property
    def space_id(self) -> int:
        """Id of the word separator ``" "`` (joins a voice prompt's ids to the target's)."""
        if " " not in self._index:
            raise ValueError("TextTokenizer: the vocabulary has no ' ' symbol")
        return self._index[" "]

    def to_symbols(self, text: str) -> str:
        """The symbol string the ids are made of (normalised text or its IPA)."""
        text = normalize_text(text)
        return phonemize(text, self.voice) if self.kind == "phonemes" else text

    def unknown(self, text: str) -> list[str]:
        """Symbols of ``text`` (after :meth:`to_symbols`) outside the vocabulary."""
        return sorted({c for c in self.to_symbols(text) if c not in self._index})

    def encode(self, text: str) -> list[int]:
        """Ids of one text.

        Raises:
            ValueError: a symbol is outside the vocabulary (``on_unknown="error"``); names it and its position.
        """
        sym = self.to_symbols(text)
        ids = []
        for i, c in enumerate(sym):
            if c in self._index:
                ids.append(self._index[c])
            elif self.on_unknown == "error":
                raise ValueError(
                    f"TextTokenizer: symbol {c!r} (U+{ord(c):04X}) at position {i} of {sym!r} is not "
                    f"in the {self.kind} vocabulary"
                )
        if not ids:
            raise ValueError(f"TextTokenizer: text {text!r} has no symbols in the vocabulary")
        return ids

    def encode_many(self, texts: Sequence[str], workers: int = 4) -> list[list[int]]:
        """:meth:`encode` of many texts (phonemisation runs ``workers`` espeak-ng processes at a time)."""
        if self.kind == "phonemes" and len(texts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max(1, workers)) as ex:
                list(ex.map(lambda t: phonemize(normalize_text(t), self.voice), texts))
        return [self.encode(t) for t in texts]

    def decode(self, ids: Sequence[int] | Tensor) -> str:
        """Symbols of ``ids`` (pad and filler dropped)."""
        ids = ids.tolist() if isinstance(ids, Tensor) else ids
        return "".join(self.symbols[i - 2] for i in ids if i >= 2)

    def batch(self, texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Padded ids ``[b, L]`` (pad 0) and lengths ``[b]``."""
        return self.pad([self.encode(t) for t in texts])

    @staticmethod
    def pad(seqs: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
        """Id lists -> padded ids ``[b, L]`` (pad 0) and lengths ``[b]``."""
        lens = torch.tensor([len(s) for s in seqs])
        out = torch.zeros(len(seqs), int(lens.max()), dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.tensor(s)
        return out, lens


def fill_to_frames(ids: Tensor, text_len: Tensor, frames: int) -> Tensor:
    """F5-TTS text padding: ids ``[b, L]`` -> ``[b, frames]`` with the filler token after each text.

    Text longer than ``frames`` is truncated (a duration that short cannot speak it anyway).
    """
    b = ids.shape[0]
    out = torch.full((b, frames), FILLER, dtype=torch.long, device=ids.device)
    n = min(frames, ids.shape[1])
    keep = torch.arange(n, device=ids.device)[None, :] < text_len[:, None]  # [b, n]
    out[:, :n] = torch.where(keep, ids[:, :n], out[:, :n])
    return out


def stretch_to_frames(
    text_len: Tensor,
    frames: Tensor,
    total: int,
    text_start: Tensor | None = None,
    frame_start: Tensor | None = None,
    weights: Tensor | None = None,
    tail: float | Tensor = 0.0,
) -> tuple[Tensor, Tensor]:
    """Text-to-frame stretching without an aligner: which symbol each frame falls on when a text of ``text_len``
    symbols is spread over ``frames`` frames in proportion to per-symbol weights (uniformly by default); the model
    corrects the local timing.

    With weights ``w`` (cumulative ``W_k``, total ``W``), frame ``j`` of the segment sits at ``c = (j + 1/2) W / F``
    and gets the symbol ``k`` with ``W_{k-1} <= c < W_k``, and its fractional position ``(c - W_{k-1}) / w_k`` inside
    it. Uniform weights give symbol ``floor((j + 1/2) L / F)``.

    Args:
        text_len: symbols per row ``[b]``.
        frames: frames per row ``[b]`` the text is spread over.
        total: number of output frames (>= ``frame_start + frames``).
        text_start, frame_start: optional ``[b]`` offsets of the segment (a voice prompt's text and frames come
            before it); frames outside the segment get index ``-1``.
        weights: optional expected frames per symbol ``[b, L]`` over the padded id sequence (e.g. fitted to sentence
            durations, :func:`fit_symbol_frames`); symbols with weight 0 get no frame of their own.
        tail: expected trailing silence (in the units of ``weights``) added to the segment's last symbol.

    Returns:
        ``index [b, total]`` long (symbol position in the padded id sequence, ``-1`` off the segment) and
        ``frac [b, total]`` float in ``[0, 1)``.
    """
    dev = text_len.device
    b = text_len.shape[0]
    t0 = torch.zeros(b, dtype=torch.long, device=dev) if text_start is None else text_start.long()
    f0 = torch.zeros(b, dtype=torch.long, device=dev) if frame_start is None else frame_start.long()
    n_sym = int((t0 + text_len).max()) if b else 0
    n_sym = max(n_sym, 1 if weights is None else weights.shape[1])
    k = torch.arange(n_sym, device=dev)[None]  # [1, L]
    seg = (k >= t0[:, None]) & (k < (t0 + text_len)[:, None])  # [b, L]
    w = torch.ones(b, n_sym, device=dev) if weights is None else weights[:, :n_sym].float().to(dev)
    last = (k == (t0 + text_len - 1)[:, None]) & seg
    w = (w + last.float() * torch.as_tensor(tail, dtype=torch.float32, device=dev)) * seg.float()
    cum = w.cumsum(1)  # [b, L]
    W = cum[:, -1:].clamp_min(1e-6)
    F_ = frames.float().clamp_min(1)[:, None]
    j = torch.arange(total, device=dev, dtype=torch.float32)[None] - f0.float()[:, None]  # [b, total]
    c = ((j + 0.5) * W / F_).clamp(0, None).minimum(W - 1e-6)
    idx = torch.searchsorted(cum.contiguous(), c.contiguous(), right=True)
    idx = idx.clamp(max=n_sym - 1).maximum(t0[:, None]).minimum((t0 + text_len - 1).clamp_min(0)[:, None])
    wk = torch.gather(w, 1, idx).clamp_min(1e-6)
    frac = ((c - (torch.gather(cum, 1, idx) - wk)) / wk).clamp(0, 1 - 1e-6)
    inside = (j >= 0) & (j < F_)
    index = torch.where(inside, idx, torch.full_like(idx, -1))
    return index, torch.where(inside, frac, torch.zeros_like(frac))


def fit_symbol_frames(
    ids: Sequence[Tensor], frames: Sequence[float], vocab: int, ridge: float = 100.0, min_ratio: float = 0.25
) -> tuple[Tensor, float]:
    """Expected frames per symbol and the trailing silence, fitted to sentence totals only (no alignment).

    Ridge least squares of ``frames_i ~ sum_s count_i(s) w_s + tail`` with ``w`` pulled towards the corpus mean
    frames per symbol (weight ``ridge``), so symbols that always co-occur (a stress mark and its vowel) stay near the
    mean and only well-determined ones (pauses at punctuation, long phonemes) move; weights are floored at
    ``min_ratio`` times the mean.

    Returns:
        ``weights [vocab]`` (the mean for unseen symbols, pad / filler included) and ``tail`` (>= 0).
    """
    n = len(ids)
    A = torch.zeros(n, vocab + 1, dtype=torch.float64)
    for i, s in enumerate(ids):
        A[i].index_add_(0, torch.as_tensor(s).long(), torch.ones(len(s), dtype=torch.float64))
    A[:, vocab] = 1.0
    y = torch.as_tensor(list(frames), dtype=torch.float64)
    mean = float(y.sum() / A[:, :vocab].sum().clamp_min(1))
    prior = torch.full((vocab + 1,), mean, dtype=torch.float64)
    prior[vocab] = 0.0
    reg = torch.full((vocab + 1,), float(ridge), dtype=torch.float64)
    reg[vocab] = 1e-6
    w = torch.linalg.solve(A.T @ A + torch.diag(reg), A.T @ y + reg * prior)
    return w[:vocab].clamp_min(min_ratio * mean).float(), max(float(w[vocab]), 0.0)


# ---------------------------------------------------------------------- sentence generator
_WORDS = {
    "det": ["the", "a", "every", "one", "that", "this", "my", "your", "some"],
    "adj": [
        "red",
        "green",
        "small",
        "quiet",
        "happy",
        "old",
        "bright",
        "cold",
        "young",
        "heavy",
        "gentle",
        "brave",
        "dark",
        "soft",
        "quick",
        "lazy",
        "tall",
        "clever",
        "strange",
        "warm",
    ],
    "noun": [
        "cat",
        "dog",
        "bird",
        "farmer",
        "teacher",
        "river",
        "garden",
        "window",
        "child",
        "horse",
        "city",
        "doctor",
        "boat",
        "forest",
        "king",
        "letter",
        "mountain",
        "painter",
        "table",
        "village",
    ],
    "verb": [
        "sees",
        "finds",
        "likes",
        "follows",
        "paints",
        "watches",
        "carries",
        "opens",
        "visits",
        "helps",
        "calls",
        "builds",
        "remembers",
        "brings",
        "holds",
    ],
    "ivp": ["sleeps", "sings", "waits", "runs away", "smiles", "laughs", "walks home", "falls asleep", "listens"],
    "adv": [
        "today",
        "slowly",
        "at night",
        "in the morning",
        "again",
        "quietly",
        "near the river",
        "after dinner",
        "every day",
        "once more",
    ],
    "num": ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve"],
}
_TEMPLATES = [
    "{det} {adj} {noun} {verb} {det} {noun} {adv}.",
    "{det} {noun} {ivp} {adv}.",
    "why does the {adj} {noun} {verb_base} the {noun}?",
    "{num} {adj} {noun}s {ivp_base} {adv}.",
    "the {noun} {verb} {num} {adj} {noun}s, and the {noun} {ivp}.",
    "{det} {adj} {noun} {ivp}!",
    "did the {noun} {ivp_base} {adv}?",
]


def _base(verb: str) -> str:
    head, *rest = verb.split(" ")
    if head.endswith("ies"):
        head = head[:-3] + "y"
    elif head.endswith(("ches", "shes", "sses")):
        head = head[:-2]
    else:
        head = head[:-1]
    return " ".join([head, *rest])


def generate_sentences(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct simple English sentences from a small grammar (deterministic in ``seed``).

    The small vocabulary (about 120 words) keeps the embedded corpus learnable by a tiny model on a CPU.
    """
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 100 * n + 1000:
            raise RuntimeError(f"generate_sentences: could only make {len(out)} distinct sentences of {n}")
        tpl = rng.choice(_TEMPLATES)

        def pick(m: re.Match) -> str:
            key = m.group(1)
            if key == "verb_base":
                return _base(rng.choice(_WORDS["verb"]))
            if key == "ivp_base":
                return _base(rng.choice(_WORDS["ivp"]))
            return rng.choice(_WORDS[key])

        s = re.sub(r"\{(\w+)\}", pick, tpl)
        s = s[0].upper() + s[1:]
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def split_sentences(text: str, max_chars: int = 120) -> list[str]:
    """Split ``text`` at sentence ends (``.?!;``); sentences still longer than ``max_chars`` split at commas,
    then at spaces. Every piece is non-empty and at most ``max_chars`` long (unless one word is longer)."""
    parts = [p.strip() for p in re.split(r"(?<=[.?!;])\s+", text.strip()) if p.strip()]
    out: list[str] = []
    for p in parts:
        while len(p) > max_chars:
            cut = p.rfind(", ", 0, max_chars)
            cut = p.rfind(" ", 0, max_chars) if cut <= 0 else cut + 1
            if cut <= 0:
                break
            out.append(p[:cut].strip())
            p = p[cut:].strip()
        if p:
            out.append(p)
    return out
