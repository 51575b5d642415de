"""Benchmark: a 4 audiences x 3 placements x 4 variants campaign on the offline default models.

Prints, from one run on this machine: creatives per second; the efficiency ratio (time inside the
text and image model calls divided by end-to-end wall time); and the speed-up of the batched runner
(every text of a job in one call, every image of a job in one call) over a naive loop that makes one
creative per model call (the same campaign run as four campaigns of one variant each).

    python bench/campaign.py            # uses ADGEN_MODELS or ~/.adgen/models, builds them if missing
"""

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adgen.context import Context  # noqa: E402
from adgen.jobs import create_campaign, run_campaign  # noqa: E402
from adgen.resident import image_model_for, text_model_for  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import parse_spec  # noqa: E402

AUDIENCES = [
    ("busy-parents", "Parents of young kids, short on time, who want good coffee without the fuss."),
    ("night-owl-students", "University students on a budget who study late."),
    ("remote-professionals", "Remote professionals who start work early and want a calm routine."),
    ("weekend-hikers", "Fitness fans who hike and run at weekends and like to travel light."),
]
SPEC = {
    "campaign": "bench",
    "brand": {"name": "Northwind Coffee", "voice": "warm, witty, never pushy", "banned_terms": ["cheap", "guarantee"],
              "colors": ["#3B2A20", "#F2E8DC", "#C8553D"]},
    "products": [{"name": "Cold Brew Concentrate", "description": "Smooth, low-acid cold brew concentrate that makes 16 cups per bottle.",
                  "benefits": ["low acid", "ready in seconds", "16 cups per bottle"]}],
    "audiences": [{"name": n, "persona": p} for n, p in AUDIENCES],
    "placements": ["meta_feed", "meta_story", "linkedin_single_image"],
    "variants": 4,
    "seed": 7,
}


def run(ctx: Context, spec: dict) -> tuple[float, float, int]:
    """Wall seconds, model seconds and creatives for one campaign (models already loaded)."""
    campaign_id = create_campaign(parse_spec(spec), ctx)
    with ctx.db() as s:
        from adgen import records

        c = s.get(records.Campaign, campaign_id)
        text_ref, image_ref = c.text_model, c.image_model
    text, image = text_model_for(text_ref, ctx), image_model_for(image_ref, ctx)
    before = text.model_seconds + image.model_seconds
    start = time.perf_counter()
    counts = run_campaign(campaign_id, ctx)
    wall = time.perf_counter() - start
    assert counts == {"done": len(spec["audiences"]) * len(spec["placements"])}, counts
    return wall, text.model_seconds + image.model_seconds - before, len(spec["audiences"]) * len(spec["placements"]) * spec["variants"]


def main() -> None:
    models = os.environ.get("ADGEN_MODELS") or str(Path("~/.adgen/models").expanduser())
    with tempfile.TemporaryDirectory() as home:
        ctx = Context(Settings(home=Path(home), models=Path(models)))
        warm = {**SPEC, "campaign": "warmup", "audiences": SPEC["audiences"][:1], "placements": ["meta_feed"], "variants": 2}
        run(ctx, warm)  # load the models and warm the kernels, outside the measurement

        wall, model, n = run(ctx, SPEC)
        naive_wall = 0.0
        for i in range(SPEC["variants"]):
            w, _, _ = run(ctx, {**SPEC, "campaign": f"naive-{i}", "variants": 1, "seed": SPEC["seed"] + 1000 * i})
            naive_wall += w
    print(f"campaign: {len(AUDIENCES)} audiences x {len(SPEC['placements'])} placements x {SPEC['variants']} variants = {n} creatives")
    print(f"batched runner: {wall:.1f} s wall, {model:.1f} s in model calls")
    print(f"creatives per second: {n / wall:.2f}")
    print(f"efficiency (model time / wall time): {model / wall:.2f}   goal >= 0.85")
    print(f"naive loop, one creative per model call: {naive_wall:.1f} s wall")
    print(f"speed-up of batching over the naive loop: {naive_wall / wall:.2f}x   goal >= 3x")


if __name__ == "__main__":
    main()
