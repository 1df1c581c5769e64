"""Lexicon-constrained CTC beam search with a unigram English word prior, the decoding of the open-vocabulary probe.

A recogniser reads speech with a language model; greedy CTC decoding reads it letter by letter and mis-spells what it
hears as often as it mis-hears it. :class:`LexiconBeamDecoder` runs the flashlight-text beam search (through
``torchaudio.models.decoder.ctc_decoder``): every hypothesis is spelled by words of a general English lexicon
(``wordfreq``'s most frequent words, never a corpus' own word list), scored by the CTC log-likelihood plus
``lm_weight`` times the word's unigram log-probability plus ``word_score`` per word. The lexicon, its spellings and the
unigram ARPA model are written to a temporary folder when the decoder is built (about two seconds for 50,000 words);
nothing is downloaded.

Defaults were chosen on the validation split of the open corpus (``make data-tts-open``), never on its test split;
the figures around them are flat (``docs/audio-experiments.md``).
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class BeamConfig:
    """Settings of :class:`LexiconBeamDecoder` (stored in a probe's ``config.json`` as ``decoder``).

    Args:
        n_words: lexicon size (most frequent ``wordfreq`` English words plus the open corpus' names).
        beam: hypotheses kept per frame.
        lm_weight: weight of the unigram log-probability (natural log) of each word.
        word_score: score added per emitted word (counters the prior's preference for few, short words).
    """

    n_words: int = 50_000
    beam: int = 200
    lm_weight: float = 2.0
    word_score: float = 1.0

    def __post_init__(self) -> None:
        for name in ("n_words", "beam"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"BeamConfig.{name}={getattr(self, name)!r}: must be >= 1")
        if not math.isfinite(self.lm_weight) or self.lm_weight < 0:
            raise ValueError(f"BeamConfig.lm_weight={self.lm_weight!r}: must be finite and >= 0")
        if not math.isfinite(self.word_score):
            raise ValueError(f"BeamConfig.word_score={self.word_score!r}: must be finite")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (KenLM prints a loading banner and a progress bar there from C++)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class LexiconBeamDecoder:
    """CTC log-probs over a character vocabulary -> the best word sequence of the lexicon.

    Args:
        symbols: the recogniser's symbols for ids ``2..`` (id 0 is the CTC blank, id 1 the unused filler); the
            word separator is ``" "``. Letters and ``'`` spell words; every other symbol (punctuation) and the filler
            are folded into the blank, so punctuation neither helps nor hurts.
        config: lexicon size and beam search weights.
        extra_words: words added to the lexicon.

    Raises:
        ImportError: flashlight-text (the beam search behind torchaudio's decoder) is not installed.
    """

    def __init__(self, symbols: str, config: BeamConfig | None = None, extra_words: tuple[str, ...] = ()):
        try:
            from flashlight.lib.text import decoder as _  # noqa: F401
            from torchaudio.models.decoder import ctc_decoder
        except ImportError as e:  # pragma: no cover - flashlight-text ships with `make setup`
            raise ImportError("LexiconBeamDecoder needs flashlight-text (`pip install flashlight-text`)") from e
        from wordfreq import word_frequency

        from ditkit_audio.lexicon import english_lexicon

        if " " not in symbols:
            raise ValueError("LexiconBeamDecoder: the symbols have no word separator ' '")
        self.config = config or BeamConfig()
        ids = [i + 2 for i, s in enumerate(symbols) if s == " " or s == "'" or s.isalpha()]
        self.keep = torch.tensor([0, *ids])  # blank first, then the spelling symbols
        self.fold = torch.tensor([i for i in range(len(symbols) + 2) if i != 0 and i not in ids])
        tokens = ["<b>"] + ["|" if symbols[i - 2] == " " else symbols[i - 2] for i in ids]
        letters = set(tokens[1:])
        words = [w for w in english_lexicon(self.config.n_words).rank if set(w) <= letters]
        words += [w.lower() for w in extra_words if w and set(w.lower()) <= letters and w.lower() not in words]
        freq = [max(word_frequency(w, "en"), 1e-9) for w in words]
        total = sum(freq)
        with tempfile.TemporaryDirectory(prefix="ditkit-lexicon-") as tmp:
            lex, arpa = Path(tmp) / "lexicon.txt", Path(tmp) / "unigram.arpa"
            lex.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in words))  # a word ends at a separator
            # KenLM reads ARPA models of order >= 2: unigrams (log10 p, backoff 0) plus one bigram.
            lines = ["\\data\\", f"ngram 1={len(words) + 3}", "ngram 2=1", "", "\\1-grams:"]
            lines += ["-99\t<s>\t0", "0\t</s>\t0", "-9\t<unk>\t0"]
            lines += [f"{math.log10(f / total):.5f}\t{w}\t0" for w, f in zip(words, freq)]
            lines += ["", "\\2-grams:", "-1\t<s> </s>", "", "\\end\\", ""]
            arpa.write_text("\n".join(lines))
            with _quiet_native_stderr():
                self._decoder = ctc_decoder(
                    lexicon=str(lex),
                    tokens=tokens,
                    lm=str(arpa),
                    beam_size=self.config.beam,
                    beam_threshold=25.0,
                    lm_weight=self.config.lm_weight,
                    word_score=self.config.word_score,
                    blank_token="<b>",
                    sil_token="|",
                    unk_word="<unk>",
                )
        self.words = len(words)

    def decode(self, log_probs: Tensor) -> str:
        """The best lexicon transcript of one utterance.

        Args:
            log_probs: ``[t, vocab]`` CTC log-probabilities (one utterance, padding removed).

        Returns:
            Lower-case words joined by single spaces ("" for silence).
        """
        lp = log_probs.detach().float().cpu()
        blank = torch.logsumexp(torch.cat([lp[:, :1], lp[:, self.fold]], 1), 1, keepdim=True)
        emissions = torch.cat([blank, lp[:, self.keep[1:]]], 1)  # [t, 1 + spelling symbols]
        # One closing separator frame: a lexicon word is complete only at a separator, and speech may stop without one.
        end = torch.full((1, emissions.shape[1]), -30.0)
        end[0, 1] = 0.0
        emissions = torch.cat([emissions, end]).contiguous()[None]
        hyps = self._decoder(emissions)[0]
        return " ".join(hyps[0].words) if hyps else ""


__all__ = ["BeamConfig", "LexiconBeamDecoder"]
