"""A creative's lineage is typed and complete: what is stored reads back into `Lineage` and writes out
unchanged, and `adgen creative rerender` makes the same bytes from the recorded negative prompt,
bucket, steps and guidance alone, even after the code's own defaults change."""

import yaml
from typer.testing import CliRunner

from adgen import image, pipeline, records
from adgen.context import Context
from adgen.image import ImageModel
from adgen.jobs import create_campaign, run_campaign
from adgen.lineage import Lineage
from adgen.settings import Settings
from adgen.spec import parse_spec
from cli.main import app
from tests.conftest import EXAMPLE, REPO


def _campaign(ctx: Context) -> list[records.Creative]:
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(placements=["google_rsa", "display_300x250"], audiences=data["audiences"][:1], variants=2)
    campaign_id = create_campaign(parse_spec(data, base_dir=REPO), ctx)
    assert run_campaign(campaign_id, ctx) == {"done": 2}
    with ctx.db() as s:
        return list(s.query(records.Creative).filter_by(campaign_id=campaign_id).order_by(records.Creative.id))


def test_stored_lineage_round_trips_through_the_typed_model(default_models):
    ctx = Context(Settings())
    creatives = _campaign(ctx)
    text_only, pictured = creatives[0], creatives[-1]
    for row in creatives:
        lineage = Lineage.of(row.lineage)
        assert lineage.record() == row.lineage
        assert Lineage.of(lineage.record()) == lineage
    assert Lineage.of(text_only.lineage).image_model is None and Lineage.of(text_only.lineage).generation.bucket is None
    picture = Lineage.of(pictured.lineage)
    assert picture.prompt.negative and picture.generation.bucket and picture.generation.image_steps > 0
    assert set(picture.prompt.text) == {"headline"}  # the messages sent for every written field
    again = picture.model_copy(update={"replaces": text_only.id})
    assert Lineage.of(again.record()).replaces == text_only.id


def test_rerender_uses_the_recorded_settings_not_the_current_defaults(default_models, monkeypatch, tmp_path):
    ctx = Context(Settings())
    row = _campaign(ctx)[-1]
    recorded = Lineage.of(row.lineage)
    assert recorded.generation.image_family == "StableDiffusionInpaintPipeline"  # the example's product has a photo
    monkeypatch.setitem(image._families()["pipelines"], recorded.generation.image_family, {
        "steps": recorded.generation.image_steps + 3, "guidance": recorded.generation.guidance + 2.5, "negative": True})
    monkeypatch.setattr(pipeline, "NEGATIVE_IMAGE_PROMPT", "a different negative prompt")
    monkeypatch.setattr(ImageModel, "bucket", lambda self, width, height: (64, 64))
    out = tmp_path / "again.png"
    result = CliRunner().invoke(app, ["creative", "rerender", row.id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "identical to the stored creative" in result.output
    assert out.read_bytes() == ctx.storage.get(row.image_key)
