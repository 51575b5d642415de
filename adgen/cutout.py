"""Product cut-outs: a product photo in, the product alone (RGBA) out, with where its mask came from.

A product image is a PNG, JPEG or WebP file. When it has a meaningful alpha channel (some pixel
not fully opaque) that alpha is the mask: the advertiser already cut the product out. Otherwise
the product is separated from its background with OpenCV's GrabCut, seeded from the borders: a thin
band along the edges of the photo is taken as background, everything inside it as probably the
product, and GrabCut's colour models decide the rest. The largest piece GrabCut keeps is the
product (plus any piece at least a tenth its size), so stray specks of background do not travel
with it.

The cut-out's alpha channel is its mask: 255 where the product's own pixels are kept exactly, 0
where the scene is generated, in between only on the soft edge of an uploaded alpha. Bad input
raises `ProductImageError` (a `SpecError`, so the command line exits 2) with one line naming the
product and the file. Nothing here writes anything.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from adgen.spec import SpecError, image_size_problem

MAX_PRODUCT_BYTES = 10 * 1024 * 1024
FORMATS = ("PNG", "JPEG", "WEBP")
# GrabCut works on a copy at most this long on its longer side (seconds, not minutes, on a CPU); its
# mask is scaled back to the photo's size.
GRABCUT_SIDE = 640
GRABCUT_ITERATIONS = 6
BORDER = 0.02  # share of each side taken as certain background when seeding GrabCut
EMPTY_SHARE = 0.005  # a cut-out keeping less than this share of the frame kept nothing
WHOLE_SHARE = 0.99  # ... and one keeping more than this share removed nothing

MaskSource = Literal["alpha", "grabcut"]


class ProductImageError(SpecError):
    """A product image that cannot be used; the message names the product and the file."""


@dataclass(frozen=True)
class Cutout:
    """A product cut out of its photo.

    image: RGBA, cropped to the product's bounding box; the alpha channel is the mask.
    source: "alpha" (the file's own alpha channel) or "grabcut" (separated here).
    photo_sha256: content hash of the file's bytes; mask_sha256: of the mask (size and pixels).
    photo_box: (x, y, width, height) of `image` within the photo, after EXIF rotation.
    """

    image: Image.Image
    source: MaskSource
    photo_sha256: str
    mask_sha256: str
    photo_box: tuple[int, int, int, int]

    @property
    def mask(self) -> Image.Image:
        """The mask as a greyscale image: 255 product, 0 background."""
        return self.image.getchannel("A")

    def lineage(self) -> dict:
        """What a creative's lineage records about its product photo."""
        return {"photo_sha256": self.photo_sha256, "mask_sha256": self.mask_sha256, "mask_source": self.source,
                "photo_box": list(self.photo_box), "size": list(self.image.size)}


def cut_out_file(path: Path, *, product: str) -> Cutout:
    """Read the product image at `path` and cut the product out; see `cut_out`."""
    path = Path(path)
    if not path.is_file():
        raise ProductImageError(f"product {product!r}: image {path} does not exist")
    if path.stat().st_size > MAX_PRODUCT_BYTES:
        raise ProductImageError(
            f"product {product!r}: image {path} is {path.stat().st_size / 1024**2:.1f} MB; "
            f"the limit is {MAX_PRODUCT_BYTES // 1024**2} MB"
        )
    return cut_out(path.read_bytes(), product=product, file=str(path))


def cut_out(data: bytes, *, product: str | None, file: str) -> Cutout:
    """The product in `data` (PNG, JPEG or WebP bytes) as a cut-out.

    `product` and `file` only name the input in errors (`product` None: a photo not yet given to a
    product, e.g. an upload being previewed). Raises ProductImageError when the bytes are over
    MAX_PRODUCT_BYTES, not a PNG/JPEG/WebP image, over spec.MAX_IMAGE_PIXELS (read from the header,
    before decoding), or when the cut-out keeps nothing (under EMPTY_SHARE of the frame) or removes
    nothing (over WHOLE_SHARE of what could be removed).
    """
    where = f"image {file}" if product is None else f"product {product!r}: image {file}"
    if len(data) > MAX_PRODUCT_BYTES:
        raise ProductImageError(
            f"{where} is {len(data) / 1024**2:.1f} MB; the limit is {MAX_PRODUCT_BYTES // 1024**2} MB"
        )
    photo = _decode(data, where)
    alpha = _meaningful_alpha(photo)
    rgb = np.asarray(photo.convert("RGB"))
    if alpha is not None:
        source: MaskSource = "alpha"
        mask = alpha
        kept, decidable = int((alpha > 0).sum()), alpha.size
    else:
        source = "grabcut"
        mask, decidable = _grabcut(rgb)
        kept = int((mask > 0).sum())
    if kept < EMPTY_SHARE * mask.size:
        raise ProductImageError(
            f"{where}: the cut-out is empty (nothing of the product was kept); upload a photo of the product "
            "on a plain background, or a PNG whose alpha channel keeps the product"
        )
    if kept > WHOLE_SHARE * decidable:
        raise ProductImageError(
            f"{where}: the cut-out is the whole frame (no background was removed); upload a PNG whose alpha "
            "channel is transparent around the product, or a photo with background around it"
        )
    ys, xs = np.nonzero(mask)
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    rgba = np.dstack([rgb, mask])[y0:y1, x0:x1]
    # Colour under fully transparent pixels is meaningless; zeroing it keeps the hash and the
    # resized edges free of whatever the photo had there.
    rgba[rgba[..., 3] == 0] = 0
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    crop = mask[y0:y1, x0:x1]
    return Cutout(
        image=image,
        source=source,
        photo_sha256=hashlib.sha256(data).hexdigest(),
        mask_sha256=hashlib.sha256(f"{crop.shape[1]}x{crop.shape[0]}:".encode() + crop.tobytes()).hexdigest(),
        photo_box=(x0, y0, x1 - x0, y1 - y0),
    )


def _decode(data: bytes, where: str) -> Image.Image:
    """The decoded photo, upright (EXIF orientation applied), after the format and pixel checks."""
    # The one pixel check of every image a user gives (logos, training photos): it reads the size
    # from the header and also catches Pillow's own decompression-bomb refusal.
    if problem := image_size_problem(data):
        raise ProductImageError(f"{where}: {problem}")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            fmt = probe.format
    except Exception:
        raise ProductImageError(f"{where} is not an image; use PNG, JPEG or WebP") from None
    if fmt not in FORMATS:
        raise ProductImageError(f"{where} is {fmt}; use PNG, JPEG or WebP")
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception:
        raise ProductImageError(f"{where} is damaged (it could not be decoded); use PNG, JPEG or WebP") from None
    return ImageOps.exif_transpose(image)


def _meaningful_alpha(image: Image.Image) -> np.ndarray | None:
    """The alpha channel as uint8 when the image has one with any pixel not fully opaque."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("PA", "LA"):
        image = image.convert("RGBA")
    if image.mode != "RGBA":
        return None
    alpha = np.asarray(image.getchannel("A"))
    return alpha.copy() if alpha.min() < 255 else None


def _grabcut(rgb: np.ndarray) -> tuple[np.ndarray, int]:
    """Binary mask (0/255) of the product, from GrabCut seeded with the border band as background;
    also the number of pixels GrabCut could assign to the product (those inside the band)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, GRABCUT_SIDE / max(w, h))
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    bx, by = max(1, round(BORDER * sw)), max(1, round(BORDER * sh))
    if sw - 2 * bx < 2 or sh - 2 * by < 2:
        return np.zeros((h, w), np.uint8), 0
    seeds = np.zeros((sh, sw), np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # OpenCV's GrabCut reads BGR; the colour models do not care, but its defaults were tuned on it.
    bgr = np.ascontiguousarray(small[..., ::-1])
    cv2.setRNGSeed(0)  # GrabCut's k-means start is random; a fixed seed makes the cut-out repeatable
    cv2.grabCut(bgr, seeds, (bx, by, sw - 2 * bx, sh - 2 * by), bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    keep = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    keep = cv2.morphologyEx(keep, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(keep, connectivity=8)
    if count > 1:
        areas = stats[1:, cv2.CC_STAT_AREA]
        pieces = [i + 1 for i, a in enumerate(areas) if a >= 0.1 * areas.max()]
        keep = np.isin(labels, pieces).astype(np.uint8)
    full = cv2.resize(keep.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    decidable = round((sw - 2 * bx) * (sh - 2 * by) / (sw * sh) * w * h)
    return np.where(full >= 0.5, 255, 0).astype(np.uint8), decidable
