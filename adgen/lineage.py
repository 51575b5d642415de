"""The lineage of a creative: everything needed to explain it and to make it again from the records
alone. Written once, when the creative is made (`adgen.pipeline`), and read back by export, report,
rerender, finetune and the web app through `Lineage.of`.

It records the prompts as the models were sent them (the chat messages per text field, the image
prompt and negative prompt), the generation settings (sampling, image steps, guidance and the
bucket the image was generated at, best-of-N's candidates and judge), the models and adapters by
content hash, the seeds, the judge's scores of the copy (adgen.score), and for a product photo how it
was cut out and placed. The stored form is `Lineage.record()`: plain JSON in the creative's row.
"""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelUsed(_Frozen):
    """A resolved model (adgen.models.ModelRef) and the brand adapter that was active on it."""

    ref: str
    path: str
    hash: str
    adapter: dict[str, Any] | None = None  # an adapter version's lineage (adgen.adapters)


class Prompts(_Frozen):
    """The prompts as sent: chat messages per written text field, the image prompt and its negative."""

    text: dict[str, list[dict[str, str]]]
    image: str | None
    negative: str | None


class Generation(_Frozen):
    """How the models sampled: text sampling settings, image steps, guidance and the size the image
    was generated at before the renderer fitted it to the placement (for a product photo, the
    inpainting canvas), and the image pipeline family those settings came from."""

    temperature: float
    top_p: float
    max_rounds: int
    image_steps: int
    guidance: float
    bucket: tuple[int, int] | None
    candidates: int = 1  # best-of-N: copies written per variant (adgen.best_of.write_best)
    judge: str | None = None  # the encoder that scored and chose the copy; None before scoring existed
    image_family: str | None = None  # the image pipeline's class, whose defaults gave steps and guidance (adgen.image)


class Scores(_Frozen):
    """The judge's scores of a creative's copy (adgen.score.finish_scores): overall 0-100 from the
    weighted components (each 0..1), and the figures they were made from."""

    overall: int
    components: dict[str, float]
    audience_margin: float
    audience_closest: bool
    audience_closest_raw: bool
    product_named: bool
    product_similarity: float
    role_leaks: list[str]
    max_sibling_similarity: float
    near_duplicate_of: list[int]  # sibling variants of the same cell whose copy is a near-duplicate
    judge: str


class ProductPhoto(_Frozen):
    """How the product photo was put into the picture: the cut-out (photo and mask hashes, mask
    source, storage key), the scene the inpainting model painted around it (canvas, the product's
    box on it, strength) and the product's box in the creative, where its pixels are pasted exactly.
    Boxes are [x, y, width, height]; `region` is the layout's photo region the scene was fitted to;
    `scene_box` where the painted canvas lies in the region once the scene was extended (outpainted)
    to the region's size, None on creatives made before scenes were extended (they were cropped);
    `scene_extension` "margin" where only the new margins were painted, None where the whole
    extension was (creatives made before margins were painted alone)."""

    photo_sha256: str
    mask_sha256: str
    mask_source: str
    cutout_key: str
    inpaint_model: ModelUsed
    strength: float
    canvas: tuple[int, int]
    canvas_box: tuple[int, int, int, int]
    region: tuple[int, int, int, int]
    product_box: tuple[int, int, int, int]
    scene_box: tuple[int, int, int, int] | None = None
    scene_extension: Literal["margin"] | None = None


class Lineage(_Frozen):
    """Where one creative came from. `image_model`, `image_adapter`, `prompt.image`, `prompt.negative`
    and `generation.bucket` are None for a text-only placement."""

    campaign: str
    job: str
    variant: int
    product: str
    audience: str
    placement: str
    registry_version: str
    seed: int
    image_seed: int
    image_batch_seeds: list[int]  # the seeds of the whole batch the image was generated in
    prompt: Prompts
    text_model: ModelUsed
    image_model: ModelUsed | None
    text_adapter: dict[str, Any] | None
    image_adapter: dict[str, Any] | None
    generation: Generation
    logo_key: str | None
    fixes: list[dict[str, Any]]  # what the compliance loop regenerated, shortened or dropped
    adgen_version: str
    replaces: str | None = None  # the creative this one was regenerated from
    scores: Scores | None = None  # None on creatives made before scoring
    product_photo: ProductPhoto | None = None  # absent when the product has no photo or the placement no image

    def record(self) -> dict:
        """The stored JSON form; keys that are absent rather than null (no adapter on a model, no
        creative replaced, no scores) stay absent."""
        data = self.model_dump(mode="json")
        for model in (data["text_model"], data["image_model"]):
            if model is not None and model["adapter"] is None:
                del model["adapter"]
        for key in ("replaces", "scores", "product_photo"):
            if data[key] is None:
                del data[key]
        if data.get("product_photo") and data["product_photo"]["inpaint_model"]["adapter"] is None:
            del data["product_photo"]["inpaint_model"]["adapter"]
        for key in ("scene_box", "scene_extension"):
            if data.get("product_photo") and data["product_photo"][key] is None:
                del data["product_photo"][key]
        return data

    @classmethod
    def of(cls, stored: dict) -> "Lineage":
        """Read a creative row's stored lineage back."""
        return cls.model_validate(stored)
