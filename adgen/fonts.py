"""Which font draws which character: one bold face per script, CJK forms by language, brand fonts first.

adgen draws every script an advertiser sells in with bold faces from open fonts (SIL OFL):

- Latin, Cyrillic and Greek: DejaVu Sans Bold (data/fonts), the face creatives always used.
- Arabic, Hebrew, Devanagari and Thai: Noto Sans Bold instances in data/fonts (LICENSE-Noto.txt).
- Chinese, Japanese and Korean: Noto Sans CJK, the variable collection from the `manimgx-fonts-cjk`
  package (a dependency: the full CJK set is 33 MB, too big for the repository, and subsets would
  draw rare characters of product names as empty boxes). Its faces share most glyphs but draw
  Japanese, Korean, Simplified and Traditional Chinese forms of the same character differently,
  so the face follows the audience's language (直 and 骨 are the classic examples).

A character is drawn by the first face whose character map has it: the brand's own font files,
then the face of the character's script, then the others. A character no face has is an error,
never an empty box.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import langcodes
from fontTools import unicodedata
from fontTools.ttLib import TTFont, TTLibError
from PIL import ImageFont

FONT_DIR = Path(__file__).parent / "data" / "fonts"
BOLD = 700  # weight of the variable CJK faces, matching the bold static faces of the other scripts


@dataclass(frozen=True)
class Face:
    """One font face: a file, the face's index in a collection, and the weight of a variable font."""

    name: str
    path: Path
    index: int = 0
    weight: int | None = None  # wght axis value; None for static fonts (and brand fonts, drawn as given)


LATIN = Face("DejaVu Sans Bold", FONT_DIR / "DejaVuSans-Bold.ttf")
SCRIPT_FACES = {
    "Arab": Face("Noto Sans Arabic Bold", FONT_DIR / "NotoSansArabic-Bold.ttf"),
    "Hebr": Face("Noto Sans Hebrew Bold", FONT_DIR / "NotoSansHebrew-Bold.ttf"),
    "Deva": Face("Noto Sans Devanagari Bold", FONT_DIR / "NotoSansDevanagari-Bold.ttf"),
    "Thai": Face("Noto Sans Thai Bold", FONT_DIR / "NotoSansThai-Bold.ttf"),
}
CJK_SCRIPTS = frozenset({"Hani", "Hira", "Kana", "Hang", "Bopo"})
# Face index of each form in NotoSansCJK-VF.otf.ttc.
CJK_INDEX = {"JP": 0, "KR": 1, "SC": 2, "TC": 3, "HK": 4}
CJK_PACKAGE = "manimgx_fonts_cjk"
CJK_FILE = "NotoSansCJK-VF.otf.ttc"


class FontError(ValueError):
    """No face can draw a character, or a font file cannot be used."""


def cjk_path() -> Path:
    """The Noto Sans CJK collection installed with adgen."""
    try:
        root = importlib.resources.files(CJK_PACKAGE)
    except ModuleNotFoundError:
        raise FontError(
            f"Chinese, Japanese and Korean text needs the {CJK_PACKAGE.replace('_', '-')} package; "
            "reinstall adgen (pip install -e .)"
        ) from None
    return Path(str(root / CJK_FILE))


def cjk_form(language: str, text: str = "") -> str:
    """Which CJK glyph forms suit a BCP 47 language: JP, KR, SC, TC or HK.

    For an audience whose language is not Chinese, Japanese or Korean (a product name in kanji in
    an English ad), the text decides: kana means Japanese, hangul Korean, otherwise Simplified.
    """
    tag = langcodes.Language.get(language)
    if tag.language == "ja":
        return "JP"
    if tag.language == "ko":
        return "KR"
    if tag.language in ("zh", "yue"):
        full = tag.maximize()
        if full.script == "Hant":
            return "HK" if full.territory in ("HK", "MO") else "TC"
        return "SC"
    found = {unicodedata.script(ch) for ch in text}
    if found & {"Hira", "Kana"}:
        return "JP"
    if "Hang" in found:
        return "KR"
    return "SC"


def cjk_face(form: str) -> Face:
    return Face(f"Noto Sans CJK {form} Bold", cjk_path(), CJK_INDEX[form], BOLD)


def brand_faces(files: Sequence[str | Path]) -> tuple[Face, ...]:
    """Faces for a brand's own font files (TrueType or OpenType, first face of a collection).

    Raises FontError naming the file when it is missing or not a font."""
    faces = []
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise FontError(f"brand font {str(path)!r} does not exist")
        try:
            name = TTFont(path, fontNumber=0, lazy=True)["name"].getDebugName(4) or path.stem
        except TTLibError as e:
            raise FontError(f"brand font {str(path)!r} is not a TrueType or OpenType font ({e})") from None
        faces.append(Face(name, path.resolve()))
    return tuple(faces)


@lru_cache(maxsize=32)
def charmap(face: Face) -> frozenset[int]:
    """Code points the face has a glyph for, read from its cmap table."""
    font = TTFont(face.path, fontNumber=face.index, lazy=True)
    return frozenset(font.getBestCmap())


def has_glyph(face: Face, ch: str) -> bool:
    return ord(ch) in charmap(face)


def fallback_order(script: str, cjk: Face, brand: Sequence[Face] = ()) -> tuple[Face, ...]:
    """Faces to try, in order, for a character of `script` (ISO 15924, e.g. Arab)."""
    own = cjk if script in CJK_SCRIPTS else SCRIPT_FACES.get(script, LATIN)
    rest = [LATIN, *SCRIPT_FACES.values(), cjk]
    return tuple(dict.fromkeys([*brand, own, *rest]))


def face_for(ch: str, script: str, cjk: Face, brand: Sequence[Face] = ()) -> Face:
    """The first face in `fallback_order` that has a glyph for ch; FontError when none has."""
    for face in fallback_order(script, cjk, brand):
        if has_glyph(face, ch):
            return face
    raise FontError(f"no bundled font can draw {ch!r} (U+{ord(ch):04X}); remove it or add a brand font that has it")


@lru_cache(maxsize=512)
def pil_font(face: Face, size: int, *, complex_layout: bool) -> ImageFont.FreeTypeFont:
    """The face at `size` pixels, with Pillow's RAQM layout (shaping, direction) or the basic one."""
    engine = ImageFont.Layout.RAQM if complex_layout else ImageFont.Layout.BASIC
    font = ImageFont.truetype(str(face.path), size, index=face.index, layout_engine=engine)
    if face.weight is not None:
        font.set_variation_by_axes([face.weight])
    return font
