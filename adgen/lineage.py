"""The lineage of a creative: everything needed to explain it and to make it again from the records
alone. Written once, when the creative is made (`adgen.pipeline`), and read back by export, report,
rerender, finetune and the web app through `Lineage.of`.

It records the prompts as the models were sent them (the chat messages per text field, the image
prompt and negative prompt), the generation settings (sampling, image steps, guidance and the
bucket the image was generated at), the models and adapters by content hash, and the seeds. The
stored form is `Lineage.record()`: plain JSON in the creative's row.
"""

from typing import Any

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
    was generated at before the renderer fitted it to the placement."""

    temperature: float
    top_p: float
    max_rounds: int
    image_steps: int
    guidance: float
    bucket: tuple[int, int] | None


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

    def record(self) -> dict:
        """The stored JSON form; keys that are absent rather than null (no adapter on a model, no
        creative replaced) stay absent."""
        data = self.model_dump(mode="json")
        for model in (data["text_model"], data["image_model"]):
            if model is not None and model["adapter"] is None:
                del model["adapter"]
        if data["replaces"] is None:
            del data["replaces"]
        return data

    @classmethod
    def of(cls, stored: dict) -> "Lineage":
        """Read a creative row's stored lineage back."""
        return cls.model_validate(stored)
