"""Every model family the README tells users to point `models:` at, proven on the CPU with tiny real
models (tests/tiny_families.py): each loads through the product's own `from_pretrained` path, and a
small campaign (one audience, one placement, one variant) runs through it in process. Text: Llama 3,
Qwen2 and Gemma 2 chat templates, left-padded batched sampling, stop tokens, and a LoRA trained and
used on Qwen2. Image: SD 1.5 (the default), SDXL, SD3 and SDXL-Turbo-style few-step settings, each
sampled with its family's settings (adgen/data/image_families.yaml) recorded in the lineage."""

import json

import pytest
import torch
import yaml

from tests.conftest import EXAMPLE, REPO
from tests.tiny_families import TEXT_FAMILIES, build_image_pipeline, build_text_model

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


@pytest.fixture(scope="module")
def image_models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("image-families")
    return {name: build_image_pipeline(name, root / name) for name in ("sdxl", "sdxl-turbo", "sd3")}


def campaign(models: dict, placements=("x_promoted",), adapters: dict | None = None, **changes) -> list:
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
                models=models, adapters=adapters or {}, **changes)
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
    # A prompt asked by several rows is read once and its cache shared by them: each row still gives
    # what the prompt gives read on its own row.
    shared = model.complete([MESSAGES[0], MESSAGES[1], MESSAGES[0], MESSAGES[1], MESSAGES[0]], seed=3,
                            max_new_tokens=8, temperature=1e-4)
    assert shared == [batched[0], batched[1], batched[0], batched[1], batched[0]]


def test_a_prompt_many_rows_ask_is_read_once_and_sampled_as_generate_samples_every_row(default_models):
    """A job asks each field's prompt once per text, variant and candidate: the prompt is read once
    and its cache repeated to those rows, and the sampled answers are exactly what transformers'
    generate samples reading every row's prompt itself (same seed)."""
    from adgen.platforms import placement
    from adgen.prompts import copy_messages
    from adgen.spec import parse_spec
    from adgen.text import TextModel, _first_line

    model = TextModel(str(default_models["text"]), CPU, torch.float32)
    spec = parse_spec(yaml.safe_load(EXAMPLE.read_text()), base_dir=REPO)
    rsa = placement("google_rsa")
    fields = [f for f in rsa.fields.values() if f.written]
    batch = [copy_messages(spec.brand, spec.products[0], spec.audiences[0], rsa, f) for f in fields for _ in range(4)]
    prompts = [model._prompt(m) for m in batch]
    assert 1 < len(set(prompts)) < len(batch) and len({len(p) for p in prompts}) > 1  # left padding at play

    enc = model.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(5)
    out = model.model.generate(**enc, do_sample=True, temperature=0.6, top_p=0.9, max_new_tokens=24,
                               pad_token_id=model.tokenizer.pad_token_id, eos_token_id=model.stops)
    every_row = [_first_line(a) for a in model.answers(out[:, enc["input_ids"].shape[1]:])]
    assert model.complete(batch, seed=5, max_new_tokens=24) == every_row
    assert len(set(every_row)) > len(set(prompts))  # sampled, not one answer per prompt


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


# ----- image families -----

def test_each_pipeline_family_has_its_own_settings_and_a_campaign_can_set_them():
    from adgen.image import image_settings
    from adgen.models import ModelError

    sd = image_settings("StableDiffusionPipeline", "default")
    assert (sd.steps, sd.guidance, sd.negative) == (20, 6.0, True)
    assert image_settings("StableDiffusionXLPipeline", "org/any").steps == 30
    turbo = image_settings("StableDiffusionXLPipeline", "stabilityai/sdxl-turbo")
    assert (turbo.steps, turbo.guidance, turbo.negative) == (1, 0.0, False)  # never 20 steps at guidance 6
    mine = image_settings("StableDiffusionXLPipeline", "/models/my-turbo", steps=2, guidance=0)
    assert (mine.steps, mine.guidance, mine.negative) == (2, 0.0, False)
    with pytest.raises(ModelError, match=r"^models.image: 'org/pixart' is a PixArtAlphaPipeline; supported pipelines: "
                                         r"StableDiffusionPipeline, StableDiffusionXLPipeline"):
        image_settings("PixArtAlphaPipeline", "org/pixart")


def test_bad_image_settings_and_an_unsupported_pipeline_folder_write_nothing(tmp_path):
    from adgen import records
    from adgen.context import Context
    from adgen.jobs import create_campaign
    from adgen.models import ModelError
    from adgen.settings import get_settings
    from adgen.spec import SpecError, parse_spec

    data = yaml.safe_load(EXAMPLE.read_text())
    with pytest.raises(SpecError, match="image_settings.steps"):
        parse_spec({**data, "image_settings": {"steps": 0}}, base_dir=REPO)
    folder = tmp_path / "pixart"
    folder.mkdir()
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "PixArtAlphaPipeline"}))
    ctx = Context(get_settings())
    with pytest.raises(ModelError, match=r"^models.image: .* is a PixArtAlphaPipeline; supported pipelines: "):
        create_campaign(parse_spec({**data, "models": {"image": str(folder)}}, base_dir=REPO), ctx)
    with ctx.db() as s:
        assert s.query(records.Campaign).count() == 0


@pytest.mark.parametrize(("family", "pipeline", "guidance"), [
    ("default", "StableDiffusionPipeline", 6.0), ("sdxl", "StableDiffusionXLPipeline", 5.0),
    ("sd3", "StableDiffusion3Pipeline", 7.0)])
def test_campaign_runs_on_each_image_family(family, pipeline, guidance, image_models, text_models, default_models):
    image = "default" if family == "default" else str(image_models[family])
    [creative] = campaign({"text": str(text_models["llama3"]["says"]), "image": image}, image_settings={"steps": 2})
    generation = creative.lineage["generation"]
    assert (generation["image_family"], generation["image_steps"], generation["guidance"]) == (pipeline, 2, guidance)
    assert creative.lineage["prompt"]["negative"]  # these families take one, and guidance uses it
    assert creative.image_key and creative.copy["card_title"] == [SAYS]


def test_few_step_model_runs_with_its_own_steps_and_no_guidance_and_renders_again_the_same(
        image_models, text_models, default_models):
    from adgen.context import Context
    from adgen.pipeline import rerender
    from adgen.settings import get_settings

    [creative] = campaign({"text": str(text_models["llama3"]["says"]), "image": str(image_models["sdxl-turbo"])},
                          image_settings={"steps": 1, "guidance": 0})
    generation = creative.lineage["generation"]
    assert (generation["image_steps"], generation["guidance"]) == (1, 0.0)
    assert creative.lineage["prompt"]["negative"] is None  # guidance 0: no negative prompt is sent or recorded
    _, same = rerender(Context(get_settings()), creative.id)
    assert same


def test_image_lora_trains_on_sdxl_and_a_campaign_uses_it(image_models, text_models, default_models, tmp_path):
    import numpy as np
    from PIL import Image

    from adgen.adapters import push
    from adgen.context import Context
    from adgen.image import ImageModel
    from adgen.models import resolve_model
    from adgen.settings import get_settings
    from finetune.config import ImageConfig
    from finetune.data import read_image_data
    from finetune.image import train_image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 120, 3), dtype=np.uint8)).save(photos / f"photo-{i}.png")
        (photos / f"photo-{i}.txt").write_text("cold brew coffee on a wooden table")
    folder = image_models["sdxl"]
    ctx = Context(get_settings())
    base = resolve_model(str(folder), "image", ctx.settings)
    data = read_image_data(photos, None, min_side=32)
    config = ImageConfig(rank=4, alpha=4, steps=3, batch_size=2, learning_rate=0.01, crop="bucket", validation_every=0,
                         validation_steps=1, checkpoint_every=0)
    metrics = train_image(data, base, config, tmp_path / "run")
    adapter = tmp_path / "run" / "adapter"
    assert metrics["steps"] == 3 and metrics["buckets"] == ["96x32"]  # SDXL's added size conditioning at the bucket
    assert (adapter / "pytorch_lora_weights.safetensors").is_file()

    model = ImageModel(str(folder), CPU, torch.float32)
    args = dict(negative=None, seeds=[0], size=(64, 64), steps=1, guidance=0.0)
    plain = np.asarray(model.generate("cold brew", **args).images[0])
    model.use_adapter("brand", adapter)
    assert np.abs(np.asarray(model.generate("cold brew", **args).images[0]).astype(int) - plain).max() > 0

    push(ctx.storage, adapter, brand="northwind", kind="image", base={"ref": base.ref, "hash": base.hash},
         dataset={"hash": data.hash, "size": len(data.examples)}, hyperparameters={}, metrics=metrics, promote=True)
    [creative] = campaign({"text": str(text_models["llama3"]["says"]), "image": str(folder)},
                          adapters={"image": "northwind/image@latest"}, image_settings={"steps": 2})
    assert creative.lineage["image_adapter"]["ref"] == "northwind/image@v1"


# ----- the GPU benchmark, at toy size so it cannot rot -----

def test_gpu_bench_runs_at_toy_size_through_the_product_loaders(capsys):
    from bench.gpu import main

    result = main(["--toy", "--device", "cpu"])
    rows = {(r["model"], r["batch"]): r for r in result["rows"]}
    assert set(rows) == {("sd15", 1), ("sd15", 2), ("sdxl", 1), ("sdxl", 2), ("qwen2.5-1.5b", 1), ("qwen2.5-1.5b", 4)}
    assert all(r["images/s"] > 0 for r in result["rows"] if r["model"] != "qwen2.5-1.5b")
    assert rows[("qwen2.5-1.5b", 4)]["tokens/s"] > 0
    assert set(result["adapters"]) == {"image adapter load, s", "image adapter switch, s", "text adapter load, s",
                                       "text adapter switch, s"}
    printed = capsys.readouterr().out
    assert "| sdxl | 64 px, 2 steps, guidance 5.0 | 1 |" in printed and "49.7 it/s" in printed


def test_gpu_bench_real_sizes_are_the_published_architectures():
    """The real-size configs build (on the meta device: shapes, no memory) to the published sizes."""
    from diffusers import UNet2DConditionModel
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from bench.gpu import REAL

    def millions(model) -> float:
        return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)

    with torch.device("meta"):
        assert millions(UNet2DConditionModel(**REAL["sd15"]["unet"])) == 859.5  # SD 1.5's UNet
        assert millions(UNet2DConditionModel(**REAL["sdxl"]["unet"])) == 2567.5  # SDXL base's UNet
        assert millions(Qwen2ForCausalLM(Qwen2Config(**REAL["qwen2.5-1.5b"]))) == 1543.7  # Qwen2.5-1.5B
