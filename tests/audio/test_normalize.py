"""The text front-end: every rule with its written input and the expected spoken form, the sentence splitter, and
the invariants (allowed characters, idempotence, the embedded corpus unchanged, warnings naming what was dropped)."""

import shutil
import warnings

import pytest

from ditkit_audio import numerals
from ditkit_audio.normalize import (
    ALLOWED,
    TextNormalizationWarning,
    normalize_text,
    read_acronym,
    roman,
    spell,
    split_sentences,
)
from ditkit_audio.text import TextTokenizer, generate_sentences

CASES = [
    # cardinals, negatives, thousands separators
    ("I have 42 apples.", "I have forty two apples."),
    ("It is -5 outside.", "It is minus five outside."),
    ("We sold 1,234 books.", "We sold one thousand two hundred thirty four books."),
    ("A town of 1,000,000 people.", "A town of one million people."),
    # ordinals
    ("He came 21st.", "He came twenty first."),
    ("The 2nd and 3rd floors.", "The second and third floors."),
    ("The 100th visitor.", "The one hundredth visitor."),
    # decimals
    ("Pi is 3.14.", "Pi is three point one four."),
    ("Use 0.5 of it.", "Use zero point five of it."),
    ("About .5 of it.", "About point five of it."),
    ("It fell -2.5 points.", "It fell minus two point five points."),
    # currency
    ("It costs $5.20.", "It costs five dollars and twenty cents."),
    ("Only $1.", "Only one dollar."),
    ("Just $0.01 left.", "Just one cent left."),
    ("A $2.5 million deal.", "A two point five million dollars deal."),
    ("Pay £3 now.", "Pay three pounds now."),
    ("Pay £3.50 now.", "Pay three pounds and fifty pence now."),
    ("It was €10.", "It was ten euros."),
    ("Then ¥100.", "Then one hundred yen."),
    ("A -$5 change.", "A minus five dollars change."),
    # dates (numeric dates are month/day/year)
    ("On March 3, 2024 we met.", "On March third, twenty twenty four we met."),
    ("By Mar. 3rd 2024 it ended.", "By March third, twenty twenty four it ended."),
    ("On 3 March 2024 we met.", "On the third of March, twenty twenty four we met."),
    ("On the 3 March we met.", "On the third of March we met."),
    ("In March 2024 it rained.", "In March twenty twenty four it rained."),
    ("The date 3/4/2024 was fine.", "The date March fourth, twenty twenty four was fine."),
    ("The date 2024-03-04 was fine.", "The date March fourth, twenty twenty four was fine."),
    ("The month 13/4/2024 is odd.", "The month thirteen slash four slash two thousand twenty four is odd."),
    # years
    ("Born in 1984.", "Born in nineteen eighty four."),
    ("2008 was hard.", "two thousand eight was hard."),
    ("1984 people came.", "one thousand nine hundred eighty four people came."),
    ("From 1990 to 2000.", "From nineteen ninety to two thousand."),
    ("It happened in 1905.", "It happened in nineteen oh five."),
    ("It happened in 1900.", "It happened in nineteen hundred."),
    ("The years 1990-2000 passed.", "The years nineteen ninety to two thousand passed."),
    ("Rome fell in 476 AD.", "Rome fell in four hundred seventy six eh D."),
    # times
    ("Meet at 10:30.", "Meet at ten thirty."),
    ("Meet at 10:00.", "Meet at ten o'clock."),
    ("Meet at 7 pm.", "Meet at seven P M."),
    ("Meet at 7:05am.", "Meet at seven oh five eh M."),
    ("Leave at 7 p.m.", "Leave at seven P M."),
    ("Leave at 7 p.m. sharp.", "Leave at seven P M sharp."),
    ("Call at 12:00 PM.", "Call at twelve P M."),
    ("It ends at 23:59.", "It ends at twenty three fifty nine."),
    # percentages and units
    ("About 50% agree.", "About fifty percent agree."),
    ("Only 3.5% left.", "Only three point five percent left."),
    ("Run 5 km today.", "Run five kilometers today."),
    ("Run 1 km today.", "Run one kilometer today."),
    ("Lift 3 kg now.", "Lift three kilograms now."),
    ("It is 10 °C.", "It is ten degrees Celsius."),
    ("It is 10°C.", "It is ten degrees Celsius."),
    ("It is -5 °F.", "It is minus five degrees Fahrenheit."),
    ("Drive at 60 mph.", "Drive at sixty miles per hour."),
    ("A 2.5 kg bag.", "A two point five kilograms bag."),
    ("Wait 10 min.", "Wait ten minutes."),
    ("A 500 GB disk.", "A five hundred gigabytes disk."),
    # abbreviations
    ("Dr. Smith is here.", "Doctor Smith is here."),
    ("Ask Dr. Smith.", "Ask Doctor Smith."),
    ("He lives on Elm Dr.", "He lives on Elm Drive."),
    ("St. Louis is big.", "Saint Louis is big."),
    ("I live at 221 Baker St.", "I live at two hundred twenty one Baker Street."),
    ("Main St. is busy.", "Main Street is busy."),
    ("Mr. and Mrs. Jones came.", "Mister and Missus Jones came."),
    ("Ms. Grey and Prof. Xavier.", "Miz Grey and Professor Xavier."),
    ("Fruit, e.g. apples.", "Fruit, for example apples."),
    ("Red vs. blue.", "Red versus blue."),
    ("Apples, pears, etc.", "Apples, pears, et cetera."),
    ("That is, i.e. this.", "That is, that is this."),
    ("Page No. 5 is gone.", "Page number five is gone."),
    # acronyms and initials
    ("The US is big.", "The U S is big."),
    ("IT matters here.", "I T matters here."),
    ("NASA flew again.", "Nasa flew again."),
    ("The FBI came.", "The F B I came."),
    ("HTTP is old.", "H T T P is old."),
    ("CERN is in Geneva.", "Cern is in Geneva."),
    ("Buy two CDs.", "Buy two C D's."),
    ("NASA's plan.", "Nasa's plan."),
    ("THE US IS BIG AND THE FBI IS HERE.", "the us is big and the F B I is here."),
    ("THE MEETING IS ON MARCH 3.", "the meeting is on March third."),
    ("J. R. R. Tolkien wrote it.", "J R R Tolkien wrote it."),
    ("The U.S.A. is big.", "The U S A is big."),
    # Roman numerals, decades, ranges, fractions
    ("World War II ended.", "World War two ended."),
    ("Elizabeth II reigned.", "Elizabeth the second reigned."),
    ("Louis XIV reigned.", "Louis the fourteenth reigned."),
    ("The 1980s were fun.", "The nineteen eighties were fun."),
    ("The '90s were fun.", "The nineties were fun."),
    ("Pages 5-10 are gone.", "Pages five to ten are gone."),
    ("Add 1/2 cup.", "Add one half cup."),
    ("Add 3/4 cup.", "Add three quarters cup."),
    ("Open 24/7.", "Open twenty four slash seven."),
    # symbols and web addresses
    ("Tom & Jerry.", "Tom and Jerry."),
    ("5 + 3 = 8.", "five plus three equals eight."),
    ("We are #1.", "We are number one."),
    ("It is ~5 meters.", "It is about five meters."),
    ("Yes and/or no.", "Yes and or no."),
    ("Email ann@example.org today.", "Email ann at example dot org today."),
    ("See https://www.example.com/docs now.", "See www dot example dot com now."),
    # markup, emoji, accents, typography
    ("<b>Bold</b> text.", "Bold text."),
    ("Some **strong** and _soft_ words.", "Some strong and soft words."),
    ("Click [here](http://x.com) now.", "Click here now."),
    ("Use `code` here.", "Use code here."),
    ("I love it 🙂.", "I love it."),
    ("Café naïve straße.", "Cafe naive strasse."),
    ("Wait… what?", "Wait, what?"),
    ("He said “hello” — then left.", "He said hello, then left."),
    ("(see below) the end.", "see below, the end."),
    # plain text and digits in words
    ("Version 1.2.3 is out.", "Version one point two point three is out."),
    ("A 3D movie.", "A three D movie."),
    ("The red cat sees the dog today.", "The red cat sees the dog today."),
    ("Agent 007 is here.", "Agent zero zero seven is here."),
]


def _quiet(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TextNormalizationWarning)
        return normalize_text(text)


@pytest.mark.parametrize(("written", "spoken"), CASES)
def test_rule(written, spoken):
    assert _quiet(written) == spoken


def test_output_is_speakable_by_the_character_vocabulary_and_idempotent():
    chars = TextTokenizer("chars")
    for written, _ in CASES:
        out = _quiet(written)
        assert set(out) <= ALLOWED and not chars.unknown(out), written
        with warnings.catch_warnings():
            warnings.simplefilter("error", TextNormalizationWarning)  # nothing left to drop
            assert normalize_text(out) == out, written


def test_embedded_corpus_sentences_are_unchanged():
    """The default corpus (``make data-tts``: 2000 sentences, seed 0) and the debug corpus are already spoken words:
    the front-end keeps them character for character, so the trained model reads the same symbols."""
    for n, seed in ((2000, 0), (24, 0), (12, 3)):
        for s in generate_sentences(n, seed):
            assert normalize_text(s) == s


SPLITS = [
    ("Dr. Smith arrived. He sat.", ["Dr. Smith arrived.", "He sat."]),
    ("I met J. R. R. Tolkien. He wrote.", ["I met J. R. R. Tolkien.", "He wrote."]),
    ("Pi is 3.14. It is irrational.", ["Pi is 3.14.", "It is irrational."]),
    ("It costs $5.20 today. Pay now!", ["It costs $5.20 today.", "Pay now!"]),
    ("See e.g. the cat. Then go.", ["See e.g. the cat.", "Then go."]),
    ("We left at 7 p.m. Then we slept.", ["We left at 7 p.m.", "Then we slept."]),
    ("We left at 7 p.m. and slept.", ["We left at 7 p.m. and slept."]),
    ("Apples, pears, etc. are fruit.", ["Apples, pears, etc. are fruit."]),
    ("Apples, etc. Then more.", ["Apples, etc.", "Then more."]),
    ("He lives in the U.S. He is happy.", ["He lives in the U.S.", "He is happy."]),
    ("The U.S. economy grew.", ["The U.S. economy grew."]),
    ("Is it? Yes! Ok.", ["Is it?", "Yes!", "Ok."]),
    ("Meet me on Jan. 5 please.", ["Meet me on Jan. 5 please."]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("No. 5 is best. No. It is not.", ["No. 5 is best.", "No.", "It is not."]),
    ("Line one\n\nLine two", ["Line one", "Line two"]),
    ("Line\none.", ["Line one."]),
    ("Wait... what?", ["Wait... what?"]),
    ("St. Louis is big. Mr. Smith agrees.", ["St. Louis is big.", "Mr. Smith agrees."]),
    ("Prof. X. Y. Zed spoke. Mt. Fuji is tall.", ["Prof. X. Y. Zed spoke.", "Mt. Fuji is tall."]),
    ("In the U S. Then at seven P M. He slept.", ["In the U S.", "Then at seven P M.", "He slept."]),
    ("It was eh M. Then noon.", ["It was eh M.", "Then noon."]),
    ("", []),
    (" \n ", []),
]


@pytest.mark.parametrize(("text", "sentences"), SPLITS)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


def test_whole_text_is_split_then_normalised_sentence_by_sentence():
    text = "Dr. Smith paid $5.20 on March 3, 2024. He left at 7 p.m. Then J. Doe came from the U.S. Ok."
    spoken = (
        "Doctor Smith paid five dollars and twenty cents on March third, twenty twenty four. "
        "He left at seven P M. Then J Doe came from the U S. Ok."
    )
    assert normalize_text(text) == spoken and normalize_text(spoken) == spoken
    assert normalize_text("Mr.12 left at 5 a.m.p.m.") == "Mister twelve left at five eh M P M."  # glued: two rounds


def test_dropped_markup_and_characters_are_named_in_a_warning():
    with pytest.warns(TextNormalizationWarning, match=r"markup: '<b>', '</b>'"):
        assert normalize_text("<b>Hi</b> there.") == "Hi there."
    with pytest.warns(TextNormalizationWarning, match=r"characters: '🙂' \(U\+1F642 SLIGHTLY SMILING FACE\)"):
        assert normalize_text("Hi 🙂") == "Hi"
    with pytest.warns(TextNormalizationWarning, match=r"link 'http://x\.com'"):
        normalize_text("[here](http://x.com)")
    with pytest.warns(TextNormalizationWarning, match=r"'🙂' .*, '\|' \(U\+007C VERTICAL LINE\)"):
        assert normalize_text("🙂 | ") == ""  # nothing speakable is left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        normalize_text("Café, naïve “quotes” — and… dashes.")  # typography and accents are not dropped
    with pytest.raises(TypeError, match="expected a string, got bytes"):
        normalize_text(b"hi")


def test_number_words():
    assert numerals.cardinal(1_000_001) == "one million one"
    assert numerals.cardinal(-12) == "minus twelve"
    assert numerals.cardinal(10**30) == "one" + " zero" * 30  # beyond MAX_DIGITS: digit by digit
    assert [numerals.year(y) for y in (1000, 1001, 2000, 2010, 1066, 999)] == [
        "one thousand",
        "one thousand one",
        "two thousand",
        "twenty ten",
        "ten sixty six",
        "nine hundred ninety nine",
    ]
    assert numerals.money("$", "1.5") == "one dollar and fifty cents"
    assert numerals.money("$", "0.125") == "zero point one two five dollars"
    assert numerals.money("¥", "3.5") == "three point five yen"
    assert numerals.fraction(1, 3) == "one third" and numerals.fraction(5, 8) == "five eighths"
    assert numerals.quantity("1", "°C") == "one degree Celsius"


def test_acronym_rule_and_roman_numerals():
    assert [read_acronym(w) for w in ("US", "NASA", "NYPD", "IKEA", "SCUBA", "BTW", "OPEC")] == [
        "U S",
        "Nasa",
        "N Y P D",
        "Ikea",
        "Scuba",
        "B T W",
        "Opec",
    ]
    assert spell("USA") == "U S A" and spell("AI") == "eh I"
    numbers = [roman(r) for r in ("II", "IV", "IX", "XIV", "XXXIX", "IIII", "VX", "")]
    assert numbers == [2, 4, 9, 14, 39, None, None, None]


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_spelled_letters_reach_espeak_as_letter_names():
    """espeak-ng reads a lone "a" before a word as the article; "eh" gives the letter's name."""
    from ditkit_audio.text import phonemize

    assert phonemize("a m") == "ɐ ˈɛm"  # the article: why spell() writes "eh"
    assert phonemize(spell("AM").lower()) == "ˈeɪ ˈɛm"
    assert phonemize(_quiet("The US.").lower()) == "ðə jˈuː ˈɛs."


PIECES = (
    "1 12 0 1,234 3.14 -5 .5 007 $ £ € % °C km kg / : am pm p.m. a.m. Dr. St. Mr. e.g. etc. US IT NASA March Jan. "
    "in 1984 2008 s ' \" ( ) … — <b> </b> ** _ ` [x](y) 🙂 é ß # & + = @ ~ II XIV 1980s '90s 21st 10:30 7:05am "
    "2024-03-04 3/4/2024 24/7 5-10 | \\ ^ { } 1.2.3 ° mph BC U.S. J. www.x.com a@b.co ٣٤"
).split() + [" ", ". ", "? ", "\n", "\n\n", "\t"]


def test_hostile_text_never_raises_and_stays_in_the_vocabulary():
    import random

    rng = random.Random(0)
    texts = ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    texts += [" ".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    texts += ["1" * 5000, "1" * 5000 + "st", "$" + "9" * 5000, "1" * 50 + "/" + "2" * 50, "**x " * 500, "a." * 2000]
    for text in texts:
        out = _quiet(text)
        assert isinstance(out, str) and set(out) <= ALLOWED, text
    assert _quiet("1" * 5000) == " ".join(["one"] * 5000)  # beyond MAX_DIGITS: digit by digit, no int() limit
