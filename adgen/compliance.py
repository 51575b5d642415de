"""Platform compliance: display-width limits, editorial lint and brand banned terms.

Every text a creative carries is checked here, both while the copy is written (to decide what to
regenerate or shorten) and again before export. Rule names match `editorial` in data/platforms.yaml.
"""

import re
import unicodedata
from difflib import SequenceMatcher

from adgen.platforms import Placement, TextField

URL = re.compile(r"https?://\S+|www\.\S+")
REPEATED_PUNCT = re.compile(r"[!?.,;:]{2,}")
CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
ACRONYMS = {"USA", "API", "CEO", "SEO", "PDF", "FAQ", "DIY", "USB", "SUV", "HIIT", "NYC", "GPS", "AI", "TV"}
SYMBOL_WORDS = re.compile(
    r"\w[@$]\w|\b(?:gr8|2day|2nite|4ever|b4|l8r|w8|4u|2u|u|ur|r u)\b|\b[24] (?:sale|you|less|ever|get|all)\b",
    re.IGNORECASE,
)
BULLETS = re.compile(r"[•●▪►▶✓✔✗★☆→⇒♦◆■□]|^\s*[-*]\s")
SUFFIXES = r"(?:s|es|d|ed|r|er|ers|st|est|ly|ing)?"
STOP_TAIL = {"and", "or", "for", "with", "the", "a", "an", "to", "of", "in", "on", "at", "your", "our", "by", "&", "from", "that"}


def display_width(text: str, url_length: int | None = None) -> int:
    """Length as ad platforms count it: double-width (CJK) characters count 2; URLs count
    `url_length` each where the platform says so (X counts every URL as 23)."""
    if url_length is not None:
        text = URL.sub("x" * url_length, text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _is_emoji(ch: str) -> bool:
    cp = ord(ch)
    return cp >= 0x1F000 or 0x2600 <= cp <= 0x27BF or cp in (0x200D, 0xFE0F) or unicodedata.category(ch) == "So"


def lint_text(text: str, rules: tuple[str, ...], *, headline: bool, allowed_caps: set[str] = frozenset()) -> list[str]:
    """Editorial problems of one text under a placement's rule set, as short readable reasons."""
    issues = []
    if "no_exclamation_in_headline" in rules and headline and "!" in text:
        issues.append("'!' is not allowed in a headline")
    if "no_repeated_punctuation" in rules and (m := REPEATED_PUNCT.search(text)):
        issues.append(f"repeated punctuation {m.group()!r}")
    if "no_gimmicky_caps" in rules:
        caps = [w for w in CAPS_WORD.findall(text) if w not in ACRONYMS and w not in allowed_caps]
        if caps:
            issues.append(f"gimmicky capitals {caps[0]!r}")
    if "no_symbol_words" in rules and (m := SYMBOL_WORDS.search(text)):
        issues.append(f"symbol or number standing for a word {m.group()!r}")
    if "no_emoji" in rules and any(_is_emoji(ch) for ch in text):
        issues.append("emoji")
    if "no_bullets" in rules and BULLETS.search(text):
        issues.append("bullets or non-standard symbols")
    return issues


def invisible_chars(text: str, allowed: str = "") -> list[str]:
    """Control and format characters (Unicode Cc, Cf: zero-width spaces, bidi overrides, ...) in
    text, as U+XXXX; nothing a reader sees, but enough to hide a banned word from a check."""
    return [f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in ("Cc", "Cf") and ch not in allowed]


def strip_invisible(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf") or ch == "\n")


def _fold(text: str) -> str:
    """What a reader reads: compatibility forms unified (NFKC: full-width letters, ligatures),
    invisible characters dropped, case folded."""
    return unicodedata.normalize("NFKC", strip_invisible(text)).casefold()


def banned_terms_in(text: str, banned: list[str]) -> list[str]:
    """The brand's banned terms found in text (whole words, with common suffixes, any case or
    Unicode form, invisible characters ignored)."""
    folded = _fold(text)
    return [term for term in banned
            if re.search(r"\b" + re.escape(_fold(term)) + SUFFIXES + r"\b", folded)]


def check_text(text: str, field: TextField, placement: Placement, banned: list[str], brand_name: str = "") -> list[str]:
    """Everything wrong with one text of a field: length, lint and banned terms."""
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
    return issues


def shorten(text: str, max_width: int, url_length: int | None = None) -> str | None:
    """Cut text to fit max_width at a word boundary, never inside a word; drop a dangling 'and',
    'for', comma and the like. None when not even the first word fits."""
    if display_width(text, url_length) <= max_width:
        return text
    words = text.split()
    kept: list[str] = []
    for w in words:
        if display_width(" ".join(kept + [w]), url_length) > max_width:
            break
        kept.append(w)
    while kept and kept[-1].lower().strip(",;:-–") in STOP_TAIL:
        kept.pop()
    if not kept:
        return None
    out = " ".join(kept).rstrip(",;:-– ")
    if text.rstrip().endswith(".") and not out.endswith((".", "?")) and display_width(out + ".", url_length) <= max_width:
        out += "."
    return out or None


def near_duplicate(a: str, b: str, threshold: float = 0.88) -> bool:
    """True when two texts say the same thing in nearly the same words."""
    na = " ".join(re.findall(r"\w+", a.lower()))
    nb = " ".join(re.findall(r"\w+", b.lower()))
    return na == nb or SequenceMatcher(None, na, nb).ratio() >= threshold


def check_copy(copy: dict[str, list[str]], placement: Placement, banned: list[str], brand_name: str = "") -> dict:
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
                issues = check_text(text, field, placement, banned, brand_name)
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
        bangs = sum(t.count("!") for texts in copy.values() for t in texts)
        if bangs > 1:
            result["issues"].append(f"{bangs} '!' in the ad, at most 1 allowed")
    result["ok"] = not result["issues"]
    return result
