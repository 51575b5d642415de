"""The text-to-image path (a product without a photo), with the real tiny default pipeline: the
image prompt is kept within CLIP's 77 tokens and recorded as the model saw it, and an image the
pipeline's own safety checker (a real tiny CLIP checker) flags is never used: it is made again with
a new seed, or the job fails with the reason."""

import numpy as np
import pytest
import torch
import yaml

from adgen.context import Context
from adgen.image import ImageModel
from adgen.jobs import create_campaign, run_campaign
from adgen.lineage import Lineage
from adgen.pipeline import rerender
from adgen.prompts import NEGATIVE_IMAGE_PROMPT, image_prompt
from adgen.records import Creative, Job
from adgen.scene import SEED_STEP, SceneError, fit_prompt
from adgen.settings import Settings
from adgen.spec import load_spec
from tests.conftest import EXAMPLE, with_safety_checker

PROMPT = "a cup of espresso on a cafe table, warm morning light"
SIZE, STEPS = (64, 64), 2


@pytest.fixture(scope="module")
def model(default_models) -> ImageModel:
    return ImageModel(str(default_models["image"]), torch.device("cpu"), torch.float32)


def _concept_score(checker, processor, image) -> float:
    """The largest concept similarity the safety checker computes for `image` (it flags an image
    when this exceeds its threshold)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import cosine_distance

    with torch.no_grad():
        pixels = processor(image, return_tensors="pt").pixel_values
        embeds = checker.visual_projection(checker.vision_model(pixels)[1])
        return float(cosine_distance(embeds, checker.concept_embeds).max())


def test_a_flagged_image_is_made_again_with_a_new_seed_or_fails_with_the_reason(model):
    plain = model.pipe
    probe = with_safety_checker(plain, 2.0)
    checker, processor = probe.components["safety_checker"], probe.components["feature_extractor"]

    def image(seed):
        return model.generate(PROMPT, negative=NEGATIVE_IMAGE_PROMPT, seeds=[seed], size=SIZE, steps=STEPS,
                              guidance=6.0).images[0]

    # A seed whose image scores above the image of its retry seed: a threshold between them flags
    # the first image only, so the real checker decides, not a stand-in.
    seed, first, retry = next(
        (s, a, b) for s in range(20)
        for a, b in [(_concept_score(checker, processor, image(s)), _concept_score(checker, processor, image(s + SEED_STEP)))]
        if a - b > 1e-3
    )
    try:
        model.pipe = with_safety_checker(plain, (first + retry) / 2)
        made = model.generate(PROMPT, negative=NEGATIVE_IMAGE_PROMPT, seeds=[seed], size=SIZE, steps=STEPS, guidance=6.0)
        assert made.seeds == [seed + SEED_STEP]
        got = np.asarray(made.images[0]).astype(int)
        assert got.max() > 0  # not the checker's black image
        model.pipe = plain
        assert np.abs(got - np.asarray(image(seed + SEED_STEP)).astype(int)).max() == 0

        model.pipe = with_safety_checker(plain, -2.0)  # flags every image
        with pytest.raises(SceneError, match=rf"safety checker flagged every image \(3 seeds: {seed}, {seed + SEED_STEP}, "):
            model.generate(PROMPT, negative=NEGATIVE_IMAGE_PROMPT, seeds=[seed], size=SIZE, steps=STEPS, guidance=6.0)
    finally:
        model.pipe = plain


def test_the_image_prompt_is_kept_to_what_clip_reads_and_recorded_as_seen(tmp_path, home, model):
    data = yaml.safe_load(EXAMPLE.read_text())
    data["products"][0].pop("images")
    interests = ["third-wave espresso bars", "single-origin pour-over", "latte art championships",
                 "home roasting on a budget", "cold brew experiments", "barista competitions", "coffee farm travel"]
    data.update(audiences=[{**data["audiences"][0], "interests": interests}], placements=["meta_feed"], variants=1,
                candidates=1)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path)
    written = image_prompt(spec.brand, spec.products[0], spec.audiences[0])
    tokenizer = model.pipe.tokenizer
    assert len(tokenizer(written, add_special_tokens=False)["input_ids"]) > tokenizer.model_max_length - 2

    ctx = Context(Settings())
    campaign_id = create_campaign(spec, ctx)
    assert run_campaign(campaign_id, ctx) == {"done": 1}
    with ctx.db() as s:
        row = s.query(Creative).filter_by(campaign_id=campaign_id).one()
        assert s.query(Job).filter_by(campaign_id=campaign_id).one().error is None
    seen = Lineage.of(row.lineage).prompt.image
    assert seen == fit_prompt(model.pipe, written) and written.startswith(seen) and len(seen) > 100
    assert len(tokenizer(seen, add_special_tokens=False)["input_ids"]) <= tokenizer.model_max_length - 2
    # the recorded prompt makes the same picture again
    assert rerender(ctx, row.id)[1]
