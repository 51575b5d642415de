"""Benchmark: does the offline default text model write for the angle it is prompted with?

For six corpus angles and two products it samples 48 headlines and 48 primary texts per angle
(Meta feed prompts, the persona aimed as adgen.best_of.aim aims it) and counts the answers that are
word for word a corpus text of that angle, of another angle, of the general copy, or new
recombinations. Chance, for a model that ignores the angle, is about one answer in nine.

    ADGEN_MODELS=path/to/models OMP_NUM_THREADS=1 python bench/aiming.py
"""

import collections
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from adgen.defaults import ensure_defaults, load_corpus  # noqa: E402
from adgen.platforms import placement  # noqa: E402
from adgen.prompts import aimed_persona, copy_messages  # noqa: E402
from adgen.spec import Audience, Brand, Product  # noqa: E402
from adgen.text import TextModel  # noqa: E402

ANGLES = ["parents", "students", "professionals", "fitness", "travelers", "seniors"]
PRODUCTS = [
    Product(name="Stillwater Sleep App", description="A sleep app with short wind-down audio, white noise and a gentle alarm.",
            benefits=["fall asleep faster"]),
    Product(name="Fold Flat E-Bike", description="An electric bike that folds in ten seconds and fits under a desk.",
            benefits=["folds in 10 seconds"]),
]
SAMPLES = 24  # per angle, field and product


def main() -> None:
    models = Path(os.environ.get("ADGEN_MODELS") or Path("~/.adgen/models").expanduser())
    model = TextModel(str(ensure_defaults(models)["text"]), torch.device("cpu"), torch.float32)
    corpus = load_corpus()
    brand = Brand(name="Harbor Mind", voice="calm")
    meta = placement("meta_feed")
    total = collections.Counter()
    print(f"{'field':<13} {'angle':<14} {'on angle':>9}   most frequent sources")
    for field in ("headline", "primary_text"):
        source = {t.lower(): angle for angle, pool in corpus["copy"][field].items() for t in pool}
        for angle in ANGLES:
            counts = collections.Counter()
            for product in PRODUCTS:
                audience = Audience(name="audience", persona=aimed_persona(angle, corpus["personas"][angle][0]))
                messages = [copy_messages(brand, product, audience, meta, meta.fields[field])] * SAMPLES
                for answer in model.complete(messages, seed=3, max_new_tokens=40):
                    counts[source.get(answer.lower(), "new")] += 1
            n = sum(counts.values())
            total.update({"on": counts[angle], "n": n})
            print(f"{field:<13} {angle:<14} {counts[angle]:>4}/{n:<4}   {dict(counts.most_common(4))}")
    print(f"on angle in all: {total['on']}/{total['n']} = {total['on'] / total['n']:.0%} (chance about 11%)")


if __name__ == "__main__":
    main()
