"""Platform compliance: display-width limits, editorial lint and brand banned terms.

Every text a creative carries is checked here, both while the copy is written (to decide what to
regenerate or shorten) and again before export. Rule names match `editorial` in data/platforms.yaml.
"""

import re
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher

from fontTools.unicodedata import script

from adgen.languages import language_problem
from adgen.linebreak import UNSPACED, display_width, shorten, word_boundaries  # noqa: F401  (shorten: copy is shortened through this module)
from adgen.platforms import Placement, TextField

# Punctuation rules hold for full-width forms too (！ is an exclamation mark): read them as ASCII.
FULL_WIDTH = {0xFF01 + i: 0x21 + i for i in range(94)}
REPEATED_PUNCT = re.compile(r"[!?.,;:。、؟،]{2,}")
CAPS_WORD = re.compile(r"\b[^\W\d_]{3,}\b")  # a word of letters; shouting only where the script has case
ACRONYMS = {"USA", "API", "CEO", "SEO", "PDF", "FAQ", "DIY", "USB", "SUV", "HIIT", "NYC", "GPS", "AI", "TV"}
SYMBOL_WORDS = re.compile(
    r"\w[@$]\w|\b(?:gr8|2day|2nite|4ever|b4|l8r|w8|4u|2u|u|ur|r u)\b|\b[24] (?:sale|you|less|ever|get|all)\b",
    re.IGNORECASE,
)
BULLETS = re.compile(r"[•●▪►▶✓✔✗★☆→⇒♦◆■□]|^\s*[-*]\s")
SUFFIXES = ("", "s", "es", "d", "ed", "r", "er", "ers", "st", "est", "ly", "ing")
ZWNJ, ZWJ = "\u200c", "\u200d"
# Scripts whose spelling uses the joiners (The Unicode Standard, 9.2 and 12.2): Persian and Arabic
# word forms such as می‌خواهم, Indic half forms and conjuncts such as क्‍ष. Between two letters of
# one of these scripts a joiner is part of the word; anywhere else it only hides a word from a check.
JOINER_SCRIPTS = frozenset({
    "Arab", "Syrc", "Mong", "Nkoo", "Deva", "Beng", "Guru", "Gujr", "Orya", "Taml", "Telu", "Knda", "Mlym", "Sinh",
})


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return cp >= 0x1F000 or 0x2600 <= cp <= 0x27BF or cp == 0xFE0F or unicodedata.category(ch) == "So"


def lint_text(text: str, rules: tuple[str, ...], *, headline: bool, allowed_caps: set[str] = frozenset()) -> list[str]:
    """Editorial problems of one text under a placement's rule set, as short readable reasons."""
    issues = []
    ascii_punct = text.translate(FULL_WIDTH)
    if "no_exclamation_in_headline" in rules and headline and "!" in ascii_punct:
        issues.append("'!' is not allowed in a headline")
    if "no_repeated_punctuation" in rules and (m := REPEATED_PUNCT.search(ascii_punct)):
        issues.append(f"repeated punctuation {m.group()!r}")
    if "no_gimmicky_caps" in rules:
        caps = [w for w in CAPS_WORD.findall(text) if w.isupper() and w not in ACRONYMS and w not in allowed_caps]
        if caps:
            issues.append(f"gimmicky capitals {caps[0]!r}")
    if "no_symbol_words" in rules and (m := SYMBOL_WORDS.search(text)):
        issues.append(f"symbol or number standing for a word {m.group()!r}")
    if "no_emoji" in rules and any(_is_emoji(ch) for ch in text):
        issues.append("emoji")
    if "no_bullets" in rules and BULLETS.search(text):
        issues.append("bullets or non-standard symbols")
    return issues


def _neighbour(text: str, i: int, step: int) -> str:
    """The character next to text[i] in direction `step`, past combining marks that belong to no
    script of their own (Arabic vowel marks, emoji variation selectors); '' at either end."""
    j = i + step
    while 0 <= j < len(text) and unicodedata.category(text[j]).startswith("M") and script(text[j]) == "Zinh":
        j += step
    return text[j] if 0 <= j < len(text) else ""


def _joiner_in_place(text: str, i: int) -> bool:
    """True when the ZWJ or ZWNJ at text[i] sits inside a word of a script that spells with it, or
    (ZWJ only) joins two emoji into one (👩‍💻)."""
    before, after = _neighbour(text, i, -1), _neighbour(text, i, 1)
    if not before or not after:
        return False
    if text[i] == ZWJ and _is_emoji(before) and _is_emoji(after):
        return True
    letters = all(unicodedata.category(ch)[0] in "LM" for ch in (before, after))
    return letters and script(before) == script(after) and script(before) in JOINER_SCRIPTS


def _hidden(text: str, i: int) -> bool:
    ch = text[i]
    if unicodedata.category(ch) not in ("Cc", "Cf"):
        return False
    return not (ch in (ZWJ, ZWNJ) and _joiner_in_place(text, i))


def invisible_chars(text: str, allowed: str = "") -> list[str]:
    """Control and format characters (Unicode Cc, Cf: zero-width spaces, bidi overrides, soft
    hyphens, ...) in text, as U+XXXX; nothing a reader sees, but enough to hide a banned word from a
    check. Joiners inside words of scripts that spell with them (Hindi, Persian) are text, not hidden."""
    return [f"U+{ord(ch):04X}" for i, ch in enumerate(text) if _hidden(text, i) and ch not in allowed]


def strip_invisible(text: str) -> str:
    """text without the characters `invisible_chars` names, newlines kept."""
    return "".join(ch for i, ch in enumerate(text) if ch == "\n" or not _hidden(text, i))


def _fold(text: str) -> str:
    """What a reader reads: compatibility forms unified (NFKC: full-width letters, ligatures),
    every control and format character dropped (joiners too: they change a glyph's form, never
    the word), case folded."""
    seen = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf"))
    return unicodedata.normalize("NFKC", seen).casefold()


def _word_edge(text: str, i: int, words: frozenset[int]) -> bool:
    """True where a word may start or end at index i: not between two letters (or marks, digits),
    except where one of them is of a script written without spaces and ICU's dictionaries put a
    word boundary there (安い in とても安い自転車)."""
    if i in (0, len(text)):
        return True
    left, right = text[i - 1], text[i]
    if not all(unicodedata.category(ch)[0] in "LMN" or ch == "_" for ch in (left, right)):
        return True
    return (script(left) in UNSPACED or script(right) in UNSPACED) and i in words


def banned_terms_in(text: str, banned: list[str]) -> list[str]:
    """The brand's banned terms found in text (whole words, with common English suffixes, any case,
    Unicode form or script, invisible characters ignored)."""
    folded = _fold(text)
    words = word_boundaries(folded)
    found = []
    for term in banned:
        needle = _fold(term).strip()
        start = folded.find(needle) if needle else -1
        while start != -1:
            ends = [start + len(needle) + len(s) for s in SUFFIXES if folded.startswith(s, start + len(needle))]
            if _word_edge(folded, start, words) and any(_word_edge(folded, end, words) for end in ends):
                found.append(term)
                break
            start = folded.find(needle, start + 1)
    return found


def check_text(
    text: str, field: TextField, placement: Placement, banned: list[str], brand_name: str = "", *,
    language: str = "en", keep: Sequence[str] = (),
) -> list[str]:
    """Everything wrong with one text of a field: length, lint, banned terms, and the language
    (`keep`: product and brand names, kept as written in any script and not judged)."""
    issues = []
    if not text.strip():
        return ["empty"]
    if hidden := invisible_chars(text, allowed="\n"):
        issues.append(f"invisible or control character {hidden[0]}")
    if field.max is not None:
        width = display_width(text, field.url_length)
        if width > field.max:
            issues.append(f"{width} characters, limit {field.max}")
    if field.pattern and not re.fullmatch(field.pattern, text):
        issues.append("only letters, digits and hyphens, no spaces" if field.role == "path" else f"must match {field.pattern}")
    issues += lint_text(text, placement.rules, headline=field.role == "headline", allowed_caps=set(brand_name.split()))
    issues += [f"banned term {t!r}" for t in banned_terms_in(text, banned)]
    if field.role not in ("path", "business_name"):  # URL paths and the brand's name are not prose
        problem = language_problem(text, language, (brand_name, *keep))
        # The reason never says "limit": a text in the wrong language is written again, not shortened.
        issues += [problem] if problem else []
    return issues


def near_duplicate(a: str, b: str, threshold: float = 0.88) -> bool:
    """True when two texts say the same thing in nearly the same words."""
    na = " ".join(re.findall(r"\w+", a.lower()))
    nb = " ".join(re.findall(r"\w+", b.lower()))
    return na == nb or SequenceMatcher(None, na, nb).ratio() >= threshold


def check_copy(
    copy: dict[str, list[str]], placement: Placement, banned: list[str], brand_name: str = "", *,
    language: str = "en", keep: Sequence[str] = (),
) -> dict:
    """Check a creative's whole copy against its placement: per text, per field and per ad.

    Returns {"ok": bool, "issues": [readable strings], "fields": {name: [{"text", "width", "max", "issues"}]}}.
    """
    result: dict = {"ok": True, "issues": [], "fields": {}}
    for name, field in placement.fields.items():
        texts = copy.get(name, [])
        lo, hi = field.count
        if not lo <= len(texts) <= hi:
            result["issues"].append(f"{name}: {len(texts)} texts, needs {lo}..{hi}")
        rows = []
        for i, text in enumerate(texts):
            if field.choices:
                issues = [] if text in placement.cta_choices else [f"not one of {', '.join(placement.cta_choices)}"]
            else:
                issues = check_text(text, field, placement, banned, brand_name, language=language, keep=keep)
                if any(near_duplicate(text, other) for other in texts[:i]):
                    issues.append("repeats another text of this field")
            rows.append(
                {"text": text, "width": display_width(text, field.url_length), "max": field.max, "issues": issues}
            )
            result["issues"] += [f"{name}[{i}]: {issue}" for issue in issues]
        if field.at_least_one_max and texts and not any(display_width(t) <= field.at_least_one_max for t in texts):
            result["issues"].append(f"{name}: at least one must fit {field.at_least_one_max} characters")
        result["fields"][name] = rows
    for name in copy:
        if name not in placement.fields:
            result["issues"].append(f"{name}: not a field of {placement.name}")
    if "at_most_one_exclamation" in placement.rules:
        bangs = sum(t.translate(FULL_WIDTH).count("!") for texts in copy.values() for t in texts)
        if bangs > 1:
            result["issues"].append(f"{bangs} '!' in the ad, at most 1 allowed")
    result["ok"] = not result["issues"]
    return result
