"""Benchmark: does preference tuning move the brand's copy toward a style that won?

On the offline default models, from one run: generate a campaign; write a synthetic results file
in Meta's Ads Manager export format where one planted, measurable style wins (headlines that name
the product get twice the CTR); import it; run `adgen finetune text --preference --from-results`;
generate again on held-out products and audiences, without and with the new adapter; print the
planted style's share before and after, compliance, and the held-out preference accuracy.

Synthetic results test the mechanism (results -> pairs -> DPO -> copy), not marketing truth.

    python bench/preference.py [--variants 8] [--seen-variants 8] [--seen-candidates N] [--try NAME=key:value,key:value ...]   # goal: the share rises >= 20 points

Each --try trains one recipe: the shipped recipe with those hyperparameters changed (values are
read as JSON or YAML, e.g. `--try lr3e-4=learning_rate:3e-4,steps:20`), from the same pairs, and is judged
against the same held-out base campaign; one table row per recipe. Without --try: the shipped recipe.
"""

import argparse
import csv
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import yaml  # noqa: E402
from sqlalchemy import select  # noqa: E402

from adgen import records  # noqa: E402
from adgen.context import Context  # noqa: E402
from adgen.jobs import create_campaign, run_campaign  # noqa: E402
from adgen.settings import Settings  # noqa: E402
from adgen.spec import parse_spec  # noqa: E402

BRAND = {"name": "Northwind Coffee", "voice": "warm, witty, never pushy", "banned_terms": ["cheap", "guarantee"],
         "colors": ["#3B2A20", "#F2E8DC", "#C8553D"]}
# The first four are the seen campaign's, the last two held out. A 27-character meta_feed headline
# leaves a 20-character name room for few of the default model's product-naming phrasings (", Aced"
# nearly alone), so the two short names give the winners phrasings to differ in.
PRODUCTS = [
    {"name": "Drip Bags", "description": "Single-serve pour-over bags that hang on any mug.",
     "benefits": ["no gear needed", "one cup at a time"], "url": "https://example.com/drip-bags"},
    {"name": "Mocha Syrup", "description": "Cocoa and coffee syrup for lattes and cold drinks at home.",
     "benefits": ["real cocoa", "no artificial flavors"], "url": "https://example.com/mocha"},
    {"name": "Cold Brew Concentrate", "description": "Smooth, low-acid cold brew concentrate that makes 16 cups per bottle.",
     "benefits": ["low acid", "ready in seconds", "16 cups per bottle"], "url": "https://example.com/cold-brew"},
    {"name": "House Espresso Beans", "description": "Dark-roast whole beans with notes of cocoa, roasted weekly.",
     "benefits": ["roasted weekly", "notes of cocoa"], "url": "https://example.com/espresso"},
    {"name": "Oat Latte Cans", "description": "Ready-to-drink oat milk lattes in recyclable cans.",
     "benefits": ["dairy free", "ready to drink"], "url": "https://example.com/oat-latte"},
    {"name": "Travel Pour-Over Kit", "description": "A folding dripper and filters that fit in a jacket pocket.",
     "benefits": ["fits in a pocket", "brews in three minutes"], "url": "https://example.com/pour-over"},
]
AUDIENCES = [
    {"name": "busy-parents", "persona": "Parents of young kids, short on time, who want good coffee without the fuss."},
    {"name": "night-owl-students", "persona": "University students on a budget who study late."},
    {"name": "remote-professionals", "persona": "Remote professionals who start work early and want a calm routine."},
    {"name": "weekend-hikers", "persona": "Fitness fans who hike and run at weekends and like to travel light."},
]
IMPRESSIONS, BASE_CTR = 4000, 0.02


def planted(c: records.Creative) -> bool:
    """The planted style: the headline names the product. (Question headlines, the other natural
    choice, are too rare in the default model's held-out copy, about 1 in 25, to learn from.)"""
    return bool(c.copy.get("headline")) and c.product.lower() in c.copy["headline"][0].lower()


def campaign(ctx: Context, name: str, products: list, audiences: list, variants: int, seed: int, adapter: str | None,
             candidates: int | None = None) -> str:
    spec = {"campaign": name, "brand": BRAND, "products": products, "audiences": audiences,
            "placements": ["meta_feed"], "variants": variants, "seed": seed,
            **({"candidates": candidates} if candidates else {}),
            "adapters": {"text": adapter} if adapter else {}}
    campaign_id = create_campaign(parse_spec(spec), ctx)
    counts = run_campaign(campaign_id, ctx)
    if counts.get("failed"):  # a job whose copy could not be made compliant: reported, not hidden
        print(f"{name}: {counts['failed']} of {sum(counts.values())} jobs failed", file=sys.stderr)
    return campaign_id


def creatives(ctx: Context, campaign_id: str) -> list[records.Creative]:
    with ctx.db() as s:
        return s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)).all()


def meta_export(rows: list[records.Creative], path: Path, seed: int) -> None:
    """Meta's ad-level export: headlines naming the product get twice the base CTR (binomial clicks)."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Reporting starts", "Reporting ends", "Ad name", "Impressions", "Link clicks", "Results",
                    "Amount spent (USD)"])
        for c in rows:
            ctr = BASE_CTR * (2 if planted(c) else 1)
            clicks = sum(rng.random() < ctr for _ in range(IMPRESSIONS))
            w.writerow(["2026-11-01", "2026-11-30", f"bench | {c.id} 1:1 1080x1080", IMPRESSIONS, clicks,
                        sum(rng.random() < 0.05 for _ in range(clicks)), f"{IMPRESSIONS * 0.004:.2f}"])


def adgen(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "adgen", *args], capture_output=True, text=True, env=os.environ)
    if result.returncode:
        raise SystemExit(f"adgen {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def recipe_try(text: str) -> tuple[str, dict]:
    """'NAME=key:value,key:value' -> (NAME, {key: value}); a value is JSON where it parses as JSON
    (3e-4 is a number there, a string in YAML), else YAML ([headline, description] is a list)."""
    name, sep, rest = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=key:value,key:value")
    changes = {}
    for item in filter(None, re.split(r",(?![^\[]*\])", rest)):  # commas inside [...] belong to a list
        key, sep, value = item.partition(":")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r} in {text!r}: give key:value")
        try:
            changes[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            changes[key.strip()] = yaml.safe_load(value)
    return name, changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=8, help="Variants per job of the held-out campaigns.")
    parser.add_argument("--seen-variants", type=int, default=8, help="Variants per job of the seen campaign, whose "
                        "results make the pairs.")
    parser.add_argument("--seen-candidates", type=int, default=None, help="Best-of-N candidates of the seen campaign "
                        "(default: the spec's default, as the held-out campaigns).")
    parser.add_argument("--try", dest="tries", type=recipe_try, nargs="+", default=[("shipped", {})],
                        metavar="NAME=key:value,...", help="Recipes to train and compare (default: the shipped one).")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="adgen-bench-preference-"))
    os.environ["ADGEN_HOME"] = str(home)
    ctx = Context(Settings())
    shipped = yaml.safe_load((Path(__file__).parents[1] / "finetune" / "recipes" / "default-preference.yaml").read_text())

    train = campaign(ctx, "seen", PRODUCTS[:4], AUDIENCES[:2], args.seen_variants, args.seed, None,
                     args.seen_candidates)
    report = home / "meta-export.csv"
    seen = creatives(ctx, train)
    meta_export(seen, report, args.seed)
    adgen("results", "import", train, str(report), "--platform", "meta")
    before = creatives(ctx, campaign(ctx, "held-out-base", PRODUCTS[4:], AUDIENCES[2:], args.variants, args.seed + 1, None))
    expected = len(PRODUCTS[4:]) * len(AUDIENCES[2:]) * args.variants

    def share(rows):
        return 100 * sum(planted(c) for c in rows) / len(rows) if rows else 0.0

    def compliant(rows):  # out of the creatives asked for: a failed job made none
        return f"{sum(c.compliance['ok'] for c in rows)}/{expected}"

    print(f"seen campaign: {len(seen)} creatives, product-named headlines {share(seen):.0f}%")
    print(f"held-out products x audiences, meta_feed, base: product-named headlines {share(before):.1f}%, "
          f"compliant {compliant(before)}")
    print("| recipe | changes | pairs | held-out pref. accuracy | reward margin | KL/token | product-named headlines | "
          "compliant |")
    print("|---|---|---|---|---|---|---|---|")
    for name, changes in args.tries:
        recipe = {**shipped, "hyperparameters": {**shipped["hyperparameters"], **changes}}
        (home / f"{name}.yaml").write_text(yaml.safe_dump(recipe))
        run = home / "finetune" / name
        ref = adgen("finetune", "text", "--brand", "northwind", "--preference", "--from-results", train,
                    "--config", str(home / f"{name}.yaml"), "--out", str(run)).strip().splitlines()[-1]
        # Every recipe starts from the base, as the first did: the brand's first version became its
        # @latest, which the next preference tuning would otherwise continue (the registry's index,
        # see adgen/adapters.py). Each recipe's version is still reached by its own @vN ref.
        ctx.storage.put("adapters/northwind/text/index.json", json.dumps({"latest": None}).encode())
        metrics = json.loads((run / "adapter" / "metrics.json").read_text())
        pairs = metrics["train_pairs"] + metrics["held_out_pairs"]
        after = creatives(ctx, campaign(ctx, "held-out-" + re.sub(r"[^a-z0-9-]", "-", name.lower()), PRODUCTS[4:], AUDIENCES[2:], args.variants,
                                        args.seed + 1, ref))
        b, a = metrics["held_out_before"], metrics["held_out_after"]
        print(f"| {name} | {', '.join(f'{k} {v}' for k, v in changes.items()) or 'none'} | {pairs} | "
              f"{b['preference_accuracy']:.0%} -> {a['preference_accuracy']:.0%} | {a['reward_margin']} | "
              f"{a['kl_per_token']} | {share(before):.1f}% -> {share(after):.1f}% ({share(after) - share(before):+.1f} "
              f"points; goal +20) | {compliant(after)} |", flush=True)
    print("synthetic results: this measures the mechanism, not marketing truth")


if __name__ == "__main__":
    main()
