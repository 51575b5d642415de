"""Benchmark: does the copy target its audience? The example spec and two specs written for this
bench (products, brands and personas the default model never saw; three audiences each), each run
with `candidates: 1` and with the default best-of-N, judged by adgen.score.

Prints side by side per spec: audience fit (the share of creatives whose whole copy is closer to
their own persona than to any other audience's, with the product's direction projected out; also
shown with the raw cosine), product named, near-duplicate variant pairs in a
cell (cosine > 0.9), field-role leaks, the mean overall score, and wall time relative to
`candidates: 1` with the load average (the machine may be shared). The judge is a sentence encoder:
these are proxies, not click-through rates.

    ADGEN_MODELS=path/to/models python bench/quality.py [--candidates N] [CAMPAIGN ...]   # default: every spec

`--candidates N` compares N instead of the spec default against 1 (to choose the default).
"""

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402
from sqlalchemy import select  # noqa: E402

from adgen import records  # noqa: E402
from adgen.context import Context  # noqa: E402
from adgen.jobs import create_campaign, run_campaign  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import DEFAULT_CANDIDATES, parse_spec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PLACEMENTS = ["google_rsa", "meta_feed", "linkedin_single_image"]
BENCH_SPECS = [
    {
        "campaign": "fold-flat-bike",
        "brand": {"name": "Lumen Cycles", "voice": "upbeat and practical", "banned_terms": ["cheap"]},
        "products": [{"name": "Fold Flat E-Bike", "description": "An electric bike that folds in ten seconds and fits under a desk.",
                      "benefits": ["folds in 10 seconds", "50 km range", "weighs 14 kg"]}],
        "audiences": [
            {"name": "city-commuters", "persona": "Office workers who ride to work through city traffic and need to park at their desk."},
            {"name": "retired-explorers", "persona": "Recently retired couples who spend their free days exploring coastal towns at an easy pace."},
            {"name": "campus-riders", "persona": "Undergraduates who cross a big campus between lectures and keep the bike in a small dorm room."},
        ],
        "placements": PLACEMENTS, "variants": 3, "seed": 11,
    },
    {
        "campaign": "sleep-app",
        "brand": {"name": "Harbor Mind", "voice": "calm, kind, never preachy"},
        "products": [{"name": "Stillwater Sleep App", "description": "A sleep app with short wind-down audio, white noise and a gentle alarm.",
                      "benefits": ["fall asleep faster", "gentle wake-up alarm", "offline audio"]}],
        "audiences": [
            {"name": "new-parents", "persona": "Mothers and fathers of a newborn baby who snatch sleep between night feeds."},
            {"name": "gym-athletes", "persona": "Athletes in heavy training who know recovery and sleep decide their next workout."},
            {"name": "road-warriors", "persona": "Consultants who fly every week, sleep in hotels and fight jet lag across time zones."},
        ],
        "placements": PLACEMENTS, "variants": 3, "seed": 12,
    },
]


def run(ctx: Context, spec: dict) -> tuple[float, list]:
    """Wall seconds for one campaign and its creatives' (audience, scores) rows."""
    start = time.perf_counter()
    campaign_id = create_campaign(parse_spec(spec, base_dir=REPO), ctx)
    counts = run_campaign(campaign_id, ctx)
    wall = time.perf_counter() - start
    assert set(counts) == {"done"}, counts
    with ctx.db() as s:
        rows = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)).all()
        return wall, [r.scores for r in rows]


def figures(scores: list[dict]) -> dict[str, float]:
    n = len(scores)
    return {
        "audience fit": sum(s["audience_closest"] for s in scores) / n,
        "  raw cosine": sum(s["audience_closest_raw"] for s in scores) / n,
        "product named": sum(s["product_named"] for s in scores) / n,
        "near-duplicate pairs": sum(len(s["near_duplicate_of"]) for s in scores) / 2,
        "role leaks": sum(len(s["role_leaks"]) for s in scores),
        "mean score": sum(s["overall"] for s in scores) / n,
    }


def main() -> None:
    models = os.environ.get("ADGEN_MODELS") or str(Path("~/.adgen/models").expanduser())
    example = yaml.safe_load((REPO / "examples" / "campaign.yaml").read_text())
    args = sys.argv[1:]
    n = DEFAULT_CANDIDATES
    if args[:1] == ["--candidates"]:
        n, args = int(args[1]), args[2:]
    specs = [s for s in (example, *BENCH_SPECS) if not args or s["campaign"] in args]
    with tempfile.TemporaryDirectory() as home:
        ctx = Context(Settings(home=Path(home), models=Path(models)))
        warm = {**BENCH_SPECS[0], "campaign": "warmup", "placements": ["meta_feed"], "variants": 1}
        run(ctx, warm)  # load the models and the judge outside the measurement
        print(f"{'spec':<16} {'figure':<22} {'N=1':>8} {f'N={n}':>8}   goal")
        for spec in specs:
            one_wall, one = run(ctx, {**spec, "campaign": spec["campaign"] + "-n1", "candidates": 1})
            best_wall, best = run(ctx, {**spec, "campaign": spec["campaign"] + "-best", "candidates": n})
            a, b = figures(one), figures(best)
            k = len(spec["audiences"])
            goals = {"audience fit": f">= {0.85 if k == 2 else 0.75} ({k} audiences)", "product named": ">= 0.95",
                     "near-duplicate pairs": "0", "role leaks": "0", "mean score": "",
                     "  raw cosine": "(product direction kept)"}
            for name in a:
                print(f"{spec['campaign']:<16} {name:<22} {a[name]:>8.2f} {b[name]:>8.2f}   {goals[name]}")
            print(f"{spec['campaign']:<16} {'wall time ratio':<22} {1.0:>8.2f} {best_wall / one_wall:>8.2f}   <= 1.6"
                  f"   ({one_wall:.1f} s vs {best_wall:.1f} s, {len(one)} creatives; load average "
                  f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
