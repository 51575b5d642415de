"""A campaign whose product has a photo, end to end in process with the real tiny models: the
product's pixels are in every image creative exactly, clear of text, button and logo inside the safe
zones; rerender gives the same bytes; bad product images are refused before anything is written."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from PIL import Image

from adgen.context import Context
from adgen.jobs import create_campaign, run_campaign
from adgen.layout import plan_layout
from adgen.lineage import Lineage
from adgen.pipeline import rerender
from adgen.platforms import placement, registry
from adgen.product_box import Box
from adgen.product_shot import shot_of
from adgen.records import Creative
from adgen.resident import inpaint_model_for
from adgen.scene import compose_scene, place
from adgen.settings import Settings
from adgen.spec import load_spec
from tests.conftest import EXAMPLE, MODELS, REPO, adgen

ESPRESSO = REPO / "examples" / "espresso.png"
IMAGE_PLACEMENTS = [name for name, p in registry().placements.items() if p.image]


def _spec(tmp_path, **product) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["products"][0].update(product)
    data.update(audiences=data["audiences"][:1], placements=IMAGE_PLACEMENTS, variants=1)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture(scope="module")
def made(tmp_path_factory, default_models):
    """One campaign with the espresso photo on every image placement, run in this process."""
    tmp = tmp_path_factory.mktemp("photos")
    mp = pytest.MonkeyPatch()
    mp.setenv("ADGEN_HOME", str(tmp / "home"))
    mp.setenv("ADGEN_MODELS", str(MODELS))
    mp.chdir(REPO)
    try:
        ctx = Context(Settings())
        spec = load_spec(_spec(tmp, images=[str(ESPRESSO)]))
        campaign_id = create_campaign(spec, ctx)
        assert run_campaign(campaign_id, ctx) == {"done": len(IMAGE_PLACEMENTS)}
        with ctx.db() as s:
            rows = s.query(Creative).filter_by(campaign_id=campaign_id).all()
        yield ctx, spec, rows
    finally:
        mp.undo()


def test_every_image_creative_shows_the_product_pixel_exact_and_clear_of_text(made):
    ctx, spec, rows = made
    assert sorted(r.placement for r in rows) == sorted(IMAGE_PLACEMENTS)
    logo = Image.open(spec.brand.logo)
    for row in rows:
        shot = Lineage.of(row.lineage).product_photo
        assert shot is not None and shot.mask_source == "alpha", row.placement
        cut = Image.open(io.BytesIO(ctx.storage.get(shot.cutout_key))).convert("RGBA")
        _, placed = place(SimpleNamespace(image=cut), Box(*shot.product_box))
        creative = np.asarray(Image.open(io.BytesIO(ctx.storage.get(row.image_key))).convert("RGB"))
        resized = np.asarray(cut.resize((placed.width, placed.height), Image.Resampling.LANCZOS))
        opaque = resized[..., 3] == 255
        assert opaque.mean() > 0.5, row.placement
        inside = creative[placed.y : placed.bottom, placed.x : placed.right]
        assert np.abs(inside[opaque].astype(int) - resized[..., :3][opaque].astype(int)).max() == 0, row.placement

        place_ = placement(row.placement)
        image = place_.image
        layout = plan_layout(
            width=image.width, height=image.height, headline=place_.first_text("headline", row.copy),
            cta=place_.first_text("cta", row.copy), colors=spec.brand.colors, logo=logo,
            brand_name=spec.brand.name, safe_top=image.safe_top, safe_bottom=image.safe_bottom,
        )
        for name in ("headline", "cta", "logo"):
            other = getattr(layout, name)
            if other is not None:
                assert not placed.overlaps(other), (row.placement, name)
        top, bottom = image.safe_top * image.height, image.height * (1 - image.safe_bottom)
        assert placed.x >= 0 and placed.right <= image.width and top <= placed.y and placed.bottom <= bottom
        # The per-creative check of the product passed (copy checks are test_campaign's business).
        assert not [i for i in row.compliance["issues"] if i.startswith("product:")], row.placement
        assert shot.inpaint_model.hash and shot.photo_sha256 and shot.mask_sha256 and shot.strength == 1.0


def test_the_scene_is_extended_to_its_photo_region_not_cropped(made):
    """The scene is painted at the model's canvas, whose ratio only approaches the layout's photo
    region, then outpainted to the region's exact size: the whole painted canvas is in the
    background, the creative has the placement's exact size and the product stays exact (above)."""
    ctx, _, rows = made
    extended = 0
    for row in rows:
        lineage = Lineage.of(row.lineage)
        shot = lineage.product_photo
        _, _, width, height = shot.region
        with Image.open(io.BytesIO(ctx.storage.get(row.image_key))) as creative:
            assert creative.size == (placement(row.placement).image.width, placement(row.placement).image.height)
        with Image.open(io.BytesIO(ctx.storage.get(row.background_key))) as im:
            background = im.convert("RGB")
        assert background.size == (width, height), row.placement
        x, y, w, h = shot.scene_box
        assert shot.scene_extension == "margin", row.placement
        assert x >= 0 and y >= 0 and x + w <= width and y + h <= height and (w == width or h == height), row.placement
        assert abs(w / h - shot.canvas[0] / shot.canvas[1]) < 0.02 * w / h, row.placement
        extended += (w, h) != (width, height)
    assert extended >= len(rows) // 2, "most photo regions differ in ratio from every canvas"

    # The painted canvas, painted again, is the extension's inner part (scaled) away from its seam.
    row = next(r for r in rows if r.placement == "display_300x600")
    lineage = Lineage.of(row.lineage)
    shot = lineage.product_photo
    pipe = inpaint_model_for(shot.inpaint_model.model_dump(), ctx).pipe
    canvas = compose_scene(pipe, shot_of(lineage, ctx).cutout, canvas=shot.canvas, box=Box(*shot.canvas_box),
                           prompt=lineage.prompt.image, negative_prompt=lineage.prompt.negative, seed=lineage.image_seed,
                           steps=lineage.generation.image_steps, guidance=lineage.generation.guidance,
                           strength=shot.strength).image
    x, y, w, h = shot.scene_box
    inner = np.asarray(canvas.resize((w, h), Image.Resampling.LANCZOS)).astype(int)
    with Image.open(io.BytesIO(ctx.storage.get(row.background_key))) as im:
        kept = np.asarray(im.convert("RGB")).astype(int)[y : y + h, x : x + w]
    core = (slice(h // 8, h - h // 8), slice(w // 8, w - w // 8))
    assert np.abs(kept[core] - inner[core]).max() == 0


def test_rerender_reproduces_the_bytes_with_the_product(made):
    ctx, _, rows = made
    for name in ("meta_story", "display_728x90"):
        row = next(r for r in rows if r.placement == name)
        data, same = rerender(ctx, row.id)
        assert same and data == ctx.storage.get(row.image_key), name


def _solid(path, mode: str, fmt: str) -> str:
    Image.new(mode, (64, 64), (200, 30, 30, 255) if mode == "RGBA" else (200, 30, 30)).save(path, fmt)
    return str(path)


def _bomb(path, side: int) -> str:
    """A PNG of a few kilobytes that is side x side pixels once decoded."""
    Image.new("1", (side, side)).save(path)
    return str(path)


@pytest.mark.parametrize("case", ["missing", "not an image", "empty cut-out", "whole frame", "81 megapixels",
                                  "400 megapixels"])
def test_bad_product_image_is_refused_naming_product_and_file(case, tmp_path, home, default_models):
    bad = {
        # over the 40-megapixel limit; the second is past Pillow's own decompression-bomb refusal
        "81 megapixels": lambda: _bomb(tmp_path / "huge.png", 9000),
        "400 megapixels": lambda: _bomb(tmp_path / "bomb.png", 20000),
        "missing": lambda: str(tmp_path / "nope.png"),
        "not an image": lambda: (tmp_path / "photo.png").write_text("not an image") and str(tmp_path / "photo.png"),
        "empty cut-out": lambda: (Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(tmp_path / "clear.png")
                                  or str(tmp_path / "clear.png")),
        "whole frame": lambda: _solid(tmp_path / "full.png", "RGBA", "PNG"),
    }[case]()
    result = adgen("campaign", "run", _spec(tmp_path, images=[bad]), check=False)
    assert result.returncode == 2, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "Cold Brew Concentrate" in message and bad.rsplit("/", 1)[-1] in message, message
    if "megapixels" in case:
        assert "over the limit of 40 megapixels" in message, message
    assert not (home / "adgen.db").exists() and not (home / "storage").exists()
