"""Preference tuning through the real command line on the real tiny text model: results make
pairs (the significantly better creative's text over the worse one's), DPO trains an adapter that
registers as a new version, loads with stock PEFT and changes the copy the model writes."""

import csv
import json

import pytest
import torch
import yaml

from adgen import records
from adgen.context import Context
from adgen.settings import Settings
from adgen.spec import load_spec
from tests.conftest import EXAMPLE, MODELS, adgen

CAMPAIGN = "beef00000001"
QUESTIONS = ["Ready for smoother mornings?", "Need coffee in seconds?", "Why wait for good coffee?"]
STATEMENTS = ["Smooth coffee, made fast.", "Coffee ready in seconds.", "Good coffee without the wait."]


@pytest.fixture
def results_file(home, tmp_path, default_models) -> str:
    """The example campaign recorded with hand-written copy in two cells, and a Meta export where the
    creative with a question headline gets three times the clicks of the others."""
    spec = load_spec(EXAMPLE)
    ctx = Context(Settings())
    rows = []
    with ctx.db() as s, s.begin():
        brand = records.Brand(name=spec.brand.name)
        s.add(brand)
        s.flush()
        s.add(records.Campaign(id=CAMPAIGN, name=spec.campaign, brand_id=brand.id, spec=spec.model_dump(mode="json"),
                               status="done", text_model={"ref": "default"}, image_model={"ref": "default"}))
        s.flush()
        for position, audience in enumerate(spec.audiences):
            job_id = f"{CAMPAIGN}-{position:03d}"
            s.add(records.Job(id=job_id, campaign_id=CAMPAIGN, position=position, product=spec.products[0].name,
                              audience=audience.name, placement="meta_feed", variants=3, seed=1))
            s.flush()
            for v in range(3):
                headline = QUESTIONS[(v + position) % 3] if v == 0 else STATEMENTS[(v + position) % 3]
                copy = {"headline": [headline], "primary_text": [f"{spec.products[0].name}, {v} ways."],
                        "description": ["Low acid."], "cta": ["Shop now"]}
                s.add(records.Creative(id=f"{job_id}-{v}", campaign_id=CAMPAIGN, job_id=job_id, variant=v,
                                       product=spec.products[0].name, audience=audience.name, placement="meta_feed",
                                       copy=copy, compliance={"ok": True}, lineage={}))
                rows.append([f"{job_id}-{v}", 3000, 150 if v == 0 else 50])
    path = tmp_path / "meta.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Reporting starts", "Reporting ends", "Ad name", "Impressions", "Link clicks", "Results"])
        w.writerows(["2026-11-01", "2026-11-30", f"spring {cid}", i, c, c // 10] for cid, i, c in rows)
    return str(path)


def test_preference_tuning_from_results_registers_an_adapter_that_changes_the_copy(results_file, home, tmp_path):
    adgen("results", "import", CAMPAIGN, results_file, "--platform", "meta")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"kind": "preference", "base": "default", "hyperparameters": {
        "steps": 6, "batch_size": 4, "learning_rate": 0.005, "beta": 0.1, "rpo_alpha": 1.0, "validation_fraction": 0.25,
        "checkpoint_every": 3}}))
    run = tmp_path / "run"
    result = adgen("finetune", "text", "--brand", "northwind", "--preference", "--from-results", CAMPAIGN,
                   "--config", str(recipe), "--out", str(run))
    assert result.stdout.strip().splitlines()[-1] == "northwind/text@v1"
    pairs = [json.loads(line) for line in (run / "pairs.jsonl").read_text().splitlines()]
    # per cell: the question creative over each of the two others, for every written field that differs
    assert len(pairs) == 2 * 2 * 2 and {p["chosen"] for p in pairs if p["field"] == "headline"} <= set(QUESTIONS)
    assert all(p["chosen_creative"].endswith("-0") and p["source"] == f"results:{CAMPAIGN}" for p in pairs)
    metrics = json.loads((run / "adapter" / "metrics.json").read_text())
    assert metrics["held_out_before"]["reward_margin"] == 0 and metrics["held_out_after"]["kl_per_token"] > 0
    assert "preference accuracy" in (run / "adapter" / "README.md").read_text()
    assert yaml.safe_load((run / "adapter" / "recipe.yaml").read_text())["hyperparameters"]["rpo_alpha"] == 1.0
    assert not (run / "checkpoints").exists()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adgen.platforms import placement
    from adgen.prompts import copy_messages
    from adgen.text import prompt_text

    base_path = MODELS / "text-default"
    tokenizer = AutoTokenizer.from_pretrained(base_path)
    spec = load_spec(EXAMPLE)
    place = placement("meta_feed")
    prompt = prompt_text(tokenizer, copy_messages(spec.brand, spec.products[0], spec.audiences[0], place, place.fields["headline"]))
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=not tokenizer.chat_template)

    def write(model):
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)

    base = AutoModelForCausalLM.from_pretrained(base_path)
    before = write(base)
    tuned = PeftModel.from_pretrained(base, str(run / "adapter"))  # stock PEFT, nothing of adgen
    assert write(tuned) != before


def test_reviews_make_pairs_within_a_cell_approved_over_rejected_and_an_edit_over_the_text_it_replaced(results_file):
    from finetune.pairs import review_pairs

    adgen("review", "approve", CAMPAIGN, "--creative", f"{CAMPAIGN}-000-0")
    adgen("review", "reject", CAMPAIGN, "--creative", f"{CAMPAIGN}-000-1", "--reason", "flat")
    adgen("review", "reject", CAMPAIGN, "--creative", f"{CAMPAIGN}-001-1", "--reason", "flat")  # no approved one in its cell
    adgen("review", "edit", f"{CAMPAIGN}-001-2", "--field", "headline", "--text", "Coffee at midnight?")
    pairs = review_pairs(Context(Settings()), "northwind")
    approved = [p for p in pairs if p["source"].startswith("reviews:")]
    assert {(p["chosen_creative"], p["rejected_creative"]) for p in approved} == {(f"{CAMPAIGN}-000-0", f"{CAMPAIGN}-000-1")}
    assert {p["field"] for p in approved} == {"headline", "primary_text"}  # the description is the same in both
    edits = [p for p in pairs if p["source"].startswith("edits:")]
    assert [(p["field"], p["chosen"], p["rejected"]) for p in edits] == [("headline", "Coffee at midnight?", STATEMENTS[0])]


def _pairs_and_base(results_file):
    from adgen.models import ModelRef
    from finetune.pairs import result_pairs

    adgen("results", "import", CAMPAIGN, results_file, "--platform", "meta")
    return result_pairs(Context(Settings()), "northwind", [CAMPAIGN]), ModelRef("default", str(MODELS / "text-default"), "")


def test_rpo_alpha_adds_the_chosen_texts_negative_log_likelihood_to_the_loss(results_file, tmp_path):
    """At the first step the new LoRA is the reference, so plain DPO's loss is exactly log 2; RPO adds
    rpo_alpha times the chosen texts' negative log-likelihood per token, several nats on the tiny model."""
    from finetune.config import PreferenceConfig
    from finetune.preference import train_preference

    pairs, base = _pairs_and_base(results_file)
    first_loss = {}
    for rpo_alpha in (0.0, 1.0, 2.0):
        config = PreferenceConfig(steps=1, batch_size=8, rpo_alpha=rpo_alpha, checkpoint_every=0)
        metrics = train_preference(pairs, "northwind", base, None, config, tmp_path / str(rpo_alpha))
        first_loss[rpo_alpha] = metrics["final_train_loss"]
    assert first_loss[0.0] == pytest.approx(0.6931, abs=1e-3)
    nll = first_loss[1.0] - first_loss[0.0]
    assert nll > 1 and first_loss[2.0] - first_loss[0.0] == pytest.approx(2 * nll, rel=1e-3)


def test_fields_keep_only_those_pairs_and_a_divergence_or_loss_other_than_dpos_trains(results_file, tmp_path):
    from finetune.config import PreferenceConfig
    from finetune.preference import train_preference

    pairs, base = _pairs_and_base(results_file)
    assert {p["field"] for p in pairs} == {"headline", "primary_text"}
    config = PreferenceConfig(steps=2, batch_size=2, learning_rate=0.005, fields=["headline"],
                              f_divergence_type="js_divergence", loss_type="robust", label_smoothing=0.1,
                              validation_fraction=0.25, checkpoint_every=0)
    metrics = train_preference(pairs, "northwind", base, None, config, tmp_path / "run")
    assert metrics["train_pairs"] + metrics["held_out_pairs"] == sum(p["field"] == "headline" for p in pairs)
    assert metrics["held_out_after"]["kl_per_token"] > 0
    recipe = yaml.safe_load((tmp_path / "run" / "adapter" / "recipe.yaml").read_text())["hyperparameters"]
    assert (recipe["fields"], recipe["f_divergence_type"], recipe["loss_type"]) == (["headline"], "js_divergence", "robust")
