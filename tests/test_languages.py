"""Audience languages: tags are validated BCP 47, the default model refuses what it cannot write,
copy in the wrong language is caught, CTA labels exist (and can be drawn) in every supported
language, and the editorial checks read every script."""

import pytest

from adgen.compliance import check_copy, lint_text
from adgen.languages import (
    LanguageError,
    check_text_model,
    cta_label,
    direction,
    language_problem,
    language_tag,
    supported_languages,
)
from adgen.platforms import placement, registry
from adgen.scripts import layout_line

GOOGLE = registry().placements["google_rsa"].rules
NAMES = ["Trail E-Bike", "Kaze Cycles"]


def test_language_tags_are_bcp47_in_standard_form():
    assert [language_tag(t) for t in ("en", "EN", "ja", "zh-Hant", "pt-BR", "iw", "ar-EG")] == [
        "en", "en", "ja", "zh-Hant", "pt-BR", "he", "ar-EG"]
    for bad in ("english", "xx", "", "und", "zz-ZZ", "ja jp"):
        with pytest.raises(LanguageError, match="is not a BCP 47 language tag; use e.g. en, ja"):
            language_tag(bad)


def test_direction_follows_the_script_of_the_language():
    assert [direction(t) for t in ("ar", "he", "fa", "ur", "en", "ja", "hi")] == ["rtl"] * 4 + ["ltr"] * 3


def test_default_model_refuses_languages_other_than_english():
    with pytest.raises(LanguageError) as refused:
        check_text_model("default", "ja", "audiences[1].language")
    message = str(refused.value)
    assert message.startswith("audiences[1].language: 'ja': the default model writes English only")
    assert "models.text" in message and "adgen review edit" in message and "\n" not in message
    check_text_model("default", "en-GB")  # English in any region is fine
    check_text_model("/models/qwen2.5-instruct", "ja")  # a model folder may write any language


def test_english_copy_in_a_japanese_cell_is_caught():
    assert language_problem("Ride further on the Trail E-Bike", "ja", NAMES) == (
        "written in Latin script, not in Japanese")
    assert language_problem("Trail E-Bikeで、街をもっと自由に。", "ja", NAMES) is None  # the name is kept as is
    assert language_problem("Buy the Trail E-Bike today", "ar", NAMES) == "written in Latin script, not in Arabic"
    assert language_problem("اكتشف دراجة Trail E-Bike الكهربائية اليوم", "ar", NAMES) is None
    assert language_problem("शहर के लिए इलेक्ट्रिक साइकिल", "hi", NAMES) is None
    assert language_problem("도시를 위한 전기 자전거", "ja", NAMES) == "written in Hangul script, not in Japanese"


def test_latin_languages_are_told_apart_only_when_sure():
    assert language_problem("Ride further and faster on the Trail E-Bike every day", "de", NAMES) == (
        "reads as English, not German")
    assert language_problem("Fahr weiter und schneller mit dem Trail E-Bike", "en", NAMES) == (
        "reads as German, not English")
    assert language_problem("Fahr weiter und schneller mit dem Trail E-Bike", "de", NAMES) is None
    assert language_problem("Shop now", "de", NAMES) is None  # too short to tell


def test_every_cta_label_is_translated_and_drawable():
    labels = {label for place in registry().placements.values() for label in place.cta_choices}
    assert labels
    for language in supported_languages():
        for label in labels:
            drawn = cta_label(label, language)
            assert drawn and (language == "en") == (drawn == label), (language, label)
            assert layout_line(drawn, 24, language=language).width > 0
    assert cta_label("Shop Now", "pt-BR") == "Comprar agora" and cta_label("Shop Now", "zh-TW") == "立即購買"
    with pytest.raises(LanguageError, match="no call-to-action labels in 'sw'"):
        cta_label("Shop Now", "sw")


def test_editorial_rules_read_full_width_punctuation_and_caps_only_in_cased_scripts():
    assert lint_text("週末は山へ！", GOOGLE, headline=True) == ["'!' is not allowed in a headline"]
    assert any("repeated" in i for i in lint_text("本当？？", GOOGLE, headline=False))
    assert any("repeated" in i for i in lint_text("いいね。。", GOOGLE, headline=False))
    assert lint_text("城市通勤，从此轻松。", GOOGLE, headline=True) == []
    assert lint_text("اكتشف دراجة الكهربائية اليوم", GOOGLE, headline=True) == []
    assert lint_text("शहर के लिए इलेक्ट्रिक साइकिल", GOOGLE, headline=True) == []
    assert lint_text("СКИДКА на кофе", GOOGLE, headline=False) == ["gimmicky capitals 'СКИДКА'"]
    assert lint_text("ΠΡΟΣΦΟΡΑ σήμερα", GOOGLE, headline=False) == ["gimmicky capitals 'ΠΡΟΣΦΟΡΑ'"]
    copy = {"headline": ["山へ行こう", "街を走ろう", "今すぐ試そう"],
            "description": ["週末は山へ！", "今日から！"], "path1": ["bike"], "path2": ["city"]}
    assert any("2 '!' in the ad" in i for i in check_copy(copy, placement("google_rsa"), [])["issues"])
