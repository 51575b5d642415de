"""Pictures written beside an adapter, drawn with Pillow (no plotting library): the loss curve and
the grid of validation images."""

from pathlib import Path

from diffusers.utils import make_image_grid
from PIL import Image, ImageDraw, ImageFont

from adgen.typeset import FONT_PATH


def _font(size: int):
    return ImageFont.truetype(str(FONT_PATH), size)


def loss_curve(path: Path, losses: list[float], validation: list[tuple[int, float]], title: str) -> None:
    """Training loss per step (grey), its moving average (blue) and validation loss (orange dots)."""
    width, height, left, right, top, bottom = 800, 420, 70, 20, 40, 50
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(14)
    draw.text((left, 10), title, fill="black", font=font)
    values = losses + [v for _, v in validation]
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1
    steps = max(len(losses), 2)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * (step - 1) / (steps - 1)
        y = top + (height - top - bottom) * (hi - value) / (hi - lo)
        return x, y

    draw.rectangle([left, top, width - right, height - bottom], outline="#888888")
    for i in range(5):
        value = lo + (hi - lo) * i / 4
        y = xy(1, value)[1]
        draw.line([left - 4, y, left, y], fill="#888888")
        draw.text((8, y - 8), f"{value:.2f}", fill="black", font=font)
    for i in range(5):
        step = 1 + (steps - 1) * i / 4
        x = xy(step, lo)[0]
        draw.text((x - 10, height - bottom + 6), f"{round(step)}", fill="black", font=font)
    draw.text((width // 2 - 20, height - 22), "step", fill="black", font=font)
    if len(losses) > 1:
        draw.line([xy(i + 1, v) for i, v in enumerate(losses)], fill="#bbbbbb", width=1)
        window = max(1, len(losses) // 20)
        smooth = [sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1]) for i in range(len(losses))]
        draw.line([xy(i + 1, v) for i, v in enumerate(smooth)], fill="#1f5fbf", width=2)
    for step, value in validation:
        x, y = xy(max(step, 1), value)
        draw.ellipse([x - 4, y - 4, x + 4, y + 4], fill="#e07b00")
    draw.text((width - 330, height - 22), "train loss (avg, blue)   validation (orange)", fill="black", font=font)
    image.save(path)


def grid(path: Path, rows: list[tuple[str, list[Image.Image]]], prompts: list[str]) -> None:
    """One row of validation images per labelled moment (e.g. 'step 0', 'step 100'), one column per prompt."""
    cell = max(im.width for _, ims in rows for im in ims)
    label_w, head = 90, 36
    image = Image.new("RGB", (label_w + cell * len(prompts), head + cell * len(rows)), "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    for j, prompt in enumerate(prompts):
        draw.text((label_w + j * cell + 4, 4), prompt[: max(8, cell // 7)], fill="black", font=font)
    for i, (label, _) in enumerate(rows):
        draw.text((6, head + i * cell + cell // 2 - 7), label, fill="black", font=font)
    cells = [im.resize((cell, cell)) for _, images in rows for im in images]
    image.paste(make_image_grid(cells, rows=len(rows), cols=len(prompts)), (label_w, head))
    image.save(path)
