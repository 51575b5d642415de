"""A product photo in a campaign's creatives: the scene painted around the product, and where the
product's own pixels go back in the finished creative.

`make_scenes` runs for a job whose product has a photo and whose placement has an image: for each
variant it takes the box the layout leaves for the product (`choose_product_box`), paints the scene
around the product at the inpainting model's native canvas (`adgen.scene.compose_scene`) and
returns the scenes with a `Shot` each. `adgen.pipeline.layout` pastes the product back at the shot's
box after rendering; `shot_of` rebuilds a shot from a creative's lineage, so rerender, review edits
and the other sizes of an export place the product the same way.
"""

import io
from dataclasses import dataclass

from PIL import Image

from adgen.context import Context
from adgen.cutout import Cutout
from adgen.lineage import Lineage, ModelUsed, ProductPhoto
from adgen.platforms import ImageSpec
from adgen.product_box import Box, choose_product_box, from_canvas, to_canvas
from adgen.resident import inpaint_model_for
from adgen.scene import canvas_for, compose_scene, place

STRENGTH = 1.0  # the scene is painted from noise; the product's pixels are pasted back anyway


@dataclass(frozen=True)
class Shot:
    """A product photo's cut-out and how it went into one creative (its lineage record)."""

    cutout: Cutout
    lineage: ProductPhoto

    @property
    def placed(self) -> Box:
        """The box the product's pixels fill in the primary-size creative."""
        return place(self.cutout, Box(*self.lineage.product_box))[1]

    def scene(self, ctx: Context, *, prompt: str, negative: str | None, seed: int, steps: int,
              guidance: float) -> Image.Image:
        """The scene painted around the product again, from the lineage alone."""
        pipe = inpaint_model_for(self.lineage.inpaint_model.model_dump(), ctx)
        return compose_scene(pipe, self.cutout, canvas=self.lineage.canvas, box=Box(*self.lineage.canvas_box),
                             prompt=prompt, negative_prompt=negative, seed=seed, steps=steps, guidance=guidance,
                             strength=self.lineage.strength).image


def _cutout(photo: dict, png: bytes) -> Cutout:
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    return Cutout(image=image, source=photo["mask_source"], photo_sha256=photo["photo_sha256"],
                  mask_sha256=photo["mask_sha256"], photo_box=tuple(photo["photo_box"]))


def _box(b) -> tuple[int, int, int, int]:
    return (b.x, b.y, b.width, b.height)


def make_scenes(stored: tuple[dict, dict, bytes], layouts: list, image: ImageSpec, ctx: Context, *, prompt: str,
                negative: str, seeds: list[int], steps: int, guidance: float) -> tuple[list[Image.Image], list[Shot]]:
    """One scene per variant around the product (`stored`: what `campaign_product_photo` returns),
    laid out by that variant's layout; returns the scenes and their shots."""
    photo, ref, png = stored
    cutout = _cutout(photo, png)
    pipe = inpaint_model_for(ref, ctx)
    aspect = cutout.image.width / cutout.image.height
    scenes, shots = [], []
    for layout_, seed in zip(layouts, seeds, strict=True):
        box = choose_product_box(layout_, aspect=aspect, safe_top=image.safe_top, safe_bottom=image.safe_bottom)
        canvas = canvas_for(pipe, layout_.photo.width, layout_.photo.height)
        canvas_box = to_canvas(box, layout_.photo, canvas)
        scene = compose_scene(pipe, cutout, canvas=canvas, box=canvas_box, prompt=prompt, negative_prompt=negative,
                              seed=seed, steps=steps, guidance=guidance, strength=STRENGTH)
        scenes.append(scene.image)
        shots.append(Shot(cutout, ProductPhoto(
            photo_sha256=cutout.photo_sha256, mask_sha256=cutout.mask_sha256, mask_source=cutout.source,
            cutout_key=photo["cutout_key"], inpaint_model=ModelUsed(**ref), strength=STRENGTH, canvas=canvas,
            canvas_box=_box(canvas_box), region=_box(layout_.photo), product_box=_box(box),
        )))
    return scenes, shots


def product_box(shot: Shot, layout_) -> Box:
    """Where the product goes in a creative laid out as `layout_`: the chosen box when the photo
    region is the one the scene was made for; otherwise where the scene shows it once fitted to the
    new region (another size, or copy edited into a different layout)."""
    if _box(layout_.photo) == shot.lineage.region:
        return Box(*shot.lineage.product_box)
    return from_canvas(Box(*shot.lineage.canvas_box), layout_.photo, shot.lineage.canvas)


def shot_of(lineage: Lineage, ctx: Context) -> Shot | None:
    """The shot a creative was made with, rebuilt from its lineage and the stored cut-out."""
    if lineage.product_photo is None:
        return None
    p = lineage.product_photo
    photo = {"mask_source": p.mask_source, "photo_sha256": p.photo_sha256, "mask_sha256": p.mask_sha256,
             "photo_box": (0, 0, 0, 0)}
    return Shot(_cutout(photo, ctx.storage.get(p.cutout_key)), p)
