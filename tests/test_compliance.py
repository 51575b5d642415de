"""Platform limits and editorial rules, as a reviewer would check them by hand."""

import pytest

from adgen.compliance import (
    banned_terms_in,
    check_copy,
    display_width,
    invisible_chars,
    lint_text,
    near_duplicate,
    shorten,
    strip_invisible,
)
from adgen.platforms import placement, registry

GOOGLE = registry().placements["google_rsa"].rules


def test_double_width_characters_count_two():
    assert display_width("Cold brew") == 9
    assert display_width("コールドブリュー") == 16  # 8 katakana, counted 2 each as Google counts them
    assert display_width("咖啡 to go") == 10


def test_x_counts_every_url_as_23():
    assert display_width("Try it https://example.com/a/very/long/path/indeed", url_length=23) == len("Try it ") + 23


def test_google_editorial_rules():
    assert lint_text("Fresh coffee, fast", GOOGLE, headline=True) == []
    assert lint_text("Fresh coffee!", GOOGLE, headline=True) == ["'!' is not allowed in a headline"]
    assert lint_text("Fresh coffee!", GOOGLE, headline=False) == []
    assert any("repeated" in i for i in lint_text("Really??", GOOGLE, headline=False))
    assert any("capitals" in i for i in lint_text("FREE delivery today", GOOGLE, headline=False))
    assert lint_text("Made in the USA", GOOGLE, headline=False) == []
    assert any("symbol" in i for i in lint_text("Fresh fl@wers", GOOGLE, headline=False))
    assert any("symbol" in i for i in lint_text("Coffee 4 sale", GOOGLE, headline=False))
    assert any("emoji" in i for i in lint_text("Good morning ☕", GOOGLE, headline=False))
    assert any("bullets" in i for i in lint_text("• low acid", GOOGLE, headline=False))
    assert lint_text("16 cups per bottle", GOOGLE, headline=False) == []


def test_at_most_one_exclamation_per_google_ad():
    p = placement("google_rsa")
    copy = {"headline": ["Cold brew", "Smooth taste", "Ready fast"],
            "description": ["Try it today!", "Order now!"], "path1": ["Shop"], "path2": ["Coffee"]}
    result = check_copy(copy, p, [])
    assert not result["ok"] and any("at most 1" in i for i in result["issues"])


def test_banned_terms_match_word_forms_not_substrings():
    assert banned_terms_in("Cheaper than ever", ["cheap"]) == ["cheap"]
    assert banned_terms_in("Guaranteed fresh", ["guarantee"]) == ["guarantee"]
    assert banned_terms_in("A cheapskate's dream", ["cheap"]) == []


def test_shorten_cuts_only_at_word_boundaries():
    text = "Cold Brew Concentrate for the whole family, ready in seconds."
    for limit in range(5, len(text)):
        short = shorten(text, limit)
        if short is None:
            continue
        assert display_width(short) <= limit
        words = short.rstrip(".").split()
        assert words == text.split()[: len(words)] or words[:-1] == text.split()[: len(words) - 1]
        assert all(w.rstrip(",.") in text for w in words)
        assert not short.rstrip(".").endswith(("for", "the", ","))
    assert shorten("Supercalifragilistic", 5) is None


def test_near_duplicates():
    assert near_duplicate("Cold brew, ready fast", "Cold brew ready fast.")
    assert not near_duplicate("Cold brew, ready fast", "Coffee for late nights")


def test_check_copy_counts_limits_and_duplicates():
    p = placement("google_rsa")
    copy = {"headline": ["Cold brew made easy", "Cold brew made easy", "x" * 31],
            "description": ["One description only."], "path1": ["Shop"], "path2": []}
    result = check_copy(copy, p, [])
    issues = " ".join(result["issues"])
    assert "description: 1 texts, needs 2..4" in issues
    assert "headline[1]: repeats another text" in issues
    assert "headline[2]: 31 characters, limit 30" in issues


def test_pmax_needs_one_short_headline():
    p = placement("google_pmax")
    copy = {"headline": ["Smooth cold brew at home", "Cold brew for late nights", "Brewed for busy mornings"],
            "long_headline": ["Cold brew that fits your day"], "description": ["A smooth cup in seconds.", "Sixteen cups per bottle, low in acid."],
            "business_name": ["Northwind Coffee"]}
    result = check_copy(copy, p, [])
    assert any("at least one must fit 15" in i for i in result["issues"])


def test_display_paths_have_no_spaces():
    p = placement("google_rsa")
    copy = {"headline": ["Cold brew at home", "Smooth and easy", "Ready in seconds"],
            "description": ["A smooth cup in seconds.", "Sixteen cups per bottle."], "path1": ["Cold Brew"], "path2": ["Shop-Now"]}
    result = check_copy(copy, p, [])
    assert result["issues"] == ["path1[0]: only letters, digits and hyphens, no spaces"]


ZWJ, ZWNJ = "\u200d", "\u200c"


@pytest.mark.parametrize("text", [
    f"सुरक्{ZWJ}षित सफ़र",  # Hindi: क्‍ in its half form
    f"هر روز راحت{ZWNJ}تر رکاب بزنید",  # Persian: راحت‌تر, one word written in two parts
    f"ക്ഷ{ZWJ}ണം",  # Malayalam chillu and conjunct forms
    f"ক্{ZWJ}ষ",  # Bengali
    f"Coders 👩{ZWJ}💻",  # an emoji sequence
])
def test_joiners_inside_words_of_scripts_that_spell_with_them_are_text(text):
    assert invisible_chars(text) == [] and strip_invisible(text) == text
    assert lint_text(text, GOOGLE, headline=True) == (["emoji"] if "💻" in text else [])  # a joiner is no emoji


@pytest.mark.parametrize("text, hidden", [
    (f"Che{ZWJ}ap cold brew", "U+200D"), (f"Che{ZWNJ}ap cold brew", "U+200C"),  # inside a Latin word
    (f"सस्ता {ZWJ}है", "U+200D"), (f"{ZWNJ}می", "U+200C"),  # at a word's edge
    (f"क{ZWJ}م", "U+200D"),  # between two scripts
    ("Cold\u200bbrew", "U+200B"), ("\u202ewerb dloc", "U+202E"), ("\u2067cold\u2069", "U+2067"),
    ("\ufeffcold", "U+FEFF"), ("co\u00adld", "U+00AD"), ("cold\x07", "U+0007"),
])
def test_other_invisible_characters_and_stray_joiners_are_refused(text, hidden):
    assert invisible_chars(text)[:1] == [hidden]
    assert hidden not in {f"U+{ord(ch):04X}" for ch in strip_invisible(text)}


def test_banned_terms_are_found_in_every_script_and_through_joiners():
    assert banned_terms_in(f"Che{ZWJ}ap cold brew", ["cheap"]) == ["cheap"]
    assert banned_terms_in(f"Che{ZWNJ}apest cold brew", ["cheap"]) == ["cheap"]
    assert banned_terms_in("यह साइकिल सस्ता है", ["सस्ता"]) == ["सस्ता"]  # ends on a vowel sign
    assert banned_terms_in("सस्ताई", ["सस्ता"]) == []  # a longer word
    assert banned_terms_in(f"सुरक्{ZWJ}षित सफ़र", ["सुरक्षित"]) == ["सुरक्षित"]
    assert banned_terms_in(f"قیمت ارزان{ZWNJ}تر", ["ارزان\u200cتر"]) == ["ارزان\u200cتر"]
    assert banned_terms_in("とても安い自転車", ["安い"]) == ["安い"]  # no spaces: ICU's word boundaries
    assert banned_terms_in("ถูกมากจักรยาน", ["ถูก"]) == ["ถูก"]
    assert banned_terms_in("安全な自転車", ["安い"]) == []
