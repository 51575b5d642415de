"""A product photo in a campaign's creatives: the scene painted around the product, and where the
product's own pixels go back in the finished creative.

`make_scenes` runs for a job whose product has a photo and whose placement has an image: for each
variant it takes the box the layout leaves for the product (`choose_product_box`), paints the scene
around the product at the inpainting model's native canvas (`adgen.scene.compose_scene`), extends
that scene by outpainting to the exact size of the layout's photo region, whose ratio the canvas
only approaches (`adgen.scene.extend_scene`: only the new margins are painted, nothing of the
painted scene is cropped, and the renderer gets a background of exactly its region's size), and
returns the scenes with a `Shot` each. `adgen.pipeline.layout` pastes the product back at the shot's
box after rendering. `shot_of` rebuilds a shot from a creative's lineage: rerender paints the same
scene again, and a layout whose photo region differs from the one the scene was made for (another
size of the placement, or copy edited into another layout) gets its own product box and a scene
painted for it with the same model, prompt and seed, so the product is never cropped or covered.
"""

import io
import math
import time
from dataclasses import dataclass, field

from PIL import Image

from adgen.context import Context
from adgen.cutout import Cutout
from adgen.lineage import Lineage, ModelUsed, ProductPhoto
from adgen.platforms import ImageSpec
from adgen.product_box import Box, choose_product_box
from adgen.resident import InpaintModel, inpaint_model_for
from adgen.scene import canvas_for, compose_scene, extend_scene, extension_box, place

STRENGTH = 1.0  # the scene is painted from noise; the product's pixels are pasted back anyway


@dataclass(frozen=True)
class Painting:
    """What a scene is painted with besides the product and its box."""

    ctx: Context
    ref: dict  # the inpainting model (adgen.models.ModelRef as a dict)
    prompt: str
    negative: str | None
    seed: int
    steps: int
    guidance: float


@dataclass(frozen=True)
class Shot:
    """A product photo's cut-out, how it went into one creative (its lineage record) and, when
    rebuilt from a lineage, how to paint its scene again."""

    cutout: Cutout
    lineage: ProductPhoto
    painting: Painting | None = None
    # Scenes painted for other photo regions (another size of the placement), by region: painted
    # while the job's models run (`prepare`), so laying out and storing every size paints nothing.
    scenes: dict[tuple[int, int, int, int], tuple[Image.Image, Box]] = field(default_factory=dict, compare=False)

    @property
    def placed(self) -> Box:
        """The box the product's pixels fill in the primary-size creative."""
        return place(self.cutout, Box(*self.lineage.product_box))[1]

    def scene(self) -> Image.Image:
        """The scene painted around the product again, from the lineage alone (extended to its
        region's size; creatives made before scenes were extended recorded no `scene_box`)."""
        p = self.lineage
        inner = Box(*p.scene_box) if p.scene_box else None
        return _paint(self.cutout, self.painting, canvas=p.canvas, box=Box(*p.canvas_box), region=p.region, inner=inner,
                      margin_only=p.scene_extension == "margin")

    def for_layout(self, layout_, image: ImageSpec, background: Image.Image) -> tuple[Image.Image, Box]:
        """The background and the product's box for a creative laid out as `layout_`: the recorded
        ones when its photo region is the one the scene was made for, else a new box in this layout
        and a scene painted for it."""
        region = _box(layout_.photo)
        if region == self.lineage.region:
            return background, Box(*self.lineage.product_box)
        if region not in self.scenes:
            if self.painting is None:
                raise ValueError("a product shot laid out anew needs its painting (rebuild it with shot_of)")
            box, canvas, canvas_box, inner = geometry(self.cutout, layout_, image, _pipe(self.painting))
            self.scenes[region] = _paint(self.cutout, self.painting, canvas=canvas, box=canvas_box, region=region,
                                         inner=inner, margin_only=self.lineage.scene_extension == "margin"), box
        return self.scenes[region]


def _box(b) -> tuple[int, int, int, int]:
    return (b.x, b.y, b.width, b.height)


def geometry(cutout: Cutout, layout_, image: ImageSpec, pipe) -> tuple[Box, tuple[int, int], Box, Box]:
    """The product's box in the creative, the canvas to paint at with the inpainting `pipe`, the
    product's box on it, and where the painted canvas lies in the photo region once extended to
    the region's size."""
    region = layout_.photo
    box = choose_product_box(layout_, aspect=cutout.image.width / cutout.image.height, safe_top=image.safe_top,
                             safe_bottom=image.safe_bottom)
    canvas = canvas_for(pipe, region.width, region.height)
    in_region = Box(box.x - region.x, box.y - region.y, box.width, box.height)
    inner = extension_box(canvas, region.width, region.height, keep=in_region)
    # The product's box on the canvas: its box in the region, mapped through the canvas's place in
    # the extension, rounded outwards.
    sx, sy = inner.width / canvas[0], inner.height / canvas[1]
    x0, y0 = max(0, math.floor((in_region.x - inner.x) / sx)), max(0, math.floor((in_region.y - inner.y) / sy))
    x1 = min(canvas[0], math.ceil((in_region.right - inner.x) / sx))
    y1 = min(canvas[1], math.ceil((in_region.bottom - inner.y) / sy))
    return box, canvas, Box(x0, y0, x1 - x0, y1 - y0), inner


def _pipe(painting: Painting):
    return inpaint_model_for(painting.ref, painting.ctx).pipe


def _paint(cutout: Cutout, painting: Painting, *, canvas: tuple[int, int], box: Box,
           region: tuple[int, int, int, int], inner: Box | None, margin_only: bool) -> Image.Image:
    """The scene painted around the product on `canvas`, then extended to the region's size with
    the canvas at `inner`, painting only the new margins or (as creatives recorded before that were
    made) the whole extension; `inner` None: the canvas alone (the renderer crops it to the region)."""
    model: InpaintModel = inpaint_model_for(painting.ref, painting.ctx)
    start = time.perf_counter()
    try:
        scene = compose_scene(model.pipe, cutout, canvas=canvas, box=box, prompt=painting.prompt,
                              negative_prompt=painting.negative, seed=painting.seed, steps=painting.steps,
                              guidance=painting.guidance, strength=STRENGTH).image
        if inner is None:
            return scene
        return extend_scene(model.pipe, scene, width=region[2], height=region[3], prompt=painting.prompt,
                            negative_prompt=painting.negative, seed=painting.seed, steps=painting.steps,
                            guidance=painting.guidance, inner=inner, margin_only=margin_only).image
    finally:
        model.model_seconds += time.perf_counter() - start


def _cutout(photo: dict, png: bytes) -> Cutout:
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    return Cutout(image=image, source=photo["mask_source"], photo_sha256=photo["photo_sha256"],
                  mask_sha256=photo["mask_sha256"], photo_box=tuple(photo.get("photo_box", (0, 0, 0, 0))))


def make_scenes(stored: tuple[dict, dict, bytes], layouts: list, image: ImageSpec, ctx: Context, *, prompt: str,
                negative: str | None, seeds: list[int], steps: int, guidance: float) -> tuple[list[Image.Image], list[Shot]]:
    """One scene per variant around the product (`stored`: what `campaign_product_photo` returns),
    laid out by that variant's layout; returns the scenes and their shots."""
    photo, ref, png = stored
    cutout = _cutout(photo, png)
    scenes, shots = [], []
    for layout_, seed in zip(layouts, seeds, strict=True):
        painting = Painting(ctx, ref, prompt, negative, seed, steps, guidance)
        box, canvas, canvas_box, inner = geometry(cutout, layout_, image, _pipe(painting))
        scenes.append(_paint(cutout, painting, canvas=canvas, box=canvas_box, region=_box(layout_.photo), inner=inner,
                             margin_only=True))
        shots.append(Shot(cutout, ProductPhoto(
            photo_sha256=cutout.photo_sha256, mask_sha256=cutout.mask_sha256, mask_source=cutout.source,
            cutout_key=photo["cutout_key"], inpaint_model=ModelUsed(**ref), strength=STRENGTH, canvas=canvas,
            canvas_box=_box(canvas_box), region=_box(layout_.photo), product_box=_box(box), scene_box=_box(inner),
            scene_extension="margin",
        ), painting))
    return scenes, shots


def shot_of(lineage: Lineage, ctx: Context) -> Shot | None:
    """The shot a creative was made with, rebuilt from its lineage and the stored cut-out."""
    if lineage.product_photo is None:
        return None
    p = lineage.product_photo
    photo = {"mask_source": p.mask_source, "photo_sha256": p.photo_sha256, "mask_sha256": p.mask_sha256}
    painting = Painting(ctx, p.inpaint_model.model_dump(), lineage.prompt.image, lineage.prompt.negative,
                        lineage.image_seed, lineage.generation.image_steps, lineage.generation.guidance)
    return Shot(_cutout(photo, ctx.storage.get(p.cutout_key)), p, painting)
