"""Setting text for creatives: the font, line pitch, word wrapping (greedy and balanced), and
fitting a headline into a box or a call to action onto a button at the largest size that fits.

Words are never split and text never overflows: when nothing fits, a ValueError says what to
shorten. Everything here measures with one bundled font, so the same text gives the same lines
on every machine.
"""

import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

FONT_PATH = Path(__file__).parent / "data" / "fonts" / "DejaVuSans-Bold.ttf"
LINE_PITCH = 1.12  # headline baseline-to-baseline distance, as a multiple of the font size
SMALLEST_FONT = 6  # below this nothing is legible, so a headline that needs less is an error


@lru_cache(maxsize=256)
def font_at(size: int) -> ImageFont.FreeTypeFont:
    # The basic layout engine gives the same glyph positions with or without libraqm installed.
    return ImageFont.truetype(str(FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


def pitch(size: int) -> int:
    return round(LINE_PITCH * size)


def headline_extent(lines: Sequence[str], size: int) -> tuple[int, int]:
    """Width and height of the headline's box: widest line, first ascender to last descender."""
    font = font_at(size)
    ascent, descent = font.getmetrics()
    width = max(math.ceil(font.getlength(line)) for line in lines)
    return width, (len(lines) - 1) * pitch(size) + ascent + descent


def wrap(words: Sequence[str], font: ImageFont.FreeTypeFont, max_w: float) -> list[str]:
    """Greedy word wrap; a word wider than max_w gets a line of its own."""
    lines = [words[0]]
    for word in words[1:]:
        joined = f"{lines[-1]} {word}"
        if font.getlength(joined) <= max_w:
            lines[-1] = joined
        else:
            lines.append(word)
    return lines


def balanced(words: Sequence[str], font: ImageFont.FreeTypeFont, max_w: int) -> list[str]:
    """Wrap into as few lines as fit max_w, with line lengths as even as possible.

    Greedy wrapping at the full width tends to leave one word alone on the last line; the
    narrowest width that still needs no more lines spreads the words evenly instead.
    """
    line_count = len(wrap(words, font, max_w))
    low = math.ceil(max(font.getlength(word) for word in words))
    high = max_w
    while low < high:
        middle = (low + high) // 2
        if len(wrap(words, font, middle)) <= line_count:
            high = middle
        else:
            low = middle + 1
    return wrap(words, font, low)


def fit_headline(
    words: Sequence[str], *, max_w: int, max_h: int, max_size: int, max_lines: int, canvas: tuple[int, int]
) -> tuple[int, tuple[str, ...]]:
    """Largest font size, and its lines, at which the headline fits max_w x max_h.

    Sizes down to half of max_size must fit within max_lines; below that more lines are allowed,
    because five readable lines beat three unreadable ones. A word is never split: when even one
    word is too wide, only a smaller size helps.
    """
    readable = max(SMALLEST_FONT, max_size // 2)
    attempts = [(size, max_lines) for size in range(max_size, readable - 1, -1)]
    attempts += [(size, len(words)) for size in range(max_size, SMALLEST_FONT - 1, -1)]
    for size, line_limit in attempts:
        font = font_at(size)
        if max(font.getlength(word) for word in words) > max_w:
            continue
        lines = wrap(words, font, max_w)
        if len(lines) <= line_limit and headline_extent(lines, size)[1] <= max_h:
            return size, tuple(balanced(words, font, max_w))
    raise ValueError(
        f"headline does not fit a {canvas[0]}x{canvas[1]} creative even at {SMALLEST_FONT}px; "
        f"shorten it (it has {len(words)} words)"
    )


def button_shape(lines: Sequence[str], size: int) -> tuple[int, int]:
    """Width and height of a button whose label lines are set at `size` pixels."""
    width = max(math.ceil(font_at(size).getlength(line)) for line in lines)
    return width + 2 * round(1.15 * size), round(2.4 * size) + (len(lines) - 1) * pitch(size)


def fit_button(
    label: str, max_w: int, size: int, *, max_h: int | None = None
) -> tuple[int, tuple[str, ...], int, int]:
    """Font size, label lines, width and height of the largest button that fits.

    The label stays on one line while that keeps it at least three quarters of `size`; after
    that two lines at a larger size read better than one tiny line.
    """
    size = max(size, 12)  # smaller labels are hard to read and to tap
    words = label.split()
    attempts = [(candidate, 1) for candidate in range(size, math.ceil(0.75 * size) - 1, -1)]
    attempts += [(candidate, 2) for candidate in range(size, SMALLEST_FONT - 1, -1)]
    for candidate, line_limit in attempts:
        padding = 2 * round(1.15 * candidate)
        font = font_at(candidate)
        if max(font.getlength(word) for word in words) > max_w - padding:
            continue
        lines = balanced(words, font, max_w - padding)
        if len(lines) > line_limit:
            continue
        width, height = button_shape(lines, candidate)
        if max_h is None or height <= max_h:
            return candidate, tuple(lines), width, height
    raise ValueError(f"cta {label!r} does not fit on a button {max_w}px wide; shorten it")
