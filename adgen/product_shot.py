"""A product photo in a campaign's creatives: the scene painted around the product, and where the
product's own pixels go back in the finished creative.

`make_scenes` runs for a job whose product has a photo and whose placement has an image: for each
variant it takes the box the layout leaves for the product (`choose_product_box`), paints the scene
around the product at the inpainting model's native canvas (`adgen.scene.compose_scene`) and
returns the scenes with a `Shot` each. `adgen.pipeline.layout` pastes the product back at the shot's
box after rendering. `shot_of` rebuilds a shot from a creative's lineage: rerender paints the same
scene again, and a layout whose photo region differs from the one the scene was made for (another
size of the placement, or copy edited into another layout) gets its own product box and a scene
painted for it with the same model, prompt and seed, so the product is never cropped or covered.
"""

import io
import time
from dataclasses import dataclass

from PIL import Image

from adgen.context import Context
from adgen.cutout import Cutout
from adgen.lineage import Lineage, ModelUsed, ProductPhoto
from adgen.platforms import ImageSpec
from adgen.product_box import Box, choose_product_box, to_canvas
from adgen.resident import InpaintModel, inpaint_model_for
from adgen.scene import Scene, canvas_for, compose_scene, place

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

    @property
    def placed(self) -> Box:
        """The box the product's pixels fill in the primary-size creative."""
        return place(self.cutout, Box(*self.lineage.product_box))[1]

    def scene(self) -> Image.Image:
        """The scene painted around the product again, from the lineage alone."""
        return _paint(self.cutout, self.painting, canvas=self.lineage.canvas, box=Box(*self.lineage.canvas_box)).image

    def for_layout(self, layout_, image: ImageSpec, background: Image.Image) -> tuple[Image.Image, Box]:
        """The background and the product's box for a creative laid out as `layout_`: the recorded
        ones when its photo region is the one the scene was made for, else a new box in this layout
        and a scene painted for it."""
        if _box(layout_.photo) == self.lineage.region:
            return background, Box(*self.lineage.product_box)
        if self.painting is None:
            raise ValueError("a product shot laid out anew needs its painting (rebuild it with shot_of)")
        box, canvas, canvas_box = _product_box(self.cutout, layout_, image, self.painting)
        return _paint(self.cutout, self.painting, canvas=canvas, box=canvas_box).image, box


def _box(b) -> tuple[int, int, int, int]:
    return (b.x, b.y, b.width, b.height)


def _product_box(cutout: Cutout, layout_, image: ImageSpec, painting: Painting) -> tuple[Box, tuple[int, int], Box]:
    """The product's box in the creative, the canvas to paint at and the box on it."""
    pipe = inpaint_model_for(painting.ref, painting.ctx).pipe
    box = choose_product_box(layout_, aspect=cutout.image.width / cutout.image.height, safe_top=image.safe_top,
                             safe_bottom=image.safe_bottom)
    canvas = canvas_for(pipe, layout_.photo.width, layout_.photo.height)
    return box, canvas, to_canvas(box, layout_.photo, canvas)


def _paint(cutout: Cutout, painting: Painting, *, canvas: tuple[int, int], box: Box) -> Scene:
    model: InpaintModel = inpaint_model_for(painting.ref, painting.ctx)
    start = time.perf_counter()
    try:
        return compose_scene(model.pipe, cutout, canvas=canvas, box=box, prompt=painting.prompt,
                             negative_prompt=painting.negative, seed=painting.seed, steps=painting.steps,
                             guidance=painting.guidance, strength=STRENGTH)
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
        box, canvas, canvas_box = _product_box(cutout, layout_, image, painting)
        scenes.append(_paint(cutout, painting, canvas=canvas, box=canvas_box).image)
        shots.append(Shot(cutout, ProductPhoto(
            photo_sha256=cutout.photo_sha256, mask_sha256=cutout.mask_sha256, mask_source=cutout.source,
            cutout_key=photo["cutout_key"], inpaint_model=ModelUsed(**ref), strength=STRENGTH, canvas=canvas,
            canvas_box=_box(canvas_box), region=_box(layout_.photo), product_box=_box(box),
        )))
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
