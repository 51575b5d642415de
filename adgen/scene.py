"""The scene around a product: inpainted around its cut-out, grounded, the product's pixels untouched.

Given a cut-out (adgen.cutout) and the box where the layout puts the product, an inpainting
pipeline (diffusers' `AutoPipelineForInpainting`: SD 1.5 or SDXL inpainting, or the tiny offline
default) generates everything but the product, at the model's native resolution:

1. The cut-out is scaled to fit its box (aspect kept, centred across, resting on the box's bottom)
   with `Image.resize(..., LANCZOS)`; that resized cut-out is what the creative shows.
2. The repaint mask is the inverse of the product, grown by a few pixels into the product's edge so
   the generated scene meets it without a seam.
3. A soft contact shadow, an ellipse under the product's base, grounds it on whatever was painted.
4. The product's own pixels are pasted back: wherever the resized cut-out is opaque, the output
   equals it exactly; its soft edge (partial alpha) is blended over the scene.

`extend_scene` widens or heightens a scene to another aspect ratio by outpainting the new margin
instead of cropping: a scene painted at the model's canvas is extended to the exact size of the
layout's photo region, whose ratio the canvas (sides in steps of 16 or 64 pixels) only approaches;
`extension_box` says where the painted scene then lies. Only the margins are painted: the model
gets a frame of each new margin beside a strip of the scene (the scene's middle left out), so a
margin of a few percent costs a fraction of a second pass, and the scene's pixels are kept. Prompts are cut to the text encoder's token limit (CLIP: 77 with its start
and end tokens) and the prompt as the model saw it is returned for the lineage. An image the
pipeline's own safety checker flags is never used: it is made again with a new seed, and after
`max_attempts` flagged images the call fails with the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from adgen.cutout import Cutout
from adgen.product_box import Box

SEED_STEP = 1_000_003  # a flagged image is made again with seed + attempt * SEED_STEP
SHADOW_OPACITY = 0.45
EDGE_OVERLAP = 0.01  # the repaint mask reaches this share of the canvas's longer side into the product


class SceneError(RuntimeError):
    """A scene that could not be made; the message says why (e.g. every attempt was flagged)."""


@dataclass(frozen=True)
class Scene:
    """A generated scene with the product in it.

    image: RGB at the canvas size. box: where the product's pixels are (inside the requested box).
    prompt, negative_prompt: as the model saw them. seed: the seed of the image used; attempts: how
    many images were made (more than 1 when the safety checker flagged one).
    """

    image: Image.Image
    box: Box
    prompt: str
    negative_prompt: str | None
    seed: int
    attempts: int
    strength: float
    edge_overlap: int

    def lineage(self) -> dict:
        return {"canvas": list(self.image.size), "product_box": [self.box.x, self.box.y, self.box.width, self.box.height],
                "image_prompt": self.prompt, "negative_prompt": self.negative_prompt, "image_seed": self.seed,
                "attempts": self.attempts, "inpaint_strength": self.strength, "mask_overlap_px": self.edge_overlap}


@dataclass(frozen=True)
class Extension:
    """A scene extended to another aspect ratio. image: RGB at the requested size; inner: where
    the original scene lies in it (scaled, never cropped); the rest was outpainted. Within `seam`
    pixels of a new margin the original is blended into it; elsewhere in `inner` it is kept as is."""

    image: Image.Image
    inner: Box
    seam: int
    prompt: str
    seed: int
    attempts: int


def load_inpainting(path: str, device: torch.device, dtype: torch.dtype):
    """An inpainting pipeline from a local folder or hub id, with progress bars off."""
    from diffusers import AutoPipelineForInpainting

    pipe = AutoPipelineForInpainting.from_pretrained(path, dtype=dtype).to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def native_size(pipe) -> int:
    """The side, in pixels, the pipeline's denoiser was made for (e.g. 512 for SD 1.5)."""
    denoiser = pipe.components.get("unet") or pipe.components["transformer"]
    return denoiser.config.sample_size * pipe.vae_scale_factor


def size_step(pipe) -> int:
    """Canvas sides must be multiples of this: the VAE's scale factor times the UNet's own
    downsampling (64 for SD 1.5 and SDXL, 16 for the tiny default), or twice the VAE's factor for
    transformer denoisers, which pack 2x2 latent patches."""
    unet = pipe.components.get("unet")
    if unet is None:
        return 2 * pipe.vae_scale_factor
    return pipe.vae_scale_factor * 2 ** (len(unet.config.block_out_channels) - 1)


def canvas_for(pipe, width: int, height: int) -> tuple[int, int]:
    """The canvas to generate a width x height region at: about the model's native area, sides
    multiples of `size_step`, aspect ratio nearest the region's (the rule of ImageModel.bucket)."""
    step, native = size_step(pipe), native_size(pipe)
    area, target = native**2, math.log(width / height)
    sizes = [
        (w, h)
        for w in range(step, 4 * native + 1, step)
        for h in range(step, 4 * native + 1, step)
        if 0.75 * area <= w * h <= 1.1 * area
    ]
    return min(sizes, key=lambda s: (round(abs(math.log(s[0] / s[1]) - target), 2), -s[0] * s[1]))


def fit_prompt(pipe, prompt: str) -> str:
    """`prompt` cut to what every text encoder of `pipe` reads (CLIP: 75 tokens between its start
    and end tokens): the longest run of its first words that fits, trailing punctuation dropped.
    Returned unchanged when it fits; either way the text the model sees, as written."""
    for name in ("tokenizer", "tokenizer_2"):
        tokenizer = pipe.components.get(name)
        if tokenizer is None:
            continue
        limit = tokenizer.model_max_length - 2

        def fits(text: str, tokenizer=tokenizer, limit=limit) -> bool:
            # truncation at limit + 1 only tells "too long" apart without the tokenizer's warning
            ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=limit + 1)["input_ids"]
            return len(ids) <= limit

        if fits(prompt):
            continue
        words = prompt.split(" ")
        kept, over = 0, len(words)  # the first `kept` words fit, the first `over` do not
        while over - kept > 1:
            middle = (kept + over) // 2
            kept, over = (middle, over) if fits(" ".join(words[:middle])) else (kept, middle)
        prompt = " ".join(words[:kept]).rstrip(" ,;:")
    return prompt


def place(cutout: Cutout, box: Box) -> tuple[Image.Image, Box]:
    """The cut-out scaled into `box` (aspect kept, centred across, on the box's bottom edge) as RGBA,
    and the box it then fills exactly."""
    cw, ch = cutout.image.size
    scale = min(box.width / cw, box.height / ch)
    w, h = max(1, round(cw * scale)), max(1, round(ch * scale))
    placed = Box(box.x + (box.width - w) // 2, box.bottom - h, w, h)
    return cutout.image.resize((w, h), Image.Resampling.LANCZOS), placed


def paste_product(image: Image.Image, cutout: Cutout, box: Box) -> tuple[Image.Image, Box]:
    """A copy of `image` (RGB) with the product placed in `box` (see `place`): where the resized
    cut-out is opaque the result is exactly its pixels, its soft edge is blended over the image.
    Returns the new image and the box the product fills."""
    product, placed = place(cutout, box)
    if placed.x < 0 or placed.y < 0 or placed.right > image.width or placed.bottom > image.height:
        raise ValueError(f"product box {placed} is not inside the {image.width}x{image.height} image")
    out = np.array(image.convert("RGB"))
    region = out[placed.y : placed.bottom, placed.x : placed.right].astype(np.uint16)
    rgba = np.asarray(product).astype(np.uint16)
    alpha = rgba[..., 3:4]
    blended = (rgba[..., :3] * alpha + region * (255 - alpha) + 127) // 255
    # Integer blending with alpha 255 gives the product's value exactly; said twice for clarity.
    blended = np.where(alpha == 255, rgba[..., :3], blended)
    out[placed.y : placed.bottom, placed.x : placed.right] = blended.astype(np.uint8)
    return Image.fromarray(out), placed


def contact_shadow(image: Image.Image, cutout: Cutout, box: Box) -> Image.Image:
    """`image` darkened by a soft ellipse under the base of the product placed in `box`."""
    product, placed = place(cutout, box)
    alpha = np.asarray(product.getchannel("A")) > 0
    rows = np.nonzero(alpha.any(axis=1))[0]
    base = alpha[rows[-max(1, len(rows) // 10) :]].any(axis=0)  # the lowest tenth of the product
    cols = np.nonzero(base)[0]
    left, right = placed.x + cols.min(), placed.x + cols.max() + 1
    cx, cy = (left + right) / 2, placed.y + rows[-1] + 1
    rx, ry = 0.55 * (right - left), max(2.0, 0.06 * placed.height)
    shade = Image.new("L", image.size, 0)
    ImageDraw.Draw(shade).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=255)
    shade = shade.filter(ImageFilter.GaussianBlur(max(1.0, ry)))
    factor = 1.0 - SHADOW_OPACITY * np.asarray(shade, np.float32)[..., None] / 255.0
    return Image.fromarray(np.round(np.asarray(image.convert("RGB"), np.float32) * factor).astype(np.uint8))


def _generate(pipe, *, image, mask, prompt, negative_prompt, seed, steps, guidance, strength, max_attempts):
    """One inpainted image that the pipeline's safety checker (if it has one) did not flag, and the
    seed and attempt count that made it."""
    flagged = []
    for attempt in range(max_attempts):
        attempt_seed = seed + attempt * SEED_STEP
        with torch.inference_mode():
            out = pipe(
                prompt=prompt, negative_prompt=negative_prompt if guidance > 1 else None,
                image=image, mask_image=mask, width=image.width, height=image.height,
                strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                generator=torch.Generator(device="cpu").manual_seed(attempt_seed),
            )
        # Only pipelines with a safety checker report on it; the others return no such field.
        if not any(getattr(out, "nsfw_content_detected", None) or []):
            return out.images[0].convert("RGB"), attempt_seed, attempt + 1
        flagged.append(attempt_seed)
    raise SceneError(
        f"the image model's safety checker flagged every image ({max_attempts} seed{'s' * (max_attempts != 1)}: "
        f"{', '.join(map(str, flagged))}); change the prompt or the product photo"
    )


def compose_scene(
    pipe, cutout: Cutout, *, canvas: tuple[int, int], box: Box, prompt: str, seed: int,
    negative_prompt: str | None = None, steps: int = 20, guidance: float = 6.0, strength: float = 1.0,
    max_attempts: int = 3,
) -> Scene:
    """Generate the scene around the product with the inpainting `pipe`.

    canvas: (width, height) to generate at, near the model's native area, sides multiples of
    `size_step(pipe)`. box: where the product goes on that canvas.
    strength 1.0 paints the scene from noise; lower keeps more of the neutral ground around the
    product. Raises SceneError when every attempt is flagged, ValueError for a bad canvas or box.
    """
    width, height = canvas
    factor = size_step(pipe)
    if width % factor or height % factor or width < factor or height < factor:
        raise ValueError(f"canvas must have sides that are positive multiples of {factor}, got {width}x{height}")
    if box.x < 0 or box.y < 0 or box.right > width or box.bottom > height or box.width < 1 or box.height < 1:
        raise ValueError(f"product box {box} is not inside the {width}x{height} canvas")
    prompt = fit_prompt(pipe, prompt)
    negative_prompt = None if negative_prompt is None else fit_prompt(pipe, negative_prompt)
    # The product on a neutral grey ground: what the masked-image input of the model shows.
    ground, placed = paste_product(Image.new("RGB", canvas, (127, 127, 127)), cutout, box)
    keep = Image.new("L", canvas, 0)
    keep.paste(place(cutout, box)[0].getchannel("A").point(lambda a: 255 if a == 255 else 0), (placed.x, placed.y))
    overlap = max(1, round(EDGE_OVERLAP * max(canvas)))
    # MinFilter shrinks the kept area, so the repaint mask (its inverse) reaches into the product's edge.
    keep = keep.filter(ImageFilter.MinFilter(2 * overlap + 1))
    mask = Image.eval(keep, lambda v: 255 - v)
    generated, used_seed, attempts = _generate(
        pipe, image=ground, mask=mask, prompt=prompt, negative_prompt=negative_prompt, seed=seed, steps=steps,
        guidance=guidance, strength=strength, max_attempts=max_attempts,
    )
    if generated.size != canvas:
        generated = generated.resize(canvas, Image.Resampling.LANCZOS)
    scene, placed = paste_product(contact_shadow(generated, cutout, box), cutout, box)
    return Scene(image=scene, box=placed, prompt=prompt, negative_prompt=negative_prompt, seed=used_seed,
                 attempts=attempts, strength=strength, edge_overlap=overlap)


def extension_box(size: tuple[int, int], width: int, height: int, keep: Box | None = None) -> Box:
    """Where an image of `size` lies in a width x height extension of it: scaled to fit inside
    (never cropped) and centred; along the side it does not fill, moved off centre only as far as
    needed to hold `keep` (a box in the extension's pixels, e.g. the product) whole."""
    scale = min(width / size[0], height / size[1])
    w, h = min(width, round(size[0] * scale)), min(height, round(size[1] * scale))

    def offset(free: int, low: int, high: int, length: int) -> int:
        return min(max(free // 2, high - length), low, free) if keep is not None else free // 2

    x = max(0, offset(width - w, keep.x if keep else 0, keep.right if keep else 0, w))
    y = max(0, offset(height - h, keep.y if keep else 0, keep.bottom if keep else 0, h))
    return Box(x, y, w, h)


def _margin_pieces(length: float, lo: float, hi: float, context: float) -> list[tuple[float, float]]:
    """Along the extended axis of a scene that lies at [lo, hi) of `length`: the spans to paint,
    each new margin with `context` of the scene beside it; the whole length when they would meet."""
    pieces = ([(0.0, lo + context)] if lo > 0 else []) + ([(hi - context, length)] if hi < length else [])
    if len(pieces) == 2 and pieces[0][1] >= pieces[1][0]:
        return [(0.0, length)]
    return pieces


def extend_scene(
    pipe, image: Image.Image, *, width: int, height: int, prompt: str, seed: int,
    negative_prompt: str | None = None, steps: int = 20, guidance: float = 6.0, max_attempts: int = 3,
    inner: Box | None = None, margin_only: bool = True,
) -> Extension:
    """`image` extended to the aspect ratio of width x height by outpainting, returned at exactly
    width x height. The image is scaled to fit inside (never cropped) at `inner` (default: centred,
    see `extension_box`); its pixels are kept except for a short feathered seam where a new margin
    meets them, and only the new margins are painted: the model gets a frame made of each margin
    with a strip of the scene beside it (the scene's middle left out), at the scene's own scale and
    at most the model's native area. margin_only False paints the whole extension at the native
    area instead (how creatives recorded without `scene_extension` were made)."""
    if width < 8 or height < 8:
        raise ValueError(f"width and height must be at least 8, got {width}x{height}")
    prompt = fit_prompt(pipe, prompt)
    negative_prompt = None if negative_prompt is None else fit_prompt(pipe, negative_prompt)
    inner = inner or extension_box(image.size, width, height)
    if inner.x < 0 or inner.y < 0 or inner.right > width or inner.bottom > height:
        raise ValueError(f"inner box {inner} is not inside the {width}x{height} extension")
    if (inner.width, inner.height) == (width, height):  # same ratio: nothing to outpaint
        out = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
        return Extension(image=out, inner=inner, seam=0, prompt=prompt, seed=seed, attempts=0)
    # Margins along one axis (as `extension_box` places a scene) are painted alone.
    one_axis = inner.width == width or inner.height == height
    paint = _paint_margins if margin_only and one_axis else _paint_whole
    out, edge, used_seed, attempts = paint(
        pipe, image.convert("RGB"), width=width, height=height, inner=inner, prompt=prompt, seed=seed,
        negative_prompt=negative_prompt, steps=steps, guidance=guidance, max_attempts=max_attempts,
    )
    # The original back at full output resolution, feathered over the seam where a new margin
    # meets it; sides that reach the output's edge have no margin and are kept whole.
    inner_w, inner_h = inner.width, inner.height
    feather = Image.new("L", (inner_w, inner_h), 0)
    half = edge // 2
    ImageDraw.Draw(feather).rectangle((half, half, inner_w - 1 - half, inner_h - 1 - half), fill=255)
    # A blur of a sixth of the seam reaches full strength within the seam's other half.
    keep = np.array(feather.filter(ImageFilter.GaussianBlur(max(0.5, edge / 6))))
    # Beyond the seam the original is kept exactly, whatever the blur's tail left there (on a thin
    # strip it fell a level short of full strength, so the new margin showed through by one level).
    keep[edge : inner_h - edge, edge : inner_w - edge] = 255
    if inner.x == 0:
        keep[:, : 2 * edge] = 255
    if inner.y == 0:
        keep[: 2 * edge, :] = 255
    if inner.right == width:
        keep[:, -2 * edge :] = 255
    if inner.bottom == height:
        keep[-2 * edge :, :] = 255
    out.paste(image.convert("RGB").resize((inner_w, inner_h), Image.Resampling.LANCZOS), (inner.x, inner.y),
              Image.fromarray(keep))
    return Extension(image=out, inner=inner, seam=edge, prompt=prompt, seed=used_seed, attempts=attempts)


def _paint_margins(pipe, image, *, width, height, inner, **generation):
    """The new margins around `image` (at `inner` of width x height) painted from a frame of the
    margins and a strip of the scene beside each; returns the output with the margins (and the
    strips under the seam) filled, the seam's width in output pixels, the seed used and attempts."""
    factor, native = size_step(pipe), native_size(pipe)
    across = inner.height == height  # the margins are left and right; else top and bottom
    s = image.width / inner.width if across else image.height / inner.height  # scene px per output px
    length = (width if across else height) * s  # a margin may be a fraction of a scene pixel
    lo, hi = (inner.x * s, inner.right * s) if across else (inner.y * s, inner.bottom * s)
    side = image.height if across else image.width  # the frame's other side, in scene px
    seam = max(2, round(EDGE_OVERLAP * 2 * max(image.size)))
    pieces = _margin_pieces(length, lo, hi, context=max(factor, 2 * seam))
    frame = sum(b - a for a, b in pieces)
    k = min(1.0, native / math.sqrt(frame * side))  # generation px per scene px
    g_len, g_side = (max(factor, math.ceil(v * k / factor) * factor) for v in (frame, side))
    # Scene px of the whole extension: the scene where it lies, grey margins; and what to repaint.
    full = (math.ceil(length), side) if across else (side, math.ceil(length))
    ground = Image.new("RGB", full, (127, 127, 127))
    ground.paste(image, (round(lo), 0) if across else (0, round(lo)))
    mask = Image.new("L", full, 255)
    keep_from, keep_to = round(lo) + (seam if lo > 0 else 0), round(hi) - (seam if hi < length else 0)
    mask.paste(0, (keep_from, 0, keep_to, side) if across else (0, keep_from, side, keep_to))
    g_size = (g_len, g_side) if across else (g_side, g_len)
    frame_ground, frame_mask = Image.new("RGB", g_size), Image.new("L", g_size)
    slots, at = [], 0.0
    for a, b in pieces:
        slot = (at * g_len / frame, at * g_len / frame + (b - a) * g_len / frame)
        at += b - a
        src = (a, 0, b, side) if across else (0, a, side, b)
        span = (round(slot[1]) - round(slot[0]), g_side)
        where = (round(slot[0]), 0) if across else (0, round(slot[0]))
        size = span if across else span[::-1]
        frame_ground.paste(ground.resize(size, Image.Resampling.LANCZOS, box=src), where)
        frame_mask.paste(mask.resize(size, Image.Resampling.NEAREST, box=src), where)
        slots.append((a, b, slot))
    generated, used_seed, attempts = _generate(pipe, image=frame_ground, mask=frame_mask, strength=1.0, **generation)
    out = Image.new("RGB", (width, height), (127, 127, 127))
    for a, b, (g0, g1) in slots:
        o0, o1 = round(a / s), min(width if across else height, round(b / s))
        src = (g0, 0, g1, g_side) if across else (0, g0, g_side, g1)
        size = (o1 - o0, height) if across else (width, o1 - o0)
        out.paste(generated.resize(size, Image.Resampling.LANCZOS, box=src), (o0, 0) if across else (0, o0))
    return out, max(1, round(seam / s)), used_seed, attempts


def _paint_whole(pipe, image, *, width, height, inner, **generation):
    """The whole extension painted at about the model's native area with the scene in it (the
    method before margins were painted alone); returns as `_paint_margins` does."""
    factor, native = size_step(pipe), native_size(pipe)
    gen_w = max(factor, round(native * (width / height) ** 0.5 / factor) * factor)
    gen_h = max(factor, round(native * (height / width) ** 0.5 / factor) * factor)
    gx, gy = gen_w / width, gen_h / height
    g_inner = Box(round(inner.x * gx), round(inner.y * gy), round(inner.width * gx), round(inner.height * gy))
    ground = Image.new("RGB", (gen_w, gen_h), (127, 127, 127))
    ground.paste(image.resize((g_inner.width, g_inner.height), Image.Resampling.LANCZOS), (g_inner.x, g_inner.y))
    seam = max(2, round(EDGE_OVERLAP * 2 * max(gen_w, gen_h)))
    mask = Image.new("L", (gen_w, gen_h), 255)
    mask.paste(0, (g_inner.x + seam, g_inner.y + seam, g_inner.right - seam, g_inner.bottom - seam))
    generated, used_seed, attempts = _generate(pipe, image=ground, mask=mask, strength=1.0, **generation)
    return generated.resize((width, height), Image.Resampling.LANCZOS), max(1, round(seam / gx)), used_seed, attempts
