"""Spoken forms of numbers and of the entities written with them: cardinals, ordinals, decimals, years, currency,
dates, times, percentages, units, fractions and ranges (US English, no "and" inside numbers).

Each ``expand_*`` function rewrites one kind of entity in a sentence and leaves everything else alone;
:func:`ditkit_audio.normalize.normalize_text` runs them in a fixed order (dates before times before currency before
plain numbers). Number words come from ``num2words``, cleaned to plain words: hyphens and commas dropped, the British
"and" removed (``1234`` -> ``one thousand two hundred thirty four``).
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------------- number words
MAX_DIGITS = 21
"""Integers with more digits are read digit by digit."""


def _n2w(n: int, to: str = "cardinal") -> str:
    try:
        from num2words import num2words
    except ImportError as e:  # pragma: no cover - a declared dependency of ditkit-audio
        raise ImportError("ditkit_audio.numerals needs num2words (pip install num2words)") from e
    words = num2words(n, to=to, lang="en").replace("-", " ").replace(",", "")
    return re.sub(r"\s+", " ", re.sub(r"\band\b", " ", words)).strip()


_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


def digits(text: str) -> str:
    """Each digit of ``text`` as a word: ``"007"`` -> ``"zero zero seven"``."""
    return " ".join(_DIGIT_WORDS[int(c)] for c in text if c.isdecimal())


def cardinal(n: int) -> str:
    """``-1234`` -> ``"minus one thousand two hundred thirty four"`` (digit by digit beyond :data:`MAX_DIGITS`)."""
    if n < 0:
        return "minus " + cardinal(-n)
    if len(str(n)) > MAX_DIGITS:
        return digits(str(n))
    return _n2w(n)


def ordinal(n: int) -> str:
    """``21`` -> ``"twenty first"``, ``100`` -> ``"one hundredth"``."""
    if n < 0 or len(str(n)) > MAX_DIGITS:
        return cardinal(n)
    return _n2w(n, "ordinal")


def year(n: int) -> str:
    """A year as it is said: ``1984`` -> ``"nineteen eighty four"``, ``2008`` -> ``"two thousand eight"``,
    ``1905`` -> ``"nineteen oh five"``, ``1900`` -> ``"nineteen hundred"``, ``2024`` -> ``"twenty twenty four"``.

    Outside 1000-9999 (and for whole thousands) the cardinal.
    """
    if not 1000 <= n <= 9999 or n % 1000 == 0:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if n % 1000 < 10:  # 2008, 1001
        return f"{cardinal(n - n % 1000)} {cardinal(n % 1000)}"
    if lo == 0:
        return f"{cardinal(hi)} hundred"
    if lo < 10:
        return f"{cardinal(hi)} oh {cardinal(lo)}"
    return f"{cardinal(hi)} {cardinal(lo)}"


_GROUPED = r"\d{1,3}(?:,\d{3})+(?!\d)"
NUMBER = rf"(?:{_GROUPED}|\d+)(?:\.\d+)?"
"""A written number: digits with optional thousands separators (``1,234``) and decimals (``3.14``)."""


def number(text: str) -> str:
    """Words of a written number: ``"1,234"``, ``"-3.14"`` (``three point one four``), ``"007"`` (digit by digit),
    ``".5"`` (``point five``)."""
    text = text.strip()
    sign = ""
    if text[:1] in "-\u2212":
        sign, text = "minus ", text[1:]
    whole, _, frac = text.partition(".")
    whole = whole.replace(",", "")
    if not whole:
        head = "" if frac else "zero"
    elif (len(whole) > 1 and whole.startswith("0")) or len(whole) > MAX_DIGITS:
        head = digits(whole)
    else:
        head = cardinal(int(whole))
    tail = f" point {digits(frac)}" if frac else ""
    return (sign + head + tail).strip()


def _plural(words: str) -> str:
    """The last word of a number in the plural (decades): ``eighty`` -> ``eighties``, ``hundred`` -> ``hundreds``."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return f"{head} {last}".strip()


def spell(letters: str) -> str:
    """Letters read one by one, as capitals separated by spaces: ``"US"`` -> ``"U S"``, ``"fbi"`` -> ``"F B I"``.

    An ``A`` before another letter is written ``eh``: espeak-ng reads a lone ``a`` followed by a word as the article
    (``"a m"`` -> ``ɐ ˈɛm``), while ``eh`` gives the letter's name (``ˈeɪ``); a final ``A`` is read as the letter
    (``"U S A"``).
    """
    chars = [c.upper() for c in letters if c.isalpha()]
    return " ".join("eh" if c == "A" and i < len(chars) - 1 else c for i, c in enumerate(chars))


# ---------------------------------------------------------------------- shared by the passes
def _spaced(words: str) -> str:
    return f" {words} "


def _final_period(m: re.Match, consumed: str) -> str:
    """``"."`` if the match ate a period that ends the sentence (``at 7 p.m.`` keeps its full stop)."""
    return "." if consumed.endswith(".") and not m.string[m.end() :].strip() else ""


# ---------------------------------------------------------------------- dates
MONTHS = "January February March April May June July August September October November December".split()
MONTH_ABBREVIATIONS = {m[:3]: m for m in MONTHS} | {"Sept": "September"}
"""``Jan`` -> ``January`` (read before a day number or a year, with or without a period)."""
_MONTH = r"(?P<month>" + "|".join(MONTHS + sorted(MONTH_ABBREVIATIONS, key=len, reverse=True)) + r")\.?"


def _month(name: str) -> str:
    return MONTH_ABBREVIATIONS.get(name, name)


def _date(month: int | str, day: int, yr: str | None) -> str | None:
    name = MONTHS[month - 1] if isinstance(month, int) else _month(month)
    if not 1 <= day <= 31:
        return None
    out = f"{name} {ordinal(day)}"
    return f"{out}, {_year_text(yr)}" if yr else out


def _year_text(yr: str) -> str:
    return year(int(yr)) if len(yr) == 4 else digits(yr)


def expand_dates(s: str) -> str:
    """``March 3, 2024`` / ``Mar. 3rd 2024`` -> ``March third, twenty twenty four``; ``3 March 2024`` -> ``the third
    of March, twenty twenty four``; ``March 2024`` -> ``March twenty twenty four``; numeric dates are month/day/year
    (US): ``3/4/2024`` -> ``March fourth, twenty twenty four``; ISO ``2024-03-04`` -> ``March fourth, twenty twenty
    four``. Impossible months or days are left for the other rules."""

    def month_first(m: re.Match) -> str:
        out = _date(m["month"], int(m["day"]), m["year"])
        return _spaced(out) if out else m[0]

    def day_first(m: re.Match) -> str:
        day = int(m["day"])
        if not 1 <= day <= 31:
            return m[0]
        before = m.string[: m.start()].rstrip().lower()
        the = "" if before.endswith("the") else "the "
        out = f"{the}{ordinal(day)} of {_month(m['month'])}"
        return _spaced(f"{out}, {_year_text(m['year'])}" if m["year"] else out)

    def numeric(m: re.Match) -> str:
        mo, day = int(m["m"]), int(m["d"])
        out = _date(mo, day, m["y"]) if 1 <= mo <= 12 else None
        return _spaced(out) if out else m[0]

    s = re.sub(r"\b(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})\b", numeric, s)
    s = re.sub(r"(?<![\d/])\b(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4}|\d{2})\b(?!/)", numeric, s)
    s = re.sub(rf"\b{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(?P<year>\d{{4}})\b)?", month_first, s)
    s = re.sub(
        rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?![A-Za-z])(?:,?\s+(?P<year>\d{{4}})\b)?",
        day_first,
        s,
    )
    return re.sub(rf"\b{_MONTH}\s+(?P<year>\d{{4}})\b", lambda m: f"{_month(m['month'])} {year(int(m['year']))}", s)


# ---------------------------------------------------------------------- times
_MERIDIEM = r"(?P<mer>[aApP]\.?[mM]\.?)(?![A-Za-z])"


def _meridiem(text: str) -> str:
    return spell(text[0].upper() + "M")


def expand_times(s: str) -> str:
    """``10:30`` -> ``ten thirty``, ``7:05am`` -> ``seven oh five eh M``, ``10:00`` -> ``ten o'clock``,
    ``7 pm`` / ``7 p.m.`` -> ``seven P M`` (the letters as :func:`~ditkit_audio.normalize.spell` writes them)."""

    def clock(m: re.Match) -> str:
        h, mi = int(m["h"]), int(m["m"])
        if h > 24 or mi > 59 or (m["mer"] and not 1 <= h <= 12):
            return m[0]
        out = cardinal(h)
        if mi == 0:
            out += "" if m["mer"] else " o'clock"
        else:
            out += f" oh {cardinal(mi)}" if mi < 10 else f" {cardinal(mi)}"
        if m["sec"]:
            out += f" and {cardinal(int(m['sec']))} seconds"
        if m["mer"]:
            out += " " + _meridiem(m["mer"]) + _final_period(m, m["mer"])
        return _spaced(out)

    def hour(m: re.Match) -> str:
        h = int(m["h"])
        if not 1 <= h <= 12:
            return m[0]
        return _spaced(f"{cardinal(h)} {_meridiem(m['mer'])}{_final_period(m, m['mer'])}")

    hms = r"(?<![\d:])(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<sec>\d{2}))?(?![\d:])"
    s = re.sub(rf"{hms}(?:\s?{_MERIDIEM})?", clock, s)
    return re.sub(rf"\b(?P<h>\d{{1,2}})\s?{_MERIDIEM}", hour, s)


# ---------------------------------------------------------------------- currency, percent, units
CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "€": ("euro", "euros", "cent", "cents"),
    "¥": ("yen", "yen", "", ""),
}
"""Symbol -> (unit, units, sub-unit, sub-units)."""
_SCALE = r"(?:thousand|million|billion|trillion)"


def money(symbol: str, amount: str, scale: str | None = None) -> str:
    """``money("$", "5.20")`` -> ``five dollars and twenty cents``; ``money("$", "2.5", "million")`` -> ``two point
    five million dollars``; amounts with more than two decimals are read as decimals."""
    one, many, sub_one, sub_many = CURRENCIES[symbol]
    amount = amount.replace(",", "")
    if scale or len(amount.partition(".")[0]) > MAX_DIGITS:
        return f"{number(amount)} {scale or ''} {many}".replace("  ", " ")
    whole, _, frac = amount.partition(".")
    if len(frac) > 2 or (frac and not sub_one):
        return f"{number(amount)} {many}"
    units = int(whole or "0")
    cents = int((frac + "0")[:2]) if frac else 0
    parts = []
    if units or not cents:
        parts.append(f"{cardinal(units)} {one if units == 1 else many}")
    if cents:
        parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
    return " and ".join(parts)


def expand_currency(s: str) -> str:
    """``$5.20`` -> ``five dollars and twenty cents``, ``£3`` -> ``three pounds``, ``€10`` -> ``ten euros``,
    ``-$5`` -> ``minus five dollars``, ``$2.5 million`` -> ``two point five million dollars``."""
    sym = "[" + "".join(re.escape(c) for c in CURRENCIES) + "]"

    def sub(m: re.Match) -> str:
        out = money(m["sym"], m["amt"], m["scale"])
        return _spaced(("minus " if m["neg"] else "") + out)

    return re.sub(
        rf"(?P<neg>(?<![\w.])[-\u2212])?(?P<sym>{sym})\s?(?P<amt>{NUMBER}|\.\d+)(?:\s(?P<scale>{_SCALE})\b)?", sub, s
    )


def expand_percent(s: str) -> str:
    """``50%`` -> ``fifty percent``, ``-2.5 %`` -> ``minus two point five percent``."""
    return re.sub(
        rf"(?P<neg>(?<![\w.])[-\u2212])?(?<![\d,])(?P<n>{NUMBER})\s?%",
        lambda m: _spaced(("minus " if m["neg"] else "") + number(m["n"]) + " percent"),
        s,
    )


UNITS = {
    "mm": ("millimeter", "millimeters"),
    "cm": ("centimeter", "centimeters"),
    "m": ("meter", "meters"),
    "km": ("kilometer", "kilometers"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "mi": ("mile", "miles"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "kg": ("kilogram", "kilograms"),
    "t": ("tonne", "tonnes"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "kB": ("kilobyte", "kilobytes"),
    "KB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "W": ("watt", "watts"),
    "kW": ("kilowatt", "kilowatts"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "V": ("volt", "volts"),
    "mph": ("mile per hour", "miles per hour"),
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
"""Unit symbol (case-sensitive, after a number) -> (singular, plural). ``in`` and ``s`` are left out: after a number
they are more often the words "in" and a plural."""


def quantity(value: str, unit: str) -> str:
    """``quantity("5", "km")`` -> ``five kilometers``; singular only for exactly ``1``."""
    one, many = UNITS[unit]
    return f"{number(value)} {one if value.lstrip('-').strip() == '1' else many}"


def expand_units(s: str) -> str:
    """``5 km`` -> ``five kilometers``, ``3kg`` -> ``three kilograms``, ``10 °C`` / ``10°C`` -> ``ten degrees
    Celsius``, ``60 mph`` -> ``sixty miles per hour``, ``1 km`` -> ``one kilometer``."""
    s = re.sub(r"°\s+([CF])\b", r"°\1", s)
    names = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))

    def sub(m: re.Match) -> str:
        value = ("-" if m["neg"] else "") + m["n"]
        return _spaced(quantity(value, m["unit"]))

    return re.sub(rf"(?P<neg>(?<![\w.])[-\u2212])?(?<![\d,])(?P<n>{NUMBER})\s?(?P<unit>{names})(?![\w/])", sub, s)


# ---------------------------------------------------------------------- ordinals, decades, years
def expand_ordinals(s: str) -> str:
    """``21st`` -> ``twenty first``, ``2nd`` -> ``second``, ``1,000th`` -> ``one thousandth``."""

    def sub(m: re.Match) -> str:
        n = m["n"].replace(",", "")
        return _spaced(ordinal(int(n)) if len(n) <= MAX_DIGITS else digits(n))

    return re.sub(rf"\b(?P<n>{_GROUPED}|\d+)(?:st|nd|rd|th)\b", sub, s)


def expand_decades(s: str) -> str:
    """``1980s`` -> ``nineteen eighties``, ``1900s`` -> ``nineteen hundreds``, ``'90s`` / ``90s`` -> ``nineties``."""
    s = re.sub(r"\b(\d{3}0)'?s\b", lambda m: _spaced(_plural(year(int(m[1])))), s)
    return re.sub(r"(?<![\w'])'?([1-9]0)'?s\b", lambda m: _spaced(_plural(cardinal(int(m[1])))), s)


YEAR_CUES = frozenset(
    "in since by from until till through during circa around before after year of early late mid between "
    "spring summer autumn fall winter".split()
)
"""Words after which a four-digit number (1000-2999) is read as a year; so are the numbers before ``BC`` / ``AD`` /
``BCE`` / ``CE`` and those joined to a year by ``to`` / ``and`` / ``-`` / ``through``."""
_ERA = r"\s?(?:BC|AD|BCE|CE|B C|eh D|B C E|C E)(?![A-Za-z])"


def _is_year(s: str, start: int, end: int) -> bool:
    if not 1000 <= int(s[start:end]) <= 2999:
        return False
    if re.match(_ERA, s[end:]):
        return True
    words = re.findall(r"[A-Za-z]+|\d{4}|[-\u2013]", s[:start])
    prev = words[-1].lower() if words else ""
    if prev in YEAR_CUES or prev.capitalize() in MONTHS:
        return True
    if prev in ("to", "and", "-", "\u2013") and len(words) >= 2 and re.fullmatch(r"\d{4}", words[-2]):
        k = s[:start].rindex(words[-2])
        return _is_year(s, k, k + 4)
    return False


def expand_years(s: str) -> str:
    """Four-digit numbers read as years where the context says so (:data:`YEAR_CUES`): ``in 1984`` -> ``in nineteen
    eighty four``, ``from 1990 to 2000``, ``44 BC``; other four-digit numbers stay cardinals (``1984 people``)."""
    return re.sub(
        r"(?<![\d,.])\b\d{4}\b(?![,.]\d)",
        lambda m: _spaced(year(int(m[0]))) if _is_year(m.string, m.start(), m.end()) else m[0],
        s,
    )


# ---------------------------------------------------------------------- ranges, fractions, plain numbers
def expand_ranges(s: str) -> str:
    """``5-10`` / ``5–10`` -> ``five to ten`` (no spaces around the dash; ``1990-2000`` as years)."""

    def sub(m: re.Match) -> str:
        a, b = m["a"], m["b"]
        if len(a) == len(b) == 4 and all(1000 <= int(x) <= 2999 for x in (a, b)):
            return _spaced(f"{year(int(a))} to {year(int(b))}")
        return _spaced(f"{number(a)} to {number(b)}")

    return re.sub(rf"(?<![\w.,/-])(?P<a>{NUMBER})[-\u2013](?P<b>{NUMBER})(?![\w/-])", sub, s)


def fraction(num: int, den: int) -> str:
    """``fraction(3, 4)`` -> ``three quarters``, ``fraction(1, 2)`` -> ``one half``, ``fraction(2, 3)`` -> ``two
    thirds``."""
    if den == 2:
        name = "half" if num == 1 else "halves"
    elif den == 4:
        name = "quarter" if num == 1 else "quarters"
    else:
        name = ordinal(den) + ("" if num == 1 else "s")
    return f"{cardinal(num)} {name}"


def expand_fractions(s: str) -> str:
    """Proper fractions with a denominator up to 100 (``3/4`` -> ``three quarters``); other ``a/b`` of numbers
    (and what is left of impossible dates, ``13/4/2024``) -> ``a slash b``."""

    def sub(m: re.Match) -> str:
        a, b = (int(x) if len(x) <= 3 else 10**9 for x in (m["a"], m["b"]))
        if 0 < a < b <= 100:
            return _spaced(fraction(a, b))
        return _spaced(f"{number(m['a'])} slash {number(m['b'])}")

    s = re.sub(r"(?<![\w./])(?P<a>\d+)/(?P<b>\d+)(?!\w|/|\.\d)", sub, s)
    return re.sub(r"(?<=\d)/(?=\d)", " slash ", s)


def expand_numbers(s: str) -> str:
    """Every remaining number: versions ``1.2.3`` -> ``one point two point three``; negatives after a space or at
    the start ``-5`` -> ``minus five``; ``1,234``, ``3.14``, digits inside words (``3D`` -> ``three D``)."""
    s = re.sub(r"\b\d+(?:\.\d+){2,}\b", lambda m: _spaced(" point ".join(number(p) for p in m[0].split("."))), s)
    s = re.sub(rf"(?:^|(?<=[\s(\[]))[-\u2212](?={NUMBER}|\.\d)", " minus ", s)
    s = re.sub(r"(?<![\w.])\.(\d+)", lambda m: _spaced("point " + digits(m[1])), s)
    return re.sub(rf"(?<!\d){NUMBER}", lambda m: _spaced(number(m[0])), s)


__all__ = [
    "CURRENCIES",
    "MONTHS",
    "MONTH_ABBREVIATIONS",
    "NUMBER",
    "UNITS",
    "YEAR_CUES",
    "cardinal",
    "digits",
    "expand_currency",
    "expand_dates",
    "expand_decades",
    "expand_fractions",
    "expand_numbers",
    "expand_ordinals",
    "expand_percent",
    "expand_ranges",
    "expand_times",
    "expand_units",
    "expand_years",
    "fraction",
    "money",
    "number",
    "ordinal",
    "quantity",
    "spell",
    "year",
]
