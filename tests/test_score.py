"""Scores from the real judge (all-MiniLM-L6-v2 from its package, no mocks): audience fit points at
the right persona, near-duplicates are flagged, a tampered judge is refused, best-of-N raises audience
fit on a seeded campaign, and the scores reach ranking and the export."""

import csv
import json
import shutil

import pytest
from sqlalchemy import select

from adgen import records
from adgen.best_of import aim, short_fields
from adgen.platforms import placement
from adgen.score import Judge, JudgeError, load_judge, score_cell
from adgen.spec import Audience, Brand, Product
from tests.conftest import adgen

PARENTS = Audience(name="busy-parents", persona="Parents of young kids, short on time, who juggle school runs and bedtime.")
STUDENTS = Audience(name="night-owl-students", persona="University students on a budget who study late for exams.")
BRAND = Brand(name="Northwind Coffee")
PRODUCT = Product(name="Cold Brew Concentrate", description="Smooth cold brew concentrate for iced coffee at home.",
                  benefits=["low acid", "ready in seconds"])
PARENT_COPY = {"primary_text": ["From school run to bedtime, Cold Brew Concentrate keeps busy parents going."],
               "headline": ["Less Fuss, More Family Time"], "description": ["Nap time? Pour and go."], "cta": ["Shop Now"]}
STUDENT_COPY = {"primary_text": ["Cramming for finals? Cold Brew Concentrate keeps late-night study sessions going."],
                "headline": ["Made for Late-Night Study"], "description": ["Exam week, sorted."], "cta": ["Shop Now"]}


@pytest.fixture(scope="session")
def judge() -> Judge:
    return load_judge()


def _score(judge, copies, audience):
    return score_cell(judge, copies, brand=BRAND, product=PRODUCT, audience=audience, audiences=[PARENTS, STUDENTS],
                      placement=placement("meta_feed"))


def test_copy_for_parents_fits_parents_and_copy_for_students_fits_students(judge):
    for copy, own, other in ((PARENT_COPY, PARENTS, STUDENTS), (STUDENT_COPY, STUDENTS, PARENTS)):
        mine, theirs = _score(judge, [copy], own)[0], _score(judge, [copy], other)[0]
        assert mine["audience_closest"] and not theirs["audience_closest"]
        assert mine["components"]["audience"] > theirs["components"]["audience"]
        assert mine["overall"] > theirs["overall"]
        assert 0 <= theirs["overall"] < mine["overall"] <= 100
        assert mine["product_named"] and not mine["role_leaks"]


def test_one_audience_campaign_is_measured_against_contrast_personas(judge):
    scores = score_cell(judge, [PARENT_COPY, STUDENT_COPY], brand=BRAND, product=PRODUCT, audience=PARENTS,
                        audiences=[PARENTS], placement=placement("meta_feed"))
    assert scores[0]["audience_margin"] > scores[1]["audience_margin"]


def test_near_duplicate_variants_and_role_leaks_are_flagged(judge):
    twin = {**PARENT_COPY, "primary_text": ["From school run to bedtime, Cold Brew Concentrate keeps busy parents going!"]}
    leaky = {**STUDENT_COPY, "headline": ["Start-Here"]}
    scores = _score(judge, [PARENT_COPY, twin, leaky], PARENTS)
    assert scores[0]["near_duplicate_of"] == [1] and scores[1]["near_duplicate_of"] == [0]
    assert scores[0]["components"]["distinct"] == 0 and scores[2]["near_duplicate_of"] == []
    assert scores[2]["components"]["distinct"] > 0
    assert scores[2]["role_leaks"] == ["headline: 'Start-Here' reads like a path"]


def test_a_field_short_of_texts_that_read_as_its_role_is_written_again(judge):
    """Best-of-N deals a text reading as another role only when nothing else is left, so a field
    whose candidates hold too few texts reading as its role (none nearly repeating another) is
    written again before choosing."""
    meta = placement("meta_feed")
    pathlike = [{**PARENT_COPY, "headline": ["Start-Here"]}, {**STUDENT_COPY, "headline": ["Our-Story"]}]
    assert short_fields(judge, pathlike, 1, meta) == {"headline"}
    assert short_fields(judge, [PARENT_COPY, STUDENT_COPY], 2, meta) == set()
    assert short_fields(judge, [PARENT_COPY, STUDENT_COPY], 3, meta) == {"primary_text", "headline", "description"}
    twins = [PARENT_COPY, {**STUDENT_COPY, "headline": ["Less Fuss, More Family Time!"]}]
    assert short_fields(judge, twins, 2, meta) == {"headline"}


def test_the_default_model_is_aimed_at_the_nearest_corpus_angle(judge):
    aimed = aim(judge.embed, [PARENTS, STUDENTS])
    assert any(w in aimed["busy-parents"].lower() for w in ("parent", "mom", "dad", "famil"))
    assert any(w in aimed["night-owl-students"].lower() for w in ("student", "study", "campus", "exam"))


def test_a_tampered_judge_is_refused_with_one_line(tmp_path, monkeypatch):
    import adgen.score

    original = adgen.score.default_judge_path()
    folder = tmp_path / "judge"
    shutil.copytree(original, folder)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(adgen.score, "default_judge_path", lambda: folder)
    with pytest.raises(JudgeError) as e:
        Judge("default")
    assert "sha256" in str(e.value) and str(weights) in str(e.value) and "\n" not in str(e.value)


SPEC = {
    "campaign": "best-of-n", "brand": {"name": "Northwind Coffee"},
    "products": [{"name": "Cold Brew Concentrate", "description": PRODUCT.description, "benefits": PRODUCT.benefits,
                  "url": "https://northwind.example/cold-brew"}],
    "audiences": [PARENTS.model_dump(include={"name", "persona"}), STUDENTS.model_dump(include={"name", "persona"})],
    "placements": ["google_rsa"], "variants": 3, "seed": 5,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, default_models) -> dict:
    """The same seeded campaign (search ads only: no images to make) with candidates 1 and 8, run in
    process in one home of its own."""
    from adgen.context import Context
    from adgen.jobs import create_campaign, run_campaign
    from adgen.settings import Settings
    from adgen.spec import parse_spec
    from tests.conftest import MODELS

    home = tmp_path_factory.mktemp("score-home")
    ctx = Context(Settings(home=home, models=MODELS))
    out = {"home": str(home)}
    for n in (1, 8):
        campaign_id = create_campaign(parse_spec({**SPEC, "candidates": n}), ctx)
        assert run_campaign(campaign_id, ctx) == {"done": 2}
        with ctx.db() as s:
            out[n] = (campaign_id, s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)).all(),
                      s.scalars(select(records.Job).where(records.Job.campaign_id == campaign_id)).all())
    return out


def test_best_of_n_raises_audience_fit_over_one_candidate(runs):
    one, best = runs[1][1], runs[8][1]
    assert len(one) == len(best) == 6
    fit = {n: sum(c.scores["audience_closest"] for c in rows) / len(rows) for n, rows in ((1, one), (8, best))}
    margin = {n: sum(c.scores["audience_margin"] for c in rows) / len(rows) for n, rows in ((1, one), (8, best))}
    assert fit[8] >= fit[1] and margin[8] > margin[1], (fit, margin)
    assert all(c.lineage["scores"] == c.scores and c.lineage["generation"]["candidates"] == 8 for c in best)
    # the copies not chosen are kept on their job, scored, for a reviewer to swap in
    for job in runs[8][2]:
        assert len(job.alternatives) >= 8 and all(0 <= a["scores"]["overall"] <= 100 for a in job.alternatives)
    assert all(job.alternatives == [] for job in runs[1][2])


def test_rank_and_export_show_the_scores_best_first(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("ADGEN_HOME", runs["home"])
    campaign_id, rows, _ = runs[8]
    lines = adgen("campaign", "rank", campaign_id, "--top", "1").stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        cell = [c for c in rows if line.startswith(c.id)][0]
        siblings = [c for c in rows if c.job_id == cell.job_id]
        assert cell.scores["overall"] == max(c.scores["overall"] for c in siblings)
        assert f": {cell.scores['overall']} (audience " in line

    shown = json.loads(adgen("creative", "show", rows[0].id).stdout)
    assert shown["scores"] == rows[0].scores

    bundle = tmp_path / "top"
    adgen("campaign", "export", campaign_id, "--out", str(bundle), "--status", "any", "--top", "1")
    entries = json.loads((bundle / "creatives.json").read_text())
    assert len(entries) == 2 and {e["id"] for e in entries} == {line.split()[0] for line in lines}
    by_id = {c.id: c for c in rows}
    with (bundle / "creatives.csv").open() as f:
        table = list(csv.DictReader(f))
    for e, row in zip(entries, table, strict=True):
        assert e["scores"] == by_id[e["id"]].scores
        assert int(row["score"]) == e["scores"]["overall"]
        assert float(row["score.audience"]) == e["scores"]["components"]["audience"]

    assert adgen("campaign", "rank", campaign_id, "--top", "0", check=False).returncode == 2


def test_swapping_in_an_alternative_rerenders_rechecks_and_needs_a_new_approval(default_models):
    """adgen.review.swap: the unchosen candidate replaces the copy, the image is laid out again, the
    creative is back to pending with the candidate's scores, and the old copy becomes the alternative."""
    from adgen.context import Context
    from adgen.jobs import create_campaign, run_campaign
    from adgen.review import ReviewError, alternatives, approve, swap
    from adgen.settings import Settings
    from adgen.spec import parse_spec

    ctx = Context(Settings())
    spec = {**SPEC, "audiences": SPEC["audiences"][:1], "placements": ["meta_feed"], "variants": 1, "candidates": 3}
    campaign_id = create_campaign(parse_spec(spec), ctx)
    assert run_campaign(campaign_id, ctx) == {"done": 1}
    with ctx.db() as s:
        row = s.scalars(select(records.Creative).where(records.Creative.campaign_id == campaign_id)).one()
    approve(ctx, campaign_id, [row.id], "ann")
    pool = alternatives(ctx, row.id)
    assert len(pool) == 2
    picture = ctx.storage.get(row.image_key)
    pick = next(i for i, a in enumerate(pool) if a["copy"]["headline"] != row.copy["headline"])

    compliance = swap(ctx, row.id, pick, "ann")
    with ctx.db() as s:
        now = s.get(records.Creative, row.id)
        review = s.scalars(select(records.Review).where(records.Review.creative_id == row.id)
                           .order_by(records.Review.id.desc())).first()
    assert now.copy == pool[pick]["copy"] and now.scores == pool[pick]["scores"] and now.status == "pending"
    assert now.compliance == compliance and review.action == "swap" and review.before == row.copy
    assert ctx.storage.get(now.image_key) != picture  # the new headline is drawn
    assert alternatives(ctx, row.id)[pick] == {"copy": row.copy, "scores": row.scores, "fixes": []}
    with pytest.raises(ReviewError, match="has 2 alternatives"):
        swap(ctx, row.id, 2, "ann")


def test_a_model_that_writes_one_text_again_and_again_still_gives_every_variant_its_own(judge, default_models):
    """With best-of-N a text need only differ within its own copy, but choosing deals each distinct
    text once. The default model sampled nearly greedily (a model collapsed onto one text, as strong
    preference tuning leaves it) writes the same headline for every candidate; the repeats are written
    again in the next rounds, so every variant still gets a headline of its own."""
    import torch

    from adgen.best_of import write_best
    from adgen.text import TextModel

    model = TextModel(str(default_models["text"]), torch.device("cpu"), torch.float32)
    complete, rounds = model.complete, []

    def first_round_greedy(batch, **kw):
        rounds.append(len(batch))
        return complete(batch, **{**kw, "temperature": 0.01} if len(rounds) == 1 else kw)

    model.complete = first_round_greedy
    place = placement("meta_feed")
    copies, _, _ = write_best(model, judge, brand=BRAND, product=PRODUCT, audience=PARENTS, audiences=[PARENTS, STUDENTS],
                              placement=place, variants=4, candidates=3, seed=5)
    headlines = [c.texts["headline"][0] for c in copies]
    assert len(set(headlines)) == 4, headlines
    assert len(rounds) > 1 and rounds[1] >= 3 * 4 - 1  # the first round's repeats, written again
    assert any(f["action"] == "regenerated" and f["reason"].startswith("repeats ") for c in copies for f in c.fixes)
