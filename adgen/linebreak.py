"""Where text may break and how it is shortened, by Unicode rules, in every script.

Break opportunities come from ICU's line breaker (UAX #14, with ICU's dictionaries for Thai, Lao,
Khmer and Burmese, which write words without spaces; uniseg follows UAX #14 too but has no
dictionary, so a Thai phrase would never break) and are kept on grapheme cluster boundaries
(UAX #29), so no break or cut ever separates a letter from its marks.

adgen breaks where its copy's readers expect it:
- after a space, in every script (Latin copy wraps exactly as it always did: "E-Bike" is one word);
- between characters of the scripts written without spaces (Chinese, Japanese, Thai, ...), at the
  points UAX #14 allows (never before "。" or a small kana) that are also word boundaries by ICU's
  dictionaries (never inside 通勤 or a Thai word). Korean is written with spaces and breaks only there, as headlines are set in Korea.

Display width counts double-width characters as 2, as the ad platforms count length.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

import icu
from fontTools.unicodedata import script

URL = re.compile(r"https?://\S+|www\.\S+")
# Scripts whose text has no spaces between words: a break may fall between two of their characters.
UNSPACED = frozenset({"Hani", "Hira", "Kana", "Bopo", "Thai", "Laoo", "Khmr", "Mymr", "Yiii"})
STOP_TAIL = {"and", "or", "for", "with", "the", "a", "an", "to", "of", "in", "on", "at", "your", "our", "by", "&", "from", "that"}
DANGLING = ",;:-–、，；：・"  # punctuation a shortened text must not end on
FULL_STOPS = (".", "。", "।", "۔")


def display_width(text: str, url_length: int | None = None) -> int:
    """Length as ad platforms count it: double-width (CJK) characters count 2; URLs count
    `url_length` each where the platform says so (X counts every URL as 23)."""
    if url_length is not None:
        text = URL.sub("x" * url_length, text)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _boundaries(iterator: icu.BreakIterator, text: str) -> set[int]:
    """ICU's boundaries, converted from UTF-16 offsets to indices into the Python string."""
    index_of, offset = {}, 0
    for index, ch in enumerate(text):
        index_of[offset] = index
        offset += 2 if ord(ch) > 0xFFFF else 1
    index_of[offset] = len(text)
    iterator.setText(text)
    return {index_of[b] for b in iterator}


def graphemes(text: str) -> list[str]:
    """User-perceived characters (extended grapheme clusters): 'क्षि' is one, 'สำ' is one."""
    cuts = sorted(_boundaries(icu.BreakIterator.createCharacterInstance(icu.Locale.getRoot()), text) | {0})
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]


def word_boundaries(text: str) -> frozenset[int]:
    """Indices where a word starts or ends by ICU (UAX #29 with its dictionaries: とても|安い|自転車)."""
    return frozenset({0} | _boundaries(icu.BreakIterator.createWordInstance(icu.Locale.getRoot()), text))


def break_points(text: str) -> list[int]:
    """Indices where a line of `text` may break, by the rules in the module docstring."""
    root = icu.Locale.getRoot()
    lines = _boundaries(icu.BreakIterator.createLineInstance(root), text)
    clusters = _boundaries(icu.BreakIterator.createCharacterInstance(root), text)
    # ICU's word boundaries use its Chinese and Japanese dictionaries: 通勤 and 走ろう stay whole.
    words = _boundaries(icu.BreakIterator.createWordInstance(root), text)
    points = []
    for b in sorted(lines & clusters & words):
        if 0 < b < len(text) and (
            text[b - 1].isspace() or script(text[b - 1]) in UNSPACED or script(text[b]) in UNSPACED
        ):
            points.append(b)
    return points


def units(text: str) -> list[str]:
    """The text cut at every break point, whitespace collapsed; each unit keeps its trailing space."""
    return list(_units(" ".join(text.split())))


@lru_cache(maxsize=1024)  # fitting a headline wraps the same text at many sizes and widths
def _units(text: str) -> tuple[str, ...]:
    cuts = [0, *break_points(text), len(text)]
    return tuple(text[a:b] for a, b in zip(cuts, cuts[1:], strict=False))


def wrap(text: str, measure: Callable[[str], float], max_w: float) -> list[str]:
    """Greedy wrap at break points so that measure(line) <= max_w; a unit wider than max_w gets a
    line of its own (callers shrink the text when that happens). Latin text wraps at its spaces."""
    pieces = units(text)
    if not pieces:
        raise ValueError("text must not be empty")
    lines = [pieces[0]]
    for piece in pieces[1:]:
        joined = lines[-1] + piece
        if measure(joined.rstrip()) <= max_w:
            lines[-1] = joined
        else:
            lines.append(piece)
    return [line.rstrip() for line in lines]


def balanced(text: str, measure: Callable[[str], float], max_w: float) -> list[str]:
    """Wrap into as few lines as fit max_w, with line lengths as even as possible.

    Greedy wrapping at the full width tends to leave one word alone on the last line; the
    narrowest width that still needs no more lines spreads the words evenly instead.
    """
    line_count = len(wrap(text, measure, max_w))
    low = math.ceil(max(measure(piece.rstrip()) for piece in units(text)))
    high = max_w
    while low < high:
        middle = (low + high) // 2
        if len(wrap(text, measure, middle)) <= line_count:
            high = middle
        else:
            low = middle + 1
    return wrap(text, measure, low)


def shorten(text: str, max_width: int, url_length: int | None = None) -> str | None:
    """Cut text to fit max_width (display width) at a break point, never inside a word or a
    grapheme; drop a dangling 'and', 'for', comma and the like, and keep a closing full stop.
    None when not even the first word fits."""
    if display_width(text, url_length) <= max_width:
        return text
    kept: list[str] = []
    for piece in units(text):
        if display_width("".join(kept + [piece]).rstrip(), url_length) > max_width:
            break
        kept.append(piece)
    while kept and kept[-1].strip().lower().strip(",;:-–") in STOP_TAIL:
        kept.pop()
    out = "".join(kept).rstrip().rstrip(DANGLING + " ")
    if not out:
        return None
    stop = next((s for s in FULL_STOPS if text.rstrip().endswith(s)), None)
    if stop and not out.endswith((*FULL_STOPS, "?", "？")) and display_width(out + stop, url_length) <= max_width:
        out += stop
    return out
