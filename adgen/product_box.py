"""Where the product goes in a creative, and the check that it is visible there.

The renderer plans every box of a creative first (`plan_layout` returns a `Layout`: the photo
region, the headline, the call-to-action button and the logo plate). The product is placed in the
photo region, inside the placement's safe zones, clear of the headline, the button and the logo by
a margin, as large as fits up to PRODUCT_FILL of the free region (all of it in a leaderboard's small
photo cell), nearest the middle of the region and low in it (a product stands on something). `product_visible` is the per-creative check of the
same rules, written independently of the chooser.

Boxes are in pixels of the finished creative. `to_canvas` maps one onto the generated scene, which
the renderer scales to cover the photo region and centre-crops (`ImageOps.fit`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

MIN_SHARE = 0.02  # the product's box is at least this share of the canvas (a leaderboard's photo cell is small)
PRODUCT_FILL = 0.8  # the product takes at most this share of the free region's width and height
GRID = 17  # candidate positions per axis at each size


@dataclass(frozen=True)
class Box:
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

    def overlaps(self, other: _BoxLike) -> bool:
        """True when the two boxes share any pixel (touching edges do not)."""
        return not (
            self.right <= other.x or other.x + other.width <= self.x
            or self.bottom <= other.y or other.y + other.height <= self.y
        )


class _BoxLike(Protocol):
    x: int
    y: int
    width: int
    height: int


class LayoutLike(Protocol):
    """The parts of the renderer's `Layout` this module reads."""

    width: int
    height: int
    photo: _BoxLike
    headline: _BoxLike
    cta: _BoxLike | None
    logo: _BoxLike | None


def obstacles(layout: LayoutLike) -> dict[str, _BoxLike]:
    """The boxes the product must never cover, by name."""
    named = {"headline": layout.headline, "cta": layout.cta, "logo": layout.logo}
    return {name: box for name, box in named.items() if box is not None}


def margin(layout: LayoutLike) -> int:
    """Clearance kept between the product and any text, button, logo or edge of the free region."""
    return max(2, round(0.02 * min(layout.width, layout.height)))


def choose_product_box(
    layout: LayoutLike, *, aspect: float, safe_top: float = 0.0, safe_bottom: float = 0.0, min_share: float = MIN_SHARE
) -> Box:
    """The box, with the product's aspect ratio (width / height), where the product goes.

    It lies inside the layout's photo region and the safe zones (the top `safe_top` and bottom
    `safe_bottom` fractions of the height), clear of headline, button and logo, and covers at least
    `min_share` of the canvas. Raises ValueError when no such box exists.
    """
    if not aspect > 0 or not math.isfinite(aspect):
        raise ValueError(f"aspect must be a positive width / height ratio, got {aspect}")
    pad = margin(layout)
    photo = layout.photo
    x0, x1 = photo.x + pad, photo.x + photo.width - pad
    y0 = max(photo.y, math.ceil(safe_top * layout.height)) + pad
    y1 = min(photo.y + photo.height, layout.height - math.ceil(safe_bottom * layout.height)) - pad
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"no room for the product: the photo region is {photo.width}x{photo.height} inside safe zones")
    # The obstacles grown by the margin, so a box that misses them keeps its distance.
    blocked = [Box(b.x - pad, b.y - pad, b.width + 2 * pad, b.height + 2 * pad) for b in obstacles(layout).values()]
    smallest = math.sqrt(min_share * layout.width * layout.height * aspect)
    width = min(x1 - x0, (y1 - y0) * aspect)
    # Some air around the product, unless the region is so small (a leaderboard's photo cell) that
    # the product would then fall under the minimum share.
    if PRODUCT_FILL * width >= smallest:
        width *= PRODUCT_FILL
    # Preferred spot: centred across the free region, its bottom at 85% of the region's height.
    anchor_x, anchor_y = (x0 + x1) / 2, y0 + 0.85 * (y1 - y0)
    while width >= smallest:
        w, h = max(1, math.floor(width)), max(1, math.floor(width / aspect))
        spots = {
            (x0 + round(i * (x1 - x0 - w) / (GRID - 1)), y0 + round(j * (y1 - y0 - h) / (GRID - 1)))
            for i in range(GRID) for j in range(GRID)
        }
        spots = sorted(spots, key=lambda s: ((s[0] + w / 2 - anchor_x) ** 2 + (s[1] + h - anchor_y) ** 2, s))
        for x, y in spots:
            box = Box(x, y, w, h)
            if x >= x0 and y >= y0 and box.right <= x1 and box.bottom <= y1 and not any(box.overlaps(b) for b in blocked):
                return box
        width *= 0.93
    raise ValueError(
        f"no room for the product: no box of at least {min_share:.0%} of the {layout.width}x{layout.height} canvas "
        "stays clear of the headline, button and logo inside the safe zones"
    )


def product_visible(
    box: _BoxLike, layout: LayoutLike, *, safe_top: float = 0.0, safe_bottom: float = 0.0, min_share: float = MIN_SHARE
) -> list[str]:
    """What keeps the product from being seen, one line each; empty when it is visible: its box at
    least `min_share` of the canvas, inside the canvas and its safe zones, and sharing no pixel with
    the headline, the call-to-action button or the logo."""
    problems = []
    share = box.width * box.height / (layout.width * layout.height)
    if share < min_share:
        problems.append(f"product box is {share:.1%} of the canvas; at least {min_share:.0%} is needed")
    top, bottom = math.ceil(safe_top * layout.height), layout.height - math.ceil(safe_bottom * layout.height)
    if box.x < 0 or box.x + box.width > layout.width or box.y < top or box.y + box.height > bottom:
        problems.append(f"product box leaves the canvas or its safe zones (rows {top} to {bottom})")
    for name, other in obstacles(layout).items():
        if Box(box.x, box.y, box.width, box.height).overlaps(other):
            problems.append(f"product box is covered by the {name}")
    return problems


def to_canvas(box: _BoxLike, region: _BoxLike, canvas: tuple[int, int]) -> Box:
    """`box` (creative pixels, inside `region`) on a scene of size `canvas` that the renderer
    scales to cover `region` and centre-crops; rounded outwards to whole pixels."""
    cw, ch = canvas
    scale = max(region.width / cw, region.height / ch)  # creative pixels per scene pixel
    off_x, off_y = (cw * scale - region.width) / 2, (ch * scale - region.height) / 2
    left = (box.x - region.x + off_x) / scale
    top = (box.y - region.y + off_y) / scale
    right = (box.x + box.width - region.x + off_x) / scale
    bottom = (box.y + box.height - region.y + off_y) / scale
    x, y = max(0, math.floor(left)), max(0, math.floor(top))
    return Box(x, y, min(cw, math.ceil(right)) - x, min(ch, math.ceil(bottom)) - y)

