"""The example campaign end to end through the real command line and the real tiny models:
run, show, report, approve, export, edit and re-render, as a user would."""

import csv
import json
import re

import pytest
from PIL import Image

from adgen.compliance import check_copy
from adgen.platforms import placement
from tests.conftest import EXAMPLE, MODELS, adgen


@pytest.fixture(scope="module")
def campaign_home(tmp_path_factory, default_models) -> str:
    """One run of the example campaign shared by this module's tests (each test touches its own
    creatives), in a home of its own."""
    return str(tmp_path_factory.mktemp("campaign-home"))


@pytest.fixture(scope="module")
def _campaign_id(campaign_home) -> str:
    # ADGEN_MODELS given here: a module fixture runs before the per-test one that sets it, and without
    # it the run would train the default models again inside this home
    result = adgen("campaign", "run", str(EXAMPLE), "--json", env={"ADGEN_HOME": campaign_home, "ADGEN_MODELS": str(MODELS)})
    info = json.loads(result.stdout)
    assert info["jobs"] == {"done": 10}
    return info["campaign_id"]


@pytest.fixture
def campaign(_campaign_id, campaign_home, monkeypatch) -> str:
    monkeypatch.setenv("ADGEN_HOME", campaign_home)
    return _campaign_id


def _creatives(campaign_id, tmp_path) -> list[dict]:
    bundle = tmp_path / "preview"
    adgen("campaign", "export", campaign_id, "--out", str(bundle), "--status", "any")
    return json.loads((bundle / "creatives.json").read_text()), bundle


def test_example_campaign_produces_the_full_matrix_of_compliant_creatives(campaign, tmp_path):
    entries, bundle = _creatives(campaign, tmp_path)
    assert len(entries) == 2 * 5 * 3
    cells = {(e["audience"], e["placement"]) for e in entries}
    assert len(cells) == 10
    for e in entries:
        p = placement(e["placement"])
        result = check_copy(e["copy"], p, ["cheap", "guarantee"], "Northwind Coffee")
        assert result["ok"], (e["id"], result["issues"])
        assert e["ai_generated"] is True and e["status"] == "pending"
        if p.image:
            with Image.open(bundle / e["image"]) as im:
                assert im.size == (p.image.width, p.image.height) == (e["width"], e["height"])
        else:
            assert e["image"] is None
        for key in ("seed", "prompt", "text_model", "image_model", "text_adapter", "image_adapter"):
            assert key in e["lineage"]
        assert e["lineage"]["text_model"]["hash"]


def test_default_copy_is_readable_and_names_the_product(campaign, tmp_path):
    entries, _ = _creatives(campaign, tmp_path)
    import yaml

    from adgen.defaults import load_corpus

    corpus = load_corpus()
    spec = yaml.safe_load(EXAMPLE.read_text())
    vocabulary = set(re.findall(r"[a-z']+", json.dumps(corpus).lower() + json.dumps(spec).lower()))
    texts = [t for e in entries for name, ts in e["copy"].items() if name not in ("cta", "business_name") for t in ts]
    words = [w for t in texts for w in re.findall(r"[a-z']+", t.lower())]
    unknown = [w for w in words if w not in vocabulary]
    # a 2M-parameter model samples an odd non-word now and then; token soup would fail this at once
    assert words and len(unknown) <= 0.02 * len(words), unknown
    naming = sum("Cold Brew Concentrate" in t for t in texts)
    assert naming >= len(texts) // 5, f"only {naming} of {len(texts)} texts name the product"
    # audience-targeted: the two audiences do not get the same copy
    by_audience = {a: {t for e in entries if e["audience"] == a for t in e["copy"].get("primary_text", [])} for a in ("busy-parents", "night-owl-students")}
    assert by_audience["busy-parents"] != by_audience["night-owl-students"]


def test_show_report_approve_export(campaign, tmp_path):
    shown = adgen("campaign", "show", campaign).stdout
    assert "30" in shown and "compliance" in shown
    listed = adgen("campaign", "list").stdout
    assert campaign in listed

    report = tmp_path / "report.html"
    adgen("campaign", "report", campaign, "--out", str(report))
    html = report.read_text()
    assert html.count("class='card'") == 30
    # every image creative at its primary size and each other size of its placement (google_rsa is
    # text only: a search preview instead)
    others = sum(2 * 3 * (len(placement(p).sizes) - 1) for p in ("meta_feed", "meta_story", "linkedin_single_image",
                                                                  "x_promoted"))
    assert others > 0
    assert html.count("<img class='other' src='data:image/jpeg;base64,") == others
    assert html.count("data:image/jpeg;base64,") == 24 + others
    assert "src='http" not in html and 'src="http' not in html  # self-contained

    empty = adgen("campaign", "export", campaign, "--out", str(tmp_path / "none"), check=False)
    assert empty.returncode == 2 and "approve" in empty.stderr
    assert not (tmp_path / "none").exists()

    entries, _ = _creatives(campaign, tmp_path)
    chosen = [e["id"] for e in entries[:4]]
    adgen("review", "approve", campaign, *sum((["--creative", c] for c in chosen), []), "--reviewer", "alice")
    adgen("review", "reject", campaign, "--creative", entries[4]["id"], "--reason", "off brand", "--reviewer", "bob")
    out = tmp_path / "export"
    adgen("campaign", "export", campaign, "--out", str(out))
    exported = json.loads((out / "creatives.json").read_text())
    assert [e["id"] for e in exported] == chosen
    assert all(e["status"] == "approved" and e["lineage"]["reviewer"] == "alice" for e in exported)
    with (out / "creatives.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == chosen and all(r["ai_generated"] == "true" for r in rows)
    for e in exported:
        if e["image"]:
            assert (out / e["image"]).is_file()

    again = adgen("campaign", "export", campaign, "--out", str(out), check=False)
    assert again.returncode == 2 and "not an empty folder" in again.stderr


def test_edit_rerenders_and_rechecks_and_needs_new_approval(campaign, tmp_path):
    entries, bundle = _creatives(campaign, tmp_path)
    feed = next(e for e in entries if e["placement"] == "meta_feed")
    adgen("review", "approve", campaign, "--creative", feed["id"])
    bad = adgen("review", "edit", feed["id"], "--field", "headline", "--text", "CHEAP cold brew for everyone today")
    assert "fails checks" in bad.stdout and "banned term 'cheap'" in bad.stdout
    refused = adgen("review", "approve", campaign, "--creative", feed["id"], check=False)
    assert refused.returncode == 2 and feed["id"] in refused.stderr
    adgen("review", "edit", feed["id"], "--field", "headline", "--text", "Cold brew, your way")
    entries2, bundle2 = _creatives(campaign, tmp_path / "2")
    after = next(e for e in entries2 if e["id"] == feed["id"])
    assert after["copy"]["headline"] == ["Cold brew, your way"] and after["status"] == "pending"
    assert (bundle / feed["image"]).read_bytes() != (bundle2 / after["image"]).read_bytes()
    edits = after["lineage"]["edits"]
    assert [e["after"]["headline"] for e in edits] == [["CHEAP cold brew for everyone today"], ["Cold brew, your way"]]
    assert edits[0]["before"]["headline"] == feed["copy"]["headline"]


def test_rerender_from_lineage_gives_the_same_bytes(campaign, tmp_path):
    entries, _ = _creatives(campaign, tmp_path)
    story = next(e for e in entries if e["placement"] == "meta_story")
    out = tmp_path / "again.png"
    result = adgen("creative", "rerender", story["id"], "--out", str(out))
    assert "identical" in result.stdout
