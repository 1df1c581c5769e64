"""A general English lexicon: ``wordfreq``'s most frequent words plus the open corpus' names, in frequency order.
It is the word list of the probe's beam search (:mod:`ditkit_audio.ctcdecode`), never a corpus' own word list.

:class:`Lexicon` also corrects a word to the nearest lexicon word (Levenshtein distance up to 1 for words of up to
4 letters, 2 beyond; ties go to the more frequent word), found through deletion neighbourhoods (SymSpell), so a
50,000-word lexicon answers in microseconds per word. The probe's figures no longer use it: the beam search chooses
spellings and word boundaries together, which word-by-word correction cannot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from itertools import combinations


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions) between ``a`` and ``b``."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _deletes(word: str, k: int) -> set[str]:
    out = {word}
    for d in range(1, min(k, len(word) - 1) + 1):
        out |= {"".join(c for i, c in enumerate(word) if i not in drop) for drop in combinations(range(len(word)), d)}
    return out


class Lexicon:
    """Words in frequency order (most frequent first) with nearest-word correction.

    Args:
        words: lower-case words, most frequent first (the rank breaks ties).
        max_distance: the largest edit distance corrected (words of up to 4 letters: at most 1).
    """

    def __init__(self, words: Iterable[str], max_distance: int = 2):
        self.rank: dict[str, int] = {}
        for w in words:
            self.rank.setdefault(w.lower(), len(self.rank))
        self.max_distance = max_distance
        self.index: dict[str, list[str]] = {}
        for w in self.rank:
            for d in _deletes(w, max_distance):
                self.index.setdefault(d, []).append(w)

    def __contains__(self, word: str) -> bool:
        return word in self.rank

    def __len__(self) -> int:
        return len(self.rank)

    def correct(self, word: str) -> str:
        """``word`` if it is in the lexicon or nothing is close enough, else the nearest lexicon word."""
        if not word or word in self.rank:
            return word
        k = 1 if len(word) <= 4 else self.max_distance
        cands = {c for d in _deletes(word, k) for c in self.index.get(d, ())}
        best = None
        for c in cands:
            dist = levenshtein(word, c)
            if dist <= k and (best is None or (dist, self.rank[c]) < best[0]):
                best = ((dist, self.rank[c]), c)
        return word if best is None else best[1]

    def correct_text(self, text: str) -> str:
        """Every word of a lower-cased ``text`` corrected; punctuation dropped (CER / WER ignore it)."""
        return " ".join(self.correct(w) for w in re.findall(r"[a-z']+", text.lower()))


@functools.lru_cache(maxsize=4)
def english_lexicon(n_words: int = 50_000, extra: Sequence[str] = ()) -> Lexicon:
    """The ``n_words`` most frequent alphabetic English words of ``wordfreq`` plus the open corpus' names and cities
    and ``extra``."""
    from wordfreq import top_n_list

    from ditkit_audio.opencorpus import CITIES, FIRST_NAMES, SURNAMES

    words = [w for w in top_n_list("en", n_words) if w.replace("'", "").isalpha() and w.isascii()]
    return Lexicon([*words, *(w.lower() for w in FIRST_NAMES + SURNAMES + CITIES), *extra])


__all__ = ["Lexicon", "english_lexicon", "levenshtein"]
