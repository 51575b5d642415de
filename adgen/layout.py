"""Where everything goes on a creative, planned before anything is drawn.

`plan_layout` returns every box as a `Layout` (photo region, colour band, headline lines and size,
button, logo plate), and `adgen.render` draws exactly that plan, so callers and tests can check
where the headline, button and logo went without reading pixels. The arrangement follows the
aspect ratio:

- "overlay" (square, portrait, story, 300x250, skyscrapers): photo on top, colour band at the
  bottom with the headline above the button; text is centred on narrow canvases.
- "split" (landscape, about 1.91:1): colour panel at the left holding logo, headline and button,
  photo at the right.
- "strip" (leaderboards such as 728x90 and 970x90): photo at the left, then logo, headline and
  button in one row.

Headlines are fitted by shrinking and wrapping at word boundaries (`adgen.typeset`), never cut and
never overflowing, and no text or logo enters the placement's safe zones (e.g. the top 14% and
bottom 20% of a Meta story). For a language written right to left (Arabic, Hebrew) the plan is
mirrored: panel, text, button and logo swap sides and lines align to the right.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from PIL import Image

from adgen.fonts import Face
from adgen.palette import Palette, palette_of
from adgen.typeset import (
    SMALLEST_FONT,
    Setting,
    fit_button,
    fit_headline,
    headline_extent,
    ink_box,
)

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
    setting: Setting = Setting()  # the language and brand fonts the text is set in
    rtl: bool = False  # mirrored for a right-to-left language: lines align to the right of their boxes


@dataclass(frozen=True)
class _Spec:
    """Validated inputs that the arrangement planners share."""

    width: int
    height: int
    headline: str
    cta: str
    top: int  # first row text and logo may use
    bottom: int  # row below the last one text and logo may use
    logo_aspect: float | None
    brand_name: str
    palette: Palette
    setting: Setting


@dataclass(frozen=True)
class _Plate:
    """Size of the logo plate, its padding, and the wordmark font size (0 for a logo image)."""

    width: int
    height: int
    pad: int
    wordmark_size: int


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
    language: str = "en",
    brand_fonts: Sequence[Face] = (),
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
        headline=" ".join(headline.split()),
        cta=" ".join(cta.split()),
        top=math.ceil(height * safe_top),
        bottom=height - math.ceil(height * safe_bottom),
        logo_aspect=None if logo is None else _aspect(trimmed_logo(logo)),
        brand_name=" ".join(brand_name.split()),
        palette=palette_of(colors),
        setting=Setting(language, tuple(brand_fonts)),
    )
    aspect = width / height
    planner = _plan_strip if aspect >= 3.0 else _plan_split if aspect >= 1.5 else _plan_overlay
    layout = planner(spec)
    return _mirrored(layout) if spec.setting.direction == "rtl" else layout


def _mirrored(layout: Layout) -> Layout:
    """The plan seen in a mirror: every box swaps sides, so right-to-left text leads from the right."""

    def flip(box: TextBox | None) -> TextBox | None:
        return None if box is None else replace(box, x=layout.width - box.right)

    return replace(
        layout, photo=flip(layout.photo), band=flip(layout.band), headline=flip(layout.headline),
        cta=flip(layout.cta), logo=flip(layout.logo), rtl=True,
    )


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
        cta_size, cta_lines, cta_w, cta_h = fit_button(
            spec.cta, w - 2 * margin, round((0.075 if narrow else 0.038) * short), setting=spec.setting
        )
        cta_x = (w - cta_w) // 2 if centered else margin
        cta = TextBox(cta_x, spec.bottom - margin - cta_h, cta_w, cta_h)
        text_bottom = cta.y - round(0.8 * cta_size)

    above = logo.bottom if logo is not None else spec.top
    max_text_h = min(text_bottom - above - margin, round(0.34 * h))
    size, lines = fit_headline(spec.headline, canvas=(spec.width, spec.height), setting=spec.setting,
        max_w=w - 2 * margin,
        max_h=max_text_h,
        max_size=round((0.13 if narrow else 0.08) * short),
        max_lines=4 if narrow else 3,
    )
    text_w, text_h = headline_extent(lines, size, spec.setting)
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
        cta_size, cta_lines, cta_w, cta_h = fit_button(spec.cta, column_w, round(0.05 * h), setting=spec.setting)
        gap = round(0.9 * cta_size)
    above = (logo.bottom if logo is not None else spec.top) + margin
    below = spec.bottom - margin
    size, lines = fit_headline(spec.headline, canvas=(spec.width, spec.height), setting=spec.setting, max_w=column_w, max_h=below - above - gap - cta_h, max_size=round(0.1 * h), max_lines=4
    )
    text_w, text_h = headline_extent(lines, size, spec.setting)
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
        cta_size, cta_lines, cta_w, cta_h = fit_button(
            spec.cta, round(0.22 * w), round(0.2 * h), max_h=inner_h, setting=spec.setting
        )
        cta = TextBox(w - margin - cta_w, middle - cta_h // 2, cta_w, cta_h)
        text_right = cta.x - round(1.4 * margin)

    text_x = (logo.right if logo is not None else photo_w) + round(1.4 * margin)
    size, lines = fit_headline(spec.headline, canvas=(spec.width, spec.height), setting=spec.setting,
        max_w=text_right - text_x,
        max_h=inner_h,
        max_size=round(0.27 * h),
        max_lines=2,
    )
    text_w, text_h = headline_extent(lines, size, spec.setting)
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
        setting=spec.setting,
    )


# Fitting text and logo.


def trimmed_logo(logo: Image.Image) -> Image.Image:
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
        left, top, right, bottom = ink_box(spec.brand_name, size, spec.setting)
        if right - left <= wordmark_w - 2 * pad:
            return _Plate(right - left + 2 * pad, bottom - top + 2 * pad, pad, size)
    raise ValueError(f"brand_name {spec.brand_name!r} does not fit its {wordmark_w}px plate; shorten it")
