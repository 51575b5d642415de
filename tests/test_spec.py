"""The campaign spec: the example is valid, and every kind of bad input stops with a one-line error
that names the field, exit status 2, and nothing written to the records or storage."""

import pytest
import yaml

from adgen.spec import SpecError, load_spec
from tests.conftest import EXAMPLE, adgen


def test_example_spec_expands_to_the_documented_matrix():
    spec = load_spec(EXAMPLE)
    assert spec.campaign == "spring-launch"
    assert len(spec.products) * len(spec.audiences) * len(spec.placements) == 10
    assert spec.variants == 3 and spec.seed == 1234
    assert spec.brand.logo.is_file()
    assert spec.audiences[0].language == "en"


def _spec(tmp_path, change) -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    change(data)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


BAD = {
    "unknown placement": (lambda d: d["placements"].append("tiktok_feed"), "placements", "tiktok_feed"),
    "missing products": (lambda d: d.pop("products"), "products", "required"),
    "empty products": (lambda d: d.update(products=[]), "products", "at least 1"),
    "product without a name": (lambda d: d["products"][0].pop("name"), "products[0].name", "required"),
    "empty audiences": (lambda d: d.update(audiences=[]), "audiences", "at least 1"),
    "variants 0": (lambda d: d.update(variants=0), "variants", "greater than or equal to 1"),
    "variants 1000": (lambda d: d.update(variants=1000), "variants", "less than or equal to 20"),
    "non-hex colour": (lambda d: d["brand"].update(colors=["#3B2A20", "brown"]), "brand.colors", "#RRGGBB"),
    "missing logo": (lambda d: d["brand"].update(logo="examples/missing.png"), "brand.logo", "does not exist"),
    "unknown field": (lambda d: d.update(budget=100), "budget", "not a known field"),
    "language not a BCP 47 tag": (lambda d: d["audiences"][0].update(language="english"), "audiences[0].language", "BCP 47"),
    "model folder missing": (lambda d: d.update(models={"text": "./no-such-model"}), "models.text", "not a folder"),
    "hub id offline": (lambda d: d.update(models={"image": "stabilityai/sd-turbo"}), "models.image", "sd-turbo"),
    "candidates 0": (lambda d: d.update(candidates=0), "candidates", "greater than or equal to 1"),
    "judge folder missing": (lambda d: d.update(models={"judge": "./no-such-judge"}), "models.judge", "not a folder"),
    "judge not a model": (lambda d: d.update(models={"judge": str(EXAMPLE.parent)}), "models.judge", "no config.json"),
    "judge hub id offline": (lambda d: d.update(models={"judge": "sentence-transformers/LaBSE"}), "models.judge",
                             "HF_HUB_OFFLINE"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_spec_is_refused_with_the_field_named_and_nothing_written(case, tmp_path, home, default_models):
    change, field, hint = BAD[case]
    result = adgen("campaign", "run", _spec(tmp_path, change), check=False)
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert field in message and hint in message, message
    assert not (home / "adgen.db").exists() and not (home / "storage").exists()


def test_not_a_logo_image(tmp_path, home, default_models):
    fake = tmp_path / "logo.png"
    fake.write_text("not an image")
    result = adgen("campaign", "run", _spec(tmp_path, lambda d: d["brand"].update(logo=str(fake))), check=False)
    assert result.returncode == 2 and "brand.logo" in result.stderr and "not an image" in result.stderr
    assert not (home / "adgen.db").exists()


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("campaign: x\nbrand: [unclosed\n")
    with pytest.raises(SpecError, match=r"broken.yaml: line \d+"):
        load_spec(path)
