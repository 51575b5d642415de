"""Set one line of text in any script: split it by script and font, order it for direction, measure, draw.

A line such as "風 Trail E-Bike" or "اشترِ Trail E-Bike الآن" needs several fonts (adgen.fonts picks
one per character) and, where Arabic or Hebrew appears, right-to-left order. `layout_line` cuts the
line into pieces that share a font and a direction, orders them left to right as the Unicode
bidirectional algorithm says (levels from FriBiDi, the library Pillow's RAQM layout uses), and
measures each; `draw_line` draws exactly that. Each piece is shaped by RAQM (HarfBuzz), so Arabic
letters join and Devanagari and Thai marks and conjuncts take their proper forms.

A line made only of Latin, Cyrillic, Greek and common characters is set with Pillow's basic layout
in one piece, exactly as creatives were always drawn, so their pixels do not change.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from fontTools import unicodedata
from PIL import ImageDraw, features

from adgen.fonts import Face, cjk_face, cjk_form, face_for, pil_font

COMMON = ("Zyyy", "Zinh", "Zzzz")  # common (spaces, digits, punctuation), inherited (marks), unknown
SIMPLE_SCRIPTS = frozenset({"Latn", "Cyrl", "Grek", *COMMON})  # set well without shaping
RTL_SCRIPTS = frozenset({"Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm", "Samr", "Mand", "Rohg"})

# FriBiDi paragraph directions (fribidi-bidi-types.h: strong|letter, plus rtl; neutral for "auto").
_PAR_LTR, _PAR_RTL, _PAR_AUTO = 0x110, 0x111, 0x40


class LayoutError(RuntimeError):
    """Complex-script text cannot be laid out on this machine (Pillow lacks RAQM or FriBiDi)."""


def script_of(ch: str) -> str:
    """ISO 15924 code of a character's Unicode script, e.g. Latn, Arab, Hani; Zyyy for common."""
    return unicodedata.script(ch)


def script_runs(text: str) -> list[tuple[str, str]]:
    """(script, text) runs; common and inherited characters join the run before them (or, at the
    start, the run after them), so spaces and punctuation travel with the words they sit between."""
    runs: list[list[str]] = []
    for ch in text:
        script = script_of(ch)
        if runs and (script in COMMON or script == runs[-1][0]):
            runs[-1][1] += ch
        elif runs and runs[-1][0] in COMMON:
            runs[-1] = [script, runs[-1][1] + ch]
        else:
            runs.append([script, ch])
    return [(script, run) for script, run in runs]


def is_rtl_script(script: str) -> bool:
    return script in RTL_SCRIPTS


def text_direction(text: str) -> str:
    """'rtl' when the first strong letter of text is right-to-left (Arabic, Hebrew), else 'ltr'."""
    for ch in text:
        script = script_of(ch)
        if script not in COMMON:
            return "rtl" if script in RTL_SCRIPTS else "ltr"
    return "ltr"


@lru_cache(maxsize=1)
def _fribidi() -> ctypes.CDLL:
    if not (features.check("raqm") and features.check("fribidi")):
        raise LayoutError(
            "Arabic, Hebrew, Devanagari, Thai and CJK text need Pillow's RAQM layout with FriBiDi; "
            "install libfribidi0 (apt-get install libfribidi0)"
        )
    name = ctypes.util.find_library("fribidi") or "libfribidi.so.0"
    lib = ctypes.CDLL(name)
    lib.fribidi_get_par_embedding_levels_ex.restype = ctypes.c_int8
    return lib


def bidi_levels(text: str, direction: str | None = None) -> list[int]:
    """Embedding level of each character by the Unicode bidirectional algorithm (odd means
    right to left). `direction` is the paragraph's ('ltr' or 'rtl'); None takes the first strong
    character's."""
    if not text:
        return []
    lib = _fribidi()
    size = len(text)
    chars = (ctypes.c_uint32 * size)(*map(ord, text))
    types = (ctypes.c_uint32 * size)()
    brackets = (ctypes.c_uint32 * size)()
    levels = (ctypes.c_int8 * size)()
    lib.fribidi_get_bidi_types(chars, size, types)
    lib.fribidi_get_bracket_types(chars, size, types, brackets)
    par = ctypes.c_uint32({"ltr": _PAR_LTR, "rtl": _PAR_RTL, None: _PAR_AUTO}[direction])
    if lib.fribidi_get_par_embedding_levels_ex(types, brackets, size, ctypes.byref(par), levels) == 0:
        raise LayoutError(f"FriBiDi could not resolve the direction of {text!r}")
    return list(levels)


@dataclass(frozen=True)
class Piece:
    """Part of a line set in one face and one direction; x is its left edge from the line's left."""

    text: str
    face: Face
    rtl: bool
    x: float
    width: float


@dataclass(frozen=True)
class LineLayout:
    """A line laid out left to right: its pieces in visual order and its total advance width."""

    text: str
    size: int
    pieces: tuple[Piece, ...]
    width: float
    complex_layout: bool  # set with RAQM; False for the basic layout of simple-script lines
    direction: str  # the paragraph's direction: 'rtl' lines align to the right of their box

    def metrics(self) -> tuple[int, int]:
        """Ascent and descent in pixels: the largest of the faces used."""
        found = [pil_font(p.face, self.size, complex_layout=self.complex_layout).getmetrics() for p in self.pieces]
        return max(a for a, _ in found), max(d for _, d in found)


def _visual_order(items: list[tuple[int, list[str], Face]]) -> list[tuple[int, list[str], Face]]:
    """Reverse runs from the highest level down to the lowest odd one (UAX #9, rule L2)."""
    if not items:
        return items
    highest = max(level for level, _, _ in items)
    lowest_odd = min((level for level, _, _ in items if level % 2), default=highest + 1)
    for level in range(highest, lowest_odd - 1, -1):
        start = None
        for index in range(len(items) + 1):
            inside = index < len(items) and items[index][0] >= level
            if inside and start is None:
                start = index
            elif not inside and start is not None:
                items[start:index] = items[start:index][::-1]
                start = None
    return items


@lru_cache(maxsize=4096)
def _layout(text: str, size: int, language: str, brand: tuple[Face, ...], direction: str | None) -> LineLayout:
    runs = script_runs(text)
    simple = all(script in SIMPLE_SCRIPTS for script, _ in runs)
    cjk = cjk_face(cjk_form(language, text))  # also the fallback for full-width punctuation in any line
    faces = [face_for(ch, script, cjk, brand) for script, run in runs for ch in run]
    paragraph = direction or text_direction(text)
    if simple and paragraph == "ltr" and len(set(faces)) == 1:
        width = pil_font(faces[0], size, complex_layout=False).getlength(text)
        return LineLayout(text, size, (Piece(text, faces[0], False, 0.0, width),), width, False, "ltr")
    levels = bidi_levels(text, paragraph)
    items: list[tuple[int, list[str], Face]] = []
    for ch, level, face in zip(text, levels, faces, strict=True):
        if items and items[-1][0] == level and items[-1][2] == face:
            items[-1][1].append(ch)
        else:
            items.append((level, [ch], face))
    pieces, x = [], 0.0
    for level, chars, face in _visual_order(items):
        run, rtl = "".join(chars), level % 2 == 1
        width = pil_font(face, size, complex_layout=True).getlength(run, direction="rtl" if rtl else "ltr")
        pieces.append(Piece(run, face, rtl, x, width))
        x += width
    return LineLayout(text, size, tuple(pieces), x, True, paragraph)


def layout_line(
    text: str, size: int, *, language: str = "en", brand: Sequence[Face] = (), direction: str | None = None
) -> LineLayout:
    """Lay out one line at `size` pixels for an audience's BCP 47 `language` (which picks the CJK
    forms), with the brand's faces tried first. `direction` forces the paragraph direction;
    None takes the first strong letter's. Raises FontError for a character no face can draw and
    LayoutError where complex text cannot be shaped on this machine."""
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    if not text:
        raise ValueError("text must not be empty")
    return _layout(text, size, language, tuple(brand), direction)


def measure(
    text: str, size: int, *, language: str = "en", brand: Sequence[Face] = (), direction: str | None = None
) -> float:
    """Advance width of one line in pixels, as `draw_line` draws it."""
    return layout_line(text, size, language=language, brand=brand, direction=direction).width


def draw_line(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int,
    *,
    fill: tuple[int, int, int],
    anchor: str = "ls",
    language: str = "en",
    brand: Sequence[Face] = (),
    direction: str | None = None,
) -> LineLayout:
    """Draw one line with its baseline at xy[1]; anchor 'ls', 'ms' or 'rs' puts xy[0] at the
    line's left end, middle or right end (as Pillow's anchors do). `direction` as in
    `layout_line` (an Arabic audience's line is right to left even when it opens with a Latin
    name). Returns the layout drawn."""
    if anchor not in ("ls", "ms", "rs"):
        raise ValueError(f"anchor must be 'ls', 'ms' or 'rs', got {anchor!r}")
    line = layout_line(text, size, language=language, brand=brand, direction=direction)
    if not line.complex_layout:  # one basic piece: Pillow anchors it exactly as creatives always were
        piece = line.pieces[0]
        font = pil_font(piece.face, size, complex_layout=False)
        draw.text(xy, text, font=font, fill=fill, anchor=anchor)
        return line
    left = xy[0] - {"ls": 0.0, "ms": line.width / 2, "rs": line.width}[anchor]
    for piece in line.pieces:
        font = pil_font(piece.face, size, complex_layout=line.complex_layout)
        options = {"direction": "rtl" if piece.rtl else "ltr"} if line.complex_layout else {}
        draw.text((left + piece.x, xy[1]), piece.text, font=font, fill=fill, anchor="ls", **options)
    return line
