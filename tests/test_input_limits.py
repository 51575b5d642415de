"""Limits on every input: campaign size, image pixels, text lengths, invisible characters, files
that are not what they claim, training rows of the wrong JSON type, and --from-reviews taking
exactly one brand. Each bad input ends in one line naming the field, exit 2, and nothing written."""

import json
import re

import pytest
import yaml
from PIL import Image

from adgen.compliance import banned_terms_in, check_text
from adgen.platforms import placement
from adgen.spec import SpecError, load_spec
from tests.conftest import EXAMPLE, MODELS, adgen
from ui.actions import InputError

ZWSP, RLO = "\u200b", "\u202e"


def _spec(tmp_path, change, name="spec.yaml") -> str:
    data = yaml.safe_load(EXAMPLE.read_text())
    change(data)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return str(path)


def _products(n):
    return [{"name": f"Product {i}", "description": "A product."} for i in range(n)]


def _audiences(n):
    return [{"name": f"audience-{i}", "persona": "Someone."} for i in range(n)]


def _nested(depth):
    value = ["x"]
    for _ in range(depth):
        value = [value]
    return value


BAD = {
    "jobs over the limit": (lambda d: d.update(products=_products(30), audiences=_audiences(20), placements=["meta_feed"]),
                            "600 jobs", "limit of 500 jobs per campaign (ADGEN_MAX_JOBS)"),
    "creatives over the limit": (lambda d: d.update(products=_products(20), audiences=_audiences(20),
                                                    placements=["meta_feed"], variants=20),
                                 "8000 creatives", "limit of 5000 creatives per campaign (ADGEN_MAX_CREATIVES)"),
    "brand name over 200": (lambda d: d["brand"].update(name="N" * 201), "brand.name", "at most 200"),
    "product name over 200": (lambda d: d["products"][0].update(name="P" * 201), "products[0].name", "at most 200"),
    "persona over 2000": (lambda d: d["audiences"][0].update(persona="p" * 2001), "audiences[0].persona", "at most 2000"),
    "zero-width space in a name": (lambda d: d["products"][0].update(name=f"Cold{ZWSP}Brew"), "products[0].name", "U+200B"),
    "bidi override in a persona": (lambda d: d["audiences"][0].update(persona=f"Parents {RLO}kids"),
                                   "audiences[0].persona", "U+202E"),
    "control character in a banned term": (lambda d: d["brand"].update(banned_terms=["che\x07ap"]),
                                           "brand.banned_terms[0]", "U+0007"),
    "nested far too deep": (lambda d: d["products"][0].update(benefits=_nested(30)), "products[0].benefits", "nested"),
    "a folder that is not a model": (lambda d: d.update(models={"text": "examples"}), "models.text",
                                     "not a saved text model (no config.json)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_spec_is_one_line_exit_2_and_writes_nothing(case, tmp_path, home, default_models):
    change, field, hint = BAD[case]
    result = adgen("campaign", "run", _spec(tmp_path, change), check=False)
    message = result.stderr.strip()
    assert result.returncode == 2 and len(message.splitlines()) == 1, message
    assert field in message and hint in message, message
    assert not (home / "adgen.db").exists() and not (home / "storage").exists()


@pytest.mark.parametrize("content, hint", [
    ("campaign: caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 13)"),
    (("a: " + "[" * 5000 + "]" * 5000 + "\n").encode(), "nested too deeply"),
])
def test_spec_files_that_are_not_utf8_or_nest_5000_deep(tmp_path, home, content, hint):
    path = tmp_path / "spec.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError, match=re.escape(hint)):
        load_spec(path)
    result = adgen("campaign", "run", str(path), check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and hint in result.stderr
    assert not (home / "adgen.db").exists()


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 12000 x 12000 px PNG of a few kilobytes: 144 megapixels once decoded."""
    path = tmp_path_factory.mktemp("bomb") / "logo.png"
    Image.new("1", (12000, 12000)).save(path, optimize=True)
    assert path.stat().st_size < 500_000
    return path


def test_a_decompression_bomb_logo_is_refused_everywhere(tmp_path, home, default_models, bomb):
    from ui.actions import _check_logo

    result = adgen("campaign", "run", _spec(tmp_path, lambda d: d["brand"].update(logo=str(bomb))), check=False)
    assert result.returncode == 2, result.stderr
    assert "brand.logo" in result.stderr and "12000x12000 px is over the limit of 40 megapixels" in result.stderr
    assert not (home / "adgen.db").exists()
    with pytest.raises(InputError, match="^Logo: 12000x12000 px is over the limit"):
        _check_logo(str(bomb))


def test_a_decompression_bomb_in_training_images_is_named(tmp_path, bomb):
    from finetune.data import DataError, read_image_data

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "big.png").write_bytes(bomb.read_bytes())
    with pytest.raises(DataError, match=r"big.png: 12000x12000 px is over the limit of 40 megapixels"):
        read_image_data(folder, None, 64)


def test_banned_terms_are_matched_after_normalisation_and_invisible_characters_flagged():
    headline = placement("meta_feed").fields["headline"]
    assert banned_terms_in(f"Che{ZWSP}ap cold brew", ["cheap"]) == ["cheap"]
    assert banned_terms_in("ｃｈｅａｐ cold brew", ["cheap"]) == ["cheap"]  # full-width letters (NFKC)
    assert banned_terms_in("STRASSE of coffee", ["straße"]) == ["straße"]  # case folding
    issues = check_text(f"Che{ZWSP}ap cold brew", headline, placement("meta_feed"), ["cheap"])
    assert "invisible or control character U+200B" in issues and "banned term 'cheap'" in issues


def test_generated_copy_loses_invisible_characters():
    from adgen.text import _first_line

    assert _first_line(f'Headline: "Smooth{ZWSP} cold {RLO}brew"') == "Smooth cold brew"


@pytest.fixture(scope="module")
def two_brands(tmp_path_factory, default_models):
    """One home with a reviewed campaign each for 'Northwind Coffee' and 'Northwind Tea'."""
    root = tmp_path_factory.mktemp("brands")
    env = {"ADGEN_HOME": str(root / "home"), "ADGEN_MODELS": str(MODELS)}  # module scope: set both here
    ids = {}
    for brand in ("Northwind Coffee", "Northwind Tea"):
        def change(d, brand=brand):
            d["brand"].update(name=brand)
            d.update(placements=["google_rsa"], variants=2, audiences=d["audiences"][:1], products=d["products"][:1])
        info = json.loads(adgen("campaign", "run", _spec(root, change, f"{brand}.yaml"), "--json", env=env).stdout)
        ids[brand] = info["campaign_id"]
        assert int(adgen("review", "approve", ids[brand], "--all", env=env).stdout.split()[-1]) >= 1
    return env, ids


def test_from_reviews_takes_exactly_one_brand(two_brands, monkeypatch):
    from adgen.context import Context
    from adgen.settings import get_settings
    from finetune.data import DataError
    from finetune.reviews import review_rows

    env, ids = two_brands
    monkeypatch.setenv("ADGEN_HOME", env["ADGEN_HOME"])
    ctx = Context(get_settings())
    rows = review_rows(ctx, "northwind-tea")
    assert rows and {r["campaign"] for r in rows} == {ids["Northwind Tea"]}
    with pytest.raises(DataError, match=r"--brand 'northwind' names 2 brands \(Northwind Coffee, Northwind Tea\); "
                                        r"use the full slug of one: 'northwind-coffee', 'northwind-tea'"):
        review_rows(ctx, "northwind")
    result = adgen("finetune", "text", "--brand", "northwind", "--from-reviews", check=False, env=env)
    assert result.returncode == 2 and "names 2 brands" in result.stderr, result.stderr
    # a brand whose slug is exactly 'northwind' is the one it names, and it has no reviews yet
    adgen("users", "add", "dana", "--brand", "Northwind", env={**env, "ADGEN_PASSWORD": "dana-password-1"})
    with pytest.raises(DataError, match="no approved creatives in any campaign of brand 'northwind'"):
        review_rows(ctx, "northwind")


def test_edits_are_capped_and_refuse_invisible_characters(two_brands):
    env, ids = two_brands
    creative = f"{ids['Northwind Tea']}-000-0"
    long = adgen("review", "edit", creative, "--field", "headline", "--text", "a" * 61, check=False, env=env)
    assert long.returncode == 2 and "headline: 61 characters; an edit may have at most 60" in long.stderr, long.stderr
    hidden = adgen("review", "edit", creative, "--field", "headline", "--text", f"Che{ZWSP}ap tea", check=False, env=env)
    assert hidden.returncode == 2 and "invisible or control character (U+200B)" in hidden.stderr, hidden.stderr
    joined = adgen("review", "edit", creative, "--field", "headline", "--text", "Che\u200dap tea", check=False, env=env)
    assert joined.returncode == 2 and "invisible or control character (U+200D)" in joined.stderr, joined.stderr
    show = json.loads(adgen("creative", "show", creative, env=env).stdout)
    assert show["status"] == "approved" and ZWSP not in json.dumps(show["copy"], ensure_ascii=False)


@pytest.mark.parametrize("row, hint", [
    ({"product": "Cold Brew", "audience": "parents", "placement": "meta_feed", "copy": {"headline": 5}},
     "copy.headline: must be a text or a list of texts; got int"),
    ({"product": "Cold Brew", "audience": "parents", "placement": ["meta_feed"], "copy": {"headline": "x"}},
     "placement: must be a placement name (a string)"),
])
def test_training_rows_of_the_wrong_json_type_name_the_line(tmp_path, home, default_models, row, hint):
    from finetune.data import DataError, read_text_data

    data = tmp_path / "copy.jsonl"
    data.write_text('{"text": "Fine words"}\n' + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=f"copy.jsonl:2: {hint}".replace("(", r"\(").replace(")", r"\)")):
        read_text_data(data, "northwind")
    assert f"copy.jsonl:2: {hint}" in read_text_data(data, "northwind", skip_bad=True).skipped[0]
    result = adgen("finetune", "text", "--brand", "northwind", "--data", str(data), check=False)
    assert result.returncode == 2 and "copy.jsonl:2:" in result.stderr, result.stderr


def test_finetune_checks_the_brand_before_training(tmp_path, home, default_models):
    data = tmp_path / "copy.jsonl"
    data.write_text("".join(json.dumps({"text": f"Line {i} of copy"}) + "\n" for i in range(16)))
    result = adgen("finetune", "text", "--brand", "Northwind Coffee", "--data", str(data), check=False)
    assert result.returncode == 2 and "--brand 'Northwind Coffee' is not a slug" in result.stderr, result.stderr
    assert not (home / "finetune").exists() and not (home / "storage").exists()


def test_a_brand_with_too_many_unfinished_campaigns_is_refused_and_nothing_is_written(tmp_path, home, default_models):
    spec = _spec(tmp_path, lambda d: d.update(placements=["google_rsa"], audiences=d["audiences"][:1], variants=1))
    from adgen.context import Context
    from adgen.jobs import create_campaign
    from adgen.settings import Settings

    env = {"ADGEN_MAX_RUNNING_CAMPAIGNS": "1", "ADGEN_MODELS": str(MODELS)}
    detached = create_campaign(load_spec(spec), Context(Settings()))  # recorded, not run yet: unfinished
    refused = adgen("campaign", "run", spec, "--json", env=env, check=False)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "limit of 1 unfinished campaigns (ADGEN_MAX_RUNNING_CAMPAIGNS)" in refused.stderr
    assert "brand.name" in refused.stderr and "Northwind Coffee" in refused.stderr
    assert adgen("campaign", "list").stdout.count("spring-launch") == 1
    assert "cancelled" in adgen("campaign", "cancel", detached).stdout
    assert json.loads(adgen("campaign", "run", spec, "--json", env=env).stdout)["jobs"] == {"done": 1}
