"""The colours a creative is drawn in: a brand's '#RRGGBB' colours (primary, light, accent) become a
`Palette` with a colour for every role, missing roles derived from the primary, and every text
colour at least WCAG AA contrast (4.5:1) against what it sits on.
"""

import colorsys
import re
from collections.abc import Sequence
from dataclasses import dataclass

RGB = tuple[int, int, int]
WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)
INK: RGB = (24, 24, 24)

MIN_CONTRAST = 4.5  # WCAG AA for normal-size text; ad text is often small on banners


@dataclass(frozen=True)
class Palette:
    """The colours actually drawn, after missing roles are derived and contrast is enforced."""

    band: RGB  # panel behind the headline: the brand's primary colour
    headline: RGB  # headline text, at least 4.5:1 against `band`
    button: RGB  # call-to-action fill: the accent, darkened only if its label needs it
    button_text: RGB  # at least 4.5:1 against `button`
    plate: RGB  # plate behind the logo or wordmark: the brand's light colour
    wordmark: RGB  # brand name text, at least 4.5:1 against `plate`


def parse_hex(value: object) -> RGB:
    if not isinstance(value, str) or not re.fullmatch(r"#[0-9A-Fa-f]{6}", value):
        raise ValueError(f"colors: {value!r} is not a '#RRGGBB' colour")
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


def luminance(color: RGB) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in color]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: RGB, second: RGB) -> float:
    """WCAG 2 contrast ratio between two colours, from 1 (same) to 21 (black on white)."""
    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def mix(color: RGB, other: RGB, amount: float) -> RGB:
    red, green, blue = (round(c + (o - c) * amount) for c, o in zip(color, other, strict=True))
    return red, green, blue


def readable(fill: RGB, light: RGB, dark: RGB) -> tuple[RGB, RGB]:
    """A fill and text colour with at least MIN_CONTRAST between them, preferring brand colours.

    Mid-tone fills such as a terracotta accent read best with light text even where white falls
    just short of 4.5:1, so those are darkened a little rather than given black text.
    """
    if contrast_ratio(WHITE, fill) >= 3.0:
        for text in (light, WHITE):
            if contrast_ratio(text, fill) >= MIN_CONTRAST:
                return fill, text
        for step in range(1, 51):
            darker = mix(fill, BLACK, step / 50)
            if contrast_ratio(WHITE, darker) >= MIN_CONTRAST:
                return darker, WHITE
    for text in (dark, INK):
        if contrast_ratio(text, fill) >= MIN_CONTRAST:
            return fill, text
    # White scoring below 3:1 means the fill is light enough for black to reach at least 7:1.
    return fill, BLACK


def derived_accent(primary: RGB) -> RGB:
    """A button colour for brands that give no accent: a vivid tone of the primary's hue."""
    hue, lightness, saturation = colorsys.rgb_to_hls(*(c / 255 for c in primary))
    if saturation < 0.1:
        # A grey has no hue worth keeping; a plain white or black button reads as intended.
        return WHITE if lightness < 0.5 else INK
    red, green, blue = colorsys.hls_to_rgb(
        hue, 0.55 if lightness < 0.5 else 0.35, min(0.85, max(0.6, saturation))
    )
    return round(red * 255), round(green * 255), round(blue * 255)


def palette_of(colors: Sequence[str]) -> Palette:
    if isinstance(colors, str) or len(colors) == 0:
        raise ValueError(f"colors must be a list of '#RRGGBB' strings, primary first; got {colors!r}")
    parsed = [parse_hex(color) for color in colors]
    primary = parsed[0]
    light = parsed[1] if len(parsed) > 1 else mix(primary, WHITE, 0.9)
    accent = parsed[2] if len(parsed) > 2 else derived_accent(primary)
    dark = primary if luminance(primary) < 0.1 else INK
    band, headline = readable(primary, light, dark)
    button, button_text = readable(accent, light, dark)
    plate, wordmark = readable(light, WHITE, dark)
    return Palette(band, headline, button, button_text, plate, wordmark)
