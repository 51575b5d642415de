"""Cost of a creative with a product photo vs without, on the offline default image models.

Without: the text-to-image pipeline paints the background at the placement's bucket, the renderer
lays out the ad. With: the product box is chosen in the layout, the inpainting pipeline paints the
scene around the cut-out at the photo region's canvas and outpaints it to the region's exact size
(a second pass over the new margins only, as campaigns do; timed too with the whole extension
painted, as before), the renderer lays out the ad over it and the product's pixels are
pasted at its box. Both at the campaign's image steps and guidance (20, 6.0).
The cut-out itself is made once per product, not per creative; its cost is printed apart, for the
shipped alpha cut-out and for GrabCut on the same photo flattened onto a background.

    python bench/product_photo.py [--repeats 3] [--threads 1]   # needs `adgen init` to have built ADGEN_MODELS

Prints median seconds per creative for each placement side by side (the three timed alternately)
and the ratios with / without.
"""

import argparse
import io
import itertools
import os
import statistics
import tempfile
import timeit
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from adgen.cutout import cut_out, cut_out_file  # noqa: E402
from adgen.image import ImageModel  # noqa: E402
from adgen.inpaint_default import build_inpaint_pipeline  # noqa: E402
from adgen.platforms import placement  # noqa: E402
from adgen.product_box import Box  # noqa: E402
from adgen.product_shot import geometry  # noqa: E402
from adgen.render import plan_layout, render_creative  # noqa: E402
from adgen.scene import compose_scene, extend_scene, load_inpainting, paste_product  # noqa: E402
from adgen.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLACEMENTS = ["meta_feed", "meta_story", "linkedin_single_image", "display_728x90"]
PROMPT = "Espresso Blend, a cup of espresso on a cafe table, warm morning light, brown and cream tones"
STEPS, GUIDANCE = 20, 6.0
COLORS = ["#3B2A20", "#F2E8DC", "#C8553D"]


def _median(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls of fn(seed), a new seed each call."""
    seeds = itertools.count()
    return statistics.median(timeit.repeat(lambda: fn(next(seeds)), number=1, repeat=repeats))


def _side_by_side(fns, repeats: int) -> list[float]:
    """Median seconds of each fn(seed), called alternately so that a change in the machine's load
    falls on all alike."""
    times: list[list[float]] = [[] for _ in fns]
    for seed in range(repeats):
        for fn, out in zip(fns, times, strict=True):
            out.append(timeit.timeit(lambda fn=fn, seed=seed: fn(seed), number=1))
    return [statistics.median(t) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 keeps a shared machine's noise down)")
    args = parser.parse_args()
    image_dir = Settings().models_dir / "image-default"
    if not (image_dir / "model_index.json").is_file():
        raise SystemExit(f"no default image pipeline at {image_dir}; run `adgen init` first")
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    text2image = ImageModel(str(image_dir), cpu, torch.float32)
    with tempfile.TemporaryDirectory() as tmp:
        build_inpaint_pipeline(Path(tmp) / "inpaint", image_pipeline=image_dir)
        inpaint = load_inpainting(str(Path(tmp) / "inpaint"), cpu, torch.float32)
    logo = Image.open(REPO / "examples" / "northwind-logo.png")
    cutout = cut_out_file(REPO / "examples" / "espresso.png", product="Espresso Blend")
    flat = Image.new("RGBA", Image.open(REPO / "examples" / "espresso.png").size, (196, 180, 160, 255))
    flat.alpha_composite(Image.open(REPO / "examples" / "espresso.png"))
    buffer = io.BytesIO()
    flat.convert("RGB").save(buffer, format="JPEG", quality=92)
    photo = buffer.getvalue()

    # Warm both pipelines so the first call's one-off setup is not counted.
    text2image.generate(PROMPT, negative=None, seeds=[0], size=(128, 128), steps=1, guidance=GUIDANCE)
    compose_scene(inpaint, cutout, canvas=(128, 128), box=Box(16, 24, 96, 96), prompt=PROMPT, seed=0, steps=1)

    print(f"{torch.get_num_threads()} torch threads, {STEPS} steps, guidance {GUIDANCE}; median of {args.repeats}; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("cut-out, once per product: alpha {:.3f} s, GrabCut {:.3f} s".format(
        _median(lambda i: cut_out_file(REPO / "examples" / "espresso.png", product="E"), args.repeats),
        _median(lambda i: cut_out(photo, product="E", file="flat.jpg"), args.repeats),
    ))
    print(f"{'placement':24} {'without photo':>14} {'with photo':>11} {'with/without':>13} "
          f"{'whole extension':>16} {'with/without':>13}")
    for name in PLACEMENTS:
        spec = placement(name).image
        kw = dict(width=spec.width, height=spec.height, headline="Espresso Blend, Pulled Fresh", cta="Shop Now",
                  colors=COLORS, logo=logo, brand_name="Northwind Coffee",
                  safe_top=spec.safe_top, safe_bottom=spec.safe_bottom)

        def without(i: int, kw=kw, spec=spec) -> None:
            background = text2image.generate(PROMPT, negative=None, seeds=[i], size=text2image.bucket(spec.width, spec.height),
                                             steps=STEPS, guidance=GUIDANCE).images[0]
            render_creative(background, **kw)

        def with_photo(i: int, kw=kw, spec=spec, margin_only: bool = True) -> None:
            layout = plan_layout(**kw)
            box, canvas, canvas_box, inner = geometry(cutout, layout, spec, inpaint)
            scene = compose_scene(inpaint, cutout, canvas=canvas, box=canvas_box, prompt=PROMPT, seed=i, steps=STEPS,
                                  guidance=GUIDANCE)
            extended = extend_scene(inpaint, scene.image, width=layout.photo.width, height=layout.photo.height,
                                    prompt=PROMPT, seed=i, steps=STEPS, guidance=GUIDANCE, inner=inner,
                                    margin_only=margin_only)
            paste_product(render_creative(extended.image, **kw), cutout, box)

        plain, product, whole = _side_by_side(
            [without, with_photo, lambda i, fn=with_photo: fn(i, margin_only=False)], args.repeats)
        print(f"{name:24} {plain:13.3f}s {product:10.3f}s {product / plain:12.2f}x {whole:15.3f}s {whole / plain:12.2f}x")
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
