"""Product photos in the web app: uploads checked by their content, a preview of what each cut-out
keeps, and the photos a campaign names handed to it through private temporary files.

A photo goes through the same checks as a product image in a spec (adgen.cutout: at most
MAX_PRODUCT_BYTES, PNG/JPEG/WebP by its bytes, at most 40 megapixels read from the header, a cut-out
that keeps something and removes something), so what the preview accepts the campaign accepts.
Products name their photo by the uploaded file's name (the builder's photo column, or `images:` in
an uploaded spec); a name never reaches the server's file system, so a spec uploaded here cannot
read a file on the server.
"""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from adgen.cutout import Cutout, ProductImageError, cut_out

MAX_PHOTOS = 20
PREVIEW_HEIGHT = 320
CHECKER, CHECKER_COLORS = 16, ((204, 204, 204), (255, 255, 255))
SOURCES = {
    "alpha": "its own alpha channel",
    "grabcut": "separated from its background (GrabCut); if it kept the wrong part, upload a PNG with alpha instead",
}


class PhotoError(ValueError):
    """A photo that cannot be used; the message names the file. ui.actions turns it into an InputError."""


def uploaded(paths: list[str] | None) -> dict[str, bytes]:
    """The uploaded photos' bytes by file name (the name the browser sent, without folders)."""
    if len(paths or []) > MAX_PHOTOS:
        raise PhotoError(f"Product photos: {len(paths)} photos; at most {MAX_PHOTOS}, one per product")
    photos: dict[str, bytes] = {}
    for path in paths or []:
        name = Path(path).name
        if name in photos:
            raise PhotoError(f"Product photos: two photos are named {name!r}; rename one")
        photos[name] = Path(path).read_bytes()
    return photos


def check(data: bytes, name: str, product: str | None = None) -> Cutout:
    """The photo's cut-out, or PhotoError with the one line adgen.cutout gives (naming the file)."""
    try:
        return cut_out(data, product=product, file=name)
    except ProductImageError as e:
        raise PhotoError(f"Product photos: {e}") from None


def preview(photos: dict[str, bytes], owners: dict[str, str]) -> list[tuple[Image.Image, str]]:
    """For each photo: the photo beside its cut-out over a checkerboard (what the creatives will
    show of it), captioned with its name, the product that names it, the share of the frame kept
    and where the mask came from. `owners`: photo name -> product name."""
    out = []
    for name, data in photos.items():
        cut = check(data, name, owners.get(name))
        photo = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
        mask = Image.new("L", photo.size, 0)
        mask.paste(cut.mask, cut.photo_box[:2])
        share = float((np.asarray(mask) > 0).mean())
        # Composed at preview size: a checkerboard the size of a 40-megapixel photo is not needed.
        size = (max(1, round(photo.width * PREVIEW_HEIGHT / photo.height)), PREVIEW_HEIGHT)
        small = photo.resize(size, Image.Resampling.LANCZOS)
        kept = _checkerboard(size)
        kept.paste(small, (0, 0), mask.resize(size, Image.Resampling.LANCZOS))
        pair = Image.new("RGB", (2 * size[0] + 8, PREVIEW_HEIGHT), (255, 255, 255))
        pair.paste(small, (0, 0))
        pair.paste(kept, (size[0] + 8, 0))
        owner = f"for {owners[name]}" if name in owners else "not named by any product yet"
        out.append((pair, f"{name} ({owner}): keeps {share:.0%} of the frame, cut out by {SOURCES[cut.source]}"))
    return out


def attach(data: dict, photos: dict[str, bytes], folder: Path, label) -> None:
    """Point each product's `images` entries at private copies of the uploaded photos they name
    (by file name, folders ignored), written under `folder`. `label(i, j)` names an entry in
    errors. Every uploaded photo must be named by some product: none is silently left out."""
    used = set()
    for i, product in enumerate(data.get("products") or []):
        if not isinstance(product, dict) or not isinstance(product.get("images"), list):
            continue
        for j, entry in enumerate(product["images"]):
            name = Path(str(entry)).name
            if name not in photos:
                have = ", ".join(sorted(photos)) or "none uploaded"
                raise PhotoError(f"{label(i, j)}: {str(entry)!r} is not among the uploaded product photos ({have}); "
                                 "upload it under Product photos")
            used.add(name)
            path = folder / name
            if not path.exists():
                folder.mkdir(parents=True, exist_ok=True)
                path.write_bytes(photos[name])
            product["images"][j] = str(path)
    if unused := sorted(set(photos) - used):
        raise PhotoError(f"Product photos: {unused[0]!r} is not named by any product; name it in a product's photo "
                         "column or remove it")


def _checkerboard(size: tuple[int, int]) -> Image.Image:
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w]
    light = ((xs // CHECKER + ys // CHECKER) % 2).astype(bool)
    board = np.where(light[..., None], np.array(CHECKER_COLORS[1], np.uint8), np.array(CHECKER_COLORS[0], np.uint8))
    return Image.fromarray(board.astype(np.uint8))
