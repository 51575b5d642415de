"""Brand adapters end to end on the offline default models, through the real command line:
finetune text and image, the registry, campaigns that use adapters (lineage, re-render), adapters
made by stock peft / diffusers code, the review feedback loop, resume, and bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from tests.conftest import EXAMPLE, MODELS, REPO, adgen
from tests.test_backends import s3, s3_server  # noqa: F401, F811 (the moto server fixtures)

BRAND_COPY = REPO / "examples" / "northwind-copy.jsonl"
BRAND_WORDS = ("velvet", "steeped", "roast", "sip")

TEXT_RECIPE = {"kind": "text", "base": "default", "hyperparameters": {
    "steps": 40, "batch_size": 4, "learning_rate": 0.002, "checkpoint_every": 20, "seed": 0}}
IMAGE_RECIPE = {"kind": "image", "base": "default", "hyperparameters": {
    "steps": 12, "batch_size": 2, "learning_rate": 0.001, "validation_every": 6, "validation_steps": 4,
    "checkpoint_every": 6, "seed": 0, "rank": 4, "alpha": 4}}


def _recipe(tmp_path, recipe: dict, **changes) -> str:
    data = json.loads(json.dumps(recipe))
    data["hyperparameters"].update(changes)
    path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*')))}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _images(folder, n=4, color=(30, 140, 140), size=(96, 96)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = np.clip(np.array(color) + rng.normal(0, 12, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"photo-{i}.png")
        (folder / f"photo-{i}.txt").write_text("cold brew coffee on a wooden table")
    return folder


def _spec(tmp_path, name="spec.yaml", **changes) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(placements=["meta_feed", "google_rsa"], variants=2, audiences=data["audiences"][:1])
    data.update(changes)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _run(spec: str) -> str:
    info = json.loads(adgen("campaign", "run", spec, "--json").stdout)
    assert set(info["jobs"]) == {"done"}, info
    return info["campaign_id"]


def _export(campaign_id, out) -> list[dict]:
    adgen("campaign", "export", campaign_id, "--out", str(out), "--status", "any")
    return json.loads((out / "creatives.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, default_models):
    """One home with a text and an image adapter trained by `adgen finetune`, shared by this module."""
    home = tmp_path_factory.mktemp("adapters-home")
    work = tmp_path_factory.mktemp("adapters-work")
    env = {"ADGEN_HOME": str(home), "ADGEN_MODELS": str(MODELS)}  # set before the per-test `home` fixture runs
    text = adgen("finetune", "text", "--brand", "northwind", "--data", str(BRAND_COPY),
                 "--config", _recipe(work, TEXT_RECIPE), env=env)
    image = adgen("finetune", "image", "--brand", "northwind", "--images", str(_images(work / "photos")),
                  "--config", _recipe(work, IMAGE_RECIPE), env=env)
    return {"home": home, "text": text, "image": image, "work": work}


@pytest.fixture
def in_trained(trained, monkeypatch):
    monkeypatch.setenv("ADGEN_HOME", str(trained["home"]))
    return trained


def test_text_adapter_lowers_validation_perplexity_and_loads_with_stock_peft(in_trained, default_models):
    assert in_trained["text"].stdout.strip() == "northwind/text@v1"
    assert "validation perplexity" in in_trained["text"].stderr
    meta = json.loads(adgen("adapters", "show", "northwind/text@latest").stdout)
    before, after = meta["metrics"]["validation_before"], meta["metrics"]["validation_after"]
    assert after["perplexity"] < 0.5 * before["perplexity"], (before, after)
    assert meta["base"]["ref"] == "default" and meta["dataset"]["size"] > 100 and meta["hyperparameters"]["steps"] == 40

    folder = in_trained["home"] / "finetune" / "northwind-text" / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "README.md", "loss.png"):
        assert (folder / name).is_file(), name
    with Image.open(folder / "loss.png") as im:
        assert im.size == (800, 420) and len(set(im.convert("L").getdata())) > 10  # a drawn curve, not a blank
    assert "perplexity" in (folder / "README.md").read_text()

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(default_models["text"])
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        plain = base(ids).logits
        tuned = PeftModel.from_pretrained(base, str(folder))(ids).logits
    assert not torch.allclose(plain, tuned)


def test_campaign_with_text_adapter_writes_in_the_brand_vocabulary(in_trained, tmp_path):
    base_id = _run(_spec(tmp_path, "base.yaml"))
    tuned_id = _run(_spec(tmp_path, "tuned.yaml", adapters={"text": "northwind/text@latest"}))

    def brand_words(entries):
        texts = " ".join(t for e in entries for texts in e["copy"].values() for t in texts).lower()
        return sum(texts.count(w) for w in BRAND_WORDS)

    base_entries, tuned_entries = _export(base_id, tmp_path / "base"), _export(tuned_id, tmp_path / "tuned")
    assert brand_words(tuned_entries) >= 5 > brand_words(base_entries) == 0
    adapter = tuned_entries[0]["lineage"]["text_adapter"]
    assert adapter["ref"] == "northwind/text@v1" and adapter["version"] == 1 and len(adapter["hash"]) == 16
    assert base_entries[0]["lineage"]["text_adapter"] is None


def test_image_adapter_loads_with_stock_diffusers_and_rerenders_identically(in_trained, tmp_path, default_models):
    assert in_trained["image"].stdout.strip() == "northwind/image@v1"
    folder = in_trained["home"] / "finetune" / "northwind-image" / "adapter"
    assert (folder / "pytorch_lora_weights.safetensors").is_file()
    with Image.open(folder / "validation.png") as grid:
        assert grid.height > 3 * 128  # rows for step 0, step 6 and the end

    from diffusers import AutoPipelineForText2Image

    pipe = AutoPipelineForText2Image.from_pretrained(default_models["image"])
    pipe.set_progress_bar_config(disable=True)

    def render():
        return np.asarray(pipe("cold brew", num_inference_steps=4, generator=torch.Generator().manual_seed(0)).images[0])

    plain = render()
    pipe.load_lora_weights(str(folder))
    assert np.abs(render().astype(int) - plain.astype(int)).mean() > 1

    campaign_id = _run(_spec(tmp_path, adapters={"image": "northwind/image@v1"}, placements=["meta_feed"]))
    entries = _export(campaign_id, tmp_path / "bundle")
    assert entries[0]["lineage"]["image_adapter"]["ref"] == "northwind/image@v1"
    result = adgen("creative", "rerender", entries[0]["id"], "--out", str(tmp_path / "again.png"))
    assert "identical" in result.stdout


def test_adapters_made_by_stock_peft_and_diffusers_register_and_run_in_a_campaign(tmp_path, default_models):
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    def nudge(model):  # a small non-zero update, as a trained adapter would be (fresh LoRA B is zero)
        torch.manual_seed(0)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0, 0.01)

    text = get_peft_model(AutoModelForCausalLM.from_pretrained(default_models["text"]),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    nudge(text)
    text.save_pretrained(tmp_path / "peft-adapter")
    pipe = AutoPipelineForText2Image.from_pretrained(default_models["image"])
    pipe.unet.add_adapter(LoraConfig(r=4, target_modules=["to_q", "to_v"]))
    nudge(pipe.unet)
    type(pipe).save_lora_weights(tmp_path / "sd-lora", unet_lora_layers=convert_state_dict_to_diffusers(
        get_peft_model_state_dict(pipe.unet)))

    assert adgen("adapters", "add", str(tmp_path / "peft-adapter"), "--brand", "acme", "--kind", "text").stdout.strip() == "acme/text@v1"
    single_file = tmp_path / "sd-lora" / "pytorch_lora_weights.safetensors"
    assert adgen("adapters", "add", str(single_file), "--brand", "acme", "--kind", "image").stdout.strip() == "acme/image@v1"
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in get_peft_model_state_dict(pipe.unet).items()})
    assert next(iter(kohya)).startswith("lora_unet_")
    save_file({k: v.contiguous() for k, v in kohya.items()}, tmp_path / "brand_style_kohya.safetensors")
    added = adgen("adapters", "add", str(tmp_path / "brand_style_kohya.safetensors"), "--brand", "acme", "--kind", "image")
    assert added.stdout.strip() == "acme/image@v2"
    listing = adgen("adapters", "list").stdout
    assert "acme/text@v1" in listing and "acme/image@v1" in listing and "acme/image@v2" in listing
    bad = adgen("adapters", "add", str(tmp_path / "peft-adapter"), "--brand", "acme", "--kind", "image", check=False)
    assert bad.returncode == 2 and "pytorch_lora_weights.safetensors" in bad.stderr

    acme = {**yaml.safe_load(EXAMPLE.read_text())["brand"], "name": "Acme Roasters", "logo": None}
    refused = adgen("campaign", "run", _spec(tmp_path, adapters={"text": "acme/text@v1"}), check=False)
    assert refused.returncode == 2 and "adapters.text: acme/text@v1 is an adapter of brand 'acme', not of 'Northwind Coffee'" in refused.stderr
    campaign_id = _run(_spec(tmp_path, brand=acme, adapters={"text": "acme/text@v1", "image": "acme/image@latest"}))
    entries = _export(campaign_id, tmp_path / "bundle")
    feed = next(e for e in entries if e["placement"] == "meta_feed")
    assert feed["lineage"]["text_adapter"]["ref"] == "acme/text@v1"
    assert feed["lineage"]["image_adapter"]["ref"] == "acme/image@v2"  # @latest: the kohya-format file


def test_approved_copy_becomes_the_next_training_set(in_trained, tmp_path):
    campaign_id = _run(_spec(tmp_path, placements=["meta_feed"], variants=4))
    entries = _export(campaign_id, tmp_path / "all")
    passing = [e["id"] for e in entries if e["compliance"]["ok"]]
    approved, rejected = passing[:2], [e["id"] for e in entries if e["id"] not in passing[:2]]
    assert approved and rejected, "the example campaign should give both passing and other creatives"
    adgen("review", "edit", approved[0], "--field", "headline", "--text", "Velvet roast mornings")
    adgen("review", "approve", campaign_id, *[a for cid in approved for a in ("--creative", cid)])
    adgen("review", "reject", campaign_id, *[a for cid in rejected for a in ("--creative", cid)], "--reason", "off brand")

    result = adgen("finetune", "text", "--brand", "northwind", "--from-reviews", "--campaign", campaign_id,
                   "--config", _recipe(tmp_path, TEXT_RECIPE, steps=4, batch_size=1, checkpoint_every=0),
                   "--no-promote")
    assert result.stdout.strip() == "northwind/text@v2"
    assert f"{len(approved)} approved and {len(rejected)} rejected" in result.stderr
    rows = {json.loads(line)["creative"]: json.loads(line)
            for line in (in_trained["home"] / "finetune" / "northwind-text" / "reviews.jsonl").open()}
    assert {cid for cid, r in rows.items() if r["status"] == "approved"} == set(approved)
    assert {cid for cid, r in rows.items() if r["status"] == "rejected"} == set(rejected)
    assert rows[approved[0]]["copy"]["headline"] == ["Velvet roast mornings"] and rows[approved[0]]["edited"] is True
    assert rows[rejected[0]]["reason"] == "off brand"
    meta = json.loads(adgen("adapters", "show", "northwind/text@v2").stdout)
    assert meta["dataset"]["source"] == "reviews" and meta["dataset"]["negatives"] == len(rejected)
    assert json.loads(adgen("adapters", "show", "northwind/text@latest").stdout)["version"] == 1  # not promoted
    assert "-> v2" in adgen("adapters", "promote", "northwind/text@v2").stdout
    assert json.loads(adgen("adapters", "show", "northwind/text").stdout)["version"] == 2
    adgen("adapters", "promote", "northwind/text@v1")  # the other tests expect v1 as latest


def test_an_interrupted_run_resumes_to_the_same_adapter(tmp_path, default_models):
    from adgen.models import resolve_model
    from adgen.settings import Settings
    from finetune.config import TextConfig
    from finetune.data import read_text_data
    from finetune.text import train_text

    data = read_text_data(BRAND_COPY, "northwind")
    base = resolve_model("default", "text", Settings())
    config = TextConfig(steps=8, batch_size=4, checkpoint_every=4)
    whole = train_text(data, base, config, tmp_path / "whole")

    def stop_after_six(step, total, loss):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_text(data, base, config, tmp_path / "cut", progress=stop_after_six)
    assert [p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()] == ["step-4"]
    resumed = train_text(data, base, config, tmp_path / "cut", resume=True)
    assert resumed["resumed_from"] == 4
    assert resumed["validation_after"]["loss"] == pytest.approx(whole["validation_after"]["loss"], abs=1e-4)


def test_registry_on_s3(s3, tmp_path):  # noqa: F811
    from adgen.adapters import AdapterError, fetch, push, resolve
    from adgen.settings import Settings
    from adgen.storage import open_storage

    storage = open_storage(Settings())
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"weights-1")
    base = {"ref": "default", "hash": "abc"}
    assert push(storage, folder, brand="northwind", kind="text", base=base).ref == "northwind/text@v1"
    (folder / "adapter_model.safetensors").write_bytes(b"weights-2")
    second = push(storage, folder, brand="northwind", kind="text", base=base)
    assert resolve(storage, "northwind/text@latest").version == 2 and second.hash != resolve(storage, "northwind/text@v1").hash
    local = fetch(storage, second.lineage(), tmp_path / "cache")
    assert (local / "adapter_model.safetensors").read_bytes() == b"weights-2" and local.name == second.hash
    with pytest.raises(AdapterError, match="northwind/text@v7"):
        resolve(storage, "northwind/text@v7")


@pytest.mark.parametrize("content, message", [
    ('{"text": "fine"}\n\n{"text": "fine"}\n', "copy.jsonl:2: empty line"),
    ('{"text": "fine"}\n{"text": "broken\n', "copy.jsonl:2: not JSON"),
    ('{"product": "Cold Brew", "audience": "parents", "placement": "tv_spot", "copy": {"headline": "x"}}\n', "copy.jsonl:1: placement 'tv_spot'"),
    ('{"product": "Cold Brew", "audience": "parents", "placement": "meta_feed", "copy": {"cta": "x"}}\n', "copy.jsonl:1: copy.cta is not a written field"),
    ('{"product": {"name": ""}, "audience": "parents", "placement": "meta_feed", "copy": {"headline": "x"}}\n', "copy.jsonl:1: product.name"),
])
def test_bad_text_rows_are_named_by_line(tmp_path, content, message):
    from finetune.data import DataError, read_text_data

    data = tmp_path / "copy.jsonl"
    data.write_text(content)
    with pytest.raises(DataError, match=message.replace(".", r"\.").replace("(", r"\(")):
        read_text_data(data, "northwind")


def test_bad_text_data_exits_2_and_writes_nothing(tmp_path, home, default_models):
    data = tmp_path / "copy.jsonl"
    data.write_text('{"text": "fine"}\n{"text": "broken\n')
    result = adgen("finetune", "text", "--brand", "northwind", "--data", str(data), check=False)
    assert result.returncode == 2 and "copy.jsonl:2: not JSON" in result.stderr, result.stderr
    data.write_text('{"text": "one"}\n{"text": "two"}\n{"text": "three"}\n')
    result = adgen("finetune", "text", "--brand", "northwind", "--data", str(data), check=False)
    assert result.returncode == 2 and "fewer than batch_size 8" in result.stderr, result.stderr
    assert not (home / "storage" / "adapters").exists()


def test_bad_rows_are_skipped_only_when_asked_and_then_reported(tmp_path, home, default_models):
    data = tmp_path / "copy.jsonl"
    lines = BRAND_COPY.read_text().splitlines()
    data.write_text("\n".join(lines[:3] + ["{oops"] + lines[3:20]) + "\n")
    result = adgen("finetune", "text", "--brand", "northwind", "--data", str(data), "--skip-bad",
                   "--config", _recipe(tmp_path, TEXT_RECIPE, steps=2, checkpoint_every=0))
    assert "skipped" in result.stderr and "copy.jsonl:4: not JSON" in result.stderr
    assert result.stdout.strip() == "northwind/text@v1"


@pytest.mark.parametrize("problem, message", [
    ("corrupt", "photo-9.png: not a readable image"),
    ("small", "photo-9.png: 40x40 is too small"),
])
def test_bad_images_are_named_by_file(tmp_path, problem, message):
    from finetune.data import DataError, read_image_data

    photos = _images(tmp_path / "photos")
    if problem == "corrupt":
        (photos / "photo-9.png").write_bytes(b"not a png at all")
    else:
        Image.new("RGB", (40, 40)).save(photos / "photo-9.png")
    with pytest.raises(DataError, match=message):
        read_image_data(photos, None, min_side=64)
    assert len(read_image_data(photos, None, min_side=64, skip_bad=True).examples) == 4


def test_bad_images_exit_2_and_write_nothing(tmp_path, home, default_models):
    photos = _images(tmp_path / "photos")
    (photos / "photo-9.png").write_bytes(b"not a png at all")
    result = adgen("finetune", "image", "--brand", "northwind", "--images", str(photos), check=False)
    assert result.returncode == 2 and "photo-9.png: not a readable image" in result.stderr, result.stderr
    (photos / "photo-9.png").unlink()
    result = adgen("finetune", "image", "--brand", "northwind", "--images", str(photos),
                   "--config", _recipe(tmp_path, IMAGE_RECIPE, batch_size=8), check=False)
    assert result.returncode == 2 and "4 images are fewer than batch_size 8" in result.stderr, result.stderr
    assert not (home / "storage" / "adapters").exists()


def test_unknown_base_and_unknown_ref_and_mismatched_base_exit_2(in_trained, tmp_path, default_models):
    result = adgen("finetune", "text", "--brand", "northwind", "--data", str(BRAND_COPY), "--base", "./no-such-model", check=False)
    assert result.returncode == 2 and "--base: './no-such-model' is not a folder" in result.stderr

    result = adgen("campaign", "run", _spec(tmp_path, adapters={"text": "northwind/text@v9"}), check=False)
    assert result.returncode == 2 and "adapters.text: adapter 'northwind/text@v9' does not exist" in result.stderr
    result = adgen("campaign", "run", _spec(tmp_path, adapters={"image": "northwind-coffee/image@latest"}), check=False)
    assert result.returncode == 2 and "'northwind-coffee/image@latest' does not exist" in result.stderr
    result = adgen("campaign", "run", _spec(tmp_path, adapters={"image": "nobody/image@latest"}), check=False)
    assert result.returncode == 2 and "nobody/image@latest is an adapter of brand 'nobody', not of 'Northwind Coffee'" in result.stderr

    other = tmp_path / "other-text-model"
    shutil.copytree(default_models["text"], other)
    (other / "NOTE").write_text("a different model folder")
    result = adgen("campaign", "run", _spec(tmp_path, models={"text": str(other), "image": "default"},
                                            adapters={"text": "northwind/text@v1"}), check=False)
    assert result.returncode == 2 and "was trained on base model 'default'" in result.stderr


def test_adapter_refs_are_checked_when_the_spec_loads(tmp_path):
    result = adgen("campaign", "run", _spec(tmp_path, adapters={"text": "northwind/image@v1"}), check=False)
    assert result.returncode == 2 and "adapters.text" in result.stderr and "is not a text adapter" in result.stderr


def test_every_shipped_recipe_loads_and_bad_fields_are_named(tmp_path):
    from finetune.config import RECIPES, ImageConfig, PreferenceConfig, RecipeError, TextConfig, load_recipe

    configs = {"text": TextConfig, "image": ImageConfig, "preference": PreferenceConfig}
    for recipe in RECIPES.iterdir():
        if recipe.name.endswith(".yaml"):
            kind = yaml.safe_load(recipe.read_text())["kind"]
            config, base = load_recipe(Path(str(recipe)), configs[kind], kind)
            assert config.steps > 0 and base
    with pytest.raises(RecipeError, match="hyperparameters.rnak is not a field"):
        load_recipe(Path(_recipe(tmp_path, TEXT_RECIPE, rnak=4)), TextConfig, "text")
    with pytest.raises(RecipeError, match="learning_rate: 5.0 is outside"):
        load_recipe(Path(_recipe(tmp_path, TEXT_RECIPE, learning_rate=5.0)), TextConfig, "text")
    with pytest.raises(RecipeError, match="hyperparameters.rpo_alpha: must be 0 or above, got -1"):
        load_recipe(Path(_recipe(tmp_path, {**TEXT_RECIPE, "kind": "preference"}, rpo_alpha=-1)), PreferenceConfig, "preference")
    for bad, message in [({"loss_type": "kto"}, "loss_type: 'kto' is not valid; use sigmoid, ipo"),
                         ({"f_divergence_type": "chi2"}, "f_divergence_type: 'chi2' is not valid"),
                         ({"label_smoothing": 0.1}, "label_smoothing: only loss_type 'robust' uses it"),
                         ({"loss_type": "robust", "label_smoothing": 0.5}, r"label_smoothing: 0.5 is outside \[0, 0.5\)")]:
        with pytest.raises(RecipeError, match=message):
            PreferenceConfig(**bad)


def test_image_buckets_captions_file_and_text_encoder_lora(tmp_path, default_models):
    from diffusers import AutoPipelineForText2Image

    from adgen.models import resolve_model
    from adgen.settings import Settings
    from finetune.config import ImageConfig
    from finetune.data import read_image_data
    from finetune.image import train_image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, size in enumerate([(200, 100), (100, 200), (150, 150), (220, 110)]):
        Image.new("RGB", size, (30 + 40 * i, 140, 140)).save(photos / f"{i}.png")
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps({"file": f"{i}.png", "caption": f"scene {i}"}) + "\n" for i in range(4)))
    config = ImageConfig(steps=2, batch_size=2, crop="bucket", train_text_encoder=True, instance_token="nwstyle",
                         validation_every=0, checkpoint_every=0, validation_steps=2)
    data = read_image_data(photos, tmp_path / "captions.jsonl", min_side=64)
    metrics = train_image(data, resolve_model("default", "image", Settings()), config, tmp_path / "run")
    assert metrics["buckets"] == ["128x128", "160x96", "96x160"]  # wide, tall and square images keep their shape
    assert metrics["validation_prompts"][0] == "nwstyle scene 0"
    pipe = AutoPipelineForText2Image.from_pretrained(default_models["image"])
    pipe.load_lora_weights(str(tmp_path / "run" / "adapter"))
    assert set(pipe.get_list_adapters()) == {"unet", "text_encoder"}
