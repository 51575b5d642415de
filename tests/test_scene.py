"""The scene around a product on the real tiny inpainting pipeline (built here from the default image
pipeline, loaded with from_pretrained): the product's pixels come out exactly as the cut-out resized
to its box, in the scene and in the finished creative of every placement; the product box never
touches text, button or logo; outpainting returns the asked size; prompts fit CLIP; a safety checker's
flag is honoured."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adgen.cutout import cut_out_file
from adgen.inpaint_default import build_inpaint_pipeline
from adgen.platforms import registry
from adgen.product_box import Box, choose_product_box, product_visible, to_canvas
from adgen.render import plan_layout, render_creative
from adgen.scene import (
    SceneError,
    canvas_for,
    compose_scene,
    extend_scene,
    extension_box,
    fit_prompt,
    load_inpainting,
)
from tests.conftest import with_safety_checker

ESPRESSO = Path(__file__).resolve().parents[1] / "examples" / "espresso.png"
LOGO = Path(__file__).resolve().parents[1] / "examples" / "northwind-logo.png"
COLORS = ["#3B2A20", "#F2E8DC", "#C8553D"]
PROMPT = "an espresso cup on a warm wooden cafe table, morning light, brown and cream"
STEPS = 2  # the tiny UNet has random weights: more steps cost time and show nothing more


@pytest.fixture(scope="module")
def pipe(default_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("inpaint") / "inpaint-default"
    build_inpaint_pipeline(folder, image_pipeline=default_models["image"])
    return load_inpainting(str(folder), torch.device("cpu"), torch.float32)


@pytest.fixture(scope="module")
def cutout():
    return cut_out_file(ESPRESSO, product="Espresso Blend")


def expected_product(cutout, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """The cut-out resized to the box it fills, as the issue states it: RGB and 'fully opaque'."""
    resized = np.asarray(cutout.image.resize((box.width, box.height), Image.Resampling.LANCZOS))
    return resized[..., :3], resized[..., 3] == 255


def test_the_built_pipeline_loads_with_from_pretrained_as_an_inpainting_pipeline(pipe):
    assert type(pipe).__name__ == "StableDiffusionInpaintPipeline"
    assert pipe.unet.config.in_channels == 9
    ground = Image.new("RGB", (128, 128), (127, 127, 127))
    mask = Image.new("L", (128, 128), 0)
    mask.paste(255, (0, 0, 64, 128))
    made = [
        np.asarray(pipe(prompt=PROMPT, image=ground, mask_image=mask, num_inference_steps=STEPS,
                        generator=torch.Generator().manual_seed(seed)).images[0])
        for seed in (1, 1, 2)
    ]
    assert np.array_equal(made[0], made[1]) and not np.array_equal(made[0], made[2])
    assert np.abs(made[0][:, :60].astype(int) - 127).mean() > 3  # the masked half was painted


def test_product_pixels_come_out_exactly_as_the_cutout(pipe, cutout):
    scene = compose_scene(pipe, cutout, canvas=(128, 128), box=Box(16, 24, 96, 96), prompt=PROMPT, seed=7, steps=STEPS)
    assert scene.image.size == (128, 128)
    b = scene.box
    assert b.x >= 16 and b.right <= 112 and b.bottom == 120  # inside its box, resting on its bottom
    rgb, opaque = expected_product(cutout, b)
    out = np.asarray(scene.image)[b.y : b.bottom, b.x : b.right]
    assert opaque.sum() > 0.4 * opaque.size
    assert np.abs(out[opaque].astype(int) - rgb[opaque].astype(int)).max() == 0
    # Around the product the scene was generated, not left as the grey ground.
    assert np.abs(np.asarray(scene.image)[:16].astype(int) - 127).mean() > 3
    # The contact shadow darkens the ground just under the product's base.
    ys, xs = np.nonzero(opaque)
    base_x = b.x + int(xs[ys == ys.max()].mean())
    under = np.asarray(scene.image)[b.bottom + 1 : b.bottom + 3, base_x - 4 : base_x + 4].mean()
    far = np.asarray(scene.image)[b.bottom + 1 : b.bottom + 3, :6].mean()
    assert under < far
    assert scene.lineage()["product_box"] == [b.x, b.y, b.width, b.height]


def placements():
    for name, placement in registry().placements.items():
        if placement.image is not None:
            yield name, placement.image, placement.cta_choices[0] if placement.cta_choices else ""


@pytest.mark.parametrize("aspect", [0.3, 1.0, 4.0])
def test_product_box_never_overlaps_text_button_or_logo(aspect):
    logo = Image.open(LOGO)
    for name, image, cta in placements():
        for width, height in [(image.width, image.height), *image.also]:
            for brand_logo in (logo, None):
                layout = plan_layout(width=width, height=height, headline="Cold Brew Concentrate, Ready in Seconds",
                                     cta=cta, colors=COLORS, logo=brand_logo, brand_name="Northwind Coffee",
                                     safe_top=image.safe_top, safe_bottom=image.safe_bottom)
                box = choose_product_box(layout, aspect=aspect, safe_top=image.safe_top, safe_bottom=image.safe_bottom)
                where = (name, width, height, aspect, box)
                assert abs(box.width / box.height - aspect) < 0.05 * aspect + 1 / box.height, where
                for other in (layout.headline, layout.cta, layout.logo):
                    if other is not None:  # disjoint, written out here rather than trusting Box.overlaps
                        assert (box.right <= other.x or other.right <= box.x
                                or box.bottom <= other.y or other.bottom <= box.y), where
                assert box.y >= image.safe_top * height and box.bottom <= (1 - image.safe_bottom) * height, where
                assert box.x >= 0 and box.right <= width, where
                assert product_visible(box, layout, safe_top=image.safe_top, safe_bottom=image.safe_bottom) == []


def test_product_visible_names_what_covers_it():
    layout = plan_layout(width=1080, height=1920, headline="Cold Brew", cta="Shop Now", colors=COLORS,
                         brand_name="Northwind Coffee", safe_top=0.14, safe_bottom=0.2)
    over_logo = Box(layout.logo.x, layout.logo.y, 400, 400)
    assert "product box is covered by the logo" in product_visible(over_logo, layout, safe_top=0.14, safe_bottom=0.2)
    tiny = Box(500, 800, 20, 20)
    assert product_visible(tiny, layout, safe_top=0.14, safe_bottom=0.2)[0].startswith("product box is 0.0%")
    assert any("safe zones" in p for p in product_visible(Box(300, 10, 400, 400), layout, safe_top=0.14))


def test_every_placement_shows_the_product_pixel_exact(pipe, cutout):
    """The flow a campaign will run: layout, product box, scene at the model's canvas, creative
    rendered over it, product pasted at its box in the creative; checked on every placement."""
    from adgen.scene import paste_product

    logo = Image.open(LOGO)
    aspect = cutout.image.width / cutout.image.height
    for name, image, cta in placements():
        kw = dict(width=image.width, height=image.height, headline="Cold Brew Concentrate, Ready in Seconds",
                  cta=cta, colors=COLORS, logo=logo, brand_name="Northwind Coffee",
                  safe_top=image.safe_top, safe_bottom=image.safe_bottom)
        layout = plan_layout(**kw)
        box = choose_product_box(layout, aspect=aspect, safe_top=image.safe_top, safe_bottom=image.safe_bottom)
        canvas = canvas_for(pipe, layout.photo.width, layout.photo.height)
        scene = compose_scene(pipe, cutout, canvas=canvas, box=to_canvas(box, layout.photo, canvas),
                              prompt=PROMPT, seed=11, steps=STEPS)
        creative, placed = paste_product(render_creative(scene.image, **kw), cutout, box)
        assert creative.size == (image.width, image.height), name
        rgb, opaque = expected_product(cutout, placed)
        out = np.asarray(creative)[placed.y : placed.bottom, placed.x : placed.right]
        assert np.abs(out[opaque].astype(int) - rgb[opaque].astype(int)).max() == 0, name
        assert product_visible(placed, layout, safe_top=image.safe_top, safe_bottom=image.safe_bottom) == [], name


@pytest.mark.parametrize("size", [(1080, 1920), (1200, 628), (728, 90), (128, 128), (600, 500), (560, 512)])
def test_outpainting_extends_to_the_asked_size_and_keeps_the_scene(pipe, cutout, size):
    scene = compose_scene(pipe, cutout, canvas=(128, 112), box=Box(16, 24, 96, 80), prompt=PROMPT, seed=3, steps=STEPS)
    width, height = size
    painted = []  # the pixel area of each image the denoiser painted

    def record(unet, args):
        painted.append(args[0].shape[-1] * args[0].shape[-2] * pipe.vae_scale_factor**2)

    for margin_only in (True, False):
        hook = pipe.unet.register_forward_pre_hook(record)
        try:
            out = extend_scene(pipe, scene.image, width=width, height=height, prompt=PROMPT, seed=3, steps=STEPS,
                               margin_only=margin_only)
        finally:
            hook.remove()
        assert out.image.size == size
        inner = out.inner
        assert max(inner.width / width, inner.height / height) == pytest.approx(1.0, abs=0.01)  # fitted, not cropped
        assert inner.width <= width and inner.height <= height
        kept = np.asarray(scene.image.resize((inner.width, inner.height), Image.Resampling.LANCZOS)).astype(int)
        got = np.asarray(out.image)[inner.y : inner.bottom, inner.x : inner.right].astype(int)
        s = out.seam  # the original blends into a new margin over these pixels, and is kept as is beyond
        assert s < min(inner.width, inner.height) // 4
        inside = (slice(s, inner.height - s), slice(s, inner.width - s))
        assert np.abs(got[inside] - kept[inside]).max() == 0
        if size != (128, 128):
            margins = [np.asarray(out.image)[:, : inner.x], np.asarray(out.image)[:, inner.right :]] if inner.x else [
                np.asarray(out.image)[: inner.y], np.asarray(out.image)[inner.bottom :]]
            for margin in margins:  # every new margin was painted, not left grey
                assert np.abs(margin.astype(int) - 127).mean() > 3
    if size in ((600, 500), (560, 512)):  # margins of a few percent: a frame of them, not the whole canvas, is painted
        margin_area, whole_area = painted[0], painted[-1]
        assert margin_area <= 0.5 * 128 * 112 and whole_area >= 0.75 * 128 * 128, painted


def test_an_extension_keeps_the_product_on_the_painted_scene():
    """Centred by default; moved off centre only as far as needed to hold the product's box whole,
    so the product never lands on the outpainted margin."""
    assert extension_box((64, 64), 200, 100) == Box(50, 0, 100, 100)
    assert extension_box((64, 64), 200, 100, keep=Box(10, 20, 40, 60)) == Box(10, 0, 100, 100)
    assert extension_box((64, 64), 200, 100, keep=Box(170, 20, 30, 60)) == Box(100, 0, 100, 100)
    assert extension_box((64, 64), 200, 100, keep=Box(60, 20, 30, 60)) == Box(50, 0, 100, 100)
    assert extension_box((128, 64), 100, 100, keep=Box(20, 80, 40, 20)) == Box(0, 50, 100, 50)


def test_long_prompts_are_cut_to_what_clip_reads(pipe):
    long = ", ".join(["a sunlit kitchen counter with fresh croissants and a steaming espresso cup"] * 8)
    fitted = fit_prompt(pipe, long)
    assert len(pipe.tokenizer(fitted, add_special_tokens=False)["input_ids"]) <= pipe.tokenizer.model_max_length - 2
    assert long.lower().startswith(fitted[:40])
    assert fit_prompt(pipe, PROMPT) == PROMPT
    scene = compose_scene(pipe, cut_out_file(ESPRESSO, product="E"), canvas=(128, 128), box=Box(16, 24, 96, 96),
                          prompt=long, seed=1, steps=1)
    assert scene.prompt == fitted


def test_a_flagged_image_is_never_used(pipe, cutout):
    flagging = with_safety_checker(pipe, -2.0)
    with pytest.raises(SceneError, match="safety checker flagged every image \\(3 seeds"):
        compose_scene(flagging, cutout, canvas=(128, 128), box=Box(16, 24, 96, 96), prompt=PROMPT, seed=5, steps=1)
    with pytest.raises(SceneError, match="safety checker flagged"):
        extend_scene(flagging, Image.new("RGB", (128, 128)), width=256, height=128, prompt=PROMPT, seed=5, steps=1,
                     max_attempts=1)
    passing = with_safety_checker(pipe, 2.0)
    scene = compose_scene(passing, cutout, canvas=(128, 128), box=Box(16, 24, 96, 96), prompt=PROMPT, seed=5, steps=1)
    assert scene.attempts == 1 and scene.seed == 5
