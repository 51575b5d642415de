"""Audience-targeted prompts for the text and image models, and the slot filling of written copy.

The same prompts serve every model: a hub instruct model and the offline default read them alike.
The offline default is trained on this very format (adgen/build_defaults.py) and writes slot markers such
as {product} that `fill_slots` replaces; a model that writes the name itself is left as it is.
"""

import re

from adgen.languages import language_name
from adgen.platforms import Placement, TextField
from adgen.spec import Audience, Brand, Product

SLOTS = ("{product}", "{brand}", "{benefit}", "{audience}")

STYLE_LABELS = {
    "headline": "short headline",
    "long_headline": "long headline",
    "description": "description",
    "short_description": "short description",
    "primary_text": "primary text",
    "path": "display URL path (one or two words joined by a hyphen)",
}

# Colour words for image prompts: the nearest of these names each brand colour.
COLOR_NAMES = {
    "black": (20, 20, 20), "white": (245, 245, 245), "grey": (128, 128, 128), "red": (200, 40, 40),
    "terracotta": (200, 85, 61), "orange": (240, 140, 30), "yellow": (240, 210, 60), "green": (50, 150, 70),
    "olive": (110, 120, 50), "teal": (30, 140, 140), "blue": (40, 90, 200), "navy": (25, 35, 80),
    "purple": (120, 60, 160), "pink": (235, 140, 170), "brown": (100, 65, 40), "dark brown": (59, 42, 32),
    "cream": (242, 232, 220), "beige": (220, 200, 170),
}


def copy_messages(brand: Brand, product: Product, audience: Audience, placement: Placement, field: TextField) -> list[dict]:
    """Chat messages asking for one text of one field, aimed at one audience."""
    system = f"You write ads for {brand.name}."
    if brand.voice:
        system += f" Voice: {brand.voice}."
    if brand.banned_terms:
        system += f" Avoid: {', '.join(brand.banned_terms)}."
    system += " Plain text: no emoji, no '!', no ALL CAPS."
    lines = [f"Product: {product.name}. {product.description}".strip()]
    if product.benefits:
        lines.append("Benefits: " + "; ".join(product.benefits) + ".")
    lines.append(f"Audience: {audience.label}. {audience.persona}")
    if audience.tone:
        lines.append(f"Tone: {audience.tone}.")
    if audience.language != "en":
        lines.append(f"Language: {language_name(audience.language)} ({audience.language}).")
    lines.append(f"Placement: {placement.label}.")
    lines.append(f"Write one {STYLE_LABELS[field.style]}, at most {field.max} characters. Reply with it only.")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


def aimed_persona(angle: str, persona: str) -> str:
    """The persona the offline default is prompted with: one of its corpus angles (parents, students,
    ...) named first, then a training persona of that angle. The model is trained on this exact form
    (adgen/build_defaults.py), so the angle word is one clear signal a tiny model learns to follow."""
    return f"Angle: {angle}. {persona}"


def fill_slots(text: str, *, product: Product, brand: Brand, audience: Audience, variant: int) -> str:
    """Replace slot markers with this job's values; the benefit rotates with the variant."""
    benefits = product.benefits or [product.name.lower()]
    counter = iter(range(100))
    text = text.replace("{product}", product.name).replace("{brand}", brand.name)
    text = text.replace("{audience}", audience.label)
    text = re.sub(r"\{benefit\}", lambda _: benefits[(variant + next(counter)) % len(benefits)], text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]


def color_name(hex_color: str) -> str:
    rgb = tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))
    return min(COLOR_NAMES, key=lambda n: sum((a - b) ** 2 for a, b in zip(COLOR_NAMES[n], rgb, strict=True)))


def image_prompt(brand: Brand, product: Product, audience: Audience) -> str:
    """A scene for the product in the audience's world, in the brand's colours; never any text.
    Most important first: CLIP-based pipelines read only the first 77 tokens."""
    colors = ", ".join(dict.fromkeys(color_name(c) for c in brand.colors))
    setting = audience.persona.split(",")[0].split(".")[0].strip()
    interests = f", {', '.join(audience.interests)}" if audience.interests else ""
    return (
        f"{product.name} for {setting.lower()}{interests}; {colors} palette; "
        "advertising photo, soft natural light, clean composition, copy space"
    )


NEGATIVE_IMAGE_PROMPT = "text, letters, words, watermark, logo, blurry, distorted, low quality"
