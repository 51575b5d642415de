"""Creatives in the audience's language: right-to-left layouts for Arabic and Hebrew (on the layout
plan, as tests/test_render.py checks boxes), the call to action drawn in the audience's language,
every glyph of a CJK product name drawn from a font that has it, the default model's language
refusal, and review edits in Japanese, Arabic, Hindi and Persian (with the joiners their spelling
needs) through the real command line."""

import json

import pytest
import yaml
from PIL import Image, ImageChops

from adgen import records
from adgen.compliance import check_text
from adgen.context import Context
from adgen.fonts import charmap
from adgen.layout import plan_layout
from adgen.platforms import placement
from adgen.render import render_creative
from adgen.report import render_report
from adgen.settings import Settings
from adgen.spec import SpecError, load_spec, parse_spec
from adgen.typeset import Setting
from tests.conftest import MODELS, REPO, adgen

COLORS = ["#3B2A20", "#F2E8DC", "#C8553D"]
ARABIC = "دراجة 風 Trail الكهربائية لكل يوم"
HEBREW = "האופניים החשמליים 風 Trail לכל יום"


def _plan(width, height, headline, language, **extra):
    return plan_layout(width=width, height=height, headline=headline, cta="Shop Now", colors=COLORS,
                       brand_name="Trail", language=language, **extra)


@pytest.mark.parametrize("headline, language", [(ARABIC, "ar"), (HEBREW, "he")])
@pytest.mark.parametrize("width, height", [(1200, 628), (1080, 1080), (728, 90)])
def test_right_to_left_creatives_mirror_text_button_and_logo(headline, language, width, height):
    rtl = _plan(width, height, headline, language)
    ltr = _plan(width, height, headline, "en")
    assert rtl.rtl and not ltr.rtl
    for name in ("photo", "band", "headline", "cta", "logo"):
        a, b = getattr(rtl, name), getattr(ltr, name)
        # Each box starts where the left-to-right one does, seen in a mirror: from the right edge.
        assert abs(a.right - (width - b.x)) <= 2, name  # text set right to left may differ by a pixel
    if rtl.arrangement == "split":  # the text panel and the logo lead from the right, the photo is on the left
        assert rtl.headline.x > width / 2 and rtl.photo.x == 0 and rtl.logo.x > width / 2
    if rtl.arrangement == "strip":  # one row read from the right: photo, logo, headline, then the button
        assert rtl.cta.right < rtl.headline.x < rtl.headline.right < rtl.logo.x < rtl.photo.x == width - rtl.photo.width
    if rtl.arrangement != "strip":  # headline and button share their right edge (the text's start)
        assert rtl.cta.right == rtl.headline.right


def test_right_to_left_lines_are_drawn_right_aligned_in_their_box():
    width, height = 1200, 628
    layout = _plan(width, height, ARABIC, "ar")
    image = render_creative(Image.new("RGB", (64, 64), (90, 120, 150)), width=width, height=height,
                            headline=ARABIC, cta="Shop Now", colors=COLORS, brand_name="Trail", language="ar")
    box = layout.headline
    band = Image.new("RGB", image.size, layout.palette.band)
    ink = ImageChops.difference(image, band).crop((box.x, box.y, box.right, box.bottom)).convert("L").point(
        lambda v: 255 if v > 60 else 0)
    for index in range(len(layout.headline_lines)):  # every line's ink ends at the box's right edge
        top = index * round(1.12 * layout.headline_size)
        row = ink.crop((0, top, box.width, min(box.height, top + layout.headline_size)))
        left, _, right, _ = row.getbbox()
        assert box.width - right <= 0.15 * layout.headline_size and box.width - right <= left + 1  # side bearings aside


def test_button_shows_the_call_to_action_in_the_audience_language():
    from adgen.pipeline import drawn_cta

    assert drawn_cta("Shop Now", "ja") != "Shop Now" and drawn_cta("Shop Now", "en") == "Shop Now"
    layout = _plan(1080, 1080, "通勤が、もっと自由に。", "ja")
    assert layout.cta_lines == ("Shop Now",)  # plan_layout draws what it is given; the pipeline translates
    translated = plan_layout(width=1080, height=1080, headline="通勤が、もっと自由に。", cta=drawn_cta("Shop Now", "ja"),
                             colors=COLORS, language="ja")
    assert "".join(translated.cta_lines) == drawn_cta("Shop Now", "ja")


@pytest.mark.parametrize("headline, language", [
    ("風 Trail E-Bike で、通勤をもっと自由に", "ja"), ("風 Trail E-Bike: ride every day", "en"),
    ("風 Trail E-Bike से रोज़ सफ़र करें", "hi"), (ARABIC, "ar"),
])
def test_cjk_product_name_is_drawn_with_a_font_that_has_every_glyph(headline, language):
    layout = _plan(1080, 1080, headline, language)
    setting = Setting(language)
    drawn = [setting.line(line, layout.headline_size) for line in layout.headline_lines]
    assert "風" in "".join(line.text for line in drawn)
    for line in drawn:
        for piece in line.pieces:
            missing = [ch for ch in piece.text if not ch.isspace() and ord(ch) not in charmap(piece.face)]
            assert not missing, (piece.face.name, missing)  # no .notdef box anywhere


def test_language_check_catches_english_copy_in_a_japanese_cell():
    headline = placement("meta_feed").fields["headline"]
    english = check_text("Ride to work faster with the 風 Trail E-Bike", headline, placement("meta_feed"), [],
                         "Trail", language="ja", keep=("風 Trail E-Bike",))
    assert any("not in Japanese" in issue and "limit" not in issue for issue in english)
    japanese = check_text("風 Trail E-Bike で楽に通勤", headline, placement("meta_feed"), [], "Trail",
                          language="ja", keep=("風 Trail E-Bike",))
    assert japanese == []


SPEC = {
    "campaign": "trail-four-languages",
    "brand": {"name": "Trail", "colors": COLORS},
    "products": [{"name": "風 Trail E-Bike", "description": "A light electric bike for the city.",
                  "benefits": ["light frame", "long range"], "url": "https://example.com/trail-e-bike"}],
    "audiences": [{"name": "commuters", "persona": "City commuters who ride to work."}],
    "placements": ["meta_feed"],
    "variants": 1,
}


def test_default_model_refuses_a_non_english_audience_and_writes_nothing(tmp_path):
    spec = {**SPEC, "audiences": [*SPEC["audiences"], {"name": "tokyo", "persona": "Commuters in Tokyo.", "language": "ja"}]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    home = tmp_path / "home"
    result = adgen("campaign", "run", str(path), check=False, env={"ADGEN_HOME": str(home), "ADGEN_MODELS": str(MODELS)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "audiences[1].language" in lines[0] and "'ja'" in lines[0] and "Qwen" in lines[0]
    written = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
    assert not any("campaigns" in p.parts for p in written)
    if (home / "adgen.db").exists():
        with Context(Settings(home=home)).db() as s:
            assert s.query(records.Campaign).count() == 0


EDITS = {
    "ja": {"headline": "風 Trail E-Bike で楽に通勤", "primary_text": "風 Trail E-Bike なら、坂道も向かい風も軽やか。毎日の通勤がもっと楽しくなります。",
           "description": "軽くて長く走れる電動自転車"},
    "ar": {"headline": "風 Trail E-Bike لكل يوم", "primary_text": "مع 風 Trail E-Bike يصبح الطريق إلى العمل أسهل وأخف كل صباح.",
           "description": "دراجة كهربائية خفيفة"},
    "hi": {"headline": "सुरक्\u200dषित सफ़र, हर दिन",  # ZERO WIDTH JOINER: क्‍ in its half form
           "primary_text": "風 Trail E-Bike के साथ हर सुबह दफ़्तर का सफ़र आसान और हल्का।",
           "description": "हल्की इलेक्ट्रिक साइकिल"},
    "fa": {"headline": "هر روز راحت\u200cتر رکاب بزنید",  # with a ZERO WIDTH NON-JOINER: راحت‌تر
           "primary_text": "با 風 Trail E-Bike مسیر هر صبح تا محل کار آسان\u200cتر و سبک\u200cتر می\u200cشود.",
           "description": "دوچرخه\u200cی برقی سبک"},
}


def test_review_edit_in_japanese_arabic_hindi_and_persian_renders_and_passes_checks(tmp_path):
    spec = {**SPEC, "copy_by": "edits",
            "audiences": [{"name": lang, "persona": "City commuters.", "language": lang} for lang in EDITS]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True))
    home = tmp_path / "home"
    env = {"ADGEN_HOME": str(home), "ADGEN_MODELS": str(MODELS)}
    campaign = json.loads(adgen("campaign", "run", str(path), "--json", env=env).stdout)["campaign_id"]
    bundle = tmp_path / "before"
    adgen("campaign", "export", campaign, "--out", str(bundle), "--status", "any", env=env)
    entries = json.loads((bundle / "creatives.json").read_text())
    for entry in entries:  # the default model's English drafts fail the language check until edited
        assert any(f"not in {name}" in issue for issue in entry["compliance"]["issues"]
                   for name in ("Japanese", "Arabic", "Hindi", "Persian")), entry["compliance"]
        for field, text in EDITS[entry["audience"]].items():
            result = adgen("review", "edit", entry["id"], "--field", field, "--text", text, env=env)
        assert "fails checks" not in result.stdout, result.stdout  # once every written field is in the language
    after = tmp_path / "after"
    adgen("campaign", "export", campaign, "--out", str(after), "--status", "any", env=env)
    edited = {e["audience"]: e for e in json.loads((after / "creatives.json").read_text())}
    for language, entry in edited.items():
        assert entry["copy"]["headline"] == [EDITS[language]["headline"]] and entry["compliance"]["ok"], entry["compliance"]
        assert entry["copy"]["cta"][0] in placement("meta_feed").cta_choices  # the export keeps the English value
        old = next(e for e in entries if e["id"] == entry["id"])
        assert (after / entry["image"]).read_bytes() != (bundle / old["image"]).read_bytes()
        with Image.open(after / entry["image"]) as image:
            assert image.size == (1080, 1080)
    for entry in edited.values():
        adgen("review", "approve", campaign, "--creative", entry["id"], env=env)
    approved = tmp_path / "approved"  # the export checks the approved copy again, in its language
    adgen("campaign", "export", campaign, "--out", str(approved), env=env)
    assert len(json.loads((approved / "creatives.json").read_text())) == len(EDITS)
    report = render_report(Context(Settings(home=home)), campaign)  # each audience's language, each text's direction
    for label in ("Japanese (ja)", "Arabic (ar)", "Hindi (hi)", "Persian (fa)"):
        assert label in report
    assert f"<span lang='fa' dir='auto'>{EDITS['fa']['headline']}</span>" in report


def test_brand_fonts_are_checked_on_load_and_drawn_first(tmp_path):
    import shutil

    from adgen.fonts import FONT_DIR

    own = tmp_path / "TrailArabic-Bold.ttf"
    shutil.copy(FONT_DIR / "NotoSansArabic-Bold.ttf", own)
    spec = parse_spec({**SPEC, "brand": {**SPEC["brand"], "fonts": ["TrailArabic-Bold.ttf"]}}, base_dir=tmp_path)
    assert spec.brand.fonts == [own.resolve()]
    layout = plan_layout(width=1080, height=1080, headline=ARABIC, cta="", colors=COLORS, language="ar",
                         brand_fonts=spec.brand.faces())
    faces = {p.face.path for line in layout.headline_lines for p in layout.setting.line(line, layout.headline_size).pieces
             if any("\u0600" <= ch <= "\u06ff" for ch in p.text)}
    assert faces == {own.resolve()}  # the brand's font draws every Arabic letter it has
    for fonts, message in ((["missing.ttf"], "brand.fonts[0]: file 'missing.ttf' does not exist"),
                           (["spec.yaml"], "brand.fonts: brand font")):
        (tmp_path / "spec.yaml").write_text("not a font")
        with pytest.raises(SpecError, match=message.replace("[", r"\[").replace(".", r"\.")):
            parse_spec({**SPEC, "brand": {**SPEC["brand"], "fonts": fonts}}, base_dir=tmp_path)


def test_the_multilingual_examples_copy_passes_every_check_in_its_language():
    """examples/multilingual.py writes examples/multilingual-copy.yaml over the default's drafts:
    every written field of every non-English cell is there and passes its checks in the audience's
    language, so the example's report shows Japanese, Arabic and Hindi creatives that pass."""
    spec = load_spec(REPO / "examples" / "multilingual.yaml")
    copy = yaml.safe_load((REPO / "examples" / "multilingual-copy.yaml").read_text(encoding="utf-8"))
    languages = {a.name: a.language for a in spec.audiences if a.language != "en"}
    assert {languages[a] for a in copy} == {"ja", "ar", "hi"} and set(copy) == set(languages)
    product = spec.products[0].name
    for audience, cells in copy.items():
        assert set(cells) == set(spec.placements)
        for name, texts in cells.items():
            place = placement(name)
            assert set(texts) == {n for n, f in place.fields.items() if f.written}, (audience, name)
            for field, text in texts.items():
                issues = check_text(text, place.fields[field], place, spec.brand.banned_terms, spec.brand.name,
                                    language=languages[audience], keep=(product,))
                assert issues == [], (audience, name, field, issues)
            assert _plan(1080, 1080, texts["headline"], languages[audience]).headline_lines  # drawable


def test_copy_in_the_wrong_language_is_written_again_then_dropped_never_accepted(default_models):
    """The tiny default writes English: for a Japanese audience every text fails the language check,
    is asked for again in each round, and is dropped at the end, never shortened or accepted."""
    import torch

    from adgen.text import MAX_ROUNDS, TextModel, write_copy

    spec = load_spec(REPO / "examples" / "multilingual.yaml")
    tokyo = next(a for a in spec.audiences if a.language == "ja")
    model = TextModel(str(default_models["text"]), torch.device("cpu"), torch.float32)
    calls = []
    complete = model.complete
    model.complete = lambda batch, **kw: calls.append(len(batch)) or complete(batch, **kw)
    place = placement("meta_feed")
    [copy] = write_copy(model, brand=spec.brand, product=spec.products[0], audience=tokyo, placement=place,
                        variants=1, seed=3)
    written = [n for n, f in place.fields.items() if f.written]
    assert len(calls) == MAX_ROUNDS and calls[-1] == calls[0] == sum(place.fields[n].generate for n in written)
    assert not any(copy.texts.get(n) for n in written)  # no English text was accepted for the Japanese cell
    assert {f["action"] for f in copy.fixes} == {"dropped"}
    assert all("not in Japanese" in f["reason"] for f in copy.fixes)


def test_a_spec_keeps_the_joiners_persian_and_hindi_spell_with_and_refuses_one_in_a_latin_word():
    persona = "دوچرخه\u200cسوارهای تهران که می\u200cخواهند زودتر برسند"  # Persian, with ZWNJ
    spec = parse_spec({**SPEC, "audiences": [{"name": "tehran", "persona": persona, "language": "fa"},
                                             {"name": "delhi", "persona": "सुरक्\u200dषित सफ़र", "language": "hi"}]})
    assert spec.audiences[0].persona == persona and "\u200d" in spec.audiences[1].persona
    with pytest.raises(SpecError, match=r"brand\.voice: holds an invisible or control character \(U\+200D\)"):
        parse_spec({**SPEC, "brand": {**SPEC["brand"], "voice": "Che\u200dap and cheerful"}})
