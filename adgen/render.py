"""Compose finished ad creatives: background image, headline, call-to-action button and logo.

The image model never draws text. This module takes a generated background and lays out the ad
at a placement's exact pixel size: the photo fills its region, a band in the brand's primary
colour carries the headline and a call-to-action button, and the logo (or, without one, the brand
name as a small wordmark) sits on a plate in a corner. Headlines are fitted by shrinking and
wrapping at word boundaries, never cut and never overflowing, and no text or logo enters the
placement's safe zones (e.g. the top 14% and bottom 20% of a Meta story).

Layout is planned before it is drawn: `plan_layout` returns every box as a `Layout`, and
`render_creative` draws exactly that plan, so callers and tests can check where the headline,
button and logo went without reading pixels. The arrangement follows the aspect ratio:

- "overlay" (square, portrait, story, 300x250, skyscrapers): photo on top, colour band at the
  bottom with the headline above the button; text is centred on narrow canvases.
- "split" (landscape, about 1.91:1): colour panel at the left holding logo, headline and button,
  photo at the right.
- "strip" (leaderboards such as 728x90 and 970x90): photo at the left, then logo, headline and
  button in one row.

Rendering is deterministic: the same inputs give the same pixels and the same PNG bytes.
"""

from __future__ import annotations

import colorsys
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

FONT_PATH = Path(__file__).parent / "data" / "fonts" / "DejaVuSans-Bold.ttf"

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
INK: RGB = (24, 24, 24)

MIN_CONTRAST = 4.5  # WCAG AA for normal-size text; ad text is often small on banners
LINE_PITCH = 1.12  # headline baseline-to-baseline distance, as a multiple of the font size
SMALLEST_FONT = 6  # below this nothing is legible, so a headline that needs less is an error
SUPERSAMPLE = 4  # rounded shapes are drawn this much larger and reduced, for smooth edges
MIN_SIDE = 32

Arrangement = Literal["overlay", "split", "strip"]


@dataclass(frozen=True)
class TextBox:
    """An axis-aligned box in pixels; (x, y) is its top-left corner."""

    x: int
    y: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.x + self.width

    @property
    def bottom(self) -> int:
        return self.y + self.height


@dataclass(frozen=True)
class Palette:
    """The colours actually drawn, after missing roles are derived and contrast is enforced."""

    band: RGB  # panel behind the headline: the brand's primary colour
    headline: RGB  # headline text, at least 4.5:1 against `band`
    button: RGB  # call-to-action fill: the accent, darkened only if its label needs it
    button_text: RGB  # at least 4.5:1 against `button`
    plate: RGB  # plate behind the logo or wordmark: the brand's light colour
    wordmark: RGB  # brand name text, at least 4.5:1 against `plate`


@dataclass(frozen=True)
class Layout:
    """Where everything goes on one creative; `render_creative` draws exactly this."""

    width: int
    height: int
    arrangement: Arrangement
    photo: TextBox  # region the background image is fitted into
    band: TextBox  # solid primary-colour region behind the text
    fade: int  # pixels over which the photo blends into the band at their shared edge
    headline: TextBox  # bounds of the headline text (ascender to descender of its lines)
    headline_lines: tuple[str, ...]
    headline_size: int  # font size in pixels
    centered: bool  # headline lines centred in their box rather than left-aligned
    cta: TextBox | None  # the whole button; None when the placement has no call to action
    cta_lines: tuple[str, ...]  # the button label; long labels on narrow canvases take two lines
    cta_size: int
    logo: TextBox | None  # the plate holding the logo or wordmark; None when neither is given
    logo_pad: int  # plate padding around the logo image or wordmark
    wordmark: str  # brand name drawn on the plate when no logo image is given, else ""
    wordmark_size: int
    palette: Palette


@dataclass(frozen=True)
class _Spec:
    """Validated inputs that the arrangement planners share."""

    width: int
    height: int
    words: tuple[str, ...]
    cta: str
    top: int  # first row text and logo may use
    bottom: int  # row below the last one text and logo may use
    logo_aspect: float | None
    brand_name: str
    palette: Palette


@dataclass(frozen=True)
class _Plate:
    """Size of the logo plate, its padding, and the wordmark font size (0 for a logo image)."""

    width: int
    height: int
    pad: int
    wordmark_size: int


def fit_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height and center-crop to exact size (RGB)."""
    if width < 1 or height < 1:
        raise ValueError(f"fit_image: width and height must be positive, got {width}x{height}")
    return ImageOps.fit(image.convert("RGB"), (width, height), method=Image.Resampling.LANCZOS)


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes, deterministic (no metadata/timestamps), compress_level=1 for speed."""
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    # A fresh image carries no info dict, so no ICC profile or text chunks leak into the file.
    bare = Image.frombytes(image.mode, image.size, image.tobytes())
    buffer = io.BytesIO()
    bare.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def plan_layout(
    *,
    width: int,
    height: int,
    headline: str,
    cta: str,
    colors: Sequence[str],
    logo: Image.Image | None = None,
    brand_name: str = "",
    safe_top: float = 0.0,
    safe_bottom: float = 0.0,
) -> Layout:
    """Decide where the photo, band, headline, button and logo go; arguments as `render_creative`.

    Every text box and the logo plate lie inside the canvas, between `safe_top * height` and
    `(1 - safe_bottom) * height`, and do not overlap each other. Raises ValueError, naming the
    field, for invalid input or text that cannot fit even at the smallest legible size.
    """
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ValueError(f"width and height must be at least {MIN_SIDE}, got {width}x{height}")
    for name, value in (("safe_top", safe_top), ("safe_bottom", safe_bottom)):
        if not 0.0 <= value < 0.5:
            raise ValueError(f"{name} must be a fraction in [0, 0.5), got {value}")
    if safe_top + safe_bottom > 0.6:
        raise ValueError(
            f"safe_top + safe_bottom must leave at least 40% of the height, got {safe_top} + {safe_bottom}"
        )
    if not headline.strip():
        raise ValueError("headline must not be empty")
    spec = _Spec(
        width=width,
        height=height,
        words=tuple(headline.split()),
        cta=" ".join(cta.split()),
        top=math.ceil(height * safe_top),
        bottom=height - math.ceil(height * safe_bottom),
        logo_aspect=None if logo is None else _aspect(_trimmed(logo)),
        brand_name=" ".join(brand_name.split()),
        palette=_palette(colors),
    )
    aspect = width / height
    if aspect >= 3.0:
        return _plan_strip(spec)
    if aspect >= 1.5:
        return _plan_split(spec)
    return _plan_overlay(spec)


def render_creative(
    background: Image.Image,
    *,
    width: int,
    height: int,
    headline: str,
    cta: str,
    colors: Sequence[str],
    logo: Image.Image | None = None,
    brand_name: str = "",
    safe_top: float = 0.0,
    safe_bottom: float = 0.0,
) -> Image.Image:
    """Lay out the finished ad at exactly width x height and return it as an RGB image.

    background: the generated image, any size; it is scaled and cropped to fill its region.
    headline: drawn as given, wrapped at spaces and shrunk to fit, never cut.
    cta: the button label; "" for placements without a call to action draws no button.
    colors: brand colours as "#RRGGBB": colors[0] primary (dark, fills the text band),
        colors[1] light (logo plate, headline text where readable), colors[2] accent (button).
        Missing ones are derived from the primary.
    logo: any size, RGB or RGBA; transparent margins are trimmed and the aspect ratio kept.
    brand_name: drawn as a small wordmark when no logo is given.
    safe_top, safe_bottom: fractions of the height kept free of text and logo.

    The boxes used are those of `plan_layout` called with the same arguments.
    """
    layout = plan_layout(
        width=width,
        height=height,
        headline=headline,
        cta=cta,
        colors=colors,
        logo=logo,
        brand_name=brand_name,
        safe_top=safe_top,
        safe_bottom=safe_bottom,
    )
    canvas = Image.new("RGB", (width, height), layout.palette.band)
    canvas.paste(_faded_photo(background, layout), (layout.photo.x, layout.photo.y))
    if layout.logo is not None:
        _draw_logo(canvas, layout, logo)
    _draw_headline(canvas, layout)
    if layout.cta is not None:
        _draw_button(canvas, layout)
    return canvas


# Arrangements. Sizes are fractions of the canvas so every placement keeps the same proportions.


def _plan_overlay(spec: _Spec) -> Layout:
    """Photo above, band at the bottom with headline over button; logo plate at the top."""
    w, h = spec.width, spec.height
    short = min(w, h)
    narrow = w / h < 0.45  # skyscrapers: width is scarce, so text and logo take more of it
    centered = w / h < 0.7
    margin = max(8, round((0.08 if narrow else 0.065) * short))

    if narrow:
        plate = _plan_plate(spec, round(0.62 * w), round(0.3 * w), wordmark_w=w - 2 * margin)
    else:
        # Never under 36 px tall, or a logo on a 300x250 banner becomes an unrecognisable dot.
        plate = _plan_plate(spec, round(0.24 * short), max(36, round(0.12 * short)), wordmark_w=w // 2)
    logo = None
    if plate is not None:
        plate_x = (w - plate.width) // 2 if centered else margin
        logo = TextBox(plate_x, spec.top + margin, plate.width, plate.height)

    cta, cta_size, cta_lines = None, 0, ()
    text_bottom = spec.bottom - margin
    if spec.cta:
        cta_size, cta_lines, cta_w, cta_h = _fit_button(
            spec.cta, w - 2 * margin, round((0.075 if narrow else 0.038) * short)
        )
        cta_x = (w - cta_w) // 2 if centered else margin
        cta = TextBox(cta_x, spec.bottom - margin - cta_h, cta_w, cta_h)
        text_bottom = cta.y - round(0.8 * cta_size)

    above = logo.bottom if logo is not None else spec.top
    max_text_h = min(text_bottom - above - margin, round(0.34 * h))
    size, lines = _fit_headline(
        spec,
        max_w=w - 2 * margin,
        max_h=max_text_h,
        max_size=round((0.13 if narrow else 0.08) * short),
        max_lines=4 if narrow else 3,
    )
    text_w, text_h = _headline_extent(lines, size)
    text_x = (w - text_w) // 2 if centered else margin
    text = TextBox(text_x, text_bottom - text_h, text_w, text_h)

    # The ascender space above the first line already pads the text, so half a margin suffices.
    band_y = max(text.y - margin // 2, above)
    return _layout(
        spec,
        "overlay",
        photo=TextBox(0, 0, w, band_y),
        band=TextBox(0, band_y, w, h - band_y),
        fade=min(band_y, round(0.16 * h)),
        text=text,
        lines=lines,
        size=size,
        centered=centered,
        cta=cta,
        cta_size=cta_size,
        cta_lines=cta_lines,
        logo=logo,
        plate=plate,
    )


def _plan_split(spec: _Spec) -> Layout:
    """Panel at the left with logo on top and headline over button; photo at the right."""
    w, h = spec.width, spec.height
    margin = max(8, round(0.075 * h))
    panel_w = round(0.48 * w)
    column_w = panel_w - 2 * margin

    plate = _plan_plate(spec, round(0.36 * h), round(0.15 * h), wordmark_w=column_w)
    logo = None if plate is None else TextBox(margin, spec.top + margin, plate.width, plate.height)

    cta_size, cta_lines, cta_w, cta_h, gap = 0, (), 0, 0, 0
    if spec.cta:
        cta_size, cta_lines, cta_w, cta_h = _fit_button(spec.cta, column_w, round(0.05 * h))
        gap = round(0.9 * cta_size)
    above = (logo.bottom if logo is not None else spec.top) + margin
    below = spec.bottom - margin
    size, lines = _fit_headline(
        spec, max_w=column_w, max_h=below - above - gap - cta_h, max_size=round(0.1 * h), max_lines=4
    )
    text_w, text_h = _headline_extent(lines, size)
    # The headline and button sit together, centred in the space the logo leaves.
    block_y = above + (below - above - (text_h + gap + cta_h)) // 2
    text = TextBox(margin, block_y, text_w, text_h)
    cta = TextBox(margin, text.bottom + gap, cta_w, cta_h) if spec.cta else None

    return _layout(
        spec,
        "split",
        photo=TextBox(panel_w, 0, w - panel_w, h),
        band=TextBox(0, 0, panel_w, h),
        fade=round(0.25 * (w - panel_w)),
        text=text,
        lines=lines,
        size=size,
        centered=False,
        cta=cta,
        cta_size=cta_size,
        cta_lines=cta_lines,
        logo=logo,
        plate=plate,
    )


def _plan_strip(spec: _Spec) -> Layout:
    """One row: photo at the left, then logo plate, headline, and the button at the right."""
    w, h = spec.width, spec.height
    margin = max(4, round(0.14 * h))
    inner_h = spec.bottom - spec.top - 2 * margin
    middle = (spec.top + spec.bottom) // 2
    photo_w = min(round(0.22 * w), round(2.2 * h))

    plate = _plan_plate(spec, round(1.5 * h), round(0.7 * inner_h), wordmark_w=round(0.18 * w))
    logo = None
    if plate is not None:
        logo = TextBox(photo_w + margin, middle - plate.height // 2, plate.width, plate.height)

    cta, cta_size, cta_lines = None, 0, ()
    text_right = w - margin
    if spec.cta:
        cta_size, cta_lines, cta_w, cta_h = _fit_button(
            spec.cta, round(0.22 * w), round(0.2 * h), max_h=inner_h
        )
        cta = TextBox(w - margin - cta_w, middle - cta_h // 2, cta_w, cta_h)
        text_right = cta.x - round(1.4 * margin)

    text_x = (logo.right if logo is not None else photo_w) + round(1.4 * margin)
    size, lines = _fit_headline(
        spec,
        max_w=text_right - text_x,
        max_h=inner_h,
        max_size=round(0.27 * h),
        max_lines=2,
    )
    text_w, text_h = _headline_extent(lines, size)
    text = TextBox(text_x, middle - text_h // 2, text_w, text_h)

    return _layout(
        spec,
        "strip",
        photo=TextBox(0, 0, photo_w, h),
        band=TextBox(photo_w, 0, w - photo_w, h),
        fade=round(0.45 * photo_w),
        text=text,
        lines=lines,
        size=size,
        centered=False,
        cta=cta,
        cta_size=cta_size,
        cta_lines=cta_lines,
        logo=logo,
        plate=plate,
    )


def _layout(
    spec: _Spec,
    arrangement: Arrangement,
    *,
    photo: TextBox,
    band: TextBox,
    fade: int,
    text: TextBox,
    lines: tuple[str, ...],
    size: int,
    centered: bool,
    cta: TextBox | None,
    cta_size: int,
    cta_lines: tuple[str, ...],
    logo: TextBox | None,
    plate: _Plate | None,
) -> Layout:
    """The public layout, from what a planner decided."""
    return Layout(
        width=spec.width,
        height=spec.height,
        arrangement=arrangement,
        photo=photo,
        band=band,
        fade=fade,
        headline=text,
        headline_lines=lines,
        headline_size=size,
        centered=centered,
        cta=cta,
        cta_lines=cta_lines,
        cta_size=cta_size,
        logo=logo,
        logo_pad=0 if plate is None else plate.pad,
        wordmark=spec.brand_name if plate is not None and spec.logo_aspect is None else "",
        wordmark_size=0 if plate is None else plate.wordmark_size,
        palette=spec.palette,
    )


# Fitting text and logo.


@lru_cache(maxsize=256)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # The basic layout engine gives the same glyph positions with or without libraqm installed.
    return ImageFont.truetype(str(FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


def _pitch(size: int) -> int:
    return round(LINE_PITCH * size)


def _headline_extent(lines: Sequence[str], size: int) -> tuple[int, int]:
    """Width and height of the headline's box: widest line, first ascender to last descender."""
    font = _font(size)
    ascent, descent = font.getmetrics()
    width = max(math.ceil(font.getlength(line)) for line in lines)
    return width, (len(lines) - 1) * _pitch(size) + ascent + descent


def _wrap(words: Sequence[str], font: ImageFont.FreeTypeFont, max_w: float) -> list[str]:
    """Greedy word wrap; a word wider than max_w gets a line of its own."""
    lines = [words[0]]
    for word in words[1:]:
        joined = f"{lines[-1]} {word}"
        if font.getlength(joined) <= max_w:
            lines[-1] = joined
        else:
            lines.append(word)
    return lines


def _balanced(words: Sequence[str], font: ImageFont.FreeTypeFont, max_w: int) -> list[str]:
    """Wrap into as few lines as fit max_w, with line lengths as even as possible.

    Greedy wrapping at the full width tends to leave one word alone on the last line; the
    narrowest width that still needs no more lines spreads the words evenly instead.
    """
    line_count = len(_wrap(words, font, max_w))
    low = math.ceil(max(font.getlength(word) for word in words))
    high = max_w
    while low < high:
        middle = (low + high) // 2
        if len(_wrap(words, font, middle)) <= line_count:
            high = middle
        else:
            low = middle + 1
    return _wrap(words, font, low)


def _fit_headline(
    spec: _Spec, *, max_w: int, max_h: int, max_size: int, max_lines: int
) -> tuple[int, tuple[str, ...]]:
    """Largest font size, and its lines, at which the headline fits max_w x max_h.

    Sizes down to half of max_size must fit within max_lines; below that more lines are allowed,
    because five readable lines beat three unreadable ones. A word is never split: when even one
    word is too wide, only a smaller size helps.
    """
    readable = max(SMALLEST_FONT, max_size // 2)
    attempts = [(size, max_lines) for size in range(max_size, readable - 1, -1)]
    attempts += [(size, len(spec.words)) for size in range(max_size, SMALLEST_FONT - 1, -1)]
    for size, line_limit in attempts:
        font = _font(size)
        if max(font.getlength(word) for word in spec.words) > max_w:
            continue
        lines = _wrap(spec.words, font, max_w)
        if len(lines) <= line_limit and _headline_extent(lines, size)[1] <= max_h:
            return size, tuple(_balanced(spec.words, font, max_w))
    raise ValueError(
        f"headline does not fit a {spec.width}x{spec.height} creative even at {SMALLEST_FONT}px; "
        f"shorten it (it has {len(spec.words)} words)"
    )


def _button_shape(lines: Sequence[str], size: int) -> tuple[int, int]:
    """Width and height of a button whose label lines are set at `size` pixels."""
    width = max(math.ceil(_font(size).getlength(line)) for line in lines)
    return width + 2 * round(1.15 * size), round(2.4 * size) + (len(lines) - 1) * _pitch(size)


def _fit_button(
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
        font = _font(candidate)
        if max(font.getlength(word) for word in words) > max_w - padding:
            continue
        lines = _balanced(words, font, max_w - padding)
        if len(lines) > line_limit:
            continue
        width, height = _button_shape(lines, candidate)
        if max_h is None or height <= max_h:
            return candidate, tuple(lines), width, height
    raise ValueError(f"cta {label!r} does not fit on a button {max_w}px wide; shorten it")


def _trimmed(logo: Image.Image) -> Image.Image:
    """The logo as RGBA without its fully transparent margins."""
    rgba = logo.convert("RGBA")
    bounds = rgba.getchannel("A").getbbox()
    if bounds is None:
        raise ValueError("logo is fully transparent")
    return rgba.crop(bounds)


def _aspect(image: Image.Image) -> float:
    return image.width / image.height


def _plan_plate(spec: _Spec, max_w: int, max_h: int, *, wordmark_w: int) -> _Plate | None:
    """The plate for the logo image within max_w x max_h, or for the wordmark; None for neither.

    A wordmark is one line of text, so it may use the wider wordmark_w, with a font sized from max_h.
    """
    pad = max(3, round(0.14 * max_h))
    inner_w, inner_h = max_w - 2 * pad, max_h - 2 * pad
    if spec.logo_aspect is not None:
        logo_w = max(1, min(inner_w, round(inner_h * spec.logo_aspect)))
        logo_h = max(1, min(inner_h, round(logo_w / spec.logo_aspect)))
        return _Plate(logo_w + 2 * pad, logo_h + 2 * pad, pad, 0)
    if not spec.brand_name:
        return None
    for size in range(max(12, round(0.4 * inner_h)), SMALLEST_FONT - 1, -1):
        left, top, right, bottom = _font(size).getbbox(spec.brand_name, anchor="ls")
        if right - left <= wordmark_w - 2 * pad:
            return _Plate(right - left + 2 * pad, bottom - top + 2 * pad, pad, size)
    raise ValueError(f"brand_name {spec.brand_name!r} does not fit its {wordmark_w}px plate; shorten it")


# Colour.


def _parse_hex(value: object) -> RGB:
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        raise ValueError(f"colors: {value!r} is not a '#RRGGBB' colour")
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def _luminance(color: RGB) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in color]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast_ratio(first: RGB, second: RGB) -> float:
    """WCAG 2 contrast ratio between two colours, from 1 (same) to 21 (black on white)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _mix(color: RGB, other: RGB, amount: float) -> RGB:
    red, green, blue = (round(c + (o - c) * amount) for c, o in zip(color, other, strict=True))
    return red, green, blue


def _readable(fill: RGB, light: RGB, dark: RGB) -> tuple[RGB, RGB]:
    """A fill and text colour with at least MIN_CONTRAST between them, preferring brand colours.

    Mid-tone fills such as a terracotta accent read best with light text even where white falls
    just short of 4.5:1, so those are darkened a little rather than given black text.
    """
    if _contrast_ratio(WHITE, fill) >= 3.0:
        for text in (light, WHITE):
            if _contrast_ratio(text, fill) >= MIN_CONTRAST:
                return fill, text
        for step in range(1, 51):
            darker = _mix(fill, BLACK, step / 50)
            if _contrast_ratio(WHITE, darker) >= MIN_CONTRAST:
                return darker, WHITE
    for text in (dark, INK):
        if _contrast_ratio(text, fill) >= MIN_CONTRAST:
            return fill, text
    # White scoring below 3:1 means the fill is light enough for black to reach at least 7:1.
    return fill, BLACK


def _derived_accent(primary: RGB) -> RGB:
    """A button colour for brands that give no accent: a vivid tone of the primary's hue."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(c / 255 for c in primary))
    if saturation < 0.1:
        # A grey has no hue worth keeping; a plain white or black button reads as intended.
        return WHITE if lightness < 0.5 else INK
    red, green, blue = colorsys.hls_to_rgb(
        hue, 0.55 if lightness < 0.5 else 0.35, min(0.85, max(0.6, saturation))
    )
    return round(red * 255), round(green * 255), round(blue * 255)


def _palette(colors: Sequence[str]) -> Palette:
    if isinstance(colors, str) or len(colors) == 0:
        raise ValueError(f"colors must be a list of '#RRGGBB' strings, primary first; got {colors!r}")
    parsed = [_parse_hex(color) for color in colors]
    primary = parsed[0]
    light = parsed[1] if len(parsed) > 1 else _mix(primary, WHITE, 0.9)
    accent = parsed[2] if len(parsed) > 2 else _derived_accent(primary)
    dark = primary if _luminance(primary) < 0.1 else INK
    band, headline = _readable(primary, light, dark)
    button, button_text = _readable(accent, light, dark)
    plate, wordmark = _readable(light, WHITE, dark)
    return Palette(band, headline, button, button_text, plate, wordmark)


# Drawing.


def _faded_photo(background: Image.Image, layout: Layout) -> Image.Image:
    """The background fitted to its region, blending into the band along their shared edge."""
    box = layout.photo
    photo = fit_image(background, box.width, box.height)
    fade = min(layout.fade, box.width if layout.arrangement != "overlay" else box.height)
    if fade <= 0:
        return photo
    position = np.linspace(0.0, 1.0, fade, dtype=np.float64)
    ramp = position * position * (3.0 - 2.0 * position)  # smoothstep: no visible start or end
    alpha = np.zeros((box.height, box.width), dtype=np.float64)
    if layout.arrangement == "overlay":
        alpha[box.height - fade :, :] = ramp[:, None]
    elif layout.arrangement == "split":
        alpha[:, :fade] = ramp[::-1][None, :]
    else:
        alpha[:, box.width - fade :] = ramp[None, :]
    mask = Image.fromarray(np.round(alpha * 255).astype(np.uint8))
    return Image.composite(Image.new("RGB", photo.size, layout.palette.band), photo, mask)


def _rounded(canvas: Image.Image, box: TextBox, radius: float, color: RGB) -> None:
    """Fill an anti-aliased rounded rectangle; ImageDraw's own edges are jagged."""
    big = Image.new("L", (box.width * SUPERSAMPLE, box.height * SUPERSAMPLE), 0)
    ImageDraw.Draw(big).rounded_rectangle(
        (0, 0, big.width - 1, big.height - 1), radius=round(radius * SUPERSAMPLE), fill=255
    )
    mask = big.resize((box.width, box.height), Image.Resampling.BOX)
    canvas.paste(color, (box.x, box.y, box.right, box.bottom), mask)


def _draw_logo(canvas: Image.Image, layout: Layout, logo: Image.Image | None) -> None:
    plate, pad, palette = layout.logo, layout.logo_pad, layout.palette
    assert plate is not None
    _rounded(canvas, plate, radius=0.22 * min(plate.width, plate.height), color=palette.plate)
    if layout.wordmark:
        font = _font(layout.wordmark_size)
        left, top, _, _ = font.getbbox(layout.wordmark, anchor="ls")
        ImageDraw.Draw(canvas).text(
            (plate.x + pad - left, plate.y + pad - top),
            layout.wordmark,
            font=font,
            fill=palette.wordmark,
            anchor="ls",
        )
        return
    assert logo is not None
    size = (plate.width - 2 * pad, plate.height - 2 * pad)
    # Premultiplied alpha keeps transparent pixels' colour from bleeding into the edges.
    scaled = _trimmed(logo).convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    canvas.paste(scaled.convert("RGB"), (plate.x + pad, plate.y + pad), scaled.getchannel("A"))


def _draw_headline(canvas: Image.Image, layout: Layout) -> None:
    font = _font(layout.headline_size)
    ascent, _ = font.getmetrics()
    draw = ImageDraw.Draw(canvas)
    box = layout.headline
    for index, line in enumerate(layout.headline_lines):
        x = box.x + round((box.width - font.getlength(line)) / 2) if layout.centered else box.x
        baseline = box.y + ascent + index * _pitch(layout.headline_size)
        draw.text((x, baseline), line, font=font, fill=layout.palette.headline, anchor="ls")


def _draw_button(canvas: Image.Image, layout: Layout) -> None:
    box, palette, size = layout.cta, layout.palette, layout.cta_size
    assert box is not None
    _rounded(canvas, box, radius=0.3 * _button_shape(layout.cta_lines[:1], size)[1], color=palette.button)
    font = _font(size)
    # Centre the capital height, not the ascender-to-descender span, so the label looks centred.
    cap_height = -font.getbbox("H", anchor="ls")[1]
    label_height = cap_height + (len(layout.cta_lines) - 1) * _pitch(size)
    first_baseline = box.y + (box.height - label_height) // 2 + cap_height
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(layout.cta_lines):
        baseline = first_baseline + index * _pitch(size)
        draw.text((box.x + box.width // 2, baseline), line, font=font, fill=palette.button_text, anchor="ms")
