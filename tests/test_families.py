"""Every model family the README tells users to point `models:` at, proven on the CPU with tiny real
models (tests/tiny_families.py): each loads through the product's own `from_pretrained` path, and a
small campaign (one audience, one placement, one variant) runs through it in process. Text: Llama 3,
Qwen2 and Gemma 2 chat templates, left-padded batched sampling, stop tokens, and a LoRA trained and
used on Qwen2."""

import json

import pytest
import torch
import yaml

from tests.conftest import EXAMPLE, REPO
from tests.tiny_families import TEXT_FAMILIES, build_text_model

CPU = torch.device("cpu")
SAYS = "Cold brew, ready in seconds"
MESSAGES = [
    [{"role": "system", "content": "You write ads for Northwind Coffee."},
     {"role": "user", "content": "Write one short headline, at most 27 characters. Reply with it only."}],
    [{"role": "system", "content": "You write ads for Northwind Coffee. Voice: warm, witty, never pushy."},
     {"role": "user", "content": "Product: Cold Brew Concentrate: smooth, low-acid cold brew that makes 16 cups per "
                                 "bottle.\nAudience: busy parents.\nWrite one description. Reply with it only."}],
]


@pytest.fixture(scope="module")
def text_models(tmp_path_factory) -> dict:
    """Per family: random weights (for sampling and padding), and weights set to answer every prompt
    with SAYS then its end of turn and one more word (for campaigns)."""
    root = tmp_path_factory.mktemp("text-families")
    return {name: {"random": build_text_model(name, root / name), "says": build_text_model(name, root / f"{name}-says", SAYS)}
            for name in TEXT_FAMILIES}


def campaign(models: dict, placements=("x_promoted",), adapters: dict | None = None) -> list:
    """Run a one-audience, one-variant campaign in process on `models`; returns its creatives."""
    from adgen import records
    from adgen.context import Context
    from adgen.jobs import create_campaign, run_campaign
    from adgen.settings import get_settings
    from adgen.spec import parse_spec

    data = yaml.safe_load(EXAMPLE.read_text())
    for product in data["products"]:
        product.pop("images", None)
    data.update(audiences=data["audiences"][:1], placements=list(placements), variants=1, candidates=1,
                models=models, adapters=adapters or {})
    ctx = Context(get_settings())
    campaign_id = create_campaign(parse_spec(data, base_dir=REPO), ctx)
    counts = run_campaign(campaign_id, ctx)
    with ctx.db() as s:
        jobs = s.query(records.Job).filter_by(campaign_id=campaign_id).all()
        assert {j.status for j in jobs} == {"done"}, [(j.placement, j.status, j.error) for j in jobs]
        creatives = s.query(records.Creative).filter_by(campaign_id=campaign_id).all()
    assert counts.get("done") == len(placements) and len(creatives) == len(placements)
    return creatives


# ----- text families -----

@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_text_family_prompts_in_its_own_template_and_stops_at_its_end_of_turn(family, text_models):
    from adgen.text import TextModel, prompt_text

    model = TextModel(str(text_models[family]["random"]), CPU, torch.float32)
    spec = TEXT_FAMILIES[family]
    assert model.tokenizer.padding_side == "left"
    prompt = prompt_text(model.tokenizer, MESSAGES[0])
    end = spec["end_of_turn"]
    assert prompt.count(end) == (1 if family == "gemma2" else 2)  # Gemma 2 has no system turn: it opens the user turn
    assert "You write ads for Northwind Coffee." in prompt and "Reply with it only." in prompt
    assert model.tokenizer.convert_tokens_to_ids(end) in model.stops

    # Whatever follows the end of turn (a second answer, padding) never reaches the copy.
    ids = model.tokenizer("Fresh cold brew" + end + "\nSecond answer", add_special_tokens=False)["input_ids"]
    assert model.answers(torch.tensor([ids])) == ["Fresh cold brew"]

    # Left padding: a prompt sampled beside a longer one gives the tokens it gives alone (near-greedy).
    alone = model.complete(MESSAGES[:1], seed=3, max_new_tokens=8, temperature=1e-4)
    batched = model.complete(MESSAGES, seed=3, max_new_tokens=8, temperature=1e-4)
    assert batched[0] == alone[0] and len(batched) == 2


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_campaign_runs_on_each_text_family(family, text_models, default_models):
    from adgen.models import folder_hash

    folder = text_models[family]["says"]
    [creative] = campaign({"text": str(folder), "image": "default"})
    # The answer as the model wrote it, cut at its end of turn: nothing after it reaches the copy.
    assert creative.copy["card_title"] == [SAYS] and creative.copy["post_text"] == [SAYS]
    lineage = creative.lineage
    assert lineage["text_model"]["path"] == str(folder.resolve())
    assert lineage["text_model"]["hash"] == folder_hash(folder.resolve())
    assert lineage["prompt"]["text"]["card_title"][0]["role"] == "system"


def test_text_lora_trains_on_qwen2_and_a_campaign_uses_it(text_models, default_models, tmp_path):
    from adgen.adapters import push
    from adgen.context import Context
    from adgen.models import resolve_model
    from adgen.settings import get_settings
    from adgen.text import TextModel
    from finetune.config import TextConfig
    from finetune.data import read_text_data
    from finetune.text import train_text

    folder = text_models["qwen2"]["says"]
    ctx = Context(get_settings())
    base = resolve_model(str(folder), "text", ctx.settings)
    data = read_text_data(REPO / "examples" / "northwind-copy.jsonl", brand_name="northwind")
    config = TextConfig(rank=4, alpha=8, steps=6, batch_size=4, learning_rate=0.01, warmup_steps=1,
                        checkpoint_every=0, max_length=1024, mixed_precision="no")
    metrics = train_text(data, base, config, tmp_path / "run")
    adapter = tmp_path / "run" / "adapter"
    assert metrics["validation_after"]["loss"] < metrics["validation_before"]["loss"]
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder.resolve())

    model = TextModel(str(folder), CPU, torch.float32)
    ids = model.tokenizer(["A velvet roast in every sip"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        plain = model.model(ids).logits
        model.use_adapter("brand", adapter)
        tuned = model.model(ids).logits
    assert not torch.allclose(plain, tuned)

    push(ctx.storage, adapter, brand="northwind", kind="text", base={"ref": base.ref, "hash": base.hash},
         dataset={"hash": data.hash, "size": len(data.examples)}, hyperparameters={}, metrics=metrics, promote=True)
    [creative] = campaign({"text": str(folder), "image": "default"}, adapters={"text": "northwind/text@latest"})
    assert creative.lineage["text_adapter"]["ref"] == "northwind/text@v1"
