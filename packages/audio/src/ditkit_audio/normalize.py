"""Open-vocabulary text front-end of TTS: written text -> the words a speaker says (US English).

:func:`normalize_text` strips markup, splits sentences (:func:`split_sentences`) and rewrites each one in a fixed
order (repeated until nothing changes): typography, shouting, web addresses, abbreviations, dotted initialisms,
symbols, then the numeric entities of
:mod:`ditkit_audio.numerals` (dates, times, currency, percentages, units, decades, ordinals, years, ranges,
fractions, plain numbers), Roman numerals, acronyms, and last the characters (accents folded, anything unspeakable
dropped with a :class:`TextNormalizationWarning` naming it). The output holds only ASCII letters, spaces and
``' . , ? ! - ; :``, so every symbol is in the character vocabulary of :class:`~ditkit_audio.text.TextTokenizer`.
Ordinary words keep their case and plain sentences come back unchanged, so text already written out (the embedded
corpus) is not altered and normalising twice gives the same text.

Acronyms (words of two or more capitals): the ones in :data:`SPELLED_ACRONYMS` are spelled (``US`` -> ``U S``,
``IT`` -> ``I T``), the ones in :data:`WORD_ACRONYMS` are read as words (``NASA`` -> ``Nasa``); the rest are read
as a word when they look pronounceable (four letters or more, a vowel, no three consonants in a row, a
pronounceable start: ``CERN``, ``IKEA``) and spelled otherwise (``NYPD``, ``HTTP``). A sentence written all in
capitals is shouting: its words are lower-cased except the listed acronyms that are not also English words.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
import warnings

from ditkit_audio import numerals
from ditkit_audio.numerals import MONTH_ABBREVIATIONS, MONTHS, spell


class TextNormalizationWarning(UserWarning):
    """Something in the text could not be spoken and was dropped (markup, emoji, unknown characters)."""


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside this module and :mod:`ditkit_audio.numerals` (the caller)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") in (__name__, numerals.__name__):
        frame, level = frame.f_back, level + 1
    return level


def _warn(what: str, items: list[str]) -> None:
    items = list(dict.fromkeys(items))
    shown = ", ".join(items[:8]) + (f" and {len(items) - 8} more" if len(items) > 8 else "")
    warnings.warn(f"normalize_text: dropped {what}: {shown}", TextNormalizationWarning, stacklevel=_caller_level())


# ---------------------------------------------------------------------- markup
_TAG = re.compile(r"<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>", re.S)
_MD_LINK = re.compile(r"!?\[([^\]\n]*)\]\(([^)\s]*)\)")
_MD_EMPHASIS = re.compile(r"(?<![\w*_~])(\*{1,3}|_{1,3}|~~)(?=\S)(.{1,200}?)(?<=\S)\1(?![\w*])")
_MD_CODE = re.compile(r"`([^`\n]*)`")
_MD_LINE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+)", re.M)


def strip_markup(text: str) -> str:
    """HTML tags, comments and entities, and markdown emphasis, code, links, headings, quotes and bullets removed
    (their text kept: ``**bold**`` -> ``bold``, ``[here](http://x)`` -> ``here``); warns naming what was dropped."""
    dropped: list[str] = []

    def drop(m: re.Match) -> str:
        dropped.append(repr(m[0][:40]))
        return " "

    text = _TAG.sub(drop, text)
    text = html.unescape(text)

    def link(m: re.Match) -> str:
        dropped.append(f"link {m[2][:40]!r}")
        return m[1]

    def emph(m: re.Match) -> str:
        dropped.append(repr(m[1]))
        return m[2]

    text = _MD_LINK.sub(link, text)
    for _ in range(3):  # nested emphasis (***x***, **_x_**)
        text = _MD_EMPHASIS.sub(emph, text)
    text = _MD_CODE.sub(lambda m: (dropped.append("'`'"), m[1])[1], text)
    text = _MD_LINE.sub(lambda m: (dropped.append(repr(m[0].strip())), "")[1], text)
    if dropped:
        _warn("markup", dropped)
    return text


# ---------------------------------------------------------------------- sentence splitting
TITLES = {
    "Mr": "Mister",
    "Mrs": "Missus",
    "Ms": "Miz",
    "Dr": "Doctor",
    "Prof": "Professor",
    "St": "Saint",
    "Mt": "Mount",
    "Capt": "Captain",
    "Gen": "General",
    "Lt": "Lieutenant",
    "Col": "Colonel",
    "Sgt": "Sergeant",
    "Rev": "Reverend",
    "Hon": "Honorable",
    "Gov": "Governor",
    "Sen": "Senator",
    "Rep": "Representative",
    "Pres": "President",
    "Fr": "Father",
}
"""Abbreviations before a name (never the end of a sentence). ``St.`` and ``Dr.`` after a name or a house number
are ``Street`` and ``Drive``."""
ABBREVIATIONS = {
    "e.g.": "for example",
    "i.e.": "that is",
    "vs.": "versus",
    "approx.": "approximately",
    "etc.": "et cetera",
    "Jr.": "Junior",
    "Sr.": "Senior",
    "Inc.": "Incorporated",
    "Ltd.": "Limited",
    "Co.": "Company",
    "Corp.": "Corporation",
    "Dept.": "Department",
    "Ave.": "Avenue",
    "Rd.": "Road",
    "Blvd.": "Boulevard",
    "Fig.": "Figure",
    "fig.": "figure",
    "Vol.": "Volume",
    "vol.": "volume",
    "No.": "number",
    "no.": "number",
}
"""Other abbreviations (case-sensitive). ``No.`` / ``no.`` only before a number."""
_NEVER_END = {"e.g.", "i.e.", "vs.", "approx.", "fig.", "vol.", "Fig.", "Vol."}
_MAYBE_END = {"etc.", "Jr.", "Sr.", "Inc.", "Ltd.", "Co.", "Corp.", "Dept.", "Ave.", "Rd.", "Blvd.", "a.m.", "p.m."}


def _ends_sentence(token: str, after: str, before: str = "") -> bool:
    """Does ``token`` (ending in ``.``, ``?`` or ``!``) end a sentence between ``before`` and ``after``?"""
    if not token.endswith("."):
        return True
    word = token.lstrip("\"'([")
    nxt = after.lstrip("\"'([")
    upper_next = nxt[:1].isupper()
    if word.endswith("..."):  # an ellipsis ends a sentence only before a capital
        return upper_next
    if word[:-1] in TITLES or word in _NEVER_END:
        return False
    if word in ("No.", "no.") or (word[:-1] in MONTH_ABBREVIATIONS and word[:-1] not in MONTHS):
        return not nxt[:1].isdigit()
    if re.fullmatch(r"[A-Z]\.", word):  # an initial (J. R. R. Tolkien), unless it ends spelled letters (the U S.)
        prev = before.split()[-1:]
        return bool(prev) and (re.fullmatch(r"[A-Z]", prev[0]) is not None or prev[0] == "eh")
    if word in _MAYBE_END or re.fullmatch(r"(?:[A-Za-z]\.){2,}", word):  # etc., p.m., U.S.
        return upper_next
    return True


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: a cut after ``.``, ``?`` or ``!`` (and closing quotes or brackets) followed by white
    space, except after titles (``Dr.``, ``St.``, ``Mr.``), ``e.g.`` / ``i.e.`` / ``vs.``, single-letter initials
    (``J. R. R. Tolkien``; but the last of spelled letters ends one: ``the U S. Then``), ``No.`` or a month
    abbreviation before a number; after ``etc.``, ``a.m.`` / ``p.m.``, ``Inc.``, dotted initialisms (``U.S.``) and
    ellipses only when a capital follows. Decimals (``3.14``) never hold a space. Line breaks inside a sentence are
    spaces; blank lines end a sentence.

    Returns:
        the stripped, non-empty sentences in order.
    """
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        block = re.sub(r"\s+", " ", block).strip()
        start = 0
        for m in re.finditer(r"[.?!]+[\"'\u201d\u2019)\]]*(?= )", block):
            first = block.rfind(" ", 0, m.start()) + 1  # the token the punctuation ends
            token = block[first : m.end()].rstrip("\"'\u201d\u2019)]")
            if _ends_sentence(token, block[m.end() :].lstrip(), block[:first]):
                out.append(block[start : m.end()].strip())
                start = m.end()
        out.append(block[start:].strip())
    return [s for s in out if s]


# ---------------------------------------------------------------------- abbreviations
def _is_name(s: str, start: int) -> bool:
    """Is the word before ``start`` a house number, or a capitalised word that is not the first of the sentence?"""
    words = s[:start].split()
    word = words[-1].strip(",") if words else ""
    if word[:1].isdigit():
        return True
    return len(words) >= 2 and word[:1].isupper() and word[1:].islower()


def expand_abbreviations(s: str) -> str:
    """``Dr. Smith`` -> ``Doctor Smith``, ``Elm Dr.`` -> ``Elm Drive``; ``St. Louis`` -> ``Saint Louis``, ``221 Baker
    St.`` -> ``221 Baker Street``; ``Mr.`` / ``Mrs.`` / ``Ms.`` / ``Prof.`` and the other :data:`TITLES`; ``e.g.``,
    ``i.e.``, ``vs.``, ``etc.`` and the other :data:`ABBREVIATIONS`. A period that also ends the sentence stays."""

    def title(m: re.Match) -> str:
        abbr, nxt = m[1], m.string[m.end() :].lstrip()
        after_name = _is_name(m.string, m.start())
        name_next = nxt[:1].isupper()
        if abbr == "St" and (after_name or not name_next):
            word = "Street"
        elif abbr == "Dr" and after_name and not name_next:
            word = "Drive"
        else:
            word = TITLES[abbr]
        return word + ("." if not nxt else "")

    s = re.sub(r"\b(" + "|".join(TITLES) + r")\.(?=\s|$)", title, s)

    def other(m: re.Match) -> str:
        abbr, rest = m[0], m.string[m.end() :]
        if abbr in ("No.", "no.") and not re.match(r"\s*[#\d]", rest):
            return abbr
        return ABBREVIATIONS[abbr] + ("." if not rest.strip() else "")

    keys = "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True))
    return re.sub(rf"(?<![\w.])(?:{keys})(?=[\s,;:)]|$)", other, s)


def expand_initials(s: str) -> str:
    """Dotted initialisms spelled (``U.S.A.`` -> ``U S A``, ``a.m.`` stays for :func:`expand_times`) and the
    period after single-letter initials dropped before a name (``J. R. R. Tolkien`` -> ``J R R Tolkien``)."""

    def dotted(m: re.Match) -> str:
        if m[0].lower() in ("a.m.", "p.m."):
            return m[0]
        end = "." if not m.string[m.end() :].strip() else ""
        return spell(m[0]) + end

    s = re.sub(r"(?<![\w.])(?:[A-Za-z]\.){2,}(?![\w])", dotted, s)
    return re.sub(r"\b([A-Z])\.(?=\s+[A-Z])", r"\1", s)


# ---------------------------------------------------------------------- web, symbols
def expand_web(s: str) -> str:
    """``https://www.example.com/a`` -> ``www dot example dot com`` (the path dropped with a warning),
    ``ann@example.org`` -> ``ann at example dot org``."""
    paths: list[str] = []

    def host(name: str) -> str:
        return " dot ".join(p for p in name.split(".") if p)

    def url(m: re.Match) -> str:
        if m["path"] and m["path"] != "/":
            paths.append(repr(m["path"][:40]))
        return f" {host(m['host'])} "

    email = r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    s = re.sub(email, lambda m: " {} at {} ".format(*map(host, m[0].split("@"))), s)
    s = re.sub(r"\b(?:https?://|(?=www\.))(?P<host>[\w-]+(?:\.[\w-]+)+)(?P<path>/[^\s]*)?", url, s)
    if paths:
        _warn("web address paths", paths)
    return s


SYMBOLS = {"&": "and", "+": "plus", "=": "equals", "@": "at", "%": "percent"}
"""Symbols said as a word (outside numbers: ``50%`` is a percentage first)."""


def expand_symbols(s: str) -> str:
    """``#5`` -> ``number 5``, ``~5`` -> ``about 5``, ``&`` / ``+`` / ``=`` / ``@`` as words, ``and/or`` ->
    ``and or``, ``/`` between words -> ``slash``."""
    s = re.sub(r"#\s?(?=\d)", " number ", s)
    s = re.sub(r"~\s?(?=\d)", " about ", s)
    s = re.sub(r"\band/or\b", "and or", s)
    s = re.sub(r"(?<=[A-Za-z])/(?=[A-Za-z])", " slash ", s)
    return re.sub(r"(?<!\d)%|[&+=@]", lambda m: f" {SYMBOLS[m[0]]} ", s)


# ---------------------------------------------------------------------- roman numerals, acronyms
ROMAN_CUES = frozenset("War Chapter Part Volume Act Book Phase Type Class Level Stage Section Round Episode".split())
"""Words after which a Roman numeral is a cardinal (``World War II`` -> ``World War two``); after other capitalised
words it is a regnal ordinal (``Elizabeth II`` -> ``Elizabeth the second``)."""
_ROMAN = {"I": 1, "V": 5, "X": 10}


def roman(text: str) -> int | None:
    """Value of a Roman numeral written with I, V and X (``XIV`` -> 14), None if it is not well-formed."""
    if not re.fullmatch(r"X{0,3}(?:IX|IV|V?I{0,3})", text) or not text:
        return None
    total = 0
    for a, b in zip(text, text[1:] + " "):
        v = _ROMAN[a]
        total += -v if b != " " and _ROMAN[b] > v else v
    return total


def expand_roman(s: str) -> str:
    """Roman numerals of two or more letters after a capitalised word (see :data:`ROMAN_CUES`)."""

    def sub(m: re.Match) -> str:
        n = roman(m[2])
        if n is None:
            return m[0]
        said = numerals.cardinal(n) if m[1] in ROMAN_CUES else "the " + numerals.ordinal(n)
        return f"{m[1]} {said}"

    return re.sub(r"\b([A-Z][a-z]+) ([IVX]{2,})\b", sub, s)


SPELLED_ACRONYMS = frozenset(
    "US UK EU UN USA IT AI ID OK TV PC CD DVD FBI CIA NSA BBC CNN CEO CFO DNA RNA HIV UFO VIP ATM DIY FAQ PDF URL "
    "USB CPU GPU RAM API SQL HTML HTTP IBM BMW NYC NBA NFL MIT UCLA".split()
)
"""Acronyms spelled letter by letter."""
WORD_ACRONYMS = frozenset("ISO NASA NATO UNESCO UNICEF NAFTA OPEC FIFA COVID AIDS LASER RADAR SCUBA SONAR GIF".split())
"""Acronyms read as a word."""
_COMMON = frozenset("US IT AM IS IN ON OR AN AS AT BE BY DO GO HE IF ME MY NO OF OK SO TO UP WE ID".split())
_ONSETS = frozenset("BL BR CH CL CR DR FL FR GL GR KN PH PL PR SC SH SK SL SM SN SP ST SW TH TR TW WH WR".split())


def pronounceable(word: str) -> bool:
    """Does an all-capitals word read as a word (the rule for acronyms in neither list)?"""
    w = word.upper()
    if len(w) < 4 or not re.search(r"[AEIOU]", w) or re.search(r"[^AEIOUY]{3}", w):
        return False
    return bool(re.match(r"[AEIOUY]|.[AEIOUY]", w)) or w[:2] in _ONSETS


def read_acronym(word: str) -> str:
    """``"US"`` -> ``"U S"``, ``"NASA"`` -> ``"Nasa"``, ``"HTTP"`` -> ``"H T T P"`` (see the module docstring)."""
    if word in WORD_ACRONYMS or (word not in SPELLED_ACRONYMS and pronounceable(word)):
        return word.capitalize()
    return spell(word)


def expand_acronyms(s: str) -> str:
    """Words of two or more capitals through :func:`read_acronym`; a plural ``CDs`` -> ``C D's``."""

    def sub(m: re.Match) -> str:
        said = read_acronym(m[1])
        return said + ("'s" if m[2] and " " in said else m[2])

    return re.sub(r"\b([A-Z]{2,})(s?)\b", sub, s)


def is_shouting(s: str) -> bool:
    """A sentence without lower-case letters and with three or more words of two or more letters."""
    return not re.search(r"[a-z]", s) and len(re.findall(r"[A-Z]{2,}", s)) >= 3


def unshout(s: str) -> str:
    """A shouted sentence (:func:`is_shouting`) in ordinary case: words lower-cased, month names and titles
    capitalised (so the date and abbreviation rules apply), the listed acronyms that are not also English words
    (``FBI``, ``NASA``; not ``US``, ``IT``) kept; other sentences unchanged."""
    if not is_shouting(s):
        return s
    keep = (SPELLED_ACRONYMS - _COMMON) | WORD_ACRONYMS

    def word(m: re.Match) -> str:
        w, cap = m[0], m[0].capitalize()
        if w in keep:
            return w
        if cap in MONTHS or cap in MONTH_ABBREVIATIONS or cap in TITLES:
            return cap
        return w.lower()

    return re.sub(r"[A-Za-z]+", word, s)


# ---------------------------------------------------------------------- characters
_FOLD = {"ß": "ss", "æ": "ae", "Æ": "Ae", "œ": "oe", "Œ": "Oe", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d"}
_FOLD |= {"ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "ı": "i"}
_PUNCT = {
    "\u2018": "'",
    "\u2019": "'",
    "\u02bc": "'",
    "`": "'",
    "\u00b4": "'",
    "\u201c": "",
    "\u201d": "",
    "\u201e": "",
    "\u00ab": "",
    "\u00bb": "",
    '"': "",
    "\u2014": ", ",
    "\u2015": ", ",
    "\u2013": "-",
    "\u2010": "-",
    "\u2011": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "(": ", ",
    ")": ", ",
    "[": ", ",
    "]": ", ",
    "{": ", ",
    "}": ", ",
    "\u00bf": "",
    "\u00a1": "",
}
"""Typography mapped to the plain punctuation of the vocabulary (brackets and dashes become pauses)."""
ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ '.,?!-;:")
"""The characters :func:`normalize_text` may return."""


def typography(s: str) -> str:
    """Typographic quotes, dashes, ellipses, brackets and spaces -> :data:`ALLOWED` punctuation (quotes dropped)."""
    s = unicodedata.normalize("NFC", s)
    return "".join(_PUNCT.get(c, c) for c in s)


def clean_characters(s: str) -> str:
    """Accents folded (``café`` -> ``cafe``, ``straße`` -> ``strasse``), white space unified, every other character
    outside :data:`ALLOWED` dropped with a :class:`TextNormalizationWarning` naming it."""
    out, dropped = [], []
    for c in s:
        if c in ALLOWED:
            out.append(c)
            continue
        if c.isspace():
            out.append(" ")
            continue
        folded = _FOLD.get(c) or "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
        if folded and all(d in ALLOWED for d in folded):
            out.append(folded)
        else:
            dropped.append(f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, 'unnamed')})")
            out.append(" ")
    if dropped:
        _warn("characters", dropped)
    return "".join(out)


def tidy(s: str) -> str:
    """One space between words, none before punctuation, a spaced dash as a comma, no repeated or leading pause
    marks, ``...`` -> ``,`` inside a sentence and ``.`` at its end."""
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s-+\s", ", ", s)
    s = re.sub(r"\s-+(?=[.,?!;:]|$)|^-+", "", s)
    s = re.sub(r"\.{2,}(?=\s*$)", ".", s)
    s = re.sub(r"\.{2,}", ",", s)
    s = re.sub(r"\s+([.,?!;:])", r"\1", s)
    s = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", s)
    s = re.sub(r"[,;:]\s*([.?!])", r"\1", s)
    s = re.sub(r"([.?!])[.?!]+", r"\1", s)
    s = re.sub(r"(?<=[,;:])(?=[A-Za-z])", " ", s)
    s = re.sub(r"^[\s.,;:!?-]+", "", s)
    s = re.sub(r"[,;:\s]+$", "", s)
    return re.sub(r"\s+", " ", s).strip()


# ---------------------------------------------------------------------- the front-end
_PASSES = (
    typography,
    unshout,
    expand_web,
    expand_abbreviations,
    expand_initials,
    expand_symbols,
    numerals.expand_dates,
    numerals.expand_times,
    numerals.expand_currency,
    numerals.expand_percent,
    numerals.expand_units,
    numerals.expand_decades,
    numerals.expand_ordinals,
    numerals.expand_years,
    numerals.expand_ranges,
    numerals.expand_fractions,
    numerals.expand_numbers,
    expand_roman,
    expand_acronyms,
    clean_characters,
    tidy,
)
"""The rewriting passes of one sentence, in order."""


def normalize_sentence(sentence: str, rounds: int = 3) -> str:
    """One sentence through every pass of :data:`_PASSES` (see :func:`normalize_text`), repeated until it no longer
    changes (at most ``rounds`` times): an entity glued to another (``Mr.12``, ``a.m.p.m.``) is only recognised once
    its neighbour has been read out, so a second round makes the result a fixed point."""
    for _ in range(rounds):
        out = sentence
        for f in _PASSES:
            out = f(out)
        if out == sentence:
            break
        sentence = out
    return sentence


def normalize_text(text: str) -> str:
    """Written text -> what a speaker says: ``"Dr. Smith paid $5.20 on March 3, 2024."`` -> ``"Doctor Smith paid
    five dollars and twenty cents on March third, twenty twenty four."``.

    Markup is stripped (:func:`strip_markup`), the text split into sentences (:func:`split_sentences`) and each
    sentence rewritten (see the module docstring); the sentences are joined by one space. The result holds only
    :data:`ALLOWED` characters; it is empty when nothing speakable remains. Dropped markup, emoji and unknown
    characters are named in a :class:`TextNormalizationWarning`.

    Raises:
        TypeError: ``text`` is not a string.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text: expected a string, got {type(text).__name__}")
    text = strip_markup(text)
    return " ".join(s for s in (normalize_sentence(p) for p in split_sentences(typography(text))) if s)


__all__ = [
    "ABBREVIATIONS",
    "ALLOWED",
    "ROMAN_CUES",
    "SPELLED_ACRONYMS",
    "SYMBOLS",
    "TITLES",
    "WORD_ACRONYMS",
    "TextNormalizationWarning",
    "clean_characters",
    "expand_abbreviations",
    "expand_acronyms",
    "expand_initials",
    "expand_roman",
    "expand_symbols",
    "expand_web",
    "is_shouting",
    "normalize_sentence",
    "normalize_text",
    "pronounceable",
    "read_acronym",
    "roman",
    "spell",
    "split_sentences",
    "strip_markup",
    "tidy",
    "typography",
    "unshout",
]
