"""Audience languages as data: BCP 47 tags, call-to-action labels, direction, and whether copy is in them.

An audience's `language` is a BCP 47 tag (en, ja, zh-Hant, pt-BR), validated with langcodes. The
languages adgen draws creatives in, with their call-to-action labels, are data (data/languages.yaml);
a tag is matched to the closest of them, so pt-BR uses pt and zh-TW uses zh-Hant.

Copy in the audience's language: the offline default text model was trained on English copy only,
so an audience in another language needs a multilingual instruct model or copy written through
edits (`check_text_model`). Whatever wrote it, copy is checked with `language_problem` before it is
accepted: by script first (an English headline in a Japanese audience's cell is caught because it
has no Japanese letters), then, among languages written in Latin letters, by a small character
n-gram identifier (py3langid) that only objects when it is confident.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import langcodes
import yaml
from fontTools.unicodedata import script, script_name

LANGUAGES_FILE = Path(__file__).parent / "data" / "languages.yaml"
DEFAULT_MODEL_LANGUAGES = ("en",)
MULTILINGUAL_MODEL = "Qwen/Qwen2.5-1.5B-Instruct"  # a small instruct model that writes many languages
# Scripts a language is written in, for the writing systems ISO 15924 names as a combination.
SCRIPT_SETS = {"Jpan": {"Hani", "Hira", "Kana"}, "Kore": {"Hang", "Hani"}, "Hans": {"Hani"}, "Hant": {"Hani", "Bopo"}}
RTL_SCRIPTS = {"Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm"}
MIN_LETTERS_TO_IDENTIFY = 12  # shorter Latin texts ("Shop now") are too short to tell apart
CONFIDENT = 0.9


class LanguageError(ValueError):
    """A language tag that is not valid, or a language the chosen model cannot write."""


def language_tag(value: str) -> str:
    """The tag in its standard form (EN -> en, iw -> he); LanguageError for anything not BCP 47.

    Suits a pydantic field validator: its message names what is valid."""
    tag = str(value).strip()
    try:
        valid = langcodes.tag_is_valid(tag) and langcodes.Language.get(tag).is_valid()
    except ValueError:
        valid = False
    if not valid or tag.lower() == "und":
        raise LanguageError(f"{value!r} is not a BCP 47 language tag; use e.g. en, ja, zh-Hant, pt-BR, ar")
    return langcodes.standardize_tag(tag)


@lru_cache(maxsize=1)
def _data() -> dict:
    return yaml.safe_load(LANGUAGES_FILE.read_text(encoding="utf-8"))["languages"]


def supported_languages() -> tuple[str, ...]:
    """Tags creatives can be drawn in, English first."""
    return ("en", *_data())


def closest_supported(language: str) -> str | None:
    """The supported tag closest to `language` (pt-BR -> pt, zh-TW -> zh-Hant), None if none is close."""
    return langcodes.closest_supported_match(language_tag(language), list(supported_languages()))


def cta_label(label: str, language: str) -> str:
    """The call-to-action `label` (an English value of a cta_list) as drawn for `language`."""
    match = closest_supported(language)
    if match is None:
        raise LanguageError(
            f"no call-to-action labels in {language!r}; supported: {', '.join(supported_languages())}"
        )
    if match == "en":
        return label
    labels = _data()[match]["cta"]
    if label not in labels:
        raise LanguageError(f"call to action {label!r} has no {match} label in {LANGUAGES_FILE.name}")
    return labels[label]


def language_name(language: str) -> str:
    match = closest_supported(language)
    return "English" if match == "en" else _data()[match]["name"] if match else language


def language_label(language: str) -> str:
    """How the report and the web app name an audience's language: 'Japanese (ja)'."""
    return f"{language_name(language)} ({language})"


def scripts_of(language: str) -> frozenset[str]:
    """ISO 15924 scripts the language is written in: ja -> Hani, Hira, Kana; ar -> Arab."""
    written = langcodes.Language.get(language_tag(language)).maximize().script or "Latn"
    return frozenset(SCRIPT_SETS.get(written, {written}))


def direction(language: str) -> str:
    """'rtl' for languages written right to left (Arabic, Hebrew, Persian, Urdu), else 'ltr'."""
    return "rtl" if scripts_of(language) & RTL_SCRIPTS else "ltr"


def check_text_model(model: str, language: str, where: str = "language") -> None:
    """Refuse an audience language the text model cannot write: the offline default writes English
    only. Raises LanguageError with one line naming the field and what to do instead."""
    tag = language_tag(language)
    if model == "default" and langcodes.Language.get(tag).language not in DEFAULT_MODEL_LANGUAGES:
        raise LanguageError(
            f"{where}: {tag!r}: the default model writes English only; use a model folder or hub id of a "
            f"multilingual instruct model as models.text (e.g. {MULTILINGUAL_MODEL}), "
            "or set copy_by: edits and write the copy with adgen review edit"
        )


def _without_names(text: str, keep: Iterable[str]) -> str:
    for name in sorted(keep, key=len, reverse=True):  # product and brand names may be in any script
        if name:
            text = text.replace(name, " ")
    return text


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier  # loads a 4 MB model: only when needed

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify_latin(text: str, candidates: Iterable[str]) -> tuple[str, float]:
    """The most likely of `candidates` (base language codes written in Latin letters) and its
    probability among them (the identifier's probabilities renormalised over the candidates)."""
    wanted = set(candidates)
    scores = {lang: p for lang, p in _identifier().rank(text) if lang in wanted}
    total = sum(scores.values()) or 1.0
    best = max(scores, key=scores.get)
    return best, scores[best] / total


def language_problem(text: str, language: str, keep: Iterable[str] = ()) -> str | None:
    """Why `text` is not in `language`, as a short reason, or None when it is (or cannot be told).

    `keep` are names kept exactly in any script (product, brand): they do not count. Judged by the
    script of the remaining letters, and for Latin-script languages by identification, which only
    objects when it is at least 90% sure of another language and the text has 12 letters or more."""
    expected = scripts_of(language)
    text = _without_names(text, keep)
    letters = "".join(ch for ch in text if ch.isalpha())
    if len(letters) < 2:
        return None
    counts = Counter(script(ch) for ch in letters)
    inside = sum(n for s, n in counts.items() if s in expected)
    if inside * 2 < len(letters):
        found = script_name(counts.most_common(1)[0][0])
        return f"written in {found} script, not in {language_name(language)}"
    if expected != {"Latn"} or len(letters) < MIN_LETTERS_TO_IDENTIFY:
        return None
    base = langcodes.Language.get(language_tag(language)).language
    latin = [tag for tag in supported_languages() if scripts_of(tag) == {"Latn"}]
    found, probability = identify_latin(text, [base, *latin])
    if found != base and probability >= CONFIDENT:
        return f"reads as {language_name(found)}, not {language_name(language)}"
    return None
