"""Text wraps and shortens where readers of each script expect: at spaces in Latin, Korean, Arabic and
Hindi; between words in Chinese, Japanese and Thai (which have no spaces); never inside a grapheme;
and a shortened text always fits its display-width limit."""

import pytest

from adgen.linebreak import DANGLING, balanced, break_points, display_width, graphemes, shorten, units, wrap

JAPANESE = "風 Trail E-Bikeで街を走ろう。週末は山へ！"
CHINESE = "城市通勤，从此轻松。试骑就在今天。"
THAI = "จักรยานไฟฟ้าสำหรับเมือง ลองขี่วันนี้"
HINDI = "शहर के लिए इलेक्ट्रिक साइकिल"
KOREAN = "도시를 위한 전기 자전거를 지금 타보세요"
NO_LINE_START = set("。、！？）」ょゃゅっー，")  # closing punctuation and small kana never begin a line (UAX #14)


def test_latin_wraps_only_at_spaces_as_before():
    assert wrap("Ride further on the Trail E-Bike", len, 12) == ["Ride further", "on the Trail", "E-Bike"]
    assert wrap("Ride   further\non the  Trail E-Bike", len, 3) == ["Ride", "further", "on", "the", "Trail", "E-Bike"]
    assert balanced("Cold brew that waits for you", len, 24) == ["Cold brew that", "waits for you"]


@pytest.mark.parametrize("text", [JAPANESE, CHINESE, THAI])
@pytest.mark.parametrize("max_width", [6, 10, 14, 20])
def test_unspaced_scripts_wrap_between_words_within_the_width(text, max_width):
    lines = wrap(text, display_width, max_width)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")  # nothing lost, nothing repeated
    allowed = {0, *break_points(text), len(text)}
    position = 0
    for line in lines:
        start = text.index(line, position)
        assert start in allowed and start + len(line) in allowed | {p - 1 for p in allowed}, line
        assert line[0] not in NO_LINE_START, lines
        if display_width(line) > max_width:  # only a single unbreakable word may overflow
            assert len(units(line)) == 1, line
        position = start + len(line)


def test_thai_breaks_at_dictionary_words_not_only_at_spaces():
    assert units(THAI) == ["จักรยาน", "ไฟฟ้า", "สำหรับ", "เมือง ", "ลอง", "ขี่", "วัน", "นี้"]
    assert wrap(THAI, display_width, 14) == ["จักรยานไฟฟ้า", "สำหรับเมือง", "ลองขี่วันนี้"]


def test_chinese_words_stay_whole_and_korean_breaks_at_spaces():
    assert units(CHINESE)[:4] == ["城市", "通勤，", "从此", "轻松。"]
    assert units(KOREAN) == ["도시를 ", "위한 ", "전기 ", "자전거를 ", "지금 ", "타보세요"]
    assert units(HINDI) == ["शहर ", "के ", "लिए ", "इलेक्ट्रिक ", "साइकिल"]


def test_graphemes_keep_marks_and_conjuncts_with_their_letter():
    assert graphemes("क्षत्रिय") == ["क्ष", "त्रि", "य"]
    assert graphemes("สำหรับ") == ["สำ", "ห", "รั", "บ"]


@pytest.mark.parametrize("text", [JAPANESE, CHINESE, THAI, HINDI, KOREAN, "اكتشف دراجة Trail E-Bike الكهربائية اليوم"])
def test_shortening_fits_the_limit_at_a_break_and_never_splits_a_grapheme(text):
    whole = graphemes(text)
    for max_width in range(1, display_width(text) + 1):
        short = shorten(text, max_width)
        if short is None:
            assert display_width(units(text)[0].rstrip()) > max_width
            continue
        assert display_width(short) <= max_width
        kept = short if text.startswith(short) else short[:-1]  # a closing full stop may have been added
        assert text.startswith(kept), short
        assert graphemes(kept) == whole[: len(graphemes(kept))], short
        # the cut is at a break point, after dropping only a dangling comma or space
        ends = [*break_points(text), len(text)]
        assert any(b >= len(kept) and not text[len(kept) : b].strip(DANGLING + " ") for b in ends), short


def test_shortened_cjk_keeps_its_full_stop_and_drops_a_dangling_comma():
    assert shorten(CHINESE, 12) == "城市通勤。"
    assert shorten(CHINESE, 14) == "城市通勤，从此"
    assert shorten("週末は山へ行こう", 6) == "週末は"
    assert shorten("Cold brew for busy mornings, and more.", 30) == "Cold brew for busy mornings."
