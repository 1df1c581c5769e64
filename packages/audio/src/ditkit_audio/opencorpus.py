"""An open-vocabulary espeak-ng corpus: general English from a word-frequency list, many sentence forms, written
numbers / dates / money / abbreviations read out by the text front-end, several voices, rates and pitches; train /
validation / test splits that share no sentence form and only part of the vocabulary.

The vocabulary comes from ``wordfreq`` (its English frequency list ships inside the wheel, nothing downloads): the
most frequent alphabetic words, sorted into rough classes by their endings (``-ly`` adverbs, ``-ing`` forms, ``-ed``
forms, adjective and noun suffixes) and a general pool for the rest. Each sentence form (:data:`FORMS`) belongs to
one split; a stable hash keeps a share of the words (and names) out of training, so the test split holds words the
training split never says. Every sentence is stored written (``metadata.csv`` column 2) and spoken (column 3,
:func:`ditkit_audio.normalize.normalize_text`), the spoken form being what espeak-ng reads and what models learn.

The embedded corpus of :func:`ditkit_audio.data.synthesize_corpus` (the shipped model's) is unchanged.
"""

from __future__ import annotations

import functools
import json
import random
import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ditkit_audio.normalize import normalize_text
from ditkit_core.errors import atomic_save, atomic_write

OPEN_VOICES = ("en+f3", "en+m3", "en-us+f2", "en+m1", "en-gb-x-rp+f4", "en-us+m2")
"""espeak-ng voices of the open corpus (the embedded corpus' four plus a British and an American variant)."""
SPLITS = ("train", "val", "test")

# ---------------------------------------------------------------------- vocabulary
_BLOCK = frozenset(
    "fuck fucking fucked shit shitty bitch bitches cunt dick dicks pussy cock cocks porn porno nigga nigger niggas "
    "whore slut sluts rape raped rapist faggot fag fags tits boobs anal cum horny bastard asshole penis vagina sex "
    "sexy nude naked dildo cocaine heroin".split()
)
_NOUN_STRONG = ("tion", "sion", "ment", "ness", "ity", "ship", "ism", "hood")
_ADJ_END = ("ous", "ful", "ive", "able", "ible", "less", "ical", "ish", "ent", "ant", "ary", "ic", "al")
_NOUN_END = ("ence", "ance", "ist", "age", "ure", "dom", "er", "or")
_VOWEL = re.compile(r"[aeiouy]")
_CLUSTER = re.compile(r"[^aeiouy]{4}")

FIRST_NAMES = tuple(
    "Anna Ben Clara David Emma Frank Grace Henry Irene Jack Karen Leo Maria Noah Olivia Peter Quinn Rachel Sam Tina "
    "Victor Wendy Xavier Yusuf Zoe Aaron Bella Carlos Diana Ethan Fatima George Hannah Ivan Julia Kevin Laura Martin "
    "Nina Oscar Paula Robert Sofia Thomas Ursula Vincent William Amelia Daniel Elena Felix Hugo Isabel James Lucy "
    "Michael Nora Patrick Rosa Simon Theresa".split()
)
SURNAMES = tuple(
    "Smith Johnson Brown Taylor Miller Wilson Moore Clark Lewis Walker Hall Allen Young King Wright Scott Green Baker "
    "Adams Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart Morris Murphy "
    "Cook Rogers Morgan Cooper Peterson Bailey Reed Kelly Howard Cox Ward Richardson Watson Brooks Wood James Bennett "
    "Gray Hughes Price Sanders Myers Long Ross Foster".split()
)
CITIES = tuple(
    "London Paris Berlin Madrid Chicago Boston Denver Seattle Dublin Vienna Prague Lisbon Oslo Toronto Sydney Cairo "
    "Tokyo Lima Rome Athens Warsaw Helsinki Geneva Houston Phoenix Atlanta Miami Glasgow Leeds Bristol".split()
)
_TITLES = ("Dr.", "Mr.", "Mrs.", "Ms.", "Prof.")
_ACRONYMS = ("FBI", "NASA", "BBC", "UN", "EU", "UK", "US", "CEO", "NATO", "IBM", "DNA", "GPS", "TV", "PC", "UNESCO")
_MONTHS = "January February March April May June July August September October November December".split()
_UNITS = ("km", "kg", "mph", "cm", "mm", "°C", "miles", "meters")


@dataclass(frozen=True)
class Vocabulary:
    """Word pools of the generator: ``pools[class] -> words`` (classes ``noun adj adv ing past word``, plus ``name
    surname city``)."""

    pools: dict[str, tuple[str, ...]]

    @property
    def size(self) -> int:
        """Distinct words over all pools."""
        return len({w.lower() for ws in self.pools.values() for w in ws})

    def restrict(self, keep: Any) -> Vocabulary:
        """The pools with only the words for which ``keep(word)`` is true (a pool never ends empty)."""
        out = {}
        for k, ws in self.pools.items():
            kept = tuple(w for w in ws if keep(w))
            out[k] = kept or ws[:1]
        return Vocabulary(out)


def word_class(word: str) -> str:
    """A rough class from the ending: ``adv`` (``-ly``), ``ing``, ``past`` (``-ed``), ``adj``, ``noun`` or ``word``
    (anything else; used where any word fits, in lists and quotations)."""
    if len(word) >= 5 and word.endswith("ly"):
        return "adv"
    if len(word) >= 6 and word.endswith("ing"):
        return "ing"
    if len(word) >= 5 and word.endswith("ed"):
        return "past"
    if len(word) >= 5 and word.endswith(_NOUN_STRONG):
        return "noun"
    if len(word) >= 5 and word.endswith(_ADJ_END):
        return "adj"
    if len(word) >= 4 and word.endswith(_NOUN_END):
        return "noun"
    return "word"


@functools.lru_cache(maxsize=8)
def open_vocabulary(n_words: int = 12000, skip: int = 100) -> Vocabulary:
    """The ``n_words`` most frequent English words of ``wordfreq`` (after the ``skip`` most frequent, which the sentence
    forms already say) that are plain lower-case ASCII, at least 3 letters with a vowel and no 4-consonant run, and
    not on a short block list; sorted into :func:`word_class` pools.

    Raises:
        ImportError: ``wordfreq`` is not installed (it is a dependency of ``ditkit-audio``).
    """
    try:
        from wordfreq import top_n_list
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ImportError(
            "open_vocabulary needs wordfreq: pip install wordfreq (its word lists ship in the wheel)"
        ) from e
    names = {w.lower() for w in FIRST_NAMES + SURNAMES + CITIES}
    words = []
    for w in top_n_list("en", 4 * n_words)[skip:]:
        if (
            w.isascii()
            and w.isalpha()
            and w.islower()
            and len(w) >= 3
            and _VOWEL.search(w)
            and not _CLUSTER.search(w)
            and w not in _BLOCK
            and w not in names
        ):
            words.append(w)
        if len(words) == n_words:
            break
    pools: dict[str, list[str]] = {k: [] for k in ("noun", "adj", "adv", "ing", "past", "word")}
    for w in words:
        pools[word_class(w)].append(w)
    pools["noun"] += pools["word"]  # most unclassified frequent words are nouns or read fine in a noun slot
    out = {k: tuple(v) for k, v in pools.items()}
    out.update(name=FIRST_NAMES, surname=SURNAMES, city=CITIES)
    return Vocabulary(out)


def held_out(word: str, share: float, salt: str = "test") -> bool:
    """Whether ``word`` is kept out of training: a stable hash (crc32 of ``salt:word``) below ``share``."""
    return zlib.crc32(f"{salt}:{word.lower()}".encode()) % 10_000 < share * 10_000


# ---------------------------------------------------------------------- sentence forms
FORMS: dict[str, tuple[str, ...]] = {
    "train": (
        # statements
        "{Name} {past} the {noun} {adv}.",
        "The {adj} {noun} was {past} near the {noun}.",
        "My {noun} is more {adj} than your {noun}.",
        "{Title} {Surname} said that the {noun} would be {adj}.",
        "We spent the whole afternoon {ing} with {Name}.",
        "There is a {adj} {noun} in {City}, and nobody knows why.",
        # questions
        "Did {Name} really say that the {noun} was {adj}?",
        "Why is the {noun} so {adj} today?",
        "Where did you put the {noun}, {Name}?",
        "Have you ever seen a {noun} {ing} {adv}?",
        # lists
        "Please bring {list} to the {noun}.",
        "The report covers {list}.",
        # subordinate clauses
        "Although the {noun} was {adj}, {Name} kept {ing} {adv}.",
        "When {Name} {past} the {noun}, everyone started {ing}.",
        "If the {noun} stays {adj}, we will need a new {noun}.",
        "The {noun} that {Name} {past} last week is still {adj}.",
        # very short
        "{Adj}!",
        "{Noun}?",
        "Yes, {Name}.",
        "{Adv}.",
        # long
        "After {ing} the {noun} for {n} hours, {Name} {Surname} decided that the {adj} {noun} near {City} was not "
        "worth the trouble, so {pron} {past} it {adv} and went home with {list_long} in a {adj} bag.",
        "Nobody in {City} could explain why the {adj} {noun} had been {past} so {adv}, but {Title} {Surname} believed "
        "that the {noun} and the {noun} were {ing} together long before anyone noticed the {adj} {noun}.",
        # numbers, dates, money, abbreviations
        "{Name} paid {money} for the {noun} on {date}.",
        "The meeting about the {noun} starts at {time} in room {n}.",
        "About {pct} of the {noun} was {past} in {year}.",
        "The {adj} {noun} is {measure} from {City}.",
        "The {acro} reported {big} cases of {noun}.",
        "It was the {ord} {noun} of the year.",
    ),
    "val": (
        "{Name} thinks the {noun} looks {adj}.",
        "Could you ask {Name} about the {adj} {noun}?",
        "We found {list} under the {noun}.",
        "Because the {noun} was {past}, {Name} stayed {adv}.",
        "{Noun}, {Name}!",
        "While {Name} was {ing} in {City}, the {adj} {noun} {past} {adv} and the {noun} slowly turned into a {adj} "
        "{noun} that nobody in the whole {noun} had ever {past} before.",
        "{Title} {Surname} sent {money} to {City} at {time}.",
        "By {year}, {pct} of every {noun} was {adj}.",
    ),
    "test": (
        "Honestly, the {noun} {past} {Name} more than the {noun} did.",
        "What would you do with a {adj} {noun} and {n} {noun} boxes?",
        "Her notes mention {list}, nothing else.",
        "Unless {Name} finds the {noun}, the {adj} {noun} cannot be {past}.",
        "Only the {noun}.",
        "Long before the {noun} was {past} in {City}, {Name} {Surname} had spent {n} years {ing} the {adj} {noun} "
        "with {list} and a {adj} {noun} that everyone called {adj}.",
        "On {date}, the {acro} moved {money} to {City}.",
        "Since {year}, the {noun} has grown by {pct} to {big} {noun} units, {measure} wide.",
    ),
}
"""Sentence forms per split: every kind (statements, questions, lists, subordinate clauses, very short and 30+ word
sentences, numbers / dates / money / abbreviations) in each split, no form shared between splits."""

_SLOT = re.compile(r"\{(\w+)\}")


def _list(rng: random.Random, voc: Vocabulary, k: int) -> str:
    items = [rng.choice(voc.pools["noun"]) for _ in range(k)]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _money(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return f"${rng.randint(1, 999)}.{rng.randint(1, 99):02d}"
    if kind == 1:
        return f"{rng.choice('$£€')}{rng.randint(2, 5000):,}"
    if kind == 2:
        return f"${rng.randint(1, 9)}.{rng.randint(1, 9)} {rng.choice(['million', 'billion'])}"
    return f"{rng.choice('£€')}{rng.randint(1, 99)}"


def _date(rng: random.Random) -> str:
    y, m, d = rng.randint(1950, 2039), rng.randint(1, 12), rng.randint(1, 28)
    kind = rng.randrange(3)
    if kind == 0:
        return f"{_MONTHS[m - 1]} {d}, {y}"
    if kind == 1:
        return f"{m}/{d}/{y}"
    return f"{y}-{m:02d}-{d:02d}"


def _time(rng: random.Random) -> str:
    h = rng.randint(1, 12)
    kind = rng.randrange(3)
    if kind == 0:
        return f"{h}:{rng.choice([0, 5, 10, 15, 20, 30, 45, 50]):02d}"
    return f"{h} {'pm' if kind == 1 else 'am'}"


def _ord(rng: random.Random) -> str:
    n = rng.randint(1, 99)
    suf = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suf}"


def fill_form(form: str, rng: random.Random, voc: Vocabulary) -> str:
    """One written sentence from ``form``: each ``{slot}`` drawn from ``voc`` or a number / date / money generator;
    a capitalised slot (``{Adj}``) is capitalised; the first letter is upper-case."""

    def pick(m: re.Match) -> str:
        key = m.group(1)
        low = key.lower()
        if low in voc.pools:
            w = rng.choice(voc.pools[low])
        elif low == "list":
            w = _list(rng, voc, rng.randint(3, 5))
        elif low == "list_long":
            w = _list(rng, voc, rng.randint(6, 8))
        elif low == "title":
            w = rng.choice(_TITLES)
        elif low == "pron":
            w = rng.choice(["she", "he", "they"])
        elif low == "n":
            w = str(rng.randint(2, 99))
        elif low == "big":
            w = f"{rng.randint(100, 999_999):,}" if rng.random() < 0.6 else str(rng.randint(100, 9999))
        elif low == "money":
            w = _money(rng)
        elif low == "date":
            w = _date(rng)
        elif low == "time":
            w = _time(rng)
        elif low == "year":
            w = str(rng.randint(1900, 2030))
        elif low == "pct":
            w = f"{rng.randint(1, 99)}%" if rng.random() < 0.7 else f"{rng.randint(1, 20)}.{rng.randint(1, 9)}%"
        elif low == "measure":
            w = f"{rng.randint(2, 500)} {rng.choice(_UNITS)}"
        elif low == "ord":
            w = _ord(rng)
        elif low == "acro":
            w = rng.choice(_ACRONYMS)
        else:
            raise KeyError(f"fill_form: unknown slot {{{key}}} in {form!r}")
        return w[0].upper() + w[1:] if key[0].isupper() else w

    s = _SLOT.sub(pick, form)
    return s[0].upper() + s[1:]


@dataclass(frozen=True)
class OpenSentence:
    """A generated sentence: ``written`` (digits, symbols, abbreviations), ``spoken`` (what is said: the text
    front-end's reading of ``written``), ``form`` (its index in ``FORMS[split]``) and ``split``."""

    written: str
    spoken: str
    form: int
    split: str


def generate_open_sentences(
    n: int,
    seed: int = 0,
    *,
    split: str = "train",
    vocabulary: Vocabulary | None = None,
    heldout_share: float = 0.2,
    all_words: bool = False,
    exclude: Sequence[str] = (),
) -> list[OpenSentence]:
    """``n`` distinct sentences of the forms of ``split`` (deterministic in ``seed``).

    Args:
        n: sentences.
        seed: random seed.
        split: ``train``, ``val`` or ``test``: which :data:`FORMS` are used.
        vocabulary: word pools (default :func:`open_vocabulary`).
        heldout_share: share of the words (and names) that only ``val`` / ``test`` say (:func:`held_out`); ``train``
            draws from the rest unless ``all_words``.
        all_words: draw ``train`` sentences from the whole vocabulary (the recogniser's own corpus).
        exclude: spoken sentences that must not be generated (e.g. another corpus').

    Raises:
        ValueError: unknown split; RuntimeError: not enough distinct sentences.
    """
    if split not in FORMS:
        raise ValueError(f"generate_open_sentences: split={split!r}; choose one of {', '.join(FORMS)}")
    voc = vocabulary or open_vocabulary()
    if split == "train" and not all_words:
        voc = voc.restrict(lambda w: not held_out(w, heldout_share))
    rng = random.Random(f"{split}:{seed}")
    forms = FORMS[split]
    seen = set(exclude)
    out: list[OpenSentence] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 20 * n + 1000:
            raise RuntimeError(f"generate_open_sentences: could only make {len(out)} distinct sentences of {n}")
        k = rng.randrange(len(forms))
        written = fill_form(forms[k], rng, voc)
        spoken = normalize_text(written)
        if spoken and spoken not in seen:
            seen.add(spoken)
            out.append(OpenSentence(written, spoken, k, split))
    return out


# ---------------------------------------------------------------------- statistics
def spoken_words(text: str) -> list[str]:
    """Lower-case words of a spoken text (punctuation dropped, inner apostrophes and hyphens kept)."""
    return re.findall(r"[a-z]+(?:['-][a-z]+)*", text.lower())


def oov_rate(train: Sequence[str], test: Sequence[str]) -> dict[str, float | int]:
    """Out-of-vocabulary figures of ``test`` texts against ``train`` texts (spoken words).

    Returns:
        ``token_oov`` (share of test word tokens never said in train), ``type_oov`` (share of distinct test words),
        ``train_vocab``, ``test_vocab`` (distinct words) and ``test_tokens``.
    """
    seen = {w for t in train for w in spoken_words(t)}
    toks = [w for t in test for w in spoken_words(t)]
    types = set(toks)
    return {
        "token_oov": round(sum(w not in seen for w in toks) / max(len(toks), 1), 4),
        "type_oov": round(sum(w not in seen for w in types) / max(len(types), 1), 4),
        "train_vocab": len(seen),
        "test_vocab": len(types),
        "test_tokens": len(toks),
    }


def corpus_hours(root: str | Path) -> float:
    """Hours of audio in ``root/wavs/*.wav`` (from the headers)."""
    import soundfile as sf

    total = 0.0
    for w in sorted(Path(root, "wavs").glob("*.wav")):
        info = sf.info(str(w))
        total += info.frames / info.samplerate
    return total / 3600


# ---------------------------------------------------------------------- synthesis
def speak_sentences(
    out_dir: str | Path,
    sentences: Sequence[OpenSentence],
    *,
    seed: int = 0,
    prefix: str = "OP",
    voices: tuple[str, ...] = OPEN_VOICES,
    rates: tuple[int, int] = (130, 190),
    pitches: tuple[int, int] = (30, 70),
    workers: int = 1,
) -> Path:
    """Speak ``sentences`` (their spoken form) with espeak-ng into the LJSpeech layout: ``metadata.csv``
    (``id|written|spoken``), ``wavs/<id>.wav``, ``speakers.csv`` (``id|voice|rate|pitch``) and ``forms.csv``
    (``id|split|form``). Voice, rate and pitch are drawn per sentence from ``seed``.

    Raises:
        RuntimeError: espeak-ng is missing or fails on a sentence.
    """
    from ditkit_audio.espeak import espeak_exe, espeak_wav

    espeak_exe("speak_sentences")
    out = Path(out_dir)
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"voices:{seed}")
    jobs = [
        (f"{prefix}{i:06d}", s, rng.choice(voices), rng.randint(*rates), rng.randint(*pitches))
        for i, s in enumerate(sentences)
    ]

    def run(job: tuple[str, OpenSentence, str, int, int]) -> None:
        uid, s, v, r, p = job
        wav = out / "wavs" / f"{uid}.wav"
        if not wav.is_file():  # an interrupted run resumes
            atomic_save(wav, lambda tmp: espeak_wav(s.spoken, tmp, voice=v, rate=r, pitch=p))

    with ThreadPoolExecutor(max(1, workers)) as ex:
        list(ex.map(run, jobs))
    with atomic_write(out / "speakers.csv") as f:
        f.write("".join(f"{u}|{v}|{r}|{p}\n" for u, _, v, r, p in jobs).encode())
    with atomic_write(out / "forms.csv") as f:
        f.write("".join(f"{u}|{s.split}|{s.form}\n" for u, s, *_ in jobs).encode())
    with atomic_write(out / "metadata.csv") as f:  # last: its presence marks a complete corpus
        f.write("".join(f"{u}|{s.written}|{s.spoken}\n" for u, s, *_ in jobs).encode())
    return out


def open_splits(
    sizes: dict[str, int], seed: int = 0, heldout_share: float = 0.2, vocabulary: Vocabulary | None = None
) -> dict[str, list[OpenSentence]]:
    """The sentences of each split (``sizes``: ``{"train": n, "val": n, "test": n}``), no spoken sentence twice."""
    out: dict[str, list[OpenSentence]] = {}
    seen: list[str] = []
    for split in SPLITS:
        if sizes.get(split, 0) > 0:
            out[split] = generate_open_sentences(
                sizes[split], seed, split=split, vocabulary=vocabulary, heldout_share=heldout_share, exclude=seen
            )
            seen += [s.spoken for s in out[split]]
    return out


def synthesize_open_corpus(
    out_dir: str | Path,
    sizes: dict[str, int] | None = None,
    *,
    seed: int = 0,
    heldout_share: float = 0.2,
    workers: int = 1,
) -> dict[str, Any]:
    """The open corpus: one LJSpeech folder per split (``out_dir/{train,val,test}``) and ``out_dir/stats.json``
    (vocabulary size, out-of-vocabulary rate of val / test against train, hours and sentences per split).

    Returns:
        The statistics written to ``stats.json``.
    """
    sizes = sizes or {"train": 4000, "val": 200, "test": 200}
    out = Path(out_dir)
    splits = open_splits(sizes, seed, heldout_share)
    for split, sents in splits.items():
        speak_sentences(out / split, sents, seed=seed + SPLITS.index(split), prefix=split[:2].upper(), workers=workers)
    return write_stats(out, splits, heldout_share)


def write_stats(out: Path, splits: dict[str, list[OpenSentence]], heldout_share: float) -> dict[str, Any]:
    """Statistics of the split corpus (see :func:`synthesize_open_corpus`) written to ``out/stats.json``."""
    train = [s.spoken for s in splits.get("train", [])]
    stats: dict[str, Any] = {"vocabulary_pool": open_vocabulary().size, "heldout_share": heldout_share}
    for split, sents in splits.items():
        words = [w for s in sents for w in spoken_words(s.spoken)]
        entry: dict[str, Any] = {
            "sentences": len(sents),
            "forms": len({s.form for s in sents}),
            "words": len(words),
            "vocabulary": len(set(words)),
            "max_words": max((len(spoken_words(s.spoken)) for s in sents), default=0),
            "hours": round(corpus_hours(out / split), 3) if (out / split / "wavs").is_dir() else 0.0,
        }
        if split != "train" and train:
            entry["oov_vs_train"] = oov_rate(train, [s.spoken for s in sents])
        stats[split] = entry
    with atomic_write(out / "stats.json") as f:
        f.write(json.dumps(stats, indent=2).encode())
    return stats


def word_strings(n: int, seed: int = 0, vocabulary: Vocabulary | None = None) -> list[OpenSentence]:
    """``n`` grammar-free sentences: 2-20 words drawn from every pool of the whole vocabulary, a comma now and then,
    ending in ``.`` or ``?`` (``split`` ``"free"``, ``form`` -1). Nothing in them predicts a word from its
    neighbours, so a recogniser trained on them has to read the letters from the sound."""
    voc = vocabulary or open_vocabulary()
    rng = random.Random(f"free:{seed}")
    words = [w for k in ("noun", "adj", "adv", "ing", "past", "name", "surname", "city") for w in voc.pools[k]]
    out = []
    for _ in range(n):
        k = rng.randint(2, 20)
        ws = [rng.choice(words) + ("," if rng.random() < 0.08 else "") for _ in range(k)]
        text = " ".join(ws).rstrip(",") + rng.choice(".?")
        out.append(OpenSentence(text[0].upper() + text[1:], normalize_text(text[0].upper() + text[1:]), -1, "free"))
    return out


def synthesize_probe_corpus(
    out_dir: str | Path, n: int = 12000, *, seed: int = 1, free_share: float = 0.0, workers: int = 1
) -> Path:
    """The recogniser's own corpus: ``n`` sentences of the training forms over the whole vocabulary (so it learns to
    spell words the TTS training split never says), with another seed than the TTS corpus (``speak_sentences``
    layout in ``out_dir``); ``free_share`` of them grammar-free word strings (:func:`word_strings`). It never uses the
    validation or test forms; the evaluation scores the test split."""
    n_free = round(n * free_share)
    sents = generate_open_sentences(n - n_free, seed, split="train", all_words=True) + word_strings(n_free, seed)
    if n_free:  # without word strings the corpus is the one the figures were measured on
        random.Random(f"order:{seed}").shuffle(sents)
    return speak_sentences(out_dir, sents, seed=seed + 100, prefix="PR", workers=workers)


__all__ = [
    "CITIES",
    "FIRST_NAMES",
    "FORMS",
    "OPEN_VOICES",
    "SPLITS",
    "SURNAMES",
    "OpenSentence",
    "Vocabulary",
    "corpus_hours",
    "fill_form",
    "generate_open_sentences",
    "held_out",
    "oov_rate",
    "open_splits",
    "open_vocabulary",
    "speak_sentences",
    "spoken_words",
    "synthesize_open_corpus",
    "synthesize_probe_corpus",
    "word_class",
    "word_strings",
    "write_stats",
]
