"""Best-of-N copy: every text of a job written N times in the same batched model call, then dealt
into the job's variants by what the judge (adgen.score) makes of each text and of each variant's whole
copy; what the variants leave becomes the job's alternatives. Also the aiming of the offline default
model at the corpus angle nearest each audience (README "Scores", Best-of-N and Aiming).
"""

import numpy as np

from adgen.compliance import display_width, near_duplicate
from adgen.platforms import Placement, TextField
from adgen.score import (
    NEAR_DUPLICATE,
    ROLE_GROUPS,
    Judge,
    audience_fit,
    finish_scores,
    length_use,
    names_product,
    other_personas,
    product_text,
    role_classifier,
    score_cell,
    score_copies,
    without,
    written_text,
)
from adgen.spec import Audience, Brand, Product

MMR_DIVERSITY = 0.2  # how much a candidate text's similarity to the texts already chosen counts against it
# Choosing texts weighs audience fit above the overall score's weights: targeting is what best-of-N is for.
TEXT_WEIGHTS = {"audience": 0.8, "product": 0.05, "role": 0.1, "length": 0.05}
# A variant whose whole copy is less than this nearer its own persona than the others' swaps texts
# for better aimed ones left over (at most RETARGET_SWAPS swaps, each the best of the RETARGET_TRIES
# most valuable texts left per field).
AIM_MARGIN, RETARGET_SWAPS, RETARGET_TRIES = 0.05, 3, 2
# A field whose candidates hold fewer distinct texts reading as its role than the variants need is
# written again, that field alone, at most this many more times (so no variant is dealt a role leak).
TOP_UP_ROUNDS = 2


def aim(embed, audiences: list[Audience]) -> dict[str, str]:
    """For the offline default model: the corpus persona to prompt with for each audience, so the
    small model writes for an angle it was trained on (parents, students, ...), named in the persona
    as it was in training (adgen.prompts.aimed_persona). Each audience gets the angle whose training
    personas the encoder finds nearest to its persona, distinct angles for
    distinct audiences where the corpus has enough; `embed` maps texts to unit vectors (a judge's).
    Instruct models read the user's persona itself and need none of this."""
    from scipy.optimize import linear_sum_assignment

    from adgen.defaults import load_corpus
    from adgen.prompts import aimed_persona

    angles = {a: p for a, p in load_corpus()["personas"].items() if a != "general"}
    pool = [(a, p) for a, personas in angles.items() for p in personas]
    sims = embed([a.persona for a in audiences]) @ embed([p for _, p in pool]).T
    names = list(angles)
    by_angle = [[max(range(len(pool)), key=lambda j: row[j] if pool[j][0] == a else -2.0) for a in names] for row in sims]
    cost = [[-row[j] for j in nearest] for row, nearest in zip(sims, by_angle, strict=True)]
    rows, cols = linear_sum_assignment(cost) if len(audiences) <= len(names) else ([], [])
    chosen = {audiences[r].name: pool[by_angle[r][c]] for r, c in zip(rows, cols, strict=True)}
    for r, a in enumerate(audiences):  # more audiences than angles: the rest take their nearest angle
        chosen.setdefault(a.name, pool[max(by_angle[r], key=lambda j: sims[r][j])])
    return {name: aimed_persona(angle, persona) for name, (angle, persona) in chosen.items()}


def _margins(vectors: np.ndarray, product_vec: np.ndarray, personas: np.ndarray) -> np.ndarray:
    """How much nearer each text is to its own persona (row 0 of `personas`) than to the nearest
    other, with the product's direction projected out; 0 where there is no other persona."""
    if personas.shape[0] < 2:
        return np.zeros(len(vectors))
    sims = without(vectors, product_vec) @ personas.T
    return sims[:, 0] - sims[:, 1:].max(axis=1)


def _text_values(judge: Judge, texts: list[str], field: TextField, *, product: Product, personas: np.ndarray,
                 product_vec: np.ndarray):
    """(reads as its role, value 0..1, embedding) for each candidate text of one field: the text's own
    audience margin, naming the product, role fit and length use (TEXT_WEIGHTS)."""
    vectors = judge.embed(texts)
    margins = _margins(vectors, product_vec, personas)
    own = ROLE_GROUPS[field.style]
    out = []
    for text, vec, margin, p in zip(texts, vectors, margins, role_classifier(judge).probabilities(texts), strict=True):
        value = (TEXT_WEIGHTS["audience"] * audience_fit(float(margin))
                 + TEXT_WEIGHTS["product"] * names_product(text, product) + TEXT_WEIGHTS["role"] * p[own]
                 + TEXT_WEIGHTS["length"] * length_use(display_width(text, field.url_length), field.max))
        out.append((max(p, key=p.get) == own, value, vec))
    return out


def _fresh(t: str, values: dict, dealt: list[str]) -> tuple[bool, float]:
    """(whether `t` repeats none of the texts dealt: cosine up to 0.9 and not almost the same words,
    its highest cosine to them)."""
    closest = max((float(values[t][2] @ values[d][2]) for d in dealt), default=0.0)
    return closest <= NEAR_DUPLICATE and not any(near_duplicate(t, d) for d in dealt), closest


def _pick(pool: list[str], values: dict, dealt: list[str]) -> str:
    """The pool's best next text: no repeat of a text dealt before, then reading as its role, then
    value minus MMR_DIVERSITY times the similarity to the texts dealt before."""

    def key(t: str) -> tuple[bool, bool, float]:
        fresh, closest = _fresh(t, values, dealt)
        return fresh, values[t][0], values[t][1] - MMR_DIVERSITY * closest

    return max(pool, key=key)


def _deal(group: list[dict], name: str, f: TextField, pool: list[str], values: dict, dealt: list[str]) -> None:
    """Deal one field's texts into the copies of `group`, round-robin, the best next text each time."""
    for last, copy in ((j == f.generate - 1, c) for j in range(f.generate) for c in group):
        if not pool:
            return
        eligible = pool
        if last and f.at_least_one_max and not any(display_width(t) <= f.at_least_one_max for t in copy.get(name, [])):
            # the placement needs one short text in this field: the last pick makes sure of it
            eligible = [t for t in pool if display_width(t) <= f.at_least_one_max] or pool
        best = _pick(eligible, values, dealt)
        pool.remove(best)
        dealt.append(best)
        copy.setdefault(name, []).append(best)


def _retarget(judge: Judge, copies: list[dict], fields: dict[str, TextField], pools: dict, values: dict, dealt: dict,
              personas: np.ndarray, product_vec: np.ndarray, placement: Placement) -> None:
    """Audience fit is judged on a creative's whole copy, not text by text: a variant whose whole copy
    is less than AIM_MARGIN nearer its own persona than the others' takes, up to RETARGET_SWAPS
    times, the one swap of a text for one left in its field's pool (reading as its role, repeating no
    text dealt) that raises that margin most, unless it makes the copy a near-duplicate of a sibling.
    A variant whose whole copy nearly repeats an earlier sibling's (cosine above 0.9) swaps its text
    most like that sibling's instead: the best such swap that sets it apart, even one that does not
    raise its margin, or else the one that moves it furthest from its siblings, and tries again."""
    def judged(texts: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        vectors = judge.embed([written_text(t, placement) for t in texts])
        return _margins(vectors, product_vec, personas), vectors

    margins, wholes = judged(copies)
    for i, copy in enumerate(copies):
        for _ in range(RETARGET_SWAPS):
            twin = i > 0 and float((wholes[:i] @ wholes[i]).max()) > NEAR_DUPLICATE
            if margins[i] >= AIM_MARGIN and not twin:
                break
            sibling = copies[int(np.argmax(wholes[:i] @ wholes[i]))] if twin else None
            tries = []
            for name, f in fields.items():
                if not copy.get(name):
                    continue
                if sibling and sibling.get(name):  # the text most like the sibling's goes
                    worst = max(copy[name], key=lambda t: max(float(values[name][t][2] @ values[name][s][2])
                                                               for s in sibling[name]))
                else:
                    worst = min(copy[name], key=lambda t: values[name][t][1])
                rest = [d for d in dealt[name] if d != worst]
                fits = [t for t in pools[name] if values[name][t][0] and _fresh(t, values[name], rest)[0]]
                for t in sorted(fits, key=lambda t: -values[name][t][1])[:RETARGET_TRIES]:
                    texts = [t if x == worst else x for x in copy[name]]
                    if f.at_least_one_max and not any(display_width(x) <= f.at_least_one_max for x in texts):
                        continue
                    tries.append((name, worst, t, {**copy, name: texts}))
            if not tries:
                break
            tried, vectors = judged([c for *_, c in tries])
            siblings = np.delete(wholes, i, axis=0)
            closest = (vectors @ siblings.T).max(axis=1, initial=-1.0)
            apart = closest <= NEAR_DUPLICATE
            j = max(np.flatnonzero(apart), key=lambda j: tried[j], default=None)
            if twin and j is None:  # no one swap sets it apart: take the one that moves it furthest away
                j = int(np.argmin(closest))
                if closest[j] >= float((siblings @ wholes[i]).max()):
                    break
            elif j is None or (tried[j] <= margins[i] and not twin):
                break
            name, worst, t, changed = tries[j]
            pools[name][pools[name].index(t)] = worst
            dealt[name][dealt[name].index(worst)] = t
            copy[name] = changed[name]
            margins[i], wholes[i] = tried[j], vectors[j]


def short_fields(judge: Judge, candidates: list[dict[str, list[str]]], variants: int, placement: Placement) -> set[str]:
    """The written fields whose candidate texts hold fewer texts reading as their own role
    (adgen.score.role_classifier), none nearly repeating another (as choosing judges it: cosine
    above 0.9 or almost the same words), than `variants` copies need."""
    short = set()
    for name, f in placement.fields.items():
        if not f.written:
            continue
        texts = list(dict.fromkeys(t for c in candidates for t in c.get(name, [])))
        own = ROLE_GROUPS[f.style]
        vectors = dict(zip(texts, judge.embed(texts), strict=True))
        kept: list[str] = []
        for t, p in zip(texts, role_classifier(judge).probabilities(texts), strict=True):
            if max(p, key=p.get) == own and not any(
                    near_duplicate(t, k) or float(vectors[t] @ vectors[k]) > NEAR_DUPLICATE for k in kept):
                kept.append(t)
        if len(kept) < variants * f.generate:
            short.add(name)
    return short


def choose(judge: Judge, candidates: list[dict[str, list[str]]], k: int, *, brand: Brand, product: Product,
           audience: Audience, audiences: list[Audience], placement: Placement,
           slots: int | None = None) -> tuple[list[dict], list[dict]]:
    """Best-of-N by text: the candidate copies' texts are pooled per field and dealt out again, field
    by field, round-robin over the copies, each time the text of highest value (see _text_values)
    minus MMR_DIVERSITY times its similarity to the texts of that field already dealt. A text that
    reads as another role, or nearly repeats a text already dealt (cosine above 0.9 or almost the
    same words), is taken only when nothing else is left. Then each variant whose whole copy is not
    clearly nearer its own persona swaps texts for better aimed ones left in the pools (_retarget).
    The first `k` copies are the variants; the rest, made from what is left, are the alternatives
    (`slots` copies in all, by default one per candidate).

    Returns (all copies' written texts, the field -> candidate index each text came from)."""
    product_vec = judge.embed([product_text(product)])[0]
    personas = without(judge.embed([audience.persona, *other_personas(judge, audience, audiences)]), product_vec)
    copies: list[dict[str, list[str]]] = [{} for _ in range(slots or len(candidates))]
    source: dict[tuple[str, str], int] = {}
    fields = {name: f for name, f in placement.fields.items() if f.written}
    pools: dict[str, list[str]] = {name: [] for name in fields}
    for name in fields:
        for i, c in enumerate(candidates):
            for t in c.get(name, []):
                if (name, t) not in source:
                    source[(name, t)] = i
                    pools[name].append(t)
    values = {name: dict(zip(pool, _text_values(judge, pool, fields[name], product=product, personas=personas,
                                                product_vec=product_vec), strict=True)) if pool else {}
              for name, pool in pools.items()}
    dealt: dict[str, list[str]] = {name: [] for name in fields}
    # The variants are dealt first and retargeted, so the alternatives get only what the variants left.
    for name, f in fields.items():
        _deal(copies[:k], name, f, pools[name], values[name], dealt[name])
    if personas.shape[0] > 1:
        _retarget(judge, copies[:k], fields, pools, values, dealt, personas, product_vec, placement)
    for name, f in fields.items():
        _deal(copies[k:], name, f, pools[name], values[name], dealt[name])
    return [c for c in copies if c], {(n, t): i for (n, t), i in source.items()}


def write_best(model, judge: Judge, *, brand: Brand, product: Product, audience: Audience, audiences: list[Audience],
               placement: Placement, variants: int, candidates: int, seed: int, writes_for: Audience | None = None):
    """A job's copy, best of `candidates` per text: every text sampled `candidates` times in the
    same batched model calls, then dealt into `variants` copies (see `choose`). The prompts address
    `writes_for` when given (the audience with an aimed persona, adgen.best_of.aim); scores always
    measure against `audience` as the user wrote it.

    Returns (copies, their scores, alternatives: the copies made from texts not chosen, with their
    fixes and scores)."""
    from adgen.text import Copy, fixed_texts, write_copy

    job = {"brand": brand, "product": product, "audience": writes_for or audience, "placement": placement}
    written = write_copy(model, **job, variants=variants, seed=seed, candidates=candidates)
    cell = {"brand": brand, "product": product, "audience": audience, "audiences": audiences, "placement": placement}
    if candidates == 1:
        return written, score_cell(judge, [c.texts for c in written], **cell), []
    slots = len(written)
    for round_ in range(1, TOP_UP_ROUNDS + 1):
        if not (short := short_fields(judge, [c.texts for c in written], variants, placement)):
            break
        written += write_copy(model, **job, variants=variants, seed=seed + 7919 * round_, candidates=candidates,
                              only=short)
    dealt, source = choose(judge, [c.texts for c in written], variants, **cell, slots=slots)
    made = []
    for v, texts in enumerate(dealt):
        fixes = [{**fix, "variant": v, "candidate": source[(name, t)]}
                 for name, ts in texts.items() for t in ts for fix in written[source[(name, t)]].fixes
                 if fix["field"] == name and (fix["action"] == "regenerated" or fix.get("to") == t)]
        full = texts | fixed_texts(placement, brand, seed, v)
        made.append(Copy({name: full[name] for name in placement.fields if name in full}, fixes))
    scores = score_cell(judge, [c.texts for c in made[:variants]], **cell)
    # each alternative is scored on its own (no siblings), in one batch
    alternatives = [{"copy": c.texts, "fixes": c.fixes, "scores": finish_scores([s], judge)[0]}
                    for c, s in zip(made[variants:], score_copies(judge, [c.texts for c in made[variants:]], **cell),
                                    strict=True)]
    return made[:variants], scores, alternatives
