"""Compose finished ad creatives: background image, headline, call-to-action button and logo.

The image model never draws text. This module takes a generated background and draws the ad at a
placement's exact pixel size, exactly as `adgen.layout.plan_layout` planned it: the photo fills its
region and fades into a band in the brand's primary colour, which carries the headline and a
call-to-action button, and the logo (or, without one, the brand name as a small wordmark) sits on a
plate in a corner. Colours come from `adgen.palette`, text from `adgen.typeset` and is drawn by
`adgen.scripts` (any script, right to left where the language is).

Rendering is deterministic: the same inputs give the same pixels and the same PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from adgen.fonts import Face
from adgen.layout import Layout, TextBox, plan_layout, trimmed_logo
from adgen.palette import RGB
from adgen.scripts import draw_line
from adgen.typeset import button_shape, font_at, ink_box, metrics, pitch

SUPERSAMPLE = 4  # rounded shapes are drawn this much larger and reduced, for smooth edges


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
    language: str = "en",
    brand_fonts: Sequence[Face] = (),
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
    language: the audience's BCP 47 tag: picks glyph forms and, for Arabic or Hebrew, mirrors the
        layout to read right to left. brand_fonts: the brand's faces, tried before the bundled ones.

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
        language=language,
        brand_fonts=brand_fonts,
    )
    canvas = Image.new("RGB", (width, height), layout.palette.band)
    canvas.paste(_faded_photo(background, layout), (layout.photo.x, layout.photo.y))
    if layout.logo is not None:
        _draw_logo(canvas, layout, logo)
    _draw_headline(canvas, layout)
    if layout.cta is not None:
        _draw_button(canvas, layout)
    return canvas


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
    elif (layout.arrangement == "split") != layout.rtl:  # the band is at the photo's left
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
        setting = layout.setting
        left, top, _, _ = ink_box(layout.wordmark, layout.wordmark_size, setting)
        draw_line(
            ImageDraw.Draw(canvas), (plate.x + pad - left, plate.y + pad - top), layout.wordmark,
            layout.wordmark_size, fill=palette.wordmark, anchor="ls", language=setting.language,
            brand=setting.brand, direction=setting.direction,
        )
        return
    assert logo is not None
    size = (plate.width - 2 * pad, plate.height - 2 * pad)
    # Premultiplied alpha keeps transparent pixels' colour from bleeding into the edges.
    scaled = trimmed_logo(logo).convert("RGBa").resize(size, Image.Resampling.LANCZOS).convert("RGBA")
    canvas.paste(scaled.convert("RGB"), (plate.x + pad, plate.y + pad), scaled.getchannel("A"))


def _draw_headline(canvas: Image.Image, layout: Layout) -> None:
    setting, size = layout.setting, layout.headline_size
    ascent, _ = metrics(layout.headline_lines, size, setting)
    draw = ImageDraw.Draw(canvas)
    box = layout.headline
    for index, line in enumerate(layout.headline_lines):
        width = setting.measure(line, size)
        if layout.centered:
            x = box.x + round((box.width - width) / 2)
        else:
            x = box.right - round(width) if layout.rtl else box.x
        baseline = box.y + ascent + index * pitch(size)
        draw_line(draw, (x, baseline), line, size, fill=layout.palette.headline, anchor="ls",
                  language=setting.language, brand=setting.brand, direction=setting.direction)


def _draw_button(canvas: Image.Image, layout: Layout) -> None:
    box, palette, size = layout.cta, layout.palette, layout.cta_size
    assert box is not None
    setting = layout.setting
    _rounded(canvas, box, radius=0.3 * button_shape(layout.cta_lines[:1], size, setting)[1], color=palette.button)
    font = font_at(size)
    # Centre the capital height, not the ascender-to-descender span, so the label looks centred.
    cap_height = -font.getbbox("H", anchor="ls")[1]
    label_height = cap_height + (len(layout.cta_lines) - 1) * pitch(size)
    first_baseline = box.y + (box.height - label_height) // 2 + cap_height
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(layout.cta_lines):
        baseline = first_baseline + index * pitch(size)
        draw_line(draw, (box.x + box.width // 2, baseline), line, size, fill=palette.button_text, anchor="ms",
                  language=setting.language, brand=setting.brand, direction=setting.direction)
