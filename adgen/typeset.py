"""Setting text for creatives: line pitch, line wrapping (greedy and balanced), and fitting a
headline into a box or a call to action onto a button at the largest size that fits.

Text is measured as `adgen.scripts` draws it (a font per character, shaping, direction) for a
`Setting`: the audience's language and the brand's own fonts. Lines break only where Unicode
allows (`adgen.linebreak`: at spaces in Latin, between words in Japanese or Thai), a word or
grapheme is never split and text never overflows: when nothing fits, a ValueError says what to
shorten. Only bundled fonts are used, so the same text gives the same lines on every machine.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

from adgen import linebreak, scripts
from adgen.fonts import Face, pil_font
from adgen.languages import direction

FONT_PATH = Path(__file__).parent / "data" / "fonts" / "DejaVuSans-Bold.ttf"
LINE_PITCH = 1.12  # headline baseline-to-baseline distance, as a multiple of the font size
SMALLEST_FONT = 6  # below this nothing is legible, so a headline that needs less is an error


@lru_cache(maxsize=256)
def font_at(size: int) -> ImageFont.FreeTypeFont:
    # The basic layout engine gives the same glyph positions with or without libraqm installed.
    return ImageFont.truetype(str(FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


@dataclass(frozen=True)
class Setting:
    """How text is set for one creative: the audience's BCP 47 language (CJK glyph forms, direction)
    and the brand's own faces, tried before the bundled ones."""

    language: str = "en"
    brand: tuple[Face, ...] = ()

    @property
    def direction(self) -> str:
        return _direction(self.language)

    def line(self, text: str, size: int) -> scripts.LineLayout:
        return scripts.layout_line(text, size, language=self.language, brand=self.brand, direction=self.direction)

    def measure(self, text: str, size: int) -> float:
        return self.line(text, size).width


LATIN = Setting()


@lru_cache(maxsize=64)
def _direction(language: str) -> str:
    return direction(language)


def pitch(size: int) -> int:
    return round(LINE_PITCH * size)


def headline_extent(lines: Sequence[str], size: int, setting: Setting = LATIN) -> tuple[int, int]:
    """Width and height of the headline's box: widest line, first ascender to last descender."""
    ascent, descent = metrics(lines, size, setting)
    width = max(math.ceil(setting.measure(line, size)) for line in lines)
    return width, (len(lines) - 1) * pitch(size) + ascent + descent


def metrics(lines: Sequence[str], size: int, setting: Setting = LATIN) -> tuple[int, int]:
    """Ascent and descent of the lines: the largest of the faces they use."""
    found = [setting.line(line, size).metrics() for line in lines]
    return max(a for a, _ in found), max(d for _, d in found)


def ink_box(text: str, size: int, setting: Setting = LATIN) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of one line's ink around its baseline start (anchor 'ls')."""
    line = setting.line(text, size)
    if not line.complex_layout:
        return pil_font(line.pieces[0].face, size, complex_layout=False).getbbox(text, anchor="ls")
    ascent, descent = line.metrics()
    return 0, -ascent, math.ceil(line.width), descent


def _widest_unit(text: str, size: int, setting: Setting) -> float:
    return max(setting.measure(unit.rstrip(), size) for unit in linebreak.units(text) if unit.strip())


def fit_headline(
    text: str, *, max_w: int, max_h: int, max_size: int, max_lines: int, canvas: tuple[int, int],
    setting: Setting = LATIN,
) -> tuple[int, tuple[str, ...]]:
    """Largest font size, and its lines, at which the headline fits max_w x max_h.

    Sizes down to half of max_size must fit within max_lines; below that more lines are allowed,
    because five readable lines beat three unreadable ones. A word is never split: when even one
    word is too wide, only a smaller size helps.
    """
    readable = max(SMALLEST_FONT, max_size // 2)
    attempts = [(size, max_lines) for size in range(max_size, readable - 1, -1)]
    unit_count = len(linebreak.units(text))
    attempts += [(size, unit_count) for size in range(max_size, SMALLEST_FONT - 1, -1)]
    for size, line_limit in attempts:
        if _widest_unit(text, size, setting) > max_w:
            continue
        lines = linebreak.wrap(text, lambda line, size=size: setting.measure(line, size), max_w)
        if len(lines) <= line_limit and headline_extent(lines, size, setting)[1] <= max_h:
            return size, tuple(linebreak.balanced(text, lambda line, size=size: setting.measure(line, size), max_w))
    raise ValueError(
        f"headline does not fit a {canvas[0]}x{canvas[1]} creative even at {SMALLEST_FONT}px; "
        f"shorten it (it has {unit_count} words)"
    )


def button_shape(lines: Sequence[str], size: int, setting: Setting = LATIN) -> tuple[int, int]:
    """Width and height of a button whose label lines are set at `size` pixels."""
    width = max(math.ceil(setting.measure(line, size)) for line in lines)
    return width + 2 * round(1.15 * size), round(2.4 * size) + (len(lines) - 1) * pitch(size)


def fit_button(
    label: str, max_w: int, size: int, *, max_h: int | None = None, setting: Setting = LATIN
) -> tuple[int, tuple[str, ...], int, int]:
    """Font size, label lines, width and height of the largest button that fits.

    The label stays on one line while that keeps it at least three quarters of `size`; after
    that two lines at a larger size read better than one tiny line.
    """
    size = max(size, 12)  # smaller labels are hard to read and to tap
    attempts = [(candidate, 1) for candidate in range(size, math.ceil(0.75 * size) - 1, -1)]
    attempts += [(candidate, 2) for candidate in range(size, SMALLEST_FONT - 1, -1)]
    for candidate, line_limit in attempts:
        padding = 2 * round(1.15 * candidate)
        if _widest_unit(label, candidate, setting) > max_w - padding:
            continue
        lines = linebreak.balanced(label, lambda line, size=candidate: setting.measure(line, size), max_w - padding)
        if len(lines) > line_limit:
            continue
        width, height = button_shape(lines, candidate, setting)
        if max_h is None or height <= max_h:
            return candidate, tuple(lines), width, height
    raise ValueError(f"cta {label!r} does not fit on a button {max_w}px wide; shorten it")
