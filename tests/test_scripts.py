"""Every script is drawn with real glyphs: the font chosen for each character has it in its character
map (read independently with fontTools), right-to-left text runs right to left, CJK forms follow
the audience's language, and Latin lines are drawn exactly as creatives always were."""

from functools import lru_cache

import numpy as np
import pytest
from fontTools import subset
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from adgen.fonts import LATIN, FontError, brand_faces
from adgen.scripts import draw_line, layout_line, text_direction

SAMPLES = {
    "ja": "風 Trail E-Bikeで、街をもっと自由に。",
    "zh-Hans": "城市通勤，从此轻松：试骑 Trail E-Bike",
    "zh-Hant": "城市通勤，從此輕鬆：試騎 Trail E-Bike",
    "ko": "도시를 위한 전기 자전거, 지금 타보세요",
    "ar": "اكتشف دراجة Trail E-Bike الكهربائية اليوم",
    "fa": "با Trail E-Bike هر روز راحت\u200cتر رکاب بزنید",  # ZWNJ: راحت‌تر is one word in two parts
    "he": "גלו את Trail E-Bike החשמלית עוד היום",
    "hi": "शहर के लिए इलेक्ट्रिक साइकिल: क्षमता और सुरक्\u200dषित स्पीड",  # ZWJ: क्‍ in its half form
    "th": "จักรยานไฟฟ้าสำหรับเมือง ลองขี่วันนี้",
    "ru": "Электровелосипед для города",
    "el": "Ηλεκτρικό ποδήλατο για την πόλη",
    "en": "Ride further on the Trail E-Bike",
}


@lru_cache
def _cmap(face) -> set[int]:
    return set(TTFont(face.path, fontNumber=face.index).getBestCmap())


def _render(text, language, size=32, anchor="ls"):
    image = Image.new("L", (1400, 80), 0)
    x = {"ls": 10, "ms": 700, "rs": 1390}[anchor]
    line = draw_line(ImageDraw.Draw(image), (x, 56), text, size, fill=255, anchor=anchor, language=language)
    return np.asarray(image), line, x - {"ls": 0, "ms": line.width / 2, "rs": line.width}[anchor]


@pytest.mark.parametrize("language", list(SAMPLES))
def test_every_drawn_character_is_in_its_fonts_character_map(language):
    text = SAMPLES[language]
    pixels, line, left = _render(text, language)
    assert sorted("".join(p.text for p in line.pieces)) == sorted(text)  # every character drawn once
    for piece in line.pieces:
        missing = [ch for ch in piece.text if ord(ch) not in _cmap(piece.face)]
        assert not missing, f"{piece.face.name} has no glyph for {missing}"
        if piece.text.strip():  # the piece left ink where the layout put it
            columns = pixels[:, max(0, int(left + piece.x)) : int(left + piece.x + piece.width) + 1]
            assert (columns > 128).sum() > 20, piece


def test_each_script_gets_its_own_face():
    faces = {lang: {p.face.name for p in layout_line(text, 30, language=lang).pieces} for lang, text in SAMPLES.items()}
    assert faces["ja"] == {"Noto Sans CJK JP Bold", "DejaVu Sans Bold"}
    assert "Noto Sans CJK SC Bold" in faces["zh-Hans"] and "Noto Sans CJK TC Bold" in faces["zh-Hant"]
    assert faces["ko"] == {"Noto Sans CJK KR Bold"}
    assert "Noto Sans Arabic Bold" in faces["ar"] and "Noto Sans Hebrew Bold" in faces["he"]
    assert "Noto Sans Arabic Bold" in faces["fa"]
    assert faces["hi"] == {"Noto Sans Devanagari Bold"} and faces["th"] == {"Noto Sans Thai Bold"}
    assert faces["ru"] == faces["el"] == faces["en"] == {"DejaVu Sans Bold"}


def test_cjk_forms_follow_the_audience_language():
    # 直 is drawn differently in Japanese and Chinese; the product name's 風 in an English ad gets SC.
    forms = {lang: layout_line("直", 48, language=lang).pieces[0].face.name for lang in ("ja", "zh-CN", "zh-TW", "zh-HK", "ko")}
    assert forms == {"ja": "Noto Sans CJK JP Bold", "zh-CN": "Noto Sans CJK SC Bold", "zh-TW": "Noto Sans CJK TC Bold",
                     "zh-HK": "Noto Sans CJK HK Bold", "ko": "Noto Sans CJK KR Bold"}
    japanese, _, _ = _render("直", "ja", size=48)
    chinese, _, _ = _render("直", "zh-CN", size=48)
    assert (japanese != chinese).sum() > 50
    assert layout_line("風 Trail E-Bike", 30, language="en").pieces[0].face.name == "Noto Sans CJK SC Bold"


def test_arabic_and_hebrew_run_right_to_left_with_latin_names_left_to_right():
    assert text_direction(SAMPLES["ar"]) == text_direction(SAMPLES["he"]) == "rtl"
    assert text_direction("風 Trail") == text_direction("Trail اكتشف") == "ltr"
    line = layout_line(SAMPLES["ar"], 32, language="ar")
    assert line.direction == "rtl"
    first_word, name = "اكتشف", "Trail E-Bike"
    rightmost = max(line.pieces, key=lambda p: p.x)
    assert rightmost.rtl and rightmost.text.startswith(first_word)  # the first word is read first: at the right
    latin = next(p for p in line.pieces if name in p.text)
    assert not latin.rtl and 0 < latin.x < rightmost.x
    # An Arabic audience's line that opens with the Latin name still reads right to left.
    opening = layout_line("Trail E-Bike متوفرة الآن", 32, language="ar", direction="rtl")
    assert opening.direction == "rtl" and max(opening.pieces, key=lambda p: p.x).text.startswith("Trail")
    # Pixels agree: the first word's ink is right of the product name's.
    pixels, _, left = _render(SAMPLES["ar"], "ar")
    ink = np.nonzero((pixels > 128).any(axis=0))[0]
    assert ink.max() > left + latin.x + latin.width


def test_arabic_letters_join():
    # Joined (shaped) letters are narrower than the same letters set apart in their isolated forms.
    word = "الكهربائية"
    joined = layout_line(word, 40, language="ar").width
    isolated = sum(layout_line(ch, 40, language="ar").width for ch in word)
    assert joined < isolated * 0.9


def test_latin_lines_are_drawn_exactly_as_before():
    font = ImageFont.truetype(str(LATIN.path), 30, layout_engine=ImageFont.Layout.BASIC)
    text = SAMPLES["en"]
    assert layout_line(text, 30).width == font.getlength(text)
    for anchor, x in (("ls", 10), ("ms", 700)):
        before = Image.new("L", (1400, 80), 0)
        ImageDraw.Draw(before).text((x, 56), text, font=font, fill=255, anchor=anchor)
        after, _, _ = _render(text, "en", size=30, anchor=anchor)
        assert np.array_equal(np.asarray(before), after)


def test_brand_font_comes_first_and_other_characters_fall_back(tmp_path):
    only_abc = tmp_path / "brand.ttf"
    options = subset.Options()
    font = TTFont(LATIN.path)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="ABC")
    subsetter.subset(font)
    font.save(only_abc)
    brand = brand_faces([only_abc])
    pieces = layout_line("ABCD 風", 30, brand=brand).pieces
    assert pieces[0].face == brand[0] and pieces[0].text == "ABC"
    assert [p.face.name for p in pieces[1:]] == ["DejaVu Sans Bold", "Noto Sans CJK SC Bold"]
    # full-width punctuation in a Latin line falls back to the CJK face, which has it
    assert [p.face.name for p in layout_line("Ride on！", 30).pieces] == ["DejaVu Sans Bold", "Noto Sans CJK SC Bold"]
    with pytest.raises(FontError, match="does not exist"):
        brand_faces([tmp_path / "missing.ttf"])
    not_a_font = tmp_path / "logo.ttf"
    not_a_font.write_text("hello")
    with pytest.raises(FontError, match="not a TrueType or OpenType font"):
        brand_faces([not_a_font])


def test_a_character_no_font_has_is_an_error_not_an_empty_box():
    with pytest.raises(FontError, match="U\\+E000"):
        layout_line("Trail \ue000", 30)
