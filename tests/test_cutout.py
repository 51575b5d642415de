"""Product cut-outs: the shipped espresso photo keeps its cup and saucer, GrabCut separates a product
from a background it never saw, and every kind of bad product image gets its one clear error."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adgen.cutout import MAX_PRODUCT_BYTES, ProductImageError, cut_out, cut_out_file
from adgen.spec import SpecError

ESPRESSO = Path(__file__).resolve().parents[1] / "examples" / "espresso.png"


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_espresso_keeps_cup_and_saucer_and_drops_the_table():
    cutout = cut_out_file(ESPRESSO, product="Espresso Blend")
    assert cutout.source == "alpha"
    photo = Image.open(ESPRESSO)
    mask = np.zeros((photo.height, photo.width), np.uint8)
    x, y, w, h = cutout.photo_box
    mask[y : y + h, x : x + w] = np.asarray(cutout.mask)
    # Points read off the photo: the crema, the cup's rim, the handle, the saucer left and right
    # of the cup, the spoon's bowl; then the table in every corner.
    for px, py in [(247, 124), (250, 30), (185, 230), (95, 200), (385, 190), (300, 240)]:
        assert mask[py, px] == 255, (px, py)
    for px, py in [(5, 5), (506, 5), (5, 335), (506, 335)]:
        assert mask[py, px] == 0, (px, py)
    assert 0.35 < (mask > 0).mean() < 0.6
    # Product pixels are the photo's own, unchanged.
    kept = np.asarray(cutout.image)[..., 3] == 255
    assert np.array_equal(np.asarray(cutout.image)[..., :3][kept], np.asarray(photo)[y : y + h, x : x + w, :3][kept])
    assert cutout.lineage()["mask_source"] == "alpha" and len(cutout.photo_sha256) == 64


def test_grabcut_separates_the_cup_from_a_background_it_never_saw():
    """The shipped cut-out flattened onto a new textured background (no alpha): GrabCut, seeded from
    the borders, must find about the same product."""
    espresso = Image.open(ESPRESSO)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0 : espresso.height, 0 : espresso.width]
    floor = np.stack([120 + 40 * np.sin(xx / 23.0), 140 + 0 * xx, 110 + 30 * np.cos(yy / 17.0)], -1)
    floor = np.clip(floor + rng.normal(0, 8, floor.shape), 0, 255).astype(np.uint8)
    scene = Image.fromarray(floor).convert("RGBA")
    scene.alpha_composite(espresso)
    buffer = io.BytesIO()
    scene.convert("RGB").save(buffer, format="JPEG", quality=92)
    cutout = cut_out(buffer.getvalue(), product="Espresso Blend", file="espresso-on-floor.jpg")
    assert cutout.source == "grabcut"
    found = np.zeros((espresso.height, espresso.width), bool)
    x, y, w, h = cutout.photo_box
    found[y : y + h, x : x + w] = np.asarray(cutout.mask) > 0
    truth = np.asarray(espresso.getchannel("A")) > 0
    iou = (found & truth).sum() / (found | truth).sum()
    assert iou > 0.9, iou
    # Same bytes, same cut-out: the mask hash is a stable lineage key.
    assert cut_out(buffer.getvalue(), product="x", file="y").mask_sha256 == cutout.mask_sha256


def bad_inputs(tmp_path):
    """(file, the words its error must contain) for every kind of bad product image."""
    cases = []
    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"this is a text file with a png name\n")
    cases.append((not_image, "is not an image"))
    gif = tmp_path / "anim.gif"
    Image.new("RGB", (64, 64), "red").save(gif)
    cases.append((gif, "is GIF; use PNG, JPEG or WebP"))
    huge = tmp_path / "huge.png"
    Image.new("1", (7000, 6000)).save(huge)  # 42 megapixels in a few kilobytes
    cases.append((huge, "megapixels"))
    heavy = tmp_path / "heavy.png"
    heavy.write_bytes(b"\x89PNG" + bytes(MAX_PRODUCT_BYTES))
    cases.append((heavy, "MB; the limit is"))
    empty = tmp_path / "empty.png"
    Image.new("RGBA", (200, 200), (10, 20, 30, 0)).save(empty)
    cases.append((empty, "the cut-out is empty"))
    whole = Image.new("RGBA", (200, 200), (10, 20, 30, 255))
    whole.putpixel((0, 0), (0, 0, 0, 0))
    whole_path = tmp_path / "whole.png"
    whole.save(whole_path)
    cases.append((whole_path, "the cut-out is the whole frame"))
    cases.append((tmp_path / "missing.png", "does not exist"))
    return cases


def test_every_bad_product_image_gets_one_clear_line_naming_product_and_file(tmp_path):
    for path, words in bad_inputs(tmp_path):
        with pytest.raises(ProductImageError) as caught:
            cut_out_file(path, product="Espresso Blend")
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"product 'Espresso Blend': image {path}"), message
        assert words in message, message
        assert isinstance(caught.value, SpecError)  # the command line turns it into exit 2


def test_a_flat_photo_without_a_product_is_refused():
    """No alpha and nothing to separate: GrabCut keeps nothing or everything, never a silent result."""
    with pytest.raises(ProductImageError, match="the cut-out is (empty|the whole frame)"):
        cut_out(png(Image.new("RGB", (300, 200), (90, 120, 150))), product="P", file="flat.png")


def test_opaque_alpha_is_not_a_mask():
    """A PNG saved with an alpha channel that is opaque everywhere is a photo, not a cut-out."""
    espresso = Image.open(ESPRESSO)
    flat = Image.new("RGBA", espresso.size, (235, 235, 230, 255))
    flat.alpha_composite(espresso)
    cutout = cut_out(png(flat), product="Espresso Blend", file="opaque.png")
    assert cutout.source == "grabcut"
