"""Tests for the creative renderer: exact sizes, safe zones, text fitting, contrast, determinism."""

from __future__ import annotations

from collections import Counter
from itertools import combinations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from adgen.layout import TextBox, plan_layout
from adgen.render import encode_png, fit_image, render_creative

SIZES = [
    (1200, 628),
    (1200, 627),
    (1080, 1080),
    (1080, 1350),
    (1080, 1920),
    (1200, 1200),
    (800, 418),
    (800, 800),
    (960, 1200),
    (720, 900),
    (300, 250),
    (728, 90),
    (160, 600),
    (300, 600),
    (970, 90),
]
COLORS = ["#3B2A20", "#F2E8DC", "#C8553D"]
HEADLINE = "Cold Brew Concentrate, Ready in Seconds"
LONG_HEADLINE = (
    "Our smoothest single-origin cold brew concentrate yet, slow-steeped for eighteen hours "
    "and ready whenever you are"
)
STORY = {"width": 1080, "height": 1920, "safe_top": 0.14, "safe_bottom": 0.20}


@pytest.fixture(scope="module")
def background() -> Image.Image:
    """A busy, seeded stand-in for a generated background: a gradient under colour noise."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:320, 0:320] / 320
    gradient = np.stack([0.6 + 0.3 * x, 0.4 + 0.3 * y, 0.3 + 0.2 * x * y], axis=-1)
    pixels = np.clip(gradient + 0.15 * rng.normal(size=gradient.shape), 0, 1)
    return Image.fromarray(np.round(pixels * 255).astype(np.uint8))


@pytest.fixture(scope="module")
def logo() -> Image.Image:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 190, 190), fill=(59, 42, 32, 255))
    draw.ellipse((60, 60, 140, 140), fill=(200, 85, 61, 255))
    return image


def contrast(first: tuple[int, ...], second: tuple[int, ...]) -> float:
    """WCAG 2 contrast ratio, written out here so the test does not trust the renderer's own."""

    def luminance(color: tuple[int, ...]) -> float:
        channels = [c / 255 for c in color[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def overlaps(first: TextBox, second: TextBox) -> bool:
    return (
        first.x < second.right
        and second.x < first.right
        and first.y < second.bottom
        and second.y < first.bottom
    )


def inside(box: TextBox, width: int, top: float, bottom: float) -> bool:
    return box.x >= 0 and box.right <= width and box.y >= top and box.bottom <= bottom


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_every_placement_has_exact_size_and_separate_boxes_inside_canvas(background, logo, width, height):
    args = {"width": width, "height": height, "headline": HEADLINE, "cta": "Shop Now", "colors": COLORS}
    image = render_creative(background, logo=logo, **args)
    assert image.size == (width, height)
    assert image.mode == "RGB"

    layout = plan_layout(logo=logo, **args)
    boxes = [layout.headline, layout.cta, layout.logo]
    for box in boxes:
        assert inside(box, width, 0, height), box
    for first, second in combinations(boxes, 2):
        assert not overlaps(first, second), (first, second)
    assert " ".join(layout.headline_lines) == HEADLINE


def test_same_inputs_give_same_png_bytes_without_metadata(background, logo):
    args = {"headline": HEADLINE, "cta": "Shop Now", "colors": COLORS, "logo": logo}
    first = encode_png(render_creative(background, width=300, height=250, **args))
    second = encode_png(render_creative(background.copy(), width=300, height=250, **args))
    assert first == second
    assert first.startswith(b"\x89PNG")
    for chunk in (b"tIME", b"tEXt", b"iTXt", b"zTXt", b"eXIf"):
        assert chunk not in first


@pytest.mark.parametrize("brand", ["logo", "wordmark"])
def test_story_safe_zones_hold_no_text_or_logo(background, logo, brand):
    extra = {"logo": logo} if brand == "logo" else {"brand_name": "Northside Coffee"}
    args = {"headline": HEADLINE, "cta": "Shop Now", "colors": COLORS, **STORY, **extra}
    layout = plan_layout(**args)
    top, bottom = 0.14 * 1920, 0.80 * 1920
    for box in (layout.headline, layout.cta, layout.logo):
        assert inside(box, 1080, top, bottom), box

    # Inside the solid band, every pixel that is not band colour belongs to the headline or button.
    pixels = np.asarray(render_creative(background, **args)).copy()
    for box in (layout.headline, layout.cta):
        pixels[box.y : box.bottom, box.x : box.right] = layout.palette.band
    ink = np.any(pixels[layout.band.y :] != layout.palette.band, axis=-1)
    assert not ink.any()


def test_logo_is_drawn_only_inside_its_box(background, logo):
    args = {"headline": HEADLINE, "cta": "Shop Now", "colors": COLORS, **STORY}
    with_logo, without = plan_layout(logo=logo, **args), plan_layout(**args)
    assert (with_logo.headline, with_logo.cta) == (without.headline, without.cta)

    changed = np.any(
        np.asarray(render_creative(background, logo=logo, **args))
        != np.asarray(render_creative(background, **args)),
        axis=-1,
    )
    box = with_logo.logo
    assert changed[box.y : box.bottom, box.x : box.right].any()
    changed[box.y : box.bottom, box.x : box.right] = False
    assert not changed.any()


@pytest.mark.parametrize(("width", "height"), [(1080, 1080), (1200, 628), (300, 250), (728, 90), (160, 600)])
def test_long_headline_wraps_at_word_boundaries_and_shrinks(width, height):
    args = {"width": width, "height": height, "cta": "Shop Now", "colors": COLORS}
    long = plan_layout(headline=LONG_HEADLINE, **args)
    short = plan_layout(headline=HEADLINE, **args)

    assert " ".join(long.headline_lines).split() == LONG_HEADLINE.split()
    assert all(line == line.strip() for line in long.headline_lines)
    assert len(long.headline_lines) > 1
    assert long.headline_size < short.headline_size
    assert inside(long.headline, width, 0, height)
    assert not overlaps(long.headline, long.cta)


def test_word_too_wide_for_the_canvas_shrinks_rather_than_breaking():
    word = "Supercalifragilisticexpialidocious"
    layout = plan_layout(width=160, height=600, headline=word, cta="Go", colors=COLORS)
    assert layout.headline_lines == (word,)
    assert inside(layout.headline, 160, 0, 600)


def test_long_cta_on_a_skyscraper_wraps_onto_two_lines_inside_the_canvas():
    cta = "Get 20% off your first order"
    layout = plan_layout(width=160, height=600, headline=HEADLINE, cta=cta, colors=COLORS)
    assert " ".join(layout.cta_lines) == cta
    assert layout.cta_size >= 9
    assert inside(layout.cta, 160, 0, 600)


def test_headline_that_cannot_fit_is_an_error():
    with pytest.raises(ValueError, match="headline"):
        plan_layout(width=300, height=250, headline="word " * 400, cta="Go", colors=COLORS)


@pytest.mark.parametrize(
    "colors",
    [
        COLORS,
        ["#777777"],
        ["#F2E8DC"],
        ["#1E3A8A"],
        ["#FFD400", "#FFFFFF"],
        ["#C8553D", "#F2E8DC", "#C8553D"],
    ],
)
def test_every_text_colour_reaches_wcag_aa_contrast(colors):
    palette = plan_layout(width=1080, height=1080, headline=HEADLINE, cta="Shop Now", colors=colors).palette
    assert contrast(palette.headline, palette.band) >= 4.5
    assert contrast(palette.button_text, palette.button) >= 4.5
    assert contrast(palette.wordmark, palette.plate) >= 4.5


def test_rendered_headline_sits_on_solid_band_with_readable_contrast(background):
    args = {"width": 1080, "height": 1080, "headline": HEADLINE, "cta": "Shop Now", "colors": COLORS}
    box = plan_layout(**args).headline
    region = render_creative(background, **args).crop((box.x, box.y, box.right, box.bottom))
    pixels = np.asarray(region).reshape(-1, 3)
    (band, _), (text, _) = Counter(map(tuple, pixels.tolist())).most_common(2)
    assert band == (0x3B, 0x2A, 0x20)  # the brand's primary, unmixed with the photo
    assert contrast(text, band) >= 4.5


def test_logo_keeps_its_aspect_ratio_after_trimming_transparent_margins():
    logo = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    ImageDraw.Draw(logo).rectangle((50, 150, 349, 249), fill=(20, 20, 20, 255))  # 300x100 mark
    layout = plan_layout(width=1080, height=1080, headline=HEADLINE, cta="Go", colors=COLORS, logo=logo)
    inner_w = layout.logo.width - 2 * layout.logo_pad
    inner_h = layout.logo.height - 2 * layout.logo_pad
    assert inner_w / inner_h == pytest.approx(3.0, rel=0.03)


def test_banners_read_in_a_row_and_skyscraper_stacks():
    for width in (728, 970):
        layout = plan_layout(
            width=width, height=90, headline=HEADLINE, cta="Shop Now", colors=COLORS, brand_name="Northside"
        )
        assert layout.photo.x == 0
        assert layout.photo.right <= layout.logo.x < layout.logo.right < layout.headline.x
        assert layout.headline.right < layout.cta.x and layout.cta.right <= width

    tower = plan_layout(
        width=160, height=600, headline=HEADLINE, cta="Shop Now", colors=COLORS, brand_name="Northside"
    )
    assert tower.logo.bottom < tower.headline.y and tower.headline.bottom < tower.cta.y


@pytest.mark.parametrize("source", [(640, 160), (160, 640), (300, 300)])
@pytest.mark.parametrize("target", [(1200, 628), (160, 600), (728, 90), (1080, 1080), (1, 1)])
def test_fit_image_gives_exact_size_from_any_shape(source, target):
    image = Image.new("RGBA", source, (10, 200, 30, 128))
    fitted = fit_image(image, *target)
    assert fitted.size == target
    assert fitted.mode == "RGB"


def test_fit_image_keeps_the_centre_when_cropping():
    stripes = Image.new("RGB", (300, 100), (255, 0, 0))
    stripes.paste((0, 255, 0), (100, 0, 200, 100))
    stripes.paste((0, 0, 255), (200, 0, 300, 100))
    fitted = np.asarray(fit_image(stripes, 50, 50)).astype(int)
    assert np.abs(fitted[5:-5, 5:-5] - (0, 255, 0)).max() <= 2


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colors": ["3B2A20"]}, "colors"),
        ({"colors": "#3B2A20"}, "colors"),
        ({"colors": []}, "colors"),
        ({"headline": "   "}, "headline"),
        ({"safe_top": 0.6}, "safe_top"),
        ({"width": 10}, "width"),
    ],
)
def test_bad_input_is_rejected_with_the_field_named(changes, message):
    args = {"width": 300, "height": 250, "headline": HEADLINE, "cta": "Go", "colors": COLORS, **changes}
    with pytest.raises(ValueError, match=message):
        plan_layout(**args)


@pytest.mark.parametrize(("width", "height"), [(1200, 628), (1080, 1080), (728, 90)])
def test_placement_without_call_to_action_draws_no_button(background, width, height):
    args = {"width": width, "height": height, "headline": HEADLINE, "cta": "", "colors": COLORS}
    layout = plan_layout(**args)
    assert layout.cta is None
    assert inside(layout.headline, width, 0, height)
    assert render_creative(background, **args).size == (width, height)
