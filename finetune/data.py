"""Training data: copy JSONL for text adapters, a folder of images for image adapters.

Text rows, one JSON object per line (documented in the README):

    {"text": "Cold brew, slow steeped for a smoother cup."}
    {"product": {"name": "Cold Brew Concentrate", "description": "...", "benefits": ["low acid"]},
     "audience": {"name": "busy-parents", "persona": "Parents of young kids, short on time."},
     "placement": "meta_feed",
     "copy": {"headline": ["Smooth mornings start here"], "primary_text": "Slow steeped, never bitter."},
     "brand": {"name": "Northwind Coffee", "voice": "warm"},   # optional
     "status": "approved"}                                        # optional; "rejected" rows are not trained on

A copy row becomes one example per text, its prompt the generator's own (adgen.prompts.copy_messages),
so the adapter learns to answer exactly what campaigns ask. A `text` row is trained on as it is.
Every problem names the file and line; bad rows are skipped only when asked, and then reported.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from adgen.platforms import registry
from adgen.prompts import copy_messages
from adgen.spec import Audience, Brand, Product, SpecError, check_image_bytes

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
SIDE_FILES = {".txt", ".jsonl", ".json", ".md"}


class DataError(ValueError):
    """Training data that cannot be used; the message names the file and line or file name."""


@dataclass
class TextExample:
    messages: list[dict] | None  # the generator's prompt, or None for a plain `text` row
    answer: str
    line: int
    slots: dict[str, str]  # value -> slot marker, for models trained on slot markers


@dataclass
class TextData:
    examples: list[TextExample]
    negatives: int  # rejected rows, kept in the file for preference tuning, not trained on
    skipped: list[str]  # "file:line: why", only with skip_bad
    hash: str


def delexicalised(answer: str, slots: dict[str, str]) -> str:
    """The answer with product, brand, audience and benefits replaced by their slot markers, longest
    first, as a model trained on slot markers learns copy."""
    for value, slot in sorted(slots.items(), key=lambda kv: -len(kv[0])):
        answer = answer.replace(value, slot)
    return answer


def _shorthand(value, kind: str):
    if isinstance(value, str):
        return {"name": value} if kind == "product" else {"name": value, "persona": value.replace("-", " ")}
    return value


def copy_examples(row: dict, brand_name: str, line: int) -> list[TextExample]:
    """One example per text of a copy row, prompted exactly as write_copy prompts."""
    placements = registry().placements
    if not isinstance(row.get("placement"), str):
        raise ValueError(f"placement: must be a placement name (a string), e.g. meta_feed; got {type(row.get('placement')).__name__}")
    if row["placement"] not in placements:
        raise ValueError(f"placement {row.get('placement')!r} is not a placement; valid: {', '.join(placements)}")
    placement = placements[row["placement"]]
    values = {"product": _shorthand(row.get("product"), "product"), "audience": _shorthand(row.get("audience"), "audience"),
              "brand": row.get("brand") or {"name": brand_name}}
    parsed = {}
    for key, model in (("product", Product), ("audience", Audience), ("brand", Brand)):
        try:
            parsed[key] = model.model_validate(values[key])
        except ValidationError as e:
            err = e.errors()[0]
            raise ValueError(f"{'.'.join([key, *map(str, err['loc'])])}: {err['msg']}") from None
    product, audience, brand = parsed["product"], parsed["audience"], parsed["brand"]
    copy = row.get("copy")
    if not isinstance(copy, dict) or not copy:
        raise ValueError("copy: must be an object of field -> text or list of texts")
    slots = {product.name: "{product}", brand.name: "{brand}", audience.label: "{audience}"}
    slots.update({b: "{benefit}" for b in product.benefits})
    examples = []
    for name, texts in copy.items():
        field = placement.fields.get(name)
        if field is None or not field.written:
            written = [n for n, f in placement.fields.items() if f.written]
            raise ValueError(f"copy.{name} is not a written field of {placement.name}; valid: {', '.join(written)}")
        if not isinstance(texts, str | list):
            raise ValueError(f"copy.{name}: must be a text or a list of texts; got {type(texts).__name__}")
        for text in [texts] if isinstance(texts, str) else texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"copy.{name}: texts must be non-empty strings")
            examples.append(TextExample(copy_messages(brand, product, audience, placement, field), text.strip(), line, slots))
    return examples


def read_text_data(path: Path, brand_name: str, skip_bad: bool = False) -> TextData:
    """Read a copy JSONL; raises DataError naming path:line unless skip_bad, which skips and reports."""
    if not path.is_file():
        raise DataError(f"--data: {path} is not a file")
    raw = path.read_bytes()
    examples, skipped, negatives = [], [], 0
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        try:
            if not line.strip():
                raise ValueError("empty line")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"not JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise ValueError("a row must be a JSON object")
            if row.get("status") == "rejected":
                negatives += 1
                continue
            if "text" in row:
                if not isinstance(row["text"], str) or not row["text"].strip():
                    raise ValueError("text: must be a non-empty string")
                examples.append(TextExample(None, row["text"].strip(), number, {}))
            elif "copy" in row:
                examples += copy_examples(row, brand_name, number)
            else:
                raise ValueError('a row needs "text", or "product", "audience", "placement" and "copy"')
        except ValueError as e:
            if not skip_bad:
                raise DataError(f"{path}:{number}: {e}; fix the row or pass --skip-bad") from None
            skipped.append(f"{path}:{number}: {e}")
    if not examples:
        raise DataError(f"{path}: no usable rows")
    return TextData(examples, negatives, skipped, hashlib.sha256(raw).hexdigest()[:16])


@dataclass
class ImageExample:
    path: Path
    caption: str


@dataclass
class ImageData:
    examples: list[ImageExample]
    skipped: list[str]
    hash: str


def _captions(folder: Path, captions: Path | None) -> dict[str, str]:
    """Captions from a JSONL of {"file", "caption"} rows, else from sidecar .txt files."""
    if captions is None:
        return {p.with_suffix("").name: p.read_text().strip() for p in folder.glob("*.txt")}
    if not captions.is_file():
        raise DataError(f"--captions: {captions} is not a file")
    found = {}
    for number, line in enumerate(captions.read_text().splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{captions}:{number}: not JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict) or not isinstance(row.get("file"), str) or not isinstance(row.get("caption"), str):
            raise DataError(f'{captions}:{number}: a row needs "file" and "caption" strings')
        if not (folder / row["file"]).is_file():
            raise DataError(f"{captions}:{number}: {row['file']} is not in {folder}")
        found[Path(row["file"]).with_suffix("").name] = row["caption"].strip()
    return found


def read_image_data(folder: Path, captions: Path | None, min_side: int, skip_bad: bool = False) -> ImageData:
    """Every image in `folder` with its caption; corrupt, non-image and too-small files raise
    DataError naming the file unless skip_bad."""
    from PIL import Image

    if not folder.is_dir():
        raise DataError(f"--images: {folder} is not a folder")
    caption_of = _captions(folder, captions)
    examples, skipped, h = [], [], hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        if path.suffix.lower() in SIDE_FILES:
            continue
        try:
            try:
                check_image_bytes(path.read_bytes(), "image")
            except SpecError as e:
                raise ValueError(str(e).removeprefix("image: ")) from None
            try:
                with Image.open(path) as im:
                    im.load()
                    size = im.size
            except Exception:  # PIL raises several types for corrupt or foreign files; all mean the same here
                raise ValueError("not a readable image (PNG, JPEG, WebP, ...)") from None
            if min(size) < min_side:
                raise ValueError(f"{size[0]}x{size[1]} is too small; the shorter side must be at least {min_side} px")
        except ValueError as e:
            if not skip_bad:
                raise DataError(f"{path}: {e}; remove it or pass --skip-bad") from None
            skipped.append(f"{path}: {e}")
            continue
        caption = caption_of.get(path.with_suffix("").name, "")
        h.update(path.name.encode() + path.read_bytes() + caption.encode())
        examples.append(ImageExample(path, caption))
    if not examples:
        raise DataError(f"{folder}: no usable images")
    return ImageData(examples, skipped, h.hexdigest()[:16])


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A seeded train/validation split of n rows; at least one row on each side."""
    import random

    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = min(n - 1, max(1, round(n * fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])
