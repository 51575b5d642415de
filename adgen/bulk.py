"""Platform bulk files: for each ad platform a campaign has placements on, a folder holding the file
that platform's own bulk tool imports and every image that file names, at every size.

The column lists live in data/bulk_formats.yaml with their sources; this module fills them. It
takes narrow inputs (the spec, the creatives as `Creative`, their final URLs and finished images)
and knows nothing of the records or the storage, so the export decides what goes in and this module
decides only how each platform wants it written.

- Ad groups (ad sets, asset groups, LinkedIn campaigns, X ad groups) are named from the product
  and the audience; ad names carry the creative id and the size, so a platform report joins back.
- Every text is in its own column, never joined (RSA headline 1..15, description 1..4, ...).
- Single-image platforms get one ad row per size of a creative; a Performance Max asset group gets
  its landscape, square and portrait images and the brand logo made square in one row.
- Everything is imported paused, so a mistaken import spends nothing.
- A preview (creatives not approved) says PREVIEW in each folder's name, in each file's name and
  in every row's campaign, so it cannot be imported by mistake.
"""

import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml
from PIL import Image, ImageOps

from adgen.csvfile import write_csv
from adgen.landing import URLError, final_url, slug
from adgen.platforms import Placement, placement
from adgen.spec import CampaignSpec

PREVIEW = "PREVIEW"
PAUSED = "Paused"


class BulkError(ValueError):
    """A platform file cannot be made from this campaign; the message names the field to fix."""


@dataclass(frozen=True)
class Creative:
    """What a platform file needs of one creative."""

    id: str
    product: str
    audience: str
    placement: str
    copy: dict[str, list[str]]


@cache
def formats() -> dict:
    """The platform file formats, from data/bulk_formats.yaml."""
    return yaml.safe_load(resources.files("adgen").joinpath("data/bulk_formats.yaml").read_text())


def file_format(placement_name: str) -> tuple[str, dict] | None:
    """(platform, file format) that takes creatives of a placement; None for placements no bulk file
    takes (IAB display sizes go to an ad server, not a platform's bulk tool)."""
    for platform, fmt in formats()["platforms"].items():
        for f in fmt["files"]:
            if placement_name in f["placements"]:
                return platform, f
    return None


def headers(file: dict) -> list[str]:
    """The file's column headers in order, repeats expanded ("Headline 1" .. "Headline 15")."""
    out = []
    for col in file["columns"]:
        n = col.get("repeat")
        out += [f"{col['header']} {i}" for i in range(1, n + 1)] if n else [col["header"]]
    return out


def aspect_name(width: int, height: int) -> str:
    """How the platforms name an image shape: square, landscape (about 1.91:1), portrait (4:5,
    2:3) or story (9:16)."""
    ratio = width / height
    if abs(ratio - 1) < 0.02:
        return "square"
    if ratio > 1:
        return "landscape"
    return "story" if ratio < 0.6 else "portrait"


def image_name(creative_id: str, width: int, height: int) -> str:
    return f"{creative_id}_{aspect_name(width, height)}_{width}x{height}.png"


def sizes(placement_: Placement) -> list[tuple[int, int]]:
    """Every size a placement is exported at: the primary one first, then its `also` sizes."""
    image = placement_.image
    return [(image.width, image.height), *[tuple(s) for s in image.also]] if image else []


def final_urls(spec: CampaignSpec, creatives: list[Creative]) -> dict[str, str]:
    """Each creative's landing URL (product URL + the spec's UTM template). A creative bound for a
    platform file whose product has no URL is an error naming the product, raised before anything
    is written; creatives that need none (display sizes) get a URL only when their product has one."""
    products = {p.name: p for p in spec.products}
    template = spec.tracking.model_dump()
    urls = {}
    for c in creatives:
        target = file_format(c.placement)
        url = products[c.product].url
        if url is None:
            if target:
                raise BulkError(f"products[{spec.products.index(products[c.product])}].url: product {c.product!r} has "
                                f"no landing page URL, and {c.placement} ads need one; add url: https://...")
            continue
        values = {"platform": target[0] if target else placement(c.placement).channel, "campaign": spec.campaign,
                  "audience": c.audience, "product": slug(c.product), "placement": c.placement, "creative": c.id}
        try:
            urls[c.id] = final_url(url, template, values)
        except URLError as e:
            raise BulkError(f"product {c.product!r}: {e}") from None
    return urls


def check_image(png: bytes, width: int, height: int, placement_: Placement, what: str) -> None:
    """A finished image is checked as the primary size is: exact size, and within the file-size limit."""
    with Image.open(io.BytesIO(png)) as im:
        if im.size != (width, height):
            raise BulkError(f"{what}: rendered at {im.size[0]}x{im.size[1]}, not {width}x{height}")
    limit = placement_.image.max_kb
    if limit and len(png) > limit * 1024:
        raise BulkError(f"{what}: {len(png) // 1024} KB is over {placement_.name}'s {limit} KB")


def all_sizes(c: Creative, primary: bytes, background: bytes, spec: CampaignSpec, logo: bytes | None,
              layout) -> dict[tuple[int, int], bytes]:
    """Every size of a creative: the reviewed primary image as stored, and each `also` size laid out
    by `layout` (adgen.pipeline's, given copy, placement, spec, background, logo and size) from the same
    generated scene, each checked as the primary size is."""
    placement_ = placement(c.placement)
    out = {}
    for width, height in sizes(placement_):
        what = f"creative {c.id} at {width}x{height}"
        if (width, height) == (placement_.image.width, placement_.image.height):
            png = primary
        else:
            try:
                png = layout(c.copy, placement_, spec, Image.open(io.BytesIO(background)), logo, (width, height),
                             language=spec.language_of(c.audience))
            except ValueError as e:  # the layout could not fit the copy at this size
                raise BulkError(f"{what}: {e}") from None
        check_image(png, width, height, placement_, what)
        out[(width, height)] = png
    return out


def _logo_size() -> int:
    return next(f["logo"]["size"] for fmt in formats()["platforms"].values() for f in fmt["files"] if "logo" in f)


def square_logo(logo: bytes, colors: list[str]) -> bytes:
    """The brand logo centred on a square of the brand's light colour (white without one), as
    Performance Max's 1:1 logo asset wants it: transparent margins trimmed, aspect kept, never
    stretched."""
    from adgen.render import encode_png

    size = _logo_size()
    background = colors[1] if len(colors) > 1 else "#FFFFFF"
    with Image.open(io.BytesIO(logo)) as im:
        im = im.convert("RGBA")
        box = im.getbbox() or (0, 0, *im.size)
        im = ImageOps.contain(im.crop(box), (int(size * 0.8), int(size * 0.8)), Image.Resampling.LANCZOS)
        canvas = Image.new("RGBA", (size, size), background)
        canvas.alpha_composite(im, ((size - im.width) // 2, (size - im.height) // 2))
        return encode_png(canvas.convert("RGB"))


def needs_logo(creatives: list[Creative]) -> bool:
    """Whether a platform file these creatives go into asks for the brand logo (Performance Max)."""
    return any((target := file_format(c.placement)) and "logo" in target[1] for c in creatives)


def _cell(value: str, c: Creative, n: int | None, ctx: dict) -> str:
    if value.startswith("="):
        return value[1:]
    kind, _, arg = value.partition(":")
    if kind in ("text", "cta_enum"):
        role, _, nth = arg.partition("#")
        texts = placement(c.placement).role_texts(role, c.copy, int(nth or 1))
        if kind == "cta_enum":
            return texts[0].upper().replace(" ", "_") if texts else ""
        index = (n or 1) - 1
        return texts[index] if index < len(texts) else ""
    if kind == "image" and arg:
        return ctx["by_aspect"].get(arg, "")
    return ctx[kind]


def write_platform_folders(out: Path, spec: CampaignSpec, creatives: list[Creative], urls: dict[str, str],
                           images: dict[tuple[str, int, int], bytes], logo: bytes | None, preview: bool) -> list[Path]:
    """Write one folder per platform under `out`; returns the files written. `images` holds every
    finished (signed) image by (creative id, width, height); `logo` the signed square logo, if any."""
    written = []
    prefix = f"{PREVIEW}-" if preview else ""
    campaign = f"{PREVIEW} do not import - {spec.campaign}" if preview else spec.campaign
    by_file: dict[tuple[str, str], list[Creative]] = {}
    for c in creatives:
        target = file_format(c.placement)
        if target:
            by_file.setdefault((target[0], target[1]["name"]), []).append(c)
    for platform, fmt in formats()["platforms"].items():
        for file in fmt["files"]:
            chosen = by_file.get((platform, file["name"]))
            if not chosen:
                continue
            folder = out / f"{prefix}{platform}"
            folder.mkdir(exist_ok=True)
            logo_name = None
            if "logo" in file and logo is not None:
                logo_name = f"logo_square_{file['logo']['size']}x{file['logo']['size']}.png"
                (folder / logo_name).write_bytes(logo)
            rows = []
            for c in chosen:
                by_aspect, per_size = {}, []
                for width, height in sizes(placement(c.placement)):
                    name = image_name(c.id, width, height)
                    (folder / name).write_bytes(images[(c.id, width, height)])
                    by_aspect.setdefault(aspect_name(width, height), name)
                    per_size.append((name, f"{c.id} {aspect_name(width, height)} {width}x{height}"))
                ctx = {"campaign": campaign, "ad_group": f"{c.product} - {c.audience}", "final_url": urls[c.id],
                       "creative_id": c.id, "status_paused": PAUSED, "logo": logo_name or "", "by_aspect": by_aspect}
                one_row_per_size = any(col["value"] == "image" for col in file["columns"])
                for name, ad_name in (per_size if one_row_per_size else [("", c.id)]):
                    ctx["image"], ctx["ad_name"] = name, ad_name
                    rows.append([cell for col in file["columns"]
                                 for cell in ([_cell(col["value"], c, n, ctx) for n in range(1, col["repeat"] + 1)]
                                              if col.get("repeat") else [_cell(col["value"], c, None, ctx)])])
            path = folder / f"{prefix}{file['name']}"
            write_csv(path, headers(file), rows)
            written.append(path)
    return written
